"""Checks of :class:`~gempy_gravinv.inversion.INRConfig` settings: every field by name.

Choices against their allowed values, integers and finite numbers in range, and the
combinations a solver or prior cannot honour; each failure names the setting.
"""

from __future__ import annotations

from .._operator import resolve_device
from .._validation import check_choice, check_int, check_number
from ..density import ENCODINGS, OUTPUTS, as_torch_dtype, check_bounds
from ._depth import DEPTH_FROM
from ._linear import check_head_lambda
from ._regional import REGIONALS
from ._regularizers import BOUNDARIES, REGULARIZATIONS

WEIGHTINGS = ("none", "depth", "sensitivity")
WEIGHTING_MODES = ("output", "gradient")
REG_MODES = ("fixed", "target")
SOLVERS = ("adam", "linear")
SCHEDULES = ("constant", "cosine", "exponential")
NORMALIZATIONS = ("zscore", "extent", "isotropic", "cells")
WARM_STARTS = ("none", "least_squares")
#: ``noise``: fit the stated σ; fit it and report the estimate from the data; fit the estimate.
NOISE_MODES = ("stated", "report", "estimate")


def check_config(cfg) -> None:
    """Raise a ``ValueError``/``TypeError`` that names the first bad setting of an :class:`INRConfig`."""
    choices = {"weighting": WEIGHTINGS, "weighting_mode": WEIGHTING_MODES, "regularization": REGULARIZATIONS,
               "reg_mode": REG_MODES, "lr_schedule": SCHEDULES, "prior_boundary": BOUNDARIES,
               "solver": SOLVERS, "output": OUTPUTS, "normalization": NORMALIZATIONS,
               "depth_from": DEPTH_FROM, "warm_start": WARM_STARTS, "regional": REGIONALS + ("auto",),
               "noise": NOISE_MODES}
    if cfg.backend == "inr":
        choices["encoding"] = ENCODINGS
    for name, allowed in choices.items():
        check_choice(getattr(cfg, name), allowed, name=name)
    for name, low in (("max_steps", 1), ("n_members", 1), ("patience", 1), ("overfit_patience", 1),
                      ("quadrature", 1), ("width", 1), ("depth", 0), ("min_steps", 0),
                      ("checkpoint_every", 0), ("seed", 0), ("warm_start_steps", 0)):
        check_int(getattr(cfg, name), name=name, minimum=low)
    for name in ("batch_size", "eval_every"):
        check_int(getattr(cfg, name), name=name, minimum=1, allow_none=True)
    positive = ("lr", "target_chi2", "prior_nu", "lr_min", "lr_decay", "reg_eps")
    for name in positive:
        check_number(getattr(cfg, name), name=name, low=0.0, low_open=True)
    check_number(cfg.support_eps, name="support_eps (kg/m³)", low=0.0, low_open=True, allow_none=True)
    for name in ("reg_weight", "reg_depth_power", "weighting_power", "last_layer_gain", "warm_start_power",
                 "smooth_power"):
        check_number(getattr(cfg, name), name=name, low=0.0)
    check_number(cfg.stop_tol, name="stop_tol", low=0.0, high=1.0, high_open=True)
    check_number(cfg.support_cooling, name="support_cooling (fraction of max_steps)", low=0.0, high=1.0,
                 high_open=True)
    check_number(cfg.reg_rate, name="reg_rate", low=0.0, high=1.0, low_open=True, high_open=True)
    check_number(cfg.prior_length, name="prior_length (m)", low=0.0, low_open=True, allow_none=True)
    check_number(cfg.depth_z0, name="depth_z0 (m)", low=0.0, allow_none=True)
    check_number(cfg.init_value, name="init_value (kg/m³)", allow_none=True)
    if cfg.output != "linear" or cfg.bounds is not None:
        check_bounds(cfg.bounds)
    if cfg.head_bounds is not None:
        check_bounds(cfg.head_bounds)
        if cfg.solver != "linear":
            raise ValueError("head_bounds holds the closed-form head's model (solver='linear'); with "
                             f"solver={cfg.solver!r} use bounds")
    if cfg.lr > 1.0:
        raise ValueError(f"lr must be <= 1 (Adam's step in the network's own units), got {cfg.lr}")
    if cfg.lr_schedule == "cosine" and cfg.lr_min > cfg.lr:
        raise ValueError(f"lr_min ({cfg.lr_min}) must not exceed lr ({cfg.lr})")
    if cfg.lr_decay > 1.0:
        raise ValueError(f"lr_decay must be in (0, 1] (a per-step factor), got {cfg.lr_decay}")
    if cfg.init_value is not None and cfg.bounds is not None and cfg.output != "linear":
        lo, hi = check_bounds(cfg.bounds)
        if not lo <= cfg.init_value <= hi:  # on a bound (0 with (0, hi)): the output starts just inside it
            raise ValueError(f"init_value ({cfg.init_value} kg/m³) must lie within bounds ({lo}, {hi}) kg/m³")
    if len(cfg.axis_scale) != 3:
        raise ValueError(f"axis_scale must hold 3 factors (x, y, z), got {cfg.axis_scale!r}")
    for a in cfg.axis_scale:
        check_number(a, name="axis_scale", low=0.0, low_open=True)
    _check_prior(cfg)
    if cfg.period_from_data and cfg.encoding != "periodic":
        raise ValueError(f"period_from_data=True chooses the period of a periodic encoding; encoding is "
                         f"{cfg.encoding!r}: set encoding='periodic' or period_from_data=False")
    for name in ("start_fallback", "coordinate_fallback", "compact_on_core"):
        if not isinstance(getattr(cfg, name), bool):
            raise TypeError(f"{name} must be True or False, got {getattr(cfg, name)!r}")
    if cfg.start_fallback and cfg.warm_start != "least_squares":
        raise ValueError("start_fallback=True retrains from the network's own start when the least-squares "
                         f"start's model leaves correlated residuals; it needs warm_start='least_squares' "
                         f"(got {cfg.warm_start!r})")
    if cfg.prior is not None:
        check_choice(cfg.prior, ("compact", "smooth"), name="prior")
        if cfg.prior_from_data or cfg.lattice_from_data:
            raise ValueError(f"prior={cfg.prior!r} sets the prior; prior_from_data and lattice_from_data choose it "
                             "from the data: set one (INRConfig.auto(prior=...) turns prior_from_data off)")
        if cfg.prior == "compact" and cfg.regularization != "min_support":
            raise ValueError("prior='compact' keeps the minimum-support prior: it needs "
                             f"regularization='min_support' (got {cfg.regularization!r}); "
                             "INRConfig.auto(prior='compact') or INRConfig.compact() set it")
    if cfg.prior_from_data and cfg.lattice_from_data:
        raise ValueError("prior_from_data and lattice_from_data both choose the model: set one (lattice_from_data "
                         "skips the compactness check)")
    check_head_lambda(cfg.head_lambda)
    if cfg.solver == "linear":
        _check_linear(cfg)
    if cfg.num_threads != "auto":
        try:
            check_int(cfg.num_threads, name="num_threads", minimum=1, allow_none=True)
        except TypeError:
            raise ValueError(f"num_threads must be a positive integer, 'auto' or None, "
                             f"got {cfg.num_threads!r}") from None
    as_torch_dtype(cfg.dtype)
    as_torch_dtype(cfg.net_dtype)
    resolve_device(cfg.device)  # "gpu", unknown names, or CUDA without a GPU: a clear error here

