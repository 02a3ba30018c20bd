"""Kernels and operators of every gravity component: physics, peers and adjoints.

- the gradient tensor is the derivative of the acceleration (central differences of
  ``gx``, ``gy``, ``gz`` in the station's coordinates), symmetric and trace-free;
- prisms against geoana's closed-form prism (a peer), and point masses against a far prism;
- signs: the attraction points toward the mass, ``gz`` positive down, ``gzz`` positive above;
- the operator of each component: nodes vs cell-by-cell path, matrix-free vs dense,
  exact adjoint (dot-product test) and autograd through it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gempy_gravinv import GravityOperator, PrismMesh, Survey
from gempy_gravinv._components import COMPONENTS, SIMPEG_SIGN, check_component, kernel_kind
from gempy_gravinv._kernels import CORNER_SIGNS, G_MGAL, kernel_block, prism_gz

T = dict(dtype=torch.float64)
PRISM = np.array([-12.0, 9.0, -6.0, 14.0, -30.0, -4.0])  # west, east, south, north, bottom, top (m)


def _corners(b):
    return np.array([[b[1] if k & 1 else b[0], b[3] if k & 2 else b[2], b[5] if k & 4 else b[4]] for k in range(8)])


def prism_field(st, component, bounds=PRISM, rho=1.0):
    """One prism's ``component`` at stations, per our kernels (mGal or Eötvös for rho kg/m³)."""
    K = kernel_block(torch.tensor(np.atleast_2d(st), **T), torch.tensor(_corners(bounds), **T),
                     kernel_kind("prism", component)).numpy()
    return rho * (K * np.array(CORNER_SIGNS)).sum(1)


@pytest.fixture(scope="module")
def stations():
    rng = np.random.default_rng(5)
    st = np.c_[rng.uniform(-60, 60, 40), rng.uniform(-60, 60, 40), rng.uniform(-80, 40, 40)]
    b = PRISM
    inside = ((st[:, 0] > b[0] - 2) & (st[:, 0] < b[1] + 2) & (st[:, 1] > b[2] - 2) & (st[:, 1] < b[3] + 2)
              & (st[:, 2] > b[4] - 2) & (st[:, 2] < b[5] + 2))
    return st[~inside]


def test_tensor_is_the_derivative_of_the_acceleration(stations):
    """g_ij = ∂g_i/∂x_j (x_j the station's coordinate) in the z-up frame; gz is ours (positive down)."""
    h = 1e-3
    up = {"gx": 1.0, "gy": 1.0, "gz": -1.0}  # to the z-up vector g = ∇Φ
    for a in "xyz":
        for j, b in enumerate("xyz"):
            name = "g" + "".join(sorted(a + b, key="xyz".index))
            e = np.zeros(3)
            e[j] = h
            fd = (prism_field(stations + e, "g" + a) - prism_field(stations - e, "g" + a)) / (2 * h) * up["g" + a]
            fd *= 1e4  # mGal/m -> Eötvös (1e-5 s⁻² / 1e-9 s⁻²)
            np.testing.assert_allclose(prism_field(stations, name), fd, rtol=1e-5, atol=1e-8, err_msg=name)
    tr = sum(prism_field(stations, c) for c in ("gxx", "gyy", "gzz"))
    np.testing.assert_allclose(tr, 0.0, atol=1e-12 * np.abs(prism_field(stations, "gzz")).max())
    np.testing.assert_allclose(prism_field(stations, "guv"),
                               0.5 * (prism_field(stations, "gyy") - prism_field(stations, "gxx")), atol=1e-15)


def test_against_geoana_prism(stations):
    """geoana's closed-form prism (SimPEG's sign: upward gz) to 1e-10."""
    from geoana.gravity import Prism

    p = Prism(PRISM[0::2], PRISM[1::2], 1.0)
    g = p.gravitational_field(stations) * 1e5
    Tg = p.gravitational_gradient(stations) * 1e9
    ref = {"gx": g[:, 0], "gy": g[:, 1], "gz": g[:, 2], "gxx": Tg[:, 0, 0], "gxy": Tg[:, 0, 1],
           "gxz": Tg[:, 0, 2], "gyy": Tg[:, 1, 1], "gyz": Tg[:, 1, 2], "gzz": Tg[:, 2, 2],
           "guv": 0.5 * (Tg[:, 1, 1] - Tg[:, 0, 0])}
    for c in COMPONENTS:
        ours = prism_field(stations, c) * SIMPEG_SIGN[c]
        np.testing.assert_allclose(ours, ref[c], rtol=0, atol=1e-10 * np.abs(ref[c]).max(), err_msg=c)


