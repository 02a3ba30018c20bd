"""The noise level of the data, from the data: the evidence of a Matérn lattice model.

A prior that gives every cell its own independent value cannot tell noise from signal:
shallow cells fit any station cheaply. A Gaussian field with a Matérn covariance ties
neighbouring cells together, so a datum that disagrees with its neighbours is noise. For
such a field (the Fourier lattice of :mod:`gempy_gravinv.inversion._period`) with weight
precision λ and noise ``κ σ`` (σ the stated std of each station, κ a common factor),
the evidence ``p(d | λ, κ)`` has a closed form. With ``μ = κ² λ`` and the eigenvalues
``s²`` and data coordinates ``c`` of the whitened design,

``log p = -(n_e/2) log κ² - ½ Σ log(1 + s²/μ) - Q(μ) / (2κ²)``,
``Q(μ) = |b|² - Σ c² s² / (s² + μ)``,

where ``n_e`` is the number of stations less the bias and regional columns integrated
out. For each μ the best κ is ``κ² = Q(μ) / n_e``, so the two-parameter maximum is a
one-dimensional search over μ (type-II maximum likelihood of the noise, the "nugget" of
geostatistics, here with the gravity kernel between the field and the data).

The lattice must resolve the shortest wavelength the stations sample, or short-wavelength
signal is taken for noise: its harmonics follow the station spacing (Nyquist: two
stations per wavelength), between :data:`MIN_HARMONICS` and :data:`MAX_HARMONICS` along
the longest horizontal axis. The estimate is the κ of the model (period, ℓ, ν of the
lattice grid) of largest profiled evidence.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable

import torch

from ._depth import station_spacing
from ._linear import HeadPosterior, maximise_1d
from ._period import lattice_harmonics, lattice_posteriors

logger = logging.getLogger(__name__)

#: Fewest and most harmonics along the longest horizontal axis of the lattice used for the
#: noise estimate (the cost grows with their cube).
MIN_HARMONICS, MAX_HARMONICS = 2, 16
#: Largest design cost (stations x cells x features multiply-adds) of one lattice period.
DESIGN_BUDGET = 2e10


def profile_noise(post: HeadPosterior, n_eff: int) -> tuple[float, float, float, float]:
    """The noise factor κ and weight precision λ of largest evidence, and that log evidence.

    Parameters
    ----------
    post : HeadPosterior
        Whitened design and data (stations divided by their stated σ), bias projected out.
    n_eff : int
        Stations less the columns integrated out (bias, regional).

    Returns
    -------
    kappa : float
        The factor on the stated σ (dimensionless).
    lam : float
        The weight precision at that κ (per (kg/m³)² of the whitened design).
    log_evidence : float
        ``max log p(d | λ, κ)`` up to a constant independent of λ and κ, nats.
    n_params : float
        Effective number of field parameters the data determine there, ``Σ s²/(s² + μ)``.
    """
    s2, c2 = post.s2.to(torch.float64), (post.c ** 2).to(torch.float64)
    bb = float(post.bt @ post.bt)

    def profiled(log_mu: float) -> tuple[float, float]:
        mu = math.exp(log_mu)
        q = bb - float((c2 * s2 / (s2 + mu)).sum())
        k2 = max(q, 1e-300) / n_eff
        return float(-0.5 * n_eff * math.log(k2) - 0.5 * torch.log1p(s2 / mu).sum() - 0.5 * n_eff), k2

    top = math.log(float(s2.max())) if s2.numel() else 0.0
    log_mu = maximise_1d(lambda x: profiled(x)[0], top - 30.0, top + 12.0, 337)
    ev, k2 = profiled(log_mu)
    return math.sqrt(k2), math.exp(log_mu) / k2, ev, float((s2 / (s2 + math.exp(log_mu))).sum())


def noise_harmonics(mesh, locations, n_data: int) -> tuple[int, int]:
    """Harmonics of the noise lattice along the longest horizontal axis: ``(used, wanted)``.

    ``wanted``: two stations per shortest wavelength over one box (Nyquist for the median
    station spacing), within [:data:`MIN_HARMONICS`, :data:`MAX_HARMONICS`]. ``used``: the
    largest count up to ``wanted`` whose design ``G Φ`` (twice the box: the larger of the
    two periods) costs at most :data:`DESIGN_BUDGET` multiply-adds.
    """
    ext = [float(v) for v in mesh.extent]
    span = max(ext[1] - ext[0], ext[3] - ext[2])
    h = station_spacing(locations)
    wanted = math.ceil(span / (2 * h)) if h > 0 else MAX_HARMONICS
    wanted = int(min(MAX_HARMONICS, max(MIN_HARMONICS, wanted)))
    used = wanted
    while used > MIN_HARMONICS and 2 * math.prod(lattice_harmonics(ext, used)) * n_data * mesh.n_cells > DESIGN_BUDGET:
        used -= 1
    return used, wanted


def estimate_noise(prob, cfg, make_field: Callable) -> dict:
    """The noise level the data support, beside the stated one.

    Parameters
    ----------
    prob : Problem
        Data, stated σ (mGal), operator, cells and regional of the inversion.
    cfg : INRConfig
        The inversion's settings (the lattice is built from them, as the smooth prior is).
    make_field : callable
        ``make_field(cfg) -> field`` on the problem's mesh and device.

    Returns
    -------
    dict
        ``scale`` (κ: the estimated σ over the stated σ), ``std_median_mgal`` (the
        estimated σ, median over stations, mGal), ``stated_median_mgal``, the lattice of
        largest evidence (``period_factor``, ``length_m``, ``nu``, ``harmonics``),
        ``log_evidence`` and ``rule`` (a sentence for reports).
    """
    n_reg = 0 if prob.regional is None else int(prob.regional.n_params)
    n_eff = int(prob.survey.n_data) - 1 - n_reg
    if n_eff < 2:
        raise ValueError(f"{prob.survey.n_data} stations leave {n_eff} degrees of freedom after the bias and the "
                         "regional: too few to estimate the noise")
    cfg = dataclasses.replace(cfg, backend="inr")  # the lattice is a tool here, whatever field is trained
    k_max, wanted = noise_harmonics(prob.mesh, prob.survey.locations, int(prob.survey.n_data))
    best = None
    for f, ell, nu, harmonics, post in lattice_posteriors(prob, cfg, make_field, k_max):
        kappa, lam, ev, n_par = profile_noise(post, n_eff)
        if best is None or ev > best["log_evidence"]:
            best = dict(scale=kappa, lam=lam, log_evidence=ev, period_factor=f, length_m=ell, nu=nu,
                        harmonics=list(harmonics), effective_parameters=n_par, degrees_of_freedom=n_eff)
    stated = float(prob.std.detach().to(torch.float64).median())
    given = getattr(prob, "std_stated", True)
    best.update(std_median_mgal=best["scale"] * stated, stated_median_mgal=stated if given else None,
                resolves_stations=k_max >= wanted)
    said = (f"noise = {best['scale']:.3g} x the stated σ (median {best['std_median_mgal']:.3g} mGal; stated "
            f"{stated:.3g} mGal)" if given else f"noise σ = {best['std_median_mgal']:.3g} mGal at every station "
            "(no std stated)")
    best["rule"] = (f"evidence of a Matérn lattice field (ℓ = {best['length_m']:.4g} m, ν = {best['nu']:g}, "
                    f"{k_max} harmonics): {said}")
    if k_max < wanted:
        best["rule"] += (f"; the lattice is coarser than the station spacing ({k_max} of {wanted} harmonics): "
                         "short-wavelength signal counts as noise, so this is an upper bound")
    if best["effective_parameters"] > 0.5 * n_eff:
        best["rule"] += (f"; the field takes {best['effective_parameters']:.0f} of {n_eff} degrees of freedom: "
                         "too few stations to tell noise from signal, the estimate is weak")
    for warn in ("upper bound", "weak"):
        if warn in best["rule"]:
            logger.warning("noise estimate: %s", best["rule"])
            break
    logger.info("noise from the data: %s", best["rule"])
    return best
