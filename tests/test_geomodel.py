"""GemPy in torch: transform, soft lithology, densities, gradients vs finite differences,
GemPy's centered-grid gravity vs our prism kernel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

gp = pytest.importorskip("gempy")

from gempy_gravinv import GravityOperator, Survey, prism_gz  # noqa: E402
from gempy_gravinv.cases.bayes import build_contact_geomodel, synthetic_contact  # noqa: E402
from gempy_gravinv.geomodel import (  # noqa: E402
    GemPyCenteredGravity,
    TorchGeoModel,
    density_at,
    dips_from_gradients,
    gradients_from_dips,
    membership_from_ids,
)

T = lambda v: torch.as_tensor(np.asarray(v, dtype=np.float64))  # noqa: E731


@pytest.fixture(scope="module")
def case():
    return synthetic_contact(n_cells=(6, 6, 5), n_stations=(4, 4))


def test_pole_vectors_match_gempy_and_invert():
    from gempy.modules.data_manipulation.manipulate_points import convert_orientation_to_pole_vector

    dip = np.array([0.0, 10.0, 45.0, 80.0, 30.0])
    az = np.array([0.0, 90.0, 200.0, 315.0, 10.0])
    pol = np.array([1.0, 1.0, 1.0, 1.0, -1.0])
    ref = convert_orientation_to_pole_vector(az, dip, pol)
    got = gradients_from_dips(dip, az, pol).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-12)
    d2, a2, p2 = dips_from_gradients(got)
    np.testing.assert_allclose(d2, dip, atol=1e-9)
    np.testing.assert_allclose(p2, pol)
    np.testing.assert_allclose(a2[1:], az[1:], atol=1e-9)  # azimuth undefined at dip 0


def test_transform_matches_gempy_and_ids_match_gempy_block(case):
    gm = case["geo_model"]
    pts = np.array([[500, 500, -50.0], [500, 500, -550.0], [150, 850, -100.0], [850, 150, -500.0]])
    tg = TorchGeoModel(gm, pts, sigmoid_slope=5e4)
    np.testing.assert_allclose(tg._sp_norm0.numpy(), gm.surface_points_copy_transformed.xyz, atol=1e-12)
    np.testing.assert_allclose(tg._grads_norm0.numpy(), gm.orientations_copy_transformed.grads, atol=1e-12)
    with torch.no_grad():
        ids = tg.soft_ids().numpy()
    # above the contact (z ~ -300 m): id 1 (upper unit); below: basement id 2
    np.testing.assert_allclose(ids, [1, 2, 1, 2], atol=1e-3)
    # GemPy's own (numpy backend) block at the same points
    import contextlib
    import io

    from gempy_gravinv.geomodel import gempy_torch

    gm2 = gm.model_copy(deep=True) if hasattr(gm, "model_copy") else gm
    with contextlib.redirect_stdout(io.StringIO()), gempy_torch(grads=False):
        gp.set_custom_grid(gm2.grid, xyz_coord=pts, reset=True)
        sol = gp.compute_model(gm2)
    np.testing.assert_allclose(np.rint(sol.raw_arrays.custom), np.rint(ids))
    assert gm.orientations_copy.grads.shape == (2, 3)  # caller's model untouched by TorchGeoModel


def test_membership_hat_functions():
    ids = T([1.0, 1.25, 2.0, 2.5, 3.0, 0.5, 3.7])
    m = membership_from_ids(ids, 3).numpy()
    np.testing.assert_allclose(m.sum(1), 1.0)
    np.testing.assert_allclose(m[1], [0.75, 0.25, 0.0])
    np.testing.assert_allclose(m[3], [0.0, 0.5, 0.5])
    np.testing.assert_allclose(m[5], [1, 0, 0])  # clamped
    np.testing.assert_allclose(m[6], [0, 0, 1])


def test_flat_contact_density_and_position():
    # horizontal contact at z = -300 m: density above = rho1, below = rho2, soft at -300
    ext = [0, 1000, 0, 1000, -600, 0]
    sp = [[200, 200, -300], [800, 200, -300], [200, 800, -300], [800, 800, -300], [500, 500, -300]]
    gm = build_contact_geomodel(ext, sp, [[500, 500, -300]], [0.0], [0.0])
    z = np.array([-100.0, -290.0, -300.0, -310.0, -500.0])
    pts = np.c_[np.full(5, 400.0), np.full(5, 600.0), z]
    d = density_at(gm, pts, T([100.0, -200.0]), sigmoid_slope=200.0).detach().numpy()
    assert d[0] == pytest.approx(100.0, abs=1e-6) and d[-1] == pytest.approx(-200.0, abs=1e-6)
    assert d[2] == pytest.approx(-50.0, abs=2.0)  # midpoint of the sigmoid at the contact
    assert d[0] > d[1] > d[2] > d[3] > d[4]


def test_gradients_match_finite_differences(case):
    gm, mesh, st = case["geo_model"], case["mesh"], case["stations"]
    tg = TorchGeoModel(gm, mesh.cell_centers, sigmoid_slope=100.0)
    op = GravityOperator(mesh, Survey(st), device="cpu", store="dense")
    w = torch.linspace(0.5, 1.5, st.shape[0], dtype=torch.float64)

    def loss(dips, z, rho):
        return (w * op(tg.density(rho, dips=dips, dip_index=[0, 1], sp_z=z, sp_index=[4]))).sum()

    dips = T([12.0, 6.0]).requires_grad_()
    z = T([-260.0]).requires_grad_()
    rho = T([230.0, -370.0]).requires_grad_()
    loss(dips, z, rho).backward()
    assert torch.is_grad_enabled()

    def f(dd, zz, rr):
        with torch.no_grad():
            return loss(T(dd), T(zz), T(rr)).item()

    base = ([12.0, 6.0], [-260.0], [230.0, -370.0])
    fd = []
    for which, h in ((0, 0.05), (1, 1.0), (2, 1.0)):
        for j in range(len(base[which])):
            up = [list(b) for b in base]
            dn = [list(b) for b in base]
            up[which][j] += h
            dn[which][j] -= h
            fd.append((f(*up) - f(*dn)) / (2 * h))
    ad = np.concatenate([dips.grad.numpy(), z.grad.numpy(), rho.grad.numpy()])
    assert np.all(np.abs(ad) > 1e-6)  # gradients really reach every parameter
    np.testing.assert_allclose(ad, fd, rtol=2e-3, atol=1e-7)


def test_gempy_centered_gravity_units_and_sign():
    # flat slab of +500 kg/m³ from the contact (z = -300) to the top, nothing below;
    # GemPy's centered grid (mGal for g/cm³, negative for excess mass) converted to ours
    ext = [0, 1000, 0, 1000, -700, 0]
    sp = [[200, 200, -300], [800, 200, -300], [200, 800, -300], [800, 800, -300], [500, 500, -300]]
    gm = build_contact_geomodel(ext, sp, [[500, 500, -300]], [0.0], [0.0])
    st = np.array([[500.0, 500.0, 1.0]])
    r = 400.0
    cg = GemPyCenteredGravity(gm, st, resolution=(12, 12, 12), radius=[r, r, r], sigmoid_slope=1e4)
    rho = T([500.0, 0.0]).requires_grad_()
    gz = cg.gz(rho)
    # same slab with our prism kernel: x, y in station +- r, from the kernel top (5% of
    # 1.2 r below the station) down to the contact
    top = 1.0 - 0.05 * 1.2 * r
    ref = prism_gz(T(st), T([[100, 900, 100, 900, -300, top]]), T([500.0])).item()
    assert ref > 0 and gz.item() > 0
    assert gz.item() == pytest.approx(ref, rel=0.1)
    gz.sum().backward()
    assert rho.grad[0].item() == pytest.approx(gz.item() / 500.0, rel=1e-6)  # linear in densities


def test_bad_inputs(case):
    gm = case["geo_model"]
    with pytest.raises(ValueError, match="points"):
        TorchGeoModel(gm, np.zeros((3, 2)))
    tg = TorchGeoModel(gm, np.array([[500.0, 500.0, -100.0]]))
    with pytest.raises(ValueError, match="orientation indices"):
        tg.soft_ids(dips=T([10.0]), dip_index=[5])
    with pytest.raises(ValueError, match="unit_densities_kgm3"):
        tg.density(T([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="sp_z"):
        tg.soft_ids(sp_z=T([1.0, 2.0]), sp_index=[0])
