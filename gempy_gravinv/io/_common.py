"""Parsing helpers shared by the readers and writers of :mod:`gempy_gravinv.io`.

Path checks, UTF-8 text (a byte order mark dropped), comment-stripped data lines, float
parsing with line numbers in the error messages, finiteness checks on parsed columns,
full-precision number formatting and the station/data bundling used by the writers.
Units are those of the calling format.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._survey import Survey

logger = logging.getLogger(__name__)

#: Anything :class:`pathlib.Path` accepts: a string or an :class:`os.PathLike`.
PathLike = str | os.PathLike


def as_path(path: PathLike, *, must_exist: bool = True) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path`, checking that it is an existing file.

    Parameters
    ----------
    path : str or path-like
        The file.
    must_exist : bool
        Check that the file exists and is not a directory (readers); ``False`` for
        files about to be written.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        ``must_exist`` and the file does not exist.
    ValueError
        ``must_exist`` and the path is a directory.
    """
    p = Path(os.fspath(path))
    if must_exist:
        if not p.exists():
            raise FileNotFoundError(f"no such file: {p}")
        if p.is_dir():
            raise ValueError(f"{p} is a directory, a file was expected")
    return p


def read_text(path: Path) -> str:
    """Return the text of a UTF-8 file, without the byte order mark that Excel's "CSV UTF-8" writes.

    Parameters
    ----------
    path : pathlib.Path
        The file.

    Returns
    -------
    str
        The decoded text (a leading UTF-8 byte order mark removed).

    Raises
    ------
    ValueError
        The file holds NUL bytes and does not decode (binary data, UTF-16 text), or it holds a
        byte that is not UTF-8 (Latin-1 / Windows-1252 text): the message names its offset and
        line and asks to save the file as UTF-8.
    """
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        if b"\x00" in data:
            raise ValueError(f"{path} is not a text file (it holds NUL bytes: binary data, or UTF-16 text "
                             "that must be saved as UTF-8)") from None
        raise ValueError(f"{path}, line {line}: byte 0x{data[exc.start]:02x} at offset {exc.start} is not UTF-8 "
                         "text (Latin-1 / Windows-1252?); save the file as UTF-8") from None


def data_lines(path: Path, comment: str) -> list[tuple[int, str]]:
    """Return the non-empty lines of a text file with comments stripped.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    comment : str
        Marker that starts a comment (``"#"`` for CSV, ``"!"`` for UBC-GIF files); the
        rest of the line is dropped.

    Returns
    -------
    list of (int, str)
        ``(1-based line number, stripped text)`` of every line left non-empty.

    Raises
    ------
    ValueError
        The file is not UTF-8 text (a byte that does not decode is named by offset and line).
    """
    text = read_text(path)
    out = []
    for i, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(comment, 1)[0].strip()
        if line:
            out.append((i, line))
    return out


def parse_floats(tokens: Sequence[str], path: Path, lineno: int) -> list[float]:
    """Parse the tokens of one line as floats, naming the file and line on failure.

    Parameters
    ----------
    tokens : sequence of str
        The line's values (surrounding blanks are ignored).
    path : pathlib.Path
        The file, for the error message.
    lineno : int
        1-based line number, for the error message.

    Returns
    -------
    list of float
        The values, in the file's units.

    Raises
    ------
    ValueError
        An empty or non-numeric token.
    """
    vals = []
    for t in tokens:
        t = t.strip()
        if t == "":
            raise ValueError(f"{path}, line {lineno}: empty value")
        try:
            vals.append(float(t))
        except ValueError:
            raise ValueError(f"{path}, line {lineno}: {t!r} is not a number") from None
    return vals


def check_finite_columns(arr: np.ndarray, names: Sequence[str], path: Path,
                         linenos: Sequence[int]) -> None:
    """Raise if a parsed table holds NaN or inf, naming the first bad line and column.

    Parameters
    ----------
    arr : ndarray, shape (n_rows, n_columns)
        The parsed values.
    names : sequence of str
        Column names, for the error message.
    path : pathlib.Path
        The file, for the error message.
    linenos : sequence of int
        1-based line number of each row.

    Raises
    ------
    ValueError
        Some value is NaN or inf.
    """
    bad = ~np.isfinite(arr)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(
            f"{path}, line {linenos[r]}: column {names[c]!r} is NaN/inf "
            f"({int(bad.sum())} non-finite value(s) in the file)"
        )


def format_float(v: float) -> str:
    """Format a number with full float64 precision (round trips exactly).

    Parameters
    ----------
    v : float
        The value, in the units the file carries.

    Returns
    -------
    str
        ``repr(float(v))``.
    """
    return repr(float(v))


def survey_with_data(survey_or_locations, gz=None, std=None) -> Survey:
    """Bundle stations and optional data into a :class:`~gempy_gravinv.Survey` for writing.

    Parameters
    ----------
    survey_or_locations : Survey or array_like, shape (n, 3)
        Stations in metres, z up (a survey may carry data).
    gz : array_like, shape (n,), optional
        g_z in mGal, positive downward; replaces the survey's data when given.
    std : float or array_like, optional
        Standard deviations in mGal; with ``gz=None`` they are attached to the survey's
        own data (which must then exist).

    Returns
    -------
    Survey
        The survey itself when neither ``gz`` nor ``std`` is given, else a new one.
    """
    if isinstance(survey_or_locations, Survey):
        s = survey_or_locations
        if gz is None and std is None:
            return s
        if gz is None:
            s.require_data()
            gz = s.gz
        return s.with_data(gz, std)
    return Survey(survey_or_locations, gz=gz, std=std)
