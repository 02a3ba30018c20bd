"""The second run of ``auto()`` from the network's own start, kept when its residuals are whiter."""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import threading

import numpy as np
import pytest
import torch

from gempy_gravinv import INRConfig, invert_inr
from gempy_gravinv.cases import synthetic
from gempy_gravinv.inversion import _inr, _problem, _side
from gempy_gravinv.inversion._problem import Problem
from gempy_gravinv.inversion._trainer import MemberTrainer

FAST = dict(progress=False, max_steps=150, warm_start_steps=100, dtype="float64")


def _out(model) -> dict:
    return dict(model=np.asarray(model, dtype=np.float64), chi2=1.0, done=True)


@pytest.fixture(scope="module")
def dipping_problem():
    case = synthetic.dipping_block(noise_seed=0)
    return case, Problem(case.survey, case.mesh, INRConfig.auto(bounds=case.bounds, regional="none", **FAST))


def test_the_run_with_whiter_residuals_is_kept(dipping_problem):
    """The true model leaves white noise; half of it leaves the body's anomaly, correlated."""
    case, prob = dipping_problem
    true, half = [_out(case.model)], [_out(0.5 * case.model)]
    kept, sel = _inr.choose_start(prob, half, true)
    assert kept is true and sel["start"] == "none"
    assert sel["runs"]["least_squares"]["moran_i"] > 0.5 > abs(sel["runs"]["none"]["moran_i"])
    assert sel["z_difference"] > 10 and "network's own start" in sel["rule"]
    kept, sel = _inr.choose_start(prob, true, half)  # the first run already whiter: kept
    assert kept is true and sel["start"] == "least_squares" and sel["z_difference"] < 0
    # two runs equally white (two noise-level variants of the true model): the first is kept
    rng = np.random.default_rng(0)
    other = [_out(case.model + rng.normal(0.0, 1.0, case.model.shape))]
    kept, sel = _inr.choose_start(prob, true, other)
    assert kept is true and abs(sel["z_difference"]) < _inr.FALLBACK_SE


def test_the_second_run_is_wanted_only_after_a_compact_start_with_correlated_residuals(dipping_problem):
    case, prob = dipping_problem
    prob = prob.variant(start_fallback=True)
    assert _inr._fallback_check(prob, [_out(0.5 * case.model)])["z"] > _inr.RESIDUAL_Z
    assert _inr._fallback_check(prob, [_out(case.model)]) is None
    assert _inr._fallback_check(prob, [{**_out(0.5 * case.model), "done": False}]) is None
    # a state at the target misfit with white residuals was reached: the start can explain the data
    assert _inr._fallback_check(prob, [{**_out(0.5 * case.model), "seen_white": True}]) is None
    assert _inr._fallback_check(prob.variant(start_fallback=False), [_out(0.5 * case.model)]) is None


def test_the_fallback_setting_is_checked_and_follows_the_start():
    assert INRConfig.auto().start_fallback is True  # on by default; it follows the start
    assert INRConfig.auto(warm_start="none").start_fallback is False
    assert INRConfig.auto(start_fallback=False).start_fallback is False
    assert INRConfig.auto(start_fallback=True).warm_start == "least_squares"
    with pytest.raises(ValueError, match="start_fallback=True .* needs warm_start='least_squares'"):
        INRConfig.compact(start_fallback=True).validate()
    with pytest.raises(TypeError, match="start_fallback must be True or False"):
        INRConfig.auto(start_fallback="yes").validate()


def test_the_fallback_recovers_the_dipping_block_from_its_own_start():
    """From the β = 2 start the block's mass stays smeared (residuals correlated); the second run
    from the network's own start explains the anomaly's shape and is kept, and the report says so."""
    case = synthetic.dipping_block(noise_seed=0)
    res = invert_inr(case.survey, case.mesh, None, true_model=case.model, bounds=case.bounds, progress=False)
    assert res.config.start_fallback  # the default's
    sel = res.start_selection
    assert sel is not None and sel["start"] == "none"
    assert sel["runs"]["least_squares"]["z"] > _inr.RESIDUAL_Z
    assert sel["runs"]["none"]["reached_white"] and not sel["runs"]["least_squares"]["reached_white"]
    assert sel["runs"]["none"]["moran_i"] == pytest.approx(res.residual_check["moran_i"])
    assert abs(res.residual_check["z"]) < _inr.RESIDUAL_Z
    assert res.metrics["pearson_r"] > 0.85 and res.metrics["rms_error_kgm3"] < 45.0
    assert res.timings["steps"] > res.config.max_steps  # both runs' steps are counted
    assert res.metrics_report()["start_selection"]["rule"] == sel["rule"]
    assert "start=none (chosen)" in res.summary()


