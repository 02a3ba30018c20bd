"""Outputs of an inversion of data mixing gravity components (gz + gzz): files, metrics, predict, resume.

Physics and arithmetic, not shapes: the data files carry each datum's component and
unit, and their values are the survey's and the model's; the per-component RMS misfit
and χ²/N equal a hand computation over each component's rows; ``predict`` of a
gradient equals the forward of :func:`~gempy_gravinv.make_operator` (and reproduces the
inversion's own predicted data); a checkpoint is refused for the same numbers read as
another component and accepted for the same survey, while a g_z survey keeps the key
it had before surveys carried components.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch

from gempy_gravinv import GravityOperator, Survey, make_operator
from gempy_gravinv._forward import forward_gz
from gempy_gravinv.cases.synthetic import single_block
from gempy_gravinv.inversion import INRConfig, invert_inr
from gempy_gravinv.inversion._checkpoint import data_key
from gempy_gravinv.metrics import evaluate, misfit_by_component
from gempy_gravinv.output import save_data_csv, save_data_netcdf, save_inversion

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(width=16, depth=2, progress=False, net_dtype="float64", weighting="sensitivity", lr=0.01,
            encoding_options={"n_frequencies": 2}, seed=0)
GZ_HEADER = ("# gempy_gravinv inversion data: x, y, z in metres (z up, elevation); observed, std, predicted and "
             "residual (= observed - predicted) g_z in mGal, positive downward (excess mass below -> positive)\n"
             "x,y,z,observed,std,predicted,residual\n")


@pytest.fixture(scope="module")
def mixed():
    """A block, gz and gzz at every station (rows of a station consecutive), noisy data, a short inversion."""
    case = single_block(noise_seed=0, shape=(6, 6, 3))
    loc = np.repeat(case.survey.locations, 2, axis=0)
    sv = Survey(loc, components=np.tile(["gz", "gzz"], case.survey.n_data))
    d = make_operator(case.mesh, sv, device="cpu").forward(torch.as_tensor(case.model)).numpy()
    std = np.empty(sv.n_data)
    for rows in sv.component_groups().values():
        std[rows] = 0.02 * np.abs(d[rows]).max()
    sv = sv.with_data(d + std * np.random.default_rng(5).standard_normal(sv.n_data), std)
    res = invert_inr(sv, case.mesh, INRConfig(**FAST, max_steps=40), true_model=case.model)
    return case, sv, res


# ------------------------------------------------------------------ files
def test_data_files_of_a_mixed_survey_carry_component_and_unit(mixed, tmp_path):
    case, sv, res = mixed
    written = save_inversion(res, tmp_path, figures=False)
    lines = (tmp_path / "inr_data.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#") and "in that unit" in lines[0] and "Eotvos" in lines[0]
    assert lines[1] == "x,y,z,component,unit,observed,std,predicted,residual"
    rows = [r.split(",") for r in lines[2:]]
    assert len(rows) == sv.n_data
    assert [r[3] for r in rows] == sv.components.tolist()
    assert [r[4] for r in rows] == ["mGal" if c == "gz" else "Eötvös" for c in sv.components]
    vals = np.array([[float(v) for v in r[:3] + r[5:]] for r in rows])
    np.testing.assert_allclose(vals[:, :3], sv.locations, rtol=1e-9)
    np.testing.assert_allclose(vals[:, 3], sv.data, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(vals[:, 4], sv.std, rtol=1e-9)
    np.testing.assert_allclose(vals[:, 5], res.predicted, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(vals[:, 6], vals[:, 3] - vals[:, 5], rtol=1e-8, atol=1e-9 * np.abs(vals[:, 3]).max())

    xr = pytest.importorskip("xarray")
    with xr.open_dataset(written["data_netcdf"]) as ds:
        assert ds["component"].values.tolist() == sv.components.tolist()
        assert ds["unit"].values.tolist() == sv.units.tolist()
        np.testing.assert_array_equal(ds["observed"].values, sv.data)
        np.testing.assert_array_equal(ds["residual"].values, sv.data - res.predicted)
        assert ds["predicted"].attrs["units"] == "mGal or Eötvös (see variable unit)"
        assert "gzz positive above excess mass" in ds.attrs["sign_convention"]
    saved = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert saved["rms_misfit_by_component"]["gzz"]["units"] == "Eötvös"
    # one gradient component: the one unit in the attribute
    gzz = sv.subset(sv.component_groups()["gzz"])
    p = save_data_netcdf(tmp_path / "gzz.nc", gzz, np.zeros(gzz.n_data))
    with xr.open_dataset(p) as ds:
        assert ds["observed"].attrs["units"] == "Eötvös" and set(ds["component"].values) == {"gzz"}


def test_gz_survey_files_keep_their_layout(mixed, tmp_path):
    case = mixed[0]
    pred = np.linspace(-1.0, 1.0, case.survey.n_data)
    for comps in (None, "gz"):  # components="gz" is a g_z survey too
        sv = Survey(case.survey.locations, gz=case.survey.gz, std=case.survey.std, components=comps)
        text = save_data_csv(tmp_path / f"{comps}.csv", sv, pred).read_text(encoding="utf-8")
        assert text.startswith(GZ_HEADER) and "gz," not in text
        body = np.loadtxt(tmp_path / f"{comps}.csv", delimiter=",", comments="#", skiprows=2)
        np.testing.assert_allclose(body[:, 6], case.survey.gz - pred, rtol=1e-8, atol=1e-12)
        xr = pytest.importorskip("xarray")
        with xr.open_dataset(save_data_netcdf(tmp_path / f"{comps}.nc", sv, pred)) as ds:
            assert set(ds.data_vars) == {"observed", "std", "predicted", "residual"}
            assert ds["observed"].attrs["units"] == "mGal"


# ------------------------------------------------------------------ metrics
def test_metrics_per_component_equal_a_hand_computation(mixed):
    case, sv, res = mixed
    comps, d, s, p = sv.components, sv.data, sv.std, res.predicted
    for rep in (res.metrics_report(), res.metrics, dataclasses.replace(res, metrics=None).metrics_report()):
        by = rep["rms_misfit_by_component"]
        assert list(by) == ["gz", "gzz"]
        for c, unit in (("gz", "mGal"), ("gzz", "Eötvös")):
            r = comps == c
            assert by[c]["units"] == unit and by[c]["n_data"] == int(r.sum())
            assert by[c]["value"] == pytest.approx(np.sqrt(np.mean((p[r] - d[r]) ** 2)), rel=1e-12)
            assert by[c]["chi2_per_datum"] == pytest.approx(np.mean(((p[r] - d[r]) / s[r]) ** 2), rel=1e-12)
    # the mGal key holds the mGal data only; χ²/N over all data (dimensionless) stays
    g = comps == "gz"
    assert res.metrics["rms_misfit_mgal"] == pytest.approx(np.sqrt(np.mean((p[g] - d[g]) ** 2)), rel=1e-12)
    assert res.metrics["chi2_per_datum"] == pytest.approx(np.mean(((p - d) / s) ** 2), rel=1e-12)
    # a g_z survey: the keys as before, nothing added
    gz = case.survey
    out = evaluate(pred=gz.gz + 0.1, survey=gz)
    assert "rms_misfit_by_component" not in out and out["rms_misfit_mgal"] == pytest.approx(0.1, rel=1e-9)
    assert "rms_misfit_by_component" not in evaluate(pred=[1.0, 2.0], obs=[1.5, 2.0], components="gz")
    # gradients alone: no mGal datum, no mGal RMS
    only = evaluate(pred=[1.0, 2.0], obs=[1.5, 2.0], components="gzz")
    assert only["rms_misfit_mgal"] is None
    assert only["rms_misfit_by_component"]["gzz"]["value"] == pytest.approx(np.sqrt(0.125))


def test_misfit_by_component_refuses_bad_input():
    with pytest.raises(ValueError, match="unknown gravity component 'gq'"):
        misfit_by_component([1.0, 2.0], [1.0, 2.0], ["gz", "gq"])
    with pytest.raises(ValueError, match="components has 1 entries but pred has 2"):
        misfit_by_component([1.0, 2.0], [1.0, 2.0], ["gz"])
    with pytest.raises(ValueError, match="survey=.*components=, not both"):
        evaluate(pred=[1.0], survey=Survey([[0.0, 0.0, 1.0]], gz=[1.0]), components="gz")


# ------------------------------------------------------------------ predict
def test_predict_a_component_equals_the_operator_forward(mixed):
    case, sv, res = mixed
    rho = torch.as_tensor(res.model)
    rng = np.random.default_rng(2)
    new = np.c_[rng.uniform(50, 550, 7), rng.uniform(50, 550, 7), rng.uniform(5, 60, 7)]
    want = GravityOperator(case.mesh, Survey(new, components="gzz"), device="cpu").forward(rho).numpy()
    np.testing.assert_allclose(res.predict(new, component="gzz"), want, rtol=1e-10, atol=1e-12 * np.abs(want).max())
    # one component per location, through make_operator; the survey's own layout gives back the fit
    comps = ["gz", "gzz", "gxz", "gz", "gyz", "gzz", "gx"]
    want = make_operator(case.mesh, Survey(new, components=comps), device="cpu").forward(rho).numpy()
    np.testing.assert_allclose(res.predict(new, comps), want, rtol=1e-10, atol=1e-12 * np.abs(want).max())
    np.testing.assert_allclose(res.predict(sv.locations, sv.components), res.predicted, rtol=1e-9,
                               atol=1e-10 * np.abs(res.predicted).max())
    # the default is g_z, in mGal positive down, as before
    np.testing.assert_allclose(res.predict(new), forward_gz(case.mesh, new, res.model), rtol=1e-12)
    with pytest.raises(ValueError, match="components has 2 entries but the survey has 7"):
        res.predict(new, ["gz", "gzz"])
    with pytest.raises(ValueError, match="unknown gravity component"):
        res.predict(new, "gzzz")


def test_predict_adds_the_regional_to_its_own_component_only(mixed):
    case, _, res = mixed
    regional = {"kind": "constant", "offset_mgal": 0.5, "center_m": [0.0, 0.0], "span_m": 1.0, "coefficients": [0.5]}
    fitted = dataclasses.replace(res, survey=case.survey, regional=regional)  # a g_z survey's regional
    new = np.array([[120.0, 260.0, 10.0], [300.0, 300.0, 30.0]])
    bare = res.predict(new, ["gz", "gzz"])
    np.testing.assert_allclose(fitted.predict(new, ["gz", "gzz"]), bare + [0.5, 0.0], rtol=1e-12)
    np.testing.assert_allclose(fitted.predict(new), res.predict(new) + 0.5, rtol=1e-12)


# ------------------------------------------------------------------ checkpoints
def _old_data_key(survey, mesh) -> str:
    """The key of a g_z survey as checkpoints written before components existed hold it."""
    h = hashlib.sha256()
    for name, a in (("locations", survey.locations), ("gz", survey.gz), ("std", survey.std), ("bounds", mesh.bounds)):
        arr = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
        h.update(f"{name}{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def test_data_key_names_the_components_but_keeps_the_gz_key(mixed):
    case, sv, _ = mixed
    s = case.survey
    old = _old_data_key(s, case.mesh)
    assert data_key(s, case.mesh) == old
    assert data_key(Survey(s.locations, gz=s.gz, std=s.std, components="gz"), case.mesh) == old
    assert data_key(Survey(s.locations, gz=s.gz, std=s.std, components="gzz"), case.mesh) != old
    swapped = Survey(sv.locations, gz=sv.data, std=sv.std, components=np.tile(["gzz", "gz"], sv.n_data // 2))
    assert data_key(swapped, case.mesh) != data_key(sv, case.mesh)
    assert data_key(sv.subset(np.arange(sv.n_data)), case.mesh) == data_key(sv, case.mesh)


def test_resume_is_refused_across_components_and_accepted_for_the_same_survey(mixed, tmp_path):
    case = mixed[0]
    s = case.survey
    cfg = INRConfig(**{**FAST, "weighting": "none"}, max_steps=12, early_stopping=False)
    ck = tmp_path / "ck"
    invert_inr(s, case.mesh, cfg, checkpoint=ck, stop_after=4)
    as_gzz = Survey(s.locations, gz=s.gz, std=s.std, components="gzz")  # the same numbers, read as gzz (Eötvös)
    with pytest.raises(ValueError, match=r"other data \(stations, components"):
        invert_inr(as_gzz, case.mesh, cfg, checkpoint=ck, resume=True)
    again = Survey(s.locations, gz=s.gz, std=s.std, components="gz")
    res = invert_inr(again, case.mesh, cfg, checkpoint=ck, resume=True)
    full = invert_inr(s, case.mesh, cfg)  # resumed exactly: the uninterrupted run's model
    assert res.completed
    np.testing.assert_allclose(res.model, full.model, rtol=1e-10, atol=1e-10 * np.abs(full.model).max())


def test_the_residual_check_reads_one_component_of_any_kind_and_no_mix():
    from gempy_gravinv.inversion._inr import residual_check

    x, y = np.meshgrid(np.arange(8) * 50.0, np.arange(8) * 50.0)
    loc = np.c_[x.ravel(), y.ravel(), np.full(x.size, 10.0)]
    obs = np.sin(loc[:, 0] / 150.0) + np.cos(loc[:, 1] / 170.0)  # residuals of a missed broad field: correlated
    for comp in ("gzz", "gx"):
        sv = Survey(loc, gz=obs, std=np.full(64, 0.1), components=[comp] * 64)
        check = residual_check(np.zeros(64), sv)
        assert check is not None and check["z"] > 3 and "correlated" in check["rule"]
    mixed = Survey(loc, gz=obs, std=np.full(64, 0.1), components=["gz", "gzz"] * 32)
    assert residual_check(np.zeros(64), mixed) is None
