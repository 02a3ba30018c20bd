"""The mesh of a command: a UBC file (``--mesh``) or one designed from the stations."""

from __future__ import annotations

import argparse

#: what a designed mesh writes into the output folder
MESH_FILES = ("mesh.msh", "mesh_design.json")


def add_mesh_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``--mesh`` and the options of a mesh designed from the stations without it."""
    p.add_argument("--mesh", metavar="MESH",
                   help="UBC-GIF mesh file (tensor or OcTree); without it, a tensor mesh is designed from the "
                        "stations (and --topography) and written to DIR/mesh.msh")
    add_design_arguments(p.add_argument_group("a mesh designed from the stations (without --mesh; see "
                                              "`gempy-gravinv mesh`)"))


def add_design_arguments(g) -> None:
    """Add the options of :func:`gempy_gravinv.mesh_from_survey` (each derived when not given) to a group."""
    g.add_argument("--cell-size", type=float, default=None, metavar="M",
                   help="core cell edge, m (default: the median station spacing, grown to fit --max-cells)")
    g.add_argument("--depth", type=float, default=None, metavar="M",
                   help="core depth below the lowest station or ground point, m (default: half the stations' "
                        "larger horizontal extent)")
    g.add_argument("--max-cells", type=int, default=None, metavar="N",
                   help="most cells of the designed mesh, padding included (default 100000)")
    g.add_argument("--no-padding", dest="padding", action="store_false", default=None,
                   help="end the mesh at its core (default: padding cells growing by 1.3 around and below it)")
    g.add_argument("--ground-elevation", type=float, default=None, metavar="Z",
                   help="flat ground's elevation below the stations, m (default: the lowest station, the "
                        "stations taken to stand on the ground; airborne data: give the ground)")


def design_options(args: argparse.Namespace) -> dict:
    """The designed mesh's options given on the command line (``cell_size``, ``depth``, ...)."""
    return {k: getattr(args, k, None) for k in ("cell_size", "depth", "max_cells", "ground_elevation", "padding")
            if getattr(args, k, None) is not None}


def mesh_of(args: argparse.Namespace, survey):
    """The command's mesh: ``(discretize mesh, PrismMesh with its active cells, MeshDesign or None)``.

    ``--mesh`` reads the file (cells below ``--topography`` or non-zero in
    ``--active-model`` active); without it, :func:`gempy_gravinv.mesh_from_survey` designs
    a tensor mesh from the stations of ``survey`` and ``--topography``.

    Raises
    ------
    ValueError
        Design options given with ``--mesh``, or ``--active-model`` without it.
    FileNotFoundError
        ``--mesh`` names no file.
    """
    from pathlib import Path

    from gempy_gravinv import as_prism_mesh, mesh_from_survey
    from gempy_gravinv.io import read_topography, read_ubc_mesh

    from ._common import active_cells

    options = design_options(args)
    if getattr(args, "mesh", None):
        if options:
            given = ", ".join("--no-padding" if k == "padding" else "--" + k.replace("_", "-") for k in options)
            raise ValueError(f"{given} design a mesh from the stations: not with --mesh {args.mesh}")
        if not Path(args.mesh).exists():
            raise FileNotFoundError(f"mesh file not found: {args.mesh}")
        dmesh = read_ubc_mesh(args.mesh)
        return dmesh, as_prism_mesh(dmesh, active_cells=active_cells(args, dmesh, survey.locations)), None
    if getattr(args, "active_model", None):
        raise ValueError("--active-model holds values on the cells of a mesh: give that mesh with --mesh")
    topo = read_topography(args.topography) if getattr(args, "topography", None) else None
    mesh, design = mesh_from_survey(survey, topography=topo, **options)
    return mesh.source, mesh, design


def write_mesh(out, dmesh, design) -> list:
    """Write a designed mesh into the folder ``out``: ``mesh.msh`` (UBC-GIF) and ``mesh_design.json``; their paths.

    A ``mesh.msh`` already there (a run resumed in its folder) must be this mesh: the
    folder's model files are on it, so another mesh is refused before anything is written.
    """
    import json
    import os
    from pathlib import Path

    paths = [Path(out) / name for name in MESH_FILES]
    tmp = paths[0].with_name(paths[0].name + ".tmp")
    dmesh.write_UBC(str(tmp))
    if paths[0].exists() and paths[0].read_bytes() != tmp.read_bytes():
        tmp.unlink()
        raise ValueError(f"{paths[0]} holds another mesh than the one designed from these stations and options "
                         f"({design.summary()}); the files in {out} are on it: resume with the stations and mesh "
                         "options of that run, or pass --overwrite (or another -o) to start a new one")
    os.replace(tmp, paths[0])
    paths[1].write_text(json.dumps(design.to_dict(), indent=2) + "\n", encoding="utf-8")
    return paths
