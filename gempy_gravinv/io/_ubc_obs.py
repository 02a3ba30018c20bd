"""UBC-GIF GRAV3D observation files (survey, predicted data, observations).

The files of ``gzfor3d`` and ``gzinv3d``: lines starting with ``!`` are comments; the
first line holds the number of data ``ndat``; then ``ndat`` rows ``E N ELEV [Grav [Err]]``
with coordinates in metres (z up, elevation) and data and errors in mGal. An optional
first line ``IGNORE value`` (GIF's no-data value: rows whose datum equals it are left
out) and Fortran exponents (``0.5D0``) are read; gradiometry (GG3D) files are refused
with a pointer to the CSV form.

GRAV3D data are the gravity anomaly in mGal produced by a density contrast in g/cm³,
positive for excess mass: **the same sign as ours**, so nothing is flipped here.
(SimPEG's ``read_grav3d_ubc`` multiplies the data by -1 on reading and
``write_grav3d_ubc`` by -1 on writing because SimPEG stores the upward component.)
"""

from __future__ import annotations

import logging
import re
import warnings
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
    lines = [(n, _fortran(t)) for n, t in data_lines(p, "!")]
    if not lines:
        raise ValueError(f"{p} is empty (no data lines after '!' comments)")
    ignore = None
    head = lines[0][1].split()
    if head and head[0].upper() == "IGNORE":
        try:
            ignore = float(head[1])
        except (IndexError, ValueError):
            raise ValueError(f"{p}, line {lines[0][0]}: IGNORE needs the no-data value, got {lines[0][1]!r}") from None
        lines = lines[1:]
        if not lines:
            raise ValueError(f"{p} holds no data after its IGNORE line")
    lineno, first = lines[0]
    tok = first.split()
    ndat = _count(tok)
    if ndat is None:
        raise ValueError(
            f"{p}, line {lineno}: expected the number of data (GRAV3D format), got {first!r}"
        )
    if len(lines) > 1 and re.search(r"\bg[xyz]{2}\b", lines[1][1], re.IGNORECASE):
        raise ValueError(f"{p}, line {lines[1][0]}: a GRAV3D gradiometry (GG3D) file, with components "
                         f"{lines[1][1].strip()!r}: not read; write the data as CSV with x, y, z, component, data, "
                         "std columns (gradients in Eötvös)")
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
    if ignore is not None and ncol >= 4:
        gone = arr[:, 3] == ignore
        if gone.all():
            raise ValueError(f"{p}: every datum is the IGNORE value {ignore:g}")
        if gone.any():
            warnings.warn(f"{p}: {int(gone.sum())} row(s) hold the IGNORE value {ignore:g}: left out", UserWarning,
                          stacklevel=2)
            arr = arr[~gone]
    gz = arr[:, 3] if ncol >= 4 else None
    std = arr[:, 4] if ncol == 5 else None
    logger.debug("read %d GRAV3D row(s) from %s (%d columns)", arr.shape[0], p, ncol)
    return Survey(arr[:, :3], gz=gz, std=std, name=p.stem)


def _fortran(text: str) -> str:
    """Fortran double-precision exponents (``0.5D0``, ``1.2d-3``) written as ``E``."""
    return re.sub(r"(?<=[0-9.])[dD](?=[+-]?[0-9])", "E", text)


def _count(tok: list[str]) -> int | None:
    """The number of data of a GRAV3D count line (``3``, ``3.``, ``3.0``), None if it is not one."""
    if len(tok) != 1:
        return None
    try:
        v = float(tok[0])
    except ValueError:
        return None
    return int(v) if v == int(v) else None


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
        ``True`` when the first data line (after ``!`` comments and an optional
        ``IGNORE`` line) is a single non-negative whole number and the second holds 3-5
        whitespace-separated numbers (or GG3D's component names).
    """
    lines = [(n, _fortran(t)) for n, t in data_lines(p, "!")]
    if lines and lines[0][1].split()[:1] and lines[0][1].split()[0].upper() == "IGNORE":
        lines = lines[1:]
    if len(lines) < 2:
        return False
    tok = lines[0][1].split()
    if _count(tok) is None or float(tok[0]) < 0:
        return False
    if re.search(r"\bg[xyz]{2}\b", lines[1][1], re.IGNORECASE):  # GG3D: read_ubc_obs names it
        return True
    t2 = lines[1][1].replace(",", " ").split()
    try:
        [float(t) for t in t2]
    except ValueError:
        return False
    return 3 <= len(t2) <= 5 and "," not in lines[1][1]
