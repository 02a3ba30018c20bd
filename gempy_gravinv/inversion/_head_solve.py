"""The closed-form solve of a field's last layer: the posterior mean and std of :class:`HeadPosterior`.

``solver="linear"``: the field's features are held fixed, its head ``(b, w)`` is set to
the posterior mean of the linear Gaussian model of :mod:`gempy_gravinv.inversion._linear`
at the λ of the configured rule, and the posterior std of every cell is computed. A
one-layer periodic lattice on a tensor grid of cells takes the separable sums of
:mod:`gempy_gravinv.inversion._lattice_design` for its design, std and model.
"""

from __future__ import annotations

import logging
import math
import time

import torch

from ..density import evaluate_on_mesh
from ._lattice_design import SeparableLattice, is_lattice_field
from ._linear import HeadPosterior, _design, _drop_caches, _feature_chunks, _head, cell_feature_rows

logger = logging.getLogger(__name__)

#: share of the data's degrees of freedom (stations less the mean and the regional's parameters) beyond
#: which a model of the evidence's λ is said to interpolate the stations
INTERPOLATION_SHARE = 0.8
#: share of the cells the unbounded model puts beyond the bounds above which holding it within them is warned about
BEYOND_BOUNDS_SHARE = 0.01


def solve_head(prob, cfg, field: torch.nn.Module, desc: str = "INR") -> dict:
    """Set ``field``'s last layer to the posterior mean; returns what the trainer returns.

    Parameters
    ----------
    prob : _Problem
        Data, σ (mGal), operator and cell points of the inversion.
    cfg : INRConfig
        ``head_lambda`` (``"discrepancy"``: χ²/N = ``target_chi2``; ``"evidence"``;
        or λ > 0) and ``head_std`` (compute the posterior std per cell).
    field : INRDensity
        A field with ``output="linear"``; its features are held fixed.

    Returns
    -------
    dict
        ``model`` (n_cells,) kg/m³, ``chi2``, ``std`` (n_cells,) kg/m³ or None, ``info``
        (λ, the prior std of a weight ``τ = λ^-1/2`` kg/m³, the prior std of the field,
        the effective number of parameters, log evidence, ``nearly_interpolates``: the
        evidence's model takes more than :data:`INTERPOLATION_SHARE` of the data's
        degrees of freedom, warned about), and the trainer's keys.
    """
    from tqdm.auto import tqdm

    last = _head(field)
    t0 = time.perf_counter()
    bar = tqdm(total=3, desc=f"{desc} (closed-form head)", disable=not cfg.progress, leave=False, unit="stage")
    sep = SeparableLattice.of(prob, field)
    design, mean_sq = _design(prob, field, sep=sep)
    # factored in float64 whatever the operator's dtype: a float32 SVD of an ill-conditioned design
    # loses its weak directions (the evidence's λ then moves with the BLAS threads)
    design, b = prob.whiten(design.to(torch.float64))  # the regional, if any, integrated out
    bar.update(1)
    # with a regional, its flat offset is the data's datum, and over a survey the mean contrast's g_z is
    # nearly that constant: a flat mean as well would trade against the offset along the small difference
    # of the two, unbounded. The mean is then the field's k = 0 harmonic, of unit amplitude (the
    # spectrum's value at k = 0), under the weights' prior: the design's column G 1 / σ among the features
    mean_as_weight = prob.regional is not None
    post = HeadPosterior(design, None, b) if mean_as_weight else HeadPosterior(design[:, 1:], design[:, 0], b)
    bar.update(1)
    rule = cfg.head_lambda
    if rule == "discrepancy":
        lam = post.discrepancy(float(cfg.target_chi2))
    elif rule == "evidence":
        lam = post.evidence(float(cfg.target_chi2))
    else:
        lam = float(rule)
    if math.isfinite(lam):
        w, b0 = post.weights(lam)
        if mean_as_weight:
            w, b0 = w[1:], float(w[0])
    else:
        w = torch.zeros(post.n_weights - int(mean_as_weight), dtype=prob.dtype, device=prob.device)
        b0 = 0.0 if mean_as_weight else float(post.a0 @ post.b) / post.a02
    scale = float(field.output.scale)  # m = scale · (bias + weightᵀφ)
    with torch.no_grad():
        last.weight.copy_((w / scale).to(last.weight)[None, :])
        last.bias.fill_(b0 / scale)
    std = m = None
    w64 = w.to(torch.float64)
    if sep is not None:  # Φ g, Φ V and Φ w summed axis by axis
        if cfg.head_std:
            apply, phi_sq = sep.apply, sep.phi_sq.to(post.V)
            if mean_as_weight:  # the features [1, Φ]
                apply, phi_sq = (lambda M, f=apply: M[:1] + f(M[1:])), phi_sq + 1.0
            std = post.cell_std_by(apply, phi_sq, lam)
        m = b0 + sep.apply(w64)
    elif cfg.head_std or is_lattice_field(field):  # one pass over the cells' features for the std and the model
        stds, ms, lattice = [], [], is_lattice_field(field)
        for _, _, phi in _feature_chunks(prob, field, 8192):
            if cfg.head_std:
                stds.append(post.cell_std(torch.cat([phi.new_ones(phi.shape[0], 1), phi], 1) if mean_as_weight
                                          else phi, lam))
            if lattice:  # a lattice's cell means, as the design has them
                ms.append(b0 + phi.to(torch.float64) @ w64.to(phi.device))
        std = torch.cat(stds) if stds else None
        m = torch.cat(ms) if lattice else None
    bar.update(1)
    bar.close()
    field.eval()
    with torch.no_grad():  # other fields: the model from the field itself, in chunks (no n_cells x F cache)
        if m is None:
            nq = prob.points.shape[0] // prob.mesh.n_cells
            m = evaluate_on_mesh(field, prob.mesh, cfg.quadrature, chunk=8192 * nq)
            _drop_caches(field)
        held = None
        if cfg.head_bounds is not None and math.isfinite(lam):
            held = _hold_bounds(prob, cfg, field, post, lam, w, b0, m.to(torch.float64), sep, mean_as_weight)
            if held is not None:
                held["chi2_unbounded"] = float(prob.chi2(m.to(prob.dtype)))  # what the bounds cost is measured from
                w, b0, m = held["w"], held["b0"], held["model"]
                last.weight.copy_((w / scale).to(last.weight)[None, :])
                last.bias.fill_(b0 / scale)
        m = m.to(prob.dtype)
        chi2 = float(prob.chi2(m))
    elapsed = time.perf_counter() - t0
    tau = 1.0 / math.sqrt(lam) if math.isfinite(lam) else 0.0
    prior_field_std = tau * math.sqrt(mean_sq)
    info = dict(head_lambda=lam, rule=rule if isinstance(rule, str) else "fixed", weight_prior_std_kgm3=tau,
                field_prior_std_kgm3=prior_field_std, n_weights=post.n_weights,
                effective_parameters=post.effective_parameters(lam) if math.isfinite(lam) else 0.0,
                log_evidence=post.log_evidence(lam) if math.isfinite(lam) else math.nan,
                chi2_min=post.chi2_min(), solve_time=elapsed)
    info["nearly_interpolates"] = rule == "evidence" and warn_interpolation(prob, info["effective_parameters"], chi2)
    if cfg.head_bounds is not None:
        info["bounds"] = dict(kgm3=list(cfg.head_bounds), held=held is not None, **({} if held is None else {
            k: held[k] for k in ("cells_beyond_unbounded", "largest_excess_unbounded_kgm3", "cells_at_bounds",
                                  "largest_clip_kgm3", "chi2_unbounded")}))
    wn = float(w @ w) + (b0 * b0 if mean_as_weight else 0.0)
    hist = {"step": [0], "chi2": [chi2], "loss": [chi2 + (lam * wn / prob.survey.n_data if math.isfinite(lam) else 0)],
            "reg": [wn], "reg_weight": [lam], "lr": [0.0], "time": [elapsed]}
    reason = {"discrepancy": f"closed form, λ at χ²/N = {cfg.target_chi2:g}",
              "evidence": "closed form, λ of maximum evidence"}.get(info["rule"], "closed form, λ given")
    return dict(field=field, model=m.detach().cpu().double().numpy(), chi2=chi2, recorded_chi2=chi2, best_step=0,
                reason=reason, history=hist, steps=0, train_time=elapsed, done=True,
                std=None if std is None else std.detach().cpu().double().numpy(), info=info)


