"""CLI: --help, and `forward` end to end against GravityOperator and SimPEG."""

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
from gempy_gravinv.cli import main

EXE = Path(sys.executable).parent / "gempy-gravinv"


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "forward" in out and "mGal" in out
    with pytest.raises(SystemExit) as e:
        main(["forward", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for word in ("MESH", "MODEL", "STATIONS", "--reference-density", "POSITIVE DOWNWARD", "g/cm³"):
        assert word in out
    assert main([]) == 0  # no command: prints help


@pytest.fixture
def ubc_case(tmp_path):
    """6 x 5 x 4 cells of 10 m, top at z = 0; top layer air (-100), absolute densities."""
    import discretize

    mesh = discretize.TensorMesh([[(10.0, 6)], [(10.0, 5)], [(10.0, 4)]], origin=(500.0, 1000.0, -40.0))
    cc = mesh.cell_centers
    rho = np.full(mesh.n_cells, 2.67)
    block = (cc[:, 0] > 520) & (cc[:, 0] < 540) & (cc[:, 1] > 1010) & (cc[:, 1] < 1040) & (cc[:, 2] < -10)
    rho[block] = 3.1
    rho[(cc[:, 2] < -30) & (cc[:, 0] > 540)] = 2.2
    rho[cc[:, 2] > -10] = -100.0  # GRAV3D's removed (air) cells
    mesh.write_UBC(str(tmp_path / "mesh.msh"))
    mesh.write_model_UBC(str(tmp_path / "model.den"), rho)
    x, y = np.meshgrid(np.linspace(505, 555, 4), np.linspace(1005, 1045, 3))
    loc = np.column_stack([x.ravel(), y.ravel(), np.full(x.size, -5.0)])  # inside air cells: allowed
    loc[0, 2] = 2.0
    gio.write_ubc_obs(tmp_path / "stations.obs", loc)
    gio.write_csv(tmp_path / "stations.csv", loc)
    return dict(mesh=mesh, rho=rho, loc=loc, dir=tmp_path)


def test_forward_end_to_end_matches_operator_and_simpeg(ubc_case, capsys):
    from simpeg import maps
    from simpeg.potential_fields import gravity

    d, mesh, rho, loc = ubc_case["dir"], ubc_case["mesh"], ubc_case["rho"], ubc_case["loc"]
    rc = main(["forward", str(d / "mesh.msh"), str(d / "model.den"), str(d / "stations.obs"),
               "-o", str(d / "out.csv"), "--device", "cpu", "--reference-density", "2.67"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "memory estimate" in out and "12 stations x 90 active cells (of 120)" in out
    pred = gio.read_csv(d / "out.csv")
    np.testing.assert_array_equal(pred.locations, loc)

    # same numbers from the library
    active = rho != -100.0
    pm = PrismMesh.from_discretize(mesh, active_cells=active)
    op = GravityOperator(pm, Survey(loc), device="cpu")
    ref = op(torch.as_tensor((rho[active] - 2.67) * 1000.0)).numpy()
    np.testing.assert_allclose(pred.gz, ref, rtol=1e-12, atol=1e-15)

    # and from SimPEG (g/cm³ contrast, upward component: opposite sign)
    sv = gravity.survey.Survey(gravity.sources.SourceField([gravity.receivers.Point(loc, components="gz")]))
    sim = gravity.simulation.Simulation3DIntegral(
        mesh=mesh, survey=sv, rhoMap=maps.IdentityMap(nP=int(active.sum())), active_cells=active,
        store_sensitivities="forward_only", engine="choclo")
    d_simpeg = sim.dpred(rho[active] - 2.67)
    np.testing.assert_allclose(pred.gz, -d_simpeg, rtol=1e-8, atol=1e-10 * np.abs(d_simpeg).max())
    assert pred.gz.max() > 0.05 and pred.gz.min() < 0  # dense block positive, light one negative

    # CSV stations, float32 and matrix-free give the same answer
    rc = main(["forward", str(d / "mesh.msh"), str(d / "model.den"), str(d / "stations.csv"),
               "-o", str(d / "out32.csv"), "--device", "cpu", "--reference-density", "2.67",
               "--dtype", "float32", "--store", "matrix_free"])
    assert rc == 0
    np.testing.assert_allclose(gio.read_csv(d / "out32.csv").gz, ref, rtol=1e-3, atol=1e-5)


def test_forward_without_reference_is_absolute_density(ubc_case):
    from gempy_gravinv._constants import DensityUnitsWarning

    d, mesh, rho = ubc_case["dir"], ubc_case["mesh"], ubc_case["rho"]
    with pytest.warns(DensityUnitsWarning, match="absolute rock densities.*--reference-density"):
        assert main(["forward", str(d / "mesh.msh"), str(d / "model.den"), str(d / "stations.csv"),
                     "-o", str(d / "abs.csv"), "--device", "cpu"]) == 0
    assert main(["forward", str(d / "mesh.msh"), str(d / "model.den"), str(d / "stations.csv"),
                 "-o", str(d / "rel.csv"), "--device", "cpu", "--reference-density", "2.67"]) == 0
    # linear in density: abs - rel = field of a uniform 2.67 g/cm³ over the active cells
    active = rho != -100.0
    pm = PrismMesh.from_discretize(mesh, active_cells=active)
    uni = GravityOperator(pm, Survey(ubc_case["loc"]), device="cpu")(
        torch.full((pm.n_cells,), 2670.0, dtype=torch.float64)).numpy()
    diff = gio.read_csv(d / "abs.csv").gz - gio.read_csv(d / "rel.csv").gz
    np.testing.assert_allclose(diff, uni, rtol=1e-10)


def test_forward_bad_input_exit_2(ubc_case, capsys):
    d = ubc_case["dir"]
    base = [str(d / "mesh.msh"), str(d / "model.den"), str(d / "stations.csv"), "-o", str(d / "o.csv"),
            "--device", "cpu"]

    def err(argv):
        rc = main(argv)
        e = capsys.readouterr().err
        assert rc == 2
        assert e.startswith("gempy-gravinv forward: error: ") and len(e.strip().splitlines()) == 1
        return e

    assert "no such file" in err(["forward", str(d / "missing.msh")] + base[1:])
    (d / "short.den").write_text("1\n2\n")
    assert "holds 2 values but the mesh has 120 cells" in err(["forward", base[0], str(d / "short.den")] + base[2:])
    inside = d / "inside.csv"
    gio.write_csv(inside, [[525.0, 1025.0, -25.0]])
    assert "inside mesh cells" in err(["forward", base[0], base[1], str(inside)] + base[3:])
    (d / "air.den").write_text("-100\n" * 120)
    assert "every cell is inactive" in err(["forward", base[0], str(d / "air.den")] + base[2:])
    (d / "bad.csv").write_text("x,y,gz\n1,2,3\n")
    assert "missing column" in err(["forward", base[0], base[1], str(d / "bad.csv")] + base[3:])
    assert "not a UBC mesh" in err(["forward", str(d / "bad.csv")] + base[1:])
    assert "--device 'tpu'" in err(["forward"] + base[:-1] + ["tpu"])


@pytest.mark.skipif(not EXE.exists(), reason="console script not installed")
def test_console_script_subprocess(ubc_case):
    d = ubc_case["dir"]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    ok = subprocess.run([str(EXE), "forward", str(d / "mesh.msh"), str(d / "model.den"),
                         str(d / "stations.obs"), "-o", str(d / "sub.csv"), "--device", "cpu"],
                        capture_output=True, text=True, timeout=120, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "forward: 12 stations" in ok.stdout
    assert gio.read_csv(d / "sub.csv").n_data == 12
    bad = subprocess.run([str(EXE), "forward", str(d / "mesh.msh"), str(d / "nope.den"),
                          str(d / "stations.obs"), "-o", str(d / "x.csv")],
                         capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode == 2
    assert "error: no such file" in bad.stderr and "Traceback" not in bad.stderr


def test_forward_on_octree_mesh_matches_simpeg(tmp_path):
    import discretize
    from simpeg import maps
    from simpeg.potential_fields import gravity

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        tm = discretize.TreeMesh([[(10.0, 8)], [(10.0, 8)], [(10.0, 8)]], origin=(0.0, 0.0, -80.0),
                                 diagonal_balance=False)
    tm.refine_ball([40.0, 40.0, -30.0], 15.0, 3)
    cc = tm.cell_centers
    rho = np.where(np.linalg.norm(cc - [40.0, 40.0, -30.0], axis=1) < 15.0, 0.4, 0.0)
    rho[::11] = np.nan  # some inactive cells, written as -99999
    tm.write_UBC(str(tmp_path / "oct.msh"))
    gio.write_ubc_model(tmp_path / "oct.den", tm, rho)
    loc = np.array([[40.0, 40.0, 1.0], [10.0, 60.0, 0.0], [75.0, 5.0, 3.0]])
    gio.write_csv(tmp_path / "st.csv", loc)
    assert main(["forward", str(tmp_path / "oct.msh"), str(tmp_path / "oct.den"), str(tmp_path / "st.csv"),
                 "-o", str(tmp_path / "out.csv"), "--device", "cpu"]) == 0
    pred = gio.read_csv(tmp_path / "out.csv").gz
    active = np.isfinite(rho)
    mesh2 = gio.read_ubc_mesh(tmp_path / "oct.msh")
    sv = Survey(loc).to_simpeg()
    sim = gravity.simulation.Simulation3DIntegral(
        mesh=mesh2, survey=sv, rhoMap=maps.IdentityMap(nP=int(active.sum())), active_cells=active,
        store_sensitivities="forward_only", engine="choclo")
    d_simpeg = sim.dpred(rho[active])
    assert np.all(pred > 0)
    np.testing.assert_allclose(pred, -d_simpeg, rtol=1e-8)


def test_bench_command_tiny(capsys):
    from gempy_gravinv.cli import main

    assert main(["bench", "--sizes", "tiny", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "ratio forward, SimPEG forward_only / ours compiled matrix-free" in out
    # the relative difference to SimPEG is printed and tiny
    import re

    diffs = [float(x) for x in re.findall(r"rel\. diff to SimPEG ([0-9.e+-]+)", out)]
    assert diffs and max(diffs) < 1e-10
    assert main(["bench", "--sizes", "nope"]) == 2


def test_invert_names_the_fallback_as_its_option(tmp_path, capsys):
    """With the fallback turned off (``--no-start-fallback``), a correlated-residual hint
    printed by ``invert`` names ``--start-fallback``, the option this command takes, not the
    Python keyword."""
    from gempy_gravinv.cases import synthetic

    case = synthetic.single_block(noise_seed=0)
    case.mesh.source.write_UBC(str(tmp_path / "mesh.msh"))
    gio.write_csv(tmp_path / "st.csv", case.survey)
    rc = main(["invert", str(tmp_path / "st.csv"), "--mesh", str(tmp_path / "mesh.msh"), "-o", str(tmp_path / "out"),
               "--max-steps", "5", "--bounds", "0", "400", "--no-start-fallback"])  # 5 steps: residuals correlated
    out = capsys.readouterr().out
    assert rc == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("residuals: "))
    assert "residuals correlated" in line and "--start-fallback" in line and "start_fallback=True" not in line
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["config"]["start_fallback"] is False


def test_invert_sets_the_prior_and_says_so(tmp_path, capsys):
    """``invert --prior smooth`` keeps the default's other scales, skips the test and says the user set it."""
    from gempy_gravinv.cases import synthetic

    case = synthetic.single_block(noise_seed=0)
    case.mesh.source.write_UBC(str(tmp_path / "mesh.msh"))
    gio.write_csv(tmp_path / "st.csv", case.survey)
    rc = main(["invert", str(tmp_path / "st.csv"), "--mesh", str(tmp_path / "mesh.msh"), "-o", str(tmp_path / "out"),
               "--prior", "smooth", "--no-figures", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("prior: "))
    assert "set by the user" in line
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["prior_selection"]["set_by"] == "user" and metrics["prior_selection"]["prior"] == "smooth"
    assert metrics["config"]["prior_from_data"] is False and metrics["config"]["depth_from"] == "station_surface"
    # no true model: the fit's keys all the same, the χ²/N of the stated std
    assert metrics["n_data"] == case.survey.n_data and metrics["pearson_r"] is None
    assert metrics["chi2_per_datum"] == pytest.approx(metrics["chi2_per_datum_recomputed"], rel=1e-3)
    assert 0.0 < metrics["rms_misfit_mgal"] < float(np.sqrt(np.mean(case.survey.gz ** 2)))
    with pytest.raises(SystemExit):  # not a choice
        main(["invert", str(tmp_path / "st.csv"), "--mesh", str(tmp_path / "mesh.msh"), "-o", str(tmp_path / "o2"),
              "--prior", "bodies"])


def test_forward_into_a_missing_folder_is_refused_before_the_computation(ubc_case, capsys):
    d = ubc_case["dir"]
    out = d / "no_such_folder" / "sub" / "g.csv"
    assert main(["forward", str(d / "mesh.msh"), str(d / "model.den"), str(d / "stations.csv"),
                 "-o", str(out), "--device", "cpu", "--reference-density", "2.67"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Errno" not in err and not out.parent.exists()


def test_forward_never_writes_over_its_inputs_and_replaces_its_output_only_when_told(ubc_case, capsys):
    d = ubc_case["dir"]
    args = ["forward", str(d / "mesh.msh"), str(d / "model.den"), str(d / "stations.csv"), "--device", "cpu",
            "--reference-density", "2.67"]
    before = {n: (d / n).read_bytes() for n in ("mesh.msh", "model.den", "stations.csv")}
    for name, role in (("stations.csv", "STATIONS"), ("model.den", "MODEL")):
        assert main([*args, "-o", str(d / name), "--overwrite"]) == 2
        assert f"is the {role} file this command reads" in capsys.readouterr().err
    assert {n: (d / n).read_bytes() for n in before} == before
    out = d / "g.csv"
    assert main([*args, "-o", str(out)]) == 0
    first = out.read_bytes()
    out.write_text("older predictions")
    assert main([*args, "-o", str(out)]) == 2
    assert "exists: pass --overwrite" in capsys.readouterr().err and out.read_text() == "older predictions"
    assert main([*args, "-o", str(out), "--overwrite"]) == 0 and out.read_bytes() == first


@pytest.mark.parametrize("argv, option, bad", [
    (["reproduce-paper", "--seed", "-1"], "--seed", "-1"),
    (["reproduce-paper", "--threads", "0"], "--threads", "0"),
    (["bayes", "--chains", "0"], "--chains", "0"),
    (["invert", "x.csv", "--checkpoint-every", "0"], "--checkpoint-every", "0"),
    (["demo", "--members", "two"], "--members", "'two'"),
])
def test_counts_and_seeds_are_refused_by_option_before_anything_runs(argv, option, bad, tmp_path, capsys):
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as ex:
        main([*argv, "-o", str(out)])
    assert ex.value.code == 2 and not out.exists()
    assert f"argument {option}: expected an integer >= " in (err := capsys.readouterr().err) and f"got {bad}" in err


def test_negative_comma_lists_and_the_view_resolution_are_read_with_the_command_line(capsys):
    from gempy_gravinv.cli import build_parser, joined_negative_lists

    argv = ["invert", "st.csv", "--mesh", "m.msh", "-o", "out", "--backend", "hybrid", "--unit-densities", "-300,0,250",
            "--depth-range", "-300,-100", "--bounds", "-600", "600"]
    args = build_parser().parse_args(joined_negative_lists(argv))
    assert args.unit_densities == "-300,0,250" and args.depth_range == "-300,-100" and args.bounds == [-600.0, 600.0]
    assert args.view_resolution == (40, 40, 20)
    with pytest.raises(SystemExit):  # argparse alone takes the list for an option
        build_parser().parse_args(argv)
    capsys.readouterr()
    with pytest.raises(SystemExit) as ex:
        main(["invert", "st.csv", "--mesh", "m.msh", "-o", "out", "--view-resolution", "8,8"])
    assert ex.value.code == 2 and "--view-resolution: NX,NY,NZ positive integers expected" in capsys.readouterr().err
