"""Data no mesh can explain, models no rock has, and stations or topography that miss the mesh."""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import pytest
from discretize import TensorMesh

from gempy_gravinv import INRConfig, PrismMesh, Survey, check_topography, forward_gz, invert_inr
from gempy_gravinv._constants import MAX_CONTRAST_KGM3
from gempy_gravinv._plausible import check_data, implausible_model, slab_limit_mgal, stations_beyond


def _block_mesh(n=10, h=50.0, nz=5):
    return PrismMesh.from_tensor(np.full(n, h), np.full(n, h), np.full(nz, h), origin=(0.0, 0.0, -nz * h))


def _grid_stations(n=6, lo=25.0, hi=475.0, z=10.0):
    x, y = np.meshgrid(np.linspace(lo, hi, n), np.linspace(lo, hi, n))
    return np.c_[x.ravel(), y.ravel(), np.full(x.size, z)]


def _block_data(mesh, loc, contrast=300.0):
    c = mesh.cell_centers
    model = np.where((np.abs(c[:, 0] - 250) < 100) & (np.abs(c[:, 1] - 250) < 100) & (c[:, 2] > -150), contrast, 0.0)
    return forward_gz(mesh, loc, model)


def test_the_slab_limit_is_the_largest_attraction_of_the_mesh_s_layer():
    # a layer 20 m thick and 8 km wide filled with the largest contrast: its g_z at the centre approaches 2πGρH
    mesh = PrismMesh.from_tensor(np.full(81, 100.0), np.full(81, 100.0), [20.0], origin=(-4050.0, -4050.0, -20.0))
    full = np.full(mesh.n_cells, MAX_CONTRAST_KGM3)
    gz = forward_gz(mesh, [[0.0, 0.0, 1.0], [3000.0, 0.0, 1.0]], full)
    limit = slab_limit_mgal(mesh)
    assert limit == pytest.approx(2 * math.pi * 6.67430e-11 * MAX_CONTRAST_KGM3 * 20.0 * 1e5)
    assert np.all(gz <= limit) and gz[0] > 0.99 * limit


def test_data_any_contrast_in_the_mesh_can_make_pass_with_a_datum_and_a_plane():
    mesh = _block_mesh()
    loc = _grid_stations()
    rng = np.random.default_rng(0)
    for _ in range(5):  # contrasts at the limit, of random signs, plus a datum and a steep plane
        model = MAX_CONTRAST_KGM3 * np.sign(rng.standard_normal(mesh.n_cells))
        d = forward_gz(mesh, loc, model) + 37.0 + 0.2 * loc[:, 0] - 0.1 * loc[:, 1]
        check_data(d, loc, mesh)
    # the worst data the bound allows: every station at ±L about the plane, in a checkerboard
    check_data(slab_limit_mgal(mesh) * np.where(np.arange(len(loc)) % 2, 1.0, -1.0), loc, mesh)


def test_data_in_microgal_and_absolute_gravity_are_refused_with_their_likely_cause():
    mesh = _block_mesh()
    loc = _grid_stations()
    d = _block_data(mesh, loc)
    check_data(d, loc, mesh)  # mGal: accepted
    with pytest.raises(ValueError, match="µGal"):
        check_data(d * 1e3, loc, mesh)
    with pytest.raises(ValueError, match="absolute gravity"):
        check_data(d + 979_800.0, loc, mesh)
    with pytest.raises(ValueError, match="absolute gravity"):
        invert_inr(Survey(loc, gz=d + 979_800.0, std=0.01), mesh, INRConfig.auto(progress=False, max_steps=5))


def test_a_model_beyond_any_rock_is_said():
    assert implausible_model(np.array([-300.0, 250.0, np.nan])) is None
    why = implausible_model(np.array([1.0, -2.4e6]))
    assert why is not None and "2.4e+06 kg/m³" in why and "mGal" in why


def test_data_in_si_units_give_a_model_said_to_explain_nothing(caplog):
    assert implausible_model(np.zeros(4)) is None  # no signal, no model: nothing to say
    mesh = _block_mesh()
    loc = _grid_stations()
    d = _block_data(mesh, loc)
    si = Survey(loc, gz=d * 1e-5, std=0.005 * 1e-5)  # m/s² read as mGal, σ in the same unit
    with caplog.at_level(logging.WARNING, logger="gempy_gravinv"):
        res = invert_inr(si, mesh, INRConfig.auto(progress=False, prior="smooth"))
    assert 0.0 < float(np.abs(res.model).max()) < 0.1
    assert any("far below any measurable density contrast" in r.getMessage() and "m/s²" in r.getMessage()
               for r in caplog.records)


