"""Topography files: ground points ``x, y, z`` in metres (z up, elevation).

Accepted layouts, comment lines starting with ``#`` or ``!`` ignored:

- CSV or whitespace-separated text with three numeric columns ``x, y, z`` (an optional
  header line of names, e.g. ``x,y,z``);
- UBC-GIF topography: a first line holding the number of points, then ``x y z`` rows.
"""

from __future__ import annotations

import re

import numpy as np

from ._common import PathLike, as_path, data_lines, parse_floats


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
    first = re.split(r"[,\s;]+", lines[0][1])
    if all(not _is_number(tok) for tok in first):  # a header of names
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
    xy = xyz[:, :2] - xyz[:, :2].mean(axis=0)
    if np.linalg.matrix_rank(xy, tol=1e-9 * max(1.0, float(np.abs(xy).max()))) < 2:
        raise ValueError(f"{p}: the topography points lie on a line; a surface needs points spread in x and y")
    return xyz
