"""Figures a GemPy user expects from a Bayesian run: ArviZ and gempy-viewer.

- :func:`plot_arviz`: ArviZ's trace and rank plots, pair plot, energy plot (when the
  sample stats hold ``energy``) and posterior predictive check against the observed
  data (g_z mGal, positive down).
- :func:`plot_lithology_gempy`: the posterior-mean lithology, the probability of each
  unit and the entropy (nats) from :func:`~gempy_gravinv.bayes.lithology_fields`, drawn
  with ``gempy_viewer.plot_2d`` on a section through the most uncertain place.

matplotlib runs on the Agg backend (no screen).
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np

__all__ = ["plot_arviz", "plot_lithology_gempy"]

logger = logging.getLogger(__name__)

_PARAMS = ("densities", "dips", "sp_z", "offset", "noise_mu", "noise_tau")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(ax_or_axes, path: Path) -> str:
    plt = _plt()
    ax = np.ravel(np.atleast_1d(ax_or_axes))[0]
    fig = ax.get_figure()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def plot_arviz(idata, outdir) -> list[str]:
    """ArviZ diagnostics and checks of a run, one PNG each.

    Parameters
    ----------
    idata : arviz.InferenceData
        From :meth:`BayesProblem.run` (or any runner of this package).
    outdir : str or path-like
        Folder (created).

    Returns
    -------
    list of str
        Paths written: ``trace.png``, ``rank.png`` (several chains), ``pair.png`` (two or
        more scalar parameters), ``energy.png`` (when ``sample_stats`` has ``energy``),
        ``ppc.png`` (observed vs posterior predictive g_z, mGal). A plot ArviZ refuses is
        logged and skipped.
    """
    import arviz as az

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    names = [v for v in _PARAMS if v in idata.posterior.data_vars]
    n_scalar = sum(int(np.prod(idata.posterior[v].shape[2:])) for v in names)
    jobs = [("trace.png", lambda: az.plot_trace(idata, var_names=names, compact=False))]
    if idata.posterior.sizes.get("chain", 1) > 1:
        jobs.append(("rank.png", lambda: az.plot_rank(idata, var_names=names)))
    if n_scalar >= 2:
        jobs.append(("pair.png", lambda: az.plot_pair(idata, var_names=names, kind="kde" if
                                                       idata.posterior.sizes["draw"] >= 50 else "scatter",
                                                       marginals=True)))
    ss = idata.get("sample_stats")
    if ss is not None and "energy" in ss:
        jobs.append(("energy.png", lambda: az.plot_energy(idata)))
    if "observed_data" in idata.groups() and "posterior_predictive" in idata.groups():
        jobs.append(("ppc.png", lambda: az.plot_ppc(idata, data_pairs={"obs": "obs"}, var_names=["obs"],
                                                    num_pp_samples=min(50, idata.posterior.sizes["draw"]))))
    paths = []
    for fname, job in jobs:
        if not names and fname != "ppc.png":
            continue
        try:
            paths.append(_save(job(), out / fname))
        except Exception as exc:  # noqa: BLE001 - a refused plot must not lose the others
            logger.warning("ArviZ %s skipped: %s", fname, exc)
            _plt().close("all")
    return paths


def _section_cell(entropy: np.ndarray, resolution, direction: str) -> int:
    """Index of the section (normal ``direction``) through the largest total entropy (ties: the middlemost)."""
    e = np.asarray(entropy).reshape(resolution)  # GemPy's regular grid is C-ordered (x slowest)
    axis = {"x": 0, "y": 1}[direction]
    other = tuple(a for a in range(3) if a != axis)
    tot = e.sum(axis=other)
    best = np.flatnonzero(tot >= tot.max() * (1 - 1e-9) - 1e-12)
    return int(best[np.argmin(np.abs(best - (len(tot) - 1) / 2))])


def plot_lithology_gempy(fields: dict, outdir, *, direction: str = "y", cell_number: int | None = None) -> list[str]:
    """Posterior-mean lithology, unit probabilities and entropy on a section, with gempy-viewer.

    Parameters
    ----------
    fields : dict
        From :func:`~gempy_gravinv.bayes.lithology_fields` (its ``geo_model`` is the
        posterior-mean model on the same dense grid, already computed).
    outdir : str or path-like
        Folder (created).
    direction : {"x", "y"}
        Section normal (GemPy's ``direction``).
    cell_number : int, optional
        Section index along ``direction``; default: the one with the largest total
        entropy (where the posterior is least sure of the lithology).

    Returns
    -------
    list of str
        ``lithology_mean.png``, ``lithology_probability_<unit>.png`` (each unit that
        occurs in a draw) and ``lithology_entropy.png``.
    """
    import gempy_viewer as gpv

    from .._validation import check_choice
    from ..geomodel import gempy_torch

    check_choice(direction, ("x", "y"), name="direction")
    _plt()
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    gm = fields["geo_model"]
    res = fields["resolution"]
    cell = _section_cell(fields["entropy"], res, direction) if cell_number is None else int(cell_number)
    paths = []
    common = dict(direction=[direction], cell_number=[cell], show=False, show_data=True)
    with gempy_torch(grads=False), contextlib.redirect_stdout(io.StringIO()):
        p = gpv.plot_2d(gm, legend=True, **common)
        p.fig.suptitle(f"posterior-mean lithology ({direction} section {cell})", fontsize=9)
        paths.append(_save(p.fig.axes, out / "lithology_mean.png"))
        present = [k for k in range(fields["prob"].shape[0]) if fields["prob"][k].max() > 0]
        n_present = max(len(present), 2)
        panels = [(f"lithology_probability_{fields['unit_names'][k]}.png", fields["prob"][k],
                   f"P({fields['unit_names'][k]})", "viridis", 1.0) for k in present]
        panels.append(("lithology_entropy.png", fields["entropy"], "entropy (nats)", "magma",
                       float(np.log(n_present))))
        for fname, blk, title, cmap, vmax in panels:
            p = gpv.plot_2d(gm, override_regular_grid=np.asarray(blk, dtype=float), legend=False,
                            kwargs_lithology={"cmap": cmap},
                            show_boundaries=False, **common)
            ax = p.axes[0]
            ax.set_title(f"{title}, {direction} section {cell}", fontsize=9)
            if ax.images:
                im = ax.images[-1]
                im.set_cmap(cmap)
                im.set_clim(0.0, vmax)
                p.fig.colorbar(im, ax=ax, shrink=0.8)
            paths.append(_save(p.fig.axes, out / fname))
    return paths
