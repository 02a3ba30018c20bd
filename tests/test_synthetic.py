"""Synthetic cases: geometry of the dipping block and the smooth GRF, noise recipe, seeding."""

import numpy as np
import pytest
import torch

from gempy_gravinv import GravityOperator, PrismMesh, Survey
from gempy_gravinv._constants import SI_TO_MGAL, G
from gempy_gravinv.cases.synthetic import (
    dipping_block,
    grf_field,
    layer_index,
    make_noise,
    paper_sensitivity,
    single_block,
    smooth_grf,
)


@pytest.fixture(scope="module")
def block():
    return dipping_block()


def test_dipping_block_geometry(block):
    mesh, loc = block.mesh, block.survey.locations
    assert mesh.shape == (21, 21, 11) and mesh.n_cells == 4851
    assert block.survey.n_data == 441
    np.testing.assert_allclose(mesh.cell_widths, 50.0)
    np.testing.assert_allclose(np.unique(mesh.cell_centers[:, 0]), np.arange(0, 1001, 50.0))
    np.testing.assert_allclose(np.unique(mesh.cell_centers[:, 1]), np.arange(0, 1001, 50.0))
    assert mesh.extent[5] == 0.0 and mesh.extent[4] == -550.0
    np.testing.assert_allclose(loc[:, 2], 1.0)  # 1 m above the top
    assert mesh.stations_inside(loc).size == 0
    # stations on the cell-centre grid
    assert {tuple(p) for p in loc[:, :2]} == {tuple(p) for p in mesh.cell_centers[:, :2]}


def test_dipping_block_slabs(block):
    m, cc = block.model, block.mesh.cell_centers
    assert set(np.unique(m)) == {0.0, 400.0}
    assert np.sum(m == 400.0) == 210
    layer = layer_index(block.mesh)
    for i in range(7):
        sel = (m == 400.0) & (layer == 1 + i)
        assert sel.sum() == 30
        # x-cells 7..12, y-cells 11-i..15-i, layer 1+i (centre depth 25 + 50 (1+i))
        np.testing.assert_allclose(np.unique(cc[sel, 0]), 50.0 * np.arange(7, 13))
        np.testing.assert_allclose(np.unique(cc[sel, 1]), 50.0 * np.arange(11 - i, 16 - i))
        np.testing.assert_allclose(cc[sel, 2], -25.0 - 50.0 * (1 + i))
    assert not np.any(m[(layer == 0) | (layer >= 8)])
    assert block.reference_density == 0.0


def test_dipping_block_data(block):
    gz = block.gz_clean
    assert gz.min() > 0  # excess mass everywhere below: positive down
    imax = int(np.argmax(gz))
    x, y = block.survey.locations[imax, :2]
    # the peak lies over the shallowest slab (layer 1: x 350..600, y 550..750)
    assert 350 <= x <= 600 and 500 <= y <= 800
    # the data equal an independent forward of the model
    sub = np.arange(0, 441, 11)
    op = GravityOperator(block.mesh, block.survey.subset(sub), device="cpu", method="cells")
    np.testing.assert_allclose(op.forward(torch.as_tensor(block.model)).numpy(), gz[sub], rtol=1e-10)
    sigma = 0.01 * np.std(gz)
    np.testing.assert_allclose(block.survey.std, sigma)
    noise = block.survey.gz - gz
    # 441 draws: sample std within ~4 standard errors of sigma
    assert abs(np.std(noise) / sigma - 1) < 4 / np.sqrt(2 * 441)
    again = dipping_block()
    np.testing.assert_array_equal(again.survey.gz, block.survey.gz)
    other = dipping_block(noise_seed=1)
    assert not np.allclose(other.survey.gz, block.survey.gz)
    np.testing.assert_array_equal(other.gz_clean, gz)


