"""A fixed benchmark suite: eleven synthetic cases with geometries like users' problems.

Every builder returns a :class:`~gempy_gravinv.cases.synthetic.SyntheticCase` on a tensor
:class:`~gempy_gravinv.PrismMesh` built with ``PrismMesh.from_discretize(mesh,
active_cells=mask)`` (``case.mesh.source`` is the discretize mesh, ``case.model`` lives on
the active cells in discretize order). The cases are fixed: they were chosen before any
inversion was run on them and are not tuned to any method.

Shared recipe:

- the truth is a density **contrast** (kg/m³) relative to ``reference_density``; bodies
  are defined in metres and painted on the cells whose centres they contain (the cell
  nearest a body's centre if none, so coarse ``quick`` meshes keep every body);
- g_z (mGal, positive downward) from the float64 prism operator, plus seeded Gaussian
  noise with σ = ``relative_noise`` · std(g_z) + ``noise_floor`` · max|g_z| (defaults
  1 % and 0.1 %), the same σ for every datum;
- ``bounds`` is a plausible user range: ±1.5 × max|true contrast| for bodies, the
  field's range for smooth fields;
- ``meta`` describes the geometry (cell size, station height, bodies, what the case
  tests) and the noise;
- ``quick=True`` gives a tiny version (≤ 500 cells, ≤ 100 stations) over the same
  physical extent, for smoke tests.

:data:`SUITE` maps case names to builders; :data:`TUNING_SEEDS` are the noise seeds of
development runs, :data:`HELD_OUT_SEEDS` those run only at the end of a development
cycle. ``benchmarks/suite.py`` runs the methods on these cases.

Conventions: metres, z up; density contrast in kg/m³; g_z in mGal, positive downward.
"""

from __future__ import annotations

import numpy as np

from .._forward import forward_gz
from .._mesh import PrismMesh
from .._survey import Survey
from .._validation import check_number
from .synthetic import SyntheticCase, _stations_over_centres, grf_field

__all__ = ["SUITE", "TUNING_SEEDS", "HELD_OUT_SEEDS", "build_case", "tutorial_topo", "two_bodies",
           "deep_body", "matern_nowrap", "fine_10m", "coarse_1km", "dike", "grf_wrap",
           "ridge_topo_bodies", "station_height_3", "gempy_layered_body"]

#: noise seeds of development runs
TUNING_SEEDS = (0,)
#: noise seeds run only at the end of a development cycle
HELD_OUT_SEEDS = (101, 102)

#: absolute density the smooth-field contrasts are relative to, kg/m³ (their mean)
_FIELD_REFERENCE = 2670.0


# ---------------------------------------------------------------------- helpers
def _mesh(h, n, origin, active_fn=None) -> PrismMesh:
    """Uniform tensor mesh of ``n`` cubes of ``h`` m; ``active_fn(discretize mesh) -> mask``."""
    from discretize import TensorMesh

    tm = TensorMesh([[(float(h), int(k))] for k in n], origin=tuple(float(o) for o in origin))
    return PrismMesh.from_discretize(tm, active_cells=None if active_fn is None else active_fn(tm))


def _topo_active(topo):
    """``active_fn`` for :func:`_mesh`: cells whose centre lies below ``topo(x, y)`` (m)."""
    def fn(tm):
        from discretize.utils import active_from_xyz

        (x0, x1), (y0, y1) = (tm.nodes_x[[0, -1]], tm.nodes_y[[0, -1]])
        d = min(tm.h[0].min(), tm.h[1].min()) / 2
        xx, yy = np.meshgrid(np.arange(x0, x1 + d / 2, d), np.arange(y0, y1 + d / 2, d))
        return active_from_xyz(tm, np.column_stack([xx.ravel(), yy.ravel(), topo(xx, yy).ravel()]))
    return fn


