"""GravityOperator: peers (SimPEG both engines), adjoint, autograd, chunking, paths, bad input."""

import numpy as np
import pytest
import torch
from discretize import TensorMesh, TreeMesh

import gempy_gravinv as gg

T = dict(dtype=torch.float64)


def small_tensor_case(rng, active_fraction=0.8):
    mesh = TensorMesh([[20.0] * 2 + [10.0] * 6 + [20.0] * 2, [15.0] * 8, [12.0] * 3 + [8.0] * 2],
                      origin=(-60.0, -60.0, -52.0))
    active = rng.random(mesh.n_cells) < active_fraction
    xy = rng.uniform(-80, 80, (25, 2))
    st = np.column_stack([xy, rng.uniform(0.5, 30.0, 25)])
    return mesh, active, st


def simpeg_gz(mesh, active, st, rho_kgm3, engine):
    from simpeg import maps
    from simpeg.potential_fields import gravity

    survey = gg.Survey(st).to_simpeg()
    sim = gravity.simulation.Simulation3DIntegral(
        mesh, survey=survey, active_cells=active, rhoMap=maps.IdentityMap(nP=int(active.sum())),
        engine=engine, store_sensitivities="forward_only", sensitivity_dtype=np.float64)
    return gg.gz_from_upward(sim.dpred(gg.kgm3_to_gcc(rho_kgm3)))


@pytest.mark.parametrize("engine", ["choclo", "geoana"])
def test_tensor_mesh_matches_simpeg(rng, engine):
    mesh, active, st = small_tensor_case(rng)
    pm = gg.PrismMesh.from_discretize(mesh, active)
    rho = rng.uniform(-400, 400, pm.n_cells)
    ref = simpeg_gz(mesh, active, st, rho, engine)
    for store in ("dense", "matrix_free"):
        ours = gg.GravityOperator(pm, gg.Survey(st), device="cpu", store=store, compile=False).forward(rho)
        np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


def test_forward_gz_takes_locations_or_a_survey_and_matches_simpeg(rng):
    mesh, active, st = small_tensor_case(rng)
    pm = gg.PrismMesh.from_discretize(mesh, active)
    rho = rng.uniform(-400, 400, pm.n_cells)
    ref = simpeg_gz(mesh, active, st, rho, "choclo")
    from_array = gg.forward_gz(pm, st, rho)
    from_survey = gg.forward_gz(pm, gg.Survey(st, np.zeros(len(st)), np.ones(len(st))), rho)
    np.testing.assert_allclose(from_array, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())
    np.testing.assert_array_equal(from_survey, from_array)


def test_tree_mesh_matches_simpeg(rng):
    mesh = TreeMesh([[10.0] * 16, [10.0] * 16, [10.0] * 8], origin=(-80.0, -80.0, -80.0), diagonal_balance=True)
    mesh.refine_points(np.array([[0.0, 0.0, -20.0]]), level=mesh.max_level, padding_cells_by_level=[2, 2])
    mesh.finalize()
    active = mesh.cell_centers[:, 2] < 0
    st = np.column_stack([rng.uniform(-60, 60, (15, 2)), np.full(15, 1.0)])
    pm = gg.PrismMesh.from_discretize(mesh, active)
    rho = rng.uniform(-300, 300, pm.n_cells)
    ref = simpeg_gz(mesh, active, st, rho, "choclo")
    ours = gg.GravityOperator(pm, gg.Survey(st), device="cpu", store="matrix_free", compile=False).forward(rho)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


def test_node_sharing_equals_cell_by_cell_and_dense(rng):
    mesh, active, st = small_tensor_case(rng)
    pm = gg.PrismMesh.from_discretize(mesh, active)
    sv = gg.Survey(st)
    m = torch.tensor(rng.normal(size=(pm.n_cells, 3)) * 100, **T)
    ops = [gg.GravityOperator(pm, sv, device="cpu", store=s, method=meth, compile=False)
           for s in ("dense", "matrix_free") for meth in ("nodes", "cells")]
    outs = [op.forward(m) for op in ops]
    for o in outs[1:]:
        torch.testing.assert_close(o, outs[0], rtol=1e-11, atol=1e-13)
    G = ops[1].dense()
    torch.testing.assert_close(G, ops[3].dense(), rtol=1e-10, atol=1e-12 * G.abs().max().item())
    torch.testing.assert_close(G, ops[0].dense(), rtol=1e-12, atol=1e-12 * G.abs().max().item())


