"""Random geometries for benchmarking: cases drawn from a seed, never looked at before a run.

The fixed suite (:mod:`gempy_gravinv.cases.suite`) has eleven cases; settings chosen
while looking at them can fit them. :func:`random_case` draws a new problem from a
geometry seed, across the ranges users meet:

- cubic cells of 10 m to 1 km (log-uniform), 14–24 cells along x and y, 8–14 layers;
- flat ground, or a Gaussian hill or valley of 1–3 cells relief with the cells above it
  inactive (``discretize.utils.active_from_xyz``);
- stations 0.55–5 cells above the ground (uniform in cells), either on a grid over the cell
  centres (every cell or every second one) or scattered at random (150–450 stations)
  one cell inside the mesh's sides;
- one to three bodies, each a box (2–6 cells wide, 1–4 cells thick, its top 0–half the
  layers below the ground) or, one time in four, a one-cell-wide dike dipping 30–90°;
  contrasts of either sign, 100–500 kg/m³; later bodies overwrite earlier ones.

The data follow the suite's recipe (float64 prism g_z, σ = 1 % of std(g_z) + 0.1 % of
max|g_z|, seeded Gaussian noise) and ``bounds`` are ±1.5 x max|true contrast|. The
geometry seed and the noise seed are separate: the same geometry can be run with several
noise draws.

Conventions: metres, z up; density contrast in kg/m³; g_z in mGal, positive downward.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_int
from .suite import _box, _case, _mesh, _paint, _topo_active
from .synthetic import SyntheticCase

__all__ = ["random_case", "RANDOM_PREFIX", "parse_random_name"]

#: case names of this family are ``RANDOM_PREFIX + str(geometry_seed)``
RANDOM_PREFIX = "random_"


def parse_random_name(name: str) -> int | None:
    """The geometry seed of a case name ``random_<seed>``, or None for any other name."""
    if not name.startswith(RANDOM_PREFIX):
        return None
    tail = name[len(RANDOM_PREFIX):]
    if not tail.isdigit():
        raise ValueError(f"a random case is named {RANDOM_PREFIX}<seed> with a non-negative integer seed, "
                         f"got {name!r}")
    return int(tail)


def _ground(rng, h: float, extent_xy: tuple[float, float, float, float]):
    """``(topo(x, y) -> z m or None, description)``: flat ground at z = 0, or a hill / valley."""
    if rng.random() < 0.5:
        return None, "flat ground at z = 0 m"
    x0, x1, y0, y1 = extent_xy
    amp = float(rng.uniform(1.0, 3.0) * h * rng.choice([-1.0, 1.0]))
    cx = float(rng.uniform(x0 + 0.25 * (x1 - x0), x1 - 0.25 * (x1 - x0)))
    cy = float(rng.uniform(y0 + 0.25 * (y1 - y0), y1 - 0.25 * (y1 - y0)))
    width = float(rng.uniform(0.2, 0.5) * max(x1 - x0, y1 - y0))

    def topo(x, y):
        return amp * np.exp(-((np.asarray(x) - cx) ** 2 + (np.asarray(y) - cy) ** 2) / width**2)

    return topo, (f"{'hill' if amp > 0 else 'valley'}: z = {amp:.4g} exp(-((x - {cx:.4g})² + (y - {cy:.4g})²) "
                  f"/ {width:.4g}²) m")


def _stations(rng, h: float, n: tuple[int, int, int], origin, topo, height: float) -> tuple[np.ndarray, str]:
    """Station locations (m) ``height`` above the ground, on a grid over cell centres or scattered."""
    cx = origin[0] + h * (np.arange(n[0]) + 0.5)
    cy = origin[1] + h * (np.arange(n[1]) + 0.5)
    if rng.random() < 0.6:
        step = int(rng.integers(1, 3))
        xx, yy = np.meshgrid(cx[::step], cy[::step])
        xy = np.column_stack([xx.ravel(), yy.ravel()])
        layout = f"grid over the cell centres, every {'cell' if step == 1 else 'second cell'}"
    else:
        k = int(rng.integers(150, 451))
        lo = np.array([origin[0] + h, origin[1] + h])
        hi = np.array([origin[0] + (n[0] - 1) * h, origin[1] + (n[1] - 1) * h])
        xy = lo + (hi - lo) * rng.random((k, 2))
        layout = f"{k} stations scattered at random, one cell inside the sides"
    ground = np.zeros(len(xy)) if topo is None else topo(xy[:, 0], xy[:, 1])
    return np.column_stack([xy, ground + height]), layout


def _body(rng, h: float, n: tuple[int, int, int], origin, topo) -> dict:
    """One box or dike on cell faces, its top below the ground at its centre."""
    contrast = float(rng.choice([-1.0, 1.0]) * rng.uniform(100.0, 500.0))
    z_top_mesh = origin[2] + n[2] * h
    if rng.random() < 0.75:
        sx, sy = (int(v) for v in rng.integers(2, 7, size=2))
        sz = int(rng.integers(1, 5))
        ix = int(rng.integers(1, max(2, n[0] - sx)))
        iy = int(rng.integers(1, max(2, n[1] - sy)))
        x0, y0 = origin[0] + ix * h, origin[1] + iy * h
        xc, yc = x0 + sx * h / 2, y0 + sy * h / 2
        ground = 0.0 if topo is None else float(topo(xc, yc))
        depth = int(rng.integers(0, n[2] // 2 + 1)) * h
        top = z_top_mesh - h * np.ceil((z_top_mesh - (ground - depth)) / h - 1e-9)  # a cell face at or below
        bottom = max(top - sz * h, origin[2] + h)
        b = _box((x0, y0, bottom), (x0 + sx * h, y0 + sy * h, top), contrast)
        b.update(depth_of_top_below_ground_m=ground - top)
        return b
    dip = float(rng.uniform(30.0, 90.0))
    top_x = float(origin[0] + h * rng.uniform(2.0, n[0] - 2.0))
    ground = 0.0 if topo is None else float(topo(top_x, origin[1] + n[1] * h / 2))
    top_z = ground - h * float(rng.integers(1, 4))
    bottom_z = max(top_z - h * float(rng.integers(4, max(5, n[2] - 1))), origin[2] + h)
    ly = int(rng.integers(4, max(5, n[1] - 2)))
    iy = int(rng.integers(1, max(2, n[1] - ly)))
    y0 = origin[1] + iy * h
    return {"kind": "dike", "top_x_m": top_x, "top_z_m": top_z, "bottom_z_m": bottom_z, "dip_deg": dip,
            "y_m": [y0, y0 + ly * h], "width_m": h, "contrast_kgm3": contrast}


def random_case(geometry_seed: int, *, noise_seed: int = 0, relative_noise: float = 0.01,
                noise_floor: float = 0.001, device: str = "cpu", quick: bool = False) -> SyntheticCase:
    """A synthetic case whose geometry is drawn from ``geometry_seed`` (see the module text).

    Parameters
    ----------
    geometry_seed : int
        Seed of the geometry (cell size, mesh, ground, stations, bodies); ``numpy``'s
        ``default_rng``.
    noise_seed : int
        Seed of the Gaussian data noise.
    relative_noise, noise_floor : float
        σ = relative_noise · std(g_z) + noise_floor · max|g_z| (mGal).
    device : str
        Torch device of the clean forward.
    quick : bool
        At most 8 x 8 x 5 cells of the same physical extent (smoke tests).

    Returns
    -------
    SyntheticCase
        Named ``random_<geometry_seed>``; ``reference_density = 0``; ``meta`` holds the
        drawn geometry (``cell_size_m``, ``shape``, ``ground``, ``station_height_cells``,
        ``station_layout``, ``bodies``).
    """
    geometry_seed = check_int(geometry_seed, name="geometry_seed", minimum=0)
    rng = np.random.default_rng([geometry_seed, 0x9A17])
    h = float(f"{10 ** rng.uniform(1.0, 3.0):.2g}")
    n = (int(rng.integers(14, 25)), int(rng.integers(14, 25)), int(rng.integers(8, 15)))
    origin_xy = (0.0, 0.0)
    topo, ground_text = _ground(rng, h, (0.0, n[0] * h, 0.0, n[1] * h))
    top = 0.0 if topo is None else h * np.ceil(max(0.0, float(topo(0.0, 0.0)), _peak(topo, n, h)) / h)
    origin = (*origin_xy, float(top - n[2] * h))
    height_cells = float(rng.uniform(0.55, 5.0))
    loc, layout = _stations(rng, h, n, origin, topo, height_cells * h)
    bodies = [_body(rng, h, n, origin, topo) for _ in range(int(rng.integers(1, 4)))]
    if quick:  # the same extent on a coarse mesh
        f = int(np.ceil(max(n) / 8))
        n_mesh, h_mesh = tuple(max(2, int(np.ceil(k / f))) for k in n), h * f
        n_mesh = (n_mesh[0], n_mesh[1], min(n_mesh[2], 5))
        origin = (origin[0], origin[1], float(top - n_mesh[2] * h_mesh))
        loc = loc[:: max(1, len(loc) // 60)]
        loc[:, 2] = (0.0 if topo is None else topo(loc[:, 0], loc[:, 1])) + max(height_cells * h, 0.55 * h_mesh)
    else:
        n_mesh, h_mesh = n, h
    mesh = _mesh(h_mesh, n_mesh, origin, None if topo is None else _topo_active(topo))
    model, info = _paint(mesh, bodies)
    if not np.any(model):
        raise RuntimeError(f"random case {geometry_seed}: no body cell is active")  # _paint keeps a cell per body
    meta = {"case": f"random geometry {geometry_seed}", "geometry_seed": geometry_seed, "cell_size_m": h_mesh,
            "ground": ground_text, "station_height_cells": height_cells,
            "station_height_above_ground_m": height_cells * h, "station_layout": layout, "bodies": info,
            "tests": "a geometry drawn at random: cell size, ground, stations and bodies"}
    return _case(f"{RANDOM_PREFIX}{geometry_seed}", mesh, loc, model, noise_seed=noise_seed, quick=quick,
                 relative_noise=relative_noise, noise_floor=noise_floor, device=device, meta=meta)


def _peak(topo, n: tuple[int, int, int], h: float) -> float:
    """Highest ground (m) over the mesh's horizontal extent, on a half-cell grid."""
    xx, yy = np.meshgrid(np.arange(0.0, n[0] * h + h / 4, h / 2), np.arange(0.0, n[1] * h + h / 4, h / 2))
    return float(np.max(topo(xx, yy)))
