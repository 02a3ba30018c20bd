"""Observed, predicted and residual data of an inversion, as CSV and NetCDF.

Coordinates in metres (z up); g_z and its std in mGal, **positive downward** (excess
mass below gives positive g_z); residual = observed - predicted.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

PathLike = str | os.PathLike

DATA_COLUMNS = ("x", "y", "z", "observed", "std", "predicted", "residual")
_HEADER = ("# gempy_gravinv inversion data: x, y, z in metres (z up, elevation); observed, std, "
           "predicted and residual (= observed - predicted) g_z in mGal, positive downward "
           "(excess mass below -> positive)")


def _columns(survey, predicted) -> dict[str, np.ndarray]:
    """The data table's columns (n_data,) each."""
    loc = np.asarray(survey.locations, dtype=np.float64).reshape(-1, 3)
    n = loc.shape[0]
    pred = np.asarray(predicted, dtype=np.float64).reshape(-1)
    if pred.shape[0] != n:
        raise ValueError(f"predicted has {pred.shape[0]} values, the survey {n} stations")
    obs = np.full(n, np.nan) if survey.gz is None else np.asarray(survey.gz, dtype=np.float64).reshape(-1)
    std = np.full(n, np.nan) if survey.std is None else np.asarray(survey.std, dtype=np.float64).reshape(-1)
    return {"x": loc[:, 0], "y": loc[:, 1], "z": loc[:, 2], "observed": obs, "std": std,
            "predicted": pred, "residual": obs - pred}


def save_data_csv(path: PathLike, survey, predicted) -> Path:
    """Write stations, observed, std, predicted and residual g_z as CSV.

    Parameters
    ----------
    path : str or path-like
        Output ``.csv`` file (overwritten).
    survey : Survey
        Stations (m, z up) with observed g_z and std (mGal, positive down); missing
        ones are written as ``nan``.
    predicted : array_like (n_data,)
        Predicted g_z, mGal, positive downward.

    Returns
    -------
    pathlib.Path
        The file: a comment line stating the units and sign, the header
        ``x,y,z,observed,std,predicted,residual``, one row per station
        (residual = observed - predicted).
    """
    cols = _columns(survey, predicted)
    table = np.column_stack([cols[k] for k in DATA_COLUMNS])
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", encoding="utf-8", newline="\n") as f:
        f.write(_HEADER + "\n" + ",".join(DATA_COLUMNS) + "\n")
        np.savetxt(f, table, delimiter=",", fmt="%.10g")
    return p


def save_data_netcdf(path: PathLike, survey, predicted, attrs: dict | None = None) -> Path:
    """Write the same table as :func:`save_data_csv` as NetCDF variables over ``station``.

    Parameters
    ----------
    path : str or path-like
        Output ``.nc`` file (overwritten; ``h5netcdf`` engine).
    survey : Survey
        Stations with observed g_z and std (mGal, positive down).
    predicted : array_like (n_data,)
        Predicted g_z, mGal, positive downward.
    attrs : dict, optional
        Extra global attributes (numbers and strings).

    Returns
    -------
    pathlib.Path
        The file, with coordinates ``x, y, z`` (m, z up) and variables ``observed``,
        ``std``, ``predicted``, ``residual`` (mGal, positive down), each with ``units``.
    """
    import xarray as xr

    cols = _columns(survey, predicted)
    sign = "g_z positive downward (excess mass below gives positive values)"
    coords = {k: ("station", cols[k], {"units": "m", **({"positive": "up"} if k == "z" else {})})
              for k in ("x", "y", "z")}
    long = {"observed": "observed gravity anomaly g_z", "std": "standard deviation of observed g_z",
            "predicted": "predicted g_z of the recovered model", "residual": "observed - predicted g_z"}
    data_vars = {k: ("station", cols[k], {"units": "mGal", "long_name": long[k], "sign_convention": sign})
                 for k in ("observed", "std", "predicted", "residual")}
    ds = xr.Dataset(data_vars=data_vars, coords=coords,
                    attrs={"source": "gempy_gravinv", "sign_convention": sign, **(attrs or {})})
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(p, engine="h5netcdf")
    return p
