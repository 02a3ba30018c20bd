"""The cooled minimum-support threshold: its schedule, the states it lets the rule keep, its effect."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gempy_gravinv import INRConfig, invert_inr
from gempy_gravinv.cases import synthetic
from gempy_gravinv.cases.random_cases import random_case
from gempy_gravinv.inversion._depth import footprint
from gempy_gravinv.inversion._problem import Problem
from gempy_gravinv.inversion._regularizers import SUPPORT_COOLING, SUPPORT_PERCENTILE, volume_percentile
from gempy_gravinv.inversion._stopping import Stopper

FAST = dict(progress=False, max_steps=150, warm_start_steps=100, dtype="float64")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def block():
    return synthetic.single_block(noise_seed=0)


#: Bounds wide enough that 1/12 of them (200 kg/m³) lies above the start's amplitude
WIDE = (-2400.0, 2400.0)


def test_cooled_eps_starts_at_the_start_amplitude_and_falls_geometrically(block):
    cfg = INRConfig.auto(bounds=WIDE, **FAST)
    prob = Problem(block.survey, block.mesh, cfg)
    reg = prob.reg
    m0 = prob.least_squares_start().numpy()
    w = reg.w.numpy()
    inside = footprint(block.survey.locations, block.mesh.cell_centers)  # by volume, under the stations
    a = volume_percentile(np.abs(w * m0)[inside], block.mesh.volumes[inside], SUPPORT_PERCENTILE)
    eps_fixed = 200.0
    assert a < eps_fixed  # the start is faint against the bounds
    assert reg.cooling_steps == round(0.5 * cfg.max_steps) == 75
    assert reg.eps == pytest.approx(eps_fixed)
    assert reg.eps_at(0) == pytest.approx(a, rel=1e-9)
    assert reg.eps_at(None) == pytest.approx(a / SUPPORT_COOLING, rel=1e-9)
    assert reg.eps_at(10**6) == reg.eps_at(None) == reg.eps_at(75)
    assert reg.eps_at(37.5) == pytest.approx(a / SUPPORT_COOLING**0.5, rel=1e-9)  # geometric
    eps = np.array([reg.eps_at(k) for k in range(80)])
    assert np.all(np.diff(eps) <= 0)
    # the prior's value is the minimum-support formula with the ε of that step
    rng = np.random.default_rng(1)
    m = rng.normal(0, 50, block.mesh.n_cells)
    for k in (0, 30, 75, None):
        e = reg.eps_at(k)
        ref = np.mean((w * m) ** 2 / ((w * m) ** 2 + e * e))
        assert float(prob.regularizer(torch.as_tensor(m), k)) == pytest.approx(ref, rel=1e-12)
    assert prob.prior_selection["support_eps"] == reg.schedule()


@pytest.mark.parametrize("changes", [dict(support_cooling=0.0), dict(warm_start="none"),
                                     dict(bounds=(-300.0, 300.0))])
def test_eps_is_fixed_without_cooling_without_a_start_or_below_the_start(block, changes, caplog):
    """Fixed at 1/12 of the bounds: no cooling asked, no start, or ε under a third of the start's amplitude."""
    cfg = INRConfig.auto(**{"bounds": WIDE, **FAST, "start_fallback": False, **changes})
    with caplog.at_level("INFO", logger="gempy_gravinv.inversion._regularizers"):
        prob = Problem(block.survey, block.mesh, cfg)
    assert ("no least-squares start to set ε from" in caplog.text) == (cfg.warm_start == "none")
    reg = prob.reg
    assert reg.cooling_steps == 0
    assert reg.eps_at(0) == reg.eps_at(None) == pytest.approx(max(abs(b) for b in cfg.bounds) / 12)
    assert "support_eps" not in (prob.prior_selection or {})


def test_support_cooling_must_be_a_fraction(block):
    with pytest.raises(ValueError, match="support_cooling"):
        invert_inr(block.survey, block.mesh, INRConfig.auto(bounds=block.bounds, **FAST, support_cooling=1.0))


