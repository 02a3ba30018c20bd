"""The Fourier lattice by sums that separate over the axes, and the period compared at equal resolution.

The separable sums give the design ``G [1, Φ]``, the cell values ``Φ C`` and the closed-form
solve of a one-layer periodic field; they must equal the features evaluated cell by cell.
The smooth model's period (the mesh box, or twice the box for a field that does not
wrap) must be chosen by what the data say about the wrap, not by the lattices' resolution.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from gempy_gravinv.cases.random_cases import random_field_case
from gempy_gravinv.cases.synthetic import smooth_grf
from gempy_gravinv.inversion import INRConfig, _lattice_design, _linear, invert_inr
from gempy_gravinv.inversion._lattice_design import SeparableLattice, cell_features
from gempy_gravinv.inversion._problem import Problem
from gempy_gravinv.metrics import pearson_r

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LATTICES = [dict(n_harmonics=[8, 8, 5], lattice=True, period_factor=2.0, spectrum=[300.0, 1.5]),
            dict(n_harmonics=[3, 4, 2], lattice=True, period_factor=1.0),
            dict(n_harmonics=[3, 2, 2])]  # per-axis harmonics: waves along one axis each


@pytest.fixture(scope="module")
def under_a_hill():
    """A smooth field under topography (inactive cells above the ground), 96 scattered stations."""
    case = random_field_case(9001)
    assert case.mesh.active_cells is not None and not case.mesh.active_cells.all()
    return case


def _problem(case, **over):
    cfg = INRConfig.auto(bounds=case.bounds, dtype="float64", prior_from_data=False, regional="none",
                         progress=False, **over)
    return Problem(case.survey, case.mesh, cfg), cfg


def _field(prob, cfg, opts, **over):
    lin = dataclasses.replace(cfg, **{**dict(encoding="periodic", depth=0, output="linear", bounds=None,
                                             init_value=None, net_dtype="float64", encoding_options=opts), **over})
    return prob._fresh_field(lin)


def _cell_by_cell(monkeypatch):
    monkeypatch.setattr(_lattice_design.SeparableLattice, "of", classmethod(lambda cls, *a: None))


@pytest.mark.parametrize("opts", LATTICES)
def test_the_separable_design_and_cell_values_equal_the_features_cell_by_cell(under_a_hill, opts, monkeypatch):
    prob, cfg = _problem(under_a_hill)
    field = _field(prob, cfg, opts)
    sep = SeparableLattice.of(prob, field)
    assert sep is not None
    fast, sq_fast = _linear._design(prob, field)
    phi = cell_features(field, prob.mesh.bounds)
    coef = torch.as_tensor(np.random.default_rng(1).normal(size=(phi.shape[1], 3)))
    np.testing.assert_allclose(sep.apply(coef), phi @ coef, rtol=0, atol=1e-10 * float((phi @ coef).abs().max()))
    np.testing.assert_allclose(sep.apply(coef[:, 0]), phi @ coef[:, 0], rtol=0,
                               atol=1e-10 * float((phi @ coef[:, 0]).abs().max()))
    _cell_by_cell(monkeypatch)
    slow, sq_slow = _linear._design(prob, field)
    assert fast.shape == slow.shape == (prob.survey.n_data, 1 + phi.shape[1])
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-10 * float(slow.abs().max()))
    assert sq_fast == pytest.approx(sq_slow, rel=1e-10)


def test_the_sums_are_not_used_where_they_do_not_separate(under_a_hill):
    """Not with a hidden layer or another encoding; with any quadrature (the cell means need no points)."""
    prob, cfg = _problem(under_a_hill)
    assert SeparableLattice.of(prob, _field(prob, cfg, LATTICES[1], depth=1, width=4)) is None  # a hidden layer
    assert SeparableLattice.of(prob, prob._fresh_field(cfg)) is None  # a hash-grid network
    # the lattice's cell values are its exact cell means: the quadrature's points do not enter
    quad, qcfg = _problem(under_a_hill, quadrature=2)
    sep = SeparableLattice.of(quad, _field(quad, qcfg, LATTICES[1]))
    assert sep is not None
    one, cfg1 = _problem(under_a_hill)
    np.testing.assert_allclose(sep.apply(torch.ones(sep.w * 2, dtype=torch.float64)),
                               SeparableLattice.of(one, _field(one, cfg1, LATTICES[1])).apply(
                                   torch.ones(sep.w * 2, dtype=torch.float64)), rtol=0, atol=1e-12)


def test_the_closed_form_lattice_is_the_same_with_either_sums(under_a_hill, monkeypatch):
    """Model, per-cell posterior std and misfit of the evidence's lattice, separable sums vs features."""
    case = under_a_hill
    cfg = INRConfig.matern(dtype="float64", head_std=True, progress=False)
    fast = invert_inr(case.survey, case.mesh, cfg)
    _cell_by_cell(monkeypatch)
    slow = invert_inr(case.survey, case.mesh, cfg)
    lat, ref = fast.prior_selection["lattice"], slow.prior_selection["lattice"]
    assert all(lat[k] == ref[k] for k in ("period_factor", "length_m", "nu", "harmonics", "refined"))
    assert lat["log_bayes_factor"] == pytest.approx(ref["log_bayes_factor"], abs=1e-6)
    # the design agrees to ~1e-13 (above); its weakest directions carry that into the solve as ~1e-7
    np.testing.assert_allclose(fast.model, slow.model, rtol=0, atol=1e-6 * np.abs(slow.model).max())
    np.testing.assert_allclose(fast.std, slow.std, rtol=1e-5)  # the same weak directions: 1.2e-6 with MKL's CNR mode
    assert fast.chi2 == pytest.approx(slow.chi2, rel=1e-5)


