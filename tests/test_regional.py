"""A regional part of the data solved with the density (a datum offset or a plane).

A constant or a plane added to the data must not change a model inverted with that
regional (it is integrated out exactly), in the closed-form solver and in training; the
fitted regional is added back to the predicted data and reported.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gempy_gravinv import Survey
from gempy_gravinv.cases.synthetic import smooth_grf
from gempy_gravinv.inversion import INRConfig, invert_inr
from gempy_gravinv.inversion._regional import Regional
from gempy_gravinv.output import save_inversion

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def grf():
    return smooth_grf(seed=0, noise_seed=1, shape=(12, 12, 6), cell_size=1000.0)


def _plane(survey, offset=7.0, tx=3.0, ty=-2.0):
    xy = survey.locations[:, :2]
    u = (xy - xy.mean(0)) / np.ptp(xy, axis=0).max()
    return offset + tx * u[:, 0] + ty * u[:, 1]


def test_regional_projection_is_the_weighted_least_squares_fit():
    g = np.random.default_rng(0)
    loc = np.c_[g.uniform(0, 5000, 40), g.uniform(0, 3000, 40), np.full(40, 10.0)]
    std = torch.as_tensor(g.uniform(0.5, 2.0, 40))
    reg = Regional("plane", loc, std)
    r = torch.as_tensor(g.normal(size=40))
    T = np.c_[np.ones(40), loc[:, :2]] / std.numpy()[:, None]
    coef, *_ = np.linalg.lstsq(T, r.numpy() / std.numpy(), rcond=None)
    np.testing.assert_allclose(reg.project(r / std).numpy(), r.numpy() / std.numpy() - T @ coef, atol=1e-12)
    # fit() + field() give back the weighted least-squares regional itself
    np.testing.assert_allclose(reg.field(reg.fit(r)).numpy(), T @ coef * std.numpy(), atol=1e-10)


def test_a_plane_in_the_data_does_not_change_the_model(grf, tmp_path):
    """Closed-form head (exact): the model of d and of d + offset + plane are the same."""
    cfg = INRConfig.spectral(progress=False, head_lambda="discrepancy", regional="plane")
    base = invert_inr(grf.survey, grf.mesh, cfg, true_model=grf.model)
    shifted = grf.survey.with_data(grf.survey.gz + _plane(grf.survey), grf.survey.std)
    res = invert_inr(shifted, grf.mesh, cfg, true_model=grf.model)
    np.testing.assert_allclose(res.model, base.model, rtol=1e-7, atol=1e-6 * np.abs(base.model).max())
    assert res.chi2 == pytest.approx(1.0, abs=1e-6) and base.chi2 == pytest.approx(1.0, abs=1e-6)
    # the predicted data carry the regional: the shift comes back in the prediction
    np.testing.assert_allclose(res.predicted - base.predicted, _plane(grf.survey), rtol=1e-6, atol=1e-6)
    assert res.regional["kind"] == "plane"
    assert res.regional["offset_mgal"] - base.regional["offset_mgal"] == pytest.approx(7.0, rel=1e-6)
    # predict() at new stations carries the regional: at the survey's own stations it is `predicted`
    np.testing.assert_allclose(res.predict(shifted.locations), res.predicted, rtol=1e-9, atol=1e-9)
    save_inversion(res, tmp_path, figures=False)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["regional"]["kind"] == "plane" and saved["config"]["regional"] == "plane"
    # without the regional the same shift costs the fit: the model changes
    plain = invert_inr(shifted, grf.mesh, INRConfig.spectral(progress=False, head_lambda="discrepancy"))
    assert np.abs(plain.model - base.model).max() > 1.0


def test_with_a_regional_the_mean_contrast_does_not_trade_against_its_offset():
    """A few stations over one block, a constant regional: the smooth model's mean stays near 0.

    Over a survey the mean contrast's g_z is nearly a constant, so a flat mean beside the
    regional's flat offset is set by their small difference: the two cancel, and the model
    becomes a uniform contrast of hundreds of kg/m³ (331 kg/m³ here, under ±450 bounds,
    with an RMS error ten times the zero model's). With a regional, the closed-form model
    holds its mean under the lattice's prior as the k = 0 harmonic.
    """
    from gempy_gravinv.cases.suite import _box, _case, _mesh, _paint

    mesh = _mesh(25.0, (40, 40, 20), (0.0, 0.0, -500.0))
    model, _ = _paint(mesh, [_box((400.0, 400.0, -250.0), (600.0, 600.0, -100.0), 300.0)])
    xy = np.random.default_rng([0, 8]).uniform(300.0, 700.0, (8, 2))
    case = _case("few", mesh, np.c_[xy, np.full(8, 10.0)], model, bounds=(-450.0, 450.0), noise_seed=0)
    res = invert_inr(case.survey, case.mesh, INRConfig.auto(bounds=case.bounds, prior="smooth", regional="constant",
                                                            progress=False), true_model=case.model)
    assert res.regional["kind"] == "constant"
    assert abs(float(np.mean(res.model))) < 30.0  # the true mean is 3.6 kg/m³
    assert res.metrics["rms_error_over_floor"] < 1.05
    assert np.corrcoef(res.model, case.model)[0, 1] > 0.3


def test_adam_training_fits_the_residual_after_the_regional(grf):
    """The datum offset is integrated out in training too: same model, offset found."""
    cfg = INRConfig.auto(progress=False, max_steps=60, regional="constant")
    base = invert_inr(grf.survey, grf.mesh, cfg)
    shifted = grf.survey.with_data(grf.survey.gz + 25.0, grf.survey.std)
    res = invert_inr(shifted, grf.mesh, cfg)
    np.testing.assert_allclose(res.model, base.model, atol=1e-3 * np.abs(base.model).max())
    assert res.regional["offset_mgal"] - base.regional["offset_mgal"] == pytest.approx(25.0, abs=0.05)
    chi2_pred = float(np.mean(((res.predicted - shifted.gz) / shifted.std) ** 2))
    # res.chi2 is summed in the preset's float32 (about 1e-6 of rounding over the stations); a prediction
    # without the 25 mGal offset would be off by orders of magnitude
    assert chi2_pred == pytest.approx(res.chi2, rel=1e-5)


def test_bad_regional_settings_are_named(grf):
    with pytest.raises(ValueError, match="regional"):
        INRConfig(regional="quadratic").validate()
    line = Survey(np.c_[np.linspace(0, 1000, 5), np.zeros(5), np.full(5, 10.0)], gz=np.zeros(5), std=np.ones(5))
    with pytest.raises(ValueError, match="one line"):
        Regional("plane", line.locations, torch.ones(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="only 1 station"):
        Regional("constant", line.locations[:1], torch.ones(1, dtype=torch.float64))
