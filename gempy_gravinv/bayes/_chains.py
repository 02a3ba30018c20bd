"""NUTS chains: a Laplace start, a kernel that records its sample stats, chains in processes.

- :func:`laplace_fit`: the maximum a posteriori point in Pyro's unconstrained space
  (L-BFGS on the potential energy) and the inverse Hessian there (finite differences of
  the gradient), the Laplace approximation of the posterior.
- :class:`RecordingNUTS`: Pyro's NUTS that keeps, per draw, ``energy`` (the Hamiltonian
  at the start of the transition), ``lp`` (log density, unconstrained space),
  ``tree_depth``, ``n_steps``, ``step_size``, ``acceptance_rate`` and ``diverging``, and
  can start its mass matrix from a given inverse (the Laplace covariance).
- :func:`run_chains`: one chain per process (``fork``; one torch thread each), started
  apart (dispersed around the Laplace fit), results gathered as NumPy arrays.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

__all__ = ["RecordingNUTS", "laplace_fit", "run_chains", "STAT_NAMES"]

log = logging.getLogger(__name__)

#: with a Laplace mass matrix, shorter warmups keep it (a windowed estimate from fewer draws is worse)
MIN_WARMUP_MASS = 150

#: sample stats recorded per draw (ArviZ names)
STAT_NAMES = ("energy", "lp", "tree_depth", "n_steps", "step_size", "acceptance_rate", "diverging")


def _flatten(params: dict[str, torch.Tensor]) -> tuple[torch.Tensor, list[tuple[str, torch.Size]]]:
    names = sorted(params)
    layout = [(n, params[n].shape) for n in names]
    x = torch.cat([params[n].reshape(-1) for n in names]) if names else torch.zeros(0)
    return x, layout


def _unflatten(x: torch.Tensor, layout) -> dict[str, torch.Tensor]:
    out, i = {}, 0
    for n, shape in layout:
        k = int(np.prod(shape)) if len(shape) else 1
        out[n] = x[i:i + k].reshape(shape)
        i += k
    return out


def laplace_fit(model: Callable, *, max_iter: int = 200, seed: int = 0) -> dict[str, Any]:
    """MAP point and Laplace covariance of a Pyro model, in Pyro's unconstrained space.

    Parameters
    ----------
    model : callable
        Pyro model without arguments (conditioned on its data).
    max_iter : int
        L-BFGS iterations (strong-Wolfe line search).
    seed : int
        Seed of the prior-median start (Pyro's ``init_to_median`` draws).

    Returns
    -------
    dict
        ``x`` (flat MAP, unconstrained, sites in sorted-name order), ``layout`` (site
        names and shapes), ``cov`` (inverse Hessian, symmetric positive definite after
        an eigenvalue floor; None when it could not be formed), ``potential`` (at the
        MAP), ``ok`` (bool), ``n_evals`` (potential + gradient evaluations).
    """
    import pyro
    from pyro.infer.autoguide.initialization import init_to_median
    from pyro.infer.mcmc.util import initialize_model

    pyro.set_rng_seed(int(seed))
    init, potential_fn, _, _ = initialize_model(model, init_strategy=init_to_median(num_samples=15))
    x0, layout = _flatten(init)
    x = x0.detach().clone().to(torch.float64).requires_grad_(True)
    n_evals = [0]

    def pot(v):
        n_evals[0] += 1
        return potential_fn(_unflatten(v, layout))

    def grad(v):
        v = v.detach().requires_grad_(True)
        u = pot(v)
        (g,) = torch.autograd.grad(u, v)
        return u.detach(), g.detach()

    opt = torch.optim.LBFGS([x], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-6, tolerance_change=1e-10)

    def closure():
        opt.zero_grad()
        u = pot(x)
        if not torch.isfinite(u):
            raise FloatingPointError("non-finite potential")
        u.backward()
        return u

    ok = True
    try:
        opt.step(closure)
    except (FloatingPointError, RuntimeError) as e:  # keep the start point
        log.warning("MAP search failed (%s); starting from the prior median", e)
        ok = False
        x = x0.detach().clone().requires_grad_(True)
    xm = x.detach()
    u0, g0 = grad(xm)
    if not (torch.isfinite(u0) and torch.all(torch.isfinite(g0))):
        return {"x": x0.detach(), "layout": layout, "cov": None, "potential": float("nan"), "ok": False,
                "n_evals": n_evals[0]}
    d = xm.numel()
    H = torch.zeros(d, d, dtype=torch.float64)
    for i in range(d):
        h = 1e-4 * max(1.0, abs(float(xm[i])))
        e = torch.zeros(d, dtype=torch.float64)
        e[i] = h
        H[i] = (grad(xm + e)[1] - grad(xm - e)[1]) / (2 * h)
    H = 0.5 * (H + H.T)
    cov = None
    if torch.all(torch.isfinite(H)):
        w, V = torch.linalg.eigh(H)
        w = torch.clamp(w, min=max(float(w.max()) * 1e-8, 1e-12)) if float(w.max()) > 0 else None
        if w is not None:
            cov = (V / w) @ V.T
    return {"x": xm, "layout": layout, "cov": cov, "potential": float(u0), "ok": ok and cov is not None,
            "n_evals": n_evals[0]}


def _nuts_class():
    from pyro.infer import NUTS

    class _RecordingNUTS(NUTS):
        """NUTS recording per-draw sample stats (see module docstring)."""

        def __init__(self, *args, init_inverse_mass: torch.Tensor | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            self._init_inverse_mass = init_inverse_mass
            self.last_stats: dict[str, float] = {}

        def _initialize_adapter(self):
            super()._initialize_adapter()
            m = self._init_inverse_mass
            if m is None:
                return
            adapter = self.mass_matrix_adapter
            keys = list(adapter.inverse_mass_matrix)
            if len(keys) == 1:
                key = keys[0]
                cur = adapter.inverse_mass_matrix[key]
                m = m.to(cur.dtype)
                adapter.inverse_mass_matrix = {key: m if cur.ndim == 2 else torch.diagonal(m).clone()}

        def sample(self, params):
            pe0 = self._potential_energy_last
            rec = {"ke": None, "level": 0, "depth": 0, "steps": 0, "acc": 0.0, "nprop": 0}
            ke_orig, bt_orig, base_orig = self._kinetic_energy, self._build_tree, self._build_basetree
            n_div = len(self._divergences)

            def ke(r):
                v = ke_orig(r)
                if rec["ke"] is None:
                    rec["ke"] = float(v)
                return v

            def bt(z, r, z_grads, log_slice, direction, tree_depth, energy_current):
                rec["level"] += 1
                try:
                    tree = bt_orig(z, r, z_grads, log_slice, direction, tree_depth, energy_current)
                finally:
                    rec["level"] -= 1
                if rec["level"] == 0:
                    rec["depth"] = max(rec["depth"], tree_depth + 1)
                    rec["acc"] += float(tree.sum_accept_probs)
                    rec["nprop"] += int(tree.num_proposals)
                return tree

            def base(*a, **k):
                rec["steps"] += 1
                return base_orig(*a, **k)

            self._kinetic_energy, self._build_tree, self._build_basetree = ke, bt, base
            step = float(self.step_size)
            try:
                out = super().sample(params)
            finally:
                del self._kinetic_energy, self._build_tree, self._build_basetree
            pe = self._potential_energy_last
            energy = float("nan") if pe0 is None or rec["ke"] is None else float(pe0) + rec["ke"]
            self.last_stats = {
                "energy": energy, "lp": -float(pe) if pe is not None else float("nan"),
                "tree_depth": rec["depth"], "n_steps": rec["steps"], "step_size": step,
                "acceptance_rate": rec["acc"] / max(rec["nprop"], 1),
                "diverging": len(self._divergences) > n_div,
            }
            return out

    return _RecordingNUTS


def RecordingNUTS(model: Callable, **kwargs) -> Any:  # noqa: N802 - a class factory (lazy Pyro import)
    """Pyro NUTS recording per-draw sample stats; ``init_inverse_mass`` seeds the mass matrix.

    Parameters
    ----------
    model : callable
        Pyro model.
    **kwargs
        NUTS keyword arguments, plus ``init_inverse_mass`` (tensor (d, d) in the
        unconstrained space, sites flattened in sorted-name order).

    Returns
    -------
    pyro.infer.NUTS
        The kernel; after each ``sample`` its ``last_stats`` holds the draw's stats.
    """
    return _nuts_class()(model, **kwargs)


_JOB: dict[str, Any] = {}


def _one_chain(c: int) -> dict[str, Any]:
    """Run chain ``c`` of the job in :data:`_JOB` (in this process or a forked one)."""
    import pyro
    from pyro.infer import MCMC

    job = _JOB
    if job["in_child"]:
        torch.set_num_threads(1)
    pyro.set_rng_seed(job["seed"] + c)
    kernel = RecordingNUTS(job["model"], target_accept_prob=job["target_accept"],
                           max_tree_depth=job["max_tree_depth"], init_strategy=job["init_fn"],
                           jit_compile=False, full_mass=job["full_mass"],
                           init_inverse_mass=job["inv_mass"],
                           adapt_mass_matrix=job["inv_mass"] is None or job["warmup"] >= MIN_WARMUP_MASS)
    stats: dict[str, list] = {k: [] for k in STAT_NAMES}

    def hook(kern, _params, stage, i):
        if job["log_every"] and (i + 1) % job["log_every"] == 0:
            log.info("chain %d: %s step %d", c, stage.split()[0].lower(), i + 1)
        if stage.startswith("Sample"):
            for k in STAT_NAMES:
                stats[k].append(kern.last_stats.get(k, np.nan))

    init = job["inits"][c] if job["inits"] is not None else None
    mcmc = MCMC(kernel, num_samples=job["num_samples"], warmup_steps=job["warmup"], num_chains=1,
                initial_params=init, hook_fn=hook, disable_progbar=not job["progress"])
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.enable_grad():
        mcmc.run()
    return {"samples": {k: v.detach().numpy() for k, v in mcmc.get_samples().items()},
            "stats": {k: np.asarray(v) for k, v in stats.items()}, "time_s": time.perf_counter() - t0,
            "cpu_s": time.process_time() - c0}


def run_chains(model: Callable, *, chains: int, num_samples: int, warmup: int, seed: int,
               target_accept: float, max_tree_depth: int, full_mass: bool, init_fn: Any,
               inits: list[dict[str, torch.Tensor]] | None, inv_mass: torch.Tensor | None,
               processes: int, progress: bool) -> list[dict[str, Any]]:
    """Run ``chains`` NUTS chains, ``processes`` at a time in forked processes (1: in this one).

    Returns a list (one per chain) of ``samples`` (name -> (num_samples, ...)), ``stats``
    (:data:`STAT_NAMES` -> (num_samples,)), ``time_s`` (wall) and ``cpu_s`` (CPU time of
    the chain's process: the wall time it would take on an idle core).
    """
    use_fork = processes > 1 and chains > 1 and "fork" in mp.get_all_start_methods()
    if processes > 1 and chains > 1 and not use_fork:
        log.warning("no 'fork' start method on this platform: chains run one after another")
    _JOB.clear()
    _JOB.update(model=model, seed=seed, target_accept=target_accept, max_tree_depth=max_tree_depth,
                init_fn=init_fn, full_mass=full_mass, inv_mass=inv_mass, inits=inits,
                num_samples=num_samples, warmup=warmup, progress=progress and not use_fork,
                in_child=use_fork, log_every=100 if progress and use_fork else 0)
    try:
        if not use_fork:
            return [_one_chain(c) for c in range(chains)]
        ctx = mp.get_context("fork")
        n = min(processes, chains)
        log.info("running %d NUTS chains in %d processes (pid %d)", chains, n, os.getpid())
        with ctx.Pool(n) as pool:
            return pool.map(_one_chain, range(chains), chunksize=1)
    finally:
        _JOB.clear()
