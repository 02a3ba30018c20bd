"""The fixed benchmark suite: every method on every case of ``gempy_gravinv.cases.suite``.

Usage::

    python benchmarks/suite.py                                   # all cases, all methods, seed 0
    python benchmarks/suite.py --cases two_bodies,dike --methods simpeg_l2,simpeg_sparse
    python benchmarks/suite.py --seeds held_out --json suite.json --threads 2
    python benchmarks/suite.py --quick --cases two_bodies,deep_body   # smoke test
    python benchmarks/suite.py --random 10 --random-from 2000           # ten geometries drawn at random
    python benchmarks/suite.py --random-fields 10 --random-from 2000    # ten smooth fields drawn at random
    python benchmarks/suite.py --sparse 10 --sparse-fields 10 --random-from 15000  # surveys over part of the mesh

For every case x noise seed x method, all methods see the same data, the same mesh (its
active cells included) and the case's ``bounds``; the reference is the case's
reference density, i.e. a contrast of 0, for every method:

- ``inr``: ``gempy_gravinv.invert_inr(survey, mesh, INRConfig(bounds=case.bounds),
  true_model=case.model)``, whatever ``INRConfig()``'s defaults are when this runs (only
  the progress bar is turned off);
- ``inr:PRESET``: the same with ``INRConfig.preset(PRESET, bounds=case.bounds)`` (e.g.
  ``inr:compact``), to compare presets; ``inr:PRESET+FIELD=VALUE+...`` overrides fields
  (Python literals, e.g. ``inr:auto+start_fallback=True``); the verdicts speak of the
  first INR method given;
- ``simpeg_l2`` / ``simpeg_sparse``: ``gempy_gravinv.simpeg.run_inversion(..., kind="l2" |
  "sparse", reference=0, bounds=case.bounds, active_cells=mesh.active_cells, seed=0)``:
  SimPEG's recommended recipes.

Scores: :func:`gempy_gravinv.metrics.evaluate` (Pearson r, RMS error over the
constant-mean floor, χ²/N) and the wall time of each method (``time.perf_counter``,
same process, same run; imports are done before any timing). Per case and seed, two
verdicts ("INR r >= max(L2, sparse) r" and "INR r >= L2 r - 0.05") and the time ratio
INR / sparse; a count line closes the table. ``--repeats N`` runs every method N times
per case, in turns (each method once, then each again), and reports the median wall
time, so that a slow spell of a shared machine does not fall on one method alone (the
JSON's ``walls_s`` holds every run's; the scores are the first run's, and a repeat
that gives another r says so). A method that fails is reported as a row
with its error, not a crash. Numbers are only comparable within one run on one machine.

Random geometries: ``--random K`` adds the cases ``random_S`` .. ``random_{S+K-1}``
(``S``: ``--random-from``) of :func:`gempy_gravinv.cases.random_cases.random_case`, each a
geometry drawn from its seed (cell size 10 m to 1 km, flat ground or a hill or valley
with inactive cells, stations 0.55 to 5 cells up on a grid or scattered, one to three
boxes or dikes of either sign); ``--cases random_S`` names one. ``--random-fields K``
adds ``randfield_S`` .. of :func:`~gempy_gravinv.cases.random_cases.random_field_case`:
the same kind of frame filled with a smooth Matérn field that does not wrap. ``--sparse K``
and ``--sparse-fields K`` add ``sparse_S`` .. and ``sparsefield_S`` ..: the same draws
under a survey over part of the mesh (profiles, a road, a few scattered stations or a
patch; ``layout="sparse"``). Their geometry is not seen before the run, so no setting
can have been chosen on it.

Seeds: the noise seed of each case (``--seeds``: integers, ``tuning`` = 0 or
``held_out`` = 101, 102); NumPy's and torch's global generators are seeded with it
before every method.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import time
import traceback

METHODS = ("inr", "simpeg_l2", "simpeg_sparse")


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default=None, help="comma-separated case names (default: the whole suite)")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, from {', '.join(METHODS)}")
    p.add_argument("--seeds", default="tuning",
                   help="comma-separated noise seeds, or 'tuning' (0) / 'held_out' (101, 102)")
    p.add_argument("--random", type=int, default=0, metavar="K",
                   help="add K geometries drawn at random (cases random_S .. random_{S+K-1})")
    p.add_argument("--random-fields", type=int, default=0, metavar="K",
                   help="add K smooth fields drawn at random (cases randfield_S .. randfield_{S+K-1})")
    p.add_argument("--sparse", type=int, default=0, metavar="K",
                   help="add K bodies under surveys over part of the mesh (cases sparse_S ..)")
    p.add_argument("--sparse-fields", type=int, default=0, metavar="K",
                   help="add K smooth fields under surveys over part of the mesh (cases sparsefield_S ..)")
    p.add_argument("--random-from", type=int, default=1000, metavar="S",
                   help="first geometry seed of --random, --random-fields, --sparse and --sparse-fields")
    p.add_argument("--repeats", type=_positive, default=1, metavar="N",
                   help="run every method N times per case, in turns, and report the median wall time")
    p.add_argument("--quick", action="store_true", help="tiny versions of the cases (smoke test)")
    p.add_argument("--json", default=None, help="write every row (and the verdicts) to this file")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (torch, BLAS, numba)")
    p.add_argument("--device", default="cpu", help="torch device of every method (default cpu)")
    return p.parse_args(argv)


def _seeds(text, suite) -> list[int]:
    out = []
    for tok in (t.strip() for t in text.split(",") if t.strip()):
        if tok == "tuning":
            out += list(suite.TUNING_SEEDS)
        elif tok in ("held_out", "held-out"):
            out += list(suite.HELD_OUT_SEEDS)
        else:
            out.append(int(tok))
    return out


def _fmt(v, nd=3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    a = abs(v)
    if a != 0 and (a >= 1e4 or a < 1e-3):
        return f"{v:.{nd}g}"
    return f"{v:.{nd}f}" if a < 100 else f"{v:.1f}"


def field_overrides(options, where: str) -> dict:
    """``{FIELD: VALUE}`` of ``FIELD=VALUE`` strings (values: Python literals, or a bare word as a string).

    ``where`` names the option in the error that a string without ``=`` raises.
    """
    import ast

    over = {}
    for o in options:
        key, eq, value = o.partition("=")
        if not eq:
            sys.exit(f"{where}: {o!r}: write FIELD=VALUE")
        try:
            over[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            over[key] = value  # a bare word: a string setting
    return over


def _inr_config(method: str, bounds):
    """The INRConfig of ``inr``, ``inr:PRESET`` or ``inr:PRESET+FIELD=VALUE+...`` (values: Python literals)."""
    import gempy_gravinv as gg

    preset, *options = (method.partition(":")[2] or "ours").split("+")
    return gg.INRConfig.preset(preset, bounds=bounds, **field_overrides(options, f"suite.py {method!r}"))


def _run_row(method, case, name, seed, geometry, args) -> dict:
    """One method on one case: its scores and wall time (``walls_s``: every repeat's), or its error."""
    from gempy_gravinv.metrics import evaluate

    row = {"case": name, "seed": seed, "method": method, "quick": args.quick,
           "n_cells": int(case.mesh.n_cells), "n_data": int(case.survey.n_data),
           "bounds": list(case.bounds), "reference_density": case.reference_density,
           "geometry": case.meta if geometry is not None else None,
           "error": None, "pearson_r": None, "rms_over_floor": None, "chi2_per_datum": None}
    t0 = time.perf_counter()
    try:
        model, pred, info = _run_method(method, case, seed, args.device)
        wall = time.perf_counter() - t0
        met = evaluate(model=model, true=case.model, pred=pred, survey=case.survey, mesh=case.mesh,
                       wall_time=wall, device=args.device)
        row.update(pearson_r=met["pearson_r"], rms_over_floor=met["rms_error_over_floor"],
                   chi2_per_datum=met["chi2_per_datum"], metrics=met, info=info)
    except Exception as exc:  # a failing method is a result, not a crash
        wall = time.perf_counter() - t0
        row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        row["traceback"] = traceback.format_exc()
    row["wall_s"], row["walls_s"] = wall, [wall]
    return row


def _run_method(method, case, seed, device):
    """(model on the active cells kg/m³, predicted g_z mGal, info) of one method."""
    import numpy as np
    import torch

    np.random.seed(seed)
    torch.manual_seed(seed)
    if method == "inr" or method.startswith("inr:"):
        import gempy_gravinv as gg

        cfg = _inr_config(method, case.bounds)
        res = gg.invert_inr(case.survey, case.mesh, cfg, true_model=case.model, progress=False, device=device)
        info = {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()},
                "stop_reason": res.stop_reason, "best_step": res.best_step,
                "prior_selection": res.prior_selection, "regional_selection": res.regional_selection,
                "start_selection": res.start_selection, "steps": len(res.history.get("chi2", []))}
        return np.asarray(res.model, float), np.asarray(res.predicted, float), info
    from gempy_gravinv.simpeg import run_inversion

    kind = "l2" if method == "simpeg_l2" else "sparse"
    res = run_inversion(case.survey, case.mesh, kind=kind, reference=0.0, bounds=case.bounds,
                        active_cells=case.mesh.active_cells, seed=0, device=device)
    return res.model, res.gz_pred, {"kind": kind, "iterations": len(res.history), **res.info}