def _unread():
    """Blocks of the sensitivity that fail the test if the design reads them."""
    raise AssertionError("the design read G although the problem holds this lattice's sums")
    yield


def test_a_lattice_s_sums_serve_its_other_amplitudes_and_the_oldest_go_past_the_budget(under_a_hill, monkeypatch):
    prob, cfg = _problem(under_a_hill)
    plain = _field(prob, cfg, {k: v for k, v in LATTICES[0].items() if k != "spectrum"})
    matern, other = _field(prob, cfg, LATTICES[0]), _field(prob, cfg, LATTICES[1])
    monkeypatch.setattr(_lattice_design, "SUMS_CACHE_BYTES", 0)  # nothing kept: the reference designs
    ref = {name: _linear._design(prob, f)[0] for name, f in (("matern", matern), ("other", other))}
    assert prob.lattice_sums == {}
    monkeypatch.undo()
    _linear._design(prob, plain)  # unit amplitudes: the sums kept
    assert len(prob.lattice_sums) == 1
    sep = SeparableLattice.of(prob, matern)
    assert not torch.equal(sep.amp, torch.ones_like(sep.amp))
    assert torch.equal(sep.design(_unread()), ref["matern"])  # the same bits, G not read
    (col, sums), = prob.lattice_sums.values()
    one = col.numel() * 8 + sums.numel() * 16
    monkeypatch.setattr(_lattice_design, "SUMS_CACHE_BYTES", one + 8 * col.numel())  # room for one of these
    assert torch.equal(_linear._design(prob, other)[0], ref["other"])
    assert list(prob.lattice_sums) == [SeparableLattice.of(prob, other).key]  # the older lattice dropped


def test_the_setup_keeps_a_lattice_s_sums_only_for_the_closed_form_solve(under_a_hill, octree_case, monkeypatch):
    case = under_a_hill
    smooth = INRConfig.auto(bounds=case.bounds, prior="smooth", progress=False)
    prob = Problem(case.survey, case.mesh, smooth)
    assert prob.cfg.solver == "linear"
    assert SeparableLattice.of(prob, prob.make_field(0)).key in prob.lattice_sums  # the solve's, G not read again
    kept = invert_inr(case.survey, case.mesh, smooth)
    monkeypatch.setattr(_lattice_design, "SUMS_CACHE_BYTES", 0)
    fresh = invert_inr(case.survey, case.mesh, smooth)
    np.testing.assert_array_equal(kept.model, fresh.model)
    np.testing.assert_array_equal(kept.std, fresh.std)
    monkeypatch.undo()
    # a box on the octree: the prior's test draws lattice fields (their sums kept), then the compact run trains
    from gempy_gravinv._forward import forward_gz
    survey, mesh = octree_case
    c = mesh.cell_centers
    box = np.where(np.all(np.abs(c - [0.0, 0.0, -75.0]) <= [50.0, 50.0, 40.0], 1), 300.0, 0.0)
    g = forward_gz(mesh, survey.locations, box)
    std = np.full(survey.n_data, 0.01 * np.std(g) + 0.001 * np.abs(g).max())
    data = type(survey)(survey.locations, g + np.random.default_rng(0).normal(0.0, std), std)
    used = []
    cached = _lattice_design.SeparableLattice._cached_sums
    monkeypatch.setattr(_lattice_design.SeparableLattice, "_cached_sums",
                        lambda self, blocks: used.append(1) or cached(self, blocks))
    compact = Problem(data, mesh, INRConfig.auto(bounds=(-450.0, 450.0), progress=False))
    assert compact.prior_selection["prior"] == "compact" and compact.cfg.solver == "adam"
    assert used and compact.lattice_sums == {}  # held during the setup, not through training


