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
mass at the same cost as shallow ones carry less. On a graded mesh (padding, an octree)
``s`` also carries ``sqrt(v̄ / v)`` for cells of volume ``v`` (mean ``v̄``): the prior is
that of a field per unit volume, so cutting a cell in two does not double its share of
the prior variance and large cells do not draw the mass. The products of the design it
needs are formed from the sensitivity's rows (:mod:`gempy_gravinv.inversion._streamed`).
Units: kg/m³.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import torch

from .._device import adam
from . import _streamed
from ._depth import depth_weight, distance_model
from ._linear import HeadPosterior, project_gram
from ._regional import REGIONALS, Regional, make_regional

logger = logging.getLogger(__name__)

#: Draws of the Gaussian null that the least-squares image's tails are tested against
NULL_DRAWS = 99
#: float64 arrays of one null's size (n_cells x (draws + 1)) the test holds at its peak besides its nulls' images
#: (which hold the image too): two copies of one null's
NULL_IMAGE_COPIES = 2


def prior_test_bytes(n_cells: int, draws: int = NULL_DRAWS, nulls: int = 1) -> int:
    """Bytes the prior's test holds at its peak with ``nulls`` Gaussian nulls: their images and two copies of one's."""
    return (NULL_IMAGE_COPIES + int(nulls)) * 8 * (int(draws) + 1) * int(n_cells)


def sizes_differ(volumes: np.ndarray) -> bool:
    """Whether cells of ``volumes`` (m³) differ in size (a graded mesh: padding, an octree), beyond round-off."""
    v = np.asarray(volumes, dtype=np.float64)
    return bool(v.size) and float(np.ptp(v)) > 1e-9 * float(v.max())


def _scale(prob, beta: float, device: torch.device) -> torch.Tensor:
    """The prior scale ``s`` (n_cells,) float64: the depth weight, times ``sqrt(v̄ / v)`` where cell volumes differ.

    Depth as :func:`~gempy_gravinv.inversion._depth.distance_model` measures it: outside
    the stations' hull, the distance from the survey.
    """
    s = depth_weight(distance_model(prob.depth), torch.as_tensor(prob.mesh.cell_centers), beta).to(device)
    v = prob.mesh.volumes
    if sizes_differ(v):  # graded mesh: the prior per unit volume
        s = s * torch.as_tensor(np.sqrt(v.mean() / v), device=device, dtype=s.dtype)
    return s


