"""Runners: prior predictive, NUTS, SVI, posterior predictive -> ArviZ InferenceData.

Every runner is seeded (torch, numpy, pyro), shows tqdm progress, and returns an
``arviz.InferenceData`` with groups ``posterior``, ``prior``, ``prior_predictive``,
``posterior_predictive``, ``log_likelihood``, ``observed_data``, ``sample_stats``
(ArviZ 0.23). Units: as the model's sites (kg/m³, deg, m, mGal).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .._validation import check_choice, check_int, check_number

__all__ = ["run_nuts", "run_svi", "prior_predictive", "replay", "save_netcdf", "seed_all"]

_DIMS = {
    "densities": ["unit"],
    "dips": ["orientation"],
    "sp_z": ["surface_point"],
    "noise_z": ["station"],
    "sigma": ["station"],
    "gz_pred": ["station"],
    "obs": ["station"],
}


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's, torch's and Pyro's generators."""
    import pyro

    pyro.set_rng_seed(int(seed))  # seeds random, numpy and torch too


def _latent_names(model: Callable) -> list[str]:
    import pyro.poutine as poutine

    with torch.no_grad():
        tr = poutine.trace(model).get_trace()
    return [n for n, s in tr.nodes.items()
            if s["type"] == "sample" and not s["is_observed"] and not n.startswith("_")]


