"""The stopping rule of INR training, with exact bookkeeping of the kept state."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._config import INRConfig


class Stopper:
    """The stopping rule, with exact bookkeeping of the kept state.

    ``reg_mode="fixed"``: the paper's rule (stop after ``patience`` evaluations in the
    band ``target (1 ± tol)`` or ``overfit_patience`` below it; keep the evaluated state
    closest to the target).

    ``reg_mode="target"`` (misfit-constrained prior): phase ``"fit"`` trains on χ²/N
    alone until it first enters the band or goes below it; phase ``"shape"`` then adds
    ``weight · R(m)`` and adapts the weight after every step (``x (1 + rate)`` while
    χ²/N is below the target, ``x (1 - rate)`` while above), so the prior reshapes the
    model while the misfit stays at the target. It runs to :meth:`step_limit` and keeps the
    in-band state with the smallest R; without one, the state closest to the target.
    A prior that changes over its first ``cooling_steps`` steps (a cooled
    minimum-support ε) has no comparable R until then: only later states are kept by R.
    Given a ``white`` test in :meth:`update`, it also records whether any in-band state
    had spatially white residuals (:attr:`seen_white`), testing states until one has.
    """

    def __init__(self, cfg: INRConfig, cooling_steps: int = 0, from_start: bool = False) -> None:
        self.cfg = cfg
        self.cooling_steps = int(cooling_steps)
        self.from_start = bool(from_start)
        self.shape_from = -1  # the first step of phase "shape" (-1: not reached)
        self.best_gap = math.inf
        self.best_step = -1
        self.best_chi2 = math.nan
        self.best_state: dict | None = None
        self.in_band = 0
        self.below = 0
        self.phase = "fit" if cfg.reg_mode == "target" else "fixed"
        self.weight = float(cfg.reg_weight)
        self.best_reg = math.inf
        self.seen_white = False  # whether an in-band state of phase "shape" had white residuals

    def step_limit(self) -> int:
        """The step at which the run ends: ``max_steps``, or from a start ``max_steps`` steps of the prior.

        ``from_start`` (a network fitted to a start at the target misfit, in ``"target"``
        mode): phase ``"fit"`` only brings the network back to a misfit its start already
        had, and its length measures how well the network reproduced the start on this
        mesh, not the problem. The prior then acts for the same number of steps whatever
        the warm-up took: the run ends ``max_steps - 1`` steps after the step where phase
        ``"shape"`` began (a start fitted at step 0 ends at ``max_steps``). Without a
        start, and for a run whose fit never reaches the band, the run ends at
        ``max_steps``.
        """
        if not self.from_start or self.phase != "shape" or self.shape_from < 1:
            return int(self.cfg.max_steps)
        return int(self.cfg.max_steps) + self.shape_from - 1

    def reg_weight(self) -> float:
        """Weight of the prior term in the loss of the current step."""
        return 0.0 if self.phase == "fit" else self.weight

    def prior_steps(self, step: int) -> int:
        """How many steps before ``step`` the prior has acted (0 before and at the first).

        ``reg_mode="fixed"``: the prior acts from step 0, so ``step`` itself.
        """
        if self.phase == "fixed":
            return max(0, step)
        return max(0, step - self.shape_from) if self.shape_from >= 0 else 0

    def _keep(self, step: int, chi2: float, fld: torch.nn.Module) -> None:
        self.best_step, self.best_chi2 = step, chi2
        self.best_state = {k: v.detach().clone() for k, v in fld.state_dict().items()}

    def update(self, step: int, chi2: float, fld: torch.nn.Module, reg: float = 0.0,
               white: Callable[[], bool] | None = None) -> str | None:
        """Score the state of ``fld`` before step ``step`` (χ²/N, prior value); why to stop, or None.

        ``white``: whether this state's residuals are spatially white (called for
        in-band states of phase ``"shape"`` until one has them).
        """
        cfg = self.cfg
        if not cfg.early_stopping:
            return None
        lo, hi = cfg.target_chi2 * (1 - cfg.stop_tol), cfg.target_chi2 * (1 + cfg.stop_tol)
        gap = abs(chi2 - cfg.target_chi2)
        if self.phase == "shape":
            if lo <= chi2 <= hi and white is not None and not self.seen_white:
                self.seen_white = bool(white())
            cooled = self.prior_steps(step) >= self.cooling_steps
            if cooled and lo <= chi2 <= hi and reg < self.best_reg:
                self.best_reg, self.best_gap = reg, gap
                self._keep(step, chi2, fld)
            elif not math.isfinite(self.best_reg) and gap < self.best_gap:
                self.best_gap = gap
                self._keep(step, chi2, fld)
            return None
        if gap < self.best_gap:
            self.best_gap = gap
            self._keep(step, chi2, fld)
        if self.phase == "fit":
            if chi2 <= hi and step + 1 >= cfg.min_steps:
                # the prior term starts at reg_weight x the data term
                self.phase, self.shape_from = "shape", step + 1
                self.weight = float(cfg.reg_weight) * cfg.target_chi2 / max(reg, 1e-12)
            return None
        if step + 1 < cfg.min_steps:
            return None
        self.in_band = self.in_band + 1 if lo <= chi2 <= hi else 0
        self.below = self.below + 1 if chi2 < lo else 0
        if self.in_band >= cfg.patience:
            return "target misfit reached"
        if self.below >= cfg.overfit_patience:
            return "below target misfit"
        return None

    def adapt(self, chi2: float) -> None:
        """After a step of phase ``"shape"``: move the prior weight toward the target misfit."""
        if self.phase == "shape" and math.isfinite(chi2):
            r = float(self.cfg.reg_rate)
            self.weight *= (1 + r) if chi2 < self.cfg.target_chi2 else (1 - r)

    def state(self) -> dict:
        """Everything needed to resume the rule (a checkpoint entry)."""
        return dict(best_gap=self.best_gap, best_step=self.best_step, best_chi2=self.best_chi2,
                    best_state=self.best_state, in_band=self.in_band, below=self.below,
                    phase=self.phase, weight=self.weight, best_reg=self.best_reg, seen_white=self.seen_white,
                    shape_from=self.shape_from)

    def load(self, s: dict) -> None:
        """Restore a :meth:`state`."""
        for k, v in s.items():
            setattr(self, k, v)


    def keep_final(self, step: int, chi2: float, fld: torch.nn.Module) -> None:
        """Keep the final state (after the last update) instead of a scored one."""
        self._keep(step, chi2, fld)
