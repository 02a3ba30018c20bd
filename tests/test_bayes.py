"""Bayesian GemPy gravity: conjugate posterior (NUTS, SVI), likelihood densities,
prior predictive, ArviZ output, the GemPy mesh pipeline and (slow) recovery."""

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
    torch.set_num_threads(1)  # tiny problems: threads only add overhead on a shared machine
    yield
    torch.set_num_threads(n)


def _linear_case(sigma=0.05, seed=0):
    # fixed lithology on a tiny mesh: unit 1 a shallow western layer, unit 3 a north-eastern
    # block, unit 2 the rest; g_z is linear in the three unit densities
    mesh = PrismMesh.from_tensor(np.full(5, 200.0), np.full(5, 200.0), np.full(4, 150.0),
                                 origin=(0.0, 0.0, -600.0))
    c = mesh.cell_centers
    W = np.zeros((mesh.n_cells, 3))
    west = (c[:, 0] < 500) & (c[:, 2] > -150)
    east = (c[:, 0] > 500) & (c[:, 1] > 500) & (c[:, 2] > -300)
    W[:, 0] = west
    W[:, 1] = ~west & ~east
    W[:, 2] = east
    st = np.stack(np.meshgrid(np.linspace(50, 950, 4), np.linspace(50, 950, 3), [1.0],
                              indexing="ij"), -1).reshape(-1, 3)
    fw = B.LinearUnitForward.from_membership(mesh, Survey(st), W)
    truth = np.array([150.0, -250.0, 300.0])
    rng = np.random.default_rng(seed)
    d = fw(T(truth)).numpy() + sigma * rng.standard_normal(st.shape[0])
    return fw, Survey(st, gz=d, std=sigma)


def _closed_form(A, d, sigma, m0, s0):
    S0i = np.diag(1.0 / np.asarray(s0) ** 2)
    P = S0i + A.T @ A / sigma ** 2
    S = np.linalg.inv(P)
    m = S @ (S0i @ m0 + A.T @ d / sigma ** 2)
    return m, S


def test_conjugate_posterior_nuts_and_svi():
    fw, sv = _linear_case()
    m0, s0 = np.array([100.0, -200.0, 200.0]), np.array([100.0, 100.0, 150.0])
    m_true, S_true = _closed_form(fw.A.numpy(), sv.gz, 0.05, m0, s0)
    sd_true = np.sqrt(np.diag(S_true))
    corr_true = S_true / np.outer(sd_true, sd_true)
    assert np.max(np.abs(corr_true - np.eye(3))) > 0.3  # a correlated posterior: a real test
    model = B.make_model(fw, B.PriorSpec(densities=B.normal(m0, s0)), B.GaussianLikelihood(),
                         sv)

    idata = B.run_nuts(model, num_samples=300, warmup=200, chains=2, seed=1, num_prior=0,
                       full_mass=True, progress=False)
    x = idata.posterior["densities"].values.reshape(-1, 3)
    ess = az.ess(idata, var_names=["densities"])["densities"].values
    se = sd_true / np.sqrt(ess)
    assert np.all(np.abs(x.mean(0) - m_true) < 4 * se)
    # std: relative Monte Carlo error of a std estimate ~ 1/sqrt(2 ESS)
    assert np.all(np.abs(x.std(0) / sd_true - 1) < 4 / np.sqrt(2 * ess))
    np.testing.assert_allclose(np.corrcoef(x.T), corr_true, atol=0.12)
    assert int(idata.sample_stats["diverging"].sum()) == 0
    assert float(az.rhat(idata)["densities"].max()) < 1.02

    # SVI: a full-covariance Gaussian guide contains the exact posterior; what is left is
    # optimisation noise (stochastic ELBO gradients) plus the Monte Carlo error of the draws
    idata_s, _, losses = B.run_svi(model, guide="mvn", steps=2000, lr=0.05, num_samples=4000,
                                   seed=2, num_prior=0, progress=False)
    y = idata_s.posterior["densities"].values.reshape(-1, 3)
    assert losses[-100:].mean() < losses[:100].mean()
    assert np.all(np.abs(y.mean(0) - m_true) < 0.25 * sd_true)
    np.testing.assert_allclose(y.std(0) / sd_true, 1.0, atol=0.1)
    np.testing.assert_allclose(np.corrcoef(y.T), corr_true, atol=0.1)