def warn_interpolation(prob, effective_parameters: float, chi2: float) -> bool:
    """Warn where a model of the evidence's λ spends nearly all the data's degrees of freedom.

    The degrees of freedom are the data less the mean and the regional's parameters. A
    model taking more than :data:`INTERPOLATION_SHARE` of them nearly interpolates the
    stations (its χ²/N falls far below 1 under the stated σ): the data leave too little
    to check the noise level with, and the field between and beyond the stations rests
    on the prior alone.

    Parameters
    ----------
    prob : Problem
        The inversion's data and regional.
    effective_parameters : float
        The effective number of parameters at the chosen λ (trace of the hat matrix).
    chi2 : float
        The model's χ²/N under the stated σ.

    Returns
    -------
    bool
        Whether the warning was given.
    """
    n = int(prob.survey.n_data)
    dof = n - 1 - (0 if prob.regional is None else int(prob.regional.n_params))
    if dof <= 0 or effective_parameters <= INTERPOLATION_SHARE * dof:
        return False
    logger.warning("the closed-form model takes %.1f of the data's %d degrees of freedom (%d data less the mean "
                   "and the regional) and fits them to χ²/N %.3g: it nearly interpolates the stations, so the data "
                   "cannot check the stated noise level, and the field between and beyond the stations rests on "
                   "the prior (result.std shows where). More stations, a stated σ checked against repeat "
                   "readings, or prior='compact' where the sources are bodies in a quiet background constrain it "
                   "more", effective_parameters, dof, n, chi2)
    return True