def test_dipping_block_paper_geometry():
    p = dipping_block(paper_geometry=True)
    assert p.mesh.extent[5] == 25.0 and p.meta["check_stations"] is False
    np.testing.assert_allclose(np.unique(p.mesh.cell_centers[:, 2]), -50.0 * np.arange(10, -1, -1))
    np.testing.assert_allclose(p.survey.locations[:, 2], 1.0)
    # every station sits inside a top-layer cell, 1 m above its centre
    assert p.mesh.stations_inside(p.survey.locations).size == 441
    with pytest.raises(ValueError, match="inside"):
        GravityOperator(p.mesh, p.survey, device="cpu")
    assert np.sum(p.model == 400) == 210
    layer = layer_index(p.mesh)
    np.testing.assert_allclose(p.mesh.cell_centers[(p.model > 0) & (layer == 1), 2], -50.0)


def test_paper_sensitivity_matches_ours_outside_and_pins_the_inside_artefact():
    mesh = PrismMesh.from_tensor([50.0] * 3, [50.0] * 3, [50.0] * 2, origin=(-75, -75, -75))
    # one station 1 m above the centre of the top-middle cell (inside it), others outside
    loc = np.array([[0.0, 0.0, 1.0], [10.0, -20.0, 40.0], [200.0, 30.0, 1.0], [60.0, 60.0, 25.0]])
    gp = paper_sensitivity(mesh, loc, dtype=np.float64)
    op = GravityOperator(mesh, Survey(loc), device="cpu", check_stations=False, store="dense")
    g = op.dense().numpy()
    inside = np.zeros_like(g, bool)
    top_mid = np.argmin(np.linalg.norm(mesh.cell_centers - [0, 0, 0], axis=1))
    inside[0, top_mid] = True
    np.testing.assert_allclose(gp[~inside], g[~inside], rtol=1e-9, atol=1e-15)
    # the paper's atan2 branch adds 2πGρ·48 m to the cell containing the station
    extra = gp[inside][0] - g[inside][0]
    np.testing.assert_allclose(extra, 2 * np.pi * G * SI_TO_MGAL * 48.0, rtol=1e-9)
    g32 = paper_sensitivity(mesh, loc)
    assert g32.dtype == np.float32
    # float32 corner sums cancel: absolute error small against the largest entry only
    np.testing.assert_allclose(g32, gp, rtol=0, atol=1e-4 * np.abs(gp).max())


def test_make_noise_recipe():
    gz = np.linspace(-3, 5, 20000)
    noisy, std = make_noise(gz, 0.02, seed=3)
    sigma = 0.02 * np.std(gz)
    np.testing.assert_allclose(std, sigma)
    assert abs(np.std(noisy - gz) / sigma - 1) < 0.03
    assert abs(np.mean(noisy - gz)) < 4 * sigma / np.sqrt(gz.size)
    np.testing.assert_array_equal(make_noise(gz, 0.02, seed=3)[0], noisy)
    with pytest.raises(ValueError, match="relative_noise"):
        make_noise(gz, 0.0)
    with pytest.raises(ValueError, match="constant"):
        make_noise(np.ones(5), 0.01)
    with pytest.raises(ValueError, match="finite"):
        make_noise([1.0, np.nan], 0.01)


def test_grf_spectrum():
    """Averaged over realizations, |FFT|² follows (k² + λ⁻²)^(-ν-1.5) (up to a constant)."""
    shape, d, lam, nu = (16, 16, 16), 500.0, 2000.0, 1.5
    k = [2 * np.pi * np.fft.fftfreq(n, d=d) for n in shape]
    kx, ky, kz = np.meshgrid(*k, indexing="ij")
    p = (kx**2 + ky**2 + kz**2 + lam**-2) ** (-nu - 1.5)
    acc = np.zeros(shape)
    n_real = 40
    for s in range(n_real):
        acc += np.abs(np.fft.fftn(grf_field(shape, d, lam, nu, seed=s))) ** 2
    ratio = (acc / n_real)[1:, 1:, 1:] / p[1:, 1:, 1:]
    ratio /= np.median(ratio)
    # each mode is a mean of 40 chi² draws (rel. sd ~0.22); compare bins of ~100 modes
    kk = np.sqrt(kx**2 + ky**2 + kz**2)[1:, 1:, 1:]
    bins = np.quantile(kk, np.linspace(0, 1, 9))
    for lo, hi in zip(bins[:-1], bins[1:]):
        sel = (kk >= lo) & (kk <= hi)
        assert abs(ratio[sel].mean() - 1) < 0.15
    # P spans orders of magnitude: a wrong exponent would fail the bins above
    assert p[1:, 1:, 1:].max() / p[1:, 1:, 1:].min() > 100


