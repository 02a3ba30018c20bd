"""Which INR settings recover the synthetic cases, and why: one table, one run.

Every row is :func:`gempy_gravinv.invert_inr` on the same case (same noise) with a preset
and field overrides; printed: RMS density error (kg/m³), its ratio to the constant-mean
floor, Pearson r, χ²/N of the kept state, the stop reason and the training time. The
SimPEG rows (optional) run SimPEG's L2 and sparse recipes on the same data and mesh in the
same process, so the INR numbers have their peer beside them.

Usage::

    python benchmarks/inr_ablation.py                      # dipping block, the default rows
    python benchmarks/inr_ablation.py --simpeg             # ... plus SimPEG L2 and sparse
    python benchmarks/inr_ablation.py --noise-seeds 0 1 2 --rows compact
    python benchmarks/inr_ablation.py --case smooth_grf --row smooth \
        '{"encoding_options": {"n_frequencies": 3}, "max_steps": 2500}'
    python benchmarks/inr_ablation.py --case smooth_grf --grf-shape 20 20 10 --grf-cell 1000 --row smooth '{}'
    python benchmarks/inr_ablation.py --case smooth_grf --grf-generator paper --grf-seed 41 --simpeg
    python benchmarks/inr_ablation.py --case smooth_grf --grf-generator paper --grf-seed 41 --rows periodic
    python benchmarks/inr_ablation.py --case smooth_grf --grf-generator paper --grf-seed 41 \
        --rows spectral "spectral, discrepancy" "spectral, lattice (4, 4, 3)" "spectral, flat amplitude"

``--row PRESET JSON`` adds a row (``PRESET`` one of ours, compact, smooth, paper; ``JSON``
the INRConfig overrides); ``--rows NAME ...`` picks named default rows. Runs use one
torch thread (``--threads``) so numbers repeat on the same machine.
"""

from __future__ import annotations

import argparse
import json
import time

ROWS = {
    # the dipping-block preset and what each of its parts is worth
    "compact": ("compact", {}),
    "compact, no prior": ("compact", {"regularization": "none", "reg_mode": "fixed", "reg_weight": 0.0}),
    "ours (positional), no prior": ("ours", {}),
    "ours (positional) + min-support target": ("ours", {"regularization": "min_support", "reg_mode": "target",
                                                         "reg_weight": 1.0, "reg_depth_power": 1.0,
                                                         "max_steps": 2000}),
    "fourier + min-support target": ("compact", {"encoding": "fourier",
                                                 "encoding_options": {"n_features": 128, "sigma": 2.0},
                                                 "width": 64, "depth": 3}),
    "compact, lr 5e-3": ("compact", {"lr": 5e-3}),
    "compact field + TV target": ("compact", {"regularization": "tv", "reg_eps": 0.1}),
    "voxel + min-support target": ("compact", {"backend": "voxel", "lr": 0.05}),
}
DIPPING_ROWS = list(ROWS)  # the default rows of the dipping block
ROWS.update({
    # the smooth-GRF presets and the parts of the spectral and periodic ones
    "spectral": ("spectral", {}),
    "spectral, discrepancy": ("spectral", {"head_lambda": "discrepancy"}),
    "spectral, lattice (4, 4, 3)": ("spectral", {"encoding_options": {"n_harmonics": [4, 4, 3], "lattice": True,
                                                                      "spectrum": [5000.0, 1.5]}}),
    "spectral, flat amplitude": ("spectral", {"encoding_options": {"n_harmonics": [8, 8, 6], "lattice": True}}),
    "spectral, l = 2500 m (half the truth)": ("spectral", {"prior_length": 2500.0}),
    "spectral, l = 10000 m (twice the truth)": ("spectral", {"prior_length": 10000.0}),
    "spectral, nu = 0.5": ("spectral", {"prior_nu": 0.5}),
    "periodic": ("periodic", {}),
    "periodic, box harmonics only": ("periodic", {"encoding_options": {"n_harmonics": 3}, "depth": 3,
                                                  "lr": 5e-3}),
    "smooth": ("smooth", {}),
    "smooth, 3 octaves": ("smooth", {"encoding_options": {"n_frequencies": 3}, "max_steps": 2500}),
})