@contextlib.contextmanager
def _torch_threads(n: int):
    """torch's thread count before a run: with two or more, the second run trains beside the first."""
    n0 = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(n0)


def _every_state(monkeypatch, white: bool) -> None:
    """Make every state at the target white (no second run) or none (every first run calls for it)."""
    z = 1e9 if white else -1e9
    monkeypatch.setattr(_inr, "RESIDUAL_Z", z)
    monkeypatch.setattr(_problem, "RESIDUAL_Z", z)


@pytest.mark.parametrize("cores", [1, 2])
def test_the_second_run_checkpoints_and_resumes_exactly(tmp_path, monkeypatch, cores):
    """Stopped inside the first run, then inside the second: the same model as without stops,
    whether the second run follows the first (one core) or trains beside it (two)."""
    _every_state(monkeypatch, white=False)
    case = synthetic.single_block(noise_seed=0)
    cfg = INRConfig.auto(bounds=case.bounds, regional="none", num_threads=1, start_fallback=True,
                         **{**FAST, "max_steps": 60})
    with _torch_threads(1):
        ref = invert_inr(case.survey, case.mesh, cfg)
    assert ref.start_selection is not None and ref.completed
    ck = tmp_path / "run.pt"
    with _torch_threads(cores):
        parts = [invert_inr(case.survey, case.mesh, cfg, checkpoint=ck, resume=True, stop_after=40)
                 for _ in range(3)]
    assert parts[0].completed is False and parts[-1].completed
    if cores == 1:  # one after the other: 40 steps of the first, 20 + 20 of the second, then 40
        assert [p.completed for p in parts] == [False, False, True]
    assert parts[0].timings["starts_side_by_side"] is (cores == 2)
    assert (tmp_path / "run.fallback.pt").exists()
    assert parts[-1].start_selection == ref.start_selection
    np.testing.assert_array_equal(parts[-1].model, ref.model)


@pytest.mark.parametrize("processes", [False, True], ids=["thread", "process"])
@pytest.mark.parametrize("white", [False, True])
def test_the_second_run_beside_the_first_changes_nothing_but_the_time(monkeypatch, white, processes):
    """One torch thread each on two cores: the same runs, model and choice as one after the other,
    with the second run in a thread or in a forked process.

    ``white``: every state at the target is white, so the first run cancels the second
    (discarded); otherwise the second runs to the end and is chosen between."""
    _every_state(monkeypatch, white)
    monkeypatch.setattr(_side, "fork_is_safe", lambda: processes)
    case = synthetic.single_block(noise_seed=0)
    cfg = INRConfig.auto(bounds=case.bounds, regional="none", num_threads=1, start_fallback=True,
                         **{**FAST, "max_steps": 60})
    with _torch_threads(1):
        seq = invert_inr(case.survey, case.mesh, cfg, true_model=case.model)
    with _torch_threads(2):
        side = invert_inr(case.survey, case.mesh, cfg, true_model=case.model)
        assert torch.get_num_threads() == 2  # the run's one thread is undone afterwards
    assert not seq.timings["starts_side_by_side"] and side.timings["starts_side_by_side"]
    assert (seq.start_selection is None) is white
    assert side.start_selection == seq.start_selection
    np.testing.assert_array_equal(side.model, seq.model)
    assert side.timings["steps"] == seq.timings["steps"] == (1 if white else 2) * cfg.max_steps
    assert side.metrics["pearson_r"] == seq.metrics["pearson_r"]
    assert not any(t.name == "gempy-gravinv-fallback" for t in threading.enumerate())  # joined
    assert not multiprocessing.active_children()


def test_a_run_stops_when_cancelled_and_says_when_it_reached_white_residuals(tmp_path, monkeypatch):
    """The two signals between side-by-side runs: ``cancel`` stops one between steps (checkpoint
    written, not done); ``white`` is set once a state at the target misfit was white."""
    monkeypatch.setattr(_problem, "RESIDUAL_Z", 1e9)  # every state at the target is white
    case = synthetic.single_block(noise_seed=0)
    prob = Problem(case.survey, case.mesh, INRConfig.auto(bounds=case.bounds, regional="none",
                                                          start_fallback=True, **FAST))
    white = threading.Event()
    out = MemberTrainer(prob, 0, None).run(None, "white", white=white)
    assert out["done"] and out["seen_white"] and white.is_set()
    cancel = threading.Event()
    cancel.set()
    ck = tmp_path / "cancelled.pt"
    out = MemberTrainer(prob, 0, ck).run(None, "cancelled", cancel=cancel)
    assert out["cancelled"] and not out["done"] and out["steps"] == 0 and ck.exists()


