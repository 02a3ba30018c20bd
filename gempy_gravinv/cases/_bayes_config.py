"""Checks of the values of a Bayesian config file (``gempy-gravinv bayes --config FILE``).

Each helper turns one entry into clean Python values or raises a ``ValueError`` naming the
entry (``[mesh] shape``, ``[priors] densities_mean_kgm3``...), so a bad file fails before
GemPy is imported. Units as in :data:`gempy_gravinv.cases.bayes.CONFIG_SCHEMA`.
"""

from __future__ import annotations

import warnings

import numpy as np

from .._constants import DensityUnitsWarning, check_density_units
from .._validation import check_int, check_number, check_plain_name

__all__ = ["plain_name", "numbers", "integers", "extent", "check_density_prior"]



def plain_name(value, *, name: str) -> str:
    """A plain file stem (:func:`gempy_gravinv._validation.check_plain_name`)."""
    return check_plain_name(value, name=name)


def numbers(value, *, name: str, n: int | None = None, low: float | None = None,
            low_open: bool = False, scalar_ok: bool = False) -> list[float]:
    """A list of finite numbers (optionally ``n`` of them, each ``>= low`` or ``> low``)."""
    if scalar_ok and not isinstance(value, (list, tuple)):
        value = [value]
    if not isinstance(value, (list, tuple)) or len(value) == 0:
        raise ValueError(f"{name} must be a non-empty list of numbers, got {value!r}")
    if n is not None and len(value) != n:
        raise ValueError(f"{name} must have {n} values, got {len(value)}: {list(value)}")
    return [float(check_number(v, name=f"{name}[{i}]", low=low, low_open=low_open)) for i, v in enumerate(value)]


def integers(value, *, name: str, n: int | None = None, minimum: int = 0) -> list[int]:
    """A list of integers (optionally ``n`` of them), each ``>= minimum``."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list of integers, got {value!r}")
    if n is not None and len(value) != n:
        raise ValueError(f"{name} must have {n} values, got {len(value)}: {list(value)}")
    return [int(check_int(v, name=f"{name}[{i}]", minimum=minimum)) for i, v in enumerate(value)]


def extent(value) -> list[float]:
    """``[xmin, xmax, ymin, ymax, zmin, zmax]`` in metres with min < max on each axis."""
    ext = numbers(value, name="[model] extent", n=6)
    for a, axis in enumerate("xyz"):
        if not ext[2 * a] < ext[2 * a + 1]:
            raise ValueError(f"[model] extent: {axis}min must be < {axis}max, got {ext[2 * a]} and {ext[2 * a + 1]}")
    return ext


def check_density_prior(mean, std, *, name: str = "[priors] densities_mean_kgm3") -> None:
    """Refuse density priors in g/cm³; warn about absolute densities (kg/m³ contrasts expected).

    Parameters
    ----------
    mean, std : sequence of float
        Prior means and standard deviations, meant as kg/m³ contrasts.
    name : str
        Name of the entry, for the messages.

    Raises
    ------
    ValueError
        Means and standard deviations all below 10 in magnitude with some mean non-zero
        (e.g. ``[2.67, 2.3]`` / ``[0.1, 0.1]``: g/cm³), or a mean beyond ±5000 kg/m³.

    Warns
    -----
    DensityUnitsWarning
        Means that look like absolute densities (all >= 1000 kg/m³), or a standard
        deviation below 10 kg/m³ with zero means.
    """
    m = np.abs(np.asarray(mean, dtype=float))
    s = np.abs(np.asarray(std, dtype=float))
    if m.max() > 0 and m.max() < 10 and s.max() < 10:
        raise ValueError(f"{name} = {list(mean)} with std {list(std)}: these look like g/cm³ "
                         "(2.67 g/cm³ = 2670 kg/m³); the priors are density contrasts in kg/m³ "
                         "(e.g. a 0.23 g/cm³ contrast is 230 kg/m³)")
    if m.max() == 0 and s.max() < 10:
        warnings.warn(f"{name}: prior std {list(std)} kg/m³ is tiny: g/cm³? (0.15 g/cm³ = 150 kg/m³)",
                      DensityUnitsWarning, stacklevel=3)
    if m.max() >= 10:
        check_density_units(np.asarray(mean, dtype=float), name=name,
                            hint="Priors are unit density contrasts in kg/m³ (absolute minus a reference).")
