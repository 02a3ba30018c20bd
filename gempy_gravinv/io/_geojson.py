"""GeoJSON point stations: a FeatureCollection of Points in a projected CRS in metres.

Coordinates must be projected, in metres (e.g. UTM); geographic CRSs (degrees) are
refused. g_z is read from a feature property, in mGal, **positive downward** (excess mass
positive, as Bouguer anomalies are); std in mGal; elevations in metres, z up.
"""

from __future__ import annotations

import json
import logging
import math
import re
import warnings
from typing import Any

import numpy as np

from .._survey import Survey
from ._common import PathLike, as_path

logger = logging.getLogger(__name__)

# EPSG codes of common geographic (degree) CRSs
_GEOGRAPHIC_CODES = {
    "4326", "4258", "4269", "4267", "4230", "4171", "4283", "4617", "4674", "4612",
    "6318", "4979", "4937", "4619", "4322", "4148", "4152", "4167", "4301", "4668",
}


def _crs_name(doc: dict) -> str | None:
    """The name of the document's (pre-RFC 7946) ``crs`` member, or ``None``."""
    crs = doc.get("crs")
    if crs is None:
        return None
    if isinstance(crs, dict):
        props = crs.get("properties") or {}
        name = props.get("name") or props.get("href") or props.get("code")
        if name is not None:
            return str(name)
    return str(crs)


def _crs_is_geographic(name: str) -> bool:
    """Whether a CRS name (URN, URL, ``EPSG:n``, CRS84...) denotes degrees."""
    u = name.upper()
    if re.search(r"CRS(84|83|27)\b", u):
        return True
    if "EPSG" not in u:
        return False
    codes = re.findall(r"\d+", u.split("EPSG", 1)[1])
    return bool(codes) and codes[-1] in _GEOGRAPHIC_CODES


def read_geojson(path: PathLike, value_property: str | None = None, std=None,
                 z: float | str = 0.0) -> Survey:
    """Read gravity stations from a GeoJSON FeatureCollection of Points.

    Parameters
    ----------
    path : str or path-like
        GeoJSON file. Coordinates must be in a **projected CRS in metres** (e.g. UTM).
        A ``crs`` member naming a geographic CRS (EPSG:4326, CRS84, ETRS89, NAD83, ...)
        is an error; so is a file without ``crs`` whose coordinates all fit in
        longitude/latitude ranges (RFC 7946 GeoJSON is WGS84 lon/lat by default).
    value_property : str, optional
        Feature property holding g_z in mGal, **positive downward** (excess mass
        positive, as Bouguer anomalies are). ``None``: stations only.
    std : float or str, optional
        Standard deviation in mGal: a number for all stations, or a property name.
    z : float or str
        Station elevation (m, z up) for points without a third coordinate: a number, or
        a property name. Points with ``[x, y, z]`` coordinates use their own z.

    Returns
    -------
    Survey
        Stations in metres (z up), g_z in mGal positive downward, std in mGal; ``name``
        is the collection's ``name`` (or the file name).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Not a FeatureCollection, non-Point geometries, geographic coordinates, missing or
        non-numeric properties, NaN values, mixed 2-D/3-D coordinates.

    Warns
    -----
    UserWarning
        The file has no ``crs`` member but its coordinates cannot be degrees: they are
        taken as projected metres.
    """
    p = as_path(path)
    try:
        doc = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        got = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{p}: a GeoJSON FeatureCollection is required, got type {got!r}")
    feats = doc.get("features") or []
    if not feats:
        raise ValueError(f"{p}: the FeatureCollection has no features")
    crs = _crs_name(doc)
    if crs is not None and _crs_is_geographic(crs):
        raise ValueError(
            f"{p}: CRS {crs} is geographic (degrees); stations must be in a projected CRS in "
            "metres (e.g. UTM): reproject the file first"
        )

    xy, zs, vals, stds = [], [], [], []
    dims = set()

    def prop(props: dict, key: str, i: int, what: str) -> float:
        if key not in props:
            avail = sorted(props)
            raise ValueError(f"{p}: feature {i} has no property {key!r} ({what}); properties: {avail}")
        v = props[key]
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{p}: feature {i}, property {key!r} = {v!r} is not a number") from None
        if not math.isfinite(f):
            raise ValueError(f"{p}: feature {i}, property {key!r} is NaN/inf")
        return f

    for i, f in enumerate(feats):
        geom = (f or {}).get("geometry") or {}
        if geom.get("type") != "Point":
            raise ValueError(f"{p}: feature {i} has geometry {geom.get('type')!r}; only Points are supported")
        c = geom.get("coordinates") or []
        if len(c) not in (2, 3):
            raise ValueError(f"{p}: feature {i} has {len(c)} coordinates; [x, y] or [x, y, z] expected")
        dims.add(len(c))
        props = f.get("properties") or {}
        try:
            xy.append([float(c[0]), float(c[1])])
        except (TypeError, ValueError):
            raise ValueError(f"{p}: feature {i} has non-numeric coordinates {c!r}") from None
        if len(c) == 3:
            zs.append(float(c[2]))
        elif isinstance(z, str):
            zs.append(prop(props, z, i, "elevation"))
        else:
            zs.append(float(z))
        if value_property is not None:
            vals.append(prop(props, value_property, i, "g_z"))
        if isinstance(std, str):
            stds.append(prop(props, std, i, "std"))
    if len(dims) > 1:
        raise ValueError(f"{p}: features mix [x, y] and [x, y, z] coordinates")
    xy_arr = np.asarray(xy)
    if not np.all(np.isfinite(xy_arr)):
        raise ValueError(f"{p}: coordinates contain NaN/inf")
    if crs is None:
        if np.all(np.abs(xy_arr[:, 0]) <= 180) and np.all(np.abs(xy_arr[:, 1]) <= 90):
            raise ValueError(
                f"{p}: no 'crs' member and all coordinates fit longitude/latitude ranges; RFC 7946 "
                "GeoJSON is WGS84 degrees. Reproject to a projected CRS in metres (e.g. UTM) and "
                "name it in a 'crs' member"
            )
        warnings.warn(f"{p}: no 'crs' member; assuming projected coordinates in metres", stacklevel=2)
    loc = np.column_stack([xy_arr, np.asarray(zs, dtype=float)])
    if isinstance(std, str):
        std_v: Any = np.asarray(stds)
    else:
        std_v = std
    if std_v is not None and value_property is None:
        raise ValueError("std was given without value_property: uncertainties need data")
    name = doc.get("name") or p.stem
    logger.debug("read %d GeoJSON station(s) from %s (CRS %s)", len(feats), p, crs)
    return Survey(loc, gz=None if value_property is None else np.asarray(vals), std=std_v, name=name)
