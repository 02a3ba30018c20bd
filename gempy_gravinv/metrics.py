"""Benchmark metrics, always reported together: data fit, model error, correlation, cost.

A result is judged on all of them at once (:func:`evaluate`): χ²/N and the RMS misfit
(does the model explain the data to the noise?), the RMS density error against the
floors of the trivial models, Pearson r overall and per layer (is it the right model?),
and wall time, peak memory and device (what did it cost?).

Data metrics take g_z in mGal (any sign convention, as long as prediction and
observation share it); for a survey mixing gravity components (mGal and Eötvös)
:func:`misfit_by_component` reports the misfit of each component in its own unit. Model
metrics take density contrasts in kg/m³ on the same cells. Every function accepts NumPy
arrays, lists or torch tensors (any device) and computes in float64 NumPy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._components import UNITS, check_component
from ._json import to_jsonable
from ._validation import check_choice, check_number

__all__ = ["chi2_per_datum", "rms_misfit", "misfit_by_component", "residual_autocorrelation", "rms_error",
           "relative_error", "pearson_r", "pearson_r_by_layer", "floor", "coverage", "evaluate"]


def _arr(values, name: str) -> np.ndarray:
    """Float64 1-D NumPy copy of ``values`` (NumPy, list or torch), finite, non-empty."""
    if values is None:
        raise ValueError(f"{name} is required")
    if hasattr(values, "detach"):  # torch tensor on any device
        values = values.detach().cpu().numpy()
    try:
        a = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric array-like, got {type(values).__name__}") from exc
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} is empty")
    bad = ~np.isfinite(a)
    if bad.any():
        raise ValueError(f"{name} contains {int(bad.sum())} NaN/inf value(s), first at index "
                         f"{int(np.argmax(bad))}")
    return a


def _pair(a, b, na: str, nb: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = _arr(a, na), _arr(b, nb)
    if x.shape != y.shape:
        raise ValueError(f"{na} has {x.size} values but {nb} has {y.size}")
    return x, y


def chi2_per_datum(pred, obs, std) -> float:
    """χ²/N = mean(((pred - obs) / std)²); 1 when the misfit matches the noise.

    Parameters
    ----------
    pred, obs : array_like (n_data,)
        Predicted and observed g_z, mGal (same sign convention).
    std : float or array_like (n_data,)
        Standard deviation of each datum, mGal (> 0).

    Returns
    -------
    float
        Dimensionless χ² per datum.
    """
    p, o = _pair(pred, obs, "pred", "obs")
    s = _arr(np.atleast_1d(std.detach().cpu().numpy() if hasattr(std, "detach") else std), "std")
    if s.size == 1:
        s = np.full(p.shape, s[0])
    if s.shape != p.shape:
        raise ValueError(f"std has {s.size} values but pred has {p.size}")
    if np.any(s <= 0):
        raise ValueError(f"std must be > 0 (mGal); {int(np.sum(s <= 0))} value(s) are <= 0")
    return float(np.mean(((p - o) / s) ** 2))


def rms_misfit(pred, obs) -> float:
    """Root-mean-square data misfit sqrt(mean((pred - obs)²)).

    Parameters
    ----------
    pred, obs : array_like (n_data,)
        Predicted and observed g_z, mGal (same sign convention).

    Returns
    -------
    float
        mGal.
    """
    p, o = _pair(pred, obs, "pred", "obs")
    return float(np.sqrt(np.mean((p - o) ** 2)))


def misfit_by_component(pred, obs, components, std=None) -> dict[str, dict[str, Any]]:
    """RMS misfit (and χ²/N) of each gravity component, in the component's unit.

    An RMS over data in mGal and Eötvös has no unit; this splits it.

    Parameters
    ----------
    pred, obs : array_like (n_data,)
        Predicted and observed data, each datum in its component's unit (``gx``, ``gy``,
        ``gz``: mGal; gradients: Eötvös) and the same sign convention for both.
    components : str or sequence of str (n_data,)
        The component of every datum (``"gz"``, ``"gzz"``...), or one name for all.
    std : float or array_like (n_data,), optional
        Standard deviation of every datum, in its unit (> 0).

    Returns
    -------
    dict
        ``component -> {"value": RMS misfit, "units": "mGal" or "Eötvös", "n_data": n,
        "chi2_per_datum": χ²/N (None without std)}``, components in order of first
        appearance.
    """
    p, o = _pair(pred, obs, "pred", "obs")
    if isinstance(components, str):
        comps = np.full(p.size, check_component(components))
    else:
        comps = np.asarray(components, dtype=object).reshape(-1)
        if comps.size != p.size:
            raise ValueError(f"components has {comps.size} entries but pred has {p.size}")
        for c in dict.fromkeys(comps.tolist()):
            check_component(c)
        comps = comps.astype(str)
    s = None
    if std is not None:
        s = _arr(np.atleast_1d(std.detach().cpu().numpy() if hasattr(std, "detach") else std), "std")
        s = np.full(p.shape, s[0]) if s.size == 1 else s
    out: dict[str, dict[str, Any]] = {}
    for c in dict.fromkeys(comps.tolist()):
        rows = comps == c
        out[c] = {"value": rms_misfit(p[rows], o[rows]), "units": UNITS[c], "n_data": int(rows.sum()),
                  "chi2_per_datum": None if s is None else chi2_per_datum(p[rows], o[rows], s[rows])}
    return out


#: z-score of Moran's I above which residuals are called spatially correlated
RESIDUAL_Z = 3.0


class MoranI:
    """Moran's I of residuals over each station's ``k`` nearest, with its null moments (reusable).

    The neighbour lists and the null mean and standard deviation depend on the stations
    only; they are computed once, so that many residual vectors of one survey can be
    scored cheaply (numpy or torch). See :func:`residual_autocorrelation`.

    Parameters
    ----------
    locations : array_like (n_data, 3)
        Station positions, m (horizontal distance is used).
    k : int
        Neighbours per station (needs at least ``k + 2`` stations).
    """

    def __init__(self, locations, k: int = 4) -> None:
        import scipy.sparse as sp
        from scipy.spatial import cKDTree

        loc = np.asarray(locations, dtype=np.float64).reshape(-1, 3)
        n = loc.shape[0]
        if n < k + 2:
            raise ValueError(f"Moran's I over {k} neighbours needs at least {k + 2} stations, got {n}")
        nb = cKDTree(loc[:, :2]).query(loc[:, :2], k=k + 1)[1]
        # drop each station itself (not always the first column when positions repeat): move it last
        order = np.argsort(nb == np.arange(n)[:, None], axis=1, kind="stable")
        self.neighbours = np.take_along_axis(nb, order, axis=1)[:, :k]
        w = sp.csr_matrix((np.ones(n * k), (np.repeat(np.arange(n), k), self.neighbours.ravel())), shape=(n, n))
        s0 = float(n * k)
        sym = w + w.T
        s1 = 0.5 * float(sym.multiply(sym).sum())
        s2 = float(((np.asarray(w.sum(1)).ravel() + np.asarray(w.sum(0)).ravel()) ** 2).sum())
        self.n, self.k = n, int(k)
        self._nb = None  # the neighbour index as a torch tensor, on the device of the last one scored
        self.expected = -1.0 / (n - 1)
        self.std = math.sqrt(max((n * n * s1 - n * s2 + 3 * s0 * s0) / ((n * n - 1) * s0 * s0)
                                 - self.expected ** 2, 0.0))

    def statistic(self, z):
        """I of residuals ``z`` (n,), numpy or torch (the same type back, 0-d for torch)."""
        nb = self.neighbours
        if not isinstance(z, np.ndarray):  # a torch tensor: its index on the tensor's device, kept
            if self._nb is None or self._nb.device != z.device:
                import torch

                self._nb = torch.as_tensor(nb, device=z.device)
            nb = self._nb
        z = z - z.mean()
        zz = (z * z).sum()
        if float(zz) <= 0:
            return 0.0 * zz
        return (z[:, None] * z[nb]).sum() / (self.k * zz)

    def zscore(self, i: float) -> float:
        """Standard score of I under independent Gaussian residuals."""
        return (float(i) - self.expected) / self.std if self.std > 0 else 0.0

    def test(self, z) -> dict[str, Any]:
        """The dict of :func:`residual_autocorrelation` for normalised residuals ``z`` (n,)."""
        from scipy.stats import norm

        i = float(self.statistic(z))
        score = self.zscore(i)
        return dict(moran_i=i, expected=self.expected, std=self.std, z=score, p_value=float(norm.sf(score)),
                    k=self.k, n=self.n)


def residual_autocorrelation(pred, obs, std, locations, k: int = 4) -> dict[str, Any] | None:
    """Spatial autocorrelation of the normalised residuals: Moran's I over each station's k nearest.

    Noise is independent from station to station, so the residuals ``(obs - pred) / std``
    of a model that explains the signal are spatially white (I near ``-1/(n-1)``). A
    positive I means neighbouring stations are misfitted alike: the model misses
    structure (a source at the wrong depth, a regional, too smooth a prior); a negative
    one that it fits the noise. χ²/N = 1 alone cannot tell either.

    ``I = (n / S0) Σ_ij w_ij z_i z_j / Σ_i z_i²`` with ``z`` the residuals less their
    mean and ``w_ij = 1`` for the k stations nearest to station i (horizontal distance;
    stations at one position count as neighbours), ``S0 = n k``. Its null moments are
    those of independent Gaussian residuals (Cliff & Ord 1981): ``E[I] = -1/(n-1)``,
    ``Var[I] = (n² S1 - n S2 + 3 S0²) / ((n² - 1) S0²) - E[I]²`` with
    ``S1 = ½ Σ_ij (w_ij + w_ji)²`` and ``S2 = Σ_i (w_i· + w_·i)²`` (:class:`MoranI`).

    Parameters
    ----------
    pred, obs, std : array_like (n_data,)
        Predicted and observed data and their std (one unit per datum, e.g. mGal).
    locations : array_like (n_data, 3)
        Station positions, m.
    k : int
        Neighbours per station.

    Returns
    -------
    dict or None
        ``moran_i``, ``expected`` (``-1/(n-1)``) and ``std`` (``√Var[I]``) under the
        null, ``z`` (standard score), ``p_value`` (one-sided: positive correlation),
        ``k``, ``n``; None with fewer than ``k + 2`` stations.
    """
    p, o = _pair(pred, obs, "pred", "obs")
    sd = _arr(std, "std")
    loc = np.asarray(locations, dtype=np.float64).reshape(-1, 3)
    if loc.shape[0] != p.size or sd.size != p.size:
        raise ValueError(f"residual_autocorrelation: {p.size} data, {sd.size} std and {loc.shape[0]} locations")
    if p.size < k + 2:
        return None
    return MoranI(loc, k).test((o - p) / sd)


def rms_error(model, true) -> float:
    """Root-mean-square density error sqrt(mean((model - true)²)).

    Parameters
    ----------
    model, true : array_like (n_cells,)
        Recovered and true density contrast, kg/m³, on the same cells.

    Returns
    -------
    float
        kg/m³.
    """
    m, t = _pair(model, true, "model", "true")
    return float(np.sqrt(np.mean((m - t) ** 2)))


def relative_error(model, true) -> float:
    """Relative model error ‖model - true‖₂ / ‖true‖₂ (dimensionless).

    Parameters
    ----------
    model, true : array_like (n_cells,)
        Recovered and true density contrast, kg/m³, on the same cells.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``true`` is identically zero.
    """
    m, t = _pair(model, true, "model", "true")
    nt = float(np.linalg.norm(t))
    if nt == 0:
        raise ValueError("relative_error is undefined for a true model that is identically zero")
    return float(np.linalg.norm(m - t) / nt)


def coverage(model, true, std, z: float = 1.96) -> float:
    """Share of cells whose error is within ``z`` standard deviations: ``mean(|model - true| <= z·std)``.

    The calibration of an uncertainty estimate: a Gaussian posterior std should give
    about 0.95 for ``z = 1.96`` (less: the std is too small; more: too large).

    Parameters
    ----------
    model, true : array_like (n_cells,)
        Recovered and true density contrast, kg/m³.
    std : array_like (n_cells,)
        Standard deviation of ``model`` per cell, kg/m³ (>= 0).
    z : float
        Half-width in standard deviations (> 0).

    Returns
    -------
    float
        Fraction in [0, 1].
    """
    m, t = _pair(model, true, "model", "true")
    s = _arr(std, "std")
    if s.shape != m.shape:
        raise ValueError(f"std has {s.size} values but model has {m.size}")
    if np.any(s < 0):
        raise ValueError(f"std must be >= 0 (kg/m³); {int(np.sum(s < 0))} value(s) are negative")
    z = check_number(z, name="z (standard deviations)", low=0.0, low_open=True)
    return float(np.mean(np.abs(m - t) <= z * s))


def _pearson(m: np.ndarray, t: np.ndarray) -> float:
    dm, dt = m - m.mean(), t - t.mean()
    den = math.sqrt(float(np.dot(dm, dm)) * float(np.dot(dt, dt)))
    if den == 0:
        return float("nan")
    return float(np.clip(np.dot(dm, dt) / den, -1.0, 1.0))


def pearson_r(model, true) -> float:
    """Pearson correlation between the recovered and the true model.

    Parameters
    ----------
    model, true : array_like (n_cells,)
        Density contrasts, kg/m³, on the same cells.

    Returns
    -------
    float
        r in [-1, 1]; NaN if either model is constant.
    """
    m, t = _pair(model, true, "model", "true")
    return _pearson(m, t)


def _layers(mesh, n: int) -> np.ndarray:
    shape = getattr(mesh, "shape", None)
    if shape is None:
        raise ValueError("per-layer metrics need a tensor PrismMesh (mesh.shape is None)")
    if getattr(mesh, "n_cells", n) != n:
        raise ValueError(f"the model has {n} values but the mesh has {mesh.n_cells} cells")
    nx, ny, nz = shape
    iz = np.repeat(np.arange(nz), nx * ny)  # discretize order: z slowest, from the bottom
    active = getattr(mesh, "active_cells", None)
    if active is not None:
        iz = iz[np.asarray(active, bool)]
    if iz.size != n:
        raise ValueError(f"mesh shape {shape} / active cells give {iz.size} cells, model has {n}")
    return nz - 1 - iz


def pearson_r_by_layer(model, true, mesh) -> np.ndarray:
    """Pearson r per horizontal layer of a tensor mesh, top layer first.

    Parameters
    ----------
    model, true : array_like (n_cells,)
        Density contrasts, kg/m³, in the mesh's (discretize) cell order.
    mesh : PrismMesh
        Tensor mesh (``mesh.shape`` set); active cells are allowed.

    Returns
    -------
    numpy.ndarray (nz,)
        r of each layer, top first; nan where a layer is constant (in either model)
        or has fewer than two active cells.
    """
    m, t = _pair(model, true, "model", "true")
    layer = _layers(mesh, m.size)
    nz = mesh.shape[2]
    out = np.full(nz, np.nan)
    for k in range(nz):
        sel = layer == k
        if sel.sum() >= 2:
            out[k] = _pearson(m[sel], t[sel])
    return out


def floor(true, kind: str = "mean") -> float:
    """RMS density error of the trivial model, kg/m³ (the floor every result is compared to).

    Parameters
    ----------
    true : array_like (n_cells,)
        True density contrast, kg/m³.
    kind : {"mean", "zero"}
        ``"zero"``: the model 0 everywhere (RMS of ``true``); ``"mean"``: the best
        constant model, ``mean(true)`` everywhere (standard deviation of ``true``).

    Returns
    -------
    float
        kg/m³.
    """
    check_choice(kind, ("mean", "zero"), name="kind")
    t = _arr(true, "true")
    if kind == "zero":
        return float(np.sqrt(np.mean(t**2)))
    return float(np.sqrt(np.mean((t - t.mean()) ** 2)))


def evaluate(model=None, true=None, pred=None, survey=None, mesh=None, wall_time=None,
             peak_memory=None, device=None, *, obs=None, std=None, components=None) -> dict:
    """Every benchmark metric in one dictionary (keys always present; None if not computable).

    Parameters
    ----------
    model : array_like (n_cells,), optional
        Recovered density contrast, kg/m³.
    true : array_like (n_cells,), optional
        True density contrast, kg/m³ (same reference as ``model``).
    pred : array_like (n_data,), optional
        Predicted g_z, mGal, same sign as the observations.
    survey : Survey, optional
        Provides the observed data and std (g_z: mGal, positive down) and, when it
        holds other components, the component of every datum.
    mesh : PrismMesh, optional
        Tensor mesh, for the per-layer correlations.
    wall_time : float, optional
        Seconds.
    peak_memory : int, optional
        Bytes.
    device : str, optional
        Where it ran.
    obs, std : array_like, optional
        Observed g_z and std (mGal) when no survey is given.
    components : str or sequence of str (n_data,), optional
        The component of every datum when no survey is given (default: all ``gz``).

    Returns
    -------
    dict
        ``chi2_per_datum``, ``rms_misfit_mgal``, ``n_data``; ``rms_error_kgm3``,
        ``relative_error``, ``pearson_r``, ``pearson_r_by_layer`` (list, top first,
        None for constant layers), ``n_cells``; the floors ``floor_zero_kgm3`` (RMS of
        the zero model) and ``floor_mean_kgm3`` (RMS of the constant-mean model) and
        ``rms_error_over_floor`` (= rms_error / floor_mean) and
        ``rms_error_over_floor_zero``; ``wall_time_s``, ``peak_memory_bytes``, ``device``.
        Pearson r of the trivial (constant) models is undefined and not reported.
        Data of other components than g_z (``survey.components``, ``components=``) add
        ``rms_misfit_by_component`` (:func:`misfit_by_component`: value and unit per
        component), and ``rms_misfit_mgal`` is then the RMS over the data in mGal only
        (``gx``, ``gy``, ``gz``; None without any); for g_z data alone the keys are as
        above. With a g_z ``survey``: ``residual_autocorrelation``
        (:func:`residual_autocorrelation`: are the residuals spatially white?).
    """
    out: dict[str, Any] = dict.fromkeys([
        "chi2_per_datum", "rms_misfit_mgal", "n_data", "rms_error_kgm3", "relative_error",
        "pearson_r", "pearson_r_by_layer", "n_cells", "floor_zero_kgm3", "floor_mean_kgm3",
        "rms_error_over_floor", "rms_error_over_floor_zero", "residual_autocorrelation"])
    if survey is not None:
        if obs is not None or std is not None:
            raise ValueError("give either survey= or obs=/std=, not both")
        if components is not None:
            raise ValueError("give either survey= (which carries the components) or components=, not both")
        obs = survey.gz
        std = survey.std
        components = None if getattr(survey, "is_gz_only", True) else survey.components
    if pred is not None:
        if obs is None:
            raise ValueError("pred was given without observations: pass survey= (with gz) or obs=")
        p, o = _pair(pred, obs, "pred", "obs")
        out["n_data"] = int(p.size)
        out["rms_misfit_mgal"] = rms_misfit(p, o)
        if std is not None:
            out["chi2_per_datum"] = chi2_per_datum(p, o, std)
            if survey is not None and components is None:  # g_z only: one field over the stations
                out["residual_autocorrelation"] = residual_autocorrelation(p, o, std, survey.locations)
        if components is not None:
            by = misfit_by_component(p, o, components, std)
            if set(by) != {"gz"}:
                out["rms_misfit_by_component"] = by
                mgal = np.isin(np.asarray(components, dtype=str), [c for c in UNITS if UNITS[c] == "mGal"])
                mgal = np.broadcast_to(mgal, p.shape)
                out["rms_misfit_mgal"] = rms_misfit(p[mgal], o[mgal]) if mgal.any() else None
    if true is not None:
        t = _arr(true, "true")
        out["n_cells"] = int(t.size)
        out["floor_zero_kgm3"] = floor(t, "zero")
        out["floor_mean_kgm3"] = floor(t, "mean")
        if model is not None:
            m, t = _pair(model, t, "model", "true")
            e = rms_error(m, t)
            out["rms_error_kgm3"] = e
            out["relative_error"] = relative_error(m, t) if np.any(t != 0) else None
            r = pearson_r(m, t)
            out["pearson_r"] = None if math.isnan(r) else r
            if out["floor_mean_kgm3"] > 0:
                out["rms_error_over_floor"] = e / out["floor_mean_kgm3"]
            if out["floor_zero_kgm3"] > 0:
                out["rms_error_over_floor_zero"] = e / out["floor_zero_kgm3"]
            if mesh is not None and getattr(mesh, "shape", None) is not None:
                out["pearson_r_by_layer"] = to_jsonable(pearson_r_by_layer(m, t, mesh))
    elif model is not None:
        out["n_cells"] = int(_arr(model, "model").size)
    out["wall_time_s"] = None if wall_time is None else float(wall_time)
    out["peak_memory_bytes"] = None if peak_memory is None else int(peak_memory)
    out["device"] = None if device is None else str(device)
    return out
