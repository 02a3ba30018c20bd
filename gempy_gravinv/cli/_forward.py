"""``gempy-gravinv forward``: g_z (or other gravity components) of a UBC density model at stations (CSV out)."""

from __future__ import annotations

import argparse

HELP = "predict g_z (mGal, positive down) or other components of a UBC mesh + density model (g/cm³) at stations"

DESCRIPTION = """\
Forward-model the vertical gravity of a density model on a UBC-GIF mesh.

MESH      UBC-GIF 3-D tensor or OcTree mesh file.
MODEL     UBC-GIF model file on MESH, density in g/cm³ (absolute or contrast; see
          --reference-density). Cells holding -99999 or -100 are inactive and carry
          no mass; all other cells are active prisms. NaN/inf values are refused
          (naming the line), so are values beyond 100 (a model in kg/m³); absolute
          densities without --reference-density get a warning.
STATIONS  CSV (x, y, z[, gz[, std]], metres, z up; units in the header such as
          "z (ft)" are converted), UBC-GIF GRAV3D survey/obs file, or GeoJSON points
          (.geojson, a projected CRS in metres; --crs reprojects lon/lat), chosen by
          extension or by content. Stations inside cells are refused; stations below
          the mesh or far from it (10x its width) too, unless --allow-outside-stations.

Writes CSV x,y,z,gz with gz the predicted gravity anomaly in mGal, POSITIVE DOWNWARD
(excess mass below a station gives positive gz; GRAV3D's sign; the opposite of SimPEG's).

Other components: --component gzz,gxz,gyz (or repeated) predicts each listed component at
every station (the rows of a station consecutive); a `component` column in a CSV stations
file (or property in GeoJSON) names one per row instead. The CSV then has columns
x,y,z,component,data: gx, gy, gz in mGal (gz positive down), the gradients gxx, gxy, gxz,
gyy, gyz, gzz, guv in Eotvos (z up, SimPEG's signs: gzz positive above excess mass).

Several processes: `torchrun --nproc_per_node N -m gempy_gravinv forward ...` splits the
stations over N ranks (each builds only its block); rank 0 gathers and writes the CSV.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``forward`` sub-command."""
    p = subparsers.add_parser("forward", help=HELP, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mesh", metavar="MESH", help="UBC-GIF mesh file (tensor or OcTree)")
    p.add_argument("model", metavar="MODEL", help="UBC-GIF density model file, g/cm³")
    p.add_argument("stations", metavar="STATIONS", help="stations: CSV or UBC-GIF GRAV3D file")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output CSV of predicted gz (mGal, positive down)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists (never an input file)")
    p.add_argument("--device", default="auto", help="torch device: auto (CUDA if present), cpu, cuda")
    p.add_argument("--store", default="auto", choices=["auto", "dense", "matrix_free"],
                   help="keep the sensitivity matrix (dense) or recompute it in chunks")
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"],
                   help="floating-point precision of the kernels (default float64)")
    p.add_argument("--reference-density", type=float, default=0.0, metavar="G_CC",
                   help="density subtracted from the model, g/cm³ (default 0: the model is a contrast)")
    p.add_argument("--stations-format", default="auto", choices=["auto", "csv", "ubc"],
                   help="force the stations file format")
    p.add_argument("--crs", default=None, metavar="CRS",
                   help="projected CRS in metres of the mesh (e.g. EPSG:25830): GeoJSON stations are "
                        "reprojected into it")
    p.add_argument("--allow-outside-stations", action="store_true",
                   help="warn instead of failing for stations below the mesh or far from it")
    p.add_argument("--component", action="append", default=None, metavar="NAME[,NAME...]",
                   help="gravity component(s) predicted at every station (repeatable or a comma list): gz (default), "
                        "gx, gy (mGal) or gxx, gxy, gxz, gyy, gyz, gzz, guv (Eotvos)")
    return p


def parse_components(values) -> list[str] | None:
    """The components of ``--component`` (repeated and/or comma lists), checked; None when not given.

    Raises
    ------
    ValueError
        An unknown component (named), an empty entry, or one listed twice.
    """
    if values is None:
        return None
    from gempy_gravinv._components import check_component

    out: list[str] = []
    for v in values:
        for name in str(v).split(","):
            name = name.strip().lower()
            if not name:
                raise ValueError(f"--component {v!r}: an empty name; give e.g. --component gzz,gxz")
            check_component(name)
            if name in out:
                raise ValueError(f"--component {name!r} is listed twice")
            out.append(name)
    return out


