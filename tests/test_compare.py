"""gempy_gravinv.compare and ``gempy-gravinv compare``: same metrics for every method."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("simpeg")
pytest.importorskip("psutil")

from gempy_gravinv import compare  # noqa: E402
from gempy_gravinv.cases.synthetic import single_block  # noqa: E402
from gempy_gravinv.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    return single_block(shape=(8, 8, 4), cell_size=100.0, noise_seed=0)


@pytest.fixture(scope="module")
def comparison(tiny):
    methods = ["simpeg_l2", "simpeg_sparse"] + (["inr"] if compare._inr_available() else [])
    return compare.run_comparison(
        tiny.survey, tiny.mesh, true=tiny.model, methods=methods, bounds=(-600.0, 600.0),
        inr_overrides={"max_steps": 40, "progress": False},
        simpeg_options={"max_iter": 20, "max_irls_iterations": 5}, name="tiny", notes=["a note"], log=None)


def test_the_default_inr_says_what_it_chose(comparison):
    if "inr" not in comparison.runs:
        pytest.skip("INR not available in this build")
    info = comparison.runs["inr"].info
    assert info["preset"] == "auto" and info["prior_selection"]["prior"] == "compact"
    assert info["regional_selection"]["kind"] == "none"
    assert any("prior from the data: the depth-weighted least-squares image" in n for n in comparison.notes)
    assert any("regional from the data: regional 'none'" in n for n in comparison.notes)


def test_metrics_are_computed_alike(comparison, tiny):
    s = tiny.survey
    assert "zero" in comparison.runs and "simpeg_l2" in comparison.runs
    for key, run in comparison.runs.items():
        m = run.metrics
        # recompute every headline metric independently from the model and prediction
        r = (run.pred - s.gz) / s.std
        assert m["chi2_per_datum"] == pytest.approx(np.mean(r**2), rel=1e-12)
        assert m["rms_misfit_mgal"] == pytest.approx(np.sqrt(np.mean((run.pred - s.gz) ** 2)), rel=1e-12)
        assert m["rms_error_kgm3"] == pytest.approx(np.sqrt(np.mean((run.model - tiny.model) ** 2)), rel=1e-12)
        if key != "zero":
            assert m["pearson_r"] == pytest.approx(np.corrcoef(run.model, tiny.model)[0, 1], rel=1e-9)
            assert run.wall_time > 0
    # the prediction is the forward of the model (same operator for every method)
    import torch

    from gempy_gravinv import GravityOperator

    op = GravityOperator(tiny.mesh, s, device="cpu")
    run = comparison.runs["simpeg_l2"]
    np.testing.assert_allclose(run.pred, op.forward(torch.as_tensor(run.model)).numpy(), rtol=1e-8,
                               atol=1e-10)
    # SimPEG L2 fits and beats the zero model
    assert 0.3 < run.metrics["chi2_per_datum"] < 1.5
    assert run.metrics["rms_error_kgm3"] < comparison.runs["zero"].metrics["rms_error_kgm3"]
    # agreement: symmetric, unit diagonal
    a = comparison.agreement
    for k in a:
        assert a[k][k] == pytest.approx(1.0)
        for j in a:
            assert a[k][j] == pytest.approx(a[j][k])


def test_report_files(comparison, tmp_path, tiny):
    paths = compare.write_report(comparison, tmp_path)
    md = paths["markdown"].read_text()
    assert "SimPEG L2" in md and "χ²/N" in md and "a note" in md
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [r["method"] for r in rows] == list(comparison.runs)
    doc = json.loads(paths["json"].read_text())
    assert doc["metrics"]["simpeg_l2"]["rms_error_kgm3"] == pytest.approx(
        comparison.runs["simpeg_l2"].metrics["rms_error_kgm3"])
    assert len(doc["history"]["simpeg_l2"]["beta"]) == comparison.runs["simpeg_l2"].info["iterations"]
    assert (tmp_path / "sections.png").stat().st_size > 1000
    assert (tmp_path / "data_simpeg_l2.png").exists()
    # models can be read back on the mesh (UBC, in g/cm³ as `forward` reads them)
    from gempy_gravinv.io import model_to_contrast_kgm3, read_ubc_model

    back = read_ubc_model(tmp_path / "models" / "simpeg_l2.mod", tiny.mesh.source)
    np.testing.assert_allclose(model_to_contrast_kgm3(back), comparison.runs["simpeg_l2"].model, rtol=1e-6, atol=1e-3)


def test_bad_input(tiny):
    with pytest.raises(ValueError, match="method must be one of .*got 'simpeg_l1'"):
        compare.run_comparison(tiny.survey, tiny.mesh, methods=["simpeg_l1"], log=None)
    with pytest.raises(ValueError, match="std"):
        compare.run_comparison(tiny.survey.with_data(tiny.survey.gz), tiny.mesh, log=None)
    with pytest.raises(ValueError, match="true"):
        compare.run_comparison(tiny.survey, tiny.mesh, true=np.zeros(3), methods=["simpeg_l2"], log=None)
    with pytest.raises(ValueError, match="case must be one of .*got 'nowhere'"):
        compare.run_case("nowhere")


def test_units_and_implausible_models_are_named(tiny, caplog):
    from gempy_gravinv._constants import DensityUnitsWarning

    with pytest.warns(DensityUnitsWarning, match="the true model is at most .* looks like g/cm³"):
        compare.run_comparison(tiny.survey, tiny.mesh, true=tiny.model / 1000.0, methods=[], log=None)
    # one method given as a string is that method (not its characters); NaN bounds named before SimPEG runs
    with pytest.raises(ValueError, match=r"bounds\[0\] holds NaN"):
        compare.run_comparison(tiny.survey, tiny.mesh, methods="simpeg_l2", bounds=(float("nan"), 600.0), log=None)
    # µGal read as mGal: SimPEG fits them with a model no rock has; the report's notes say so
    ugal = tiny.survey.with_data(tiny.survey.gz * 1000.0, tiny.survey.std * 1000.0)
    with caplog.at_level("WARNING", logger="gempy_gravinv.simpeg._inversion"):
        comp = compare.run_comparison(ugal, tiny.mesh, methods="simpeg_l2", log=None,
                                      simpeg_options={"max_iter": 10})
    assert np.abs(comp.runs["simpeg_l2"].model).max() > 5000.0
    assert any(n.startswith("SimPEG") and "beyond any rock's density contrast" in n for n in comp.notes), comp.notes
    assert "SimPEG l2: the model reaches" in caplog.text


def test_cli_stations_and_mesh(tmp_path, tiny, capsys):
    from gempy_gravinv.io import write_csv

    st = write_csv(tmp_path / "st.csv", tiny.survey)
    mesh_file = tmp_path / "mesh.msh"
    tiny.mesh.source.write_UBC(str(mesh_file))
    out = tmp_path / "out"
    rc = main(["compare", str(st), "--mesh", str(mesh_file), "-o", str(out), "--methods", "simpeg_l2",
               "--bounds", "-600", "600", "--quick", "--no-figures", "--cv", "2"])
    assert rc == 0
    doc = json.loads((out / "comparison.json").read_text())
    assert doc["n_cells"] == tiny.mesh.n_cells and doc["n_data"] == tiny.survey.n_data
    assert doc["metrics"]["simpeg_l2"]["chi2_per_datum"] < 2.0
    # held-out stations: every station predicted once by each method, next to the spline
    cv = json.loads((out / "station_cv.json").read_text())
    assert set(cv["rms_mgal"]) == {"tps", "simpeg_l2"} and len(cv["folds"]) == 2
    assert sorted(sum(cv["folds"], [])) == list(range(tiny.survey.n_data))
    gz = tiny.survey.gz
    for m, pred in cv["predicted"].items():
        assert cv["rms_mgal"][m] == pytest.approx(float(np.sqrt(np.mean((np.array(pred) - gz) ** 2))))
    assert "held-out RMS" in (out / "station_cv.md").read_text()
    assert main(["compare", str(st), "--mesh", str(mesh_file), "--cv", "1", "-o", str(tmp_path / "o2")]) == 2
    # bad input: one clear line, exit status 2
    assert main(["compare"]) == 2
    assert "STATIONS" in capsys.readouterr().err
    assert main(["compare", str(st), "--mesh", str(tmp_path / "missing.msh")]) == 2


@pytest.mark.slow
def test_cli_tharsis_quick(tmp_path):
    out = tmp_path / "th"
    assert main(["compare", "--case", "tharsis", "--quick", "-o", str(out)]) == 0
    md = (out / "comparison.md").read_text()
    assert "Instituto Geológico y Minero de España (IGME)" in md
    assert "flat observation surface" in md
    assert "noise from the data" in md and "x the stated σ" in md
    doc = json.loads((out / "comparison.json").read_text())
    for k in ("simpeg_l2", "simpeg_sparse"):
        assert 0.5 < doc["metrics"][k]["chi2_per_datum"] < 1.6


def _load_example(name):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_example_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_example_drop_in_same_model(tiny):
    """The example's plain SimPEG inversion gives the same model on both simulations."""
    import gc

    mod = _load_example("compare_synthetic")
    gc.freeze()  # SimPEG runs gc.collect() at every evaluation: keep it cheap (no numeric effect)
    try:
        assert mod.drop_in_demo(tiny) < 1e-6
    finally:
        gc.unfreeze()