@pytest.mark.parametrize("processes", [False, True], ids=["thread", "process"])
def test_an_error_in_the_second_run_reaches_the_caller_only_where_the_run_is_needed(caplog, processes):
    worker = _inr._side_run(None, None, False, None, "", processes)  # no problem to train: fails
    worker.start()
    with pytest.raises(AttributeError):
        worker.result()
    # not needed (the first run did not call for it): one after the other it would not have run
    worker = _inr._side_run(None, None, False, None, "", processes)
    worker.start()
    with caplog.at_level("WARNING", logger="gempy_gravinv.inversion._side"):
        assert worker.result(discard=True) is None
    assert "not needed, failed" in caplog.text and not worker.is_alive()


def test_a_second_run_whose_process_dies_is_an_error_that_says_so(caplog):
    worker = _side.side_run(lambda cancel: os._exit(3), processes=True)
    worker.start()
    with pytest.raises(RuntimeError, match="ended without a result .*exited with code 3"):
        worker.result()
    assert not worker.is_alive()
    worker = _side.side_run(lambda cancel: os._exit(3), processes=True)
    worker.start()
    with caplog.at_level("WARNING", logger="gempy_gravinv.inversion._side"):
        assert worker.result(discard=True) is None
    assert "exited with code 3" in caplog.text


def _bar_in_child(cancel):
    """A progress bar drawn in the forked child: it takes tqdm's locks."""
    from tqdm.auto import tqdm

    for _ in tqdm(range(3), file=io.StringIO(), mininterval=0):
        pass
    return [], False


def test_a_tqdm_lock_held_by_another_thread_at_the_fork_does_not_stop_the_child():
    """tqdm's monitor thread takes its lock now and then; held at the fork, the child has a new one."""
    from tqdm.std import TqdmDefaultWriteLock, tqdm

    tqdm.get_lock()  # the lock exists before the fork, as once any bar was drawn
    held, release = threading.Event(), threading.Event()

    def hold():
        with TqdmDefaultWriteLock.th_lock:
            held.set()
            release.wait()

    other = threading.Thread(target=hold)
    other.start()
    held.wait()
    try:
        worker = _side.side_run(_bar_in_child, processes=True)
        worker.start()
        worker._proc.join(60)  # a child waiting on the copied lock would never end
        assert not worker.is_alive()
        assert worker.result() == ([], False)
    finally:
        release.set()
        other.join()


def test_the_second_run_forks_only_where_no_other_thread_runs(monkeypatch):
    """Another thread might hold a lock at the fork, which the child would then wait for forever."""
    alone = [threading.current_thread()]
    monkeypatch.setattr(_side.threading, "enumerate", lambda: alone)  # a process with one thread
    assert _side.fork_is_safe()
    assert isinstance(_side.side_run(lambda cancel: ([], False)), _side.SideProcess)
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    alone.append(other)
    try:
        assert not _side.fork_is_safe()
        assert isinstance(_side.side_run(lambda cancel: ([], False)), _side.SideThread)
    finally:
        release.set()
        other.join()
    monkeypatch.setattr(_side.sys, "platform", "darwin")  # fork is not the safe default there
    assert not _side.fork_is_safe()


def test_correlated_residuals_name_the_remedy(dipping_problem):
    case, prob = dipping_problem
    for model, correlated in ((0.5 * case.model, True), (case.model, False)):
        with torch.no_grad():
            m = torch.as_tensor(model, dtype=prob.dtype)
            pred = prob.predicted(m)[0].numpy()
        advice = dict(option="knob", value=2, effect="tries this")
        check = _inr.residual_check(pred, prob.survey, advice=advice)
        assert check["rule"].startswith("residuals correlated" if correlated else "residuals spatially white")
        assert check["rule"].endswith("; knob=2 tries this") == correlated
        assert (check.get("advice") == advice) == correlated  # an interface can name the setting its own way
        if correlated:
            assert check["rule"] == check["finding"] + "; knob=2 tries this"
        assert prob.residuals_white(m) is not correlated  # the trainer's test of a state says the same


