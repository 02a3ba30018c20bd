"""``gempy-gravinv mesh``: a UBC tensor mesh designed from a station file (and the ground)."""

from __future__ import annotations

import argparse

HELP = "design a UBC tensor mesh for a station file: cell size, depth and padding from the stations"

DESCRIPTION = """\
Design a tensor mesh for a survey and write it as a UBC-GIF mesh file, for `invert
--mesh`, `compare --mesh`, SimPEG or any UBC-GIF tool. `invert` and `compare` without
--mesh design the same mesh themselves.

The rules (metres; each can be given instead):
  cell size   the median distance from a station to its nearest neighbour (two
              significant figures; cubic cells), grown until the mesh has at most
              --max-cells cells (padding included)
  depth       half the stations' larger horizontal extent, below the lowest station or
              ground point (a source deeper than that makes a field wider than the survey)
  core        the stations' extent plus max(cell, extent / 10) on each side; a station
              near the stations' centre sits at the centre of a cell column
  padding     cells growing by 1.3 until they reach the depth beyond the core on each
              side, half of it below (--no-padding: none)
  top         flat at the lowest station (stations on the ground), or at --ground-elevation
              (airborne data); with --topography at the ground's highest point, the cells
              above the ground inactive (the active-cell model is written with --active-out)

Writes OUT (UBC-GIF mesh) and OUT with the suffix .json (the design and its reasons).
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``mesh`` sub-command."""
    p = subparsers.add_parser("mesh", help=HELP, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stations", metavar="STATIONS", help="stations: CSV, UBC-GIF GRAV3D file or GeoJSON (m, z up)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="UBC-GIF mesh file to write")
    p.add_argument("--topography", metavar="FILE",
                   help="ground points x, y, z (m, z up; CSV, text or UBC topo file)")
    p.add_argument("--active-out", metavar="FILE",
                   help="also write the active cells (1 below the ground, 0 above) as a UBC model file")
    p.add_argument("--stations-format", default="auto", choices=["auto", "csv", "ubc"],
                   help="force the stations file format")
    p.add_argument("--crs", default=None, metavar="CRS",
                   help="projected CRS in metres of the mesh (e.g. EPSG:25830): GeoJSON stations are reprojected")
    p.add_argument("--overwrite", action="store_true", help="replace OUT (and --active-out) if they exist")
    from ._mesh_args import add_design_arguments

    add_design_arguments(p.add_argument_group("the design"))
    return p


def run(args: argparse.Namespace) -> int:
    """Design the mesh and write it; returns the exit status."""
    import json
    from pathlib import Path

    import numpy as np

    from gempy_gravinv import mesh_from_survey
    from gempy_gravinv.io import read_stations, read_topography, write_ubc_model

    from ._mesh_args import design_options

    outs = [Path(args.output), Path(args.output).with_suffix(".json")]
    if args.active_out:
        if not args.topography:
            raise ValueError("--active-out writes the cells below the ground: give --topography")
        outs.append(Path(args.active_out))
    for path in outs:  # checked before any work
        if path.is_dir():
            raise ValueError(f"{path} is a folder: give a file name")
        if not path.parent.is_dir():
            raise ValueError(f"{path}: folder {path.parent} does not exist")
        if path.exists() and not args.overwrite:
            raise ValueError(f"{path} exists: pass --overwrite to replace it, or give another file name")
    survey = read_stations(args.stations, format=args.stations_format, to_crs=args.crs)
    topo = read_topography(args.topography) if args.topography else None
    mesh, design = mesh_from_survey(survey, topography=topo, **design_options(args))
    dmesh = mesh.source
    dmesh.write_UBC(str(outs[0]))
    outs[1].write_text(json.dumps(design.to_dict(), indent=2) + "\n", encoding="utf-8")
    if args.active_out:
        active = np.ones(dmesh.n_cells) if mesh.active_cells is None else mesh.active_cells.astype(float)
        write_ubc_model(outs[2], dmesh, active)
    print(f"{survey.n_data} stations, {design.n_active:,} active cells of {design.n_cells:,}")
    print("wrote " + ", ".join(str(p) for p in outs))
    return 0
