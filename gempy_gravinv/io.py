"""Readers and writers for stations, gravity data, meshes and density models.

Formats
-------
- **CSV stations** (:func:`read_csv`, :func:`write_csv`): columns ``x, y, z, gz[, std]``;
  metres (z up, elevation), g_z in mGal **positive downward** (our sign), std in mGal.
- **UBC-GIF GRAV3D observations** (:func:`read_ubc_obs`, :func:`write_ubc_obs`): the
  survey / predicted-data / observations files of ``gzfor3d`` and ``gzinv3d``.
  GRAV3D data are the gravity anomaly in mGal produced by a density contrast in g/cm³,
  positive for excess mass: **the same sign as ours**, so nothing is flipped here.
  (SimPEG's ``read_grav3d_ubc`` multiplies the data by -1 on reading and
  ``write_grav3d_ubc`` by -1 on writing because SimPEG stores the upward component.)
- **UBC-GIF meshes and models** (:func:`read_ubc_mesh`, :func:`read_ubc_model`,
  :func:`write_ubc_model`): tensor and OcTree meshes through discretize
  (``TensorMesh.read_UBC`` / ``TreeMesh.read_UBC``, ``read_model_UBC``,
  ``write_model_UBC``), which handle the UBC cell order (z fastest from the top,
  then easting, then northing). Values come back in the file's units (g/cm³ for GRAV3D
  density models) in discretize's cell order; convert with
  :func:`model_to_contrast_kgm3`.
- **GeoJSON point stations** (:func:`read_geojson`): a FeatureCollection of Points in a
  projected CRS in metres.

Inactive cells in UBC models
----------------------------
GRAV3D writes ``-100`` in the cells it removed (above topography) and GIFtools uses the
no-data value ``-99999``. Neither is a plausible density (g/cm³), so by default
:func:`read_ubc_model` turns values equal to ``-100`` or ``-99999`` (and NaN) into NaN,
meaning *inactive*; :func:`write_ubc_model` writes NaN as ``-99999``. Pass
``no_data=()`` to keep every value as it is.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ._constants import gcc_to_kgm3
from ._survey import Survey

__all__ = [
    "read_csv",
    "write_csv",
    "read_ubc_obs",
    "write_ubc_obs",
    "read_stations",
    "read_ubc_mesh",
    "read_ubc_model",
    "write_ubc_model",
    "model_to_contrast_kgm3",
    "read_geojson",
    "UBC_NO_DATA",
]

PathLike = str | os.PathLike

#: Values marking inactive cells in UBC-GIF model files (GRAV3D output, GIFtools).
UBC_NO_DATA: tuple[float, ...] = (-99999.0, -100.0)

_CSV_HEADER_COMMENT = (
    "# gempy_gravinv stations: x, y, z in metres (z up, elevation); "
    "gz = gravity anomaly in mGal, positive downward (excess mass below -> positive); "
    "std in mGal"
)

# accepted CSV column names (lower case, units in brackets/parentheses stripped)
_ALIASES = {
    "x": ("x", "easting", "east", "e"),
    "y": ("y", "northing", "north", "n"),
    "z": ("z", "elevation", "elev", "height"),
    "gz": ("gz", "g_z", "grav", "gravity", "gz_mgal", "data"),
    "std": ("std", "sigma", "uncertainty", "err", "error", "std_mgal"),
}


# ---------------------------------------------------------------------- helpers
def _path(path: PathLike, *, must_exist: bool = True) -> Path:
    p = Path(os.fspath(path))
    if must_exist:
        if not p.exists():
            raise FileNotFoundError(f"no such file: {p}")
        if p.is_dir():
            raise ValueError(f"{p} is a directory, a file was expected")
    return p


def _data_lines(path: Path, comment: str) -> list[tuple[int, str]]:
    """Non-empty lines with comments stripped, as (1-based line number, text)."""
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not a text file ({exc.reason})") from exc
    out = []
    for i, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(comment, 1)[0].strip()
        if line:
            out.append((i, line))
    return out


def _parse_floats(tokens: Sequence[str], path: Path, lineno: int) -> list[float]:
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


def _check_finite(arr: np.ndarray, names: Sequence[str], path: Path, linenos: Sequence[int]) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(
            f"{path}, line {linenos[r]}: column {names[c]!r} is NaN/inf "
            f"({int(bad.sum())} non-finite value(s) in the file)"
        )


def _fmt(v: float) -> str:
    return repr(float(v))


def _survey_columns(survey_or_locations, gz=None, std=None) -> Survey:
    if isinstance(survey_or_locations, Survey):
        s = survey_or_locations
        if gz is None and std is None:
            return s
        if gz is None:
            s.require_data()
            gz = s.gz
        return s.with_data(gz, std)
    return Survey(survey_or_locations, gz=gz, std=std)


# ---------------------------------------------------------------------- CSV
def read_csv(path: PathLike) -> Survey:
    """Read stations (and data) from a CSV or whitespace-delimited text file.

    Parameters
    ----------
    path : str or path-like
        Text file with columns ``x, y, z[, gz[, std]]``. Delimiter: comma when the first
        data line holds one, whitespace otherwise. ``#`` starts a comment. A header row
        is optional; with one, columns are matched by name (case-insensitive, units in
        brackets ignored, e.g. ``gz (mGal)``; aliases ``easting/northing/elevation``,
        ``sigma/err``) and other columns are ignored. Without one, 3, 4 or 5 columns
        are read as ``x, y, z``, ``+ gz``, ``+ std``.

    Returns
    -------
    Survey
        Stations in metres (z up); ``gz`` in mGal, **positive downward** (no sign change
        is applied: the file must already use this convention); ``std`` in mGal.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Empty file, missing x/y/z columns, ragged rows, non-numeric or NaN values,
        non-positive std.
    """
    p = _path(path)
    lines = _data_lines(p, "#")
    if not lines:
        raise ValueError(f"{p} is empty (no data lines after comments)")
    delim = "," if "," in lines[0][1] else None

    def split(line: str) -> list[str]:
        return line.split(",") if delim else line.split()

    first = split(lines[0][1])
    try:
        [float(t) for t in first]
        header = None
    except ValueError:
        header = first
        lines = lines[1:]
    if not lines:
        raise ValueError(f"{p} has a header but no data rows")

    if header is None:
        ncol = len(first)
        if ncol not in (3, 4, 5):
            raise ValueError(
                f"{p}: {ncol} columns without a header; expected 3 (x, y, z), 4 (+ gz) or "
                "5 (+ std), or add a header row naming the columns"
            )
        names = ["x", "y", "z", "gz", "std"][:ncol]
        cols = list(range(ncol))
    else:
        norm = [re.split(r"[\[(]", h, maxsplit=1)[0].strip().strip('"').strip("'").lower() for h in header]
        names, cols = [], []
        for key, aliases in _ALIASES.items():
            hits = [i for i, h in enumerate(norm) if h in aliases]
            if len(hits) > 1:
                raise ValueError(f"{p}: several columns match {key!r}: {[header[i] for i in hits]}")
            if hits:
                names.append(key)
                cols.append(hits[0])
        missing = [k for k in ("x", "y", "z") if k not in names]
        if missing:
            raise ValueError(
                f"{p}: missing column(s) {missing} (header: {header}); "
                "need x, y, z [, gz [, std]] in metres / mGal"
            )
        if "std" in names and "gz" not in names:
            raise ValueError(f"{p}: a std column without a gz column")
        ncol = len(header)

    rows, linenos = [], []
    for lineno, line in lines:
        tok = split(line)
        if len(tok) != ncol:
            raise ValueError(f"{p}, line {lineno}: {len(tok)} values, expected {ncol}")
        sel = [tok[c] for c in cols]
        rows.append(_parse_floats(sel, p, lineno))
        linenos.append(lineno)
    arr = np.asarray(rows, dtype=np.float64)
    _check_finite(arr, names, p, linenos)
    gz = arr[:, names.index("gz")] if "gz" in names else None
    std = arr[:, names.index("std")] if "std" in names else None
    return Survey(arr[:, :3], gz=gz, std=std, name=p.stem)


def write_csv(path: PathLike, survey_or_locations, gz=None, std=None) -> Path:
    """Write stations (and data) as CSV with a comment line stating units and sign.

    Parameters
    ----------
    path : str or path-like
        Output file (overwritten).
    survey_or_locations : Survey or array_like, shape (n, 3)
        Stations in metres, z up.
    gz : array_like, shape (n,), optional
        g_z in mGal, **positive downward**; replaces the survey's data when given
        (e.g. predicted data).
    std : float or array_like, optional
        Standard deviations in mGal (requires data).

    Returns
    -------
    pathlib.Path
        The written file. Columns: ``x,y,z[,gz[,std]]``, full float precision.
    """
    s = _survey_columns(survey_or_locations, gz, std)
    p = _path(path, must_exist=False)
    names = ["x", "y", "z"]
    cols = [s.locations[:, 0], s.locations[:, 1], s.locations[:, 2]]
    if s.has_data:
        names.append("gz")
        cols.append(s.gz)
        if s.std is not None:
            names.append("std")
            cols.append(s.std)
    with open(p, "w") as fh:
        fh.write(_CSV_HEADER_COMMENT + "\n")
        fh.write(",".join(names) + "\n")
        for row in zip(*cols):
            fh.write(",".join(_fmt(v) for v in row) + "\n")
    return p


# ---------------------------------------------------------------------- UBC GRAV3D obs
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
    ValueError
        Empty file, a first line that is not a count, a count that does not match the
        rows, rows with other than 3-5 columns or mixed column counts, NaN values.
    """
    p = _path(path)
    lines = _data_lines(p, "!")
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
        rows.append(_parse_floats(t, p, ln))
        linenos.append(ln)
    arr = np.asarray(rows, dtype=np.float64)
    _check_finite(arr, ["E", "N", "ELEV", "Grav", "Err"][:ncol], p, linenos)
    gz = arr[:, 3] if ncol >= 4 else None
    std = arr[:, 4] if ncol == 5 else None
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
    """
    s = _survey_columns(survey, gz, std)
    p = _path(path, must_exist=False)
    cols = [s.locations]
    if s.has_data:
        cols.append(s.gz[:, None])
        if s.std is not None:
            cols.append(s.std[:, None])
    arr = np.hstack(cols)
    with open(p, "w") as fh:
        fh.write(f"{s.n_data}\n")
        for row in arr:
            fh.write(" ".join(_fmt(v) for v in row) + "\n")
    return p


def _looks_like_ubc_obs(p: Path) -> bool:
    lines = _data_lines(p, "!")
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


def read_stations(path: PathLike, format: str = "auto") -> Survey:
    """Read stations from CSV or a UBC-GIF GRAV3D file, chosen by extension or content.

    Parameters
    ----------
    path : str or path-like
        The file.
    format : {"auto", "csv", "ubc"}
        ``"auto"``: ``.csv`` -> CSV; ``.obs``/``.grv``/``.dat``/``.txt``/other: GRAV3D when
        the first data line is a single integer count followed by 3-5 numeric columns,
        else CSV. ``.geojson``/``.json`` -> :func:`read_geojson` with default arguments.

    Returns
    -------
    Survey
        Stations in metres (z up), g_z in mGal positive downward.
    """
    p = _path(path)
    if format not in ("auto", "csv", "ubc"):
        raise ValueError(f"format must be 'auto', 'csv' or 'ubc', got {format!r}")
    if format == "csv":
        return read_csv(p)
    if format == "ubc":
        return read_ubc_obs(p)
    ext = p.suffix.lower()
    if ext in (".geojson", ".json"):
        return read_geojson(p)
    if ext == ".csv":
        return read_csv(p)
    return read_ubc_obs(p) if _looks_like_ubc_obs(p) else read_csv(p)


# ---------------------------------------------------------------------- UBC mesh / model
def _is_octree_mesh_file(p: Path) -> bool:
    lines = [line for _, line in _data_lines(p, "!")]
    if len(lines) < 5:
        return False
    tok = lines[3].split()
    if len(tok) != 1 or not re.fullmatch(r"\d+", tok[0]):
        return False
    n = int(tok[0])
    return len(lines) == 4 + n and all(len(line.split()) == 4 for line in lines[4:9])


def read_ubc_mesh(path: PathLike):
    """Read a UBC-GIF 3-D tensor or OcTree mesh file with discretize.

    Parameters
    ----------
    path : str or path-like
        UBC mesh file (``!`` comments allowed). OcTree files are recognised by their
        fourth line (the number of cells) and the ``i j k size`` rows that follow.

    Returns
    -------
    discretize.TensorMesh or discretize.TreeMesh
        The mesh in metres, z up (discretize moves UBC's top-south-west origin to the
        bottom). Wrap it with :meth:`gempy_gravinv.PrismMesh.from_discretize`.

    Raises
    ------
    ValueError
        Empty file or a file discretize cannot parse as a 3-D UBC mesh.
    """
    import discretize

    p = _path(path)
    lines = _data_lines(p, "!")
    if not lines:
        raise ValueError(f"{p} is empty: not a UBC mesh file")
    head = lines[0][1].split()
    try:
        [int(t) for t in head[:3]]
    except ValueError:
        raise ValueError(
            f"{p}, line {lines[0][0]}: not a UBC mesh file (the first line must give the "
            f"number of cells nx ny nz), got {lines[0][1]!r}"
        ) from None
    if len(head) < 3 or len(lines) < 5:
        raise ValueError(f"{p}: not a 3-D UBC mesh file (needs nx ny nz, origin and 3 width lines)")
    try:
        if _is_octree_mesh_file(p):
            mesh = discretize.TreeMesh.read_UBC(str(p))
        else:
            mesh = discretize.TensorMesh.read_UBC(str(p))
            n_expected = [int(t) for t in head[:3]]
            if list(mesh.shape_cells) != n_expected:
                raise ValueError(
                    f"cell widths give {list(mesh.shape_cells)} cells, the first line says {n_expected}"
                )
    except ValueError as exc:
        raise ValueError(f"{p}: cannot read as a UBC mesh: {exc}") from None
    except Exception as exc:  # discretize raises bare Exception / IndexError on bad files
        raise ValueError(f"{p}: cannot read as a UBC mesh ({type(exc).__name__}: {exc})") from None
    if mesh.dim != 3:
        raise ValueError(f"{p}: a 3-D mesh is required, got {mesh.dim}-D")
    return mesh


def read_ubc_model(path: PathLike, mesh, *, no_data: Iterable[float] = UBC_NO_DATA) -> np.ndarray:
    """Read a UBC-GIF model file on a tensor or OcTree mesh (discretize does the ordering).

    Parameters
    ----------
    path : str or path-like
        One value per cell in UBC order (``!`` comments and blank lines allowed).
    mesh : discretize.TensorMesh or discretize.TreeMesh
        The mesh the model lives on (e.g. from :func:`read_ubc_mesh`).
    no_data : iterable of float
        Values meaning *inactive cell*; returned as NaN. Default ``(-99999, -100)``
        (GIFtools' no-data value and GRAV3D's removed cells). ``()`` keeps all values.

    Returns
    -------
    ndarray, shape (mesh.n_cells,)
        Model in discretize's cell order, **in the file's units** (g/cm³ for GRAV3D
        density; see :func:`model_to_contrast_kgm3`), NaN in inactive cells. Active cells
        are ``np.isfinite(model)``.

    Raises
    ------
    ValueError
        Empty file, non-numeric values, or a value count that differs from the mesh.
    """
    import discretize

    p = _path(path)
    if not isinstance(mesh, (discretize.TensorMesh, discretize.TreeMesh)) or mesh.dim != 3:
        raise TypeError(f"mesh must be a 3-D discretize TensorMesh or TreeMesh, got {type(mesh).__name__}")
    lines = _data_lines(p, "!")
    if not lines:
        raise ValueError(f"{p} is empty: not a UBC model file")
    values = []
    clean = True
    for ln, line in lines:
        tok = line.split()
        clean &= len(tok) == 1
        values.extend(_parse_floats(tok, p, ln))
    if len(values) != mesh.n_cells:
        raise ValueError(f"{p} holds {len(values)} values but the mesh has {mesh.n_cells} cells")
    raw = p.read_text()
    clean &= "!" not in raw and all(line.strip() for line in raw.splitlines())
    if clean:
        model = np.asarray(mesh.read_model_UBC(str(p)), dtype=np.float64)
    else:  # discretize's reader wants one bare value per line: hand it a cleaned copy
        with tempfile.TemporaryDirectory() as td:
            tmp = Path(td) / "model.txt"
            np.savetxt(tmp, np.asarray(values))
            model = np.asarray(mesh.read_model_UBC(str(tmp)), dtype=np.float64)
    model = model.copy()
    for v in no_data:
        model[model == float(v)] = np.nan
    model[~np.isfinite(model)] = np.nan
    return model


def write_ubc_model(path: PathLike, mesh, values, *, no_data: float = UBC_NO_DATA[0]) -> Path:
    """Write a model to a UBC-GIF model file (discretize does the ordering).

    Parameters
    ----------
    path : str or path-like
        Output file (overwritten).
    mesh : discretize.TensorMesh or discretize.TreeMesh
        The mesh, 3-D.
    values : array_like, shape (mesh.n_cells,)
        Model in discretize's cell order, in the units the file should carry (g/cm³ for
        GRAV3D density). NaN marks inactive cells and is written as ``no_data``.
    no_data : float
        Value written for NaN cells (default ``-99999``).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    import discretize

    if not isinstance(mesh, (discretize.TensorMesh, discretize.TreeMesh)) or mesh.dim != 3:
        raise TypeError(f"mesh must be a 3-D discretize TensorMesh or TreeMesh, got {type(mesh).__name__}")
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.shape[0] != mesh.n_cells:
        raise ValueError(f"values has {v.shape[0]} entries but the mesh has {mesh.n_cells} cells")
    if np.isinf(v).any():
        raise ValueError("values contains inf; use NaN for inactive cells")
    v = np.where(np.isnan(v), float(no_data), v)
    p = _path(path, must_exist=False)
    mesh.write_model_UBC(str(p), v)
    return p


