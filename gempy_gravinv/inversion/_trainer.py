"""Training one member of an INR inversion: Adam on χ²/N (+ prior), stopping, checkpoints.

Units: density contrast kg/m³; g_z mGal, positive downward; χ²/N dimensionless.
"""

from __future__ import annotations

import copy
import logging
import math
import multiprocessing.synchronize
import os
import random
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch

from .._device import adam
from .._distributed import all_gather_objects, any_rank, is_main, world_size
from ._checkpoint import load_checkpoint, plain_values, resume_key, rng_state, save_checkpoint, set_rng_state
from ._config import INRConfig
from ._head_solve import solve_head
from ._problem import Problem
from ._stopping import Stopper

logger = logging.getLogger(__name__)

HISTORY_KEYS = ("step", "chi2", "loss", "reg", "reg_weight", "lr", "time")


class DeferredInterrupt:
    """Ctrl-C during training stops at the end of the current step, not inside it.

    While active (a context manager, only in the main thread and only when Python's
    default SIGINT handler is installed), a first SIGINT sets :attr:`requested`; the
    training loop checks it between steps, so the checkpoint it then writes is a
    consistent state and resumes exactly. A second SIGINT raises ``KeyboardInterrupt``
    at once. The previous handler is restored on exit.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> DeferredInterrupt:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:  # no buffered I/O here: a signal handler may run inside a write
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if is_main():
            try:  # one unbuffered write to stderr, at once: a step may take minutes
                os.write(2, b"\nCtrl-C: stopping after the current step, then writing the checkpoint and the best "
                            b"state (Ctrl-C again stops at once)\n")
            except OSError:
                pass

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


#: Projected training time (seconds) beyond which the first step warns about it
SLOW_RUN_S = 3600.0


def _warn_if_slow(step_s: float, steps_left: int, desc: str) -> None:
    """Warn once, after the first step, where the steps left would take more than :data:`SLOW_RUN_S`."""
    if step_s * steps_left <= SLOW_RUN_S or not is_main():
        return
    logger.warning("%s: the first step took %.3g s; the %d steps left would take about %.1f h. Ctrl-C stops after "
                   "a step and keeps the best state (--resume continues it; --checkpoint-every N, or checkpoint_every, "
                   "writes checkpoints on the way); a GPU (--device cuda), fewer cells or stations, or "
                   "--max-steps shorten it", desc, step_s, steps_left, step_s * steps_left / 3600.0)


def make_scheduler(cfg: INRConfig, opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule of ``cfg.lr_schedule`` on ``opt``."""
    if cfg.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(cfg.max_steps), eta_min=cfg.lr_min)
    if cfg.lr_schedule == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_decay)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)


#: A signal between two runs: a thread's event, or one shared with a forked process
Event = threading.Event | multiprocessing.synchronize.Event

#: Held while a trainer seeds the global generators and builds its field (two runs may train side by side)
_SEEDING = threading.Lock()


