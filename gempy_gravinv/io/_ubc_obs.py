"""UBC-GIF GRAV3D observation files (survey, predicted data, observations).

The files of ``gzfor3d`` and ``gzinv3d``: lines starting with ``!`` are comments; the
first line holds the number of data ``ndat``; then ``ndat`` rows ``E N ELEV [Grav [Err]]``
with coordinates in metres (z up, elevation) and data and errors in mGal.

GRAV3D data are the gravity anomaly in mGal produced by a density contrast in g/cm³,
positive for excess mass: **the same sign as ours**, so nothing is flipped here.
(SimPEG's ``read_grav3d_ubc`` multiplies the data by -1 on reading and
``write_grav3d_ubc`` by -1 on writing because SimPEG stores the upward component.)
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from .._survey import Survey
from ._common import (
    PathLike,
    as_path,
    check_finite_columns,
    data_lines,
    format_float,
    parse_floats,
    survey_with_data,
)

logger = logging.getLogger(__name__)


def read_ubc_obs(path: PathLike) -> Survey:
    """Read a UBC-GIF GRAV3D survey, predicted-data or observations file.

    Format: lines starting with ``!`` are comments; the first line holds the number of
    data ``ndat``; then ``ndat`` rows ``E N ELEV [Grav [Err]]`` (metres; mGal).

    Parameters
    ----------
    path : str or path-like
        The GRAV3D file.

    Returns
    -------
    Survey
        Stations in metres (z up). ``gz`` in mGal, positive downward: GRAV3D's anomaly is
        positive for excess mass, as ours, so values are **not** sign-flipped (SimPEG's
        ``read_grav3d_ubc`` flips them to its upward convention). ``std`` in mGal.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Empty file, a first line that is not a count, a count that does not match the
        rows, rows with other than 3-5 columns or mixed column counts, NaN values.
    """
    p = as_path(path)
    lines = data_lines(p, "!")
    if not lines:
        raise ValueError(f"{p} is empty (no data lines after '!' comments)")
    lineno, first = lines[0]
    tok = first.split()
    try:
        if len(tok) != 1:
            raise ValueError
        ndat = int(tok[0])
    except ValueError:
        raise ValueError(
            f"{p}, line {lineno}: expected the number of data (GRAV3D format), got {first!r}"
        ) from None
    if ndat <= 0:
        raise ValueError(f"{p}, line {lineno}: number of data must be positive, got {ndat}")
    body = lines[1:]
    if len(body) != ndat:
        raise ValueError(f"{p}: header says {ndat} data but the file holds {len(body)} rows")
    rows, linenos = [], []
    ncol = None
    for ln, line in body:
        t = line.split()
        if ncol is None:
            ncol = len(t)
            if ncol not in (3, 4, 5):
                raise ValueError(
                    f"{p}, line {ln}: {ncol} columns; GRAV3D rows are E N ELEV [Grav [Err]]"
                )
        elif len(t) != ncol:
            raise ValueError(f"{p}, line {ln}: {len(t)} columns, previous rows have {ncol}")
        rows.append(parse_floats(t, p, ln))
        linenos.append(ln)
    arr = np.asarray(rows, dtype=np.float64)
    check_finite_columns(arr, ["E", "N", "ELEV", "Grav", "Err"][:ncol], p, linenos)
    gz = arr[:, 3] if ncol >= 4 else None
    std = arr[:, 4] if ncol == 5 else None
    logger.debug("read %d GRAV3D row(s) from %s (%d columns)", ndat, p, ncol)
    return Survey(arr[:, :3], gz=gz, std=std, name=p.stem)


def write_ubc_obs(path: PathLike, survey: Survey, gz=None, std=None) -> Path:
    """Write a UBC-GIF GRAV3D survey / predicted-data / observations file.

    Parameters
    ----------
    path : str or path-like
        Output file (overwritten).
    survey : Survey or array_like (n, 3)
        Stations in metres (z up), with optional data.
    gz : array_like, optional
        g_z in mGal, positive downward (GRAV3D's sign, written unchanged); replaces the
        survey's data when given.
    std : float or array_like, optional
        Standard deviations in mGal.

    Returns
    -------
    pathlib.Path
        The written file: ``ndat`` then ``E N ELEV [Grav [Err]]`` rows; no comment lines
        (SimPEG's reader does not accept them).

    Raises
    ------
    ValueError
        The survey holds components other than g_z (GRAV3D files are g_z only; write
        CSV with a component column instead).
    """
    s = survey_with_data(survey, gz, std)
    if not s.is_gz_only:
        raise ValueError(f"GRAV3D observation files hold g_z only; this survey holds "
                         f"{', '.join(s.component_groups())}: write CSV (io.write_csv: a component column) instead")
    p = as_path(path, must_exist=False)
    cols = [s.locations]
    if s.has_data:
        cols.append(s.gz[:, None])
        if s.std is not None:
            cols.append(s.std[:, None])
    arr = np.hstack(cols)
    with open(p, "w") as fh:
        fh.write(f"{s.n_data}\n")
        for row in arr:
            fh.write(" ".join(format_float(v) for v in row) + "\n")
    logger.debug("wrote %d GRAV3D row(s) to %s", s.n_data, p)
    return p


def looks_like_ubc_obs(p: Path) -> bool:
    """Tell whether a text file looks like a GRAV3D observation file.

    Parameters
    ----------
    p : pathlib.Path
        An existing text file.

    Returns
    -------
    bool
        ``True`` when the first data line (after ``!`` comments) is a single
        non-negative integer and the second holds 3-5 whitespace-separated numbers.
    """
    lines = data_lines(p, "!")
    if len(lines) < 2:
        return False
    tok = lines[0][1].split()
    if len(tok) != 1 or not re.fullmatch(r"[+]?\d+", tok[0]):
        return False
    t2 = lines[1][1].replace(",", " ").split()
    try:
        [float(t) for t in t2]
    except ValueError:
        return False
    return 3 <= len(t2) <= 5 and "," not in lines[1][1]