@pytest.mark.slow
@pytest.mark.parametrize("name,args", [("compare_synthetic", ["--quick", "--methods", "simpeg_l2", "inr"]),
                                       ("tharsis_compare", ["--quick", "--methods", "simpeg_l2"])])
def test_examples_quick(tmp_path, name, args):
    mod = _load_example(name)
    mod.main(args + ["--out", str(tmp_path / name)])
    assert (tmp_path / name / "comparison.json").exists()


def test_station_cross_validation_holds_every_station_out_once():
    from gempy_gravinv.cases import synthetic
    from gempy_gravinv.compare import kfold, station_cv, thin_plate_spline

    folds = kfold(23, 5, seed=1)
    assert sorted(np.concatenate(folds).tolist()) == list(range(23))
    assert {len(f) for f in folds} <= {4, 5}
    with pytest.raises(ValueError, match="at least"):
        kfold(3, 5)
    case = synthetic.single_block(noise_seed=0)
    # the spline is exact at its own stations
    s = case.survey
    assert np.allclose(thin_plate_spline(s, s.locations), s.gz, atol=1e-6 * np.abs(s.gz).max())
    cv = station_cv(s, case.mesh, methods=["tps", "simpeg_l2"], k=4, log=None)
    for m in ("tps", "simpeg_l2"):
        assert np.isfinite(cv.predicted[m]).all() and len(cv.fold_rms[m]) == 4
        assert cv.rms[m] == pytest.approx(np.sqrt(np.mean((cv.predicted[m] - s.gz) ** 2)))
    # an inversion of 3/4 of the stations predicts the others far better than predicting zero
    assert cv.rms["simpeg_l2"] < 0.5 * np.sqrt(np.mean(s.gz ** 2))
    assert "simpeg_l2" in cv.table()
    # the INR without bounds named: the preset's own (auto's), as the comparison's INR run
    cv = station_cv(s, case.mesh, methods=["inr"], k=2, inr_overrides={"max_steps": 30}, log=None)
    assert np.isfinite(cv.predicted["inr"]).all() and cv.rms["inr"] < 0.5 * np.sqrt(np.mean(s.gz ** 2))


def test_cli_compare_sets_the_inr_prior(tmp_path, tiny):
    """``compare STATIONS --mesh M --prior smooth``: the INR default with the prior set, said in the notes."""
    from gempy_gravinv.io import write_csv

    st = write_csv(tmp_path / "st.csv", tiny.survey)
    mesh_file = tmp_path / "mesh.msh"
    tiny.mesh.source.write_UBC(str(mesh_file))
    out = tmp_path / "out"
    assert main(["compare", str(st), "--mesh", str(mesh_file), "-o", str(out), "--methods", "inr",
                 "--bounds", "-600", "600", "--quick", "--no-figures", "--prior", "smooth"]) == 0
    notes = " ".join(json.loads((out / "comparison.json").read_text())["notes"])
    assert "set by the user (prior='smooth'" in notes
    assert main(["compare", "--case", "dipping_block", "--prior", "compact", "-o", str(tmp_path / "o2")]) == 2
