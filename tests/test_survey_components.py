"""Surveys whose data mix gravity components: operator, SimPEG adapter, files, INR, CLI.

Physics, not shapes: a mixed survey's forward equals each component's own operator and
SimPEG's ``Simulation3DIntegral`` (choclo engine, float64) with SimPEG's signs converted
(only ``gz`` flips); the composed operator's adjoint and autograd gradient are exact;
SimPEG surveys with several receivers and components round-trip; CSV and GeoJSON carry
the component; an INR inversion of gzz + gz data and the ``forward`` → ``invert``
command line fit the data.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

discretize = pytest.importorskip("discretize")
pytest.importorskip("simpeg")

from simpeg import data as sdata  # noqa: E402
from simpeg import maps  # noqa: E402
from simpeg.potential_fields import gravity  # noqa: E402

from gempy_gravinv import GravityOperator, MultiComponentOperator, PrismMesh, Survey, make_operator  # noqa: E402
from gempy_gravinv import io as gio  # noqa: E402
from gempy_gravinv._components import SIMPEG_SIGN  # noqa: E402
from gempy_gravinv._survey import simpeg_layout  # noqa: E402
from gempy_gravinv.cli import main  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GRADIOMETRY = ["gz", "gzz", "gxz", "gyz"]


@pytest.fixture(scope="module")
def case():
    """A stretched tensor mesh with random active cells, a random model, 9 stations above it."""
    rng = np.random.default_rng(7)
    mesh = discretize.TensorMesh([[(20.0, 2, -1.3), (20.0, 5), (20.0, 2, 1.3)], [(25.0, 6)],
                                  [(15.0, 2, -1.2), (15.0, 3)]], origin="CC0")
    mesh.origin = mesh.origin + np.r_[0.0, 0.0, -mesh.h[2].sum()]
    active = rng.random(mesh.n_cells) > 0.2
    rho_gcc = rng.normal(0.0, 0.3, int(active.sum()))
    st = np.c_[rng.uniform(-110, 110, 9), rng.uniform(-60, 60, 9), rng.uniform(2.0, 25.0, 9)]
    return mesh, active, rho_gcc, st


def _gradiometry(st, comps=GRADIOMETRY) -> Survey:
    """Every station once per component, the rows of a station consecutive (SimPEG's order)."""
    return Survey(np.repeat(st, len(comps), axis=0), components=np.tile(comps, len(st)))


def _simpeg_dpred(mesh, active, survey_sp, rho_gcc):
    sim = gravity.simulation.Simulation3DIntegral(mesh, survey=survey_sp, active_cells=active,
                                                  rhoMap=maps.IdentityMap(nP=int(active.sum())), engine="choclo",
                                                  store_sensitivities="forward_only", numba_parallel=False)
    return sim.dpred(rho_gcc)


# ------------------------------------------------------------------ operator physics
@pytest.mark.parametrize("store", ["dense", "matrix_free"])
def test_mixed_forward_matches_single_operators_and_simpeg_choclo(case, store):
    mesh, active, rho_gcc, st = case
    # an irregular layout: gradiometry at most stations, gz alone at the last two, a gx row at the end
    sv = _gradiometry(st[:7])
    loc = np.vstack([sv.locations, st[7:], st[:1]])
    sv = Survey(loc, components=list(sv.components) + ["gz", "gz", "gx"])
    pm = PrismMesh.from_discretize(mesh, active_cells=active)
    op = make_operator(pm, sv, device="cpu", store=store, memory_budget=200_000)
    assert isinstance(op, MultiComponentOperator) and op.store == store and op.units == "mixed"
    rho = torch.as_tensor(rho_gcc * 1000.0)  # kg/m³
    d = op(rho).numpy()
    for comp, rows in sv.component_groups().items():  # each component's own operator
        single = GravityOperator(pm, sv.locations[rows], device="cpu", component=comp)
        want = single.forward(rho).numpy()  # other chunks: the same sums in another order
        np.testing.assert_allclose(d[rows], want, rtol=1e-11, atol=1e-12 * np.abs(want).max())
    # SimPEG (choclo, float64) on the same survey: only gz flips sign, g/cm³ in
    ref = _simpeg_dpred(mesh, active, sv.to_simpeg(), rho_gcc)
    ours_in_simpeg = d * np.array([SIMPEG_SIGN[c] for c in sv.components])
    scale = np.array([np.abs(ref[rows]).max() for rows in sv.component_groups().values()])
    for (comp, rows), s in zip(sv.component_groups().items(), scale):
        np.testing.assert_allclose(ours_in_simpeg[rows], ref[rows], rtol=1e-9, atol=1e-9 * s, err_msg=comp)
    # the physics of the signs: gz (ours, positive down) and gzz have the sign of the mass below
    heavy = torch.full((pm.n_cells,), 500.0, dtype=torch.float64)
    g = op(heavy).numpy()
    assert (g[sv.components == "gz"] > 0).all() and (g[sv.components == "gzz"] > 0).all()


def test_mixed_operator_adjoint_gradient_rows_and_jtj(case):
    mesh, active, _, st = case
    sv = _gradiometry(st)
    pm = PrismMesh.from_discretize(mesh, active_cells=active)
    rng = np.random.default_rng(0)
    m = torch.as_tensor(rng.normal(size=pm.n_cells))
    r = torch.as_tensor(rng.normal(size=sv.n_data))
    for store in ("matrix_free", "dense"):
        op = MultiComponentOperator(pm, sv, device="cpu", store=store, memory_budget=20_000)
        lhs, rhs = float(op.forward(m) @ r), float(m @ op.adjoint(r))
        assert lhs == pytest.approx(rhs, rel=1e-12)
        mm = m.clone().requires_grad_()
        (op(mm) * r).sum().backward()
        torch.testing.assert_close(mm.grad, op.adjoint(r), rtol=1e-12, atol=0)
        G = op.dense()
        torch.testing.assert_close(G @ m, op.forward(m), rtol=1e-12, atol=1e-12)
        blocks = list(op.dense_rows())
        if store == "matrix_free":
            assert len(blocks) > 1  # the small budget splits the rows: the components' streams are merged
        torch.testing.assert_close(torch.cat([b for *_, b in blocks]), G, rtol=0, atol=0)
        for start in (1, 7, sv.n_data // 2 + 1):  # from any row: the rows before it are skipped, not computed
            later = list(op.dense_rows(start))
            assert later[0][0] == start and later[-1][1] == sv.n_data
            torch.testing.assert_close(torch.cat([b for *_, b in later]), G[start:], rtol=0, atol=0)
        for bad in (-1, sv.n_data + 1, 2.5):  # a start outside the rows is named, for either operator
            for o in (op, next(iter(op.operators.values()))[1]):
                with pytest.raises(ValueError, match="start"):
                    next(iter(o.dense_rows(bad)))
        w = torch.as_tensor(rng.uniform(0.5, 2.0, sv.n_data))
        torch.testing.assert_close(op.jtj_diag(w), ((G * w[:, None]) ** 2).sum(0), rtol=1e-11, atol=0)
        k = torch.as_tensor(rng.normal(size=(pm.n_cells, 3)))  # several models at once
        torch.testing.assert_close(op.forward(k), G @ k, rtol=1e-11, atol=1e-12)
        est = op.estimate_memory()
        assert est.store == store and est.total >= est.geometry > 0


# ------------------------------------------------------------------ SimPEG adapter
def test_from_simpeg_to_simpeg_round_trip_of_a_mixed_survey(case):
    mesh, active, rho_gcc, st = case
    rxs = [gravity.receivers.Point(st[:3], components=["gz", "gzz"]),
           gravity.receivers.Point(st[3:5], components=["gxz"]),
           gravity.receivers.Point(st[5:8], components=["gzz", "gz", "guv"])]
    sp = gravity.survey.Survey(gravity.sources.SourceField(rxs))
    dobs = _simpeg_dpred(mesh, active, sp, rho_gcc)
    std = np.linspace(0.01, 0.5, sp.nD)
    ours = Survey.from_simpeg(sdata.Data(sp, dobs=dobs, standard_deviation=std))
    assert ours.n_data == sp.nD and not ours.is_gz_only
    assert ours.components[:6].tolist() == ["gz", "gzz"] * 3 and ours.components[6:8].tolist() == ["gxz"] * 2
    # the data are our physics: our operator on our survey reproduces them (gz flipped, the rest kept)
    pm = PrismMesh.from_discretize(mesh, active_cells=active)
    pred = make_operator(pm, ours, device="cpu").forward(torch.as_tensor(rho_gcc * 1000.0)).numpy()
    np.testing.assert_allclose(pred, ours.data, rtol=1e-9, atol=1e-9 * np.abs(dobs).max())
    gz = ours.components == "gz"
    np.testing.assert_array_equal(ours.data[gz], -dobs[gz])
    np.testing.assert_array_equal(ours.data[~gz], dobs[~gz])
    # back to SimPEG: the same layout, data and std, exactly
    back = ours.to_simpeg_data()
    loc0, c0 = simpeg_layout(sp)
    loc1, c1 = simpeg_layout(back.survey)
    np.testing.assert_array_equal(loc1, loc0)
    assert c1.tolist() == c0.tolist() and len(back.survey.source_field.receiver_list) == 3
    np.testing.assert_array_equal(back.dobs, dobs)
    np.testing.assert_array_equal(back.standard_deviation, std)
    again = Survey.from_simpeg(back)
    np.testing.assert_array_equal(again.data, ours.data)
    assert again.components.tolist() == ours.components.tolist()


# ------------------------------------------------------------------ files
def test_csv_geojson_and_grav3d_carry_or_refuse_the_component(tmp_path):
    st = np.array([[0.0, 0.0, 1.0], [10.0, 5.0, 2.0]])
    sv = Survey(np.repeat(st, 3, axis=0), gz=[0.11, 3.5, -1.25, 0.2, 4.0, 0.75], std=[0.01, 0.5, 0.5] * 2,
                components=["gz", "gzz", "gxz"] * 2, crs="EPSG:25830")
    p = gio.write_csv(tmp_path / "g.csv", sv)
    assert "x,y,z,component,data,std" in p.read_text() and "Eotvos" in p.read_text()
    back = gio.read_stations(p)
    for a in ("locations", "data", "std", "components"):
        np.testing.assert_array_equal(getattr(back, a), getattr(sv, a))
    assert back.crs == "EPSG:25830"
    assert gio.read_stations(p, to_crs="EPSG:25830").components.tolist() == sv.components.tolist()
    # a g_z survey keeps the old columns, and a file without the column is g_z
    plain = gio.write_csv(tmp_path / "p.csv", Survey(st, gz=[1.0, 2.0]))
    assert "component" not in plain.read_text() and gio.read_csv(plain).is_gz_only
    # units in a header are checked against the rows' components
    (tmp_path / "e.csv").write_text("x,y,z,Component,gz (E)\n0,0,1,GZZ,3\n1,0,1,gxz,2\n")
    assert gio.read_csv(tmp_path / "e.csv").components.tolist() == ["gzz", "gxz"]
    (tmp_path / "bad_unit.csv").write_text("x,y,z,component,data (mGal)\n0,0,1,gzz,3\n")
    with pytest.raises(ValueError, match="rows hold gradients"):
        gio.read_csv(tmp_path / "bad_unit.csv")
    (tmp_path / "bad.csv").write_text("x,y,z,component,data\n0,0,1,gz,1\n0,0,2,gzx,3\n")
    with pytest.raises(ValueError, match=r"line 3: unknown gravity component 'gzx'"):
        gio.read_csv(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="GRAV3D observation files hold g_z only"):
        gio.write_ubc_obs(tmp_path / "g.obs", sv)
    feats = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [500000.0 + 10 * i, 4e6, 1.0]},
              "properties": {"g": float(i), **({"component": "gzz"} if i else {})}} for i in range(3)]
    doc = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:25830"}},
           "features": feats}
    (tmp_path / "s.geojson").write_text(json.dumps(doc))
    gj = gio.read_stations(tmp_path / "s.geojson", value_property="g")
    assert gj.components.tolist() == ["gz", "gzz", "gzz"] and gj.data.tolist() == [0.0, 1.0, 2.0]


