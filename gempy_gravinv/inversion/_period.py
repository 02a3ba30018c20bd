"""Does the field wrap around the mesh box? The period of a periodic encoding, from the data.

The periodic presets (:meth:`INRConfig.periodic`, :meth:`INRConfig.spectral`) build the
field from the Fourier lattice of the mesh box: the field then takes the same values on
opposite faces, as a field made by an FFT on that mesh does. A real density field, or a
synthetic one made otherwise, does not wrap. Such a field is still representable by a
lattice whose period is twice the box (the box is then half a period: nothing ties
opposite faces).

``period_from_data=True`` lets the data decide between the two. For each period, the
lattice with the configuration's harmonics and Matérn amplitudes is a one-layer
Gaussian model whose evidence ``p(d | λ)`` has a closed form
(:class:`~gempy_gravinv.inversion._linear.HeadPosterior`, λ at its maximum). Both
models have the same bias column and data, so the difference of their log evidences is
a log Bayes factor. The period with the larger evidence is kept, and the choice, the two
log evidences and the rule are reported.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..density._encodings import matern_amplitude
from ._linear import HeadPosterior, _design, _drop_caches, project_gram
from ._warmstart import NULL_DRAWS

logger = logging.getLogger(__name__)

#: The periods compared, in boxes: the mesh box itself, and twice it.
PERIODS = (1.0, 2.0)


def _whitened_lattice(prob, cfg, opts: dict, make_field: Callable) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """The one-layer periodic-lattice field of ``opts`` and its whitened design ``[G 1, G Φ] / σ`` and data.

    float64; the regional, if any, projected out (:meth:`Problem.whiten`).
    """
    lin = dataclasses.replace(cfg, backend="inr", encoding="periodic", depth=0, output="linear", bounds=None,
                              init_value=None, net_dtype="float64", encoding_options=opts)
    field = make_field(lin)
    design, _ = _design(prob, field)
    _drop_caches(field)
    A, b = prob.whiten(design.to(torch.float64))
    return A, b, field


def _max_log_evidence(A: torch.Tensor, b: torch.Tensor, scale: torch.Tensor | None = None) -> float:
    """Largest ``log p(d | λ)`` (nats) of the whitened design ``A = [bias, features]``, features scaled by ``scale``."""
    feats = A[:, 1:] if scale is None else A[:, 1:] * scale[None, :]
    post = HeadPosterior(feats, A[:, 0], b, evidence_only=True)
    return float(post.log_evidence(post.evidence()))


def evidence_of_period(prob, cfg, factor: float, make_field: Callable) -> float:
    """Largest log evidence ``log p(d | λ)`` (nats) of the lattice of ``cfg`` with period ``factor`` boxes.

    Parameters
    ----------
    prob : Problem
        Data, σ (mGal), operator, cell points and regional of the inversion.
    cfg : INRConfig
        A configuration with ``encoding="periodic"``; its harmonics and amplitudes are used.
    factor : float
        Period in units of the mesh box (1: the field wraps around the box).
    make_field : callable
        ``make_field(cfg) -> field`` on the problem's mesh and device.
    """
    A, b, _ = _whitened_lattice(prob, cfg, {**dict(cfg.encoding_options), "period_factor": float(factor)},
                                make_field)
    return _max_log_evidence(A, b)


def choose_period(prob, cfg, make_field: Callable) -> tuple[float, dict]:
    """The period (in boxes) the data favour, and a report of the choice.

    Returns
    -------
    factor : float
        1.0 (the field wraps around the mesh box) or 2.0 (it need not).
    report : dict
        ``period_factor``, ``log_evidence`` (``{"box": …, "twice_box": …}``, nats),
        ``log_bayes_factor`` (twice the box over the box) and ``rule`` (a sentence).
    """
    ev = {f: evidence_of_period(prob, cfg, f, make_field) for f in PERIODS}
    lbf = ev[2.0] - ev[1.0]
    factor = 2.0 if lbf > 0 else 1.0
    if factor == 2.0:
        rule = (f"the data favour a field that does not wrap around the mesh box (log Bayes factor {lbf:.1f} "
                "for a period of twice the box): the lattice's period is twice the box")
    else:
        rule = (f"the data favour a field that wraps around the mesh box (log Bayes factor {-lbf:.1f} "
                "over a period of twice the box): the lattice's period is the box")
    logger.info("period from the data: %s", rule)
    return factor, dict(period_factor=factor, log_evidence={"box": ev[1.0], "twice_box": ev[2.0]},
                        log_bayes_factor=lbf, rule=rule)


#: Correlation lengths tried by :func:`choose_lattice`, as fractions of the largest
#: horizontal extent of the mesh.
LENGTH_FRACTIONS = (1 / 16, 1 / 8, 1 / 4, 1 / 2)
#: Matérn smoothness values tried by :func:`choose_lattice`.
SMOOTHNESS = (0.5, 1.5, 2.5)
#: Harmonics along the longest horizontal axis of the lattice, whatever its period.
HARMONICS = 8


def lattice_harmonics(extent, k_max: int = HARMONICS) -> list[int]:
    """Harmonics per axis of a lattice over ``extent`` (6,) m: ``k_max`` along the longest horizontal axis.

    The other axes get the same wavelength spacing (at least 2 harmonics each).
    """
    lengths = [extent[1] - extent[0], extent[3] - extent[2], extent[5] - extent[4]]
    ref = max(lengths[0], lengths[1])
    return [max(2, int(math.ceil(k_max * L / ref))) for L in lengths]


def core_extent(mesh) -> np.ndarray | None:
    """The box (6,) m of a graded mesh's core, or None where the mesh is not graded.

    A tensor mesh: along each axis, the span of its cells of the smallest width on that
    axis (the core of a mesh built with padding cells that grow outward, as
    ``discretize.TensorMesh([(h, n_pad, -r), (h, n), (h, n_pad, r)])`` builds it). Cells
    of several sizes on no tensor grid (an octree): the horizontal span of its cells of
    the smallest horizontal widths, and from the top of the cells down by the larger of
    that span's widths, or to the bottom where the mesh is shallower (an octree's finest
    cells line the ground and the stations, and it coarsens with depth, where a field
    goes on; data over a survey of width W resolve little below a depth of W). Both
    within the extent of the active cells. None for uniform meshes and where the core is
    not a box at least two of its cells wide on each axis.
    """
    ext = np.asarray(mesh.extent, dtype=np.float64)
    nodes = mesh.tensor_nodes()
    if nodes is not None:
        core = ext.copy()
        for a, x in enumerate(nodes):
            h = np.diff(x)
            small = np.flatnonzero(h <= h.min() * (1.0 + 1e-6))
            if small.size < 2:
                return None
            core[2 * a] = max(ext[2 * a], x[small[0]])
            core[2 * a + 1] = min(ext[2 * a + 1], x[small[-1] + 1])
    else:
        w, b = mesh.cell_widths, mesh.bounds
        finest = np.all(w[:, :2] <= w[:, :2].min(0) * (1.0 + 1e-6), axis=1)
        core = np.r_[b[finest, 0].min(), b[finest, 1].max(), b[finest, 2].min(), b[finest, 3].max(), ext[4:]]
        core[4] = max(ext[4], ext[5] - max(core[1] - core[0], core[3] - core[2]))
        if np.any(core[1:4:2] - core[0:4:2] < 2 * w[:, :2].min(0) * (1.0 - 1e-6)):
            return None
    if not np.all(core[1::2] > core[0::2]) or np.allclose(core, ext, rtol=0.0, atol=1e-6 * np.ptp(ext)):
        return None
    return core


def in_core(mesh) -> np.ndarray | None:
    """Which cells (bool (n_cells,)) have their centre in the mesh's core (:func:`core_extent`); None without one."""
    core = core_extent(mesh)
    if core is None:
        return None
    c = mesh.cell_centers
    return np.all((c >= core[0::2]) & (c <= core[1::2]), axis=1)