def test_gz_matches_the_historical_kernel(stations):
    b = torch.tensor(PRISM[None], **T)
    ref = prism_gz(torch.tensor(stations, **T), b, torch.ones(1, **T)).numpy()
    np.testing.assert_allclose(prism_field(stations, "gz"), ref, rtol=1e-13, atol=1e-16)


def test_point_masses_match_a_far_prism_and_signs():
    """A 2 m cube 200 m away is a point mass to 1e-4; signs of the attraction and of gzz."""
    b = np.array([-1.0, 1.0, -1.0, 1.0, -101.0, -99.0])
    mass = 8.0  # kg for 1 kg/m³
    st = np.array([[0.0, 0.0, 100.0], [150.0, -80.0, 30.0], [-120.0, 90.0, -60.0]])
    pt = torch.tensor([[0.0, 0.0, -100.0]], **T)
    for c in COMPONENTS:
        p = kernel_block(torch.tensor(st, **T), pt, kernel_kind("point", c)).numpy()[:, 0] * mass
        np.testing.assert_allclose(p, prism_field(st, c, b), rtol=1e-4, atol=1e-12, err_msg=c)
    above = st[:1]
    assert prism_field(above, "gz", b)[0] > 0  # positive down above excess mass (ours)
    assert prism_field(above, "gzz", b)[0] > 0 and prism_field(above, "gxx", b)[0] < 0
    assert prism_field(st[1:2], "gx", b)[0] < 0  # east of the mass: pulled west
    # the value: GM/r² above the mass, 2GM/r³ for gzz
    r = 200.0
    np.testing.assert_allclose(prism_field(above, "gz", b)[0], G_MGAL * mass / r**2, rtol=1e-4)
    np.testing.assert_allclose(prism_field(above, "gzz", b)[0], G_MGAL * 1e4 * 2 * mass / r**3, rtol=1e-4)


def test_unknown_component_is_refused():
    with pytest.raises(ValueError, match="unknown gravity component 'gzx'"):
        check_component("gzx")
    mesh = PrismMesh.from_tensor([10.0] * 3, [10.0] * 3, [10.0] * 2, origin=(0, 0, -20))
    with pytest.raises(ValueError, match="unknown gravity component"):
        GravityOperator(mesh, Survey([[15.0, 15.0, 1.0]]), device="cpu", component="g_z")