def _cells(mesh: PrismMesh, body: dict) -> np.ndarray:
    """Mask over the active cells of ``body`` (kind ``box``, ``sphere`` or ``dike``)."""
    cc = mesh.cell_centers
    if body["kind"] == "box":
        lo, hi = np.asarray(body["min_m"]), np.asarray(body["max_m"])
        sel = np.all((cc > lo) & (cc < hi), axis=1)
        centre = (lo + hi) / 2
    elif body["kind"] == "sphere":
        centre = np.asarray(body["centre_m"])
        sel = np.linalg.norm(cc - centre, axis=1) <= body["radius_m"]
    else:  # dike: a one-cell-wide plane striking along y, dipping towards +x
        zt, zb = body["top_z_m"], body["bottom_z_m"]
        xt = body["top_x_m"] + (zt - cc[:, 2]) / np.tan(np.radians(body["dip_deg"]))
        d = cc[:, 0] - xt
        w = body["width_m"]
        y0, y1 = body["y_m"]
        sel = (d >= -w / 2) & (d < w / 2) & (cc[:, 2] < zt) & (cc[:, 2] > zb) & (cc[:, 1] > y0) & (cc[:, 1] < y1)
        zc = (zt + zb) / 2
        centre = np.array([body["top_x_m"] + (zt - zc) / np.tan(np.radians(body["dip_deg"])), (y0 + y1) / 2, zc])
    if not sel.any():  # a body smaller than the (quick) cells: keep its nearest cell
        sel[int(np.argmin(np.linalg.norm(cc - centre, axis=1)))] = True
    return sel


def _paint(mesh: PrismMesh, bodies) -> tuple[np.ndarray, list]:
    """Contrast on the active cells (later bodies overwrite earlier ones), body meta."""
    m = np.zeros(mesh.n_cells)
    info = []
    for b in bodies:
        sel = _cells(mesh, b)
        m[sel] = b["contrast_kgm3"]
        info.append({**b, "n_cells": int(sel.sum())})
    return m, info


def _plus_minus(model) -> tuple[float, float]:
    c = 1.5 * float(np.max(np.abs(model)))
    return -c, c


def _case(name, mesh, loc, model, *, reference=0.0, bounds=None, noise_seed=0, quick=False,
          relative_noise=0.01, noise_floor=0.001, device="cpu", meta=None, cls=SyntheticCase,
          extra=None) -> SyntheticCase:
    """Clean g_z, seeded noise σ = rel·std(g_z) + floor·max|g_z|, and the case record."""
    check_number(relative_noise, name="relative_noise", low=0.0, low_open=True)
    check_number(noise_floor, name="noise_floor", low=0.0)
    model = np.asarray(model, dtype=float)
    gz = forward_gz(mesh, loc, model, device=device)
    sigma = float(relative_noise * np.std(gz) + noise_floor * np.max(np.abs(gz)))
    if not sigma > 0:
        raise ValueError(f"{name}: the clean g_z is constant, no noise scale")
    noisy = gz + sigma * np.random.default_rng(noise_seed).standard_normal(gz.size)
    std = np.full(gz.size, sigma)
    meta = dict(meta or {})
    meta.update(noise_seed=noise_seed, quick=bool(quick), relative_noise=float(relative_noise),
                noise_floor=float(noise_floor), noise_std_mgal=sigma, gz_std_mgal=float(np.std(gz)),
                gz_max_abs_mgal=float(np.max(np.abs(gz))), n_cells=int(mesh.n_cells),
                n_full_cells=int(mesh.active_cells.size), n_data=int(loc.shape[0]),
                shape=list(mesh.shape), check_stations=True,
                units={"model": "kg/m3 contrast", "gz": "mGal, positive down", "xyz": "m, z up"})
    return cls(name=name, mesh=mesh, survey=Survey(loc, gz=noisy, std=std, name=name), model=model,
               gz_clean=gz, reference_density=float(reference),
               bounds=tuple(float(b) for b in (bounds or _plus_minus(model))), meta=meta, **(extra or {}))


def _box(lo, hi, contrast) -> dict:
    return {"kind": "box", "min_m": [float(v) for v in lo], "max_m": [float(v) for v in hi],
            "contrast_kgm3": float(contrast)}


def _block_mesh(quick):
    """The dipping-block mesh (21 x 21 x 11 cubes of 50 m, top at z = 0); quick: 7 x 7 x 4 of 150 m."""
    return _mesh(150.0, (7, 7, 4), (-25.0, -25.0, -600.0)) if quick else _mesh(50.0, (21, 21, 11),
                                                                               (-25.0, -25.0, -550.0))


