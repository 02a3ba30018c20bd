"""The design ``G Φ`` of a Fourier-lattice field, by sums that separate over the axes.

A periodic-encoding feature is ``a_n [sin, cos](2π n·t(x))``, ``t`` an affine map of each
axis of its own (:class:`~gempy_gravinv.density._encodings.PeriodicEncoding`). At cell
centres on a tensor grid, ``exp(2πi n·t_c) = Π_a exp(2πi n_a t_a(c))``, so the sum over
the cells of one row of the sensitivity,

``S_r(n) = Σ_c G[r, c] exp(2πi n·t_c)``,

is three small matrix products, one per axis, of the row laid out on the grid; the
features' sums are ``Σ_c G[r, c] sin(2π n·t_c) = Im S_r(n)`` and the cosine's
``Re S_r(n)``. The cost is about ``n_data · n_grid · (2K_x + 1)`` multiply-adds (``n_grid``
the tensor grid's nodes, ``K_x`` the harmonics along x) instead of
``n_data · n_cells · F`` for ``F`` features, and no ``n_cells x F`` feature array is
formed. It applies to a one-layer periodic field evaluated at cell centres
(``quadrature=1``) whose cell centres lie on a tensor grid (tensor meshes, with or
without inactive cells); :meth:`SeparableLattice.of` returns None otherwise and the caller
evaluates the features cell by cell.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch

from ..density._encodings import PeriodicEncoding

#: Largest grid (nodes) per cell for which the separable sums are used: a tensor mesh has
#: one node per cell, an active subset under topography a few; an octree far more.
GRID_PER_CELL = 8
#: Largest intermediate array of one block of rows, bytes (complex128).
BLOCK_BYTES = 256 * 2**20


def _axis_grid(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of one axis' ``t`` over the cells (sorted) and each cell's index into them."""
    values, index = np.unique(t, return_inverse=True)
    return values, index.reshape(-1)


