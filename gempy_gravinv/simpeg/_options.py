"""SimPEG's checks of the gravity simulation's options, with SimPEG's messages.

The drop-in simulation always computes with our kernels; ``engine``, ``n_processes`` and
``numba_parallel`` only keep SimPEG's validation (and where ``"disk"`` puts its file),
so that code written for SimPEG gets the same errors and warnings.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from simpeg.utils import validate_integer, validate_string

STORES = ("ram", "disk", "forward_only", "matrix_free")
ENGINES = ("geoana", "choclo")


def check_store(value) -> str:
    """``store_sensitivities``: SimPEG's three values and ``"matrix_free"`` (as ``"forward_only"``)."""
    return validate_string("store_sensitivities", value, list(STORES))


def check_sensitivity_dtype(value):
    """``sensitivity_dtype`` must be ``np.float32`` or ``np.float64`` (SimPEG's TypeError otherwise)."""
    if value is not np.float32 and value is not np.float64:
        raise TypeError("sensitivity_dtype must be either np.float32 or np.float64.")
    return value


def check_product_dtype(value: object) -> type | None:
    """``product_dtype``: None (SimPEG's rule: products in ``sensitivity_dtype``) or ``np.float64``."""
    if value is None:
        return None
    if np.dtype(value) != np.float64:
        raise TypeError(f"product_dtype must be None (products in sensitivity_dtype, as SimPEG computes them) or "
                        f"np.float64 (float64 sums of the stored entries), got {value!r}")
    return np.float64


def check_engine(value) -> str:
    """``engine`` in ``("geoana", "choclo")``, case sensitive; ImportError if choclo is asked but missing."""
    import simpeg.potential_fields.base as pf_base

    validate_string("engine", value, string_list=ENGINES, case_sensitive=True)
    if value == "choclo" and getattr(pf_base, "choclo", None) is None:
        raise ImportError("The choclo package couldn't be found."
                          "Running a gravity simulation with 'engine=\"choclo\"' needs "
                          "choclo to be installed.\nTry installing choclo with:\n    pip install choclo"
                          "\nor:\n    conda install choclo")
    return value


def check_numba_parallel(value) -> bool:
    """``numba_parallel`` must be a bool (SimPEG's TypeError otherwise)."""
    if not isinstance(value, bool):
        raise TypeError(f"Invalid 'numba_parallel' value of type {type(value)}. Must be a bool.")
    return value


def check_n_processes(value, engine: str, given: bool):
    """``n_processes``: None or an int >= 1; with ``engine="choclo"`` a given value warns and becomes None."""
    if value is not None:
        value = validate_integer("n_processes", value, min_val=1)
    if engine == "choclo" and given:
        warnings.warn("The 'n_processes' will be ignored when selecting 'choclo' as the "
                      "engine in the gravity simulation.", UserWarning, stacklevel=3)
        value = None
    return value


def check_sensitivity_path(path: str, engine: str, store: str) -> None:
    """With ``engine="choclo"`` and ``"disk"``, ``sensitivity_path`` must be a file, not a directory."""
    if engine == "choclo" and store == "disk" and os.path.isdir(path):
        raise ValueError(f"The passed sensitivity_path '{path}' is a directory. When using 'choclo' as the engine, "
                         "'senstivity_path' should be the path to a new or existing file.")


def refuse_linear_simulation_kwargs(kwargs: dict) -> None:
    """A clear error for ``LinearSimulation``'s arguments, which a gravity simulation does not use."""
    for name in ("model_map", "linear_model", "G"):
        if name in kwargs:
            raise TypeError(f"{name!r} is an argument of simpeg.simulation.LinearSimulation, not of the gravity "
                            "simulation: give the density (g/cm³) with rho=..., or map the model to it with "
                            "rhoMap=... (e.g. rhoMap=maps.IdentityMap(nP=n_active_cells))")
