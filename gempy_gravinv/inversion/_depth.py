"""Depth below the data, for the depth weights of the INR inversion.

A depth weight ``(d(x) / d_ref)^(β/2)`` grows with the depth ``d`` of a point below what
the data see. Three ways to measure ``d`` (metres):

- ``"mesh_top"``: ``d = z_top - z + z0``, below the flat top of the mesh. Right for a flat
  mesh top with the stations just above it; wrong under topography or high stations.
- ``"station_surface"``: inside the stations' horizontal convex hull, ``d = z_s(x, y) - z``,
  the vertical distance below the surface through the stations (their elevations
  interpolated linearly over their triangulation); outside it, that distance times the
  factor by which the ``"stations"`` depth below grows from the hull's edge to the point.
  It follows topography, draped or flat stations and station height with no setting, is
  the same at every horizontal position under the survey (a body near the survey's edge
  is weighted as one under its centre), makes cells the data hardly see (padding, an
  octree's coarse cells beyond the survey, cells off a single profile line, whose hull is
  the segment between its end stations) deep, and scales with the problem's lengths.
- ``"stations"``: the depth below the stations that the data's own sensitivity implies.
  With ``q(x) = Σ_i (K(x, r_i) / σ_i)²`` (``K`` the point-mass kernel of station ``i``,
  ``σ_i`` its noise), ``d(x)`` is the depth at which a point on a reference column has
  the same ``q``. The column stands under the station nearest the stations' centroid,
  from its height down, and ``q`` along it is summed over the actual stations (it is
  interior to the survey, so edge cells come out deeper, as their sensitivity says), so
  the relation between sensitivity and depth is the survey's own: the
  nearest station's ``d⁻⁴`` close to the stations, then ``d⁻²`` under a station grid of
  spacing Δ (``≈ π/(2Δ²d²)`` per unit kernel), ``d⁻³`` under a single profile line,
  and whatever an irregular layout gives. It follows topography, station height,
  station layout, noise and the edges of the survey with no setting, and gives the
  same weights for a problem scaled in length (the weights are ratios). Cells near the
  survey's edges come out deeper than cells of the same level under its centre: with the
  minimum-support weight, which grows with depth, a body near an edge is pulled inward.

``d_ref`` is the smallest depth over the cell centres, so the weight is 1 at the most
sensitive cell and grows from there.

The least-squares start's prior scale measures depth outside the stations' hull as the
distance from the survey (:class:`HullDistanceDepth`), not by the sensitivity: see there.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .._kernels import point_mass_gz_matrix
from .._mesh import PrismMesh
from .._survey import Survey
from .._validation import check_choice

DEPTH_FROM = ("mesh_top", "station_surface", "stations")


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


#: Ratio between successive depths of the reference column, and the most depths on it
COLUMN_RATIO, COLUMN_POINTS = 1.05, 2000


class _CellCache:
    """A depth model that keeps the depths of the mesh's cell centres (every depth weight asks for them).

    Subclasses set ``_cells`` (n_cells, 3) and ``_cell_depth`` (n_cells,) and compute other
    points in ``_uncached``.
    """

    _cells: torch.Tensor
    _cell_depth: torch.Tensor

    def depth(self, points: torch.Tensor) -> torch.Tensor:
        """Depth (n,) in metres of points (n, 3) (m, z up), float64."""
        p = torch.as_tensor(points)
        if p.shape == self._cells.shape and torch.equal(p.to(self._cells), self._cells):
            return self._cell_depth.clone()
        return self._uncached(p)

    def _uncached(self, points: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


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


def station_surface(locations: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The surface through the stations: a function of horizontal positions (n, 2) -> elevation (n,), m.

    Linear over the Delaunay triangulation of the station positions (positions repeated
    for several components count once, at their mean elevation), the nearest station's
    elevation outside it or where the stations do not span an area.
    """
    from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator
    from scipy.spatial import QhullError

    loc = np.asarray(locations, dtype=np.float64)
    pos, inverse = np.unique(loc[:, :2], axis=0, return_inverse=True)
    z = np.bincount(inverse.ravel(), weights=loc[:, 2]) / np.bincount(inverse.ravel())
    linear = None
    if pos.shape[0] >= 3:
        try:
            linear = LinearNDInterpolator(pos, z)
        except QhullError:  # collinear stations: no triangulation
            pass
    nearest = NearestNDInterpolator(pos, z) if pos.shape[0] > 1 else (lambda xy: np.full(len(xy), z[0]))

    def surface(xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        out = linear(xy) if linear is not None else np.full(xy.shape[0], np.nan)
        bad = ~np.isfinite(out)
        if bad.any():
            out[bad] = nearest(xy[bad])
        return out

    return surface


def hull_distance(locations: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal distance (m) from positions ``xy`` (n, 2) to the stations' convex hull, and the nearest hull point.

    Returns ``(distance (n,), nearest (n, 2))``: 0 and the position itself inside the
    hull (its boundary included). Stations on one line (or at one position) have the
    segment between the extreme positions (or that position) as their hull.
    """
    from scipy.spatial import ConvexHull, QhullError

    pos = np.unique(np.asarray(locations, dtype=np.float64)[:, :2], axis=0)
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    dist, near = np.zeros(xy.shape[0]), xy.copy()
    tol = 1e-9 * max(1.0, float(np.abs(pos).max()))
    hull = None
    if pos.shape[0] >= 3:
        try:
            hull = ConvexHull(pos)
        except QhullError:  # collinear stations: no area
            hull = None
    if hull is not None:
        out = (xy @ hull.equations[:, :2].T + hull.equations[:, 2]).max(axis=1) > tol  # n·x + c <= 0 inside
        a, b = pos[hull.simplices[:, 0]], pos[hull.simplices[:, 1]]  # the hull's edges
    else:  # a line or a point: the segment between the extreme positions
        c = pos.mean(axis=0)
        u = np.linalg.svd(pos - c)[2][0] if pos.shape[0] > 1 else np.array([1.0, 0.0])
        t = (pos - c) @ u
        a, b = (c + t.min() * u)[None], (c + t.max() * u)[None]
        out = np.ones(xy.shape[0], dtype=bool)
    ab = b - a
    ab2 = np.maximum((ab * ab).sum(-1), np.finfo(np.float64).tiny)  # a point: t = 0
    idx = np.flatnonzero(out)
    block = max(1, 2**22 // max(1, ab.shape[0]))  # points per block: (block, n_edges, 2) floats
    for lo in range(0, idx.size, block):
        i = idx[lo:lo + block]
        q = xy[i]
        t = np.clip(((q[:, None, :] - a[None]) * ab[None]).sum(-1) / ab2[None], 0.0, 1.0)
        foot = a[None] + t[..., None] * ab[None]  # (block, n_edges, 2)
        dd = np.sqrt(((q[:, None, :] - foot) ** 2).sum(-1))
        k = dd.argmin(axis=1)
        dist[i], near[i] = dd[np.arange(k.size), k], foot[np.arange(k.size), k]
    on = dist <= tol  # on a degenerate hull: inside
    dist[on], near[on] = 0.0, xy[on]
    return dist, near


class SurfaceDepth(_CellCache):
    """Depth (m) below the surface through the stations, growing with the sensitivity outside their hull.

    Inside the stations' horizontal convex hull, ``d = max(z_s(x, y) - z, Δz/4)``: ``z_s``
    is :func:`station_surface` and ``Δz`` the smallest cell height (the floor keeps the
    weight finite for a point at or above the stations). Outside it (padding cells, the
    ring of cells around scattered stations), ``d`` is multiplied by
    ``max(1, d_q(x) / d_q(x_h))``: ``d_q`` is :class:`StationDepth`'s depth from the data's
    sensitivity and ``x_h`` the nearest point of the hull at the same elevation. So the
    depth is continuous at the hull and grows as the data see the point less, and cells
    the data hardly see are weighted as deep. Lengths scale with the problem.

    Parameters
    ----------
    survey : Survey
        Station positions (m, z up) and std (mGal; for the sensitivity outside the hull).
    mesh : PrismMesh
        Cells: their smallest height sets the floor, their centres ``d_ref``.

    Attributes
    ----------
    reference : float
        ``d_ref``, the smallest depth over the cell centres, m.
    cell_below : tuple of numpy.ndarray
        :meth:`below` of the cell centres.
    """

    kind = "station_surface"

    def __init__(self, survey: Survey, mesh: PrismMesh) -> None:
        self.locations = np.asarray(survey.locations, dtype=np.float64)  # a Survey holds at least one
        self.surface = station_surface(self.locations)
        self.floor = float(mesh.cell_widths[:, 2].min()) / 4
        self._survey, self._mesh = survey, mesh
        self._sensitivity: StationDepth | None = None  # built when a point lies outside the hull
        self._distance: HullDistanceDepth | None = None
        self._cells = torch.as_tensor(mesh.cell_centers, dtype=torch.float64)
        self.cell_below = self.below(mesh.cell_centers)  # the distance model reads them too
        self._cell_depth = self._depth(self._cells, cells=True)
        self.reference = float(self._cell_depth.min())

    def _uncached(self, points: torch.Tensor) -> torch.Tensor:
        return self._depth(points)

    def below(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Depth below the station surface, distance to the stations' hull and nearest hull point of points (n, 3).

        Returns ``(d (n,), h (n,), near (n, 2))``, metres: ``d`` floored at a quarter of the
        smallest cell height, ``h`` horizontal (0 inside the hull).
        """
        pn = np.asarray(points, dtype=np.float64)
        d = np.maximum(self.surface(pn[:, :2]) - pn[:, 2], self.floor)
        h, near = hull_distance(self.locations, pn[:, :2])
        return d, h, near

    def distance_model(self) -> HullDistanceDepth:
        """The same depth inside the hull, the straight-line distance from it outside (:class:`HullDistanceDepth`)."""
        if self._distance is None:
            self._distance = HullDistanceDepth(self)
        return self._distance

    def _depth(self, points: torch.Tensor, cells: bool = False) -> torch.Tensor:
        """The depths of ``points``; ``cells``: they are the cell centres (their :meth:`below` is cached)."""
        p = torch.as_tensor(points).to(torch.float64)
        pn = p.cpu().numpy()
        d, h, near = self.cell_below if cells else self.below(pn)
        d = d.copy()
        out = h > 0
        if out.any():
            if self._sensitivity is None:
                self._sensitivity = StationDepth(self._survey, self._mesh)
            dq = (self._sensitivity.depth(p).numpy()[out] if cells
                  else self._sensitivity.depth(torch.as_tensor(pn[out])).numpy())
            dq_hull = self._sensitivity.depth(torch.as_tensor(np.c_[near[out], pn[out, 2]])).numpy()
            d[out] *= np.maximum(1.0, dq / dq_hull)
        return torch.as_tensor(d, dtype=torch.float64, device=p.device)


class HullDistanceDepth(_CellCache):
    """Depth (m) below the surface through the stations inside their hull, distance from the survey outside it.

    Inside the stations' horizontal convex hull, the depth of the :class:`SurfaceDepth`
    it is made from; outside it, ``sqrt(d² + h²)``: ``d`` the depth below the station
    surface (extended from the hull as :func:`station_surface` extends it) and ``h`` the
    horizontal distance to the hull. So a point beside the survey is as deep as it is far
    from the survey's edge, whatever the angle it is seen at, where :class:`SurfaceDepth`
    grows with the fall of the g_z sensitivity, which also holds the vertical
    component's angle factor: a cell at the stations' level beside the survey has almost
    no g_z sensitivity, and its :class:`SurfaceDepth` is many times its distance. The
    least-squares start's prior scale is set from this depth: a prior scale that grows
    as the sensitivity falls lets the ridge model put mass the data do not ask for into
    the cells they hardly see. ``reference`` is the surface depth's ``d_ref``, so the two
    weights share one scale (inside the hull the depths agree; outside, both are at least
    the depth below the station surface).

    Parameters
    ----------
    surface : SurfaceDepth
        The depth inside the hull, the stations and the floor.
    """

    kind = "station_distance"

    def __init__(self, surface: SurfaceDepth) -> None:
        self._surface = surface
        self._cells = surface._cells
        d, h, _ = surface.cell_below
        self._cell_depth = torch.as_tensor(np.sqrt(d * d + h * h), dtype=torch.float64)
        self.reference = surface.reference

    def _uncached(self, points: torch.Tensor) -> torch.Tensor:
        p = torch.as_tensor(points).to(torch.float64)
        d, h, _ = self._surface.below(p.cpu().numpy())
        return torch.as_tensor(np.sqrt(d * d + h * h), dtype=torch.float64, device=p.device)


class StationDepth(_CellCache):
    """Depth below the stations implied by the data sensitivity (see the module docstring).

    Parameters
    ----------
    survey : Survey
        Stations (m, z up) and their std (mGal; ones when the survey has none).
    mesh : PrismMesh
        Cells: their smallest height sets the top of the reference column (a quarter of
        it below the station), their centres ``d_ref`` and its bottom.
    chunk : int
        Points per block when evaluating ``q`` (memory ``chunk x n_data`` floats).

    Attributes
    ----------
    spacing : float
        Median distance between neighbouring station positions, m (reported; the
        relation itself comes from the stations as they are).
    column_depth, column_q : numpy.ndarray
        The reference column: depths (m, increasing) and their ``q`` (strictly decreasing).
    reference : float
        ``d_ref``, the smallest depth over the cell centres, m.
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
        cc = torch.as_tensor(mesh.cell_centers, dtype=torch.float64)
        q = self._q(cc)
        xy = self.stations[:, :2]
        centre = int(torch.argmin(torch.linalg.norm(xy - xy.mean(0), dim=1)))
        top = self.stations[centre] + torch.as_tensor(self.origin)
        d0 = float(mesh.cell_widths[:, 2].min()) / 4
        self.column_depth, self.column_q = self._column(top, d0, float(q.min()))
        self._cells, self._cell_depth = cc, self._from_q(q)  # every weight asks for the cell centres
        self.reference = float(self._cell_depth.min())

    def _column(self, top: torch.Tensor, d0: float, q_min: float) -> tuple[np.ndarray, np.ndarray]:
        """Depths (m) from ``d0`` down below the station at ``top`` and their ``q``, to ``q < q_min / 2``.

        Kept where ``q`` strictly decreases.
        """
        depths, qs = np.zeros(0), np.zeros(0)
        while depths.size < COLUMN_POINTS and (qs.size == 0 or qs[-1] >= q_min / 2):
            block = d0 * COLUMN_RATIO ** np.arange(depths.size, depths.size + 200)
            pts = top.repeat(block.size, 1)
            pts[:, 2] = top[2] - torch.as_tensor(block)
            depths, qs = np.r_[depths, block], np.r_[qs, self._q(pts).numpy()]
        keep = np.r_[True, qs[1:] < np.minimum.accumulate(qs)[:-1]]
        return depths[keep], qs[keep]

    def _q(self, points: torch.Tensor) -> torch.Tensor:
        p = torch.as_tensor(points).to(torch.float64) - torch.as_tensor(self.origin)
        out = []
        for a in range(0, p.shape[0], self.chunk):
            k = point_mass_gz_matrix(self.stations, p[a:a + self.chunk])  # (n_data, n_block)
            out.append((k * k * self.inv_var[:, None]).sum(0))
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)

    def _uncached(self, points: torch.Tensor) -> torch.Tensor:
        return self._from_q(self._q(points))

    def _from_q(self, q: torch.Tensor) -> torch.Tensor:
        """Depth (m) of sensitivities ``q``: where the reference column has that ``q``.

        Log-log interpolation along the column; above its top ``q ∝ d⁻⁴`` (the nearest
        station), below its bottom the power law of its last two depths.
        """
        lq = np.log(np.maximum(q.detach().cpu().numpy().astype(np.float64), np.finfo(np.float64).tiny))
        cq, cd = np.log(self.column_q[::-1]), np.log(self.column_depth[::-1])  # q increasing
        out = np.interp(lq, cq, cd)
        hi = lq > cq[-1]
        out[hi] = cd[-1] - (lq[hi] - cq[-1]) / 4
        if cq.size > 1:
            slope = (cd[1] - cd[0]) / (cq[1] - cq[0])  # d log d / d log q at the bottom
            lo = lq < cq[0]
            out[lo] = cd[0] + (lq[lo] - cq[0]) * slope
        return torch.as_tensor(np.exp(out), dtype=torch.float64, device=q.device)


def make_depth(depth_from: str, mesh: PrismMesh, survey: Survey, z0: float | None = None):
    """The depth model named ``depth_from`` (one of :data:`DEPTH_FROM`)."""
    check_choice(depth_from, DEPTH_FROM, name="depth_from")
    if depth_from == "mesh_top":
        return MeshTopDepth(mesh, z0)
    if depth_from == "station_surface":
        return SurfaceDepth(survey, mesh)
    return StationDepth(survey, mesh)


def distance_model(depth):
    """The depth model of the least-squares start's prior scale, for the depth model ``depth``.

    :meth:`SurfaceDepth.distance_model` for a :class:`SurfaceDepth` (see
    :class:`HullDistanceDepth`); ``depth`` itself for the others.
    """
    return depth.distance_model() if isinstance(depth, SurfaceDepth) else depth


def depth_weight(depth, points: torch.Tensor, beta: float) -> torch.Tensor:
    """``(d(x) / d_ref)^(β/2)`` (n,), dimensionless, float64: 1 at the reference depth."""
    return (depth.depth(points) / depth.reference) ** (float(beta) / 2)
