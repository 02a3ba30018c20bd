"""What a GemPy user does with a posterior.

The model at the posterior mean, lithology probability and entropy from each draw's hard
lithology, model comparison, a summary that names the parameters the data leave at their
prior.

Units: density contrasts kg/m³ (absolute g/cm³ when written back into GemPy), dips
degrees, elevations metres, entropy in nats.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
from typing import Any

import numpy as np
import torch

from .._constants import kgm3_to_gcc
from .._validation import check_choice, check_int
from ._report import UNCONSTRAINED_RATIO, constraint_table

__all__ = ["compare_models", "lithology_fields", "posterior_geomodel", "posterior_values", "summarize_problem"]

logger = logging.getLogger(__name__)


def _flat(idata, var: str) -> np.ndarray:
    a = idata.posterior[var].values
    return a.reshape(a.shape[0] * a.shape[1], -1)


def posterior_values(idata, stat: str = "mean") -> dict[str, np.ndarray]:
    """Posterior mean or median of the random sites.

    Parameters
    ----------
    idata : arviz.InferenceData
        From :meth:`BayesProblem.run`.
    stat : {"mean", "median"}
        Statistic over all chains and draws.

    Returns
    -------
    dict
        Site name (``densities`` kg/m³, ``dips`` deg, ``sp_z`` m, ``offset`` mGal) ->
        values (one per unit / orientation / surface point of the site).
    """
    check_choice(stat, ("mean", "median"), name="stat")
    f = np.mean if stat == "mean" else np.median
    return {v: f(_flat(idata, v), axis=0) for v in ("densities", "dips", "sp_z", "offset")
            if v in idata.posterior.data_vars}


def posterior_geomodel(problem: Any, idata, *, stat: str = "mean", inplace: bool = False) -> Any:
    """The GeoModel with the posterior mean (or median) written into it.

    Dips are written as GemPy pole vectors (azimuth and polarity kept), surface-point
    elevations as ``Z``, densities into ``geophysics_input.densities`` as absolute g/cm³
    (reference density + contrast), so ``gpv.plot_2d`` / ``plot_3d`` and
    ``gp.compute_model`` show the posterior model.

    Parameters
    ----------
    problem : BayesProblem
        The problem that was sampled (its model, rows and reference density).
    idata : arviz.InferenceData
        Its posterior.
    stat : {"mean", "median"}
        Which point estimate.
    inplace : bool
        Write into ``problem.geo_model`` itself instead of a deep copy.

    Returns
    -------
    gempy GeoModel
    """
    import gempy as gp

    from ..geomodel import gempy_torch, gradients_from_dips

    vals = posterior_values(idata, stat)
    gm = problem.geo_model if inplace else copy.deepcopy(problem.geo_model)
    tg = problem.forward.geomodel
    with gempy_torch(grads=False), contextlib.redirect_stdout(io.StringIO()):
        if "dips" in vals and len(problem.dips):
            rows = list(problem.dips.rows)
            g = gradients_from_dips(vals["dips"], tg.azimuths_deg[rows], tg.polarities[rows]).numpy()
            for k, r in enumerate(rows):
                gp.modify_orientations(gm, slice=int(r), G_x=float(g[k, 0]), G_y=float(g[k, 1]),
                                       G_z=float(g[k, 2]))
        if "sp_z" in vals and len(problem.sp_z):
            for k, r in enumerate(problem.sp_z.rows):
                gp.modify_surface_points(gm, slice=int(r), Z=float(vals["sp_z"][k]))
        if "densities" in vals and problem.density_units:
            rho = np.asarray(problem.unit_contrasts, dtype=np.float64).copy()
            rho[problem.free_units] = vals["densities"]
            absolute = problem.reference_density_gcc + kgm3_to_gcc(rho)
            if getattr(gm, "geophysics_input", None) is not None:
                gm.geophysics_input.densities = torch.as_tensor(absolute)
            else:
                logger.info("posterior_geomodel: the model has no geophysics_input; densities not written")
    return gm


def _with_dense_grid(geo_model: Any, resolution) -> Any:
    """A deep copy whose only active grid is a dense grid of ``resolution`` over its extent."""
    from gempy.core.data.grid_modules.regular_grid import RegularGrid

    from ..geomodel._loading import bare_copy

    gm = bare_copy(geo_model)
    gm.grid.dense_grid = RegularGrid(np.asarray(gm.grid.extent, dtype=np.float64), list(resolution))
    gm.grid.active_grids = gm.grid.GridTypes.DENSE
    return gm


def lithology_fields(problem: Any, idata, *, n_draws: int = 50, resolution=(40, 4, 20), seed: int = 0,
                     stat: str = "mean") -> dict[str, Any]:
    """Lithology probability and entropy from each posterior draw's hard lithology.

    Each selected draw's structural parameters are put into GemPy and its **integer**
    lithology ids are computed (GemPy's own sigmoid slope, as ``gp.compute_model``
    does), so the probability and entropy show the spread of the draws, not the blur of
    the smooth lithology used for gradients.

    Parameters
    ----------
    problem : BayesProblem
        The sampled problem.
    idata : arviz.InferenceData
        Its posterior (``dips`` / ``sp_z``; with densities only, every draw has the same
        lithology).
    n_draws : int
        Posterior draws evaluated (chosen at random, seeded).
    resolution : sequence of 3 int
        Dense grid over the model extent (GemPy's regular grid, C order).
    seed : int
        Seed of the draw selection.
    stat : {"mean", "median"}
        Point estimate for the returned ``geo_model``.

    Returns
    -------
    dict
        ``ids`` (n_draws, n_points) int, ``prob`` (n_units, n_points), ``entropy``
        (n_points,) in nats, ``points`` (n_points, 3) m, ``resolution``, ``unit_names``,
        and ``geo_model``: the posterior-mean model on that dense grid, computed (for
        ``gpv.plot_2d(..., override_regular_grid=...)``).
    """
    import gempy as gp

    from ..geomodel import TorchGeoModel, gempy_torch

    n_draws = check_int(n_draws, name="n_draws", minimum=1)
    res = [int(check_int(r, name="resolution", minimum=1)) for r in resolution]
    with gempy_torch(grads=False), contextlib.redirect_stdout(io.StringIO()):
        gm = _with_dense_grid(posterior_geomodel(problem, idata, stat=stat), res)
        gp.compute_model(gm, engine_config=gp.data.GemPyEngineConfig(backend=gp.data.AvailableBackends.PYTORCH,
                                                                    dtype="float64"))
    pts = np.asarray(gm.grid.dense_grid.values, dtype=np.float64)
    slope = float(problem.geo_model.interpolation_options.sigmoid_slope)
    tg = TorchGeoModel(problem.geo_model, pts, sigmoid_slope=slope)
    post = idata.posterior
    n_tot = post.sizes["chain"] * post.sizes["draw"]
    sel = np.random.default_rng(seed).choice(n_tot, size=min(n_draws, n_tot), replace=False)
    ids = np.empty((len(sel), pts.shape[0]), dtype=np.int64)
    for j, i in enumerate(sel):
        params: dict[str, Any] = {}
        if "dips" in post and len(problem.dips):
            params.update(dips=torch.as_tensor(_flat(idata, "dips")[i]), dip_index=list(problem.dips.rows))
        if "sp_z" in post and len(problem.sp_z):
            params.update(sp_z=torch.as_tensor(_flat(idata, "sp_z")[i]), sp_index=list(problem.sp_z.rows))
        with torch.no_grad():
            ids[j] = np.rint(tg.soft_ids(**params).numpy()).astype(np.int64)
    n_units = len(problem.unit_names)
    prob = np.stack([(ids == k + 1).mean(axis=0) for k in range(n_units)])
    ent = -np.sum(np.where(prob > 0, prob * np.log(np.clip(prob, 1e-300, None)), 0.0), axis=0)
    return {"ids": ids, "prob": prob, "entropy": ent, "points": pts, "resolution": res,
            "unit_names": list(problem.unit_names), "geo_model": gm}


def compare_models(idatas: dict, *, ic: str = "loo", **kwargs) -> Any:
    """Compare structural hypotheses by expected predictive accuracy (``az.compare``).

    Parameters
    ----------
    idatas : dict
        Name -> InferenceData with a ``log_likelihood`` group (same stations and data).
    ic : {"loo", "waic"}
        PSIS-LOO (default) or WAIC.
    **kwargs
        Passed to ``arviz.compare``.

    Returns
    -------
    pandas.DataFrame
        ArviZ's comparison table, best model first (``elpd_loo``/``elpd_waic``,
        ``p_loo``, ``elpd_diff``, ``weight``, ``se``, ``dse``, ``warning``).

    Raises
    ------
    ValueError
        Fewer than two models, one without a ``log_likelihood`` group, or different
        numbers of stations.
    """
    import arviz as az

    check_choice(ic, ("loo", "waic"), name="ic")
    if len(idatas) < 2:
        raise ValueError("compare_models needs at least two models")
    sizes = set()
    for name, d in idatas.items():
        if "log_likelihood" not in d.groups():
            raise ValueError(f"model {name!r} has no log_likelihood group (run it with observed data)")
        sizes.add(int(np.prod([s for k, s in d.log_likelihood.sizes.items() if k not in ("chain", "draw")])))
    if len(sizes) != 1:
        raise ValueError(f"models compared on different data sizes {sorted(sizes)}: use the same stations")
    return az.compare(dict(idatas), ic=ic, **kwargs)


def summarize_problem(idata, *, ratio: float = UNCONSTRAINED_RATIO) -> dict[str, Any]:
    """:func:`summarize` plus the parameters the data do not constrain.

    Parameters
    ----------
    idata : arviz.InferenceData
        With ``prior`` and ``posterior`` groups.
    ratio : float
        A parameter is reported as unconstrained when its posterior sd is at least
        ``ratio`` times its prior sd (posterior ≈ prior; :func:`constraint_table`).

    Returns
    -------
    dict
        :func:`~gempy_gravinv.bayes.summarize`'s keys, plus ``shrinkage`` (parameter ->
        posterior sd / prior sd) and ``unconstrained`` (list of parameters, e.g.
        ``"dips[surface1]"``).
    """
    from ._diagnostics import summarize

    out = summarize(idata)
    out["shrinkage"], out["unconstrained"] = {}, []
    if "prior" in idata.groups():
        tab = constraint_table(idata, threshold=ratio)
        if len(tab):
            out["shrinkage"] = {str(k): float(v) for k, v in tab["ratio"].items()}
            out["unconstrained"] = [str(k) for k in tab.index[~tab["constrained"]]]
    for k in out["unconstrained"]:
        logger.warning("the data do not constrain %s: posterior sd is %.0f%% of the prior sd", k,
                       100 * out["shrinkage"][k])
    return out
