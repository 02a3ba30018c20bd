"""The smooth model's lattice over a padded mesh's core, chosen by the evidence.

A padded tensor mesh's box is mostly padding; a lattice over it spends its harmonics and
correlation lengths on cells the data barely see. The core (the cells of the smallest
widths) is a second candidate box, twice the core only, so that the padding takes the
lattice's continuation and not copies of the core. The separable sums must still equal
the features cell by cell, cells outside the box included.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from discretize import TensorMesh, TreeMesh

import gempy_gravinv as gg
from gempy_gravinv._forward import forward_gz
from gempy_gravinv.cases.random_cases import matern_rff_field
from gempy_gravinv.density import INRDensity
from gempy_gravinv.inversion import INRConfig, _lattice_design, _linear, _period, invert_inr
from gempy_gravinv.inversion._lattice_design import SeparableLattice, cell_features
from gempy_gravinv.inversion._period import core_extent, in_core
from gempy_gravinv.inversion._problem import Problem
from gempy_gravinv.metrics import pearson_r

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _padded(n_core=(16, 16, 8), pad=4, h=50.0, pad_z=True, grow=1.3):
    hx = [(h, pad, -grow), (h, n_core[0]), (h, pad, grow)]
    hy = [(h, pad, -grow), (h, n_core[1]), (h, pad, grow)]
    hz = [(h, pad, -grow), (h, n_core[2])] if pad_z else [(h, n_core[2])]
    return TensorMesh([hx, hy, hz], "CCN")


def _rff_field(points, ell=150.0, nu=1.5, seed=1):
    """A Matérn field by random Fourier features (on no lattice), mean 0, largest |value| 200 kg/m³."""
    return matern_rff_field(points, ell, nu, seed, waves=3000)


def _survey(mesh, model, n=200, seed=0):
    half = 0.45 * 16 * 50.0
    rng = np.random.default_rng(100 + seed)
    st = np.column_stack([rng.uniform(-half, half, n), rng.uniform(-half, half, n), np.full(n, 5.0)])
    g = forward_gz(mesh, st, model)
    std = 0.02 * np.abs(g) + 0.005
    return gg.Survey(st, g + np.random.default_rng(seed).normal(0.0, std), std)


@pytest.mark.parametrize("nu", [0.5, 1.5])
def test_the_random_fourier_field_has_the_matern_covariance(nu):
    """The benchmarks' field on no lattice: correlation at lag ℓ against the Matérn kernel, mean 0, peak 200."""
    from scipy.special import gamma, kv

    rng = np.random.default_rng(5)
    corr = []
    for seed in range(6):
        p = rng.uniform(-5000, 5000, (3000, 3))
        d = rng.standard_normal((3000, 3))
        f = matern_rff_field(np.r_[p, p + 100.0 * d / np.linalg.norm(d, axis=1)[:, None]], 100.0, nu, seed)
        assert abs(f.mean()) < 1e-9 and np.abs(f).max() == pytest.approx(200.0)
        corr.append(np.corrcoef(f[:3000], f[3000:])[0, 1])
    x = np.sqrt(2 * nu)  # r = ℓ
    assert np.mean(corr) == pytest.approx(2 ** (1 - nu) / gamma(nu) * x ** nu * kv(nu, x), abs=0.04)
    np.testing.assert_array_equal(matern_rff_field(p, 100.0, nu, 3), matern_rff_field(p, 100.0, nu, 3))


