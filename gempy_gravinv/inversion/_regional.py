"""A regional field solved with the density: a datum offset or a plane in the data.

Observed anomalies carry a part no density on the mesh explains: the datum of a
reduction (a constant), and the field of sources outside the mesh, which over the survey
is close to a plane. An inversion that must fit them with cells puts spurious mass at the
mesh edges and predicts stations it has not seen poorly. With ``regional="constant"`` or
``"plane"`` the data are modelled as ``d = G m + T c + e`` with ``T`` the columns
``1`` (and the stations' ``x``, ``y``, centred and scaled by the survey extent) and
``c`` free (a flat prior). The best ``c`` for any ``m`` is a weighted least-squares fit of
the residual, so the misfit is that of the residual projected off the whitened columns:
``χ² = |P (d - G m) / σ|²`` with ``P = I - Q Qᵀ``, ``Q`` an orthonormal basis of
``T / σ``. Profiling a flat linear nuisance this way equals integrating it out of a
Gaussian likelihood, so the closed-form solvers apply ``P`` to their whitened design.

Units: g_z mGal, positive downward; ``c`` in mGal (constant) and mGal per unit of the
scaled coordinates (plane); σ mGal.
"""

from __future__ import annotations

import numpy as np
import torch

from .._validation import check_choice

REGIONALS = ("none", "constant", "plane")


class Regional:
    """The regional columns ``T`` of a survey and the projection off them.

    Parameters
    ----------
    kind : {"constant", "plane"}
        A datum offset, or an offset and a linear trend in x and y.
    locations : array (n_data, 3)
        Station coordinates, metres.
    std : Tensor (n_data,)
        Data standard deviations σ, mGal (the whitening).
    """

    def __init__(self, kind: str, locations, std: torch.Tensor) -> None:
        check_choice(kind, REGIONALS[1:], name="regional")
        xy = np.asarray(locations, float)[:, :2]
        n = xy.shape[0]
        self.center = xy.mean(0)
        self.span = float(np.ptp(xy, axis=0).max()) or 1.0
        T = _columns(kind, xy, self.center, self.span)
        if n <= T.shape[1]:
            raise ValueError(f"regional={kind!r} has {T.shape[1]} free parameter(s) but the survey has only {n} "
                             "station(s): use regional='none' or more stations")
        if kind == "plane" and np.linalg.matrix_rank(T) < 3:
            raise ValueError("regional='plane' needs stations that span an area (these lie on one line): "
                             "use regional='constant'")
        self.kind = kind
        self.T = torch.as_tensor(T, dtype=std.dtype, device=std.device)
        self.std = std
        self.Q = self._basis(None)
        self._cast: dict = {}

    @property
    def n_params(self) -> int:
        """Number of regional parameters (1 or 3)."""
        return int(self.T.shape[1])

    def _basis(self, rows) -> torch.Tensor:
        T = self.T if rows is None else self.T[rows]
        s = self.std if rows is None else self.std[rows]
        Q, _ = torch.linalg.qr(T / s[:, None])
        return Q

    def project(self, r: torch.Tensor, rows=None) -> torch.Tensor:
        """Whitened residuals (n,) or a whitened design (n, k) projected off ``T / σ``.

        ``rows`` selects a subset of the stations (a mini-batch): the regional is then
        fitted to that subset.
        """
        if rows is None:  # the whole survey: the basis in r's dtype and device, cast once
            key = (r.device, r.dtype)
            if key not in self._cast:
                self._cast[key] = self.Q.to(device=r.device, dtype=r.dtype)
            Q = self._cast[key]
        else:
            Q = self._basis(rows).to(device=r.device, dtype=r.dtype)
        return r - Q @ (Q.T @ r)

    def fit(self, residual: torch.Tensor) -> torch.Tensor:
        """The regional parameters ``c`` that best fit a residual ``d - G m`` (n_data,) mGal."""
        s = self.std.to(residual)
        A = (self.T.to(residual) / s[:, None])
        return torch.linalg.lstsq(A, (residual / s)[:, None]).solution[:, 0]

    def field(self, c: torch.Tensor) -> torch.Tensor:
        """``T c``: the regional g_z at the stations (n_data,), mGal."""
        return self.T.to(c) @ c

    def describe(self, c: torch.Tensor) -> dict:
        """The fitted regional, complete enough to evaluate anywhere (:func:`regional_at`).

        Keys: ``kind``, ``offset_mgal`` (at the survey centre), for a plane
        ``trend_mgal_per_km`` (d g_z / dx, d g_z / dy in mGal per km), and ``center_m``,
        ``span_m`` (the scaling of the columns) and ``coefficients``.
        """
        c = [float(v) for v in c.detach().cpu()]
        out = dict(kind=self.kind, offset_mgal=c[0], center_m=[float(v) for v in self.center], span_m=self.span,
                   coefficients=c)
        if self.kind == "plane":
            out["trend_mgal_per_km"] = [v / self.span * 1000.0 for v in c[1:]]
        return out


def _columns(kind: str, xy: np.ndarray, center: np.ndarray, span: float) -> np.ndarray:
    cols = [np.ones(xy.shape[0])]
    if kind == "plane":
        u = (xy - center) / span
        cols += [u[:, 0], u[:, 1]]
    return np.stack(cols, 1)


def regional_at(regional: dict, locations) -> np.ndarray:
    """g_z (n,) mGal of a fitted regional (:meth:`Regional.describe`) at ``locations`` (n, 2 or 3) m."""
    xy = np.asarray(locations, float).reshape(-1, np.asarray(locations).shape[-1])[:, :2]
    T = _columns(regional["kind"], xy, np.asarray(regional["center_m"], float), float(regional["span_m"]))
    return T @ np.asarray(regional["coefficients"], float)


def make_regional(kind: str, locations, std: torch.Tensor) -> Regional | None:
    """A :class:`Regional` for ``kind`` (None for ``"none"``)."""
    check_choice(kind, REGIONALS, name="regional")
    return None if kind == "none" else Regional(kind, locations, std)
