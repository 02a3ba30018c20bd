"""Output round trips: NetCDF, VTK, UBC model files, metrics JSON."""

import json

import numpy as np
import pytest
import torch

from gempy_gravinv import PrismMesh
from gempy_gravinv.output import load_netcdf, save_metrics_json, save_netcdf, save_ubc_model, save_vtk


@pytest.fixture
def tensor_mesh():
    # uneven widths and an off-zero origin, so that any axis mix-up shows
    return PrismMesh.from_tensor([10.0, 20.0, 30.0, 40.0], [5.0, 15.0, 25.0], [7.0, 9.0],
                                 origin=(100.0, -50.0, -16.0))


def test_netcdf_round_trip_tensor(tmp_path, tensor_mesh, rng):
    m = rng.normal(0, 100, tensor_mesh.n_cells)
    s = rng.uniform(1, 5, tensor_mesh.n_cells)
    p = save_netcdf(tmp_path / "m.nc", tensor_mesh, torch.tensor(m), std=s,
                    attrs={"rms_error_kgm3": 12.5, "settings": {"lr": 0.01}, "ok": True},
                    reference_density=2670.0)
    out = load_netcdf(p)
    np.testing.assert_array_equal(out["model"], m)
    np.testing.assert_array_equal(out["std"], s)
    np.testing.assert_allclose(out["mesh"].bounds, tensor_mesh.bounds)
    assert out["reference_density"] == 2670.0
    assert json.loads(out["attrs"]["settings"]) == {"lr": 0.01}
    ds = out["dataset"]
    da = ds["density_contrast"]
    assert da.dims == ("z", "y", "x") and da.attrs["units"] == "kg/m3"
    assert "positive downward" in da.attrs["sign_convention"]
    # the grid value at (z, y, x) is the cell whose centre has those coordinates
    cc = tensor_mesh.cell_centers
    k = 17
    v = da.sel(x=cc[k, 0], y=cc[k, 1], z=cc[k, 2]).item()
    assert v == m[k]
    np.testing.assert_allclose(ds.x.values, [105.0, 120.0, 145.0, 180.0])
    np.testing.assert_allclose(ds.z.values, [-12.5, -4.5])


def test_netcdf_active_cells_and_plain_prisms(tmp_path, tensor_mesh, rng):
    act = np.zeros(tensor_mesh.n_cells, bool)
    act[::3] = True
    sub = PrismMesh.from_discretize(tensor_mesh.source, active_cells=act)
    m = rng.normal(size=sub.n_cells)
    out = load_netcdf(save_netcdf(tmp_path / "a.nc", sub, m))
    np.testing.assert_array_equal(out["model"], m)
    np.testing.assert_array_equal(out["mesh"].active_cells, act)
    assert np.isnan(out["dataset"]["density_contrast"].values).sum() == (~act).sum()
    plain = PrismMesh(tensor_mesh.bounds[:5])
    out2 = load_netcdf(save_netcdf(tmp_path / "p.nc", plain, m[:5], name="rho"))
    np.testing.assert_array_equal(out2["model"], m[:5])
    np.testing.assert_array_equal(out2["mesh"].bounds, plain.bounds)
    with pytest.raises(ValueError, match="one value per cell"):
        save_netcdf(tmp_path / "bad.nc", plain, m)


def test_vtk_readable_by_pyvista(tmp_path, tensor_mesh, rng):
    import pyvista as pv

    m = rng.normal(size=tensor_mesh.n_cells)
    p = save_vtk(tmp_path / "model.vtk", tensor_mesh, density_contrast=m, std=np.abs(m))
    assert p.suffix == ".vtr"
    grid = pv.read(p)
    np.testing.assert_allclose(grid.cell_data["density_contrast"], m)
    # cell k of the file is centred where cell k of the mesh is
    np.testing.assert_allclose(grid.cell_centers().points, tensor_mesh.cell_centers)
    plain = PrismMesh(tensor_mesh.bounds[[0, 5, 9]])
    p2 = save_vtk(tmp_path / "plain", plain, rho=m[[0, 5, 9]])
    g2 = pv.read(p2)
    assert p2.suffix == ".vtu"
    np.testing.assert_allclose(g2.cell_data["rho"], m[[0, 5, 9]])
    np.testing.assert_allclose(g2.cell_centers().points, plain.cell_centers)
    np.testing.assert_allclose(g2.compute_cell_sizes()["Volume"], plain.volumes)


