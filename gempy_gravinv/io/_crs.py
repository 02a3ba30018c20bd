"""Coordinate reference systems of station files, read and converted with pyproj.

Stations live in a projected CRS in metres. :func:`parse_crs` reads a CRS from anything
pyproj takes (``"EPSG:25830"``, an OGC URN or URL, WKT, ``"OGC:CRS84"``);
:func:`projected_metres` checks that one is projected in metres; :func:`reproject_xy`
converts coordinates; :func:`crs_label` names a CRS in messages; :func:`crs_cf_attributes`
gives the CF ``grid_mapping`` attributes (with ``crs_wkt``) for NetCDF files.
"""

from __future__ import annotations

import warnings

import numpy as np

from .._validation import fits_lonlat

__all__ = ["parse_crs", "crs_label", "projected_metres", "reproject_xy", "crs_cf_attributes",
           "looks_like_lonlat"]


def parse_crs(value, *, what: str = "CRS"):
    """A :class:`pyproj.CRS` from a CRS name, code, URN, URL, WKT or CRS object.

    Parameters
    ----------
    value : str or pyproj.CRS
        E.g. ``"EPSG:25830"``, ``"urn:ogc:def:crs:EPSG::23030"``, WKT.
    what : str
        Name used in the error message (e.g. ``"to_crs"``).

    Returns
    -------
    pyproj.CRS

    Raises
    ------
    ValueError
        pyproj does not know the CRS.
    """
    import pyproj

    try:
        return pyproj.CRS.from_user_input(value)
    except pyproj.exceptions.CRSError as exc:
        raise ValueError(f"{what} {value!r} is not a CRS pyproj knows ({exc})") from None


def crs_label(crs) -> str:
    """``"EPSG:25830 (ETRS89 / UTM zone 30N)"``: the code (when there is one) and the name."""
    code = crs.to_string()
    if len(code) > 40:  # WKT or a PROJ string: the name alone
        return repr(crs.name)
    return f"{code} ({crs.name})"


def projected_metres(crs) -> bool:
    """Whether ``crs`` is projected with metre axes."""
    if not crs.is_projected:
        return False
    axes = crs.axis_info
    return bool(axes) and all(abs(a.unit_conversion_factor - 1.0) < 1e-12 for a in axes[:2])


def axis_unit(crs) -> str:
    """The name of the unit of ``crs``'s first axis (``"metre"``, ``"US survey foot"``, ``"degree"``)."""
    return crs.axis_info[0].unit_name if crs.axis_info else "unknown units"


def require_metres(crs, where) -> None:
    """Refuse ``crs`` unless it is projected in metres, naming ``where`` (a file) and how to reproject.

    Raises
    ------
    ValueError
        A geographic CRS, or a projected one in another unit (feet).
    """
    if not projected_metres(crs):
        raise ValueError(f"{where}: CRS {crs_label(crs)} has coordinates in {axis_unit(crs)}, not metres: "
                         "pass to_crs='EPSG:...' (--crs) naming a projected CRS in metres to reproject")


def looks_like_lonlat(xy: np.ndarray) -> bool:
    """Whether every (x, y) fits longitude/latitude ranges (|x| <= 180, |y| <= 90): :func:`fits_lonlat`."""
    return fits_lonlat(xy)


def reproject_xy(xy: np.ndarray, src, dst) -> np.ndarray:
    """(x, y) from CRS ``src`` to ``dst`` (x = easting / longitude first, as in GeoJSON).

    Raises
    ------
    ValueError
        A point cannot be transformed (outside the area the transformation covers).
    """
    import pyproj

    tr = pyproj.Transformer.from_crs(src, dst, always_xy=True)
    xy = np.asarray(xy, dtype=float)
    if src.is_projected and not projected_metres(src):
        unit = axis_unit(src)
        warnings.warn(f"x and y are converted from {crs_label(src)}, in {unit}, to metres; elevations (z) are "
                      f"not: if they are in {unit} too, convert them to metres", UserWarning, stacklevel=3)
    x, y = tr.transform(xy[:, 0], xy[:, 1])
    out = np.column_stack([np.asarray(x, float), np.asarray(y, float)])
    bad = ~np.all(np.isfinite(out), axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{int(bad.sum())} point(s) cannot be transformed from {crs_label(src)} to "
                         f"{crs_label(dst)} (first: {xy[i].tolist()}): outside the area of use?")
    return out


def crs_cf_attributes(crs) -> dict:
    """CF-1.8 grid-mapping attributes of a CRS (``crs_wkt``, ``spatial_ref``, ``grid_mapping_name``...).

    Parameters
    ----------
    crs : str or pyproj.CRS
        The CRS (as :attr:`gempy_gravinv.Survey.crs` holds it).

    Returns
    -------
    dict
        Attributes for the grid-mapping variable of a NetCDF file; values are strings
        or numbers.
    """
    c = parse_crs(crs)
    attrs = {}
    for k, v in c.to_cf().items():
        if isinstance(v, (str, int, float)) and not isinstance(v, bool):
            attrs[k] = v
    attrs["crs_wkt"] = c.to_wkt()
    attrs["spatial_ref"] = attrs["crs_wkt"]
    attrs["crs_name"] = c.to_string() if len(c.to_string()) <= 40 else c.name
    return attrs