def replay(model: Callable, draws: dict[str, np.ndarray], *, obs=None, progress: bool = True,
           desc: str = "replay") -> dict[str, np.ndarray]:
    """Run the model at each joint draw of the latent sites (no gradients).

    Parameters
    ----------
    model : callable from :func:`make_model`
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
        (n_draws, n_data) when ``obs`` is given, plus any deterministic sites (``sigma``).
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
                out.setdefault("log_lik", []).append(fn.log_prob(site["value"]).numpy())
            for name, s in tr.nodes.items():
                if s["type"] == "sample" and s.get("infer", {}).get("_deterministic"):
                    out.setdefault(name, []).append(s["value"].detach().numpy())
    return {k: np.stack(v) for k, v in out.items()}


def prior_predictive(model: Callable, num_samples: int = 50, *, seed: int = 0,
                     progress: bool = True) -> dict[str, np.ndarray]:
    """Draws from the prior and the prior predictive (g_z with noise), no data used.

    Parameters
    ----------
    model : callable from :func:`make_model`
        The Pyro model.
    num_samples : int
        Number of draws.
    seed : int
        Seed of the draws.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    dict name -> array (num_samples, ...)
        Latent sites, ``gz_pred``, ``obs`` (simulated data, mGal).
    """
    import pyro.poutine as poutine
    from tqdm.auto import tqdm

    seed_all(seed)
    out: dict[str, list] = {}
    for _ in tqdm(range(num_samples), desc="prior predictive", disable=not progress, leave=False):
        with torch.no_grad():
            tr = poutine.trace(model).get_trace(None)
        for name, s in tr.nodes.items():
            if s["type"] == "sample" and not name.startswith("_"):
                out.setdefault(name, []).append(s["value"].detach().numpy())
    return {k: np.stack(v) for k, v in out.items()}


def _dims(names, extra=None):
    d = {k: v for k, v in _DIMS.items() if k in names}
    if extra:
        d.update(extra)
    return d


def _to_idata(model: Callable, posterior: dict[str, np.ndarray], *, sample_stats=None,
              prior: dict | None = None, progress: bool = True, attrs: dict | None = None):
    """posterior: name -> (chains, draws, ...). Replays draws for predictive + log-lik."""
    import arviz as az

    survey = model.survey
    obs = None if survey.gz is None else torch.as_tensor(survey.gz, dtype=torch.float64)
    nch, ndr = next(iter(posterior.values())).shape[:2]
    flat = {k: v.reshape((nch * ndr,) + v.shape[2:]) for k, v in posterior.items()}
    rep = replay(model, flat, obs=obs, progress=progress, desc="posterior predictive")
    resh = lambda a: a.reshape((nch, ndr) + a.shape[1:])  # noqa: E731
    post = dict(posterior)
    if "sigma" in rep:
        post["sigma"] = resh(rep["sigma"])
    pp = {"obs": resh(rep["obs"]), "gz_pred": resh(rep["gz_pred"])}
    kw: dict[str, Any] = dict(posterior=post, posterior_predictive=pp)
    if obs is not None:
        kw["log_likelihood"] = {"obs": resh(rep["log_lik"])}
        kw["observed_data"] = {"obs": survey.gz}
    if sample_stats:
        kw["sample_stats"] = sample_stats
    if prior:
        lat = {k: v[None] for k, v in prior.items() if k not in ("obs", "gz_pred")}
        kw["prior"] = lat
        kw["prior_predictive"] = {k: prior[k][None] for k in ("obs", "gz_pred") if k in prior}
    names = set(post) | {"obs", "gz_pred"}
    coords = {"station": np.arange(survey.n_data)}
    idata = az.from_dict(**kw, coords=coords, dims=_dims(names))
    idata.posterior.attrs.update({k: v for k, v in (attrs or {}).items()
                                  if isinstance(v, (int, float, str))})
    pri = getattr(model, "priors", None)
    for key, site in (("dip_index", "dips"), ("sp_index", "sp_z")):
        idx = getattr(pri, key, None)
        if idx is not None and len(idx) and getattr(pri, site, None) is not None:
            idata.posterior.attrs[key] = np.asarray(idx, dtype=np.int64)
    return idata


def run_nuts(model: Callable, *, num_samples: int = 200, warmup: int = 200, chains: int = 2,
             target_accept: float = 0.8, max_tree_depth: int = 8, seed: int = 0,
             num_prior: int = 50, init: str = "mean", full_mass: bool = False,
             progress: bool = True):
    """Sample the posterior with NUTS (chains run one after another on the host).

    Parameters
    ----------
    model : callable from :func:`make_model`
        The Pyro model (conditioned on the survey's g_z).
    num_samples, warmup : int
        Draws kept and adaptation steps per chain.
    chains : int
        Independent chains, seeds ``seed + chain``.
    target_accept : float
        NUTS target acceptance probability.
    max_tree_depth : int
        NUTS max tree depth (at most 2^depth - 1 gradient evaluations per draw).
    seed : int
        Seed of chain 0 (chain ``c`` uses ``seed + c``; the prior draws ``seed + 10000``).
    num_prior : int
        Prior / prior-predictive draws stored alongside (0 to skip).
    init : {"mean", "median", "sample"}
        Pyro init strategy.
    full_mass : bool
        Adapt a dense mass matrix (better for correlated posteriors with few sites).
    progress : bool
        Show progress bars.

    Returns
    -------
    arviz.InferenceData
        ``sample_stats`` holds ``diverging``; ``posterior.attrs`` holds
        ``sampling_time_s`` (NUTS only, warmup included) and ``method``.
    """
    from pyro.infer import MCMC, NUTS
    from pyro.infer.autoguide.initialization import init_to_mean, init_to_median, init_to_sample

    chains = check_int(chains, name="chains", minimum=1)
    num_samples = check_int(num_samples, name="num_samples", minimum=1)
    warmup = check_int(warmup, name="warmup", minimum=0)
    inits = {"mean": init_to_mean, "median": init_to_median, "sample": init_to_sample}
    init_fn = inits[check_choice(init, tuple(inits), name="init")]
    prior = prior_predictive(model, num_prior, seed=seed + 10_000, progress=progress) if num_prior else None
    samples: dict[str, list] = {}
    diverging = []
    t0 = time.perf_counter()
    for c in range(chains):
        seed_all(seed + c)
        kernel = NUTS(model, target_accept_prob=target_accept, max_tree_depth=max_tree_depth,
                      init_strategy=init_fn, jit_compile=False, full_mass=full_mass)
        mcmc = MCMC(kernel, num_samples=num_samples, warmup_steps=warmup, num_chains=1,
                    disable_progbar=not progress)
        mcmc.run()
        for k, v in mcmc.get_samples().items():
            samples.setdefault(k, []).append(v.detach().numpy())
        div = np.zeros(num_samples, dtype=bool)
        # the kernel's own record (indices relative to the end of warmup); MCMC.diagnostics()
        # would also recompute ESS / R-hat, which fails for a handful of draws
        diag = (getattr(mcmc, "_diagnostics", None) or [None])[0] or {}
        idx = np.asarray(diag.get("divergences", []), dtype=int).reshape(-1)
        idx = idx[(idx >= 0) & (idx < num_samples)]
        div[idx] = True
        diverging.append(div)
    elapsed = time.perf_counter() - t0
    post = {k: np.stack(v) for k, v in samples.items()}
    stats = {"diverging": np.stack(diverging)}
    return _to_idata(model, post, sample_stats=stats, prior=prior, progress=progress,
                     attrs={"method": "nuts", "sampling_time_s": elapsed, "chains": chains,
                            "warmup": warmup, "max_tree_depth": max_tree_depth,
                            "target_accept": target_accept, "seed": seed,
                            "full_mass": int(full_mass)})


def run_svi(model: Callable, *, guide: str = "mvn", steps: int = 1000, lr: float = 0.05,
            lr_final: float | None = None, num_particles: int = 1, num_samples: int = 500,
            seed: int = 0, num_prior: int = 50, progress: bool = True, init: str = "mean",
            standardize: bool = True):
    """Variational inference (AutoNormal or AutoMultivariateNormal) + posterior predictive.

    Parameters
    ----------
    model : callable from :func:`make_model`
        The Pyro model (conditioned on the survey's g_z).
    guide : {"normal", "mvn"}
        ``AutoNormal`` (mean field) or ``AutoMultivariateNormal`` (full covariance).
    steps : int
        Adam steps on the ELBO (``Trace_ELBO``).
    lr : float
        Initial Adam learning rate (``ClippedAdam``), in the units of the sites: moving a
        density by 100 kg/m³ takes ~100/lr steps.
    lr_final : float, optional
        Learning rate reached at the last step (geometric decay); default ``lr / 100``.
    num_particles : int
        ELBO particles per step (less gradient noise, proportionally slower).
    standardize : bool
        Fit the guide in standardised coordinates: Normal-prior sites (``densities``,
        ``dips``, ``sp_z``, ``offset``, ``noise_mu``) are reparametrised as
        ``loc + scale * z`` (Pyro ``LocScaleReparam(centered=0)``), so one learning rate
        suits kg/m³, degrees and metres alike; draws are mapped back exactly.
    num_samples : int
        Draws from the fitted guide (one "chain" in the output).
    seed : int
        Seed of the fit and the draws (the prior draws use ``seed + 10000``).
    num_prior : int
        Prior / prior-predictive draws stored alongside (0 to skip).
    progress : bool
        Show progress bars.
    init : {"mean", "median"}
        Initial location of the guide (Pyro init strategy).

    Returns
    -------
    idata : arviz.InferenceData
        ``posterior.attrs``: ``method``, ``sampling_time_s`` (fit time), ``final_loss``.
    guide : pyro AutoGuide
        The fitted guide.
    losses : numpy.ndarray
        ELBO loss per step.
    """
    import pyro
    import pyro.distributions as dist
    import pyro.poutine as poutine
    from pyro.infer import SVI, Predictive, Trace_ELBO
    from pyro.infer.autoguide import AutoMultivariateNormal, AutoNormal
    from pyro.infer.autoguide.initialization import init_to_mean, init_to_median
    from pyro.infer.reparam import LocScaleReparam
    from tqdm.auto import tqdm

    init_fn = init_to_median if init == "median" else init_to_mean
    check_choice(guide, ("normal", "mvn"), name="guide")
    steps = check_int(steps, name="steps", minimum=1)
    num_particles = check_int(num_particles, name="num_particles", minimum=1)
    check_number(lr, name="lr", low=0.0, low_open=True)
    check_number(lr_final, name="lr_final", low=0.0, low_open=True, allow_none=True)
    std_sites: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    fit_model = model
    if standardize:
        with torch.no_grad():
            tr0 = poutine.trace(model).get_trace()
        for name in ("densities", "dips", "sp_z", "offset", "noise_mu"):
            node = tr0.nodes.get(name)
            if node is None or node["type"] != "sample" or node["is_observed"]:
                continue
            base = node["fn"].base_dist if isinstance(node["fn"], dist.Independent) else node["fn"]
            if isinstance(base, dist.Normal):
                std_sites[name] = (base.loc.detach().numpy(), base.scale.detach().numpy())
        fit_model = poutine.reparam(model, config={n: LocScaleReparam(centered=0.0)
                                                   for n in std_sites})
    cls = AutoNormal if guide == "normal" else AutoMultivariateNormal
    g = cls(fit_model, init_loc_fn=init_fn)
    prior = prior_predictive(model, num_prior, seed=seed + 10_000, progress=progress) if num_prior else None
    seed_all(seed)
    pyro.clear_param_store()
    lr_end = lr / 100.0 if lr_final is None else lr_final
    lrd = (lr_end / lr) ** (1.0 / max(steps, 1))
    svi = SVI(fit_model, g, pyro.optim.ClippedAdam({"lr": lr, "lrd": lrd, "clip_norm": 1e6}),
              Trace_ELBO(num_particles=num_particles))
    losses = []
    t0 = time.perf_counter()
    for _ in tqdm(range(steps), desc=f"SVI ({guide})", disable=not progress, leave=False):
        losses.append(float(svi.step()))
    elapsed = time.perf_counter() - t0
    latent = _latent_names(model)
    with torch.no_grad():
        draws = {k: v.detach().numpy() for k, v in Predictive(g, num_samples=num_samples)().items()}
    for name, (loc, scale) in std_sites.items():
        draws[name] = loc + scale * draws.pop(f"{name}_decentered")
    post = {k: draws[k][None] for k in latent if k in draws}
    idata = _to_idata(model, post, prior=prior, progress=progress,
                      attrs={"method": f"svi-{guide}", "sampling_time_s": elapsed,
                             "final_loss": losses[-1] if losses else float("nan"), "seed": seed})
    idata.posterior.attrs["elbo_loss_last100_mean"] = float(np.mean(losses[-100:])) if losses else float("nan")
    return idata, g, np.asarray(losses)


def save_netcdf(idata, path) -> str:
    """Write InferenceData to NetCDF (groups as in ArviZ).

    Parameters
    ----------
    idata : arviz.InferenceData
    path : str or path-like
        Output ``.nc`` file (its folder is created).

    Returns
    -------
    str
        The path written.
    """
    from pathlib import Path

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    idata.to_netcdf(str(p))
    return str(p)
