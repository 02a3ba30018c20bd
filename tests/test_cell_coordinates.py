"""The network's grid in the mesh's cell-index space, and the run that falls back to it."""

import dataclasses
import logging

import numpy as np
import pytest
import torch
from discretize import TensorMesh, TreeMesh

import gempy_gravinv as gg
from gempy_gravinv._forward import forward_gz
from gempy_gravinv.density._warp import CellIndexWarp, axis_knots
from gempy_gravinv.inversion._problem import Problem


def _padded(h=10.0, core=12, pad=8, grow=1.5, nz=6):
    hx = [(h, pad, -grow), (h, core), (h, pad, grow)]
    return gg.PrismMesh.from_discretize(TensorMesh([hx, hx, [(h, pad, -grow), (h, nz)]], "CCN"))


def _warped(mesh):
    return CellIndexWarp.from_mesh(mesh)(torch.as_tensor(mesh.cell_centers)).numpy()


def test_the_warp_is_the_cell_index_on_a_padded_tensor_mesh():
    tm = TensorMesh([[(10.0, 5, -1.4), (10.0, 12), (10.0, 5, 1.4)], [(20.0, 3, -1.3), (20.0, 4)], [(5.0, 6)]], "CCN")
    mesh = gg.PrismMesh.from_discretize(tm)
    u = _warped(mesh)
    for a, x in enumerate((tm.cell_centers_x, tm.cell_centers_y, tm.cell_centers_z)):
        index = np.searchsorted(x, mesh.cell_centers[:, a])  # the cell's index along the axis
        np.testing.assert_allclose(u[:, a], index + 0.5, atol=1e-9)


def test_the_warp_of_cells_of_one_size_is_affine():
    mesh = gg.PrismMesh.from_discretize(TensorMesh([[(50.0, 8)], [(50.0, 6)], [(25.0, 4)]], "CCN"))
    u = _warped(mesh)
    lo = mesh.extent[0::2]
    np.testing.assert_allclose(u, (mesh.cell_centers - lo) / np.array([50.0, 50.0, 25.0]), atol=1e-9)


def test_the_warp_follows_the_finest_cells_of_an_octree():
    tree = TreeMesh([[(10.0, 32)], [(10.0, 32)], [(10.0, 16)]], origin="CCN", diagonal_balance=False)
    tree.refine_points(np.array([[0.0, 0.0, -5.0]]), level=-1, padding_cells_by_level=[2, 2, 2], finalize=True)
    mesh = gg.PrismMesh.from_discretize(tree)
    b, w = mesh.bounds, mesh.cell_widths
    for a in range(3):
        x, u = axis_knots(b[:, 2 * a], b[:, 2 * a + 1])
        assert np.all(np.diff(u) > 0)
        mid = (x[:-1] + x[1:]) / 2
        over = (b[:, 2 * a][None, :] < mid[:, None]) & (b[:, 2 * a + 1][None, :] > mid[:, None])
        finest = np.where(over, w[None, :, a], np.inf).min(1)
        np.testing.assert_allclose(np.diff(u) / np.diff(x), 1.0 / finest, rtol=1e-9)
        assert np.isclose(finest.min(), 10.0) and finest.max() >= 4 * finest.min()  # fine and coarse parts


def test_cells_is_for_a_grid_only():
    mesh = _padded()
    p = torch.as_tensor(mesh.cell_centers[:50])
    a = gg.INRDensity(mesh, encoding="positional", normalization="cells", seed=0)
    b = gg.INRDensity(mesh, encoding="positional", normalization="zscore", seed=0)
    with torch.no_grad():
        np.testing.assert_array_equal(a(p).numpy(), b(p).numpy())  # metres-based frequencies: z-scored
    assert isinstance(gg.INRDensity(mesh, encoding="hash", normalization="cells").normalizer, CellIndexWarp)
    with pytest.raises(ValueError, match="needs a mesh"):
        gg.INRDensity(points=mesh.cell_centers, encoding="hash", normalization="cells")
    with pytest.raises(ValueError, match="normalization"):
        gg.INRConfig.auto(normalization="cell").validate()


def _body_case(mesh, seed=0):
    rng = np.random.default_rng(seed)
    c = mesh.cell_centers
    model = np.where(np.all(np.abs(c - [5.0, -5.0, -25.0]) <= [15.0, 15.0, 10.0], axis=1), 250.0, 0.0)
    xy = rng.uniform(-55.0, 55.0, (120, 2))
    st = np.column_stack([xy, np.full(len(xy), 1.0)])
    g = forward_gz(mesh, st, model)
    std = 0.01 * np.std(g) + 0.001 * np.abs(g).max()
    return gg.Survey(st, g + rng.normal(0.0, std, len(g)), np.full(len(g), std)), model


@pytest.mark.usefixtures("one_torch_thread")
def test_a_grid_in_cell_index_space_represents_the_start_of_a_padded_mesh():
    # 12 core cells of 10 m inside 8 padding cells growing 1.5x a side: the box is 160 cells wide, and a grid of 32
    # vertices spread over it gives the core about 2.4 of its cells; in cell-index space, about 9
    mesh = _padded()
    survey, _ = _body_case(mesh)
    cfg = gg.INRConfig.auto(bounds=(-600.0, 600.0), prior_from_data=False, regional="none")
    chi2 = {}
    for norm in ("zscore", "cells"):
        prob = Problem(survey, mesh, dataclasses.replace(cfg, normalization=norm))
        field = prob.make_field(0)
        with torch.no_grad():
            chi2[norm] = float(prob.chi2(prob.cell_density(field)))
    # the start itself is at the target (χ²/N 1); its image through each network:
    assert chi2["cells"] < 1.5, chi2
    assert chi2["zscore"] > 2 * chi2["cells"], chi2


@pytest.mark.usefixtures("one_torch_thread")
def test_a_run_that_does_not_fit_a_graded_mesh_trains_again_in_cell_index_space(caplog):
    mesh = _padded()
    survey, model = _body_case(mesh)
    with caplog.at_level(logging.WARNING, logger="gempy_gravinv"):
        res = gg.invert_inr(survey, mesh, gg.INRConfig.auto(bounds=(-600.0, 600.0), prior_from_data=False,
                                                            regional="none", start_fallback=False),
                            true_model=model, progress=False)
    sel = res.coordinate_selection
    assert sel is not None, res.chi2
    assert sel["chi2"]["box"] > 1.05  # the first run did not fit the data
    assert sel["coordinates"] == "cells" and res.config.normalization == "cells"
    assert sel["chi2"]["cells"] < sel["chi2"]["box"] and abs(res.chi2 - 1.0) < 0.06
    assert "cell-index space" in caplog.text and "coordinates=cells" in res.summary()
    assert res.metrics_report()["coordinate_selection"]["coordinates"] == "cells"
    assert res.metrics["pearson_r"] > 0.5


def test_a_run_that_does_not_fit_cells_of_one_size_is_warned_about(caplog, one_torch_thread):
    mesh = gg.PrismMesh.from_discretize(TensorMesh([[(10.0, 12)], [(10.0, 12)], [(10.0, 6)]], "CCN"))
    survey, _ = _body_case(mesh)
    with caplog.at_level(logging.WARNING, logger="gempy_gravinv"):
        res = gg.invert_inr(survey, mesh, gg.INRConfig.auto(bounds=(-600.0, 600.0), prior_from_data=False,
                                                            regional="none", start_fallback=False,
                                                            warm_start="none", max_steps=3), progress=False)
    assert res.chi2 > 1.05 and res.coordinate_selection is None
    assert "ends above the target misfit" in caplog.text and "cell-index" not in caplog.text
