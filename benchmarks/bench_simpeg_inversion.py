"""The same SimPEG inversion on our simulation and on SimPEG's own, side by side.

Prints, for one problem on this machine, the time of each simulation building its
sensitivity, of ``dpred``, ``Jvec``, ``Jtvec`` and ``getJtJdiag``, and of a whole L2
(and optionally sparse) inversion, with the ratios SimPEG / ours (> 1: ours faster), and
the relative difference of the recovered models.

Usage::

    python benchmarks/bench_simpeg_inversion.py                 # dipping block (441 x 4851)
    python benchmarks/bench_simpeg_inversion.py --n 40 --nz 20 --sparse
    python benchmarks/bench_simpeg_inversion.py --device cuda   # our simulation on a GPU

Both simulations store float64 sensitivities ("ram"); SimPEG uses its "choclo" engine
(node sharing, numba-parallel). Timings on a shared machine are noisy: rerun, and
compare ratios taken in the same run only. ``bench_simpeg.py`` times the products alone on
SimPEG's tutorial meshes.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def _best(fn, repeat: int) -> float:
    """Median wall time of ``repeat`` calls (the median is steadier than the minimum on a
    shared machine)."""
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=21, help="cells per horizontal axis (stations: n x n)")
    p.add_argument("--nz", type=int, default=11, help="layers")
    p.add_argument("--h", type=float, default=50.0, help="cell size, m")
    p.add_argument("--repeat", type=int, default=9, help="calls per product timing (median)")
    p.add_argument("--sparse", action="store_true", help="also time a sparse (IRLS) inversion")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default=None, help="write the numbers to this file")
    args = p.parse_args(argv)

    import discretize
    import scipy.sparse as sp
    import torch

    from gempy_gravinv import GravityOperator, PrismMesh, Survey
    from gempy_gravinv.simpeg import run_inversion
    from gempy_gravinv.simpeg._inversion import make_simulation

    n, nz, h = args.n, args.nz, args.h
    mesh = discretize.TensorMesh([[(h, n)], [(h, n)], [(h, nz)]], origin=(-h / 2, -h / 2, -h * nz))
    cc = mesh.cell_centers
    L = (n - 1) * h
    true = np.where((np.abs(cc[:, 0] - L / 2) < L / 6) & (np.abs(cc[:, 1] - L / 2) < L / 4)
                    & (cc[:, 2] < -h) & (cc[:, 2] > -0.6 * h * nz), 400.0, 0.0)
    xs = np.arange(n) * h
    X, Y = np.meshgrid(xs, xs)
    loc = np.c_[X.ravel(), Y.ravel(), np.ones(X.size)]
    gz = GravityOperator(PrismMesh.from_discretize(mesh), Survey(loc), device="cpu").forward(
        torch.as_tensor(true)).numpy()
    std = np.full(gz.shape, 0.01 * gz.std())
    survey = Survey(loc, gz=gz + np.random.default_rng(0).normal(0, std), std=std)
    print(f"problem: {survey.n_data} stations x {mesh.n_cells} cells; cpu cores {os.cpu_count()}, "
          f"torch threads {torch.get_num_threads()}; our device {args.device}")

    out: dict = {"n_data": survey.n_data, "n_cells": mesh.n_cells, "device": args.device}
    # warm up both (numba JIT of choclo; torch kernels) on a tiny problem so that the
    # timings below are steady-state
    t0 = time.perf_counter()
    tiny = discretize.TensorMesh([[(h, 3)], [(h, 3)], [(h, 2)]], origin=(-h / 2, -h / 2, -2 * h))
    tiny_survey = Survey(loc[:3], gz=gz[:3], std=std[:3])
    for eng in ("simpeg", "ours"):
        _ = make_simulation(tiny_survey, tiny, engine=eng, device=args.device)[0].G
    out["warmup_s"] = time.perf_counter() - t0
    sims = {}
    for eng in ("simpeg", "ours"):
        t0 = time.perf_counter()
        sim, *_ = make_simulation(survey, mesh, engine=eng, device=args.device)
        _ = sim.G
        out[f"build_{eng}"] = time.perf_counter() - t0
        sims[eng] = sim
    rng = np.random.default_rng(1)
    m = rng.normal(0, 0.1, mesh.n_cells)
    v = rng.normal(size=mesh.n_cells)
    u = rng.normal(size=survey.n_data)
    W = sp.diags(1.0 / std)
    for eng, sim in sims.items():
        out[f"dpred_{eng}"] = _best(lambda sim=sim: sim.dpred(m), args.repeat)
        out[f"Jvec_{eng}"] = _best(lambda sim=sim: sim.Jvec(m, v), args.repeat)
        out[f"Jtvec_{eng}"] = _best(lambda sim=sim: sim.Jtvec(m, u), args.repeat)

        def jtj(sim=sim):
            for name in ("_gtg_diagonal", "_weights_sha256"):  # time the computation, not the cache
                if hasattr(sim, name):
                    delattr(sim, name)
            sim.getJtJdiag(m, W=W)

        out[f"getJtJdiag_{eng}"] = _best(jtj, args.repeat)
    d_rel = np.abs(sims["ours"].dpred(m) - sims["simpeg"].dpred(m)).max() / np.abs(sims["simpeg"].dpred(m)).max()
    out["dpred_max_rel_diff"] = float(d_rel)

    kinds = ["l2"] + (["sparse"] if args.sparse else [])
    for kind in kinds:
        res = {}
        for eng in ("simpeg", "ours"):
            # fresh simulations: the inversion time includes building the sensitivity
            c0 = time.process_time()
            r = run_inversion(survey, mesh, kind=kind, engine=eng, device=args.device, bounds=(-600.0, 600.0),
                              seed=0)
            out[f"inversion_{kind}_{eng}_cpu"] = time.process_time() - c0
            res[eng] = r
            out[f"inversion_{kind}_{eng}"] = r.wall_time
            out[f"inversion_{kind}_{eng}_setup"] = r.setup_time
        a, b = res["ours"].model, res["simpeg"].model
        out[f"inversion_{kind}_model_rel_diff"] = float(np.linalg.norm(a - b) / np.linalg.norm(b))
        out[f"inversion_{kind}_iterations"] = len(res["ours"].history)

    print(f"{'operation':<22}{'SimPEG (s)':>12}{'ours (s)':>12}{'SimPEG/ours':>13}")
    for op in ["build", "dpred", "Jvec", "Jtvec", "getJtJdiag"] + [f"inversion_{k}" for k in kinds]:
        a, b = out[f"{op}_simpeg"], out[f"{op}_ours"]
        out[f"ratio_{op}"] = a / b
        print(f"{op:<22}{a:>12.4g}{b:>12.4g}{a / b:>13.2f}")
    for k in kinds:
        a, b = out[f"inversion_{k}_simpeg_cpu"], out[f"inversion_{k}_ours_cpu"]
        out[f"ratio_inversion_{k}_cpu"] = a / b
        print(f"{'inversion_' + k + ' (CPU s)':<22}{a:>12.4g}{b:>12.4g}{a / b:>13.2f}")
    print(f"dpred max relative difference: {out['dpred_max_rel_diff']:.2e}")
    for k in kinds:
        print(f"{k} inversion: model relative difference {out[f'inversion_{k}_model_rel_diff']:.2e} "
              f"({out[f'inversion_{k}_iterations']} iterations; setup SimPEG "
              f"{out[f'inversion_{k}_simpeg_setup']:.3g} s, ours {out[f'inversion_{k}_ours_setup']:.3g} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return out


if __name__ == "__main__":
    main()
