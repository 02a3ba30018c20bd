"""The periodic presets check their own assumption: does the field wrap around the mesh box?

A field made by an FFT on the mesh wraps; one cropped from a grid twice as large does
not. The closed-form evidence of the lattice with the box as period vs twice the box
must tell them apart, and the model of the non-wrapping field must gain from the choice.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from gempy_gravinv import PrismMesh, Survey, forward_gz
from gempy_gravinv.cases.synthetic import grf_field, make_noise, smooth_grf
from gempy_gravinv.inversion import INRConfig, invert_inr
from gempy_gravinv.metrics import pearson_r
from gempy_gravinv.output import save_inversion

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHAPE, H = (20, 20, 10), 1000.0


@pytest.fixture(scope="module")
def wrapping():
    c = smooth_grf(seed=0, noise_seed=1, shape=SHAPE, cell_size=H)
    return c.survey, c.mesh, c.model


@pytest.fixture(scope="module")
def not_wrapping():
    """The same spectrum on a grid twice as large, cropped to its centre: opposite faces are not tied."""
    n = SHAPE
    f = grf_field(tuple(2 * k for k in n), H, 5000.0, 1.5, seed=3)
    f = f[n[0] // 2:n[0] // 2 + n[0], n[1] // 2:n[1] // 2 + n[1], n[2] // 2:n[2] // 2 + n[2]]
    model = 300.0 * (f - f.mean()).ravel(order="F")  # discretize order: x fastest
    mesh = PrismMesh.from_tensor([H] * n[0], [H] * n[1], [H] * n[2], origin=(0.0, 0.0, -n[2] * H))
    xx, yy = np.meshgrid(mesh.source.cell_centers_x, mesh.source.cell_centers_y, indexing="xy")
    loc = np.column_stack([xx.ravel(), yy.ravel(), np.full(xx.size, 1.0)])
    gz = forward_gz(mesh, loc, model)
    noisy, std = make_noise(gz, 0.01, 4)
    return Survey(loc, gz=noisy, std=std), mesh, model


def test_a_field_made_on_the_box_keeps_the_box_as_period(wrapping):
    survey, mesh, model = wrapping
    res = invert_inr(survey, mesh, INRConfig.spectral(progress=False, head_std=False), true_model=model)
    sel = res.period_selection
    assert sel["period_factor"] == 1.0 and sel["log_bayes_factor"] < -5.0, sel
    assert res.metrics["pearson_r"] >= 0.96
    assert "period=box" in res.summary()


def test_a_field_that_does_not_wrap_is_found_and_modelled_better(not_wrapping, tmp_path):
    survey, mesh, model = not_wrapping
    res = invert_inr(survey, mesh, INRConfig.spectral(progress=False, head_std=False))
    sel = res.period_selection
    assert sel["period_factor"] == 2.0 and sel["log_bayes_factor"] > 5.0, sel
    assert "does not wrap" in sel["rule"]
    forced = invert_inr(survey, mesh, INRConfig.spectral(progress=False, head_std=False, period_from_data=False))
    assert forced.period_selection is None
    assert pearson_r(res.model, model) > pearson_r(forced.model, model) + 0.05
    save_inversion(res, tmp_path, figures=False)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["period_selection"]["period_factor"] == 2.0
    assert saved["config"]["encoding_options"]["period_factor"] == 2.0


def test_period_from_data_needs_a_periodic_encoding():
    with pytest.raises(ValueError, match="period_from_data"):
        INRConfig(period_from_data=True).validate()
    with pytest.raises(ValueError, match="period_factor"):
        from gempy_gravinv.density import INRDensity

        mesh = PrismMesh.from_tensor([1.0] * 4, [1.0] * 4, [1.0] * 2)
        INRDensity(mesh=mesh, encoding="periodic", encoding_options={"n_harmonics": 2, "period_factor": 0.5})


def test_evidence_from_the_gram_matrix_equals_the_svd():
    """The cheap evidence-only posterior (n x n Gram) gives the SVD's evidence, λ and misfit."""
    import torch

    from gempy_gravinv.inversion._linear import HeadPosterior

    g = np.random.default_rng(5)
    n, f = 80, 400  # a wide design, as a lattice's is
    A = g.normal(size=(n, f)) * np.exp(-np.arange(f) / 60.0)[None, :]
    a0 = g.normal(size=n) + 2.0
    b = A @ g.normal(size=f) + 0.5 * a0 + 0.2 * g.normal(size=n)
    full = HeadPosterior(*(torch.as_tensor(v) for v in (A, a0, b)))
    fast = HeadPosterior(*(torch.as_tensor(v) for v in (A, a0, b)), evidence_only=True)
    lam = full.evidence()
    assert fast.evidence() == pytest.approx(lam, rel=1e-4)
    for x in (lam / 10, lam, lam * 10):
        assert fast.log_evidence(x) == pytest.approx(full.log_evidence(x), rel=1e-9, abs=1e-7)
        assert fast.chi2(x) == pytest.approx(full.chi2(x), rel=1e-7)
    with pytest.raises(ValueError, match="evidence_only"):
        fast.weights(lam)


