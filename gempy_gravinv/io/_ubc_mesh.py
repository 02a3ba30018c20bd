"""UBC-GIF 3-D meshes (tensor and OcTree) and the model files that live on them.

Meshes and models are read and written through discretize (``TensorMesh.read_UBC`` /
``TreeMesh.read_UBC``, ``read_model_UBC``, ``write_model_UBC``), which handles the UBC
cell order (z fastest from the top, then easting, then northing) and moves UBC's
top-south-west origin to the bottom. Coordinates are metres, z up. Model values stay in
the file's units (g/cm³ for GRAV3D density models) in discretize's cell order; convert
them with :func:`model_to_contrast_kgm3` to the density contrast in kg/m³.

Inactive cells: GRAV3D writes ``-100`` in the cells it removed (above topography) and
GIFtools uses the no-data value ``-99999`` (:data:`UBC_NO_DATA`). By default
:func:`read_ubc_model` returns NaN for both, and :func:`write_ubc_model` writes NaN as
``-99999``. A NaN or inf in a file is an error naming the line (an inf would otherwise
drop a cell silently), unless ``no_data`` holds NaN.
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .._constants import (
    MAX_CONTRAST_KGM3,
    MAX_GCC,
    DensityUnitsWarning,
    check_density_units,
    check_gcc_density,
    gcc_to_kgm3,
)
from ._common import PathLike, as_path, data_lines, parse_floats

logger = logging.getLogger(__name__)

#: Values marking inactive cells in UBC-GIF model files (GRAV3D output, GIFtools).
UBC_NO_DATA: tuple[float, ...] = (-99999.0, -100.0)


def _is_octree_mesh_file(p: Path) -> bool:
    """OcTree files: the fourth data line is the cell count, then ``i j k size`` rows."""
    lines = [line for _, line in data_lines(p, "!")]
    if len(lines) < 5:
        return False
    tok = lines[3].split()
    if len(tok) != 1 or not re.fullmatch(r"\d+", tok[0]):
        return False
    n = int(tok[0])
    return len(lines) == 4 + n and all(len(line.split()) == 4 for line in lines[4:9])


def _check_mesh_numbers(p: Path, lines: list[tuple[int, str]], octree: bool) -> None:
    """Origin and cell widths of a UBC mesh file: finite numbers, widths > 0 (naming the line)."""
    spec = [(1, "origin", False), (2, "smallest cell sizes", True)] if octree else [
        (1, "origin", False), (2, "cell widths in x", True), (3, "cell widths in y", True),
        (4, "cell widths in z", True)]
    ln, line = lines[1]
    if len(line.split()) != 3:
        raise ValueError(f"{p}, line {ln}: the origin needs 3 values (x, y, z of the top south-west corner, m), "
                         f"got {len(line.split())}: {line.strip()!r}")
    if not octree and len(lines) > 5:
        ln, line = lines[5]
        raise ValueError(f"{p}, line {ln}: unexpected data after the cell widths in z ({line.strip()[:40]!r}): "
                         "a tensor mesh file has 5 lines (cells, origin, widths in x, y, z)")
    for k, what, positive in spec:
        ln, line = lines[k]
        for tok in line.split():
            count, star, width = tok.partition("*")
            t = width if star else count
            try:
                v = float(t)
                n = float(count) if star else 1.0
            except ValueError:
                raise ValueError(f"{p}, line {ln}: {tok!r} in the {what} is not a number") from None
            if not (np.isfinite(v) and np.isfinite(n)):
                raise ValueError(f"{p}, line {ln}: the {what} hold {tok!r} (NaN/inf)")
            if positive and v <= 0:
                raise ValueError(f"{p}, line {ln}: the {what} must be > 0 m, got {tok!r}")


def _check_mesh(mesh) -> None:
    import discretize

    if not isinstance(mesh, (discretize.TensorMesh, discretize.TreeMesh)) or mesh.dim != 3:
        raise TypeError(f"mesh must be a 3-D discretize TensorMesh or TreeMesh, got {type(mesh).__name__}")


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
    FileNotFoundError
        The file does not exist.
    ValueError
        Empty file or a file discretize cannot parse as a 3-D UBC mesh.
    """
    import discretize

    p = as_path(path)
    lines = data_lines(p, "!")
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
    octree = _is_octree_mesh_file(p)
    _check_mesh_numbers(p, lines, octree)
    try:
        if octree:
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
    logger.debug("read %s UBC mesh from %s (%d cells)", type(mesh).__name__, p, mesh.n_cells)
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
        Include ``float("nan")`` to read NaN in the file as inactive too.

    Returns
    -------
    ndarray, shape (mesh.n_cells,)
        Model in discretize's cell order, **in the file's units** (g/cm³ for GRAV3D
        density; see :func:`model_to_contrast_kgm3`), NaN in inactive cells. Active cells
        are ``np.isfinite(model)``.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    TypeError
        ``mesh`` is not a 3-D discretize tensor or OcTree mesh.
    ValueError
        Empty file, non-numeric values, a value count that differs from the mesh, or
        an inf (or a NaN, unless ``no_data`` holds NaN), naming the file and line.
    """
    p = as_path(path)
    _check_mesh(mesh)
    no_data = tuple(float(v) for v in no_data)
    nan_ok = any(np.isnan(v) for v in no_data)
    lines = data_lines(p, "!")
    if not lines:
        raise ValueError(f"{p} is empty: not a UBC model file")
    values = []
    clean = True
    for ln, line in lines:
        tok = line.split()
        clean &= len(tok) == 1
        vals = parse_floats(tok, p, ln)
        for t, v in zip(tok, vals):
            if np.isinf(v) or (np.isnan(v) and not nan_ok):
                raise ValueError(f"{p}, line {ln}: value {t!r} is not a finite number (inactive cells are "
                                 f"written as {', '.join(f'{d:g}' for d in no_data if not np.isnan(d)) or '-99999'})")
        values.extend(vals)
    if len(values) != mesh.n_cells:
        raise ValueError(f"{p} holds {len(values)} values but the mesh has {mesh.n_cells} cells")
    raw = p.read_text()
    clean &= "!" not in raw and all(line.strip() for line in raw.splitlines())
    if clean:
        model = np.asarray(mesh.read_model_UBC(str(p)), dtype=np.float64)
    else:  # discretize's reader wants one bare value per line: hand it a cleaned copy
        logger.debug("%s has comments, blank lines or several values a line; reading a cleaned copy", p)
        with tempfile.TemporaryDirectory() as td:
            tmp = Path(td) / "model.txt"
            np.savetxt(tmp, np.asarray(values))
            model = np.asarray(mesh.read_model_UBC(str(tmp)), dtype=np.float64)
    model = model.copy()
    for v in no_data:
        model[model == v] = np.nan
    model[~np.isfinite(model)] = np.nan  # NaN no-data (checked above: nothing else is non-finite)
    logger.debug("read UBC model %s: %d of %d cells active", p, int(np.isfinite(model).sum()), model.size)
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

    Raises
    ------
    TypeError
        ``mesh`` is not a 3-D discretize tensor or OcTree mesh.
    ValueError
        ``values`` has another length than the mesh has cells, or holds inf.
    """
    _check_mesh(mesh)
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.shape[0] != mesh.n_cells:
        raise ValueError(f"values has {v.shape[0]} entries but the mesh has {mesh.n_cells} cells")
    if np.isinf(v).any():
        raise ValueError("values contains inf; use NaN for inactive cells")
    v = np.where(np.isnan(v), float(no_data), v)
    p = as_path(path, must_exist=False)
    mesh.write_model_UBC(str(p), v)
    logger.debug("wrote UBC model %s (%d cells)", p, v.size)
    return p


