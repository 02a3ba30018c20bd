"""GeologyDensity: a GemPy model + unit contrasts as a density backend; loading GemPy
models (files, built-in names) and the ``invert --backend geology|hybrid`` options.

Tiny models only (GemPy is slow): one module-scoped 3-unit model with planar contacts
whose geometry is known in closed form.
"""

import numpy as np
import pytest
import torch

gp = pytest.importorskip("gempy")

from gempy_gravinv import PrismMesh  # noqa: E402
from gempy_gravinv.cases.geology import layered_geomodel  # noqa: E402
from gempy_gravinv.cases.geomodels import geomodel_case, resolve_geomodel  # noqa: E402
from gempy_gravinv.density import GeologyDensity, make_density  # noqa: E402
from gempy_gravinv.geomodel import gempy_lithology_ids, load_geomodel  # noqa: E402

EXTENT = (0.0, 1000.0, 0.0, 1000.0, -500.0, 0.0)
TOP = dict(z=-130.0, sx=-0.08, sy=0.04)
BASE = dict(z=-310.0, sx=-0.10, sy=0.0)
RHO = np.array([-300.0, 0.0, 250.0])


def _plane(p, c):
    return c["z"] + c["sx"] * (p[:, 0] - 500.0) + c["sy"] * (p[:, 1] - 500.0)


def analytic_ids(p):
    """Lithology of the planar model: 1 above the top contact, 3 below the base."""
    return np.where(p[:, 2] > _plane(p, TOP), 1, np.where(p[:, 2] > _plane(p, BASE), 2, 3))


@pytest.fixture(scope="module")
def geomodel():
    return layered_geomodel(EXTENT, refinement=2)


@pytest.fixture(scope="module")
def mesh():
    return PrismMesh.from_tensor([125.0] * 8, [125.0] * 8, [100.0] * 5, origin=(0.0, 0.0, -500.0))


@pytest.fixture(scope="module")
def geology(geomodel, mesh):
    return GeologyDensity(geomodel, RHO, mesh=mesh)


def test_matches_gempy_lithology_and_analytic_planes(geomodel, geology, mesh):
    pts = mesh.cell_centers
    ref = gempy_lithology_ids(geomodel, pts)  # GemPy's own compute_model on a custom grid
    ours = geology.lithology(pts)
    np.testing.assert_array_equal(ours, ref)
    # the model is two planes: GemPy and we agree with them away from the contacts
    far = np.minimum(np.abs(pts[:, 2] - _plane(pts, TOP)), np.abs(pts[:, 2] - _plane(pts, BASE))) > 15.0
    assert far.sum() > 0.8 * len(pts)
    np.testing.assert_array_equal(ours[far], analytic_ids(pts[far]))
    assert set(np.unique(ref)) == {1, 2, 3}
    # sharp contacts: density is the unit contrast of GemPy's id (mixed only within a few
    # metres of a contact, where the soft lithology blends the two units)
    with torch.no_grad():
        rho = geology(torch.as_tensor(pts)).numpy()
    np.testing.assert_allclose(rho[far], RHO[ref[far] - 1], atol=1e-6)
    assert np.mean(np.abs(rho - RHO[ref - 1]) < 1.0) > 0.99


def test_cache_runs_gempy_once_per_point_set(geomodel, mesh):
    g = GeologyDensity(geomodel, RHO)
    p = torch.as_tensor(mesh.cell_centers)
    a = g(p)
    calls = g._shared.gempy_calls
    b = g(p.clone())  # same points, another tensor: cache hit by content
    assert g._shared.gempy_calls == calls == 1
    torch.testing.assert_close(a, b)
    g(p[:5] + 1.0)
    assert g._shared.gempy_calls == 2


def test_unit_density_gradient_is_membership(geomodel, mesh):
    g = GeologyDensity(geomodel, {"cover": -300.0, "middle": 0.0, "basement": 250.0},
                       learn_densities=True, density_scale=50.0)
    p = torch.as_tensor(mesh.cell_centers)
    w = torch.linspace(-1.0, 2.0, p.shape[0], dtype=torch.float64)
    (g(p) * w).sum().backward()
    expected = 50.0 * (g.membership(p).T @ w)
    torch.testing.assert_close(g.rho_theta.grad, expected)
    assert torch.all(g.rho_theta.grad.abs() > 0)
    # fixed densities: no trainable parameter at all
    assert not any(q.requires_grad for q in GeologyDensity(geomodel, RHO).parameters())


def test_guard_leaves_torch_usable(geomodel):
    grad_mode = torch.is_grad_enabled()
    g = GeologyDensity(geomodel, RHO, learn_densities=True)
    g(torch.tensor([[500.0, 500.0, -50.0], [500.0, 500.0, -450.0]], dtype=torch.float64))
    gempy_lithology_ids(geomodel, np.array([[500.0, 500.0, -200.0]]))
    assert torch.is_grad_enabled() == grad_mode
    assert torch.zeros(2, 3).shape == (2, 3)
    assert torch.sum(torch.ones(2, 3), dim=1).tolist() == [3.0, 3.0]
    x = torch.ones(3, requires_grad=True)
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]