def test_hierarchical_noise_non_centred_log_density():
    import pyro.poutine as poutine

    fw, sv = _linear_case()
    lik = B.HierarchicalNoise(sigma0=0.1, mu_scale=0.5, tau_scale=0.5)
    model = B.make_model(fw, B.PriorSpec(densities=B.normal([0, 0, 0], [100, 100, 100])), lik, sv,
                         alignment=B.OffsetAlignment(1.0, 2.0))
    n = sv.n_data
    vals = {"densities": T([150.0, -250.0, 300.0]), "noise_mu": T(-2.0), "noise_tau": T(0.3),
            "noise_z": T(np.linspace(-1, 1, n)), "offset": T(0.5)}
    tr = poutine.trace(poutine.condition(model, data=vals)).get_trace()
    tr.compute_log_prob()
    from scipy import stats

    sigma = np.exp(-2.0 + 0.3 * np.linspace(-1, 1, n))
    np.testing.assert_allclose(tr.nodes["sigma"]["value"].numpy(), sigma)
    pred = fw(vals["densities"]).numpy() + 0.5
    np.testing.assert_allclose(tr.nodes["gz_pred"]["value"].numpy(), pred)
    lp = (stats.norm.logpdf(sv.gz, pred, sigma).sum()
          + stats.norm.logpdf(np.linspace(-1, 1, n)).sum()
          + stats.norm.logpdf(-2.0, math.log(0.1), 0.5) + stats.halfnorm.logpdf(0.3, scale=0.5)
          + stats.norm.logpdf(0.5, 1.0, 2.0)
          + stats.norm.logpdf([150.0, -250.0, 300.0], 0, 100).sum())
    assert float(tr.log_prob_sum()) == pytest.approx(lp, rel=1e-10)


def test_student_t_and_reference_alignment():
    import pyro.poutine as poutine
    from scipy import stats

    fw, sv = _linear_case()
    model = B.make_model(fw, B.PriorSpec(densities=B.normal([0, 0, 0], [100, 100, 100])),
                         B.StudentTLikelihood(sigma=0.2, df=3.0), sv,
                         alignment=B.ReferenceAlignment("mean"))
    rho = T([100.0, -100.0, 50.0])
    tr = poutine.trace(poutine.condition(model, data={"densities": rho})).get_trace()
    pred = fw(rho).numpy()
    pred = pred - pred.mean() + sv.gz.mean()
    np.testing.assert_allclose(tr.nodes["gz_pred"]["value"].numpy(), pred)
    lp = tr.nodes["obs"]["fn"].log_prob(tr.nodes["obs"]["value"]).sum().item()
    assert lp == pytest.approx(stats.t.logpdf(sv.gz, 3.0, pred, 0.2).sum(), rel=1e-10)
    al = B.ReferenceAlignment(2)
    out = al(T([1.0, 2.0, 3.0]), T([5.0, 5.0, 10.0])).numpy()
    np.testing.assert_allclose(out, [8.0, 9.0, 10.0])


def test_prior_predictive_moments_and_netcdf(tmp_path):
    fw, sv = _linear_case()
    m0, s0 = np.array([100.0, -200.0, 200.0]), np.array([50.0, 50.0, 50.0])
    model = B.make_model(fw, B.PriorSpec(densities=B.normal(m0, s0)), B.GaussianLikelihood(0.5), sv)
    pp = B.prior_predictive(model, 2000, seed=3, progress=False)
    A = fw.A.numpy()
    sd = np.sqrt(np.einsum("ij,j,ij->i", A, s0 ** 2, A) + 0.25)
    z = (pp["obs"].mean(0) - A @ m0) / (sd / np.sqrt(2000))
    assert np.all(np.abs(z) < 4.5)
    np.testing.assert_allclose(pp["obs"].std(0) / sd, 1.0, atol=0.08)

    idata = B.run_nuts(model, num_samples=30, warmup=30, chains=2, seed=0, num_prior=20,
                       progress=False)
    for g in ("posterior", "prior", "prior_predictive", "posterior_predictive", "log_likelihood",
              "observed_data", "sample_stats"):
        assert g in idata.groups(), g
    assert idata.log_likelihood["obs"].shape == (2, 30, sv.n_data)
    # log-likelihood equals the Gaussian density of the stored prediction
    from scipy import stats

    ll = stats.norm.logpdf(sv.gz, idata.posterior_predictive["gz_pred"].values, 0.5)
    np.testing.assert_allclose(idata.log_likelihood["obs"].values, ll, rtol=1e-10)
    p = B.save_netcdf(idata, tmp_path / "run.nc")
    back = az.from_netcdf(p)
    np.testing.assert_allclose(back.posterior["densities"].values, idata.posterior["densities"].values)
    s = B.summarize(idata)
    assert s["divergences"] == 0 and np.isfinite(s["rms_misfit_mgal"])
    assert torch.zeros(2, 3).shape == (2, 3)