def test_a_field_that_does_not_wrap_is_not_taken_for_one_at_a_finer_resolution():
    """With 8 harmonics on both periods the box's lattice resolves twice as fine and wins on this field
    (cropped from a grid twice the mesh's, so it does not wrap), at r 0.76; against twice the box at the
    same shortest wavelength the data choose twice the box."""
    case = random_field_case(9505)
    res = invert_inr(case.survey, case.mesh, INRConfig.matern(head_std=False, progress=False))
    lat = res.prior_selection["lattice"]
    assert lat["refined"] and lat["period_factor"] == 2.0, lat
    assert lat["harmonics"][0] == 16 or lat["harmonics"][1] == 16
    assert "same shortest wavelength" in lat["rule"]
    assert pearson_r(res.model, case.model) > 0.8


def test_a_field_made_on_the_box_keeps_the_box_at_equal_resolution():
    c = smooth_grf(seed=0, noise_seed=1, shape=(20, 20, 10), cell_size=1000.0)
    res = invert_inr(c.survey, c.mesh, INRConfig.matern(head_std=False, progress=False))
    lat = res.prior_selection["lattice"]
    assert lat["refined"] and lat["period_factor"] == 1.0 and lat["log_bayes_factor"] < 0, lat
    assert pearson_r(res.model, c.model) > 0.9


def test_the_evidence_grid_at_once_equals_it_point_by_point():
    """:meth:`HeadPosterior.evidence` reads its grid of λ at once; the values are those of ``log_evidence``."""
    from gempy_gravinv.inversion._linear import HeadPosterior

    g = np.random.default_rng(3)
    A = torch.as_tensor(g.normal(size=(60, 300)) * np.exp(-np.arange(300) / 40.0)[None, :])
    a0 = torch.as_tensor(g.normal(size=60) + 2.0)
    b = A @ torch.as_tensor(g.normal(size=300)) + 0.3 * torch.as_tensor(g.normal(size=60))
    post = HeadPosterior(A, a0, b, evidence_only=True)
    lams = np.logspace(-6, 6, 150)  # more than one block of 64
    np.testing.assert_allclose(post._log_evidences(lams), [post.log_evidence(x) for x in lams], rtol=1e-12, atol=1e-9)
    lam = post.evidence()
    assert all(post.log_evidence(lam) >= post.log_evidence(x) for x in (lam * 0.9, lam * 1.1, lams[0], lams[-1]))


@pytest.fixture(scope="module")
def octree_case():
    """An octree refined around 60 stations (25 m cells there, 200 m at depth), a smooth field on it."""
    from discretize import TreeMesh

    import gempy_gravinv as gg
    from gempy_gravinv._forward import forward_gz
    from gempy_gravinv.cases.random_cases import matern_rff_field

    tree = TreeMesh([[(25.0, 32)], [(25.0, 32)], [(25.0, 16)]], origin=(-400.0, -400.0, -400.0),
                    diagonal_balance=True)
    rng = np.random.default_rng(3)
    st = np.column_stack([rng.uniform(-150, 150, 60), rng.uniform(-150, 150, 60), np.full(60, 5.0)])
    tree.refine_points(np.c_[st[:, :2], np.zeros(60)], level=-1, padding_cells_by_level=[1, 1, 1],
                       finalize=True)
    mesh = gg.PrismMesh.from_discretize(tree)
    model = matern_rff_field(mesh.cell_centers, 100.0, 1.5, 0)
    g = forward_gz(mesh, st, model)
    std = 0.02 * np.abs(g) + 0.01
    return gg.Survey(st, g + np.random.default_rng(0).normal(0.0, std), std), mesh


def test_an_octree_s_sums_add_one_grid_per_cell_size(octree_case, monkeypatch):
    """Its cells lie on no one tensor grid; each size's cells do, and the sums over them add up."""
    survey, mesh = octree_case
    cfg = INRConfig.auto(dtype="float64", prior_from_data=False, regional="none", progress=False)
    prob = Problem(survey, mesh, cfg)
    field = _field(prob, cfg, LATTICES[0])
    sep = SeparableLattice.of(prob, field)
    sizes = np.unique(np.round(mesh.cell_widths, 6), axis=0)
    assert sep is not None and len(sep.grids) == len(sizes) >= 3
    phi = cell_features(field, mesh.bounds)
    coef = torch.as_tensor(np.random.default_rng(2).normal(size=(phi.shape[1], 2)))
    np.testing.assert_allclose(sep.apply(coef), phi @ coef, rtol=0, atol=1e-10 * float((phi @ coef).abs().max()))
    np.testing.assert_allclose(sep.phi_sq, phi.square().sum(1), rtol=1e-10)
    fast, sq_fast = _linear._design(prob, field)
    _cell_by_cell(monkeypatch)
    slow, sq_slow = _linear._design(prob, field)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-10 * float(slow.abs().max()))
    assert sq_fast == pytest.approx(sq_slow, rel=1e-10)
