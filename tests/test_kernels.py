"""Prism and point-mass g_z kernels against analytic solutions and choclo."""

import numpy as np
import pytest
import torch

from gempy_gravinv import G, point_mass_gz, prism_gz
from gempy_gravinv._kernels import CORNER_SIGNS, kernel_block, prism_gz_matrix

T = dict(dtype=torch.float64)


def gz(stations, bounds, rho):
    return prism_gz(torch.tensor(np.atleast_2d(stations), **T), torch.tensor(np.atleast_2d(bounds), **T),
                    torch.tensor(np.atleast_1d(rho), **T)).numpy()


def gl_reference(stations, bound, rho, n=8):
    """Gauss-Legendre quadrature of the prism (a reference far from the prism)."""
    x, w = np.polynomial.legendre.leggauss(n)
    lo, hi = np.asarray(bound[0::2]), np.asarray(bound[1::2])
    u = [(lo[i] + hi[i]) / 2 + (hi[i] - lo[i]) / 2 * x for i in range(3)]
    wt = [(hi[i] - lo[i]) / 2 * w for i in range(3)]
    P = np.stack(np.meshgrid(*u, indexing="ij"), -1).reshape(-1, 3)
    W = np.prod(np.stack(np.meshgrid(*wt, indexing="ij"), -1).reshape(-1, 3), 1)
    return point_mass_gz(torch.tensor(np.atleast_2d(stations), **T), torch.tensor(P, **T),
                         torch.tensor(W * rho, **T)).numpy()


def test_sign_excess_mass_below_is_positive():
    assert gz([0, 0, 1.0], [-5, 5, -5, 5, -20, -10], 300.0)[0] > 0
    assert gz([0, 0, -30.0], [-5, 5, -5, 5, -20, -10], 300.0)[0] < 0  # mass above: negative


def test_cube_far_field_equals_point_mass():
    # a uniform cube has no quadrupole moment: prism -> point mass as (a/r)^4
    a, rho = 10.0, 500.0
    for dist in (200.0, 400.0):
        st = np.array([[30.0, -20.0, dist]])
        g = gz(st, [-a / 2, a / 2, -a / 2, a / 2, -a / 2, a / 2], rho)[0]
        r = np.linalg.norm(st)
        expected = G * rho * a**3 * st[0, 2] / r**3 * 1e5
        assert abs(g - expected) / expected < 3 * (a / r) ** 4


def test_infinite_slab_limit():
    # 2πGΔρt for a slab much wider than its depth; huge coordinates test the stable logs
    t, rho, L = 10.0, 1000.0, 1e6
    g = gz([0.0, 0.0, 0.0], [-L, L, -L, L, -t - 5.0, -5.0], rho)[0]
    slab = 2 * np.pi * G * rho * t * 1e5
    assert abs(g - slab) / slab < 1e-4
    # the slab value does not depend on the station height above it
    g2 = gz([0.0, 0.0, 50.0], [-L, L, -L, L, -t - 5.0, -5.0], rho)[0]
    assert abs(g2 - slab) / slab < 1e-4


def test_symmetry():
    b = [-7.0, 13.0, -4.0, 9.0, -40.0, -12.0]
    st = np.array([[3.0, 2.5, 1.0]])
    ref = gz(st, b, 250.0)[0]
    # mirror x and y about the prism centre
    cx, cy = (b[0] + b[1]) / 2, (b[2] + b[3]) / 2
    assert np.isclose(gz([[2 * cx - 3.0, 2.5, 1.0]], b, 250.0)[0], ref, rtol=1e-13)
    assert np.isclose(gz([[3.0, 2 * cy - 2.5, 1.0]], b, 250.0)[0], ref, rtol=1e-13)
    # swapping x and y axes
    bs = [b[2], b[3], b[0], b[1], b[4], b[5]]
    assert np.isclose(gz([[2.5, 3.0, 1.0]], bs, 250.0)[0], ref, rtol=1e-13)
    # a station mirrored in z sees the opposite sign
    bz = [b[0], b[1], b[2], b[3], -b[5] + 2.0, -b[4] + 2.0]
    assert np.isclose(gz([[3.0, 2.5, 1.0]], bz, 250.0)[0], -ref, rtol=1e-12)


@pytest.mark.parametrize("split_axis", [0, 1, 2])
def test_superposition_split_prism(split_axis):
    b = np.array([-10.0, 10.0, -6.0, 14.0, -30.0, 0.0])
    cut = (b[2 * split_axis] + b[2 * split_axis + 1]) / 2
    b1, b2 = b.copy(), b.copy()
    b1[2 * split_axis + 1] = cut
    b2[2 * split_axis] = cut
    # stations include points on the shared face, edges and corners
    st = np.array([[0.0, 4.0, 0.0], [10.0, -6.0, 0.0], [0.0, 0.0, 5.0], [-10.0, 14.0, 0.0], [3.0, 3.0, 0.0]])
    whole = gz(st, b, 321.0)
    parts = gz(st, b1, 321.0) + gz(st, b2, 321.0)
    np.testing.assert_allclose(parts, whole, rtol=1e-12)


