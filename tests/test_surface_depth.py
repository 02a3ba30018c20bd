"""Depth below the surface through the stations (``depth_from="station_surface"``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gempy_gravinv import INRConfig, PrismMesh, Survey, invert_inr
from gempy_gravinv.cases import suite, synthetic
from gempy_gravinv.inversion._depth import StationDepth, SurfaceDepth, hull_distance, make_depth, station_surface


def test_flat_survey_depth_is_the_vertical_distance_at_every_position():
    """Stations 1 m above z = 0: every cell's depth is 1 m - z, at the edges as at the centre.

    The sensitivity-derived depth makes a corner cell about 1.6x deeper than the centre
    cell of the same layer (fewer stations see it); the surface depth does not.
    """
    case = synthetic.dipping_block(noise_seed=0)
    cc = case.mesh.cell_centers
    d = SurfaceDepth(case.survey, case.mesh).depth(torch.as_tensor(cc)).numpy()
    np.testing.assert_allclose(d, 1.0 - cc[:, 2], rtol=1e-12)
    layer = np.isclose(cc[:, 2], -275.0)  # the sixth layer of 50 m cells
    edge = layer & np.isclose(cc[:, 0], cc[:, 0].min()) & np.isclose(cc[:, 1], cc[:, 1].min())
    centre = layer & np.isclose(cc[:, 0], 500.0) & np.isclose(cc[:, 1], 500.0)
    q = StationDepth(case.survey, case.mesh).depth(torch.as_tensor(cc)).numpy()
    assert q[edge][0] > 1.3 * q[centre][0]
    assert d[edge][0] == pytest.approx(d[centre][0])


def test_surface_depth_follows_draped_stations_and_scales_with_length():
    """Stations 5 m above a Gaussian hill: the depth is the distance below the station surface."""
    case = suite.build_case("tutorial_topo", quick=True)
    depth = SurfaceDepth(case.survey, case.mesh)
    loc = case.survey.locations
    # at the stations' own positions, two cell heights below them
    below = 2 * float(case.mesh.cell_widths[:, 2].min())
    probe = loc - np.array([0.0, 0.0, below])
    np.testing.assert_allclose(depth.depth(torch.as_tensor(probe)).numpy(), below, rtol=1e-9)
    assert depth.reference == pytest.approx(float(depth.depth(torch.as_tensor(case.mesh.cell_centers)).min()))
    # every length times 10: every depth times 10
    s10 = Survey(loc * 10, gz=case.survey.gz * 10, std=case.survey.std * 10)
    m10 = PrismMesh(case.mesh.bounds * 10)
    np.testing.assert_allclose(SurfaceDepth(s10, m10).depth(torch.as_tensor(m10.cell_centers)).numpy(),
                               10 * depth.depth(torch.as_tensor(case.mesh.cell_centers)).numpy(), rtol=1e-9)


def test_station_surface_outside_the_stations_and_without_an_area():
    """Linear inside the triangulation, the nearest station outside; lines and single stations work."""
    loc = np.array([[0.0, 0.0, 10.0], [100.0, 0.0, 20.0], [0.0, 100.0, 30.0], [100.0, 100.0, 40.0]])
    xy = np.array([[50.0, 50.0], [0.0, 50.0], [300.0, 0.0], [-50.0, 120.0]])
    np.testing.assert_allclose(station_surface(loc)(xy), [25.0, 20.0, 20.0, 30.0])
    line = np.c_[np.arange(5.0) * 10, np.zeros(5), np.arange(5.0)]  # collinear: nearest station
    np.testing.assert_allclose(station_surface(line)(np.array([[21.0, 50.0], [-5.0, 0.0]])), [2.0, 0.0])
    np.testing.assert_allclose(station_surface(loc[:1])(xy), 10.0)
    # two components at each position count once, at their mean elevation
    twice = np.r_[loc, loc + np.array([0.0, 0.0, 2.0])]
    np.testing.assert_allclose(station_surface(twice)(xy[:1]), 26.0)
    # the distance to the stations' hull and its nearest point: 0 inside and on the edge
    dist, near = hull_distance(loc, np.array([[50.0, 50.0], [100.0, 30.0], [130.0, 30.0], [130.0, 140.0]]))
    np.testing.assert_allclose(dist, [0.0, 0.0, 30.0, 50.0])
    np.testing.assert_allclose(near, [[50.0, 50.0], [100.0, 30.0], [100.0, 30.0], [100.0, 100.0]])
    # stations on a line: the hull is the segment between the extreme ones (x 0..40, y 0)
    dist, near = hull_distance(line, np.array([[20.0, 0.0], [20.0, 30.0], [70.0, -40.0]]))
    np.testing.assert_allclose(dist, [0.0, 30.0, 50.0], atol=1e-9)
    np.testing.assert_allclose(near, [[20.0, 0.0], [20.0, 0.0], [40.0, 0.0]], atol=1e-9)
    np.testing.assert_allclose(hull_distance(loc[:1], np.array([[3.0, 4.0]]))[0], 5.0)  # one station


def test_surface_depth_floor_and_bad_input():
    """A point at or above the stations gets a quarter of the smallest cell height; a bad name is refused."""
    case = synthetic.dipping_block(noise_seed=0)
    d = make_depth("station_surface", case.mesh, case.survey)
    assert d.kind == "station_surface"
    np.testing.assert_allclose(d.depth(torch.tensor([[500.0, 500.0, 1.0], [500.0, 500.0, 80.0]])).numpy(), 12.5)
    with pytest.raises(ValueError, match="depth_from"):
        make_depth("nowhere", case.mesh, case.survey)


def test_a_body_at_the_survey_edge_stays_where_it_is():
    """Two bodies, the deeper one near the survey's edge: its mass centroid is under it.

    The sensitivity-derived depth weighs cells near the edge as deeper (fewer stations see
    them), so the minimum-support stage pulls that body's mass toward the survey's centre.
    """
    case = suite.build_case("two_bodies", noise_seed=0)
    cc, t = case.mesh.cell_centers, case.model
    neg = t < 0
    truth = cc[neg, :2].mean(0)

    def shift(depth_from):
        res = invert_inr(case.survey, case.mesh, INRConfig.auto(bounds=case.bounds, depth_from=depth_from,
                                                                progress=False))
        w = np.clip(-res.model, 0.0, None)
        return np.linalg.norm((w[:, None] * cc[:, :2]).sum(0) / w.sum() - truth), \
            float(np.corrcoef(res.model, t)[0, 1])

    off_surface, r_surface = shift("station_surface")
    off_sens, r_sens = shift("stations")
    # metres; cells are 50 m. The training's path depends on the CPU's float32 rounding
    # (16 / 49 m and r 0.747 / 0.740 on one machine, under 15 m and r 0.05 apart on
    # another), so the margins are half a cell and a halving of the shift
    assert off_surface < 25.0 < off_sens and off_surface < 0.5 * off_sens
    assert r_surface > r_sens - 0.02


def test_outside_the_stations_hull_the_depth_grows_as_the_sensitivity_falls():
    """Stations over the central 11 x 11 cells of a 21 x 21 mesh: the padding comes out deep.

    Inside the hull the depth is the vertical distance; it is continuous at the hull's
    edge and grows beyond it with the data's sensitivity, so a cell far outside counts
    as several times deeper than one at the same level under the stations.
    """
    case = synthetic.dipping_block(noise_seed=0)
    loc = case.survey.locations
    core = (np.abs(loc[:, 0] - 500.0) <= 250.0) & (np.abs(loc[:, 1] - 500.0) <= 250.0)
    inner = Survey(loc[core], case.survey.gz[core], std=case.survey.std[core])
    depth = SurfaceDepth(inner, case.mesh)
    z = -275.0
    probe = np.array([[500.0, 500.0, z], [750.0, 500.0, z], [760.0, 500.0, z], [1000.0, 500.0, z],
                      [1000.0, 1000.0, z]])
    d = depth.depth(torch.as_tensor(probe)).numpy()
    vertical = 1.0 - z
    np.testing.assert_allclose(d[:2], vertical, rtol=1e-12)  # under the centre and on the hull's edge
    assert d[2] == pytest.approx(vertical, rel=0.05)  # 10 m outside: continuous
    assert d[3] > 1.3 * vertical and d[4] > d[3]  # far outside: deeper, and deeper still at the corner
    # the cells' depths are those of any other points
    cc = torch.as_tensor(case.mesh.cell_centers)
    np.testing.assert_allclose(depth.depth(cc).numpy(), depth._depth(cc + 0.0).numpy(), rtol=1e-12)


def test_off_a_profile_line_the_depth_grows_as_the_sensitivity_falls():
    """One line of 21 stations: under it the vertical distance, off it deeper."""
    case = synthetic.dipping_block(noise_seed=0)
    loc = case.survey.locations
    on = np.isclose(loc[:, 1], 500.0)
    line = Survey(loc[on], case.survey.gz[on], std=case.survey.std[on])
    depth = SurfaceDepth(line, case.mesh)
    under = np.array([[500.0, 500.0, -275.0]])
    off = np.array([[500.0, 700.0, -275.0]])
    assert depth.depth(torch.as_tensor(under)).item() == pytest.approx(276.0)
    assert depth.depth(torch.as_tensor(off)).item() > 1.05 * 276.0
