"""Inversions: the INR trainer (deterministic, ensembles)."""

from ._inr import EnsembleField, INRConfig, INRResult, invert_inr

__all__ = ["EnsembleField", "INRConfig", "INRResult", "invert_inr"]