def test_an_inversion_of_stations_moved_beside_the_mesh_warns_of_its_model(caplog):
    # the data of a block, but half of the stations moved 1-2 km east of the mesh: the edge cells must explain them
    mesh = _block_mesh()
    loc = _grid_stations()
    d = _block_data(mesh, loc)
    moved = loc.copy()
    moved[::2, 0] += 1500.0
    with caplog.at_level(logging.WARNING, logger="gempy_gravinv"):
        res = invert_inr(Survey(moved, gz=d, std=0.005), mesh,  # bounds wide enough to hold no cell
                         INRConfig.auto(progress=False, prior="smooth", bounds=(-1e7, 1e7)))
    assert float(np.abs(res.model).max()) > MAX_CONTRAST_KGM3
    said = [r.getMessage() for r in caplog.records]
    assert any("beyond any rock's density contrast" in m for m in said)
    assert any("18 station(s) lie beyond the mesh's horizontal extent" in m for m in said)


def test_one_station_inverts_without_a_regional_choice():
    mesh = _block_mesh(n=6, nz=3)
    loc = np.array([[150.0, 150.0, 10.0]])
    res = invert_inr(Survey(loc, gz=[0.2], std=[0.01]), mesh, INRConfig.auto(progress=False, max_steps=20))
    assert res.regional_selection["kind"] == "none"
    assert "too few" in res.regional_selection["rule"]


def test_stations_in_degrees_on_a_metric_mesh_are_refused_and_the_far_hint_names_invert_s_route():
    mesh = _block_mesh()
    lonlat = np.c_[-3.70 + 1e-4 * np.arange(9), 40.41 + 1e-4 * np.arange(9), np.full(9, 10.0)]
    with pytest.raises(ValueError, match="degrees instead of metres"):
        mesh.check_stations(lonlat)
    with pytest.raises(ValueError, match="check_stations: false in an invert --config file"):
        mesh.check_stations([[1e6, 0.0, 10.0]])
    beside = np.r_[_grid_stations(), [[600.0, 250.0, 10.0]]]  # a metric survey partly beside the mesh: legal
    mesh.check_stations(beside)
    assert "1 station(s) lie beyond the mesh's horizontal extent" in stations_beyond(mesh, beside)
    assert stations_beyond(mesh, _grid_stations()) is None


def test_a_topography_that_misses_the_mesh_or_lies_above_the_stations_is_said():
    dmesh = TensorMesh([np.full(10, 50.0), np.full(10, 50.0), np.full(5, 10.0)], origin=(0.0, 0.0, -50.0))
    gx, gy = np.meshgrid(np.linspace(-50, 550, 13), np.linspace(-50, 550, 13))
    topo = np.c_[gx.ravel(), gy.ravel(), np.full(gx.size, -20.0)]
    on_ground = _grid_stations(z=-20.0)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        check_topography(dmesh, topo, on_ground)  # stations on the ground, topography over the mesh: quiet
        check_topography(dmesh, topo, on_ground - [0.0, 0.0, 4.0])  # 4 m below: within half the 10 m cells
    assert not w
    with pytest.raises(ValueError, match="does not overlap the mesh"):
        check_topography(dmesh, topo + [1e5, 0.0, 0.0])
    with pytest.warns(UserWarning, match="below the topography"):
        check_topography(dmesh, topo, on_ground - [0.0, 0.0, 6.0])
    with pytest.warns(UserWarning, match="beyond the topography's extent"):
        check_topography(dmesh, topo[topo[:, 0] < 250], on_ground)


def test_a_profile_s_trend_is_removed_along_its_line_before_the_bound():
    # stations on one line: the datum and the trend along it go before the comparison, as a plane's would
    mesh = _block_mesh()
    line = np.c_[np.linspace(25, 475, 19), np.full(19, 250.0), np.full(19, 10.0)]
    d = _block_data(mesh, line) + 40.0 + 0.5 * line[:, 0]  # a steep regional trend along the profile
    check_data(d, line, mesh)
    with pytest.raises(ValueError, match="µGal"):
        check_data(_block_data(mesh, line, contrast=3000.0) * 1e3, line, mesh)


def test_stations_on_faces_within_the_active_cells_are_refused_but_not_on_the_ground():
    mesh = _block_mesh()  # 50 m layers, top at z = 0
    with pytest.raises(ValueError, match="36 station.s. lie on faces between active cells, with active cells all"):
        mesh.check_stations(_grid_stations(z=-100.0))  # depths given as negative elevations, on a layer's face
    mesh.check_stations(_grid_stations(z=0.0))  # on the ground: legal
    edge = np.array([[100.0, 250.0, -75.0], [100.0, 100.0, -75.0], [0.0, 250.0, -75.0]])  # vertical face, edge, side
    with pytest.raises(ValueError, match="2 station.s. lie on faces between active cells"):
        mesh.check_stations(edge)
    mesh.check_stations(edge[2:])  # on the mesh's side face: beside the ground, legal
    with pytest.warns(UserWarning, match="36 station.s. lie inside active cells"):  # borehole data where allowed
        mesh.check_stations(_grid_stations(z=-100.0), inside="warn")
