"""Closed-form prism and point-mass kernels for every gravity component (torch, any device).

Components (SimPEG's names): ``gx``, ``gy``, ``gz`` (acceleration, mGal) and ``gxx``,
``gxy``, ``gxz``, ``gyy``, ``gyz``, ``gzz``, ``guv`` (gradient tensor, Eötvös,
1 E = 1e-9 s⁻²). Frame: x east, y north, z up.

Signs. ``g = ∇Φ`` with the positive potential ``Φ = G ∫ ρ / |r' - r| dV`` (so ``g``
points toward excess mass) and ``g_ij = ∂g_i / ∂x_j`` (the station's coordinates):

- ``gx``, ``gy``: east / north components of the attraction (positive toward a mass to
  the east / north), as in SimPEG and choclo;
- ``gz``: **positive downward** (the package's convention: positive above excess mass),
  i.e. the *opposite* of SimPEG's / choclo's upward ``gz``;
- the tensor is SimPEG's / choclo's (z up): ``gzz`` is positive above excess mass,
  ``gxx + gyy + gzz = 0`` outside the masses, ``guv = (gyy - gxx) / 2``.

So only ``gz`` differs from SimPEG (:data:`SIMPEG_SIGN`).

Prism kernels are the corner functions of Nagy et al. (2000) in the cancellation-free
form of Fukushima (2020) used by choclo (``choclo.prism.kernel_*``): a prism's value is
``G Σ_corners s k(corner - station)`` with ``s = +1`` at the upper corner and alternating
signs (``_kernels.CORNER_SIGNS``). Each pair function returns ``k`` scaled so that
``_kernels.G_MGAL * k`` is in the component's unit (mGal or Eötvös) per kg/m³. The
second-order kernels are undefined when a station is on a prism corner (NaN there, as in
choclo); the first-order ones are finite everywhere.

Point-mass kernels (``kind="point"``): ``g_i = G m d_i / r³`` and
``g_ij = G m (3 d_i d_j - δ_ij r²) / r⁵`` with ``d`` the mass minus the station; the
returned value times ``_kernels.G_MGAL`` is per kg.
"""

from __future__ import annotations

import math

import torch

#: Every gravity component, in SimPEG's order of names.
COMPONENTS = ("gx", "gy", "gz", "gxx", "gxy", "gxz", "gyy", "gyz", "gzz", "guv")
#: Acceleration components (mGal); the others are gradients (Eötvös).
ACCELERATIONS = ("gx", "gy", "gz")
#: Unit of each component's data.
UNITS = {c: ("mGal" if c in ACCELERATIONS else "Eötvös") for c in COMPONENTS}
#: Eötvös per mGal-equivalent: the gradient kernels are scaled by this so that one
#: factor (G in mGal·m²/kg) turns every kernel into its unit (1 E = 1e-9 s⁻², 1 mGal = 1e-5 m/s²).
_EOTVOS_OVER_MGAL = 1e9 / 1e5
#: Our component value times this is SimPEG's (only gz is flipped: ours positive down).
SIMPEG_SIGN = {c: (-1.0 if c == "gz" else 1.0) for c in COMPONENTS}


def check_component(component) -> str:
    """Return ``component`` if it names a gravity component, else raise a clear ``ValueError``.

    Parameters
    ----------
    component : str
        One of :data:`COMPONENTS` (``"gz"``, ``"gxx"``...).

    Returns
    -------
    str
        The component name.
    """
    if not isinstance(component, str) or component not in COMPONENTS:
        raise ValueError(f"unknown gravity component {component!r}: use one of {', '.join(COMPONENTS)} "
                         "(x east, y north, z up; accelerations in mGal, gradients in Eötvös)")
    return component