def _smooth(field) -> np.ndarray:
    """A zero-mean field [ix, iy, iz] rescaled to max|·| = 500 kg/m³, in discretize order."""
    c = field - field.mean()
    return (c * (500.0 / np.max(np.abs(c)))).ravel(order="F")


# ---------------------------------------------------------------------- cases
def tutorial_topo(*, noise_seed=0, quick=False, relative_noise=0.01, noise_floor=0.001,
                  device="cpu") -> SyntheticCase:
    """SimPEG's gravity-inversion tutorial set-up: Gaussian topography, a block and a sphere.

    Mesh: 5 m cubes, 40 x 40 cells over x, y in -100..100 m and 14 layers over
    z in -70..0 m (22,400 cells); active cells below the topography
    z = -15 exp(-(x² + y²) / 80²) m (``discretize.utils.active_from_xyz``, cell centres).
    Stations: 17 x 17 on x, y in -80..80 m (10 m spacing), 5 m above the topography.
    Truth (the tutorial's geometry): a +100 kg/m³ block x -50..-20, y -15..15,
    z -50..-30 m (top about 18 m below the ground) and a -100 kg/m³ sphere of radius
    15 m centred at (35, 0, -40) m. Tests active cells under topography, stations at
    varying elevation and two bodies of opposite sign. ``quick``: 20 m cubes (10 x 10 x 4)
    and 9 x 9 stations 20 m above the ground.

    Parameters
    ----------
    noise_seed : int or None
        Seed of the Gaussian noise (numpy ``default_rng``).
    quick : bool
        The tiny smoke-test version.
    relative_noise, noise_floor : float
        σ = relative_noise · std(g_z) + noise_floor · max|g_z| (mGal).
    device : str
        Torch device of the clean forward.

    Returns
    -------
    SyntheticCase
        ``reference_density = 0``; ``bounds = ±150`` kg/m³.
    """
    def topo(x, y):
        return -15.0 * np.exp(-(x**2 + y**2) / 80.0**2)

    h, n, ns, dz = (20.0, (10, 10, 4), 9, 20.0) if quick else (5.0, (40, 40, 14), 17, 5.0)
    mesh = _mesh(h, n, (-100.0, -100.0, -n[2] * h), _topo_active(topo))
    xx, yy = np.meshgrid(np.linspace(-80, 80, ns), np.linspace(-80, 80, ns))
    loc = np.column_stack([xx.ravel(), yy.ravel(), topo(xx, yy).ravel() + dz])
    model, bodies = _paint(mesh, [_box((-50, -15, -50), (-20, 15, -30), 100.0),
                                  {"kind": "sphere", "centre_m": [35.0, 0.0, -40.0], "radius_m": 15.0,
                                   "contrast_kgm3": -100.0}])
    meta = {"case": "SimPEG tutorial: Gaussian topography, +block and -sphere", "cell_size_m": h,
            "topography": "z = -15 exp(-(x^2 + y^2) / 80^2) m", "station_height_above_ground_m": dz,
            "bodies": bodies, "tests": "active cells under topography, stations following the ground"}
    return _case("tutorial_topo", mesh, loc, model, noise_seed=noise_seed, quick=quick,
                 relative_noise=relative_noise, noise_floor=noise_floor, device=device, meta=meta)


def two_bodies(*, noise_seed=0, quick=False, relative_noise=0.01, noise_floor=0.001,
               device="cpu") -> SyntheticCase:
    """A shallow +300 kg/m³ block and a deeper -300 kg/m³ block on the dipping-block mesh.

    Mesh: 21 x 21 x 11 cubes of 50 m, cell centres x, y = 0, 50, ..., 1000 m, top at
    z = 0; 441 stations 1 m above the top over the cell centres. Truth: +300 kg/m³ in
    x 125..375, y 175..425, z -150..-50 m (5 x 5 x 2 cells) and -300 kg/m³ in
    x 575..825, y 575..875, z -400..-200 m (5 x 6 x 4 cells). Tests resolving two bodies of
    opposite sign at different depths. ``quick``: 7 x 7 x 4 cubes of 150 m.

    Parameters
    ----------
    noise_seed, quick, relative_noise, noise_floor, device
        As in :func:`tutorial_topo`.

    Returns
    -------
    SyntheticCase
        ``reference_density = 0``; ``bounds = ±450`` kg/m³.
    """
    mesh = _block_mesh(quick)
    model, bodies = _paint(mesh, [_box((125, 175, -150), (375, 425, -50), 300.0),
                                  _box((575, 575, -400), (825, 875, -200), -300.0)])
    meta = {"case": "two blocks of opposite sign at different depths", "cell_size_m": float(mesh.cell_widths[0, 0]),
            "station_z_m": 1.0, "bodies": bodies, "tests": "two bodies, both signs, depth separation"}
    return _case("two_bodies", mesh, _stations_over_centres(mesh, 1.0), model, noise_seed=noise_seed,
                 quick=quick, relative_noise=relative_noise, noise_floor=noise_floor, device=device, meta=meta)


