"""Observed, predicted and residual data of an inversion, as CSV and NetCDF.

Coordinates in metres (z up); residual = observed - predicted. A g_z survey's data and
std are in mGal, **positive downward** (excess mass below gives positive g_z), and its
files have the columns ``x, y, z, observed, std, predicted, residual``. A survey with
other components (``Survey(..., components=...)``: gradiometry) gets two more columns
after ``z``: ``component`` (``gz``, ``gzz``...) and ``unit`` (``mGal`` or ``Eötvös``),
and every row's values are in its component's unit and sign (``gzz``: z up, positive
above excess mass, as SimPEG). The value columns keep neutral names, so one reader
handles both layouts.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

PathLike = str | os.PathLike

DATA_COLUMNS = ("x", "y", "z", "observed", "std", "predicted", "residual")
#: the columns of a survey with components other than g_z
COMPONENT_DATA_COLUMNS = ("x", "y", "z", "component", "unit", "observed", "std", "predicted", "residual")
_VALUES = ("observed", "std", "predicted", "residual")
_HEADER = ("# gempy_gravinv inversion data: x, y, z in metres (z up, elevation); observed, std, "
           "predicted and residual (= observed - predicted) g_z in mGal, positive downward "
           "(excess mass below -> positive)")
_COMPONENT_HEADER = ("# gempy_gravinv inversion data: x, y, z in metres (z up, elevation); component = gravity "
                     "component of the row, unit = its unit; observed, std, predicted and residual (= observed - "
                     "predicted) in that unit: gx, gy, gz in mGal (gz positive downward: excess mass below -> "
                     "positive), gxx, gxy, gxz, gyy, gyz, gzz, guv in Eotvos (z up, SimPEG's signs: gzz positive "
                     "above excess mass)")
_SIGN = "g_z positive downward (excess mass below gives positive values)"
_COMPONENT_SIGN = ("each datum in its component's unit (variable unit) and sign: gz positive downward (excess mass "
                   "below gives positive values); gx, gy toward the mass; gradients z up as SimPEG (gzz positive "
                   "above excess mass)")


def _columns(survey, predicted) -> dict[str, np.ndarray]:
    """The data table's columns (n_data,) each (``component`` and ``unit`` unless a g_z survey)."""
    loc = np.asarray(survey.locations, dtype=np.float64).reshape(-1, 3)
    n = loc.shape[0]
    pred = np.asarray(predicted, dtype=np.float64).reshape(-1)
    if pred.shape[0] != n:
        raise ValueError(f"predicted has {pred.shape[0]} values, the survey {n} stations")
    obs = np.full(n, np.nan) if survey.gz is None else np.asarray(survey.gz, dtype=np.float64).reshape(-1)
    std = np.full(n, np.nan) if survey.std is None else np.asarray(survey.std, dtype=np.float64).reshape(-1)
    cols = {"x": loc[:, 0], "y": loc[:, 1], "z": loc[:, 2], "observed": obs, "std": std,
            "predicted": pred, "residual": obs - pred}
    if not _gz_only(survey):
        cols["component"] = np.asarray(survey.components, dtype=str)
        cols["unit"] = np.asarray(survey.units, dtype=str)
    return cols


def _gz_only(survey) -> bool:
    """Whether every datum is g_z (a survey without ``is_gz_only``, e.g. an older object: yes)."""
    return bool(getattr(survey, "is_gz_only", True))


def _units(survey) -> str:
    """The one unit of the values, or ``"mGal or Eötvös (see unit)"`` for mixed units."""
    if _gz_only(survey):
        return "mGal"
    units = sorted(set(np.asarray(survey.units, dtype=str).tolist()))
    return units[0] if len(units) == 1 else "mGal or Eötvös (see variable unit)"


