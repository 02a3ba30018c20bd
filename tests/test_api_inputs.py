"""Inputs as Python users pass them: tables, tensors from the operator, single numbers, paused runs."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from gempy_gravinv import GravityOperator, INRConfig, PrismMesh, Survey, invert_inr
from gempy_gravinv.compare import station_cv


def _mesh():
    return PrismMesh.from_tensor(np.full(6, 50.0), np.full(6, 50.0), np.full(3, 50.0), origin=(0.0, 0.0, -150.0))


def _stations(n=5):
    x, y = np.meshgrid(np.linspace(25, 275, n), np.linspace(25, 275, n))
    return np.c_[x.ravel(), y.ravel(), np.full(x.size, 10.0)]


def _block(mesh):
    c = mesh.cell_centers
    return np.where((np.abs(c[:, 0] - 150) < 60) & (np.abs(c[:, 1] - 150) < 60) & (c[:, 2] > -100), 300.0, 0.0)


def test_a_table_s_columns_are_read_by_name_and_the_operator_s_output_is_data():
    pd = pytest.importorskip("pandas")
    loc = _stations()
    table = pd.DataFrame({"z": loc[:, 2], "x": loc[:, 0], "y": loc[:, 1]})  # not in x, y, z order
    np.testing.assert_array_equal(Survey(table).locations, loc)
    mesh = _mesh()
    gz = GravityOperator(mesh, Survey(loc), device="cpu")(torch.tensor(_block(mesh), requires_grad=True))
    assert gz.requires_grad
    s = Survey(loc, gz=gz, std=0.01)  # the tensor's values, not an error from numpy()
    np.testing.assert_allclose(s.gz, gz.detach().numpy())


def test_a_single_number_for_bounds_is_named():
    with pytest.raises(TypeError, match="bounds must be a pair"):
        INRConfig.auto(bounds=600)


def test_the_spline_of_held_out_stations_refuses_stations_on_one_line_before_any_fit():
    mesh = _mesh()
    line = np.c_[np.linspace(25, 275, 12), np.full(12, 150.0), np.full(12, 10.0)]
    sv = Survey(line, gz=np.linspace(0.1, 0.3, 12), std=0.01)
    with pytest.raises(ValueError, match="span an area"):
        station_cv(sv, mesh, methods=["inr", "tps"], k=3)
    with pytest.raises(TypeError, match="list of method names"):
        station_cv(sv, mesh, methods="tps", k=3)


def test_a_run_paused_by_stop_after_says_so(tmp_path):
    mesh, loc = _mesh(), _stations()
    from gempy_gravinv import forward_gz

    sv = Survey(loc, gz=forward_gz(mesh, loc, _block(mesh)), std=0.005)
    cfg = INRConfig.compact(progress=False, max_steps=30)
    res = invert_inr(sv, mesh, cfg, checkpoint=tmp_path / "ck", stop_after=5)
    assert not res.completed and res.stop_reason.startswith("paused at step 5 of 30")
    done = invert_inr(sv, mesh, cfg, checkpoint=tmp_path / "ck", resume=True)
    assert done.completed and "paused" not in done.stop_reason


def test_simpeg_ending_far_above_its_target_is_said(caplog):
    from gempy_gravinv.simpeg import run_inversion

    mesh, loc = _mesh(), _stations()
    from gempy_gravinv import forward_gz

    sv = Survey(loc, gz=forward_gz(mesh, loc, _block(mesh)), std=0.001)
    with caplog.at_level(logging.WARNING, logger="gempy_gravinv"):  # bounds in g/cm³ where kg/m³ are meant
        res = run_inversion(sv, mesh, "l2", bounds=(-0.6, 0.6), max_iter=5)
    assert res.chi2 > 10
    assert any("far above its target" in r.getMessage() for r in caplog.records)
