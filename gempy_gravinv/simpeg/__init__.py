"""SimPEG integration: a drop-in gravity simulation on our kernels, and SimPEG's recipes.

- :class:`Simulation3DIntegral`: swap it for
  ``simpeg.potential_fields.gravity.simulation.Simulation3DIntegral`` (SimPEG's units:
  g/cm³ and upward ``gz`` in mGal, negative for excess mass).
- :func:`run_inversion`: SimPEG's recommended L2 / sparse (IRLS) recipes on a
  :class:`gempy_gravinv.Survey` and a discretize mesh, returning the model in our units
  (density contrast, kg/m³) and predicted g_z positive down (mGal).

Importing this module imports SimPEG (a heavy import kept out of ``gempy_gravinv``).
Inside it, ``import simpeg`` is the real SimPEG package (absolute imports).
"""

from ._inversion import InversionResult, run_inversion
from ._simulation import Simulation3DIntegral

__all__ = ["InversionResult", "Simulation3DIntegral", "run_inversion"]