@pytest.mark.parametrize("kernel", ["prism", "point"])
def test_adjoint_and_chunking(rng, kernel):
    mesh, active, st = small_tensor_case(rng)
    pm = gg.PrismMesh.from_discretize(mesh, active)
    sv = gg.Survey(st)
    # a tiny memory budget forces many (station, column) blocks
    op = gg.GravityOperator(pm, sv, device="cpu", store="matrix_free", kernel=kernel,
                            memory_budget=20_000, compile=False)
    assert len(list(op._blocks())) > 10
    full = gg.GravityOperator(pm, sv, device="cpu", store="dense", kernel=kernel, compile=False)
    m = torch.tensor(rng.normal(size=pm.n_cells), **T)
    r = torch.tensor(rng.normal(size=sv.n_data), **T)
    Gm, GTr = op.forward(m), op.adjoint(r)
    lhs, rhs = torch.dot(Gm, r).item(), torch.dot(m, GTr).item()
    assert abs(lhs - rhs) <= 1e-12 * max(abs(lhs), 1e-30) * 10
    torch.testing.assert_close(Gm, full.forward(m), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(GTr, full.adjoint(r), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(op.jtj_diag(1 / (1 + r.abs())), full.jtj_diag(1 / (1 + r.abs())),
                               rtol=1e-12, atol=0)


def test_autograd_gradcheck_and_second_order(rng):
    mesh = TensorMesh([[10.0] * 3, [10.0] * 3, [10.0] * 2], origin=(0, 0, -20))
    sv = gg.Survey(np.column_stack([rng.uniform(0, 30, (5, 2)), np.full(5, 2.0)]))
    op = gg.GravityOperator(mesh, sv, device="cpu", store="matrix_free", compile=False)
    m = torch.tensor(rng.normal(size=mesh.n_cells), requires_grad=True, **T)
    assert torch.autograd.gradcheck(op, (m,))
    assert torch.autograd.gradgradcheck(op, (m,))
    # gradient of a χ² loss equals the explicit adjoint
    d = torch.tensor(rng.normal(size=sv.n_data), **T)
    loss = ((op(m) - d) ** 2).sum()
    (g,) = torch.autograd.grad(loss, m)
    torch.testing.assert_close(g, 2 * op.adjoint(op.forward(m.detach()) - d))


def test_point_kernel_converges_away_from_stations(rng):
    # Gauss-Legendre point masses approach the exact prism a few cells away
    mesh = TensorMesh([[50.0] * 6, [50.0] * 6, [50.0] * 3], origin=(0, 0, -150))
    st = np.column_stack([rng.uniform(0, 300, (10, 2)), np.full(10, 400.0)])
    rho = rng.uniform(0, 500, mesh.n_cells)
    exact = gg.GravityOperator(mesh, gg.Survey(st), device="cpu", compile=False).forward(rho)
    errs = [(gg.GravityOperator(mesh, gg.Survey(st), device="cpu", kernel="point", quadrature=q,
                                compile=False).forward(rho) - exact).abs().max().item() for q in (1, 2, 3)]
    assert errs[2] < errs[1] < errs[0]
    assert errs[2] / exact.abs().max().item() < 1e-6


def test_batched_models_and_devices_default_cpu(rng):
    mesh, active, st = small_tensor_case(rng)
    op = gg.GravityOperator(gg.PrismMesh.from_discretize(mesh, active), gg.Survey(st), compile=False)
    assert op.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    m = torch.tensor(rng.normal(size=(op.n_cells, 4)), **T)
    out = op.forward(m)
    for j in range(4):
        torch.testing.assert_close(out[:, j], op.forward(m[:, j]))


def test_float32_near_field_error_is_small(rng):
    mesh, active, st = small_tensor_case(rng)
    pm = gg.PrismMesh.from_discretize(mesh, active)
    m = rng.uniform(0, 300, pm.n_cells)
    g64 = gg.GravityOperator(pm, gg.Survey(st), device="cpu", compile=False).forward(m)
    g32 = gg.GravityOperator(pm, gg.Survey(st), device="cpu", dtype=torch.float32, compile=False).forward(m)
    assert g32.dtype == torch.float32
    assert ((g32.double() - g64).abs().max() / g64.abs().max()).item() < 1e-4


def test_memory_estimate_and_auto_store(rng):
    mesh, active, st = small_tensor_case(rng)
    pm = gg.PrismMesh.from_discretize(mesh, active)
    op = gg.GravityOperator(pm, gg.Survey(st), device="cpu", compile=False)
    est = op.estimate_memory()
    assert op.store == "dense" and est.dense_matrix == pm.n_cells * 25 * 8
    assert est.total >= est.dense_matrix and "GiB" in str(est)
    # a dense G larger than the cap goes matrix-free automatically
    op2 = gg.GravityOperator(pm, gg.Survey(st), device="cpu", max_dense_bytes=1000, compile=False)
    assert op2.store == "matrix_free" and op2.estimate_memory().total < est.total


def test_compiled_kernels_match_eager(rng):
    mesh, active, st = small_tensor_case(rng)
    pm = gg.PrismMesh.from_discretize(mesh, active)
    eager = gg.GravityOperator(pm, gg.Survey(st), device="cpu", store="matrix_free", compile=False)
    comp = gg.GravityOperator(pm, gg.Survey(st), device="cpu", store="matrix_free", compile=True)
    m = torch.tensor(rng.normal(size=pm.n_cells) * 100, **T)
    r = torch.tensor(rng.normal(size=len(st)), **T)
    torch.testing.assert_close(comp.forward(m), eager.forward(m), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(comp.adjoint(r), eager.adjoint(r), rtol=1e-12, atol=1e-14)
    assert comp._use_compiled  # did not silently fall back


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs(rng):
    mesh, active, st = small_tensor_case(rng)
    pm = gg.PrismMesh.from_discretize(mesh, active)
    sv = gg.Survey(st)
    with pytest.raises(ValueError, match="store"):
        gg.GravityOperator(pm, sv, store="disk")
    with pytest.raises(ValueError, match="method"):
        gg.GravityOperator(pm, sv, method="fast")
    with pytest.raises(ValueError, match="kernel"):
        gg.GravityOperator(pm, sv, kernel="sphere")
    with pytest.raises(TypeError, match="dtype"):
        gg.GravityOperator(pm, sv, dtype=torch.float16)
    with pytest.raises(ValueError, match="quadrature"):
        gg.GravityOperator(pm, sv, kernel="point", quadrature=0)
    op = gg.GravityOperator(pm, sv, device="cpu", compile=False)
    with pytest.raises(ValueError, match="n_cells"):
        op.forward(torch.zeros(pm.n_cells + 1, **T))
    with pytest.raises(TypeError, match="floating"):
        op.forward(torch.zeros(pm.n_cells, dtype=torch.int64))
    with pytest.raises(ValueError, match="n_data"):
        op.adjoint(torch.zeros(3, **T))
    with pytest.raises(ValueError, match="inside mesh cells"):
        gg.GravityOperator(pm, gg.Survey(pm.cell_centers[:2]))


def test_station_on_top_face_is_allowed():
    mesh = TensorMesh([[10.0] * 4, [10.0] * 4, [10.0] * 2], origin=(0, 0, -20))
    sv = gg.Survey([[15.0, 15.0, 0.0], [10.0, 10.0, 0.0], [0.0, 0.0, 0.0]])
    g = gg.GravityOperator(mesh, sv, device="cpu", compile=False).forward(np.full(mesh.n_cells, 100.0))
    assert torch.isfinite(g).all() and (g > 0).all()


@pytest.mark.gpu
def test_cuda_equals_cpu(rng):
    mesh, active, st = small_tensor_case(rng)
    pm = gg.PrismMesh.from_discretize(mesh, active)
    m = torch.tensor(rng.normal(size=pm.n_cells) * 100, **T)
    r = torch.tensor(rng.normal(size=len(st)), **T)
    cpu = gg.GravityOperator(pm, gg.Survey(st), device="cpu", store="matrix_free", compile=False)
    for compile_ in (False, True):
        gpu = gg.GravityOperator(pm, gg.Survey(st), device="cuda", store="matrix_free", compile=compile_)
        torch.testing.assert_close(gpu.forward(m).cpu(), cpu.forward(m), rtol=1e-11, atol=1e-13)
        torch.testing.assert_close(gpu.adjoint(r).cpu(), cpu.adjoint(r), rtol=1e-11, atol=1e-13)
    m32 = m.float().cuda().requires_grad_(True)
    gpu32 = gg.GravityOperator(pm, gg.Survey(st), device="cuda", dtype=torch.float32)
    gpu32(m32).sum().backward()
    torch.testing.assert_close(m32.grad.double().cpu(), cpu.adjoint(torch.ones(len(st), **T)), rtol=1e-4, atol=1e-6)


def test_station_inside_check_tensor_fast_path_equals_general(rng):
    mesh, active, _ = small_tensor_case(rng, active_fraction=0.6)
    pm = gg.PrismMesh.from_discretize(mesh, active)
    general = gg.PrismMesh(pm.bounds)  # same cells, no tensor structure
    pts = np.vstack([pm.cell_centers[:20], rng.uniform(-70, 70, (300, 3)) * [1, 1, 0.8],
                     pm.bounds[:10, [0, 2, 5]]])  # centres (inside), random, corners (not inside)
    fast, slow = pm.stations_inside(pts), general.stations_inside(pts)
    np.testing.assert_array_equal(fast, slow)
    assert set(range(20)) <= set(fast.tolist())


# ----------------------------------------------------------------------------- lattice fast path
def lattice_case(rng, heights=(1.0,), hz_var=True, step=(1, 1), shift=(0.0, 0.0)):
    hz = list(rng.uniform(10, 60, 4)) if hz_var else [40.0] * 4
    mesh = TensorMesh([[40.0] * 9, [40.0] * 8, hz], origin=(-20.0, -20.0, -sum(hz)))
    active = rng.random(mesh.n_cells) < 0.8
    xs = np.arange(-2, 11, step[0]) * 40.0 + shift[0]
    ys = np.arange(-1, 10, step[1]) * 40.0 + shift[1]
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    Z = rng.choice(np.asarray(heights), X.size)
    return gg.PrismMesh.from_discretize(mesh, active), gg.Survey(np.column_stack([X.ravel(), Y.ravel(), Z]))


@pytest.mark.parametrize("heights,step,shift", [((1.0,), (1, 1), (0.0, 0.0)),
                                                ((1.0, 35.0), (1, 1), (13.0, -7.5))])
def test_lattice_path_equals_general_path(rng, heights, step, shift):
    pm, sv = lattice_case(rng, heights, step=step, shift=shift)
    lat = gg.GravityOperator(pm, sv, device="cpu", store="matrix_free", lattice=True, compile=False)
    ref = gg.GravityOperator(pm, sv, device="cpu", store="matrix_free", lattice=False, compile=False)
    assert lat._lattice is not None and ref._lattice is None
    m = torch.tensor(rng.normal(size=(pm.n_cells, 2)) * 100, **T)
    r = torch.tensor(rng.normal(size=(sv.n_data, 2)), **T)
    for a, b in ((lat.forward(m), ref.forward(m)), (lat.adjoint(r), ref.adjoint(r)), (lat.dense(), ref.dense())):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11 * b.abs().max().item())
    lhs, rhs = (lat.forward(m[:, 0]) @ r[:, 0]).item(), (m[:, 0] @ lat.adjoint(r[:, 0])).item()
    assert abs(lhs - rhs) < 1e-12 * abs(lhs)
    torch.testing.assert_close(lat.jtj_diag(), ref.jtj_diag(), rtol=1e-10, atol=0)


def test_lattice_auto_detection(rng):
    pm, sv = lattice_case(rng)
    assert gg.GravityOperator(pm, sv, device="cpu", store="matrix_free", compile=False)._lattice is not None
    # jittered stations are not on a lattice: auto falls back, True raises
    jit = gg.Survey(sv.locations + np.column_stack([rng.normal(0, 1.0, (sv.n_data, 2)), np.zeros(sv.n_data)]))
    assert gg.GravityOperator(pm, jit, device="cpu", store="matrix_free", compile=False)._lattice is None
    with pytest.raises(ValueError, match="lattice"):
        gg.GravityOperator(pm, jit, device="cpu", lattice=True)
    with pytest.raises(ValueError, match="lattice"):
        gg.GravityOperator(pm, sv, device="cpu", lattice="yes")
