"""``gempy-gravinv bayes --geomodel MODEL``: the Bayesian run on a user's own GemPy model.

The model is a ``.gempy`` / ``.json`` file, a built-in name or one of GemPy's examples
(``gempy:one_fault_gravity``), with any number of series and faults; the stations come
from ``--stations FILE`` (g_z in mGal, positive down, with std) or from the model's
centered grid; priors are given by unit and surface name
(``--density surface2=300``, ``--dip surface1=5``, ``--sp-z surface1=10``).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import numpy as np

from ._common import csv_floats

__all__ = ["add_geomodel_arguments", "build_problem", "parse_named_priors"]

logger = logging.getLogger(__name__)


def add_geomodel_arguments(p: argparse.ArgumentParser) -> None:
    """The options of a run on a user's GemPy model (``--geomodel`` itself is in the source group).

    Parameters
    ----------
    p : argparse.ArgumentParser
        The ``bayes`` parser.
    """
    g = p.add_argument_group("your own GemPy model (--geomodel)")
    acts = [
        g.add_argument("--stations", metavar="FILE",
                       help="stations with g_z (mGal, positive down) and std (CSV, GRAV3D, GeoJSON)"),
        g.add_argument("--gz-convention", choices=("down", "gempy"), default="down",
                       help="sign of the data: down (ours, Bouguer) or gempy (solutions.gravity, negative over "
                            "excess mass)"),
        g.add_argument("--density", action="append", default=[], metavar="UNIT=STD[,MEAN]",
                       help="random density contrast of UNIT, kg/m³ (mean: the model's); repeatable"),
        g.add_argument("--dip", action="append", default=[], metavar="SURFACE=STD[,MEAN]",
                       help="random dip (deg) of every orientation of SURFACE; repeatable"),
        g.add_argument("--sp-z", action="append", default=[], metavar="SURFACE=STD[,MEAN]",
                       help="random elevation (m) of every surface point of SURFACE; repeatable"),
        g.add_argument("--reference-density", type=float, default=None, metavar="G_CC",
                       help="density (g/cm³) the contrasts are relative to (default: the basement's)"),
        g.add_argument("--unit-densities", default=None, metavar="G_CC,...",
                       help="absolute unit densities, g/cm³, GemPy id order (faults count), for models "
                            "without geophysics_input (model files)"),
        g.add_argument("--noise", choices=("gaussian", "hierarchical", "student"), default="gaussian",
                       help="noise model (default gaussian with the stations' std)"),
        g.add_argument("--std", type=float, default=None, metavar="MGAL",
                       help="data standard deviation, mGal (overrides the file's)"),
        g.add_argument("--offset", type=float, default=None, metavar="MGAL",
                       help="prior std of a free datum offset, mGal (default: none)"),
        g.add_argument("--n-cells", type=int, default=2000, metavar="N",
                       help="cells of the default mesh (default 2000)"),
    ]
    p.set_defaults(geomodel_defaults={a.dest: a.default for a in acts})  # what a case or config ignores


def parse_named_priors(items: list[str], what: str) -> dict[str, Any]:
    """``["name=std", "name=std,mean"]`` -> ``{name: std or (mean, std)}``.

    Parameters
    ----------
    items : list of str
        Values of a repeatable option.
    what : str
        Option name for messages (``--density``).

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        An item without ``=`` or with non-numbers.
    """
    out: dict[str, Any] = {}
    for it in items:
        name, sep, val = it.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{what} {it!r}: expected NAME=STD or NAME=STD,MEAN")
        try:
            nums = [float(v) for v in val.split(",")]
        except ValueError:
            raise ValueError(f"{what} {it!r}: STD and MEAN must be numbers") from None
        if len(nums) not in (1, 2):
            raise ValueError(f"{what} {it!r}: expected NAME=STD or NAME=STD,MEAN")
        if name.strip() in out:
            raise ValueError(f"{what}: {name.strip()!r} is given twice")
        out[name.strip()] = nums[0] if len(nums) == 1 else (nums[1], nums[0])
    return out


def build_problem(args: argparse.Namespace) -> tuple[Any, dict]:
    """Load the model and the stations, and build the :class:`~gempy_gravinv.bayes.BayesProblem`.

    Parameters
    ----------
    args : argparse.Namespace
        Options of the ``bayes`` sub-command with ``--geomodel``.

    Returns
    -------
    problem : BayesProblem
    meta : dict
        Unit names, notes, source of the model.
    """
    from .. import bayes as B
    from .._constants import gz_from_upward, kgm3_to_gcc
    from ..cases.geomodels import resolve_geomodel
    from ..io import read_stations

    loaded = resolve_geomodel(args.geomodel)
    gm = loaded.geo_model
    kw: dict[str, Any] = {}
    if args.unit_densities:
        kw["unit_densities"] = csv_floats(args.unit_densities, "--unit-densities")
    elif B.unit_densities_gcc(gm) is None and loaded.unit_densities is not None:
        kw["unit_densities"] = kgm3_to_gcc(np.asarray(loaded.unit_densities, float))  # contrasts as g/cm³ about 0
        kw["reference_density"] = 0.0
    if args.reference_density is not None:
        kw["reference_density"] = args.reference_density
    if args.stations:
        survey = read_stations(args.stations)
        if survey.gz is None:
            raise ValueError(f"{args.stations}: no g_z column (mGal, positive down)")
        if args.gz_convention == "gempy":
            survey = survey.with_data(gz_from_upward(np.asarray(survey.gz)), survey.std)
        if args.std is not None:
            survey = survey.with_data(survey.gz, args.std)
        kw["survey"] = survey
    else:
        raise ValueError("give --stations FILE with g_z (mGal) and std: a GemPy model holds no observed data")
    problem = B.from_geomodel(
        gm, densities=parse_named_priors(args.density, "--density") or None,
        dips=parse_named_priors(args.dip, "--dip") or None, sp_z=parse_named_priors(args.sp_z, "--sp-z") or None,
        noise=args.noise, offset=args.offset, n_cells=args.n_cells, **kw)
    meta = {"unit_names": problem.unit_names, "geomodel": str(args.geomodel), "notes": problem.notes,
            "forward": problem.forward_kind, "reference_density_gcc": problem.reference_density_gcc}
    return problem, meta


def write_figures(problem: Any, idata, outdir) -> list[str]:
    """ArviZ figures and, when the structure is random, the gempy-viewer lithology sections.

    Parameters
    ----------
    problem : BayesProblem
    idata : arviz.InferenceData
    outdir : path-like
        Figure folder.

    Returns
    -------
    list of str
        Paths written (a figure that fails is logged and skipped).
    """
    from .. import bayes as B

    paths = B.plot_arviz(idata, outdir)
    if len(problem.dips) or len(problem.sp_z):
        try:
            fields = B.lithology_fields(problem, idata, n_draws=20, resolution=(30, 3, 15))
            paths += B.plot_lithology_gempy(fields, outdir)
        except Exception as exc:  # noqa: BLE001 - keep the other outputs
            logger.warning("lithology sections skipped: %s", exc)
    return paths