def lattice_posteriors(prob, cfg, make_field: Callable, k_max: int | dict = HARMONICS, box=None):
    """Every Matérn lattice model of the grid: ``(period, ℓ, ν, harmonics, HeadPosterior)``, one at a time.

    For each period (:data:`PERIODS`, in boxes; or the keys of ``k_max`` when it is a
    dict of period → harmonics) the design of the unscaled lattice ``G [1, Φ]``
    (``k_max`` harmonics along the longest horizontal axis, :func:`lattice_harmonics`)
    is computed once; each ``(ℓ, ν)`` of the grid (:data:`LENGTH_FRACTIONS` of the
    largest horizontal extent x :data:`SMOOTHNESS`) only rescales its columns by the
    Matérn amplitudes ``(1 + ℓ²|k|²)^(-(ν+3/2)/2)``. The posteriors are built with
    ``evidence_only=True`` (evidence and misfit, no weights), from the Gram matrix of the
    design's smaller side. ``box`` (6,) m: the lattice's box (default the mesh's
    extent; e.g. :func:`core_extent`), whose span sets the harmonics and the ℓ grid.
    """
    extent = [float(v) for v in (prob.mesh.extent if box is None else box)]
    span = max(extent[1] - extent[0], extent[3] - extent[2])
    counts = dict(k_max) if isinstance(k_max, dict) else {f: int(k_max) for f in PERIODS}
    for f, k in counts.items():
        harmonics = lattice_harmonics(extent, k)
        opts = dict(n_harmonics=harmonics, lattice=True, period_factor=f)
        if box is not None:
            opts["box_extent"] = extent
        A, b, field = _whitened_lattice(prob, cfg, opts, make_field)
        lengths = torch.as_tensor([f * (extent[1] - extent[0]), f * (extent[3] - extent[2]),
                                   f * (extent[5] - extent[4])], dtype=torch.float64)
        k2 = ((field.encoding.wave.to(torch.float64).cpu() / lengths[None, :]) ** 2).sum(1)
        feats, a0 = A[:, 1:], A[:, 0]
        by_gram = feats.shape[1] >= feats.shape[0]  # more features than stations: the n x n Gram
        shape = torch.empty(feats.shape, dtype=feats.dtype, device="meta")
        for ell, nu in [(frac * span, nu) for frac in LENGTH_FRACTIONS for nu in SMOOTHNESS]:
            amp = matern_amplitude(k2, ell, nu).to(A)
            scale = torch.cat([amp, amp])  # the sin and the cos of each wave
            if by_gram:  # (I - q qᵀ) A diag(a²) Aᵀ (I - q qᵀ), without the scaled, projected n x F copies
                gram = project_gram((feats * (scale * scale)[None, :]) @ feats.T, a0 / a0.norm())
                post = HeadPosterior(shape, a0, b, evidence_only=True, gram_matrix=gram)
            else:
                post = HeadPosterior(feats * scale[None, :], a0, b, evidence_only=True)
            yield f, ell, nu, harmonics, post