def deep_body(*, noise_seed=0, quick=False, relative_noise=0.01, noise_floor=0.001,
              device="cpu") -> SyntheticCase:
    """One +400 kg/m³ block whose top is 5 cells (250 m) down, on the dipping-block mesh.

    Mesh and stations as in :func:`two_bodies` (50 m cubes, top at z = 0, stations at
    z = 1 m). Truth: x 375..675, y 425..675, z -450..-250 m (6 x 5 x 4 cells). Tests depth
    recovery of a body far below the stations. ``quick``: 7 x 7 x 4 cubes of 150 m.

    Parameters
    ----------
    noise_seed, quick, relative_noise, noise_floor, device
        As in :func:`tutorial_topo`.

    Returns
    -------
    SyntheticCase
        ``reference_density = 0``; ``bounds = ±600`` kg/m³.
    """
    mesh = _block_mesh(quick)
    model, bodies = _paint(mesh, [_box((375, 425, -450), (675, 675, -250), 400.0)])
    meta = {"case": "one deep block (top 250 m below the surface)", "cell_size_m": float(mesh.cell_widths[0, 0]),
            "station_z_m": 1.0, "bodies": bodies, "tests": "depth of a deep body"}
    return _case("deep_body", mesh, _stations_over_centres(mesh, 1.0), model, noise_seed=noise_seed,
                 quick=quick, relative_noise=relative_noise, noise_floor=noise_floor, device=device, meta=meta)


