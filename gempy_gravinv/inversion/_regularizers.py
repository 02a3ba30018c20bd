"""Model priors R(m) on cell densities for the INR trainer (one job: the prior terms).

Every regulariser maps cell densities ``m`` (kg/m³, shape ``(n_cells,)``, discretize cell
order: x fastest, then y, then z from the bottom) to a dimensionless scalar tensor,
differentiably. :func:`make_regularizer` builds the one named by an
:class:`~gempy_gravinv.inversion.INRConfig`.

- ``"tv"`` / ``"smooth"``: anisotropic total variation / squared first differences of
  ``m / ρs`` between neighbouring cells of a full tensor mesh.
- ``"min_support"``: minimum support (Last & Kubik 1983; Portniaguine & Zhdanov 1999),
  ``mean(w²m² / (w²m² + ε²))`` with a depth weight ``w``: counts the cells that carry a
  contrast, so it favours compact bodies. Any mesh.
- ``"matern"``: the Gaussian-process (Matérn / SPDE, Lindgren et al. 2011) prior
  ``mᵀ C⁻¹ m`` with spectrum ``P(k) ∝ (|k|² + ℓ⁻²)^(-ν-3/2)``, evaluated with an
  orthonormal DCT-II on a uniform tensor mesh (Neumann boundaries: no periodic wrap):
  ``R = mean_k |DCT(m/ρs)_k|² (1 + ℓ²|k|²)^(ν+3/2)``; or, with ``boundary="periodic"``,
  the same spectrum on the FFT grid (the mesh box wraps around: the covariance of an
  FFT-generated random field). Its minimiser under a misfit constraint is the kriging /
  posterior-mean estimate for that covariance.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._mesh import PrismMesh
from .._validation import check_choice

REGULARIZATIONS = ("none", "tv", "smooth", "min_support", "matern")


def depth_reference(mesh: PrismMesh, z0: float | None) -> tuple[float, float, float]:
    """``(z_top, z_ref, z0)`` in metres of the depth weight on ``mesh``.

    ``z_top`` is the mesh top, ``z_ref = Δz/2`` (half the smallest cell height: the
    top cell centre's depth, where the weight is 1) and ``z0`` the depth offset
    (``z_ref`` when None).
    """
    top = float(mesh.extent[5])
    zref = float(mesh.cell_widths[:, 2].min()) / 2
    return top, zref, zref if z0 is None else float(z0)


def depth_power(z: torch.Tensor, z_top: float, z_ref: float, z0: float, beta: float) -> torch.Tensor:
    """``((z_top - z + z0) / (z_ref + z0))^(β/2)`` (dimensionless) at elevations z (m, z up)."""
    depth = (z_top - z).clamp_min(0.0)
    return ((depth + z0) / (z_ref + z0)) ** (beta / 2)


def depth_scale(z: torch.Tensor, mesh: PrismMesh, z0: float | None, beta: float) -> torch.Tensor:
    """``((z_top - z + z0) / (Δz/2 + z0))^(β/2)``: 1 at the top cell's centre, growing with depth.

    Parameters
    ----------
    z : Tensor (n,)
        Elevations, metres (z up).
    mesh : PrismMesh
        Gives the top ``z_top`` (m) and the smallest cell height ``Δz`` (m).
    z0 : float or None
        Depth offset, metres (None: ``Δz/2``).
    beta : float
        Exponent β (dimensionless); 0 gives ones.
    """
    return depth_power(z, *depth_reference(mesh, z0), beta)


def _full_shape(mesh: PrismMesh, name: str) -> tuple[int, int, int]:
    shp = mesh.shape
    if shp is None or int(np.prod(shp)) != mesh.n_cells:
        raise ValueError(f"regularization={name!r} needs a full tensor mesh (mesh.shape); "
                         "this mesh has none or has inactive cells")
    return tuple(int(s) for s in shp)


class Differences:
    """``"tv"`` (``Σ_axes mean(√((Δm/ρs)² + ε²) - ε)``) or ``"smooth"`` (``Σ_axes mean((Δm/ρs)²)``)."""

    def __init__(self, mesh: PrismMesh, kind: str, rho_s: float, eps: float) -> None:
        self.shape = _full_shape(mesh, kind)
        self.kind, self.rho_s, self.eps = kind, float(rho_s), float(eps)

    def __call__(self, m: torch.Tensor) -> torch.Tensor:
        nx, ny, nz = self.shape
        v = (m / self.rho_s).reshape(nz, ny, nx)
        diffs = (v[1:] - v[:-1], v[:, 1:] - v[:, :-1], v[:, :, 1:] - v[:, :, :-1])
        if self.kind == "tv":
            e = self.eps
            return sum((torch.sqrt(dd * dd + e * e) - e).mean() for dd in diffs)
        return sum((dd * dd).mean() for dd in diffs)


class MinSupport:
    """``mean(w²m² / (w²m² + ε²))``, ``w`` = :func:`depth_scale` with power ``beta``, ε in kg/m³."""

    def __init__(self, mesh: PrismMesh, eps: float, beta: float, z0: float | None, device, dtype) -> None:
        zc = torch.as_tensor(mesh.cell_centers[:, 2], device=device, dtype=dtype)
        self.w = depth_scale(zc, mesh, z0, beta)
        self.eps2 = float(eps) ** 2

    def __call__(self, m: torch.Tensor) -> torch.Tensor:
        wm = self.w * m
        return (wm * wm / (wm * wm + self.eps2)).mean()


def _dct_matrix(n: int, dtype, device) -> torch.Tensor:
    """Orthonormal DCT-II matrix (n, n): ``X = D x``."""
    j = np.arange(n)
    d = np.cos(np.pi * (j[None, :] + 0.5) * j[:, None] / n) * np.sqrt(2.0 / n)
    d[0] /= np.sqrt(2.0)
    return torch.as_tensor(d, dtype=dtype, device=device)


BOUNDARIES = ("neumann", "periodic")


class Matern:
    """Gaussian-process prior ``mean_k |T(m/ρs)_k|² (1 + ℓ²|k|²)^(ν+3/2)`` on a uniform tensor mesh.

    ``boundary="neumann"``: ``T`` is the orthonormal DCT-II and ``|k|²`` the sum over axes
    of ``(π j / (n h))²`` (rad/m) for ``n`` cells of width ``h``: no wrap-around.
    ``boundary="periodic"``: ``T`` is the orthonormal FFT and ``k`` the FFT wavenumbers
    ``2π fftfreq(n, h)``: the box wraps around (opposite faces are neighbours), the
    covariance of a field generated by FFT on the mesh. ℓ (m) is the correlation length,
    ν the smoothness.
    """

    def __init__(self, mesh: PrismMesh, length: float, nu: float, rho_s: float, device, dtype,
                 boundary: str = "neumann") -> None:
        check_choice(boundary, BOUNDARIES, name="prior_boundary")
        self.shape = _full_shape(mesh, "matern")
        widths = []
        for ax in range(len(self.shape)):
            h = np.unique(np.round(mesh.cell_widths[:, ax], 9))
            if h.size != 1:
                raise ValueError(f"regularization='matern' needs uniform cells along each axis; axis {'xyz'[ax]} "
                                 f"has widths {h[:4].tolist()}... (use 'smooth' on a graded mesh)")
            widths.append(float(h[0]))
        self.rho_s = float(rho_s)
        self.periodic = boundary == "periodic"
        if self.periodic:
            k2 = [torch.as_tensor((2 * math.pi * np.fft.fftfreq(n, h)) ** 2, dtype=dtype, device=device)
                  for n, h in zip(self.shape, widths)]
        else:
            self.D = [_dct_matrix(n, dtype, device) for n in self.shape]
            k2 = [torch.as_tensor((math.pi * np.arange(n) / (n * h)) ** 2, dtype=dtype, device=device)
                  for n, h in zip(self.shape, widths)]
        kx, ky, kz = k2
        ksum = kz[:, None, None] + ky[None, :, None] + kx[None, None, :]  # (nz, ny, nx)
        self.weight = (1.0 + float(length) ** 2 * ksum) ** (float(nu) + 1.5)

    def __call__(self, m: torch.Tensor) -> torch.Tensor:
        nx, ny, nz = self.shape
        v = (m / self.rho_s).reshape(nz, ny, nx)
        if self.periodic:
            c = torch.fft.fftn(v, norm="ortho")
            return ((c.real * c.real + c.imag * c.imag) * self.weight).mean()
        dx, dy, dz = self.D
        c = torch.einsum("ai,bj,ck,ijk->abc", dz, dy, dx, v)
        return (c * c * self.weight).mean()


def make_regularizer(cfg, mesh: PrismMesh, device, dtype):
    """The regulariser named by ``cfg.regularization`` (None for ``"none"`` or a zero weight).

    ``ρs`` (kg/m³), the scale of ``"tv"``, ``"smooth"`` and ``"matern"``, is half the
    bounds range (100 kg/m³ without bounds).
    """
    name = cfg.regularization
    if name == "none" or cfg.reg_weight == 0:
        return None
    if cfg.bounds is not None:
        lo, hi = (float(b) for b in cfg.bounds)
        rho_s = (hi - lo) / 2
    else:
        rho_s = 100.0
    if name == "min_support":
        return MinSupport(mesh, cfg.support_eps, cfg.reg_depth_power, cfg.depth_z0, device, dtype)
    if name == "matern":
        if cfg.prior_length is None:
            raise ValueError("regularization='matern' needs prior_length (the correlation length, m)")
        return Matern(mesh, cfg.prior_length, cfg.prior_nu, rho_s, device, dtype, cfg.prior_boundary)
    if name in ("tv", "smooth"):
        return Differences(mesh, name, rho_s, cfg.reg_eps)
    check_choice(name, REGULARIZATIONS, name="regularization")
    raise AssertionError(f"regularization {name!r} has no builder")
