"""solver="linear": the closed-form Gaussian posterior of an INR's last layer.

Checked against dense Gaussian algebra (mean, covariance, evidence), on a small GRF
(recovery and calibration of the posterior std), and for resume, ensembles and errors.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gempy_gravinv.cases.synthetic import smooth_grf
from gempy_gravinv.density import INRDensity
from gempy_gravinv.inversion import INRConfig, invert_inr
from gempy_gravinv.inversion._linear import HeadPosterior
from gempy_gravinv.output import save_inversion

pytestmark = pytest.mark.usefixtures("one_torch_thread")

V_FLAT = 1e7  # a bias prior variance wide enough to stand for the flat prior (and no wider: conditioning)


def _problem(n=30, f=12, seed=0):
    g = np.random.default_rng(seed)
    A = g.normal(size=(n, f))
    a0 = g.normal(size=n) + 2.0
    b = A @ g.normal(size=f) + 1.5 * a0 + 0.3 * g.normal(size=n)
    phi = g.normal(size=(20, f))
    return A, a0, b, phi


def _dense_posterior(A, a0, b, lam):
    X = np.column_stack([a0, A])
    prec = np.diag([1.0 / V_FLAT] + [lam] * A.shape[1])
    H = X.T @ X + prec
    cov = np.linalg.inv(H)
    return cov @ X.T @ b, cov


@pytest.mark.parametrize("f", [12, 50])  # more data than weights, and fewer (a null space)
def test_head_posterior_equals_dense_gaussian_algebra(f):
    A, a0, b, phi = _problem(f=f)
    post = HeadPosterior(*(torch.as_tensor(v) for v in (A, a0, b)))
    lam = 0.7
    mu, cov = _dense_posterior(A, a0, b, lam)
    w, b0 = post.weights(lam)
    np.testing.assert_allclose(w.numpy(), mu[1:], rtol=1e-6, atol=1e-6)
    assert b0 == pytest.approx(mu[0], rel=1e-6)
    # χ²/N of the mean, and the posterior std of m = Φ w + b
    assert post.chi2(lam) == pytest.approx(np.mean((b - A @ mu[1:] - a0 * mu[0]) ** 2), rel=1e-6)
    Z = np.column_stack([np.ones(len(phi)), phi])
    sd = np.sqrt(np.einsum("ij,jk,ik->i", Z, cov, Z))
    np.testing.assert_allclose(post.cell_std(torch.as_tensor(phi), lam).numpy(), sd, rtol=1e-5)


def test_head_posterior_without_a_flat_bias_is_ridge_regression():
    """``a0=None``: every column under the prior ``N(0, I/λ)``, no bias (the mean as a weight)."""
    A, _, b, phi = _problem(f=50)
    post = HeadPosterior(torch.as_tensor(A), None, torch.as_tensor(b))
    lam = 0.7
    cov = np.linalg.inv(A.T @ A + lam * np.eye(A.shape[1]))
    w, b0 = post.weights(lam)
    np.testing.assert_allclose(w.numpy(), cov @ A.T @ b, rtol=1e-6, atol=1e-8)
    assert b0 == 0.0
    assert post.chi2(lam) == pytest.approx(np.mean((b - A @ (cov @ A.T @ b)) ** 2), rel=1e-6)
    sd = np.sqrt(np.einsum("ij,jk,ik->i", phi, cov, phi))
    np.testing.assert_allclose(post.cell_std(torch.as_tensor(phi), lam).numpy(), sd, rtol=1e-5)

    def dense(lam):  # log N(b; 0, I + AAᵀ/λ)
        S = np.eye(len(b)) + A @ A.T / lam
        return -0.5 * (np.linalg.slogdet(S)[1] + b @ np.linalg.solve(S, b))

    assert post.log_evidence(0.1) - post.log_evidence(3.0) == pytest.approx(dense(0.1) - dense(3.0), abs=1e-5)


def test_log_evidence_differences_equal_the_marginal_gaussian_density():
    A, a0, b, _ = _problem(f=50)
    post = HeadPosterior(*(torch.as_tensor(v) for v in (A, a0, b)))

    def dense(lam):  # log N(b; 0, I + AAᵀ/λ + v a0a0ᵀ), the λ-dependent part survives v → ∞
        S = np.eye(len(b)) + A @ A.T / lam + V_FLAT * np.outer(a0, a0)
        return -0.5 * (np.linalg.slogdet(S)[1] + b @ np.linalg.solve(S, b))

    for l1, l2 in ((0.1, 3.0), (0.5, 40.0)):
        assert post.log_evidence(l1) - post.log_evidence(l2) == pytest.approx(dense(l1) - dense(l2), abs=1e-5)


def test_lambda_rules_discrepancy_and_evidence():
    A, a0, b, _ = _problem(n=60, f=40, seed=3)
    post = HeadPosterior(*(torch.as_tensor(v) for v in (A, a0, b)))
    lam = post.discrepancy(1.0 * post.chi2(2.0))  # a reachable target: the misfit at λ = 2
    assert lam == pytest.approx(2.0, rel=1e-6)
    best = post.evidence()
    for f in (0.8, 1.25):
        assert post.log_evidence(best) > post.log_evidence(best * f)
    # the misfit grows with λ; the bias-only limit and the smallest reachable misfit bracket it
    assert post.chi2_min() < post.chi2(0.1) < post.chi2(10.0) < post.chi2_bias_only()
    assert post.discrepancy(post.chi2_bias_only() * 1.01) == math.inf  # a constant fits: no weights
    with pytest.raises(ValueError, match="cannot fit the data"):
        post.discrepancy(0.5 * post.chi2_min())
    with pytest.raises(ValueError, match="cannot fit the data"):
        post.evidence(0.5 * post.chi2_min())


@pytest.fixture(scope="module")
def grf():
    return smooth_grf(seed=0, noise_seed=1, shape=(20, 20, 10), cell_size=1000.0)


def test_spectral_preset_recovers_a_grf_with_a_calibrated_posterior_std(grf, tmp_path):
    """Measured on the 2-core CPU (20 x 20 x 10 cells, floor 391.7 kg/m³): evidence 0.232
    of the floor, r 0.973, 97.9% of the cells within 1.96 posterior std; discrepancy
    0.229, r 0.973 at χ²/N = 1 (its std is too small: λ smaller than the truth's)."""
    ev = invert_inr(grf.survey, grf.mesh, INRConfig.spectral(progress=False), true_model=grf.model)
    info = ev.solve_info[0]
    assert ev.metrics["pearson_r"] >= 0.96 and ev.metrics["rms_error_over_floor"] <= 0.26, ev.metrics
    z = (ev.model - grf.model) / ev.std
    assert 0.9 <= np.mean(np.abs(z) < 1.96) <= 0.995
    # the evidence's misfit is the Bayesian expectation (N - effective parameters) / N
    n = grf.survey.n_data
    assert ev.chi2 == pytest.approx((n - info["effective_parameters"]) / n, abs=0.1)
    # the evidence finds the field's own variance (prior std of the field vs the truth's std)
    assert info["field_prior_std_kgm3"] == pytest.approx(grf.model.std(), rel=0.3)
    # the field is a coordinate network, evaluable anywhere; the model is its mean over each cell
    from gempy_gravinv.density import evaluate_on_mesh

    with torch.no_grad():
        avg = evaluate_on_mesh(ev.field, grf.mesh, 4).numpy()
    np.testing.assert_allclose(avg, ev.model, rtol=0, atol=1e-4 * np.abs(ev.model).max())
    save_inversion(ev, tmp_path, figures=False)
    rep = json.loads((tmp_path / "metrics.json").read_text())
    assert rep["solve_info"][0]["rule"] == "evidence"
    assert rep["posterior_coverage_95"] == pytest.approx(np.mean(np.abs(z) < 1.96), abs=1e-9)
    dis = invert_inr(grf.survey, grf.mesh, INRConfig.spectral(head_lambda="discrepancy", progress=False),
                     true_model=grf.model)
    assert dis.chi2 == pytest.approx(1.0, abs=1e-6)
    assert dis.metrics["pearson_r"] >= 0.96
    assert dis.solve_info[0]["head_lambda"] > info["head_lambda"]  # smaller prior variance than the evidence's


def test_with_a_regional_the_separable_sums_and_the_feature_chunks_agree(grf, monkeypatch):
    """The mean as a weight (a regional): the separable path's model and std equal the chunked features'."""
    from gempy_gravinv.inversion import _linear

    cfg = INRConfig.spectral(progress=False, regional="constant")
    of, used = _linear.SeparableLattice.of.__func__, []
    monkeypatch.setattr(_linear.SeparableLattice, "of",
                        classmethod(lambda cls, prob, field: used.append(of(cls, prob, field)) or used[-1]))
    sep = invert_inr(grf.survey, grf.mesh, cfg)
    assert used and used[-1] is not None  # the separable sums did the solve
    monkeypatch.setattr(_linear.SeparableLattice, "of", classmethod(lambda cls, prob, field: None))
    chunked = invert_inr(grf.survey, grf.mesh, cfg)
    np.testing.assert_allclose(sep.model, chunked.model, rtol=0, atol=1e-6 * np.abs(sep.model).max())
    np.testing.assert_allclose(sep.std, chunked.std, rtol=1e-5)
    # the mean's own prior variance is in the std: no cell is more certain than a weight's prior allows
    assert np.all(sep.std > 0) and sep.regional["kind"] == "constant"


def test_linear_solver_checkpoint_resume_and_seeded_members(grf, tmp_path):
    cfg = INRConfig.spectral(progress=False, encoding_options={"n_harmonics": [3, 3, 2], "lattice": True,
                                                               "spectrum": [5000.0, 1.5]})
    ck = tmp_path / "head.pt"
    first = invert_inr(grf.survey, grf.mesh, cfg, checkpoint=ck)
    assert ck.exists()
    again = invert_inr(grf.survey, grf.mesh, cfg, checkpoint=ck, resume=True)
    np.testing.assert_array_equal(again.model, first.model)
    np.testing.assert_array_equal(again.std, first.std)
    assert again.timings["train"] == first.timings["train"]  # loaded, not solved again
    with pytest.raises(ValueError, match="other settings"):
        invert_inr(grf.survey, grf.mesh, cfg, checkpoint=ck, resume=True, head_lambda=1e-3)
    # hidden layers at their seeded initial values: random features, one posterior per member
    ens = dict(encoding="positional", encoding_options={"n_frequencies": 2}, depth=1, width=512, n_members=2,
               period_from_data=False)
    a = invert_inr(grf.survey, grf.mesh, cfg, **ens)
    b = invert_inr(grf.survey, grf.mesh, cfg, **ens)
    np.testing.assert_array_equal(a.model, b.model)
    assert not np.allclose(a.members[0], a.members[1])
    # the mixture's variance: the spread of the member means plus their posterior variances
    post_var = a.std ** 2 - a.members.var(0)
    assert np.all(post_var > 0)
    assert a.solve_info[0]["head_lambda"] != a.solve_info[1]["head_lambda"]


def test_linear_solver_rejects_settings_it_cannot_honour(grf):
    base = INRConfig.spectral(progress=False)
    for bad, match in ((dict(bounds=(-600.0, 600.0), output="tanh"), "bounds"),
                       (dict(weighting="depth"), "weighting"),
                       (dict(regularization="smooth", reg_weight=1.0), "regularization"),
                       (dict(backend="voxel"), "backend"),
                       (dict(head_lambda="auto"), "head_lambda"),
                       (dict(head_lambda=-1.0), "head_lambda"),
                       (dict(solver="lbfgs"), "solver")):
        with pytest.raises(ValueError, match=match):
            invert_inr(grf.survey, grf.mesh, base, **bad)
    # too few features to reach χ²/N = 1: a clear error, not a model that fits noise
    few = {"n_harmonics": [1, 1, 1], "lattice": True, "spectrum": [5000.0, 1.5]}
    for rule in ("discrepancy", "evidence"):
        with pytest.raises(ValueError, match="cannot fit the data"):
            invert_inr(grf.survey, grf.mesh, base, head_lambda=rule, encoding_options=few)


def test_inr_features_are_what_the_last_layer_sees(grf):
    f = INRDensity(grf.mesh, depth=2, width=8, output="linear", bounds=None, seed=3)
    p = torch.as_tensor(grf.mesh.cell_centers[:50])
    torch.testing.assert_close(f.raw(p), f.last(f.features(p))[:, 0])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_linear_solver_cuda_matches_cpu(grf):
    cfg = INRConfig.spectral(progress=False)
    a = invert_inr(grf.survey, grf.mesh, cfg, device="cpu")
    b = invert_inr(grf.survey, grf.mesh, cfg, device="cuda")
    np.testing.assert_allclose(b.model, a.model, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(b.std, a.std, rtol=1e-5)


def test_linear_solver_is_the_same_with_a_matrix_free_operator_and_quadrature(grf):
    """The design G[1, Φ] streams over cells (dense G) or over station blocks through the
    adjoint (matrix-free): both give one posterior. A lattice's features are its exact cell
    means, so the quadrature's points do not change the model, and the field's average
    over a cell by Gauss–Legendre points approaches it."""
    cfg = INRConfig.spectral(progress=False, encoding_options={"n_harmonics": [5, 5, 4], "lattice": True,
                                                               "spectrum": [5000.0, 1.5]})
    dense = invert_inr(grf.survey, grf.mesh, cfg, store="dense")
    free = invert_inr(grf.survey, grf.mesh, cfg, store="matrix_free")
    np.testing.assert_allclose(free.model, dense.model, rtol=1e-4, atol=1e-3)  # kg/m³; kernels agree to ~1e-9
    np.testing.assert_allclose(free.std, dense.std, rtol=1e-4)
    q2 = invert_inr(grf.survey, grf.mesh, cfg, quadrature=2)
    from gempy_gravinv.density import evaluate_on_mesh

    np.testing.assert_allclose(q2.model, dense.model, rtol=0, atol=1e-6 * np.abs(dense.model).max())
    with torch.no_grad():
        err = [np.abs(evaluate_on_mesh(q2.field, grf.mesh, q).numpy() - q2.model).max() for q in (1, 2, 4)]
    assert err[2] < 1e-3 * err[0] and err[2] < err[1] < err[0], err  # the point value, then better quadratures


def test_a_model_that_nearly_interpolates_few_stations_is_warned_about(grf, caplog):
    """The evidence's model on 400 stations takes a small share of their degrees of freedom
    (no warning); on 12 of them read to a thousandth of the noise it takes nearly all."""
    import logging

    from gempy_gravinv import Survey

    with caplog.at_level(logging.WARNING, logger="gempy_gravinv.inversion._head_solve"):
        full = invert_inr(grf.survey, grf.mesh, INRConfig.spectral(progress=False))
    assert full.solve_info[0]["effective_parameters"] < 0.5 * grf.survey.n_data
    assert "nearly interpolates" not in caplog.text and not full.solve_info[0]["nearly_interpolates"]
    rows = np.random.default_rng(0).choice(grf.survey.n_data, 12, replace=False)
    few = Survey(grf.survey.locations[rows], gz=grf.survey.gz[rows], std=1e-3 * grf.survey.std[rows])
    with caplog.at_level(logging.WARNING, logger="gempy_gravinv.inversion._head_solve"):
        res = invert_inr(few, grf.mesh, INRConfig.spectral(progress=False))
    info = res.solve_info[0]
    assert info["effective_parameters"] > 0.8 * 11 and res.chi2 < 0.2 and info["nearly_interpolates"]
    assert "nearly interpolates the stations" in caplog.text and "of the data's 11 degrees of freedom" in caplog.text


@pytest.mark.parametrize("f, mean_as_weight", [(12, False), (50, False), (50, True)])
def test_the_bounded_head_is_the_constrained_optimum(f, mean_as_weight):
    """KKT conditions of min |X u - b|² + λ|w|² (the mean flat, or under λ) with lo ≤ b0 + Φ w ≤ hi on every cell:
    the objective's gradient is a non-negative combination of the active bounds' normals."""
    from scipy.optimize import nnls

    from gempy_gravinv.inversion._head_bounds import bounded_head

    A, a0, b, _ = _problem(f=f, seed=3)
    phi = np.random.default_rng(4).normal(size=(300, f))
    lam = 0.5
    T = {k: torch.as_tensor(v) for k, v in dict(A=A, a0=a0, b=b, phi=phi).items()}
    if mean_as_weight:
        post = HeadPosterior(torch.column_stack([T["a0"], T["A"]]), None, T["b"])
        u, _ = post.weights(lam)
        w0, b00 = u[1:], float(u[0])
    else:
        post = HeadPosterior(T["A"], T["a0"], T["b"])
        w0, b00 = post.weights(lam)
    m0 = b00 + T["phi"] @ w0
    lo, hi = (float(q) for q in np.quantile(m0.numpy(), [0.25, 0.75]))
    out = bounded_head(post, lam, w0, b00, m0, (lo, hi), lambda idx: T["phi"][idx], lambda w, b0: b0 + T["phi"] @ w,
                       mean_as_weight=mean_as_weight)
    w, b0 = out["w"].numpy(), out["b0"]
    m = b0 + phi @ w
    assert m.min() >= lo - 1e-6 * (hi - lo) and m.max() <= hi + 1e-6 * (hi - lo)
    np.testing.assert_allclose(out["model"].numpy(), np.clip(m, lo, hi), atol=1e-6 * (hi - lo))
    assert out["cells_beyond_unbounded"] > 100 and out["largest_clip_kgm3"] < 1e-5 * (hi - lo)
    r = a0 * b0 + A @ w - b
    grad = np.r_[2 * a0 @ r + (2 * lam * b0 if mean_as_weight else 0.0), 2 * A.T @ r + 2 * lam * w]
    tol = 1e-5 * (hi - lo)
    up, down = np.abs(m - hi) <= tol, np.abs(m - lo) <= tol
    normals = np.vstack([np.c_[np.ones(up.sum()), phi[up]], -np.c_[np.ones(down.sum()), phi[down]]])
    nu, resid = nnls(normals.T, -grad)
    assert resid <= 1e-5 * np.linalg.norm(grad), (resid, np.linalg.norm(grad))
    # and the unbounded optimum is no worse (the bounds only cost)
    r0 = a0 * b00 + A @ w0.numpy() - b

    def J(rr, ww, bb):
        return rr @ rr + lam * ww @ ww + (lam * bb * bb if mean_as_weight else 0.0)

    assert J(r0, w0.numpy(), b00) <= J(r, w, b0)


def test_a_smooth_model_is_held_within_the_bounds_and_gives_way_where_it_cannot_fit(caplog):
    """The closed form held within bounds (head_bounds); the default's smooth choice, held within one-signed bounds it
    cannot fit, trains the compact prior instead and says why."""
    import logging

    g = smooth_grf(seed=0, noise_seed=1, shape=(12, 12, 6), cell_size=1000.0)
    free = invert_inr(g.survey, g.mesh, INRConfig.spectral(progress=False))
    with caplog.at_level(logging.WARNING, logger="gempy_gravinv.inversion._head_solve"):
        held = invert_inr(g.survey, g.mesh, INRConfig.spectral(progress=False, head_bounds=(-400.0, 400.0)))
    assert free.model.min() < -400.0 and free.model.max() > 400.0
    assert "lies beyond the bounds (-400, 400) kg/m³ on" in caplog.text  # the bounds cut the truth: said
    assert held.model.min() >= -400.0 and held.model.max() <= 400.0
    info = held.solve_info[0]["bounds"]
    assert info["held"] and info["cells_beyond_unbounded"] > 0.01 * g.mesh.n_cells and info["cells_at_bounds"] >= 1
    excess = max(-400.0 - free.model.min(), free.model.max() - 400.0)
    assert info["largest_excess_unbounded_kgm3"] == pytest.approx(excess, rel=1e-6)
    assert held.chi2 > free.chi2  # the bounds cost misfit
    assert np.corrcoef(held.model, g.model)[0, 1] > 0.7  # 0.79 measured: the bounds cut the truth (free: 0.94)
    with caplog.at_level(logging.WARNING, logger="gempy_gravinv.inversion._inr"):
        res = invert_inr(g.survey, g.mesh, INRConfig.auto(progress=False, bounds=(0.0, 400.0), max_steps=60))
    assert res.prior_selection["prior"] == "compact" and res.prior_selection["set_by"] == "bounds"
    assert "held within the bounds (0, 400) kg/m³ the smooth model fits the data only to" in res.prior_selection["rule"]
    assert res.model.min() >= 0.0 and res.model.max() <= 400.0
    assert "training the compact prior, which holds them, instead" in caplog.text


@pytest.mark.parametrize("datum", [0.0, 3.0])
def test_a_regional_is_kept_only_where_the_smooth_model_predicts_better_with_it(monkeypatch, datum):
    """The least-squares model's choice (forced here to a datum) is checked with the smooth model's own features:
    dropped on a field without one, kept where the data carry a datum offset of 3 mGal."""
    from gempy_gravinv import Survey
    from gempy_gravinv.inversion import _problem

    g = smooth_grf(seed=0, noise_seed=1, shape=(12, 12, 6), cell_size=1000.0)
    survey = Survey(g.survey.locations, gz=g.survey.gz + datum, std=g.survey.std)
    forced = dict(kind="constant", loo_chi2={}, loo_se={}, rule="regional 'constant' (forced)")
    monkeypatch.setattr(_problem, "choose_regional", lambda prob, beta: dict(forced))
    res = invert_inr(survey, g.mesh, INRConfig.auto(progress=False, prior="smooth"))
    sel = res.regional_selection
    assert set(sel["smooth_loo_chi2"]) == {"none", "constant", "plane"}
    if datum:
        assert sel["kind"] == "constant" and "replacing" not in sel["rule"] and res.regional is not None
    else:
        assert sel["kind"] == "none" and "replacing 'constant'" in sel["rule"] and res.regional is None
    loo, se = sel["smooth_loo_chi2"], sel["smooth_loo_se"]  # none within one standard error of the best, or not
    assert (loo["none"] <= min(loo.values()) + se["none"]) is (datum == 0.0)
    assert res.chi2 < 1.5 and np.corrcoef(res.model, g.model)[0, 1] > 0.8


def test_the_compact_prior_takes_over_only_where_the_bounds_cost_the_misfit():
    """A smooth model whose evidence fit is above the band unbounded keeps the smooth prior; one the bounds push there
    gives way (the rule of ``_smooth_misses_bounds``)."""
    from types import SimpleNamespace

    from gempy_gravinv.inversion._inr import _smooth_misses_bounds

    cfg = SimpleNamespace(target_chi2=1.0, stop_tol=0.05)
    prob = SimpleNamespace(cfg=cfg, prior_selection=dict(prior="smooth", set_by=None, rule="smooth"))

    def outs(held_chi2: float, free_chi2: float) -> list[dict]:
        bounds = dict(held=True, kgm3=[-500.0, 500.0], chi2_unbounded=free_chi2)
        return [dict(done=True, chi2=held_chi2, recorded_chi2=held_chi2, info=dict(bounds=bounds))]

    assert _smooth_misses_bounds(prob, outs(1.253, 1.251)) is None  # matern_nowrap seed 101: the evidence's own misfit
    assert _smooth_misses_bounds(prob, outs(1.03, 0.99)) is None  # within the band
    why = _smooth_misses_bounds(prob, outs(14.0, 1.0))
    assert why is not None and "(1 unbounded" in why
