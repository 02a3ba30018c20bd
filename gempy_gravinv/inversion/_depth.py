"""Depth below the data, for the depth weights of the INR inversion.

A depth weight ``(d(x) / d_ref)^(β/2)`` grows with the depth ``d`` of a point below what
the data see. Two ways to measure ``d`` (metres):

- ``"mesh_top"``: ``d = z_top - z + z0``, below the flat top of the mesh. Right for a flat
  mesh top with the stations just above it; wrong under topography or high stations.
- ``"stations"``: the depth below the stations that the data's own sensitivity implies.
  With ``q(x) = Σ_i (K(x, r_i) / σ_i)²`` (``K`` the point-mass kernel of station ``i``,
  ``σ_i`` its noise), a point at depth ``d`` below a dense station grid has ``q ∝ d⁻²``,
  so ``d(x) = c q(x)^(-1/2)``, with ``c`` set so that the most sensitive cell centre
  gets its vertical distance below the nearest station. It follows topography, station
  height, station spacing, noise and the edges of the survey with no setting, and gives
  the same weights for a problem scaled in length (the weights are ratios).

``d_ref`` is the smallest depth over the cell centres, so the weight is 1 at the most
sensitive cell and grows from there.
"""

from __future__ import annotations

import numpy as np
import torch

from .._kernels import point_mass_gz_matrix
from .._mesh import PrismMesh
from .._survey import Survey
from .._validation import check_choice

DEPTH_FROM = ("mesh_top", "stations")


class MeshTopDepth:
    """``d = max(z_top - z, 0) + z0`` (m): depth below the top of the mesh.

    Parameters
    ----------
    mesh : PrismMesh
        Gives ``z_top`` and the smallest cell height ``Δz`` (m).
    z0 : float or None
        Depth offset, m (``Δz/2`` when None).
    """

    kind = "mesh_top"

    def __init__(self, mesh: PrismMesh, z0: float | None = None) -> None:
        self.z_top = float(mesh.extent[5])
        half = float(mesh.cell_widths[:, 2].min()) / 2
        self.z0 = half if z0 is None else float(z0)
        self.reference = half + self.z0

    def depth(self, points: torch.Tensor) -> torch.Tensor:
        """Depth (n,) in metres of points (n, 3) (m, z up), float64."""
        z = torch.as_tensor(points)[:, 2].to(torch.float64)
        return (self.z_top - z).clamp_min(0.0) + self.z0


class StationDepth:
    """Depth below the stations implied by the data sensitivity (see the module docstring).

    Parameters
    ----------
    survey : Survey
        Stations (m, z up) and their std (mGal; ones when the survey has none).
    mesh : PrismMesh
        Cells whose centres set ``c`` and ``d_ref``.
    chunk : int
        Points per block when evaluating ``q`` (memory ``chunk x n_data`` floats).
    """

    kind = "stations"

    def __init__(self, survey: Survey, mesh: PrismMesh, chunk: int = 4096) -> None:
        loc = np.asarray(survey.locations, dtype=np.float64)
        self.origin = loc.mean(axis=0)
        self.stations = torch.as_tensor(loc - self.origin)
        std = np.ones(loc.shape[0]) if survey.std is None else np.asarray(survey.std, dtype=np.float64)
        self.inv_var = torch.as_tensor(1.0 / std**2)
        self.chunk = int(chunk)
        self.c = 1.0
        cc = torch.as_tensor(mesh.cell_centers)
        q = self._q(cc)
        i = int(torch.argmax(q))
        dist = torch.linalg.norm(self.stations - (cc[i] - torch.as_tensor(self.origin)), dim=1)
        nearest = int(torch.argmin(dist))
        dz = float(self.stations[nearest, 2] + torch.as_tensor(self.origin)[2] - cc[i, 2])
        self.c = max(dz, float(mesh.cell_widths[i, 2]) / 2) * float(q[i]) ** 0.5
        self.reference = float(self.depth(cc).min())

    def _q(self, points: torch.Tensor) -> torch.Tensor:
        p = torch.as_tensor(points).to(torch.float64) - torch.as_tensor(self.origin)
        out = []
        for a in range(0, p.shape[0], self.chunk):
            k = point_mass_gz_matrix(self.stations, p[a:a + self.chunk])  # (n_data, n_block)
            out.append((k * k * self.inv_var[:, None]).sum(0))
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)

    def depth(self, points: torch.Tensor) -> torch.Tensor:
        """Depth (n,) in metres of points (n, 3) (m, z up), float64."""
        q = self._q(points)
        return self.c / q.clamp_min(torch.finfo(torch.float64).tiny).sqrt()


def make_depth(depth_from: str, mesh: PrismMesh, survey: Survey, z0: float | None = None):
    """The depth model named ``depth_from`` (one of :data:`DEPTH_FROM`)."""
    check_choice(depth_from, DEPTH_FROM, name="depth_from")
    if depth_from == "mesh_top":
        return MeshTopDepth(mesh, z0)
    return StationDepth(survey, mesh)


def depth_weight(depth, points: torch.Tensor, beta: float) -> torch.Tensor:
    """``(d(x) / d_ref)^(β/2)`` (n,), dimensionless, float64: 1 at the reference depth."""
    return (depth.depth(points) / depth.reference) ** (float(beta) / 2)
