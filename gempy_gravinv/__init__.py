"""gempy_gravinv: 3D gravity inversion with implicit neural representations and
Bayesian GemPy structural inversion, on fast differentiable gravity kernels.

Conventions (everywhere in this package): metres, z up; density contrast in kg/m³;
g_z anomaly in mGal, positive downward (excess mass below gives positive g_z).
"""

from ._constants import G, MGAL, gcc_to_kgm3, gz_from_upward, gz_to_upward, kgm3_to_gcc
from ._kernels import point_mass_gz, prism_gz
from ._mesh import PrismMesh, as_prism_mesh
from ._operator import GravityOperator, MemoryEstimate
from ._survey import Survey
from .density import INRDensity, VoxelDensity, make_density, register_density
from .inversion import INRConfig, INRResult, invert_inr

__version__ = "0.1.0.dev0"

__all__ = [
    "G",
    "MGAL",
    "GravityOperator",
    "INRConfig",
    "INRDensity",
    "INRResult",
    "MemoryEstimate",
    "PrismMesh",
    "as_prism_mesh",
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
]
