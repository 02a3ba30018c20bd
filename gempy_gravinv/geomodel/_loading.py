"""Loading GemPy models for the density backends: files, GeoModels, and their frame.

:class:`LoadedGeoModel` holds a GemPy ``GeoModel`` with what a density backend needs
besides it (unit density contrasts when the source defines them, and where the model's
coordinate origin lies in the frame of its data). :func:`load_geomodel` reads one from a
GeoModel or a GemPy file; :func:`auto_offset` finds the shift that puts a mesh into the
model's frame. :func:`unit_names_of` and :func:`gempy_lithology_ids` query a GeoModel.

Named, built-in models (``"layered"``, ``"tharsis-intrusion"``) are cases, not files:
:func:`gempy_gravinv.cases.geomodels.resolve_geomodel` looks them up and hands everything
else to :func:`load_geomodel`.

Conventions: metres, z up; density contrast in kg/m³ in GemPy id order (id 1 = the unit
above the first surface of the pile, the basement last). GemPy is imported when a model is
read or evaluated, never when this module is imported.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._validation import as_finite_array
from ._guard import gempy_torch

__all__ = ["GEMPY_EXAMPLE_PREFIX", "LoadedGeoModel", "auto_offset", "gempy_example", "gempy_lithology_ids",
           "load_geomodel", "unit_names_of"]


@dataclass
class LoadedGeoModel:
    """A GemPy model with what a density backend needs besides it.

    Attributes
    ----------
    geo_model : gempy GeoModel
        The structural model.
    unit_densities : numpy.ndarray, shape (n_units,), or None
        Unit density contrasts in kg/m³ (GemPy id order) when the source defines them;
        ``None`` for model files, which store no densities.
    origin : numpy.ndarray, shape (3,)
        Where the model's coordinate origin lies in the frame of the data it belongs to,
        m (e.g. the UTM corner of a model built in local coordinates); zeros otherwise.
    name : str
        Label used in descriptions and error messages.
    notes : list of str
        Human-readable statements about the model (source, densities, frame).
    """

    geo_model: Any
    unit_densities: np.ndarray | None = None
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    name: str = ""
    notes: list = field(default_factory=list)

    @property
    def extent(self) -> np.ndarray:
        """The model's extent ``(x_min, x_max, y_min, y_max, z_min, z_max)`` in its own frame, m."""
        return np.asarray(self.geo_model.grid.extent, dtype=np.float64)


def unit_names_of(geo_model: Any) -> list[str]:
    """Unit names of a GemPy model in lithology-id order.

    Parameters
    ----------
    geo_model : gempy GeoModel
        The structural model.

    Returns
    -------
    list of str
        Id 1 (the unit above the first surface) first, the basement last.
    """
    return [str(n) for n in geo_model.structural_frame.elements_names]


def bare_copy(geo_model: Any) -> Any:
    """A deep copy of a GeoModel without its solutions and its gravity input, for another grid.

    The centered-grid gravity kernel of ``geophysics_input`` belongs to the model's own
    grid; computing the copy on a dense, custom or octree grid needs it removed.
    """
    gm = copy.deepcopy(geo_model)
    gm._solutions = None
    gm.geophysics_input = None
    return gm


def gempy_lithology_ids(geo_model: Any, points) -> np.ndarray:
    """GemPy's own integer lithology ids at points (``gempy.compute_model_at``).

    The reference that soft lithologies are tested against. The model is deep-copied
    (``compute_model_at`` replaces its custom grid and solutions).

    Parameters
    ----------
    geo_model : gempy GeoModel
        The structural model (not modified).
    points : array_like or torch.Tensor, shape (n, 3)
        Evaluation points, m, z up, in the model's frame.

    Returns
    -------
    numpy.ndarray of int, shape (n,)
        1 .. n_units (id 1 = the unit above the first surface, basement last).
    """
    import gempy as gp

    if torch.is_tensor(points):
        points = points.detach().cpu().numpy()
    pts = as_finite_array(points, name="points (m)", shape=(None, 3))
    gm = bare_copy(geo_model)
    with gempy_torch(grads=False), contextlib.redirect_stdout(io.StringIO()):
        ids = gp.compute_model_at(gm, pts)
    return np.rint(np.asarray(ids, dtype=np.float64)).astype(int).reshape(-1)