def model_to_contrast_kgm3(model_gcc, reference_gcc: float = 0.0) -> np.ndarray:
    """Convert a density model in g/cm³ to a density contrast in kg/m³.

    Parameters
    ----------
    model_gcc : array_like
        Density (absolute or contrast) in g/cm³, e.g. from :func:`read_ubc_model`.
    reference_gcc : float
        Reference density subtracted first, g/cm³ (0 for a model that already is a
        contrast; e.g. 2.67 for absolute densities against a Bouguer reduction density).

    Returns
    -------
    ndarray
        ``(model_gcc - reference_gcc)`` in kg/m³ (NaN stays NaN).
    """
    if not math.isfinite(float(reference_gcc)):
        raise ValueError(f"reference density must be finite (g/cm³), got {reference_gcc}")
    return gcc_to_kgm3(np.asarray(model_gcc, dtype=np.float64) - float(reference_gcc))


# ---------------------------------------------------------------------- GeoJSON
_GEOGRAPHIC_CODES = {
    "4326", "4258", "4269", "4267", "4230", "4171", "4283", "4617", "4674", "4612",
    "6318", "4979", "4937", "4619", "4322", "4148", "4152", "4167", "4301", "4668",
}


def _crs_name(doc: dict) -> str | None:
    crs = doc.get("crs")
    if crs is None:
        return None
    if isinstance(crs, dict):
        props = crs.get("properties") or {}
        name = props.get("name") or props.get("href") or props.get("code")
        if name is not None:
            return str(name)
    return str(crs)


