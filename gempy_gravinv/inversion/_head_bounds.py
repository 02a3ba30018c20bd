"""The closed-form head's model held within density bounds.

The linear Gaussian model of :mod:`gempy_gravinv.inversion._linear` has no bounds: its
posterior mean can leave a user's ``(lo, hi)`` (a one-signed contrast, a smooth field's
overshoot). :func:`bounded_head` returns the model of largest posterior density within
the bounds: among heads (weights ``w`` and mean ``b0``) whose cell values
``m = b0 + Φ w`` all lie in ``[lo, hi]``, the one nearest the unbounded mean in the
posterior precision's metric ``K`` (the posterior is Gaussian, so this is its mode
under the bounds). This is a convex quadratic programme; with the head written as the
unbounded mean plus ``K^(-1/2) z`` it reads

    minimise ½ |z|²  subject to  lo ≤ m0 + B z ≤ hi,  B = Φ' K^(-1/2),

over the cells, where ``Φ'`` maps the head to cell values. It is solved by a quadratic
penalty ``½ |z|² + ½ μ Σ viol²``, whose piecewise-quadratic minimum a damped semismooth
Newton iteration finds (each step solves the quadratic of the cells violated now, on the
smaller side: cells or weights), with μ raised tenfold from the cells' posterior
precision to 10⁸ times it, each stage started from the last. Only cells that the
unbounded model, or an iterate, puts beyond the bounds enter the problem. What the
penalty leaves beyond a bound (about 1e-8 of the posterior std) is clipped and reported.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import torch

logger = logging.getLogger(__name__)

#: penalty on a violation, relative to the cells' posterior precision: violations left ~1e-8 of the std
PENALTY = 1e8
#: rounds of adding the cells an iterate puts beyond the bounds
MAX_ROUNDS = 8
#: semismooth Newton steps per round
MAX_STEPS = 50


def _violation(m: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Signed excess beyond the bounds (0 inside)."""
    return torch.clamp(m - hi, min=0.0) - torch.clamp(lo - m, min=0.0)


def _penalised_step(Bt: torch.Tensor, g: torch.Tensor, mu: float) -> torch.Tensor:
    """``argmin_z ½|z|² + ½ μ |Bt z - g|²``: on the smaller side (cells or weights) of ``Bt``."""
    if Bt.shape[0] <= Bt.shape[1]:  # z = Btᵀ (Bt Btᵀ + I/μ)⁻¹ g
        M = Bt @ Bt.T
        M.diagonal().add_(1.0 / mu)
        return Bt.T @ torch.linalg.solve(M, g)
    M = Bt.T @ Bt  # z = (Btᵀ Bt + I/μ)⁻¹ Btᵀ g
    M.diagonal().add_(1.0 / mu)
    return torch.linalg.solve(M, Bt.T @ g)


def _minimise_penalty(B: torch.Tensor, base: torch.Tensor, lo: float, hi: float, mu: float,
                      z: torch.Tensor) -> torch.Tensor:
    """``argmin_z ½|z|² + ½ μ |viol(base + B z)|²`` by damped semismooth Newton from ``z``.

    The objective is convex with a piecewise-constant Hessian: each step solves the
    quadratic of the cells violated now (:func:`_penalised_step`) and backtracks (Armijo)
    along the step; it ends where a full step keeps the violated set, the piece's own
    minimum.
    """
    def f(v: torch.Tensor) -> float:
        e = _violation(base + B @ v, lo, hi)
        return 0.5 * float(v @ v) + 0.5 * mu * float(e @ e)

    fz = f(z)
    for _ in range(MAX_STEPS):
        m = base + B @ z
        T = _violation(m, lo, hi) != 0
        if not bool(T.any()):
            return z
        Bt, cur = B[T], base[T]
        target = torch.where(m[T] > hi, torch.full_like(cur, hi), torch.full_like(cur, lo))
        d = _penalised_step(Bt, target - cur, mu) - z  # to the minimum of this piece's quadratic
        slope = float(z @ d) + mu * float(_violation(m, lo, hi) @ (B @ d))
        t = 1.0
        while t > 1e-12:
            fn = f(z + t * d)
            if fn <= fz + 1e-4 * t * slope:
                break
            t *= 0.5
        z, fz = z + t * d, fn
        if t == 1.0 and torch.equal(_violation(base + B @ z, lo, hi) != 0, T):
            return z
    return z


