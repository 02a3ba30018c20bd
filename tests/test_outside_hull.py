"""Cells beside the survey: the start's prior scale and the minimum-support threshold.

Outside the stations' horizontal hull the depth weight of the minimum-support prior grows
with the fall of the g_z sensitivity (:class:`SurfaceDepth`), which keeps those cells empty
unless the data need them. The least-squares start instead measures depth there as the
distance from the survey (:class:`HullDistanceDepth`): a prior scale that grows as the
sensitivity falls lets the ridge model put mass into the cells the data hardly see. And
the cooled threshold ε is read from the start's amplitude by volume over the cells under
the stations, so refining or padding a mesh does not move it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gempy_gravinv import INRConfig, PrismMesh, Survey, invert_inr
from gempy_gravinv.cases import synthetic
from gempy_gravinv.inversion._depth import HullDistanceDepth, SurfaceDepth, distance_model, footprint
from gempy_gravinv.inversion._problem import Problem
from gempy_gravinv.inversion._regularizers import SUPPORT_PERCENTILE, volume_percentile
from gempy_gravinv.metrics import pearson_r

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _inner_block():
    """The dipping block's mesh (21 x 21 cells of 50 m) with the stations over its central 11 x 11 cells only."""
    case = synthetic.dipping_block(noise_seed=0)
    loc = case.survey.locations
    core = (np.abs(loc[:, 0] - 500.0) <= 250.0) & (np.abs(loc[:, 1] - 500.0) <= 250.0)
    return case, Survey(loc[core], case.survey.gz[core], std=case.survey.std[core])


def test_beside_the_survey_the_start_s_depth_is_the_distance_from_it():
    case, inner = _inner_block()
    surface = SurfaceDepth(inner, case.mesh)
    dist = distance_model(surface)
    assert isinstance(dist, HullDistanceDepth) and dist is surface.distance_model()
    assert dist.reference == surface.reference
    z_top = 1.0  # the stations' elevation
    probe = np.array([[500.0, 500.0, -275.0], [750.0, 500.0, -275.0], [1000.0, 500.0, -275.0],
                      [1000.0, 1000.0, -275.0], [1000.0, 500.0, -25.0]])
    d_s = surface.depth(torch.as_tensor(probe)).numpy()
    d = dist.depth(torch.as_tensor(probe)).numpy()
    np.testing.assert_allclose(d[:2], d_s[:2], rtol=1e-12)  # under the survey and on its edge: the same
    vertical = z_top - probe[:, 2]
    np.testing.assert_allclose(d[2:], np.hypot(vertical[2:], [250.0, 250.0 * np.sqrt(2.0), 250.0]), rtol=1e-9)
    # a cell 250 m beside the survey, 26 m below the stations' level: its g_z sensitivity is that of a
    # cell several hundred metres under the survey, its distance 251 m
    assert d_s[4] > 4.0 * d[4]
    # the cells' depths are those of any other points; none is shallower than the reference
    cc = torch.as_tensor(case.mesh.cell_centers)
    np.testing.assert_allclose(dist.depth(cc).numpy(), dist._uncached(cc + 0.0).numpy(), rtol=1e-12)
    assert float(dist.depth(cc).min()) == pytest.approx(dist.reference, rel=1e-12)


def test_the_distance_depth_scales_with_length():
    case, inner = _inner_block()
    probe = np.array([[1000.0, 700.0, -125.0], [40.0, 20.0, -475.0], [600.0, 400.0, -75.0]])
    d1 = HullDistanceDepth(SurfaceDepth(inner, case.mesh)).depth(torch.as_tensor(probe)).numpy()
    big = Survey(inner.locations * 10.0, inner.gz * 10.0, std=inner.std * 10.0)
    d10 = HullDistanceDepth(SurfaceDepth(big, PrismMesh(case.mesh.bounds * 10.0))).depth(torch.as_tensor(probe * 10.0))
    np.testing.assert_allclose(d10.numpy(), 10.0 * d1, rtol=1e-9)


