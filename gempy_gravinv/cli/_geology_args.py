"""``invert --backend geology|hybrid --geomodel ...``: the GemPy-backend options.

Not a command: :mod:`gempy_gravinv.cli._invert` calls :func:`add_arguments` when it
builds its parser, :func:`prepare` before training and :func:`finish` after saving;
:func:`backend_from_cli` turns the parsed options into the density factory that
:func:`gempy_gravinv.inversion.invert_inr` trains. Light at import (argparse only);
GemPy and torch load in :func:`prepare`.
"""

from __future__ import annotations

import argparse
import copy

from .._validation import check_choice
from ._common import csv_floats

#: values of ``--backend`` (``inr`` and ``voxel`` need no GemPy model)
BACKENDS = ("inr", "voxel", "geology", "hybrid")

GEOLOGY_HELP = """\
GemPy backends: --backend geology (the GemPy model's unit contrasts are fitted) or
--backend hybrid (GemPy model as the prior mean + a bounded INR residual).
--geomodel NAME|FILE: built-in "layered" (synthetic case) or "tharsis-intrusion" (the
Bayesian Tharsis model, local coordinates: shifted automatically when the mesh is in
UTM), or a GemPy model file: .gempy (gempy.save_model) or .json (GemPy's JSON schema).
Files store no densities: pass --unit-densities (kg/m³, GemPy id order, basement last).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the GemPy backend options to ``p``.

    The options are ``--geomodel``, ``--unit-densities``, ``--learn-densities``,
    ``--residual-units``, ``--depth-range`` and ``--view-resolution``.
    """
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
    g.add_argument("--view-resolution", default=(40, 40, 20), type=view_resolution, metavar="NX,NY,NZ",
                   help="regular grid of the 3D view and .vti export (default 40,40,20)")


def view_resolution(text: str) -> tuple[int, int, int]:
    """``NX,NY,NZ`` as three positive integers (an argparse ``type``: refused when the command line is read)."""
    try:
        res = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        res = ()
    if len(res) != 3 or min(res) < 1:
        raise argparse.ArgumentTypeError(f"NX,NY,NZ positive integers expected, got {text!r}")
    return res


def prepare(args: argparse.Namespace, mesh, cfg):
    """The ``density=`` factory for :func:`invert_inr` (``None`` for the INR/voxel backends).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``invert`` options (see :func:`backend_from_cli`).
    mesh : PrismMesh
        The inversion mesh.
    cfg : INRConfig
        INR settings of the hybrid's residual network.

    Returns
    -------
    callable or None
        The factory of :func:`backend_from_cli`; ``None`` unless ``--backend`` is
        ``geology`` or ``hybrid``.
    """
    backend = getattr(args, "backend", None) or "inr"
    from ..density import available_densities

    check_choice(backend, available_densities(), name="--backend")
    if backend not in ("geology", "hybrid"):
        for opt in ("geomodel", "unit_densities", "residual_units", "depth_range"):
            if getattr(args, opt, None):
                raise ValueError(f"--{opt.replace('_', '-')} needs --backend geology or hybrid")
        return None
    factory = backend_from_cli(args, mesh, cfg)
    print(f"invert: {factory.description}", flush=True)
    return factory


def finish(args: argparse.Namespace, result, factory, out) -> dict:
    """Write the GemPy-backend outputs (components, fitted units, 3D views).

    Parameters
    ----------
    args : argparse.Namespace
        Reads ``view_resolution`` ((NX, NY, NZ) cells of the regular 3D view) and
        ``no_figures``.
    result : INRResult
        The trained inversion.
    factory : callable or None
        What :func:`prepare` returned.
    out : path-like
        Output folder.

    Returns
    -------
    dict
        Written files by kind; ``{}`` for the INR/voxel backends.
    """
    if factory is None:
        return {}
    from ..gempy_view import save_backend_outputs

    res = getattr(args, "view_resolution", (40, 40, 20))  # checked when the command line was read
    written = save_backend_outputs(result, out, name="inr", figures=not getattr(args, "no_figures", False),
                                   resolution=res, description=factory.description)
    geo = result.field.geology if hasattr(result.field, "geology") else result.field
    units = ", ".join(f"{n} {v:.1f}" for n, v in zip(geo.unit_names, geo.unit_densities().detach().tolist()))
    print(f"unit contrasts (kg/m³): {units}; 3D view: {written.get('view_3d')} "
          f"[{written.get('renderer_3d', 'not drawn')}]", flush=True)
    return written


