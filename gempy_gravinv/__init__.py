"""gempy_gravinv: 3D gravity inversion with INRs and Bayesian GemPy structural inversion.

Implicit neural representations (INRs) and Bayesian GemPy structural inversion, on fast
differentiable gravity kernels.

Conventions (everywhere in this package): metres, z up; density contrast in kg/m³;
g_z anomaly in mGal, positive downward (excess mass below gives positive g_z).
"""

from . import _runtime  # noqa: F401  (first: MKL's reproducible mode is set before torch runs MKL)
from ._constants import MGAL, G, gcc_to_kgm3, gz_from_upward, gz_to_upward, kgm3_to_gcc
from ._distributed import (
    ShardedGravityOperator,
    check_rank_memory,
    estimate_rank_memory,
    init_distributed,
    is_main,
    shutdown_distributed,
)
from ._forward import forward_gz
from ._ground import active_from_topography, check_topography
from ._kernels import point_mass_gz, prism_gz
from ._mesh import PrismMesh, as_prism_mesh
from ._mesh_design import MeshDesign, mesh_from_survey, tensor_mesh
from ._multi import MultiComponentOperator, make_operator
from ._operator import GravityOperator, MemoryEstimate
from ._survey import Survey
from .density import INRDensity, VoxelDensity, make_density, register_density
from .inversion import INRConfig, INRResult, invert_inr

__version__ = "0.1.0.dev0"

#: modules that moved into :mod:`gempy_gravinv.cases`, still reachable as
#: ``from gempy_gravinv import synthetic`` (imported on first use: cases load heavy modules)
_CASE_MODULES = {"synthetic": "gempy_gravinv.cases.synthetic", "tharsis": "gempy_gravinv.cases.tharsis"}


def __getattr__(name: str):
    """``gempy_gravinv.synthetic`` / ``gempy_gravinv.tharsis``: the modules of :mod:`gempy_gravinv.cases`."""
    if name in _CASE_MODULES:
        import importlib

        module = importlib.import_module(_CASE_MODULES[name])
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "G",
    "MGAL",
    "GravityOperator",
    "INRConfig",
    "INRDensity",
    "INRResult",
    "MemoryEstimate",
    "MeshDesign",
    "mesh_from_survey",
    "tensor_mesh",
    "MultiComponentOperator",
    "make_operator",
    "PrismMesh",
    "active_from_topography",
    "check_topography",
    "as_prism_mesh",
    "forward_gz",
    "Survey",
    "VoxelDensity",
    "gcc_to_kgm3",
    "gz_from_upward",
    "gz_to_upward",
    "invert_inr",
    "kgm3_to_gcc",
    "make_density",
    "point_mass_gz",
    "prism_gz",
    "register_density",
    "ShardedGravityOperator",
    "estimate_rank_memory",
    "check_rank_memory",
    "is_main",
    "init_distributed",
    "shutdown_distributed",
]