def test_the_core_is_the_span_of_the_smallest_cells_of_each_axis():
    mesh = gg.PrismMesh.from_discretize(_padded())
    np.testing.assert_allclose(core_extent(mesh), [-400, 400, -400, 400, -400, 0], atol=1e-9)
    # padded along x and y only: the core spans the whole depth
    flat_bottom = gg.PrismMesh.from_discretize(_padded(pad_z=False))
    np.testing.assert_allclose(core_extent(flat_bottom), [-400, 400, -400, 400, -400, 0], atol=1e-9)
    assert core_extent(gg.PrismMesh.from_discretize(TensorMesh([[(50.0, 16)]] * 3, "CCN"))) is None  # uniform
    tree = TreeMesh([[(50.0, 16)]] * 3, "CCN", diagonal_balance=False)
    tree.refine(2)
    assert core_extent(gg.PrismMesh.from_discretize(tree)) is None  # an octree of one cell size: no core
    # an octree refined around a patch of the ground: the finest cells' horizontal span, down from the top by
    # its larger width (the mesh is 800 m deep)
    tree = TreeMesh([[(50.0, 16)]] * 3, "CCN", diagonal_balance=True)
    tree.refine_box([-90.0, -90.0, -90.0], [190.0, 90.0, -10.0], levels=4, finalize=True)  # 100 m parents
    octree = gg.PrismMesh.from_discretize(tree)
    np.testing.assert_allclose(core_extent(octree), [-100, 200, -100, 100, -300, 0], atol=1e-9)
    assert in_core(octree).sum() < octree.n_cells
    # the inactive cells above the ground bound the core's top
    tm = _padded()
    active = tm.cell_centers[:, 2] < -100.0
    np.testing.assert_allclose(core_extent(gg.PrismMesh.from_discretize(tm, active_cells=active)),
                               [-400, 400, -400, 400, -400, -100], atol=1e-9)


def test_a_box_extent_moves_the_lattice_and_is_checked():
    mesh = gg.PrismMesh.from_discretize(_padded())
    opts = dict(n_harmonics=[3, 3, 2], lattice=True, period_factor=2.0)
    core = [-400.0, 400.0, -400.0, 400.0, -400.0, 0.0]
    moved = INRDensity(mesh, encoding="periodic", encoding_options={**opts, "box_extent": core}, depth=0,
                       output="linear", bounds=None, dtype="float64")
    # the same lattice on a mesh whose box is the core, at the same (normalised) points
    inner = gg.PrismMesh.from_discretize(TensorMesh([[(50.0, 16)], [(50.0, 16)], [(50.0, 8)]], "CCN"))
    plain = INRDensity(inner, encoding="periodic", encoding_options=opts, depth=0, output="linear", bounds=None,
                       dtype="float64", center=moved.normalizer.center, scale=moved.normalizer.scale)
    pts = torch.as_tensor(mesh.cell_centers)
    with torch.no_grad():
        np.testing.assert_allclose(moved.features(pts), plain.features(pts), atol=1e-12)
    assert moved.options["encoding_options"]["box_extent"] == core
    with pytest.raises(ValueError, match="box_extent must be 6 finite numbers"):
        INRDensity(mesh, encoding="periodic", encoding_options={**opts, "box_extent": [0, -1, 0, 1, 0, 1]})


def _midpoint_means(field, bounds, k=24, window=None):
    """The mean over each cell of the field's features at k³ midpoints (0 outside ``window`` (lo, hi) (3,) m)."""
    f = (np.arange(k) + 0.5) / k
    g = np.stack(np.meshgrid(f, f, f, indexing="ij"), -1).reshape(-1, 3)
    out = []
    for b in bounds:
        lo, hi = b[0::2], b[1::2]
        if window is not None:  # the cell's part inside the window, and its share of the cell
            lo, hi = np.maximum(lo, window[0]), np.minimum(hi, window[1])
        share = float(np.prod(np.clip(hi - lo, 0, None) / (b[1::2] - b[0::2])))
        with torch.no_grad():
            phi = field.features(torch.as_tensor(lo + g * (hi - lo))).to(torch.float64)
        out.append(share * phi.mean(0))
    return torch.stack(out)