def test_bad_inputs():
    fw, sv = _linear_case()
    with pytest.raises(ValueError, match="densities"):
        B.make_model(fw, B.PriorSpec(densities=B.normal([0, 0], [1, 1])), B.GaussianLikelihood(), sv)
    with pytest.raises(ValueError, match="dip_index"):
        B.make_model(fw, B.PriorSpec(densities=B.normal([0, 0, 0], [1, 1, 1]),
                                     dips=B.normal([10], [10])), B.GaussianLikelihood(), sv)
    with pytest.raises(ValueError, match="> 0"):
        B.HierarchicalNoise(sigma0=0.0)
    with pytest.raises(ValueError, match="fixed geometry"):
        fw(T([1.0, 2.0, 3.0]), dips=T([1.0]))
    with pytest.raises(ValueError, match="guide"):
        model = B.make_model(fw, B.PriorSpec(densities=B.normal([0, 0, 0], [1, 1, 1])),
                             B.GaussianLikelihood(), sv)
        B.run_svi(model, guide="flow", steps=1, progress=False)


gp = pytest.importorskip("gempy")


def test_gempy_mesh_pipeline_smoke(tmp_path):
    # the full chain: GemPy dips + densities priors -> mesh forward -> hierarchical noise
    # with inferred offset -> NUTS (tiny) -> ArviZ + all figures
    from gempy_gravinv.cases.bayes import synthetic_contact

    c = synthetic_contact(n_cells=(4, 4, 3), n_stations=(3, 3), offset=2.0)
    sv = Survey(c["stations"], gz=c["gz"])
    fw = B.MeshForward(c["geo_model"], c["mesh"], sv, store="dense")
    pri = B.PriorSpec(densities=B.normal([230, -370], [150, 150]), dips=B.normal([10, 10], [10, 10]),
                      dip_index=[0, 1])
    model = B.make_model(fw, pri, B.HierarchicalNoise(0.05), sv, alignment=B.OffsetAlignment(0, 5))
    idata = B.run_nuts(model, num_samples=4, warmup=4, chains=1, max_tree_depth=3, num_prior=3,
                       progress=False)
    assert idata.posterior["dips"].shape == (1, 4, 2)
    assert idata.posterior["sigma"].shape == (1, 4, sv.n_data)
    assert list(idata.posterior.attrs["dip_index"]) == [0, 1]
    paths = B.plot_all(idata, tmp_path, locations=sv.locations, geo_model=c["geo_model"],
                       section_kwargs={"resolution": (8, 5), "n_draws": 2})
    assert len(paths) == 4 and all((tmp_path / p).exists() for p in paths)
    assert torch.is_grad_enabled() and torch.sum(torch.ones(2, 3), dim=1).shape == (2,)


def test_mesh_forward_refuses_far_stations_naming_no_option_it_lacks():
    from gempy_gravinv.cases.bayes import synthetic_contact

    c = synthetic_contact(n_cells=(4, 4, 3), n_stations=(3, 3), offset=0.0)
    far = np.asarray(c["stations"], float) + [1e6, 0.0, 0.0]  # 1000 km east: another coordinate system
    with pytest.raises(ValueError, match="farther from the mesh") as err:
        B.MeshForward(c["geo_model"], c["mesh"], Survey(far, gz=c["gz"]), store="dense")
    assert "Bayesian problem takes no stations" in str(err.value) and "--allow-outside-stations" not in str(err.value)


@pytest.mark.slow
def test_recovery_synthetic_gempy_model():
    # data from known dips and densities; NUTS on 2 chains covers the truth (90%) with R-hat < 1.01.
    # No datum offset here: with an offset, a common shift of both contrasts is nearly a
    # constant field on this small block and the posterior is a ridge (the offset belongs
    # to real data, where the absolute level is unknown).
    from gempy_gravinv.cases.bayes import synthetic_contact

    c = synthetic_contact(n_cells=(6, 6, 4), n_stations=(6, 6), dips=(18.0, 4.0),
                          densities=(200.0, -300.0), offset=0.0, noise=0.02, seed=5)
    sv = Survey(c["stations"], gz=c["gz"], std=0.02)
    fw = B.MeshForward(c["geo_model"], c["mesh"], sv, store="dense")
    pri = B.PriorSpec(densities=B.normal([230, -370], [150, 150]), dips=B.normal([10, 10], [10, 10]),
                      dip_index=[0, 1])
    model = B.make_model(fw, pri, B.GaussianLikelihood(), sv)
    # smaller steps at the sharp sigmoid edges of the lithology: few divergences
    idata = B.run_nuts(model, num_samples=1000, warmup=500, chains=2, max_tree_depth=6, seed=3,
                       num_prior=0, full_mass=True, progress=False, target_accept=0.9)
    s = B.summarize(idata)
    assert s["max_rhat"] < 1.01, s["table"]
    assert s["divergences"] <= 0.02 * 2000
    for name, truth in (("densities", c["truth"]["densities"]), ("dips", c["truth"]["dips"])):
        x = idata.posterior[name].values.reshape(-1, truth.size)
        lo, hi = np.percentile(x, [5, 95], axis=0)
        assert np.all((lo <= truth) & (truth <= hi)), (name, lo, hi, truth)