def test_an_ensemble_falls_back_as_a_whole(tmp_path, monkeypatch):
    """Every member is trained again; the choice reads the members' mean model; files per member."""
    monkeypatch.setattr(_inr, "RESIDUAL_Z", -1e9)
    monkeypatch.setattr(_problem, "RESIDUAL_Z", -1e9)
    case = synthetic.single_block(noise_seed=0)
    cfg = INRConfig.auto(bounds=case.bounds, regional="none", start_fallback=True, n_members=2,
                         **{**FAST, "max_steps": 30, "warm_start_steps": 20})
    res = invert_inr(case.survey, case.mesh, cfg, checkpoint=tmp_path / "ens.pt")
    assert res.members.shape[0] == 2 and res.start_selection is not None
    for k in (0, 1):
        assert (tmp_path / f"ens.member{k}.pt").exists() and (tmp_path / f"ens.member{k}.fallback.pt").exists()
    assert res.timings["steps"] == 4 * 30  # two members, two runs, none stopped early


def test_the_run_records_whether_a_state_at_the_target_had_white_residuals():
    """In-band states of the shape phase are tested until one is white; the kept state is still
    the in-band one with the smallest prior."""
    from gempy_gravinv.inversion._stopping import Stopper

    stop = Stopper(INRConfig.auto(bounds=(-100.0, 100.0)))
    stop.phase = "shape"
    fld = torch.nn.Linear(1, 1)
    calls = []
    for step, chi2, reg, white in ((1, 1.0, 5.0, False), (2, 1.3, 1.0, True), (3, 1.0, 4.0, False),
                                   (4, 1.0, 6.0, True), (5, 1.0, 3.0, False)):
        stop.update(step, chi2, fld, reg, lambda s=step, w=white: calls.append(s) or w)
        assert stop.seen_white is (step >= 4)
    assert calls == [1, 3, 4]  # out of band (2) and after the first white one (5): not tested
    assert stop.best_step == 5 and stop.best_reg == 3.0
    assert Stopper(INRConfig.auto()).state()["seen_white"] is False  # checkpointed with the rule


def test_a_second_run_that_reached_white_residuals_is_kept_over_one_that_did_not(dipping_problem):
    """Reaching white residuals at the target misfit outranks a small difference in the final I."""
    case, prob = dipping_problem
    rng = np.random.default_rng(1)
    a = [_out(case.model + rng.normal(0.0, 1.0, case.model.shape))]
    b = [{**_out(case.model + rng.normal(0.0, 1.0, case.model.shape)), "seen_white": True}]
    kept, sel = _inr.choose_start(prob, a, b)
    assert abs(sel["z_difference"]) < _inr.FALLBACK_SE  # the I alone would keep the first
    assert kept is b and sel["start"] == "none" and "only its run reached white residuals" in sel["rule"]
    assert sel["runs"]["none"]["reached_white"] and not sel["runs"]["least_squares"]["reached_white"]
    # both reached them: the final I decides, and the first is kept on a tie
    kept, sel = _inr.choose_start(prob, [{**a[0], "seen_white": True}], b)
    assert kept[0]["model"] is a[0]["model"] and sel["start"] == "least_squares"


@pytest.mark.parametrize("processes", [False, True], ids=["thread", "process"])
def test_a_ctrl_c_while_waiting_for_the_second_run_stops_it_at_the_end_of_a_step(tmp_path, processes):
    """The caller's Ctrl-C reaches the main thread, which waits: the second run is cancelled,
    writes its checkpoint and the run counts as interrupted (as one in the main thread)."""
    case = synthetic.single_block(noise_seed=0)
    prob = Problem(case.survey, case.mesh, INRConfig.auto(bounds=case.bounds, regional="none",
                                                          **{**FAST, "max_steps": 20000}))
    worker = _inr._side_run(prob.variant(warm_start="none", start_fallback=False), tmp_path / "run.pt", False,
                            None, "", processes)
    owner, name = (worker._rx, "poll") if processes else (worker, "join")  # what the caller waits in
    wait, calls = getattr(owner, name), []

    def ctrl_c_once(timeout=None):
        if not calls:
            calls.append(timeout)
            raise KeyboardInterrupt
        return wait(timeout)

    setattr(owner, name, ctrl_c_once)
    worker.start()
    outs, interrupted = worker.result()
    assert interrupted and outs[0]["cancelled"] and not outs[0]["done"] and outs[0]["steps"] < 20000
    assert (tmp_path / "run.fallback.pt").exists() and not worker.is_alive()