def _safe_log(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """``ln(a + r)`` as choclo's ``_safe_log``: cancellation-free for a < 0; the limits at r = |a|.

    ``0`` where r = 0; ``-ln(-2a)`` where a < 0 and b = c = 0 (the limit term of the
    second-order kernels; first-order kernels multiply it by a vanishing coefficient).
    """
    pos = a >= 0
    num = torch.where(pos, a + r, b * b + c * c)
    den = torch.where(pos, torch.ones_like(r), r - a)
    ok = num > 0
    one = torch.ones_like(r)
    main = torch.log(torch.where(ok, num, one) / torch.where(den > 0, den, one))
    lim = torch.where(r > 0, -torch.log(torch.where(den > 0, den, one)), torch.zeros_like(r))
    return torch.where(ok, main, lim)


def _safe_atan2(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Arctangent as choclo's ``_safe_atan2``: ``atan(y / x)``; ``±π/2`` (sign of y) or 0 where x = 0."""
    nz = x != 0
    edge = torch.sign(y) * (math.pi / 2)
    return torch.where(nz, torch.atan(y / torch.where(nz, x, torch.ones_like(x))), edge)


def _radius(x, y, z):
    return torch.sqrt(x * x + y * y + z * z)


# ---------------------------------------------------------------- prism corner functions
# (x, y, z) = corner minus station, metres; r = |(x, y, z)|.
def prism_gx(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Corner function of the east component ``gx`` (choclo ``kernel_e``), metres."""
    r = _radius(x, y, z)
    return -(y * _safe_log(z, x, y, r) + z * _safe_log(y, z, x, r) - x * _safe_atan2(y * z, x * r))


def prism_gy(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Corner function of the north component ``gy`` (choclo ``kernel_n``), metres."""
    r = _radius(x, y, z)
    return -(z * _safe_log(x, y, z, r) + x * _safe_log(z, x, y, r) - y * _safe_atan2(x * z, y * r))


def _log_plus_r(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """ln(a + r) without cancellation; 0 where the argument vanishes (its coefficient does too).

    The first-order form of :func:`_safe_log`, without its limit term: fewer operations
    on the hot g_z path.
    """
    pos = a >= 0
    num = torch.where(pos, a + r, b * b + c * c)
    den = torch.where(pos, torch.ones_like(r), r - a)
    ok = num > 0
    return torch.where(ok, torch.log(torch.where(ok, num, torch.ones_like(num)) / den), torch.zeros_like(num))


def prism_gz(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Corner function of ``gz`` **positive downward** (minus choclo ``kernel_u``), metres.

    ``G * ρ * Σ_corners s K`` is g_z in m/s², positive downward; (x, y, z) are the corner
    coordinates minus the station's, metres, z up.
    """
    r = _radius(x, y, z)
    t = x * _log_plus_r(y, x, z, r) + y * _log_plus_r(x, y, z, r)
    zr = z * r
    ok = zr != 0
    at = torch.atan(x * y / torch.where(ok, zr, torch.ones_like(zr)))
    return t - torch.where(ok, z * at, torch.zeros_like(zr))


def prism_gxx(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Corner function of ``gxx`` (choclo ``kernel_ee``), scaled to Eötvös (see module notes)."""
    r = _radius(x, y, z)
    return -_safe_atan2(y * z, x * r) * _EOTVOS_OVER_MGAL


def prism_gyy(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Corner function of ``gyy`` (choclo ``kernel_nn``), scaled to Eötvös."""
    r = _radius(x, y, z)
    return -_safe_atan2(x * z, y * r) * _EOTVOS_OVER_MGAL


def prism_gzz(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Corner function of ``gzz`` (choclo ``kernel_uu``), scaled to Eötvös."""
    r = _radius(x, y, z)
    return -_safe_atan2(x * y, z * r) * _EOTVOS_OVER_MGAL


def prism_gxy(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Corner function of ``gxy`` (choclo ``kernel_en``: ln(z + r)), scaled to Eötvös."""
    r = _radius(x, y, z)
    return _safe_log(z, x, y, r) * _EOTVOS_OVER_MGAL


def prism_gxz(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Corner function of ``gxz`` (choclo ``kernel_eu``: ln(y + r)), scaled to Eötvös."""
    r = _radius(x, y, z)
    return _safe_log(y, x, z, r) * _EOTVOS_OVER_MGAL


def prism_gyz(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Corner function of ``gyz`` (choclo ``kernel_nu``: ln(x + r)), scaled to Eötvös."""
    r = _radius(x, y, z)
    return _safe_log(x, y, z, r) * _EOTVOS_OVER_MGAL


def prism_guv(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Corner function of ``guv = (gyy - gxx) / 2``, scaled to Eötvös."""
    r = _radius(x, y, z)
    return 0.5 * (_safe_atan2(y * z, x * r) - _safe_atan2(x * z, y * r)) * _EOTVOS_OVER_MGAL


# ---------------------------------------------------------------- point-mass pair functions
def _point_first(d: torch.Tensor, x, y, z) -> torch.Tensor:
    r2 = x * x + y * y + z * z
    ok = r2 > 0
    return torch.where(ok, d / torch.where(ok, r2, torch.ones_like(r2)) ** 1.5, torch.zeros_like(r2))


def _point_second(di, dj, x, y, z, diagonal: bool) -> torch.Tensor:
    r2 = x * x + y * y + z * z
    ok = r2 > 0
    s = torch.where(ok, r2, torch.ones_like(r2))
    num = 3 * di * dj - (s if diagonal else 0.0)
    return torch.where(ok, num / s**2.5, torch.zeros_like(r2)) * _EOTVOS_OVER_MGAL


def _point(component: str):
    axes = {"x": 0, "y": 1, "z": 2}

    if component in ACCELERATIONS:
        ax = axes[component[1]]
        sign = -1.0 if component == "gz" else 1.0  # gz positive downward

        def f(x, y, z):
            return sign * _point_first((x, y, z)[ax], x, y, z)
    elif component == "guv":
        def f(x, y, z):
            return 0.5 * (_point_second(y, y, x, y, z, True) - _point_second(x, x, x, y, z, True))
    else:
        i, j = axes[component[1]], axes[component[2]]

        def f(x, y, z):
            d = (x, y, z)
            return _point_second(d[i], d[j], x, y, z, i == j)
    f.__name__ = f"point_{component}"
    f.__doc__ = f"Point-mass pair function of ``{component}`` (see the module notes for units and sign)."
    return f


#: prism corner functions by component
PRISM_COMPONENTS = {"gx": prism_gx, "gy": prism_gy, "gz": prism_gz, "gxx": prism_gxx, "gxy": prism_gxy,
                    "gxz": prism_gxz, "gyy": prism_gyy, "gyz": prism_gyz, "gzz": prism_gzz, "guv": prism_guv}
#: point-mass pair functions by component
POINT_COMPONENTS = {c: _point(c) for c in COMPONENTS}


def kernel_kind(kernel: str, component: str) -> str:
    """Name of the pair function for a kernel (``"prism"``/``"point"``) and a component.

    ``gz`` keeps the historical names ``"prism"`` and ``"point"``; the others are
    ``"prism_gxx"``, ``"point_gx"``... (the keys of ``_kernels.PAIR_KERNELS``).
    """
    check_component(component)
    return kernel if component == "gz" else f"{kernel}_{component}"


def component_pair_kernels() -> dict:
    """Every pair function by kind name (:func:`kernel_kind`: ``"prism"``, ``"point_gx"``...), for ``_kernels``."""
    out = {}
    for c in COMPONENTS:
        out[kernel_kind("prism", c)] = PRISM_COMPONENTS[c]
        out[kernel_kind("point", c)] = POINT_COMPONENTS[c]
    return out
