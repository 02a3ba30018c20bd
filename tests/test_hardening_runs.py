"""Runs, checkpoints, output folders and the command line under misuse and interruption.

Checkpoints load with weights_only=True and carry a data hash; damaged ones are named;
output folders are refused when not empty, overwritten only in this program's files and
locked during a run; devices are checked; Ctrl-C keeps the best state and resumes
exactly; file-name stems cannot leave the folder; debug tracebacks only when asked;
observed/predicted/residual data files lie beside the model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gempy_gravinv import PrismMesh, Survey
from gempy_gravinv._operator import DeviceUnavailableError, resolve_device
from gempy_gravinv.cases.synthetic import single_block
from gempy_gravinv.cli import main
from gempy_gravinv.inversion import INRConfig, InversionInterrupted, invert_inr
from gempy_gravinv.output import load_netcdf, prepare_run_folder, save_figures, save_inversion
from gempy_gravinv.output._folder import LOCK_NAME

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(width=16, depth=2, progress=False, net_dtype="float64", weighting="none", lr=0.01,
            encoding_options={"n_frequencies": 2})
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def case():
    return single_block(noise_seed=1, shape=(6, 6, 3))


@pytest.fixture
def files(case, tmp_path):
    """Stations CSV, UBC mesh and a fast config file for the CLI."""
    from gempy_gravinv import io as gio

    csv = gio.write_csv(tmp_path / "stations.csv", case.survey)
    mesh = tmp_path / "mesh.msh"
    case.mesh.source.write_UBC(str(mesh))
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({**FAST, "max_steps": 40, "early_stopping": False}))
    return csv, mesh, cfg


def _invert_args(files, out, *extra):
    csv, mesh, cfg = files
    return ["invert", str(csv), "--mesh", str(mesh), "--config", str(cfg), "-o", str(out), "--no-figures",
            "--no-progress", *extra]


def _cli(*args, env_extra=None, timeout=180):
    env = dict(os.environ)
    env.pop("GEMPY_GRAVINV_DEBUG", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "gempy_gravinv", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


def _one_clear_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    return lines[0]


class _RunsCode:
    """A pickled object that would create ``marker`` when unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _interrupt_at(monkeypatch, n: int, *, use_signal: bool = False, hook=None):
    """Raise KeyboardInterrupt (or send SIGINT) from inside the n-th optimiser step."""
    orig = torch.optim.Adam.step
    calls = {"n": 0}

    def step(self, *a, **k):
        calls["n"] += 1
        if hook is not None:
            hook(calls["n"])
        if calls["n"] == n:
            if use_signal:  # a real Ctrl-C: the step finishes, the loop stops after it
                signal.raise_signal(signal.SIGINT)
            else:  # raised by code before the update: the step is undone
                raise KeyboardInterrupt
        return orig(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    return calls


# ---------------------------------------------------------------------------- checkpoints
def test_checkpoint_holds_plain_values_and_refuses_pickled_code(case, tmp_path):
    cfg = INRConfig(**FAST, max_steps=30, early_stopping=False, batch_size=10)
    ck = tmp_path / "run.pt"
    invert_inr(case.survey, case.mesh, cfg, checkpoint=ck, stop_after=7)
    saved = torch.load(ck, weights_only=True)  # loads with the safe unpickler
    assert saved["version"] == 2 and isinstance(saved["rng"]["numpy"]["keys"], torch.Tensor)
    assert len(saved["data_key"]) == 64
    marker = tmp_path / "code_ran"
    for kind in ("torch", "pickle"):
        bad = tmp_path / f"evil_{kind}.pt"
        payload = {**saved, "evil": _RunsCode(str(marker))}
        if kind == "torch":
            torch.save(payload, bad)
        else:
            bad.write_bytes(pickle.dumps(payload, protocol=2))
        with pytest.raises(ValueError, match=r"evil_.*\.pt.*other than tensors.*not loaded.*start fresh"):
            invert_inr(case.survey, case.mesh, cfg, checkpoint=bad, resume=True)
        assert not marker.exists(), "unpickling ran code"
    # an old-format checkpoint (NumPy RNG state pickled as an ndarray tuple): refused, clearly
    old = tmp_path / "old.pt"
    torch.save({**saved, "version": 1, "rng": {**saved["rng"], "numpy": np.random.get_state()}}, old)
    with pytest.raises(ValueError, match="old-format checkpoint.*start fresh"):
        invert_inr(case.survey, case.mesh, cfg, checkpoint=old, resume=True)


def test_resume_is_refused_for_other_data_stations_or_mesh(case, tmp_path):
    cfg = INRConfig(**FAST, max_steps=30, early_stopping=False)
    ck = tmp_path / "ck"
    invert_inr(case.survey, case.mesh, cfg, checkpoint=ck, stop_after=5)
    s = case.survey
    others = {
        "gz": Survey(s.locations, gz=s.gz + 1e-3, std=s.std),
        "std": Survey(s.locations, gz=s.gz, std=s.std * 1.01),
        "stations": Survey(s.locations + [1.0, 0.0, 0.0], gz=s.gz, std=s.std),
    }
    for other in others.values():
        with pytest.raises(ValueError, match="other data"):
            invert_inr(other, case.mesh, cfg, checkpoint=ck, resume=True)
    moved = PrismMesh(case.mesh.bounds + np.array([1.0, 1.0, 0.0, 0.0, 0.0, 0.0]))  # same cells, 1 m east
    with pytest.raises(ValueError, match="other data"):
        invert_inr(case.survey, moved, cfg, checkpoint=ck, resume=True)
    # the same data resumes
    assert invert_inr(case.survey, case.mesh, cfg, checkpoint=ck, resume=True).completed


def test_damaged_checkpoint_is_named_with_how_to_start_fresh(case, files, tmp_path, capsys):
    cfg = INRConfig(**FAST, max_steps=20, early_stopping=False)
    good = tmp_path / "good.pt"
    invert_inr(case.survey, case.mesh, cfg, checkpoint=good, stop_after=3)
    raw = good.read_bytes()
    rng = np.random.default_rng(0)
    for name, data in (("truncated.pt", raw[: len(raw) // 2]), ("empty.pt", b""),
                       ("random.pt", rng.integers(0, 256, 4000).astype(np.uint8).tobytes())):
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(ValueError, match=rf"{name}.*damaged.*delete it.*without resume"):
            invert_inr(case.survey, case.mesh, cfg, checkpoint=p, resume=True)
    # bytes changed inside a tensor's record: torch would load them; the record's checksum names the damage
    import zipfile

    with zipfile.ZipFile(good) as z:
        rec = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    start = rec.header_offset + 30 + len(rec.filename.encode()) + int.from_bytes(
        raw[rec.header_offset + 28: rec.header_offset + 30], "little")  # the local header's extra field
    flipped = bytearray(raw)
    for i in range(start + rec.file_size // 2, start + rec.file_size // 2 + 8):
        flipped[i] ^= 0xFF
    p = tmp_path / "flipped.pt"
    p.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match=rf"flipped.pt is damaged \(its record .*{rec.filename.split('/')[-1]} fails"):
        invert_inr(case.survey, case.mesh, cfg, checkpoint=p, resume=True)
    # through the CLI: one line naming the file, exit status 2
    out = tmp_path / "run"
    (out / "checkpoint").mkdir(parents=True)
    (out / "checkpoint" / "inr_member0.pt").write_bytes(raw[:100])
    assert main(_invert_args(files, out, "--resume")) == 2
    line = _one_clear_line(capsys.readouterr().err)
    assert "inr_member0.pt" in line and "--resume" in line


# ---------------------------------------------------------------------------- output folders
def test_non_empty_folder_is_refused_in_a_subprocess(files, tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    r = _cli(*_invert_args(files, out))
    assert r.returncode == 2
    line = _one_clear_line(r.stderr)
    assert "not empty" in line and "--overwrite" in line
    assert (out / "notes.txt").read_text() == "mine" and not (out / "metrics.json").exists()
    # -o naming an existing file
    f = tmp_path / "afile"
    f.write_text("x")
    assert main(_invert_args(files, f)) == 2
    assert "is an existing file" in _one_clear_line(capsys.readouterr().err)
    assert f.read_text() == "x"


@pytest.mark.parametrize("argv", [
    ["demo", "--quick", "--no-figures", "--no-progress"],
    ["compare", "--case", "dipping_block", "--quick", "--no-figures"],
    ["reproduce-paper", "--quick", "--no-figures"],
])
def test_every_folder_command_refuses_a_non_empty_folder(argv, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert main([*argv, "-o", str(out)]) == 2
    assert "not empty" in _one_clear_line(capsys.readouterr().err)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_bayes_refuses_a_non_empty_folder(tmp_path, capsys):
    out = tmp_path / "b"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    rc = main(["bayes", "--case", "tharsis-intrusion", "--subset", "4", "--samples", "2", "--warmup", "1",
               "--chains", "1", "--no-figures", "--no-progress", "-o", str(out)])
    assert rc == 2
    assert "not empty" in capsys.readouterr().err.strip().splitlines()[-1]
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_overwrite_removes_only_this_programs_files(files, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_invert_args(files, out)) == 0
    (out / "notes.txt").write_text("mine")
    (out / "inr_convergence.png").write_bytes(b"old figure")  # ours, not rewritten with --no-figures
    (out / "data").mkdir()
    (out / "data" / "inr_model.nc").write_text("not in our layout")
    assert main(_invert_args(files, out)) == 2  # not empty
    assert main(_invert_args(files, out, "--overwrite", "--resume")) == 2
    assert "not both" in capsys.readouterr().err
    assert main(_invert_args(files, out, "--overwrite")) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "data" / "inr_model.nc").exists()
    assert not (out / "inr_convergence.png").exists()
    assert (out / "metrics.json").exists() and (out / "checkpoint" / "inr_member0.pt").exists()
    assert not (out / LOCK_NAME).exists()


def test_a_failed_overwrite_puts_the_earlier_run_back(files, tmp_path, monkeypatch, capsys):
    from gempy_gravinv.output._folder import ASIDE_NAME

    out = tmp_path / "run"
    assert main(_invert_args(files, out)) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def fail(n):  # a failure after the folder was prepared, before this run wrote anything
        raise ValueError("late failure")

    _interrupt_at(monkeypatch, -1, hook=fail)
    assert main(_invert_args(files, out, "--overwrite")) == 2
    assert "late failure" in capsys.readouterr().err
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    monkeypatch.undo()
    # interrupted after writing its own checkpoint: both runs' files are kept, the earlier one's aside
    _interrupt_at(monkeypatch, 12)
    assert main(_invert_args(files, out, "--overwrite", "--checkpoint-every", "5")) == 130
    monkeypatch.undo()
    assert (out / "checkpoint" / "inr_member0.pt").exists()
    kept = {p.relative_to(out / ASIDE_NAME): p.read_bytes() for p in (out / ASIDE_NAME).rglob("*") if p.is_file()}
    assert kept == before
    assert main(_invert_args(files, out, "--overwrite")) == 2  # the kept files are not overwritten silently
    assert ASIDE_NAME in capsys.readouterr().err.strip().splitlines()[-1]
    assert main(_invert_args(files, out, "--resume")) == 0  # the interrupted run resumes beside them
    assert {p.relative_to(out / ASIDE_NAME): p.read_bytes() for p in (out / ASIDE_NAME).rglob("*")
            if p.is_file()} == before
    assert not (out / LOCK_NAME).exists()


def test_unwritable_output_is_refused_before_work(files, tmp_path, monkeypatch, capsys):
    import gempy_gravinv.output._folder as folder_mod

    real_open = open

    def read_only(path, *a, **k):  # the write probe fails as on a read-only folder
        if ".gempy_gravinv.probe" in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(folder_mod, "open", read_only, raising=False)
    assert main(_invert_args(files, tmp_path / "ro")) == 2
    assert "not writable" in _one_clear_line(capsys.readouterr().err)
    monkeypatch.undo()
    under_file = tmp_path / "afile"
    under_file.write_text("x")
    assert main(_invert_args(files, under_file / "sub")) == 2
    assert "is a file" in _one_clear_line(capsys.readouterr().err)
    if os.geteuid() != 0:  # root writes into read-only folders
        ro = tmp_path / "readonly"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            r = _cli(*_invert_args(files, ro))
            assert r.returncode == 2 and "not writable" in _one_clear_line(r.stderr)
        finally:
            ro.chmod(0o700)


def test_folder_is_locked_during_a_run_and_stale_locks_are_taken_over(files, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    seen = {}

    def during(n):
        if n == 3:
            seen["lock"] = (out / LOCK_NAME).read_text().split()[0]
            seen["second"] = main(_invert_args(files, out, "--overwrite"))

    _interrupt_at(monkeypatch, -1, hook=during)
    assert main(_invert_args(files, out)) == 0
    assert seen["lock"] == str(os.getpid())
    assert seen["second"] == 2 and "in use by another gempy-gravinv run" in capsys.readouterr().err
    assert not (out / LOCK_NAME).exists()
    # a lock held by a live process refuses; one whose process is gone is taken over
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / LOCK_NAME).write_text(f"{live.pid}\n")
        r = _cli(*_invert_args(files, out, "--overwrite"))
        assert r.returncode == 2 and f"PID {live.pid}" in _one_clear_line(r.stderr)
    finally:
        live.kill()
        live.wait()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / LOCK_NAME).write_text(dead.stdout)
    assert main(_invert_args(files, out, "--overwrite")) == 0
    assert not (out / LOCK_NAME).exists()
    # the API: a held folder refuses a second holder
    with prepare_run_folder(tmp_path / "api") as held:
        assert (held.path / LOCK_NAME).exists()
        with pytest.raises(ValueError, match="in use"):
            prepare_run_folder(tmp_path / "api")
    assert not (tmp_path / "api").exists()  # created by the run and left empty: removed


def test_forward_refuses_a_folder_as_output(tmp_path, capsys):
    from gempy_gravinv import io as gio

    c = single_block(noise_seed=1, shape=(6, 6, 3))
    c.mesh.source.write_UBC(str(tmp_path / "m.msh"))
    gio.write_ubc_model(tmp_path / "m.den", c.mesh.source, c.model / 1000.0)
    gio.write_csv(tmp_path / "s.csv", c.survey.locations)
    assert main(["forward", str(tmp_path / "m.msh"), str(tmp_path / "m.den"), str(tmp_path / "s.csv"),
                 "-o", str(tmp_path), "--device", "cpu"]) == 2
    assert "is a folder" in _one_clear_line(capsys.readouterr().err)


# ---------------------------------------------------------------------------- devices
def test_unknown_or_absent_devices_are_clear_errors(case, files, tmp_path, capsys):
    with pytest.raises(ValueError, match="PyTorch calls GPUs 'cuda'"):
        resolve_device("gpu")
    with pytest.raises(ValueError, match="unknown device"):
        invert_inr(case.survey, case.mesh, INRConfig(**FAST, max_steps=2, device="gpu"))
    with pytest.raises(ValueError, match="not supported"):
        resolve_device("meta")
    assert resolve_device("cpu").type == "cpu" and resolve_device("auto").type in ("cpu", "cuda")
    bad = ["gpu", "banana"] + ([] if torch.cuda.is_available() else ["cuda", "cuda:1"])
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailableError, match="CUDA is not available"):
            resolve_device("cuda")
        with pytest.raises(RuntimeError):  # still a RuntimeError for code that caught that
            resolve_device("cuda:0")
    for dev in bad:
        for argv in (_invert_args(files, tmp_path / "d"), ["demo", "--quick", "-o", str(tmp_path / "d")],
                     ["compare", "--case", "dipping_block", "--quick", "-o", str(tmp_path / "d")]):
            assert main([*argv, "--device", dev]) == 2, (argv[0], dev)
            assert f"--device {dev!r}" in _one_clear_line(capsys.readouterr().err)
    assert not (tmp_path / "d").exists()  # refused before any work
    r = _cli("demo", "--quick", "-o", tmp_path / "d", "--device", "gpu")
    assert r.returncode == 2 and "'cuda'" in _one_clear_line(r.stderr)


# ---------------------------------------------------------------------------- Ctrl-C
def _without_time(history: dict) -> dict:
    return {k: v for k, v in history.items() if k != "time"}  # wall-clock seconds differ between runs


@pytest.fixture
def python_sigint():
    """Python's own Ctrl-C handler for the test (a job started in the background inherits SIGINT ignored)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize("use_signal", [False, True], ids=["raised-in-step", "sigint"])
def test_interrupt_keeps_the_best_state_and_resumes_exactly(case, tmp_path, monkeypatch, use_signal, python_sigint):
    cfg = INRConfig(**FAST, max_steps=40, early_stopping=False, batch_size=10, lr_schedule="cosine")
    full = invert_inr(case.survey, case.mesh, cfg)
    ck = tmp_path / "ck"
    with monkeypatch.context() as mp:
        _interrupt_at(mp, 12, use_signal=use_signal)
        with pytest.raises(InversionInterrupted) as info:
            invert_inr(case.survey, case.mesh, cfg, checkpoint=ck)
    res = info.value.result
    assert isinstance(info.value, KeyboardInterrupt)
    assert res.completed is False and res.stop_reason == "interrupted"
    assert res.timings["steps"] == (12 if use_signal else 11) and np.isfinite(res.model).all()
    assert (ck / "inr_member0.pt").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    rest = invert_inr(case.survey, case.mesh, cfg, checkpoint=ck, resume=True)
    assert rest.completed and rest.stop_reason == full.stop_reason
    np.testing.assert_array_equal(rest.model, full.model)
    assert _without_time(rest.history) == _without_time(full.history)


def test_interrupt_in_an_ensemble_keeps_the_trained_members(case, tmp_path, monkeypatch):
    cfg = INRConfig(**FAST, max_steps=10, early_stopping=False, n_members=3)
    _interrupt_at(monkeypatch, 15)  # in member 2 of 3
    with pytest.raises(InversionInterrupted) as info:
        invert_inr(case.survey, case.mesh, cfg, checkpoint=tmp_path / "ck")
    res = info.value.result
    assert res.members.shape[0] == 2 and not res.completed and res.stop_reason == "interrupted"


def test_cli_interrupt_writes_the_state_exits_130_and_resumes(files, tmp_path, monkeypatch, capsys):
    ref = tmp_path / "ref"
    assert main(_invert_args(files, ref)) == 0
    out = tmp_path / "run"
    with monkeypatch.context() as mp:
        _interrupt_at(mp, 9)
        assert main(_invert_args(files, out)) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("gempy-gravinv invert: interrupted") and line.endswith("--resume")
    assert str(out) in line
    m = json.loads((out / "metrics.json").read_text())
    assert m["stop_reason"] == "interrupted"
    assert (out / "inr_model.nc").exists() and not (out / LOCK_NAME).exists()
    assert main(_invert_args(files, out)) == 2  # a checkpoint is there: --resume or --overwrite
    assert "--resume" in capsys.readouterr().err
    assert main(_invert_args(files, out, "--resume")) == 0
    np.testing.assert_array_equal(load_netcdf(out / "inr_model.nc")["model"],
                                  load_netcdf(ref / "inr_model.nc")["model"])


# ---------------------------------------------------------------------------- names, debug, data
@pytest.fixture(scope="module")
def small_result(case):
    return invert_inr(case.survey, case.mesh, INRConfig(**FAST, max_steps=15), true_model=case.model)


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "", "a\\b", ".hidden", "c:x"])
def test_names_cannot_write_outside_the_folder(small_result, tmp_path, name):
    d = tmp_path / "deep" / "er"
    with pytest.raises(ValueError, match="plain file-name stem"):
        save_inversion(small_result, d, name=name, figures=False)
    with pytest.raises(ValueError, match="plain file-name stem"):
        save_figures(d, name, [])
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_results_saved_under_two_names_in_one_folder_keep_their_own_metrics(small_result, tmp_path):
    a = save_inversion(small_result, tmp_path, name="inr", figures=False)
    other = dataclasses.replace(small_result, chi2=small_result.chi2 + 1.0)
    b = save_inversion(other, tmp_path, name="second", figures=False)
    assert Path(a["metrics"]).name == "metrics.json" and Path(b["metrics"]).name == "second_metrics.json"
    assert Path(b["history"]).name == "second_history.json"
    first, second = (json.loads(Path(w["metrics"]).read_text()) for w in (a, b))
    assert first["chi2_per_datum_recomputed"] == pytest.approx(small_result.chi2)
    assert second["chi2_per_datum_recomputed"] == pytest.approx(small_result.chi2 + 1.0)


@pytest.mark.parametrize("value, traceback", [("0", False), ("", False), ("false", False), ("no", False),
                                              ("1", True), ("yes", True)])
def test_debug_tracebacks_only_when_asked(tmp_path, monkeypatch, value, traceback):
    monkeypatch.setenv("GEMPY_GRAVINV_DEBUG", value)
    argv = ["forward", str(tmp_path / "none.msh"), str(tmp_path / "none.den"), str(tmp_path / "none.csv"),
            "-o", str(tmp_path / "o.csv"), "--device", "cpu"]
    if traceback:
        with pytest.raises(FileNotFoundError):
            main(argv)
    else:
        assert main(argv) == 2


def test_debug_zero_shows_no_traceback_in_a_subprocess(tmp_path):
    r = _cli("forward", tmp_path / "none.msh", tmp_path / "none.den", tmp_path / "none.csv", "-o",
             tmp_path / "o.csv", env_extra={"GEMPY_GRAVINV_DEBUG": "0"})
    assert r.returncode == 2
    _one_clear_line(r.stderr)


def test_predicted_and_residual_data_files(small_result, case, tmp_path):
    written = save_inversion(small_result, tmp_path, figures=False)
    csv, nc = Path(written["data_csv"]), Path(written["data_netcdf"])
    assert csv.name == "inr_data.csv" and nc.name == "inr_data.nc"
    lines = csv.read_text().splitlines()
    assert lines[0].startswith("#") and "mGal" in lines[0] and "positive downward" in lines[0]
    assert lines[1] == "x,y,z,observed,std,predicted,residual"
    table = np.loadtxt(csv, delimiter=",", comments="#", skiprows=2)
    s = case.survey
    np.testing.assert_allclose(table[:, :3], s.locations, rtol=1e-9)
    np.testing.assert_allclose(table[:, 3], s.gz, rtol=1e-9)
    np.testing.assert_allclose(table[:, 4], s.std, rtol=1e-9)
    np.testing.assert_allclose(table[:, 5], small_result.predicted, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(table[:, 6], s.gz - small_result.predicted, rtol=1e-8, atol=1e-10)
    import xarray as xr

    with xr.open_dataset(nc, engine="h5netcdf") as ds:
        for v in ("observed", "std", "predicted", "residual"):
            assert ds[v].attrs["units"] == "mGal" and ds[v].dims == ("station",)
        np.testing.assert_array_equal(ds["predicted"].values, small_result.predicted)
        np.testing.assert_array_equal(ds["residual"].values, s.gz - small_result.predicted)
        assert ds["z"].attrs["units"] == "m"


def test_an_interrupted_run_counts_only_the_outputs_it_wrote(files, tmp_path, monkeypatch, capsys):
    import gempy_gravinv.output._inversion as inv_out

    def no_netcdf(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(inv_out, "save_netcdf", no_netcdf)
    _interrupt_at(monkeypatch, 12)
    assert main(_invert_args(files, tmp_path / "run", "--checkpoint-every", "5")) == 130
    err = capsys.readouterr().err
    assert "(1 could not be written: netcdf)" in err
    assert "error: could not write the model NetCDF (inr_model.nc)" in err and "No space left" in err


def test_an_empty_checkpoint_folder_is_no_checkpoint(tmp_path, caplog):
    """A run stopped before its first checkpoint: no "holds a checkpoint" hint, a resume says it starts over."""
    import logging

    out = tmp_path / "run"
    (out / "checkpoint").mkdir(parents=True)
    (out / "model.nc").write_text("x")
    with pytest.raises(ValueError, match="pass --overwrite to replace the files") as err:
        prepare_run_folder(out)
    assert "holds a checkpoint" not in str(err.value)
    with caplog.at_level(logging.WARNING, logger="gempy_gravinv.output._folder"):
        prepare_run_folder(out, resume=True).release(ok=False)
    assert "holds no checkpoint" in caplog.text and "starts from the beginning" in caplog.text
    assert not (out / "checkpoint").exists()  # the empty folder is gone on release
    (out / "checkpoint").mkdir()
    (out / "checkpoint" / "inr_member0.pt").write_bytes(b"0")
    with pytest.raises(ValueError, match="it holds a checkpoint: pass --resume"):
        prepare_run_folder(out)


def test_a_run_of_many_hours_is_warned_about_after_its_first_step(caplog):
    import logging

    from gempy_gravinv.inversion._trainer import _warn_if_slow

    with caplog.at_level(logging.WARNING, logger="gempy_gravinv.inversion._trainer"):
        _warn_if_slow(0.1, 2000, "INR")  # 200 s: nothing said
        assert not caplog.text
        _warn_if_slow(256.6, 1999, "INR")
    assert "the first step took 257 s; the 1999 steps left would take about 142.5 h" in caplog.text


def test_a_first_ctrl_c_in_training_is_acknowledged_at_once(capfd):
    import os
    import signal

    from gempy_gravinv.inversion._trainer import DeferredInterrupt

    with DeferredInterrupt() as sigint:
        os.kill(os.getpid(), signal.SIGINT)
        assert sigint.requested  # deferred: no KeyboardInterrupt yet
    assert "Ctrl-C: stopping after the current step" in capfd.readouterr().err
