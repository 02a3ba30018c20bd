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


class DensityUnitsWarning(UserWarning):
    """Densities that look like another unit (g/cm³ for kg/m³) or absolute values for contrasts."""


#: Largest plausible |density contrast| of rocks, kg/m³ (the bound of plausibility checks on models and data).
MAX_CONTRAST_KGM3: float = 5000.0
#: Largest magnitude a density in g/cm³ can have (osmium, the densest element: 22.6 g/cm³); beyond it,
#: kg/m³ (or a no-data value) were written.
MAX_GCC: float = 25.0
#: Smallest magnitude of a non-zero contrast model in kg/m³ that does not look like g/cm³.
_MIN_KGM3: float = 10.0
#: Non-zero contrasts all at or above this (kg/m³) look like absolute rock densities.
_ABSOLUTE_KGM3: float = 1000.0


def check_density_units(rho_kgm3, *, name: str = "density", max_abs: float = MAX_CONTRAST_KGM3,
                        hint: str = "") -> None:
    """Fail early on densities that look like g/cm³ or absolute values given as contrasts.

    A density *contrast* in kg/m³ of real rocks stays well inside ±5000 kg/m³; a
    non-zero model whose largest magnitude is below 10 kg/m³ is almost always a model in
    g/cm³ passed by mistake (1 g/cm³ = 1000 kg/m³, so 0.3 g/cm³ is 300 kg/m³); and a
    model whose non-zero values all lie at or above 1000 kg/m³ holds absolute rock
    densities (2670 kg/m³ = 2.67 g/cm³) rather than contrasts. The last two only warn
    (:class:`DensityUnitsWarning`): they can be meant (a terrain model of 2670 kg/m³
    against air); values beyond ``max_abs`` raise.

    Parameters
    ----------
    rho_kgm3 : array_like
        Density contrast in kg/m³.
    name : str
        Name used in the message.
    max_abs : float
        Largest plausible absolute contrast, kg/m³.
    hint : str
        Appended to the messages (e.g. the option that sets a reference density).

    Raises
    ------
    ValueError
        If any value is not finite or exceeds ``max_abs`` in magnitude.

    Warns
    -----
    DensityUnitsWarning
        The values look like g/cm³, or like absolute densities.
    """
    import warnings

    a = np.asarray(rho_kgm3, dtype=float)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf values")
    nz = np.abs(a[a != 0])
    if nz.size == 0:
        return
    m = float(nz.max())
    tail = f" {hint}" if hint else ""
    if m > max_abs:
        raise ValueError(
            f"{name} reaches {m:.4g} kg/m³ in magnitude: a density contrast in kg/m³ is expected "
            f"(|value| <= {max_abs:g}). Absolute densities? subtract a reference density first.{tail}"
        )
    if m < _MIN_KGM3:
        warnings.warn(
            f"{name} is at most {m:.3g} kg/m³ in magnitude: this looks like g/cm³ (0.3 g/cm³ = 300 kg/m³); "
            f"kg/m³ are expected: multiply by 1000.{tail}", DensityUnitsWarning, stacklevel=3)
    elif float(a[a != 0].min()) >= _ABSOLUTE_KGM3:
        warnings.warn(
            f"{name} lies between {float(a[a != 0].min()):.4g} and {float(a.max()):.4g} kg/m³: these look like "
            "absolute rock densities (2670 kg/m³ = 2.67 g/cm³), not density contrasts: subtract a reference "
            f"density.{tail}", DensityUnitsWarning, stacklevel=3)


def check_gcc_density(rho_gcc, *, name: str = "density (g/cm³)") -> None:
    """Refuse a density said to be in g/cm³ that holds values only kg/m³ can have.

    Parameters
    ----------
    rho_gcc : array_like
        Densities (absolute or contrast) in g/cm³; NaN entries (inactive cells) are skipped.
    name : str
        Name used in the message (e.g. the file).

    Raises
    ------
    ValueError
        A finite value beyond ±:data:`MAX_GCC` g/cm³ (no material is that dense: such a
        model is in kg/m³), or an infinite value.
    """
    a = np.asarray(rho_gcc, dtype=float)
    if np.isinf(a).any():
        raise ValueError(f"{name} contains inf values")
    fin = a[np.isfinite(a)]
    if fin.size and float(np.abs(fin).max()) > MAX_GCC:
        m = float(np.abs(fin).max())
        beyond = np.unique(fin[np.abs(fin) > MAX_GCC])
        marker = ""
        if beyond.size == 1 and beyond[0] < 0 and beyond[0] == round(beyond[0]):
            marker = (f", or {beyond[0]:g} marks cells without data (UBC model files mark inactive cells with "
                      "-99999 or -100)")
        raise ValueError(
            f"{name} reaches {m:.4g} in magnitude, but g/cm³ are expected (rocks: 1-4 g/cm³; nothing is denser "
            f"than {MAX_GCC:g}): values in kg/m³? divide them by 1000{marker}"
        )