# ------------------------------------------------------------------ clear errors
def test_bad_components_are_refused_by_name(case):
    mesh, active, _, st = case
    loc = st[:3]
    with pytest.raises(ValueError, match="unknown gravity component 'gzx'"):
        Survey(loc, components="gzx")
    with pytest.raises(ValueError, match=r"components\[2\]: unknown gravity component 'Gzz'"):
        Survey(loc, components=["gz", "gzz", "Gzz"])
    with pytest.raises(ValueError, match="components has 2 entries but the survey has 3 data"):
        Survey(loc, components=["gz", "gzz"])
    with pytest.raises(TypeError, match="components must be"):
        Survey(loc, components=3)
    # one station, two components with different values: fine; the same component twice: refused
    two = Survey([st[0], st[0]], gz=[0.1, 3.0], components=["gz", "gzz"])
    assert two.n_data == 2 and "gzz x1" in repr(two)
    with pytest.raises(ValueError, match="component 'gzz' but have different values"):
        Survey([st[0], st[0]], gz=[0.1, 3.0], components="gzz")
    pm = PrismMesh.from_discretize(mesh, active_cells=active)
    mixed = _gradiometry(loc)
    with pytest.raises(ValueError, match=r"make_operator\(mesh, survey\)"):
        GravityOperator(pm, mixed, device="cpu")
    with pytest.raises(ValueError, match="but component='gz'"):
        GravityOperator(pm, Survey(loc, components="gzz"), device="cpu", component="gz")
    with pytest.raises(TypeError, match="survey.components"):
        MultiComponentOperator(pm, mixed, device="cpu", component="gz")
    # a single named component needs no component= (and a plain survey keeps component= working)
    assert GravityOperator(pm, Survey(loc, components="gzz"), device="cpu").component == "gzz"
    assert GravityOperator(pm, Survey(loc), device="cpu", component="gxx").units == "Eötvös"