def test_ubc_model_round_trip_in_gcc(tmp_path, tensor_mesh, rng):
    from gempy_gravinv.io import model_to_contrast_kgm3, read_ubc_mesh, read_ubc_model

    m = rng.normal(0, 300, tensor_mesh.n_cells)
    p = save_ubc_model(tmp_path / "model.den", tensor_mesh, m, mesh_path=tmp_path / "mesh.msh")
    raw = np.loadtxt(p)
    assert np.abs(raw).max() < 2.0  # g/cm³ in the file, not kg/m³
    mesh2 = read_ubc_mesh(tmp_path / "mesh.msh")
    back = read_ubc_model(p, mesh2)
    np.testing.assert_allclose(back, m / 1000.0, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(model_to_contrast_kgm3(back), m, rtol=1e-6, atol=1e-6)
    # absolute densities with a reference
    p2 = save_ubc_model(tmp_path / "abs.den", tensor_mesh, m, reference_density=2670.0)
    np.testing.assert_allclose(read_ubc_model(p2, tensor_mesh.source), (m + 2670.0) / 1000, rtol=1e-6)


def test_metrics_json(tmp_path):
    d = {"a": np.float32(1.5), "b": np.arange(3), "c": torch.tensor([1.0, float("nan")]),
         "d": {"e": np.bool_(True), "f": float("inf"), "g": tmp_path}}
    p = save_metrics_json(tmp_path / "out" / "metrics.json", d)
    back = json.loads(p.read_text())
    assert back == {"a": 1.5, "b": [0, 1, 2], "c": [1.0, None],
                    "d": {"e": True, "f": None, "g": str(tmp_path)}}
    with pytest.raises(TypeError, match="dict"):
        save_metrics_json(tmp_path / "x.json", [1, 2])


# ---------------------------------------------------------------------- figures
def _small_case():
    from gempy_gravinv.cases.synthetic import single_block

    return single_block(shape=(6, 5, 3), block=((1, 3), (2, 4), (1, 2)))


def test_plot_sections_shared_scale_and_outlines(tmp_path):
    from matplotlib.collections import QuadMesh

    from gempy_gravinv.plotting import plot_sections, section_index

    c = _small_case()
    rec = 0.5 * c.model - 20.0
    fig = plot_sections(c.mesh, {"recovered": torch.tensor(rec)}, true=c.model)
    panels = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    assert len(panels) == 6  # (true, recovered) x (xy, xz, yz)
    clims = {qm.get_clim() for a in panels for qm in a.collections if isinstance(qm, QuadMesh)}
    assert clims == {(-20.0, 500.0)}  # one colour scale over all panels
    # outlines of the truth on every panel (contour sets are drawn as extra collections)
    assert all(len(a.collections) >= 2 for a in panels)
    # the default section passes through the block: layer 1 from the top -> iz = 1 from the bottom
    ix, iy, iz = section_index(c.mesh, c.model)
    assert ix in (1, 2) and iy in (2, 3) and iz == 1
    # the xy panel shows the true values of that layer (row-major y, x)
    qm = next(q for q in panels[0].collections if isinstance(q, QuadMesh))
    grid = c.model.reshape(c.mesh.shape, order="F")[:, :, iz].T
    np.testing.assert_allclose(np.asarray(qm.get_array()).reshape(grid.shape), grid)
    fig.savefig(tmp_path / "s.png", dpi=40)
    assert (tmp_path / "s.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="mesh has"):
        plot_sections(c.mesh, {"bad": rec[:-1]})
    with pytest.raises(ValueError, match="tensor mesh"):
        plot_sections(PrismMesh(c.mesh.bounds), {"m": rec})
    with pytest.raises(ValueError, match="section index"):
        plot_sections(c.mesh, rec, index=(0, 0, 9))


def test_plot_data_maps_residual_and_titles():
    from gempy_gravinv.plotting import plot_data_maps

    c = _small_case()
    pred = c.gz_clean
    fig = plot_data_maps(c.survey, pred)
    panels = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    assert len(panels) == 3
    res = np.asarray(panels[2].collections[0].get_array())
    np.testing.assert_allclose(res, c.survey.gz - pred)
    chi2 = np.mean(((c.survey.gz - pred) / c.survey.std) ** 2)
    assert f"{chi2:.3g}" in panels[2].get_title()
    with pytest.raises(ValueError, match="stations"):
        plot_data_maps(c.survey, pred[:-1])


def test_plot_convergence_and_std():
    from gempy_gravinv.plotting import plot_convergence, plot_std

    fig = plot_convergence({"loss": [10.0, 3.0, 1.0, 0.5], "chi2": np.array([9.0, 3.0, 1.1, 0.9]),
                            "best_epoch": 2, "note": "x", "empty": []})
    panels = fig.axes
    assert [a.get_ylabel() for a in panels] == ["loss", "chi2"]
    assert panels[0].get_yscale() == "log"
    assert any(np.allclose(ln.get_ydata(), 1.0) for ln in panels[1].lines)  # chi2 target line
    with pytest.raises(ValueError, match="no non-empty"):
        plot_convergence({"best_epoch": 3})
    c = _small_case()
    fig = plot_std(c.mesh, np.full(c.mesh.n_cells, 7.0), true=c.model)
    assert len([a for a in fig.axes if a.get_label() != "<colorbar>"]) == 3
    with pytest.raises(ValueError, match=">= 0"):
        plot_std(c.mesh, np.full(c.mesh.n_cells, -1.0))
