"""Compact bodies or a smooth field: the prior chosen from the data, and said.

The default inversion reads the depth-weighted least-squares image (:mod:`._warmstart`)
and asks whether its tails are heavier than those of a Gaussian field seen through the
same survey. If so, the sources are sparse and the compactness (minimum-support) prior
is kept; otherwise the model is the smooth Matérn lattice of largest evidence
(:mod:`._period`), solved in closed form. The Gaussian fields are white depth-weighted
cells (the least-squares model's own prior) and, on meshes of several cell sizes, the
coarse lattices the evidence picks, whose correlation the white cells lack.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import torch

from .._distributed import all_gather_objects
from ._config import INRConfig
from ._period import coarse_config, coarse_models, core_coarse_config, in_core, lattice_config, lattice_draws
from ._warmstart import NULL_DRAWS, confirm_regional, image_and_null, sizes_differ

logger = logging.getLogger(__name__)

#: Level of the one-sided test: the sources are taken as sparse (compact bodies) when an
#: image as heavy-tailed has at most this probability under the Gaussian null
SIGNIFICANCE = 0.05


def null_count(mesh) -> int:
    """How many Gaussian nulls :func:`select_prior` draws on ``mesh``, at most: 3 on cells of several sizes, else 1.

    White cells, and on a graded mesh the mesh box's and the core's coarse lattices. An
    upper bound for the memory plan: a graded mesh without a core draws one lattice.
    """
    return 3 if sizes_differ(mesh.volumes) else 1


def select_prior(prob, cfg: INRConfig) -> tuple[INRConfig, dict]:
    """The configuration with the prior the data choose, and the report of the choice.

    The least-squares image at the target misfit is tested (:func:`choose_prior`) against
    images of Gaussian fields through the same map (:func:`image_and_null`), over the
    cells under the survey and, on a graded mesh, within its core. On cells of one size
    the image has depth weight ``cfg.smooth_power`` and the null is white depth-weighted
    cells. On a graded mesh (padding, an octree) the image is the start's own (depth
    weight ``cfg.warm_start_power``, per unit volume), where the compact run begins and
    where a body's image sits at its depth, and the nulls are white cells and smooth
    fields, the Matérn lattices of largest evidence at
    :data:`~gempy_gravinv.inversion._period.HARMONICS` harmonics on the mesh box
    (``"smooth"``: :func:`coarse_config`) and, where the mesh has a core, on twice the
    core (``"smooth_core"``: :func:`core_coarse_config`), drawn by :func:`lattice_draws`.
    White cells lack a smooth field's correlation, and how much that changes a cell's
    image varies with the cell's size and the depth weight; the box's lattice describes
    the core's cells at the box's coarser scale. The image counts as compact only where every null is
    rejected (:func:`choose_prior`). A smooth prior returns the closed-form configuration
    of the lattice of largest evidence (:func:`lattice_config`), a compact one ``cfg``
    itself. Where the problem is too
    large for the least-squares image, or no λ reaches the target, ``cfg`` is kept and
    the report says why.

    Parameters
    ----------
    prob : Problem
        Data, σ (mGal), operator, depth model and regional of the inversion.
    cfg : INRConfig
        The configuration to keep for compact sources (its ``smooth_power``, or
        ``warm_start_power`` on a graded mesh, and ``target_chi2`` set the image).

    Returns
    -------
    cfg : INRConfig
        ``cfg``, or the smooth model's closed-form configuration.
    report : dict
        :func:`choose_prior`'s report and ``image_depth_power`` (the image's β); with the
        smooth model, ``lattice`` (its choice, :func:`~gempy_gravinv.inversion._period.choose_lattice`).
    """
    if prob.design_refusal:
        return cfg, dict(prior="compact", rule=f"no least-squares image ({prob.design_refusal}): "
                                               "kept the configured prior")
    logger.info("prior from the data: the least-squares image against Gaussian nulls (%d stations x %d cells)",
                prob.survey.n_data, prob.mesh.n_cells)
    t0 = time.perf_counter()
    inside = prob.under_survey
    core = in_core(prob.mesh)  # a graded mesh: its padding, beneath as beside, carries edge effects
    cells = inside if core is None else inside & core
    graded = sizes_differ(prob.mesh.volumes)
    beta = float(cfg.warm_start_power) if graded else float(cfg.smooth_power)
    coarse = draws = None
    smooth_nulls = {}
    if graded:  # cells of several sizes: correlated nulls as well
        coarse = coarse_models(prob, cfg, prob._fresh_field)
        smooth_nulls = {"smooth": coarse_config(cfg, coarse), "smooth_core": core_coarse_config(prob, cfg,
                                                                                                prob._fresh_field)}
        smooth_nulls = {k: v for k, v in smooth_nulls.items() if v is not None}
        draws = torch.cat([lattice_draws(prob, c, prob._fresh_field) for c in smooth_nulls.values()], dim=1)
    images = image_and_null(prob, beta, cfg.target_chi2, null_data=draws)
    if images is None:
        return cfg, dict(prior="compact", rule="no least-squares image (no λ reaches the target misfit): kept the "
                                               "configured prior")
    image, null = images
    nulls = {"white": null[:, :NULL_DRAWS]}
    for i, name in enumerate(smooth_nulls, start=1):
        nulls[name] = null[:, i * NULL_DRAWS:(i + 1) * NULL_DRAWS]
    report = choose_prior(image, nulls, cells)
    report.update(image_depth_power=beta, rule=f"{report['rule']} (the image's depth weight β = {beta:g})")
    logger.info("prior chosen from the data in %.1f s: %s", time.perf_counter() - t0, report["rule"])
    if report["prior"] == "compact":
        return cfg, report
    smooth, lattice = smooth_config(prob, cfg, coarse)
    report.update(lattice=lattice, rule=report["rule"] + "; " + lattice["rule"])
    return smooth, report


def smooth_config(prob, cfg: INRConfig, coarse: dict | None = None) -> tuple[INRConfig, dict]:
    """The smooth model's configuration and lattice report (:func:`lattice_config`), its regional confirmed.

    Where a regional was chosen from the data, :func:`confirm_regional` checks it with
    the chosen lattice's features; where it picks another kind, the problem's regional
    becomes that kind and the lattice is chosen again under it.
    """
    smooth, lattice = lattice_config(prob, cfg, prob._fresh_field, coarse)
    kind = _confirm_regional(prob, smooth)
    if kind is not None:  # the regional the smooth model predicts left-out stations best with: the lattice again
        cfg = dataclasses.replace(cfg, regional=kind)
        prob._data_model(cfg)
        smooth, lattice = lattice_config(prob, cfg, prob._fresh_field)
    return smooth, lattice


def _confirm_regional(prob, smooth: INRConfig) -> str | None:
    """The kind :func:`confirm_regional` picks with the smooth model where it replaces the chosen one, else None."""
    check = all_gather_objects(confirm_regional(prob, prob._fresh_field(smooth)))[0]  # rank 0's, on every rank
    if check is None:
        return None
    sel = prob.regional_selection
    chosen, kind = sel["kind"], check["kind"]
    said = f", replacing {chosen!r}" if kind != chosen else ""
    sel.update(kind=kind, least_squares_kind=chosen, smooth_loo_chi2=check["loo_chi2"],
               smooth_loo_se=check["loo_se"], rule=f"{sel['rule']}; {check['rule']}{said}")
    logger.info("%s%s", check["rule"], said or ", kept")
    return kind if said else None


def _excess_kurtosis(z: torch.Tensor, chunk: int = 8) -> torch.Tensor:
    """Excess kurtosis of ``z`` (n,), or of each column of ``z`` (n, k) ``chunk`` columns at a time (0 if constant)."""
    if z.dim() == 1:
        return _excess_kurtosis(z[:, None], chunk)[0]
    out = []
    for j in range(0, z.shape[1], chunk):
        c = z[:, j:j + chunk]
        c = (c - c.mean(0)).square_()
        var = c.mean(0)
        out.append(torch.where(var > 0, c.square_().mean(0) / var.clamp_min(1e-300) ** 2 - 3.0, torch.zeros_like(var)))
    return torch.cat(out) if out else z.new_zeros(0)


def _tail_test(image: torch.Tensor, null: torch.Tensor) -> tuple[float, torch.Tensor]:
    """``(k_obs, k_null (draws,))``: excess kurtosis of the image and of each null image, each cell standardised.

    Each cell of the image is divided by its spread among the null images; each null image
    by the spread of the others (its own draw left out).
    """
    draws = int(null.shape[1])
    sq = null.square()
    ss = sq.sum(1)
    z = image / (ss / draws).sqrt()
    # sq becomes z_null in place: at most two arrays of the null's size besides the caller's
    z_null = sq.neg_().add_(ss[:, None]).clamp_min_(1e-300).div_(draws - 1).sqrt_().reciprocal_().mul_(null)
    return float(_excess_kurtosis(z)), _excess_kurtosis(z_null)


def choose_prior(image: torch.Tensor, null: torch.Tensor | dict, inside: np.ndarray | None = None,
                 level: float = SIGNIFICANCE) -> dict:
    """Compact or smooth: whether the least-squares image is heavier-tailed than a Gaussian field's.

    The depth-weighted least-squares image of compact bodies is a few peaked blobs on a
    quiet background (heavy tails); that of a distributed, smooth field is itself
    Gaussian. But the image of a Gaussian field is not evenly Gaussian: its spread varies
    from cell to cell with the survey's resolution (large under the stations, small at
    depth and at the sides) and with the field's own correlation, which alone gives its
    values heavy tails. So each cell is divided by its standard deviation under a null
    (the spread of the ``null`` images there, Gaussian fields seen through the same map:
    :func:`image_and_null`), and the excess kurtosis of these standardised values is
    compared with that of each null image, standardised the same way (its own draw left
    out of the spread). ``p`` is the Monte-Carlo probability of a null image at least as
    heavy-tailed: ``(1 + #{null >= observed}) / (1 + draws)``.

    Several nulls (a dict, e.g. white depth-weighted cells and the smooth model the
    evidence picks, whose correlation the white cells lack) make one composite null, a
    Gaussian field of any of these covariances: the image is taken as heavier-tailed
    only where every one is rejected (an intersection-union test, of level ``level``),
    so ``p`` is the largest of their p-values. The rule: ``"compact"`` when
    ``p <= level``, else ``"smooth"``. Measured over the cells under the survey
    (``inside``; the inversion also leaves out the padding of a graded mesh, below the
    core as beside it): padding cells carry the edge effects of any field, not its shape.

    Parameters
    ----------
    image : Tensor (n_cells,)
        The least-squares image (its variable part), kg/m³.
    null : Tensor (n_cells, draws), or dict of name -> Tensor (n_cells, draws)
        Images of Gaussian fields through the same map (at least 2 draws each), kg/m³.
    inside : bool array (n_cells,), optional
        The cells to measure (those under the stations' footprint); all when None or
        when fewer than 8 are selected.
    level : float
        Level of the one-sided test, in (0, 1).

    Returns
    -------
    dict
        ``prior`` (``"compact"`` or ``"smooth"``), ``excess_kurtosis`` (of the image as
        it is), ``p_value``, ``level``, ``draws`` and ``rule`` (a sentence for reports);
        ``standardised_kurtosis`` (of the standardised image) and ``null_kurtosis`` (the
        null's 50 % and 95 % quantiles) of the null of largest ``p``; with several nulls,
        ``nulls``: these three per null.
    """
    nulls = dict(null) if isinstance(null, dict) else {"gaussian": null}
    image = image.to(torch.float64)
    draws = min(int(v.shape[1]) for v in nulls.values())
    if draws < 2:
        raise ValueError(f"the prior's test needs at least 2 null draws, got {draws}")
    keep = next(iter(nulls.values())).square().sum(1) > 0  # cells no datum sees carry no image
    if inside is not None and int(np.count_nonzero(inside)) >= 8:
        keep &= torch.as_tensor(np.asarray(inside, dtype=bool), device=image.device)
    if int(keep.sum()) < 8:  # no tails to read
        return dict(prior="compact", p_value=None, level=level, draws=draws,
                    rule=f"only {int(keep.sum())} cell(s) the data see: too few to test the image's tails, "
                         "kept the compactness prior")
    tests = {}
    for name, v in nulls.items():
        k_obs, k_null = _tail_test(image[keep], v.to(torch.float64)[keep])
        q50, q95 = (float(q) for q in torch.quantile(k_null, torch.tensor([0.5, 0.95], dtype=k_null.dtype,
                                                                          device=k_null.device)))
        tests[name] = dict(p_value=(1 + int((k_null >= k_obs).sum())) / (1 + int(k_null.numel())),
                           standardised_kurtosis=k_obs, null_kurtosis={"median": q50, "q95": q95})
    top = max(tests, key=lambda k: tests[k]["p_value"])
    t = tests[top]
    p, k_obs, q50, q95 = t["p_value"], t["standardised_kurtosis"], t["null_kurtosis"]["median"], \
        t["null_kurtosis"]["q95"]
    prior = "compact" if p <= level else "smooth"
    which = "" if len(tests) == 1 else (f" {top!r} (of the nulls " + ", ".join(
        f"{k!r} p = {v['p_value']:.2f}" for k, v in tests.items()) + "; compact only where every one is rejected)")
    rule = (f"the depth-weighted least-squares image under the survey, each cell divided by its spread under the "
            f"Gaussian null{which}, has excess kurtosis {k_obs:.2f} (the null's fields through the same map: "
            f"median {q50:.2f}, 95 % {q95:.2f}; p = {p:.2f} {'<=' if prior == 'compact' else '>'} {level:g}): "
            + ("heavier-tailed than a Gaussian field's, sparse sources, minimum-support prior" if prior == "compact"
               else "no heavier-tailed than a Gaussian field's, distributed sources, a smooth prior"))
    out = dict(prior=prior, excess_kurtosis=float(_excess_kurtosis(image[keep])), standardised_kurtosis=k_obs,
               null_kurtosis={"median": q50, "q95": q95}, p_value=p, level=level, draws=draws, rule=rule)
    if len(tests) > 1:
        out["nulls"] = tests
    return out