def _crs_is_geographic(name: str) -> bool:
    u = name.upper()
    if re.search(r"CRS(84|83|27)\b", u):
        return True
    if "EPSG" not in u:
        return False
    codes = re.findall(r"\d+", u.split("EPSG", 1)[1])
    return bool(codes) and codes[-1] in _GEOGRAPHIC_CODES


def read_geojson(path: PathLike, value_property: str | None = None, std=None,
                 z: float | str = 0.0) -> Survey:
    """Read gravity stations from a GeoJSON FeatureCollection of Points.

    Parameters
    ----------
    path : str or path-like
        GeoJSON file. Coordinates must be in a **projected CRS in metres** (e.g. UTM).
        A ``crs`` member naming a geographic CRS (EPSG:4326, CRS84, ETRS89, NAD83, ...)
        is an error; so is a file without ``crs`` whose coordinates all fit in
        longitude/latitude ranges (RFC 7946 GeoJSON is WGS84 lon/lat by default).
    value_property : str, optional
        Feature property holding g_z in mGal, **positive downward** (excess mass
        positive, as Bouguer anomalies are). ``None``: stations only.
    std : float or str, optional
        Standard deviation in mGal: a number for all stations, or a property name.
    z : float or str
        Station elevation (m) for points without a third coordinate: a number, or a
        property name. Points with ``[x, y, z]`` coordinates use their own z.

    Returns
    -------
    Survey
        Stations in metres (z up), g_z in mGal positive downward; ``name`` is the
        collection's ``name`` (or the file name).

    Raises
    ------
    ValueError
        Not a FeatureCollection, non-Point geometries, geographic coordinates, missing or
        non-numeric properties, NaN values, mixed 2-D/3-D coordinates.
    """
    p = _path(path)
    try:
        doc = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        got = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{p}: a GeoJSON FeatureCollection is required, got type {got!r}")
    feats = doc.get("features") or []
    if not feats:
        raise ValueError(f"{p}: the FeatureCollection has no features")
    crs = _crs_name(doc)
    if crs is not None and _crs_is_geographic(crs):
        raise ValueError(
            f"{p}: CRS {crs} is geographic (degrees); stations must be in a projected CRS in "
            "metres (e.g. UTM): reproject the file first"
        )

    xy, zs, vals, stds = [], [], [], []
    dims = set()

    def prop(props: dict, key: str, i: int, what: str) -> float:
        if key not in props:
            avail = sorted(props)
            raise ValueError(f"{p}: feature {i} has no property {key!r} ({what}); properties: {avail}")
        v = props[key]
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{p}: feature {i}, property {key!r} = {v!r} is not a number") from None
        if not math.isfinite(f):
            raise ValueError(f"{p}: feature {i}, property {key!r} is NaN/inf")
        return f

    for i, f in enumerate(feats):
        geom = (f or {}).get("geometry") or {}
        if geom.get("type") != "Point":
            raise ValueError(f"{p}: feature {i} has geometry {geom.get('type')!r}; only Points are supported")
        c = geom.get("coordinates") or []
        if len(c) not in (2, 3):
            raise ValueError(f"{p}: feature {i} has {len(c)} coordinates; [x, y] or [x, y, z] expected")
        dims.add(len(c))
        props = f.get("properties") or {}
        try:
            xy.append([float(c[0]), float(c[1])])
        except (TypeError, ValueError):
            raise ValueError(f"{p}: feature {i} has non-numeric coordinates {c!r}") from None
        if len(c) == 3:
            zs.append(float(c[2]))
        elif isinstance(z, str):
            zs.append(prop(props, z, i, "elevation"))
        else:
            zs.append(float(z))
        if value_property is not None:
            vals.append(prop(props, value_property, i, "g_z"))
        if isinstance(std, str):
            stds.append(prop(props, std, i, "std"))
    if len(dims) > 1:
        raise ValueError(f"{p}: features mix [x, y] and [x, y, z] coordinates")
    xy_arr = np.asarray(xy)
    if not np.all(np.isfinite(xy_arr)):
        raise ValueError(f"{p}: coordinates contain NaN/inf")
    if crs is None:
        if np.all(np.abs(xy_arr[:, 0]) <= 180) and np.all(np.abs(xy_arr[:, 1]) <= 90):
            raise ValueError(
                f"{p}: no 'crs' member and all coordinates fit longitude/latitude ranges; RFC 7946 "
                "GeoJSON is WGS84 degrees. Reproject to a projected CRS in metres (e.g. UTM) and "
                "name it in a 'crs' member"
            )
        warnings.warn(f"{p}: no 'crs' member; assuming projected coordinates in metres", stacklevel=2)
    loc = np.column_stack([xy_arr, np.asarray(zs, dtype=float)])
    if isinstance(std, str):
        std_v: Any = np.asarray(stds)
    else:
        std_v = std
    if std_v is not None and value_property is None:
        raise ValueError("std was given without value_property: uncertainties need data")
    name = doc.get("name") or p.stem
    return Survey(loc, gz=None if value_property is None else np.asarray(vals), std=std_v, name=name)


def read_config(path: PathLike, *, section: str | None = None) -> dict:
    """Read a JSON or TOML settings file into a dict.

    Parameters
    ----------
    path : str or path-like
        A ``.json`` or ``.toml`` file (the suffix decides, case-insensitive).
    section : str, optional
        Return this table of the file when the file has it (e.g. ``"inr"`` for
        ``[inr]`` in a TOML file holding several sections); the whole file otherwise.

    Returns
    -------
    dict

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Another suffix, a syntax error (the message names the file and the position),
        or a file whose top level is not a table / object.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file not found: {p}")
    suffix = p.suffix.lower()
    text = p.read_text(encoding="utf-8")
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"config {p} is not valid JSON: {exc}") from None
    elif suffix == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config {p} is not valid TOML: {exc}") from None
    else:
        raise ValueError(f"config file must be .json or .toml, got {p.name}")
    if not isinstance(data, dict):
        raise ValueError(f"config {p} must hold a table of settings, got {type(data).__name__}")
    if section is not None and isinstance(data.get(section), dict):
        data = data[section]
    return data