@pytest.mark.parametrize("box", [None, "core"])
def test_the_cell_values_are_the_fields_means_over_the_cells(box):
    """A prism carries one density: the lattice's cell value is the mean of the field over the cell, and
    a lattice on the core describes one period centred on it (the far padding takes the mean, 0)."""
    tm = TensorMesh([[(50.0, 4, -1.4), (50.0, 16), (50.0, 4, 1.4)]] * 2 + [[(50.0, 4, -1.4), (50.0, 8)]], "CCN")
    mesh = gg.PrismMesh.from_discretize(tm)
    opts = dict(n_harmonics=[4, 4, 3], lattice=True, period_factor=2.0, spectrum=[150.0, 1.5])
    window = None
    if box == "core":
        core = core_extent(mesh)
        opts["box_extent"] = list(core)
        window = (core[0::2] - (core[1::2] - core[0::2]) / 2, core[1::2] + (core[1::2] - core[0::2]) / 2)
    field = INRDensity(mesh, encoding="periodic", encoding_options=opts, depth=0, output="linear", bounds=None,
                       dtype="float64")
    rng = np.random.default_rng(3)
    pick = rng.choice(mesh.n_cells, 40, replace=False)
    if window is not None:  # cells beyond the window, across its edge and inside it
        b = mesh.bounds
        far = np.flatnonzero(np.any((b[:, 1::2] <= window[0]) | (b[:, 0::2] >= window[1]), 1))
        cross = np.flatnonzero(np.any((mesh.bounds[:, 0::2] < window[0]) & (mesh.bounds[:, 1::2] > window[0]), 1))
        assert far.size and cross.size
        pick = np.r_[pick, far[:10], cross[:10]]
        np.testing.assert_array_equal(cell_features(field, mesh.bounds[far]).numpy(), 0.0)
    exact = cell_features(field, mesh.bounds[pick])
    sampled = _midpoint_means(field, mesh.bounds[pick], window=window)
    scale = float(exact.abs().max())
    np.testing.assert_allclose(exact, sampled, rtol=0, atol=2e-3 * scale)  # the midpoint rule's error at k = 24
    # with a cell's point value instead of its mean the difference is far larger
    with torch.no_grad():
        points = field.features(torch.as_tensor(mesh.cell_centers[pick])).to(torch.float64)
    assert float((points - sampled).abs().max()) > 20 * float((exact - sampled).abs().max())


def test_the_separable_sums_hold_outside_the_box():
    tm = _padded()
    mesh = gg.PrismMesh.from_discretize(tm)
    survey = _survey(mesh, _rff_field(mesh.cell_centers), n=60)
    cfg = INRConfig.auto(bounds=(-450, 450), dtype="float64", prior_from_data=False, regional="none",
                         progress=False)
    prob = Problem(survey, mesh, cfg)
    lin = dataclasses.replace(cfg, encoding="periodic", depth=0, output="linear", bounds=None, init_value=None,
                              net_dtype="float64",
                              encoding_options=dict(n_harmonics=[8, 8, 4], lattice=True, period_factor=2.0,
                                                    spectrum=[150.0, 1.5], box_extent=list(core_extent(mesh))))
    field = prob._fresh_field(lin)
    assert SeparableLattice.of(prob, field) is not None
    fast, _ = _linear._design(prob, field)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_lattice_design.SeparableLattice, "of", classmethod(lambda cls, *a: None))
        slow, _ = _linear._design(prob, field)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-10 * float(slow.abs().max()))