def _hold_bounds(prob, cfg, field, post, lam: float, w: torch.Tensor, b0: float, m: torch.Tensor, sep,
                 mean_as_weight: bool) -> dict | None:
    """The model held within ``cfg.head_bounds`` (:func:`bounded_head`), or None where it lies within them.

    ``w``, ``b0``: the unbounded posterior mean's weights and mean; ``m`` its model.
    """
    from ._head_bounds import bounded_head

    lo, hi = (float(v) for v in cfg.head_bounds)
    if float(m.min()) >= lo and float(m.max()) <= hi:
        return None

    def model(ww: torch.Tensor, bb: float) -> torch.Tensor:
        if sep is not None:
            return bb + sep.apply(ww)
        return bb + torch.cat([phi.to(torch.float64) @ ww.to(phi.device) for _, _, phi in
                               _feature_chunks(prob, field, 8192)])

    out = bounded_head(post, lam, w.to(torch.float64), b0, m, (lo, hi),
                       lambda idx: cell_feature_rows(prob, field, idx).to(torch.float64), model,
                       mean_as_weight=mean_as_weight)
    logger.info("the closed-form model held within the bounds (%g, %g) kg/m³: %d cell(s) beyond them unbounded, "
                "%d on a bound", lo, hi, out["cells_beyond_unbounded"], out["cells_at_bounds"])
    excess, n = out["largest_excess_unbounded_kgm3"], int(m.numel())
    if out["cells_beyond_unbounded"] > BEYOND_BOUNDS_SHARE * n:
        logger.warning("the smooth model the data ask for lies beyond the bounds (%g, %g) kg/m³ on %d of %d cells "
                       "(%.1f%%), by up to %.4g kg/m³; held within them, other cells move to keep fitting the data. "
                       "Where the bounds are not physical limits of the contrast, widen them "
                       "(result.solve_info[0]['bounds'])", lo, hi, out["cells_beyond_unbounded"], n,
                       100.0 * out["cells_beyond_unbounded"] / n, excess)
    return out