def _verdicts(rows) -> dict:
    """The two verdicts and the time ratio for one case and seed (None where not computable)."""
    ok = {r["method"]: r for r in rows if r["error"] is None}
    out = {"inr_ge_best": None, "inr_ge_l2_minus_0.05": None, "time_ratio_inr_sparse": None, "inr_method": None}
    inr = next((r["method"] for r in rows if r["method"] == "inr" or r["method"].startswith("inr:")), None)
    if inr is None:  # the verdicts speak of the first INR method of the run
        return out
    out["inr_method"] = inr
    r_inr = ok[inr]["pearson_r"] if inr in ok else None
    base = [ok[m]["pearson_r"] for m in ("simpeg_l2", "simpeg_sparse") if m in ok and ok[m]["pearson_r"] is not None]
    if base:
        out["inr_ge_best"] = r_inr is not None and r_inr >= max(base)
    if "simpeg_l2" in ok and ok["simpeg_l2"]["pearson_r"] is not None:
        out["inr_ge_l2_minus_0.05"] = r_inr is not None and r_inr >= ok["simpeg_l2"]["pearson_r"] - 0.05
    if inr in ok and "simpeg_sparse" in ok:
        out["time_ratio_inr_sparse"] = ok[inr]["wall_s"] / ok["simpeg_sparse"]["wall_s"]
    return out


