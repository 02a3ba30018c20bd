"""``gempy-gravinv bayes``: Bayesian inversion of a GemPy structural model with gravity."""

from __future__ import annotations

import argparse

from .._validation import check_int, check_number

HELP = "Bayesian GemPy inversion (Pyro NUTS/SVI): posterior NetCDF, summary, figures"

DESCRIPTION = """\
Sample the posterior of a GemPy structural model (dips, surface-point elevations, unit
density contrasts) given gravity stations, with GemPy's soft lithology on mesh cells and
our gravity operator (or GemPy's centered grid), a per-station noise model and a datum
offset. Writes into -o DIR: posterior.nc (ArviZ InferenceData: posterior, prior,
prior_predictive, posterior_predictive, log_likelihood, observed_data, sample_stats),
summary.json (R-hat, ESS, ESS/s, divergences, misfit), summary.csv and figures.

  gempy-gravinv bayes --case tharsis-intrusion --samples 50 --warmup 50 --chains 2 \\
        --subset 60 -o out/
  gempy-gravinv bayes --config my_model.toml -o out/      (schema: --help-config)
  gempy-gravinv bayes --geomodel model.gempy --stations gz.csv --density granite=200 \
        --dip fault1=5 --unit-densities 2.7,2.6,2.9 -o out/
  gempy-gravinv bayes --geomodel gempy:one_fault_gravity --stations gz.csv \
        --density surface2=300 --dip surface1=5 -o out/

--geomodel takes a .gempy/.json file, a built-in name or gempy:EXAMPLE (GemPy's own
examples), with any number of series and faults; priors are given by unit and surface
name, never by row.

Units: metres (z up), kg/m³ density contrast, degrees, g_z in mGal positive downward.
"""

#: built-in cases of ``--case`` (:mod:`gempy_gravinv.cases.bayes`)
CASES = ("tharsis-intrusion",)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``bayes`` sub-command.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The sub-command registry of the main parser.

    Returns
    -------
    argparse.ArgumentParser
    """
    from ._common import int_at_least

    p = subparsers.add_parser("bayes", help=HELP, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--case", choices=CASES, help="built-in case")
    src.add_argument("--config", metavar="FILE", help="TOML/JSON config for your own GeoModel")
    src.add_argument("--geomodel", metavar="MODEL",
                     help="your GemPy model: .gempy/.json file, built-in name or gempy:EXAMPLE")
    p.add_argument("--help-config", action="store_true", help="print the config schema and exit")
    p.add_argument("-o", "--output", default="bayes_output", metavar="DIR", help="output folder")
    p.add_argument("--method", choices=("nuts", "svi"), default="nuts", help="sampler (default nuts)")
    p.add_argument("--samples", type=int_at_least(1), default=600, metavar="N", help="draws per chain (default 600)")
    p.add_argument("--warmup", type=int_at_least(0), default=300, metavar="N", help="warmup steps (default 300)")
    p.add_argument("--chains", type=int_at_least(1), default=2, metavar="N",
                   help="chains, in parallel processes (default 2)")
    p.add_argument("--max-tree-depth", type=int_at_least(1), default=8, metavar="D",
                   help="NUTS max tree depth (default 8)")
    p.add_argument("--target-accept", type=float, default=0.8, help="NUTS target acceptance (default 0.8)")
    p.add_argument("--svi-steps", type=int_at_least(1), default=1000, metavar="N", help="SVI steps (default 1000)")
    p.add_argument("--guide", choices=("normal", "mvn"), default="mvn", help="SVI guide (default mvn)")
    p.add_argument("--subset", type=int_at_least(1), default=None, metavar="K", help="use K stations (seeded subset)")
    p.add_argument("--forward", choices=("mesh", "centered"), default="mesh",
                   help="built-in case: (a) mesh + our operator (default) or (b) GemPy centered grid")
    p.add_argument("--prior-draws", type=int_at_least(0), default=30, metavar="N",
                   help="prior predictive draws (default 30)")
    p.add_argument("--threads", type=int_at_least(1), default=1, metavar="N",
                   help="torch threads (default 1: fastest for small GemPy models)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="random seed (default 0)")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    from ._bayes_geomodel import add_geomodel_arguments
    from ._common import add_overwrite_argument

    add_geomodel_arguments(p)
    add_overwrite_argument(p)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the sub-command: build the case, sample, write NetCDF, summaries and figures.

    Parameters
    ----------
    args : argparse.Namespace
        The options of :func:`add_parser`.

    Returns
    -------
    int
        0 (bad options raise ``ValueError``, reported by the CLI with exit status 2).
    """
    import time

    if args.help_config:
        from ..cases.bayes import CONFIG_SCHEMA

        print(CONFIG_SCHEMA)
        return 0
    if not args.case and not args.config and not args.geomodel:
        raise ValueError("give --case tharsis-intrusion, --config FILE or --geomodel MODEL")
    for name in ("samples", "chains", "threads", "svi_steps", "max_tree_depth"):
        check_int(getattr(args, name), name=f"--{name.replace('_', '-')}", minimum=1)
    check_int(args.warmup, name="--warmup", minimum=0)
    check_number(args.target_accept, name="--target-accept", low=0.0, high=1.0, low_open=True, high_open=True)

    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    try:
        return _run(args, t0)
    except (ValueError, RuntimeError, TypeError, IndexError, KeyError) as exc:
        # Pyro appends a dump of the trace shapes to errors raised inside the model: report
        # one line (GEMPY_GRAVINV_DEBUG=1 shows the traceback and the dump)
        raise ValueError(one_line(exc)) from exc