def model_to_contrast_kgm3(model_gcc, reference_gcc: float = 0.0, *, name: str = "density model") -> np.ndarray:
    """Convert a density model in g/cm³ to a density contrast in kg/m³, checking its units.

    Parameters
    ----------
    model_gcc : array_like
        Density (absolute or contrast) in g/cm³, e.g. from :func:`read_ubc_model`.
    reference_gcc : float
        Reference density subtracted first, g/cm³ (0 for a model that already is a
        contrast; e.g. 2.67 for absolute densities against a Bouguer reduction density).
    name : str
        Name of the model in messages (e.g. its file).

    Returns
    -------
    ndarray
        ``(model_gcc - reference_gcc)`` in kg/m³, positive where the model is denser
        than the reference (NaN stays NaN).

    Raises
    ------
    ValueError
        ``reference_gcc`` is NaN or inf or beyond :data:`~gempy_gravinv._constants.MAX_GCC`
        (25 g/cm³); the model holds inf, or values beyond ±25 g/cm³ (a model in kg/m³).

    Warns
    -----
    gempy_gravinv._constants.DensityUnitsWarning
        The contrast reaches beyond any rock's (±5 g/cm³: a model in kg/m³ read as g/cm³),
        or looks like absolute densities (every non-zero value >= 1000 kg/m³: a reference
        density is missing).
    """
    if not math.isfinite(float(reference_gcc)):
        raise ValueError(f"reference density must be finite (g/cm³), got {reference_gcc}")
    check_gcc_density([reference_gcc], name=f"reference density {reference_gcc} (g/cm³)")
    m = np.asarray(model_gcc, dtype=np.float64)
    check_gcc_density(m, name=f"{name} (g/cm³)")
    out = gcc_to_kgm3(m - float(reference_gcc))
    fin = out[np.isfinite(out)]
    # units are known here (g/cm³ in): only the absolute-density check applies, not the "too small" one
    if fin.size and float(np.abs(fin).max()) > MAX_CONTRAST_KGM3:
        warnings.warn(f"{name} minus the reference density {float(reference_gcc):g} g/cm³ reaches "
                      f"{float(np.abs(fin).max()) / 1000:.4g} g/cm³ in magnitude, beyond any rock's density contrast "
                      f"(±{MAX_CONTRAST_KGM3 / 1000:g} g/cm³): is the model in kg/m³? UBC density models are in g/cm³ "
                      "(divide by 1000)", DensityUnitsWarning, stacklevel=2)
    elif fin.size and float(np.abs(fin).max()) >= 10.0:
        check_density_units(fin, name=f"{name} minus the reference density {float(reference_gcc):g} g/cm³",
                            max_abs=gcc_to_kgm3(2 * MAX_GCC),
                            hint="Give the reference density the model is relative to (forward: "
                                 "--reference-density G_CC).")
    return out
