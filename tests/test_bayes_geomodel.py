"""The Bayesian workflow on a GemPy user's own GeoModel (GemPy's ONE_FAULT_GRAVITY example).

Physics checked: the unit densities read from ``geophysics_input`` become contrasts
against the stated reference; our mesh forward reproduces the shape of GemPy's own
centered-grid gravity with the sign flipped (GemPy: negative over excess mass); NUTS on
synthetic data recovers the true dip and density inside their 90% intervals; the hard
lithology per draw equals GemPy's ``compute_model_at``; the posterior mean written back
into the GeoModel reproduces the posterior-mean parameters.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

gp = pytest.importorskip("gempy")
pytest.importorskip("pyro")
az = pytest.importorskip("arviz")

from gempy_gravinv import bayes as B  # noqa: E402

TRUE_DIP = 20.0  # deg, surface1's orientation, dipping east
TRUE_RHO = 1000.0  # kg/m³: surface2 (3.0 g/cm³) against the basement (2.0 g/cm³)
SIGMA = 0.005  # mGal


def one_fault_model(dip_deg: float = TRUE_DIP):
    """GemPy's ONE_FAULT_GRAVITY example, its surface1 orientation tilted east by ``dip_deg``."""
    from gempy.core.data.enumerators import ExampleModel

    gm = gp.generate_example_model(ExampleModel.ONE_FAULT_GRAVITY, compute_model=False)
    gm.interpolation_options.kernel_options.compute_condition_number = False
    d = np.radians(dip_deg)
    gp.modify_orientations(gm, slice=1, G_x=np.sin(d), G_y=0.0, G_z=np.cos(d))
    return gm


@pytest.fixture(scope="module")
def geo_model():
    from gempy_gravinv.geomodel import gempy_torch

    with gempy_torch(grads=False):  # the example builder switches GemPy to torch: keep that inside the guard
        return one_fault_model()


@pytest.fixture(scope="module")
def observed(geo_model):
    truth = B.from_geomodel(geo_model, densities={"surface2": 300.0}, n_cells=200)
    clean = truth.predict()
    return clean + np.random.default_rng(0).normal(0.0, SIGMA, clean.size)


@pytest.fixture(scope="module")
def run(geo_model, observed):
    """GemPy's compute_model on its PyTorch backend first (it leaves gradients off process-wide),
    then the user's lines: the problem by name and one call to sample."""
    import copy

    from gempy_engine.config import AvailableBackends
    from gempy_engine.core.backend_tensor import BackendTensor

    from gempy_gravinv.geomodel import restore_torch

    grad0 = torch.is_grad_enabled()
    gm = copy.deepcopy(geo_model)
    gm.geophysics_input = None
    gp.compute_model_at(gm, np.array([[100.0, 0.0, -50.0]]), engine_config=gp.data.GemPyEngineConfig(
        backend=gp.data.AvailableBackends.PYTORCH, dtype="float64"))
    try:
        assert not torch.is_grad_enabled()  # what GemPy leaves behind
        problem = B.from_geomodel(geo_model, gz=observed, std=SIGMA, n_cells=200,
                                  densities={"surface2": (800.0, 300.0)}, dips={"surface1": (15.0, 5.0)})
        idata = problem.run(chains=1, num_samples=30, warmup=20, max_tree_depth=3, num_prior=10, seed=1)
        assert not torch.is_grad_enabled()  # the process is left as it was found
    finally:  # undo GemPy's global switch for the other tests of the session
        BackendTensor.change_backend_gempy(engine_backend=AvailableBackends.numpy)
        restore_torch()
        torch.set_grad_enabled(grad0)
    return problem, idata


def test_densities_from_geophysics_input_are_contrasts(geo_model):
    p = B.from_geomodel(geo_model, densities={"surface2": 100.0}, n_cells=64)
    assert p.unit_names == ["fault1", "surface1", "surface2", "basement"]
    np.testing.assert_allclose(B.unit_densities_gcc(geo_model), [2.0, 2.0, 3.0, 2.0])
    np.testing.assert_allclose(p.unit_contrasts, [0.0, 0.0, 1000.0, 0.0])  # against the basement's 2.0 g/cm³
    q = B.from_geomodel(geo_model, densities={"surface2": 100.0}, n_cells=64, reference_density=2.67)
    np.testing.assert_allclose(q.unit_contrasts, [-670.0, -670.0, 330.0, -670.0])
    # a uniform density (surface2 at the reference) gives no anomaly on the mesh
    np.testing.assert_allclose(p.predict(densities={"surface2": 0.0}), 0.0, atol=1e-12)
    # superposition: g_z is linear in the contrast
    np.testing.assert_allclose(p.predict(densities={"surface2": 2000.0}), 2 * p.predict(), rtol=1e-10)


