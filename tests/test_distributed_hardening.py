"""Several ranks that do not agree: other inputs, a rank that fails early, a fitted regional, the logs.

2 gloo ranks spawned by the test (as in ``test_distributed.py``) run inversions with a
regional fitted to their split stations, and inversions whose ranks hold other data or
settings; the ``invert`` command runs as two ``srun``-style processes where one cannot
read its stations. Each run is compared with one process or with the refusal it must
give on every rank.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from test_distributed import RTOL, _case, _cfg, _free_port, _relerr, _tilted, _write_cli_inputs

from gempy_gravinv import PrismMesh, Survey
from gempy_gravinv._distributed import init_distributed, shutdown_distributed, split_counts
from gempy_gravinv.inversion import INRConfig, invert_inr

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: The default's compact branch (least-squares start, regional choice, minimum-support training), trained
AUTO_TRAINED = {**{k: v for k, v in INRConfig.auto(max_steps=30, warm_start_steps=10, dtype="float64").to_dict().items()
                   if k not in ("progress", "num_threads", "seed")}, "prior_from_data": False}
REGIONAL_RUNS = {"plane": dict(regional="plane", max_steps=30),
                 "plane_batch": dict(regional="plane", batch_size=16, max_steps=30),
                 "auto_trained": AUTO_TRAINED}


class _Records(logging.Handler):
    """The messages of the records that reach it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _refusal(fn) -> str | None:
    """The message of the ValueError ``fn()`` raises, None if it returns."""
    try:
        fn()
    except ValueError as exc:
        return str(exc)
    return None


def _rank_job(rank: int) -> dict:
    mesh, survey, _ = _case()
    out: dict = {}
    for name, over in REGIONAL_RUNS.items():
        res = invert_inr(_tilted(survey), mesh, _cfg(**over))
        out[name] = (res.model, res.regional, res.regional_selection)
    # the kept model of 5 steps ends far above the target: a warning every rank would log
    out["warned"] = list(_HANDLER.messages)
    _HANDLER.messages.clear()
    invert_inr(survey, mesh, _cfg(max_steps=5))
    out["warned_short_run"] = [m for m in _HANDLER.messages if "above the target misfit" in m]
    doubled = Survey(survey.locations, gz=survey.gz * (2.0 if rank == 1 else 1.0), std=survey.std)
    out["other_data"] = _refusal(lambda: invert_inr(doubled, mesh, _cfg(max_steps=5)))
    shifted = PrismMesh.from_tensor([50.0] * 8, [50.0] * 8, [50.0] * 4, origin=(float(rank), 0.0, -200.0))
    out["other_mesh"] = _refusal(lambda: invert_inr(survey, shifted, _cfg(max_steps=5)))
    out["other_settings"] = _refusal(lambda: invert_inr(survey, mesh, _cfg(max_steps=5 + rank)))
    # last: without an agreement the ranks would go on out of step. Rank 1's survey has no std.
    nostd = survey if rank == 0 else Survey(survey.locations, gz=survey.gz)
    out["no_std_on_one_rank"] = _refusal(lambda: invert_inr(nostd, mesh, _cfg(max_steps=5)))
    # a Python warning every rank gives: shown by rank 0 alone
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.warn("every rank warns this", UserWarning, stacklevel=1)
    out["python_warnings_shown"] = [str(w.message) for w in seen]
    return out


_HANDLER = _Records()


