"""The Bayesian Python API refuses what it cannot honour, and reports fits and draws it can reproduce.

Wrong or non-finite priors, likelihoods and alignments are named when built; a survey
other than the one the forward predicts at is refused by ``make_model``; the tuning
arguments of the runners are checked; the fit report judges a hierarchical noise by the
stations' own σ; the posterior predictive draws are the same whether the chains ran in
this process or in forked ones.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyro")

from gempy_gravinv import Survey  # noqa: E402
from gempy_gravinv import bayes as B  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _linear(n=6, seed=1):
    rng = np.random.default_rng(seed)
    A = rng.uniform(0.2, 1.0, (n, 2)) * 1e-2
    d = A @ np.array([250.0, -350.0]) + 0.5 * rng.standard_normal(n)
    sv = Survey(np.column_stack([np.arange(n) * 10.0, np.zeros(n), np.ones(n)]), gz=d, std=0.5)
    return A, sv


def test_priors_likelihoods_and_alignments_are_checked_when_built():
    with pytest.raises(ValueError, match="prior std must be finite and > 0"):
        B.normal([0.0], [np.inf])
    with pytest.raises(ValueError, match="prior mean must be finite"):
        B.normal([np.nan], [1.0])
    with pytest.raises(ValueError, match="mean .2 values. and std .3 values. must have the same length"):
        B.normal([0.0, 0.0], [1.0, 1.0, 1.0])
    for bad in (np.inf, 0.0, [0.5, np.nan]):
        with pytest.raises(ValueError, match="GaussianLikelihood: sigma must be finite and > 0"):
            B.GaussianLikelihood(sigma=bad)
    with pytest.raises(ValueError, match="offset prior mean"):
        B.OffsetAlignment(loc=np.nan)
    with pytest.raises(ValueError, match="'mean' or a station index"):
        B.ReferenceAlignment("median")
    with pytest.raises(ValueError, match="matrix holds NaN"):
        B.LinearUnitForward([[1.0, np.nan]])
    with pytest.raises(ValueError, match="unit_names has 3 names for 2 units"):
        B.LinearUnitForward(np.ones((3, 2)), unit_names=["a", "b", "c"])
    A, sv = _linear()
    with pytest.raises(ValueError, match="fixed_densities must be finite"):
        B.make_model(B.LinearUnitForward(A), B.PriorSpec(fixed_densities=[np.nan, 0.0]), B.GaussianLikelihood(), sv)
    with pytest.raises(ValueError, match="reference station 9 is beyond the survey's 6 stations"):
        B.make_model(B.LinearUnitForward(A), B.PriorSpec(densities=B.normal([0, 0], [100, 100])),
                     B.GaussianLikelihood(), sv, alignment=B.ReferenceAlignment(9))


def test_a_survey_other_than_the_forward_s_is_refused():
    A, sv = _linear()
    pri = B.PriorSpec(densities=B.normal([200.0, -300.0], [150.0, 150.0]))
    few = Survey(sv.locations[:4], gz=sv.gz[:4], std=0.5)
    with pytest.raises(ValueError, match="the forward predicts 6 stations, the survey holds 4"):
        B.make_model(B.LinearUnitForward(A), pri, B.GaussianLikelihood(), few)
    pytest.importorskip("gempy")
    from gempy_gravinv.cases.bayes import synthetic_contact

    c = synthetic_contact(n_cells=(4, 4, 3), n_stations=(3, 3), offset=0.0)
    survey = Survey(c["stations"], gz=c["gz"])
    fw = B.MeshForward(c["geo_model"], c["mesh"], survey, store="dense")
    moved = Survey(np.asarray(c["stations"]) + [5000.0, 0.0, 0.0], gz=c["gz"])
    with pytest.raises(ValueError, match="the forward's stations differ from the survey's by up to 5000 m"):
        B.make_model(fw, B.PriorSpec(densities=B.normal([230, -370], [150, 150])), B.GaussianLikelihood(0.05), moved)


def test_runner_arguments_are_checked_by_name():
    A, sv = _linear()
    model = B.make_model(B.LinearUnitForward(A), B.PriorSpec(densities=B.normal([200.0, -300.0], [150.0, 150.0])),
                         B.GaussianLikelihood(0.5), sv)
    for kw, name in ((dict(max_tree_depth=0), "max_tree_depth"), (dict(target_accept=1.5), "target_accept"),
                     (dict(target_accept=0.0), "target_accept"), (dict(num_prior=-3), "num_prior")):
        with pytest.raises(ValueError, match=name):
            B.run_nuts(model, num_samples=2, warmup=2, chains=1, progress=False, **kw)
    for kw, name in ((dict(num_samples=0), "num_samples"), (dict(init="bogus"), "init")):
        with pytest.raises(ValueError, match=name):
            B.run_svi(model, steps=2, progress=False, **kw)


def test_the_posterior_predictive_does_not_depend_on_where_the_chains_ran():
    A, sv = _linear()

    def model():
        return B.make_model(B.LinearUnitForward(A), B.PriorSpec(densities=B.normal([200.0, -300.0], [150.0, 150.0])),
                            B.GaussianLikelihood(0.5), sv)

    kw = dict(num_samples=10, warmup=10, chains=2, seed=7, progress=False, num_prior=0)
    here, forked = (B.run_nuts(model(), processes=p, **kw) for p in (1, 2))
    np.testing.assert_array_equal(here.posterior["densities"].values, forked.posterior["densities"].values)
    np.testing.assert_array_equal(here.posterior_predictive["obs"].values, forked.posterior_predictive["obs"].values)


def test_the_fit_report_judges_a_hierarchical_noise_by_the_stations_sigma():
    import arviz as az

    rng = np.random.default_rng(0)
    n, draws = 12, 40
    obs = rng.normal(0.0, 1.0, n)  # a 1 mGal misfit against 0.05 mGal stated
    idata = az.from_dict(
        posterior={"noise_mu": np.full((1, draws), np.log(0.04)),  # τ carries the noise: exp(μ) alone looks fine
                   "sigma": np.abs(rng.normal(1.0, 0.3, (1, draws, n)))},
        posterior_predictive={"gz_pred": np.zeros((1, draws, n))},
        observed_data={"obs": obs})
    idata.posterior.attrs["stated_noise_mgal"] = 0.05
    rep = B.fit_report(idata, locations=np.c_[np.arange(n) * 10.0, np.zeros(n)])
    assert rep["posterior_sigma_mgal"] == pytest.approx(float(np.median(idata.posterior["sigma"].values)))
    assert not rep["fits_stated_noise"] and "does not fit the data at the stated noise" in rep["messages"][0]


def test_options_a_prior_would_ignore_are_refused():
    A, sv = _linear()
    fw = B.LinearUnitForward(A)
    cases = (
        (B.PriorSpec(densities=B.normal([0, 0], [100, 100]), unit_names=["a", "a"]), "names a label twice"),
        (B.PriorSpec(densities=B.normal([0, 0], [100, 100]), dip_index=[0]), "dip_index given without a dips prior"),
        (B.PriorSpec(fixed_densities=[100.0, -100.0], reference_unit=0), "reference_unit applies to a densities"),
    )
    for pri, match in cases:
        with pytest.raises(ValueError, match=match):
            B.make_model(fw, pri, B.GaussianLikelihood(0.5), sv)