@pytest.mark.parametrize("component", ["gx", "gyz", "gzz", "guv"])
def test_operator_paths_adjoint_and_autograd(component):
    """Nodes (tensor grid and active nodes only) vs cells, dense vs matrix-free; Gᵀ exact; autograd."""
    import discretize

    rng = np.random.default_rng(8)
    mesh = discretize.TensorMesh([[(10.0, 7)], [(12.0, 6)], [(8.0, 5)]], origin=(-35.0, -36.0, -40.0))
    st = np.c_[rng.uniform(-50, 50, 15), rng.uniform(-50, 50, 15), rng.uniform(1.0, 20.0, 15)]
    for active in (np.ones(mesh.n_cells, bool), mesh.cell_centers[:, 0] < -10.0):  # grid / active nodes
        pm = PrismMesh.from_discretize(mesh, active)
        kw = dict(device="cpu", compile=False, component=component)
        nodes = GravityOperator(pm, Survey(st), store="matrix_free", **kw)
        if active.all():
            assert nodes._tensor_shape is not None
        else:  # a third of the grid's nodes: only those are evaluated
            assert nodes._tensor_shape is None and nodes.n_columns < 0.5 * np.prod(mesh.shape_nodes)
        cells = GravityOperator(pm, Survey(st), store="dense", method="cells", **kw)
        dense = GravityOperator(pm, Survey(st), store="dense", **kw)
        Gc = cells.dense()
        np.testing.assert_allclose(dense.dense().numpy(), Gc.numpy(), rtol=0, atol=1e-11 * Gc.abs().max().item())
        m = torch.tensor(rng.normal(size=pm.n_cells) * 100, **T)
        r = torch.tensor(rng.normal(size=len(st)), **T)
        np.testing.assert_allclose(nodes.forward(m).numpy(), (Gc @ m).numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(nodes.adjoint(r).numpy(), (Gc.T @ r).numpy(), rtol=1e-10, atol=1e-12)
        # dot-product test of the matrix-free pair, and autograd through the operator
        lhs, rhs = float(r @ nodes.forward(m)), float(m @ nodes.adjoint(r))
        assert abs(lhs - rhs) <= 1e-12 * max(abs(lhs), 1.0)
        mm = m.clone().requires_grad_(True)
        (nodes(mm) * r).sum().backward()
        np.testing.assert_allclose(mm.grad.numpy(), (Gc.T @ r).numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(nodes.jtj_diag().numpy(), (Gc**2).sum(0).numpy(), rtol=1e-10)


@pytest.mark.gpu
def test_cuda_components_match_cpu():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA (run `make test-gpu` on a GPU machine)")
    import discretize

    rng = np.random.default_rng(9)
    mesh = discretize.TensorMesh([[(10.0, 8)], [(10.0, 8)], [(10.0, 4)]], origin=(-40.0, -40.0, -40.0))
    pm = PrismMesh.from_discretize(mesh, mesh.cell_centers[:, 2] < -5.0)
    st = np.c_[rng.uniform(-50, 50, 12), rng.uniform(-50, 50, 12), rng.uniform(1.0, 10.0, 12)]
    m = torch.tensor(rng.normal(size=pm.n_cells) * 100, **T)
    for c in COMPONENTS:
        cpu = GravityOperator(pm, Survey(st), device="cpu", store="dense", compile=False, component=c)
        for store in ("dense", "matrix_free"):
            gpu = GravityOperator(pm, Survey(st), device="cuda", store=store, component=c)
            ref = cpu.forward(m)
            np.testing.assert_allclose(gpu.forward(m).cpu().numpy(), ref.numpy(), rtol=0,
                                       atol=1e-10 * ref.abs().max().item(), err_msg=f"{c} {store}")
            r = torch.tensor(rng.normal(size=len(st)), **T)
            ref_t = cpu.adjoint(r)
            np.testing.assert_allclose(gpu.adjoint(r).cpu().numpy(), ref_t.numpy(), rtol=0,
                                       atol=1e-10 * ref_t.abs().max().item(), err_msg=f"{c} {store}")


def test_compiled_dense_and_jtj_match_eager():
    """The compiled paths (fused corner gather, fused squared sums) against eager kernels, tensor and octree."""
    import discretize

    rng = np.random.default_rng(12)
    tensor = discretize.TensorMesh([[(10.0, 6)], [(10.0, 5)], [(10.0, 4)]], origin=(-30.0, -25.0, -40.0))
    tree = discretize.TreeMesh([[(10.0, 8)], [(10.0, 8)], [(10.0, 8)]], origin=(-40.0, -40.0, -80.0),
                               diagonal_balance=False)
    tree.refine_box(np.r_[-20.0, -20.0, -30.0], np.r_[20.0, 20.0, 0.0], levels=3)
    st = np.c_[rng.uniform(-40, 40, 9), rng.uniform(-40, 40, 9), rng.uniform(1.0, 15.0, 9)]
    w = torch.tensor(rng.uniform(0.5, 2.0, 9), **T)
    for mesh in (tensor, tree):
        pm = PrismMesh.from_discretize(mesh, mesh.cell_centers[:, 2] < -5.0)
        eager = GravityOperator(pm, Survey(st), device="cpu", store="matrix_free", compile=False)
        comp = GravityOperator(pm, Survey(st), device="cpu", store="matrix_free", compile=True)
        assert comp._fused_gather()
        G = eager.dense()
        torch.testing.assert_close(comp.dense(), G, rtol=0, atol=1e-12 * G.abs().max().item())
        torch.testing.assert_close(comp.jtj_diag(w), ((G * w[:, None]) ** 2).sum(0), rtol=1e-12, atol=0)
