"""What the data constrain, and whether the model fits them at the noise it states.

- :func:`constraint_table`: per parameter component, prior and posterior standard
  deviations and their ratio; a ratio near 1 means the data do not constrain it (the
  posterior is the prior).
- :func:`fit_report`: stated noise vs the posterior station noise, RMS residual and
  χ²/N at the stated noise, and the spatial structure of the residual (Moran's I over
  nearest neighbours with a permutation p-value; the share of the residual variance a
  plane explains), with a plain-language verdict.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["constraint_table", "fit_report", "PARAMETER_SITES"]

#: sites that are model parameters (not per-station latents)
PARAMETER_SITES = ("densities_rel", "densities", "dips", "sp_z", "offset", "noise_mu", "noise_tau")
#: Posterior sd / prior sd at or above which a parameter is reported as not constrained by the data.
UNCONSTRAINED_RATIO = 0.8


def _components(group, name: str) -> tuple[list[str], np.ndarray]:
    da = group[name]
    arr = da.values.reshape(da.sizes["chain"] * da.sizes["draw"], -1)
    extra = [d for d in da.dims if d not in ("chain", "draw")]
    if not extra:
        return [name], arr
    labels = [f"{name}[{v}]" for v in da[extra[0]].values]
    return labels, arr


def constraint_table(idata, *, threshold: float = UNCONSTRAINED_RATIO):
    """Which parameters the data constrain: posterior sd / prior sd per component.

    Parameters
    ----------
    idata : arviz.InferenceData
        With ``posterior`` and ``prior`` groups (the prior draws of :func:`run_nuts` /
        :func:`run_svi`, ``num_prior`` > 0; with 50 draws the prior sd is known to ~10%).
    threshold : float
        Ratio at or above which a component is reported as not constrained by the data.

    Returns
    -------
    pandas.DataFrame
        Index ``site[label]``; columns ``prior_sd``, ``posterior_sd`` (units of the
        site: kg/m³, deg, m, mGal), ``ratio``, ``constrained`` (bool). Components that
        are constant (a reference unit's zero contrast) are left out.

    Raises
    ------
    ValueError
        No prior group to compare with.
    """
    import pandas as pd

    if "prior" not in idata.groups():
        raise ValueError("constraint_table needs the prior draws (run with num_prior > 0)")
    rows = {}
    for name in PARAMETER_SITES:
        if name not in idata.posterior or name not in idata.prior:
            continue
        if name == "densities" and "densities_rel" in idata.posterior:
            continue  # the sampled relative contrasts carry the information
        labels, post = _components(idata.posterior, name)
        _, pri = _components(idata.prior, name)
        for j, lab in enumerate(labels):
            ps, qs = float(np.std(pri[:, j])), float(np.std(post[:, j]))
            if ps == 0.0:
                continue
            rows[lab] = {"prior_sd": ps, "posterior_sd": qs, "ratio": qs / ps, "constrained": qs / ps < threshold}
    return pd.DataFrame.from_dict(rows, orient="index")


def _morans_i(r: np.ndarray, xy: np.ndarray, k: int, n_perm: int, seed: int) -> tuple[float, float]:
    from scipy.spatial import cKDTree

    n = len(r)
    k = min(k, n - 1)
    _, nb = cKDTree(xy).query(xy, k=k + 1)
    nb = nb[:, 1:]
    z = r - r.mean()
    den = float(z @ z)
    if den == 0.0:
        return 0.0, 1.0

    def stat(v):
        return float(np.sum(v[:, None] * v[nb]) / (n * k)) / (den / n)

    i0 = stat(z)
    rng = np.random.default_rng(seed)
    perm = np.array([stat(rng.permutation(z)) for _ in range(n_perm)])
    return i0, float((1 + np.sum(perm >= i0)) / (n_perm + 1))


def fit_report(idata, *, stated_sigma: float | None = None, locations=None, k: int = 6,
               n_perm: int = 199, seed: int = 0) -> dict[str, Any]:
    """Check whether the model fits the data at the noise it states, and what it misses.

    Parameters
    ----------
    idata : arviz.InferenceData
        From :func:`run_nuts` / :func:`run_svi` (``observed_data``,
        ``posterior_predictive`` ``gz_pred``).
    stated_sigma : float, optional
        The stated noise in mGal; default ``posterior.attrs["stated_noise_mgal"]``
        (recorded by the runners from the likelihood: σ₀ of the hierarchical noise, the
        median σ of a Gaussian / Student-t one).
    locations : array_like (n_data, 2 or 3), optional
        Station coordinates in metres; default the ``x``, ``y`` coordinates of
        ``observed_data``.
    k : int
        Neighbours per station for Moran's I.
    n_perm : int
        Permutations of the residual for the p-value of Moran's I (seeded).
    seed : int
        Seed of the permutations.

    Returns
    -------
    dict
        ``stated_sigma_mgal``, ``posterior_sigma_mgal`` (the typical station σ: the
        median of the posterior ``sigma`` over draws and stations, else exp of the
        posterior median of ``noise_mu``; None without hierarchical noise),
        ``noise_ratio`` (posterior / stated), ``rms_residual_mgal`` (observed minus
        posterior-mean prediction), ``chi2_per_n_stated`` (χ²/N at the stated noise;
        the fit is judged by the larger of the noise ratio and √(χ²/N), beyond 1.5),
        ``morans_i``, ``morans_p``, ``trend_r2`` (share of the residual variance a plane
        in x, y explains), ``fits_stated_noise`` (bool), ``messages`` (list of str).
    """
    post = idata.posterior
    obs = np.asarray(idata.observed_data["obs"].values, float)
    pred = idata.posterior_predictive["gz_pred"].values.reshape(-1, obs.size).mean(0)
    r = obs - pred
    s0 = stated_sigma if stated_sigma is not None else post.attrs.get("stated_noise_mgal")
    s0 = None if s0 is None or not np.isfinite(float(s0)) else float(s0)
    out: dict[str, Any] = {"stated_sigma_mgal": s0, "rms_residual_mgal": float(np.sqrt(np.mean(r ** 2)))}
    if "sigma" in post:  # the stations' own σ: the typical one over draws and stations
        out["posterior_sigma_mgal"] = float(np.median(post["sigma"].values))
    elif "noise_mu" in post:
        out["posterior_sigma_mgal"] = float(np.exp(np.median(post["noise_mu"].values)))
    else:
        out["posterior_sigma_mgal"] = None
    out["chi2_per_n_stated"] = float(np.mean((r / s0) ** 2)) if s0 else None
    out["noise_ratio"] = (out["posterior_sigma_mgal"] / s0) if (s0 and out["posterior_sigma_mgal"]) else None
    if locations is None and "x" in idata.observed_data.coords and "y" in idata.observed_data.coords:
        locations = np.c_[idata.observed_data["x"].values, idata.observed_data["y"].values]
    out["morans_i"] = out["morans_p"] = out["trend_r2"] = None
    if locations is not None and obs.size >= 8:
        xy = np.asarray(locations, float)[:, :2]
        out["morans_i"], out["morans_p"] = _morans_i(r, xy, k, n_perm, seed)
        X = np.c_[np.ones(len(r)), xy - xy.mean(0)]
        coef, *_ = np.linalg.lstsq(X, r, rcond=None)
        var = float(np.var(r))
        out["trend_r2"] = float(1 - np.var(r - X @ coef) / var) if var > 0 else 0.0
    msgs = []
    fits = True
    if s0:
        ratio = max(out["noise_ratio"] or 0.0, float(np.sqrt(out["chi2_per_n_stated"])))  # either says a misfit
        if ratio > 1.5:
            fits = False
            msgs.append(f"does not fit the data at the stated noise: residual RMS {out['rms_residual_mgal']:.3g} mGal"
                        + (f", posterior station noise {out['posterior_sigma_mgal']:.3g} mGal"
                           if out["posterior_sigma_mgal"] else "")
                        + f" vs {s0:.3g} mGal stated (χ²/N {out['chi2_per_n_stated']:.3g} at the stated noise)")
    if out["morans_p"] is not None and out["morans_p"] < 0.01 and out["morans_i"] > 0.1:
        fits = False
        msgs.append(f"the residual is spatially structured (Moran's I {out['morans_i']:.2f} over {k} neighbours, "
                    f"p = {out['morans_p']:.3f}): the model misses a structure, not random noise"
                    + (f"; a plane in x, y explains {100 * out['trend_r2']:.0f}% of it (a regional trend)"
                       if out["trend_r2"] is not None and out["trend_r2"] > 0.3 else
                       "; mostly not a plane: unmodelled bodies or geometry"))
    if fits:
        msgs.append("fits the data at the stated noise; no spatial structure detected in the residual")
    out["fits_stated_noise"] = fits
    out["messages"] = msgs
    return out