def expand_components(survey, components):
    """Every station of ``survey`` once per component (a station's rows consecutive); its data dropped.

    A survey that names its own components (a component column) is refused with ``--component``.
    """
    import numpy as np

    from gempy_gravinv import Survey

    if components is None:
        return survey
    if survey.components_given:
        raise ValueError("the stations file names a component per row; drop --component (or the column)")
    if components == ["gz"]:
        return Survey(survey.locations, name=survey.name, crs=survey.crs)
    k = len(components)
    return Survey(np.repeat(survey.locations, k, axis=0), name=survey.name, crs=survey.crs,
                  components=np.tile(np.asarray(components), survey.n_data))


def run(args: argparse.Namespace) -> int:
    """Run the forward model; returns 0 on success (bad input raises ValueError).

    Under ``torchrun`` (several ranks) each rank computes its block of stations; rank 0
    alone prints and writes.
    """
    from ._common import with_process_group

    return with_process_group(_run, args)


def _run(args: argparse.Namespace) -> int:
    import os
    import time
    from pathlib import Path

    import numpy as np
    import torch

    from gempy_gravinv import PrismMesh, make_operator
    from gempy_gravinv import io as gio
    from gempy_gravinv._components import UNITS
    from gempy_gravinv._distributed import ShardedGravityOperator, init_distributed, is_main
    from gempy_gravinv._operator import resolve_device

    from ._common import check_device

    t0 = time.perf_counter()
    components = parse_components(getattr(args, "component", None))
    device = resolve_device(check_device(args.device))  # unknown device, or CUDA asked for but absent
    env = init_distributed(device)  # one process: nothing to do
    say = print if is_main() else (lambda *a, **k: None)
    out_path = Path(args.output)
    if out_path.is_dir():
        raise ValueError(f"-o {out_path} is a folder; forward writes one CSV file: give a file name")
    parent = out_path.parent if str(out_path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise ValueError(f"-o {out_path}: {parent} is a file, not a folder")
    if not parent.exists():  # checked before the computation, not after it
        raise ValueError(f"-o {out_path}: folder {parent} does not exist")
    if parent.is_dir() and not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"-o {out_path}: folder {parent} is not writable")
    if out_path.exists():
        for role, given in (("MESH", args.mesh), ("MODEL", args.model), ("STATIONS", args.stations)):
            if Path(given).exists() and os.path.samefile(out_path, given):
                raise ValueError(f"-o {out_path} is the {role} file this command reads: give another file name")
        if not args.overwrite:
            raise ValueError(f"-o {out_path} exists: pass --overwrite to replace it, or give another file name")
    mesh = gio.read_ubc_mesh(args.mesh)
    model = gio.read_ubc_model(args.model, mesh)
    survey = expand_components(gio.read_stations(args.stations, format=args.stations_format, to_crs=args.crs),
                               components)
    active = np.isfinite(model)
    if not active.any():
        raise ValueError(f"{args.model}: every cell is inactive (-99999 or -100)")
    rho = gio.model_to_contrast_kgm3(model[active], args.reference_density, name=str(args.model))
    pmesh = PrismMesh.from_discretize(mesh, active_cells=active)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    chk = "warn" if args.allow_outside_stations else True
    if env.world_size > 1 and len(survey.component_groups()) > 1:
        raise ValueError(f"several ranks shard one component's stations; these data mix "
                         f"{', '.join(survey.component_groups())}: run one component per call, or one process")
    if env.world_size > 1:
        op = ShardedGravityOperator(pmesh, survey, device=device, dtype=dtype, store=args.store, check_stations=chk)
        say(f"memory estimate (rank 0 of {env.world_size}, {op.counts[0]} stations): {op.estimate_memory()}",
            flush=True)
        gz = op.forward(torch.as_tensor(rho, dtype=dtype), gather=True)
    else:
        op = make_operator(pmesh, survey, device=device, dtype=dtype, store=args.store, check_stations=chk)
        print(f"memory estimate: {op.estimate_memory()}", flush=True)
        with torch.no_grad():
            gz = op(torch.as_tensor(rho, dtype=dtype, device=op.device))
    if not is_main():  # rank 0 alone writes
        return 0
    gz = gz.detach().cpu().to(torch.float64).numpy()
    out = gio.write_csv(args.output, survey, gz=gz)
    dt = time.perf_counter() - t0
    ranges = "; ".join(f"{c} in [{gz[r].min():.6g}, {gz[r].max():.6g}] {UNITS[c]}{' (positive down)' * (c == 'gz')}"
                       for c, r in survey.component_groups().items())
    print(f"forward: {survey.n_data} {'stations' if survey.is_gz_only else 'data'} x {pmesh.n_cells} active cells "
          f"(of {mesh.n_cells}), {ranges}, store={op.store}, "
          f"device={op.device}, {args.dtype}, {dt:.2f} s{f' on {env.world_size} ranks' if env.world_size > 1 else ''} "
          f"-> {out}")
    return 0
