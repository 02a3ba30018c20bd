"""Random geometries: reproducible from their seed, valid (stations above the ground), varied."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gempy_gravinv.cases.random_cases import parse_random_name, random_by_name, random_case, random_field_case
from gempy_gravinv.cases.synthetic import grf_field

ROOT = Path(__file__).resolve().parents[1]


def _clearance(case) -> float:
    """Smallest height (m) of a station above the top of the active cells under it."""
    b = case.mesh.bounds
    xy = case.survey.locations
    out = np.inf
    for x, y, z in xy:
        under = (b[:, 0] <= x) & (x <= b[:, 1]) & (b[:, 2] <= y) & (y <= b[:, 3])
        if under.any():
            out = min(out, z - b[under, 5].max())
    return out


def test_the_geometry_seed_reproduces_the_case_and_the_noise_seed_only_the_noise(one_torch_thread):
    a, b = random_case(7), random_case(7)
    np.testing.assert_array_equal(a.model, b.model)
    np.testing.assert_array_equal(a.survey.gz, b.survey.gz)
    np.testing.assert_array_equal(a.survey.locations, b.survey.locations)
    c = random_case(7, noise_seed=1)
    np.testing.assert_array_equal(c.gz_clean, a.gz_clean)
    assert not np.array_equal(c.survey.gz, a.survey.gz)
    assert a.name == "random_7" and a.meta["geometry_seed"] == 7
    other = random_case(8)
    assert (other.meta["cell_size_m"], other.mesh.shape) != (a.meta["cell_size_m"], a.mesh.shape)


def test_random_cases_are_valid_and_span_the_ranges(one_torch_thread):
    cases = [random_case(s) for s in range(12)]
    sizes = [c.meta["cell_size_m"] for c in cases]
    assert min(sizes) >= 10 and max(sizes) <= 1000 and max(sizes) / min(sizes) > 10
    topo = [not c.mesh.active_cells.all() for c in cases]
    assert any(topo) and not all(topo)
    kinds = {b["kind"] for c in cases for b in c.meta["bodies"]}
    assert kinds == {"box", "dike"}
    signs = {np.sign(b["contrast_kgm3"]) for c in cases for b in c.meta["bodies"]}
    assert signs == {-1.0, 1.0}
    for c in cases:
        h = c.meta["cell_size_m"]
        assert 0.55 <= c.meta["station_height_cells"] <= 5.0
        assert c.mesh.stations_inside(c.survey.locations).size == 0
        assert _clearance(c) >= 0.05 * h  # above the active cells, at least the drawn height minus half a cell
        assert np.any(c.model != 0) and np.all(np.isin(np.round(np.abs(c.model[c.model != 0])),
                                                        [round(abs(b["contrast_kgm3"])) for b in c.meta["bodies"]]))
        lo, hi = c.bounds
        assert lo <= c.model.min() and c.model.max() <= hi
        # the noise recipe of the suite: σ = 1 % std + 0.1 % max of the clean g_z
        sigma = 0.01 * np.std(c.gz_clean) + 0.001 * np.max(np.abs(c.gz_clean))
        np.testing.assert_allclose(c.survey.std, sigma, rtol=1e-12)
        if len(c.meta["bodies"]) == 1:  # g_z positive down: the strongest anomaly has the body's sign
            peak = c.gz_clean[np.argmax(np.abs(c.gz_clean))]
            assert np.sign(peak) == np.sign(c.meta["bodies"][0]["contrast_kgm3"])


def test_quick_random_cases_are_small(one_torch_thread):
    c = random_case(3, quick=True)
    assert c.mesh.n_cells <= 8 * 8 * 5 and c.survey.n_data <= 120
    assert c.mesh.stations_inside(c.survey.locations).size == 0 and np.any(c.model != 0)


def test_random_names():
    assert parse_random_name("random_12") == 12 and parse_random_name("dike") is None
    assert parse_random_name("randfield_12") is None and parse_random_name("randfield_12", "randfield_") == 12
    with pytest.raises(ValueError, match="non-negative integer seed"):
        parse_random_name("random_x")
    with pytest.raises(ValueError, match="non-negative integer seed"):
        random_by_name("randfield_-3")
    with pytest.raises(ValueError, match="geometry_seed"):
        random_case(-1)
    assert random_by_name("dike") is None
    assert random_by_name("random_3", quick=True).name == "random_3"
    assert random_by_name("randfield_3", quick=True).name == "randfield_3"


def test_random_fields_are_cropped_matern_fields_on_the_active_cells(one_torch_thread):
    cases = [random_field_case(s) for s in range(8)]
    assert any(not c.mesh.active_cells.all() for c in cases if c.mesh.active_cells is not None)
    assert len({c.meta["field"]["nu"] for c in cases}) > 1
    for c in cases:
        f = c.meta["field"]
        assert 2.0 <= f["length_scale_cells"] <= 12.0 and f["nu"] in (0.5, 1.5, 2.5)
        assert c.mesh.stations_inside(c.survey.locations).size == 0
        assert _clearance(c) >= 0.05 * c.meta["cell_size_m"]
        # the model is the crop of the field made on the doubled grid, on the active cells, centred and scaled
        n = c.mesh.shape
        big = grf_field(tuple(f["generator_grid"]), c.meta["cell_size_m"], f["length_scale_m"], f["nu"],
                        seed=f["field_seed"])
        o = f["crop_offset_cells"]
        crop = big[o[0]:o[0] + n[0], o[1]:o[1] + n[1], o[2]:o[2] + n[2]].ravel(order="F")
        if c.mesh.active_cells is not None:
            crop = crop[c.mesh.active_cells]
        crop = crop - crop.mean()
        np.testing.assert_allclose(c.model, crop * f["max_abs_kgm3"] / np.abs(crop).max(), rtol=1e-12, atol=1e-9)
        assert abs(c.model.mean()) < 1e-9 and np.isclose(np.abs(c.model).max(), f["max_abs_kgm3"])
        assert c.model.size == c.mesh.n_cells
        # smooth: neighbouring cells along x are more alike than cells far apart
        grid = c.mesh.to_full(c.model, fill=np.nan).reshape(n, order="F")
        near = np.nanmean(np.abs(np.diff(grid, axis=0)))
        far = np.nanmean(np.abs(grid[n[0] // 2:] - grid[: n[0] - n[0] // 2]))
        assert near < far
    a, b = random_field_case(5), random_field_case(5, noise_seed=1)
    np.testing.assert_array_equal(a.model, b.model)
    assert not np.array_equal(a.survey.gz, b.survey.gz)
    assert a.meta["geometry_seed"] == 5 and a.name == "randfield_5"


def test_the_runner_draws_random_cases():
    cmd = [sys.executable, str(ROOT / "benchmarks" / "suite.py"), "--quick", "--random", "2", "--random-from", "5",
           "--methods", "simpeg_l2", "--threads", "1"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "random_5" in proc.stdout and "random_6" in proc.stdout and "count over 2 case-seed(s)" in proc.stdout
    assert "cells" in proc.stderr and "stations" in proc.stderr


def test_the_runner_draws_random_fields():
    cmd = [sys.executable, str(ROOT / "benchmarks" / "suite.py"), "--quick", "--random-fields", "1", "--random-from",
           "5", "--methods", "simpeg_l2", "--threads", "1"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "randfield_5" in proc.stdout and "count over 1 case-seed(s)" in proc.stdout
    assert "field: ℓ" in proc.stderr


def test_sparse_surveys_cover_part_of_the_mesh_in_every_layout(one_torch_thread):
    from scipy.spatial import ConvexHull, QhullError

    cases = [random_by_name(f"sparse_{s}") for s in range(12)] + [random_by_name(f"sparsefield_{s}")
                                                                   for s in range(4)]
    layouts = set()
    for c in cases:
        h = c.meta["cell_size_m"]
        lay = c.meta["station_layout"]
        layouts.add(next(w for w in ("profile", "road", "scattered at random", "patch") if w in lay))
        xy = c.survey.locations[:, :2]
        assert int(lay.split()[0]) == c.survey.n_data >= 8
        # one cell inside the sides, half a cell apart, above the active cells
        lo, hi = c.mesh.bounds[:, [0, 2]].min(0), c.mesh.bounds[:, [1, 3]].max(0)
        assert np.all(xy >= lo + h - 1e-6) and np.all(xy <= hi - h + 1e-6)
        d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
        assert d[~np.eye(len(xy), dtype=bool)].min() >= 0.5 * h - 1e-9
        assert c.mesh.stations_inside(c.survey.locations).size == 0 and _clearance(c) >= 0.05 * h
        try:  # the survey's footprint is at most about half the mesh's area
            area = ConvexHull(xy).volume
        except QhullError:  # stations on one line
            area = 0.0
        if "patch" in lay:
            assert area <= 0.55 * np.prod(hi - lo)
        if "scattered at random" not in lay and "profile" not in lay:
            assert area < np.prod(hi - lo)
    assert layouts == {"profile", "road", "scattered at random", "patch"}
    assert cases[-1].name == "sparsefield_3" and "field" in cases[-1].meta


def test_sparse_cases_share_the_full_layouts_frame_and_are_reproducible(one_torch_thread):
    a, b = random_case(5, layout="sparse"), random_by_name("sparse_5")
    np.testing.assert_array_equal(a.survey.gz, b.survey.gz)
    full = random_case(5)
    assert a.name == "sparse_5" and a.meta["cell_size_m"] == full.meta["cell_size_m"]
    assert a.mesh.shape == full.mesh.shape and a.meta["station_height_cells"] == full.meta["station_height_cells"]
    assert a.survey.n_data != full.survey.n_data
    with pytest.raises(ValueError, match="layout"):
        random_case(5, layout="lines")
