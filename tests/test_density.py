"""Density backends: registry, encodings' frequency content, bounds, quadrature, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gempy_gravinv import PrismMesh
from gempy_gravinv.density import (
    CoordinateNormalizer,
    FourierFeatures,
    HashGridEncoding,
    INRDensity,
    PositionalEncoding,
    VoxelDensity,
    available_densities,
    cell_points,
    evaluate_on_mesh,
    make_density,
    register_density,
)


@pytest.fixture(scope="module")
def mesh():
    return PrismMesh.from_tensor([100.0] * 6, [50.0] * 4, [25.0] * 3, origin=(0.0, 0.0, -75.0))


def test_registry_builds_backends_and_rejects_unknown(mesh):
    assert {"inr", "voxel"} <= set(available_densities())
    assert isinstance(make_density("inr", mesh=mesh, seed=0), INRDensity)
    assert isinstance(make_density("voxel", mesh=mesh), VoxelDensity)
    with pytest.raises(ValueError, match="density backend must be one of .*got 'nope'"):
        make_density("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_density("inr", VoxelDensity)


def test_registry_lazy_string_entry(mesh):
    register_density("_test_lazy_voxel", "gempy_gravinv.density._voxel:VoxelDensity", overwrite=True)
    d = make_density("_test_lazy_voxel", mesh=mesh, init_value=7.0)
    pts = torch.as_tensor(mesh.cell_centers[:3])
    assert torch.allclose(d(pts), torch.full((3,), 7.0, dtype=torch.float64))


def test_positional_encoding_has_exactly_the_chosen_frequencies():
    # 2 octaves from f0 = 2π rad/unit -> 1 and 2 cycles per unit along x
    enc = PositionalEncoding(n_frequencies=2, min_frequency=2 * math.pi, include_input=False)
    n = 256
    x = torch.arange(n, dtype=torch.float64) / n  # one unit, periodic sampling
    u = torch.stack([x, torch.zeros(n), torch.zeros(n)], 1).double()
    feats = enc(u).numpy()
    assert feats.shape[1] == enc.out_dim == 12
    power = np.abs(np.fft.rfft(feats - feats.mean(0), axis=0)) ** 2
    total = power.sum(0)
    peaks = set()
    for j in np.nonzero(total > 1e-9)[0]:
        peaks.add(int(np.argmax(power[:, j])))
        assert power[:, j].max() / total[j] > 0.999  # a pure tone
    assert peaks == {1, 2}


def test_periodic_encoding_has_the_box_harmonics_and_wraps(mesh):
    from gempy_gravinv.density._encodings import PeriodicEncoding

    # harmonics n = 1..3 of the box along x, 1..2 along z: pure tones at n cycles per box
    enc = PeriodicEncoding(n_harmonics=(3, 1, 2), lo=(-1.0, -1.0, -1.0), hi=(1.0, 1.0, 1.0))
    assert enc.out_dim == 2 * (3 + 1 + 2)
    n = 240
    t = torch.arange(n, dtype=torch.float64) / n
    for axis, k in ((0, 3), (2, 2)):
        u = torch.zeros(n, 3, dtype=torch.float64)
        u[:, axis] = -1 + 2 * t  # one period of the box
        feats = enc(u).numpy()
        nf = enc.wave.shape[0]
        cols = [j for j in range(enc.out_dim) if float(enc.wave[j % nf, axis]) != 0]
        power = np.abs(np.fft.rfft(feats[:, cols], axis=0)) ** 2
        assert sorted({int(np.argmax(power[:, c])) for c in range(len(cols))}) == list(range(1, k + 1))
        assert np.all(power.max(0) / power.sum(0) > 0.999)
    # on a mesh the period is the mesh box, cell faces included: opposite faces agree
    d = INRDensity(mesh, encoding="periodic", encoding_options={"n_harmonics": 3}, width=16, depth=2,
                   seed=0, bounds=(-500.0, 500.0), dtype="float64")  # float64: no round-off at the faces
    e = mesh.extent
    rng = np.random.default_rng(0)
    inner = rng.uniform(e[[0, 2, 4]], e[[1, 3, 5]], size=(5, 3))
    with torch.no_grad():
        v0 = d(torch.as_tensor(inner))
        for axis in range(3):
            a, b = inner.copy(), inner.copy()
            a[:, axis], b[:, axis] = e[2 * axis], e[2 * axis + 1]
            va, vb = d(torch.as_tensor(a)), d(torch.as_tensor(b))
            assert torch.allclose(va, vb, atol=1e-9) and float((va - v0).abs().max()) > 1e-6
    # the feature cache of fixed points never serves other points, and gradients reach points
    lat = PeriodicEncoding(n_harmonics=(2, 2, 1), lattice=True, spectrum=(300.0, 1.5), lengths=(600, 200, 75))
    assert lat.out_dim == 2 * (5 * 5 * 3 - 1) // 2
    ua, ub = torch.rand(7, 3, dtype=torch.float64), torch.rand(7, 3, dtype=torch.float64)
    fa = lat(ua)
    assert torch.equal(lat(ua), fa) and torch.allclose(lat(ub), lat._features(ub))
    assert not torch.allclose(lat(ub), fa)
    ug = ua.clone().requires_grad_(True)
    lat(ug).sum().backward()
    assert ug.grad is not None and float(ug.grad.abs().max()) > 0
    # the Matérn amplitude: (1 + ℓ²|k|²)^(-(ν+3/2)/2), k from the box lengths in metres
    kk = (2 * np.pi * lat.wave.numpy() / (2 * np.pi) / np.array([600.0, 200.0, 75.0])) ** 2
    np.testing.assert_allclose(lat.amp.numpy(), (1 + 300.0**2 * kk.sum(1)) ** -1.5, rtol=1e-12)
    with pytest.raises(ValueError, match="lattice=True"):
        PeriodicEncoding(spectrum=(300.0, 1.5), lengths=(1, 1, 1))
    with pytest.raises(ValueError, match="n_harmonics"):
        PeriodicEncoding(n_harmonics=0)
    with pytest.raises(ValueError, match="n_harmonics"):
        PeriodicEncoding(n_harmonics=(2, 1.5, 1))
    with pytest.raises(ValueError, match="needs a mesh"):
        INRDensity(points=mesh.cell_centers, encoding="periodic")


def test_paper_positional_layout():
    enc = PositionalEncoding(n_frequencies=2)  # the paper: [u, sin u, cos u, sin 2u, cos 2u]
    u = torch.tensor([[0.3, -0.2, 1.1]], dtype=torch.float64)
    ref = torch.cat([u, torch.sin(u), torch.cos(u), torch.sin(2 * u), torch.cos(2 * u)], 1)
    assert torch.allclose(enc(u), ref)


def test_hash_grid_levels_are_piecewise_linear_on_their_grid():
    enc = HashGridEncoding(n_levels=2, n_features_per_level=1, base_resolution=4, finest_resolution=16,
                           log2_hashmap_size=8, init_scale=1.0, seed=3, lo=(0, 0, 0), hi=(1, 1, 1))
    assert enc.resolutions == [4, 16]
    assert enc.dense_level == [True, False]  # 5³ fits in 256 entries, 17³ is hashed
    n = 1601
    x = torch.linspace(0, 1, n, dtype=torch.float64)
    u = torch.stack([x, torch.full((n,), 0.37), torch.full((n,), 0.61)], 1)
    with torch.no_grad():
        f = enc(u).numpy()
    for lvl, res in enumerate(enc.resolutions):
        d2 = np.abs(np.diff(f[:, lvl], 2))
        kinks = x.numpy()[1:-1][d2 > 1e-9]
        # second differences vanish except next to the level's own grid lines
        dist = np.abs(kinks * res - np.round(kinks * res)) / res
        assert kinks.size > 0 and np.all(dist <= 1.5 / (n - 1))
    # the coarse level cannot change faster than its grid: it is linear between 1/4 marks
    coarse = f[:, 0]
    seg = (x.numpy() >= 0.25) & (x.numpy() <= 0.5)
    coef = np.polyfit(x.numpy()[seg], coarse[seg], 1)
    assert np.allclose(np.polyval(coef, x.numpy()[seg]), coarse[seg], atol=1e-12)


def test_hash_grid_stencil_cache_never_serves_other_points():
    kw = dict(n_levels=2, n_features_per_level=2, base_resolution=3, finest_resolution=9,
              log2_hashmap_size=8, init_scale=1.0, seed=5)
    enc, fresh = HashGridEncoding(**kw), HashGridEncoding(**kw)
    g = torch.Generator().manual_seed(0)
    a = torch.rand(50, 3, generator=g, dtype=torch.float64) * 2 - 1
    b = a.clone()
    b[7, 1] += 0.3  # one point moved
    ya, ya2, yb = enc(a), enc(a), enc(b)
    assert torch.equal(ya, ya2)
    assert torch.equal(yb, fresh(b)) and not torch.equal(ya, yb)
    assert torch.equal(enc(a), ya)  # the same tensor again: served from the cache
    a[3, 0] += 0.2  # the same tensor written in place (its version changes): recomputed
    ya3 = enc(a)
    assert torch.equal(ya3, HashGridEncoding(**kw)(a)) and not torch.equal(ya3, ya)
    # gradients still reach the tables through the cached stencil, and w.r.t. points
    ya2.sum().backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in enc.tables)
    p = a.clone().requires_grad_(True)
    enc(p).sum().backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()


def test_hash_grid_sparse_interpolation_equals_the_gather():
    """The cached sparse matrices (points without gradients) give the gather's values and table
    gradients, for a dense and a hashed level; copies and pickles leave the matrices out."""
    import copy
    import pickle

    kw = dict(n_levels=2, n_features_per_level=2, base_resolution=3, finest_resolution=12,
              log2_hashmap_size=8, init_scale=1.0, seed=2)
    enc = HashGridEncoding(**kw)
    assert enc.dense_level == [True, False]
    u = torch.rand(300, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2.2 - 1.1
    w = torch.randn(300, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    (enc(u) * w).sum().backward()  # sparse path
    sparse = [t.grad.clone() for t in enc.tables]
    value = enc(u).detach()
    enc.zero_grad()
    p = u.clone().requires_grad_(True)  # the gather path (gradients w.r.t. the points too)
    out = enc(p)
    (out * w).sum().backward()
    torch.testing.assert_close(out.detach(), value, rtol=1e-12, atol=1e-12)
    for a, b in zip(sparse, enc.tables):
        torch.testing.assert_close(a, b.grad, rtol=1e-12, atol=1e-12)
    assert hasattr(enc, "_cache")
    for twin in (copy.deepcopy(enc), pickle.loads(pickle.dumps(enc))):
        assert not hasattr(twin, "_cache")
        torch.testing.assert_close(twin(u).detach(), value, rtol=0, atol=0)


def test_fourier_features_seeded():
    a, b, c = FourierFeatures(16, 2.0, seed=1), FourierFeatures(16, 2.0, seed=1), FourierFeatures(16, 2.0, seed=2)
    assert torch.equal(a.B, b.B) and not torch.equal(a.B, c.B)
    big = FourierFeatures(4000, 2.0, seed=0)
    assert abs(float(big.B.std()) - 2.0) < 0.05


def test_zscore_normalizer_matches_paper_definition(mesh):
    norm = CoordinateNormalizer.from_points(mesh.cell_centers, "zscore")
    u = norm(torch.as_tensor(mesh.cell_centers)).numpy()
    assert np.allclose(u.mean(0), 0, atol=1e-12) and np.allclose(u.std(0), 1)
    iso = CoordinateNormalizer.from_points(mesh.cell_centers, "isotropic")
    ui = iso(torch.as_tensor(mesh.cell_centers)).numpy()
    assert np.isclose(np.abs(ui[:, 0]).max(), 1.0)  # longest axis (x) spans [-1, 1]
    assert np.abs(ui[:, 2]).max() < 0.2  # same metres per unit on z


@pytest.mark.parametrize("output,bounds", [("tanh", (-600, 600)), ("sigmoid", (0, 400)), ("tanh", (100, 200))])
def test_outputs_stay_inside_bounds(mesh, output, bounds):
    d = INRDensity(mesh, output=output, bounds=bounds, seed=0)
    with torch.no_grad():
        for p in d.mlp.parameters():
            p.mul_(50.0)  # drive the raw output far into saturation
        v = d(torch.as_tensor(mesh.cell_centers))
    assert float(v.min()) >= bounds[0] and float(v.max()) <= bounds[1]
    assert float(v.max() - v.min()) > 0.5 * (bounds[1] - bounds[0])


def test_init_value_starts_the_field_there(mesh):
    d = INRDensity(mesh, output="sigmoid", bounds=(-600, 600), init_value=0.0, last_layer_gain=0.0, seed=0)
    v = d(torch.as_tensor(mesh.cell_centers))
    assert torch.allclose(v, torch.zeros_like(v), atol=1e-9)


@pytest.mark.parametrize("kw,match", [
    (dict(encoding="wavelet"), "encoding must be one of .*got 'wavelet'"),
    (dict(bounds=(5, 5)), "lo < hi"),
    (dict(bounds=(10, -10)), "lo < hi"),
    (dict(activation="swish2"), "activation must be one of .*got 'swish2'"),
    (dict(output="softmax"), "output must be one of .*got 'softmax'"),
])
def test_bad_options_raise_clear_errors(mesh, kw, match):
    with pytest.raises(ValueError, match=match):
        INRDensity(mesh, **kw)


def test_needs_a_domain():
    with pytest.raises(ValueError, match="needs a mesh"):
        INRDensity()


@pytest.mark.parametrize("encoding,opts", [("positional", {}), ("fourier", {"n_features": 8}),
                                           ("hash", {"n_levels": 2, "base_resolution": 2,
                                                     "finest_resolution": 8}),
                                           ("periodic", {"n_harmonics": 2}), ("none", {})])
def test_gradients_reach_every_parameter(mesh, encoding, opts):
    d = INRDensity(mesh, encoding=encoding, encoding_options=opts, width=16, depth=2, seed=0)
    d(torch.as_tensor(mesh.cell_centers)).pow(2).sum().backward()
    for name, p in d.named_parameters():
        assert p.grad is not None and float(p.grad.abs().max()) > 0, name


def test_seed_reproducible_and_global_rng_untouched(mesh):
    state = torch.get_rng_state()
    a = INRDensity(mesh, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    b = INRDensity(mesh, seed=5)
    c = INRDensity(mesh, seed=6)
    pts = torch.as_tensor(mesh.cell_centers)
    assert torch.equal(a(pts), b(pts)) and not torch.equal(a(pts), c(pts))


def test_quadrature_gives_exact_cell_averages(mesh):
    class Cubic(torch.nn.Module):  # 2-point Gauss–Legendre is exact for cubics per axis
        def forward(self, p):
            return p[:, 0] ** 3 * 1e-6 + p[:, 1] ** 2 * p[:, 2] * 1e-4

    b = mesh.bounds
    ex = (b[:, 1] ** 4 - b[:, 0] ** 4) / 4 / (b[:, 1] - b[:, 0]) * 1e-6
    ey = (b[:, 3] ** 3 - b[:, 2] ** 3) / 3 / (b[:, 3] - b[:, 2])
    ez = (b[:, 5] + b[:, 4]) / 2
    exact = ex + ey * ez * 1e-4
    avg = evaluate_on_mesh(Cubic(), mesh, quadrature=2).numpy()
    centre = evaluate_on_mesh(Cubic(), mesh, quadrature=1).numpy()
    assert np.allclose(avg, exact, rtol=1e-12, atol=1e-12)
    assert not np.allclose(centre, exact, rtol=1e-6)
    pts, w = cell_points(mesh, 3)
    assert pts.shape == (mesh.n_cells * 27, 3) and np.allclose(w.sum(1), 1.0)


def test_voxel_lookup_returns_containing_cell(mesh):
    vals = torch.arange(mesh.n_cells, dtype=torch.float64)
    v = VoxelDensity(mesh)
    with torch.no_grad():
        v.values.copy_(vals)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, mesh.n_cells, 50)
    b = mesh.bounds[idx]
    t = rng.uniform(0.05, 0.95, (50, 3))
    pts = b[:, 0::2] + t * (b[:, 1::2] - b[:, 0::2])
    assert np.array_equal(v(torch.as_tensor(pts)).detach().numpy(), idx.astype(float))
    with pytest.raises(TypeError, match="PrismMesh"):
        VoxelDensity("not a mesh")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_hash_grid_sparse_interpolation_on_cuda_matches_the_cpu():
    kw = dict(n_levels=2, n_features_per_level=2, base_resolution=3, finest_resolution=12,
              log2_hashmap_size=8, init_scale=1.0, seed=2)
    cpu, gpu = HashGridEncoding(**kw), HashGridEncoding(**kw).cuda()
    u = torch.rand(300, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1
    for enc, pts in ((cpu, u), (gpu, u.cuda())):
        enc(pts).pow(2).sum().backward()
    torch.testing.assert_close(gpu(u.cuda()).detach().cpu(), cpu(u).detach())
    for a, b in zip(cpu.tables, gpu.tables):
        torch.testing.assert_close(b.grad.cpu(), a.grad)


def test_the_normalised_points_are_cached_until_the_normaliser_changes():
    """Repeated evaluations on the same points reuse their normalised coordinates; loading another
    field's state (another normalisation) drops them; other points are never served."""
    a_mesh = PrismMesh.from_tensor([200.0] * 5, [200.0] * 5, [150.0] * 3, origin=(0.0, 0.0, -450.0))
    b_mesh = PrismMesh.from_tensor([800.0] * 5, [400.0] * 5, [300.0] * 3, origin=(0.0, 0.0, -900.0))
    kw = dict(encoding="hash", encoding_options={"n_levels": 1, "base_resolution": 8, "finest_resolution": 8},
              width=8, depth=1, output="linear", seed=0)
    fa, fb = INRDensity(mesh=a_mesh, **kw), INRDensity(mesh=b_mesh, **kw)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # features that vary across the box
        for f in (fa, fb):
            for t in f.encoding.tables:
                t.copy_(torch.randn(t.shape, generator=g, dtype=t.dtype))
    pts = torch.as_tensor(a_mesh.cell_centers)
    with torch.no_grad():
        first, again = fa(pts), fa(pts)
        assert torch.equal(first, again)
        moved = pts.clone()
        moved[0, 0] += 10.0
        assert not torch.equal(fa(moved)[:1], first[:1])
        fa(pts)  # cached for these points again
        fa.load_state_dict(fb.state_dict())  # b's normalisation and weights
        torch.testing.assert_close(fa(pts), fb(pts), rtol=0, atol=0)