def _yes(v) -> str:
    return "n/a" if v is None else ("yes" if v else "NO")


def _table(rows, verdicts) -> str:
    head = f"{'case':20s} {'seed':>4s} {'method':14s} {'r':>7s} {'RMS/floor':>9s} {'chi2/N':>8s} {'wall s':>8s}"
    lines = [head, "-" * len(head)]
    for (case, seed), v in verdicts.items():
        for r in rows:
            if r["case"] != case or r["seed"] != seed:
                continue
            if r["error"] is not None:
                lines.append(f"{case:20s} {seed:4d} {r['method']:14s} FAILED after {r['wall_s']:.1f} s: {r['error']}")
                continue
            lines.append(f"{case:20s} {seed:4d} {r['method']:14s} {_fmt(r['pearson_r']):>7s} "
                         f"{_fmt(r['rms_over_floor']):>9s} {_fmt(r['chi2_per_datum']):>8s} {r['wall_s']:8.1f}")
        ratio = v["time_ratio_inr_sparse"]
        lines.append(f"{'':20s} {'':4s} verdicts: INR r >= max(L2, sparse) r: {_yes(v['inr_ge_best'])}; "
                     f"INR r >= L2 r - 0.05: {_yes(v['inr_ge_l2_minus_0.05'])}; "
                     f"time INR / sparse: {'n/a' if ratio is None else f'{ratio:.2f}'}")
    vs = list(verdicts.values())
    n = len(vs)
    best = [v["inr_ge_best"] for v in vs if v["inr_ge_best"] is not None]
    near = [v["inr_ge_l2_minus_0.05"] for v in vs if v["inr_ge_l2_minus_0.05"] is not None]
    ratios = [v["time_ratio_inr_sparse"] for v in vs if v["time_ratio_inr_sparse"] is not None]
    fails = sum(r["error"] is not None for r in rows)
    med = "n/a" if not ratios else f"{statistics.median(ratios):.2f}"
    lines.append("-" * len(head))
    lines.append(f"count over {n} case-seed(s): INR r >= max(L2, sparse) r: {sum(best)}/{len(best)}; "
                 f"INR r >= L2 r - 0.05: {sum(near)}/{len(near)}; median time INR / sparse: {med}; "
                 f"failed runs: {fails}/{len(rows)}")
    return "\n".join(lines)


