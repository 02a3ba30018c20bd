"""``invert --backend geology|hybrid --geomodel ...``: the GemPy-backend options (issue 6).

Not a command: :mod:`gempy_gravinv.cli._invert` calls :func:`add_arguments` when it
builds its parser, :func:`prepare` before training and :func:`finish` after saving.
Light at import (argparse only); GemPy and torch load in :func:`prepare`.
"""

from __future__ import annotations

import argparse

GEOLOGY_HELP = """\
GemPy backends: --backend geology (the GemPy model's unit contrasts are fitted) or
--backend hybrid (GemPy model as the prior mean + a bounded INR residual).
--geomodel NAME|FILE: built-in "layered" (synthetic case) or "tharsis-intrusion" (the
Bayesian Tharsis model, local coordinates: shifted automatically when the mesh is in
UTM), or a GemPy model file: .gempy (gempy.save_model) or .json (GemPy's JSON schema).
Files store no densities: pass --unit-densities (kg/m³, GemPy id order, basement last).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``--geomodel``, ``--unit-densities``, ``--learn-densities``,
    ``--residual-units``, ``--depth-range`` and ``--view-resolution`` to ``p``."""
    g = p.add_argument_group("GemPy backends (--backend geology|hybrid)", GEOLOGY_HELP)
    g.add_argument("--geomodel", default=None, metavar="NAME|FILE",
                   help="GemPy model: layered, tharsis-intrusion, or a .gempy/.json file")
    g.add_argument("--unit-densities", default=None, metavar="R1,R2,...",
                   help="unit density contrasts, kg/m³, GemPy id order (default: the case's)")
    g.add_argument("--learn-densities", action="store_true",
                   help="fit the unit contrasts jointly with the residual (always on for geology)")
    g.add_argument("--residual-units", default=None, metavar="U1,U2",
                   help="hybrid: confine the INR residual to these units (names)")
    g.add_argument("--depth-range", default=None, metavar="ZMIN,ZMAX",
                   help="hybrid: confine the residual to elevations ZMIN..ZMAX m (z up)")
    g.add_argument("--view-resolution", default="40,40,20", metavar="NX,NY,NZ",
                   help="regular grid of the 3D view and .vti export")


def prepare(args: argparse.Namespace, mesh, cfg):
    """The ``density=`` factory for :func:`invert_inr` (None for the INR/voxel backends)."""
    backend = getattr(args, "backend", None) or "inr"
    if backend not in ("geology", "hybrid"):
        for opt in ("geomodel", "unit_densities", "residual_units", "depth_range"):
            if getattr(args, opt, None):
                raise ValueError(f"--{opt.replace('_', '-')} needs --backend geology or hybrid")
        return None
    from ..density._geology import backend_from_cli

    factory = backend_from_cli(args, mesh, cfg)
    print(f"invert: {factory.description}", flush=True)
    return factory


def finish(args: argparse.Namespace, result, factory, out) -> dict:
    """Write the GemPy-backend outputs (components, fitted units, 3D views); ``{}`` for INR."""
    if factory is None:
        return {}
    from ..gempy_view import save_backend_outputs

    try:
        res = tuple(int(v) for v in str(getattr(args, "view_resolution", "40,40,20")).split(","))
        if len(res) != 3 or min(res) < 1:
            raise ValueError
    except ValueError:
        raise ValueError(f"--view-resolution must be NX,NY,NZ positive integers, got {args.view_resolution!r}")
    written = save_backend_outputs(result, out, name="inr", figures=not getattr(args, "no_figures", False),
                                   resolution=res, description=factory.description)
    geo = result.field.geology if hasattr(result.field, "geology") else result.field
    units = ", ".join(f"{n} {v:.1f}" for n, v in zip(geo.unit_names, geo.unit_densities().detach().tolist()))
    print(f"unit contrasts (kg/m³): {units}; 3D view: {written.get('view_3d')} "
          f"[{written.get('renderer_3d', 'not drawn')}]", flush=True)
    return written