def test_sign_and_units_match_gempy_gravity(geo_model):
    """Our g_z (mGal, positive down, kg/m³ contrasts) against GemPy's own ``solutions.gravity``
    (mGal, negative over excess mass, absolute g/cm³) on the model's centered grid."""
    import copy

    from gempy_gravinv.geomodel import gempy_torch

    gm = copy.deepcopy(geo_model)
    with gempy_torch(grads=False):
        gm.grid.active_grids = gm.grid.GridTypes.CENTERED  # GemPy's gravity only (no 150x10x150 dense grid)
        sol = gp.compute_model(gm, engine_config=gp.data.GemPyEngineConfig(
            backend=gp.data.AvailableBackends.PYTORCH, dtype="float64"))
        g = sol.gravity
        g_gempy = np.asarray(g.detach().numpy() if torch.is_tensor(g) else g, dtype=float)
    # GemPy's kernel on the same centered grid, our sign and contrasts: equal up to the
    # constant the uniform 2 g/cm³ background adds at every station (same grid geometry)
    centered = B.from_geomodel(gm, densities={"surface2": 100.0}, forward="centered").predict()
    d = centered + g_gempy  # soft (ours, for gradients) vs hard (GemPy) lithology: a few % apart
    assert np.ptp(d) < 0.1 * np.ptp(g_gempy), (centered, g_gempy)
    assert np.corrcoef(centered, -g_gempy)[0, 1] > 0.95
    tz = gm.geophysics_input.tz
    tz = np.asarray(tz.detach().numpy() if torch.is_tensor(tz) else tz, dtype=float)
    background = 2.0 * tz.sum()  # GemPy's g for a uniform 2 g/cm³ (one kernel for every station, upward)
    np.testing.assert_allclose(d, background, rtol=0.005)  # the sign and the mGal-per-g/cm³ units agree
    # our prism mesh over the model extent (GemPy's grid here is a 20 m wide slab in y, so
    # only the sign is compared): a denser unit gives positive g_z
    ours = B.from_geomodel(geo_model, densities={"surface2": 100.0}, n_cells=400).predict()
    assert ours.min() > 0
    p = B.from_geomodel(geo_model, gz=g_gempy, std=0.01, gz_convention="gempy", densities={"surface2": 1.0},
                        n_cells=64)
    np.testing.assert_allclose(p.survey.gz, -g_gempy)


def test_priors_by_name_and_mask(geo_model):
    p = B.from_geomodel(geo_model, densities={"surface2": 1.0}, dips={"fault1": 5.0, "surface1": (10.0, 2.0)},
                        sp_z={"surface1": 3.0}, n_cells=64)
    assert p.dips.rows == [0, 1] and p.dips.labels == ["fault1", "surface1"]
    np.testing.assert_allclose(p.dips.mean, [63.43494882, 10.0])
    np.testing.assert_allclose(p.dips.std, [5.0, 2.0])
    assert p.sp_z.labels == ["surface1:0", "surface1:1", "surface1:2", "surface1:3"]
    np.testing.assert_allclose(p.sp_z.mean, [-50.0, -50.0, -60.0, -60.0])
    mask = geo_model.surface_points_copy.df.X.to_numpy() > 100
    q = B.from_geomodel(geo_model, densities={"surface2": 1.0}, sp_z=(mask, 2.0), n_cells=64)
    assert q.sp_z.rows == [1, 4, 5, 6]
    assert q.sp_z.labels == ["fault1", "surface1:0", "surface1:1", "surface2"]
    with pytest.raises(ValueError, match="surface 'nope'.*surface1"):
        B.from_geomodel(geo_model, dips={"nope": 1.0}, n_cells=64)
    with pytest.raises(ValueError, match="row indices are not accepted"):
        B.from_geomodel(geo_model, dips=(np.array([0, 1]), 1.0), n_cells=64)
    with pytest.raises(ValueError, match="unknown unit 'granite'"):
        B.from_geomodel(geo_model, densities={"granite": 1.0}, n_cells=64)
    with pytest.raises(ValueError, match="not identifiable"):
        B.from_geomodel(geo_model, densities=dict.fromkeys(p.unit_names, 100.0), offset=1.0, n_cells=64)
    with pytest.raises(ValueError, match="nothing is random"):
        B.from_geomodel(geo_model, n_cells=64)
    with pytest.raises(ValueError, match="no observed data"):
        p.model()