def test_smooth_grf_scaling_and_seeds():
    kw = dict(shape=(10, 8, 4), cell_size=500.0)
    c = smooth_grf(seed=5, **kw)
    rho = c.model + c.reference_density
    assert rho.min() == pytest.approx(1600.0) and rho.max() == pytest.approx(3500.0)
    assert c.reference_density == pytest.approx(rho.mean())
    assert abs(c.model.mean()) < 1e-9
    assert c.bounds == pytest.approx((1600 - c.reference_density, 3500 - c.reference_density))
    assert c.mesh.shape == (10, 8, 4) and c.survey.n_data == 80
    assert c.mesh.extent[5] == 0.0
    np.testing.assert_allclose(c.survey.locations[:, 2], 1.0)
    np.testing.assert_allclose(c.survey.std, 0.01 * np.std(c.gz_clean))
    assert c.meta["constant_mean_floor_kgm3"] == pytest.approx(np.std(c.model))
    c2 = smooth_grf(seed=5, **kw)
    np.testing.assert_array_equal(c2.model, c.model)
    np.testing.assert_array_equal(c2.survey.gz, c.survey.gz)
    c3 = smooth_grf(seed=6, **kw)
    assert np.corrcoef(c3.model, c.model)[0, 1] < 0.9
    # data: an independent forward of the contrast
    op = GravityOperator(c.mesh, c.survey, device="cpu", method="cells")
    np.testing.assert_allclose(op.forward(torch.as_tensor(c.model)).numpy(), c.gz_clean, rtol=1e-9,
                               atol=1e-12)


def test_single_block():
    c = single_block()
    assert c.mesh.shape == (8, 8, 4)
    assert np.sum(c.model != 0) == 8 and set(np.unique(c.model)) == {0.0, 500.0}
    cen = np.array(c.meta["block_center_m"])
    np.testing.assert_allclose(cen, [300.0, 500.0, -200.0])
    x, y = c.survey.locations[np.argmax(c.gz_clean), :2]
    assert 200 <= x <= 400 and 400 <= y <= 600
    neg = single_block(contrast=-300.0)
    assert neg.gz_clean.max() < 0
    with pytest.raises(ValueError, match="block x range"):
        single_block(block=((6, 9), (0, 2), (0, 1)))
    with pytest.raises(ValueError, match="non-zero"):
        single_block(contrast=0.0)


@pytest.mark.slow
def test_smooth_grf_full_size():
    c = smooth_grf()
    assert c.mesh.shape == (40, 40, 20) and c.survey.n_data == 1600
    np.testing.assert_allclose(c.mesh.cell_widths, 500.0)
    rho = c.absolute_density
    assert rho.min() == pytest.approx(1600.0) and rho.max() == pytest.approx(3500.0)
    # the constant-mean floor is the field's std: a few hundred kg/m³ (paper: 403.5)
    assert 250 < c.meta["constant_mean_floor_kgm3"] < 550
    assert c.mesh.stations_inside(c.survey.locations).size == 0