@pytest.mark.parametrize("f", [40, 400])  # fewer weights than data (Ãᵀ Ã) and more (Ã Ãᵀ)
def test_gram_posteriors_agree_with_the_svd_on_either_side(f):
    """Evidence, misfit, leave-one-out residuals and (``gram=True``) weights from the smaller
    side's Gram matrix equal the SVD's, with and without a caller's Gram."""
    import torch

    from gempy_gravinv.inversion._linear import HeadPosterior

    g = np.random.default_rng(7)
    n = 80
    A = g.normal(size=(n, f)) * np.exp(-np.arange(f) / 30.0)[None, :]
    a0 = g.normal(size=n) + 2.0
    b = A @ g.normal(size=f) + 0.5 * a0 + 0.2 * g.normal(size=n)
    At, a0t, bt = (torch.as_tensor(v) for v in (A, a0, b))
    full = HeadPosterior(At, a0t, bt)
    q = a0t / a0t.norm()
    P = torch.eye(n, dtype=At.dtype) - q[:, None] * q[None, :]
    keep = torch.diagonal(P)
    lam = full.evidence()
    for post in (HeadPosterior(At, a0t, bt, gram=True), HeadPosterior(At, a0t, bt, evidence_only=True),
                 HeadPosterior(At, a0t, bt, gram=True, gram_matrix=P @ At @ At.T @ P)):
        for x in (lam / 10, lam, lam * 10):
            assert post.log_evidence(x) == pytest.approx(full.log_evidence(x), rel=1e-9, abs=1e-7)
            assert post.chi2(x) == pytest.approx(full.chi2(x), rel=1e-7)
            np.testing.assert_allclose(post.loo_residuals(x, keep), full.loo_residuals(x, keep), rtol=1e-6)
            if not post.evidence_only:  # the weights at the evidence's λ and near it
                w, b0 = post.weights(x)
                w_ref, b0_ref = full.weights(x)
                np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-7 * float(w_ref.abs().max()))
                assert b0 == pytest.approx(b0_ref, rel=1e-6)


def test_the_start_reuses_its_gram_matrix_until_the_noise_changes():
    """The regional's choice and the prior's image share one product over the cells; a new σ
    (a noise estimate) makes a new one, and the start is the least-squares model of the new σ."""
    import torch

    from gempy_gravinv._mesh import as_prism_mesh
    from gempy_gravinv.cases import synthetic
    from gempy_gravinv.inversion._problem import Problem
    from gempy_gravinv.inversion._warmstart import _design, weighted_start

    case = synthetic.single_block(noise_seed=0)
    prob = Problem(case.survey, as_prism_mesh(case.mesh), INRConfig.auto(bounds=case.bounds, regional="none"))
    K = _design(prob, 1.0)[0]
    assert _design(prob, 1.0)[0] is K  # cached
    start = weighted_start(prob, 1.0, 1.0)
    prob.std = prob.std * 2.0  # what a noise estimate does
    K2 = _design(prob, 1.0)[0]
    assert K2 is not K
    torch.testing.assert_close(K2, K / 4.0)
    start2 = weighted_start(prob, 1.0, 1.0)
    assert not torch.allclose(start2, start)  # twice the noise: a smoother model at χ²/N = 1
    with torch.no_grad():
        assert float(prob.chi2(start2.to(prob.dtype))) == pytest.approx(1.0, rel=1e-3)


def test_matern_preset_is_the_evidence_lattice_auto_uses_for_distributed_sources(not_wrapping):
    survey, mesh, model = not_wrapping
    # float32 operator, as auto()'s compact settings have it, so that the two closed forms are the same computation
    res = invert_inr(survey, mesh, INRConfig.matern(progress=False, head_std=False, dtype="float32"), true_model=model)
    lat = res.prior_selection["lattice"]
    assert res.prior_selection["prior"] == "smooth"
    assert lat["period_factor"] in (1.0, 2.0) and lat["nu"] in (0.5, 1.5, 2.5)
    assert res.metrics["pearson_r"] > 0.4
    auto = invert_inr(survey, mesh, INRConfig.auto(progress=False, head_std=False, bounds=(-900.0, 900.0)))
    assert auto.prior_selection["prior"] == "smooth"  # a Gaussian field: no heavy tails
    assert auto.regional_selection["kind"] == "none"  # a field made by the mesh alone: no regional
    np.testing.assert_allclose(auto.model, res.model, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="lattice_from_data"):
        INRConfig.auto(lattice_from_data=True).validate()


def test_the_closed_form_lattice_is_factored_in_float64_under_a_float32_operator(not_wrapping):
    """A float32 operator's design is factored in float64: no negative smallest χ²/N, the float64 evidence.

    A float32 SVD of the lattice's ill-conditioned design reported a smallest χ²/N of
    −0.00125 here and a log evidence 0.27 nats off the float64 operator's; the float32
    rounding of the design itself moves it by 0.003.
    """
    survey, mesh, _ = not_wrapping
    info = {dt: invert_inr(survey, mesh, INRConfig.matern(progress=False, head_std=False, dtype=dt)).solve_info[0]
            for dt in ("float32", "float64")}
    assert info["float32"]["chi2_min"] > -1e-8
    assert info["float32"]["log_evidence"] == pytest.approx(info["float64"]["log_evidence"], abs=0.05)