def test_no_state_is_kept_by_its_prior_before_eps_is_cooled():
    """R falls as ε cools: a rule that compared R across steps would keep the first states."""
    cfg = INRConfig.auto(bounds=(-100.0, 100.0), max_steps=100)
    fld = torch.nn.Linear(1, 1)
    stop = Stopper(cfg, cooling_steps=20)
    stop.update(0, 1.0, fld, reg=0.5)  # in band at once: the prior acts from step 1
    assert stop.phase == "shape" and stop.shape_from == 1
    assert [stop.prior_steps(k) for k in (0, 1, 2, 21)] == [0, 0, 1, 20]
    for k in range(1, 40):  # R grows as ε cools; every state in band
        stop.update(k, 1.0 + 0.001 * (k % 3), fld, reg=0.01 * k)
    assert stop.best_step == 21  # the first state at the final ε, not step 1 with the smallest R
    plain = Stopper(cfg)
    plain.update(0, 1.0, fld, reg=0.5)
    for k in range(1, 40):
        plain.update(k, 1.0, fld, reg=0.01 * k)
    assert plain.best_step == 1
    # before the cooling ends, the state closest to the target stands in
    early = Stopper(cfg, cooling_steps=20)
    early.update(0, 1.04, fld, reg=0.5)
    early.update(1, 1.03, fld, reg=0.01)
    early.update(2, 1.01, fld, reg=0.02)
    assert early.best_step == 2
    # with a fixed prior weight the prior acts from the first step
    fixed = Stopper(INRConfig.auto(bounds=(-100.0, 100.0), reg_mode="fixed"), cooling_steps=20)
    assert [fixed.prior_steps(k) for k in (0, 5, 30)] == [0, 5, 30]
    # the schedule's origin is checkpointed with the rule
    other = Stopper(cfg, cooling_steps=20)
    other.load(stop.state())
    assert other.shape_from == 1 and other.best_step == 21


def test_the_kept_state_comes_after_the_cooling(block):
    cfg = INRConfig.auto(bounds=WIDE, **{**FAST, "max_steps": 600}, start_fallback=False)
    res = invert_inr(block.survey, block.mesh, cfg)
    w = np.asarray(res.history["reg_weight"])
    first = int(np.argmax(w > 0))  # the first step with the prior
    sched = res.prior_selection["support_eps"]
    assert sched["cooling_steps"] == 300 and sched["eps_end"] < sched["eps_start"]
    assert "smallest prior" in res.stop_reason and "minimum-support ε cooled" in res.prior_selection["rule"]
    assert res.best_step >= first + sched["cooling_steps"]


def test_a_cooled_threshold_puts_a_faint_deep_body_at_its_depth():
    """A box about 2 km down under stations 3 cells up: the start is far fainter than 1/12 of the bounds.

    With ε fixed above the start's amplitude the minimum-support term pulls the mass up
    (its weight grows with depth); cooled from the start's own amplitude, the kept
    model's mass centroid sits at the body's depth and the model correlates better.
    """
    case = random_case(1008)
    z = case.mesh.cell_centers[:, 2]

    def centroid(m):  # depth of the centre of |contrast|, m (elevation)
        return float((np.abs(m) * z).sum() / np.abs(m).sum())

    cfg = dict(bounds=case.bounds, progress=False, prior_from_data=False)  # the compact branch (its image: p 0.39)
    fixed = invert_inr(case.survey, case.mesh, INRConfig.auto(**cfg, support_cooling=0.0), true_model=case.model)
    cooled = invert_inr(case.survey, case.mesh, INRConfig.auto(**cfg), true_model=case.model)
    sched = cooled.prior_selection["support_eps"]
    assert sched["eps_start"] < 0.5 * max(abs(b) for b in case.bounds) / 12  # a faint start
    true_z = centroid(case.model)
    assert abs(centroid(cooled.model) - true_z) < 0.5 * abs(centroid(fixed.model) - true_z)
    assert cooled.metrics["pearson_r"] > fixed.metrics["pearson_r"] + 0.05