def save_data_csv(path: PathLike, survey, predicted) -> Path:
    """Write stations, observed, std, predicted and residual data as CSV.

    Parameters
    ----------
    path : str or path-like
        Output ``.csv`` file (overwritten; UTF-8).
    survey : Survey
        Stations (m, z up) with observed data and std (g_z: mGal, positive down; other
        components: each datum in its unit); missing ones are written as ``nan``.
    predicted : array_like (n_data,)
        Predicted data, in the survey's datum order and units (g_z: mGal, positive
        downward).

    Returns
    -------
    pathlib.Path
        The file: a comment line stating the units and sign, then for a g_z survey the
        header ``x,y,z,observed,std,predicted,residual`` (byte for byte as before
        components existed), for any other survey
        ``x,y,z,component,unit,observed,std,predicted,residual``; one row per datum
        (residual = observed - predicted).
    """
    cols = _columns(survey, predicted)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if "component" not in cols:
        table = np.column_stack([cols[k] for k in DATA_COLUMNS])
        with open(p, "w", encoding="utf-8", newline="\n") as f:
            f.write(_HEADER + "\n" + ",".join(DATA_COLUMNS) + "\n")
            np.savetxt(f, table, delimiter=",", fmt="%.10g")
        return p
    with open(p, "w", encoding="utf-8", newline="\n") as f:
        f.write(_COMPONENT_HEADER + "\n" + ",".join(COMPONENT_DATA_COLUMNS) + "\n")
        for row in zip(*(cols[k] for k in COMPONENT_DATA_COLUMNS)):
            f.write(",".join(str(v) if isinstance(v, str) else f"{v:.10g}" for v in row) + "\n")
    return p


def save_data_netcdf(path: PathLike, survey, predicted, attrs: dict | None = None) -> Path:
    """Write the same table as :func:`save_data_csv` as NetCDF variables over ``station``.

    Parameters
    ----------
    path : str or path-like
        Output ``.nc`` file (overwritten; ``h5netcdf`` engine).
    survey : Survey
        Stations with observed data and std (g_z: mGal, positive down; other components:
        each datum in its unit).
    predicted : array_like (n_data,)
        Predicted data in the survey's datum order and units.
    attrs : dict, optional
        Extra global attributes (numbers and strings).

    Returns
    -------
    pathlib.Path
        The file, with coordinates ``x, y, z`` (m, z up) and variables ``observed``,
        ``std``, ``predicted``, ``residual``, each with ``units`` (``mGal`` for a g_z
        survey, positive down). A survey with other components also has the string
        variables ``component`` and ``unit`` over ``station`` (one entry per datum: a
        station measuring several components appears once per component); the value
        variables' ``units`` is then the one unit of all data, or
        ``"mGal or Eötvös (see variable unit)"``.
    """
    import xarray as xr

    cols = _columns(survey, predicted)
    mixed = "component" in cols
    sign = _COMPONENT_SIGN if mixed else _SIGN
    units = _units(survey)
    what = "data" if mixed else "g_z"
    coords = {k: ("station", cols[k], {"units": "m", **({"positive": "up"} if k == "z" else {})})
              for k in ("x", "y", "z")}
    long = {"observed": "observed gravity anomaly g_z" if not mixed else "observed gravity data",
            "std": f"standard deviation of observed {what}",
            "predicted": f"predicted {what} of the recovered model", "residual": f"observed - predicted {what}"}
    data_vars = {k: ("station", cols[k], {"units": units, "long_name": long[k], "sign_convention": sign})
                 for k in _VALUES}
    if mixed:
        data_vars["component"] = ("station", cols["component"].astype(object),
                                  {"long_name": "gravity component of the datum (x east, y north, z up)"})
        data_vars["unit"] = ("station", cols["unit"].astype(object), {"long_name": "unit of the datum's values"})
    ds = xr.Dataset(data_vars=data_vars, coords=coords,
                    attrs={"source": "gempy_gravinv", "sign_convention": sign, **(attrs or {})})
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(p, engine="h5netcdf")
    return p
