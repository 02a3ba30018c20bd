"""Our drop-in SimPEG gravity simulation against SimPEG's choclo engine, on SimPEG's tutorial meshes.

Times, in one run on this machine, for SimPEG's ``Simulation3DIntegral(engine="choclo")``
and ours (eager torch kernels, and compiled ones where asked):

- ``G build``: a fresh simulation building and storing G (``"ram"``);
- ``dpred (forward_only)``: one forward without G;
- ``getJtJdiag (forward_only)``: diag(JᵀWᵀWJ) without G;

and prints SimPEG / ours (> 1: ours faster). Steady state: every number is the minimum
of ``--repeat`` calls after one warm-up call, SimPEG's and ours taking turns within each
repeat (so a shared machine's drifting load hits both alike); the warm-up calls (numba's
JIT for SimPEG, ``torch.compile`` for ours) are reported separately as first-use costs.

Meshes: the tensor mesh with topography of SimPEG's gravity anomaly tutorials (5 m
cells, 50 x 50 x 20, 289 stations 5 m above the topography) and the TreeMesh of its
gradiometry tutorial (5 m base cells refined on the topography), with ``gz`` or the
tutorial's gradiometry components (``--components gxz gyz gzz``).

Usage::

    python benchmarks/bench_simpeg.py                               # both meshes, gz
    python benchmarks/bench_simpeg.py --case tree --components gxz gyz gzz
    python benchmarks/bench_simpeg.py --compile                     # also our compiled kernels

Both store float64 sensitivities (``--sensitivity-dtype float32`` for SimPEG's default).
Timings on a shared machine are noisy: compare ratios from the same run only.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def _topography():
    from discretize.utils import mkvc

    x, y = np.meshgrid(np.linspace(-200, 200, 41), np.linspace(-200, 200, 41))
    rng = np.random.default_rng(seed=737)
    z = -15 * np.exp(-(x**2 + y**2) / 80**2) + 100.0 + rng.uniform(low=0.0, high=0.5, size=x.shape)
    return np.c_[mkvc(x), mkvc(y), mkvc(z)]


def _receivers(topo):
    from discretize.utils import mkvc
    from scipy.interpolate import LinearNDInterpolator

    x, y = np.meshgrid(np.linspace(-80.0, 80.0, 17), np.linspace(-80.0, 80.0, 17))
    x, y = mkvc(x.T), mkvc(y.T)
    z = LinearNDInterpolator(topo[:, :2], topo[:, 2])(np.c_[x, y]) + 5.0
    return np.c_[x, y, z]


def tutorial_case(kind: str):
    """The mesh, active cells and receiver locations of SimPEG's gravity tutorials."""
    from discretize import TensorMesh, TreeMesh
    from discretize.utils import active_from_xyz

    topo = _topography()
    if kind == "tensor":
        dh = 5.0
        hx = [(dh, 5, -1.3), (dh, 40), (dh, 5, 1.3)]
        hz = [(dh, 5, -1.3), (dh, 15)]
        mesh = TensorMesh([hx, hx, hz], "CCN")
        mesh.origin += np.r_[0.0, 0.0, topo[:, 2].max()]
    else:
        d = 5.0
        n = [2 ** int(np.round(np.log(L / d) / np.log(2.0))) for L in (240.0, 240.0, 120.0)]
        mesh = TreeMesh([[(d, n[0])], [(d, n[1])], [(d, n[2])]], x0="CCN", diagonal_balance=True)
        mesh.origin += np.r_[0.0, 0.0, topo[:, 2].max()]
        mesh.refine_surface(topo, padding_cells_by_level=[2, 2], finalize=False)
        mesh.refine_box(np.c_[-100, -100, 20], np.c_[100, 100, 100], levels=[-1], finalize=False)
        mesh.finalize()
    return mesh, active_from_xyz(mesh, topo), _receivers(topo)


