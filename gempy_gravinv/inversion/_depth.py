"""Depth below the data, for the depth weights of the INR inversion.

A depth weight ``(d(x) / d_ref)^(β/2)`` grows with the depth ``d`` of a point below what
the data see. Two ways to measure ``d`` (metres):

- ``"mesh_top"``: ``d = z_top - z + z0``, below the flat top of the mesh. Right for a flat
  mesh top with the stations just above it; wrong under topography or high stations.
- ``"stations"``: the depth below the stations that the data's own sensitivity implies.
  With ``q(x) = Σ_i (K(x, r_i) / σ_i)²`` (``K`` the point-mass kernel of station ``i``,
  ``σ_i`` its noise), a point at depth ``d`` below a station grid of spacing ``Δ`` has
  ``q = A (d⁻⁴ + (a Δ² d²)⁻¹)`` with ``a = 2/π``: the nearest station's ``d⁻⁴``
  dominates close to the stations, the sum over the grid (``π/(2Δ²d²)`` per unit
  kernel) deeper than the spacing. ``d(x)`` solves that relation for ``q(x)``, with
  ``A`` set so that the most sensitive cell centre gets its vertical distance below the
  nearest station; ``Δ`` is the median distance between neighbouring stations. It
  follows topography, station height, station spacing, noise and the edges of the
  survey with no setting, and gives the same weights for a problem scaled in length
  (the weights are ratios).

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


#: ``a`` of the relation ``q = A (d⁻⁴ + (a Δ² d²)⁻¹)`` (2/π: the sum over a square grid)
GRID_SUM = 2.0 / np.pi


def station_spacing(locations: np.ndarray) -> float:
    """Median horizontal distance (m) from each station position to the nearest other one.

    Positions repeated (several components at one station) count once; 0 for fewer than
    two positions.
    """
    from scipy.spatial import cKDTree

    xy = np.unique(np.asarray(locations, dtype=np.float64)[:, :2], axis=0)
    if xy.shape[0] < 2:
        return 0.0
    d, _ = cKDTree(xy).query(xy, k=2)
    return float(np.median(d[:, 1]))


def footprint(locations: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Which points (n, 3) lie inside the horizontal convex hull of the stations (bool (n,)).

    All True when the station positions do not span an area (fewer than three, or on
    one line). Metres, any consistent frame.
    """
    from scipy.spatial import Delaunay, QhullError

    xy = np.unique(np.asarray(locations, dtype=np.float64)[:, :2], axis=0)
    pts = np.asarray(points, dtype=np.float64)[:, :2]
    if xy.shape[0] < 3:
        return np.ones(pts.shape[0], dtype=bool)
    try:
        hull = Delaunay(xy)
    except QhullError:  # collinear stations: no area
        return np.ones(pts.shape[0], dtype=bool)
    return hull.find_simplex(pts) >= 0


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
        self.spacing = station_spacing(loc)
        cc = torch.as_tensor(mesh.cell_centers)
        q = self._q(cc)
        i = int(torch.argmax(q))
        dist = torch.linalg.norm(self.stations - (cc[i] - torch.as_tensor(self.origin)), dim=1)
        nearest = int(torch.argmin(dist))
        dz = max(float(self.stations[nearest, 2] + torch.as_tensor(self.origin)[2] - cc[i, 2]),
                 float(mesh.cell_widths[i, 2]) / 2)
        self.inv_b = 1.0 / (GRID_SUM * self.spacing**2) if self.spacing > 0 else 0.0
        self.amplitude = float(q[i]) / (dz**-4 + self.inv_b * dz**-2)
        self.reference = float(self._from_q(q).min())

    def _q(self, points: torch.Tensor) -> torch.Tensor:
        p = torch.as_tensor(points).to(torch.float64) - torch.as_tensor(self.origin)
        out = []
        for a in range(0, p.shape[0], self.chunk):
            k = point_mass_gz_matrix(self.stations, p[a:a + self.chunk])  # (n_data, n_block)
            out.append((k * k * self.inv_var[:, None]).sum(0))
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)

    def depth(self, points: torch.Tensor) -> torch.Tensor:
        """Depth (n,) in metres of points (n, 3) (m, z up), float64."""
        return self._from_q(self._q(points))

    def _from_q(self, q: torch.Tensor) -> torch.Tensor:
        """Depth (m) of sensitivities ``q``: the root of ``q = A (d⁻⁴ + (b d²)⁻¹)``."""
        q = q.clamp_min(torch.finfo(torch.float64).tiny)
        r = q / self.amplitude  # u² + u/b = q/A with u = d⁻², solved for u > 0 (stable form)
        u = 2 * r / (self.inv_b + torch.sqrt(self.inv_b**2 + 4 * r))
        return u.rsqrt()


def make_depth(depth_from: str, mesh: PrismMesh, survey: Survey, z0: float | None = None):
    """The depth model named ``depth_from`` (one of :data:`DEPTH_FROM`)."""
    check_choice(depth_from, DEPTH_FROM, name="depth_from")
    if depth_from == "mesh_top":
        return MeshTopDepth(mesh, z0)
    return StationDepth(survey, mesh)


def depth_weight(depth, points: torch.Tensor, beta: float) -> torch.Tensor:
    """``(d(x) / d_ref)^(β/2)`` (n,), dimensionless, float64: 1 at the reference depth."""
    return (depth.depth(points) / depth.reference) ** (float(beta) / 2)