def test_the_volume_percentile_does_not_move_when_cells_are_split():
    rng = np.random.default_rng(3)
    values = rng.lognormal(0.0, 1.0, 500)
    ones = np.ones(500)
    assert volume_percentile(values, ones, 90.0) == np.percentile(values, 90.0, method="inverted_cdf")
    # every cell split into 8 of an eighth of its volume: the same percentile
    assert volume_percentile(np.repeat(values, 8), np.full(4000, 1 / 8), 90.0) == volume_percentile(values, ones, 90.0)
    # a large cell weighs as its volume: one cell holding 95 % of the volume decides the 90th percentile
    vol = np.r_[ones, 19.0 * 500.0]
    assert volume_percentile(np.r_[values, 0.5], vol, 90.0) == 0.5


def test_the_cooled_eps_reads_the_start_under_the_stations_by_volume():
    case, inner = _inner_block()
    prob = Problem(inner, case.mesh, INRConfig.auto(bounds=(-1e5, 1e5), prior_from_data=False, progress=False,
                                                    max_steps=150, warm_start_steps=100, dtype="float64"))
    reg = prob.reg
    inside = footprint(inner.locations, case.mesh.cell_centers)
    assert 0 < inside.sum() < case.mesh.n_cells
    amp = np.abs(reg.w.numpy() * prob.least_squares_start().numpy())
    a = volume_percentile(amp[inside], case.mesh.volumes[inside], SUPPORT_PERCENTILE)
    assert reg.cooling_steps > 0 and reg.eps_at(0) == pytest.approx(a, rel=1e-9)
    assert a != pytest.approx(np.percentile(amp, SUPPORT_PERCENTILE), rel=1e-3)  # not over all cells


def test_under_topography_the_start_and_the_model_put_the_body_under_the_stations(graded_benchmark):
    """A +247 kg/m³ box 58 m down in a 13 m valley (an octree of 10 m cells padded to 320 m, stations over ±80 m).

    The start's prior scale grown with the sensitivity beside the survey put its largest
    contrasts there (921 kg/m³ against 320 under the stations; r 0.18), and the compact
    model kept a 1.3e9 kg dipole beside the survey (r 0.26; SimPEG sparse 0.85, L2 0.63).
    """
    pf = graded_benchmark
    survey, mesh, model, _, _ = pf.build(13200, "topography", "bodies")
    res = invert_inr(survey, mesh, None, bounds=pf.BOUNDS, progress=False)
    inside = footprint(survey.locations, res.mesh.cell_centers)
    prob = Problem(survey, res.mesh, INRConfig.default(survey, bounds=pf.BOUNDS, progress=False))
    start = prob.least_squares_start().numpy()
    assert np.abs(start[~inside]).max() < 0.25 * np.abs(start[inside]).max()  # measured 20 against 328
    assert pearson_r(start, model) > 0.5  # measured 0.676
    assert res.prior_selection["prior"] == "compact"
    assert pearson_r(res.model, model) > 0.55  # measured 0.666


def test_off_a_profile_line_the_start_s_depth_is_the_distance_from_the_line():
    """Stations on one line: their hull is the segment between the end stations, every other cell is beside it."""
    case = synthetic.dipping_block(noise_seed=0)
    x = np.linspace(250.0, 750.0, 21)
    line = Survey(np.column_stack([x, np.full(21, 500.0), np.full(21, 1.0)]), np.zeros(21), std=np.full(21, 0.01))
    dist = distance_model(SurfaceDepth(line, case.mesh))
    probe = np.array([[500.0, 500.0, -99.0], [500.0, 700.0, -99.0], [900.0, 500.0, -99.0], [900.0, 300.0, -99.0]])
    d = dist.depth(torch.as_tensor(probe)).numpy()
    np.testing.assert_allclose(d, np.hypot(100.0, [0.0, 200.0, 150.0, 250.0]), rtol=1e-9)
    inside = footprint(line.locations, case.mesh.cell_centers)
    assert inside.all()  # no area: every cell is tested, and ε is read over all of them