class MemberTrainer:
    """One member's training state and loop.

    Parameters
    ----------
    prob : Problem
        Data, operator and loss shared by the members.
    member : int
        Member index; its seed is ``cfg.seed + member``.
    ckpt : Path or None
        This member's checkpoint file.
    key : str
        :func:`~gempy_gravinv.inversion._checkpoint.data_key` of the problem's data
        (stored in and checked against the checkpoint).
    """

    def __init__(self, prob: Problem, member: int, ckpt: Path | None, key: str = "") -> None:
        cfg = prob.cfg
        seed = int(cfg.seed) + member
        self.prob, self.cfg, self.member, self.ckpt, self.key = prob, cfg, member, ckpt, key
        with _SEEDING:  # the global generators, seeded here, are shared by every thread
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            random.seed(seed)
            self.field = prob.make_field(seed)
        self.opt = adam(self.field.parameters(), lr=cfg.lr)
        self.sched = make_scheduler(cfg, self.opt)
        self.batch_gen = torch.Generator(device="cpu").manual_seed(seed)
        self.stopper = Stopper(cfg, getattr(prob.reg, "cooling_steps", 0), prob.run_start() is not None)
        self.history: dict[str, list] = {k: [] for k in HISTORY_KEYS}
        self.step = 0
        self.elapsed0 = 0.0
        self.reason = "max_steps reached"
        self.done = False
        self.perm: torch.Tensor | None = None
        self.pos = 0
        n = prob.survey.n_data
        self.batch = None if cfg.batch_size is None or cfg.batch_size >= n else int(cfg.batch_size)
        self.eval_every = cfg.eval_every or (1 if self.batch is None else max(1, math.ceil(n / self.batch)))
        self.t0 = time.perf_counter()
        self.last_chi2: float | None = None
        self.interrupted = False
        self._phase: str | None = None  # "score" / "update" / "commit" while a step runs
        self._snapshot: dict | None = None
        self._sigint: DeferredInterrupt | None = None

    # ------------------------------------------------------------------ checkpoints
    def resume(self) -> None:
        """Continue from this member's checkpoint, if it exists (every rank reads it)."""
        if not checkpoint_on_all_ranks(self.ckpt):
            return
        ck = load_checkpoint(self.ckpt, self.cfg, self.key, self.prob.device, self.field)
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        set_rng_state(ck["rng"])
        self.batch_gen.set_state(ck["batch_rng"].cpu())
        self.stopper.load(ck["stopper"])
        self.history = ck["history"]
        self.step, self.elapsed0, self.reason, self.done = ck["step"], ck["elapsed"], ck["reason"], ck["done"]
        self.perm, self.pos = ck.get("perm"), ck.get("pos", 0)

    def save(self, done: bool, why: str) -> None:
        """Write this member's checkpoint (no-op without a checkpoint file)."""
        if self.ckpt is None:
            return
        save_checkpoint(self.ckpt, dict(
            config_key=resume_key(self.cfg), data_key=self.key, member=self.member, field=self.field.state_dict(),
            optimizer=self.opt.state_dict(), scheduler=self.sched.state_dict(), rng=rng_state(),
            batch_rng=self.batch_gen.get_state(), stopper=self.stopper.state(), history=self.history,
            step=self.step, elapsed=self.elapsed(), reason=why, done=done, perm=self.perm, pos=self.pos))

    def elapsed(self) -> float:
        """Training seconds of this member, over every call that resumed it."""
        return self.elapsed0 + time.perf_counter() - self.t0

    # ------------------------------------------------------------------ one step
    def _rows(self) -> torch.Tensor | None:
        """The stations of this step's mini-batch (None: all)."""
        if self.batch is None:
            return None
        n = self.prob.survey.n_data
        if self.perm is None or self.pos + self.batch > n:
            self.perm = torch.randperm(n, generator=self.batch_gen).to(self.prob.device)
            self.pos = 0
        rows = self.perm[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return rows

    def _loss(self, m: torch.Tensor, rows) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, float]:
        """(loss, batch χ²/N, prior value or None, prior weight) of the cell densities ``m``."""
        prob, cfg = self.prob, self.cfg
        chi2_b = prob.chi2(m, rows)
        w_reg = self.stopper.reg_weight() if cfg.reg_mode == "target" else float(cfg.reg_weight)
        k = self.stopper.prior_steps(self.step)
        if prob.reg is None:
            reg = None
        elif w_reg > 0:
            reg = prob.regularizer(m, k)
        else:  # target mode's fit phase: the prior's value only (history, and λ at the switch)
            with torch.no_grad():
                reg = prob.regularizer(m.detach(), k)
        loss = chi2_b + w_reg * reg if reg is not None and w_reg > 0 else chi2_b
        return loss, chi2_b, reg, w_reg

    def _record(self, chi2: float, loss, reg, w_reg: float, m: torch.Tensor | None = None) -> str | None:
        """Append the scored state to the history; why to stop, or None (``m``: its cell densities)."""
        reg_val = 0.0 if reg is None else float(reg.detach())
        values = (self.step, chi2, float(loss.detach()), reg_val, w_reg, self.opt.param_groups[0]["lr"],
                  self.elapsed())
        for key, v in zip(HISTORY_KEYS, values, strict=True):
            self.history[key].append(v)
        white = None  # whether an in-band state has white residuals: what start_fallback reads
        if m is not None and self.prob.test_white and self.prob.moran is not None:
            white = lambda: self.prob.residuals_white(m.detach())  # noqa: E731
        why = self.stopper.update(self.step, chi2, self.field, reg_val, white)
        if why is None and not math.isfinite(chi2):
            raise FloatingPointError(f"χ²/N became {chi2} at step {self.step}: lower lr")
        return why

    def _begin_step(self) -> None:
        """Remember the bookkeeping a step changes before its update (undone on an interrupt)."""
        self._snapshot = dict(n_hist=len(self.history["step"]), stopper=self.stopper.state(), perm=self.perm,
                              pos=self.pos, batch_rng=self.batch_gen.get_state())
        self._phase = "score"

    def _undo_step(self, forced: bool) -> bool:
        """After an interrupt inside a step: undo its bookkeeping; False if the weights may have changed.

        ``forced``: the interrupt is a second Ctrl-C, which may land inside the optimiser's
        update; any other interrupt raised from the update (by code) is taken to have
        come before it changed the weights.
        """
        phase, snap = self._phase, self._snapshot
        self._phase = None
        if phase is None or snap is None:
            return True
        if phase == "commit" or (phase == "update" and forced):  # the update may have been applied
            return False
        for k in HISTORY_KEYS:
            del self.history[k][snap["n_hist"]:]
        self.stopper.load(snap["stopper"])
        self.perm, self.pos = snap["perm"], snap["pos"]
        self.batch_gen.set_state(snap["batch_rng"])
        return True

    def train_step(self) -> str | None:
        """Score the current state, take one optimiser step; why to stop, or None."""
        prob = self.prob
        self._begin_step()
        rows = self._rows()
        m = prob.cell_density(self.field, shard=True)
        if prob.precond is not None and m.requires_grad:
            m.register_hook(lambda g, p=prob.precond: g * p)
        loss, chi2_b, reg, w_reg = self._loss(m, rows)
        # the misfit of the current state (before its update) drives stopping
        if self.batch is None:
            chi2_full = float(chi2_b.detach())
        elif self.step % self.eval_every == 0:
            with torch.no_grad():
                chi2_full = float(prob.chi2(m.detach()))
        else:
            chi2_full = None
        if chi2_full is not None:
            why = self._record(chi2_full, loss, reg, w_reg, m)
            if why is not None:
                self._phase = None
                return why
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        prob.reduce_gradients(self.field)  # cells split over ranks: each rank's part of the gradients
        self._phase = "update"
        self.opt.step()
        self._phase = "commit"
        self.sched.step()
        if self.stopper.phase == "shape":  # λ follows this step's misfit (the batch's, with mini-batches)
            self.stopper.adapt(chi2_full if self.batch is None else float(chi2_b.detach()))
        self.step += 1
        self._phase = None
        if chi2_full is not None:
            self.last_chi2 = chi2_full
        return None

    # ------------------------------------------------------------------ the loop
    def run(self, stop_after: int | None, desc: str, cancel: Event | None = None,
            white: Event | None = None, position: int = 0) -> dict:
        """Train until stopped, ``max_steps`` or ``stop_after`` steps of this call; the kept state.

        A ``KeyboardInterrupt`` (Ctrl-C) does not escape: the checkpoint is written (a
        Ctrl-C waits for the end of the step; an interrupt raised inside a step before
        the optimiser's update is undone), and the kept state so far is returned with
        ``interrupted=True``. ``cancel`` (set by another thread or process) stops the run between
        steps as ``stop_after`` does (checkpoint written, ``cancelled=True``); ``white`` is
        set once a state at the target misfit had white residuals. ``position``: the
        progress bar's line.
        """
        from tqdm.auto import tqdm

        cfg = self.cfg
        steps_this_call = 0
        bar = tqdm(total=self.stopper.step_limit(), initial=self.step, desc=desc, position=position,
                   disable=not cfg.progress or self.done or not is_main(), leave=False, unit="step")
        self.t0 = time.perf_counter()
        cancelled = signalled = False
        with DeferredInterrupt() as sigint:
            self._sigint = sigint
            try:
                while not self.done and self.step < self.stopper.step_limit():
                    cancelled = cancel is not None and cancel.is_set()
                    if cancelled or (stop_after is not None and steps_this_call >= stop_after):
                        self.save(False, self.reason)
                        break
                    why = self.train_step()
                    if white is not None and self.stopper.seen_white and not signalled:
                        white.set()  # once: a process-shared event takes a lock
                        signalled = True
                    if why is not None:
                        self.reason, self.done = why, True
                        break
                    steps_this_call += 1
                    if steps_this_call == 1:
                        _warn_if_slow(time.perf_counter() - self.t0, self.stopper.step_limit() - self.step, desc)
                    if bar.total != self.stopper.step_limit():  # the prior's steps are counted from its start
                        bar.total = self.stopper.step_limit()
                    bar.update(1)
                    if self.last_chi2 is not None:
                        bar.set_postfix(chi2=f"{self.last_chi2:.3g}", refresh=False)
                    if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                        self.save(False, self.reason)
                    if any_rank(sigint.requested):  # every rank stops at the same step
                        sigint.requested = True
                        raise KeyboardInterrupt
                else:
                    self.done = True
            except KeyboardInterrupt:
                self._interrupt()
            finally:
                bar.close()
        if self.interrupted:
            return self._kept()
        self._finish(None if cancelled else stop_after)
        out = self._kept()
        out["interrupted"] = any_rank(sigint.requested)  # Ctrl-C in the last step: this member is done, stop the others
        out["cancelled"] = cancelled
        return out

    def _interrupt(self) -> None:
        """Ctrl-C: undo a half-done step, write the checkpoint, mark the run interrupted."""
        self.interrupted = True
        if not self._undo_step(forced=self._sigint is not None and self._sigint.requested):
            logger.warning("interrupted inside the optimiser update of step %d: the checkpoint is not "
                           "rewritten (it would not resume exactly)", self.step)
            return
        self.save(False, self.reason)
        logger.warning("interrupted at step %d%s", self.step,
                       f"; checkpoint written to {self.ckpt}" if self.ckpt is not None else "")

    def _finish(self, stop_after: int | None) -> None:
        cfg = self.cfg
        if self.step >= self.stopper.step_limit():
            self.done = True
            if cfg.reg_mode == "target":
                limit = self.stopper.step_limit()
                end = ("max_steps reached" if limit == cfg.max_steps else
                       f"max_steps steps of the prior reached (step {limit}: the misfit alone took "
                       f"{self.stopper.shape_from} steps to come back to the band)")
                self.reason = (f"{end}; kept the in-band state with the smallest prior"
                               if math.isfinite(self.stopper.best_reg) else
                               f"{end}; misfit never held in the band with the prior, kept the closest state")
        if self.done and cfg.early_stopping is False:  # keep and score the final state
            with torch.no_grad():
                chi2 = float(self.prob.chi2(self.prob.cell_density(self.field)))
            self.stopper.keep_final(self.step, chi2, self.field)
        if self.done or stop_after is not None:
            self.save(self.done, self.reason)

    def _kept(self) -> dict:
        kept = copy.deepcopy(self.field)
        if self.stopper.best_state is not None:
            kept.load_state_dict(self.stopper.best_state)
        kept.eval()
        with torch.no_grad():
            m_kept = self.prob.cell_density(kept)
            chi2_kept = float(self.prob.chi2(m_kept))
        return dict(field=kept, model=m_kept.detach().cpu().double().numpy(), chi2=chi2_kept,
                    recorded_chi2=self.stopper.best_chi2, best_step=self.stopper.best_step,
                    reason="interrupted" if self.interrupted else self.reason if self.done else
                    f"paused at step {self.step} of {self.stopper.step_limit()} (stop_after, or another run's "
                    "cancel): resume from the checkpoint to go on", history=self.history,
                    seen_white=self.stopper.seen_white,
                    steps=self.step, train_time=self.elapsed(), done=self.done and not self.interrupted,
                    interrupted=self.interrupted)


