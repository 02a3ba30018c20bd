"""Coordinates in the mesh's cell-index space: an encoding grid that follows the cell sizes.

A feature grid spread evenly over the mesh box gives each part of the box the same
resolution. On a graded mesh (padding cells that grow outward, an octree that coarsens
away from the stations) most of the box is coarse cells, and a grid of 32 vertices per
axis can leave a core of fine cells with a few vertices: the network cannot represent
what the fine cells resolve. :class:`CellIndexWarp` maps each axis by a monotone,
piecewise-linear function whose slope is one over the finest cell width at that
coordinate, so equal steps of the mapped coordinate are equal numbers of the finest
cells there. On a tensor mesh this is the cell index along the axis; on a mesh of one
cell size it is affine.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def axis_knots(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots ``(x (k,) m, u (k,))`` of one axis from the cells' extents ``lo``, ``hi`` (n,) m along it.

    ``x`` are the distinct cell faces; between two neighbouring faces the mapped coordinate
    ``u`` grows by the interval's length over the width of the finest cell overlapping
    it (0 where no cell does), from ``u = 0`` at the first face.
    """
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    if lo.size == 0 or not np.all(hi > lo):
        raise ValueError("cell extents need hi > lo on every cell")
    span = float(hi.max() - lo.min())
    pairs = np.unique(np.round(np.c_[lo, hi] / span, 12), axis=0) * span  # cells of one extent count once
    faces = np.unique(np.round(pairs.ravel() / span, 12)) * span
    finest = np.full(faces.size - 1, np.inf)
    first = np.searchsorted(faces, pairs[:, 0] - 1e-9 * span)
    last = np.searchsorted(faces, pairs[:, 1] - 1e-9 * span)
    for a, b, w in zip(first, last, pairs[:, 1] - pairs[:, 0], strict=True):  # the faces' intervals a..b-1
        np.minimum(finest[a:b], w, out=finest[a:b])
    return faces, np.concatenate([[0.0], np.cumsum(np.diff(faces) / finest)])


class CellIndexWarp(nn.Module):
    """Map metres (n, 3) to the mesh's cell-index coordinates (n, 3), dimensionless, axis by axis.

    Along each axis ``u(x) = ∫ dx / h(x)``, ``h`` the width of the finest cell spanning
    ``x`` (:func:`axis_knots`): the number of finest cells between the mesh's first face
    and ``x``. Linear between the knots and beyond them (with the end intervals' slopes).
    Build it with :meth:`from_mesh`.

    Parameters
    ----------
    knots : sequence of 3 pairs of array_like
        ``(x (k,) m, u (k,))`` per axis, ``x`` increasing.
    """

    def __init__(self, knots) -> None:
        super().__init__()
        if len(knots) != 3:
            raise ValueError(f"CellIndexWarp needs knots for 3 axes, got {len(knots)}")
        for a, (x, u) in enumerate(knots):
            x = torch.as_tensor(np.asarray(x, dtype=np.float64))
            u = torch.as_tensor(np.asarray(u, dtype=np.float64))
            if x.ndim != 1 or x.shape != u.shape or x.numel() < 2 or not bool(torch.all(x[1:] > x[:-1])):
                raise ValueError(f"axis {a}: knots need at least 2 increasing positions and as many values")
            self.register_buffer(f"x{a}", x)
            self.register_buffer(f"u{a}", u)

    @classmethod
    def from_mesh(cls, mesh) -> CellIndexWarp:
        """The warp of ``mesh`` (a :class:`~gempy_gravinv.PrismMesh`; its active cells)."""
        b = np.asarray(mesh.bounds, dtype=np.float64)
        return cls([axis_knots(b[:, 2 * a], b[:, 2 * a + 1]) for a in range(3)])

    @property
    def device(self) -> torch.device:
        """Where the knots are."""
        return self.x0.device

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """Metres (n, 3) -> cell-index coordinates (n, 3)."""
        out = []
        for a in range(3):
            x, u = getattr(self, f"x{a}").to(points), getattr(self, f"u{a}").to(points)
            q = points[:, a].contiguous()
            i = torch.searchsorted(x, q).clamp_(1, x.numel() - 1)
            x0, u0 = x[i - 1], u[i - 1]
            out.append(u0 + (q - x0) * (u[i] - u0) / (x[i] - x0))
        return torch.stack(out, dim=1)
