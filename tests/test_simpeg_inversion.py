"""A standard SimPEG inversion runs unchanged on our simulation and reaches SimPEG's model.

Recipes: L2DataMisfit + WeightedLeastSquares (BetaSchedule, TargetMisfit) and Sparse with
IRLS, both with UpdateSensitivityWeights, BetaEstimate_ByEig (seeded),
UpdatePreconditioner and ProjectedGNCG with bounds (gempy_gravinv.simpeg.run_inversion).
"""

from __future__ import annotations

import numpy as np
import pytest

discretize = pytest.importorskip("discretize")
pytest.importorskip("simpeg")

from gempy_gravinv import GravityOperator, PrismMesh, Survey, gz_from_upward, kgm3_to_gcc  # noqa: E402
from gempy_gravinv.simpeg import run_inversion  # noqa: E402
from gempy_gravinv.simpeg._inversion import make_simulation  # noqa: E402


@pytest.fixture(scope="module")
def block_case():
    """8 x 8 x 4 cells of 50 m, a +300 kg/m³ block, 64 stations 1 m above the top, 1% noise."""
    h, n, nz = 50.0, 8, 4
    mesh = discretize.TensorMesh([[(h, n)], [(h, n)], [(h, nz)]], origin=(0.0, 0.0, -h * nz))
    cc = mesh.cell_centers
    L = n * h
    true = np.where((np.abs(cc[:, 0] - L / 2) < L / 5) & (np.abs(cc[:, 1] - L / 2) < L / 5)
                    & (cc[:, 2] > -0.7 * h * nz) & (cc[:, 2] < -h), 300.0, 0.0)
    xs = np.arange(h / 2, L, h)
    X, Y = np.meshgrid(xs, xs)
    loc = np.c_[X.ravel(), Y.ravel(), np.ones(X.size)]
    import torch

    gz = GravityOperator(PrismMesh.from_discretize(mesh), Survey(loc), device="cpu").forward(
        torch.as_tensor(true)).numpy()
    std = np.full(gz.shape, 0.01 * gz.std())
    rng = np.random.default_rng(0)
    survey = Survey(loc, gz=gz + rng.normal(0.0, std), std=std)
    return mesh, survey, true


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("kind", ["l2", "sparse"])
def test_same_model_as_simpeg(block_case, kind):
    mesh, survey, true = block_case
    kw = dict(kind=kind, bounds=(-500.0, 1000.0), seed=0, max_irls_iterations=25)
    ours = run_inversion(survey, mesh, engine="ours", **kw)
    ref = run_inversion(survey, mesh, engine="simpeg", **kw)
    assert ours.engine == "ours" and ref.engine == "simpeg"
    # same path through the optimiser (same number of iterations, same betas) ...
    assert len(ours.history) == len(ref.history)
    np.testing.assert_allclose([h["beta"] for h in ours.history], [h["beta"] for h in ref.history], rtol=1e-4)
    # ... and the same model (acceptance: relative difference < 1e-6)
    assert _rel(ours.model, ref.model) < 1e-6
    # it fits the data near the target and recovers the block better than the zero model
    assert 0.3 < ours.chi2 < 1.5
    rms = np.sqrt(np.mean((ours.model - true) ** 2))
    assert rms < np.sqrt(np.mean(true**2))
    assert np.corrcoef(ours.model, true)[0, 1] > 0.5
    # bounds hold (kg/m³)
    assert ours.model.min() >= -500.0 - 1e-9 and ours.model.max() <= 1000.0 + 1e-9


def test_result_units_and_record(block_case):
    mesh, survey, _ = block_case
    res = run_inversion(survey, mesh, kind="l2", max_iter=3, seed=1)
    # model in kg/m³ = 1000 x SimPEG's g/cm³ model
    np.testing.assert_allclose(kgm3_to_gcc(res.model), res.model_simpeg, rtol=1e-15)
    # predicted g_z is ours (positive down) = -(SimPEG's upward dpred)
    sim, *_ = make_simulation(survey, mesh, engine="simpeg")
    np.testing.assert_allclose(res.gz_pred, gz_from_upward(sim.dpred(res.model_simpeg)), rtol=1e-9,
                               atol=1e-12)
    # convergence record: one entry per iteration, χ² = phi_d / N, betas decrease
    assert len(res.history) == res.info["n_iter"] >= 1
    for h in res.history:
        assert h["chi2"] == pytest.approx(h["phi_d"] / survey.n_data)
    betas = [h["beta"] for h in res.history]
    assert all(b1 <= b0 for b0, b1 in zip(betas, betas[1:]))
    r = (res.gz_pred - survey.gz) / survey.std
    assert res.chi2 == pytest.approx(np.mean(r * r))
    full = res.full_model()
    assert full.shape == (mesh.n_cells,)
    assert res.wall_time >= res.setup_time > 0


def test_bad_input(block_case):
    mesh, survey, _ = block_case
    with pytest.raises(ValueError, match="kind"):
        run_inversion(survey, mesh, kind="l1")
    with pytest.raises(ValueError, match="engine"):
        run_inversion(survey, mesh, engine="numpy")
    with pytest.raises(ValueError, match="std"):
        run_inversion(Survey(survey.locations, gz=survey.gz), mesh)
    with pytest.raises(ValueError, match="lower < upper"):
        run_inversion(survey, mesh, bounds=(10.0, -10.0))
    with pytest.raises(ValueError, match="reference"):
        run_inversion(survey, mesh, reference=np.zeros(3))


@pytest.mark.parametrize("kind", ["l2", "sparse"])
def test_positive_only_bounds_start_inside_them(block_case, kind):
    """With bounds (0, hi) the reference 0 lies on the lower bound; started there, SimPEG's
    projected Gauss-Newton would keep every cell at 0 (a constant model). The start moves a
    hair inside, and the inversion fits the data with a non-negative model of the block."""
    mesh, survey, true = block_case
    res = run_inversion(survey, mesh, kind=kind, reference=0.0, bounds=(0.0, 600.0))
    assert res.model.min() >= 0.0 and np.ptp(res.model) > 100.0
    chi2 = float(np.mean(((res.gz_pred - survey.gz) / survey.std) ** 2))
    assert chi2 < 3.0
    assert np.corrcoef(res.model, true)[0, 1] > 0.5
