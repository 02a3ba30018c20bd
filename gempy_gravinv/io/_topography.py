"""Topography files: ground points ``x, y, z`` in metres (z up, elevation).

Accepted layouts, comment lines starting with ``#`` or ``!`` ignored:

- CSV or whitespace-separated text with three numeric columns ``x, y, z`` (an optional
  header line of names, e.g. ``x,y,z``);
- UBC-GIF topography: a first line holding the number of points, then ``x y z`` rows;
- semicolon-separated text with decimal commas (``1234,5;6789,0;12,3``).

A header that names a unit other than metres (``z (ft)``) is refused; no-data
elevations (-99999, -9999, -32768, -32767, or beyond 1e6 m) are dropped, and points
given twice at one ``x, y`` with different elevations are averaged, each with a warning.
"""

from __future__ import annotations

import logging
import re
import warnings

import numpy as np

from ._common import PathLike, as_path, data_lines, parse_floats

logger = logging.getLogger(__name__)

#: elevations that mark a missing value in DEM and grid formats (m)
NO_DATA_Z = (-99999.0, -9999.0, -32768.0, -32767.0)
_UNIT = re.compile(r"[(\[]\s*([^)\]]+?)\s*[)\]]")
_METRES = {"m", "metre", "metres", "meter", "meters", "m asl", "masl"}


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_topography(path: PathLike) -> np.ndarray:
    """Read ground points from a topography file.

    Parameters
    ----------
    path : str or path-like
        CSV / whitespace text of ``x, y, z`` (m, z up), or a UBC-GIF topography file.

    Returns
    -------
    numpy.ndarray, shape (n, 3)
        Points in metres, z up (elevation).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        A line that is not three numbers (named by file and line), a UBC point count
        that does not match the rows, fewer than 3 points, non-finite values, or points
        that all lie on one line (no surface can be interpolated).
    """
    p = as_path(path)
    lines = data_lines(p, "#")
    lines = [(n, t.split("!")[0].strip()) for n, t in lines]
    lines = [(n, t) for n, t in lines if t]
    if not lines:
        raise ValueError(f"{p}: no topography points")
    if any(";" in t for _, t in lines):  # semicolons: commas are decimal marks
        lines = [(n, t.replace(",", ".")) for n, t in lines]
    first = re.split(r"[,\s;]+", lines[0][1])
    if all(not _is_number(tok) for tok in first):  # a header of names
        units = [u for u in _UNIT.findall(lines[0][1]) if u.strip().lower() not in _METRES]
        if units:
            raise ValueError(f"{p}, line {lines[0][0]}: the header names the unit {units[0]!r}; topography is read "
                             "in metres (x, y, z, z up): convert the file")
        lines = lines[1:]
    elif len(first) == 1:  # UBC: the number of points
        count = parse_floats(first, p, lines[0][0])[0]
        lines = lines[1:]
        if count != len(lines):
            raise ValueError(f"{p}: the first line announces {count:g} points, the file has {len(lines)}")
    rows = []
    for n, text in lines:
        tok = [t for t in re.split(r"[,\s;]+", text) if t]
        if len(tok) != 3:
            raise ValueError(f"{p}, line {n}: a topography point is 3 numbers (x, y, z in metres), "
                             f"got {len(tok)} value(s): {text[:60]!r}")
        rows.append(parse_floats(tok, p, n))
    xyz = np.asarray(rows, dtype=np.float64).reshape(-1, 3)
    if xyz.shape[0] < 3:
        raise ValueError(f"{p}: a topography needs at least 3 points, got {xyz.shape[0]}")
    bad = ~np.isfinite(xyz).all(axis=1)
    if bad.any():
        raise ValueError(f"{p}: {int(bad.sum())} point(s) with NaN/inf coordinates")
    xyz = _without_no_data(xyz, p)
    xyz = _merged_duplicates(xyz, p)
    xy = xyz[:, :2] - xyz[:, :2].mean(axis=0)
    if np.linalg.matrix_rank(xy, tol=1e-9 * max(1.0, float(np.abs(xy).max()))) < 2:
        raise ValueError(f"{p}: the topography points lie on a line; a surface needs points spread in x and y")
    return xyz


def _without_no_data(xyz: np.ndarray, p) -> np.ndarray:
    """The points whose elevation is not a no-data marker (:data:`NO_DATA_Z`, or beyond 1e6 m), said."""
    z = xyz[:, 2]
    gone = np.isin(z, NO_DATA_Z) | (np.abs(z) >= 1e6)
    if not gone.any():
        return xyz
    keep = xyz[~gone]
    if keep.shape[0] < 3:
        raise ValueError(f"{p}: {int(gone.sum())} of {len(z)} elevations are no-data values "
                         f"({', '.join(f'{v:g}' for v in np.unique(z[gone])[:3])}); fewer than 3 points remain")
    warnings.warn(f"{p}: {int(gone.sum())} point(s) with a no-data elevation "
                  f"({', '.join(f'{v:g}' for v in np.unique(z[gone])[:3])}) left out", UserWarning, stacklevel=3)
    return keep


def _merged_duplicates(xyz: np.ndarray, p) -> np.ndarray:
    """Points given more than once at one (x, y): one point at their mean elevation (said where they differ)."""
    xy, inv, counts = np.unique(xyz[:, :2], axis=0, return_inverse=True, return_counts=True)
    if xy.shape[0] == xyz.shape[0]:
        return xyz
    inv = inv.reshape(-1)
    z = np.bincount(inv, weights=xyz[:, 2]) / counts
    spread = np.zeros(len(xy))
    np.maximum.at(spread, inv, np.abs(xyz[:, 2] - z[inv]))
    if spread.max() > 0:
        warnings.warn(f"{p}: {int((spread > 0).sum())} (x, y) given more than once with different elevations "
                      f"(up to {2 * spread.max():.4g} m apart): their mean elevation is used", UserWarning,
                      stacklevel=3)
    else:
        logger.info("%s: %d repeated point(s) taken once", p, int(xyz.shape[0] - xy.shape[0]))
    return np.column_stack([xy, z])