def test_one_fault_recovers_dip_and_density(run):
    problem, idata = run
    post = idata.posterior
    assert list(post["densities"].coords["unit"].values) == ["surface2"]
    assert list(post["dips"].coords["orientation"].values) == ["surface1"]
    assert post["densities"].attrs["units"].startswith("kg/m")
    assert not any(str(v).endswith("_decentered") for v in post.data_vars)
    for var, truth in (("densities", TRUE_RHO), ("dips", TRUE_DIP)):
        lo, hi = np.percentile(post[var].values.ravel(), [5, 95])
        assert lo < truth < hi, (var, lo, hi)
    # the data pin the density far tighter than its prior (300 kg/m³)
    assert float(post["densities"].std()) < 60.0
    assert {"log_likelihood", "prior", "prior_predictive", "posterior_predictive", "observed_data"} <= set(
        idata.groups())
    loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo)


def test_hard_lithology_and_write_back(run, geo_model, tmp_path):
    from gempy_gravinv.geomodel import TorchGeoModel, gempy_lithology_ids

    problem, idata = run
    f = B.lithology_fields(problem, idata, n_draws=4, resolution=(20, 2, 10))
    assert set(np.unique(f["ids"])) <= {1, 2, 3, 4}
    np.testing.assert_allclose(f["prob"].sum(axis=0), 1.0)
    assert f["entropy"].min() >= 0 and f["entropy"].max() <= np.log(4)
    # GemPy's own ids at the model's current parameters == ours with GemPy's sigmoid
    slope = float(geo_model.interpolation_options.sigmoid_slope)
    tg = TorchGeoModel(geo_model, f["points"], sigmoid_slope=slope)
    with torch.no_grad():
        ours = np.rint(tg.soft_ids().numpy())
    np.testing.assert_array_equal(ours, gempy_lithology_ids(geo_model, f["points"]))
    # the posterior mean written back into the GeoModel
    gm2 = B.posterior_geomodel(problem, idata)
    tg2 = TorchGeoModel(gm2, f["points"][:2])
    np.testing.assert_allclose(tg2.dips_deg[1], float(idata.posterior["dips"].mean()), atol=1e-6)
    np.testing.assert_allclose(B.unit_densities_gcc(gm2)[2], 2.0 + float(idata.posterior["densities"].mean()) / 1e3)
    np.testing.assert_allclose(B.unit_densities_gcc(geo_model), [2.0, 2.0, 3.0, 2.0])  # the user's model untouched
    paths = B.plot_arviz(idata, tmp_path) + B.plot_lithology_gempy(f, tmp_path)
    names = {p.split("/")[-1] for p in paths}
    assert {"trace.png", "ppc.png", "pair.png", "lithology_mean.png", "lithology_entropy.png"} <= names


def test_compare_models_and_summary(run, geo_model, observed):
    _, idata = run
    # the same structure held at a dip 60° off the truth: predicts the stations worse, ranked second
    wrong = B.from_geomodel(geo_model, gz=observed, std=SIGMA, n_cells=200,
                            densities={"surface2": (800.0, 300.0)}, dips={"surface1": (TRUE_DIP - 60.0, 1.0)})
    idata_wrong = wrong.run(chains=1, num_samples=30, warmup=20, max_tree_depth=3, num_prior=10, seed=1)
    table = B.compare_models({"fault": idata, "dip_off": idata_wrong})
    assert list(table.columns[:2]) == ["rank", "elpd_loo"]
    assert table.index[0] == "fault"
    assert table.loc["dip_off", "elpd_diff"] > table.loc["dip_off", "dse"]
    same = B.compare_models({"fault": idata, "same": idata.copy()})
    np.testing.assert_allclose(same["elpd_diff"].values, 0.0, atol=1e-9)
    with pytest.raises(ValueError, match="at least two"):
        B.compare_models({"one": idata})
    s = B.summarize_problem(idata)
    assert s["shrinkage"]["densities[surface2]"] < 0.2
    assert "densities[surface2]" not in s["unconstrained"]


@pytest.mark.slow
def test_one_fault_long_chains(geo_model, observed):
    problem = B.from_geomodel(geo_model, gz=observed, std=SIGMA, n_cells=2000,
                              densities={"surface2": (800.0, 300.0)}, dips={"surface1": (15.0, 5.0)})
    truth = B.from_geomodel(geo_model, densities={"surface2": 1.0}, n_cells=2000).predict()
    problem = problem.with_data(truth + np.random.default_rng(0).normal(0.0, SIGMA, truth.size), SIGMA)
    idata = problem.run(chains=2, num_samples=300, warmup=300, seed=3)
    s = B.summarize(idata)
    assert s["max_rhat"] < 1.05 and s["divergences"] < 0.01 * 600
    for var, truth_v in (("densities", TRUE_RHO), ("dips", TRUE_DIP)):
        lo, hi = np.percentile(idata.posterior[var].values.ravel(), [5, 95])
        assert lo < truth_v < hi, (var, lo, hi)