def run_case(kind: str, components, repeat: int, sens_dtype, variants) -> dict:
    """Times of every variant on one tutorial mesh; returns the numbers."""
    import scipy.sparse as sp
    from simpeg import maps
    from simpeg.potential_fields import gravity

    from gempy_gravinv.simpeg import Simulation3DIntegral

    mesh, active, loc = tutorial_case(kind)
    nC = int(active.sum())
    survey = gravity.Survey(gravity.SourceField([gravity.Point(loc, components=list(components))]))
    m = np.random.default_rng(0).normal(0.0, 0.1, nC)
    W = sp.diags(np.random.default_rng(1).uniform(0.5, 2.0, survey.nD))
    print(f"\n{kind} mesh: {mesh.n_cells} cells, {nC} active, {survey.nD} data ({', '.join(components)})")

    def make(name, store):
        kw = dict(survey=survey, active_cells=active, rhoMap=maps.IdentityMap(nP=nC), store_sensitivities=store,
                  sensitivity_dtype=sens_dtype, engine="choclo")
        if name == "simpeg":
            return gravity.simulation.Simulation3DIntegral(mesh, **kw)
        if name == "ours-compiled":
            kw["compile"] = True
        return Simulation3DIntegral(mesh, **kw)  # "ours": the defaults (compile="auto")

    def jtj(sim):
        for attr in ("_gtg_diagonal", "_weights_sha256"):  # time the computation, not SimPEG's cache
            if hasattr(sim, attr):
                delattr(sim, attr)
        return sim.getJtJdiag(m, W=W)

    out: dict = {"case": kind, "n_cells": int(mesh.n_cells), "n_active": nC, "n_data": int(survey.nD),
                 "components": list(components), "repeat": repeat}
    ref = {}
    fo = {}
    for name in variants:  # first use: numba's JIT, torch.compile (its disk cache may be warm)
        t0 = time.perf_counter()
        g = make(name, "ram").G
        out[f"first_G_{name}"] = time.perf_counter() - t0
        fo[name] = make(name, "forward_only")
        t0 = time.perf_counter()
        d = fo[name].dpred(m)
        jd = jtj(fo[name])
        out[f"first_forward_only_{name}"] = time.perf_counter() - t0
        if name == "simpeg":
            ref = {"G": np.asarray(g, dtype=np.float64), "d": d, "jtj": jd}
        else:
            out[f"maxrel_G_{name}"] = float(np.abs(np.asarray(g, float) - ref["G"]).max() / np.abs(ref["G"]).max())
            out[f"maxrel_dpred_{name}"] = float(np.abs(d - ref["d"]).max() / np.abs(ref["d"]).max())
            out[f"maxrel_jtj_{name}"] = float(np.abs(jd / ref["jtj"] - 1).max())
        del g
    # steady state: the variants take turns within each repeat (a shared machine's load drifts), min of the repeats
    ops = {"G": lambda name: make(name, "ram").G, "dpred": lambda name: fo[name].dpred(m),
           "getJtJdiag": lambda name: jtj(fo[name])}
    times: dict = {}
    for _ in range(repeat):
        for op, fn in ops.items():
            for name in variants:
                times.setdefault((op, name), []).append(_timed(fn, name))
    for (op, name), ts in times.items():
        out[f"{op}_{name}"] = min(ts)
    print(f"{'operation':<24}" + "".join(f"{v:>15}" for v in variants)
          + "".join(f"{'SimPEG/' + v[5:] if v != 'simpeg' else '':>18}" for v in variants if v != "simpeg"))
    for op in ("G", "dpred", "getJtJdiag"):
        row = f"{op + (' (forward_only)' if op != 'G' else ' build (ram)'):<24}"
        row += "".join(f"{out[f'{op}_{v}']:>14.3f}s" for v in variants)
        for v in variants:
            if v != "simpeg":
                out[f"ratio_{op}_{v}"] = out[f"{op}_simpeg"] / out[f"{op}_{v}"]
                row += f"{out[f'ratio_{op}_{v}']:>18.2f}"
        print(row)
    print("first use (s): " + ", ".join(f"{v}: G {out[f'first_G_{v}']:.2f}, forward_only "
                                       f"{out[f'first_forward_only_{v}']:.2f}" for v in variants))
    for v in variants:
        if v != "simpeg":
            print(f"{v} vs SimPEG, max relative difference: G {out[f'maxrel_G_{v}']:.1e}, "
                  f"dpred {out[f'maxrel_dpred_{v}']:.1e}, getJtJdiag {out[f'maxrel_jtj_{v}']:.1e}")
    return out


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", choices=["tensor", "tree", "both"], default="both")
    p.add_argument("--components", nargs="+", default=["gz"])
    p.add_argument("--repeat", type=int, default=5, help="calls per timing (minimum)")
    p.add_argument("--sensitivity-dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--compile", action="store_true", help="also time our torch.compile'd kernels")
    p.add_argument("--json", default=None, help="write the numbers to this file")
    args = p.parse_args(argv)

    import torch

    print(f"cpu cores {os.cpu_count()}, torch threads {torch.get_num_threads()}, "
          f"GEMPY_GRAVINV_COMPILE={os.environ.get('GEMPY_GRAVINV_COMPILE')}")
    variants = ["simpeg", "ours"] + (["ours-compiled"] if args.compile else [])
    sens = np.float64 if args.sensitivity_dtype == "float64" else np.float32
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kind in (["tensor", "tree"] if args.case == "both" else [args.case]):
            results.append(run_case(kind, args.components, args.repeat, sens, variants))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return results


if __name__ == "__main__":
    main()