def _design(prob, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(A Aᵀ, d / σ, G 1 / σ, s)`` of the whitened design ``A = G diag(s) / σ`` of depth weight β, float64.

    ``A`` itself is never formed whole (:mod:`gempy_gravinv.inversion._streamed`). Computed
    once per problem and β: the regional's choice, the prior's least-squares image and
    the start share it; recomputed when σ changed (a noise estimate rescales it).
    """
    device = prob.std.device
    s = _scale(prob, beta, device)
    hit = prob.grams.get(float(beta))
    if hit is None or hit[0] is not prob.std:
        hit = prob.grams[float(beta)] = (prob.std, *_streamed.gram(prob, s, prob.setup_plan.panel_rows))
    std = prob.std.to(torch.float64)
    return hit[1], prob.d.to(std) / std, hit[2], s


def _shape(prob) -> torch.Tensor:
    """A storage-free stand-in (n_data, n_cells) for the design, which the Gram-based posteriors read the shape of."""
    return torch.empty((prob.survey.n_data, prob.mesh.n_cells), dtype=torch.float64, device="meta")


def _flat_projection(gram: torch.Tensor, a0: torch.Tensor, reg: Regional | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(P K P, diag P)``: the Gram ``K`` projected off the flat columns (the mean contrast ``a0`` and the regional's).

    ``P = R - q qᵀ``: ``R`` the regional's own projection (:meth:`Regional.project`, the
    identity without one), ``q`` the unit vector along ``R a0``. ``P K P`` is the Gram of
    the projected design that :class:`HeadPosterior` factors.
    """
    keep = torch.ones_like(a0)
    if reg is not None:
        gram = reg.project(reg.project(gram).T).T
        a0 = reg.project(a0)
        keep = keep - (reg.Q.to(a0) ** 2).sum(1)
    q = a0 / a0.norm()
    return project_gram(gram, q), keep - q * q


def _posterior(prob, beta: float, target: float):
    """``(Gram, b, a0, s, regional, HeadPosterior, λ)`` of the start's ridge model, λ at χ²/N = target.

    ``b`` and ``a0`` are projected off the regional's columns (when the problem has one).
    """
    K, b, a0, s = _design(prob, beta)
    reg = prob.regional
    hit = prob.posteriors.get(float(beta)) if reg is None else None
    if hit is not None and hit[0] is prob.std:  # factored by the regional's choice (same σ, β, no regional)
        post = hit[1]
    else:
        post, _, a0, b = _ridge_posterior(_shape(prob), a0, b, K, reg)
    return K, b, a0, s, reg, post, post.discrepancy(float(target))


def _data_vectors(post, a0: torch.Tensor, reg: Regional | None, coef: torch.Tensor) -> torch.Tensor:
    """Data-space vectors ``v = R (I - q qᵀ) U coef`` (n_data,) or (n_data, k): the weights are ``Aᵀ v``."""
    u = post.U @ coef
    v = u - (a0[:, None] * (a0 @ u)[None, :] if u.dim() == 2 else a0 * float(a0 @ u)) / post.a02
    return v if reg is None else reg.project(v)


def _nested_vector(prob, beta: float, target: float):
    """``(K, b, a0, s, v)`` of the start with a regional from the regional's choice's factorisation, or None.

    The choice factored the Gram of this β projected off the mean contrast alone
    (``prob.posteriors``); the regional's columns join it as further flat columns
    (:meth:`HeadPosterior.residuals`), so the start needs no factorisation of its own.
    ``v = Q b / λ`` (the weights are ``Aᵀ v``; ``v`` = 0 where the flat columns alone fit);
    ``b`` and ``a0`` projected off the regional. None without a regional or without
    the choice's factorisation of this β and σ.
    """
    reg, hit = prob.regional, prob.posteriors.get(float(beta))
    if reg is None or hit is None or hit[0] is not prob.std:
        return None
    K, b, a0, s = _design(prob, beta)
    post, T = hit[1], reg.Q.to(b)
    lam = post.discrepancy(float(target), T)
    v = torch.zeros_like(b) if not math.isfinite(lam) else post.residuals(lam, T) / lam
    return K, reg.project(b), reg.project(a0), s, v


def start_from_choice(prob, cfg) -> None:
    """With a regional chosen, the start of the choice's β from its factorisation, then release it.

    Called right after :func:`choose_regional`: the start (with the stated σ and
    ``warm_start="least_squares"``) is computed then and cached by the problem, and the
    choice's n x n eigenvectors are not held through the prior's test, which factors a
    Gram of its own. Without a regional they stay, for the start and images of the same β.
    """
    if prob.regional is not None and prob.posteriors:
        if cfg.noise == "stated" and cfg.warm_start == "least_squares":
            prob.least_squares_start()
        prob.posteriors.clear()


def _start(prob, beta: float, target: float) -> torch.Tensor:
    """The least-squares model of :func:`weighted_start` from the Gram matrix and one adjoint pass.

    The posterior mean of the weights is ``Aᵀ v`` for the data-space vector
    ``v = R (I - q qᵀ) U (c / (s² + λ))`` (``R`` the regional's projection, ``q`` the
    mean contrast's direction after it; from the regional's choice's factorisation
    where it has one, :func:`_nested_vector`); the mean contrast is fitted to the data
    less the design's fitted data ``A Aᵀ v``, which come from the Gram matrix.
    """
    nested = _nested_vector(prob, beta, target)
    if nested is None:
        K, b, a0, s, reg, post, lam = _posterior(prob, beta, target)
        v = _data_vectors(post, a0, reg, post.c / (post.s2 + lam)) if math.isfinite(lam) else torch.zeros_like(b)
    else:
        K, b, a0, s, v = nested
    b0 = float(a0 @ (b - K @ v)) / float(a0 @ a0)
    if not bool(v.any()):  # the flat columns alone fit to the target: a constant
        return torch.full_like(s, b0)
    return b0 + s * _streamed.adjoint(prob, s, v)


def image_and_null(prob, beta: float, target: float, draws: int = NULL_DRAWS, seed: int = 0,
                   null_data: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The start's image and images of Gaussian fields through the same map, kg/m³.

    The image is the variable part ``s ⊙ w`` of the least-squares model of
    :func:`weighted_start` (without its mean contrast). The null images are those the same
    linear map from data to image gives for other data: first ``draws`` data drawn from
    the ridge model's own prior predictive, ``w ~ N(0, I/λ)`` and unit whitened noise (up
    to one common factor): images of white depth-weighted fields, seen through this
    survey's sensitivities, its noise, its regional and its λ; then, where given, those
    of ``null_data`` (n_data, k), whitened data of other Gaussian fields (e.g. the smooth
    model's, :func:`~gempy_gravinv.inversion._period.lattice_draws`; the map projects
    off the mean contrast and the regional itself). One adjoint pass with
    ``1 + draws + k`` right-hand sides; the draws are seeded (``seed``, CPU generator),
    so the same data give the same images. Returns ``(image (n_cells,), null (n_cells,
    draws + k))`` in float64, or None where no λ reaches the target (the image is then a
    constant).
    """
    K, b, a0, s, reg, post, lam = _posterior(prob, beta, target)
    if not math.isfinite(lam):
        return None
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    eps = torch.randn(b.numel(), int(draws), generator=gen, dtype=torch.float64).to(post.U)
    # data-space noise through (K/λ + I)^½, then (K + λI)⁻¹: one matrix function of the Gram, whatever basis
    # its eigen-solver returned (the same draws from a Gram read in memory or in panels)
    coef = [(post.c / (post.s2 + lam))[:, None], (post.U.T @ eps) / (post.s2 + lam).sqrt()[:, None]]
    if null_data is not None:  # (K + λI)⁻¹ of the given data, projected as the data are
        d = null_data.to(post.U)
        d = d if reg is None else reg.project(d)
        coef.append((post.U.T @ (d - a0[:, None] * (a0 @ d)[None, :] / post.a02)) / (post.s2 + lam)[:, None])
    images = _streamed.adjoint(prob, s, _data_vectors(post, a0, reg, torch.cat(coef, dim=1))).mul_(s[:, None])
    return images[:, 0], images[:, 1:]


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
    if prob.design_refusal:  # decided and warned once, when the problem was set up
        return None
    logger.info("least-squares start (depth weight β = %g): %d stations x %d cells", beta, n_data, n_cells)
    t0 = time.perf_counter()
    start = _start(prob, beta, target)
    logger.info("least-squares start done in %.1f s", time.perf_counter() - t0)
    return start


#: The fit to the start stops once its χ²/N is within this fraction of the start's own
FIT_TOL = 0.01


def fit_field(prob, field: torch.nn.Module, target: torch.Tensor, *, steps: int = 300, lr: float = 1e-2) -> float:
    """Fit ``field``'s cell densities to ``target`` (n_cells,) kg/m³ by Adam on the squared error.

    The target is clipped to 98% of the bounds of ``prob.cfg`` (a bounded output cannot
    reach them); the error is scaled by half the bounds range (the largest ``|target|``
    without bounds). At most ``steps`` steps; it stops early, checked every 10 steps and
    after the last, once the field explains the data as the target does (χ²/N within
    :data:`FIT_TOL` of the target's). Where no checked state gets there, the field is
    left in the checked state whose χ²/N is closest to the target's, not the last one:
    Adam at a constant rate ends anywhere in its jitter, and training from a state
    that explains the data far worse than the start (χ²/N several times the target)
    lands in other minima for differences of the data far below their noise.
    Returns the RMS error of the kept state, kg/m³.
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
    with torch.no_grad():
        goal = float(prob.chi2(t))
    opt = adam(field.parameters(), lr=lr)
    steps = int(steps)
    best_gap, best_state, best_err = math.inf, None, math.nan
    for k in range(steps + 1):
        m = prob.cell_density(field)
        loss = (((m - t) / scale) ** 2).mean()
        if k % 10 == 0 or k == steps:
            with torch.no_grad():
                gap = abs(float(prob.chi2(m.detach())) - goal)
            if gap < best_gap:
                best_gap, best_err = gap, float(loss.detach().sqrt()) * scale
                best_state = {n: v.detach().clone() for n, v in field.state_dict().items()}
            if gap <= FIT_TOL * goal:  # this state is the closest: every earlier one was outside the window
                break
        if k < steps:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    if best_state is not None:  # None only where every checked χ²/N was NaN
        field.load_state_dict(best_state)
    logger.debug("field fitted to the start: χ²/N within %.2g of the start's", best_gap / goal if goal else math.nan)
    return best_err


def choose_regional(prob, beta: float, kinds: tuple[str, ...] = REGIONALS) -> dict:
    """The regional (none, a datum offset, a plane) that predicts left-out stations best.

    For each kind, the depth-weighted least-squares model (depth weight β, a flat prior
    on the mean contrast and on the regional) with the λ of smallest leave-one-out
    misfit (closed form, exact LOO: :meth:`HeadPosterior.loo`). The choice follows the
    one-standard-error rule of cross-validation, paired over the stations (every kind
    predicts the same ones): the simplest kind (in the order of ``kinds``) whose
    leave-one-out χ²/N exceeds the smallest by at most the standard error of that
    difference.
    Leaving stations out measures what a regional is for, predicting the field where no
    station is, without trusting the stated σ.

    Parameters
    ----------
    prob : Problem
        Data, σ, operator and depth model (its own regional is not used).
    beta : float
        Exponent β of the depth weight.
    kinds : sequence of str
        Candidates among ``"none"``, ``"constant"``, ``"plane"``.

    Returns
    -------
    dict
        ``kind`` (the choice), ``loo_chi2`` (kind: value, None where the kind does not
        apply, e.g. stations on one line for a plane), ``loo_se`` (standard error of
        each one's difference from the smallest) and ``rule`` (a sentence).
    """
    if prob.design_refusal:
        return dict(kind="none", loo_chi2={}, rule=f"no regional: {prob.design_refusal}, too large to compare them")
    if prob.survey.n_data < 2:  # no station is left to fit when one is left out
        return dict(kind="none", loo_chi2={}, rule=f"no regional: {prob.survey.n_data} station, too few to predict "
                                                    "one from the others")
    logger.info("regional by leave-one-out: %d stations x %d cells", prob.survey.n_data, prob.mesh.n_cells)
    t0 = time.perf_counter()
    gram, b, a0, _ = _design(prob, beta)
    base, keep, _, _ = _ridge_posterior(_shape(prob), a0, b, gram)  # one eigendecomposition for every kind
    kind, scores, errors = loo_choice(base, keep, prob.survey.locations, prob.std.to(b), kinds)
    # the start of this β factors the same matrix (with the regional's columns as flat ones where one is chosen)
    base.drop_loo_cache()
    prob.posteriors[float(beta)] = (prob.std, base)
    logger.info("regional by leave-one-out done in %.1f s", time.perf_counter() - t0)
    return dict(kind=kind, loo_chi2=scores, loo_se=errors,
                rule=f"regional {kind!r}: the simplest within one (paired) standard error of the smallest "
                     f"leave-one-out χ²/N of the least-squares model ({_listed(scores, errors)})")


def loo_choice(base: HeadPosterior, keep: torch.Tensor, locations: np.ndarray, std: torch.Tensor,
               kinds: tuple[str, ...] = REGIONALS) -> tuple[str, dict, dict]:
    """``(kind, loo_chi2, loo_se)``: the one-standard-error choice among ``kinds`` (see :func:`choose_regional`).

    ``base``: the ridge posterior with a flat mean and no regional (whitened); each
    kind's columns join it as extra flat columns, λ at each one's smallest
    leave-one-out χ²/N. ``loo_chi2`` is None for a kind that does not apply.
    """
    scores: dict = {}
    e2: dict = {}
    for kind in kinds:
        try:
            reg = make_regional(kind, locations, std)
        except ValueError:  # too few stations, or stations on one line for a plane
            scores[kind] = None
            continue
        e2[kind] = base.loo(keep, None if reg is None else reg.Q.to(std))[1] ** 2
        scores[kind] = float(e2[kind].mean())
    valid = [k for k in scores if scores[k] is not None]
    best = min(valid, key=scores.get)
    errors = {k: 0.0 if k == best else float((e2[k] - e2[best]).std() / math.sqrt(e2[k].numel())) for k in valid}
    return next(k for k in valid if scores[k] <= scores[best] + errors[k]), scores, errors  # the best qualifies


def _listed(scores: dict, errors: dict) -> str:
    return ", ".join(f"{k} {scores[k]:.3g} ± {errors[k]:.2g}" for k in scores if scores[k] is not None)


def confirm_regional(prob, field: torch.nn.Module, kinds: tuple[str, ...] = REGIONALS) -> dict | None:
    """The regional chosen again by leave-one-out with the smooth model's own features, where one was chosen.

    :func:`choose_regional` compares the kinds with the depth-weighted least-squares
    model; a smooth field's broad part, which that model carries poorly, then reads as a
    datum or a plane. Where it chose one, the same rule (the simplest kind within one
    paired standard error of the smallest leave-one-out χ²/N, a flat mean) is applied to
    the Gaussian model of ``field``'s features (``G [1, Φ]``, the closed-form head's
    design): a regional is kept only where the model fitted predicts left-out stations
    better with it. Returns ``(kind, loo_chi2, loo_se, rule)`` as a dict, or None where
    no regional was chosen (or the design cannot be built).
    """
    from .._device import available_memory
    from ._lattice_design import SeparableLattice
    from ._linear import _design as head_design
    from ._linear import _head

    sel = prob.regional_selection
    if sel is None or sel.get("kind", "none") == "none" or prob.design_refusal:
        return None
    n, F = int(prob.survey.n_data), int(_head(field).in_features) + 1
    if float(n) ** 2 * F > _streamed.MAX_GRAM_MULTIPLY_ADDS or 8.0 * n * (F + n) > 0.5 * available_memory(prob.device):
        logger.info("the regional is not checked with the smooth model's %d features: too large", F)
        return None
    design = head_design(prob, field, sep=SeparableLattice.of(prob, field))[0].to(torch.float64)
    s = prob.std.to(design)
    A, b = design / s[:, None], prob.d.to(design) / s
    base, keep, _, _ = _ridge_posterior(A[:, 1:], A[:, 0].contiguous(), b, A[:, 1:] @ A[:, 1:].T)
    kind, scores, errors = loo_choice(base, keep, prob.survey.locations, s, kinds)
    return dict(kind=kind, loo_chi2=scores, loo_se=errors,
                rule=f"with the smooth model's features: regional {kind!r} ({_listed(scores, errors)})")


def _ridge_posterior(A: torch.Tensor, a0: torch.Tensor, b: torch.Tensor, gram: torch.Tensor,
                     reg: Regional | None = None) -> tuple[HeadPosterior, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(posterior, diag P, a0, b)`` of the ridge model with the mean contrast ``a0`` and ``reg``'s columns flat.

    Evidence only, from the Gram ``gram`` projected off the flat columns: the design
    ``A`` enters by its shape alone. ``a0`` and ``b`` are returned projected off the
    regional's columns, as the posterior holds them. Without ``reg``, a regional's
    columns can join later as extra flat columns (:meth:`HeadPosterior.loo`).
    """
    projected, keep = _flat_projection(gram, a0, reg)
    if reg is not None:
        b, a0 = reg.project(b), reg.project(a0)
    return HeadPosterior(A, a0, b, evidence_only=True, gram_matrix=projected), keep, a0, b


def loo_with_regional(A: torch.Tensor, a0: torch.Tensor, b: torch.Tensor, reg: Regional | None,
                      gram: torch.Tensor | None = None) -> tuple[float, torch.Tensor]:
    """``(λ, leave-one-out residuals (n_data,))`` of the ridge model ``b = A w + a0 c0 + T c + e``.

    ``w ~ N(0, I/λ)``; the mean contrast ``c0`` and the regional's coefficients ``c``
    (``reg``: a :class:`~gempy_gravinv.inversion._regional.Regional` or None) have a
    flat prior; λ minimises the leave-one-out χ²/N. All whitened (divided by σ).
    ``gram``: ``A Aᵀ`` when the caller has it.
    """
    base, keep, _, _ = _ridge_posterior(A, a0, b, A @ A.T if gram is None else gram)
    return base.loo(keep, None if reg is None else reg.Q.to(b))
