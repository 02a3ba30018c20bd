"""Physical constants, unit conversions and sign conventions (the one place they live).

Conventions inside gempy_gravinv:

- coordinates in metres, right-handed, z up (elevation);
- density as a *contrast* in kg/m³;
- gravity as the g_z anomaly in mGal, **positive downward** (excess mass below a
  station gives positive g_z, as on Bouguer maps).

SimPEG and GemPy report the upward component (negative for excess mass) and use
g/cm³; the adapters call the functions here and nowhere else convert.
"""

from __future__ import annotations

import numpy as np

#: Newton's gravitational constant, m³ kg⁻¹ s⁻² (CODATA 2018).
G: float = 6.67430e-11
#: One milligal in m/s².
MGAL: float = 1e-5
#: Factor from SI acceleration (m/s²) to mGal.
SI_TO_MGAL: float = 1.0 / MGAL
#: kg/m³ per g/cm³.
GCC_TO_KGM3: float = 1000.0


def gcc_to_kgm3(rho_gcc):
    """Convert density from g/cm³ to kg/m³.

    Parameters
    ----------
    rho_gcc : array_like or torch.Tensor
        Density (or contrast) in g/cm³.

    Returns
    -------
    same type as input
        Density in kg/m³ (multiplied by 1000).
    """
    return rho_gcc * GCC_TO_KGM3


def kgm3_to_gcc(rho_kgm3):
    """Convert density from kg/m³ to g/cm³.

    Parameters
    ----------
    rho_kgm3 : array_like or torch.Tensor
        Density (or contrast) in kg/m³.

    Returns
    -------
    same type as input
        Density in g/cm³ (divided by 1000).
    """
    return rho_kgm3 / GCC_TO_KGM3


def gz_from_upward(gz_up):
    """Flip an upward g_z (SimPEG's / GemPy's sign) to ours (positive downward).

    Parameters
    ----------
    gz_up : array_like or torch.Tensor
        Vertical gravity, upward component (negative for excess mass below), mGal.

    Returns
    -------
    same type as input
        g_z positive downward, mGal.
    """
    return -gz_up


def gz_to_upward(gz_down):
    """Flip our g_z (positive downward) to the upward component used by SimPEG/GemPy.

    Parameters
    ----------
    gz_down : array_like or torch.Tensor
        g_z positive downward (positive for excess mass below), mGal.

    Returns
    -------
    same type as input
        Upward component, mGal (negative for excess mass below).
    """
    return -gz_down


def check_density_units(rho_kgm3, *, name: str = "density", max_abs: float = 5000.0) -> None:
    """Fail early on densities that look like g/cm³ or absolute values given as contrasts.

    A density *contrast* in kg/m³ of real rocks stays well inside ±5000 kg/m³, and a
    non-zero model whose largest magnitude is below 10 kg/m³ is almost always a model in
    g/cm³ passed by mistake (1 g/cm³ = 1000 kg/m³). Only warns for the latter; raises for
    values beyond ``max_abs``.

    Parameters
    ----------
    rho_kgm3 : array_like
        Density contrast in kg/m³.
    name : str
        Name used in the message.
    max_abs : float
        Largest plausible absolute contrast, kg/m³.

    Raises
    ------
    ValueError
        If any value is not finite or exceeds ``max_abs`` in magnitude.
    """
    a = np.asarray(rho_kgm3, dtype=float)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf values")
    m = float(np.max(np.abs(a))) if a.size else 0.0
    if m > max_abs:
        raise ValueError(
            f"{name} reaches {m:.4g} kg/m³ in magnitude: a density contrast in kg/m³ is expected "
            f"(|value| <= {max_abs:g}). Absolute densities? subtract a reference density first."
        )
