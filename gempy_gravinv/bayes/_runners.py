"""Runners: prior predictive, NUTS, SVI, posterior predictive -> ArviZ InferenceData.

Every runner is seeded (torch, numpy, pyro), shows tqdm progress, switches gradients on
for its own work and leaves the process state as it found it
(:func:`~gempy_gravinv.bayes._state.sampling_state`), and returns an
``arviz.InferenceData`` with groups ``posterior``, ``prior``, ``prior_predictive``,
``posterior_predictive``, ``log_likelihood``, ``observed_data``, ``sample_stats``
(ArviZ 0.23), built by :func:`~gempy_gravinv.bayes._idata.build_idata`. Units: as the
model's sites (kg/m³, deg, m, mGal), in each variable's ``units`` attribute.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import numpy as np
import torch

from .._validation import check_choice, check_int, check_number
from ._chains import STAT_NAMES, laplace_fit, run_chains
from ._idata import build_idata, replay
from ._state import sampling_state

__all__ = ["run_nuts", "run_svi", "prior_predictive", "replay", "save_netcdf", "seed_all"]

log = logging.getLogger(__name__)

#: the dense mass matrix is used by default up to this many unconstrained parameters
DENSE_MASS_MAX_DIM = 60


#: offset of the seed of the posterior predictive's draws (the replay after sampling or fitting)
PREDICTIVE_SEED = 30_000


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
    with sampling_state():
        for _ in tqdm(range(num_samples), desc="prior predictive", disable=not progress, leave=False):
            with torch.no_grad():
                tr = poutine.trace(model).get_trace(None)
            for name, s in tr.nodes.items():
                if (s["type"] == "sample" and not name.startswith("_")
                        and type(s["fn"]).__name__ != "_Subsample"):  # plates are not sites
                    out.setdefault(name, []).append(s["value"].detach().numpy())
    return {k: np.stack(v) for k, v in out.items()}


def run_nuts(model: Callable, *, num_samples: int = 600, warmup: int = 300, chains: int = 2,
             target_accept: float = 0.8, max_tree_depth: int = 8, seed: int = 0,
             num_prior: int = 50, init: str = "laplace", full_mass: bool | str = "auto",
             progress: bool = True, processes: int | None = None, init_spread: float = 1.5):
    """Sample the posterior with NUTS: chains in parallel processes, started apart.

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
    init : {"laplace", "mean", "median", "sample"}
        ``"laplace"``: find the maximum a posteriori point (L-BFGS in Pyro's
        unconstrained space), take the inverse Hessian there as the Laplace covariance,
        start each chain at an independent draw from that Gaussian widened by
        ``init_spread`` (dispersed starts, so R-hat can detect chains that do not mix) and
        seed the mass matrix with the covariance (kept as is when ``warmup`` < 150,
        adapted from the draws otherwise). Falls back to the prior median when
        the fit fails (logged). Otherwise a Pyro init strategy (every chain from the
        same point, except ``"sample"``).
    full_mass : bool or "auto"
        Adapt a dense mass matrix; ``"auto"``: dense up to ``DENSE_MASS_MAX_DIM`` (60)
        unconstrained parameters (use ``HierarchicalNoise(marginal=True)`` to keep the
        per-station noise out of that count).
    progress : bool
        Show progress bars (chains in processes report through ``logging`` instead).
    processes : int, optional
        Chains run at the same time in forked processes, one torch thread each; default
        ``min(chains, os.cpu_count())``; 1 runs them one after another in this process.
    init_spread : float
        Widening of the Laplace Gaussian for the chain starts (> 0).

    Returns
    -------
    arviz.InferenceData
        ``sample_stats``: ``energy``, ``lp``, ``tree_depth``, ``n_steps``,
        ``step_size``, ``acceptance_rate``, ``diverging`` per draw (``az.plot_energy``
        works); ``posterior.attrs``: ``method``, ``sampling_time_s`` (wall time of the
        chains, warmup included), ``chain_cpu_time_s`` (CPU time of the slowest chain:
        its wall time on an idle core), ``laplace_time_s``, ``chains``, ``processes``...
    """
    from pyro.infer.autoguide.initialization import init_to_mean, init_to_median, init_to_sample

    chains = check_int(chains, name="chains", minimum=1)
    num_samples = check_int(num_samples, name="num_samples", minimum=1)
    warmup = check_int(warmup, name="warmup", minimum=0)
    max_tree_depth = check_int(max_tree_depth, name="max_tree_depth", minimum=1)
    check_number(target_accept, name="target_accept", low=0.0, high=1.0, low_open=True, high_open=True)
    num_prior = check_int(num_prior, name="num_prior", minimum=0)
    check_number(init_spread, name="init_spread", low=0.0, low_open=True)
    inits_by_name = {"mean": init_to_mean, "median": init_to_median, "sample": init_to_sample,
                     "laplace": init_to_median}
    init_fn = inits_by_name[check_choice(init, tuple(inits_by_name), name="init")]
    if full_mass not in (True, False, "auto"):
        raise ValueError(f"full_mass must be True, False or 'auto', got {full_mass!r}")
    nproc = min(chains, os.cpu_count() or 1) if processes is None else check_int(processes, name="processes",
                                                                                 minimum=1)
    prior = prior_predictive(model, num_prior, seed=seed + 10_000, progress=progress) if num_prior else None
    with sampling_state():
        t_l = time.perf_counter()
        fit = laplace_fit(model, seed=seed) if init == "laplace" else None
        t_laplace = time.perf_counter() - t_l
        dim = int(fit["x"].numel()) if fit is not None else _unconstrained_dim(model)
        dense = (dim <= DENSE_MASS_MAX_DIM) if full_mass == "auto" else bool(full_mass)
        inits, inv_mass = None, None
        if fit is not None and fit["ok"]:
            inits, inv_mass = _dispersed_inits(fit, chains, seed, init_spread), fit["cov"]
            log.info("Laplace fit: potential %.3f at the MAP (%d evaluations, %.1f s)", fit["potential"],
                     fit["n_evals"], t_laplace)
        elif fit is not None:
            log.warning("Laplace fit failed: chains start from the prior median")
        t0 = time.perf_counter()
        res = run_chains(model, chains=chains, num_samples=num_samples, warmup=warmup, seed=seed,
                         target_accept=target_accept, max_tree_depth=max_tree_depth, full_mass=dense,
                         init_fn=init_fn, inits=inits, inv_mass=inv_mass, processes=nproc, progress=progress)
        elapsed = time.perf_counter() - t0
        post = {k: np.stack([r["samples"][k] for r in res]) for k in res[0]["samples"]}
        stats = {k: np.stack([r["stats"][k] for r in res]) for k in STAT_NAMES}
        stats["diverging"] = stats["diverging"].astype(bool)
        stats["tree_depth"] = stats["tree_depth"].astype(np.int64)
        stats["n_steps"] = stats["n_steps"].astype(np.int64)
        seed_all(seed + PREDICTIVE_SEED)  # the replay's draws: the same whether the chains ran here or forked
        return build_idata(model, post, sample_stats=stats, prior=prior, progress=progress,
                           attrs={"method": "nuts", "sampling_time_s": elapsed, "laplace_time_s": t_laplace,
                                  "chains": chains, "processes": nproc, "warmup": warmup,
                                  "max_tree_depth": max_tree_depth, "target_accept": target_accept,
                                  "seed": seed, "full_mass": int(dense), "init": init,
                                  "init_spread": float(init_spread), "unconstrained_dim": dim,
                                  "chain_cpu_time_s": float(max(r["cpu_s"] for r in res))})


def _unconstrained_dim(model: Callable) -> int:
    from pyro.infer.mcmc.util import initialize_model

    init, _, _, _ = initialize_model(model)
    return int(sum(v.numel() for v in init.values()))


def _dispersed_inits(fit: dict, chains: int, seed: int, spread: float) -> list[dict[str, torch.Tensor]]:
    """Chain starts: independent draws from N(MAP, spread² · Laplace covariance), unconstrained."""
    from ._chains import _unflatten

    g = torch.Generator().manual_seed(int(seed) + 20_000)
    L = torch.linalg.cholesky(fit["cov"])
    out = []
    for _ in range(chains):
        z = torch.randn(fit["x"].numel(), generator=g, dtype=torch.float64)
        out.append({k: v.detach().clone() for k, v in _unflatten(fit["x"] + spread * (L @ z), fit["layout"]).items()})
    return out


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

    with sampling_state():
        init_fn = init_to_median if check_choice(init, ("mean", "median"), name="init") == "median" else init_to_mean
        check_choice(guide, ("normal", "mvn"), name="guide")
        steps = check_int(steps, name="steps", minimum=1)
        num_samples = check_int(num_samples, name="num_samples", minimum=1)
        num_prior = check_int(num_prior, name="num_prior", minimum=0)
        num_particles = check_int(num_particles, name="num_particles", minimum=1)
        check_number(lr, name="lr", low=0.0, low_open=True)
        check_number(lr_final, name="lr_final", low=0.0, low_open=True, allow_none=True)
        std_sites: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        fit_model = model
        if standardize:
            with torch.no_grad():
                tr0 = poutine.trace(model).get_trace()
            for name in ("densities", "densities_rel", "dips", "sp_z", "offset", "noise_mu", "noise_tau_signed"):
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
        seed_all(seed + PREDICTIVE_SEED)
        with torch.no_grad():
            draws = {k: v.detach().numpy() for k, v in Predictive(g, num_samples=num_samples)().items()}
        for name, (loc, scale) in std_sites.items():
            draws[name] = loc + scale * draws.pop(f"{name}_decentered")
        post = {k: draws[k][None] for k in latent if k in draws}
        idata = build_idata(model, post, prior=prior, progress=progress,
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
