"""Every gravity component of the drop-in SimPEG simulation, its storage options and checks.

A faithful subset of SimPEG's ``tests/pf/test_forward_Grav_Linear.py`` (the whole file
runs against our class in ``benchmarks/simpeg_upstream_tests.py``): each component
against SimPEG's choclo engine (float64, 1e-10 relative) and against the closed-form
prism of geoana; SimPEG's units and signs; the adjoint of a multi-component survey;
float32 storage with SimPEG's float32 products; ``"disk"`` as a memmap; ``forward_only``'s
LinearOperator; SimPEG's option checks; and SimPEG's multiprocessing meta simulation in
forked workers (in a subprocess with a timeout, so a deadlock fails instead of hanging).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

discretize = pytest.importorskip("discretize")
pytest.importorskip("simpeg")

from discretize.tests import assert_isadjoint  # noqa: E402
from scipy.sparse.linalg import LinearOperator  # noqa: E402
from simpeg import maps  # noqa: E402
from simpeg.potential_fields import gravity  # noqa: E402

from gempy_gravinv.simpeg import Simulation3DIntegral  # noqa: E402

COMPONENTS = ["gx", "gy", "gz", "gxx", "gxy", "gxz", "gyy", "gyz", "gzz", "guv"]


def _survey(loc, components):
    rx = gravity.receivers.Point(np.asarray(loc, float), components=components)
    return gravity.survey.Survey(gravity.sources.SourceField([rx]))


@pytest.fixture(scope="module")
def case():
    """Stretched tensor mesh, random active cells, stations above it (some on the top face)."""
    rng = np.random.default_rng(3)
    mesh = discretize.TensorMesh([[(20.0, 2, -1.3), (20.0, 5), (20.0, 2, 1.3)], [(25.0, 6)],
                                  [(15.0, 2, -1.2), (15.0, 3)]], origin="CC0")
    mesh.origin = mesh.origin + np.r_[0.0, 0.0, -mesh.h[2].sum()]
    active = rng.random(mesh.n_cells) > 0.25
    loc = np.c_[rng.uniform(-120, 120, 14), rng.uniform(-70, 70, 14), rng.uniform(0.5, 30.0, 14)]
    loc[:2, 2] = 0.0  # on the top face of the mesh (outside every cell)
    return mesh, active, loc, rng


def _sims(mesh, active, survey, **kw):
    nC = int(active.sum())
    # serial numba: its JIT compilation per component is half the parallel one's
    ref = gravity.simulation.Simulation3DIntegral(mesh, survey=survey, active_cells=active,
                                                  rhoMap=maps.IdentityMap(nP=nC), engine="choclo",
                                                  sensitivity_dtype=np.float64, numba_parallel=False)
    kw = {"sensitivity_dtype": np.float64, **kw}
    ours = Simulation3DIntegral(mesh, survey=survey, active_cells=active, rhoMap=maps.IdentityMap(nP=nC), **kw)
    return ref, ours


@pytest.fixture(scope="module")
def ten(case):
    """All ten components in one survey (SimPEG's interleaved order) and SimPEG/choclo's G for it."""
    mesh, active, loc, _ = case
    survey = _survey(loc, COMPONENTS)
    ref, _ = _sims(mesh, active, survey)
    return survey, ref, np.asarray(ref.G)


@pytest.mark.parametrize("store", ["ram", "forward_only"])
def test_every_component_matches_simpeg_choclo(case, ten, store):
    """Data, G, Jᵀv and diag(JᵀJ) of every component to 1e-10 of SimPEG's choclo engine (float64)."""
    mesh, active, loc, rng = case
    survey, ref, G_ref = ten
    _, ours = _sims(mesh, active, survey, store_sensitivities=store)
    m = rng.normal(0.0, 0.3, int(active.sum()))
    d_ref, d = G_ref @ m, ours.dpred(m)
    for i, c in enumerate(COMPONENTS):
        a, b = d[i::10], d_ref[i::10]
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * np.abs(b).max(), err_msg=c)
    v = rng.normal(size=survey.nD)
    jt = G_ref.T @ v
    np.testing.assert_allclose(ours.Jtvec(m, v), jt, rtol=0, atol=1e-10 * np.abs(jt).max())
    w = rng.uniform(0.5, 2.0, survey.nD)
    np.testing.assert_allclose(ours.getJtJdiag(m, W=sp.diags(w)), np.einsum("i,ij,ij->j", w**2, G_ref, G_ref),
                               rtol=1e-10)
    if store == "ram":
        np.testing.assert_allclose(ours.G, G_ref, rtol=0, atol=1e-10 * np.abs(G_ref).max())