def test_a_smooth_field_on_a_padded_mesh_gets_the_core_lattice(monkeypatch):
    """Padding 7 cells growing by 1.4 (the box 5 times the core): the mesh box's lattice resolves no wave
    shorter than about 1 km over a core of 800 m; the core's lattice recovers the field."""
    mesh = gg.PrismMesh.from_discretize(_padded(pad=7, grow=1.4))
    model = _rff_field(mesh.cell_centers, ell=200.0, seed=12)
    survey = _survey(mesh, model, seed=12)
    scored = []
    best_models = _period._best_models
    monkeypatch.setattr(_period, "_best_models", lambda prob, cfg, mf, k_max, box=None: scored.append(
        (dict(k_max), box is None, best_models(prob, cfg, mf, k_max, box))) or scored[-1][2])
    res = invert_inr(survey, mesh, None, bounds=(-450, 450), progress=False)
    lat = res.prior_selection["lattice"]
    assert res.prior_selection["prior"] == "smooth"
    assert lat["box"] == "core" and lat["period_factor"] == 2.0 and lat["core_log_bayes_factor"] > 0
    # the mesh box wraps at 8 harmonics, but the core's lattice beats it: the box's refinement is not scored
    # (the prior's test scored the box at 8 harmonics and the core at 8 first: its correlated nulls)
    by = {(tuple(sorted(k.items())), on_mesh): best for k, on_mesh, best in scored}
    assert set(by) == {(((1.0, 8), (2.0, 8)), True), (((2.0, 8),), False), (((2.0, 16),), False)}
    core, coarse = by[(((2.0, 16),), False)], by[(((1.0, 8), (2.0, 8)), True)]
    assert coarse[1.0][0] > coarse[2.0][0] and core[2.0][0] > coarse[1.0][0] and lat["refined"] is False
    monkeypatch.setattr(_period, "_best_models", best_models)
    np.testing.assert_allclose(lat["box_extent"], core_extent(mesh))
    assert "twice the mesh's core" in lat["rule"]
    r_core = pearson_r(res.model, model)
    monkeypatch.setattr(_period, "core_extent", lambda m: None)  # the mesh box alone, as before
    whole = invert_inr(survey, mesh, None, bounds=(-450, 450), progress=False)
    assert whole.prior_selection["lattice"]["box"] == "mesh"
    assert r_core > 0.3 and r_core > pearson_r(whole.model, model) + 0.1


