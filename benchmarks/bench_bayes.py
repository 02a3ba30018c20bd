"""Benchmark: forward + gradient time and NUTS ESS/s of the Bayesian GemPy gravity model,
(a) GemPy soft lithology on mesh cells + our GravityOperator vs (b) GemPy's centered grid.

Same GemPy model (the Tharsis intrusion case), same stations (a seeded
subset), same priors and likelihood, same NUTS settings (the engine's defaults: Laplace
start, dense mass matrix, chains in parallel processes); only the forward differs.
ESS per second is the smallest bulk or tail ESS over the parameters divided by the wall
time of the Laplace fit plus the chains, measured for both forwards in the same run.

    .venv/bin/python benchmarks/bench_bayes.py --stations 40 --repeat 5 \
        --nuts-samples 100 --nuts-warmup 100 --out bench_bayes.json

Timings depend on the machine and its load; report them with the device and the load
(``loadavg_start`` / ``loadavg_end`` in the output).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time


def _time_forward_grad(case, repeat: int) -> dict:
    import numpy as np
    import torch

    fw = case.forward
    rng = np.random.default_rng(0)
    times = []
    for i in range(repeat + 1):
        dips = torch.tensor(10.0 + rng.normal(0, 3, 2), dtype=torch.float64, requires_grad=True)
        rho = torch.tensor([230.0, -370.0], dtype=torch.float64, requires_grad=True)
        t0 = time.perf_counter()
        g = fw(rho, dips=dips, dip_index=[0, 1])
        (g * torch.linspace(0.5, 1.5, g.numel(), dtype=g.dtype)).sum().backward()
        if i:  # first call warms caches
            times.append(time.perf_counter() - t0)
    return {"median_s": float(np.median(times)), "min_s": float(np.min(times)), "n": repeat}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stations", type=int, default=40, help="Tharsis station subset size")
    p.add_argument("--cells", type=int, nargs=3, default=(16, 12, 8), help="mesh cells (a)")
    p.add_argument("--resolution", type=int, nargs=3, default=(8, 8, 8), help="GemPy centered grid (b)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--nuts-samples", type=int, default=30)
    p.add_argument("--nuts-warmup", type=int, default=30)
    p.add_argument("--max-tree-depth", type=int, default=6)
    p.add_argument("--chains", type=int, default=2, help="NUTS chains (in parallel processes)")
    p.add_argument("--skip-nuts", action="store_true")
    p.add_argument("--nuts-kinds", nargs="+", default=["mesh", "centered"],
                   choices=["mesh", "centered"], help="forwards to run NUTS with")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="write the JSON result here")
    a = p.parse_args(argv)

    import psutil
    import torch

    torch.set_num_threads(a.threads)
    from gempy_gravinv import bayes as B
    from gempy_gravinv.cases.bayes import tharsis_intrusion

    res: dict = {"args": vars(a), "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                                              "loadavg_start": os.getloadavg(), "torch_threads": a.threads}}
    for kind in ("mesh", "centered"):
        case = tharsis_intrusion(subset=a.stations, n_cells=tuple(a.cells), forward=kind, seed=0)
        if kind == "centered":
            case.forward.gravity  # noqa: B018
            n_pts = case.forward.gravity.n_voxels * case.survey.n_data
        else:
            n_pts = case.mesh.n_cells
        r = {"gempy_points": int(n_pts), "forward_grad": _time_forward_grad(case, a.repeat)}
        print(kind, "forward+gradient", json.dumps(r["forward_grad"]), flush=True)
        if not a.skip_nuts and kind in a.nuts_kinds:
            t0 = time.perf_counter()
            idata = B.run_nuts(case.model, num_samples=a.nuts_samples, warmup=a.nuts_warmup, chains=a.chains,
                               max_tree_depth=a.max_tree_depth, seed=0, num_prior=0, progress=False)
            import arviz as az

            tab = az.summary(idata, var_names=["densities_rel", "dips", "offset", "noise_mu", "noise_tau"])
            t_run = idata.posterior.attrs["sampling_time_s"] + idata.posterior.attrs["laplace_time_s"]
            ess = float(min(tab["ess_bulk"].min(), tab["ess_tail"].min()))
            r["nuts"] = {"sampling_time_s": t_run, "min_ess_bulk_or_tail": ess, "ess_per_s": ess / t_run,
                         "max_rhat": float(tab["r_hat"].max()),
                         "divergences": int(idata.sample_stats["diverging"].sum()),
                         "mean_tree_depth": float(idata.sample_stats["tree_depth"].mean()),
                         "wall_s": time.perf_counter() - t0}
        r["rss_gb"] = psutil.Process().memory_info().rss / 1e9
        res[kind] = r
        print(kind, json.dumps(r), flush=True)
    fa, fb = res["mesh"]["forward_grad"]["median_s"], res["centered"]["forward_grad"]["median_s"]
    res["speedup_forward_grad"] = fb / fa
    if not a.skip_nuts and "nuts" in res["mesh"] and "nuts" in res["centered"]:
        ea, eb = res["mesh"]["nuts"]["ess_per_s"], res["centered"]["nuts"]["ess_per_s"]
        res["speedup_ess_per_s"] = ea / eb if eb > 0 else float("inf")
        res["nuts_note"] = ("ESS from short chains is a rough number (its relative error ~ 1/sqrt(ESS)); "
                            "the speed-up in time per gradient is the robust one")
    res["machine"]["loadavg_end"] = os.getloadavg()
    print(f"forward+gradient: (a) mesh {fa:.3f} s, (b) GemPy centered {fb:.3f} s, "
          f"speed-up {res['speedup_forward_grad']:.1f}x"
          + (f"; NUTS ESS/s speed-up {res['speedup_ess_per_s']:.1f}x" if "speedup_ess_per_s" in res else ""))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=2, default=str)
    return res


if __name__ == "__main__":
    main()
