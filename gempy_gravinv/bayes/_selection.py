"""Choosing what is random in a GemPy model by name: units, orientations, surface points.

A GemPy user names things: units (``"surface2"``), the surfaces their orientations and
surface points belong to (``"fault1"``), or selects rows with a boolean mask over
``geo_model.orientations_copy`` / ``surface_points_copy`` (e.g. ``df.X > 100``). This
module turns those into the row indices the forwards use, with one label per row for the
ArviZ coordinates, and into Normal priors.

A prior is given per name as ``std`` (the mean is the model's current value) or as
``(mean, std)``. Units of the values: density contrasts kg/m³, dips degrees,
surface-point elevations metres.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Selection", "element_names_of_rows", "select_rows", "parse_prior_values"]


@dataclass
class Selection:
    """Rows of a GemPy table chosen by name or mask, with a Normal prior per row.

    Attributes
    ----------
    rows : list of int
        Row indices into the table (``orientations_copy`` or ``surface_points_copy``).
    labels : list of str
        One label per row: the surface name, with ``:k`` (its k-th row) when a surface
        has several rows in the selection.
    mean, std : numpy.ndarray
        Prior mean and standard deviation per row (degrees or metres).
    """

    rows: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    std: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.rows)


def element_names_of_rows(geo_model: Any, table: str) -> list[str]:
    """The surface (element) name of every row of a GemPy table.

    Parameters
    ----------
    geo_model : gempy GeoModel
        The structural model.
    table : {"orientations", "surface_points"}
        Which table (``orientations_copy`` or ``surface_points_copy``, GemPy's order).

    Returns
    -------
    list of str
        One element name per row.
    """
    df = getattr(geo_model, f"{table}_copy").df
    id_to_name = geo_model.structural_frame.element_id_name_map
    return [str(id_to_name[int(i)]) for i in df["id"].to_numpy()]


def parse_prior_values(spec: Any, current: float, what: str,
                       limits: tuple[float, float] | None = None) -> tuple[float, float]:
    """``std`` or ``(mean, std)`` -> ``(mean, std)``; the mean defaults to ``current``.

    Parameters
    ----------
    spec : float or tuple of 2 float
        Prior standard deviation, or mean and standard deviation (units of the site).
    current : float
        The model's current value (the default mean).
    what : str
        Name used in error messages.
    limits : (lo, hi), optional
        The range the mean must lie in (a dip: -180 to 180 degrees).

    Returns
    -------
    tuple of float
        ``(mean, std)``, std > 0.

    Raises
    ------
    ValueError
        Not a number or a pair, non-finite, std <= 0, or a mean outside ``limits``.
    """
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        mean, std = float(spec[0]), float(spec[1])
    elif np.isscalar(spec) and not isinstance(spec, (str, bool)):
        mean, std = float(current), float(spec)
    else:
        raise ValueError(f"prior for {what}: give a std or a (mean, std) pair, got {spec!r}")
    if not (np.isfinite(mean) and np.isfinite(std)) or std <= 0:
        raise ValueError(f"prior for {what}: mean must be finite and std > 0, got ({mean}, {std})")
    if limits is not None and not limits[0] <= mean <= limits[1]:
        raise ValueError(f"prior for {what}: the mean must lie in [{limits[0]:g}, {limits[1]:g}], got {mean}")
    return mean, std


def select_rows(geo_model: Any, table: str, spec: Any, current: np.ndarray, unit: str) -> Selection:
    """Rows and priors of a GemPy table from names or a boolean mask.

    Parameters
    ----------
    geo_model : gempy GeoModel
        The structural model.
    table : {"orientations", "surface_points"}
        Which table.
    spec : dict or tuple or None
        ``{surface_name: std or (mean, std)}``: every row of that surface; or
        ``(mask, std or (mean, std))`` with ``mask`` a boolean array over the table's rows
        (e.g. ``geo_model.orientations_copy.df.X > 100``). Row indices are not accepted.
    current : numpy.ndarray, shape (n_rows,)
        The model's current values (dips deg or elevations m): the default means.
    unit : str
        Units of the values, for messages (``"deg"`` or ``"m"``).

    Returns
    -------
    Selection

    Raises
    ------
    ValueError
        An unknown surface name (the message lists the known ones), a surface without rows
        in the table, a mask of the wrong length or type, or a bad prior.
    """
    limits = (-180.0, 180.0) if table == "orientations" else None  # a dip is an angle (signed: tilts either way)
    if spec is None:
        return Selection()
    names = element_names_of_rows(geo_model, table)
    n = len(names)
    rows: list[int] = []
    means: list[float] = []
    stds: list[float] = []
    if isinstance(spec, Mapping):
        for key, val in spec.items():
            hit = [i for i, nm in enumerate(names) if nm == str(key)]
            if not hit:
                known = sorted(set(names))
                raise ValueError(f"{table} prior: no {table.replace('_', ' ')} on surface {key!r}; "
                                 f"surfaces with {table.replace('_', ' ')}: {known}")
            for i in hit:
                m, s = parse_prior_values(val, current[i], f"{key} ({unit})", limits)
                rows.append(i)
                means.append(m)
                stds.append(s)
    elif isinstance(spec, tuple) and len(spec) == 2:
        mask = np.asarray(spec[0])
        if mask.dtype != bool:
            raise ValueError(f"{table} selection must be a boolean mask over the {n} rows "
                             f"(e.g. df.X > 100), not {mask.dtype} values: row indices are not accepted")
        if mask.shape != (n,):
            raise ValueError(f"{table} mask has shape {mask.shape}, the table has {n} rows")
        if not mask.any():
            raise ValueError(f"{table} mask selects no row")
        for i in np.flatnonzero(mask):
            m, s = parse_prior_values(spec[1], current[i], f"{names[i]} ({unit})", limits)
            rows.append(int(i))
            means.append(m)
            stds.append(s)
    else:
        raise ValueError(f"{table} prior: give {{surface_name: std or (mean, std)}} or (boolean mask, std), "
                         f"got {type(spec).__name__}")
    if len(set(rows)) != len(rows):
        raise ValueError(f"{table} prior: a row is selected twice")
    order = np.argsort(rows)
    rows = [rows[i] for i in order]
    count = {nm: sum(names[r] == nm for r in rows) for nm in {names[r] for r in rows}}
    seen: dict[str, int] = {}
    labels = []
    for r in rows:
        nm = names[r]
        k = seen.get(nm, 0)
        seen[nm] = k + 1
        labels.append(nm if count[nm] == 1 else f"{nm}:{k}")
    return Selection(rows=rows, labels=labels, mean=np.asarray(means)[order], std=np.asarray(stds)[order])
