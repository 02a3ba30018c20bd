"""Fields or bodies on graded meshes (padding, octrees, topography), drawn at random: the INR default vs SimPEG.

Usage::

    python benchmarks/padded_fields.py [--count K] [--from S] [--methods inr,simpeg_l2,simpeg_sparse]
                                       [--mesh tensor|octree|topography] [--density field|bodies]
                                       [--station-fraction 0.9] [--every-cell] [--threads 2] [--json F]

Methods: ``inr`` (the default), ``inr_compact`` / ``inr_smooth`` (the default with the
prior set by the user), ``simpeg_l2``, ``simpeg_sparse``. ``--every-cell`` trains the
INR's compact model on every cell (``compact_on_core=False``) instead of on the core
where the core extends a margin past the stations.

Geometry seed ``S`` draws a mesh as SimPEG users pad theirs: cubic core cells of 10, 50 or
200 m, 14–20 core cells along x and y and 8–12 layers, and 3–10 padding cells growing by
1.2–1.5 on each side and below. The density is a Matérn field (ν 0.5, 1.5 or 2.5, length
1.5–6 core cells, log-uniform) made by random Fourier features at every cell centre,
padding included, so it neither wraps around any box nor follows the mesh; its mean is
removed and its largest |value| is 200 kg/m³. 150–400 stations scattered over the middle
90% of the core's width (``--station-fraction``), a tenth of a cell above its top; noise
of σ = 1% of std(g_z) + 0.1% of max|g_z| (the suite's recipe), drawn independently at
every station; bounds ±300 kg/m³.

``--mesh octree`` draws an octree instead (``discretize.TreeMesh`` by
``mesh_builder_xyz``): the same core cells, core and field recipe; padding 0.5–1.5 core
widths on each side and below; the finest cells along the flat ground (0–1 extra cells
per level: 0, 1–2, 1–3) and around the stations (1–3 per level), coarser beyond; the
stations a tenth of a cell above the top of the active cells.

``--mesh topography`` draws the same kind of octree under a Gaussian hill or valley of
1–4 core cells (width 0.2–0.5 of the core's half-width), refined along the ground
(padding 1, 1, 2 cells per level) and around the stations (1, 2), with cells above the
ground inactive (``discretize.utils.active_from_xyz``); each station a tenth of a cell
above the highest active cell of its column.

``--density bodies`` replaces the field by one or two boxes of 2–5 core cells per side,
±150–300 kg/m³, their centres within 0.3 of the core's width of its centre and 1.5–5
cells plus half their height below z = 0, on the cells whose centres they hold (a draw
whose boxes hold no cell centre, between an octree's coarse cells, is drawn again).

Every method runs in this process on the same data: r over all cells, r over the core's
cells, wall time and the ratio INR / SimPEG sparse, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

BOUNDS = (-300.0, 300.0)


def _octree(rng, h: float, nc: int, nz: int, st: np.ndarray):
    """An octree of ``h`` m core cells refined along flat ground and around the stations ``st`` (n, 3)."""
    import warnings

    from discretize.utils import active_from_xyz, mesh_builder_xyz

    import gempy_gravinv as gg

    half = nc * h / 2
    xx, yy = np.meshgrid(np.linspace(-half, half, nc + 1), np.linspace(-half, half, nc + 1))
    ground = np.column_stack([xx.ravel(), yy.ravel(), np.zeros(xx.size)])
    pad = float(rng.uniform(0.5, 1.5)) * 2 * half
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        tree = mesh_builder_xyz(ground, [h] * 3, depth_core=nz * h, padding_distance=[[pad, pad]] * 3,
                                mesh_type="tree")
    tree.refine_surface(ground, padding_cells_by_level=[int(rng.integers(0, 2)), int(rng.integers(1, 3)),
                                                        int(rng.integers(1, 4))], finalize=False)
    tree.refine_points(np.c_[st[:, :2], np.zeros(len(st))], level=-1,
                       padding_cells_by_level=[int(rng.integers(1, 4)), int(rng.integers(1, 4))], finalize=True)
    mesh = gg.PrismMesh.from_discretize(tree, active_cells=active_from_xyz(tree, ground))
    st[:, 2] = mesh.extent[5] + 0.1 * h
    return mesh, dict(padding_m=round(pad, 1))


def _topography_octree(rng, h: float, nc: int, nz: int, st: np.ndarray):
    """An octree of ``h`` m core cells under a Gaussian hill or valley, refined along it and around ``st`` (n, 3)."""
    import warnings

    from discretize.utils import active_from_xyz, mesh_builder_xyz
    from scipy.interpolate import griddata

    import gempy_gravinv as gg

    half = nc * h / 2
    xx, yy = np.meshgrid(np.linspace(-half, half, 2 * nc + 1), np.linspace(-half, half, 2 * nc + 1))
    amp = float(rng.uniform(1, 4)) * h * float(rng.choice([-1.0, 1.0]))
    width = float(rng.uniform(0.2, 0.5)) * half
    topo = np.column_stack([xx.ravel(), yy.ravel(), (amp * np.exp(-(xx**2 + yy**2) / (2 * width**2))).ravel()])
    pad = float(rng.uniform(0.5, 1.5)) * 2 * half
    st[:, 2] = griddata(topo[:, :2], topo[:, 2], st[:, :2], method="linear") + 0.5 * h
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        tree = mesh_builder_xyz(topo, [h] * 3, depth_core=nz * h, padding_distance=[[pad, pad]] * 3,
                                mesh_type="tree")
    tree.refine_surface(topo, padding_cells_by_level=[1, 1, 2], finalize=False)
    tree.refine_points(st, level=-1, padding_cells_by_level=[1, 2], finalize=True)
    mesh = gg.PrismMesh.from_discretize(tree, active_cells=active_from_xyz(tree, topo))
    b = mesh.bounds
    for i, (x, y) in enumerate(st[:, :2]):
        col = (b[:, 0] <= x) & (b[:, 1] >= x) & (b[:, 2] <= y) & (b[:, 3] >= y)
        st[i, 2] = b[col, 5].max() + 0.1 * h
    return mesh, dict(padding_m=round(pad, 1), relief_m=round(amp, 1))


def _bodies(rng, c: np.ndarray, h: float, nc: int) -> np.ndarray:
    """One or two boxes of 2–5 cells of ``h`` m per side, ±150–300 kg/m³, at the cell centres ``c`` (n, 3)."""
    model = np.zeros(len(c))
    for _ in range(int(rng.integers(1, 3))):
        size = rng.uniform(2, 5, 3) * h
        centre = np.r_[rng.uniform(-0.3, 0.3, 2) * nc * h, -rng.uniform(1.5, 5) * h - size[2] / 2]
        model[np.all(np.abs(c - centre) <= size / 2, 1)] += rng.choice([-1.0, 1.0]) * rng.uniform(150, 300)
    return model


def build(seed: int, kind: str = "tensor", density: str = "field", station_fraction: float = 0.9):
    """``(survey, PrismMesh, true model kg/m³, core mask, geometry dict)`` of geometry seed ``seed``.

    ``kind``: ``"tensor"`` (a padded tensor mesh), ``"octree"`` or ``"topography"`` (an
    octree under a hill or valley). ``density``: ``"field"`` (a Matérn field) or
    ``"bodies"`` (one or two boxes). Noise: an independent draw per station.
    """
    from discretize import TensorMesh

    import gempy_gravinv as gg
    from gempy_gravinv._forward import forward_gz
    from gempy_gravinv.cases.random_cases import matern_rff_field

    rng = np.random.default_rng(seed)
    h = float(rng.choice([10.0, 50.0, 200.0]))
    nc, nz, npad = int(rng.integers(14, 21)), int(rng.integers(8, 13)), int(rng.integers(3, 11))
    grow = float(rng.uniform(1.2, 1.5))
    ell, nu = h * float(np.exp(rng.uniform(np.log(1.5), np.log(6.0)))), float(rng.choice([0.5, 1.5, 2.5]))

    def stations():
        half, n = 0.5 * station_fraction * nc * h, int(rng.integers(150, 401))
        return np.column_stack([rng.uniform(-half, half, n), rng.uniform(-half, half, n), np.full(n, 0.1 * h)])

    if kind in ("octree", "topography"):  # the stations first: the octree is refined around them
        st = stations()
        mesh, extra = (_octree if kind == "octree" else _topography_octree)(rng, h, nc, nz, st)
        npad, grow = 0, 0.0
    else:
        hx = [(h, npad, -grow), (h, nc), (h, npad, grow)]
        mesh, extra = gg.PrismMesh.from_discretize(TensorMesh([hx, hx, [(h, npad, -grow), (h, nz)]], "CCN")), {}
        st = None
    if density == "bodies":
        model = _bodies(rng, mesh.cell_centers, h, nc)
        while not np.any(model):  # every box between the centres of an octree's coarse cells: draw again
            model = _bodies(rng, mesh.cell_centers, h, nc)
    else:
        model = matern_rff_field(mesh.cell_centers, ell, nu, rng)
    st = stations() if st is None else st
    n = len(st)
    g = forward_gz(mesh, st, model)
    std = 0.01 * np.std(g) + 0.001 * np.abs(g).max()
    survey = gg.Survey(st, g + rng.normal(0.0, std, n), np.full(n, std))
    c = mesh.cell_centers
    core = np.all(np.abs(c[:, :2]) <= nc * h / 2, 1) & (c[:, 2] >= -nz * h)
    geometry = dict(mesh=kind, density=density, cells=mesh.n_cells, cell_m=h, core_cells=[nc, nc, nz],
                    padding_cells=npad, growth=round(grow, 3), length_m=round(ell, 1), nu=nu, stations=n, **extra)
    return survey, mesh, model, core, geometry


def run(method: str, survey, mesh, every_cell: bool = False):
    """``(model kg/m³, wall s, note)`` of ``method`` on the data."""
    import gempy_gravinv as gg
    from gempy_gravinv.simpeg import run_inversion

    t0 = time.perf_counter()
    if method.startswith("inr"):  # inr: the default; inr_compact / inr_smooth: the prior set by the user
        prior = method.partition("_")[2] or None
        res = gg.invert_inr(survey, mesh, None, bounds=BOUNDS, progress=False, prior=prior,
                            compact_on_core=not every_cell)
        lat = (res.prior_selection or {}).get("lattice") or {}
        note = f"{res.prior_selection['prior']} {lat.get('box', '')}".strip()
        model = res.model
    else:
        model = run_inversion(survey, mesh, kind=method.split("_")[1], reference=0.0, bounds=BOUNDS, seed=0).model
        note = ""
    return np.asarray(model), time.perf_counter() - t0, note


def main(argv=None) -> int:
    from gempy_gravinv.metrics import pearson_r

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--from", dest="start", type=int, default=11000)
    ap.add_argument("--methods", default="inr,simpeg_l2,simpeg_sparse")
    ap.add_argument("--mesh", default="tensor", choices=("tensor", "octree", "topography"))
    ap.add_argument("--density", default="field", choices=("field", "bodies"))
    ap.add_argument("--station-fraction", type=float, default=0.9,
                    help="the stations' spread as a fraction of the core's width (0.9: over the middle 90%%)")
    ap.add_argument("--every-cell", action="store_true",
                    help="train the INR's compact model on every cell, not on the core")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    rows = []
    print(f"{'seed':>6s} {'cell':>5s} {'pad':>7s} {'ℓ m':>6s} {'ν':>3s} " + " ".join(f"{m + ' r (core)':>26s} {'s':>5s}"
                                                                                    for m in methods))
    for seed in range(args.start, args.start + args.count):
        survey, mesh, model, core, geo = build(seed, args.mesh, args.density, args.station_fraction)
        cols, row = [], dict(seed=seed, geometry=geo)
        for m in methods:
            pred, wall, note = run(m, survey, mesh, args.every_cell)
            r, rc = pearson_r(pred, model), pearson_r(pred[core], model[core])
            row[m] = dict(r=r, r_core=rc, wall_s=wall, note=note)
            cols.append(f"{r:12.3f} ({rc:.3f}) {note:6s} {wall:5.1f}")
        if "inr" in row and "simpeg_sparse" in row:
            cols.append(f"INR/sparse {row['inr']['wall_s'] / row['simpeg_sparse']['wall_s']:.2f}")
        pad = f"{geo['padding_m']:7.0f}" if args.mesh != "tensor" else f"{geo['padding_cells']:3d}x{geo['growth']:.2f}"
        print(f"{seed:6d} {geo['cell_m']:5.0f} {pad} {geo['length_m']:6.0f} "
              f"{geo['nu']:3.1f} " + " ".join(cols), flush=True)
        rows.append(row)
    if "inr" in methods and "simpeg_l2" in methods:
        best = [max(r[m]["r"] for m in methods if m.startswith("simpeg")) for r in rows]
        won = sum(r["inr"]["r"] >= b for r, b in zip(rows, best))
        within = sum(r["inr"]["r"] >= r["simpeg_l2"]["r"] - 0.05 for r in rows)
        print(f"INR r >= both SimPEG recipes': {won}/{len(rows)}; INR r >= SimPEG L2 r - 0.05: {within}/{len(rows)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
