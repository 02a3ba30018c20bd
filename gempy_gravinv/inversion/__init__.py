"""Inversions: the INR trainer (deterministic, ensembles, closed-form head).

Modules, one job each: ``_config`` (settings and presets), ``_problem`` (data,
operator, weighting, prior, the field), ``_trainer`` (one member's optimisation),
``_stopping`` (the stopping rule), ``_checkpoint`` (exact resume), ``_linear`` (the
closed-form Gaussian head), ``_regularizers`` (priors on cell values), ``_result``
(what a run returns) and ``_inr`` (:func:`invert_inr`, which ties them together).
Writing files and figures of a result is the job of :mod:`gempy_gravinv.output`.
"""

from ._config import INRConfig
from ._inr import invert_inr
from ._presets import PRESETS
from ._result import EnsembleField, INRResult, InversionInterrupted

__all__ = ["EnsembleField", "INRConfig", "INRResult", "InversionInterrupted", "PRESETS", "invert_inr"]