def matern_nowrap(*, noise_seed=0, quick=False, relative_noise=0.01, noise_floor=0.001,
                  device="cpu", field_seed=7) -> SyntheticCase:
    """A smooth Matérn field (λ = 5 km, ν = 1.5) that does not wrap around the mesh box.

    Mesh: 40 x 40 x 20 cubes of 500 m (x, y in 0..20 km, z in -10..0 km), 1,600 stations
    1 m above the top over the cell centres. The field is :func:`grf_field` on a grid twice
    as large in every direction (80 x 80 x 40, seed ``field_seed``), cropped to its central
    part, so opposite faces of the box are not correlated. Contrast: the field minus its
    mean, rescaled to max|contrast| = 500 kg/m³; the absolute density is
    2670 kg/m³ + contrast. Tests smooth, non-periodic structure. ``quick``: 8 x 8 x 4
    cubes of 2.5 km (field on 16 x 16 x 8).

    Parameters
    ----------
    noise_seed, quick, relative_noise, noise_floor, device
        As in :func:`tutorial_topo`.
    field_seed : int
        Seed of the field realization (fixed for the suite).

    Returns
    -------
    SyntheticCase
        ``reference_density = 2670`` kg/m³ (the field mean); ``bounds`` = the contrast's
        (min, max), kg/m³.
    """
    h, n = (2500.0, (8, 8, 4)) if quick else (500.0, (40, 40, 20))
    f = grf_field(tuple(2 * k for k in n), h, 5000.0, 1.5, seed=field_seed)
    f = f[n[0] // 2:n[0] // 2 + n[0], n[1] // 2:n[1] // 2 + n[1], n[2] // 2:n[2] // 2 + n[2]]
    model = _smooth(f)
    mesh = _mesh(h, n, (0.0, 0.0, -n[2] * h))
    meta = {"case": "Matern field (5 km, nu 1.5) cropped from a grid twice as large", "cell_size_m": h,
            "station_z_m": 1.0, "field_seed": field_seed, "length_scale_m": 5000.0, "nu": 1.5,
            "generator_grid": [2 * k for k in n], "tests": "smooth non-periodic field"}
    return _case("matern_nowrap", mesh, _stations_over_centres(mesh, 1.0), model, reference=_FIELD_REFERENCE,
                 bounds=(model.min(), model.max()), noise_seed=noise_seed, quick=quick,
                 relative_noise=relative_noise, noise_floor=noise_floor, device=device, meta=meta)


def fine_10m(*, noise_seed=0, quick=False, relative_noise=0.01, noise_floor=0.001,
             device="cpu") -> SyntheticCase:
    """A shallow compact -300 kg/m³ body under 10 m cells, stations half a cell above.

    Mesh: 24 x 24 x 12 cubes of 10 m (x, y in 0..240 m, z in -120..0 m); 576 stations
    5 m above the top over the cell centres. Truth: -300 kg/m³ in x 80..130, y 120..160,
    z -50..-20 m (5 x 4 x 3 cells; e.g. a low-density lens). Tests small cells and
    stations close to the ground. ``quick``: 8 x 8 x 4 cubes of 30 m, stations 15 m above.

    Parameters
    ----------
    noise_seed, quick, relative_noise, noise_floor, device
        As in :func:`tutorial_topo`.

    Returns
    -------
    SyntheticCase
        ``reference_density = 0``; ``bounds = ±450`` kg/m³.
    """
    h, n = (30.0, (8, 8, 4)) if quick else (10.0, (24, 24, 12))
    mesh = _mesh(h, n, (0.0, 0.0, -n[2] * h))
    model, bodies = _paint(mesh, [_box((80, 120, -50), (130, 160, -20), -300.0)])
    meta = {"case": "shallow compact low-density body, 10 m cells", "cell_size_m": h,
            "station_z_m": h / 2, "bodies": bodies, "tests": "fine cells, stations half a cell above"}
    return _case("fine_10m", mesh, _stations_over_centres(mesh, h / 2), model, noise_seed=noise_seed,
                 quick=quick, relative_noise=relative_noise, noise_floor=noise_floor, device=device, meta=meta)


def coarse_1km(*, noise_seed=0, quick=False, relative_noise=0.01, noise_floor=0.001,
               device="cpu") -> SyntheticCase:
    """A +300 kg/m³ body 3-5 km deep under 1 km cells, airborne-like stations 5 km up.

    Mesh: 20 x 20 x 10 cubes of 1 km (x, y in 0..20 km, z in -10..0 km); 400 stations at
    z = 5 km (5 cells above the top) over the cell centres. Truth: +300 kg/m³ in
    x 7..12 km, y 6..11 km, z -5..-3 km (5 x 5 x 2 cells). Tests large cells, high
    stations and a deep body. ``quick``: 8 x 8 x 4 cubes of 2.5 km, stations still at 5 km.

    Parameters
    ----------
    noise_seed, quick, relative_noise, noise_floor, device
        As in :func:`tutorial_topo`.

    Returns
    -------
    SyntheticCase
        ``reference_density = 0``; ``bounds = ±450`` kg/m³.
    """
    h, n = (2500.0, (8, 8, 4)) if quick else (1000.0, (20, 20, 10))
    mesh = _mesh(h, n, (0.0, 0.0, -10000.0))
    model, bodies = _paint(mesh, [_box((7000, 6000, -5000), (12000, 11000, -3000), 300.0)])
    meta = {"case": "deep body under 1 km cells, stations 5 km above", "cell_size_m": h,
            "station_z_m": 5000.0, "bodies": bodies, "tests": "coarse cells, airborne height, deep body"}
    return _case("coarse_1km", mesh, _stations_over_centres(mesh, 5000.0), model, noise_seed=noise_seed,
                 quick=quick, relative_noise=relative_noise, noise_floor=noise_floor, device=device, meta=meta)


def dike(*, noise_seed=0, quick=False, relative_noise=0.01, noise_floor=0.001,
         device="cpu") -> SyntheticCase:
    """A thin +250 kg/m³ dike, one cell wide, dipping 60° towards +x and striking along y.

    Mesh: 32 x 24 x 16 cubes of 25 m (x in 0..800, y in 0..600, z in -400..0 m); 768
    stations 1 m above the top over the cell centres. Truth: in every layer between
    z = -25 and -350 m, the one cell whose x-range holds the dike trace
    x(z) = 250 + (-25 - z) / tan 60° m, for y in 100..500 m (a staircase one cell wide,
    horizontal width 25 m). Tests a thin dipping sheet. ``quick``: 10 x 8 x 5 cubes of
    80 m.

    Parameters
    ----------
    noise_seed, quick, relative_noise, noise_floor, device
        As in :func:`tutorial_topo`.

    Returns
    -------
    SyntheticCase
        ``reference_density = 0``; ``bounds = ±375`` kg/m³.
    """
    h, n = (80.0, (10, 8, 5)) if quick else (25.0, (32, 24, 16))
    mesh = _mesh(h, n, (0.0, 0.0, -n[2] * h))
    model, bodies = _paint(mesh, [{"kind": "dike", "top_x_m": 250.0, "top_z_m": -25.0, "bottom_z_m": -350.0,
                                   "dip_deg": 60.0, "y_m": [100.0, 500.0], "width_m": h,
                                   "contrast_kgm3": 250.0}])
    meta = {"case": "thin dike dipping 60 deg, striking along y", "cell_size_m": h, "station_z_m": 1.0,
            "bodies": bodies, "tests": "thin dipping sheet, one cell wide"}
    return _case("dike", mesh, _stations_over_centres(mesh, 1.0), model, noise_seed=noise_seed, quick=quick,
                 relative_noise=relative_noise, noise_floor=noise_floor, device=device, meta=meta)


def grf_wrap(*, noise_seed=0, quick=False, relative_noise=0.01, noise_floor=0.001,
             device="cpu", field_seed=11) -> SyntheticCase:
    """A smooth field that wraps around the mesh box (FFT-made, periodic).

    Mesh: 24 x 24 x 12 cubes of 500 m (x, y in 0..12 km, z in -6..0 km); 576 stations
    1 m above the top over the cell centres. The field is :func:`grf_field` directly on
    the mesh (λ = 5 km, ν = 1.5, seed ``field_seed``; periodic, so opposite faces of the
    box match), minus its mean, rescaled to max|contrast| = 500 kg/m³; absolute density
    2670 kg/m³ + contrast. Tests the periodic-field assumption of FFT generators.
    ``quick``: 8 x 8 x 4 cubes of 1.5 km.

    Parameters
    ----------
    noise_seed, quick, relative_noise, noise_floor, device
        As in :func:`tutorial_topo`.
    field_seed : int
        Seed of the field realization (fixed for the suite).

    Returns
    -------
    SyntheticCase
        ``reference_density = 2670`` kg/m³ (the field mean); ``bounds`` = the contrast's
        (min, max), kg/m³.
    """
    h, n = (1500.0, (8, 8, 4)) if quick else (500.0, (24, 24, 12))
    model = _smooth(grf_field(n, h, 5000.0, 1.5, seed=field_seed))
    mesh = _mesh(h, n, (0.0, 0.0, -n[2] * h))
    meta = {"case": "periodic FFT Matern field (5 km, nu 1.5) on the mesh", "cell_size_m": h,
            "station_z_m": 1.0, "field_seed": field_seed, "length_scale_m": 5000.0, "nu": 1.5,
            "tests": "smooth field that wraps around the box"}
    return _case("grf_wrap", mesh, _stations_over_centres(mesh, 1.0), model, reference=_FIELD_REFERENCE,
                 bounds=(model.min(), model.max()), noise_seed=noise_seed, quick=quick,
                 relative_noise=relative_noise, noise_floor=noise_floor, device=device, meta=meta)


def _ridges(x, y):
    """Ridge topography (m): two sinusoids, amplitudes 150 and 40 m, striking 30° and 120°."""
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    return 150.0 * np.sin(2 * np.pi * (x * c + y * s) / 700.0) + 40.0 * np.sin(2 * np.pi * (-x * s + y * c) / 500.0)


def ridge_topo_bodies(*, noise_seed=0, quick=False, relative_noise=0.01, noise_floor=0.001,
                      device="cpu") -> SyntheticCase:
    """Rugged ridge topography, stations 2 cells above the ground, three bodies of both signs.

    Mesh: 28 x 28 x 18 cubes of 50 m (x, y in 0..1400 m, z in -700..+200 m); active cells
    below the topography z = 150 sin(2π u / 700 m) + 40 sin(2π v / 500 m), u, v the
    coordinates along 30° and 120° from x (ridges of amplitude 3 cells, relief about
    ±190 m), from ``discretize.utils.active_from_xyz``. 784 stations over the cell
    centres, 100 m (2 cells) above the ground. Truth: three boxes whose tops lie on the
    first cell face at least ``d`` below the ground at the box centre (the actual depth is
    in ``meta["bodies"]``): +300 kg/m³ in x 300..500, y 150..350 m, d = 50 m, 100 m
    thick; -250 kg/m³ in x 600..800, y 600..850 m, d = 150 m, 150 m thick; +400 kg/m³ in
    x 950..1150, y 1000..1200 m, d = 300 m, 150 m thick (cells above the ground stay
    inactive). Tests rugged terrain and bodies at three depths. ``quick``: 8 x 8 x 5
    cubes of 175 m, stations 350 m above the ground.

    Parameters
    ----------
    noise_seed, quick, relative_noise, noise_floor, device
        As in :func:`tutorial_topo`.

    Returns
    -------
    SyntheticCase
        ``reference_density = 0``; ``bounds = ±600`` kg/m³.
    """
    h, n = (175.0, (8, 8, 5)) if quick else (50.0, (28, 28, 18))
    z_top = 200.0
    mesh = _mesh(h, n, (0.0, 0.0, z_top - n[2] * h), _topo_active(_ridges))
    loc = _stations_over_centres(mesh, 0.0)
    loc[:, 2] = _ridges(loc[:, 0], loc[:, 1]) + 2 * h
    bodies = []
    for (x0, x1, y0, y1, depth, thick, rho) in ((300, 500, 150, 350, 50, 100, 300.0),
                                               (600, 800, 600, 850, 150, 150, -250.0),
                                               (950, 1150, 1000, 1200, 300, 150, 400.0)):
        ground = float(_ridges((x0 + x1) / 2, (y0 + y1) / 2))
        top = z_top - h * np.ceil((z_top - (ground - depth)) / h)  # the cell face at or below
        b = _box((x0, y0, top - thick), (x1, y1, top), rho)
        b.update(ground_at_centre_m=ground, depth_of_top_below_ground_m=ground - top)
        bodies.append(b)
    model, bodies = _paint(mesh, bodies)
    meta = {"case": "ridge topography, three bodies of both signs", "cell_size_m": h,
            "topography": "150 sin(2 pi u / 700) + 40 sin(2 pi v / 500) m, u, v along 30 and 120 deg from x",
            "station_height_above_ground_m": 2 * h, "bodies": bodies,
            "tests": "rugged terrain, active cells, bodies at three depths"}
    return _case("ridge_topo_bodies", mesh, loc, model, noise_seed=noise_seed, quick=quick,
                 relative_noise=relative_noise, noise_floor=noise_floor, device=device, meta=meta)


def station_height_3(*, noise_seed=0, quick=False, relative_noise=0.01, noise_floor=0.001,
                     device="cpu") -> SyntheticCase:
    """A +350 kg/m³ block next to a -250 kg/m³ slab, stations 3 cells above the mesh.

    Mesh: the dipping-block mesh (21 x 21 x 11 cubes of 50 m, top at z = 0); 441 stations
    at z = 150 m (3 cells above the top) over the cell centres. Truth: +350 kg/m³ in
    x 175..425, y 325..675, z -200..-50 m (5 x 7 x 3 cells) and a thin -250 kg/m³ slab in
    x 525..825, y 175..825, z -150..-100 m (6 x 13 x 1 cells). Tests stations well above
    the cells and adjacent bodies of both signs. ``quick``: 7 x 7 x 4 cubes of 150 m,
    stations 450 m above.

    Parameters
    ----------
    noise_seed, quick, relative_noise, noise_floor, device
        As in :func:`tutorial_topo`.

    Returns
    -------
    SyntheticCase
        ``reference_density = 0``; ``bounds = ±525`` kg/m³.
    """
    mesh = _block_mesh(quick)
    h = float(mesh.cell_widths[0, 0])
    model, bodies = _paint(mesh, [_box((175, 325, -200), (425, 675, -50), 350.0),
                                  _box((525, 175, -150), (825, 825, -100), -250.0)])
    meta = {"case": "positive block beside a negative slab, stations 3 cells up", "cell_size_m": h,
            "station_z_m": 3 * h, "bodies": bodies, "tests": "station height, adjacent bodies of both signs"}
    return _case("station_height_3", mesh, _stations_over_centres(mesh, 3 * h), model, noise_seed=noise_seed,
                 quick=quick, relative_noise=relative_noise, noise_floor=noise_floor, device=device, meta=meta)


def gempy_layered_body(*, noise_seed=0, quick=False, relative_noise=0.01, noise_floor=0.001,
                       device="cpu"):
    """A three-unit GemPy layered model plus an unmodelled +400 kg/m³ body.

    Mesh: 24 x 24 x 12 cubes of 50 m (x, y in 0..1200 m, z in -600..0 m); 576 stations
    1 m above the top over the cell centres. Geology:
    :func:`gempy_gravinv.cases.geology.layered_geomodel` on the mesh extent (contacts at
    z = -130 and -310 m at the centre, dipping gently), GemPy's lithology at the cell
    centres mapped to the unit contrasts cover -300, middle 0, basement +250 kg/m³. Body:
    +400 kg/m³ added in x 700..900, y 300..500, z -250..-150 m (4 x 4 x 2 cells). The
    truth is the total contrast. Tests layered geology (laterally extensive contrasts)
    with a compact target. ``quick``: 8 x 8 x 4 cubes of 150 m.

    Parameters
    ----------
    noise_seed, quick, relative_noise, noise_floor, device
        As in :func:`tutorial_topo`.

    Returns
    -------
    gempy_gravinv.cases.geology.GeologySyntheticCase
        A :class:`SyntheticCase` with the GeoModel and the two parts of the truth;
        ``reference_density = 0``; ``bounds = ±1.5 max|contrast|`` kg/m³.
    """
    from ..geomodel import gempy_lithology_ids
    from .geology import LAYERED_DENSITIES, LAYERED_UNITS, GeologySyntheticCase, layered_geomodel

    h, n = (150.0, (8, 8, 4)) if quick else (50.0, (24, 24, 12))
    mesh = _mesh(h, n, (0.0, 0.0, -n[2] * h))
    gm = layered_geomodel(extent=tuple(float(v) for v in mesh.extent))
    rho = np.asarray(LAYERED_DENSITIES, dtype=float)
    ids = gempy_lithology_ids(gm, mesh.cell_centers)
    geology = rho[ids - 1]
    body, bodies = _paint(mesh, [_box((700, 300, -250), (900, 500, -150), 400.0)])
    meta = {"case": "GemPy three-unit layered model + unmodelled body", "cell_size_m": h, "station_z_m": 1.0,
            "unit_names": list(LAYERED_UNITS), "unit_densities_kgm3": rho.tolist(), "bodies": bodies,
            "tests": "layered geology with a compact target"}
    extra = dict(geo_model=gm, unit_names=LAYERED_UNITS, unit_densities=rho, geology_model=geology,
                 body_model=body, lithology=ids)
    return _case("gempy_layered_body", mesh, _stations_over_centres(mesh, 1.0), geology + body,
                 noise_seed=noise_seed, quick=quick, relative_noise=relative_noise, noise_floor=noise_floor,
                 device=device, meta=meta, cls=GeologySyntheticCase, extra=extra)


#: case name -> builder (``builder(noise_seed=..., quick=...) -> SyntheticCase``)
SUITE = {f.__name__: f for f in (tutorial_topo, two_bodies, deep_body, matern_nowrap, fine_10m, coarse_1km,
                                 dike, grf_wrap, ridge_topo_bodies, station_height_3, gempy_layered_body)}


def build_case(name: str, *, noise_seed=0, quick: bool = False, **options) -> SyntheticCase:
    """Build the suite case ``name`` (see :data:`SUITE`).

    Parameters
    ----------
    name : str
        A key of :data:`SUITE`.
    noise_seed : int or None
        Seed of the data noise.
    quick : bool
        The tiny smoke-test version.
    **options
        Other builder arguments (``relative_noise``, ``noise_floor``, ``device``).

    Returns
    -------
    SyntheticCase
    """
    if name not in SUITE:
        raise ValueError(f"unknown suite case {name!r}; choose from {', '.join(SUITE)}")
    return SUITE[name](noise_seed=noise_seed, quick=quick, **options)