def checkpoint_on_all_ranks(ckpt: Path | None) -> bool:
    """Whether ``ckpt`` exists; under several ranks, whether every rank sees it (a collective).

    Raises
    ------
    ValueError
        Some ranks see the file and others do not (the checkpoint folder must be on a
        file system every rank reads).
    """
    here = ckpt is not None and ckpt.exists()
    if world_size() == 1:
        return here
    seen = all_gather_objects(here)
    if any(seen) and not all(seen):
        raise ValueError(f"checkpoint {ckpt} is seen by rank(s) {[i for i, v in enumerate(seen) if v]} only: put "
                         "the checkpoint folder on a file system shared by every rank")
    return here


def train_member(prob: Problem, member: int, ckpt: Path | None, resume: bool, stop_after: int | None,
                 desc: str, key: str = "", cancel: Event | None = None,
                 white: Event | None = None, position: int = 0) -> dict:
    """Train member ``member`` (resuming its checkpoint when asked); its kept field, misfit and history.

    ``key`` is the data hash checked against the checkpoint. The returned dict has
    ``interrupted=True`` when a Ctrl-C stopped the training and ``cancelled=True`` when
    ``cancel`` did (see :meth:`MemberTrainer.run`, also for ``white`` and ``position``).
    """
    trainer = MemberTrainer(prob, member, ckpt, key)
    if resume:
        trainer.resume()
    return trainer.run(stop_after, desc, cancel, white, position)


def solve_member(prob: Problem, member: int, ckpt: Path | None, resume: bool, desc: str, key: str = "") -> dict:
    """``solver="linear"``: one member's closed-form head (kept in ``ckpt`` once solved)."""
    cfg = prob.cfg
    fld = prob.make_field(int(cfg.seed) + member)
    if resume and checkpoint_on_all_ranks(ckpt):
        ck = load_checkpoint(ckpt, cfg, key, prob.device, fld)
        fld.eval()
        out = dict(ck["out"])
        for k in ("model", "std"):
            if torch.is_tensor(out.get(k)):
                out[k] = out[k].cpu().numpy()
        return {**out, "field": fld}
    out = solve_head(prob, cfg, fld, desc)
    if ckpt is not None:
        save_checkpoint(ckpt, dict(config_key=resume_key(cfg), data_key=key, member=member, field=fld.state_dict(),
                                   out=plain_values({k: v for k, v in out.items() if k != "field"}), done=True))
    return out