def run_methods(case, methods, seed: int, indent: str = "") -> list[dict]:
    """Every method of ``methods`` on one built case, each row printed as it ends; the rows.

    For the single-case benchmarks (``large_mesh.py``, ``scattered_survey.py``,
    ``survey_layouts.py``): :func:`_run_row` on the CPU, one line per method (r, RMS over
    the floor, χ²/N and seconds, or the error), then the wall-time ratio of the first INR
    method to ``simpeg_sparse`` where both ran. Each row carries the case's ``meta``.
    """
    import time
    import types

    run_args = types.SimpleNamespace(quick=False, device="cpu")
    rows = []
    for method in methods:
        t0 = time.perf_counter()
        row = _run_row(method, case, case.name, seed, None, run_args)
        row["meta"] = case.meta
        rows.append(row)
        print(f"{indent}{method}: r {_fmt(row['pearson_r'])}, RMS/floor {_fmt(row['rms_over_floor'])}, "
              f"χ²/N {_fmt(row['chi2_per_datum'])}, {time.perf_counter() - t0:.1f} s"
              + (f" ERROR {row['error']}" if row["error"] else ""), flush=True)
    walls = {r["method"]: r["wall_s"] for r in rows}
    inr = next((m for m in walls if m.startswith("inr")), None)
    if inr and walls.get("simpeg_sparse") and walls.get(inr) is not None:
        print(f"{indent}time {inr} / simpeg_sparse: {walls[inr] / walls['simpeg_sparse']:.2f}", flush=True)
    return rows


def write_rows(path, rows: list[dict]) -> None:
    """The rows of :func:`run_methods` as JSON at ``path`` (None: nothing written)."""
    if path:
        with open(path, "w") as fh:
            json.dump(rows, fh, indent=1, default=str)


