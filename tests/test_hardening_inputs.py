"""Bad or suspicious inputs: a clear early error (CLI: one line, exit status 2) or a warning,
never a wrong answer and never a traceback.

The command-line checks run ``python -m gempy_gravinv`` in subprocesses, started together
by a module fixture (a few at a time) so the whole file stays fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from gempy_gravinv import GravityOperator, PrismMesh, Survey
from gempy_gravinv import io as gio
from gempy_gravinv._constants import DensityUnitsWarning, check_density_units

ROOT = Path(__file__).resolve().parents[1]
UTM = (500_000.0, 4_400_000.0)  # a local origin in EPSG:25830 coordinates


# --------------------------------------------------------------------------- CLI runs
def _tensor(origin=(500.0, 1000.0, -40.0)):
    import discretize

    return discretize.TensorMesh([[(10.0, 6)], [(10.0, 5)], [(10.0, 4)]], origin=origin)


def _fc(points, crs=None, props=None):
    doc = {"type": "FeatureCollection", "name": "t", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(map(float, p))},
         "properties": dict(props[i]) if props else {}} for i, p in enumerate(points)]}
    if crs is not None:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    return json.dumps(doc)


def _bayes_files(d: Path, **sections) -> Path:
    (d / "sp.csv").write_text("X,Y,Z,formation\n200,200,-300,top\n800,200,-300,top\n"
                              "200,800,-300,top\n800,800,-300,top\n")
    (d / "ori.csv").write_text("X,Y,Z,azimuth,dip,polarity,formation\n500,500,-300,90,10,1,top\n")
    st = np.stack(np.meshgrid([200.0, 500.0, 800.0], [300.0, 700.0]), -1).reshape(-1, 2)
    (d / "st.csv").write_text("x,y,z,gz\n" + "\n".join(f"{x},{y},1.0,{0.1 * i:.3f}" for i, (x, y) in enumerate(st))
                              + "\n")
    cfg = {"model": '[model]\nextent = [0, 1000, 0, 1000, -600, 0]\nsurface_points = "sp.csv"\n'
                    'orientations = "ori.csv"\n',
           "stations": '[stations]\nfile = "st.csv"\n',
           "mesh": "[mesh]\nshape = [3, 3, 2]\n",
           "priors": "[priors]\ndensities_mean_kgm3 = [100.0, -100.0]\ndensities_std_kgm3 = [50.0, 50.0]\n",
           "likelihood": '[likelihood]\nkind = "gaussian"\nsigma = 0.5\n',
           "alignment": '[alignment]\nkind = "none"\n'}
    cfg.update(sections)
    p = d / "cfg.toml"
    p.write_text("".join(cfg.values()))
    return p


def _prepare(d: Path) -> dict[str, list[str]]:
    """Files for every command-line check; returns name -> argv."""
    import pyproj

    from gempy_gravinv.cases.synthetic import single_block

    mesh = _tensor()
    mesh.write_UBC(str(d / "mesh.msh"))
    rho = np.full(mesh.n_cells, 0.3)
    mesh.write_model_UBC(str(d / "model.den"), rho)
    mesh.write_model_UBC(str(d / "kgm3.den"), rho * 1000 + 2670.0)  # kg/m³ in a g/cm³ file
    loc = np.array([[520.0, 1020.0, 1.0], [540.0, 1030.0, 2.0]])
    (d / "units.csv").write_text("x (m),y (m),z (ft),gz (nT)\n520,1020,3,1\n540,1030,6,2\n")
    gio.write_csv(d / "below.csv", np.vstack([loc, [[530.0, 1020.0, -80.0]]]))
    gio.write_csv(d / "ok.csv", loc)
    text = (d / "mesh.msh").read_text().splitlines()
    text[3] = "10 10 nan 10 10"  # a NaN cell width in y (line 4)
    (d / "nanwidth.msh").write_text("\n".join(text) + "\n")

    # lon/lat stations (RFC 7946, no crs member) and a mesh in EPSG:25830 around them
    lonlat = np.array([[-3.0, 40.0], [-2.9995, 40.0003]])
    xy = np.column_stack(pyproj.Transformer.from_crs("OGC:CRS84", "EPSG:25830", always_xy=True)
                         .transform(lonlat[:, 0], lonlat[:, 1]))
    (d / "lonlat.geojson").write_text(_fc(np.c_[lonlat, [1.0, 1.0]]))
    _tensor(origin=(np.floor(xy[:, 0].min()) - 20.0, np.floor(xy[:, 1].min()) - 20.0, -40.0)).write_UBC(
        str(d / "utm.msh"))
    _tensor(origin=(0.0, 0.0, -40.0)).write_model_UBC(str(d / "utm.den"), rho)
    np.save(d / "utm_xy.npy", xy)

    # invert: GeoJSON stations in EPSG:25830 with g_z and std properties
    case = single_block(noise_seed=1, shape=(6, 6, 3))
    src = case.mesh.source
    import discretize

    shifted = discretize.TensorMesh(src.h, origin=np.asarray(src.origin) + [UTM[0], UTM[1], 0.0])
    shifted.write_UBC(str(d / "inv.msh"))
    sv = case.survey
    pts = sv.locations + [UTM[0], UTM[1], 0.0]
    (d / "inv.geojson").write_text(_fc(pts, "urn:ogc:def:crs:EPSG::25830",
                                       [{"BOU": float(g), "SIG": 9.0} for g in sv.gz]))
    (d / "inv.json").write_text(json.dumps({"width": 8, "depth": 1, "max_steps": 3, "n_members": 1}))
    gio.write_csv(d / "with_std.csv", Survey([[0.0, 0.0, 1.0], [10.0, 0.0, 1.0]], gz=[1.0, 2.0], std=9.0))

    bz = d / "bayes_zero"
    bz.mkdir()
    bn = d / "bayes_name"
    bn.mkdir()
    bd = d / "bayes_dump"
    bd.mkdir()
    bg = d / "bayes_gcc"
    bg.mkdir()
    fwd = ["forward", "--device", "cpu"]
    return {
        "csv_units": fwd + [str(d / "mesh.msh"), str(d / "model.den"), str(d / "units.csv"), "-o", str(d / "a.csv")],
        "kgm3_model": fwd + [str(d / "mesh.msh"), str(d / "kgm3.den"), str(d / "ok.csv"), "-o", str(d / "b.csv")],
        "below": fwd + [str(d / "mesh.msh"), str(d / "model.den"), str(d / "below.csv"), "-o", str(d / "c.csv")],
        "nan_width": fwd + [str(d / "nanwidth.msh"), str(d / "model.den"), str(d / "ok.csv"), "-o", str(d / "e.csv")],
        "lonlat_refused": fwd + [str(d / "utm.msh"), str(d / "utm.den"), str(d / "lonlat.geojson"),
                                 "-o", str(d / "f.csv")],
        "lonlat_crs": fwd + [str(d / "utm.msh"), str(d / "utm.den"), str(d / "lonlat.geojson"),
                             "-o", str(d / "g.csv"), "--crs", "EPSG:25830"],
        "invert_geojson": ["invert", str(d / "inv.geojson"), "--mesh", str(d / "inv.msh"), "--config",
                           str(d / "inv.json"), "--value-property", "BOU", "--std", "0.05", "--device", "cpu",
                           "-o", str(d / "inv_out"), "--no-figures", "--no-progress"],
        "invert_geojson_std": ["invert", str(d / "inv.geojson"), "--mesh", str(d / "inv.msh"), "--config",
                               str(d / "inv.json"), "--value-property", "BOU", "--std-property", "SIG",
                               "--device", "cpu", "-o", str(d / "inv_std"), "--no-figures", "--no-progress"],
        "invert_std_wins": ["invert", str(d / "with_std.csv"), "--mesh", str(d / "missing.msh"), "--std", "0.05",
                            "-o", str(d / "std_out")],
        "bayes_zero_mesh": ["bayes", "--config", str(_bayes_files(bz, mesh="[mesh]\nshape = [0, 4, 3]\n")),
                            "-o", str(bz / "out"), "--no-progress", "--no-figures"],
        "bayes_name": ["bayes", "--config", str(_bayes_files(bn, model=(
            '[model]\nname = "../../x"\nextent = [0, 1000, 0, 1000, -600, 0]\nsurface_points = "sp.csv"\n'
            'orientations = "ori.csv"\n'))), "-o", str(bn / "out"), "--no-progress", "--no-figures"],
        "bayes_gcc_priors": ["bayes", "--config", str(_bayes_files(bg, priors=(
            "[priors]\ndensities_mean_kgm3 = [2.67, 2.3]\ndensities_std_kgm3 = [0.1, 0.1]\n"))),
            "-o", str(bg / "out"), "--no-progress", "--no-figures"],
        "bayes_pyro_dump": ["bayes", "--config", str(_bayes_files(bd, likelihood=(
            '[likelihood]\nkind = "gaussian"\nsigma = [0.5, 0.5]\n'))), "-o", str(bd / "out"), "--samples", "2",
            "--warmup", "1", "--chains", "1", "--max-tree-depth", "1", "--prior-draws", "1", "--no-progress",
            "--no-figures"],
    }


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """Run every command-line check (three processes at a time); name -> CompletedProcess."""
    d = tmp_path_factory.mktemp("cli")
    runs = _prepare(d)
    env = dict(os.environ, GEMPY_GRAVINV_COMPILE="0", OMP_NUM_THREADS="1", PYTHONWARNINGS="default")
    env.pop("GEMPY_GRAVINV_DEBUG", None)
    done, todo, active = {}, list(runs.items()), {}
    while todo or active:
        while todo and len(active) < 3:
            name, argv = todo.pop(0)
            active[name] = subprocess.Popen([sys.executable, "-m", "gempy_gravinv", *argv], stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True, env=env, cwd=d)
        name = next(iter(active))
        out, err = active[name].communicate(timeout=400)
        done[name] = subprocess.CompletedProcess(active[name].args, active.pop(name).returncode, out, err)
    done["dir"] = d
    return done


def _error_line(r, *words) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-3000:])
    assert "Traceback" not in r.stderr and "Trace Shapes" not in r.stderr, r.stderr
    errs = [line for line in r.stderr.splitlines() if ": error: " in line]
    assert len(errs) == 1 and r.stderr.rstrip().splitlines()[-1] == errs[0], r.stderr
    for w in words:
        assert w in errs[0], (w, errs[0])
    return errs[0]


# --------------------------------------------------------------------------- 1. CSV units
def test_csv_header_units_are_converted(tmp_path):
    f = tmp_path / "u.csv"
    f.write_text("x (m),y (m),z (ft),gz (uGal),std (uGal)\n1,2,10,500,20\n3,4,100,-250,20\n")
    s = gio.read_csv(f)
    np.testing.assert_allclose(s.locations[:, 2], [3.048, 30.48])
    np.testing.assert_allclose(s.gz, [0.5, -0.25])
    np.testing.assert_allclose(s.std, [0.02, 0.02])
    f.write_text("x [km],y [km],z,gz [m/s²],std (gu)\n1,2,3,4e-5,1\n")
    s = gio.read_csv(f)
    np.testing.assert_allclose(s.locations, [[1000.0, 2000.0, 3.0]])
    np.testing.assert_allclose([s.gz[0], s.std[0]], [4.0, 0.1])
    f.write_text("x,y,z,gz (µGal)\n1,2,3,1000\n")
    assert gio.read_csv(f).gz[0] == pytest.approx(1.0)
    for bad, col in (("gz (nT)", "gz (nT)"), ("gz (furlong)", "gz (furlong)")):
        f.write_text(f"x,y,z,{bad}\n1,2,3,4\n")
        with pytest.raises(ValueError, match=r"column '.*': unknown unit") as e:
            gio.read_csv(f)
        assert col in str(e.value)
    f.write_text("x (miles),y,z\n1,2,3\n")
    with pytest.raises(ValueError, match=r"'x \(miles\)'.*unknown unit 'miles'"):
        gio.read_csv(f)


def test_cli_csv_unknown_unit_refused(cli):
    _error_line(cli["csv_units"], "gz (nT)", "unknown unit")


# --------------------------------------------------------------------------- 2. density units
def test_density_unit_checks():
    with pytest.warns(DensityUnitsWarning, match="looks like g/cm³"):
        check_density_units([0.3, -0.2], name="model")
    with pytest.warns(DensityUnitsWarning, match="absolute rock densities"):
        check_density_units([2670.0, 2700.0], name="model")
    with pytest.raises(ValueError, match="reaches 6000"):
        check_density_units([6000.0], name="model")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_density_units([0.0, 300.0, -250.0], name="model")  # a real contrast: silent
        check_density_units(np.zeros(3), name="model")
    # UBC models are g/cm³: kg/m³ values are refused, absolute densities warned about
    with pytest.raises(ValueError, match="g/cm³ are expected.*divide them by 1000"):
        gio.model_to_contrast_kgm3([2670.0, 2700.0, np.nan])
    with pytest.warns(DensityUnitsWarning, match="--reference-density"):
        gio.model_to_contrast_kgm3([2.67, 2.7])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(gio.model_to_contrast_kgm3([2.67, 2.7], 2.67), [0.0, 30.0], atol=1e-9)
    with pytest.raises(ValueError, match="reference density 2670"):
        gio.model_to_contrast_kgm3([2.67], 2670.0)
    # a kg/m³ contrast read as g/cm³: beyond any material refused, beyond any rock's contrast warned about
    with pytest.raises(ValueError, match="reaches 50 .*nothing is denser than 25"):
        gio.model_to_contrast_kgm3([0.0, 0.5, 50.0])
    with pytest.warns(DensityUnitsWarning, match="reaches 20 g/cm³.*beyond any rock's density contrast"):
        gio.model_to_contrast_kgm3([0.0, 0.5, 20.0, -3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gio.model_to_contrast_kgm3([0.0, 4.9, -2.0])  # an ore body against its host: silent
    with pytest.raises(ValueError, match="-999 marks cells without data"):
        gio.model_to_contrast_kgm3([0.1, -999.0, -999.0])


def test_gempy_unit_densities_checked():
    from gempy_gravinv.density._geology import resolve_unit_densities

    with pytest.warns(DensityUnitsWarning, match="g/cm³"):
        resolve_unit_densities([2.67, 2.3], ["a", "basement"])
    with pytest.warns(DensityUnitsWarning, match="absolute"):
        resolve_unit_densities([2670.0, 2300.0], ["a", "basement"])


def test_bayes_config_density_priors(tmp_path):
    from gempy_gravinv.cases._bayes_config import check_density_prior

    with pytest.raises(ValueError, match="look like g/cm³"):
        check_density_prior([2.67, 2.3], [0.1, 0.1])
    with pytest.warns(DensityUnitsWarning, match="absolute"):
        check_density_prior([2670.0, 2300.0], [100.0, 100.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_density_prior([230.0, -370.0], [150.0, 150.0])


def test_cli_density_units(cli):
    _error_line(cli["kgm3_model"], "kgm3.den", "g/cm³ are expected", "divide them by 1000")
    _error_line(cli["bayes_gcc_priors"], "densities_mean_kgm3", "g/cm³")


# --------------------------------------------------------------------------- 3. stations
def test_stations_below_or_far_from_the_mesh():
    mesh = PrismMesh.from_tensor([10.0] * 4, [10.0] * 4, [10.0] * 2, origin=(0, 0, -20))
    with pytest.raises(ValueError, match=r"below the whole mesh.*z = -50 m.*bottom at z = -20 m"):
        GravityOperator(mesh, Survey([[20.0, 20.0, 1.0], [20.0, 20.0, -50.0]]), device="cpu")
    with pytest.warns(UserWarning, match="below the whole mesh"):
        op = GravityOperator(mesh, Survey([[20.0, 20.0, -50.0]]), device="cpu", check_stations="warn")
    assert op.forward(torch.full((mesh.n_cells,), 100.0, dtype=torch.float64))[0] < 0  # mass above
    with pytest.raises(ValueError, match=r"farther from the mesh than 10 x.*station 0 .* is 1e\+06 m away"):
        GravityOperator(mesh, Survey([[20.0, 1e6 + 40.0, 0.0]]), device="cpu")
    with pytest.warns(UserWarning, match="farther from the mesh"):
        GravityOperator(mesh, Survey([[20.0, 1e6 + 40.0, 0.0]]), device="cpu", check_stations="warn")
    GravityOperator(mesh, Survey([[20.0, 300.0, 0.0]]), device="cpu")  # 7.5 extents away: fine
    with pytest.raises(ValueError, match="inside mesh cells"):  # inside: refused even with "warn"
        GravityOperator(mesh, Survey([[15.0, 15.0, -5.0]]), device="cpu", check_stations="warn")


def test_station_values_refused():
    with pytest.raises(ValueError, match=r"station 1 has y = 1e\+300 m"):
        Survey([[0.0, 0.0, 0.0], [0.0, 1e300, 0.0]])
    for v in (np.nan, np.inf):
        with pytest.raises(ValueError, match="NaN/inf"):
            Survey([[0.0, 0.0, v]])
    with pytest.raises(TypeError, match="complex"):
        Survey([[0.0, 0.0, 1.0]], gz=np.array([1.0 + 2.0j]))
    with pytest.raises(TypeError, match="complex"):
        Survey([[0.0, 0.0, 1.0]], gz=[1.0 + 0j])
    with pytest.raises(TypeError, match="booleans"):
        Survey([[0.0, 0.0, 1.0]], gz=np.array([True]))
    with pytest.raises(TypeError, match="bool"):
        Survey([[0.0, 0.0, 1.0]], gz=[1.0], std=True)
    with pytest.raises(TypeError, match="booleans"):
        Survey([[0.0, 0.0, 1.0]], gz=[1.0], std=torch.tensor([True]))


def test_duplicated_stations():
    loc = [[0.0, 0.0, 1.0], [5.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    with pytest.warns(UserWarning, match=r"duplicated station row.*rows \[0, 2\]"):
        Survey(loc, gz=[1.0, 2.0, 1.0])
    with pytest.raises(ValueError, match=r"stations \[0, 2\] share x, y, z .* different gz"):
        Survey(loc, gz=[1.0, 2.0, 1.5])
    with pytest.raises(ValueError, match="different std"):
        Survey(loc, gz=[1.0, 2.0, 1.0], std=[0.1, 0.1, 0.2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Survey([[0.0, 0.0, 1.0], [0.0, 0.0, 2.0]], gz=[1.0, 2.0])  # same x, y, other z: fine


def test_cli_station_below_mesh(cli):
    _error_line(cli["below"], "below the whole mesh", "depths given?")


# --------------------------------------------------------------------------- 4. meshes
def test_overlapping_prisms_refused():
    from gempy_gravinv import _mesh

    b = [[0, 10, 0, 10, 0, 10], [10, 20, 0, 10, 0, 10], [5, 15, 5, 15, 5, 15]]
    with pytest.raises(ValueError, match="cells 0 and 2 overlap"):
        PrismMesh(b)
    PrismMesh(b[:2])  # touching faces: fine
    # a large mesh: the grid-based check is fast and finds a single bad cell
    big = PrismMesh.from_tensor(np.full(60, 10.0), np.full(50, 10.0), np.full(40, 5.0)).bounds.copy()
    assert _mesh.find_overlapping_cells(big) is None
    big[4321, 1] += 2.5  # cell 4321 now reaches into its x-neighbour
    assert _mesh.find_overlapping_cells(big) == (4321, 4322)
    # the k-d tree path (irregular cells) agrees
    old = _mesh._OVERLAP_GRID_MAX
    _mesh._OVERLAP_GRID_MAX = 10
    try:
        assert _mesh.find_overlapping_cells(big[:20000]) == (4321, 4322)
        big[4321, 1] -= 2.5
        assert _mesh.find_overlapping_cells(big[:20000]) is None
    finally:
        _mesh._OVERLAP_GRID_MAX = old


def test_discretize_meshes_skip_the_overlap_check(monkeypatch):
    from gempy_gravinv import _mesh

    def boom(*a, **k):
        raise AssertionError("overlap check on a discretize mesh")

    monkeypatch.setattr(_mesh, "find_overlapping_cells", boom)
    PrismMesh.from_tensor([10.0] * 3, [10.0] * 3, [10.0] * 3)
    with pytest.raises(AssertionError):
        PrismMesh([[0, 1, 0, 1, 0, 1], [1, 2, 0, 1, 0, 1]])


def test_ubc_nan_width_and_non_finite_model_values(tmp_path):
    m = _tensor()
    m.write_UBC(str(tmp_path / "m.msh"))
    lines = (tmp_path / "m.msh").read_text().splitlines()
    for k, tok in ((2, "nan"), (4, "inf"), (3, "-5")):
        bad = list(lines)
        bad[k] = f"10 {tok} 10 10 10 10"[: len(bad[k]) + 4]
        (tmp_path / "b.msh").write_text("\n".join(bad) + "\n")
        with pytest.raises(ValueError, match=rf"b\.msh, line {k + 1}: the cell widths in [xyz]"):
            gio.read_ubc_mesh(tmp_path / "b.msh")
    bad = list(lines)
    bad[1] = "500 nan 0"
    (tmp_path / "o.msh").write_text("\n".join(bad) + "\n")
    with pytest.raises(ValueError, match=r"o\.msh, line 2: the origin hold 'nan'"):
        gio.read_ubc_mesh(tmp_path / "o.msh")
    vals = ["0.1"] * m.n_cells
    for tok in ("inf", "-inf", "nan"):
        v = list(vals)
        v[7] = tok
        (tmp_path / "x.den").write_text("\n".join(v) + "\n")
        with pytest.raises(ValueError, match=rf"x\.den, line 8: value '{tok}' is not a finite number"):
            gio.read_ubc_model(tmp_path / "x.den", m)
    # NaN meant as no-data: say so
    r = gio.read_ubc_model(tmp_path / "x.den", m, no_data=(-99999.0, -100.0, float("nan")))
    assert np.isnan(r).sum() == 1


def test_cli_nan_cell_width(cli):
    _error_line(cli["nan_width"], "nanwidth.msh, line 4", "NaN/inf")


# --------------------------------------------------------------------------- 5. NaN density
def test_nan_density_refused_by_forward():
    mesh = PrismMesh.from_tensor([10.0] * 3, [10.0] * 3, [10.0] * 2, origin=(0, 0, -20))
    op = GravityOperator(mesh, Survey([[15.0, 15.0, 1.0]]), device="cpu")
    m = torch.full((mesh.n_cells,), 100.0, dtype=torch.float64)
    m[4] = float("nan")
    with pytest.raises(ValueError, match="density contains 1 NaN/inf"):
        op.forward(m)
    with pytest.raises(ValueError, match="NaN/inf"):
        op.forward(np.full((mesh.n_cells, 2), np.inf))
    # the differentiable call is not checked per call (it is the training loop's hot path)
    x = torch.full((mesh.n_cells,), 100.0, dtype=torch.float64, requires_grad=True)
    op(x).sum().backward()
    assert torch.isfinite(x.grad).all()


# --------------------------------------------------------------------------- 6. CRS
def test_geojson_crs_refused_or_reprojected(tmp_path):
    import pyproj

    f = tmp_path / "s.geojson"
    f.write_text(_fc([[-3.0, 40.0, 1.0]], "EPSG:4326", [{"g": 1.0}]))
    with pytest.raises(ValueError, match=r"CRS EPSG:4326 \(WGS 84\) is geographic.*to_crs"):
        gio.read_geojson(f, "g")
    s = gio.read_geojson(f, "g", to_crs="EPSG:25830")
    x, y = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:25830", always_xy=True).transform(-3.0, 40.0)
    np.testing.assert_allclose(s.locations[0], [x, y, 1.0], rtol=0, atol=1e-6)
    assert s.crs == "EPSG:25830" and s.gz[0] == 1.0
    # degrees under a projected CRS: mislabelled, refused even with to_crs
    f.write_text(_fc([[-3.0, 40.0], [-2.9, 40.1]], "urn:ogc:def:crs:EPSG::25830"))
    for kw in ({}, {"to_crs": "EPSG:25830"}):
        with pytest.raises(ValueError, match=r"EPSG:25830 \(ETRS89 / UTM zone 30N\) is projected .*"
                                             r"longitude/latitude"):
            gio.read_geojson(f, **kw)
    # a projected file reprojected to another zone; the CRS travels with the survey
    f.write_text(_fc([[x, y]], "urn:ogc:def:crs:EPSG::25830"))
    assert gio.read_geojson(f).crs == "EPSG:25830"
    s29 = gio.read_geojson(f, to_crs="EPSG:25829")
    assert s29.crs == "EPSG:25829" and abs(s29.locations[0, 0] - x) > 1e5
    with pytest.raises(ValueError, match="not a projected CRS in metres"):
        gio.read_geojson(f, to_crs="EPSG:4326")
    with pytest.raises(ValueError, match="not a CRS pyproj knows"):
        gio.read_geojson(f, to_crs="EPSG:99999999")
    f.write_text(_fc([[x / 0.3048006096, y / 0.3048006096]], "EPSG:2227"))  # feet
    with pytest.raises(ValueError, match="US survey foot, not metres"):
        gio.read_geojson(f)


def test_crs_travels_to_csv_and_netcdf(tmp_path):
    import xarray as xr

    from gempy_gravinv.output import save_netcdf

    s = Survey([[500000.0, 4400000.0, 1.0]], gz=[1.0], crs="EPSG:25830")
    assert s.with_data([2.0]).crs == "EPSG:25830" and s.subset([0]).crs == "EPSG:25830"
    p = gio.write_csv(tmp_path / "s.csv", s)
    assert "# crs: EPSG:25830" in p.read_text()
    assert gio.read_csv(p).crs == "EPSG:25830"
    mesh = PrismMesh.from_tensor([10.0] * 2, [10.0] * 2, [10.0], origin=(500000.0, 4400000.0, -10.0))
    nc = save_netcdf(tmp_path / "m.nc", mesh, np.zeros(mesh.n_cells), std=np.ones(mesh.n_cells), crs=s.crs)
    with xr.open_dataset(nc, engine="h5netcdf") as ds:
        assert ds["density_contrast"].attrs["grid_mapping"] == "crs"
        assert ds["density_contrast_std"].attrs["grid_mapping"] == "crs"
        assert "UTM zone 30N" in ds["crs"].attrs["crs_wkt"]
        assert ds["crs"].attrs["grid_mapping_name"] == "transverse_mercator"


def test_cli_geojson_lonlat_needs_crs(cli):
    _error_line(cli["lonlat_refused"], "lonlat.geojson", "longitude/latitude", "--crs")
    r = cli["lonlat_crs"]
    assert r.returncode == 0, r.stderr
    out = cli["dir"] / "g.csv"
    assert "# crs: EPSG:25830" in out.read_text()
    np.testing.assert_allclose(gio.read_csv(out).locations[:, :2], np.load(cli["dir"] / "utm_xy.npy"), atol=1e-6)


# --------------------------------------------------------------------------- 7. invert + GeoJSON
def test_cli_invert_reads_geojson_stations(cli):
    r = cli["invert_geojson"]
    assert r.returncode == 0, r.stderr[-3000:]
    assert "invert: 36 stations" in r.stdout
    m = json.loads((cli["dir"] / "inv_out" / "metrics.json").read_text())
    assert m["chi2_per_datum_recomputed"] > 1.0  # weighted by --std 0.05 mGal (no std in the file)


def test_cli_invert_reads_a_geojson_std_property(cli):
    r = cli["invert_geojson_std"]
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((cli["dir"] / "inv_std" / "metrics.json").read_text())
    gz = np.array([f["properties"]["BOU"] for f in json.loads((cli["dir"] / "inv.geojson").read_text())["features"]])
    # each station weighted by its SIG property (9 mGal, 40 times the data's RMS): χ²/N far below the one of
    # --std 0.05 above
    assert 9.0 > 20 * float(np.sqrt(np.mean(gz ** 2))) and m["chi2_per_datum"] < 0.01


def test_cli_invert_std_option_wins_over_a_std_column(cli):
    r = cli["invert_std_wins"]  # a std column and --std: a warning, then (no mesh) the one error line
    assert "has a std column; --std 0.05 mGal replaces it" in r.stderr
    _error_line(r, "missing.msh")


def test_read_stations_geojson_options(tmp_path):
    f = tmp_path / "s.geojson"
    f.write_text(_fc([[UTM[0] + 5, UTM[1] + 5, 1.0]], "EPSG:25830", [{"BOU": 1.0, "SIG": 9.0}]))
    s = gio.read_stations(f, value_property="BOU")
    assert s.gz[0] == 1.0 and s.crs == "EPSG:25830"
    c = gio.write_csv(tmp_path / "s.csv", s)
    with pytest.raises(ValueError, match="value or std property applies to GeoJSON"):
        gio.read_stations(c, value_property="BOU")
    assert gio.read_stations(c, to_crs="EPSG:25830").crs == "EPSG:25830"
    s29 = gio.read_stations(c, to_crs="EPSG:25829")  # the CSV names its CRS: reprojected
    assert s29.crs == "EPSG:25829" and abs(s29.locations[0, 0] - s.locations[0, 0]) > 1e5


# --------------------------------------------------------------------------- 8. bayes inputs
def test_bayes_config_checks(tmp_path):
    from gempy_gravinv.cases import bayes as cases
    from gempy_gravinv.cases._bayes_config import plain_name

    assert plain_name("my_model-2.v1", name="n") == "my_model-2.v1"
    for bad in ("../../x", "/abs", "a/b", "..", ".hidden/x", "a\\b", "", 3):
        with pytest.raises(ValueError, match="plain name"):
            plain_name(bad, name="[model] name")
    cfg = _bayes_files(tmp_path, mesh="[mesh]\nshape = [4, 4]\n")
    with pytest.raises(ValueError, match=r"\[mesh\] shape .* must have 3 values"):
        cases.from_config(cfg)
    cfg = _bayes_files(tmp_path, model='[model]\nextent = [0, 1000, 0, -1000, -600, 0]\nsurface_points = "sp.csv"\n'
                                       'orientations = "ori.csv"\n')
    with pytest.raises(ValueError, match="ymin must be < ymax"):
        cases.from_config(cfg)
    cfg = _bayes_files(tmp_path, likelihood='[likelihood]\nkind = "gaussian"\n')
    with pytest.raises(ValueError, match="needs sigma"):
        cases.from_config(cfg)
    cfg = _bayes_files(tmp_path, alignment='[alignment]\nkind = "offset"\nscale = -1\n')
    with pytest.raises(ValueError, match=r"\[alignment\] scale"):
        cases.from_config(cfg)


def test_bayes_one_line_errors():
    from gempy_gravinv.cli._bayes import one_line

    exc = ValueError("sigma must be a scalar or have 6 values\nTrace Shapes:\n Param Sites:\n Sample Sites:\n"
                     "densities dist | 2\n")
    assert one_line(exc) == "sigma must be a scalar or have 6 values"
    assert one_line(RuntimeError("a\n  b")) == "a b"
    assert len(one_line(ValueError("x" * 1000))) == 400


def test_cli_bayes_bad_inputs(cli):
    _error_line(cli["bayes_zero_mesh"], "[mesh] shape", ">= 1")
    _error_line(cli["bayes_name"], "[model] name", "plain name", "../../x")
    assert not (cli["dir"] / "x").exists() and not (cli["dir"].parent / "x").exists()
    _error_line(cli["bayes_pyro_dump"], "sigma must be a scalar or have 6 values")


def test_bayes_summary_json_is_strict():
    # what the CLI writes: NaN (R-hat of a single chain) becomes null
    from gempy_gravinv._json import to_jsonable

    s = {"max_rhat": float("nan"), "ess": np.float64(3.0), "nested": {"x": [np.inf, 1.0]}}
    text = json.dumps(to_jsonable(s), allow_nan=False)
    assert json.loads(text) == {"max_rhat": None, "ess": 3.0, "nested": {"x": [None, 1.0]}}


# --------------------------------------------------------------------------- 9. field libraries
def test_regional_and_mesh_design_use_verde_and_discretize_equivalently():
    import math

    import discretize

    from gempy_gravinv.cases import tharsis

    rng = np.random.default_rng(3)
    loc = np.c_[rng.uniform(5e5, 5.3e5, 40), rng.uniform(4.1e6, 4.12e6, 40), np.full(40, 1.0)]
    g = 3.0 + 0.5 * (loc[:, 0] - 5e5) / 1e3 - 0.2 * (loc[:, 1] - 4.1e6) / 1e3 + rng.normal(size=40)
    resid, reg, info = tharsis.remove_regional(Survey(loc, gz=g), "planar")
    xc, yc = loc[:, 0].mean(), loc[:, 1].mean()
    A = np.c_[np.ones(40), (loc[:, 0] - xc) / 1e3, (loc[:, 1] - yc) / 1e3]
    coef = np.linalg.lstsq(A, g, rcond=None)[0]
    np.testing.assert_allclose([info["a_mgal"], info["b_mgal_per_km"], info["c_mgal_per_km"]], coef, rtol=1e-10)
    np.testing.assert_allclose(reg, A @ coef, atol=1e-10)

    def reference(core, n_pad, f, depth, top, pd):  # the hand-written layout the builder replaced
        dx, dy, dz = core
        m = max(dx, dy)
        x0, x1, y0, y1 = loc[:, 0].min() - m, loc[:, 0].max() + m, loc[:, 1].min() - m, loc[:, 1].max() + m
        ncx, ncy, ncz = math.ceil((x1 - x0) / dx), math.ceil((y1 - y0) / dy), math.ceil(depth / dz)
        x0 = math.floor(0.5 * (x0 + x1) - 0.5 * ncx * dx)
        y0 = math.floor(0.5 * (y0 + y1) - 0.5 * ncy * dy)
        ncx, ncy = max(ncx, math.ceil((x1 - x0) / dx)), max(ncy, math.ceil((y1 - y0) / dy))

        def w(h, n, k, before_only=False):
            pad = h * f ** np.arange(1, k + 1)
            return np.concatenate([pad[::-1], np.full(n, h)] + ([] if before_only else [pad]))

        hx, hy, hz = w(dx, ncx, n_pad), w(dy, ncy, n_pad), w(dz, ncz, pd, True)
        return discretize.TensorMesh([hx, hy, hz], origin=(x0 - hx[:n_pad].sum(), y0 - hy[:n_pad].sum(),
                                                           top - hz.sum()))

    for core, n_pad, f, depth, top, pd in (((1000.0, 1000.0, 500.0), 2, 1.5, 3000.0, 0.0, 2),
                                           ((333.3, 250.7, 97.1), 4, 1.0, 1234.5, 0.0, 1),
                                           ((500.0, 400.0, 250.0), 0, 1.3, 1000.0, 0.0, 0)):
        got = tharsis.design_mesh(loc, core_cell=core, padding=(n_pad, f), depth=depth, top=top,
                                  padding_depth=pd)
        ref = PrismMesh.from_discretize(reference(core, n_pad, f, depth, top, pd))
        assert got.shape == ref.shape
        np.testing.assert_array_equal(got.bounds, ref.bounds)


# --------------------------------------------------------------------------- 10. SECURITY.md
def test_security_notes_describe_the_input_readers():
    text = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    assert "## Input files" in text
    section = text.split("## Input files", 1)[1].split("\n## ", 1)[0]
    for word in ("CSV", "UBC", "GeoJSON", "TOML", "JSON", "NetCDF", "h5netcdf", ".gempy", "pickle", "pyproj"):
        assert word in section, word
