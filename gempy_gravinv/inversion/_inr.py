"""INR gravity inversion: fit a density field to g_z with the physics loss χ²/N.

:func:`invert_inr` evaluates a density backend (default
:class:`~gempy_gravinv.density.INRDensity`) on the cells of a mesh, maps it to g_z with a
:class:`~gempy_gravinv.GravityOperator` (or a user matrix) and minimises
``χ²/N = mean(((G m - d) / σ)²)`` (+ an optional prior) with Adam, or solves the last
layer in closed form (``solver="linear"``). It stops at the target misfit, returns the
state that really has the reported misfit (re-evaluated at the end), checkpoints and
resumes exactly, and runs seeded ensembles.

Units: density contrast kg/m³; g_z mGal, positive downward; σ mGal.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time

import numpy as np
import torch

from .._distributed import world_size
from .._mesh import as_prism_mesh
from .._operator import resolve_device
from .._plausible import check_inputs, implausible_model
from .._survey import Survey
from ..metrics import RESIDUAL_Z, evaluate, residual_autocorrelation
from ._checkpoint import checkpoint_path, data_key
from ._config import INRConfig
from ._config_checks import implied_overrides
from ._core_cells import core_result, on_core
from ._memory import check_run_memory
from ._problem import _USER_SET, Problem, make_field
from ._result import INRResult, InversionInterrupted
from ._side import SideProcess, SideThread, side_run
from ._trainer import Event, solve_member, train_member
from ._warmstart import sizes_differ

logger = logging.getLogger(__name__)


@torch.enable_grad()  # training needs autograd even where the caller (or GemPy's backend) turned it off
def invert_inr(survey: Survey, mesh, config: INRConfig | dict | None = None, *,
               true_model=None, operator=None, checkpoint=None, resume: bool = False,
               stop_after: int | None = None, density=None, **options) -> INRResult:
    """Invert g_z for a density contrast field with an implicit neural representation.

    Parameters
    ----------
    survey : Survey
        Stations (m, z up) with observed g_z (mGal, positive down) and std (mGal).
    mesh : PrismMesh or discretize mesh
        Cells the field is sampled on and the forward integrates over.
    config : INRConfig or dict, optional
        Settings; by default :meth:`INRConfig.default` (``auto()``: every scale, the prior
        and the regional from the problem; ``INRConfig()`` with a ``density``); see
        :class:`INRConfig` for the presets.
    true_model : array_like (n_cells,), optional
        True contrast (kg/m³) to compute metrics against.
    operator : GravityOperator or array (n_data, n_cells), optional
        Forward operator to use instead of building one (mGal per kg/m³, positive down).
    checkpoint : path, optional
        File (or directory) for checkpoints; with ``resume=True`` an existing one is
        continued from its step to the same result as an uninterrupted run (bit for bit
        on the same device, dtype and number of torch threads; float32 reductions
        depend on the thread count). Checkpoints hold only tensors and plain values and
        are read with ``torch.load(..., weights_only=True)``.
    resume : bool
        Continue from ``checkpoint`` if it exists. Refused (``ValueError``) when it was
        written with other settings (a setting added to :class:`INRConfig` after it was
        written counts as that setting's default) or for other data (stations, g_z, std, mesh bounds
        or operator shape: a SHA-256 of them is stored), or is damaged.
    stop_after : int, optional
        Run at most this many steps per member in this call, checkpoint and return
        (``result.completed`` is False); resume later. For time-sliced jobs and tests.
        With ``start_fallback``, the second run (its own checkpoint files, tagged
        ``fallback``) follows the first in the same way.
    density : torch.nn.Module or callable, optional
        Train this density backend instead of ``make_density(config.backend, ...)``:
        a module (deep-copied for each member; the caller's module is not modified) or
        a factory ``density(mesh, seed) -> module`` (e.g. a geology + INR hybrid,
        :class:`gempy_gravinv.density.HybridDensity`). Its ``forward(points (n, 3) m)``
        returns kg/m³. The ``config`` field options are then not used to build it.
    **options
        Any :class:`INRConfig` field, overriding ``config`` (e.g. ``max_steps=200``).

    Returns
    -------
    INRResult
        Model on the mesh (kg/m³), ensemble std, predicted g_z (mGal), history,
        metrics, trained fields, timings.

    Raises
    ------
    ValueError / TypeError
        Survey without data or std, mesh/operator mismatch, bad options, unknown or
        unavailable device, a checkpoint that cannot be resumed.
    InversionInterrupted
        Ctrl-C during training (a ``KeyboardInterrupt``): the checkpoint is written at
        the end of the current step and the exception's ``result`` holds the kept state
        so far (``completed=False``, ``stop_reason="interrupted"``).
    """
    t_start = time.perf_counter()
    cfg = _config(config, options, survey, density)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint= (the file to resume from)")
    if stop_after is not None and checkpoint is None:
        raise ValueError("stop_after needs checkpoint= (so the run can be resumed)")
    n_threads0 = torch.get_num_threads()
    threads = _threads(cfg, survey, mesh)
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        mesh = as_prism_mesh(mesh)
        true_model = _true_model(true_model, mesh.n_cells)  # before the setup: it may take a while
        if isinstance(survey, Survey) and survey.has_data:  # data no contrast in the mesh can explain: units?
            gz = survey.components == "gz"
            check_inputs(np.asarray(survey.gz)[gz], np.asarray(survey.locations)[gz], mesh)
        prob = Problem(survey, mesh, cfg, operator, density)
        chosen = prob.cfg  # the settings as chosen on the whole mesh (the result's config)
        prob, core = on_core(prob, operator)
        if density is None and prob.cfg.solver == "adam":  # refuse, with the estimate, what cannot fit
            check_run_memory(prob, make_field(prob.cfg, prob.mesh, int(cfg.seed), "cpu", None, prob.depth))
        key = data_key(prob.survey, prob.mesh)
        t_setup = time.perf_counter() - t_start
        t_train = time.perf_counter()
        side = _side_by_side(prob, threads, n_threads0)
        outs, extra, selection, interrupted = _train_starts(prob, checkpoint, resume, stop_after, key, side)
        prob.lattice_sums.clear()
        if not interrupted and (why := _smooth_misses_bounds(prob, outs)) is not None:
            prob = Problem(survey, mesh, dataclasses.replace(cfg, **implied_overrides({"prior": "compact"})),
                           operator, density)
            said = prob.prior_selection["rule"].replace(_USER_SET.format("compact"), "")
            prob.prior_selection = dict(prob.prior_selection, prior="compact", set_by="bounds", rule=f"{why} ({said})")
            chosen = prob.cfg
            prob, core = on_core(prob, operator)
            if density is None:  # refuse, with the estimate, what cannot fit (as for a first run)
                check_run_memory(prob, make_field(prob.cfg, prob.mesh, int(cfg.seed), "cpu", None, prob.depth))
            key = data_key(prob.survey, prob.mesh)
            outs, extra, selection, interrupted = _train_starts(prob, checkpoint, resume, stop_after, key, side,
                                                                tag="compact")
            prob.lattice_sums.clear()
        coordinates = None
        if not interrupted:
            prob, outs, extra, coordinates, interrupted = _coordinate_fallback(prob, outs, extra, checkpoint,
                                                                               resume, stop_after, key)
        res = _result(prob, outs, true_model if core is None else None, t_start, t_setup, extra,
                      time.perf_counter() - t_train if side else None)
        if core is not None:  # the compact run on the mesh's core: its model on the whole mesh
            res = core_result(res, core, chosen, true_model)
        res.start_selection, res.coordinate_selection = selection, coordinates
        if (why := implausible_model(res.model)) is not None:
            logger.warning("%s", why)
        if interrupted:
            res.completed, res.stop_reason = False, "interrupted"
            logger.warning("INR training interrupted before every member was trained")
            raise InversionInterrupted(res, checkpoint)
        return res
    finally:
        torch.set_num_threads(n_threads0)


def _smooth_misses_bounds(prob: Problem, outs: list[dict]) -> str | None:
    """Why the smooth model the data chose gives way to the compact prior, or None where it stands.

    Where the closed-form smooth model, held within the run's bounds, misfits the data
    beyond the stopping band's top, and holding it there raised its χ²/N by more than
    the band's half-width, a smooth field within those bounds does not explain them: the
    compact prior, trained within the bounds, is the run then (said). A misfit the
    unbounded model has too (the evidence's λ fits to its own χ²/N) is not the bounds'.
    """
    sel = prob.prior_selection or {}
    if sel.get("prior") != "smooth" or sel.get("set_by") is not None or not outs:  # the data's choice only
        return None
    held = [(o.get("info") or {}).get("bounds") or {} for o in outs]
    top = prob.cfg.target_chi2 * (1 + prob.cfg.stop_tol)
    chi2 = _worst_chi2(outs)
    if not any(h.get("held") for h in held) or not all(o.get("done") for o in outs) or chi2 <= top:
        return None
    free = max(float(h.get("chi2_unbounded", 0.0)) for h in held if h.get("held"))
    if chi2 - free <= prob.cfg.target_chi2 * prob.cfg.stop_tol:  # the bounds cost less than the band's half-width
        return None
    lo, hi = held[0]["kgm3"]
    why = (f"{sel.get('rule', 'the smooth model')}; but held within the bounds ({lo:g}, {hi:g}) kg/m³ the smooth "
           f"model fits the data only to χ²/N {chi2:.3g} ({free:.3g} unbounded; the band's top {top:.3g}): the "
           "compact prior, trained within the bounds, instead")
    logger.warning("the smooth model the data chose fits them only to χ²/N %.3g within the bounds (%g, %g) kg/m³: "
                   "training the compact prior, which holds them, instead", chi2, lo, hi)
    return why


def _train(prob: Problem, checkpoint, resume: bool, stop_after: int | None, key: str,
           tag: str = "", cancel: Event | None = None,
           white: Event | None = None) -> tuple[list[dict], bool]:
    """Train (or solve) every member of ``prob``; their outputs and whether a Ctrl-C stopped them.

    ``cancel`` / ``white``: see :meth:`~gempy_gravinv.inversion._trainer.MemberTrainer.run`
    (a cancelled member ends the loop; the run is then not done).
    """
    outs: list[dict] = []
    n = int(prob.cfg.n_members)
    for k in range(n):
        desc = ("INR" if n == 1 else f"INR member {k + 1}/{n}") + (f" ({tag})" if tag else "")
        ck = checkpoint_path(checkpoint, k, n, tag)
        if prob.cfg.solver == "linear":  # the problem's: prior_from_data may choose the closed form
            outs.append(solve_member(prob, k, ck, resume, desc, key))
        else:
            outs.append(train_member(prob, k, ck, resume, stop_after, desc, key, cancel, white,
                                     position=1 if tag else 0))
            if outs[-1].get("interrupted"):
                return outs, not (outs[-1]["done"] and k == n - 1)
            if outs[-1].get("cancelled"):
                break
    return outs, False


def _may_fall_back(prob: Problem) -> bool:
    """Whether ``prob``'s run may be followed by the second run from the network's own start.

    With ``start_fallback``, the least-squares start (when the problem has one), Adam and
    the residuals' whiteness test (g_z data).
    """
    cfg = prob.cfg
    return bool(cfg.start_fallback and cfg.solver == "adam" and prob.moran is not None
                and prob.run_start() is not None)


def _side_by_side(prob: Problem, threads: int | None, cores: int) -> bool:
    """Whether the second run trains beside the first: one thread each, on a CPU with a core to spare.

    Only on one CPU process whose run uses one torch thread (``num_threads="auto"`` on a
    small problem, or 1) while torch had ``cores`` >= 2 before the run.
    """
    return (_may_fall_back(prob) and threads == 1 and cores >= 2 and prob.device.type == "cpu"
            and world_size() == 1)


def _side_run(alt: Problem, checkpoint, resume: bool, stop_after: int | None, key: str,
              processes: bool | None = None) -> SideThread | SideProcess:
    """The second run of ``alt`` (from the network's own start), to train beside the first (not started)."""
    return side_run(functools.partial(_train, alt, checkpoint, resume, stop_after, key, tag="fallback"), processes)


def _train_starts(prob: Problem, checkpoint, resume: bool, stop_after: int | None, key: str,
                  side: bool, tag: str = "") -> tuple[list[dict], list[dict], dict | None, bool]:
    """Train from the configured start, and from the network's own where ``start_fallback`` calls for it.

    The second run follows the first (``side=False``) or trains beside it from the start in
    another thread (``side=True``), cancelled as soon as a state of the first at the target
    misfit has white residuals or the first ends without calling for it: either way the
    same two runs and the same choice. Returns the kept members, the members of the other
    run (their time and steps count), the choice (None without a second run) and whether
    a Ctrl-C stopped the training. ``tag`` names the checkpoint files of a run that
    follows another (:func:`~gempy_gravinv.inversion._checkpoint.checkpoint_path`).
    """
    alt = None
    if _may_fall_back(prob):
        alt = prob.variant(warm_start="none", start_fallback=False)
        alt.test_white = True  # whether this run reaches white residuals decides between the two
    worker = _side_run(alt, checkpoint, resume, stop_after, key) if side else None
    if worker is not None:
        logger.info("training from the network's own start beside the least-squares start (one torch thread "
                    "each, in %s)", "a forked process" if isinstance(worker, SideProcess) else "a thread")
        worker.start()
    try:  # the first run sets the second's cancel once one of its states at the target had white residuals
        outs, interrupted = _train(prob, checkpoint, resume, stop_after, key, tag=tag,
                                   white=None if worker is None else worker.cancel)
    except BaseException:
        if worker is not None:  # stop the second run before the error leaves
            worker.result(discard=True)
        raise
    check = None if interrupted else _fallback_check(prob, outs)
    if check is None:
        if worker is not None:
            worker.result(discard=True)
        return outs, [], None, interrupted
    if worker is None:
        logger.info("no state at the target misfit had white residuals: training again from the network's "
                    "own start")
        outs_alt, interrupted = _train(alt, checkpoint, resume, stop_after, key,
                                       tag=f"{tag}.fallback" if tag else "fallback")
    else:
        outs_alt, interrupted = worker.result()
    if not interrupted and outs_alt and all(o["done"] for o in outs_alt):
        kept, selection = choose_start(prob, outs, outs_alt, check)
        return kept, (outs if kept is outs_alt else outs_alt), selection, False
    # stopped before the second run finished: the first run's model, not completed
    return [{**o, "done": False} for o in outs], outs_alt, None, interrupted


def _worst_chi2(outs: list[dict]) -> float:
    """The largest kept χ²/N of a run's members."""
    return max(float(o["chi2"]) for o in outs)


def _far_above(chi2: float, top: float) -> str:
    """What to check where a kept misfit is ten times the band's top or more (else nothing)."""
    if chi2 < 10 * top:
        return ""
    return ("; a misfit this far above the target is more often the data than the network: check their unit "
            "(mGal), sign (g_z positive down), σ, and that the stations lie over the mesh")


def _coordinate_fallback(prob: Problem, outs: list[dict], extra: list[dict], checkpoint, resume: bool,
                         stop_after: int | None, key: str):
    """Where the kept run does not fit the data on a graded mesh: train again in cell-index coordinates.

    A hash grid spread over the whole mesh box (z-scored coordinates) gives a padded or
    octree mesh's core of fine cells a few vertices, and the network then cannot fit the
    data: its kept state ends above the target misfit. With ``coordinate_fallback`` (a
    hash grid, cells of several sizes, no user density) the run is repeated from the
    same start with the grid in the mesh's cell-index space (``normalization="cells"``,
    :class:`~gempy_gravinv.density._warp.CellIndexWarp`), and the run whose kept misfit
    lies closer to the target is kept. A kept run still above the target is warned about.
    Returns ``(problem, kept members, other members, report or None, interrupted)``.
    """
    cfg = prob.cfg
    top = cfg.target_chi2 * (1 + cfg.stop_tol)  # the stopping band's top
    chi2 = _worst_chi2(outs)
    if cfg.solver != "adam" or chi2 <= top or not all(o.get("done") for o in outs):  # fits, or to be resumed
        return prob, outs, extra, None, False
    if not (cfg.coordinate_fallback and cfg.encoding == "hash" and cfg.normalization != "cells"
            and prob.density is None and sizes_differ(prob.mesh.volumes)):
        logger.warning("the kept model ends above the target misfit (χ²/N %.3g > %.3g, the stopping band's top): "
                       "the network did not fit the data (more steps, max_steps, or a finer network may fit them)%s",
                       chi2, top, _far_above(chi2, top))
        return prob, outs, extra, None, False
    logger.warning("the kept model ends above the target misfit (χ²/N %.3g > %.3g, the stopping band's top) on "
                   "cells of several sizes: training again with the network's grid in the mesh's cell-index space",
                   chi2, top)
    alt = prob.variant(normalization="cells")
    outs_alt, interrupted = _train(alt, checkpoint, resume, stop_after, key, tag="cells")
    if interrupted or not outs_alt or not all(o["done"] for o in outs_alt):
        return prob, [{**o, "done": False} for o in outs], [*extra, *outs_alt], None, interrupted
    chi2_alt = _worst_chi2(outs_alt)
    gap, gap_alt = (max(abs(float(o["chi2"]) - cfg.target_chi2) for o in run) for run in (outs, outs_alt))
    keep_alt = gap_alt < gap
    rule = (f"the run with the network's grid over the mesh box (z-scored coordinates) ended at χ²/N {chi2:.3g}, "
            f"above the target {cfg.target_chi2:g}; trained again with the grid in the mesh's cell-index space "
            f"(its vertices follow the cell sizes): χ²/N {chi2_alt:.3g}; kept the "
            + ("cell-index run" if keep_alt else "first run") + " (the misfit closer to the target)")
    report = dict(coordinates="cells" if keep_alt else "box", chi2={"box": chi2, "cells": chi2_alt}, rule=rule)
    logger.info("coordinates: %s", rule)
    kept = chi2_alt if keep_alt else chi2
    if kept > top:
        logger.warning("the kept model still ends above the target misfit (χ²/N %.3g > %.3g, the stopping band's "
                       "top)%s", kept, top, _far_above(kept, top))
    if keep_alt:
        return alt, outs_alt, [*extra, *outs], report, False
    return prob, outs, [*extra, *outs_alt], report, False


def _config(config, options: dict, survey=None, density=None) -> INRConfig:
    """The validated settings from ``config`` and overrides.

    ``config=None``: :meth:`INRConfig.default` for ``survey``; with a user ``density``
    (whose own form the data-driven choices of ``auto()`` would replace), ``INRConfig()``.
    """
    if config is None:
        cfg = INRConfig.default(survey) if density is None else INRConfig()
    elif isinstance(config, INRConfig):
        cfg = config
    elif isinstance(config, dict):
        cfg = INRConfig.from_dict(config)
    else:
        raise TypeError(f"config must be an INRConfig or dict, got {type(config).__name__}")
    if options:
        names = {f.name for f in dataclasses.fields(INRConfig)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise TypeError(f"invert_inr got unknown option(s) {unknown}; valid: {sorted(names)}")
        cfg = dataclasses.replace(cfg, **implied_overrides(options))
    cfg.validate()
    return cfg


def _threads(cfg: INRConfig, survey, mesh) -> int | None:
    """Torch threads for the run (``cfg.num_threads``; ``"auto"``: 1 for small CPU problems)."""
    if cfg.num_threads != "auto":
        return cfg.num_threads
    n_cells = getattr(mesh, "n_cells", None)
    small = n_cells is not None and isinstance(survey, Survey) and survey.n_data * int(n_cells) <= 2e7
    return 1 if small and resolve_device(cfg.device).type == "cpu" else None


def _true_model(true_model, n_cells: int) -> np.ndarray | None:
    if true_model is None:
        return None
    t = np.asarray(true_model, dtype=np.float64).reshape(-1)
    if t.shape[0] != n_cells:
        raise ValueError(f"true_model has {t.shape[0]} values, mesh has {n_cells} cells")
    return t


def _result(prob: Problem, outs: list[dict], true_model, t_start: float, t_setup: float,
            extra: list[dict] = (), train_wall: float | None = None) -> INRResult:
    """Combine the members: mean model, spread (or posterior std), predicted data, metrics.

    ``extra``: the members of a run that was not kept (its time and steps count).
    ``train_wall``: the training's wall time where runs trained side by side (else the
    members' times add up).
    """
    cfg = prob.cfg
    members = np.stack([o["model"] for o in outs])
    model = members.mean(0)
    std = members.std(0, ddof=1) if len(outs) > 1 else None
    if all(o.get("std") is not None for o in outs):  # closed-form posteriors: the mixture's std
        var = np.mean([o["std"] ** 2 for o in outs], axis=0) + (members.var(0) if len(outs) > 1 else 0.0)
        std = np.sqrt(var)
    with torch.no_grad():
        mt = torch.as_tensor(model, device=prob.device, dtype=prob.dtype)
        pred, regional = prob.predicted(mt)  # with the best regional, if any
        chi2 = float(prob.chi2(mt))
    predicted = pred.detach().cpu().double().numpy()
    train_time = sum(o["train_time"] for o in [*outs, *extra]) if train_wall is None else train_wall
    timings = dict(setup=t_setup, train=train_time, total=time.perf_counter() - t_start,
                   steps=int(sum(o["steps"] for o in [*outs, *extra])),
                   runs=sum(1 for o in [*outs, *extra] if o["steps"] > 0), device=str(prob.device),
                   starts_side_by_side=train_wall is not None, **prob.parallel_info())
    metrics = None
    if true_model is not None:
        metrics = evaluate(model=model, true=true_model, pred=predicted, survey=prob.survey, mesh=prob.mesh,
                           wall_time=train_time, device=str(prob.device))
    advice = None
    if cfg.warm_start == "least_squares" and cfg.solver == "adam" and not cfg.start_fallback:
        advice = FALLBACK_ADVICE
    check = residual_check(predicted, prob.survey,
                           _moran(prob, predicted) if metrics is None else metrics["residual_autocorrelation"],
                           advice)
    if metrics is not None:
        metrics["residual_autocorrelation"] = check  # one dict, with its sentence
    return INRResult(model=model, std=std, members=members, predicted=predicted, chi2=chi2,
                     member_chi2=[o["chi2"] for o in outs], history=outs[0]["history"],
                     histories=[o["history"] for o in outs], best_step=outs[0]["best_step"],
                     stop_reason=outs[0]["reason"], metrics=metrics, fields=[o["field"] for o in outs],
                     config=cfg, timings=timings, mesh=prob.mesh, survey=prob.survey, true_model=true_model,
                     completed=all(o["done"] for o in outs),
                     solve_info=[o["info"] for o in outs] if cfg.solver == "linear" else None,
                     recorded_chi2=[o["recorded_chi2"] for o in outs], prior_selection=prob.prior_selection,
                     regional=regional, period_selection=prob.period_selection,
                     noise_estimate=prob.noise_estimate, regional_selection=prob.regional_selection,
                     residual_check=check,
                     setup=prob.setup_plan.describe(prob.survey.n_data) if prob.setup_wanted else None)


#: What to try when the least-squares start's model leaves correlated residuals: the setting and its effect
FALLBACK_ADVICE = dict(option="start_fallback", value=True,
                       effect="trains once more from the network's own start and keeps the whiter run")


def residual_check(predicted: np.ndarray, survey, computed: dict | None = None,
                   advice: dict | None = None) -> dict | None:
    """Are the residuals of one component's data spatially white? Moran's I with a sentence (None for mixed data).

    ``computed``: :func:`~gempy_gravinv.metrics.residual_autocorrelation` of these
    residuals when :func:`~gempy_gravinv.metrics.evaluate` already has it. ``advice``
    (``option``, ``value``, ``effect``): a setting to try, named in the sentence
    (``option=value effect``) when the residuals are correlated; the returned dict then
    also holds ``finding`` (the sentence without it) and ``advice``, so an interface can
    name the setting its own way (the CLI: ``--start-fallback``).
    """
    if len(survey.component_groups()) > 1:  # neighbours of different components are no common field
        return None
    out = computed if computed is not None else residual_autocorrelation(predicted, survey.gz, survey.std,
                                                                         survey.locations)
    if out is None:
        return None
    i, z = out["moran_i"], out["z"]
    if z > RESIDUAL_Z:
        rule = (f"residuals correlated between neighbouring stations (Moran's I {i:.2f}, z {z:.1f}): the "
                "model misses structure the data hold (a source at another depth, a regional, too smooth a prior)")
        if advice is not None:
            out = {**out, "finding": rule, "advice": dict(advice)}
            rule += f"; {advice['option']}={advice['value']!r} {advice['effect']}"
    elif z < -RESIDUAL_Z:
        rule = f"residuals anti-correlated between neighbouring stations (Moran's I {i:.2f}, z {z:.1f}): noise fitted"
    else:
        rule = f"residuals spatially white (Moran's I {i:.2f}, z {z:.1f} under white noise)"
    logger.debug("%s", rule)  # the result, metrics.json and the CLI's summary carry it
    return {**out, "rule": rule}


#: Standard errors by which the fallback run's Moran's I must be below the first run's to be kept
FALLBACK_SE = 2.0


def _fallback_check(prob: Problem, outs: list[dict]) -> dict | None:
    """The residual check of the least-squares start's run where it calls for the second run, else None.

    It does when no member reached a state at the target misfit with white residuals
    (``seen_white``, recorded during training) and the kept model's residuals are
    correlated.
    """
    if not (_may_fall_back(prob) and all(o["done"] for o in outs)):
        return None
    if any(o.get("seen_white") for o in outs):
        return None
    check = _check_of(prob, outs)
    return check if check is not None and check["z"] > RESIDUAL_Z else None


def _moran(prob: Problem, predicted: np.ndarray) -> dict | None:
    """Moran's I of the residuals of ``predicted`` (mGal) with the problem's own test (None without one)."""
    if prob.moran is None:
        return None
    return prob.moran.test((prob.survey.gz - predicted) / prob.survey.std)


def _check_of(prob: Problem, outs: list[dict]) -> dict | None:
    """:func:`residual_check` of the members' mean model."""
    with torch.no_grad():
        m = torch.as_tensor(np.mean([o["model"] for o in outs], axis=0), device=prob.device, dtype=prob.dtype)
        pred = prob.predicted(m)[0].detach().cpu().double().numpy()
    return residual_check(pred, prob.survey, _moran(prob, pred))


def choose_start(prob: Problem, first: list[dict], second: list[dict],
                 first_check: dict | None = None) -> tuple[list[dict], dict]:
    """Keep the run that explains the data's structure: the kept members and the reported choice.

    ``first`` was trained from the least-squares start, ``second`` from the network's own
    start; both fit the data to the target χ²/N. A run *reached white residuals* when one
    of its states at the target misfit had them (``seen_white``, recorded during
    training). Where the second run reached them and the first did not, the second is
    kept: only its model accounts for every anomaly's shape. Otherwise (neither, or both)
    the second is kept when its final Moran's I is below the first's by more than
    :data:`FALLBACK_SE` standard errors of the difference (the two null standard
    deviations combined), else the first. ``first_check``: the first run's
    :func:`residual_check`, when already computed.
    """
    a = first_check if first_check is not None else _check_of(prob, first)
    b = _check_of(prob, second)
    se = math.hypot(a["std"], b["std"])
    z = (a["moran_i"] - b["moran_i"]) / se if se > 0 else 0.0
    white = [any(o.get("seen_white") for o in outs) for outs in (first, second)]
    adequate = white[1] and not white[0]
    keep_second = adequate or z > FALLBACK_SE
    runs = {name: dict(moran_i=c["moran_i"], z=c["z"], chi2=float(np.mean([o["chi2"] for o in outs])),
                       reached_white=w)
            for name, c, outs, w in (("least_squares", a, first, white[0]), ("none", b, second, white[1]))}
    head = (f"the run from the least-squares start {'reached' if white[0] else 'reached no state with'} white "
            f"residuals at the target misfit (the kept state: Moran's I {a['moran_i']:.2f}, z {a['z']:.1f}); "
            f"the run from the network's own start {'did' if white[1] else 'did not'} (I {b['moran_i']:.2f}; "
            f"the first minus the second: {z:.1f} standard errors): kept the ")
    if adequate:
        rule = head + "network's own start (only its run reached white residuals)"
    elif keep_second:
        rule = head + f"network's own start (its I is lower by more than {FALLBACK_SE:g} standard errors)"
    else:
        rule = head + f"least-squares start (the second needs white residuals or an I lower by > {FALLBACK_SE:g})"
    logger.debug("start chosen from the residuals: %s", rule)  # the result and the CLI carry it
    return (second if keep_second else first), dict(start="none" if keep_second else "least_squares",
                                                    z_difference=z, rule=rule, runs=runs)