def _best_models(prob, cfg, make_field: Callable, k_max: dict, box=None) -> dict:
    """Per period of ``k_max`` (period → harmonics): ``(log evidence, ℓ, ν, harmonics)`` of its best lattice."""
    best: dict[float, tuple] = {}
    for f, ell, nu, harmonics, post in lattice_posteriors(prob, cfg, make_field, k_max, box):
        ev = float(post.log_evidence(post.evidence()))
        if f not in best or ev > best[f][0]:
            best[f] = (ev, ell, nu, harmonics)
    return best


def coarse_models(prob, cfg, make_field: Callable) -> dict:
    """The mesh box's best lattice per period at :data:`HARMONICS` harmonics: ``(log evidence, ℓ, ν, harmonics)``.

    The first, cheapest step of :func:`choose_lattice`, keyed by period (:data:`PERIODS`).
    """
    return _best_models(prob, cfg, make_field, {f: HARMONICS for f in PERIODS})


def _refined(prob, cfg, make_field: Callable, coarse: dict) -> tuple[dict, bool]:
    """The mesh box's best lattice of each period (``coarse``, :func:`coarse_models`), refined where the box wins."""
    best = dict(coarse)
    refined = best[1.0][0] >= best[2.0][0]
    if refined:  # the box won against a coarser lattice: twice the box again, at the box's shortest wavelength
        best.update(_best_models(prob, cfg, make_field, {2.0: 2 * HARMONICS}))
    return best, refined


