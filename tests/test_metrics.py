"""Metrics against hand-computed values."""

import json
import math

import numpy as np
import pytest
import torch

from gempy_gravinv import PrismMesh, Survey
from gempy_gravinv.metrics import (
    chi2_per_datum,
    coverage,
    evaluate,
    floor,
    pearson_r,
    pearson_r_by_layer,
    relative_error,
    rms_error,
    rms_misfit,
)


def test_chi2_of_exact_data_with_known_noise_is_one(rng):
    n = 20000
    obs_clean = rng.normal(size=n)
    std = rng.uniform(0.5, 2.0, size=n)
    obs = obs_clean + std * rng.standard_normal(n)
    c = chi2_per_datum(obs_clean, obs, std)
    assert abs(c - 1) < 4 * math.sqrt(2 / n)
    # halving std quadruples chi2; a scalar std broadcasts
    assert chi2_per_datum(obs_clean, obs, std / 2) == pytest.approx(4 * c)
    assert chi2_per_datum([1.0, 2.0], [0.0, 0.0], 0.5) == pytest.approx((4 + 16) / 2)
    assert chi2_per_datum(torch.tensor([1.0, 2.0]), np.zeros(2), torch.tensor(0.5)) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="std must be > 0"):
        chi2_per_datum([1.0], [0.0], 0.0)


def test_rms_and_relative_errors_by_hand():
    assert rms_misfit([1.0, -1.0, 3.0], [0.0, 0.0, 0.0]) == pytest.approx(math.sqrt(11 / 3))
    assert rms_error([400.0, 0.0], [0.0, 0.0]) == pytest.approx(400 / math.sqrt(2))
    assert relative_error([3.0, 4.0], [0.0, 8.0]) == pytest.approx(5 / 8)
    with pytest.raises(ValueError, match="identically zero"):
        relative_error([1.0], [0.0])