# ------------------------------------------------------------------ INR inversion
def _block_case(components):
    from gempy_gravinv.cases.synthetic import single_block

    case = single_block(noise_seed=0, shape=(8, 8, 4))
    sv = _gradiometry(case.survey.locations, components)
    d = make_operator(case.mesh, sv, device="cpu").forward(torch.as_tensor(case.model)).numpy()
    std = np.empty(sv.n_data)
    for rows in sv.component_groups().values():
        std[rows] = 0.02 * np.abs(d[rows]).max()
    noise = np.random.default_rng(3).standard_normal(sv.n_data)
    return case, sv.with_data(d + std * noise, std)


@pytest.mark.parametrize("components", [["gzz"], ["gz", "gzz"]])
def test_inr_inversion_fits_gzz_and_gz_data(components):
    from gempy_gravinv.inversion import INRConfig, invert_inr

    case, sv = _block_case(components)
    fast = dict(width=32, depth=2, progress=False, net_dtype="float64", weighting="sensitivity", lr=0.01,
                encoding_options={"n_frequencies": 2}, max_steps=150, seed=0)
    res = invert_inr(sv, case.mesh, INRConfig(**fast), true_model=case.model)
    zero = float(np.mean((sv.data / sv.std) ** 2))
    assert res.chi2 < 0.05 * zero and res.chi2 < 3.0
    assert res.metrics["pearson_r"] > 0.4  # the block is where the data put it
    # settings that assume g_z data are refused by name
    with pytest.raises(ValueError, match="depth_from='stations'"):
        invert_inr(sv, case.mesh, INRConfig(**{**fast, "depth_from": "stations"}))
    if len(components) > 1:  # one offset for data in mGal and Eötvös
        with pytest.raises(ValueError, match="regional='constant'"):
            invert_inr(sv, case.mesh, INRConfig(**{**fast, "regional": "constant"}))


