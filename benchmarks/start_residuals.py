"""Which start of the compact INR explains the data's shape? Residual whiteness against r.

Usage::

    python benchmarks/start_residuals.py --seeds 0 --steps 1000
    python benchmarks/suite.py ...  # the fixed suite itself

For every case of ``gempy_gravinv.cases.suite`` on which ``auto()`` keeps the compact
prior, and every noise seed, ``auto()`` is trained twice for ``--steps`` steps: from the
depth-weighted least-squares start (its default) and from the network's own start
(``warm_start="none"``). Both fit the data to χ²/N ≈ 1. For each the script prints
Pearson r with the true model and Moran's I of the normalised residuals over the 4
nearest stations (:func:`gempy_gravinv.metrics.residual_autocorrelation`), the z-score of
the difference of the two I (their null standard errors combined) and what the rule
"the start, unless its I is more than 2 standard errors larger" picks. Cases on which
``auto()`` chooses the smooth prior (no start) are listed as such. ``start_fallback=True``
applies that rule in a run, training the second start only where the first one's
residuals are correlated.
"""

from __future__ import annotations

import argparse
import math

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=None, help="comma-separated case names (default: all)")
    ap.add_argument("--seeds", default="0", help="comma-separated noise seeds")
    ap.add_argument("--steps", type=int, default=1000, help="training steps of each start")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    import gempy_gravinv as gg
    from gempy_gravinv.cases import suite

    names = list(suite.SUITE) if not args.cases else [c.strip() for c in args.cases.split(",") if c.strip()]
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"{'case':20s} {'seed':>4s}  {'r start':>7s} {'I start':>7s}  {'r none':>7s} {'I none':>7s}  "
          f"{'z':>6s} pick")
    for name in names:
        for seed in seeds:
            case = suite.build_case(name, noise_seed=seed)
            runs = {}
            for tag, extra in (("start", {}), ("none", {"warm_start": "none"})):
                cfg = gg.INRConfig.auto(bounds=case.bounds, progress=False, max_steps=args.steps, **extra)
                res = gg.invert_inr(case.survey, case.mesh, cfg, true_model=case.model)
                if (res.prior_selection or {}).get("prior") == "smooth":
                    break
                runs[tag] = (res.metrics["pearson_r"], res.residual_check)
            if len(runs) < 2:
                print(f"{name:20s} {seed:4d}  smooth prior: no start")
                continue
            (r0, c0), (r1, c1) = runs["start"], runs["none"]
            se = math.hypot(c0["std"], c1["std"])
            z = (c0["moran_i"] - c1["moran_i"]) / se if se > 0 else 0.0
            pick = "none" if z > 2 else "start"
            print(f"{name:20s} {seed:4d}  {r0:7.3f} {c0['moran_i']:7.3f}  {r1:7.3f} {c1['moran_i']:7.3f}  "
                  f"{z:6.1f} {pick}" + ("  (the better r)" if (r1 > r0) == (pick == "none") else ""), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