def test_a_run_stopped_while_eps_cools_resumes_exactly(block, tmp_path):
    cfg = INRConfig.auto(bounds=WIDE, **{**FAST, "max_steps": 200, "warm_start_steps": 300}, start_fallback=False)
    full = invert_inr(block.survey, block.mesh, cfg)
    assert full.prior_selection["support_eps"]["cooling_steps"] == 100
    assert 0 < int(np.argmax(np.asarray(full.history["reg_weight"]) > 0)) < 50  # the cut lands in the cooling
    ck = tmp_path / "ck.pt"
    part = invert_inr(block.survey, block.mesh, cfg, checkpoint=ck, stop_after=50)  # inside the cooling
    assert not part.completed
    rest = invert_inr(block.survey, block.mesh, cfg, checkpoint=ck, resume=True)
    assert np.array_equal(rest.model, full.model)
    assert rest.history["reg"] == full.history["reg"] and rest.best_step == full.best_step


def test_the_prior_acts_for_max_steps_whatever_the_fit_to_the_start_took():
    """From a start, phase "fit" is a warm-up: the run ends ``max_steps - 1`` steps after the prior began."""
    cfg = INRConfig.auto(bounds=(-100.0, 100.0), max_steps=100)
    fld = torch.nn.Linear(1, 1)
    stop = Stopper(cfg, from_start=True)
    for k in range(30):  # the network has not yet reproduced its start's misfit
        stop.update(k, 3.0, fld, reg=0.5)
        assert stop.phase == "fit" and stop.step_limit() == 100
    stop.update(30, 1.0, fld, reg=0.5)
    assert stop.phase == "shape" and stop.shape_from == 31 and stop.step_limit() == 130
    again = Stopper(cfg, from_start=True)
    again.load(stop.state())  # the limit is checkpointed with the rule
    assert again.step_limit() == 130
    at_once = Stopper(cfg, from_start=True)
    at_once.update(0, 1.0, fld, reg=0.5)
    assert at_once.step_limit() == 100  # a start fitted at once: max_steps, as without the rule
    scratch = Stopper(cfg)  # no start: phase "fit" is the inversion's own work, within max_steps
    for k in range(31):
        scratch.update(k, 3.0 if k < 30 else 1.0, fld, reg=0.5)
    assert scratch.phase == "shape" and scratch.step_limit() == 100


def test_a_slow_fit_to_the_start_does_not_cut_the_prior_short(block, tmp_path):
    """A network fitted to its start for a few steps only needs steps to come back to the target misfit.

    The prior then still acts for ``max_steps - 1`` steps, and a run stopped after
    ``max_steps`` resumes to the uninterrupted run's model.
    """
    cfg = INRConfig.auto(bounds=WIDE, **{**FAST, "max_steps": 120, "warm_start_steps": 3}, start_fallback=False)
    full = invert_inr(block.survey, block.mesh, cfg)
    first = int(np.argmax(np.asarray(full.history["reg_weight"]) > 0))  # the first step with the prior
    assert first > 5  # the warm-up took steps
    assert full.timings["steps"] == first + cfg.max_steps - 1 == len(full.history["step"])
    assert full.best_step >= first
    assert f"the misfit alone took {first} steps" in full.stop_reason
    ck = tmp_path / "ck.pt"
    part = invert_inr(block.survey, block.mesh, cfg, checkpoint=ck, stop_after=cfg.max_steps)
    assert not part.completed
    rest = invert_inr(block.survey, block.mesh, cfg, checkpoint=ck, resume=True)
    assert np.array_equal(rest.model, full.model) and rest.timings["steps"] == full.timings["steps"]
