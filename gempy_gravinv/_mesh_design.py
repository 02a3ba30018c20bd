"""A tensor mesh for a survey: core cells over the stations, padding around and below.

Two levels:

- :func:`tensor_mesh`: the mesh of explicit choices (core cell size, core depth, margin,
  padding cells and their growth), built with ``discretize.utils.mesh_builder_xyz``.
- :func:`mesh_from_survey`: those choices derived from the stations (and the ground),
  for a user who has a survey and no mesh. Each derived number and its reason is kept
  in a :class:`MeshDesign`.

The derivation (lengths in metres; every one can be given instead):

- **cell size** ``h`` (cubic core cells): the median distance from a station to its
  nearest neighbour, two significant figures. The stations sample the field no finer
  than their spacing, so cells finer than it add cells the data cannot tell apart
  (eight times as many for half the size), which the inversion has to spread the mass
  over and pay for in time.
- **core depth** ``D``: half the larger horizontal extent ``L`` of the stations. A
  source at depth ``z`` makes an anomaly about ``2z`` wide; one deeper than ``L / 2``
  makes a field wider than the survey (a regional trend).
- **margin**: the core extends ``max(h, L / 10)`` past the outermost stations, so that
  sources just beyond the edge stations lie in core cells.
- **padding**: cells growing by 1.3 on each side until they reach ``D`` beyond the
  core, and below until ``D / 2`` (``padding=False``: none). They carry the field's broad
  part beyond the stations, which predicts stations beyond the survey's edge better;
  the default inversion's compact model trains on the core (the margin above) and
  leaves them at the background (the README's measurements of both).
- **cell budget**: where these give more than ``max_cells`` cells, ``h`` grows until
  they fit (then the depth and the padding are kept in metres).
- **top**: flat at the lowest station without a ground (or at a given ground
  elevation, for stations above the ground); with a ground, at its highest point, the
  core reaching ``D`` below the lowest station or ground point, and the cells above the
  ground inactive (:func:`~gempy_gravinv.active_from_topography`).
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from ._mesh import PrismMesh
from ._survey import Survey
from ._validation import as_finite_array, check_int, check_number

logger = logging.getLogger(__name__)

__all__ = ["MeshDesign", "mesh_from_survey", "tensor_mesh"]

#: growth factor of the padding cells (SimPEG's tutorials use 1.3)
PADDING_FACTOR = 1.3
#: at most this many padding cells on a side
MAX_PADDING_CELLS = 12


def padding_distance(h: float, n_pad: int, factor: float) -> float:
    """Length (m) of ``n_pad`` padding cells growing by ``factor`` from ``h`` (what ``mesh_builder_xyz`` inverts)."""
    return float(np.sum(h * factor ** (np.arange(n_pad) + 1))) if n_pad > 0 else 0.0


def _locations(survey_or_locations) -> np.ndarray:
    """Station positions (n, 3), metres, from a Survey or an array; an error for an empty or non-finite one."""
    if isinstance(survey_or_locations, Survey):
        return np.asarray(survey_or_locations.locations, dtype=float)
    loc = as_finite_array(survey_or_locations, name="station locations", ndim=2)
    if loc.shape[1] != 3 or loc.shape[0] == 0:
        raise ValueError(f"station locations must have shape (n, 3), got {loc.shape}")
    return loc


def tensor_mesh(survey_or_locations, core_cell, depth: float, *, padding=(0, PADDING_FACTOR),
                margin: float | None = None, top: float = 0.0, padding_depth: int = 0,
                stations_below_top: bool = False, centre_on=None) -> PrismMesh:
    """A tensor mesh over a station layout: core cells, lateral and bottom padding.

    Parameters
    ----------
    survey_or_locations : Survey or array_like (n, 3)
        Stations, metres (z up).
    core_cell : (dx, dy, dz)
        Core cell size, metres.
    depth : float
        Thickness of the core (uniform ``dz``) below ``top``, metres.
    padding : (n_pad, factor)
        Number of padding cells on each side (x, y) and their growth factor (>= 1);
        none by default.
    margin : float, optional
        Distance the core extends past the outermost stations, metres (default one
        core cell).
    top : float
        Elevation of the mesh top, metres.
    padding_depth : int
        Number of padding cells below the core (same growth factor); none by default.
    stations_below_top : bool
        Allow stations below ``top`` (a mesh whose cells above the ground are made
        inactive afterwards); otherwise such a station is an error.
    centre_on : (x, y), optional
        A point (m) to put at the centre of a core cell horizontally (e.g. a station of
        a regular grid, so that every station of the grid lies inside a cell column
        rather than on its faces), the core starting the margin or less beyond the
        stations; by default the core is centred on the stations, on whole metres.

    Returns
    -------
    PrismMesh
        Built from a ``discretize.TensorMesh`` (``mesh.source``), all cells active,
        ``mesh.shape == (nx, ny, nz)``.

    Raises
    ------
    ValueError
        Non-positive cell sizes, padding below one cell or growth below 1, a depth of
        less than one cell, or a station below ``top`` (unless allowed).

    Notes
    -----
    The core box (whole cells over the stations plus the margin, centred on whole
    metres, down to ``depth``) is chosen here; ``discretize.utils.mesh_builder_xyz``
    builds the core and padding cells from it (the padding distances are those of
    ``n_pad`` cells growing by ``factor``), and the origin puts the mesh top exactly
    at ``top``.
    """
    from discretize.utils import mesh_builder_xyz

    loc = _locations(survey_or_locations)
    dx, dy, dz = (float(v) for v in core_cell)
    if not min(dx, dy, dz) > 0:
        raise ValueError(f"core_cell sizes must be > 0 m, got {core_cell}")
    n_pad, factor = int(padding[0]), float(padding[1])
    padding_depth = int(padding_depth)
    if n_pad < 0 or padding_depth < 0 or ((n_pad > 0 or padding_depth > 0) and not factor >= 1.0):
        raise ValueError(f"padding must be (n >= 0, factor >= 1) and padding_depth >= 0, got {padding}, "
                         f"{padding_depth}")
    if depth < dz:
        raise ValueError(f"depth ({depth} m) must be at least one core cell ({dz} m)")
    if not stations_below_top and np.any(loc[:, 2] < top):
        raise ValueError(f"stations below the mesh top (z = {top} m): min station z = {loc[:, 2].min()} m")
    margin = max(dx, dy) if margin is None else float(margin)
    x0, x1 = loc[:, 0].min() - margin, loc[:, 0].max() + margin
    y0, y1 = loc[:, 1].min() - margin, loc[:, 1].max() + margin
    ncx = max(1, math.ceil((x1 - x0) / dx))
    ncy = max(1, math.ceil((y1 - y0) / dy))
    ncz = max(1, math.ceil(depth / dz))
    if centre_on is None:  # centre the core on the stations, on whole metres (clean node coordinates)
        x0 = math.floor(0.5 * (x0 + x1) - 0.5 * ncx * dx)
        y0 = math.floor(0.5 * (y0 + y1) - 0.5 * ncy * dy)
    else:  # move the core's corner down to put centre_on at a cell centre
        x0 -= (x0 + 0.5 * dx - float(centre_on[0])) % dx
        y0 -= (y0 + 0.5 * dy - float(centre_on[1])) % dy
    ncx = max(ncx, math.ceil((x1 - x0) / dx))
    ncy = max(ncy, math.ceil((y1 - y0) / dy))
    # two corners of the core box; half a cell more on the far side so that the builder's
    # int(extent / h) counts exactly ncx, ncy, ncz cells whatever the rounding
    lo = np.array([x0, y0, top - ncz * dz], dtype=float)
    corners = np.vstack([lo, lo + (np.array([ncx, ncy, ncz]) + 0.5) * np.array([dx, dy, dz])])
    pad = [[padding_distance(dx, n_pad, factor)] * 2, [padding_distance(dy, n_pad, factor)] * 2,
           [padding_distance(dz, padding_depth, factor), 0.0]]
    tm = mesh_builder_xyz(corners, [dx, dy, dz], padding_distance=pad, expansion_factor=max(factor, 1.0),
                          mesh_type="tensor")
    hx, hy, hz = (np.asarray(h, dtype=float) for h in tm.h)
    tm.origin = np.array([x0 - hx[:n_pad].sum(), y0 - hy[:n_pad].sum(), top - hz.sum()])
    return PrismMesh.from_discretize(tm)


@dataclass(frozen=True)
class MeshDesign:
    """The choices behind a mesh from :func:`mesh_from_survey` (metres), and why.

    Attributes
    ----------
    cell_size : float
        Core cell edge (cubic cells), m.
    depth : float
        Core depth below the lowest station (or ground point), m; the core reaches from
        the top down to there.
    top : float
        Elevation of the mesh top, m.
    margin : float
        Core extent past the outermost stations, m.
    padding_cells, padding_cells_below : int
        Padding cells on each side and below the core.
    padding_factor : float
        Their growth factor.
    shape : tuple of int
        ``(nx, ny, nz)`` cells.
    n_cells, n_active : int
        Cells in all, and below the ground (all without a ground).
    station_spacing, extent : float
        Median nearest-neighbour distance of the stations and their larger horizontal
        extent, m.
    reasons : dict
        ``{choice: how it was made}``.
    """

    cell_size: float
    depth: float
    top: float
    margin: float
    padding_cells: int
    padding_cells_below: int
    padding_factor: float
    shape: tuple[int, int, int]
    n_cells: int
    n_active: int
    station_spacing: float
    extent: float
    reasons: dict

    def to_dict(self) -> dict:
        """The design as plain JSON-ready values."""
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d

    def summary(self) -> str:
        """One line: the mesh and how its cell size and depth were chosen."""
        nx, ny, nz = self.shape
        active = "" if self.n_active == self.n_cells else f" ({self.n_active:,} below the ground)"
        return (f"mesh from the stations: {nx} x {ny} x {nz} = {self.n_cells:,} cells{active}; core cells "
                f"{self.cell_size:g} m ({self.reasons['cell_size']}), core {self.depth:g} m deep "
                f"({self.reasons['depth']}), top at z = {self.top:g} m ({self.reasons['top']}), "
                f"{self.padding_cells} padding cells "
                f"x{self.padding_factor:g} on each side and {self.padding_cells_below} below")


def _two_figures(h: float, up: bool = False) -> float:
    """``h`` to two significant figures (rounded up with ``up``)."""
    unit = 10.0 ** (math.floor(math.log10(h)) - 1)
    return (math.ceil(h / unit - 1e-9) if up else max(1, round(h / unit))) * unit


def _pads(h: float, reach: float, factor: float) -> int:
    """The fewest padding cells (growing by ``factor`` from ``h``) that reach ``reach`` m, at most the cap."""
    n = 0
    while n < MAX_PADDING_CELLS and padding_distance(h, n, factor) < reach:
        n += 1
    return n


def _layout(h: float, spans: tuple[float, float], margin: float, thickness: float, depth: float,
            factor: float, padding: bool = True) -> tuple[tuple[int, int, int], int, int]:
    """``((nx, ny, nz), n_pad, n_pad_below)`` of cubic cells ``h`` over the stations' spans (``padding``: add it)."""
    n_pad, n_below = (_pads(h, depth, factor), _pads(h, depth / 2, factor)) if padding else (0, 0)
    ncx, ncy = (max(1, math.ceil((s + 2 * margin) / h)) + 1 for s in spans)  # +1: the core's alignment
    ncz = max(1, math.ceil(thickness / h))
    return (ncx + 2 * n_pad, ncy + 2 * n_pad, ncz + n_below), n_pad, n_below


