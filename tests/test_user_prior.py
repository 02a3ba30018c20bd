"""The prior set by the user (``INRConfig.prior``; ``auto(prior=...)``; CLI ``invert --prior``).

Where the data cannot say whether the sources are compact bodies or a distributed field,
a user who knows keeps every other derived scale of the default and sets the prior.
"""

from __future__ import annotations

import numpy as np
import pytest

from gempy_gravinv import INRConfig, invert_inr
from gempy_gravinv.cases import synthetic
from gempy_gravinv.cases.random_cases import random_field_case
from gempy_gravinv.inversion._problem import Problem
from gempy_gravinv.metrics import pearson_r

FAST = dict(progress=False, max_steps=300, warm_start_steps=100, dtype="float64")


def test_a_set_smooth_prior_is_the_data_s_smooth_model_without_the_test():
    """On a Matérn field the data read as smooth, ``prior="smooth"`` gives the same closed-form model.

    The same lattice (ℓ, ν, period) by the same evidence, so the same densities; the report
    says the user set it and carries no test statistic.
    """
    case = random_field_case(9000)
    chosen = invert_inr(case.survey, case.mesh, INRConfig.auto(bounds=case.bounds, **FAST))
    assert chosen.prior_selection["prior"] == "smooth" and "p_value" in chosen.prior_selection
    cfg = INRConfig.auto(prior="smooth", bounds=case.bounds, **FAST)
    assert cfg.prior_from_data is False
    res = invert_inr(case.survey, case.mesh, cfg)
    np.testing.assert_allclose(res.model, chosen.model, rtol=1e-9, atol=1e-9)
    sel = res.prior_selection
    assert sel["prior"] == "smooth" and sel["set_by"] == "user" and "p_value" not in sel
    assert sel["rule"].startswith("set by the user") and sel["lattice"] == chosen.prior_selection["lattice"]
    assert "prior=smooth (set)" in res.summary()
    assert res.metrics_report()["prior_selection"]["set_by"] == "user"


def test_a_set_compact_prior_recovers_a_body_better_than_the_smooth_one():
    """The dipping block, which the data read as compact: ``prior="compact"`` is the data's configuration.

    The problem keeps the same compact configuration as the data's choice (so training is
    the same run); the Gaussian field's model of the block correlates much less with it:
    the smooth prior spreads the block's mass over its correlation length.
    """
    import dataclasses

    case = synthetic.dipping_block(noise_seed=0)
    kw = dict(bounds=case.bounds, progress=False, dtype="float64")
    chosen = Problem(case.survey, case.mesh, INRConfig.auto(**kw))
    forced = Problem(case.survey, case.mesh, INRConfig.auto(prior="compact", **kw))
    assert chosen.prior_selection["prior"] == "compact" and "p_value" in chosen.prior_selection
    assert dataclasses.replace(forced.cfg, prior=None, prior_from_data=True) == chosen.cfg
    assert forced.prior_selection["set_by"] == "user" and "p_value" not in forced.prior_selection
    assert "minimum-support" in forced.prior_selection["rule"]
    compact = invert_inr(case.survey, case.mesh, INRConfig.auto(prior="compact", **kw))
    smooth = invert_inr(case.survey, case.mesh, INRConfig.auto(prior="smooth", **kw))
    assert smooth.prior_selection["prior"] == "smooth" and compact.prior_selection["prior"] == "compact"
    assert pearson_r(compact.model, case.model) > pearson_r(smooth.model, case.model) + 0.2


@pytest.mark.parametrize("over, words", [
    (dict(prior="bodies"), "prior"),
    (dict(prior="compact", prior_from_data=True), "prior_from_data"),
    (dict(prior="smooth", lattice_from_data=True), "lattice_from_data"),
])
def test_a_bad_set_prior_is_named(over, words):
    with pytest.raises(ValueError, match=words):
        INRConfig.compact(**over).validate()


def test_a_compact_prior_needs_the_minimum_support_regulariser():
    with pytest.raises(ValueError, match="min_support"):
        INRConfig(prior="compact").validate()


def test_a_smooth_prior_is_refused_with_a_given_density():
    """A GemPy or voxel density has its own model: a lattice cannot replace it."""
    from gempy_gravinv.density._voxel import VoxelDensity

    case = random_field_case(9000)
    with pytest.raises(ValueError, match="prior='smooth'"):
        invert_inr(case.survey, case.mesh, INRConfig.auto(prior="smooth", bounds=case.bounds, progress=False),
                   density=VoxelDensity(case.mesh))


def test_the_voxel_backend_takes_the_lattice_as_its_smooth_model():
    """backend='voxel' runs its compact model cell by cell; a smooth model is the closed-form lattice."""
    from gempy_gravinv.cases import suite

    case = suite.grf_wrap(noise_seed=0, quick=True)
    res = invert_inr(case.survey, case.mesh, INRConfig.auto(backend="voxel", bounds=case.bounds, **FAST),
                     true_model=case.model)
    assert res.prior_selection["prior"] == "smooth"
    assert res.config.solver == "linear" and res.config.encoding == "periodic" and res.config.backend == "inr"
    assert res.metrics["pearson_r"] > 0.8 and res.std is not None
