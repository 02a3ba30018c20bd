"""CLI smoke tests for the INR commands (tiny sizes)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gempy_gravinv.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_demo_quick_writes_metrics(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "-o", str(out), "--no-figures", "--no-progress"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["floor_zero_kgm3"] == pytest.approx(83.2, abs=0.1)  # the zero model of the dipping block
    assert m["rms_error_kgm3"] > 0 and m["chi2_per_datum_recomputed"] > 0
    assert (out / "inr_model.nc").exists()
    text = capsys.readouterr().out
    assert "zero model (floor)" in text and "[anchor] paper INR" in text


def _tiny_files(tmp_path, with_std=True):
    from gempy_gravinv import io as gio
    from gempy_gravinv.cases.synthetic import single_block

    case = single_block(noise_seed=1, shape=(6, 6, 3))
    csv = tmp_path / "stations.csv"
    if with_std:
        gio.write_csv(csv, case.survey)
    else:
        gio.write_csv(csv, case.survey.locations, gz=case.survey.gz)
    mesh = tmp_path / "mesh.msh"
    case.mesh.source.write_UBC(str(mesh))
    return case, csv, mesh


def test_invert_csv_on_ubc_mesh(tmp_path):
    case, csv, mesh = _tiny_files(tmp_path)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"width": 16, "depth": 2, "max_steps": 40}))
    out = tmp_path / "out"
    rc = main(["invert", str(csv), "--mesh", str(mesh), "--config", str(cfg), "-o", str(out),
               "--no-figures", "--no-progress", "--bounds", "-800", "800"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["config"]["width"] == 16 and m["config"]["bounds"] == [-800.0, 800.0]
    assert np.isfinite(m["chi2_per_datum_recomputed"])
    assert (out / "checkpoint").is_dir()


def test_invert_spectral_preset_writes_the_posterior(tmp_path, capsys):
    case, csv, mesh = _tiny_files(tmp_path)
    out = tmp_path / "spec"
    rc = main(["invert", str(csv), "--mesh", str(mesh), "--preset", "spectral", "-o", str(out),
               "--no-figures", "--no-progress"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["config"]["solver"] == "linear" and m["solve_info"][0]["rule"] == "evidence"
    assert m["stop_reason"].startswith("closed form")
    # bounds would make the head nonlinear: refused in one line
    rc = main(["invert", str(csv), "--mesh", str(mesh), "--preset", "spectral", "-o", str(tmp_path / "b"),
               "--bounds", "-800", "800", "--no-progress"])
    assert rc == 2 and "--bounds" in capsys.readouterr().err


def test_invert_bad_input_is_one_clear_line(tmp_path, capsys):
    case, csv, mesh = _tiny_files(tmp_path, with_std=False)
    rc = main(["invert", str(csv), "--mesh", str(mesh), "-o", str(tmp_path / "o"), "--no-progress"])
    assert rc == 2
    assert "no std column" in capsys.readouterr().err
    rc = main(["invert", str(tmp_path / "missing.csv"), "--mesh", str(mesh), "-o", str(tmp_path / "o")])
    assert rc == 2


def test_invert_preset_compact_and_preset_config_conflict(tmp_path, capsys):
    case, csv, mesh = _tiny_files(tmp_path)
    out = tmp_path / "out"
    rc = main(["invert", str(csv), "--mesh", str(mesh), "--preset", "compact", "--max-steps", "60",
               "-o", str(out), "--no-figures", "--no-progress"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["config"]["regularization"] == "min_support" and m["config"]["reg_mode"] == "target"
    assert m["config"]["max_steps"] == 60
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"preset": "compact", "max_steps": 5}))
    rc = main(["invert", str(csv), "--mesh", str(mesh), "--preset", "paper", "--config", str(cfg),
               "-o", str(tmp_path / "o2"), "--no-progress"])
    assert rc == 2
    assert "--preset or --config" in capsys.readouterr().err


@pytest.mark.slow
def test_reproduce_paper_quick(tmp_path):
    out = tmp_path / "rep"
    assert main(["reproduce-paper", "--quick", "-o", str(out), "--no-figures"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert len(m["dipping_block"]) == 2 and len(m["smooth_grf"]) == 4