def main(argv=None) -> dict:
    args = _parse(argv)
    if args.threads is not None:  # before numpy / torch / numba are imported
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    import numpy as np
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    from gempy_gravinv.cases import suite
    from gempy_gravinv.cases.random_cases import (
        FIELD_PREFIX,
        RANDOM_PREFIX,
        SPARSE_FIELD_PREFIX,
        SPARSE_PREFIX,
        parse_random_name,
        random_by_name,
    )

    drawn = {RANDOM_PREFIX: args.random, FIELD_PREFIX: args.random_fields, SPARSE_PREFIX: args.sparse,
             SPARSE_FIELD_PREFIX: args.sparse_fields}

    if args.cases:
        names = [c.strip() for c in args.cases.split(",") if c.strip()]
    else:
        names = [] if any(k > 0 for k in drawn.values()) else list(suite.SUITE)
    for prefix, count in drawn.items():
        names += [f"{prefix}{args.random_from + i}" for i in range(max(0, count))]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for c in names:
        try:
            is_random = any(parse_random_name(c, prefix) is not None for prefix in drawn)
        except ValueError as exc:
            sys.exit(f"suite.py: {exc}")
        if c not in suite.SUITE and not is_random:
            sys.exit(f"suite.py: unknown case {c!r}; choose from {', '.join(suite.SUITE)} or "
                     + ", ".join(f"{prefix}<seed>" for prefix in drawn))
    for m in methods:
        if m not in METHODS and not m.startswith("inr:"):
            sys.exit(f"suite.py: unknown method {m!r}; choose from {', '.join(METHODS)}")
    seeds = _seeds(args.seeds, suite)
    # imports before any timing, so that no method pays for them
    import simpeg.potential_fields.gravity  # noqa: F401
    import torch._dynamo  # noqa: F401  (torch's optimisers import it when the first one is made)

    import gempy_gravinv.inversion  # noqa: F401
    import gempy_gravinv.simpeg._inversion  # noqa: F401

    def say(msg):
        print(msg, file=sys.stderr, flush=True)

    rows, verdicts = [], {}
    for name in names:
        for seed in seeds:
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(sys.stderr):  # GemPy prints on import; stdout holds the table
                case = random_by_name(name, noise_seed=seed, quick=args.quick)  # data on the CPU
                geometry = None if case is None else case.meta["geometry_seed"]
                if case is None:
                    case = suite.build_case(name, noise_seed=seed, quick=args.quick)
            say(f"[suite] {name} seed {seed}: {case.mesh.n_cells} active cells, {case.survey.n_data} stations, "
                f"built in {time.perf_counter() - t0:.1f} s")
            if geometry is not None:
                m = case.meta
                say(f"[suite]   {m['cell_size_m']:g} m cells {tuple(case.mesh.shape)}, {m['ground']}; stations "
                    f"{m['station_height_cells']:.2f} cells up, {m['station_layout']}; "
                    + ("bodies: " + "; ".join(f"{b['kind']} {b['contrast_kgm3']:+.0f} kg/m³ ({b['n_cells']} cells)"
                                              for b in m["bodies"]) if "bodies" in m else
                       "field: ℓ {length_scale_cells:.1f} cells, ν {nu:g}, max |contrast| {max_abs_kgm3:.0f} "
                       "kg/m³".format(**m["field"])))
            case_rows = {}
            for rep in range(args.repeats):  # in turns, so a slow spell of the machine meets every method
                for method in methods:
                    if rep and case_rows[method]["error"] is not None:
                        continue
                    row = _run_row(method, case, name, seed, geometry, args)
                    if rep == 0:
                        case_rows[method] = row
                    else:
                        if row["pearson_r"] != case_rows[method]["pearson_r"]:
                            say(f"[suite]   {method}: repeat {rep + 1} gave r={row['pearson_r']!r}, the first "
                                f"{case_rows[method]['pearson_r']!r} (the scores are the first run's)")
                        case_rows[method]["walls_s"].append(row["wall_s"])
                        case_rows[method]["wall_s"] = statistics.median(case_rows[method]["walls_s"])
                    say(f"[suite]   {method}: " + (f"r={_fmt(row['pearson_r'])} chi2/N={_fmt(row['chi2_per_datum'])} "
                                                  f"{row['wall_s']:.1f} s" if row["error"] is None
                                                  else f"FAILED: {row['error']}"))
            case_rows = list(case_rows.values())
            rows += case_rows
            verdicts[(name, seed)] = _verdicts(case_rows)
    print(_table(rows, verdicts), flush=True)
    out = {"settings": {"cases": names, "methods": methods, "seeds": seeds, "quick": args.quick,
                        "threads": args.threads, "device": args.device, "torch_threads": torch.get_num_threads(),
                        "cpu_count": os.cpu_count(), "numpy": np.__version__, "torch": torch.__version__},
           "rows": rows,
           "verdicts": [{"case": c, "seed": s, **v} for (c, s), v in verdicts.items()]}
    if args.json:
        from gempy_gravinv._json import to_jsonable

        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(to_jsonable(out), fh, indent=1)
    return out


if __name__ == "__main__":
    main()
