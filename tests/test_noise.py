"""The noise level from the data: the evidence of a Matérn lattice field (``INRConfig.noise``).

Checked against the exact Gaussian marginal likelihood (the closed-form profile over the
noise factor is its maximum), against the noise that made the data, for the invariance a
physical estimate must have (stating the noise 3x too large gives the same estimated σ),
and for the errors and warnings a user meets.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from gempy_gravinv import PrismMesh, Survey, forward_gz
from gempy_gravinv.cases.synthetic import grf_field
from gempy_gravinv.inversion import INRConfig, invert_inr
from gempy_gravinv.inversion._linear import HeadPosterior
from gempy_gravinv.inversion._noise import profile_noise
from gempy_gravinv.inversion._problem import Problem

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHAPE, H = (14, 14, 7), 500.0
SIGMA = 0.2  # mGal, the noise that makes the data


def _exact_log_marginal(A, a0, b, lam, kappa):
    """log N(Bᵀb; 0, κ² I + Bᵀ A Aᵀ B / λ) with B an orthonormal basis orthogonal to the bias column."""
    q = a0 / np.linalg.norm(a0)
    B = np.linalg.svd(np.eye(len(b)) - np.outer(q, q))[0][:, :len(b) - 1]
    y = B.T @ b
    C = kappa**2 * np.eye(len(y)) + B.T @ A @ A.T @ B / lam
    _, logdet = np.linalg.slogdet(C)
    return -0.5 * (logdet + y @ np.linalg.solve(C, y) + len(y) * math.log(2 * math.pi))


def test_profile_is_the_maximum_of_the_exact_marginal_likelihood():
    rng = np.random.default_rng(0)
    n, f = 40, 60
    A = rng.normal(size=(n, f)) * np.exp(-np.arange(f) / 8)[None, :]  # a decaying spectrum, as a lattice has
    a0 = np.ones(n)
    b = A @ rng.normal(size=f) * 3.0 + 0.7 * rng.normal(size=n) + 2.0
    post = HeadPosterior(torch.as_tensor(A), torch.as_tensor(a0), torch.as_tensor(b), evidence_only=True)
    kappa, lam, ev, n_par = profile_noise(post, n - 1)
    best = _exact_log_marginal(A, a0, b, lam, kappa)
    for dk in (0.9, 0.97, 1.03, 1.1):
        for dl in (0.5, 0.8, 1.25, 2.0):
            assert _exact_log_marginal(A, a0, b, lam * dl, kappa * dk) < best
    # the closed form differs from the exact log density by a constant
    other = _exact_log_marginal(A, a0, b, 2 * lam, kappa)
    k2, mu2 = kappa**2, kappa**2 * 2 * lam
    s2, c2, bb = post.s2.numpy(), post.c.numpy() ** 2, float(post.bt @ post.bt)
    ev2 = -(n - 1) * math.log(kappa) - 0.5 * np.log1p(s2 / mu2).sum() - 0.5 * (bb - (c2 * s2 / (s2 + mu2)).sum()) / k2
    ev1 = -(n - 1) * math.log(kappa) - 0.5 * np.log1p(s2 / (k2 * lam)).sum() \
        - 0.5 * (bb - (c2 * s2 / (s2 + k2 * lam)).sum()) / k2
    assert ev1 - ev2 == pytest.approx(best - other, rel=1e-8)
    assert 0 < n_par < n - 1


@pytest.fixture(scope="module")
def smooth_case():
    """A smooth field that does not wrap around the mesh, stations over every column, known noise σ."""
    n = SHAPE
    f = grf_field(tuple(2 * k for k in n), H, 2500.0, 1.5, seed=5)
    f = f[n[0] // 2:n[0] // 2 + n[0], n[1] // 2:n[1] // 2 + n[1], n[2] // 2:n[2] // 2 + n[2]]
    model = 300.0 * (f - f.mean()).ravel(order="F")
    mesh = PrismMesh.from_tensor([H] * n[0], [H] * n[1], [H] * n[2], origin=(0.0, 0.0, -n[2] * H))
    xx, yy = np.meshgrid(mesh.source.cell_centers_x, mesh.source.cell_centers_y, indexing="xy")
    loc = np.column_stack([xx.ravel(), yy.ravel(), np.full(xx.size, 1.0)])
    gz = forward_gz(mesh, loc, model)
    noisy = gz + SIGMA * np.random.default_rng(11).normal(size=gz.size)
    return loc, noisy, mesh


def _estimate(survey, mesh):
    return Problem(survey, mesh, INRConfig(noise="report", progress=False)).noise_estimate


def test_the_estimate_finds_the_noise_that_made_the_data_whatever_was_stated(smooth_case):
    loc, gz, mesh = smooth_case
    right = _estimate(Survey(loc, gz=gz, std=SIGMA), mesh)
    assert 0.8 < right["std_median_mgal"] / SIGMA < 1.25
    assert right["scale"] == pytest.approx(right["std_median_mgal"] / SIGMA)
    wrong = _estimate(Survey(loc, gz=gz, std=3 * SIGMA), mesh)  # stated three times too large
    assert wrong["scale"] == pytest.approx(right["scale"] / 3, rel=1e-3)
    assert wrong["std_median_mgal"] == pytest.approx(right["std_median_mgal"], rel=1e-3)
    assert right["resolves_stations"] and right["effective_parameters"] < 0.5 * right["degrees_of_freedom"]


def test_noise_estimate_fits_data_given_without_std(smooth_case):
    loc, gz, mesh = smooth_case
    res = invert_inr(Survey(loc, gz=gz), mesh, INRConfig.spectral(noise="estimate", progress=False))
    est = res.noise_estimate
    assert est["used"] and 0.8 < est["std_median_mgal"] / SIGMA < 1.25
    np.testing.assert_allclose(res.survey.std, est["std_median_mgal"])  # one σ for all stations, in mGal
    chi2 = float(np.mean(((res.predicted - gz) / res.survey.std) ** 2))
    assert res.chi2 == pytest.approx(chi2, rel=1e-6)
    assert "noise_estimate" in res.metrics_report() and "noise=" in res.summary()
    assert est["stated_median_mgal"] is None and "(no std stated)" in est["rule"] and "stated σ" not in est["rule"]


def test_a_survey_without_std_names_the_way_out():
    mesh = PrismMesh.from_tensor([100.0] * 4, [100.0] * 4, [100.0] * 2, origin=(0, 0, -200))
    s = Survey([[50.0, 50.0, 1.0], [150.0, 50.0, 1.0]], gz=[0.1, 0.2])
    with pytest.raises(ValueError, match="noise='estimate'"):
        invert_inr(s, mesh, INRConfig(progress=False))
    with pytest.raises(ValueError, match="noise"):
        INRConfig(noise="guess").validate()


def test_too_few_stations_give_a_weak_estimate_and_say_so(caplog):
    mesh = PrismMesh.from_tensor([200.0] * 6, [200.0] * 6, [200.0] * 3, origin=(0, 0, -600))
    xx, yy = np.meshgrid([300.0, 600.0, 900.0], [300.0, 600.0, 900.0])
    loc = np.column_stack([xx.ravel(), yy.ravel(), np.full(9, 1.0)])
    model = np.zeros(mesh.n_cells)
    model[mesh.n_cells // 2] = 300.0
    gz = forward_gz(mesh, loc, model) + 0.01 * np.random.default_rng(0).normal(size=9)
    with caplog.at_level(logging.WARNING, logger="gempy_gravinv.inversion._noise"):
        est = _estimate(Survey(loc, gz=gz, std=0.01), mesh)
    assert "weak" in est["rule"] and any("weak" in r.message for r in caplog.records)


def test_cli_invert_estimates_the_noise_of_a_file_without_std(tmp_path, smooth_case):
    import json

    from gempy_gravinv import io as gio
    from gempy_gravinv.cli import main

    loc, gz, mesh = smooth_case
    csv, msh = tmp_path / "stations.csv", tmp_path / "mesh.msh"
    gio.write_csv(csv, loc, gz=gz)
    mesh.source.write_UBC(str(msh))
    out = tmp_path / "out"
    rc = main(["invert", str(csv), "--mesh", str(msh), "--preset", "spectral", "--noise", "estimate", "-o", str(out),
               "--no-figures", "--no-progress"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    est = m["noise_estimate"]
    assert est["used"] and m["config"]["noise"] == "estimate"
    assert 0.8 < est["std_median_mgal"] / SIGMA < 1.25


def test_the_estimate_follows_the_geometry_when_every_length_is_scaled(smooth_case):
    """x10 every length: g_z (and its σ) x10 for the same densities, so the factor on σ must not change."""
    loc, gz, mesh = smooth_case
    big = PrismMesh.from_tensor([10 * H] * SHAPE[0], [10 * H] * SHAPE[1], [10 * H] * SHAPE[2],
                                origin=(0.0, 0.0, -SHAPE[2] * 10 * H))
    one = _estimate(Survey(loc, gz=gz, std=SIGMA), mesh)
    ten = _estimate(Survey(10 * loc, gz=10 * gz, std=10 * SIGMA), big)
    assert ten["scale"] == pytest.approx(one["scale"], rel=1e-3)
    assert ten["length_m"] == pytest.approx(10 * one["length_m"]) and ten["nu"] == one["nu"]
