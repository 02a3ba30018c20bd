"""GeoJSON point stations: a FeatureCollection of Points in a projected CRS in metres.

The ``crs`` member is read with pyproj. Coordinates must be projected, in metres (e.g.
UTM); longitude/latitude (a geographic CRS, a file without ``crs`` whose coordinates fit
in degrees, or degrees labelled with a projected CRS) are refused, or reprojected when a
projected target CRS is named (``to_crs``). g_z is read from a feature property, in mGal,
**positive downward** (excess mass positive, as Bouguer anomalies are); std in mGal;
elevations in metres, z up. An optional ``component`` property names a feature's
gravity component (absent: ``gz``); its value is then in that component's unit (mGal, or
Eötvös for the gradients, SimPEG's signs with z up).
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from typing import Any

import numpy as np

from .._components import check_component
from .._survey import Survey
from ._common import PathLike, as_path
from ._crs import crs_label, looks_like_lonlat, parse_crs, projected_metres, reproject_xy, require_metres

logger = logging.getLogger(__name__)

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


#: property names read as a station's elevation (m, z up) where points have no third coordinate
ELEVATION_PROPERTIES = ("z", "elevation", "elev", "height", "altitude", "alt")


def _elevation_property(feats) -> str | None:
    """The name (as written) of an :data:`ELEVATION_PROPERTIES` property every feature has, else None."""
    names = None
    for f in feats:
        props = (f.get("properties") if isinstance(f, dict) else None) or {}
        keys = {str(k).lower(): k for k in props} if isinstance(props, dict) else {}
        found = {n: keys[n] for n in ELEVATION_PROPERTIES if n in keys}
        names = found if names is None else {n: k for n, k in names.items() if n in found and found[n] == k}
        if not names:
            return None
    return next((names[n] for n in ELEVATION_PROPERTIES if names and n in names), None)


def read_geojson(path: PathLike, value_property: str | None = None, std=None,
                 z: float | str | None = None, *, to_crs=None, component_property: str = "component") -> Survey:
    """Read gravity stations from a GeoJSON FeatureCollection of Points.

    Parameters
    ----------
    path : str or path-like
        GeoJSON file. Coordinates must be in a **projected CRS in metres** (e.g. UTM),
        named by the ``crs`` member (read with pyproj). Without ``to_crs``, these are
        errors: a geographic ``crs`` (EPSG:4326, CRS84, ETRS89, NAD83, ...), a file
        without ``crs`` whose coordinates all fit in longitude/latitude ranges (RFC 7946
        GeoJSON is WGS84 lon/lat by default), a projected CRS whose coordinates all fit
        in those ranges (degrees mislabelled), and a projected CRS in feet.
    value_property : str, optional
        Feature property holding g_z in mGal, **positive downward** (excess mass
        positive, as Bouguer anomalies are). ``None``: stations only.
    std : float or str, optional
        Standard deviation in mGal: a number for all stations, or a property name.
    z : float, str or None
        Station elevation (m, z up) for points without a third coordinate: a number, or
        a property name. ``None``: the property every such point has among
        :data:`ELEVATION_PROPERTIES` (case ignored; the first in that order), else 0 m
        with a warning (a survey's stations are seldom all at sea level). Points with
        ``[x, y, z]`` coordinates use their own z.
    to_crs : str or pyproj.CRS, optional
        A projected CRS in metres (e.g. ``"EPSG:25830"``) to reproject the stations
        into (x, y only; z is kept): from the file's CRS, or from WGS84 lon/lat for a
        file without ``crs`` whose coordinates are degrees.
    component_property : str
        Feature property naming the datum's gravity component (``"gz"``, ``"gzz"``...;
        case ignored). Features without it are ``gz``; a file where no feature has it
        gives a g_z survey. The value (and std) of a gradient is in Eötvös.

    Returns
    -------
    Survey
        Stations in metres (z up), g_z in mGal positive downward, std in mGal; ``name``
        is the collection's ``name`` (or the file name); ``crs`` the CRS of the
        coordinates (``to_crs`` when given), as ``"EPSG:n"`` where it has a code.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Not a FeatureCollection, non-Point geometries, geographic coordinates (see
        ``path``), an unknown ``to_crs`` or one not projected in metres, missing or
        non-numeric properties, NaN values, mixed 2-D/3-D coordinates.

    Warns
    -----
    UserWarning
        The file has no ``crs`` member (or one pyproj does not know) but its coordinates
        cannot be degrees: they are taken as projected metres.
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
    if not isinstance(feats, list):
        raise ValueError(f"{p}: 'features' must be a list, got {type(feats).__name__}")
    if not feats:
        raise ValueError(f"{p}: the FeatureCollection has no features")
    target = None
    if to_crs is not None:
        target = parse_crs(to_crs, what="to_crs")
        if not projected_metres(target):
            raise ValueError(f"to_crs {crs_label(target)} is not a projected CRS in metres: name one "
                             "(e.g. the UTM zone of the survey, EPSG:326NN / EPSG:258NN)")
    crs = _crs_name(doc)
    src = None
    if crs is not None:
        try:
            src = parse_crs(crs)
        except ValueError:
            src = None
    if src is not None and not src.is_projected and not src.is_geographic:
        raise ValueError(f"{p}: CRS {crs_label(src)} is neither projected nor geographic; stations must be "
                         "in a projected CRS in metres")
    if src is not None and src.is_geographic and target is None:
        raise ValueError(
            f"{p}: CRS {crs_label(src)} is geographic (degrees); stations must be in a projected CRS in "
            "metres: pass to_crs='EPSG:...' (command line: --crs EPSG:...) naming a projected CRS, e.g. "
            "the survey's UTM zone, or reproject the file"
        )
    xy, zs, vals, stds, comps = [], [], [], [], []
    dims = set()
    if z is None:
        z = _elevation_property(feats)
        if isinstance(z, str):
            logger.info("%s: station elevations from the property %r (m, z up)", p, z)

    def prop(props: dict, key: str, i: int, what: str) -> float:
        if key not in props:
            avail = sorted(props)
            raise ValueError(f"{p}: feature {i} has no property {key!r} ({what}); properties: {avail}")
        v = props[key]
        if isinstance(v, (bool, complex)):
            raise ValueError(f"{p}: feature {i}, property {key!r} = {v!r} is not a real number")
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{p}: feature {i}, property {key!r} = {v!r} is not a number") from None
        if not math.isfinite(f):
            raise ValueError(f"{p}: feature {i}, property {key!r} is NaN/inf")
        return f

    for i, f in enumerate(feats):
        geom = (f.get("geometry") if isinstance(f, dict) else None) or {}
        if not isinstance(geom, dict) or geom.get("type") != "Point":
            got = geom.get("type") if isinstance(geom, dict) else type(geom).__name__
            raise ValueError(f"{p}: feature {i} has geometry {got!r}; only Points are supported")
        c = geom.get("coordinates") or []
        if not isinstance(c, list) or len(c) not in (2, 3):
            raise ValueError(f"{p}: feature {i} has coordinates {c!r}; [x, y] or [x, y, z] expected")
        dims.add(len(c))
        _same_crs(p, i, f, geom, crs)
        props = f.get("properties") or {}
        if not isinstance(props, dict):
            raise ValueError(f"{p}: feature {i} has properties of type {type(props).__name__}, an object expected")
        if any(isinstance(v, (bool, complex)) for v in c):
            raise ValueError(f"{p}: feature {i} has non-numeric coordinates {c!r}")
        try:
            xy.append([float(c[0]), float(c[1])])
            if len(c) == 3:
                zs.append(float(c[2]))
        except (TypeError, ValueError):
            raise ValueError(f"{p}: feature {i} has non-numeric coordinates {c!r}") from None
        if len(c) == 2:
            if z is None:
                warnings.warn(f"{p}: points without elevation ([x, y]) and no elevation property "
                              f"({', '.join(ELEVATION_PROPERTIES)}): the stations are placed at z = 0 m; give their "
                              "elevation (read_geojson(..., z=number or property name))", UserWarning, stacklevel=2)
                z = 0.0
            zs.append(prop(props, z, i, "elevation") if isinstance(z, str) else float(z))
        if value_property is not None:
            vals.append(prop(props, value_property, i, "g_z"))
        if isinstance(std, str):
            stds.append(prop(props, std, i, "std"))
        comps.append(_component(props.get(component_property), p, i, component_property))
    if len(dims) > 1:
        raise ValueError(f"{p}: features mix [x, y] and [x, y, z] coordinates")
    xy_arr = np.asarray(xy)
    if not np.all(np.isfinite(xy_arr)):
        raise ValueError(f"{p}: coordinates contain NaN/inf")
    xy_arr, out_crs = _to_metres(p, xy_arr, crs, src, target)
    loc = np.column_stack([xy_arr, np.asarray(zs, dtype=float)])
    if isinstance(std, str):
        std_v: Any = np.asarray(stds)
    else:
        std_v = std
    if std_v is not None and value_property is None:
        raise ValueError("std was given without value_property: uncertainties need data")
    name = doc.get("name") or p.stem
    logger.debug("read %d GeoJSON station(s) from %s (CRS %s)", len(feats), p, crs)
    named = any(c is not None for c in comps)
    return Survey(loc, gz=None if value_property is None else np.asarray(vals), std=std_v, name=name,
                  crs=out_crs, components=[c or "gz" for c in comps] if named else None)


