"""The INR default and SimPEG's recipes on graded meshes: padding cells and an octree.

Usage::

    python benchmarks/graded_meshes.py [--cases pad_two,pad_40,pad_deep,tree_two,tree_one,field_flat,field_pad,
                                               tree_field]
                                       [--seeds 0,1] [--methods inr,simpeg_l2,simpeg_sparse] [--perturb K]
                                       [--net-seeds K] [--inr-option FIELD=VALUE ...]

The suite (``benchmarks/suite.py``) uses uniform meshes; SimPEG users build graded ones:
a tensor mesh with padding cells growing by 1.3 toward the sides and the bottom, or an
octree refined around the stations and the ground (``discretize.TreeMesh``), where cell
volumes differ by factors of 10 to 1000. Every case has random station positions (5 m
above flat ground, drawn with the seed), g_z from our prism forward with noise of 2% +
0.005 mGal, bounds ±450 kg/m³, and the methods see the same data:

- ``pad_two``: 20 x 20 x 12 core cells of 50 m plus padding; a +250 kg/m³ block at
  100–250 m depth and a −250 kg/m³ block at 300–450 m; 300 stations.
- ``pad_40``: the same mesh, the +250 kg/m³ block alone, 40 stations.
- ``pad_deep``: the same mesh, a +300 kg/m³ block at 350–500 m depth, 300 stations.
- ``tree_two``: an octree with 25 m core cells to 500 m depth, padding to 600 m around;
  a +300 kg/m³ block at 100–250 m and a −250 kg/m³ block at 200–350 m; 400 stations.
- ``tree_one``: the same octree, a +300 kg/m³ block at 150–300 m; 250 stations.
- ``field_flat``: the 20 x 20 x 12 core of ``pad_two`` without padding, filled with a
  smooth Matérn field (ℓ 150 m, ν 1.5, largest |contrast| 200 kg/m³) made by random
  Fourier features, so it wraps around no box; 300 stations.
- ``field_pad``: the same field on ``pad_two``'s padded mesh (padding cells included).
- ``tree_field``: the same field on the octree of ``tree_one``; 300 stations.

Prints Pearson r against the true model and the wall time of each method (one torch
thread, the same process). ``--perturb K`` also runs every method on K copies of the
data perturbed by 1e-6 of their value and prints the range of r over the K + 1 runs;
``--net-seeds K`` also runs the INR with network seeds 1 .. K - 1 (``INRConfig.seed``) and
prints the range and the mean of r over the seeds: the spread of one run's result.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

BOUNDS = (-450.0, 450.0)


def _box(lo, hi, value):
    return lambda c: np.where(np.all((c >= lo) & (c <= hi), axis=1), value, 0.0)


def _padded():
    from discretize import TensorMesh

    h = [(50.0, 5, -1.3), (50.0, 20), (50.0, 5, 1.3)]
    return TensorMesh([h, h, [(50.0, 5, -1.3), (50.0, 12)]], "CCN"), None


def _uniform():
    from discretize import TensorMesh

    return TensorMesh([[(50.0, 20)], [(50.0, 20)], [(50.0, 12)]], "CCN"), None


def _smooth_field(c, ell: float = 150.0, nu: float = 1.5, seed: int = 1, waves: int = 4000):
    """A stationary Matérn field (ℓ m, ν) at the points ``c`` by random Fourier features: on no lattice, so it
    neither wraps around any box nor depends on the mesh; mean 0 over the points, largest |value| 200 kg/m³."""
    from gempy_gravinv.cases.random_cases import matern_rff_field

    return matern_rff_field(c, ell, nu, seed, waves)


def _octree():
    from discretize.utils import active_from_xyz, mesh_builder_xyz

    xx, yy = np.meshgrid(np.linspace(-800, 800, 41), np.linspace(-800, 800, 41))
    ground = np.column_stack([xx.ravel(), yy.ravel(), np.zeros(xx.size)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        tm = mesh_builder_xyz(ground, [25.0] * 3, depth_core=500.0,
                              padding_distance=[[600, 600], [600, 600], [600, 0]], mesh_type="tree")
    tm.refine_surface(ground, padding_cells_by_level=[0, 2, 2], finalize=False)
    rng = np.random.default_rng(5)
    pts = np.column_stack([rng.uniform(-500, 500, 400), rng.uniform(-500, 500, 400), np.full(400, 5.0)])
    tm.refine_points(pts, level=-1, padding_cells_by_level=[2, 2], finalize=True)
    return tm, active_from_xyz(tm, ground)


CASES = {
    "pad_two": (_padded, 300, lambda c: _box((-150, -100, -250), (100, 150, -100), 250.0)(c)
                + _box((150, -400, -450), (350, -200, -300), -250.0)(c)),
    "pad_40": (_padded, 40, _box((-150, -100, -250), (100, 150, -100), 250.0)),
    "pad_deep": (_padded, 300, _box((-100, -100, -500), (150, 150, -350), 300.0)),
    "tree_two": (_octree, 400, lambda c: _box((-250, -200, -250), (-50, 0, -100), 300.0)(c)
                 + _box((100, 100, -350), (300, 300, -200), -250.0)(c)),
    "tree_one": (_octree, 250, _box((-100, -150, -300), (150, 100, -150), 300.0)),
    "field_flat": (_uniform, 300, _smooth_field),
    "field_pad": (_padded, 300, _smooth_field),
    "tree_field": (_octree, 300, _smooth_field),
}


def build(name: str, seed: int):
    """(survey, PrismMesh, true model kg/m³) of case ``name`` with station/noise seed ``seed``."""
    import gempy_gravinv as gg
    from gempy_gravinv._forward import forward_gz

    make_mesh, n_st, truth = CASES[name]
    tm, active = make_mesh()
    mesh = gg.PrismMesh.from_discretize(tm, active_cells=active)
    rng = np.random.default_rng(100 + seed)
    st = np.column_stack([rng.uniform(-450, 450, n_st), rng.uniform(-450, 450, n_st), np.full(n_st, 5.0)])
    model = truth(mesh.cell_centers)
    g = forward_gz(mesh, st, model)
    std = 0.02 * np.abs(g) + 0.005
    return gg.Survey(st, g + np.random.default_rng(seed).normal(0.0, std), std), mesh, model


def run(method: str, survey, mesh, model, seed: int = 0, inr_options: dict | None = None) -> tuple[float, float]:
    """(Pearson r, wall s) of ``method`` on the case (``seed``: the INR's network seed).

    ``inr_options``: INRConfig fields set on the default (e.g. ``{"depth_from": "stations"}``).
    """
    import gempy_gravinv as gg
    from gempy_gravinv.metrics import pearson_r
    from gempy_gravinv.simpeg import run_inversion

    t0 = time.perf_counter()
    if method == "inr":
        pred = gg.invert_inr(survey, mesh, None, bounds=BOUNDS, progress=False, seed=seed,
                             **(inr_options or {})).model
    else:
        pred = run_inversion(survey, mesh, kind=method.split("_")[1], reference=0.0, bounds=BOUNDS,
                             active_cells=mesh.active_cells, seed=0).model
    return pearson_r(pred, model), time.perf_counter() - t0


def _perturbed(survey, k: int):
    """``survey`` with g_z scaled by ``1 + 1e-6 ε`` (ε ~ N(0, 1) per station, seed ``k``): the same data to any
    practical purpose (the noise is 2% + 0.005 mGal), another rounding."""
    eps = np.random.default_rng(k).standard_normal(survey.n_data)
    return survey.with_data(survey.gz * (1.0 + 1e-6 * eps), survey.std)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--methods", default="inr,simpeg_l2,simpeg_sparse")
    ap.add_argument("--perturb", type=int, default=0, metavar="K",
                    help="also run each method on K copies of the data scaled by 1 + 1e-6 x N(0, 1) per "
                         "station (far below the noise) and print the range of r: the sensitivity to rounding")
    ap.add_argument("--net-seeds", type=int, default=1, metavar="K",
                    help="run the INR with network seeds 0 .. K-1 and print the range and mean of r")
    ap.add_argument("--inr-option", action="append", default=[], metavar="FIELD=VALUE",
                    help="an INRConfig field set on the INR default (a Python literal or a bare word); repeatable")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from suite import field_overrides  # benchmarks/ is the script's directory

    opts = field_overrides(args.inr_option, "graded_meshes.py --inr-option")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    extra = f" {'r range':>14s}" if args.perturb else ""
    extra += f" {'seeds: range, mean':>22s}" if args.net_seeds > 1 else ""
    print(f"{'case':10s} {'seed':>4s} {'cells':>6s} " + " ".join(f"{m + ' r':>16s} {'s':>5s}{extra}" for m in methods))
    for name in [c.strip() for c in args.cases.split(",") if c.strip()]:
        for seed in (int(s) for s in args.seeds.split(",")):
            survey, mesh, model = build(name, seed)
            cols = []
            for m in methods:
                r, t = run(m, survey, mesh, model, inr_options=opts)
                cols.append(f"{r:16.3f} {t:5.1f}")
                if args.perturb:
                    rs = [r] + [run(m, _perturbed(survey, k), mesh, model, inr_options=opts)[0]
                                for k in range(1, args.perturb + 1)]
                    cols.append(f"[{min(rs):.3f}, {max(rs):.3f}]")
                if args.net_seeds > 1:
                    rs = [r] + [run(m, survey, mesh, model, k, opts)[0] if m == "inr" else r
                                for k in range(1, args.net_seeds)]
                    cols.append(f"[{min(rs):.3f}, {max(rs):.3f}] {np.mean(rs):.3f}")
            print(f"{name:10s} {seed:4d} {mesh.n_cells:6d} " + " ".join(cols), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
