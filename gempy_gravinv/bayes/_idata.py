"""ArviZ InferenceData from posterior draws: named coordinates, units, pointwise log-likelihood.

Groups: ``posterior``, ``posterior_predictive`` (``obs`` with noise, ``gz_pred``),
``log_likelihood`` (``obs``, one value per station and draw), ``observed_data``,
``sample_stats`` (NUTS: ``energy``, ``lp``, ``tree_depth``, ``n_steps``, ``step_size``,
``acceptance_rate``, ``diverging``), ``prior`` and ``prior_predictive``.

Coordinates carry names: ``unit`` (unit names, GemPy id order), ``unit_rel`` (units
other than the reference unit), ``orientation`` and ``surface_point`` (labels of the
random orientations / surface points), ``station`` (station labels). Every variable has
a ``units`` attribute.

Log-likelihood with hierarchical per-station noise: the per-station noise is integrated
out (:func:`~gempy_gravinv.bayes._likelihoods.marginal_noise_log_lik`), whether the model
sampled the latents ``noise_z`` or not, so that PSIS-LOO leaves out a station together
with its own noise and its Pareto k stays small.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ._likelihoods import marginal_noise_log_lik

__all__ = ["DIMS", "UNITS", "replay", "build_idata", "site_shapes"]

DIMS = {
    "densities": ["unit"],
    "densities_rel": ["unit_rel"],
    "dips": ["orientation"],
    "sp_z": ["surface_point"],
    "noise_z": ["station"],
    "sigma": ["station"],
    "gz_pred": ["station"],
    "obs": ["station"],
}

UNITS = {
    "densities": "kg/m³", "densities_rel": "kg/m³", "dips": "deg", "sp_z": "m", "offset": "mGal",
    "noise_mu": "ln(mGal)", "noise_tau": "1 (natural-log units)", "noise_z": "1", "sigma": "mGal",
    "gz_pred": "mGal", "obs": "mGal", "energy": "1 (nats)", "lp": "1 (nats)", "tree_depth": "1",
    "n_steps": "1", "step_size": "1", "acceptance_rate": "1", "diverging": "1",
}

_DESCRIPTION = {
    "densities": "unit density contrast (relative to the reference density)",
    "densities_rel": "unit density contrast relative to the reference unit",
    "dips": "dip of the orientation", "sp_z": "elevation of the surface point (z up)",
    "offset": "datum offset added to the predictions", "sigma": "station noise standard deviation",
    "gz_pred": "predicted g_z (positive downward), after alignment, before noise",
    "obs": "g_z (positive downward)",
}


def site_shapes(model: Callable) -> dict[str, tuple[int, ...]]:
    """Event shape of every sample / deterministic site of ``model`` (one trace, no grad)."""
    import pyro.poutine as poutine

    with torch.no_grad():
        tr = poutine.trace(model).get_trace()
    return {n: tuple(s["value"].shape) for n, s in tr.nodes.items() if s["type"] == "sample"}


def _noise_loglik(site_fn, value, trace_nodes) -> np.ndarray:
    """Pointwise log-likelihood; hierarchical noise integrated out when latents were sampled."""
    if "noise_z" in trace_nodes and "noise_mu" in trace_nodes and "noise_tau" in trace_nodes:
        pred = trace_nodes["gz_pred"]["value"]
        return marginal_noise_log_lik(value, pred, trace_nodes["noise_mu"]["value"],
                                      trace_nodes["noise_tau"]["value"]).numpy()
    return site_fn.log_prob(value).numpy()


def replay(model: Callable, draws: dict[str, np.ndarray], *, obs=None, progress: bool = True,
           desc: str = "replay") -> dict[str, np.ndarray]:
    """Run the model at each joint draw of the latent sites (no gradients).

    Parameters
    ----------
    model : callable from :func:`~gempy_gravinv.bayes.make_model`
        The Pyro model.
    draws : dict name -> array (n_draws, ...)
        Latent values (units of the sites: kg/m³, deg, m, mGal).
    obs : tensor or None
        Observed g_z (mGal, positive down) for the log-likelihood (``None``: simulate only).
    progress : bool
        Show a tqdm bar.
    desc : str
        Label of the bar.

    Returns
    -------
    dict
        ``gz_pred`` (n_draws, n_data), ``obs`` (simulated, with noise), ``log_lik``
        (n_draws, n_data) when ``obs`` is given (hierarchical noise integrated out), plus
        any deterministic sites (``sigma``, ``densities`` with a reference unit).
    """
    import pyro.poutine as poutine
    from tqdm.auto import tqdm

    n = len(next(iter(draws.values())))
    out: dict[str, list] = {}
    for i in tqdm(range(n), desc=desc, disable=not progress, leave=False):
        data = {k: torch.as_tensor(np.asarray(v[i])) for k, v in draws.items()}
        with torch.no_grad():
            tr = poutine.trace(poutine.condition(model, data=data)).get_trace(obs)
            site = tr.nodes["obs"]
            fn = site["fn"]
            out.setdefault("obs", []).append(fn.sample().numpy())
            if obs is not None:
                out.setdefault("log_lik", []).append(_noise_loglik(fn, site["value"], tr.nodes))
            for name, s in tr.nodes.items():
                if s["type"] == "sample" and s.get("infer", {}).get("_deterministic"):
                    out.setdefault(name, []).append(s["value"].detach().numpy())
    return {k: np.stack(v) for k, v in out.items()}


def _coords(model: Callable, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    pri = getattr(model, "priors", None)
    survey = model.survey
    st = getattr(model, "station_names", None)
    coords: dict[str, Any] = {"station": np.asarray(st if st is not None else np.arange(survey.n_data))}
    if pri is None:
        return coords
    names = list(pri.unit_names) if pri.unit_names is not None else None
    if names is None and "densities" in shapes:
        names = [f"unit_{i + 1}" for i in range(shapes["densities"][-1])]
    if names is not None:
        coords["unit"] = np.asarray(names, dtype=object).astype(str)
        if pri.reference_index is not None:
            coords["unit_rel"] = np.asarray(pri.relative_unit_names, dtype=object).astype(str)
    if pri.dips is not None:
        lab = pri.dip_names or [f"orientation_{i}" for i in pri.dip_index]
        coords["orientation"] = np.asarray(list(lab), dtype=object).astype(str)
    if pri.sp_z is not None:
        lab = pri.point_names or [f"point_{i}" for i in pri.sp_index]
        coords["surface_point"] = np.asarray(list(lab), dtype=object).astype(str)
    return coords


def _shape_draws(d: dict[str, np.ndarray], shapes, nch: int, ndr: int) -> dict[str, np.ndarray]:
    """Reshape every site to (chain, draw, *event_shape) (drops stray singleton dims)."""
    out = {}
    for k, v in d.items():
        v = np.asarray(v)
        ev = shapes.get(k, v.shape[2:] if v.ndim >= 2 else ())
        out[k] = v.reshape((nch, ndr) + tuple(ev))
    return out


def _label(group) -> None:
    for name, var in group.data_vars.items():
        if name in UNITS:
            var.attrs["units"] = UNITS[name]
        if name in _DESCRIPTION:
            var.attrs["long_name"] = _DESCRIPTION[name]


def _stated_noise(model: Callable) -> float | None:
    """The noise the likelihood states, mGal: σ₀ (hierarchical) or the median known σ."""
    lik = getattr(model, "likelihood", None)
    if lik is None:
        return None
    if hasattr(lik, "sigma0"):
        return float(lik.sigma0)
    sig = getattr(lik, "sigma", None)
    if sig is None:
        sig = getattr(model.survey, "std", None)
    return None if sig is None else float(np.median(np.asarray(sig, float)))


def build_idata(model: Callable, posterior: dict[str, np.ndarray], *, sample_stats=None,
                prior: dict | None = None, progress: bool = True, attrs: dict | None = None):
    """InferenceData from posterior draws ``name -> (chains, draws, ...)`` of the latent sites.

    Replays every draw for the posterior predictive, the deterministic sites and the
    pointwise log-likelihood; adds ``prior`` / ``prior_predictive`` from the prior draws
    (name -> (n, ...)), names the coordinates from the model's :class:`PriorSpec` and
    station labels, and sets a ``units`` attribute on every variable.

    Returns
    -------
    arviz.InferenceData
    """
    import arviz as az

    survey = model.survey
    shapes = site_shapes(model)
    obs = None if survey.gz is None else torch.as_tensor(survey.gz, dtype=torch.float64)
    nch, ndr = next(iter(posterior.values())).shape[:2]
    posterior = _shape_draws(posterior, shapes, nch, ndr)
    flat = {k: v.reshape((nch * ndr,) + v.shape[2:]) for k, v in posterior.items()}
    rep = replay(model, flat, obs=obs, progress=progress, desc="posterior predictive")
    resh = lambda a: a.reshape((nch, ndr) + a.shape[1:])  # noqa: E731
    post = dict(posterior)
    for k, v in rep.items():
        if k not in ("obs", "gz_pred", "log_lik"):
            post[k] = resh(v)
    for k in [k for k in post if k.endswith("_signed")]:  # sign not identified: keep |.| only
        post.pop(k)
    pp = {"obs": resh(rep["obs"]), "gz_pred": resh(rep["gz_pred"])}
    kw: dict[str, Any] = dict(posterior=post, posterior_predictive=pp)
    if obs is not None:
        kw["log_likelihood"] = {"obs": resh(rep["log_lik"])}
        kw["observed_data"] = {"obs": np.asarray(survey.gz, float)}
    if sample_stats:
        kw["sample_stats"] = sample_stats
    if prior:
        n = len(next(iter(prior.values())))
        pr = _shape_draws({k: v[None] for k, v in prior.items()}, shapes, 1, n)
        kw["prior"] = {k: v for k, v in pr.items() if k not in ("obs", "gz_pred") and not k.endswith("_signed")}
        kw["prior_predictive"] = {k: pr[k] for k in ("obs", "gz_pred") if k in pr}
    coords = _coords(model, shapes)
    names = set(post) | {"obs", "gz_pred"}
    dims = {k: v for k, v in DIMS.items() if k in names and all(d in coords for d in v)}
    idata = az.from_dict(**kw, coords={k: v for k, v in coords.items()
                                       if any(k in d for d in dims.values())}, dims=dims)
    for g in idata.groups():
        _label(idata[g])
    if "log_likelihood" in idata.groups():
        idata.log_likelihood["obs"].attrs.update(
            units="ln(1/mGal)", long_name="pointwise log-likelihood of each station's g_z"
            + ("; hierarchical station noise integrated out (quadrature)" if "noise_mu" in post else ""))
    idata.posterior.attrs.update({k: v for k, v in (attrs or {}).items() if isinstance(v, (int, float, str))})
    idata.posterior.attrs["sign_convention"] = "g_z positive downward (excess mass below gives g_z > 0)"
    s0 = _stated_noise(model)
    if s0 is not None:
        idata.posterior.attrs["stated_noise_mgal"] = s0
    if "observed_data" in idata.groups():
        loc = np.asarray(survey.locations, float)
        idata.observed_data = idata.observed_data.assign_coords(
            x=("station", loc[:, 0]), y=("station", loc[:, 1]), z=("station", loc[:, 2]))
        for c in ("x", "y", "z"):
            idata.observed_data[c].attrs["units"] = "m"
    pri = getattr(model, "priors", None)
    for key, site in (("dip_index", "dips"), ("sp_index", "sp_z")):
        idx = getattr(pri, key, None)
        if idx is not None and len(idx) and getattr(pri, site, None) is not None:
            idata.posterior.attrs[key] = np.asarray(idx, dtype=np.int64)
    if pri is not None and pri.reference_index is not None:
        idata.posterior.attrs["reference_unit"] = str(coords["unit"][pri.reference_index]) if "unit" in coords \
            else int(pri.reference_index)
    return idata