def load_geomodel(spec) -> LoadedGeoModel:
    """A GemPy model from a GeoModel or a GemPy file.

    Parameters
    ----------
    spec : str, path-like, GeoModel or LoadedGeoModel
        - a :class:`LoadedGeoModel`: returned as is;
        - a GeoModel: wrapped (no unit densities, origin zero);
        - a ``.gempy`` file written by ``gempy.save_model`` (read with ``gempy.load_model``);
        - a ``.json`` file in GemPy's JSON schema (``gempy.modules.json_io.JsonIO``);
        - ``"gempy:NAME"``: one of GemPy's example models (:func:`gempy_example`).

        Files carry no unit densities (give them separately). Built-in models by name
        are resolved by :func:`gempy_gravinv.cases.geomodels.resolve_geomodel`.

    Returns
    -------
    LoadedGeoModel

    Raises
    ------
    FileNotFoundError
        ``spec`` names no existing file.
    ValueError
        The file is neither ``.gempy`` nor ``.json``.
    """
    if isinstance(spec, LoadedGeoModel):
        return spec
    if hasattr(spec, "structural_frame"):
        return LoadedGeoModel(spec, name=str(getattr(getattr(spec, "meta", None), "name", "")))
    if isinstance(spec, str) and spec.lower().startswith(GEMPY_EXAMPLE_PREFIX):
        return gempy_example(spec[len(GEMPY_EXAMPLE_PREFIX):])
    p = Path(str(spec))
    if not p.exists():
        raise FileNotFoundError(f"geomodel {str(spec)!r}: not an existing .gempy/.json file")
    suffix = p.suffix.lower()
    if suffix not in (".gempy", ".json"):
        raise ValueError(f"geomodel file must be .gempy (gempy.save_model) or .json (GemPy JSON), got {p.name}")
    import gempy as gp

    if p.stat().st_size == 0:
        raise ValueError(f"geomodel file {p} is empty")
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if suffix == ".gempy":
                return LoadedGeoModel(gp.load_model(str(p)), name=p.stem)
            from gempy.modules.json_io import JsonIO

            return LoadedGeoModel(JsonIO.load_model_from_json(str(p)), name=p.stem)
        except (zipfile.BadZipFile, json.JSONDecodeError, KeyError, UnicodeDecodeError) as exc:
            kind = "a GemPy .gempy file (gempy.save_model)" if suffix == ".gempy" else "GemPy JSON"
            raise ValueError(f"geomodel file {p} is not {kind}: {type(exc).__name__}: {exc}") from None


#: prefix naming one of GemPy's own example models (``gempy:one_fault_gravity``)
GEMPY_EXAMPLE_PREFIX = "gempy:"


def gempy_example(name: str) -> LoadedGeoModel:
    """One of GemPy's example models (``gp.generate_example_model``), built without computing it.

    Parameters
    ----------
    name : str
        A member of GemPy's ``ExampleModel`` enumeration, any case
        (``"one_fault_gravity"``: a fault and two surfaces, a centered grid over six
        stations and unit densities in ``geophysics_input``). Some examples download
        their data from GemPy's repository.

    Returns
    -------
    LoadedGeoModel
        ``unit_densities`` stays ``None``: the densities (g/cm³), when the example has
        them, are in the model's ``geophysics_input``. The example's condition-number
        report (GemPy prints it on every interpolation) is turned off.

    Raises
    ------
    ValueError
        Not a GemPy example name (the message lists them).
    """
    import gempy as gp
    from gempy.core.data.enumerators import ExampleModel

    known = [m.name.lower() for m in ExampleModel]
    key = str(name).strip().lower()
    if key not in known:
        raise ValueError(f"unknown GemPy example {name!r}; GemPy's examples: {known}")
    with gempy_torch(grads=False), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = gp.generate_example_model(ExampleModel[key.upper()], compute_model=False)
    kernel = gm.interpolation_options.kernel_options
    if getattr(kernel, "compute_condition_number", False):  # a diagnostic print (and a cond()) on every solve
        kernel.compute_condition_number = False
    return LoadedGeoModel(gm, name=f"{GEMPY_EXAMPLE_PREFIX}{key}",
                          notes=[f"GemPy example {key} (gp.generate_example_model)"])


def auto_offset(loaded: LoadedGeoModel, mesh) -> np.ndarray:
    """The shift that puts a mesh into a model's frame: zero, or the model's origin.

    Zero when the mesh's horizontal extent overlaps the model's extent at least as much
    as it does after shifting by ``loaded.origin`` (a model built in local coordinates,
    evaluated on a UTM mesh); the origin otherwise.

    Parameters
    ----------
    loaded : LoadedGeoModel
        The model, its extent and its origin (m).
    mesh : PrismMesh
        The mesh (its ``extent``, m).

    Returns
    -------
    numpy.ndarray, shape (3,)
        Offset in m, to pass as ``GeologyDensity(..., offset=...)``.

    Raises
    ------
    ValueError
        The mesh overlaps the model neither as is nor shifted.

    Warns
    -----
    UserWarning
        The model covers less than half of the mesh's horizontal area.
    """
    ext = loaded.extent
    me = np.asarray(mesh.extent, dtype=np.float64)

    def overlap(shift):
        lo = np.maximum(me[0:4:2] - shift[:2], ext[0:4:2])
        hi = np.minimum(me[1:4:2] - shift[:2], ext[1:4:2])
        return float(np.prod(np.clip(hi - lo, 0, None)))

    a0, a1 = overlap(np.zeros(3)), overlap(loaded.origin)
    if a0 == 0 and a1 == 0:
        raise ValueError(f"the mesh (x {me[0]:.0f}..{me[1]:.0f}, y {me[2]:.0f}..{me[3]:.0f} m) does not overlap "
                         f"the GemPy model {loaded.name!r} (x {ext[0]:.0f}..{ext[1]:.0f}, "
                         f"y {ext[2]:.0f}..{ext[3]:.0f} m, origin {loaded.origin[:2].tolist()}): "
                         "use the same coordinates")
    shift = np.zeros(3) if a0 >= a1 else np.asarray(loaded.origin, dtype=np.float64)
    share = max(a0, a1) / float(np.prod(me[1:4:2] - me[0:4:2]))
    if share < 0.5:  # the rest of the mesh gets the model's extrapolated units
        warnings.warn(f"the GemPy model {loaded.name!r} covers {100 * share:.0f}% of the mesh's horizontal area: "
                      "beyond it the units are GemPy's extrapolation; build the model over the whole mesh",
                      UserWarning, stacklevel=2)
    return shift