def test_cli_tharsis_case_and_config(tmp_path, capsys):
    import json

    import arviz as az

    from gempy_gravinv.cli import main

    out = tmp_path / "th"
    rc = main(["bayes", "--case", "tharsis-intrusion", "--subset", "8", "--samples", "3",
               "--warmup", "3", "--chains", "1", "--max-tree-depth", "2", "--prior-draws", "2",
               "--no-progress", "--no-figures", "-o", str(out)])
    assert rc == 0
    def strict(c):
        raise ValueError(f"summary.json is not strict JSON: {c}")

    s = json.loads((out / "summary.json").read_text(), parse_constant=strict)  # one chain: R-hat NaN -> null
    assert s["max_rhat"] is None
    assert s["n_stations"] == 8 and s["meta"]["unit_names"] == ["plutonite", "host_rock"]
    idata = az.from_netcdf(out / "posterior.nc")
    # plutonite relative to the host rock (the reference unit), station noise integrated out
    assert set(idata.posterior.data_vars) >= {"densities", "densities_rel", "dips", "offset", "noise_mu",
                                              "noise_tau", "sigma"}
    assert "noise_z" not in idata.posterior and list(idata.posterior["unit"].values) == ["plutonite", "host_rock"]
    # the Tharsis intrusion's priors: two unit density contrasts, in kg/m³
    assert idata.prior["densities"].values.shape[-1] == 2

    # config form: a user's GeoModel from GemPy CSVs and a stations CSV
    (tmp_path / "sp.csv").write_text("X,Y,Z,formation\n200,200,-300,top\n800,200,-300,top\n"
                                     "200,800,-300,top\n800,800,-300,top\n")
    (tmp_path / "ori.csv").write_text("X,Y,Z,azimuth,dip,polarity,formation\n500,500,-300,90,10,1,top\n")
    st = np.stack(np.meshgrid([200.0, 500.0, 800.0], [300.0, 700.0]), -1).reshape(-1, 2)
    rows = "\n".join(f"{x},{y},1.0,{0.1 * i:.3f},0.05" for i, (x, y) in enumerate(st))
    (tmp_path / "st.csv").write_text("x,y,z,gz,std\n" + rows + "\n")
    (tmp_path / "cfg.toml").write_text(
        '[model]\nextent = [0, 1000, 0, 1000, -600, 0]\nsurface_points = "sp.csv"\n'
        'orientations = "ori.csv"\n[stations]\nfile = "st.csv"\n[mesh]\nshape = [4, 4, 3]\n'
        '[priors]\ndensities_mean_kgm3 = [100.0, -100.0]\ndensities_std_kgm3 = [50.0, 50.0]\n'
        'dip_index = [0]\ndips_mean_deg = [10.0]\ndips_std_deg = [5.0]\n'
        '[likelihood]\nkind = "gaussian"\n[alignment]\nkind = "reference"\n')
    out2 = tmp_path / "cfg_out"
    rc = main(["bayes", "--config", str(tmp_path / "cfg.toml"), "--samples", "3", "--warmup", "2",
               "--chains", "1", "--max-tree-depth", "2", "--prior-draws", "2", "--no-progress",
               "--no-figures", "-o", str(out2)])
    assert rc == 0 and (out2 / "posterior.nc").exists()
    assert main(["bayes", "--config", str(tmp_path / "missing.toml"), "-o", str(out2)]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_example_script_runs(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "bayes_tharsis.py"
    spec = importlib.util.spec_from_file_location("bayes_tharsis_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--subset", "6", "--samples", "2", "--warmup", "2", "--chains", "1",
                     "--max-tree-depth", "2", "--prior-draws", "2", "--no-figures",
                     "-o", str(tmp_path)]) == 0
    assert (tmp_path / "posterior.nc").exists() and (tmp_path / "summary.csv").exists()
