"""Back into GemPy: densities on a GemPy regular grid, VTK export, off-screen 3D view."""

import numpy as np
import pytest
import torch

from gempy_gravinv import PrismMesh
from gempy_gravinv.gempy_view import (
    GridDensity,
    density_on_geomodel_grid,
    regular_grid_points,
    render_3d,
    sample_mesh_model,
)


def _cellwise(c):
    return c[:, 0] + 10.0 * c[:, 1] + 100.0 * c[:, 2]


def test_grid_order_is_gempys():
    gp = pytest.importorskip("gempy")
    from gempy.core.data.grid_modules import RegularGrid

    ext, res = np.array([0.0, 10.0, 0.0, 20.0, -30.0, 0.0]), np.array([2, 3, 4])
    np.testing.assert_allclose(regular_grid_points(ext, res), RegularGrid(extent=ext, resolution=res).values)
    assert gp is not None


def test_sample_mesh_model_returns_containing_cell():
    mesh = PrismMesh.from_tensor([100.0, 50.0, 150.0], [80.0] * 2, [40.0, 60.0], origin=(0.0, 0.0, -100.0))
    model = _cellwise(mesh.cell_centers)
    rng = np.random.default_rng(0)
    pts = rng.uniform([0, 0, -100], [300, 160, 0], size=(200, 3))
    got = sample_mesh_model(mesh, model, pts)
    # the containing cell, by explicit search
    b = mesh.bounds
    inside = ((pts[:, None, 0] >= b[None, :, 0]) & (pts[:, None, 0] <= b[None, :, 1])
              & (pts[:, None, 1] >= b[None, :, 2]) & (pts[:, None, 1] <= b[None, :, 3])
              & (pts[:, None, 2] >= b[None, :, 4]) & (pts[:, None, 2] <= b[None, :, 5]))
    np.testing.assert_allclose(got, model[inside.argmax(1)])
    assert np.isnan(sample_mesh_model(mesh, model, [[1000.0, 0.0, -50.0]]))[0]
    with pytest.raises(ValueError, match="cells"):
        sample_mesh_model(mesh, model[:-1], pts)


def test_vtk_export_keeps_values_at_their_cells(tmp_path):
    pv = pytest.importorskip("pyvista")
    mesh = PrismMesh.from_tensor([100.0] * 4, [100.0] * 3, [50.0] * 2, origin=(0.0, 0.0, -100.0))
    model = _cellwise(mesh.cell_centers)
    g = density_on_geomodel_grid(None, model, mesh=mesh, extent=mesh.extent, resolution=(8, 6, 4))
    assert g.values.shape == (8, 6, 4)
    path = g.save_vtk(tmp_path / "density")
    img = pv.read(str(path))
    centres = img.cell_centers().points
    # each VTK cell carries the value of the mesh cell containing its centre
    np.testing.assert_allclose(img.cell_data["density_contrast"], sample_mesh_model(mesh, model, centres))
    # callables are evaluated at the grid centres
    f = density_on_geomodel_grid(None, lambda p: p[:, 0] * 2.0, extent=mesh.extent, resolution=(8, 6, 4))
    np.testing.assert_allclose(f.values.ravel(), 2.0 * f.points[:, 0])


def test_render_3d_writes_png_offscreen(tmp_path):
    pytest.importorskip("pyvista")
    ext = np.array([0.0, 1000.0, 0.0, 1000.0, -500.0, 0.0])
    pts = regular_grid_points(ext, (10, 10, 5))
    v = 400.0 * np.exp(-np.sum(((pts - [600, 400, -200]) / 150.0) ** 2, axis=1))
    g = GridDensity(values=v.reshape(10, 10, 5), extent=ext, resolution=(10, 10, 5))
    out = render_3d(g, tmp_path / "view.png", title="test")
    assert out["renderer"] in ("pyvista", "matplotlib")
    png = (tmp_path / "view.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


@pytest.mark.slow
def test_render_hybrid_with_geomodel_surfaces(tmp_path):
    pytest.importorskip("gempy")
    from gempy_gravinv.cases.geology import layered_geomodel
    from gempy_gravinv.density import GeologyDensity, HybridDensity

    gm = layered_geomodel(refinement=3)
    geo = GeologyDensity(gm, [-300.0, 0.0, 250.0])
    pts = regular_grid_points(gm.grid.extent, (10, 10, 5))
    h = HybridDensity(geo, points=pts, width=8, depth=1)
    g = density_on_geomodel_grid(gm, h, resolution=(10, 10, 5))
    with torch.no_grad():
        np.testing.assert_allclose(g.values.ravel(), h(torch.as_tensor(pts)).numpy())
    np.testing.assert_allclose(g.values, g.extra["geology"] + g.extra["residual"])
    out = render_3d(g, tmp_path / "hybrid.png", geo_model=gm)
    assert (tmp_path / "hybrid.png").stat().st_size > 5000
    assert out["error"] is None, out


def test_surfaces_without_an_octree_grid():
    """GemPy's ONE_FAULT_GRAVITY has no octree grid: the surfaces are still extracted, through the input data."""
    gp = pytest.importorskip("gempy")
    from gempy.core.data.enumerators import ExampleModel

    from gempy_gravinv.gempy_view import geomodel_surfaces

    gm = gp.generate_example_model(ExampleModel.ONE_FAULT_GRAVITY, compute_model=False)
    gm.interpolation_options.kernel_options.compute_condition_number = False
    surfs = geomodel_surfaces(gm)
    assert {"fault1", "surface1", "surface2"} <= set(surfs)
    sp = gm.surface_points_copy.df
    name = {v: k for k, v in gm.structural_frame.element_name_id_map.items()}
    for _, row in sp.iterrows():
        verts = np.asarray(surfs[name[row["id"]]][0].points)
        d = np.min(np.linalg.norm(verts - row[["X", "Y", "Z"]].to_numpy(float), axis=1))
        assert d < 15.0, (name[row["id"]], d)  # within about one octree cell (200 m / 16)


def test_sections_go_through_the_anomaly(tmp_path):
    from gempy_gravinv import PrismMesh
    from gempy_gravinv.gempy_view import _components_figure, anomaly_index

    mesh = PrismMesh.from_tensor(np.full(12, 10.0), np.full(10, 10.0), np.full(8, 10.0))
    res = np.zeros(mesh.n_cells)
    ix, iy, iz = 9, 2, 1  # a small body far from the middle slices
    res[ix + 12 * iy + 120 * iz] = 50.0
    assert anomaly_index(mesh, res) == (ix, iy, iz)
    geo = np.where(mesh.cell_centers[:, 2] < 40.0, 300.0, 0.0)
    comps = {"total": geo + res, "geology": geo, "residual": res}
    fig = _components_figure(mesh, comps, "residual")
    arts = [a for ax in fig.axes for a in list(ax.images) + list(ax.collections) if hasattr(a, "get_clim")
            and a.get_array() is not None and np.size(a.get_array()) > 1]
    assert len(arts) >= 3  # three sections (and the colour bar)
    for a in arts:
        assert np.allclose(a.get_clim(), (-50.0, 50.0))  # the residual's own scale, not the geology's 0..300
    cut = [a for a in arts if np.nanmax(np.abs(np.asarray(a.get_array(), float))) == 50.0]
    assert len(cut) == 3  # each of the xy, xz, yz sections cuts the body