def one_line(exc: BaseException, limit: int = 400) -> str:
    """The message of an exception on one line, without Pyro's trace-shape dump.

    Parameters
    ----------
    exc : BaseException
        The error.
    limit : int
        Longest message kept, characters.

    Returns
    -------
    str
        The message up to ``Trace Shapes:``, whitespace collapsed, cut at ``limit``.
    """
    msg = " ".join(str(exc).split("Trace Shapes:", 1)[0].split())
    if not msg:
        msg = type(exc).__name__
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def _refuse_unused(args: argparse.Namespace) -> None:
    """Refuse options the chosen source would silently ignore (``--geomodel``'s with a case, and back)."""
    if args.geomodel:
        unused = [o for o, v in (("subset", None), ("forward", "mesh")) if getattr(args, o) != v]
        what = "--geomodel"
    else:
        unused = [o for o, v in getattr(args, "geomodel_defaults", {}).items() if getattr(args, o, v) != v]
        what = "--case" if args.case else "--config"
    if unused:
        names = ", ".join("--" + o.replace("_", "-") for o in unused)
        raise ValueError(f"{names}: not used with {what} (its own settings apply); leave them out")


def _run(args: argparse.Namespace, t0: float) -> int:
    """Build the case, sample, write the outputs (errors are reported by :func:`run`)."""
    import json
    import time

    import numpy as np

    from .. import bayes as B
    from .._json import to_jsonable
    from ..cases import bayes as cases

    _refuse_unused(args)
    if args.geomodel:
        return _run_geomodel(args, t0)
    if args.case:
        case = cases.tharsis_intrusion(subset=args.subset, forward=args.forward, seed=args.seed)
    else:
        case = cases.from_config(args.config, subset=args.subset, seed=args.seed)
    print(f"bayes: {args.case or args.config}: {case.survey.n_data} stations, "
          f"{case.mesh.n_cells} cells, units {case.meta['unit_names']}, forward {case.meta['forward']}",
          flush=True)
    from ..output import BAYES_FILES
    from ._common import hold_output

    out = hold_output(args, BAYES_FILES)  # refuse a non-empty or unwritable folder, lock it
    progress = not args.no_progress
    if args.method == "nuts":
        idata = B.run_nuts(case.model, num_samples=args.samples, warmup=args.warmup,
                           chains=args.chains, target_accept=args.target_accept,
                           max_tree_depth=args.max_tree_depth, seed=args.seed,
                           num_prior=args.prior_draws, progress=progress)
    else:
        idata, _, _ = B.run_svi(case.model, guide=args.guide, steps=args.svi_steps,
                                num_samples=args.samples, seed=args.seed,
                                num_prior=args.prior_draws, progress=progress)
    nc = B.save_netcdf(idata, out / "posterior.nc")
    s = B.summarize(idata)
    table = s.pop("table")
    if table is not None:
        table.to_csv(out / "summary.csv")
    figs = []
    if not args.no_figures:
        figs = B.plot_all(idata, out / "figures", locations=case.survey.locations,
                          geo_model=case.geo_model,
                          section_kwargs={"resolution": (40, 20), "n_draws": 10,
                                          "unit_names": case.meta["unit_names"]})
    s.update({"wall_time_s": time.perf_counter() - t0, "n_stations": case.survey.n_data,
              "meta": case.meta, "args": {k: v for k, v in vars(args).items() if not k.startswith("_")},
              "netcdf": nc, "figures": [str(f) for f in figs]})
    # strict JSON: NaN (R-hat of one chain, a missing misfit) becomes null
    (out / "summary.json").write_text(json.dumps(to_jsonable(s), indent=2, allow_nan=False))
    if table is not None:
        print(table[["mean", "sd", "r_hat", "ess_bulk"]].to_string(float_format=lambda v: f"{v:.3g}"))
    print(f"max R-hat {s['max_rhat']:.3f}, min ESS {s['min_ess_bulk']:.1f}, "
          f"ESS/s {s['ess_per_s']:.3g}, divergences {s['divergences']}, "
          f"RMS misfit {s.get('rms_misfit_mgal', np.nan):.3g} mGal; "
          f"wall {s['wall_time_s']:.0f} s -> {out}")
    return 0


