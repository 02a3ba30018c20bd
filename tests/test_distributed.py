"""Scale-out with torch.distributed: 2 gloo ranks spawned by the test equal 1 process.

The spawned ranks run the station-sharded operator (forward, adjoint, jtj, an unequal
split), INR inversions (50 steps; stop + resume; an unequal split; least-squares start,
sensitivity weighting and mini-batches; the closed-form head) and the ``invert`` CLI,
then save what they got; this process computes the same in one process and compares to
1e-10 relative in float64 (the only difference is the order of the sums).
"""

from __future__ import annotations

import json
import os
import socket
import time

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from gempy_gravinv import GravityOperator, PrismMesh, Survey
from gempy_gravinv._distributed import (
    ShardedGravityOperator,
    check_rank_memory,
    env_info,
    estimate_rank_memory,
    init_distributed,
    split_counts,
)
from gempy_gravinv.inversion import INRConfig, invert_inr

RTOL = 1e-10
COUNTS = [7, 33]  # an unequal split of the 40 stations
pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------------- the problem
def _case(n: int = 40, seed: int = 0):
    """8 x 8 x 4 cells of 50 m, a dense block, stations scattered (off any lattice) 5-30 m above."""
    mesh = PrismMesh.from_tensor([50.0] * 8, [50.0] * 8, [50.0] * 4, origin=(0.0, 0.0, -200.0))
    rng = np.random.default_rng(seed)
    loc = np.column_stack([rng.uniform(10, 390, n), rng.uniform(10, 390, n), rng.uniform(5, 30, n)])
    c = mesh.cell_centers
    true = np.where((c[:, 0] > 100) & (c[:, 0] < 250) & (c[:, 1] > 150) & (c[:, 1] < 300) & (c[:, 2] > -150),
                    400.0, 0.0)
    clean = GravityOperator(mesh, Survey(loc), device="cpu").forward(torch.as_tensor(true)).numpy()
    std = np.full(n, 0.02 * clean.std())
    return mesh, Survey(loc, gz=clean + std * rng.standard_normal(n), std=std), true


def _tilted(survey: Survey) -> Survey:
    """The survey with a plane as large as its anomaly added (a regional the data call for)."""
    xy = survey.locations[:, :2]
    u = (xy - xy.mean(0)) / np.ptp(xy, axis=0).max()
    return Survey(survey.locations, gz=survey.gz + np.ptp(survey.gz) * (0.5 + u[:, 0] - 0.8 * u[:, 1]),
                  std=survey.std)


def _cfg(**kw) -> INRConfig:
    base = dict(max_steps=50, net_dtype="float64", width=32, depth=2, seed=3, progress=False, num_threads=1,
                lr=1e-2)
    return INRConfig(**{**base, **kw})


RUNS = {  # name -> INRConfig overrides (the same on 1 and 2 ranks)
    "inr50": {},
    "warm_batch": dict(warm_start="least_squares", warm_start_steps=10, weighting="sensitivity", batch_size=16,
                       max_steps=20),
    "linear": dict(solver="linear", output="linear", bounds=None, init_value=None, weighting="none"),
    "ensemble": dict(n_members=2, max_steps=15),
    "stopping": dict(target_chi2=500.0, stop_tol=0.3),
    # the default: depth below the stations, least-squares start and prior, regional choice
    # (float64: float32 sums split over ranks round differently)
    "auto": {k: v for k, v in INRConfig.auto(max_steps=30, warm_start_steps=10, dtype="float64").to_dict().items()
             if k not in ("progress", "num_threads", "seed")},
}
# 40 stations over this block cannot show the image heavier-tailed than a Gaussian field's: the default
# solves the smooth lattice there. Its compact branch (the start, the minimum-support training) on its own:
RUNS["auto_compact"] = {**RUNS["auto"], "prior_from_data": False}
#: The closed-form lattice at the evidence's λ carries the rounding of the Gram's sums (summed in another
#: order on two ranks, or panel by panel) further than a trained model does
LATTICE_RTOL = 1e-7


