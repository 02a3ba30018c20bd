"""A depth-weighted least-squares start for the INR (the first model of a compact inversion).

Minimum-structure inversions start compact-body (sparse) solutions from a depth- or
sensitivity-weighted least-squares model, which puts mass at about the right depth;
gradient descent from a random network instead explains the data with shallow structure
first (the gradients ``Gᵀr`` decay with depth) and a compactness prior cannot move it
down again. This module computes that start in closed form and fits a field to it.

The start is the minimum weighted-norm model at the target misfit:
``m0 = b + s ⊙ w`` with ``w`` the posterior mean of ``w ~ N(0, I/λ)`` for the whitened
design ``G diag(s) / σ``, a flat prior on the mean contrast ``b``, λ set by the
discrepancy principle (χ²/N = target), and ``s = (d / d_ref)^(β/2)`` the depth weight
(:mod:`gempy_gravinv.inversion._depth`): penalising ``|m / s|²`` lets deep cells carry
mass at the same cost as shallow ones carry less. Units: kg/m³.
"""

from __future__ import annotations

import logging
import math
import time

import torch

from ._depth import depth_weight
from ._linear import HeadPosterior

logger = logging.getLogger(__name__)

#: Largest n_data x n_cells for which the start is computed (the design is held densely).
MAX_DESIGN = 1e8

#: Excess kurtosis of the least-squares image above which its sources are taken as sparse
#: (compact bodies). A Gaussian (distributed, smooth) field has 0; compact bodies give
#: heavy tails.
SPARSE_KURTOSIS = 1.0


def _posterior(prob, beta: float) -> tuple[HeadPosterior, torch.Tensor]:
    """The Gaussian posterior of the depth-weighted design and the weight ``s`` (n_cells,).

    With a regional (``prob.regional``) the whitened design and data are projected off
    its columns: the regional is integrated out.
    """
    G = prob.G if prob.G is not None else prob.op.dense()
    G = G.to(torch.float64)
    s = depth_weight(prob.depth, torch.as_tensor(prob.mesh.cell_centers), beta).to(G.device)
    A, b = prob.whiten(G * s[None, :])
    a0, _ = prob.whiten(G.sum(1)[:, None])
    return HeadPosterior(A, a0[:, 0], b), s


def _too_large(prob) -> bool:
    return prob.survey.n_data * prob.mesh.n_cells > MAX_DESIGN


def weighted_start(prob, beta: float, target: float) -> torch.Tensor | None:
    """The depth-weighted least-squares model (n_cells,) kg/m³, or None if too large.

    Parameters
    ----------
    prob : Problem
        Data, σ, operator, regional and the depth model of the inversion.
    beta : float
        Exponent β of the depth weight ``s``.
    target : float
        χ²/N of the start (the discrepancy principle).
    """
    n_data, n_cells = prob.survey.n_data, prob.mesh.n_cells
    if _too_large(prob):
        logger.info("no least-squares start: %d x %d design is above %.0e entries", n_data, n_cells, MAX_DESIGN)
        return None
    logger.info("least-squares start (depth weight β = %g): %d stations x %d cells", beta, n_data, n_cells)
    t0 = time.perf_counter()
    post, s = _posterior(prob, beta)
    lam = post.discrepancy(float(target))
    if math.isfinite(lam):
        w, b0 = post.weights(lam)
    else:
        w, b0 = torch.zeros(n_cells, dtype=torch.float64, device=s.device), float(post.a0 @ post.b) / post.a02
    logger.info("least-squares start done in %.1f s", time.perf_counter() - t0)
    return b0 + s * w


def fit_field(prob, field: torch.nn.Module, target: torch.Tensor, *, steps: int = 300, lr: float = 1e-2) -> float:
    """Fit ``field``'s cell densities to ``target`` (n_cells,) kg/m³ by Adam on the squared error.

    The target is clipped to 98% of the bounds of ``prob.cfg`` (a bounded output cannot
    reach them); the error is scaled by half the bounds range. Returns the final RMS
    misfit, kg/m³.
    """
    t = target.to(device=prob.device, dtype=prob.dtype)
    bounds = prob.cfg.bounds
    if bounds is not None:
        lo, hi = (float(b) for b in bounds)
        mid, half = (lo + hi) / 2, (hi - lo) / 2
        t = t.clamp(mid - 0.98 * half, mid + 0.98 * half)
        scale = half
    else:
        scale = float(t.abs().max()) or 1.0
    opt = torch.optim.Adam(field.parameters(), lr=lr)
    loss = torch.zeros(())
    for _ in range(int(steps)):
        loss = (((prob.cell_density(field) - t) / scale) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return float(loss.detach().sqrt()) * scale


def choose_prior(start: torch.Tensor) -> dict:
    """Compact or smooth: the prior the least-squares image calls for, with the reason.

    The depth-weighted least-squares image of compact bodies is a few peaked blobs on a
    quiet background (heavy tails: large excess kurtosis); that of a distributed, smooth
    field is itself about Gaussian (excess kurtosis near 0 or below). The rule:
    ``"compact"`` when the excess kurtosis exceeds :data:`SPARSE_KURTOSIS`, else
    ``"smooth"``.

    Parameters
    ----------
    start : Tensor (n_cells,)
        The least-squares model, kg/m³.

    Returns
    -------
    dict
        ``prior`` (``"compact"`` or ``"smooth"``), ``excess_kurtosis``, ``threshold`` and
        ``rule`` (a sentence for reports).
    """
    v = start.to(torch.float64)
    c = v - v.mean()
    var = float((c * c).mean())
    k = float((c**4).mean()) / var**2 - 3.0 if var > 0 else 0.0
    prior = "compact" if k > SPARSE_KURTOSIS else "smooth"
    rule = (f"excess kurtosis of the depth-weighted least-squares image {k:.2f} "
            f"{'>' if prior == 'compact' else '<='} {SPARSE_KURTOSIS:g}: "
            + ("sparse sources, minimum-support prior" if prior == "compact" else
               "distributed sources, a smooth prior"))
    return dict(prior=prior, excess_kurtosis=k, threshold=SPARSE_KURTOSIS, rule=rule)
