"""CSV station files: columns ``x, y, z[, component][, gz[, std]]``.

Coordinates in metres (z up, elevation); ``gz`` is the gravity anomaly in mGal,
**positive downward** (excess mass below gives a positive value); ``std`` in mGal.
An optional ``component`` column names each row's gravity component (absent: ``gz``);
the data column (``gz`` or ``data``) then holds each row's value in its unit: ``gx``,
``gy``, ``gz`` in mGal (``gz`` positive downward), the gradients ``gxx`` … ``gzz``,
``guv`` in Eötvös (z up, SimPEG's signs: ``gzz`` positive above excess mass).
Headers may state other units in brackets (``z (ft)``, ``gz [uGal]``), converted on
reading (:data:`LENGTH_UNITS`, :data:`GRAVITY_UNITS`, :data:`GRADIENT_UNITS`).
:func:`write_csv` states the units and the sign in a leading comment line, and the CRS
of the survey in a ``# crs:`` line.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from .._components import ACCELERATIONS, check_component
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

_CSV_HEADER_COMMENT = (
    "# gempy_gravinv stations: x, y, z in metres (z up, elevation); "
    "gz = gravity anomaly in mGal, positive downward (excess mass below -> positive); "
    "std in mGal"
)
_CSV_COMPONENT_COMMENT = (
    "# gempy_gravinv stations: x, y, z in metres (z up, elevation); component = gravity component of the row; "
    "data and std in its unit: gx, gy, gz in mGal (gz positive downward: excess mass below -> positive), "
    "gxx, gxy, gxz, gyy, gyz, gzz, guv in Eotvos (z up, SimPEG's signs: gzz positive above excess mass)"
)

#: length units of x, y, z headers -> metres
LENGTH_UNITS = {"m": 1.0, "metre": 1.0, "metres": 1.0, "meter": 1.0, "meters": 1.0,
                "km": 1000.0, "ft": 0.3048, "feet": 0.3048, "foot": 0.3048}
#: gravity units of gz / std headers -> mGal (1 gu = 1 µm/s² = 0.1 mGal)
GRAVITY_UNITS = {"mgal": 1.0, "ugal": 1e-3, "µgal": 1e-3, "μgal": 1e-3, "microgal": 1e-3,
                 "m/s2": 1e5, "m/s^2": 1e5, "m/s²": 1e5, "m s-2": 1e5, "m.s-2": 1e5, "ms-2": 1e5,
                 "gu": 0.1, "g.u.": 0.1}
#: units of a gradient data column (with a component column) -> Eötvös (1 E = 1e-9 s⁻²)
GRADIENT_UNITS = {"e": 1.0, "eu": 1.0, "eotvos": 1.0, "eötvös": 1.0, "1/s2": 1e9, "s-2": 1e9, "1/s²": 1e9,
                  "mgal/m": 1e4, "mgal/km": 10.0}
_CRS_COMMENT = "# crs:"

# accepted column names (lower case, units in brackets/parentheses stripped)
_ALIASES = {
    "x": ("x", "easting", "east", "e", "lon", "longitude"),
    "y": ("y", "northing", "north", "n", "lat", "latitude"),
    "z": ("z", "elevation", "elev", "height"),
    "gz": ("gz", "g_z", "grav", "gravity", "gz_mgal", "data"),
    "std": ("std", "sigma", "uncertainty", "err", "error", "std_mgal"),
    "component": ("component", "comp"),
}


def read_csv(path: PathLike) -> Survey:
    """Read stations (and data) from a CSV or whitespace-delimited text file.

    Parameters
    ----------
    path : str or path-like
        UTF-8 text file (a byte order mark is ignored) with columns ``x, y, z[, gz[, std]]``.
        Delimiter: semicolon when the first data line holds one (then a comma inside a value
        is a decimal mark, ``25,5`` = 25.5, as in European spreadsheet exports), else comma
        when it holds one, whitespace otherwise. Values and names may be in double quotes.
        ``#`` starts a comment. A header row
        is optional; with one, columns are matched by name (case-insensitive; aliases
        ``easting/northing/elevation``, ``sigma/err``) and other columns are ignored.
        Units in brackets are converted: ``m``, ``ft``, ``km`` for x, y, z; ``mGal``,
        ``uGal``/``µGal``, ``m/s²``, ``gu`` (0.1 mGal) for gz and std, e.g.
        ``x (m),y (m),z (ft),gz (uGal),std (uGal)``; any other unit (``nT``...) is
        refused naming the column. Without units: metres and mGal. An optional
        ``component`` column (text: ``gz``, ``gzz``...; needs a header) names each row's
        component; the data and std of gradient rows are in Eötvös (header units
        ``E``/``Eötvös`` or ``1/s²`` are accepted when every row is a gradient). Without a header,
        3, 4 or 5 columns are read as ``x, y, z``, ``+ gz``, ``+ std``; a first column that
        counts the rows (``0..n-1`` or ``1..n``: a station id) is refused. A comment line
        ``# crs: EPSG:25830`` (as :func:`write_csv` writes) sets ``Survey.crs``.

    Returns
    -------
    Survey
        Stations in metres (z up); ``gz`` in mGal, **positive downward** (no sign change
        is applied: the file must already use this convention); ``std`` in mGal. With a
        component column, ``Survey.components`` holds it and the data are in each row's
        unit (mGal or Eötvös).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Empty file, text that is not UTF-8, missing x/y/z columns, unknown units (or units
        that do not fit the rows' components), ragged rows, non-numeric or NaN values,
        non-positive std, an unknown component (its line named), a headerless file whose
        first column looks like a station id.
    """
    p = as_path(path)
    lines = data_lines(p, "#")
    crs = _crs_comment(p)
    if not lines:
        raise ValueError(f"{p} is empty (no data lines after comments)")
    delim = ";" if ";" in lines[0][1] else "," if "," in lines[0][1] else None

    def split(line: str, values: bool = True) -> list[str]:
        tok = [_unquote(t) for t in (line.split(delim) if delim else line.split())]
        if delim == ";" and values:  # decimal comma
            tok = [t.replace(",", ".") if t.count(",") == 1 and "." not in t else t for t in tok]
        return tok

    first = split(lines[0][1])
    try:
        [float(t) for t in first]
        header = None
    except ValueError:
        header = split(lines[0][1], values=False)
        lines = lines[1:]
    if not lines:
        raise ValueError(f"{p} has a header but no data rows")

    if header is None:
        ncol = len(first)
        ids = _row_counter(lines, split)
        if ncol not in (3, 4, 5):
            hint = "" if ids is None else f" (the first column, {ids}, looks like a station id)"
            raise ValueError(
                f"{p}: {ncol} columns without a header{hint}; expected 3 (x, y, z), 4 (+ gz) or "
                "5 (+ std), or add a header row naming the columns"
            )
        if ids is not None and len(lines) >= 3:
            raise ValueError(
                f"{p}, line {lines[0][0]}: the first column of this headerless file counts the rows ({ids}), "
                "which looks like a station id, not an x coordinate; add a header row naming the columns "
                "(e.g. id,x,y,z,gz,std)"
            )
        names = ["x", "y", "z", "gz", "std"][:ncol]
        cols = list(range(ncol))
        factors = [1.0] * ncol
        comp_col = None
    else:
        names, cols, factors = _header_columns(header, p)
        ncol = len(header)
        comp_col = cols.pop(names.index("component")) if "component" in names else None
        if comp_col is not None:
            factors.pop(names.index("component"))
            names.remove("component")

    rows, linenos, comps = [], [], []
    for lineno, line in lines:
        tok = split(line)
        if len(tok) != ncol:
            raise ValueError(f"{p}, line {lineno}: {len(tok)} values, expected {ncol}")
        sel = [tok[c] for c in cols]
        rows.append(parse_floats(sel, p, lineno))
        linenos.append(lineno)
        if comp_col is not None:
            comps.append(_component(tok[comp_col], p, lineno))
    arr = np.asarray(rows, dtype=np.float64)
    check_finite_columns(arr, names, p, linenos)
    if header is not None:  # units of the data columns against the rows' components (all gz without a column)
        factors = _data_factors(header, names, cols, factors, comps or ["gz"] * len(rows), p)
    if any(f != 1.0 for f in factors):
        arr = arr * np.asarray(factors)
        logger.info("%s: converted columns to metres / mGal (factors %s)", p,
                    dict(zip(names, factors)))
    gz = arr[:, names.index("gz")] if "gz" in names else None
    std = arr[:, names.index("std")] if "std" in names else None
    if crs is None and header is not None and _names_degrees(header):  # lon/lat columns: WGS84 degrees
        crs = "OGC:CRS84"
    logger.debug("read %d station(s) from %s (columns %s)", arr.shape[0], p, names)
    return Survey(arr[:, :3], gz=gz, std=std, name=p.stem, crs=crs, components=comps or None)


def _unquote(token: str) -> str:
    """A token without surrounding blanks and one pair of surrounding double quotes."""
    t = token.strip()
    if len(t) >= 2 and t[0] == t[-1] == '"':
        t = t[1:-1].strip()
    return t


def _row_counter(lines: list[tuple[int, str]], split) -> str | None:
    """``"0..n-1"`` or ``"1..n"`` (as numbers) when the first column counts the rows, else ``None``."""
    try:
        first = np.array([float(split(line)[0]) for _, line in lines])
    except (ValueError, IndexError):
        return None
    n = first.size
    for start in (0, 1):
        if n >= 2 and np.array_equal(first, np.arange(start, start + n)):
            return f"{start}..{start + n - 1}"
    return None


def _component(token: str, p: Path, lineno: int) -> str:
    """A component name of the component column (case and quotes ignored), or an error naming the line."""
    name = token.strip().strip('"').strip("'").lower()
    try:
        return check_component(name)
    except ValueError as exc:
        raise ValueError(f"{p}, line {lineno}: {exc}") from None


def _data_factors(header: list[str], names: list[str], cols: list[int], factors: list[float], comps: list[str],
                  p: Path) -> list[float]:
    """Unit factors of the gz/std columns checked against the rows' components (mGal or Eötvös)."""
    grads = [c for c in comps if c not in ACCELERATIONS]
    out = list(factors)
    for k, key in enumerate(names):
        if key not in ("gz", "std"):
            continue
        m = re.search(r"[\[(]([^\])]*)[\])]", header[cols[k]])
        unit = "" if m is None else m.group(1).strip().lower()
        if unit == "":
            continue
        if unit in GRADIENT_UNITS:
            if len(grads) != len(comps):
                raise ValueError(f"{p}: column {header[cols[k]].strip()!r} is in a gradient unit but some rows are "
                                 f"accelerations ({', '.join(sorted(set(comps) - set(grads)))}, mGal): give the "
                                 "column without a unit (each row in its component's unit: mGal or Eötvös)")
            out[k] = GRADIENT_UNITS[unit]
        elif grads:
            raise ValueError(f"{p}: column {header[cols[k]].strip()!r} is in {m.group(1).strip()} but rows hold "
                             f"gradients ({', '.join(sorted(set(grads)))}, Eötvös): give the column without a unit "
                             "(each row in its component's unit: mGal or Eötvös)")
    return out


def _crs_comment(p: Path) -> str | None:
    """The CRS named in a ``# crs: ...`` comment line anywhere in the file, or ``None``."""
    try:
        with open(p, encoding="utf-8-sig", errors="replace") as fh:
            for raw in fh:
                line = raw.strip()
                if line.lower().startswith(_CRS_COMMENT):
                    return line[len(_CRS_COMMENT):].strip() or None
    except OSError:  # pragma: no cover - the file was just read
        return None
    return None


def _bare_names(header: list[str]) -> list[str]:
    """Header names in lower case without their unit (``"Z (ft)"`` -> ``"z"``)."""
    return [re.split(r"[\[(]", h, maxsplit=1)[0].strip().lower() for h in header]


def _names_degrees(header: list[str]) -> bool:
    """Whether the header names its x, y columns longitude and latitude."""
    norm = set(_bare_names([h.strip().strip('"') for h in header]))
    return bool(norm & {"lon", "longitude"}) and bool(norm & {"lat", "latitude"})


def _unit_factor(header: str, key: str, p: Path) -> float:
    """Factor from the unit in brackets of a header (``z (ft)``) to metres / mGal; 1 without one."""
    m = re.search(r"[\[(]([^\])]*)[\])]", header)
    if m is None:
        return 1.0
    unit = m.group(1).strip().lower()
    table, want = (LENGTH_UNITS, "m, ft, km") if key in ("x", "y", "z") else (
        GRAVITY_UNITS, "mGal, uGal/µGal, m/s², gu")
    if unit == "" or key == "component":
        return 1.0
    if key in ("gz", "std") and unit in GRADIENT_UNITS:  # checked against the component column
        return 1.0
    if unit not in table:
        raise ValueError(f"{p}: column {header.strip()!r}: unknown unit {m.group(1).strip()!r} for {key} "
                         f"(accepted: {want})")
    return table[unit]


def _header_columns(header: list[str], p: Path) -> tuple[list[str], list[int], list[float]]:
    """Match header names to ``x, y, z, gz, std``; return (names, column indices, unit factors)."""
    clean = [h.strip().strip('"').strip("'") for h in header]
    norm = _bare_names(clean)
    names, cols, factors = [], [], []
    for key, aliases in _ALIASES.items():
        hits = [i for i, h in enumerate(norm) if h in aliases]
        if len(hits) > 1:
            raise ValueError(f"{p}: several columns match {key!r}: {[header[i] for i in hits]}")
        if hits:
            names.append(key)
            cols.append(hits[0])
            factors.append(_unit_factor(clean[hits[0]], key, p))
    missing = [k for k in ("x", "y", "z") if k not in names]
    if missing:
        raise ValueError(
            f"{p}: missing column(s) {missing} (header: {header}); "
            "need x, y, z [, component] [, gz [, std]] in metres / mGal"
        )
    if "std" in names and "gz" not in names:
        raise ValueError(f"{p}: a std column without a data column (header: {header}); name the data column one "
                         f"of {', '.join(_ALIASES['gz'])} (g_z in mGal, positive down: a Bouguer anomaly's sign)")
    return names, cols, factors


def write_csv(path: PathLike, survey_or_locations, gz=None, std=None) -> Path:
    """Write stations (and data) as CSV with a comment line stating units and sign.

    A survey with components other than ``gz`` gets the columns
    ``x,y,z,component[,data[,std]]`` (each row in its component's unit: mGal or Eötvös);
    a g_z survey keeps ``x,y,z[,gz[,std]]``.

    Parameters
    ----------
    path : str or path-like
        Output file (overwritten).
    survey_or_locations : Survey or array_like, shape (n, 3)
        Stations in metres, z up.
    gz : array_like, shape (n,), optional
        g_z in mGal, **positive downward** (other components: each datum in its unit);
        replaces the survey's data when given (e.g. predicted data).
    std : float or array_like, optional
        Standard deviations in mGal / Eötvös (requires data).

    Returns
    -------
    pathlib.Path
        The written file. Columns: ``x,y,z[,gz[,std]]`` or ``x,y,z,component[,data[,std]]``,
        full float precision; a ``# crs: ...`` comment line when the survey carries a CRS.
    """
    s = survey_with_data(survey_or_locations, gz, std)
    p = as_path(path, must_exist=False)
    names = ["x", "y", "z"]
    cols = [s.locations[:, 0], s.locations[:, 1], s.locations[:, 2]]
    mixed = not s.is_gz_only
    if mixed:
        names.append("component")
        cols.append(s.components)
    if s.has_data:
        names.append("data" if mixed else "gz")
        cols.append(s.gz)
        if s.std is not None:
            names.append("std")
            cols.append(s.std)
    with open(p, "w") as fh:
        fh.write((_CSV_COMPONENT_COMMENT if mixed else _CSV_HEADER_COMMENT) + "\n")
        if getattr(s, "crs", None):
            fh.write(f"{_CRS_COMMENT} {' '.join(str(s.crs).split())}\n")
        fh.write(",".join(names) + "\n")
        for row in zip(*cols):
            fh.write(",".join(v if isinstance(v, str) else format_float(v) for v in row) + "\n")
    logger.debug("wrote %d station(s) to %s (columns %s)", s.n_data, p, names)
    return p