def mesh_from_survey(survey: Survey | np.ndarray, *, topography=None, cell_size: float | None = None,
                     depth: float | None = None, max_cells: int = 100_000,
                     padding: bool = True, ground_elevation: float | None = None) -> tuple[PrismMesh, MeshDesign]:
    """A tensor mesh for a survey, its cell size, depth and padding derived from the stations.

    Parameters
    ----------
    survey : Survey or array_like (n, 3)
        Stations, metres (z up). At least two distinct horizontal positions.
    topography : array_like (m, 3), optional
        Ground points ``x, y, z``, metres (e.g. :func:`gempy_gravinv.io.read_topography`).
        The mesh top is then the ground's highest point over the mesh (the points within
        the depth and the margin of the stations) and the cells above the ground are
        inactive; without it the top is flat at the lowest station.
    cell_size : float, optional
        Core cell edge, m (cubic cells). Default: the median nearest-neighbour
        distance of the stations, two significant figures, grown where the mesh would
        pass ``max_cells``.
    depth : float, optional
        Core thickness below the lowest station (or ground point), m. Default: half the
        stations' larger horizontal extent.
    max_cells : int
        Most cells of a derived mesh (padding included). With ``cell_size`` given, a mesh
        above it is an error instead.
    padding : bool
        Add the padding cells (default); without, the mesh ends at the core.
    ground_elevation : float, optional
        Elevation of flat ground, m (z up), at or below every station: the mesh top, for
        stations above the ground (airborne surveys) where no topography is given.
        Default: the lowest station (the stations taken to stand on the ground).

    Returns
    -------
    mesh : PrismMesh
        The mesh (``mesh.source`` the ``discretize.TensorMesh``), with its active cells.
    design : MeshDesign
        Every choice and its reason (module docstring: the rules).

    Raises
    ------
    ValueError
        Fewer than two distinct station positions, non-positive sizes, a given cell size
        whose mesh passes ``max_cells``, or a topography the stations or the mesh
        disagree with (:func:`~gempy_gravinv.check_topography`).
    """
    from scipy.spatial import cKDTree

    loc = _locations(survey)
    max_cells = check_int(max_cells, name="max_cells", minimum=8)
    xy = np.unique(np.round(loc[:, :2], 6), axis=0)
    if len(xy) < 2:
        raise ValueError("a mesh cannot be derived from one station position (no spacing, no extent): give a mesh "
                         "or a cell size and depth with tensor_mesh")
    spacing = float(np.median(cKDTree(xy).query(xy, k=2)[0][:, 1]))
    spans = (float(np.ptp(xy[:, 0])), float(np.ptp(xy[:, 1])))
    extent = max(spans)
    reasons = {}
    if depth is None:
        depth, reasons["depth"] = 0.5 * extent, f"half the stations' extent of {extent:.4g} m"
    else:
        depth, reasons["depth"] = check_number(depth, name="depth (m)", low=0.0, low_open=True), "given"
    ground = None
    if topography is not None:
        from ._ground import _points

        ground = _points(topography)
    if ground_elevation is not None:
        if ground is not None:
            raise ValueError("give a topography or a ground elevation, not both")
        top = check_number(ground_elevation, name="ground_elevation (m)")
        if top > loc[:, 2].min():
            raise ValueError(f"ground_elevation {top:g} m is above the lowest station (z = {loc[:, 2].min():g} m): "
                             "stations lie on or above the ground (z is an elevation, up)")
        z_low, reasons["top"] = top, "the given ground elevation"
    elif ground is None:
        top = z_low = float(loc[:, 2].min())
        reasons["top"] = "the lowest station: the stations taken to stand on the ground"
    else:
        reach = depth + extent / 10  # the padding's and the margin's reach beyond the stations
        lo, hi = xy.min(0) - reach, xy.max(0) + reach
        near = ground[np.all((ground[:, :2] >= lo) & (ground[:, :2] <= hi), axis=1)]
        near = near if len(near) else ground
        z_low = min(float(loc[:, 2].min()), float(near[:, 2].min()))
        top, reasons["top"] = float(near[:, 2].max()), "the ground's highest point over the mesh"
    thickness = top - z_low + depth
    if cell_size is None:
        h = _two_figures(spacing)
        reasons["cell_size"] = f"the median station spacing of {spacing:.4g} m"
    else:
        h = check_number(cell_size, name="cell_size (m)", low=0.0, low_open=True)
        reasons["cell_size"] = "given"
    if h > thickness:  # at least one cell of core
        h, reasons["cell_size"] = thickness, f"{reasons['cell_size']}, cut to the core's thickness"
    margin = max(h, extent / 10)
    shape, n_pad, n_below = _layout(h, spans, margin, thickness, depth, PADDING_FACTOR, padding)
    while math.prod(shape) > max_cells:
        if cell_size is not None:
            raise ValueError(f"cells of {h:g} m give {math.prod(shape):,} cells, more than max_cells = {max_cells:,}: "
                             "give a larger cell size, a smaller depth, or a larger max_cells")
        h = _two_figures(h * 1.05 * (math.prod(shape) / max_cells) ** (1 / 3), up=True)
        margin = max(h, extent / 10)
        shape, n_pad, n_below = _layout(h, spans, margin, thickness, depth, PADDING_FACTOR, padding)
        reasons["cell_size"] = (f"grown from the median station spacing ({spacing:.4g} m) to keep the mesh "
                                f"within {max_cells:,} cells")
    centre = xy[np.argmin(np.sum((xy - xy.mean(0)) ** 2, axis=1))]  # a grid's stations inside cell columns
    mesh = tensor_mesh(loc, core_cell=(h, h, h), padding=(n_pad, PADDING_FACTOR), depth=thickness, margin=margin,
                       top=top, padding_depth=n_below, stations_below_top=ground is not None, centre_on=centre)
    if ground is not None:
        from ._ground import active_from_topography, check_topography

        check_topography(mesh.source, ground, loc)
        mesh = PrismMesh.from_discretize(mesh.source, active_cells=active_from_topography(mesh.source, ground, loc))
    elif np.ptp(loc[:, 2]) > h:
        warnings.warn(f"the stations span {np.ptp(loc[:, 2]):.4g} m in elevation and the mesh top is flat at "
                      f"z = {top:g} m: give the ground (topography) so that the cells follow it", UserWarning,
                      stacklevel=2)
    dmesh = mesh.source
    design = MeshDesign(cell_size=h, depth=depth, top=top, margin=margin, padding_cells=n_pad,
                        padding_cells_below=n_below, padding_factor=PADDING_FACTOR,
                        shape=tuple(int(n) for n in dmesh.shape_cells), n_cells=int(dmesh.n_cells),
                        n_active=int(mesh.n_cells), station_spacing=spacing, extent=extent, reasons=reasons)
    logger.info("%s", design.summary())
    return mesh, design