def bounded_head(post, lam: float, w0: torch.Tensor, b0: float, m0: torch.Tensor, bounds: tuple[float, float],
                 rows: Callable[[np.ndarray], torch.Tensor], model: Callable[[torch.Tensor, float], torch.Tensor],
                 *, mean_as_weight: bool) -> dict:
    """The head of largest posterior density with every cell's value within ``bounds``.

    The variables are the weights and the mean contrast. Where the mean is a weight
    (``mean_as_weight``) all share the prior precision λ: ``K = AᵀA + λ I`` on the
    design ``[G 1, G Φ] / σ``. Where it has a flat prior it is written
    ``b0 = b0_LS(w) + β`` (``b0_LS`` its least-squares value given the weights), which
    splits the posterior precision into ``ÃᵀÃ + λ I`` for the weights (``Ã`` the design
    projected off the mean's column ``a0``) and ``|a0|²`` for ``β``.

    Parameters
    ----------
    post : HeadPosterior
        The posterior of the whitened design (``V``, ``s2``; ``a0``, ``A``, ``b`` where
        the mean is flat).
    lam : float
        The prior precision λ of a weight, per (kg/m³)².
    w0 : Tensor (F,)
        The unbounded posterior mean's weights, float64 (without the mean).
    b0 : float
        Its mean contrast, kg/m³.
    m0 : Tensor (n_cells,)
        Its model, kg/m³, float64.
    bounds : (float, float)
        ``(lo, hi)``, kg/m³, ``lo < hi``.
    rows : callable
        ``rows(idx) -> Φ[idx]`` (len(idx), F): the features of cells ``idx``.
    model : callable
        ``model(w, b0) -> m`` (n_cells,) kg/m³: ``b0 + Φ w`` on every cell.
    mean_as_weight : bool
        The mean is a weight under λ (else it has a flat prior).

    Returns
    -------
    dict
        ``w`` (F,) float64, ``b0`` (kg/m³), ``model`` (n_cells,) within the bounds,
        ``cells_at_bounds`` (how many cells end on a bound), ``cells_beyond_unbounded``
        (how many the unbounded model put beyond), ``largest_excess_unbounded_kgm3``
        (how far, at most), ``largest_clip_kgm3`` (the penalty's remainder, clipped).
    """
    lo, hi = float(bounds[0]), float(bounds[1])
    V = post.V
    inv_sqrt = 1.0 / torch.sqrt(post.s2 + lam)
    lam_isqrt = 1.0 / math.sqrt(lam)

    def k_inv_sqrt(x: torch.Tensor) -> torch.Tensor:
        """``x K^(-1/2)`` for x (k, n) of the weights' (or weights and mean's) precision K (symmetric)."""
        xv = x @ V
        return (xv * inv_sqrt[None, :]) @ V.T + lam_isqrt * (x - xv @ V.T)

    if mean_as_weight:  # u = [b0, w]: one precision for all
        u0 = torch.cat([w0.new_tensor([b0]), w0])

        def b_rows(idx: np.ndarray) -> torch.Tensor:
            r = rows(idx).to(w0)
            return k_inv_sqrt(torch.cat([torch.ones_like(r[:, :1]), r], dim=1))

        def solution(z: torch.Tensor) -> tuple[torch.Tensor, float]:
            u = u0 + k_inv_sqrt(z[None, :])[0]
            return u[1:], float(u[0])
    else:  # (w, β): m = b0_LS(w) + β + Φ w, b0_LS(w) = a0ᵀ(b - A w)/|a0|²
        shift = (post.a0 @ post.A) / post.a02
        beta_sd = 1.0 / math.sqrt(post.a02)

        def b_rows(idx: np.ndarray) -> torch.Tensor:
            r = rows(idx).to(w0)
            return torch.cat([k_inv_sqrt(r - shift[None, :]), torch.full_like(r[:, :1], beta_sd)], dim=1)

        def solution(z: torch.Tensor) -> tuple[torch.Tensor, float]:
            w = w0 + k_inv_sqrt(z[None, :-1])[0]
            return w, float(post.a0 @ (post.b - post.A @ w)) / post.a02 + float(z[-1]) * beta_sd

    v0 = _violation(m0, lo, hi)
    outside = v0 != 0
    unbounded = int(outside.sum())
    S = np.flatnonzero(outside.cpu().numpy())
    z = None
    w, bb, m = w0, b0, m0
    for _ in range(MAX_ROUNDS):
        B = b_rows(S)  # (|S|, F or F + 1)
        z = torch.zeros(B.shape[1], dtype=B.dtype, device=B.device) if z is None else z
        scale = 1.0 / float((B * B).sum(1).mean())  # the cells' posterior precision (B Bᵀ's diagonal: variances)
        base = m0[torch.as_tensor(S, device=m0.device)]
        for k in range(0, int(round(math.log10(PENALTY))) + 1):  # the penalty raised tenfold, warm-started
            z = _minimise_penalty(B, base, lo, hi, scale * 10.0 ** k, z)
        w, bb = solution(z)
        m = model(w, bb)
        beyond = np.flatnonzero((_violation(m, lo, hi).abs() > 1e-6 * (hi - lo)).cpu().numpy())
        new = np.setdiff1d(beyond, S)
        if new.size == 0:
            break
        S = np.union1d(S, new)
    else:
        logger.warning("the bounded closed-form model still leaves the bounds after %d rounds", MAX_ROUNDS)
    clip = float(_violation(m, lo, hi).abs().max())
    m = m.clamp(lo, hi)
    tol = 1e-6 * (hi - lo)
    at = int(((m - lo).abs() <= tol).sum() + ((hi - m).abs() <= tol).sum())
    return dict(w=w, b0=bb, model=m, cells_at_bounds=at, cells_beyond_unbounded=unbounded,
                largest_excess_unbounded_kgm3=float(v0.abs().max()), largest_clip_kgm3=clip)
