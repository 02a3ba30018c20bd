"""``gempy-gravinv demo``: the dipping block end to end with our INR settings (CPU, < 2 min)."""

from __future__ import annotations

import argparse

HELP = "INR inversion of the dipping-block benchmark: metrics table, figures, model files"

DESCRIPTION = """\
Run the dipping-block benchmark (seven +400 kg/m³ slabs, 50 m cells,
21 x 21 x 11, 441 stations, 1% noise) end to end: build the case, invert it with our INR
settings for compact bodies (INRConfig.compact(): a feature-grid INR with a minimum-support
prior held at the target misfit), print a metrics table (ours vs the zero-model floor vs the
published anchors: the paper's code and SimPEG on the same case), and write figures,
metrics.json and model files (NetCDF, VTK, UBC) into -o DIR (a non-empty DIR is refused
unless --overwrite or --resume; Ctrl-C writes the best state so far, exit status 130).
Units: kg/m³ density contrast; g_z in mGal, positive downward.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``demo`` sub-command."""
    from ._common import int_at_least

    p = subparsers.add_parser("demo", help=HELP, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", default="demo_output", metavar="DIR",
                   help="output folder (default: demo_output)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: a few dozen steps (numbers are not meaningful)")
    p.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, auto")
    p.add_argument("--members", type=int_at_least(1), default=1, metavar="N", help="ensemble members (default 1)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="noise seed of the case (default 0)")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--resume", action="store_true", help="continue an interrupted demo from DIR/checkpoint/")
    from ._common import add_overwrite_argument

    add_overwrite_argument(p)
    p.add_argument("--threads", type=int_at_least(1), default=None, metavar="N",
                   help="torch threads (default: INRConfig's 'auto', which is 1 for this small problem: "
                        "on a busy CPU, thread synchronisation costs more than it saves; on a quiet "
                        "machine more threads can be faster; results depend slightly on the thread count)")
    return p


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns 0, or 1 where the model NetCDF, UBC model or data CSV could not be written."""
    import sys
    import time

    from gempy_gravinv.cases.synthetic import dipping_block
    from gempy_gravinv.cli._reproduce import ANCHORS
    from gempy_gravinv.inversion import INRConfig, InversionInterrupted, invert_inr
    from gempy_gravinv.output import INVERSION_FILES, save_inversion

    from ._common import check_device, count_written, finish_interrupted, hold_output

    if args.members < 1:
        raise ValueError(f"--members must be >= 1, got {args.members}")
    check_device(args.device)
    t0 = time.perf_counter()
    out = hold_output(args, INVERSION_FILES, resume=args.resume)
    case = dipping_block(noise_seed=args.seed)
    cfg = INRConfig.compact(device=args.device, n_members=args.members, progress=not args.no_progress,
                            **({} if args.threads is None else {"num_threads": args.threads}))
    if args.quick:
        cfg.max_steps = 30
    print(f"dipping block: {case.mesh.n_cells} cells, {case.survey.n_data} stations, "
          f"noise σ = {case.meta['noise_std_mgal']:.4f} mGal; INR settings: ours (compact)"
          + (" (--quick: 30 steps)" if args.quick else ""), flush=True)
    try:
        res = invert_inr(case.survey, case.mesh, cfg, true_model=case.model, checkpoint=out / "checkpoint",
                         resume=args.resume)
    except InversionInterrupted as exc:
        return finish_interrupted(args, exc, out, figures=not args.no_figures)
    written = save_inversion(res, out, figures=not args.no_figures, name="inr")
    m = res.metrics
    print(f"\n{'model':46s} {'RMS err kg/m3':>14s} {'r':>7s} {'chi2/N':>8s} {'time':>8s}")
    print(f"{'INR, ours (this run)':46s} {m['rms_error_kgm3']:14.1f} {m['pearson_r']:7.3f} "
          f"{res.chi2:8.3f} {res.timings['train']:7.1f}s")
    print(f"{'zero model (floor)':46s} {m['floor_zero_kgm3']:14.1f} {'':>7s} {'':>8s} {'':>8s}")
    for label, rms, r, chi, note in ANCHORS["dipping_block"]:
        print(f"{'[anchor] ' + label:46s} {rms:>14s} {r:>7s} {chi:>8s} {note:>8s}")
    print(f"\nstopped: {res.stop_reason} (kept step {res.best_step}, {res.timings['steps']} steps); "
          f"total {time.perf_counter() - t0:.1f} s")
    said, error = count_written(written, out, "demo")
    print(f"{said} (metrics.json, model files, figures)")
    if error is not None:
        print(error, file=sys.stderr, flush=True)
        return 1
    return 0