def test_a_smooth_field_on_an_octree_is_read_as_one_and_gets_the_core_lattice(monkeypatch):
    """An octree of 25 m cells along the ground and around 200 stations, coarsening to 400 m at depth.

    Against white depth-weighted cells alone the field's image reads as compact (p ≤ 0.05):
    their images lack its correlation, and the octree's cells of many sizes vary the
    difference from cell to cell. Against a smooth Matérn field's images it does not.
    The lattice of twice the octree's core (its finest cells' span) resolves the field
    better than the mesh box's.
    """
    import warnings

    from discretize.utils import active_from_xyz, mesh_builder_xyz

    xx, yy = np.meshgrid(np.linspace(-500, 500, 21), np.linspace(-500, 500, 21))
    ground = np.column_stack([xx.ravel(), yy.ravel(), np.zeros(xx.size)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        tree = mesh_builder_xyz(ground, [25.0] * 3, depth_core=300.0, padding_distance=[[500, 500]] * 2 + [[500, 0]],
                                mesh_type="tree")
    tree.refine_surface(ground, padding_cells_by_level=[0, 2, 2], finalize=False)
    rng = np.random.default_rng(5)
    st = np.column_stack([rng.uniform(-300, 300, 200), rng.uniform(-300, 300, 200), np.zeros(200)])
    tree.refine_points(st, level=-1, padding_cells_by_level=[2, 2], finalize=True)
    mesh = gg.PrismMesh.from_discretize(tree, active_cells=active_from_xyz(tree, ground))
    st[:, 2] = mesh.extent[5] + 5.0
    model = matern_rff_field(mesh.cell_centers, 150.0, 1.5, 0)
    g = forward_gz(mesh, st, model)
    std = 0.02 * np.abs(g) + 0.005
    survey = gg.Survey(st, g + np.random.default_rng(0).normal(0.0, std), std)
    res = invert_inr(survey, mesh, None, bounds=(-450, 450), progress=False)
    chosen = res.prior_selection
    assert chosen["nulls"]["white"]["p_value"] <= 0.05 < chosen["nulls"]["smooth"]["p_value"]
    assert chosen["p_value"] == max(v["p_value"] for v in chosen["nulls"].values())
    assert chosen["prior"] == "smooth" and chosen["lattice"]["box"] == "core"
    np.testing.assert_allclose(chosen["lattice"]["box_extent"], core_extent(mesh))
    r_core = pearson_r(res.model, model)
    monkeypatch.setattr(_period, "core_extent", lambda m: None)  # the mesh box alone
    whole = invert_inr(survey, mesh, INRConfig.matern(progress=False))
    assert whole.prior_selection["lattice"]["box"] == "mesh"
    assert r_core > 0.55 and r_core > pearson_r(whole.model, model) + 0.05


def test_under_topography_the_core_s_coarse_lattice_is_a_null_too(graded_benchmark):
    """A Matérn field under a 631 m hill (an octree of 200 m cells padded to 4.9 km, inactive cells above the ground).

    Its least-squares image rejects white cells and the mesh box's coarse lattice, whose
    box is mostly padding, but not the coarse lattice of twice the core: smooth, where the
    compact model gave r 0.144 (SimPEG L2 0.462). Two boxes in the same mesh reject all
    three nulls and stay compact.
    """
    pf = graded_benchmark
    survey, mesh, model, _, _ = pf.build(13100, "topography", "field")
    res = invert_inr(survey, mesh, None, bounds=pf.BOUNDS, progress=False)
    nulls = res.prior_selection["nulls"]
    assert nulls["white"]["p_value"] <= 0.05 and nulls["smooth"]["p_value"] <= 0.05 < nulls["smooth_core"]["p_value"]
    assert res.prior_selection["prior"] == "smooth"
    assert pearson_r(res.model, model) > 0.5  # measured 0.564
    survey, mesh, _, _, _ = pf.build(13100, "topography", "bodies")
    chosen = Problem(survey, mesh, INRConfig.default(survey, bounds=pf.BOUNDS, progress=False)).prior_selection
    assert chosen["prior"] == "compact" and max(v["p_value"] for v in chosen["nulls"].values()) <= 0.05


def test_on_a_padded_mesh_the_prior_s_test_reads_the_start_s_image_against_correlated_nulls_too(graded_benchmark):
    """A padded tensor mesh: the image of the start's depth weight (β = 2), white cells and two lattices as nulls.

    One +257 kg/m³ box in a core of 14 x 14 x 11 cells of 200 m (seed 13603): the β = 1
    image against white cells alone read as Gaussian (p 0.15) and the smooth model gave r
    0.380 (SimPEG sparse 0.681); the start's image rejects all three nulls and the compact
    model gives 0.813. A Matérn field on a padded mesh (seed 11103) stays smooth: its
    image rejects white cells and the box's lattice but not the core's (p 0.07).
    """
    pf = graded_benchmark
    survey, mesh, model, _, _ = pf.build(13603, "tensor", "bodies")
    cfg = INRConfig.default(survey, bounds=pf.BOUNDS, progress=False)
    chosen = Problem(survey, mesh, cfg).prior_selection
    assert set(chosen["nulls"]) == {"white", "smooth", "smooth_core"} and chosen["image_depth_power"] == 2.0
    assert "β = 2" in chosen["rule"]
    assert chosen["prior"] == "compact" and max(v["p_value"] for v in chosen["nulls"].values()) <= 0.05
    res = invert_inr(survey, mesh, None, bounds=pf.BOUNDS, progress=False)
    assert pearson_r(res.model, model) > 0.7  # measured 0.813
    survey, mesh, _, _, _ = pf.build(11103, "tensor", "field")
    field = Problem(survey, mesh, INRConfig.default(survey, bounds=pf.BOUNDS, progress=False)).prior_selection
    assert field["prior"] == "smooth" and field["nulls"]["smooth_core"]["p_value"] > 0.05
    assert min(v["p_value"] for v in field["nulls"].values()) <= 0.05  # white cells alone would read it compact
