"""Built-in GemPy models by name: what ``invert --geomodel NAME`` can use.

:data:`GEOMODEL_CASES` maps a name to a ``"module:function"`` spec (imported when the
model is asked for, so naming a case costs nothing); the function takes no arguments
and returns a :class:`~gempy_gravinv.geomodel.LoadedGeoModel` (or a GeoModel, or a
``(GeoModel, unit_densities)`` pair). :func:`resolve_geomodel` turns a name, a GemPy file
or a GeoModel into a :class:`~gempy_gravinv.geomodel.LoadedGeoModel`.

Conventions: metres, z up; unit density contrasts in kg/m³, GemPy id order.
"""

from __future__ import annotations

import importlib

import numpy as np

from .._validation import check_choice
from ..geomodel import LoadedGeoModel, load_geomodel

__all__ = ["GEOMODEL_CASES", "geomodel_case", "resolve_geomodel"]

#: built-in GemPy models: name -> "module:function" (called with no arguments)
GEOMODEL_CASES = {
    "layered": "gempy_gravinv.cases.geology:layered_model",
    "tharsis-intrusion": "gempy_gravinv.cases.bayes:tharsis_intrusion_model",
}


def geomodel_case(name: str) -> LoadedGeoModel:
    """Build a built-in GemPy model by name.

    Parameters
    ----------
    name : str
        A key of :data:`GEOMODEL_CASES`: ``"layered"`` (the synthetic layered case's
        model with its unit densities, :func:`gempy_gravinv.cases.geology.layered_model`)
        or ``"tharsis-intrusion"`` (the Bayesian Tharsis intrusion model, prior-mean unit
        densities, local coordinates with their UTM origin,
        :func:`gempy_gravinv.cases.bayes.tharsis_intrusion_model`).

    Returns
    -------
    LoadedGeoModel

    Raises
    ------
    ValueError
        Unknown name, or its module cannot be imported in this installation.
    """
    check_choice(name, tuple(GEOMODEL_CASES), name="geomodel case")
    mod, _, attr = GEOMODEL_CASES[name].partition(":")
    try:
        fn = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"built-in geomodel {name!r} is not available in this installation "
                         f"({GEOMODEL_CASES[name]}: {exc})") from exc
    out = fn()
    if not isinstance(out, LoadedGeoModel):
        gm, rho = (out if isinstance(out, tuple) else (out, None))[:2]
        out = LoadedGeoModel(gm, None if rho is None else np.asarray(rho, dtype=np.float64), name=name)
    return out


def resolve_geomodel(spec) -> LoadedGeoModel:
    """A GemPy model from a built-in name, a file or a GeoModel.

    Parameters
    ----------
    spec : str, path-like, GeoModel or LoadedGeoModel
        A name in :data:`GEOMODEL_CASES` (:func:`geomodel_case`); anything else goes to
        :func:`gempy_gravinv.geomodel.load_geomodel` (a ``.gempy``/``.json`` file, a
        GeoModel, a LoadedGeoModel).

    Returns
    -------
    LoadedGeoModel

    Raises
    ------
    FileNotFoundError
        ``spec`` is neither a built-in name nor an existing file.
    """
    if not isinstance(spec, LoadedGeoModel) and not hasattr(spec, "structural_frame"):
        name = str(spec)
        if name in GEOMODEL_CASES:
            return geomodel_case(name)
        try:
            return load_geomodel(spec)
        except FileNotFoundError:
            raise FileNotFoundError(f"geomodel {name!r}: neither a built-in case {sorted(GEOMODEL_CASES)} "
                                    "nor an existing .gempy/.json file") from None
    return load_geomodel(spec)