def test_stations_on_faces_edges_corners_are_finite_and_continuous():
    b = [0.0, 10.0, 0.0, 10.0, -10.0, 0.0]
    on = np.array([[5.0, 5.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 0.0], [10.0, 10.0, 0.0], [0.0, 0.0, -10.0],
                   [-3.0, 5.0, -5.0]])
    eps = np.array([0.0, 0.0, 1e-7])
    g_on = gz(on, b, 1000.0)
    g_near = gz(on + eps, b, 1000.0)
    assert np.all(np.isfinite(g_on))
    np.testing.assert_allclose(g_on, g_near, rtol=1e-5, atol=1e-9)


def test_against_choclo_random_prisms(rng):
    choclo = pytest.importorskip("choclo")
    n = 40
    west = rng.uniform(-500, 500, n)
    south = rng.uniform(-500, 500, n)
    top = rng.uniform(-300, -1, n)
    b = np.column_stack([west, west + rng.uniform(1, 80, n), south, south + rng.uniform(1, 80, n),
                         top - rng.uniform(1, 80, n), top])
    st = np.column_stack([rng.uniform(-700, 700, 30), rng.uniform(-700, 700, 30), rng.uniform(0, 50, 30)])
    rho = rng.uniform(-300, 300, n)
    ours = gz(st, b, rho)
    ref = np.zeros(len(st))
    for i in range(len(st)):
        for j in range(n):
            ref[i] += choclo.prism.gravity_u(*st[i], *b[j], rho[j])
    ref = -ref * 1e5  # choclo: upward component, m/s²
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())


def test_far_field_accuracy_float64_and_float32():
    # documented: float64 error stays < 1e-9 relative at 100 cell sizes; float32 degrades quickly
    b = [-0.5, 0.5, -0.5, 0.5, -0.5, 0.5]
    st = np.array([[10.0, 0.0, 100.0]])
    ref = gl_reference(st, b, 1.0)[0]
    g64 = gz(st, b, 1.0)[0]
    assert abs(g64 - ref) / abs(ref) < 1e-9
    g32 = prism_gz(torch.tensor(st, dtype=torch.float32), torch.tensor([b], dtype=torch.float32),
                   torch.tensor([1.0], dtype=torch.float32)).double().item()
    assert abs(g32 - ref) / abs(ref) > 1e-4  # why the operator defaults to float64


def test_point_mass_analytic():
    st = torch.tensor([[0.0, 0.0, 10.0], [30.0, 40.0, 0.0]], **T)
    pts = torch.tensor([[0.0, 0.0, -90.0]], **T)
    g = point_mass_gz(st, pts, torch.tensor([1e9], **T)).numpy()
    np.testing.assert_allclose(g[0], G * 1e9 / 100.0**2 * 1e5, rtol=1e-14)
    r = np.sqrt(30**2 + 40**2 + 90**2)
    np.testing.assert_allclose(g[1], G * 1e9 * 90.0 / r**3 * 1e5, rtol=1e-14)
    # a station on the point mass gives 0, not NaN
    assert point_mass_gz(pts, pts, torch.tensor([1.0], **T)).item() == 0.0


def test_laplace_outside_the_prism():
    # g_z of a prism is harmonic outside it: the 7-point Laplacian of g_z vanishes
    b = [-5.0, 5.0, -5.0, 5.0, -15.0, -5.0]
    c = np.array([3.0, -2.0, 4.0])
    h = 0.5
    pts = [c] + [c + s * h * e for e in np.eye(3) for s in (1, -1)]
    g = gz(np.array(pts), b, 1000.0)
    lap = (g[1:].sum() - 6 * g[0]) / h**2
    assert abs(lap) < 1e-6 * abs(g[0]) / h**2 * 100


def test_matrix_rows_equal_corner_sum():
    st = torch.tensor([[1.0, 2.0, 3.0]], **T)
    b = torch.tensor([[0.0, 4.0, -1.0, 2.0, -9.0, -3.0]], **T)
    corners = torch.tensor([[b[0, 1 if k & 1 else 0], b[0, 3 if k & 2 else 2], b[0, 5 if k & 4 else 4]]
                            for k in range(8)], **T)
    k = kernel_block(st, corners)
    assert torch.allclose((k[0] * torch.tensor(CORNER_SIGNS, **T)).sum(), prism_gz_matrix(st, b)[0, 0],
                          rtol=1e-14)
