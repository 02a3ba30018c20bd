"""GemPy structural models evaluated in torch and loaded from GemPy files.

Evaluation gives soft lithology, density and GemPy gravity; files are loaded with
:func:`load_geomodel` (a :class:`LoadedGeoModel`).

Importing this subpackage does not import GemPy; GemPy is loaded when a model is built.
All GemPy calls run inside :func:`gempy_torch`, which restores torch's global state.

Conventions: metres (z up); density contrast in kg/m³ (GemPy id order: id 1 = unit above
the first surface, basement last); g_z in mGal positive downward.
"""

from ._guard import gempy_torch, guarded, restore_torch
from ._loading import (
    GEMPY_EXAMPLE_PREFIX,
    LoadedGeoModel,
    auto_offset,
    gempy_example,
    gempy_lithology_ids,
    load_geomodel,
    unit_names_of,
)
from ._model import (
    GemPyCenteredGravity,
    TorchGeoModel,
    density_at,
    dips_from_gradients,
    gradients_from_dips,
    membership_from_ids,
    soft_lithology,
)

__all__ = [
    "GEMPY_EXAMPLE_PREFIX",
    "gempy_example",
    "GemPyCenteredGravity",
    "LoadedGeoModel",
    "TorchGeoModel",
    "auto_offset",
    "density_at",
    "dips_from_gradients",
    "gempy_lithology_ids",
    "gempy_torch",
    "gradients_from_dips",
    "guarded",
    "load_geomodel",
    "membership_from_ids",
    "restore_torch",
    "soft_lithology",
    "unit_names_of",
]
