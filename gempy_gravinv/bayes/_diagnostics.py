"""Diagnostics and figures for Bayesian GemPy gravity runs (ArviZ 0.23, matplotlib Agg).

- :func:`summarize`: R-hat, bulk/tail ESS, ESS per second, divergences, posterior
  predictive misfit (RMS of observed minus predicted mean, mGal; χ²/N with the posterior
  σ), per parameter site.
- figures: prior vs posterior densities, observed vs predicted with 90% intervals,
  per-station σ with flagged outliers, lithology probability and entropy on a section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_choice
from ._report import constraint_table, fit_report

__all__ = ["summarize", "plot_prior_posterior", "plot_predictive", "plot_station_sigma",
           "lithology_section", "plot_lithology_section", "plot_all", "flag_outliers"]

PARAM_SITES = ("densities_rel", "densities", "dips", "sp_z", "offset", "noise_mu", "noise_tau")


def _params(idata) -> list[str]:
    return [v for v in PARAM_SITES if v in idata.posterior.data_vars]


def summarize(idata) -> dict[str, Any]:
    """Convergence and fit summary.

    Returns
    -------
    dict
        ``table`` (pandas DataFrame from ``az.summary``: mean, sd, hdi, r_hat, ess_bulk,
        ess_tail), ``max_rhat``, ``min_ess_bulk``, ``ess_per_s`` (min bulk ESS divided by
        the sampling time), ``divergences`` (count), ``rms_misfit_mgal`` (observed minus
        posterior-mean prediction), ``chi2_per_n`` (with the posterior mean σ when
        inferred, else NaN), ``sampling_time_s``, ``method``, ``fit_messages`` (from
        :func:`~gempy_gravinv.bayes.fit_report`: does the model fit at the stated noise,
        is the residual structured), ``unconstrained`` (components whose posterior sd is
        at least 0.8 prior sd, :func:`~gempy_gravinv.bayes.constraint_table`; with prior draws).
    """
    import arviz as az

    names = _params(idata)
    table = az.summary(idata, var_names=names, round_to="none") if names else None
    post = idata.posterior
    out: dict[str, Any] = {"table": table, "method": post.attrs.get("method", "")}
    t = float(post.attrs.get("sampling_time_s", np.nan))
    out["sampling_time_s"] = t
    if table is not None and post.sizes.get("chain", 1) > 1:
        out["max_rhat"] = float(np.nanmax(table["r_hat"].values))
    else:
        out["max_rhat"] = float("nan")
    ess = np.asarray(table["ess_bulk"].values, dtype=float) if table is not None else np.array([])
    out["min_ess_bulk"] = float(np.nanmin(ess)) if np.isfinite(ess).any() else float("nan")  # NaN: too few draws
    out["ess_per_s"] = out["min_ess_bulk"] / t if t and np.isfinite(t) else float("nan")
    ss = idata.get("sample_stats")
    out["divergences"] = int(ss["diverging"].values.sum()) if ss is not None and "diverging" in ss else 0
    if "observed_data" in idata.groups():
        obs = idata.observed_data["obs"].values
        pred = idata.posterior_predictive["gz_pred"].values.reshape(-1, obs.size).mean(0)
        r = obs - pred
        out["rms_misfit_mgal"] = float(np.sqrt(np.mean(r ** 2)))
        if "sigma" in post:
            s = post["sigma"].values.reshape(-1, obs.size).mean(0)
            out["chi2_per_n"] = float(np.mean((r / s) ** 2))
        else:
            out["chi2_per_n"] = float("nan")
        out["fit_messages"] = fit_report(idata)["messages"]  # fits at the stated noise? structure missed?
    if "prior" in idata.groups():
        tab = constraint_table(idata)  # posterior sd ~ prior sd: not constrained by the data
        out["unconstrained"] = [str(i) for i in tab.index[~tab["constrained"]]] if len(tab) else []
    return out


def flag_outliers(idata, *, k: float = 2.0) -> np.ndarray:
    """Stations whose posterior σ is unusually large: median σ_i > exp(μ + k τ) (posterior medians).

    Returns a boolean array (n_data,); all False when the noise is not hierarchical.
    """
    post = idata.posterior
    if "sigma" not in post:
        n = idata.observed_data["obs"].size if "observed_data" in idata.groups() else 0
        return np.zeros(n, dtype=bool)
    s = np.median(post["sigma"].values.reshape(-1, post["sigma"].shape[-1]), axis=0)
    mu = float(np.median(post["noise_mu"].values))
    tau = float(np.median(post["noise_tau"].values))
    return s > np.exp(mu + k * tau)


def _fig_path(outdir, name):
    p = Path(outdir)
    p.mkdir(parents=True, exist_ok=True)
    return p / name


def plot_prior_posterior(idata, path) -> str:
    """Histogram of prior vs posterior for every scalar component of the parameter sites."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comps = []
    for v in _params(idata):
        arr = idata.posterior[v].values
        flat = arr.reshape(arr.shape[0] * arr.shape[1], -1)
        pri = None
        if "prior" in idata.groups() and v in idata.prior:
            pa = idata.prior[v].values
            pri = pa.reshape(pa.shape[0] * pa.shape[1], -1)
        for j in range(flat.shape[1]):
            comps.append((f"{v}[{j}]" if flat.shape[1] > 1 else v, flat[:, j],
                          None if pri is None else pri[:, j]))
    n = max(len(comps), 1)
    ncol = min(3, n)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 2.8 * nrow), squeeze=False)
    for ax, (name, post, pri) in zip(axes.ravel(), comps):
        if pri is not None:
            ax.hist(pri, bins=30, density=True, alpha=0.4, label="prior", color="0.5")
        ax.hist(post, bins=30, density=True, alpha=0.7, label="posterior", color="C0")
        ax.set_title(name, fontsize=9)
    for ax in axes.ravel()[len(comps):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=8)
    fig.suptitle("prior vs posterior (densities kg/m³, dips deg, sp_z m, offset mGal)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def plot_predictive(idata, path, locations=None) -> str:
    """Observed vs posterior-predicted g_z (mean and 90% interval), and a residual map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    obs = idata.observed_data["obs"].values
    pred = idata.posterior_predictive["gz_pred"].values.reshape(-1, obs.size)
    pp = idata.posterior_predictive["obs"].values.reshape(-1, obs.size)
    m = pred.mean(0)
    lo, hi = np.percentile(pp, [5, 95], axis=0)
    ncol = 2 if locations is not None else 1
    fig, axes = plt.subplots(1, ncol, figsize=(5 * ncol, 4.2), squeeze=False)
    ax = axes[0, 0]
    ax.errorbar(obs, m, yerr=[np.clip(m - lo, 0, None), np.clip(hi - m, 0, None)], fmt="o", ms=3, alpha=0.7,
                elinewidth=0.8)
    lims = [min(obs.min(), lo.min()), max(obs.max(), hi.max())]
    ax.plot(lims, lims, "k--", lw=1)
    ax.set_xlabel("observed g_z (mGal, +down)")
    ax.set_ylabel("predicted g_z (mGal), mean and 90% PP interval")
    if locations is not None:
        loc = np.asarray(locations)
        ax2 = axes[0, 1]
        r = obs - m
        vmax = np.max(np.abs(r)) or 1.0
        sc = ax2.scatter(loc[:, 0], loc[:, 1], c=r, cmap="RdBu_r", vmin=-vmax, vmax=vmax, s=18)
        fig.colorbar(sc, ax=ax2, label="observed - predicted (mGal)")
        ax2.set_aspect("equal")
        ax2.set_title("residual")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def plot_station_sigma(idata, path, locations=None, k: float = 2.0) -> str | None:
    """Posterior per-station σ (median, 90% interval) with flagged outliers."""
    if "sigma" not in idata.posterior:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = idata.posterior["sigma"].values.reshape(-1, idata.posterior["sigma"].shape[-1])
    med = np.median(s, 0)
    lo, hi = np.percentile(s, [5, 95], axis=0)
    lo, hi = np.minimum(lo, med), np.maximum(hi, med)
    flags = flag_outliers(idata, k=k)
    ncol = 2 if locations is not None else 1
    fig, axes = plt.subplots(1, ncol, figsize=(5.5 * ncol, 4), squeeze=False)
    ax = axes[0, 0]
    i = np.arange(med.size)
    ax.errorbar(i[~flags], med[~flags], yerr=[(med - lo)[~flags], (hi - med)[~flags]], fmt="o",
                ms=3, color="C0", elinewidth=0.6, label="station")
    ax.errorbar(i[flags], med[flags], yerr=[(med - lo)[flags], (hi - med)[flags]], fmt="o", ms=4,
                color="C3", elinewidth=0.8, label=f"outlier ({int(flags.sum())})")
    ax.set_yscale("log")
    ax.set_xlabel("station")
    ax.set_ylabel("σ_i (mGal)")
    ax.legend(fontsize=8)
    if locations is not None:
        loc = np.asarray(locations)
        sc = axes[0, 1].scatter(loc[:, 0], loc[:, 1], c=np.log10(med), s=18, cmap="viridis")
        axes[0, 1].scatter(loc[flags, 0], loc[flags, 1], facecolors="none", edgecolors="r", s=60)
        fig.colorbar(sc, ax=axes[0, 1], label="log10 σ_i (mGal)")
        axes[0, 1].set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def lithology_section(geo_model, idata, *, axis: str = "y", position: float | None = None,
                      extent=None, resolution=(40, 20), n_draws: int = 20,
                      sigmoid_slope: float | None = None, seed: int = 0,
                      unit_names=None) -> dict[str, np.ndarray]:
    """Posterior lithology probability and entropy on a vertical section.

    Parameters
    ----------
    geo_model : gempy GeoModel
        The model whose structural parameters were sampled.
    idata : InferenceData
        Posterior with ``dips`` / ``sp_z`` (indices from ``posterior.attrs`` or all).
    axis : {"x", "y"}
        Section normal: "y" = section along x at y = position.
    position : float
        Coordinate of the section (m); default: middle of the extent.
    extent : sequence of 6 floats
        xmin, xmax, ymin, ymax, zmin, zmax (m); default the model extent.
    resolution : (n_h, n_z)
        Points along the section and in depth.
    n_draws : int
        Posterior draws evaluated (random, seeded).
    sigmoid_slope : float, optional
        GemPy's sigmoid slope for the lithology of each draw; default the model's own
        (GemPy's 5e6: the hard lithology ``gp.compute_model`` gives). Each draw's ids are
        rounded to integers, so the probability and entropy show the spread of the
        draws, not the blur of a smooth lithology.
    seed : int
        Seed of the draw selection.
    unit_names : list of str, optional
        Labels of the units (GemPy id order); default GemPy's names.

    Returns
    -------
    dict
        ``prob`` (n_units, n_z, n_h) fraction of draws in each unit, ``entropy`` (n_z, n_h) in nats,
        ``h``, ``z`` coordinates (m), ``unit_names``.
    """
    import torch

    from ..geomodel import TorchGeoModel

    check_choice(axis, ("x", "y"), name="axis")
    ext = np.asarray(extent if extent is not None else geo_model.grid.extent, float)
    nh, nz = resolution
    if axis == "y":
        h = np.linspace(ext[0], ext[1], nh)
        pos = 0.5 * (ext[2] + ext[3]) if position is None else position
    else:
        h = np.linspace(ext[2], ext[3], nh)
        pos = 0.5 * (ext[0] + ext[1]) if position is None else position
    z = np.linspace(ext[4], ext[5], nz)
    H, Z = np.meshgrid(h, z)
    P = np.full(H.size, pos)
    pts = np.c_[H.ravel(), P, Z.ravel()] if axis == "y" else np.c_[P, H.ravel(), Z.ravel()]
    slope = float(geo_model.interpolation_options.sigmoid_slope) if sigmoid_slope is None else sigmoid_slope
    tg = TorchGeoModel(geo_model, pts, sigmoid_slope=slope)
    post = idata.posterior
    dip_index = post.attrs.get("dip_index")
    sp_index = post.attrs.get("sp_index")
    n_tot = post.sizes["chain"] * post.sizes["draw"]
    rng = np.random.default_rng(seed)
    sel = rng.choice(n_tot, size=min(n_draws, n_tot), replace=False)
    acc = np.zeros((H.size, tg.n_units))
    for i in sel:
        params: dict[str, Any] = {}
        if "dips" in post:
            params["dips"] = torch.as_tensor(post["dips"].values.reshape(n_tot, -1)[i])
            params["dip_index"] = None if dip_index is None else list(np.atleast_1d(dip_index))
        if "sp_z" in post:
            params["sp_z"] = torch.as_tensor(post["sp_z"].values.reshape(n_tot, -1)[i])
            params["sp_index"] = None if sp_index is None else list(np.atleast_1d(sp_index))
        with torch.no_grad():
            ids = np.rint(tg.soft_ids(**params).numpy()).astype(int)  # this draw's hard lithology
            acc[np.arange(ids.size), np.clip(ids, 1, tg.n_units) - 1] += 1.0
    prob = acc / len(sel)
    ent = -np.sum(np.where(prob > 0, prob * np.log(np.clip(prob, 1e-300, None)), 0.0), axis=1)
    return {"prob": prob.T.reshape(tg.n_units, nz, nh), "entropy": ent.reshape(nz, nh),
            "h": h, "z": z, "unit_names": list(unit_names or tg.unit_names), "axis": axis,
            "position": pos}


def plot_lithology_section(section: dict, path) -> str:
    """Figure of :func:`lithology_section`: probability of each unit and the entropy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prob, ent = section["prob"], section["entropy"]
    n = prob.shape[0] + 1
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False)
    ext = [section["h"][0], section["h"][-1], section["z"][0], section["z"][-1]]
    for k in range(prob.shape[0]):
        im = axes[0, k].imshow(prob[k], origin="lower", extent=ext, aspect="auto", vmin=0, vmax=1,
                               cmap="viridis")
        axes[0, k].set_title(f"P({section['unit_names'][k]})", fontsize=9)
        fig.colorbar(im, ax=axes[0, k])
    im = axes[0, -1].imshow(ent, origin="lower", extent=ext, aspect="auto", cmap="magma")
    axes[0, -1].set_title("entropy (nats)", fontsize=9)
    fig.colorbar(im, ax=axes[0, -1])
    lab = "x (m)" if section["axis"] == "y" else "y (m)"
    for ax in axes.ravel():
        ax.set_xlabel(lab)
    axes[0, 0].set_ylabel("z (m)")
    fig.suptitle(f"section at {section['axis']} = {section['position']:.0f} m", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def plot_all(idata, outdir, *, locations=None, geo_model=None, section_kwargs=None) -> list[str]:
    """Write every figure into ``outdir``; returns the paths written."""
    paths = [plot_prior_posterior(idata, _fig_path(outdir, "prior_posterior.png"))]
    if "observed_data" in idata.groups():
        paths.append(plot_predictive(idata, _fig_path(outdir, "predictive.png"), locations))
    p = plot_station_sigma(idata, _fig_path(outdir, "station_sigma.png"), locations)
    if p:
        paths.append(p)
    if geo_model is not None and ("dips" in idata.posterior or "sp_z" in idata.posterior):
        sec = lithology_section(geo_model, idata, **(section_kwargs or {}))
        paths.append(plot_lithology_section(sec, _fig_path(outdir, "lithology_section.png")))
    return paths
