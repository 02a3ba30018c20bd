"""Station reader that picks the format (CSV, UBC-GIF GRAV3D, GeoJSON) for a file."""

from __future__ import annotations

import logging

from .._survey import Survey
from .._validation import check_choice
from ._common import PathLike, as_path
from ._crs import crs_label, looks_like_lonlat, parse_crs, projected_metres, reproject_xy, require_metres
from ._csv import read_csv
from ._geojson import read_geojson
from ._ubc_obs import looks_like_ubc_obs, read_ubc_obs

logger = logging.getLogger(__name__)

_FORMATS = ("auto", "csv", "ubc")


def read_stations(path: PathLike, format: str = "auto", *, value_property: str | None = None,
                  z: float | str | None = None, to_crs=None, std_property: str | None = None) -> Survey:
    """Read stations from CSV, a UBC-GIF GRAV3D file or GeoJSON, by extension or content.

    Parameters
    ----------
    path : str or path-like
        The file.
    format : {"auto", "csv", "ubc"}
        ``"csv"``: :func:`read_csv`; ``"ubc"``: :func:`read_ubc_obs`. ``"auto"``:
        ``.csv`` -> CSV; ``.geojson``/``.json`` -> :func:`read_geojson`;
        ``.obs``/``.grv``/``.dat``/``.txt``/other: GRAV3D when the first data line is a
        single integer count followed by 3-5 numeric columns, else CSV.
    value_property : str, optional
        GeoJSON only: the feature property holding g_z (mGal, positive down); ``None``
        reads stations only.
    z : float, str or None
        GeoJSON only: elevation (m) of points without a third coordinate, or a property
        (``None``: a property named like an elevation, else 0 with a warning;
        :func:`read_geojson`).
    std_property : str, optional
        GeoJSON only: the feature property holding each station's std, in the data's
        unit (mGal; Eötvös for gradients); needs ``value_property``.
    to_crs : str, optional
        A projected CRS in metres (``"EPSG:25830"``). GeoJSON stations are reprojected
        into it (:func:`read_geojson`); a CSV file naming its CRS (``# crs:``) is
        reprojected; stations of a file without a CRS are taken to be in it (refused
        when their coordinates look like longitude/latitude).

    Returns
    -------
    Survey
        Stations in metres (z up), g_z in mGal **positive downward** (no sign change is
        applied in any format), std in mGal. CSV (a ``component`` column) and GeoJSON (a
        ``component`` property) may name each datum's component (then ``Survey.components``;
        gradients in Eötvös); GRAV3D files hold g_z only.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        An unknown ``format``, or what the chosen reader raises.
    """
    p = as_path(path)
    check_choice(format, _FORMATS, name="format")
    ext = p.suffix.lower()
    if format == "auto" and ext in (".geojson", ".json"):
        logger.debug("%s: reading as GeoJSON (extension %s)", p, ext)
        return read_geojson(p, value_property=value_property, z=z, to_crs=to_crs, std=std_property)
    if value_property is not None or std_property is not None:
        raise ValueError(f"{p}: a value or std property applies to GeoJSON stations (.geojson); this file's "
                         "g_z and std are its gz and std columns")
    if format == "csv" or (format == "auto" and ext == ".csv" and not looks_like_ubc_obs(p)):
        s = read_csv(p)
    elif format == "ubc" or looks_like_ubc_obs(p):
        logger.debug("%s: reading as UBC-GIF GRAV3D", p)
        s = read_ubc_obs(p)
    else:
        logger.debug("%s: reading as CSV / whitespace table", p)
        s = read_csv(p)
    if to_crs is None and s.crs is not None:
        _check_units(s.crs, p)
    return s if to_crs is None else _in_crs(s, to_crs, p)


def _check_units(crs, p) -> None:
    """Refuse a file whose named CRS is not projected in metres (with no CRS to reproject into)."""
    try:
        src = parse_crs(crs)
    except ValueError:
        return  # a name pyproj does not know: taken as given (the reader logged it)
    require_metres(src, p)


def _in_crs(s: Survey, to_crs, p) -> Survey:
    """The survey in ``to_crs``: reprojected from the CRS it names, or labelled with it."""
    target = parse_crs(to_crs, what="to_crs")
    if not projected_metres(target):
        raise ValueError(f"to_crs {crs_label(target)} is not a projected CRS in metres")
    loc = s.locations.copy()
    if s.crs is None:
        if looks_like_lonlat(loc[:, :2]):
            raise ValueError(f"{p}: the file names no CRS and all coordinates fit longitude/latitude ranges; "
                             "convert them to a projected CRS in metres first")
        logger.info("%s names no CRS: its coordinates are taken to be in %s", p, crs_label(target))
    else:
        src = parse_crs(s.crs)
        if not src.equals(target):
            loc[:, :2] = reproject_xy(loc[:, :2], src, target)
    return s.with_locations(loc, crs=target.to_string())  # data and components kept