class SeparableLattice:
    """The sums over the cells of a one-layer periodic field, axis by axis (see the module text).

    Build it with :meth:`of`, which returns None where the sums do not separate.
    ``design`` gives ``G [1, Φ]`` and ``apply`` gives ``Φ C`` (the field of weights ``C``
    at every cell) without an ``n_cells x F`` feature array.
    """

    def __init__(self, prob, field: torch.nn.Module, axes, shape) -> None:
        enc = field.encoding
        self.prob, self.shape, self.device = prob, shape, prob.device
        n = torch.round(enc.wave.to(torch.float64).cpu() / (2 * math.pi)).to(torch.int64)  # (W, 3) integers
        k = n.abs().max(0).values.tolist()
        self.m = [2 * ka + 1 for ka in k]
        self.exps = [torch.exp(2j * math.pi * torch.as_tensor(v, dtype=torch.float64)[:, None]
                               * torch.arange(-ka, ka + 1, dtype=torch.float64)[None, :]).to(self.device)
                     for (v, _), ka in zip(axes, k)]
        self.flat = torch.as_tensor(np.ravel_multi_index(tuple(i for _, i in axes), shape), device=self.device)
        self.pick = torch.as_tensor(np.ravel_multi_index(tuple((n[:, a] + k[a]).numpy() for a in range(3)),
                                                         tuple(self.m)), device=self.device)
        self.amp = enc.amp.to(device=self.device, dtype=torch.float64)
        self.w = n.shape[0]
        m, s = self.m, shape
        widest = max(s[0] * s[1] * s[2], m[0] * s[1] * s[2], m[0] * m[1] * s[2], m[0] * m[1] * m[2],
                     s[0] * m[1] * m[2], s[0] * s[1] * m[2])  # every intermediate of design and apply
        self.step = max(1, BLOCK_BYTES // (16 * widest))  # rows (or weight vectors) per intermediate

    @classmethod
    def of(cls, prob, field: torch.nn.Module) -> SeparableLattice | None:
        """The separable sums of ``field`` on ``prob``'s cells, or None where they do not apply.

        They apply to an :class:`~gempy_gravinv.density.INRDensity` whose encoding is a
        :class:`~gempy_gravinv.density._encodings.PeriodicEncoding` with no hidden layer,
        evaluated at cell centres (``quadrature=1``) that lie on a tensor grid of at
        most :data:`GRID_PER_CELL` nodes per cell.
        """
        enc = getattr(field, "encoding", None)
        mlp = getattr(field, "mlp", None)
        n_cells = prob.mesh.n_cells
        if (not isinstance(enc, PeriodicEncoding) or not isinstance(mlp, torch.nn.Sequential) or len(mlp) != 0
                or prob.points.shape[0] != n_cells):
            return None
        with torch.no_grad():
            u = field.normalizer(prob.points.to(device=field.normalizer.center.device, dtype=torch.float64))
            t = ((u - enc.lo.to(u)) / (enc.hi - enc.lo).to(u)).cpu().numpy()
        axes = [_axis_grid(t[:, a]) for a in range(3)]
        shape = tuple(len(v) for v, _ in axes)
        if math.prod(shape) > GRID_PER_CELL * n_cells:
            return None
        return cls(prob, field, axes, shape)

    @property
    def mean_sq(self) -> float:
        """Mean over the cells of ``|φ|²``: ``Σ a_n²`` (``sin² + cos² = 1`` at every cell)."""
        return float((self.amp ** 2).sum())

    def design(self, blocks: Iterable[tuple[int, int, torch.Tensor]]) -> torch.Tensor:
        """``G [1, Φ]`` (n_data, 1 + F) in the problem's dtype: ``G 1``, the sines' columns, the cosines'.

        ``blocks``: ``(r0, r1, Gᵀ[:, r0:r1])`` (n_cells, r1 - r0), mGal per kg/m³.
        """
        prob, w = self.prob, self.w
        out = torch.zeros(prob.survey.n_data, 1 + 2 * w, dtype=prob.dtype, device=self.device)
        for r0, r1, gt in blocks:
            g = gt.T  # (rows, n_cells), a view: converted to complex a few rows at a time
            out[r0:r1, 0] = g.sum(1, dtype=torch.float64).to(prob.dtype)
            for a0 in range(0, r1 - r0, self.step):
                a1 = min(r1 - r0, a0 + self.step)
                grid = torch.zeros(a1 - a0, math.prod(self.shape), dtype=torch.complex128, device=self.device)
                grid[:, self.flat] = g[a0:a1].to(torch.complex128)
                s = torch.einsum("rxyz,xa->rayz", grid.reshape(a1 - a0, *self.shape), self.exps[0])
                s = torch.einsum("rayz,yb->rabz", s, self.exps[1])
                s = torch.einsum("rabz,zc->rabc", s, self.exps[2]).reshape(a1 - a0, -1)[:, self.pick]
                out[r0 + a0:r0 + a1, 1:1 + w] = (self.amp * s.imag).to(prob.dtype)
                out[r0 + a0:r0 + a1, 1 + w:] = (self.amp * s.real).to(prob.dtype)
        return out

    def apply(self, coef: torch.Tensor) -> torch.Tensor:
        """``Φ C`` (n_cells,) or (n_cells, k) float64: the features times weights ``C`` (F,) or (F, k).

        ``Σ_n a_n (C_sin sin θ + C_cos cos θ) = Re Σ_n a_n (C_cos - i C_sin) e^{iθ}``, summed on
        the grid one axis at a time and read at each cell's node.
        """
        c = coef.to(device=self.device, dtype=torch.float64)
        one = c.dim() == 1
        c = c[:, None] if one else c
        z = (self.amp[:, None] * (c[self.w:] - 1j * c[:self.w])).T  # (k, W) complex
        out = torch.empty(self.flat.numel(), c.shape[1], dtype=torch.float64, device=self.device)
        back = [e.T for e in self.exps]  # (M_a, N_a)
        for a0 in range(0, c.shape[1], self.step):
            a1 = min(c.shape[1], a0 + self.step)
            grid = torch.zeros(a1 - a0, math.prod(self.m), dtype=torch.complex128, device=self.device)
            grid[:, self.pick] = z[a0:a1]
            v = torch.einsum("kabc,ax->kxbc", grid.reshape(a1 - a0, *self.m), back[0])
            v = torch.einsum("kxbc,by->kxyc", v, back[1])
            v = torch.einsum("kxyc,cz->kxyz", v, back[2]).reshape(a1 - a0, -1)
            out[:, a0:a1] = v.real[:, self.flat].T
        return out[:, 0] if one else out