def _worker(local_rank: int, world: int, port: int, tmp: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(local_rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(local_rank), LOCAL_WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    pkg = logging.getLogger("gempy_gravinv")
    pkg.setLevel(logging.INFO)
    pkg.addHandler(_HANDLER)  # present when the group starts, as the command line's handler is
    env = init_distributed("cpu", timeout_s=60)
    out = _rank_job(env.rank)
    torch.save(out, os.path.join(tmp, f"rank{env.rank}.pt"))
    shutdown_distributed(wait=False)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Rank 0's and rank 1's results of :func:`_rank_job`."""
    for attempt in range(2):  # a second, fresh attempt if the first fails (e.g. its free port was taken)
        tmp = tmp_path_factory.mktemp(f"hard{attempt}")
        ctx = mp.start_processes(_worker, args=(2, _free_port(), str(tmp)), nprocs=2, join=False,
                                 start_method="spawn")
        deadline = time.monotonic() + 240.0
        try:
            while not ctx.join(timeout=1.0):
                if time.monotonic() > deadline:
                    for p in ctx.processes:
                        p.kill()
                    pytest.fail("the 2 spawned ranks did not finish within 240 s (a hang)")
            break
        except (mp.ProcessRaisedException, mp.ProcessExitedException):
            if attempt == 1:
                raise
    return [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(2)]


# ---------------------------------------------------------------------------------- a regional on split stations
@pytest.mark.parametrize("name", list(REGIONAL_RUNS))
def test_a_regional_fitted_on_two_ranks_equals_one_process(two_ranks, name):
    mesh, survey, _ = _case()
    one = invert_inr(_tilted(survey), mesh, _cfg(**REGIONAL_RUNS[name]))
    assert one.regional["kind"] == "plane"
    for res in two_ranks:
        model, regional, selection = res[name]
        assert _relerr(model, one.model) < RTOL
        assert regional["kind"] == "plane"
        assert _relerr(regional["coefficients"], one.regional["coefficients"]) < 1e-8
        if name == "auto_trained":  # the same choice as one process, said the same way
            assert selection["kind"] == "plane" and selection["rule"] == one.regional_selection["rule"]
    assert np.abs(one.model).max() > 1.0


# ---------------------------------------------------------------------------------- ranks that disagree
def test_ranks_reading_other_data_are_refused_on_every_rank(two_ranks):
    for res in two_ranks:
        said = res["other_data"]
        assert said is not None and "rank(s) [1]" in said and "data" in said
        assert "rank 1: data differ" in said and "shared file system" in said


def test_ranks_with_another_mesh_or_other_settings_are_refused_on_every_rank(two_ranks):
    for res in two_ranks:
        assert res["other_mesh"] is not None and "rank 1: mesh" in res["other_mesh"]
        assert res["other_settings"] is not None and "rank 1: settings differ" in res["other_settings"]


def test_a_rank_whose_data_fail_their_check_fails_every_rank(two_ranks):
    r0, r1 = two_ranks
    assert "uncertainties" in r1["no_std_on_one_rank"]  # its own error
    assert "failed on rank(s) [1]" in r0["no_std_on_one_rank"] and "uncertainties" in r0["no_std_on_one_rank"]


def test_warnings_every_rank_would_log_are_shown_by_rank_0_alone(two_ranks):
    r0, r1 = two_ranks
    assert len(r0["warned_short_run"]) >= 1
    assert r1["warned_short_run"] == []
    assert any("process group: rank 0 of 2" in m for m in r0["warned"])
    assert r1["warned"] == []  # the regional runs' choices and warnings: said once, by rank 0
    assert r0["python_warnings_shown"] == ["every rank warns this"] and r1["python_warnings_shown"] == []


# ---------------------------------------------------------------------------------- joining
def test_a_rank_that_never_joins_fails_the_others_within_the_join_timeout(monkeypatch):
    port = _free_port()
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("TORCHELASTIC_USE_AGENT_STORE", raising=False)
    for rank, who in ((0, "not every rank joined"), (1, "rank 0 did not open the rendezvous")):
        monkeypatch.setenv("RANK", str(rank))
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match=who) as err:
            init_distributed("cpu", join_timeout_s=2.0)
        assert time.monotonic() - t0 < 30.0
        assert f"127.0.0.1:{port}" in str(err.value) and "GEMPY_GRAVINV_JOIN_TIMEOUT" in str(err.value)
    monkeypatch.setenv("GEMPY_GRAVINV_JOIN_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="GEMPY_GRAVINV_JOIN_TIMEOUT"):
        init_distributed("cpu")


def test_a_world_size_without_rank_names_rank(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    monkeypatch.setenv("GEMPY_GRAVINV_JOIN_TIMEOUT", "2")  # joining as rank 0 would wait that long
    with pytest.raises(ValueError, match=r"RANK not set.*export RANK \(this process's rank, 0 \.\.\. 1\)"):
        init_distributed("cpu")


def test_cells_split_over_too_many_ranks_say_cells():
    with pytest.raises(ValueError, match="^2 cells cannot be split over 3 ranks .* at least one cell"):
        split_counts(2, 3, noun="cells")
    with pytest.raises(ValueError, match="^2 stations cannot be split"):
        split_counts(2, 3)


def test_invert_fails_promptly_on_every_rank_where_one_cannot_read_its_stations(tmp_path):
    """Two ``srun``-style processes (RANK / WORLD_SIZE / MASTER_*): rank 1 has no stations file."""
    mesh, survey, _ = _case()
    ranks = [tmp_path / "rank0", tmp_path / "rank1"]
    for d in ranks:
        d.mkdir()
    _write_cli_inputs(ranks[0], mesh, survey)
    (ranks[1] / "mesh.msh").write_bytes((ranks[0] / "mesh.msh").read_bytes())
    (ranks[1] / "cfg.json").write_bytes((ranks[0] / "cfg.json").read_bytes())
    port = str(_free_port())
    cmd = [sys.executable, "-m", "gempy_gravinv", "invert", "stations.csv", "--mesh", "mesh.msh", "--config",
           "cfg.json", "-o", str(tmp_path / "out"), "--no-figures", "--no-progress"]
    procs = [subprocess.Popen(cmd, cwd=d, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
                                   "MASTER_PORT": port, "WORLD_SIZE": "2", "RANK": str(r), "LOCAL_RANK": str(r)})
             for r, d in enumerate(ranks)]
    t0 = time.monotonic()
    try:
        ends = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert time.monotonic() - t0 < 120
    assert [p.returncode for p in procs] == [2, 2]
    assert "no such file: stations.csv" in ends[1][1]
    assert "reading the inputs failed on rank(s) [1]" in ends[0][1] and "stations.csv" in ends[0][1]


# ---------------------------------------------------------------------------------- outputs that fail
def test_invert_exits_1_and_counts_only_written_outputs_when_the_model_file_fails(tmp_path):
    mesh, survey, _ = _case()
    _write_cli_inputs(tmp_path, mesh, survey)
    out = tmp_path / "out"
    (out / "inr_model.nc").mkdir(parents=True)  # the model NetCDF cannot be written over a folder
    argv = ["invert", str(tmp_path / "stations.csv"), "--mesh", str(tmp_path / "mesh.msh"), "--config",
            str(tmp_path / "cfg.json"), "-o", str(out), "--no-figures", "--no-progress", "--resume"]
    proc = subprocess.run([sys.executable, "-m", "gempy_gravinv", *argv], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "wrote 6 outputs" in proc.stdout and "1 could not be written: netcdf" in proc.stdout
    assert "error: could not write the model NetCDF (inr_model.nc)" in proc.stderr
    assert (out / "inr_model.den").is_file()  # the other outputs are still written


def test_demo_exits_1_when_the_data_csv_fails(tmp_path, monkeypatch, capsys):
    from types import SimpleNamespace

    import gempy_gravinv.inversion as inversion
    import gempy_gravinv.output as output
    from gempy_gravinv.cli import main

    metrics = dict(rms_error_kgm3=1.0, pearson_r=0.5, floor_zero_kgm3=2.0)
    res = SimpleNamespace(metrics=metrics, chi2=1.0, timings=dict(train=0.1, steps=3), stop_reason="done",
                          best_step=3)
    monkeypatch.setattr(inversion, "invert_inr", lambda *a, **k: res)
    monkeypatch.setattr(output, "save_inversion", lambda *a, **k: {"netcdf": "a.nc", "ubc": "a.den",
                                                                   "data_csv": "failed: disk full",
                                                                   "metrics": "metrics.json"})
    assert main(["demo", "--quick", "--no-progress", "-o", str(tmp_path / "demo")]) == 1
    said = capsys.readouterr()
    assert "wrote 3 outputs" in said.out and "1 could not be written: data_csv" in said.out
    assert "error: could not write the data CSV (inr_data.csv): disk full" in said.err