# ------------------------------------------------------------------ command line
def test_cli_forward_component_then_invert(tmp_path, capsys):
    mesh = discretize.TensorMesh([[(20.0, 6)], [(20.0, 6)], [(20.0, 3)]], origin=(0.0, 0.0, -60.0))
    cc = mesh.cell_centers
    rho = np.where((np.abs(cc[:, 0] - 60) < 25) & (np.abs(cc[:, 1] - 60) < 25) & (cc[:, 2] > -45), 0.4, 0.0)
    mesh.write_UBC(str(tmp_path / "mesh.msh"))
    mesh.write_model_UBC(str(tmp_path / "model.den"), rho)
    x, y = np.meshgrid(np.linspace(10, 110, 5), np.linspace(10, 110, 5))
    st = np.column_stack([x.ravel(), y.ravel(), np.full(x.size, 5.0)])
    gio.write_csv(tmp_path / "st.csv", st)
    base = ["forward", str(tmp_path / "mesh.msh"), str(tmp_path / "model.den"), str(tmp_path / "st.csv"),
            "--device", "cpu"]
    assert main(base + ["-o", str(tmp_path / "gzz.csv"), "--component", "gzz"]) == 0
    assert "gzz in [" in capsys.readouterr().out
    out = gio.read_csv(tmp_path / "gzz.csv")
    assert out.components.tolist() == ["gzz"] * 25
    ref = GravityOperator(PrismMesh.from_discretize(mesh), st, device="cpu", component="gzz")
    np.testing.assert_allclose(out.data, ref.forward(torch.as_tensor(rho * 1000.0)).numpy(), rtol=1e-12)
    # a comma list and a repeated flag: every station once per component, in the order given
    assert main(base + ["-o", str(tmp_path / "mix.csv"), "--component", "gz,gzz", "--component", "gxz"]) == 0
    mix = gio.read_csv(tmp_path / "mix.csv")
    assert mix.components.tolist() == ["gz", "gzz", "gxz"] * 25
    np.testing.assert_array_equal(mix.data[1::3], out.data)
    assert main(base + ["-o", str(tmp_path / "x.csv"), "--component", "gzx"]) == 2
    assert "unknown gravity component 'gzx'" in capsys.readouterr().err

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"width": 16, "depth": 2, "max_steps": 60, "seed": 0}))
    rc = main(["invert", str(tmp_path / "gzz.csv"), "--mesh", str(tmp_path / "mesh.msh"), "--config", str(cfg),
               "-o", str(tmp_path / "inv"), "--relative-std", "0.05", "--no-figures", "--no-progress"])
    assert rc == 0
    assert "Eötvös" in capsys.readouterr().out
    m = json.loads((tmp_path / "inv" / "metrics.json").read_text())
    std = 0.05 * np.std(out.data)
    zero = float(np.mean((out.data / std) ** 2))
    assert m["chi2_per_datum_recomputed"] < 0.2 * zero


def test_simpeg_recipe_on_a_mixed_survey_reports_our_signs():
    """SimPEG's L2 recipe takes a gz + gzz survey; its predictions come back in our signs (only gz flipped)."""
    from gempy_gravinv.simpeg import run_inversion

    case, sv = _block_case(["gz", "gzz"])
    res = run_inversion(sv, case.mesh.source, kind="l2", max_iter=3, seed=0)
    pred = make_operator(case.mesh, sv, device="cpu").forward(torch.as_tensor(res.model)).numpy()
    np.testing.assert_allclose(res.gz_pred, pred, rtol=1e-5, atol=1e-5 * np.abs(pred).max())  # float32 G
    assert res.chi2 == pytest.approx(float(np.mean(((pred - sv.data) / sv.std) ** 2)), rel=1e-5)
    assert res.chi2 < 0.5 * float(np.mean((sv.data / sv.std) ** 2))