def test_grf_paper_generator_reproduces_the_papers_realization():
    """The paper script's recipe (torch complex64 noise, seed 41) gives its own field:
    the constant-mean floor of the paper's smooth case (the std of its density), 403.5 kg/m³."""
    f = grf_field((40, 40, 20), 500.0, seed=41, generator="paper")
    rho = 1600.0 + (f - f.min()) * 1900.0 / (f.max() - f.min())
    assert np.std(rho) == pytest.approx(403.5, abs=0.05)
    # same spectrum as ours, other noise: a different realization of the same law
    g = grf_field((40, 40, 20), 500.0, seed=41)
    assert abs(np.corrcoef(f.ravel(), g.ravel())[0, 1]) < 0.5
    # repeatable, and independent of torch's global generator
    torch.manual_seed(0)
    np.testing.assert_array_equal(grf_field((40, 40, 20), 500.0, seed=41, generator="paper"), f)
    # the paper's recipe written out (its array has depth index 0 at the top): ours is
    # the same numbers with the depth axis flipped, so that our last index is the top
    gen = torch.Generator().manual_seed(7)
    k = [2 * np.pi * np.fft.fftfreq(n, d=500.0) for n in (8, 8, 4)]
    kx, ky, kz = np.meshgrid(*k, indexing="ij")
    p = (kx**2 + ky**2 + kz**2 + 5000.0**-2) ** -3.0
    p[0, 0, 0] = 0
    w = torch.randn((8, 8, 4), dtype=torch.complex64, generator=gen)
    raw = torch.real(torch.fft.ifftn(w * torch.sqrt(torch.as_tensor(p, dtype=torch.float32)))).double().numpy()
    raw = (raw - raw.mean()) / raw.std()
    np.testing.assert_allclose(grf_field((8, 8, 4), 500.0, seed=7, generator="paper"), raw[:, :, ::-1],
                               atol=1e-12)
    c = smooth_grf(seed=41, generator="paper", shape=(8, 8, 4))
    assert c.meta["generator"] == "paper"
    with pytest.raises(ValueError, match="generator"):
        grf_field((8, 8, 4), 500.0, generator="scipy")
    with pytest.raises(ValueError, match="integer seed"):
        grf_field((8, 8, 4), 500.0, seed=None, generator="paper")


def test_smooth_grf_paper_geometry_is_the_papers_setup():
    """Stations at the centres of the top-layer cells; data from the paper's own G, whose
    kernel gives the cell around a station 2πGΔz where the physics gives 0."""
    c = smooth_grf(seed=41, generator="paper", paper_geometry=True, shape=(8, 6, 4))
    o = smooth_grf(seed=41, generator="paper", shape=(8, 6, 4))
    np.testing.assert_array_equal(c.model, o.model)  # same field, other placement
    assert c.name == "smooth_grf_paper" and c.meta["check_stations"] is False
    top = c.mesh.cell_centers[c.mesh.cell_centers[:, 2] == c.mesh.cell_centers[:, 2].max()]
    assert top[0, 2] == 0.0 and c.mesh.extent[5] == 250.0
    np.testing.assert_allclose(c.survey.locations, top)  # x fastest, like the top layer
    Gp = paper_sensitivity(c.mesh, c.survey.locations, dtype=np.float64)
    nx, ny, nz = c.mesh.shape
    own = np.arange(nx * ny) + (nz - 1) * nx * ny  # the top-layer cell around each station
    np.testing.assert_allclose(Gp[np.arange(nx * ny), own], 2 * np.pi * G * 500.0 * SI_TO_MGAL, rtol=1e-9)
    Go = GravityOperator(c.mesh, c.survey, store="dense", check_stations=False).dense().double().numpy()
    assert np.abs(Go[np.arange(nx * ny), own]).max() < 1e-12  # physics: station at the centre
    np.testing.assert_allclose(c.gz_clean, Gp @ c.model, rtol=1e-12)
    # the paper's noise: 1% of std(g_z) of the absolute density
    assert c.survey.std[0] == pytest.approx(0.01 * np.std(Gp @ c.absolute_density), rel=1e-12)
    with pytest.raises(ValueError, match="inside"):
        GravityOperator(c.mesh, c.survey)