def backend_from_cli(args: argparse.Namespace, mesh, cfg=None):
    """The density backend of ``gempy-gravinv invert --backend geology|hybrid``.

    Parameters
    ----------
    args : argparse.Namespace
        Reads ``backend`` (one of :data:`BACKENDS`), ``geomodel`` (a built-in name, a
        file, a GeoModel or a :class:`~gempy_gravinv.geomodel.LoadedGeoModel`; see
        :func:`gempy_gravinv.cases.geomodels.resolve_geomodel`), and optionally
        ``unit_densities`` (comma-separated kg/m³ in GemPy id order; needed for model
        files), ``learn_densities`` (bool; always on for ``geology``),
        ``residual_units`` (comma-separated unit names) and ``depth_range``
        ("zmin,zmax" elevations in m, z up).
    mesh : PrismMesh
        The inversion mesh (the backend is evaluated at its cell centres). When it does
        not overlap the model's extent but does after shifting by the model's origin
        (a local-coordinate model such as ``tharsis-intrusion`` with UTM stations), the
        shift is applied (:func:`gempy_gravinv.geomodel.auto_offset`).
    cfg : INRConfig, optional
        INR settings of the hybrid's residual network (``field_options``).

    Returns
    -------
    callable or None
        ``None`` for ``inr``/``voxel``; otherwise a factory ``f(mesh, seed) -> module``
        for :func:`gempy_gravinv.inversion.invert_inr` (``density=``), with attributes
        ``geology`` (the :class:`~gempy_gravinv.density.GeologyDensity`), ``loaded`` (the
        :class:`~gempy_gravinv.geomodel.LoadedGeoModel`) and ``description`` (str).
    """
    backend = check_choice(getattr(args, "backend", None) or "inr", BACKENDS, name="--backend")
    if backend in ("inr", "voxel"):
        return None
    import numpy as np

    from ..cases.geomodels import GEOMODEL_CASES, resolve_geomodel
    from ..density import GeologyDensity, HybridDensity
    from ..geomodel import auto_offset, unit_names_of

    spec = getattr(args, "geomodel", None)
    if not spec:
        raise ValueError(f"--backend {backend} needs --geomodel (a built-in case "
                         f"{sorted(GEOMODEL_CASES)} or a .gempy/.json file)")
    loaded = resolve_geomodel(spec)
    gm = loaded.geo_model
    names = unit_names_of(gm)
    rho = loaded.unit_densities
    ud = csv_floats(getattr(args, "unit_densities", None), "--unit-densities")
    if ud is not None:
        rho = np.asarray(ud)
    if rho is None:
        raise ValueError(f"--geomodel {spec!r} has no unit densities: pass --unit-densities with "
                         f"{len(names)} comma-separated values in kg/m³ for units {names} (GemPy id order)")
    offset = auto_offset(loaded, mesh)
    learn = bool(getattr(args, "learn_densities", False)) or backend == "geology"
    geo = GeologyDensity(gm, rho, learn_densities=learn, mesh=mesh, offset=offset)
    units = getattr(args, "residual_units", None)
    units = [u.strip() for u in units.split(",") if u.strip()] if isinstance(units, str) else units
    dr = csv_floats(getattr(args, "depth_range", None), "--depth-range")
    if backend == "geology":
        if units or dr:
            raise ValueError("--residual-units/--depth-range apply to --backend hybrid only")

        def factory(m, seed, _g=geo):
            return copy.deepcopy(_g)
    else:
        def factory(m, seed, _g=geo):
            opts = dict(mesh=m, seed=seed) if cfg is None else cfg.field_options(m, seed)
            return HybridDensity(_g, residual_units=units, depth_range=dr, **opts)
    factory.geology = geo  # type: ignore[attr-defined]
    factory.loaded = loaded  # type: ignore[attr-defined]
    factory.description = (f"{backend}: GemPy model {loaded.name or spec!r}, units {names}, "  # type: ignore[attr-defined]
                           f"densities {np.round(geo.unit_densities().detach().numpy(), 1).tolist()} kg/m3"
                           f"{', learned' if learn else ''}, offset {offset.tolist()} m"
                           + (f", residual in {units}" if units else "")
                           + (f", residual z in {dr}" if dr else ""))
    return factory
