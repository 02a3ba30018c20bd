"""Density backends: ``module(points (n, 3) m, z up) -> density contrast (n,) kg/m³``.

Built-in backends, by registry name:

- ``"inr"``: :class:`INRDensity` (coordinate encoding + MLP + bounded output).
- ``"voxel"``: :class:`VoxelDensity` (one parameter per cell).
- ``"geology"``: :class:`GeologyDensity` (a GemPy model + unit contrasts; GemPy loads lazily).
- ``"hybrid"``: :class:`HybridDensity` (geology + bounded INR residual).

Other modules add theirs with :func:`register_density` (lazy ``"module:attr"`` strings
keep optional heavy imports out of ``import gempy_gravinv``).
"""

from ._encodings import (
    ENCODINGS,
    CoordinateNormalizer,
    FourierFeatures,
    HashGridEncoding,
    IdentityEncoding,
    PositionalEncoding,
    cached_on_points,
    make_encoding,
)
from ._geology import GeologyDensity  # no gempy import until a model is built
from ._hybrid import HybridDensity
from ._inr import OUTPUTS, BoundedOutput, INRDensity, as_torch_dtype, cell_points, check_bounds, evaluate_on_mesh
from ._registry import (
    DensityBackend,
    available_densities,
    get_density_class,
    make_density,
    register_density,
)
from ._voxel import VoxelDensity

register_density("inr", INRDensity, overwrite=True)
register_density("voxel", VoxelDensity, overwrite=True)
# GemPy backends: lazy, so `import gempy_gravinv` never imports gempy
register_density("geology", "gempy_gravinv.density._geology:GeologyDensity", overwrite=True)
register_density("hybrid", "gempy_gravinv.density._hybrid:HybridDensity", overwrite=True)

__all__ = [
    "ENCODINGS",
    "OUTPUTS",
    "BoundedOutput",
    "CoordinateNormalizer",
    "DensityBackend",
    "FourierFeatures",
    "GeologyDensity",
    "HybridDensity",
    "HashGridEncoding",
    "INRDensity",
    "IdentityEncoding",
    "PositionalEncoding",
    "VoxelDensity",
    "as_torch_dtype",
    "available_densities",
    "cached_on_points",
    "cell_points",
    "check_bounds",
    "evaluate_on_mesh",
    "get_density_class",
    "make_density",
    "make_encoding",
    "register_density",
]