def test_tree_mesh_two_receivers_match_simpeg():
    """An octree (hanging nodes) and two receiver objects with different components."""
    from discretize.utils import mesh_builder_xyz, refine_tree_xyz

    rng = np.random.default_rng(11)
    loc = np.c_[rng.uniform(-50, 50, 10), rng.uniform(-50, 50, 10), np.full(10, 4.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mesh = mesh_builder_xyz(loc, [10.0, 10.0, 10.0], depth_core=50.0, padding_distance=[[30, 30]] * 3,
                                mesh_type="tree")
        mesh = refine_tree_xyz(mesh, loc, octree_levels=[1, 1], method="surface", finalize=True)
    active = mesh.cell_centers[:, 2] < 0.0
    rx = [gravity.Point(loc[:6], components=["gxz", "gyz", "gzz"]), gravity.Point(loc[6:], components=["gz", "guv"])]
    survey = gravity.Survey(gravity.SourceField(rx))
    ref, ours = _sims(mesh, active, survey)
    m = rng.normal(0.0, 0.3, int(active.sum()))
    d_ref = ref.dpred(m)
    np.testing.assert_allclose(ours.dpred(m), d_ref, rtol=0, atol=1e-10 * np.abs(d_ref).max())
    W = sp.diags(rng.uniform(0.5, 2.0, survey.nD))
    np.testing.assert_allclose(ours.getJtJdiag(m, W=W), ref.getJtJdiag(m, W=W), rtol=1e-10)


def test_block_against_geoana_prism_units_and_signs():
    """A block of cells against geoana's closed-form prism: SimPEG's units (mGal, Eötvös) and signs."""
    from geoana.gravity import Prism

    h = 10.0
    mesh = discretize.TensorMesh([[(h, 6)], [(h, 4)], [(h, 3)]], origin=(-30.0, -20.0, -40.0))
    active = np.ones(mesh.n_cells, bool)
    # the last station is on the block's top face: finite for the first-order components
    loc = np.array([[0.0, 0.0, 5.0], [45.0, -10.0, 2.0], [-60.0, 35.0, 20.0], [5.0, 5.0, -10.0]])
    rho = 0.8  # g/cm³
    prism = Prism(np.r_[-30.0, -20.0, -40.0], np.r_[30.0, 20.0, -10.0], rho * 1000.0)
    g = prism.gravitational_field(loc) * 1e5  # mGal, SimPEG's sign (upward gz)
    T = prism.gravitational_gradient(loc) * 1e9  # Eötvös
    expected = {"gx": g[:, 0], "gy": g[:, 1], "gz": g[:, 2], "gxx": T[:, 0, 0], "gxy": T[:, 0, 1],
                "gxz": T[:, 0, 2], "gyy": T[:, 1, 1], "gyz": T[:, 1, 2], "gzz": T[:, 2, 2],
                "guv": 0.5 * (T[:, 1, 1] - T[:, 0, 0])}
    sim = Simulation3DIntegral(mesh, survey=_survey(loc[:3], COMPONENTS), active_cells=active,
                               rhoMap=maps.IdentityMap(nP=mesh.n_cells), sensitivity_dtype=np.float64)
    d = sim.dpred(np.full(mesh.n_cells, rho))
    for i, c in enumerate(COMPONENTS):
        np.testing.assert_allclose(d[i::10], expected[c][:3], rtol=1e-9, atol=1e-9, err_msg=c)
    # signs above the block's centre: gz (upward) < 0, gzz > 0, gxx, gyy < 0; Laplace holds
    assert d[2] < 0 and d[8] > 0 and d[3] < 0 and d[6] < 0
    np.testing.assert_allclose(d[3] + d[6] + d[8], 0.0, atol=1e-9 * abs(d[8]))
    # a station east of the body is pulled west: gx < 0 there
    assert d[10] < 0
    face = Simulation3DIntegral(mesh, survey=_survey(loc[3:], ["gx", "gy", "gz"]), active_cells=active,
                                rhoMap=maps.IdentityMap(nP=mesh.n_cells), sensitivity_dtype=np.float64)
    np.testing.assert_allclose(face.dpred(np.full(mesh.n_cells, rho)), g[3], rtol=1e-9)


def test_adjoint_multi_component(case):
    mesh, active, loc, rng = case
    survey = _survey(loc, ["gz", "gxx", "gyz", "guv"])
    nC = int(active.sum())
    for store in ("ram", "forward_only"):
        _, ours = _sims(mesh, active, survey, store_sensitivities=store)
        m0 = rng.normal(size=nC)
        assert_isadjoint(lambda v, s=ours, m0=m0: s.Jvec(m0, v), lambda u, s=ours, m0=m0: s.Jtvec(m0, u),
                         nC, survey.nD, rtol=1e-12, random_seed=0)


def test_float32_storage_products_as_simpeg(case):
    """float32 storage: half the bytes, entries rounded once (1e-7); products in float32 as SimPEG's.

    SimPEG computes ``G @ rho.astype(sensitivity_dtype)`` (and ``G.T @ v.astype(...)``):
    with its default float32 storage the products are float32 BLAS products. Ours do the
    same (SimPEG's equivalent-source tests compare the two at 1e-7), and
    ``product_dtype=np.float64`` sums the stored entries in float64 instead.
    """
    mesh, active, loc, rng = case
    survey = _survey(loc, ["gz", "gzz"])
    nC = int(active.sum())
    ref, ours64 = _sims(mesh, active, survey)
    ref32 = gravity.simulation.Simulation3DIntegral(mesh, survey=survey, active_cells=active,
                                                    rhoMap=maps.IdentityMap(nP=nC), engine="choclo",
                                                    numba_parallel=False)  # SimPEG's default: float32
    ours32 = Simulation3DIntegral(mesh, survey=survey, active_cells=active, rhoMap=maps.IdentityMap(nP=nC))
    assert ours32.sensitivity_dtype is np.float32 and ours32.G.dtype == np.float32
    assert ours32.G.nbytes * 2 == ours64.G.nbytes
    # the stored entries: the float64 values rounded once
    np.testing.assert_array_equal(ours32.G, ours64.G.astype(np.float32))
    m = rng.normal(0.0, 0.3, nC)
    v = rng.normal(size=survey.nD)
    d = ref.dpred(m)
    d32 = ours32.dpred(m)
    assert d32.dtype == ref32.dpred(m).dtype == np.float32  # SimPEG's float32 product
    np.testing.assert_allclose(d32, ref32.dpred(m), rtol=1e-6, atol=1e-6 * np.abs(d).max())
    np.testing.assert_array_equal(d32, ours32.G @ m.astype(np.float32))
    np.testing.assert_array_equal(ours32.Jtvec(m, v), ours32.G.T @ v.astype(np.float32))
    assert np.abs(d32 - d).max() / np.abs(d).max() < 1e-6
    # getJtJdiag sums in float64, as SimPEG's einsum does
    np.testing.assert_allclose(ours32.getJtJdiag(m), ref32.getJtJdiag(m), rtol=1e-6)
    assert ours32.getJtJdiag(m).dtype == np.float64
    # product_dtype=np.float64: the float64 sum of the stored float32 entries
    acc = Simulation3DIntegral(mesh, survey=survey, active_cells=active, rhoMap=maps.IdentityMap(nP=nC),
                               product_dtype=np.float64)
    assert acc.dpred(m).dtype == np.float64
    np.testing.assert_allclose(acc.dpred(m), ours32.G.astype(np.float64) @ m, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(acc.Jtvec(m, v), ours32.G.astype(np.float64).T @ v, rtol=1e-13, atol=1e-15)
    with pytest.raises(TypeError, match="product_dtype"):
        Simulation3DIntegral(mesh, survey=survey, active_cells=active, product_dtype=np.float32)
    with pytest.raises(TypeError, match="sensitivity_dtype must be either np.float32 or np.float64."):
        ours32.sensitivity_dtype = np.float16
    ours32.sensitivity_dtype = np.float64  # the setter drops the stored G
    np.testing.assert_allclose(ours32.dpred(m), d, rtol=0, atol=1e-10 * np.abs(d).max())


def test_G_in_one_block_or_many_blocks(case):
    """"ram" G: one block of the operator kept as it is, or row blocks copied into a column-major array."""
    mesh, active, loc, rng = case
    survey = _survey(loc, ["gz"])
    nC = int(active.sum())
    ref, one = _sims(mesh, active, survey)
    many = Simulation3DIntegral(mesh, survey=survey, active_cells=active, rhoMap=maps.IdentityMap(nP=nC),
                                sensitivity_dtype=np.float64, memory_budget=30_000)
    assert len(list(many.operator.dense_rows())) > 1 and len(list(one.operator.dense_rows())) == 1
    G_ref = np.asarray(ref.G)
    for sim in (one, many):
        G = sim.G
        assert G.shape == G_ref.shape and G.dtype == np.float64 and (G.flags.f_contiguous or G.flags.c_contiguous)
        np.testing.assert_allclose(G, G_ref, rtol=0, atol=1e-10 * np.abs(G_ref).max())
        m = rng.normal(size=nC)
        np.testing.assert_allclose(sim.dpred(m), ref.dpred(m), rtol=0, atol=1e-10 * np.abs(ref.dpred(m)).max())
        w = rng.uniform(0.5, 2.0, survey.nD)
        np.testing.assert_allclose(sim.getJtJdiag(m, W=sp.diags(w)), ref.getJtJdiag(m, W=sp.diags(w)), rtol=1e-9)
    assert many.G.flags.f_contiguous  # row blocks copied into a column-major array
    np.testing.assert_array_equal(one.G, many.G)


@pytest.mark.parametrize("engine", ["choclo", "geoana"])
def test_disk_storage_is_a_memmap(case, tmp_path, engine):
    mesh, active, loc, rng = case
    survey = _survey(loc, ["gz", "gxz"])
    path = tmp_path / "sens"
    if engine == "geoana":
        path.mkdir()
    nC = int(active.sum())
    sim = Simulation3DIntegral(mesh, survey=survey, active_cells=active, rhoMap=maps.IdentityMap(nP=nC),
                               store_sensitivities="disk", sensitivity_path=str(path), engine=engine)
    G = sim.G
    assert type(G) is np.memmap and G.dtype == np.float32
    file = path if engine == "choclo" else path / "sensitivity.npy"
    assert file.is_file() and file.stat().st_size >= G.nbytes
    ram = Simulation3DIntegral(mesh, survey=survey, active_cells=active, rhoMap=maps.IdentityMap(nP=nC))
    np.testing.assert_array_equal(np.asarray(G), ram.G)
    if engine == "geoana":
        np.testing.assert_array_equal(np.load(file, mmap_mode="r"), ram.G)
    with pytest.raises(ValueError, match="is a directory"):
        Simulation3DIntegral(mesh, survey=survey, store_sensitivities="disk", sensitivity_path=str(tmp_path),
                             engine="choclo")


def test_forward_only_linear_operator_and_getj(case):
    mesh, active, loc, rng = case
    survey = _survey(loc, ["gy", "gzz"])
    nC = int(active.sum())
    ref, ours = _sims(mesh, active, survey, store_sensitivities="forward_only", engine="choclo")
    assert isinstance(ours.G, LinearOperator) and ours.sensitivity_dtype is np.float64
    m = np.log(rng.uniform(0.1, 0.5, nC))
    expmap = maps.ExpMap(nP=nC)
    ours.rhoMap = expmap
    J = ours.getJ(m)
    assert isinstance(J, LinearOperator)
    v = rng.normal(size=survey.nD)
    expected = expmap.deriv(m).T @ (ref.G.T @ v)
    np.testing.assert_allclose(J.T @ v, expected, rtol=0, atol=1e-10 * np.abs(expected).max())


def test_simpeg_option_checks(case):
    mesh, active, loc, _ = case
    survey = _survey(loc[:2], ["gz"])
    with pytest.raises(ValueError, match=r"'engine' must be in \('geoana', 'choclo'\). Got 'invalid'"):
        Simulation3DIntegral(mesh, survey=survey, engine="invalid")
    with pytest.warns(UserWarning, match="The 'n_processes' will be ignored when selecting 'choclo'"):
        sim = Simulation3DIntegral(mesh, engine="choclo", n_processes=2)
    assert sim.n_processes is None
    assert Simulation3DIntegral(mesh, engine="geoana", n_processes=3).n_processes == 3
    with pytest.raises(ValueError, match="n_processes"):
        Simulation3DIntegral(mesh, n_processes=0)
    with pytest.raises(TypeError, match="numba_parallel"):
        Simulation3DIntegral(mesh, numba_parallel="yes")
    with pytest.raises(TypeError, match="sensitivity_dtype must be either"):
        Simulation3DIntegral(mesh, sensitivity_dtype=float)
    with pytest.raises(TypeError, match="rhoMap"):
        Simulation3DIntegral(mesh, survey=survey, model_map=maps.IdentityMap(nP=mesh.n_cells))
    with pytest.raises(ValueError, match="store_sensitivities"):
        Simulation3DIntegral(mesh, store_sensitivities="cloud")
    sim = Simulation3DIntegral(mesh, store_sensitivities="forward_only")
    assert sim.sensitivity_dtype is np.float64
    assert Simulation3DIntegral(mesh).sensitivity_dtype is np.float32  # SimPEG's default storage


def test_unknown_component_refused_when_the_survey_is_set(case):
    """SimPEG's receivers check names when built; a name changed afterwards is refused at construction."""
    mesh, active, loc, _ = case
    survey = _survey(loc[:2], ["gz"])
    survey.source_field.receiver_list[0].components = ["gz", "gzx"]
    with pytest.raises(ValueError, match="unknown gravity component 'gzx'"):
        Simulation3DIntegral(mesh, survey=survey)


_FORK_SCRIPT = textwrap.dedent("""
    import multiprocessing as mp
    import numpy as np
    from discretize import TensorMesh
    from simpeg import maps
    from simpeg.meta import MultiprocessingSumMetaSimulation, SumMetaSimulation
    from simpeg.potential_fields import gravity
    import torch
    from gempy_gravinv.simpeg import Simulation3DIntegral

    mp.set_start_method("fork", force=True)
    torch.set_num_threads(2)
    mesh = TensorMesh([12, 12, 12], origin="CCN")
    rx = gravity.Point(np.mgrid[-0.25:0.25:4j, -0.25:0.25:4j, 0:1:1j].reshape(3, -1).T, components=["gz", "gzz"])
    survey = gravity.Survey(gravity.SourceField(rx))
    bot = TensorMesh([mesh.h[0], mesh.h[1], mesh.h[2][:6]], origin=mesh.origin)
    top = TensorMesh([mesh.h[0], mesh.h[1], mesh.h[2][6:]], origin=["C", "C", mesh.nodes_z[6]])
    mappings = [maps.Mesh2Mesh((bot, mesh)), maps.Mesh2Mesh((top, mesh))]
    m = np.arange(mesh.n_cells) / mesh.n_cells + 0.1
    sims = [Simulation3DIntegral(bot, survey=survey, rhoMap=maps.IdentityMap(), store_sensitivities="forward_only"),
            Simulation3DIntegral(top, survey=survey, rhoMap=maps.IdentityMap(), store_sensitivities="forward_only")]
    serial = SumMetaSimulation(sims, mappings)
    d = serial.dpred(m)  # torch runs its thread pool in the parent before the fork
    u = np.random.default_rng(0).random(mesh.n_cells)
    parallel = MultiprocessingSumMetaSimulation(sims, mappings, n_processes=2)
    try:
        np.testing.assert_allclose(parallel.dpred(m), d, rtol=1e-10)
        np.testing.assert_allclose(parallel.Jvec(m, u), serial.Jvec(m, u), rtol=1e-10)
        v = np.random.default_rng(1).random(survey.nD)
        np.testing.assert_allclose(parallel.Jtvec(m, v), serial.Jtvec(m, v), rtol=1e-10)
        np.testing.assert_allclose(parallel.getJtJdiag(m), serial.getJtJdiag(m), rtol=1e-10)
    finally:
        parallel.join()
    print("FORK-OK")
""")


def test_multiprocessing_meta_simulation_under_fork():
    """SimPEG's MultiprocessingSumMetaSimulation forks workers after torch ran: no deadlock, same numbers."""
    if not hasattr(os, "fork"):
        pytest.skip("needs fork")
    import signal

    env = {**os.environ, "GEMPY_GRAVINV_COMPILE": "0"}
    # own process group, so that a hung run and its forked workers are all ended on timeout
    proc = subprocess.Popen([sys.executable, "-c", _FORK_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("the forked meta simulation hung (deadlock in a forked worker)")
    assert proc.returncode == 0 and "FORK-OK" in out, err[-3000:]
