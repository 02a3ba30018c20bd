"""``gempy-gravinv invert``: INR inversion of user stations on a UBC mesh."""

from __future__ import annotations

import argparse

HELP = "invert g_z stations for a density contrast on a UBC mesh (INR)"

DESCRIPTION = """\
Invert observed gravity for a density contrast field with an implicit neural
representation on the cells of a UBC-GIF mesh.

STATIONS  CSV (x, y, z, gz, std; metres z up, mGal POSITIVE DOWNWARD), UBC-GIF GRAV3D
          observation file, or GeoJSON points (g_z in --value-property; a projected CRS
          in metres, --crs reprojects). Without a std column, give --std (mGal) or
          --relative-std; --std also replaces a std column (with a warning).
          A `component` column (CSV; `component` property in GeoJSON) names each
          row's gravity component (gz, gzz, gxz...; absent: gz): data and std of
          gradients are in Eotvos (z up, SimPEG's signs), of gx, gy, gz in mGal.
          --relative-std then scales each component's own spread.
--mesh    UBC-GIF tensor (or OcTree) mesh; all cells are inverted for, or only those
          below the ground of --topography (or non-zero in --active-model); stations
          must lie above or on the faces of the cells. Without --mesh, a tensor mesh is
          designed from the stations (cells of the median station spacing, as deep as half
          the survey is wide, padding; --cell-size, --depth, --max-cells, --no-padding; the
          top at the lowest station, at --ground-elevation, or on the ground of
          --topography) and written to DIR/mesh.msh with DIR/mesh_design.json
          (`gempy-gravinv mesh` writes it alone).
--config  JSON or TOML file of INRConfig fields (`preset = "paper"` starts from the
          paper's settings); command-line options override it.

Writes model files (NetCDF, VTK, UBC model in g/cm³), observed/predicted/residual data
(inr_data.csv, inr_data.nc), metrics.json, history.json and figures into -o DIR.

Several processes: `torchrun --nproc_per_node N -m gempy_gravinv invert ...` splits the
stations over N ranks (gloo on CPUs, NCCL on GPUs; docs/distributed.md); rank 0 alone
writes, and metrics.json records world_size and rank_stations.
A non-empty DIR is refused unless --overwrite (removes only the files this program
writes) or --resume. Checkpoints go to DIR/checkpoint/; --resume continues a killed or
interrupted run (Ctrl-C writes the best state so far and exits with status 130).
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``invert`` sub-command."""
    from ._common import int_at_least

    p = subparsers.add_parser("invert", help=HELP, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stations", metavar="STATIONS", help="stations with gz (and std): CSV or UBC obs")
    from ._mesh_args import add_mesh_arguments

    add_mesh_arguments(p)
    p.add_argument("--config", metavar="FILE", help="INRConfig as JSON or TOML")
    p.add_argument("--backend", default=None,
                   help="density backend: inr (default), voxel (comparison), geology or hybrid (GemPy, see --geomodel)")
    p.add_argument("--preset", choices=["ours", "auto", "compact", "smooth", "matern", "periodic", "spectral", "paper"],
                   default=None,
                   help="base settings (default auto: every scale and the prior from the problem; ours: the "
                        "plain network; compact: minimum-support prior for bodies in a quiet "
                        "background; smooth: smooth fields; matern: a smooth Gaussian field whose covariance "
                        "(period, length, smoothness) the data choose, in closed form with a posterior std, the "
                        "model auto uses for distributed sources; periodic: smooth fields that wrap around the "
                        "mesh box, as FFT-generated random fields do; spectral: the same assumption with a Gaussian "
                        "prior, solved in closed form with a posterior std; paper: Mishra et al.)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.add_argument("--std", type=float, default=None, metavar="STD",
                   help="data std when the file has none, in the data's unit (mGal; Eötvös for gradients)")
    p.add_argument("--noise", default=None, choices=["stated", "report", "estimate"],
                   help="noise the misfit targets: the stated std (default), the stated std with the estimate from "
                        "the data reported beside it, or that estimate (then the file may have no std)")
    p.add_argument("--start-fallback", action=argparse.BooleanOptionalAction, default=None,
                   help="where the model from the least-squares start leaves correlated residuals, train once more "
                        "from the network's own start and keep the run that explains the data's shape (on in the "
                        "default auto; --no-start-fallback keeps the first run)")
    p.add_argument("--relative-std", type=float, default=None, metavar="FRAC",
                   help="data std = FRAC x std(gz) when the file has none")
    p.add_argument("--bounds", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="density contrast bounds, kg/m³")
    p.add_argument("--members", type=int_at_least(1), default=None, metavar="N",
                   help="ensemble members (member k uses seed + k: space the seeds of compared ensembles by N)")
    p.add_argument("--max-steps", type=int_at_least(1), default=None, help="maximum optimiser steps")
    p.add_argument("--seed", type=int_at_least(0), default=None, help="seed")
    p.add_argument("--device", default=None, help="torch device: cpu, cuda, auto")
    p.add_argument("--threads", type=int_at_least(1), default=None, metavar="N", help="torch threads during the run")
    p.add_argument("--checkpoint-every", type=int_at_least(1), default=None, metavar="N",
                   help="steps between checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint/ if present")
    from ._common import add_active_arguments, add_overwrite_argument, add_prior_argument

    add_prior_argument(p)
    add_overwrite_argument(p)
    add_active_arguments(p)
    p.add_argument("--stations-format", default="auto", choices=["auto", "csv", "ubc"])
    p.add_argument("--value-property", default=None, metavar="NAME",
                   help="GeoJSON stations: the feature property holding g_z (mGal, positive down)")
    p.add_argument("--std-property", default=None, metavar="NAME",
                   help="GeoJSON stations: the feature property holding each station's std (mGal; Eötvös for "
                        "gradients)")
    p.add_argument("--crs", default=None, metavar="CRS",
                   help="projected CRS in metres of the mesh (e.g. EPSG:25830): GeoJSON stations are reprojected")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    from ._geology_args import add_arguments as _add_geology_arguments  # light import

    _add_geology_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the inversion; returns 0, or 1 where the model NetCDF, UBC model or data CSV could not be written.

    Bad input raises ValueError/FileNotFoundError. Under ``torchrun`` (several ranks) the
    ranks join first and then read the inputs (a rank that cannot read them fails the
    run on every rank); the stations are sharded; rank 0 alone prints and writes the
    outputs.
    """
    from ._common import with_process_group

    return with_process_group(_run, args)


def _group_device(args: argparse.Namespace) -> str:
    """The device the settings will name, which picks the process group's backend (read before the inputs)."""
    from gempy_gravinv.inversion import INRConfig

    if args.device is not None:
        return args.device
    if args.config:
        return INRConfig.from_file(args.config).device
    return INRConfig.preset(args.preset).device if args.preset else INRConfig.default().device


def _read_inputs(args: argparse.Namespace, over: dict):
    """The stations (with their std), the settings and the mesh: ``(survey, cfg, mesh, MeshDesign or None)``."""
    import warnings

    import numpy as np

    from gempy_gravinv import io as gio
    from gempy_gravinv._distributed import is_main
    from gempy_gravinv.inversion import INRConfig

    from ._common import check_device
    from ._mesh_args import mesh_of

    survey = gio.read_stations(args.stations, format=args.stations_format, to_crs=args.crs,
                               value_property=getattr(args, "value_property", None),
                               std_property=getattr(args, "std_property", None))
    if args.config:
        cfg = INRConfig.from_file(args.config)
    elif args.preset or args.backend not in (None, "inr"):
        cfg = INRConfig.preset(args.preset or "ours")
    else:  # no choice made: the default, adapted to the survey's components
        cfg = INRConfig.default(survey)
    if args.bounds is not None and cfg.output == "linear":
        raise ValueError("--bounds needs a bounded output (config output 'tanh' or 'sigmoid')")
    cfg = INRConfig.from_dict({**cfg.to_dict(), **over, "preset": "ours"})
    geojson = str(args.stations).lower().endswith((".geojson", ".json"))  # the reader's choice by extension
    if not survey.has_data:
        hint = " (GeoJSON: name it with --value-property)" if geojson else ""
        raise ValueError(f"{args.stations}: no gz column{hint}: the inversion needs observed data "
                         "(mGal, positive down)")
    if args.std is not None and len(set(survey.units.tolist())) > 1 and is_main():
        warnings.warn(f"{args.stations} mixes mGal and Eötvös data ({', '.join(survey.component_groups())}); "
                      f"--std {args.std} applies to both: --relative-std scales each component's spread",
                      UserWarning, stacklevel=2)
    if survey.std is not None and args.std is not None:
        if is_main():
            unit = " and ".join(sorted(set(survey.units.tolist())))
            warnings.warn(f"{args.stations} has a std column; --std {args.std} {unit} replaces it", UserWarning,
                          stacklevel=2)
        survey = survey.with_data(survey.gz, float(args.std))
    if survey.std is None:
        if args.std is not None:
            std = np.full(survey.n_data, float(args.std))
        elif args.relative_std is not None:  # each component's own spread (mGal or Eötvös)
            std = np.empty(survey.n_data)
            for rows in survey.component_groups().values():
                std[rows] = float(args.relative_std) * float(np.std(survey.gz[rows]))
        elif cfg.noise != "estimate":
            prop = " (GeoJSON: --std-property NAME)" if geojson else ""
            raise ValueError(f"{args.stations}: no std column{prop}; pass --std STD or --relative-std FRAC, "
                             "or --noise estimate")
        else:
            std = None  # the inversion estimates it
        if std is not None:
            survey = survey.with_data(survey.gz, std)
    _, mesh, design = mesh_of(args, survey)
    check_device(cfg.device, "device")
    return survey, cfg, mesh, design


def _run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    import numpy as np

    from gempy_gravinv._distributed import init_distributed, is_main, run_on_all
    from gempy_gravinv.inversion import InversionInterrupted, invert_inr
    from gempy_gravinv.output import INVERSION_FILES, save_inversion

    from ._common import EXIT_INTERRUPTED, check_device, count_written, finish_interrupted, hold_output, prior_overrides

    if args.device is not None:
        check_device(args.device)
    if args.config and args.preset:
        raise ValueError("give --preset or --config, not both (a config file takes a `preset = ...` key)")
    over = {k: v for k, v in dict(backend=args.backend, n_members=args.members, max_steps=args.max_steps,
                                   seed=args.seed, device=args.device, checkpoint_every=args.checkpoint_every,
                                   num_threads=args.threads, noise=args.noise,
                                   bounds=None if args.bounds is None else tuple(args.bounds)).items()
            if v is not None}
    if args.no_progress:
        over["progress"] = False
    if args.start_fallback is not None:
        over["start_fallback"] = args.start_fallback
    over.update(prior_overrides(args))
    # join the other ranks first (one process: nothing to do), then read the inputs: a rank that cannot read
    # them fails the run on every rank instead of leaving the others waiting for it
    env = init_distributed(check_device(_group_device(args), "device"))
    survey, cfg, mesh, design = run_on_all(lambda: _read_inputs(args, over), "reading the inputs")
    main_rank = is_main()
    say = print if main_rank else (lambda *a, **k: None)
    from ._mesh_args import MESH_FILES, write_mesh

    out = run_on_all(lambda: hold_output(args, (*INVERSION_FILES, *MESH_FILES), resume=args.resume) if main_rank
                     else Path(args.output), "preparing the output folder")
    if design is not None and main_rank:
        write_mesh(out, mesh.source, design)
        say(f"the designed mesh: {out}/mesh.msh, {out}/mesh_design.json", flush=True)
    ranks = f" on {env.world_size} ranks" if env.world_size > 1 else ""
    say(f"invert: {survey.n_data} stations, {mesh.n_cells} cells, backend={cfg.backend}, "
        f"encoding={cfg.encoding}, bounds={cfg.bounds} kg/m³{ranks}", flush=True)
    from ._geology_args import finish as _geology_finish
    from ._geology_args import prepare as _geology_prepare

    density = run_on_all(lambda: _geology_prepare(args, mesh, cfg), "preparing the backend")  # None but for GemPy
    try:
        res = invert_inr(survey, mesh, cfg, checkpoint=out / "checkpoint", resume=args.resume, density=density)
    except InversionInterrupted as exc:
        return finish_interrupted(args, exc, out, figures=not args.no_figures) if main_rank else EXIT_INTERRUPTED
    if not main_rank:  # rank 0 alone writes
        return 0
    written = save_inversion(res, out, figures=not args.no_figures, name="inr")
    written.update(_geology_finish(args, res, density, out))
    said, error = count_written(written, out, "invert")
    from gempy_gravinv._components import UNITS

    rms = ", ".join(f"{float(np.sqrt(np.mean((res.predicted[r] - survey.gz[r]) ** 2))):.4g} {UNITS[c]}"
                    + ("" if survey.is_gz_only else f" ({c})") for c, r in survey.component_groups().items())
    n_runs = int(res.timings.get("runs", 1))
    runs = f" over {n_runs} training runs (each up to --max-steps)" if n_runs > 1 else ""
    print(f"chi2/N = {res.chi2:.3f}, RMS misfit = {rms}, model in [{res.model.min():.1f}, "
          f"{res.model.max():.1f}] kg/m³, {res.timings['steps']} steps{runs}, {res.timings['train']:.1f} s "
          f"({res.stop_reason}{'; stations per rank ' + str(res.timings['rank_stations']) if ranks else ''}); "
          f"{said}")
    for what, sel in (("prior", res.prior_selection), ("regional", res.regional_selection),
                      ("noise", res.noise_estimate), ("start", res.start_selection),
                      ("coordinates", res.coordinate_selection), ("residuals", res.residual_check)):
        if sel is None:
            continue
        rule = sel["rule"]  # what the data chose, and why; a setting to try, named as this command takes it
        if "advice" in sel:
            rule = f"{sel['finding']}; --{sel['advice']['option'].replace('_', '-')} {sel['advice']['effect']}"
        print(f"{what}: {rule}")
    if error is not None:
        print(error, file=sys.stderr, flush=True)
        return 1
    return 0