def test_cli_geomodel_tiny_run(tmp_path):
    """``gempy-gravinv bayes --geomodel MODEL.gempy --stations FILE`` end to end (tiny), faults and two series."""
    import json

    import xarray as xr

    from gempy_gravinv import io as gio
    from gempy_gravinv.cli import main
    from gempy_gravinv.geomodel import gempy_torch, load_geomodel

    gm = load_geomodel("gempy:one_fault_gravity").geo_model  # a fault series and a two-surface series
    assert not gm.interpolation_options.kernel_options.compute_condition_number  # no print on every solve
    p = B.from_geomodel(gm, densities={"surface2": 1.0}, n_cells=100)
    gio.write_csv(tmp_path / "gz.csv", p.survey.locations, p.predict(densities={"surface2": 900.0}), 0.01)
    # the same model as a .gempy file (GemPy cannot save its centered grid: stations come from the CSV,
    # densities from --unit-densities)
    gm.grid._centered_grid = None
    gm.geophysics_input = None
    with gempy_torch(grads=False):
        gm.grid.active_grids = gm.grid.GridTypes.DENSE
        gp.save_model(gm, str(tmp_path / "one_fault.gempy"), validate_serialization=False)
    out = tmp_path / "out"
    rc = main(["bayes", "--geomodel", str(tmp_path / "one_fault.gempy"), "--stations", str(tmp_path / "gz.csv"),
               "--unit-densities", "2,2,3,2", "--density", "surface2=300", "--n-cells", "100", "--chains", "1",
               "--samples", "6", "--warmup", "4", "--prior-draws", "3", "--max-tree-depth", "3", "--no-figures",
               "--no-progress", "-o", str(out)])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["meta"]["unit_names"] == ["fault1", "surface1", "surface2", "basement"]
    assert s["meta"]["reference_density_gcc"] == 2.0
    post = xr.open_dataset(out / "posterior.nc", group="posterior")
    assert list(post["unit"].values) == ["surface2"]
    # density-only problem, linear and well determined: the posterior sits near the truth
    assert abs(float(post["densities"].mean()) - 900.0) < 60.0
    bad = ["bayes", "--geomodel", "gempy:one_fault_gravity", "--stations", str(tmp_path / "gz.csv"),
           "--density", "surface2", "-o", str(tmp_path / "bad")]
    assert main(bad) == 2  # a prior without its std: one clear line, exit status 2


@pytest.mark.slow
def test_example_one_fault(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "bayes_one_fault.py"
    spec = importlib.util.spec_from_file_location("bayes_one_fault", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--samples", "60", "--warmup", "60", "--chains", "2", "--n-cells", "400",
                     "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "OUTSIDE" not in out
    assert (tmp_path / "posterior.nc").exists() and (tmp_path / "figures" / "lithology_entropy.png").exists()


def test_non_finite_unit_densities_are_refused_by_name():
    import gempy as gp
    from gempy.core.data.enumerators import ExampleModel

    from gempy_gravinv import bayes as B

    gm = gp.generate_example_model(ExampleModel.ONE_FAULT_GRAVITY, compute_model=False)
    with pytest.raises(ValueError, match=r"unit_densities \(g/cm³\).*NaN"):
        B.from_geomodel(gm, unit_densities=[2.0, float("nan"), 2.5, 2.7])


def test_a_user_s_geomodel_mistakes_are_named(geo_model, observed, tmp_path):
    from gempy_gravinv.cli import main
    from gempy_gravinv.cli._bayes_geomodel import parse_named_priors
    from gempy_gravinv.geomodel import load_geomodel

    with pytest.raises(ValueError, match="must lie in \\[-180, 180\\]"):  # a dip is an angle
        B.from_geomodel(geo_model, densities={"surface2": 1.0}, dips={"surface1": (400.0, 5.0)}, n_cells=64)
    with pytest.raises(ValueError, match="'surface2' is given twice"):
        parse_named_priors(["surface2=300", "surface2=1,500"], "--density")
    with pytest.raises(ValueError, match="µGal"):  # data 1000 x too large for any contrast in the model
        B.from_geomodel(geo_model, gz=observed * 1e3, std=SIGMA * 1e3, densities={"surface2": 1.0}, n_cells=64)
    for name, content in (("empty.gempy", b""), ("text.gempy", b"not a zip"), ("bad.json", b"{")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=f"geomodel file .*{name}"):
            load_geomodel(str(tmp_path / name))
    out = tmp_path / "o"
    assert main(["bayes", "--case", "tharsis-intrusion", "--density", "intrusion=50", "-o", str(out)]) == 2
    assert main(["bayes", "--geomodel", "gempy:one_fault_gravity", "--forward", "centered", "--density",
                 "surface2=300", "-o", str(out)]) == 2
    assert main(["bayes", "--geomodel", "gempy:one_fault_gravity", "--unit-densities", "2,abc,3,2",
                 "--density", "surface2=300", "-o", str(out)]) == 2
    assert not out.exists()
