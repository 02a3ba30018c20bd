"""Figures shared by the INR, SimPEG-comparison and hybrid workflows (matplotlib, Agg).

- :func:`plot_sections`: true vs recovered models on xy, xz and yz sections of a tensor
  mesh with one colour scale and the true model's outlines;
- :func:`plot_data_maps`: observed, predicted and residual g_z at the stations;
- :func:`plot_convergence`: training / inversion histories;
- :func:`plot_std`: sections of a model standard deviation (ensembles, posteriors).

Units: densities (contrasts) in kg/m³, g_z in mGal positive downward, coordinates in
metres with z up (sections show elevation). Every function returns a
``matplotlib.figure.Figure`` built without pyplot's global state (safe in threads and
on headless machines); save it with ``fig.savefig(path)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ._mesh import PrismMesh, as_prism_mesh

__all__ = ["plot_sections", "plot_data_maps", "plot_convergence", "plot_std", "section_index"]


def _figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _np(v, name: str) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    a = np.asarray(v, dtype=np.float64)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per cell or station), got shape {a.shape}")
    return a


def _tensor(mesh) -> PrismMesh:
    mesh = as_prism_mesh(mesh)
    if mesh.shape is None or mesh.source is None or not hasattr(mesh.source, "nodes_x"):
        raise ValueError("sections need a tensor mesh (a PrismMesh built from a discretize TensorMesh)")
    return mesh


def _grid(mesh: PrismMesh, values, name: str) -> np.ndarray:
    """Values on the (active) cells -> (nx, ny, nz) array, NaN outside the active cells."""
    v = _np(values, name)
    if v.shape[0] != mesh.n_cells:
        raise ValueError(f"{name} has {v.shape[0]} values but the mesh has {mesh.n_cells} cells")
    return np.asarray(mesh.to_full(v, fill=np.nan), float).reshape(mesh.shape, order="F")


def section_index(mesh, true=None) -> tuple[int, int, int]:
    """Default section indices ``(ix, iy, iz)`` (iz counted from the bottom, discretize order).

    With ``true``, the cell nearest the centroid of ``|true - median(true)|`` (the
    anomaly); otherwise the middle of the mesh.

    Parameters
    ----------
    mesh : PrismMesh or discretize.TensorMesh
        Tensor mesh (metres, z up).
    true : array_like (n_cells,), optional
        True density contrast, kg/m³.

    Returns
    -------
    tuple of 3 int
    """
    mesh = _tensor(mesh)
    nx, ny, nz = mesh.shape
    if true is None:
        return nx // 2, ny // 2, nz // 2
    g = _grid(mesh, true, "true")
    w = np.abs(g - np.nanmedian(g))
    w = np.where(np.isfinite(w), w, 0.0)
    if w.sum() == 0:
        return nx // 2, ny // 2, nz // 2
    idx = np.indices(g.shape).reshape(3, -1)
    c = (idx * w.reshape(-1)).sum(1) / w.sum()
    return tuple(int(np.clip(round(ci), 0, n - 1)) for ci, n in zip(c, (nx, ny, nz)))


def _outline_levels(true_grid: np.ndarray, levels):
    if levels is not None:
        return np.atleast_1d(np.asarray(levels, float))
    u = np.unique(true_grid[np.isfinite(true_grid)])
    if u.size < 2:
        return np.array([])
    if u.size <= 4:  # piecewise-constant truth: the boundaries between values
        return (u[:-1] + u[1:]) / 2
    return np.quantile(u, [0.25, 0.5, 0.75])


def _edge_samples(nodes: np.ndarray) -> np.ndarray:
    """Two samples per cell just inside its edges, so contours of a blocky field follow cell faces."""
    eps = 1e-6 * np.diff(nodes)
    return np.column_stack([nodes[:-1] + eps, nodes[1:] - eps]).ravel()


def _draw_outline(ax, un, vn, uc, vc, tval, levels, color) -> None:
    """Contours of a true-model section; on cell faces when the truth is piecewise constant."""
    if not levels.size or tval is None or not np.isfinite(tval).any():
        return
    if not np.nanmax(tval) > np.nanmin(tval):
        return
    lv = levels[(levels > np.nanmin(tval)) & (levels < np.nanmax(tval))]
    if not lv.size:
        return
    t = np.ma.masked_invalid(tval)
    if np.unique(tval[np.isfinite(tval)]).size <= 4:
        ax.contour(_edge_samples(un), _edge_samples(vn), np.repeat(np.repeat(t, 2, axis=0), 2, axis=1),
                   levels=lv, colors=color, linewidths=1.0)
    else:
        ax.contour(uc, vc, t, levels=lv, colors=color, linewidths=1.0)


def plot_sections(mesh, models, true=None, index=None, outline: bool = True, cmap: str = "Spectral_r",
                  vmin: float | None = None, vmax: float | None = None, *,
                  outline_levels=None, units: str = "kg/m³", true_label: str = "true",
                  figsize=None):
    """True and recovered models on xy, xz and yz sections, one shared colour scale.

    Parameters
    ----------
    mesh : PrismMesh or discretize.TensorMesh
        Tensor mesh (active cells allowed; inactive cells are blank).
    models : dict of str to array_like, or array_like
        Models to show, one row each, in the mesh's cell order (kg/m³ contrast, NumPy
        or torch). A bare array is labelled ``"model"``.
    true : array_like, optional
        True model (first row, and the source of the outlines).
    index : tuple of int, optional
        ``(ix, iy, iz)`` cell indices of the yz, xz and xy sections (iz counted from
        the bottom, discretize order); default :func:`section_index`.
    outline : bool
        Draw contours of the true model on every panel.
    cmap : str
        Colormap.
    vmin, vmax : float, optional
        Shared colour limits (default: min and max over all panels).
    outline_levels : array_like, optional
        Contour levels of the outlines, kg/m³; default: midpoints between the values of
        a piecewise-constant truth (≤ 4 distinct values), else its quartiles.
    units : str
        Colour-bar label.
    true_label : str
        Row label of ``true``.
    figsize : tuple, optional
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.ticker import MaxNLocator

    mesh = _tensor(mesh)
    if not isinstance(models, Mapping):
        models = {"model": models}
    rows: list[tuple[str, np.ndarray]] = []
    tg = None
    if true is not None:
        tg = _grid(mesh, true, "true")
        rows.append((true_label, tg))
    for k, v in models.items():
        rows.append((str(k), _grid(mesh, v, str(k))))
    if not rows:
        raise ValueError("nothing to plot: give at least one model or true")
    nx, ny, nz = mesh.shape
    if index is None:
        index = section_index(mesh, true)
    ix, iy, iz = (int(i) for i in index)
    for i, n, ax in ((ix, nx, "ix"), (iy, ny, "iy"), (iz, nz, "iz")):
        if not 0 <= i < n:
            raise ValueError(f"section index {ax}={i} outside 0..{n - 1}")
    allv = np.concatenate([g[np.isfinite(g)] for _, g in rows])
    lo = float(np.min(allv)) if vmin is None else float(vmin)
    hi = float(np.max(allv)) if vmax is None else float(vmax)
    if hi <= lo:
        hi = lo + 1.0
    src = mesh.source
    xn, yn, zn = np.asarray(src.nodes_x), np.asarray(src.nodes_y), np.asarray(src.nodes_z)
    xc, yc, zc = np.asarray(src.cell_centers_x), np.asarray(src.cell_centers_y), np.asarray(src.cell_centers_z)
    levels = _outline_levels(tg, outline_levels) if (tg is not None and outline) else np.array([])

    ext = [xn[-1] - xn[0], yn[-1] - yn[0], zn[-1] - zn[0]]
    w = [ext[0], ext[0], ext[1]]
    h = [ext[1], ext[2], ext[2]]
    if figsize is None:
        figsize = (12.0, 1.0 + 2.6 * len(rows))
    fig = _figure(figsize)
    gs = fig.add_gridspec(len(rows), 3, width_ratios=[1.0, 1.0, 1.0])
    im = None
    titles = (f"xy at z = {zc[iz]:.0f} m", f"xz at y = {yc[iy]:.0f} m", f"yz at x = {xc[ix]:.0f} m")
    for r, (label, g) in enumerate(rows):
        secs = [(xn, yn, g[:, :, iz].T, xc, yc, tg[:, :, iz].T if tg is not None else None, "x (m)", "y (m)"),
                (xn, zn, g[:, iy, :].T, xc, zc, tg[:, iy, :].T if tg is not None else None, "x (m)", "z (m)"),
                (yn, zn, g[ix, :, :].T, yc, zc, tg[ix, :, :].T if tg is not None else None, "y (m)", "z (m)")]
        for c, (un, vn, val, uc, vc, tval, xl, yl) in enumerate(secs):
            ax = fig.add_subplot(gs[r, c])
            im = ax.pcolormesh(un, vn, np.ma.masked_invalid(val), cmap=cmap, vmin=lo, vmax=hi, shading="flat")
            _draw_outline(ax, un, vn, uc, vc, tval, levels, "k")
            ax.set_aspect("equal" if max(w[c], h[c]) / min(w[c], h[c]) < 8 else "auto")
            ax.set_title(f"{label}: {titles[c]}", fontsize=9)
            ax.set_xlabel(xl, fontsize=8)
            ax.set_ylabel(yl, fontsize=8)
            ax.tick_params(labelsize=7)
            ax.xaxis.set_major_locator(MaxNLocator(4))
            ax.yaxis.set_major_locator(MaxNLocator(5))
            if c == 0:  # mark the other two sections on the map
                ax.axhline(yc[iy], color="0.3", lw=0.6, ls="--")
                ax.axvline(xc[ix], color="0.3", lw=0.6, ls="--")
    cb = fig.colorbar(im, ax=fig.axes, shrink=0.8, pad=0.01)
    cb.set_label(units)
    return fig


