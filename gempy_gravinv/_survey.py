"""Gravity survey: station locations, observed g_z and uncertainties (our conventions)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ._constants import gz_from_upward, gz_to_upward
from ._validation import as_finite_array

#: Largest coordinate magnitude of a station, metres (beyond any projected or geocentric
#: coordinate on Earth: such a value is a unit or parsing mistake).
MAX_COORDINATE_M: float = 1e8


class Survey:
    """Gravity stations with optional observed data and standard deviations.

    Parameters
    ----------
    locations : array_like, shape (n_data, 3)
        Station coordinates (x, y, z) in metres, right-handed, z up (elevation).
    gz : array_like, shape (n_data,), optional
        Observed g_z anomaly in mGal, **positive downward** (excess mass below gives
        positive values, as on Bouguer maps). SimPEG/GemPy data use the opposite sign:
        build from them with :meth:`from_simpeg`.
    std : float or array_like, shape (n_data,), optional
        Standard deviation of each datum, mGal, strictly positive. A scalar applies to
        all stations. Requires ``gz``.
    name : str, optional
        Free label used in reports.
    crs : str, optional
        Coordinate reference system of ``locations`` (an authority code such as
        ``"EPSG:25830"``, or WKT), carried into the files written from the survey;
        ``None`` when unknown (e.g. local coordinates).

    Raises
    ------
    ValueError
        Empty survey, wrong shapes, NaN/inf values, coordinates beyond ±1e8 m, mismatched
        lengths, non-positive std, or stations repeated at the same (x, y, z) with
        different data.
    TypeError
        Complex or boolean values.

    Warns
    -----
    UserWarning
        Stations repeated at the same (x, y, z) with the same data (each copy counts in
        the misfit).

    Examples
    --------
    >>> s = Survey([[0.0, 0.0, 1.0], [50.0, 0.0, 1.0]], gz=[0.1, 0.2], std=0.01)
    >>> s.n_data
    2
    """

    def __init__(self, locations, gz=None, std=None, *, name: str | None = None,
                 crs: str | None = None) -> None:
        loc = as_finite_array(locations, name="locations", allow_bool=False)
        if loc.ndim == 1 and loc.size == 3:
            loc = loc[None, :]
        if loc.ndim != 2 or loc.shape[1] != 3:
            raise ValueError(f"locations must have shape (n_data, 3) in metres, got {loc.shape}")
        big = np.abs(loc) > MAX_COORDINATE_M
        if big.any():
            i, j = (int(v) for v in np.argwhere(big)[0])
            raise ValueError(
                f"station {i} has {'xyz'[j]} = {loc[i, j]:.4g} m: beyond any coordinate on Earth "
                f"(|value| <= {MAX_COORDINATE_M:g} m); {int(big.any(axis=1).sum())} station(s) affected"
            )
        self._locations = loc
        self._gz = None
        self._std = None
        self.name = name
        if crs is not None and not isinstance(crs, str):
            crs = crs.to_string() if hasattr(crs, "to_string") else str(crs)
        self.crs = crs
        if gz is not None:
            self._gz = self._check_vector(gz, "gz")
        if std is not None:
            if self._gz is None:
                raise ValueError("std was given without gz: uncertainties need observed data")
            if np.ndim(std) == 0:
                s = np.full(self.n_data, as_finite_array(std, name="std", allow_bool=False).item())
            else:
                s = std
            s = self._check_vector(s, "std")
            if np.any(s <= 0):
                raise ValueError(
                    f"std must be strictly positive (mGal); {int(np.sum(s <= 0))} value(s) are <= 0"
                )
            self._std = s
        self._check_duplicates()

    def _check_duplicates(self) -> None:
        """Warn about stations repeated with the same data; refuse them with different data."""
        loc = self._locations
        if loc.shape[0] < 2:
            return
        _, inverse, counts = np.unique(loc, axis=0, return_inverse=True, return_counts=True)
        if counts.max() < 2:
            return
        inverse = inverse.reshape(-1)
        groups = [np.flatnonzero(inverse == k) for k in np.flatnonzero(counts > 1)]
        for g in groups:
            for arr, what in ((self._gz, "gz"), (self._std, "std")):
                if arr is not None and np.ptp(arr[g]) > 0:
                    raise ValueError(
                        f"stations {g.tolist()} share x, y, z = {loc[g[0]].tolist()} m but have different "
                        f"{what} ({', '.join(f'{v:.6g}' for v in arr[g])} mGal): average repeated readings "
                        "into one station, or correct the coordinates"
                    )
        shown = "; ".join(str(g.tolist()) for g in groups[:5]) + ("; ..." if len(groups) > 5 else "")
        warnings.warn(
            f"{sum(len(g) for g in groups) - len(groups)} duplicated station row(s) (same x, y, z and data): "
            f"rows {shown}; each copy counts in the misfit: drop the duplicates", UserWarning, stacklevel=3)

    def _check_vector(self, values, name: str) -> np.ndarray:
        arr = as_finite_array(values, name=name, allow_bool=False)
        arr = arr.reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
        if arr.ndim != 1:
            raise ValueError(f"{name} must be 1-D (n_data,), got shape {arr.shape}")
        if arr.shape[0] != self.n_data:
            raise ValueError(
                f"{name} has {arr.shape[0]} values but the survey has {self.n_data} stations"
            )
        return arr

    # ------------------------------------------------------------------ properties
    @property
    def locations(self) -> np.ndarray:
        """Station coordinates (n_data, 3), metres, z up (read-only view)."""
        v = self._locations.view()
        v.flags.writeable = False
        return v

    @property
    def n_data(self) -> int:
        """Number of stations."""
        return int(self._locations.shape[0])

    @property
    def gz(self) -> np.ndarray | None:
        """Observed g_z in mGal, positive downward, or ``None``."""
        return None if self._gz is None else self._gz.copy()

    @property
    def std(self) -> np.ndarray | None:
        """Standard deviations in mGal, or ``None``."""
        return None if self._std is None else self._std.copy()

    @property
    def has_data(self) -> bool:
        """Whether observed g_z is attached."""
        return self._gz is not None

    def require_data(self, *, need_std: bool = False) -> None:
        """Raise a clear error if the survey carries no data (or no std when needed)."""
        if self._gz is None:
            raise ValueError("this survey has no observed gz: pass gz= (mGal, positive down)")
        if need_std and self._std is None:
            raise ValueError("this survey has no std: pass std= (mGal) to weight the misfit")

    # ------------------------------------------------------------------ derived
    def with_data(self, gz, std=None) -> Survey:
        """Return a copy with other data attached.

        Parameters
        ----------
        gz : array_like (n_data,)
            Observed g_z, mGal, positive downward.
        std : float or array_like (n_data,), optional
            Standard deviations, mGal (> 0).

        Returns
        -------
        Survey
        """
        return Survey(self._locations, gz=gz, std=std, name=self.name, crs=self.crs)

    def subset(self, index) -> Survey:
        """Return the survey restricted to some stations.

        Parameters
        ----------
        index : array_like of bool or int
            A mask (n_data,) or station indices.

        Returns
        -------
        Survey
            The selected stations with their data and std.
        """
        idx = np.asarray(index)
        loc = self._locations[idx]
        if loc.ndim == 1:
            loc = loc[None]
        return Survey(
            loc,
            gz=None if self._gz is None else np.atleast_1d(self._gz[idx]),
            std=None if self._std is None else np.atleast_1d(self._std[idx]),
            name=self.name,
            crs=self.crs,
        )

    def __len__(self) -> int:
        return self.n_data

    def __repr__(self) -> str:
        lo, hi = self._locations.min(0), self._locations.max(0)
        data = "no data" if self._gz is None else f"gz in [{self._gz.min():.4g}, {self._gz.max():.4g}] mGal"
        return (
            f"Survey(n_data={self.n_data}, x=[{lo[0]:.1f}, {hi[0]:.1f}], y=[{lo[1]:.1f}, {hi[1]:.1f}], "
            f"z=[{lo[2]:.1f}, {hi[2]:.1f}] m, {data})"
        )

    # ------------------------------------------------------------------ SimPEG adapter
    @classmethod
    def from_simpeg(cls, survey: Any, dobs=None, std=None) -> Survey:
        """Build from a SimPEG ``gravity.survey.Survey`` (SimPEG's sign is flipped here).

        Parameters
        ----------
        survey : simpeg.potential_fields.gravity.survey.Survey or simpeg.data.Data
            Survey whose receivers measure ``"gz"`` only, or a ``Data`` object (its
            ``survey``, ``dobs`` and ``standard_deviation`` are used; all-NaN ``dobs``
            and all-zero standard deviations count as absent).
        dobs : array_like, optional
            Observed data in SimPEG's convention: mGal, upward component (negative for
            excess mass). Defaults to the ``Data``'s ``dobs`` (or ``survey.dobs`` when set).
        std : float or array_like, optional
            Standard deviations, mGal. Defaults to the ``Data``'s standard deviation
            (or ``survey.std`` when set).

        Returns
        -------
        Survey
            Stations with g_z positive downward.
        """
        if hasattr(survey, "survey") and hasattr(survey, "standard_deviation"):  # simpeg.data.Data
            data, survey = survey, survey.survey
            if dobs is None and data.dobs is not None and not np.all(np.isnan(data.dobs)):
                dobs = data.dobs
            if std is None and dobs is not None:
                sd = np.asarray(data.standard_deviation, dtype=float)
                std = None if np.all(sd == 0) else sd
        locs = []
        for rx in survey.source_field.receiver_list:
            comps = list(rx.components)
            if comps != ["gz"]:
                raise ValueError(f"only 'gz' receivers are supported, got components {comps}")
            locs.append(np.asarray(rx.locations, dtype=float))
        if not locs:
            raise ValueError("the SimPEG survey has no receivers")
        loc = np.vstack(locs)
        if dobs is None and getattr(survey, "dobs", None) is not None:
            dobs = survey.dobs
        if std is None and dobs is not None and getattr(survey, "std", None) is not None:
            std = survey.std
        gz = None if dobs is None else gz_from_upward(np.asarray(dobs, dtype=float))
        return cls(loc, gz=gz, std=std)

    def to_simpeg(self):
        """Return the equivalent SimPEG ``gravity.survey.Survey`` (one ``gz`` receiver).

        Returns
        -------
        simpeg.potential_fields.gravity.survey.Survey
            Survey with the same stations. Data are not attached; use
            :meth:`to_simpeg_data` for a ``simpeg.data.Data`` in SimPEG's sign.
        """
        from simpeg.potential_fields import gravity

        rx = gravity.receivers.Point(self._locations.copy(), components="gz")
        src = gravity.sources.SourceField(receiver_list=[rx])
        return gravity.survey.Survey(src)

    def to_simpeg_data(self, simpeg_survey=None):
        """Return a ``simpeg.data.Data`` with SimPEG's sign (upward g_z, mGal).

        Parameters
        ----------
        simpeg_survey : simpeg survey, optional
            The survey to attach the data to; built with :meth:`to_simpeg` if omitted.
        """
        from simpeg import data as sdata

        self.require_data(need_std=True)
        sv = self.to_simpeg() if simpeg_survey is None else simpeg_survey
        return sdata.Data(sv, dobs=gz_to_upward(self._gz), standard_deviation=self._std.copy())