def choose_lattice(prob, cfg, make_field: Callable, coarse: dict | None = None) -> tuple[dict, dict]:
    """Period, correlation length ℓ and smoothness ν of a Matérn lattice prior, by the evidence.

    Each model of :func:`lattice_posteriors` is scored by its evidence with λ at its
    maximum; the kept model is the one of largest evidence. With :data:`HARMONICS`
    harmonics on both periods, the lattice of twice the box resolves only half as fine
    as the box's, so a win of the box there may be one of resolution, not of the
    wrap. Where the box wins, the lattice of twice the box is scored again over the
    grid of ℓ and ν with twice the harmonics: the box's waves and as short, plus the
    waves between them, which need not wrap. The box is kept unless that lattice has
    the larger evidence. Where twice the box wins even at half the resolution, that
    settles it.

    On a padded tensor mesh (:func:`core_extent` not None) the mesh box is mostly
    padding, which the data barely see, and its lattice spends its harmonics and its
    grid of ℓ on it. A lattice of twice the core (its own ℓ grid, twice
    :data:`HARMONICS`: the refined twice-the-box resolution of a uniform mesh) is then
    scored too, and the box of larger evidence kept. Not the core itself: a lattice
    that wraps around the core would copy it into the padding. Where the core's lattice
    beats both of the mesh box's at :data:`HARMONICS`, the box's refinement (at the box's
    own shortest wavelength, coarser than the core's) is not scored. The lattice describes
    one period centred on its box; padding cells beyond it take the field's mean
    (:mod:`gempy_gravinv.inversion._lattice_design`).

    ``coarse``: the mesh box's :func:`coarse_models`, where already computed.

    Returns
    -------
    encoding_options : dict
        For ``encoding="periodic"``: ``n_harmonics``, ``lattice``, ``spectrum`` (ℓ m, ν),
        ``spectrum_power`` 1, ``period_factor`` and, on the core, ``box_extent``.
    report : dict
        ``period_factor``, ``length_m``, ``nu``, ``harmonics`` (per axis, of the kept
        lattice), ``log_evidence`` of the best model of each period (``box`` None on the
        core), ``log_bayes_factor`` (twice the box over the box, at the same shortest
        wavelength where ``refined``; None on the core), ``box`` (``"mesh"`` or
        ``"core"``), ``box_extent`` (m), ``core_log_bayes_factor`` (the core's best over
        the mesh box's; None without a core) and ``rule``.
    """
    core = core_extent(prob.mesh)
    on = {}
    if core is not None:  # twice the core only: a lattice that wraps around the core copies it into the padding
        on["core"] = (_best_models(prob, cfg, make_field, {2.0: 2 * HARMONICS}, core), False)
    coarse = coarse if coarse is not None else coarse_models(prob, cfg, make_field)
    if core is not None and max(v[0] for v in coarse.values()) < on["core"][0][2.0][0]:
        on["mesh"] = (dict(coarse), False)  # refining the box, at its own shortest wavelength, would not reach the core
    else:
        on["mesh"] = _refined(prob, cfg, make_field, coarse)
    top = {name: max(best.values(), key=lambda v: v[0])[0] for name, (best, _) in on.items()}
    where = max(top, key=top.get)
    best, refined = on[where]
    lbf = best[2.0][0] - best[1.0][0] if 1.0 in best else None
    factor = 2.0 if lbf is None or lbf > 0 else 1.0
    ev, ell, nu, harmonics = best[factor]
    if where == "core":
        rule = (f"largest evidence: a Matérn field (ℓ = {ell:.4g} m, ν = {nu:g}) on a lattice of twice the mesh's "
                "core (its cells of the smallest widths; padding beyond one period centred on the core takes the "
                "mean)")
    else:
        wraps = "does not wrap" if factor == 2.0 else "wraps"
        rule = (f"largest evidence: a Matérn field (ℓ = {ell:.4g} m, ν = {nu:g}) that {wraps} around the mesh box "
                f"(log Bayes factor {abs(lbf):.1f} over the other period"
                + (", at the same shortest wavelength)" if refined else ", itself at twice the shortest wavelength)"))
    core_lbf = None if core is None else top["core"] - top["mesh"]
    if core is not None:
        rule += (f"; log Bayes factor {abs(core_lbf):.1f} over the best lattice on "
                 + ("the whole mesh box" if where == "core" else "twice the mesh's core"))
    logger.info("lattice prior from the data: %s", rule)
    opts = lattice_options(harmonics, ell, nu, factor, core if where == "core" else None)
    return opts, dict(period_factor=factor, length_m=ell, nu=nu, harmonics=list(harmonics),
                      log_evidence={"box": best[1.0][0] if 1.0 in best else None, "twice_box": best[2.0][0]},
                      log_bayes_factor=lbf,
                      refined=refined, box=where, box_extent=[float(v) for v in (core if where == "core" else
                                                                                  prob.mesh.extent)],
                      core_log_bayes_factor=core_lbf, rule=rule)