def plot_data_maps(survey, pred, *, cmap: str = "Spectral_r", residual_cmap: str = "RdBu_r",
                   normalized: bool = False, figsize=(14.0, 4.2)):
    """Observed, predicted and residual (observed - predicted) g_z at the stations.

    Parameters
    ----------
    survey : Survey
        Stations and observed g_z (mGal, positive downward); its std is used for χ²/N
        and for ``normalized`` residuals.
    pred : array_like (n_data,)
        Predicted g_z, mGal, positive downward (NumPy or torch).
    cmap, residual_cmap : str
        Colormaps of the data and of the residual (centred on 0).
    normalized : bool
        Show residual / std (dimensionless) instead of mGal.
    figsize : tuple
        Inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.ticker import MaxNLocator

    survey.require_data(need_std=normalized)
    p = _np(pred, "pred")
    obs = survey.gz
    if p.shape[0] != obs.shape[0]:
        raise ValueError(f"pred has {p.shape[0]} values but the survey has {obs.shape[0]} stations")
    if not np.all(np.isfinite(p)):
        raise ValueError("pred contains NaN/inf values")
    loc = survey.locations
    res = obs - p
    std = survey.std
    rms = float(np.sqrt(np.mean(res**2)))
    chi2 = None if std is None else float(np.mean((res / std) ** 2))
    lo, hi = float(min(obs.min(), p.min())), float(max(obs.max(), p.max()))
    # marker size from the station spacing (points² on a ~4 inch panel)
    span = max(np.ptp(loc[:, 0]), np.ptp(loc[:, 1]), 1e-9)
    s = float(np.clip((4.0 * 72 / np.sqrt(loc.shape[0]) * 0.9) ** 2, 4, 400)) if span > 0 else 40.0
    fig = _figure(figsize)
    axes = fig.subplots(1, 3)
    for ax, val, title in ((axes[0], obs, "observed g_z"), (axes[1], p, "predicted g_z")):
        sc = ax.scatter(loc[:, 0], loc[:, 1], c=val, s=s, marker="s", cmap=cmap, vmin=lo, vmax=hi,
                        edgecolors="none")
        ax.set_title(title, fontsize=10)
        fig.colorbar(sc, ax=ax, shrink=0.85, label="mGal (positive down)")
    if normalized:
        rv, unit, rt = res / std, "residual / std", "normalized residual"
    else:
        rv, unit, rt = res, "mGal", "residual (obs - pred)"
    m = float(np.max(np.abs(rv))) or 1.0
    sc = axes[2].scatter(loc[:, 0], loc[:, 1], c=rv, s=s, marker="s", cmap=residual_cmap, vmin=-m, vmax=m,
                         edgecolors="none")
    t = f"{rt}\nRMS {rms:.3g} mGal" + ("" if chi2 is None else f", χ²/N {chi2:.3g}")
    axes[2].set_title(t, fontsize=10)
    fig.colorbar(sc, ax=axes[2], shrink=0.85, label=unit)
    for ax in axes:
        ax.set_aspect("equal")
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_xlabel("x (m)", fontsize=8)
        ax.set_ylabel("y (m)", fontsize=8)
        ax.tick_params(labelsize=7)
    return fig


def plot_convergence(history: Mapping[str, Sequence[float]], *, target: Mapping[str, float] | None = None,
                     logy: bool | None = None, xlabel: str = "iteration", best: int | None = None,
                     figsize=None):
    """One panel per history series (loss, χ²/N, learning rate, model error...).

    Parameters
    ----------
    history : dict of str to sequence of float
        Series to plot against their index; non-sequence values (e.g. ``best_epoch``)
        and empty series are skipped. A ``best_epoch`` / ``best_iteration`` entry is
        drawn as a vertical line unless ``best`` is given.
    target : dict of str to float, optional
        Horizontal reference lines per series; by default 1 for series whose name
        contains ``chi2``.
    logy : bool, optional
        Log y axis; by default per series when it is positive and spans > 10x.
    xlabel : str
        x-axis label.
    best : int, optional
        Iteration to mark (the returned state).
    figsize : tuple, optional
        Inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(history, Mapping):
        raise TypeError(f"history must be a dict of lists, got {type(history).__name__}")
    series = {}
    for k, v in history.items():
        if isinstance(v, (str, bytes)) or np.ndim(v) != 1:
            continue
        a = _np(v, str(k))
        if a.size:
            series[str(k)] = a
    if not series:
        raise ValueError("history holds no non-empty series to plot")
    if best is None:
        for key in ("best_epoch", "best_iteration", "best_step"):
            if key in history and np.ndim(history[key]) == 0 and history[key] is not None:
                best = int(history[key])
                break
    tgt = dict(target) if target is not None else {k: 1.0 for k in series if "chi2" in k.lower()}
    n = len(series)
    fig = _figure(figsize or (7.0, 1.0 + 2.0 * n))
    axes = np.atleast_1d(fig.subplots(n, 1, sharex=True))
    for ax, (k, a) in zip(axes, series.items()):
        ax.plot(np.arange(a.size), a, lw=1.2)
        fin = a[np.isfinite(a)]
        use_log = logy if logy is not None else bool(fin.size and fin.min() > 0 and fin.max() / fin.min() > 10)
        if use_log and fin.size and fin.min() > 0:
            ax.set_yscale("log")
        if k in tgt:
            ax.axhline(tgt[k], color="tab:red", ls="--", lw=0.9, label=f"target {tgt[k]:g}")
            ax.legend(fontsize=7, loc="upper right")
        if best is not None:
            ax.axvline(best, color="0.4", ls=":", lw=0.9)
        ax.set_ylabel(k, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, which="both", alpha=0.3)
    axes[-1].set_xlabel(xlabel, fontsize=8)
    return fig


