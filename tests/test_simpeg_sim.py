"""gempy_gravinv.simpeg.Simulation3DIntegral against SimPEG's own gravity simulation.

Mirrors SimPEG's gravity tests: forward against SimPEG (choclo and geoana engines, float64
sensitivities) and an analytic sphere, adjointness of Jvec/Jtvec, derivative checks with
a non-linear map, getJtJdiag with data weights.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

discretize = pytest.importorskip("discretize")
pytest.importorskip("simpeg")

from discretize.tests import assert_isadjoint, check_derivative  # noqa: E402
from simpeg import maps  # noqa: E402
from simpeg.potential_fields import gravity  # noqa: E402

from gempy_gravinv import MGAL  # noqa: E402
from gempy_gravinv import G as NEWTON_G  # noqa: E402
from gempy_gravinv.simpeg import Simulation3DIntegral  # noqa: E402


def _survey(loc):
    rx = gravity.receivers.Point(np.asarray(loc, float), components="gz")
    return gravity.survey.Survey(gravity.sources.SourceField([rx]))


@pytest.fixture(scope="module")
def case():
    """Irregular tensor mesh (stretched cells), random active cells and stations above it."""
    rng = np.random.default_rng(42)
    hx = [(20.0, 2, -1.3), (20.0, 6), (20.0, 2, 1.3)]
    hy = [(25.0, 7)]
    hz = [(15.0, 2, -1.2), (15.0, 4)]
    mesh = discretize.TensorMesh([hx, hy, hz], origin="CC0")
    mesh.origin = mesh.origin + np.r_[0.0, 0.0, -mesh.h[2].sum()]  # top of mesh at z = 0
    active = rng.random(mesh.n_cells) > 0.25
    n = 25
    loc = np.c_[rng.uniform(-150, 150, n), rng.uniform(-80, 80, n), rng.uniform(0.5, 30.0, n)]
    return mesh, active, _survey(loc), rng


def _pair(mesh, active, survey, engine="choclo", mapping=None, **kw):
    nC = int(active.sum())
    mapping = maps.IdentityMap(nP=nC) if mapping is None else mapping
    ref = gravity.simulation.Simulation3DIntegral(
        mesh, survey=survey, active_cells=active, rhoMap=mapping, engine=engine,
        sensitivity_dtype=np.float64)
    kw = {"sensitivity_dtype": np.float64, **kw}
    ours = Simulation3DIntegral(mesh, survey=survey, active_cells=active, rhoMap=mapping, **kw)
    return ref, ours


@pytest.mark.parametrize("engine", ["choclo", "geoana"])
def test_forward_matches_simpeg(case, engine):
    mesh, active, survey, rng = case
    ref, ours = _pair(mesh, active, survey, engine=engine)
    m = rng.normal(0.0, 0.3, int(active.sum()))  # g/cm³
    d_ref, d_ours = ref.dpred(m), ours.dpred(m)
    assert np.max(np.abs(d_ours - d_ref)) <= 1e-10 * np.max(np.abs(d_ref))
    np.testing.assert_allclose(ours.G, ref.G, rtol=0, atol=1e-10 * np.abs(ref.G).max())


def test_tree_mesh_matches_simpeg():
    """An octree mesh refined around the stations (hanging nodes), against SimPEG/choclo.

    Its origin is not a round number: corner nodes are merged on rounded keys but keep
    their exact coordinates, so the match stays at 1e-10.
    """
    from discretize.utils import mesh_builder_xyz, refine_tree_xyz

    rng = np.random.default_rng(7)
    loc = np.c_[rng.uniform(-60, 60, 12), rng.uniform(-60, 60, 12), np.full(12, 5.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mesh = mesh_builder_xyz(loc, [10.0, 10.0, 10.0], depth_core=60.0, padding_distance=[[40, 40]] * 3,
                                mesh_type="tree")
        mesh = refine_tree_xyz(mesh, loc, octree_levels=[1, 1], method="surface", finalize=True)
    assert np.abs(mesh.origin[:2] - np.round(mesh.origin[:2], 6)).max() > 1e-8  # not round
    active = mesh.cell_centers[:, 2] < 0.0
    nC = int(active.sum())
    ref, ours = _pair(mesh, active, _survey(loc))
    m = rng.normal(0.0, 0.3, nC)
    d_ref = ref.dpred(m)
    np.testing.assert_allclose(ours.dpred(m), d_ref, rtol=0, atol=1e-10 * np.abs(d_ref).max())


def _assert_same_products(sim, ref, rng, n_model, n_data, atol, rtol_diag, scale=1.0):
    """``sim`` agrees with ``ref`` on dpred, Jtvec (atol relative to the largest value) and getJtJdiag."""
    m = rng.normal(0.0, scale, n_model)
    v = rng.normal(size=n_data)
    d = ref.dpred(m)
    np.testing.assert_allclose(sim.dpred(m), d, rtol=0, atol=atol * np.abs(d).max())
    jt = ref.Jtvec(m, v)
    np.testing.assert_allclose(sim.Jtvec(m, v), jt, rtol=0, atol=atol * np.abs(jt).max())
    W = sp.diags(rng.uniform(0.5, 2.0, n_data))
    np.testing.assert_allclose(sim.getJtJdiag(m, W=W), ref.getJtJdiag(m, W=W), rtol=rtol_diag)


@pytest.mark.parametrize("store", ["forward_only", "matrix_free"])
def test_matrix_free_modes_match_ram(case, store):
    mesh, active, survey, rng = case
    _, ram = _pair(mesh, active, survey)
    mf = Simulation3DIntegral(mesh, survey=survey, active_cells=active,
                              rhoMap=maps.IdentityMap(nP=int(active.sum())), store_sensitivities=store,
                              engine="choclo")
    _assert_same_products(mf, ram, rng, int(active.sum()), survey.nD, atol=1e-11, rtol_diag=1e-11, scale=0.3)
    # forward only: G is a LinearOperator, as SimPEG's choclo engine gives
    from scipy.sparse.linalg import LinearOperator

    assert isinstance(mf.G, LinearOperator) and mf.sensitivity_dtype is np.float64
    m = rng.normal(size=int(active.sum()))
    np.testing.assert_allclose(mf.G @ m, ram.G @ m, rtol=0, atol=1e-11 * np.abs(ram.G @ m).max())


def test_sign_and_sphere():
    """A uniform sphere (many small cells) against GM/r² (upward g_z negative for excess mass)."""
    h = 10.0
    n = 16
    mesh = discretize.TensorMesh([[(h, n)]] * 3, origin=(-80.0, -80.0, -260.0))
    R, zc = 70.0, -180.0
    cc = mesh.cell_centers
    inside = np.linalg.norm(cc - np.r_[0.0, 0.0, zc], axis=1) <= R
    rho = 0.5  # g/cm³
    loc = np.array([[0.0, 0.0, 5.0], [60.0, -30.0, 5.0], [-120.0, 90.0, 20.0]])
    sim = Simulation3DIntegral(mesh, survey=_survey(loc), active_cells=inside,
                               rhoMap=maps.IdentityMap(nP=int(inside.sum())))
    gz = sim.dpred(np.full(int(inside.sum()), rho))
    mass = rho * 1000.0 * inside.sum() * h**3  # the voxelised sphere's mass, kg
    d = loc - np.r_[0.0, 0.0, zc]
    r = np.linalg.norm(d, axis=1)
    gz_up = -NEWTON_G * mass * d[:, 2] / r**3 / MGAL  # upward component, mGal
    assert np.all(gz < 0)
    np.testing.assert_allclose(gz, gz_up, rtol=5e-3)


def test_adjoint(case):
    mesh, active, survey, rng = case
    nC = int(active.sum())
    _, ours = _pair(mesh, active, survey)
    m0 = rng.normal(size=nC)
    assert_isadjoint(lambda v: ours.Jvec(m0, v), lambda u: ours.Jtvec(m0, u), nC, survey.nD,
                     rtol=1e-12, random_seed=0)


def test_derivative_with_exp_map(case):
    mesh, active, survey, rng = case
    nC = int(active.sum())
    ref, ours = _pair(mesh, active, survey, mapping=maps.ExpMap(nP=nC))
    m0 = np.log(rng.uniform(0.1, 0.5, nC))

    def fun(m):
        return ours.dpred(m), lambda v: ours.Jvec(m, v)

    assert check_derivative(fun, m0, num=4, plotIt=False, random_seed=1)
    v = rng.normal(size=nC)
    u = rng.normal(size=survey.nD)
    np.testing.assert_allclose(ours.Jvec(m0, v), ref.Jvec(m0, v), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.Jtvec(m0, u), ref.Jtvec(m0, u), rtol=1e-10, atol=1e-12)
    # getJtJdiag through the non-linear map
    W = sp.diags(rng.uniform(0.5, 2.0, survey.nD))
    np.testing.assert_allclose(ours.getJtJdiag(m0, W=W), ref.getJtJdiag(m0, W=W), rtol=1e-10)


def test_getjtjdiag_matches_simpeg_and_caches(case):
    mesh, active, survey, rng = case
    ref, ours = _pair(mesh, active, survey)
    m = rng.normal(size=int(active.sum()))
    np.testing.assert_allclose(ours.getJtJdiag(m), ref.getJtJdiag(m), rtol=1e-10)
    W = sp.diags(1.0 / rng.uniform(0.01, 0.1, survey.nD))
    a = ours.getJtJdiag(m, W=W)
    np.testing.assert_allclose(a, ref.getJtJdiag(m, W=W), rtol=1e-10)
    digest = ours._weights_sha256.digest()
    ours.getJtJdiag(m, W=W)
    assert ours._weights_sha256.digest() == digest
    # explicit formula: diag(Jᵀ WᵀW J)
    J = ours.getJ(m)
    np.testing.assert_allclose(a, np.einsum("i,ij,ij->j", W.diagonal() ** 2, J, J), rtol=1e-10)


def test_drop_in_constructor_options(case):
    mesh, active, survey, _ = case
    nC = int(active.sum())
    with pytest.warns(FutureWarning, match="ind_active"):
        sim = Simulation3DIntegral(mesh, survey=survey, ind_active=active, rhoMap=maps.IdentityMap(nP=nC),
                                   engine="choclo", sensitivity_dtype=np.float64, numba_parallel=False)
    np.testing.assert_array_equal(sim.active_cells, active)
    with pytest.raises(ValueError, match="store_sensitivities"):
        Simulation3DIntegral(mesh, survey=survey, store_sensitivities="cloud")
    with pytest.raises(TypeError, match="discretize"):
        Simulation3DIntegral(np.zeros(3), survey=survey)
    # a station inside an active cell (borehole data): warned about, and computed as SimPEG computes it
    loc = mesh.cell_centers[np.flatnonzero(active)[:2]] + [[0.3, -0.2, 0.1], [0.0, 0.0, 0.0]]
    rx = gravity.receivers.Point(loc, components=["gz", "gzz", "gxy"])
    inside = gravity.survey.Survey(gravity.sources.SourceField([rx]))
    m = np.random.default_rng(1).normal(0.0, 0.2, nC)
    sim = Simulation3DIntegral(mesh, survey=inside, active_cells=active, rhoMap=maps.IdentityMap(nP=nC),
                               sensitivity_dtype=np.float64)
    ref = gravity.simulation.Simulation3DIntegral(mesh, survey=inside, active_cells=active,
                                                  rhoMap=maps.IdentityMap(nP=nC), engine="choclo",
                                                  sensitivity_dtype=np.float64)
    with pytest.warns(UserWarning, match="2 station.s. lie inside active cells"):
        d = sim.dpred(m)
    np.testing.assert_allclose(d, ref.dpred(m), rtol=1e-9, atol=1e-12 * np.abs(ref.dpred(m)).max())


def test_rho_without_map_and_survey_reset(case):
    mesh, active, survey, rng = case
    nC = int(active.sum())
    rho = rng.normal(size=nC)
    ref = gravity.simulation.Simulation3DIntegral(mesh, survey=survey, active_cells=active, rho=rho,
                                                  engine="choclo", sensitivity_dtype=np.float64)
    ours = Simulation3DIntegral(mesh, survey=survey, active_cells=active, rho=rho, sensitivity_dtype=np.float64)
    np.testing.assert_allclose(ours.dpred(), ref.dpred(), rtol=1e-10)
    # changing the survey rebuilds the operator
    sub = _survey(survey.receiver_locations[:5])
    ours.survey = sub
    assert ours.dpred().shape == (5,)
    np.testing.assert_allclose(ours.dpred(), ref.dpred()[:5], rtol=1e-10)


def test_no_shadowing_of_simpeg():
    import simpeg

    import gempy_gravinv.simpeg as ours_pkg
    from gempy_gravinv.simpeg import _simulation

    assert _simulation.simpeg is simpeg
    assert simpeg.__name__ == "simpeg" and ours_pkg.__name__ == "gempy_gravinv.simpeg"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert issubclass(Simulation3DIntegral, simpeg.simulation.BaseSimulation)


@pytest.mark.gpu
@pytest.mark.parametrize("store", ["ram", "matrix_free"])
def test_cuda_matches_cpu(case, store):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    mesh, active, survey, rng = case
    nC = int(active.sum())
    cpu = Simulation3DIntegral(mesh, survey=survey, active_cells=active, rhoMap=maps.IdentityMap(nP=nC))
    gpu = Simulation3DIntegral(mesh, survey=survey, active_cells=active, rhoMap=maps.IdentityMap(nP=nC),
                               device="cuda", store_sensitivities=store)
    _assert_same_products(gpu, cpu, rng, nC, survey.nD, atol=1e-10, rtol_diag=1e-9)
