"""The Bayesian engine: process state after GemPy's PyTorch backend, the marginal station
noise, identifiable densities (closed-form posterior), complete and named ArviZ output
(LOO, energy), parallel chains, the constraint and fit reports, the Tharsis case."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pyro = pytest.importorskip("pyro")
az = pytest.importorskip("arviz")

from gempy_gravinv import PrismMesh, Survey  # noqa: E402
from gempy_gravinv import bayes as B  # noqa: E402

T = lambda v: torch.as_tensor(np.asarray(v, dtype=np.float64))  # noqa: E731


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _forward():
    # fixed lithology: unit 1 a shallow western layer, unit 3 a north-eastern block, unit 2 the rest
    mesh = PrismMesh.from_tensor(np.full(5, 200.0), np.full(5, 200.0), np.full(4, 150.0),
                                 origin=(0.0, 0.0, -600.0))
    c = mesh.cell_centers
    W = np.zeros((mesh.n_cells, 3))
    west = (c[:, 0] < 500) & (c[:, 2] > -150)
    east = (c[:, 0] > 500) & (c[:, 1] > 500) & (c[:, 2] > -300)
    W[:, 0], W[:, 1], W[:, 2] = west, ~west & ~east, east
    st = np.stack(np.meshgrid(np.linspace(50, 950, 4), np.linspace(50, 950, 3), [1.0],
                              indexing="ij"), -1).reshape(-1, 3)
    return B.LinearUnitForward.from_membership(mesh, Survey(st), W, unit_names=["sand", "shale", "ore"]), st


def test_marginal_noise_log_lik_matches_numerical_integral():
    from scipy import integrate, stats

    obs = np.array([0.3, -2.0, 7.5, 0.0])
    pred = np.array([0.1, 0.4, 0.2, 0.0])
    for mu, tau in ((math.log(0.5), 0.4), (math.log(2.0), 1.2), (0.0, 0.05)):
        got = B.marginal_noise_log_lik(T(obs), T(pred), T(mu), T(tau)).numpy()
        for i in range(obs.size):
            def f(z, i=i, mu=mu, tau=tau):
                return stats.norm.pdf(z) * stats.norm.pdf(obs[i], pred[i], math.exp(mu + tau * z))

            ref = integrate.quad(f, -12, 12, epsabs=0, epsrel=1e-12, limit=200)[0]
            assert got[i] == pytest.approx(math.log(ref), abs=1e-8), (mu, tau, i)
    # tau -> 0: the Gaussian with sigma = exp(mu)
    got = B.marginal_noise_log_lik(T(obs), T(pred), T(0.2), T(0.0)).numpy()
    np.testing.assert_allclose(got, stats.norm.logpdf(obs, pred, math.exp(0.2)), rtol=1e-10)


def test_reference_unit_offset_conjugate_posterior_parallel_chains():
    # g_z linear in (contrasts relative to the reference unit, offset): the posterior is
    # Gaussian with a closed form; NUTS in two processes must reproduce it
    fw, st = _forward()
    sigma = 0.05
    truth = np.array([150.0, -250.0, 300.0])
    rng = np.random.default_rng(0)
    A = fw.A.numpy()
    d = A @ (truth - truth[1]) + 3.0 + sigma * rng.standard_normal(st.shape[0])
    sv = Survey(st, gz=d, std=sigma)
    m0, s0 = np.array([100.0, -200.0, 200.0]), np.array([100.0, 100.0, 150.0])
    pri = B.PriorSpec(densities=B.normal(m0, s0), reference_unit="shale")
    model = B.make_model(fw, pri, B.GaussianLikelihood(), sv, alignment=B.OffsetAlignment(0.0, 5.0))
    # closed form over theta = (rho_sand - rho_shale, rho_ore - rho_shale, offset)
    D = np.array([[1.0, -1.0, 0.0], [0.0, -1.0, 1.0]])
    P0 = np.zeros((3, 3))
    P0[:2, :2] = np.linalg.inv(D @ np.diag(s0 ** 2) @ D.T)
    P0[2, 2] = 1 / 25.0
    mu0 = np.r_[D @ m0, 0.0]
    G = np.c_[A[:, [0, 2]], np.ones(len(d))]
    S = np.linalg.inv(P0 + G.T @ G / sigma ** 2)
    m = S @ (P0 @ mu0 + G.T @ d / sigma ** 2)
    sd = np.sqrt(np.diag(S))

    idata = B.run_nuts(model, num_samples=150, warmup=150, chains=2, seed=3, num_prior=200, progress=False,
                       processes=2)
    assert idata.posterior.attrs["processes"] == 2 and idata.posterior.attrs["full_mass"] == 1
    x = np.c_[idata.posterior["densities_rel"].values.reshape(-1, 2), idata.posterior["offset"].values.ravel()]
    ess = np.r_[az.ess(idata, var_names=["densities_rel"])["densities_rel"].values,
                float(az.ess(idata, var_names=["offset"])["offset"])]
    assert np.all(np.abs(x.mean(0) - m) < 4 * sd / np.sqrt(ess)), (x.mean(0), m)
    assert np.all(np.abs(x.std(0) / sd - 1) < 4 / np.sqrt(2 * ess))
    assert list(idata.posterior["unit_rel"].values) == ["sand", "ore"]
    # the reference unit sits at contrast 0 in the recorded densities
    np.testing.assert_array_equal(idata.posterior["densities"].sel(unit="shale").values, 0.0)
    # chains started apart (dispersed Laplace draws), not from one point
    first = idata.posterior["offset"].values[:, 0]
    assert abs(first[0] - first[1]) > 1e-9
    # constraint report: the relative contrasts are informed, nothing is left at the prior
    tab = B.constraint_table(idata)
    assert set(tab.index) == {"densities_rel[sand]", "densities_rel[ore]", "offset"}
    assert tab["constrained"].all() and (tab["ratio"] < 0.2).all()


def test_parallel_chains_equal_sequential_chains():
    fw, st = _forward()
    d = fw(T([100.0, -100.0, 200.0])).numpy()
    sv = Survey(st, gz=d + 0.1 * np.random.default_rng(1).standard_normal(d.size), std=0.1)
    model = B.make_model(fw, B.PriorSpec(densities=B.normal([0, 0, 0], [300, 300, 300])), B.GaussianLikelihood(), sv)
    kw = dict(num_samples=15, warmup=15, chains=2, seed=7, num_prior=0, progress=False)
    a = B.run_nuts(model, processes=2, **kw)
    b = B.run_nuts(model, processes=1, **kw)
    np.testing.assert_allclose(a.posterior["densities"].values, b.posterior["densities"].values, rtol=1e-8)
    np.testing.assert_array_equal(a.sample_stats["tree_depth"].values, b.sample_stats["tree_depth"].values)


def test_inference_data_complete_named_loo_energy(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from scipy import integrate, stats

    fw, st = _forward()
    rng = np.random.default_rng(4)
    d = fw(T([120.0, -150.0, 250.0])).numpy() + 0.2 * rng.standard_normal(st.shape[0])
    sv = Survey(st, gz=d)
    names = [f"ST{i:03d}" for i in range(sv.n_data)]
    pri = B.PriorSpec(densities=B.normal([100, -100, 200], [100, 100, 100]), reference_unit=1)
    model = B.make_model(fw, pri, B.HierarchicalNoise(0.2, marginal=True), sv,
                         alignment=B.OffsetAlignment(0.0, 2.0), station_names=names)
    idata = B.run_nuts(model, num_samples=50, warmup=50, chains=2, seed=0, num_prior=40, progress=False,
                       max_tree_depth=4)
    for g in ("posterior", "prior", "prior_predictive", "posterior_predictive", "log_likelihood",
              "observed_data", "sample_stats"):
        assert g in idata.groups(), g
    assert list(idata.posterior["unit"].values) == ["sand", "shale", "ore"]
    assert list(idata.log_likelihood["station"].values) == names
    assert "noise_z" not in idata.posterior and idata.posterior["sigma"].dims == ("chain", "draw", "station")
    for g in ("posterior", "prior", "posterior_predictive", "prior_predictive", "observed_data"):
        for v, da in idata[g].data_vars.items():
            assert "units" in da.attrs, (g, v)
    assert idata.posterior["densities_rel"].attrs["units"] == "kg/m³"
    assert idata.observed_data["x"].attrs["units"] == "m"
    for k in ("energy", "lp", "tree_depth", "step_size", "diverging", "n_steps", "acceptance_rate"):
        assert idata.sample_stats[k].shape == (2, 50), k
    assert idata.sample_stats["diverging"].dtype == bool
    assert np.all(idata.sample_stats["tree_depth"].values >= 1)
    # the energy is the Hamiltonian: at least the potential, E = -lp_start + kinetic
    bfmi = az.bfmi(idata)
    assert np.all(np.isfinite(bfmi)) and np.all(bfmi > 0.3)
    az.plot_energy(idata)
    matplotlib.pyplot.close("all")
    # pointwise log-likelihood = the station noise integrated out, checked by quadrature
    post = idata.posterior
    c, k, i = 1, 17, 5
    mu, tau = float(post["noise_mu"][c, k]), float(post["noise_tau"][c, k])
    pred = float(idata.posterior_predictive["gz_pred"][c, k, i])
    f = lambda z: stats.norm.pdf(z) * stats.norm.pdf(d[i], pred, math.exp(mu + tau * z))  # noqa: E731
    ref = math.log(integrate.quad(f, -12, 12, epsrel=1e-12, limit=200)[0])
    assert float(idata.log_likelihood["obs"][c, k, i]) == pytest.approx(ref, abs=1e-6)
    loo = az.loo(idata, pointwise=True)
    # 12 stations, 100 draws: every station is influential; at most one k above 0.7
    assert np.isfinite(loo.elpd_loo) and float(np.mean(loo.pareto_k.values > 0.7)) <= 0.1
    p = B.save_netcdf(idata, tmp_path / "run.nc")
    back = az.from_netcdf(p)
    assert list(back.posterior["unit_rel"].values) == ["sand", "ore"]
    assert back.posterior["offset"].attrs["units"] == "mGal"
    assert back.posterior.attrs["reference_unit"] == "shale"
    assert np.isfinite(az.loo(back).elpd_loo)


def test_svi_output_has_the_same_named_dims():
    fw, st = _forward()
    d = fw(T([120.0, -150.0, 250.0])).numpy()
    sv = Survey(st, gz=d, std=0.1)
    model = B.make_model(fw, B.PriorSpec(densities=B.normal([100, -100, 200], [100, 100, 100])),
                         B.GaussianLikelihood(), sv)
    idata, _, _ = B.run_svi(model, steps=30, num_samples=20, num_prior=5, progress=False)
    da = idata.posterior["densities"]
    assert da.dims == ("chain", "draw", "unit") and da.shape == (1, 20, 3)
    assert list(da["unit"].values) == ["sand", "shale", "ore"]
    assert not any(d.startswith("densities_dim") for d in idata.posterior.dims)
    assert idata.prior["densities"].dims == ("chain", "draw", "unit")


def test_fit_report_detects_unfit_noise_and_structured_residual():
    # 64 stations over the block; the data carry a regional plane the model cannot make
    st = np.stack(np.meshgrid(np.linspace(50, 950, 8), np.linspace(50, 950, 8), [1.0],
                              indexing="ij"), -1).reshape(-1, 3)
    mesh = PrismMesh.from_tensor(np.full(5, 200.0), np.full(5, 200.0), np.full(4, 150.0),
                                 origin=(0.0, 0.0, -600.0))
    W = np.zeros((mesh.n_cells, 3))
    W[:, 1] = 1.0
    W[mesh.cell_centers[:, 2] > -150, :] = [1.0, 0.0, 0.0]
    W[(mesh.cell_centers[:, 0] > 500) & (mesh.cell_centers[:, 2] <= -150), :] = [0.0, 0.0, 1.0]
    fw = B.LinearUnitForward.from_membership(mesh, Survey(st), W)
    rng = np.random.default_rng(2)
    clean = fw(T([100.0, 0.0, 300.0])).numpy()
    noise = 0.05 * rng.standard_normal(len(st))
    pri = B.PriorSpec(densities=B.normal([100, 0, 300], [50, 1e-3, 50]))
    good = B.make_model(fw, pri, B.HierarchicalNoise(0.05, marginal=True), Survey(st, gz=clean + noise))
    bad = B.make_model(fw, pri, B.HierarchicalNoise(0.05, marginal=True),
                       Survey(st, gz=clean + noise + 2e-3 * (st[:, 0] - 500.0)))
    kw = dict(num_samples=30, warmup=30, chains=1, num_prior=0, progress=False, max_tree_depth=4)
    r_good = B.fit_report(B.run_nuts(good, **kw))
    r_bad = B.fit_report(B.run_nuts(bad, **kw))
    assert r_good["fits_stated_noise"], r_good["messages"]
    assert r_good["noise_ratio"] < 1.5
    assert not r_bad["fits_stated_noise"]
    assert r_bad["noise_ratio"] > 3 and r_bad["trend_r2"] > 0.3 and r_bad["morans_p"] < 0.01
    assert any("stated noise" in m for m in r_bad["messages"])
    assert any("regional trend" in m for m in r_bad["messages"])


def test_offset_without_reference_warns_and_bad_reference(caplog):
    fw, st = _forward()
    sv = Survey(st, gz=np.zeros(len(st)), std=0.1)
    with caplog.at_level("WARNING"):
        B.make_model(fw, B.PriorSpec(densities=B.normal([0, 0, 0], [1, 1, 1])), B.GaussianLikelihood(), sv,
                     alignment=B.OffsetAlignment())
    assert "reference_unit" in caplog.text
    with pytest.raises(ValueError, match="not a unit name"):
        B.make_model(fw, B.PriorSpec(densities=B.normal([0, 0, 0], [1, 1, 1]), reference_unit="granite"),
                     B.GaussianLikelihood(), sv)
    with pytest.raises(ValueError, match="station_names"):
        B.make_model(fw, B.PriorSpec(densities=B.normal([0, 0, 0], [1, 1, 1])), B.GaussianLikelihood(), sv,
                     station_names=["a"])
    with pytest.raises(ValueError, match="unit_names"):
        B.make_model(fw, B.PriorSpec(densities=B.normal([0, 0, 0], [1, 1, 1]), unit_names=["a", "b"]),
                     B.GaussianLikelihood(), sv)


gp = pytest.importorskip("gempy")


def test_runs_after_gempy_pytorch_compute_model_and_leave_state_as_found():
    # GemPy's PyTorch backend switches gradients off process-wide and replaces torch
    # functions; the runners must work anyway and leave the process as they found it
    from gempy_gravinv.cases.bayes import synthetic_contact
    from gempy_gravinv.geomodel import restore_torch

    c = synthetic_contact(n_cells=(4, 4, 3), n_stations=(3, 3))
    sv = Survey(c["stations"], gz=c["gz"], std=0.05)
    fw = B.MeshForward(c["geo_model"], c["mesh"], sv, store="dense")
    pri = B.PriorSpec(densities=B.normal([230, -370], [150, 150]), dips=B.normal([10, 10], [10, 10]),
                      dip_index=[0, 1], dip_names=["west", "east"])
    model = B.make_model(fw, pri, B.GaussianLikelihood(), sv)
    try:
        gp.compute_model(c["geo_model"],
                         engine_config=gp.data.GemPyEngineConfig(backend=gp.data.AvailableBackends.PYTORCH))
        assert not torch.is_grad_enabled()  # the state the bug report describes
        before = dict(vars(torch))
        pp = B.prior_predictive(model, 2, progress=False)
        assert pp["gz_pred"].shape == (2, sv.n_data)
        idata = B.run_nuts(model, num_samples=3, warmup=3, chains=1, max_tree_depth=2, num_prior=0,
                           progress=False, init="median")
        assert np.all(np.isfinite(idata.posterior["dips"].values))
        assert list(idata.posterior["orientation"].values) == ["west", "east"]
        assert not torch.is_grad_enabled()
        assert all(vars(torch).get(k) is v for k, v in before.items())
    finally:
        restore_torch()
        torch.set_grad_enabled(True)


def test_tharsis_priors_follow_the_tutorial():
    from gempy_gravinv._constants import gcc_to_kgm3
    from gempy_gravinv.cases.bayes import THARSIS_DENSITY_MEAN_GCC, THARSIS_UNIT_NAMES, tharsis_intrusion

    assert THARSIS_UNIT_NAMES == ("plutonite", "host_rock")
    np.testing.assert_allclose(gcc_to_kgm3(np.asarray(THARSIS_DENSITY_MEAN_GCC)), [2900 - 2670, 2300 - 2670])
    case = tharsis_intrusion(subset=6, n_cells=(2, 2, 2))
    pri = case.model.priors
    assert pri.reference_unit == "host_rock" and pri.relative_unit_names == ["plutonite"]
    # plutonite minus host rock: 230 - (-370) = 600 kg/m³, sd sqrt(2) * 150
    assert float(pri._rel_prior.loc[0]) == pytest.approx(600.0)
    assert float(pri._rel_prior.covariance_matrix[0, 0]) == pytest.approx(2 * 150.0 ** 2)
    assert case.model.likelihood.marginal and len(case.model.station_names) == 6


@pytest.mark.slow
def test_tharsis_intrusion_converges_with_defaults():
    # the acceptance run: 208 stations, default settings, 2 chains in 2 processes
    from gempy_gravinv.cases.bayes import tharsis_intrusion

    case = tharsis_intrusion()
    idata = B.run_nuts(case.model, progress=False)
    s = az.summary(idata, var_names=["densities_rel", "dips", "offset", "noise_mu", "noise_tau"])
    assert s["r_hat"].max() <= 1.01, s
    assert s["ess_bulk"].min() >= 400 and s["ess_tail"].min() >= 400, s
    assert idata.sample_stats["diverging"].mean() < 0.01