def plot_std(mesh, std, index=None, *, true=None, cmap: str = "viridis", vmax: float | None = None,
             label: str = "std", units: str = "kg/m³", figsize=None):
    """Sections of a model standard deviation (ensemble or posterior), from 0 up.

    Parameters
    ----------
    mesh : PrismMesh or discretize.TensorMesh
        Tensor mesh.
    std : array_like (n_cells,)
        Standard deviation per cell, kg/m³ (>= 0).
    index : tuple of int, optional
        Section indices, as in :func:`plot_sections`.
    true : array_like, optional
        True model, drawn as outlines only (it is not shown as a row).
    cmap : str
        Colormap.
    vmax : float, optional
        Upper colour limit (default the maximum).
    label, units : str
        Row label and colour-bar label.
    figsize : tuple, optional
        Inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    s = _np(std, "std")
    if np.any(s[np.isfinite(s)] < 0):
        raise ValueError("std must be >= 0")
    mesh = _tensor(mesh)
    if index is None:
        index = section_index(mesh, true if true is not None else s)
    fig = plot_sections(mesh, {label: s}, true=None, index=index, outline=False, cmap=cmap, vmin=0.0,
                        vmax=vmax, units=units, figsize=figsize)
    if true is not None:
        _overlay_outlines(fig, mesh, true, index)
    return fig


def _overlay_outlines(fig, mesh: PrismMesh, true, index) -> None:
    tg = _grid(mesh, true, "true")
    levels = _outline_levels(tg, None)
    src = mesh.source
    xn, yn, zn = np.asarray(src.nodes_x), np.asarray(src.nodes_y), np.asarray(src.nodes_z)
    xc, yc, zc = np.asarray(src.cell_centers_x), np.asarray(src.cell_centers_y), np.asarray(src.cell_centers_z)
    ix, iy, iz = index
    secs = [(xn, yn, xc, yc, tg[:, :, iz].T), (xn, zn, xc, zc, tg[:, iy, :].T), (yn, zn, yc, zc, tg[ix, :, :].T)]
    axes = [a for a in fig.axes if a.get_label() != "<colorbar>"][:3]
    for ax, (un, vn, uc, vc, t) in zip(axes, secs):
        _draw_outline(ax, un, vn, uc, vc, t, levels, "w")