def test_structural_gradient_matches_finite_difference(geomodel):
    # points straddling the top contact; d(density)/d(dip of its orientation) by FD
    pts = np.array([[300.0, 500.0, -110.0], [700.0, 500.0, -150.0], [500.0, 300.0, -125.0],
                    [200.0, 800.0, -90.0]])
    g = GeologyDensity(geomodel, RHO, learn_dips=[0], dip_scale=1.0, sigmoid_slope=100.0)
    assert g.learns_structure
    f = g(torch.as_tensor(pts)).sum()
    f.backward()
    grad = float(g.dip_phi.grad[0])
    h = 0.5
    vals = []
    for s in (h, -h):
        with torch.no_grad():
            g.dip_phi.fill_(s)
            vals.append(float(g(torch.as_tensor(pts)).sum()))
    fd = (vals[0] - vals[1]) / (2 * h)
    assert abs(grad) > 1e-3
    assert grad == pytest.approx(fd, rel=0.05)


def test_registry_and_bad_input(geomodel, mesh):
    g = make_density("geology", geo_model=geomodel, unit_densities=RHO)
    assert isinstance(g, GeologyDensity) and g.unit_names == ["cover", "middle", "basement"]
    with pytest.raises(ValueError, match="needs 3 values"):
        GeologyDensity(geomodel, [1.0, 2.0])
    with pytest.raises(ValueError, match="missing"):
        GeologyDensity(geomodel, {"cover": 1.0})
    with pytest.raises(ValueError, match="learn_dips"):
        GeologyDensity(geomodel, RHO, learn_dips=[99])
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        g(torch.zeros(4, 2))
    with pytest.raises(TypeError, match="GeoModel"):
        GeologyDensity(None, RHO)


def test_load_geomodel_builtin_and_errors(tmp_path, geomodel):
    lg = resolve_geomodel("layered")
    np.testing.assert_allclose(lg.unit_densities, [-300.0, 0.0, 250.0])
    assert list(lg.geo_model.structural_frame.elements_names) == ["cover", "middle", "basement"]
    assert resolve_geomodel(lg) is lg and load_geomodel(lg) is lg
    assert load_geomodel(geomodel).geo_model is geomodel
    with pytest.raises(FileNotFoundError, match="built-in"):
        resolve_geomodel(str(tmp_path / "nope.gempy"))
    with pytest.raises(FileNotFoundError, match="not an existing"):
        load_geomodel(str(tmp_path / "layered"))  # names are the cases' business, not geomodel's
    bad = tmp_path / "model.txt"
    bad.write_text("x")
    with pytest.raises(ValueError, match=".gempy"):
        resolve_geomodel(str(bad))
    with pytest.raises(ValueError, match="geomodel case must be one of"):
        geomodel_case("nowhere")


@pytest.mark.slow
def test_load_geomodel_gempy_file_roundtrip(geomodel, mesh, tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = gp.save_model(geomodel, str(tmp_path / "layered.gempy"))
    lg = load_geomodel(path)
    assert lg.unit_densities is None
    np.testing.assert_array_equal(gempy_lithology_ids(lg.geo_model, mesh.cell_centers),
                                  gempy_lithology_ids(geomodel, mesh.cell_centers))


def test_offset_and_backend_from_cli(geomodel, mesh):
    from argparse import Namespace

    from gempy_gravinv.cli._geology_args import backend_from_cli
    from gempy_gravinv.density import HybridDensity
    from gempy_gravinv.geomodel import LoadedGeoModel

    origin = np.array([500_000.0, 4_100_000.0, 0.0])
    utm = PrismMesh.from_tensor([125.0] * 8, [125.0] * 8, [100.0] * 5, origin=(origin[0], origin[1], -500.0))
    loaded = LoadedGeoModel(geomodel, RHO, origin=origin, name="layered-local")
    f = backend_from_cli(Namespace(backend="hybrid", geomodel=loaded, residual_units="middle",
                                   depth_range=None, learn_densities=True), utm)
    np.testing.assert_allclose(f.geology.offset, origin)  # detected: UTM mesh, local model
    h = f(utm, 0)
    assert isinstance(h, HybridDensity) and h.residual_units == [2] and h.geology.learns_densities
    np.testing.assert_array_equal(h.geology.lithology(utm.cell_centers),
                                  gempy_lithology_ids(geomodel, mesh.cell_centers))
    assert backend_from_cli(Namespace(backend="inr"), mesh) is None
    with pytest.raises(ValueError, match="needs --geomodel"):
        backend_from_cli(Namespace(backend="hybrid", geomodel=None), mesh)
    with pytest.raises(ValueError, match="--backend must be"):
        backend_from_cli(Namespace(backend="magic", geomodel="layered"), mesh)
    with pytest.raises(ValueError, match="no unit densities"):
        backend_from_cli(Namespace(backend="geology", geomodel=LoadedGeoModel(geomodel)), mesh)
    far = PrismMesh.from_tensor([10.0], [10.0], [10.0], origin=(-1e7, -1e7, -10.0))
    with pytest.raises(ValueError, match="does not overlap"):
        backend_from_cli(Namespace(backend="geology", geomodel=loaded), far)


def test_a_model_that_covers_little_of_the_mesh_is_said():
    import warnings

    from gempy_gravinv.geomodel import auto_offset

    lg = resolve_geomodel("layered")
    e = lg.extent
    wx, wy, wz = e[1] - e[0], e[3] - e[2], e[5] - e[4]
    o = (e[0], e[2], e[4])
    inside = PrismMesh.from_tensor(np.full(4, wx / 4), np.full(4, wy / 4), np.full(2, wz / 2), origin=o)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the model over the whole mesh: quiet
        np.testing.assert_array_equal(auto_offset(lg, inside), 0.0)
    wide = PrismMesh.from_tensor(np.full(4, wx), np.full(4, wy), np.full(2, wz / 2), origin=o)
    with pytest.warns(UserWarning, match="covers 6% of the mesh's horizontal area"):
        auto_offset(lg, wide)