def _same_crs(p, i: int, feature: dict, geometry: dict, collection_crs: str | None) -> None:
    """Refuse a feature or geometry ``crs`` member (pre-RFC 7946) other than the collection's."""
    for where, obj in ((f"feature {i}", feature), (f"feature {i}'s geometry", geometry)):
        own = _crs_name(obj)
        if own is not None and own != collection_crs:
            raise ValueError(f"{p}: {where} names its own CRS {own!r}, not the collection's "
                             f"({collection_crs or 'none: RFC 7946 longitude/latitude'}); a CRS per feature "
                             "is not read: reproject the features to one CRS and name it in the collection's "
                             "'crs' member")


def _component(value, p, i: int, key: str) -> str | None:
    """The component a feature's property names (None when absent), or an error naming the feature."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{p}: feature {i}, property {key!r} = {value!r}: a component name (gz, gzz...) expected")
    try:
        return check_component(value.strip().lower())
    except ValueError as exc:
        raise ValueError(f"{p}: feature {i}, property {key!r}: {exc}") from None


def _to_metres(p, xy: np.ndarray, crs_name: str | None, src, target) -> tuple[np.ndarray, str | None]:
    """Check (and reproject) x, y; return them in projected metres with the CRS they are in."""
    lonlat = looks_like_lonlat(xy)
    if crs_name is None:  # RFC 7946: WGS84 longitude/latitude
        if lonlat:
            if target is None:
                raise ValueError(
                    f"{p}: no 'crs' member and all coordinates fit longitude/latitude ranges; RFC 7946 "
                    "GeoJSON is WGS84 degrees. Pass to_crs='EPSG:...' (command line: --crs) naming a projected "
                    "CRS in metres (e.g. UTM) to reproject, or name the CRS in a 'crs' member"
                )
            _check_axis_order(p, xy, target)
            return reproject_xy(xy, parse_crs("OGC:CRS84"), target), target.to_string()
        if target is not None:
            raise ValueError(f"{p}: no 'crs' member and the coordinates are not longitude/latitude: cannot "
                             "reproject them to to_crs; name the file's CRS in a 'crs' member")
        warnings.warn(f"{p}: no 'crs' member; assuming projected coordinates in metres", stacklevel=3)
        return xy, None
    if src is None:  # a name pyproj does not know
        if lonlat or target is not None:
            raise ValueError(f"{p}: CRS {crs_name!r} is not one pyproj knows"
                             + (" and all coordinates fit longitude/latitude ranges" if lonlat else "")
                             + ": name a known CRS (e.g. 'EPSG:25830') in the 'crs' member")
        warnings.warn(f"{p}: CRS {crs_name!r} is not one pyproj knows; assuming projected coordinates in "
                      "metres", stacklevel=3)
        return xy, crs_name
    if src.is_geographic and not lonlat:
        raise ValueError(f"{p}: CRS {crs_label(src)} is geographic (degrees) but coordinates exceed ±180/±90: "
                         "projected coordinates mislabelled? fix the 'crs' member")
    if src.is_projected and lonlat:
        raise ValueError(
            f"{p}: CRS {crs_label(src)} is projected (metres) but every coordinate lies within ±180/±90: "
            "these look like longitude/latitude degrees mislabelled with a projected CRS; fix the 'crs' "
            "member (e.g. EPSG:4326) and pass to_crs (--crs) to reproject"
        )
    if target is not None:
        if src.equals(target):
            return xy, target.to_string()
        if src.is_geographic:
            _check_axis_order(p, xy, target)
        return reproject_xy(xy, src, target), target.to_string()
    require_metres(src, p)
    return xy, src.to_string()


def _check_axis_order(p, lonlat: np.ndarray, target) -> None:
    """Refuse degrees outside ``target``'s area of use (widened by 6°) as (lon, lat) but inside it as (lat, lon).

    GeoJSON writes longitude first; a file that follows EPSG:4326's own axis order
    (latitude first) would otherwise be reprojected thousands of kilometres away.
    """
    area = getattr(target, "area_of_use", None)
    if area is None:
        return
    west, south, east, north = area.bounds
    west, south, east, north = west - 6.0, south - 6.0, east + 6.0, north + 6.0  # a zone's width around it

    def share(lon: np.ndarray, lat: np.ndarray) -> float:
        return float(np.mean((lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)))

    as_given, swapped = share(lonlat[:, 0], lonlat[:, 1]), share(lonlat[:, 1], lonlat[:, 0])
    if as_given == 0.0 and swapped > 0.5:
        raise ValueError(f"{p}: read as longitude, latitude (GeoJSON's order) no station lies in the area of "
                         f"{crs_label(target)}, but as latitude, longitude {swapped:.0%} do: the file "
                         "writes latitude first (EPSG:4326's own axis order); write longitude first")
