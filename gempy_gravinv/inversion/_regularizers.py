"""Model priors R(m) on cell densities for the INR trainer (one job: the prior terms).

Every regulariser maps cell densities ``m`` (kg/m³, shape ``(n_cells,)``, discretize cell
order: x fastest, then y, then z from the bottom) to a dimensionless scalar tensor,
differentiably, as ``R(m, step)``: ``step`` is the number of steps the prior has acted
(None: its final form), which only a cooled minimum-support ε reads.
:func:`make_regularizer` builds the one named by an :class:`~gempy_gravinv.inversion.INRConfig`.

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

import logging
import math

import numpy as np
import torch

from .._mesh import PrismMesh
from .._validation import check_choice
from ._depth import MeshTopDepth, depth_weight

logger = logging.getLogger(__name__)

REGULARIZATIONS = ("none", "tv", "smooth", "min_support", "matern")


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

    def __call__(self, m: torch.Tensor, step: int | None = None) -> torch.Tensor:
        nx, ny, nz = self.shape
        v = (m / self.rho_s).reshape(nz, ny, nx)
        diffs = (v[1:] - v[:-1], v[:, 1:] - v[:, :-1], v[:, :, 1:] - v[:, :, :-1])
        if self.kind == "tv":
            e = self.eps
            return sum((torch.sqrt(dd * dd + e * e) - e).mean() for dd in diffs)
        return sum((dd * dd).mean() for dd in diffs)


#: Percentile of the start's weighted amplitude ``|w m₀|`` where a cooled ε begins
SUPPORT_PERCENTILE = 90.0
#: Factor by which a cooled ε falls over its cooling steps
SUPPORT_COOLING = 3.0


def volume_percentile(values: np.ndarray, volumes: np.ndarray, q: float) -> float:
    """The ``q``-th percentile (0–100) of cell ``values`` (n,) weighted by cell ``volumes`` (n,), m³.

    The smallest value whose cells, with every smaller value's, hold ``q`` % of the volume.
    On cells of one size, the lower ``q``-th percentile of the values.
    """
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(np.asarray(volumes, dtype=np.float64)[order])
    i = min(int(np.searchsorted(cum, q / 100.0 * cum[-1])), order.size - 1)
    return float(values[order[i]])


class MinSupport:
    """``mean(w²m² / (w²m² + ε²))``, ε in kg/m³, ``w`` the depth weight with power ``beta``.

    ``w = (d / d_ref)^(β/2)`` with ``d`` the depth of the cell centres given by ``depth``
    (a model of :mod:`gempy_gravinv.inversion._depth`).

    With a starting model ``start`` (kg/m³) and ``cooling_steps > 0``, ε is cooled as in
    iteratively reweighted sparse inversions: it begins at the
    :data:`SUPPORT_PERCENTILE`-th percentile ``a`` of the start's weighted amplitude
    ``|w m₀|`` by volume over the cells the data constrain (``inside``, e.g. those under
    the stations' hull; all cells by default), so that refining a mesh, or padding it,
    does not move ``a``, and falls geometrically to ``a /`` :data:`SUPPORT_COOLING` over
    ``cooling_steps`` steps of the prior, never above the given ``eps``:
    ``ε(k) = min(eps, a · 3^(-min(k / cooling_steps, 1)))``. A threshold set from the
    model's own amplitude lets the penalty count cells where a fixed one, far above a
    faint start, acts as a plain quadratic damping everywhere. Without a start, with
    ``cooling_steps=0``, or where ``a / 3 >= eps`` (ε would never move), ε is ``eps``
    at every step and :attr:`cooling_steps` is 0.
    """

    def __init__(self, mesh: PrismMesh, eps: float, beta: float, depth, device, dtype,
                 start: torch.Tensor | None = None, cooling_steps: int = 0,
                 inside: np.ndarray | None = None) -> None:
        cc = torch.as_tensor(mesh.cell_centers)
        self.w = depth_weight(depth, cc, beta).to(device=device, dtype=dtype)
        self.eps = float(eps)
        self.eps_start, self.cooling_steps = self.eps, 0
        if start is not None and cooling_steps > 0:
            amp = np.abs(self.w.double().cpu().numpy() * start.double().cpu().numpy())
            keep = np.ones(amp.shape, dtype=bool) if inside is None or not np.any(inside) else np.asarray(inside)
            a = volume_percentile(amp[keep], np.asarray(mesh.volumes, dtype=np.float64)[keep], SUPPORT_PERCENTILE)
            if 0 < a < SUPPORT_COOLING * self.eps and math.isfinite(a):  # else ε would stay at eps throughout
                self.eps_start, self.cooling_steps = a, int(cooling_steps)

    def eps_at(self, step: int | None = None) -> float:
        """ε (kg/m³) after ``step`` steps of the prior (None: the final ε)."""
        if self.cooling_steps == 0:
            return self.eps
        frac = 1.0 if step is None else min(max(step, 0) / self.cooling_steps, 1.0)
        return min(self.eps, self.eps_start * SUPPORT_COOLING ** (-frac))

    def schedule(self) -> dict:
        """``eps_start``, ``eps_end`` (kg/m³) and ``cooling_steps``: the ε of this prior, for reports."""
        return dict(eps_start=self.eps_at(0), eps_end=self.eps_at(None), cooling_steps=self.cooling_steps)

    def __call__(self, m: torch.Tensor, step: int | None = None) -> torch.Tensor:
        wm = self.w * m
        e2 = self.eps_at(step) ** 2
        return (wm * wm / (wm * wm + e2)).mean()


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

    def __call__(self, m: torch.Tensor, step: int | None = None) -> torch.Tensor:
        nx, ny, nz = self.shape
        v = (m / self.rho_s).reshape(nz, ny, nx)
        if self.periodic:
            c = torch.fft.fftn(v, norm="ortho")
            return ((c.real * c.real + c.imag * c.imag) * self.weight).mean()
        dx, dy, dz = self.D
        c = torch.einsum("ai,bj,ck,ijk->abc", dz, dy, dx, v)
        return (c * c * self.weight).mean()


def make_regularizer(cfg, mesh: PrismMesh, device, dtype, depth=None, start: torch.Tensor | None = None,
                     inside: np.ndarray | None = None):
    """The regulariser named by ``cfg.regularization`` (None for ``"none"`` or a zero weight).

    ``ρs`` (kg/m³), the scale of ``"tv"``, ``"smooth"`` and ``"matern"``, is half the
    bounds range (100 kg/m³ without bounds). ``start`` (n_cells,) kg/m³: the starting
    model that a cooled minimum-support ε is set from (``cfg.support_cooling``), over the
    cells ``inside`` (bool (n_cells,); all by default).
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
        if depth is None:
            depth = MeshTopDepth(mesh, cfg.depth_z0)
        eps = cfg.support_eps
        if eps is None:
            eps = max(abs(float(b)) for b in cfg.bounds) / 12 if cfg.bounds is not None else 50.0
        steps = int(round(cfg.support_cooling * cfg.max_steps))
        if steps and start is None:
            logger.info("support_cooling=%g has no least-squares start to set ε from (warm_start=%r, or the "
                        "problem is too large for one): ε fixed at %.3g kg/m³", cfg.support_cooling,
                        cfg.warm_start, eps)
        return MinSupport(mesh, eps, cfg.reg_depth_power, depth, device, dtype, start, steps, inside)
    if name == "matern":
        if cfg.prior_length is None:
            raise ValueError("regularization='matern' needs prior_length (the correlation length, m)")
        return Matern(mesh, cfg.prior_length, cfg.prior_nu, rho_s, device, dtype, cfg.prior_boundary)
    if name in ("tv", "smooth"):
        return Differences(mesh, name, rho_s, cfg.reg_eps)
    check_choice(name, REGULARIZATIONS, name="regularization")
    raise AssertionError(f"regularization {name!r} has no builder")
