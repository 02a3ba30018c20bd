"""Gravity survey: stations, observed data of any gravity component, uncertainties (our conventions).

Also the one implementation of the per-datum layout helpers the operators and the SimPEG
adapters share: :func:`group_components` (the rows of each component) and
:func:`simpeg_layout` (the location and component of every datum of a SimPEG survey, in
SimPEG's data order).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ._components import ACCELERATIONS, COMPONENTS, SIMPEG_SIGN, UNITS, check_component
from ._validation import as_finite_array

#: Largest coordinate magnitude of a station, metres (beyond any projected or geocentric
#: coordinate on Earth: such a value is a unit or parsing mistake).
MAX_COORDINATE_M: float = 1e8
_KEEP = object()


def group_components(components) -> dict[str, np.ndarray]:
    """The rows of each component, in order of first appearance.

    Parameters
    ----------
    components : sequence of str, shape (n_data,)
        The component of every datum (``"gz"``, ``"gzz"``...).

    Returns
    -------
    dict
        ``component -> rows`` (int64, ascending); the rows of all components partition
        ``range(n_data)``.
    """
    comps = np.asarray(components, dtype=str).reshape(-1)
    if comps.size == 0:
        return {}
    names, first, inverse = np.unique(comps, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    return {str(names[k]): np.flatnonzero(inverse == k).astype(np.int64) for k in np.argsort(first)}


def simpeg_layout(survey) -> tuple[np.ndarray, np.ndarray]:
    """Location and component of every datum of a SimPEG gravity survey, in SimPEG's data order.

    SimPEG orders the data receiver by receiver; within a receiver, location by
    location, the components of one location consecutive.

    Parameters
    ----------
    survey : simpeg.potential_fields.gravity.survey.Survey
        Receivers with any of the gravity components.

    Returns
    -------
    locations : ndarray (n_data, 3)
        Metres, z up.
    components : ndarray of str (n_data,)

    Raises
    ------
    AttributeError
        The object has no ``source_field`` (not a SimPEG gravity survey).
    ValueError
        A component that is not a gravity component (named in the message).
    """
    source = getattr(survey, "source_field", None)
    if source is None:
        raise AttributeError(f"The survey '{survey}' has no 'source_field' attribute.")
    locs, comps = [], []
    for rx in source.receiver_list:
        cs = [rx.components] if isinstance(rx.components, str) else list(rx.components)
        for c in cs:
            check_component(c)
        loc = np.atleast_2d(np.asarray(rx.locations, dtype=np.float64))
        locs.append(np.repeat(loc, len(cs), axis=0))
        comps.append(np.tile(np.asarray(cs, dtype=str), loc.shape[0]))
    if not locs:
        return np.zeros((0, 3)), np.zeros(0, dtype=str)
    return np.concatenate(locs, axis=0), np.concatenate(comps)


def _check_components(components, n: int) -> np.ndarray | None:
    """``components`` as an array of n names (None stays None), or a clear error."""
    if components is None:
        return None
    if isinstance(components, str):
        check_component(components)
        return np.full(n, components, dtype="<U3")
    if isinstance(components, (bytes, dict)) or not hasattr(components, "__len__"):
        raise TypeError(f"components must be a component name or a sequence of names (one per datum), "
                        f"got {type(components).__name__}")
    seq = list(np.asarray(components, dtype=object).reshape(-1)) if np.ndim(components) > 1 else list(components)
    if len(seq) != n:
        raise ValueError(f"components has {len(seq)} entries but the survey has {n} data: give one component "
                         "per datum (a station measuring several components appears once per component) or a "
                         "single name for all")
    arr = np.asarray(seq, dtype=object)
    names = np.asarray([c if isinstance(c, str) else "" for c in arr], dtype=str)
    bad = ~np.isin(names, COMPONENTS) | np.asarray([not isinstance(c, str) for c in arr], dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        try:
            check_component(seq[i])
        except ValueError as exc:
            raise ValueError(f"components[{i}]: {exc} ({int(bad.sum())} bad entr{'y' if bad.sum() == 1 else 'ies'})"
                             ) from None
    return names.astype("<U3")


class Survey:
    """Gravity stations with optional observed data and standard deviations.

    Parameters
    ----------
    locations : array_like, shape (n_data, 3)
        Station coordinates (x, y, z) in metres, right-handed, z up (elevation); one row
        per datum (a station measuring several components appears once per component).
        A table with named columns (a pandas DataFrame) holding ``x``, ``y`` and ``z``
        is read by those names, whatever their order.
    gz : array_like, shape (n_data,), optional
        Observed data (the name is historical; :attr:`data` is the neutral alias). For
        ``gz``: the anomaly in mGal, **positive downward** (excess mass below gives
        positive values, as on Bouguer maps). For the other components (``components``):
        ``gx``, ``gy`` in mGal (positive toward excess mass east / north) and the
        gradient tensor ``gxx`` … ``gzz``, ``guv`` in Eötvös with SimPEG's signs (z up:
        ``gzz`` positive above excess mass). SimPEG data use the opposite sign for ``gz``
        only: build from them with :meth:`from_simpeg`.
    std : float or array_like, shape (n_data,), optional
        Standard deviation of each datum, in its unit (mGal or Eötvös), strictly
        positive. A scalar applies to all data. Requires ``gz``.
    name : str, optional
        Free label used in reports.
    crs : str, optional
        Coordinate reference system of ``locations`` (an authority code such as
        ``"EPSG:25830"``, or WKT), carried into the files written from the survey;
        ``None`` when unknown (e.g. local coordinates).
    components : str or sequence of str, optional
        The gravity component of every datum (:data:`gempy_gravinv._components.COMPONENTS`):
        ``None`` (every datum is ``gz``), one name for all data, or one name per datum.

    Raises
    ------
    ValueError
        Empty survey, wrong shapes, NaN/inf values, coordinates beyond ±1e8 m, mismatched
        lengths, non-positive std, an unknown component (its index named), or data
        repeated at the same (x, y, z) and component with different values.
    TypeError
        Complex or boolean values; ``components`` neither a name nor a sequence.

    Warns
    -----
    UserWarning
        Data repeated at the same (x, y, z) and component with the same value (each copy
        counts in the misfit).

    Examples
    --------
    >>> s = Survey([[0.0, 0.0, 1.0], [50.0, 0.0, 1.0]], gz=[0.1, 0.2], std=0.01)
    >>> s.n_data
    2
    >>> g = Survey([[0.0, 0.0, 1.0]] * 2, gz=[0.1, 3.0], std=[0.01, 0.5], components=["gz", "gzz"])
    >>> g.components.tolist(), g.units.tolist()
    (['gz', 'gzz'], ['mGal', 'Eötvös'])
    """

    def __init__(self, locations, gz=None, std=None, *, name: str | None = None,
                 crs: str | None = None, components=None) -> None:
        label = {str(c).strip().lower(): c for c in getattr(locations, "columns", [])}
        if {"x", "y", "z"} <= set(label):  # a table: its columns by name, not by position
            locations = np.column_stack([np.asarray(locations[label[k]]) for k in "xyz"])
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
        self._components = _check_components(components, loc.shape[0])
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
                    f"std must be strictly positive ({self._unit_label()}); {int(np.sum(s <= 0))} value(s) are <= 0"
                )
            self._std = s
        self._check_duplicates()

    def _unit_label(self) -> str:
        return "mGal" if self.is_gz_only else "mGal or Eötvös"

    def _check_duplicates(self) -> None:
        """Warn about data repeated with the same value; refuse them with different values."""
        loc = self._locations
        if loc.shape[0] < 2:
            return
        key = loc
        if self._components is not None:  # a station may carry several components
            _, codes = np.unique(self._components, return_inverse=True)
            key = np.column_stack([loc, codes.reshape(-1).astype(np.float64)])
        _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
        if counts.max() < 2:
            return
        inverse = inverse.reshape(-1)
        groups = [np.flatnonzero(inverse == k) for k in np.flatnonzero(counts > 1)]
        for g in groups:
            for arr, what in ((self._gz, "gz"), (self._std, "std")):
                if arr is not None and np.ptp(arr[g]) > 0:
                    if self._components is None:
                        raise ValueError(
                            f"stations {g.tolist()} share x, y, z = {loc[g[0]].tolist()} m but have different "
                            f"{what} ({', '.join(f'{v:.6g}' for v in arr[g])} mGal): average repeated readings "
                            "into one station, or correct the coordinates"
                        )
                    c = str(self._components[g[0]])
                    raise ValueError(
                        f"data {g.tolist()} share x, y, z = {loc[g[0]].tolist()} m and component {c!r} but have "
                        f"different {'values' if what == 'gz' else what} "
                        f"({', '.join(f'{v:.6g}' for v in arr[g])} {UNITS[c]}): average repeated readings into "
                        "one datum, or correct the coordinates or components"
                    )
        shown = "; ".join(str(g.tolist()) for g in groups[:5]) + ("; ..." if len(groups) > 5 else "")
        same = "same x, y, z and data" if self._components is None else "same x, y, z, component and data"
        warnings.warn(
            f"{sum(len(g) for g in groups) - len(groups)} duplicated station row(s) ({same}): "
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
        """Number of data (stations times the components each measures)."""
        return int(self._locations.shape[0])

    @property
    def gz(self) -> np.ndarray | None:
        """Observed data (n_data,) or ``None``: g_z in mGal, positive downward, for a g_z survey.

        With other components (:attr:`components`) each datum is in its component's unit
        and sign (:attr:`units`); :attr:`data` is the same vector under a neutral name.
        """
        return None if self._gz is None else self._gz.copy()

    @property
    def data(self) -> np.ndarray | None:
        """Observed data (n_data,) in each datum's unit (:attr:`units`), or ``None`` (alias of :attr:`gz`)."""
        return self.gz

    @property
    def std(self) -> np.ndarray | None:
        """Standard deviations in each datum's unit (mGal or Eötvös), or ``None``."""
        return None if self._std is None else self._std.copy()

    @property
    def components(self) -> np.ndarray:
        """The gravity component of every datum (n_data,) of str: all ``"gz"`` unless given."""
        if self._components is None:
            return np.full(self.n_data, "gz", dtype="<U3")
        return self._components.copy()

    @property
    def components_given(self) -> bool:
        """Whether the survey was built with ``components`` (False: every datum is g_z by default)."""
        return self._components is not None

    @property
    def units(self) -> np.ndarray:
        """The unit of every datum (n_data,) of str: ``"mGal"`` (gx, gy, gz) or ``"Eötvös"`` (gradients)."""
        comps = self.components
        return np.where(np.isin(comps, ACCELERATIONS), UNITS["gz"], UNITS["gzz"])

    @property
    def simpeg_sign(self) -> np.ndarray:
        """SimPEG's value over ours for every datum (n_data,): −1 for ``gz`` (SimPEG's is upward), +1 otherwise."""
        return _simpeg_signs(self.components)

    @property
    def is_gz_only(self) -> bool:
        """Whether every datum is g_z (mGal, positive down)."""
        return self._components is None or bool(np.all(self._components == "gz"))

    def component_groups(self) -> dict[str, np.ndarray]:
        """``component -> rows`` (ascending) in order of first appearance (:func:`group_components`)."""
        if self._components is None:
            return {"gz": np.arange(self.n_data, dtype=np.int64)}
        return group_components(self._components)

    @property
    def has_data(self) -> bool:
        """Whether observed data are attached."""
        return self._gz is not None

    def require_data(self, *, need_std: bool = False) -> None:
        """Raise a clear error if the survey carries no data (or no std when needed)."""
        if self._gz is None:
            raise ValueError("this survey has no observed gz: pass gz= (mGal, positive down)")
        if need_std and self._std is None:
            raise ValueError(f"this survey has no std: pass std= ({self._unit_label()}) to weight the misfit")

    # ------------------------------------------------------------------ derived
    def _copy(self, locations=_KEEP, gz=_KEEP, std=_KEEP, crs=_KEEP, components=_KEEP) -> Survey:
        def keep(v, own):
            return own if v is _KEEP else v

        return Survey(keep(locations, self._locations), gz=keep(gz, self._gz), std=keep(std, self._std),
                      name=self.name, crs=keep(crs, self.crs), components=keep(components, self._components))

    def with_data(self, gz, std=None) -> Survey:
        """Return a copy with other data attached (the same stations and components).

        Parameters
        ----------
        gz : array_like (n_data,)
            Observed data in each datum's unit (g_z: mGal, positive downward).
        std : float or array_like (n_data,), optional
            Standard deviations, same units (> 0).

        Returns
        -------
        Survey
        """
        return self._copy(gz=gz, std=std)

    def with_locations(self, locations, *, crs=_KEEP) -> Survey:
        """Return a copy at other station coordinates (e.g. reprojected), data and components kept.

        Parameters
        ----------
        locations : array_like (n_data, 3)
            Metres, z up.
        crs : str, optional
            CRS of the new coordinates (default: unchanged).

        Returns
        -------
        Survey
        """
        return self._copy(locations=locations, crs=crs)

    def subset(self, index) -> Survey:
        """Return the survey restricted to some data.

        Parameters
        ----------
        index : array_like of bool or int
            A mask (n_data,) or datum indices.

        Returns
        -------
        Survey
            The selected data with their stations, components and std.
        """
        idx = np.asarray(index)
        loc = self._locations[idx]
        if loc.ndim == 1:
            loc = loc[None]

        def pick(a):
            return None if a is None else np.atleast_1d(a[idx])

        return self._copy(locations=loc, gz=pick(self._gz), std=pick(self._std), components=pick(self._components))

    def __len__(self) -> int:
        return self.n_data

    def __repr__(self) -> str:
        lo, hi = self._locations.min(0), self._locations.max(0)
        where = (f"x=[{lo[0]:.1f}, {hi[0]:.1f}], y=[{lo[1]:.1f}, {hi[1]:.1f}], "
                 f"z=[{lo[2]:.1f}, {hi[2]:.1f}] m")
        if self._components is None:
            data = "no data" if self._gz is None else f"gz in [{self._gz.min():.4g}, {self._gz.max():.4g}] mGal"
            return f"Survey(n_data={self.n_data}, {where}, {data})"
        parts = []
        for c, rows in self.component_groups().items():
            p = f"{c} x{rows.size}"
            if self._gz is not None:
                p += f" in [{self._gz[rows].min():.4g}, {self._gz[rows].max():.4g}] {UNITS[c]}"
            parts.append(p)
        return f"Survey(n_data={self.n_data}, {where}, {'no data: ' if self._gz is None else ''}{'; '.join(parts)})"

    # ------------------------------------------------------------------ SimPEG adapter
    @classmethod
    def from_simpeg(cls, survey: Any, dobs=None, std=None) -> Survey:
        """Build from a SimPEG ``gravity.survey.Survey`` (SimPEG's ``gz`` sign is flipped here).

        Parameters
        ----------
        survey : simpeg.potential_fields.gravity.survey.Survey or simpeg.data.Data
            Survey whose receivers measure any gravity components, or a ``Data`` object
            (its ``survey``, ``dobs`` and ``standard_deviation`` are used; all-NaN
            ``dobs`` and all-zero standard deviations count as absent).
        dobs : array_like, optional
            Observed data in SimPEG's convention and data order: ``gx``, ``gy``, ``gz``
            in mGal (``gz`` the upward component, negative for excess mass), gradients in
            Eötvös. Defaults to the ``Data``'s ``dobs`` (or ``survey.dobs`` when set).
        std : float or array_like, optional
            Standard deviations (mGal / Eötvös). Defaults to the ``Data``'s standard
            deviation (or ``survey.std`` when set).

        Returns
        -------
        Survey
            One datum per SimPEG datum, in SimPEG's order (receiver by receiver, the
            components of a location consecutive); ``gz`` positive downward, the other
            components with SimPEG's sign (:data:`gempy_gravinv._components.SIMPEG_SIGN`).
            ``components`` is left unset (all ``gz``) for a ``gz``-only survey.
        """
        if hasattr(survey, "survey") and hasattr(survey, "standard_deviation"):  # simpeg.data.Data
            data, survey = survey, survey.survey
            if dobs is None and data.dobs is not None and not np.all(np.isnan(data.dobs)):
                dobs = data.dobs
            if std is None and dobs is not None:
                sd = np.asarray(data.standard_deviation, dtype=float)
                std = None if np.all(sd == 0) else sd
        loc, comps = simpeg_layout(survey)
        if loc.shape[0] == 0:
            raise ValueError("the SimPEG survey has no receivers")
        if dobs is None and getattr(survey, "dobs", None) is not None:
            dobs = survey.dobs
        if std is None and dobs is not None and getattr(survey, "std", None) is not None:
            std = survey.std
        data = None
        if dobs is not None:
            d = np.asarray(dobs, dtype=float).reshape(-1)
            if d.shape[0] != comps.shape[0]:
                raise ValueError(f"dobs has {d.shape[0]} values but the SimPEG survey has {comps.shape[0]} data")
            data = d * _simpeg_signs(comps)  # gz: gz_from_upward; the others unchanged
        gz_only = bool(np.all(comps == "gz"))
        return cls(loc, gz=data, std=std, components=None if gz_only else comps)

    def to_simpeg(self):
        """Return the equivalent SimPEG ``gravity.survey.Survey``, data order kept.

        Consecutive data that share a component pattern become one receiver (a station
        measuring ``gz`` and ``gzz`` after each other: one receiver with components
        ``["gz", "gzz"]``), so the SimPEG data vector lines up with this survey's and
        :meth:`from_simpeg` gives this survey back.

        Returns
        -------
        simpeg.potential_fields.gravity.survey.Survey
            Survey with the same stations and components. Data are not attached; use
            :meth:`to_simpeg_data` for a ``simpeg.data.Data`` in SimPEG's sign.
        """
        from simpeg.potential_fields import gravity

        rxs = [gravity.receivers.Point(loc, components=list(comps)) for loc, comps in self._receiver_blocks()]
        src = gravity.sources.SourceField(receiver_list=rxs)
        return gravity.survey.Survey(src)

    def _receiver_blocks(self) -> list[tuple[np.ndarray, tuple[str, ...]]]:
        """(locations, components) of receivers whose SimPEG data order is this survey's order."""
        loc = self._locations
        if len(self.component_groups()) == 1:
            return [(loc.copy(), (str(self.components[0]),))]
        comps = [str(c) for c in self._components]
        n, p, out = len(comps), 0, []
        while p < n:
            k = 1  # the components measured one after the other at the location of datum p
            while p + k < n and comps[p + k] not in comps[p:p + k] and np.array_equal(loc[p + k], loc[p]):
                k += 1
            pattern, q = tuple(comps[p:p + k]), p + k
            while q + k <= n and tuple(comps[q:q + k]) == pattern and bool((loc[q:q + k] == loc[q]).all()):
                q += k
            out.append((loc[p:q:k].copy(), pattern))
            p = q
        return out

    def to_simpeg_data(self, simpeg_survey=None):
        """Return a ``simpeg.data.Data`` with SimPEG's signs (upward g_z in mGal; gradients in Eötvös).

        Parameters
        ----------
        simpeg_survey : simpeg survey, optional
            The survey to attach the data to; built with :meth:`to_simpeg` if omitted.

        Returns
        -------
        simpeg.data.Data
            ``dobs`` in SimPEG's signs and ``standard_deviation`` (mGal / Eötvös) where
            this survey has a std; without one, a ``Data`` without uncertainties (as
            SimPEG builds it from ``dobs`` alone).
        """
        from simpeg import data as sdata

        self.require_data(need_std=False)
        sv = self.to_simpeg() if simpeg_survey is None else simpeg_survey
        if self._std is None:
            return sdata.Data(sv, dobs=self._gz * self.simpeg_sign)
        return sdata.Data(sv, dobs=self._gz * self.simpeg_sign, standard_deviation=self._std.copy())


def _simpeg_signs(components: np.ndarray) -> np.ndarray:
    """SimPEG's value over ours for every datum (:data:`~gempy_gravinv._components.SIMPEG_SIGN`: −1 for gz)."""
    out = np.ones(len(components))
    for c, rows in group_components(components).items():
        out[rows] = SIMPEG_SIGN[c]
    return out