def _relerr(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# ---------------------------------------------------------------------------------- spawned ranks
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_job(tmp: str) -> dict:
    """What every rank computes; rank 0's results are compared with one process."""
    from gempy_gravinv.cli import main

    mesh, survey, true = _case()
    out: dict = {}
    m = torch.as_tensor(np.random.default_rng(7).normal(0, 300, (mesh.n_cells, 2)))
    r = torch.as_tensor(np.random.default_rng(8).normal(0, 1, (survey.n_data, 2)))
    for store in ("dense", "matrix_free"):
        op = ShardedGravityOperator(mesh, survey, device="cpu", store=store)
        out[f"{store}_counts"] = op.counts
        out[f"{store}_block"] = op.forward(m).numpy()
        out[f"{store}_forward"] = op.forward(m, gather=True).numpy()
        out[f"{store}_adjoint"] = op.adjoint(r).numpy()
        out[f"{store}_adjoint_local"] = op.adjoint(r[op.start:op.stop]).numpy()
        out[f"{store}_jtj"] = op.jtj_diag(1.0 / survey.std).numpy()
    op = ShardedGravityOperator(mesh, survey, device="cpu", store="matrix_free", counts=COUNTS)
    out["unequal_forward"] = op.forward(m, gather=True).numpy()
    out["unequal_adjoint"] = op.adjoint(r).numpy()
    for name, over in RUNS.items():
        res = invert_inr(survey, mesh, _cfg(**over))
        out[name] = res.model
        out[name + "_timings"] = {k: res.timings[k] for k in ("world_size", "rank_stations")}
        out[name + "_run"] = (res.stop_reason, res.timings["steps"], res.best_step)
    out["inr50_chi2"] = invert_inr(survey, mesh, _cfg()).history["chi2"]
    tilted = invert_inr(_tilted(survey), mesh, _cfg(**RUNS["auto"]))
    out["tilted_regional"], out["tilted"] = tilted.regional_selection, tilted.model
    from gempy_gravinv.inversion import _problem

    # too little memory to hold the design (each rank's share 250 kB): streamed from each rank's own operator
    from gempy_gravinv.inversion._streamed import DESIGN_MEMORY_FRACTION
    from gempy_gravinv.inversion._warmstart import prior_test_bytes

    test = 2 * int(prior_test_bytes(mesh.n_cells) / DESIGN_MEMORY_FRACTION)  # the prior's test, on each rank
    _problem.available_memory, free = (lambda device: 500_000 + test), _problem.available_memory
    small = ShardedGravityOperator(mesh, survey, device="cpu", store="matrix_free", memory_budget=20_000)
    res = invert_inr(survey, mesh, _cfg(**RUNS["auto"]), operator=small)
    out["auto_streamed"], out["auto_streamed_setup"] = res.model, res.setup
    _problem.available_memory = free
    _problem.SHARD_CELLS_FROM, keep = 1, _problem.SHARD_CELLS_FROM  # split the cells too (large problems do)
    out["cells_sharded"] = invert_inr(survey, mesh, _cfg(quadrature=2)).model
    _problem.SHARD_CELLS_FROM = keep
    ck = os.path.join(tmp, "ck")
    first = invert_inr(survey, mesh, _cfg(), checkpoint=ck, stop_after=20)
    out["resume_first_completed"] = first.completed
    out["resumed"] = invert_inr(survey, mesh, _cfg(), checkpoint=ck, resume=True).model
    uneq = ShardedGravityOperator(mesh, survey, device="cpu", counts=COUNTS)
    res = invert_inr(survey, mesh, _cfg(), operator=uneq)
    out["unequal_inr"], out["unequal_stations"] = res.model, res.timings["rank_stations"]
    cli_dir = os.path.join(tmp, "cli")
    out["cli_rc"] = main(["invert", os.path.join(tmp, "stations.csv"), "--mesh", os.path.join(tmp, "mesh.msh"),
                          "--config", os.path.join(tmp, "cfg.json"), "-o", cli_dir, "--no-figures",
                          "--no-progress"])
    return out


def _worker(local_rank: int, world: int, port: int, tmp: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(local_rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(local_rank), LOCAL_WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    env = init_distributed("cpu", timeout_s=60)
    out = _rank_job(tmp)  # the CLI at its end leaves the process group
    torch.save(out, os.path.join(tmp, f"rank{env.rank}.pt"))


def _spawn(world: int, tmp, timeout: float = 240.0) -> None:
    ctx = mp.start_processes(_worker, args=(world, _free_port(), str(tmp)), nprocs=world, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=1.0):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"the {world} spawned ranks did not finish within {timeout:.0f} s (a hang)")


def _write_cli_inputs(tmp, mesh, survey) -> None:
    from gempy_gravinv import io as gio

    gio.write_csv(tmp / "stations.csv", survey)
    mesh.source.write_UBC(str(tmp / "mesh.msh"))
    (tmp / "cfg.json").write_text(json.dumps(dict(width=16, depth=2, max_steps=15, net_dtype="float64",
                                                  seed=1)))


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Rank 0's and rank 1's results of :func:`_rank_job`, and the inputs folder."""
    mesh, survey, _ = _case()
    for attempt in range(2):  # a second, fresh attempt if the first fails (e.g. its free port was taken)
        tmp = tmp_path_factory.mktemp(f"dist{attempt}")
        _write_cli_inputs(tmp, mesh, survey)
        try:
            _spawn(2, tmp)
            break
        except (mp.ProcessRaisedException, mp.ProcessExitedException):
            if attempt == 1:
                raise
    return [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(2)], tmp


# ---------------------------------------------------------------------------------- 2 ranks = 1 process
def test_sharded_forward_and_adjoint_equal_one_process(two_ranks):
    (r0, r1), _ = two_ranks
    mesh, survey, _ = _case()
    op = GravityOperator(mesh, survey, device="cpu", store="matrix_free", lattice=False)
    m = torch.as_tensor(np.random.default_rng(7).normal(0, 300, (mesh.n_cells, 2)))
    r = torch.as_tensor(np.random.default_rng(8).normal(0, 1, (survey.n_data, 2)))
    g, gt = op.forward(m).numpy(), op.adjoint(r).numpy()
    jtj = op.jtj_diag(1.0 / survey.std).numpy()
    for store in ("dense", "matrix_free"):
        assert r0[f"{store}_counts"] == [20, 20]
        for res in (r0, r1):  # every rank holds the whole after the gather / all-reduce
            assert _relerr(res[f"{store}_forward"], g) < RTOL
            assert _relerr(res[f"{store}_adjoint"], gt) < RTOL
            assert _relerr(res[f"{store}_adjoint_local"], gt) < RTOL
            assert _relerr(res[f"{store}_jtj"], jtj) < RTOL
        assert _relerr(r0[f"{store}_block"], g[:20]) < RTOL and _relerr(r1[f"{store}_block"], g[20:]) < RTOL
    # adjointness across ranks: <G m, r> = <m, Gᵀ r>
    assert np.sum(r0["matrix_free_forward"] * r.numpy()) == pytest.approx(np.sum(m.numpy() * r0["matrix_free_adjoint"]),
                                                                          rel=1e-12)
    assert _relerr(r1["unequal_forward"], g) < RTOL and _relerr(r1["unequal_adjoint"], gt) < RTOL


@pytest.mark.parametrize("name", list(RUNS))
def test_inversions_on_two_ranks_equal_one_process(two_ranks, name):
    (r0, r1), _ = two_ranks
    mesh, survey, _ = _case()
    one = invert_inr(survey, mesh, _cfg(**RUNS[name]))
    assert one.timings["world_size"] == 1
    assert r0[name + "_timings"] == dict(world_size=2, rank_stations=[20, 20])
    lattice = (one.prior_selection or {}).get("prior") == "smooth"
    assert lattice == (name == "auto")
    tol = LATTICE_RTOL if lattice else RTOL
    assert _relerr(r0[name], one.model) < tol and _relerr(r1[name], one.model) < tol
    assert np.abs(one.model).max() > 1.0  # the run moved: the comparison is not of two zero models
    assert r0[name + "_run"] == (one.stop_reason, one.timings["steps"], one.best_step)
    if name == "stopping":
        assert one.stop_reason == "target misfit reached" and one.timings["steps"] < 50
    if name == "inr50":
        assert len(r0["inr50_chi2"]) == len(one.history["chi2"])
        assert _relerr(r0["inr50_chi2"], one.history["chi2"]) < RTOL


def test_a_setup_streamed_on_two_ranks_equals_one_process_in_memory(two_ranks):
    """Where each rank's share of memory cannot hold the design, every rank streams it from its own operator."""
    ranks, _ = two_ranks
    mesh, survey, _ = _case()
    one = invert_inr(survey, mesh, _cfg(**RUNS["auto"]))
    assert one.setup["design"] == "in memory"
    for res in ranks:
        setup = res["auto_streamed_setup"]
        assert setup["design"] == "streamed" and setup["panels"] > 1, setup
        assert _relerr(res["auto_streamed"], one.model) < LATTICE_RTOL, _relerr(res["auto_streamed"], one.model)


def test_the_regional_one_process_chooses_is_chosen_and_fitted_on_two_ranks(two_ranks):
    (r0, r1), _ = two_ranks
    mesh, survey, _ = _case()
    one = invert_inr(_tilted(survey), mesh, _cfg(**RUNS["auto"]))
    assert one.regional_selection["kind"] == "plane"
    for r in (r0, r1):
        assert r["tilted_regional"]["kind"] == "plane"
        # the least-squares model's scores agree; the smooth model's check (rank 0's, sent to every rank) keeps the
        # plane, its scores of the kinds far from the best to round-off of the ranks' design
        assert r["tilted_regional"]["rule"].split("; with the smooth")[0] == \
            one.regional_selection["rule"].split("; with the smooth")[0]
        assert r["tilted_regional"]["least_squares_kind"] == one.regional_selection["least_squares_kind"]
        assert _relerr(r["tilted"], one.model) < LATTICE_RTOL


def test_field_evaluated_on_a_shard_of_the_cells_equals_one_process(two_ranks):
    (r0, r1), _ = two_ranks
    mesh, survey, _ = _case()
    one = invert_inr(survey, mesh, _cfg(quadrature=2))  # 8 points per cell, cells split 128 / 128
    assert _relerr(r0["cells_sharded"], one.model) < RTOL and _relerr(r1["cells_sharded"], one.model) < RTOL


def test_resumed_two_rank_run_equals_an_uninterrupted_one(two_ranks):
    (r0, r1), _ = two_ranks
    assert r0["resume_first_completed"] is False
    assert _relerr(r0["resumed"], r0["inr50"]) < RTOL and _relerr(r1["resumed"], r0["inr50"]) < RTOL


def test_unequal_split_inversion(two_ranks):
    (r0, _), _ = two_ranks
    assert r0["unequal_stations"] == COUNTS
    assert _relerr(r0["unequal_inr"], r0["inr50"]) < RTOL


def test_cli_invert_on_two_ranks_writes_once_and_records_the_split(two_ranks, tmp_path):
    from gempy_gravinv.cli import main

    (r0, r1), tmp = two_ranks
    assert r0["cli_rc"] == 0 and r1["cli_rc"] == 0
    m2 = json.loads((tmp / "cli" / "metrics.json").read_text())
    assert m2["world_size"] == 2 and m2["rank_stations"] == [20, 20]
    out1 = tmp_path / "one"
    assert main(["invert", str(tmp / "stations.csv"), "--mesh", str(tmp / "mesh.msh"), "--config",
                 str(tmp / "cfg.json"), "-o", str(out1), "--no-figures", "--no-progress"]) == 0
    m1 = json.loads((out1 / "metrics.json").read_text())
    assert m1["world_size"] == 1 and m1["rank_stations"] == [40]
    assert m2["chi2_per_datum_recomputed"] == pytest.approx(m1["chi2_per_datum_recomputed"], rel=RTOL)
    d1 = np.genfromtxt(out1 / "inr_data.csv", delimiter=",", names=True, skip_header=1)
    d2 = np.genfromtxt(tmp / "cli" / "inr_data.csv", delimiter=",", names=True, skip_header=1)
    assert d2.shape == (40,) and _relerr(d2["predicted"], d1["predicted"]) < 1e-9  # the CSV holds 10 digits
    assert not (tmp / "cli" / "inr_data.csv.tmp").exists() and (tmp / "cli" / "checkpoint").is_dir()


# ---------------------------------------------------------------------------------- one process
def test_environment_of_torchrun_and_slurm():
    assert env_info({}) == env_info({"UNRELATED": "1"})
    assert env_info({}).world_size == 1 and env_info({}).source == "single"
    e = env_info({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4"})
    assert (e.rank, e.world_size, e.local_rank, e.local_world_size, e.source) == (3, 8, 1, 4, "torchrun")
    slurm = {"SLURM_PROCID": "5", "SLURM_NTASKS": "6", "SLURM_LOCALID": "2", "SLURM_NTASKS_PER_NODE": "3(x2)"}
    assert env_info(slurm).world_size == 1  # a batch script's shell, no rendezvous exported: one process
    s = env_info({**slurm, "MASTER_ADDR": "node01", "MASTER_PORT": "29500"})
    assert (s.rank, s.world_size, s.local_rank, s.local_world_size, s.source) == (5, 6, 2, 3, "slurm")
    with pytest.raises(ValueError, match="inconsistent"):
        env_info({"RANK": "4", "WORLD_SIZE": "4"})
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        env_info({"WORLD_SIZE": "two"})


def test_init_without_rendezvous_address_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(ValueError, match="MASTER_ADDR"):
        init_distributed("cpu")
    with pytest.raises(ValueError, match="backend"):
        init_distributed("cpu", backend="mpi")


def test_station_split():
    assert split_counts(10, 3) == [4, 3, 3] and sum(split_counts(10**6 + 1, 7)) == 10**6 + 1
    assert split_counts(10, 2, [1, 9]) == [1, 9]
    with pytest.raises(ValueError, match="at least one"):
        split_counts(2, 3)
    with pytest.raises(ValueError, match="sum to"):
        split_counts(10, 2, [5, 4])


def test_one_process_sharded_operator_is_the_operator():
    mesh, survey, true = _case()
    whole = GravityOperator(mesh, survey, device="cpu", store="dense")
    op = ShardedGravityOperator.from_operator(whole)
    m = torch.tensor(true, requires_grad=True)
    g = op(m)
    torch.testing.assert_close(g, whole.forward(true), rtol=0, atol=0)
    g.pow(2).sum().backward()  # gradient through the shard = 2 Gᵀ G m
    torch.testing.assert_close(m.grad, 2 * whole.adjoint(whole.forward(true)), rtol=1e-13, atol=0)
    with pytest.raises(ValueError, match="rows"):
        op.adjoint(torch.zeros(survey.n_data + 1))


def test_memory_plan_per_rank_matches_the_built_operator_and_refuses():
    mesh, survey, _ = _case()
    for store in ("dense", "matrix_free"):
        built = GravityOperator(mesh, survey, device="cpu", store=store, memory_budget=1 << 20)
        plan = estimate_rank_memory(mesh, survey.n_data, 1, store=store, memory_budget=1 << 20)
        assert plan.per_rank[0].total == built.estimate_memory().total
    one = estimate_rank_memory(mesh, 10**4, 1, store="dense", memory_budget=1 << 20, available=2**40)
    two = estimate_rank_memory(mesh, 10**4, 2, store="dense", memory_budget=1 << 20, available=2**40,
                               ranks_per_node=1)
    assert two.largest <= 0.55 * one.largest  # the dense block halves; the cells are replicated
    tight = estimate_rank_memory(mesh, 10**5, 2, store="dense", memory_budget=1 << 20, available=10**8,
                                 ranks_per_node=1)
    with pytest.raises(MemoryError, match=r"rank 0 of 2 .* at least (\d+) ranks"):
        check_rank_memory(tight)
    n = tight.min_world_size()
    fits = estimate_rank_memory(mesh, 10**5, n, store="dense", memory_budget=1 << 20, available=10**8,
                                ranks_per_node=1)
    assert check_rank_memory(fits) is fits


@pytest.mark.slow
def test_torchrun_runs_the_cli_sharded(tmp_path):
    """The real launcher: ``torchrun --nproc_per_node 2 -m gempy_gravinv forward`` / ``invert``."""
    import subprocess
    import sys
    from pathlib import Path

    from gempy_gravinv import io as gio

    mesh, survey, true = _case()
    _write_cli_inputs(tmp_path, mesh, survey)
    gio.write_ubc_model(tmp_path / "model.den", mesh.source, true / 1000.0)  # g/cm³
    torchrun = [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node", "2",
                "-m", "gempy_gravinv"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    fwd = subprocess.run([*torchrun, "forward", "mesh.msh", "model.den", "stations.csv", "-o", "gz.csv"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert fwd.returncode == 0, fwd.stderr[-2000:]
    assert fwd.stdout.count("forward:") == 1  # rank 0 alone prints and writes
    gz = np.genfromtxt(tmp_path / "gz.csv", delimiter=",", names=True, skip_header=1)["gz"]
    clean = GravityOperator(mesh, survey, device="cpu").forward(torch.as_tensor(true)).numpy()
    assert _relerr(gz, clean) < 1e-9  # 10 printed digits
    inv = subprocess.run([*torchrun, "invert", "stations.csv", "--mesh", "mesh.msh", "--config", "cfg.json",
                          "-o", "out", "--no-figures", "--no-progress"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert inv.returncode == 0, inv.stderr[-2000:]
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["world_size"] == 2 and m["rank_stations"] == [20, 20]


def test_run_memory_planned_for_another_world_size():
    from gempy_gravinv.inversion._memory import estimate_run_memory
    from gempy_gravinv.inversion._problem import Problem, make_field

    mesh, survey, _ = _case()
    prob = Problem(survey, mesh, _cfg(store="dense"))
    field = make_field(prob.cfg, mesh, 0, "cpu")
    here = estimate_run_memory(prob, field)
    assert here["world_size"] == 1 and here["operator"] == prob.op.estimate_memory().total
    plans = {n: estimate_run_memory(prob, field, world_size=n) for n in (1, 4)}
    assert plans[1]["operator"] == plans[1]["plan"].largest and plans[4]["plan"].counts == [10, 10, 10, 10]
    g_row = mesh.n_cells * 8  # bytes of one station's dense row, float64
    held = {n: p["plan"].per_rank[0].geometry + p["plan"].per_rank[0].dense_matrix for n, p in plans.items()}
    assert held[1] - held[4] == (40 - 10) * (g_row + 3 * 8)  # the rows a rank no longer holds
    assert plans[4]["field_step"] == here["field_step"]  # the field is replicated: not split