def test_pearson():
    t = np.array([0.0, 1.0, 5.0, 2.0, -3.0])
    assert pearson_r(3.0 * t + 7.0, t) == pytest.approx(1.0)
    assert pearson_r(-0.5 * t, t) == pytest.approx(-1.0)
    assert pearson_r(torch.tensor(t), t) == pytest.approx(1.0)
    assert math.isnan(pearson_r(np.ones(5), t))
    # hand value: x=(1,2,3), y=(1,3,2) -> r = 0.5
    assert pearson_r([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)


def test_floors():
    t = np.array([400.0, 0.0, 0.0, 0.0])
    assert floor(t, "zero") == pytest.approx(200.0)  # sqrt(400²/4)
    assert floor(t, "mean") == pytest.approx(np.std(t))  # sqrt(mean((t-100)²)) = 173.2
    assert floor(t, "mean") == pytest.approx(math.sqrt((300**2 + 3 * 100**2) / 4))
    # the floors are the RMS errors of the trivial models
    assert floor(t, "zero") == pytest.approx(rms_error(np.zeros(4), t))
    assert floor(t, "mean") == pytest.approx(rms_error(np.full(4, t.mean()), t))
    with pytest.raises(ValueError, match="kind"):
        floor(t, "median")


def test_pearson_by_layer_top_first():
    mesh = PrismMesh.from_tensor([1.0] * 3, [1.0] * 2, [1.0] * 3, origin=(0, 0, -3))
    rng = np.random.default_rng(0)
    t = rng.normal(size=mesh.n_cells)
    m = t.copy()
    layer_from_bottom = np.repeat(np.arange(3), 6)
    m[layer_from_bottom == 2] *= 2.0  # top layer: r = 1
    m[layer_from_bottom == 1] *= -1.0  # middle: r = -1
    m[layer_from_bottom == 0] = 5.0  # bottom: constant -> nan
    r = pearson_r_by_layer(m, t, mesh)
    assert r[0] == pytest.approx(1.0) and r[1] == pytest.approx(-1.0) and math.isnan(r[2])
    # active cells: drop the bottom layer
    act = layer_from_bottom > 0
    sub = PrismMesh.from_discretize(mesh.source, active_cells=act)
    r2 = pearson_r_by_layer(m[act], t[act], sub)
    assert r2[0] == pytest.approx(1.0) and r2[1] == pytest.approx(-1.0) and math.isnan(r2[2])
    with pytest.raises(ValueError, match="mesh has"):
        pearson_r_by_layer(m[:5], t[:5], mesh)
    with pytest.raises(ValueError, match="tensor"):
        pearson_r_by_layer(m, t, PrismMesh(mesh.bounds))


def test_evaluate_everything_together():
    mesh = PrismMesh.from_tensor([1.0] * 2, [1.0] * 2, [1.0] * 2, origin=(0, 0, -2))
    t = np.array([0, 0, 0, 0, 400, 0, 0, 0], float)
    m = 0.5 * t
    sv = Survey([[0.5, 0.5, 1.0], [1.5, 1.5, 1.0]], gz=[1.0, 2.0], std=0.5)
    out = evaluate(model=torch.tensor(m), true=t, pred=[1.5, 2.0], survey=sv, mesh=mesh,
                   wall_time=1.25, peak_memory=1024, device="cpu")
    assert out["chi2_per_datum"] == pytest.approx(0.5)
    assert out["rms_misfit_mgal"] == pytest.approx(math.sqrt(0.125))
    assert out["rms_error_kgm3"] == pytest.approx(200 / math.sqrt(8))
    assert out["relative_error"] == pytest.approx(0.5)
    assert out["pearson_r"] == pytest.approx(1.0)
    assert out["floor_zero_kgm3"] == pytest.approx(400 / math.sqrt(8))
    assert out["floor_mean_kgm3"] == pytest.approx(np.std(t))
    assert out["rms_error_over_floor_zero"] == pytest.approx(0.5)
    assert out["rms_error_over_floor"] == pytest.approx(out["rms_error_kgm3"] / np.std(t))
    assert out["pearson_r_by_layer"][0] == pytest.approx(1.0)
    assert out["pearson_r_by_layer"][1] is None  # constant bottom layer
    assert (out["wall_time_s"], out["peak_memory_bytes"], out["device"]) == (1.25, 1024, "cpu")
    assert out["n_data"] == 2 and out["n_cells"] == 8
    json.dumps(out)  # plain types only
    # only what can be computed
    part = evaluate(pred=[1.0, 2.0], obs=[1.0, 2.0])
    assert part["rms_misfit_mgal"] == 0.0 and part["chi2_per_datum"] is None
    assert part["rms_error_kgm3"] is None and "floor_mean_kgm3" in part


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="pred has 3 values but obs has 2"):
        rms_misfit([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="model contains 1 NaN"):
        rms_error([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="without observations"):
        evaluate(pred=[1.0])
    with pytest.raises(TypeError, match="numeric"):
        rms_error(["a", "b"], [1.0, 2.0])


def test_coverage_of_gaussian_errors_and_bad_input():
    """Errors drawn from N(0, σ²) fall within 1.96 σ for 95% of cells (±1% at n = 20,000)."""
    g = np.random.default_rng(0)
    true = g.normal(size=20000) * 300.0
    std = np.full(true.size, 40.0)
    model = true + g.normal(size=true.size) * std
    assert coverage(model, true, std) == pytest.approx(0.95, abs=0.01)
    assert coverage(model, true, std / 2) == pytest.approx(0.674, abs=0.01)  # a std too small
    assert coverage(model, true, std, z=1.0) == pytest.approx(0.683, abs=0.01)
    with pytest.raises(ValueError, match="std has"):
        coverage(model, true, std[:-1])
    with pytest.raises(ValueError, match=">= 0"):
        coverage(model, true, -std)
    with pytest.raises(ValueError, match="NaN"):
        coverage(model, true, np.full(true.size, np.nan))


def _grid(n=21, h=50.0):
    xy = np.stack(np.meshgrid(np.arange(n) * h, np.arange(n) * h), -1).reshape(-1, 2)
    return np.c_[xy, np.ones(len(xy))]


def test_residual_autocorrelation_of_white_noise_is_standard_normal():
    """Independent Gaussian residuals: z ~ N(0, 1) (Cliff & Ord's moments), rarely above 3."""
    from gempy_gravinv.metrics import residual_autocorrelation

    loc = _grid()
    g = np.random.default_rng(0)
    out = [residual_autocorrelation(np.zeros(len(loc)), g.normal(size=len(loc)), np.ones(len(loc)), loc)
           for _ in range(400)]
    z = np.array([o["z"] for o in out])
    i = np.array([o["moran_i"] for o in out])
    assert abs(z.mean()) < 0.25 and 0.85 < z.std() < 1.15
    assert np.mean(z > 3) < 0.01
    # the analytic variance is the Monte-Carlo one
    e, var = out[0]["expected"], ((out[0]["moran_i"] - out[0]["expected"]) / out[0]["z"]) ** 2
    assert i.mean() == pytest.approx(e, abs=0.01)
    assert i.var() == pytest.approx(var, rel=0.2)


def test_residual_autocorrelation_finds_a_missed_body_and_counts_colocated_stations():
    from gempy_gravinv.cases.synthetic import single_block
    from gempy_gravinv.metrics import residual_autocorrelation

    case = single_block(noise_seed=0)
    s = case.survey
    missed = residual_autocorrelation(np.zeros(s.n_data), s.gz, s.std, s.locations)  # the body left out
    assert missed["moran_i"] > 0.5 and missed["z"] > 5 and missed["p_value"] < 1e-6
    # the same value twice at each position: each station's twin is a neighbour, never itself
    g = np.random.default_rng(1)
    loc = _grid(10)
    v = g.normal(size=len(loc))
    twin = residual_autocorrelation(np.zeros(2 * len(loc)), np.r_[v, v], np.ones(2 * len(loc)), np.r_[loc, loc])
    assert twin["moran_i"] > 0.2 and twin["z"] > 3
    with pytest.raises(ValueError, match="locations"):
        residual_autocorrelation(np.zeros(5), np.ones(5), np.ones(5), loc[:4])
    assert residual_autocorrelation(np.zeros(5), np.ones(5), np.ones(5), loc[:5]) is None
