"""The compact model on a graded mesh's core: the padding holds the background."""

import logging

import numpy as np
import pytest
from discretize import TensorMesh

import gempy_gravinv as gg
from gempy_gravinv._forward import forward_gz
from gempy_gravinv.cases.suite import build_case
from gempy_gravinv.inversion._core_cells import core_of
from gempy_gravinv.inversion._period import in_core
from gempy_gravinv.inversion._problem import Problem
from gempy_gravinv.metrics import pearson_r


def _padded(n: int = 10, h: float = 50.0, pad: int = 3) -> gg.PrismMesh:
    """``n`` x ``n`` x 6 core cells of ``h`` m centred on x = y = 0 below z = 0, ``pad`` cells growing by 1.3."""
    hx = [(h, pad, -1.3), (h, n), (h, pad, 1.3)]
    return gg.PrismMesh.from_discretize(TensorMesh([hx, hx, [(h, pad, -1.3), (h, 6)]], "CCN"))


def _survey(mesh: gg.PrismMesh, half: float, seed: int = 0):
    """A block of +300 kg/m³ under a 10 x 10 station grid over ±``half`` m, 5 m up; 1% noise."""
    c = mesh.cell_centers
    model = np.where((np.abs(c[:, 0]) < 100) & (np.abs(c[:, 1] - 25) < 75) & (c[:, 2] < -50) & (c[:, 2] > -200),
                     300.0, 0.0)
    xs = np.linspace(-half, half, 10)
    X, Y = np.meshgrid(xs, xs)
    st = np.c_[X.ravel(), Y.ravel(), np.full(X.size, 5.0)]
    g = forward_gz(mesh, st, model)
    std = 0.01 * np.abs(g).max()
    return gg.Survey(st, g + np.random.default_rng(seed).normal(0.0, std, len(g)), np.full(len(g), std)), model


def _problem(survey, mesh, **options) -> Problem:
    cfg = gg.INRConfig.auto(bounds=(-600.0, 600.0), prior="compact", regional="none", start_fallback=False,
                            progress=False, **options)
    return Problem(survey, mesh, cfg)


@pytest.mark.usefixtures("one_torch_thread")
def test_the_compact_model_on_a_designed_mesh_keeps_the_padding_at_the_background():
    """A deep block on the padded mesh designed from its stations: without the core, mass leaks into the padding."""
    case = build_case("deep_body", noise_seed=0)
    mesh, _ = gg.mesh_from_survey(case.survey, ground_elevation=float(case.mesh.source.nodes[:, 2].max()))
    core = in_core(mesh)
    assert core is not None and 0 < core.sum() < mesh.n_cells
    truth = np.zeros(mesh.n_cells)  # the true block on the designed mesh's cells (the case's mesh is uniform)
    inside = np.all((mesh.cell_centers >= case.mesh.extent[0::2]) & (mesh.cell_centers <= case.mesh.extent[1::2]), 1)
    truth[inside] = case.model[np.asarray(case.mesh.source.point2index(mesh.cell_centers[inside]))]
    runs = {on: gg.invert_inr(case.survey, mesh, gg.INRConfig.auto(bounds=case.bounds, compact_on_core=on),
                              true_model=truth, progress=False) for on in (True, False)}
    on, off = runs[True], runs[False]
    assert on.prior_selection["prior"] == off.prior_selection["prior"] == "compact"
    cells = on.prior_selection["cells"]
    assert cells["trained"] == int(core.sum()) and cells["mesh"] == mesh.n_cells
    assert "core" in on.prior_selection["rule"] and "cells" not in off.prior_selection
    assert on.metrics_report()["prior_selection"]["cells"]["trained"] == int(core.sum())
    # the padding holds the background: the model, and the field read anywhere beyond the core
    assert on.mesh is mesh and on.model.shape == (mesh.n_cells,) and np.all(on.model[~core] == 0.0)
    assert np.all(on.evaluate(mesh.cell_centers[~core]) == 0.0)
    np.testing.assert_allclose(on.evaluate(mesh.cell_centers[core]), on.model[core], atol=1e-3)
    assert on.config.compact_on_core and on.config.prior_from_data  # the settings as the user's run chose them
    assert abs(on.chi2 - 1.0) < 0.06 and abs(off.chi2 - 1.0) < 0.06
    np.testing.assert_allclose(on.metrics["pearson_r"], pearson_r(on.model, truth), atol=1e-9)
    # without the core, part of the mass goes into the padding and the block comes out smeared
    mass = np.abs(off.model) * mesh.volumes
    assert mass[~core].sum() > 0.005 * mass.sum()
    assert on.metrics["pearson_r"] > off.metrics["pearson_r"] + 0.03, (on.metrics["pearson_r"],
                                                                      off.metrics["pearson_r"])


def test_the_core_needs_a_margin_past_the_stations_and_bounds_that_admit_zero(caplog):
    mesh = _padded()
    survey, _ = _survey(mesh, half=150.0)  # the core reaches 250 m: a margin of 100 m >= max(50, 30) m
    core = core_of(_problem(survey, mesh))
    assert core is not None and np.array_equal(core.keep, in_core(mesh))
    np.testing.assert_allclose(core.box, [-250, 250, -250, 250, -300, 0])
    wide, _ = _survey(mesh, half=240.0)  # stations to 10 m from the core's edge
    with caplog.at_level(logging.INFO, logger="gempy_gravinv"):
        assert core_of(_problem(wide, mesh)) is None
    assert "less than the margin" in caplog.text
    assert core_of(_problem(survey, mesh, compact_on_core=False)) is None
    positive = Problem(survey, mesh, gg.INRConfig.auto(bounds=(50.0, 600.0), prior="compact", regional="none",
                                                       progress=False))
    assert core_of(positive) is None  # bounds without 0: no background to hold
    uniform = gg.PrismMesh.from_discretize(TensorMesh([[(50.0, 10)], [(50.0, 10)], [(50.0, 6)]], "CCN"))
    assert core_of(_problem(_survey(uniform, half=150.0)[0], uniform)) is None  # no padding, no core


@pytest.mark.usefixtures("one_torch_thread")
def test_a_run_on_the_core_resumes_and_takes_a_given_operator(tmp_path):
    mesh = _padded()
    survey, model = _survey(mesh, half=150.0)
    kw = dict(bounds=(-600.0, 600.0), prior="compact", regional="none", start_fallback=False, max_steps=60,
              progress=False)
    whole = gg.invert_inr(survey, mesh, gg.INRConfig.auto(**kw))
    assert whole.prior_selection["cells"]["trained"] == int(in_core(mesh).sum())
    ck = tmp_path / "ck"
    part = gg.invert_inr(survey, mesh, gg.INRConfig.auto(**kw), checkpoint=ck, stop_after=25)
    assert not part.completed and np.all(part.model[~in_core(mesh)] == 0.0)
    resumed = gg.invert_inr(survey, mesh, gg.INRConfig.auto(**kw), checkpoint=ck, resume=True)
    assert resumed.completed
    np.testing.assert_array_equal(resumed.model, whole.model)
    G = gg.GravityOperator(mesh, survey.locations, store="dense").dense().numpy()
    given = gg.invert_inr(survey, mesh, gg.INRConfig.auto(**kw), operator=G)
    assert given.prior_selection["cells"]["trained"] == int(in_core(mesh).sum())
    assert np.all(given.model[~in_core(mesh)] == 0.0) and abs(given.chi2 - whole.chi2) < 0.1
