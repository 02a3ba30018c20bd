"""The benchmark suite: every case builds (quick versions), and the runner prints its table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gempy_gravinv.cases import suite
from gempy_gravinv.cases.synthetic import SyntheticCase

ROOT = Path(__file__).resolve().parents[1]
ELEVEN = ("tutorial_topo", "two_bodies", "deep_body", "matern_nowrap", "fine_10m", "coarse_1km", "dike",
          "grf_wrap", "ridge_topo_bodies", "station_height_3", "gempy_layered_body")


def _clearance(case) -> float:
    """Smallest height (m) of a station above the top of the active cells under it."""
    b = case.mesh.bounds
    out = np.inf
    for x, y, z in case.survey.locations:
        under = (b[:, 0] <= x) & (x <= b[:, 1]) & (b[:, 2] <= y) & (y <= b[:, 3])
        if under.any():
            out = min(out, z - b[under, 5].max())
    return out


def test_the_suite_lists_the_cases_and_seeds():
    assert set(ELEVEN) <= set(suite.SUITE)
    assert suite.TUNING_SEEDS == (0,) and suite.HELD_OUT_SEEDS == (101, 102)
    assert not set(suite.TUNING_SEEDS) & set(suite.HELD_OUT_SEEDS)
    with pytest.raises(ValueError, match="unknown suite case"):
        suite.build_case("no_such_case")


@pytest.mark.parametrize("name", ELEVEN)
def test_quick_case_builds(name, one_torch_thread):
    case = suite.build_case(name, noise_seed=3, quick=True)
    assert isinstance(case, SyntheticCase) and case.name == name
    mesh, sv = case.mesh, case.survey
    assert mesh.n_cells <= 500 and sv.n_data <= 100
    # truth over the active cells, in the mesh's order
    assert mesh.source is not None and mesh.active_cells is not None
    assert int(mesh.active_cells.sum()) == mesh.n_cells == case.model.size
    assert np.all(np.isfinite(case.model)) and np.any(case.model != 0)
    # finite data and noise, σ = 1 % of std(g_z) plus a floor
    assert np.all(np.isfinite(sv.gz)) and np.all(np.isfinite(case.gz_clean))
    assert np.all(sv.std > 0) and np.all(sv.std >= 0.01 * np.std(case.gz_clean))
    assert not np.allclose(sv.gz, case.gz_clean)
    # stations above the ground
    assert mesh.stations_inside(sv.locations).size == 0
    assert _clearance(case) > 0
    # bounds hold the truth; meta says what the case is
    lo, hi = case.bounds
    assert lo < 0 < hi and lo <= case.model.min() and case.model.max() <= hi
    assert case.meta["noise_seed"] == 3 and case.meta["quick"] is True and "tests" in case.meta
    # the noise seed reproduces the data, another seed changes only the noise
    again = suite.build_case(name, noise_seed=3, quick=True)
    np.testing.assert_array_equal(again.survey.gz, sv.gz)
    np.testing.assert_array_equal(again.model, case.model)
    other = suite.build_case(name, noise_seed=4, quick=True)
    np.testing.assert_array_equal(other.model, case.model)
    np.testing.assert_array_equal(other.gz_clean, case.gz_clean)
    assert not np.array_equal(other.survey.gz, sv.gz)


def test_topography_cases_have_inactive_cells(one_torch_thread):
    for name in ("tutorial_topo", "ridge_topo_bodies"):
        case = suite.build_case(name, quick=True)
        assert not case.mesh.active_cells.all()
        assert len(np.unique(case.survey.locations[:, 2])) > 1  # stations follow the ground


def test_smooth_fields_are_relative_to_their_mean(one_torch_thread):
    for name in ("matern_nowrap", "grf_wrap"):
        case = suite.build_case(name, quick=True)
        assert abs(case.model.mean()) < 1e-9 and case.reference_density > 0
        assert case.bounds == (case.model.min(), case.model.max())
        assert np.isclose(np.abs(case.model).max(), 500.0)


def test_the_runner_prints_its_table(tmp_path):
    out = tmp_path / "suite.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "suite.py"), "--quick", "--cases", "two_bodies,deep_body",
           "--methods", "simpeg_l2", "--threads", "1", "--repeats", "2", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    assert "RMS/floor" in text and "chi2/N" in text and "count over 2 case-seed(s)" in text
    assert text.count("simpeg_l2") == 2 and "FAILED" not in text
    rows = json.loads(out.read_text())["rows"]
    assert [(r["case"], r["method"]) for r in rows] == [("two_bodies", "simpeg_l2"), ("deep_body", "simpeg_l2")]
    assert all(r["error"] is None and -1 <= r["pearson_r"] <= 1 and r["wall_s"] > 0 for r in rows)
    # two runs of each method, in turns: the median of their wall times; both gave the same r
    assert all(len(r["walls_s"]) == 2 and r["wall_s"] == pytest.approx(sum(r["walls_s"]) / 2) for r in rows)
    assert "repeat 2 gave" not in proc.stderr


def test_the_runner_reads_inr_overrides_from_the_method_name():
    import importlib.util

    spec = importlib.util.spec_from_file_location("suite_runner", ROOT / "benchmarks" / "suite.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    cfg = runner._inr_config("inr:auto+start_fallback=True+max_steps=30+device=cpu", (-100.0, 200.0))
    assert (cfg.start_fallback, cfg.max_steps, cfg.device, cfg.bounds) == (True, 30, "cpu", (-100.0, 200.0))
    assert cfg.warm_start == "least_squares"  # the preset's own settings stay
    with pytest.raises(SystemExit, match="FIELD=VALUE"):
        runner._inr_config("inr:auto+start_fallback", None)