def lattice_options(harmonics, ell: float, nu: float, factor: float, box=None) -> dict:
    """The periodic encoding's options of a Matérn lattice: ``harmonics`` per axis, ℓ (m), ν, period ``factor``.

    ``box`` (6,) m: the lattice's box where it is not the mesh's (a core).
    """
    opts = dict(n_harmonics=list(harmonics), lattice=True, spectrum=[ell, nu], spectrum_power=1.0,
                period_factor=factor)
    if box is not None:
        opts["box_extent"] = [float(v) for v in box]
    return opts


def closed_form_config(cfg, opts: dict):
    """``cfg`` turned into the closed-form one-layer lattice model of encoding options ``opts``.

    The :meth:`INRConfig.spectral` form: linear output, no weighting, no warm start,
    solved in closed form with λ at the evidence's maximum; the run's ``bounds`` hold the
    closed-form model (``head_bounds``) instead of bounding the output. The field is a
    lattice of Fourier features whatever ``cfg.backend`` (``"voxel"`` runs its compact
    model cell by cell and its smooth model as this lattice).
    """
    held = cfg.head_bounds if cfg.head_bounds is not None else cfg.bounds
    return dataclasses.replace(cfg, backend="inr", encoding="periodic", encoding_options=opts,
                               prior_length=opts["spectrum"][0],
                               head_bounds=None if held is None else tuple(float(v) for v in held),
                               prior_nu=opts["spectrum"][1], depth=0, output="linear", bounds=None, init_value=None,
                               weighting="none", solver="linear", head_lambda="evidence", net_dtype="float64",
                               regularization="none", reg_mode="fixed", reg_weight=0.0, warm_start="none",
                               start_fallback=False, period_from_data=False)


def lattice_config(prob, cfg, make_field: Callable, coarse: dict | None = None):
    """``cfg`` turned into the closed-form Matérn lattice model the evidence picks (:func:`choose_lattice`).

    The smooth branch of ``prior_from_data``: a one-layer periodic-lattice field with the
    period, ℓ and ν of largest evidence (:func:`closed_form_config`). ``coarse``: the mesh
    box's :func:`coarse_models`, where already computed. Returns the configuration and
    the report of the choice.
    """
    opts, report = choose_lattice(prob, cfg, make_field, coarse)
    return closed_form_config(cfg, opts), report


def coarse_config(cfg, coarse: dict):
    """The closed-form configuration of the best lattice among :func:`coarse_models`' ``coarse``."""
    factor = max(coarse, key=lambda f: coarse[f][0])
    _, ell, nu, harmonics = coarse[factor]
    return closed_form_config(cfg, lattice_options(harmonics, ell, nu, factor))


def core_coarse_config(prob, cfg, make_field: Callable):
    """The closed-form configuration of the best lattice of twice the mesh's core at :data:`HARMONICS`, or None.

    The core's counterpart of :func:`coarse_config` (:func:`core_extent`; None where the
    mesh has no core): the cheapest lattice on the cells the data resolve best, which on
    a graded mesh the mesh box's lattices describe at a coarser scale.
    """
    core = core_extent(prob.mesh)
    if core is None:
        return None
    _, ell, nu, harmonics = _best_models(prob, cfg, make_field, {2.0: HARMONICS}, core)[2.0]
    return closed_form_config(cfg, lattice_options(harmonics, ell, nu, 2.0, core))


def lattice_draws(prob, cfg, make_field: Callable, draws: int = NULL_DRAWS, seed: int = 0) -> torch.Tensor:
    """Whitened data ``(n_data, draws)`` drawn from the prior predictive of the lattice model of ``cfg``.

    ``cfg``: a closed-form lattice configuration (:func:`lattice_config`, :func:`coarse_config`,
    :func:`core_coarse_config`). The data
    of its Matérn field, ``d / σ ~ N(0, Ã Ãᵀ / λ + I)`` (``Ã`` the whitened design off
    the mean contrast's and the regional's columns, λ of largest evidence): Gaussian
    fields of the covariance the data chose, seen through the survey with its noise.
    Seeded (``seed``, CPU generator): the same data give the same draws.
    """
    A, b, _ = _whitened_lattice(prob, cfg, dict(cfg.encoding_options), make_field)
    post = HeadPosterior(A[:, 1:], A[:, 0], b, evidence_only=True)
    lam = post.evidence()
    del A
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    z = torch.randn(post.s2.numel(), int(draws), generator=gen, dtype=torch.float64).to(post.U)
    eps = torch.randn(post.n, int(draws), generator=gen, dtype=torch.float64).to(post.U)
    return eps.addmm_(post.U, z.mul_((post.s2 / lam).sqrt()[:, None]))