def _check_prior(cfg) -> None:
    if cfg.reg_mode == "target":
        if cfg.regularization == "none" or not cfg.reg_weight > 0:
            raise ValueError("reg_mode='target' needs a regularization and reg_weight > 0 "
                             "(the initial weight of the prior term, adapted during the run)")
        if not cfg.early_stopping:
            raise ValueError("reg_mode='target' keeps the state at the target misfit; "
                             "it cannot be combined with early_stopping=False")
    if cfg.regularization == "matern" and cfg.prior_length is None:
        raise ValueError("regularization='matern' needs prior_length (the correlation length, m)")

def _check_linear(cfg) -> None:
    wanted = (("backend", "inr"), ("output", "linear"), ("bounds", None), ("weighting", "none"),
              ("regularization", "none"))
    bad = [f"{k}={getattr(cfg, k)!r}" for k, ok in wanted if getattr(cfg, k) != ok]
    if bad:
        raise ValueError("solver='linear' solves the last layer of an INR with output='linear', "
                         "bounds=None, weighting='none' and regularization='none' (its prior is on the "
                         f"weights); got {', '.join(bad)}. Use solver='adam' for those")


def implied_overrides(options: dict) -> dict:
    """Overrides with the settings they imply: the start fallback follows the start, a set prior ends the test.

    Parameters
    ----------
    options : dict
        :class:`INRConfig` field overrides.

    Returns
    -------
    dict
        ``options``, with ``start_fallback=False`` added where they move ``warm_start``
        off ``"least_squares"`` without naming ``start_fallback`` (the fallback retrains
        from that start's run), and ``prior_from_data=False`` where they set ``prior``
        without naming ``prior_from_data`` (a prior set by the user is not tested).
    """
    out = dict(options)
    if out.get("warm_start", "least_squares") != "least_squares" and "start_fallback" not in out:
        out["start_fallback"] = False
    if out.get("prior") is not None and "prior_from_data" not in out:
        out["prior_from_data"] = False
    return out