def _run_geomodel(args: argparse.Namespace, t0: float) -> int:
    """``--geomodel``: build the problem by name, sample, write NetCDF, summaries and figures."""
    import json
    import time

    from .. import bayes as B
    from .._json import to_jsonable
    from ..output import BAYES_FILES
    from ._bayes_geomodel import build_problem, write_figures
    from ._common import hold_output

    problem, meta = build_problem(args)
    print(f"bayes: {args.geomodel}: {problem.survey.n_data} stations, units {problem.unit_names}, "
          f"random: densities {problem.density_units}, dips {problem.dips.labels}, "
          f"surface points {problem.sp_z.labels}", flush=True)
    out = hold_output(args, BAYES_FILES)
    progress = not args.no_progress
    if args.method == "nuts":
        idata = problem.run(chains=args.chains, num_samples=args.samples, warmup=args.warmup, seed=args.seed,
                            num_prior=args.prior_draws, progress=progress, target_accept=args.target_accept,
                            max_tree_depth=args.max_tree_depth)
    else:
        idata = problem.run(method="svi", num_samples=args.samples, seed=args.seed, num_prior=args.prior_draws,
                            progress=progress, steps=args.svi_steps, guide=args.guide)
    nc = B.save_netcdf(idata, out / "posterior.nc")
    s = B.summarize_problem(idata)
    table = s.pop("table")
    if table is not None:
        table.to_csv(out / "summary.csv")
    figs = [] if args.no_figures else write_figures(problem, idata, out / "figures")
    s.update({"wall_time_s": time.perf_counter() - t0, "n_stations": problem.survey.n_data, "meta": meta,
              "args": {k: v for k, v in vars(args).items() if not k.startswith("_")},
              "netcdf": nc, "figures": [str(f) for f in figs]})
    (out / "summary.json").write_text(json.dumps(to_jsonable(s), indent=2, allow_nan=False))
    if table is not None:
        print(table[["mean", "sd", "r_hat", "ess_bulk"]].to_string(float_format=lambda v: f"{v:.4g}"))
    if s["unconstrained"]:
        from gempy_gravinv.bayes._report import UNCONSTRAINED_RATIO

        print(f"not constrained by the data (posterior sd >= {UNCONSTRAINED_RATIO:.0%} of prior sd): "
              f"{', '.join(s['unconstrained'])}")
    print(f"max R-hat {s['max_rhat']:.3f}, min ESS {s['min_ess_bulk']:.1f}, divergences {s['divergences']}, "
          f"RMS misfit {s.get('rms_misfit_mgal', float('nan')):.3g} mGal; wall {s['wall_time_s']:.0f} s -> {out}")
    return 0
