"""Station reader that picks the format (CSV, UBC-GIF GRAV3D, GeoJSON) for a file."""

from __future__ import annotations

import logging

from .._survey import Survey
from .._validation import check_choice
from ._common import PathLike, as_path
from ._csv import read_csv
from ._geojson import read_geojson
from ._ubc_obs import looks_like_ubc_obs, read_ubc_obs

logger = logging.getLogger(__name__)

_FORMATS = ("auto", "csv", "ubc")


def read_stations(path: PathLike, format: str = "auto") -> Survey:
    """Read stations from CSV, a UBC-GIF GRAV3D file or GeoJSON, by extension or content.

    Parameters
    ----------
    path : str or path-like
        The file.
    format : {"auto", "csv", "ubc"}
        ``"csv"``: :func:`read_csv`; ``"ubc"``: :func:`read_ubc_obs`. ``"auto"``:
        ``.csv`` -> CSV; ``.geojson``/``.json`` -> :func:`read_geojson` with default
        arguments (stations only); ``.obs``/``.grv``/``.dat``/``.txt``/other: GRAV3D when
        the first data line is a single integer count followed by 3-5 numeric columns,
        else CSV.

    Returns
    -------
    Survey
        Stations in metres (z up), g_z in mGal **positive downward** (no sign change is
        applied in any format), std in mGal.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        An unknown ``format``, or what the chosen reader raises.
    """
    p = as_path(path)
    check_choice(format, _FORMATS, name="format")
    if format == "csv":
        return read_csv(p)
    if format == "ubc":
        return read_ubc_obs(p)
    ext = p.suffix.lower()
    if ext in (".geojson", ".json"):
        logger.debug("%s: reading as GeoJSON (extension %s)", p, ext)
        return read_geojson(p)
    if ext == ".csv":
        return read_csv(p)
    if looks_like_ubc_obs(p):
        logger.debug("%s: reading as UBC-GIF GRAV3D (count line found)", p)
        return read_ubc_obs(p)
    logger.debug("%s: reading as CSV / whitespace table", p)
    return read_csv(p)