def _case(name: str, noise_seed: int, grf_shape=(40, 40, 20), grf_cell: float = 500.0,
          grf_seed: int = 0, grf_generator: str = "numpy"):
    from gempy_gravinv.cases import synthetic

    if name == "dipping_block":
        return synthetic.dipping_block(noise_seed=noise_seed)
    if name == "smooth_grf":
        return synthetic.smooth_grf(seed=grf_seed, noise_seed=noise_seed + 1, shape=tuple(grf_shape),
                                    cell_size=grf_cell, generator=grf_generator)
    raise ValueError(f"--case must be dipping_block or smooth_grf, got {name!r}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", default="dipping_block", choices=["dipping_block", "smooth_grf"])
    ap.add_argument("--noise-seeds", type=int, nargs="+", default=[0],
                    help="noise seeds (dipping block: the seed; GRF: noise seed + 1)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="network seeds")
    ap.add_argument("--grf-shape", type=int, nargs=3, default=(40, 40, 20), help="GRF cells (default 40 40 20)")
    ap.add_argument("--grf-cell", type=float, default=500.0, help="GRF cell size, m (default 500)")
    ap.add_argument("--grf-seed", type=int, default=0, help="GRF field seed (default 0)")
    ap.add_argument("--grf-generator", default="numpy", choices=["numpy", "paper"],
                    help="GRF noise source; 'paper' with --grf-seed 41 is the paper's realization")
    ap.add_argument("--rows", nargs="+", default=None, choices=sorted(ROWS), metavar="NAME",
                    help=f"named rows (default: all for the dipping block, none otherwise): {sorted(ROWS)}")
    ap.add_argument("--row", nargs=2, action="append", default=[], metavar=("PRESET", "JSON"),
                    help="an extra row: preset name and INRConfig overrides as JSON")
    ap.add_argument("--simpeg", action="store_true", help="add SimPEG L2 and sparse on the same data")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    from gempy_gravinv import metrics
    from gempy_gravinv.inversion import INRConfig, invert_inr

    names = args.rows if args.rows is not None else (DIPPING_ROWS if args.case == "dipping_block" else [])
    rows = [(n, *ROWS[n]) for n in names]
    for preset, js in args.row:
        rows.append((f"{preset} {js}", preset, json.loads(js)))
    if not rows and not args.simpeg:
        ap.error("nothing to run: give --rows, --row or --simpeg")

    print(f"{'case':>13s} {'noise':>5s} {'seed':>4s} {'method':<42s} {'RMS kg/m3':>9s} {'/floor':>7s} {'r':>6s} "
          f"{'chi2/N':>7s} {'train s':>8s}  stop")
    for ns in args.noise_seeds:
        case = _case(args.case, ns, args.grf_shape, args.grf_cell, args.grf_seed, args.grf_generator)
        bounds = {} if args.case == "dipping_block" else {"bounds": tuple(case.bounds)}
        for label, preset, over in rows:
            # the closed-form head is linear in its output: no bounds
            bnd = {} if INRConfig.preset(preset, **over).solver == "linear" else bounds
            for seed in args.seeds:
                cfg = INRConfig.preset(preset, **{**bnd, "progress": False, "num_threads": args.threads,
                                                  "seed": seed, **over})
                try:
                    res = invert_inr(case.survey, case.mesh, cfg, true_model=case.model)
                except ValueError as err:  # a setting the method refuses (e.g. features that cannot fit)
                    print(f"{case.name:>13s} {ns:5d} {seed:4d} {label[:42]:<42s} refused: {err}", flush=True)
                    continue
                m = res.metrics
                note = res.stop_reason
                if res.solve_info is not None and res.std is not None:  # calibration of the posterior std
                    cov = metrics.coverage(res.model, case.model, res.std)
                    note += f"; {100 * cov:.1f}% of cells within 1.96 posterior std"
                print(f"{case.name:>13s} {ns:5d} {seed:4d} {label[:42]:<42s} {m['rms_error_kgm3']:9.1f} "
                      f"{m['rms_error_over_floor']:7.3f} {m['pearson_r']:6.3f} {res.chi2:7.3f} "
                      f"{res.timings['train']:8.1f}  {note}", flush=True)
        if args.simpeg:
            from gempy_gravinv.simpeg import run_inversion

            for kind in ("l2", "sparse"):
                t0 = time.perf_counter()
                r = run_inversion(case.survey, case.mesh, kind=kind, reference=0.0, bounds=tuple(case.bounds))
                m = metrics.evaluate(model=r.model, true=case.model, pred=r.gz_pred, survey=case.survey,
                                     mesh=case.mesh)
                print(f"{case.name:>13s} {ns:5d} {'-':>4s} {'SimPEG ' + kind:<42s} {m['rms_error_kgm3']:9.1f} "
                      f"{m['rms_error_over_floor']:7.3f} {m['pearson_r']:6.3f} {m['chi2_per_datum']:7.3f} "
                      f"{time.perf_counter() - t0:8.1f}  (wall, whole inversion)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
