"""The Tharsis case: packaged data, regional removal, noise model, mesh design, a real fit."""

from __future__ import annotations

import numpy as np
import pytest

from gempy_gravinv import Survey
from gempy_gravinv.cases import tharsis


def test_packaged_stations_are_the_igme_file():
    s = tharsis.load_stations()
    # README: 208 stations, 9.5 .. 47.3 mGal (its "mean 25.6, std 8.4" do not match this
    # 208-station file: mean 25.49, std 8.13; presumably the 260-station source layer)
    assert s.n_data == 208
    assert s.gz.min() == pytest.approx(9.508, abs=1e-3) and s.gz.max() == pytest.approx(47.323, abs=1e-3)
    assert s.gz.mean() == pytest.approx(25.4898, abs=1e-3) and s.gz.std() == pytest.approx(8.1267, abs=1e-3)
    # Bouguer anomaly sign kept (positive = excess mass = our positive-down g_z), UTM metres
    assert 2.0e5 < s.locations[:, 0].min() < s.locations[:, 0].max() < 2.3e5
    assert np.all(s.locations[:, 2] == 0.0)
    # the packaged copy is byte-identical to the data README's companions
    for name in ("README.md", "tharsis_bouguer_stations.qmd", "tharsis_bouguer_stations.geojson"):
        assert tharsis.data_path(name).stat().st_size > 0


def test_attribution_line():
    line = tharsis.attribution()
    assert line == tharsis.ATTRIBUTION
    assert "Instituto Geológico y Minero de España (IGME)" in line


def test_remove_regional_recovers_a_plane():
    rng = np.random.default_rng(3)
    loc = np.c_[rng.uniform(0, 20e3, 60), rng.uniform(0, 15e3, 60), np.zeros(60)]
    local = rng.normal(0, 1.0, 60)
    xc, yc = loc[:, 0].mean(), loc[:, 1].mean()
    g = 20.0 + 0.8 * (loc[:, 0] - xc) / 1e3 - 0.3 * (loc[:, 1] - yc) / 1e3 + local
    resid, reg, info = tharsis.remove_regional(Survey(loc, gz=g), "planar")
    A = np.c_[np.ones(60), loc[:, 0], loc[:, 1]]
    np.testing.assert_allclose(A.T @ resid, 0.0, atol=1e-6 * np.abs(A).max())  # LS normal equations
    np.testing.assert_allclose(resid + reg, g)
    local_fit = local - np.linalg.lstsq(A, local, rcond=None)[0] @ A.T
    np.testing.assert_allclose(resid, local_fit, atol=1e-10)
    assert info["b_mgal_per_km"] == pytest.approx(0.8, abs=0.05)
    r2, reg2, info2 = tharsis.remove_regional(Survey(loc, gz=g), "mean")
    assert r2.mean() == pytest.approx(0.0, abs=1e-12) and info2["a_mgal"] == pytest.approx(g.mean())
    r3, _, _ = tharsis.remove_regional(Survey(loc, gz=g), "none")
    np.testing.assert_array_equal(r3, g)
    with pytest.raises(ValueError, match="trend"):
        tharsis.remove_regional(Survey(loc, gz=g), "quadratic")


def test_noise_std():
    np.testing.assert_allclose(tharsis.noise_std([-10.0, 0.0, 5.0], 0.5, 0.02), [0.7, 0.5, 0.6])
    with pytest.raises(ValueError, match="floor"):
        tharsis.noise_std([1.0], 0.0, 0.02)
    with pytest.raises(ValueError, match="relative"):
        tharsis.noise_std([1.0], 0.5, -0.1)


def test_design_mesh_covers_stations():
    s = tharsis.load_stations(z=1.0)
    mesh = tharsis.design_mesh(s, core_cell=(1000.0, 1000.0, 500.0), padding=(3, 1.5), depth=3000.0,
                               padding_depth=2)
    src = mesh.source
    e = mesh.extent
    assert e[5] == pytest.approx(0.0)  # top at z = 0
    assert e[4] < -3000.0  # core depth plus padding below
    # core cells of 1 km cover the stations with a margin of one cell; padding grows by 1.5
    hx = src.h[0]
    np.testing.assert_allclose(hx[3:-3], 1000.0)
    np.testing.assert_allclose(hx[:3], 1000.0 * 1.5 ** np.array([3, 2, 1]))
    core_lo = src.origin[0] + hx[:3].sum()
    assert core_lo <= s.locations[:, 0].min() - 1000.0 + 1e-6
    assert core_lo + hx[3:-3].sum() >= s.locations[:, 0].max() + 1000.0 - 1e-6
    assert mesh.stations_inside(s.locations).size == 0
    np.testing.assert_allclose(src.h[2][-6:], 500.0)
    assert mesh.shape == tuple(src.shape_cells)
    with pytest.raises(ValueError, match="below the mesh top"):
        tharsis.design_mesh(s.locations - np.r_[0, 0, 10.0])
    with pytest.raises(ValueError, match="core_cell"):
        tharsis.design_mesh(s, core_cell=(0.0, 1.0, 1.0))


def test_case_notes_and_fit():
    """The coarse Tharsis case: stated choices, and a SimPEG L2 fit to χ²/N ≈ 1."""
    case = tharsis.tharsis_case(core_cell=(2000.0, 2000.0, 1000.0), depth=4000.0, padding=(2, 1.5))
    text = "\n".join(case.notes())
    assert "flat observation surface at z = 1 m" in text
    assert tharsis.ATTRIBUTION in text
    assert "planar regional" in text
    s = case.survey
    assert abs(s.gz.mean()) < 1e-9  # a planar LS residual has zero mean
    np.testing.assert_allclose(s.std, 0.5 + 0.02 * np.abs(s.gz))
    np.testing.assert_allclose(s.gz + case.regional, case.raw.gz)
    assert s.locations[:, :2].min() >= 0.0 and s.locations[:, :2].min() < 1000.0  # local origin
    pytest.importorskip("simpeg")
    from gempy_gravinv.simpeg import run_inversion

    res = run_inversion(s, case.mesh, kind="l2", bounds=(-600.0, 600.0), seed=0)
    assert 0.5 < res.chi2 < 1.3
