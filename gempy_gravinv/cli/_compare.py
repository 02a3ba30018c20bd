"""``gempy-gravinv compare``: INR vs SimPEG (L2 and sparse) on the same survey and mesh.

Two forms::

    gempy-gravinv compare STATIONS [--mesh MESH] -o DIR [--true MODEL] [--methods ...]
    gempy-gravinv compare --case dipping_block|smooth_grf|tharsis [-o DIR] [--quick]

``STATIONS``: a station file (CSV, UBC .obs, GeoJSON; g_z in mGal positive down, with a
std column or ``--std``); ``MESH``: a UBC tensor mesh file (without it, one designed from the
stations, written to DIR/mesh.msh). Writes comparison.md/.csv/.json, figures and the models
(npz + UBC) to DIR.
"""

from __future__ import annotations

import argparse

_METHODS = ("inr", "inr_paper", "simpeg_l2", "simpeg_sparse")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``compare`` on the dispatcher's subparsers."""
    p = subparsers.add_parser(
        "compare", help="INR vs SimPEG L2/sparse inversions on the same data and mesh",
        description="Run the INR inversion (our and the paper's settings) and SimPEG's L2 and sparse "
                    "(IRLS) inversions on the same survey and mesh; write one table (χ²/N, RMS misfit, "
                    "RMS density error, r, per-layer r, wall time, peak memory, device) and figures. "
                    "Units: kg/m³ contrast, mGal positive down, metres z up.")
    p.add_argument("stations", nargs="?", help="station file (CSV / UBC .obs / GeoJSON), mGal positive down")
    p.add_argument("--case", choices=("dipping_block", "smooth_grf", "tharsis"),
                   help="a built-in case instead of STATIONS/--mesh")
    p.add_argument("-o", "--output", default=None, help="output directory (default: compare_<case>_output)")
    p.add_argument("--quick", action="store_true", help="small settings for a fast smoke run")
    p.add_argument("--methods", nargs="+", choices=_METHODS, default=list(_METHODS),
                   help="methods to run (default: all)")
    p.add_argument("--value-property", default=None,
                   help="GeoJSON feature property holding g_z (mGal, positive down), e.g. VALU_BOU267")
    p.add_argument("--std-property", default=None, metavar="NAME",
                   help="GeoJSON feature property holding each station's std (mGal)")
    p.add_argument("--std", type=float, default=None,
                   help="data std in mGal for station files without one")
    p.add_argument("--true", default=None, help="UBC model file of the true contrast (kg/m³) on MESH")
    p.add_argument("--bounds", type=float, nargs=2, default=None, metavar=("LOWER", "UPPER"),
                   help="contrast bounds of the SimPEG inversions, kg/m³")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, auto)")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument("--cv", type=int, default=None, metavar="K",
                   help="also K-fold cross-validation over the stations: every method and a thin-plate spline "
                        "predict the stations they did not see (station_cv.md/.json); default 5 for "
                        "--case tharsis (0 with --quick), 0 otherwise; 0 skips it")
    from ._common import add_active_arguments, add_overwrite_argument, add_prior_argument
    from ._mesh_args import add_mesh_arguments

    add_mesh_arguments(p)
    add_prior_argument(p, " (with STATIONS)")
    add_overwrite_argument(p)
    add_active_arguments(p)
    return p


def run(args) -> int:
    """Run the comparison; returns the exit status."""
    import os

    os.environ.setdefault("MPLBACKEND", "Agg")
    from pathlib import Path

    import numpy as np

    from gempy_gravinv import compare
    from gempy_gravinv.output import COMPARE_FILES

    from ._common import check_device, hold_output, prior_overrides
    from ._mesh_args import MESH_FILES, design_options, mesh_of, write_mesh

    check_device(args.device)
    if args.cv is not None and (args.cv < 0 or args.cv == 1):
        raise ValueError(f"--cv must be 0 (none) or at least 2 folds, got {args.cv}")
    if args.case is not None:
        if args.stations or args.mesh or design_options(args):
            raise ValueError("give either --case or STATIONS [--mesh], not both")
        if prior_overrides(args):
            raise ValueError("--prior applies to STATIONS: a --case keeps its own INR settings")
        args.output = args.output or f"compare_{args.case}_output"
        out = hold_output(args, COMPARE_FILES)
        comp = compare.run_case(args.case, out, quick=args.quick, methods=args.methods, device=args.device,
                                figures=not args.no_figures, cv_folds=args.cv)
    else:
        if not args.stations:
            raise ValueError("give STATIONS [--mesh MESH] (or --case NAME)")
        if args.true is not None and not args.mesh:
            raise ValueError("--true holds a model on the cells of a mesh: give that mesh with --mesh")
        from gempy_gravinv.io import read_stations, read_ubc_model

        survey = read_stations(args.stations, value_property=args.value_property, std_property=args.std_property)
        geojson = args.stations.lower().endswith((".geojson", ".json"))  # the reader's choice by extension
        if not survey.has_data:
            hint = " (GeoJSON: pass --value-property NAME)" if geojson else ""
            raise ValueError(f"{args.stations} has no g_z values to invert{hint}")
        if survey.std is None:
            if args.std is None:
                prop = " or --std-property NAME" if geojson else ""
                raise ValueError(f"{args.stations} has no std column: pass --std (mGal){prop}")
            if args.std <= 0:
                raise ValueError(f"--std must be > 0 mGal, got {args.std}")
            survey = survey.with_data(survey.gz, args.std)
        if args.cv and args.cv > survey.n_data:  # refused before any inversion runs or file is written
            raise ValueError(f"--cv {args.cv} folds need at least {args.cv} stations, "
                             f"{args.stations} has {survey.n_data}")
        dmesh, mesh, design = mesh_of(args, survey)
        if mesh.shape is None:
            raise ValueError("compare needs a tensor mesh (UBC tensor mesh file), not an octree")
        true = None if args.true is None else read_ubc_model(args.true, dmesh)
        if true is not None and mesh.active_cells is not None:
            true = np.asarray(true, float)[mesh.active_cells]
        args.output = args.output or "compare_output"
        out = hold_output(args, (*COMPARE_FILES, *MESH_FILES))
        if design is not None:
            write_mesh(out, dmesh, design)
            print(f"the designed mesh: {out}/mesh.msh, {out}/mesh_design.json", flush=True)
        inr_over = {**({"max_steps": 300} if args.quick else {}), **prior_overrides(args)}
        comp = compare.run_comparison(survey, mesh, true=true, methods=args.methods,
                                      bounds=None if args.bounds is None else tuple(args.bounds),
                                      device=args.device, name=Path(args.stations).stem,
                                      simpeg_options=({"max_iter": 15, "max_irls_iterations": 10}
                                                      if args.quick else None),
                                      inr_overrides=inr_over or None,
                                      inr_paper_overrides={"max_steps": 150} if args.quick else None)
        compare.write_report(comp, out, figures=not args.no_figures)
        if args.cv:
            cv_methods = ["tps"] + [m for m in args.methods if m in compare.CV_METHODS]
            comp.station_cv = compare.station_cv(
                survey, mesh, methods=cv_methods, k=args.cv, bounds=None if args.bounds is None else tuple(args.bounds),
                inr_preset="auto", inr_overrides=inr_over or None,
                simpeg_options={"max_iter": 15, "max_irls_iterations": 10} if args.quick else None, device=args.device)
            comp.station_cv.write(out)
    print(Path(out, "comparison.md").read_text(encoding="utf-8"))
    if comp.station_cv is not None:
        print(Path(out, "station_cv.md").read_text(encoding="utf-8"))
    print(f"written to {out}/")
    return 0
