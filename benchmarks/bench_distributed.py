"""Strong and weak scaling of the station-sharded gravity operator (torch.distributed, gloo on CPUs).

Every configuration runs in fresh processes spawned by this script (ranks join a gloo
process group as under ``torchrun``), so peak memory is per process. Baselines are
measured in the same run: one process with 1 thread, one process with N threads (all
cores), and N ranks with 1 thread each.

- strong scaling: the same problem (default 64 x 64 x 25 = 102,400 cells x 10,000
  stations, matrix-free, float64, compiled kernels) on 1 and N ranks: seconds per
  forward + adjoint pair (G m, then Gᵀ r; after one untimed pair that compiles), and
  the build of the dense G (float32; after compiling on small operators, but a build at
  a new size may still recompile once: a few seconds per process).
- memory: per rank, the operator estimate (:meth:`ShardedGravityOperator.estimate_memory`)
  and the measured peak RSS with the dense G held (float32; G dominates there). With
  the matrix-free store the per-rank memory is the chunk workspace (a budget, the same
  on every rank) plus the replicated cells: sharding does not shrink it.
- weak scaling: the same stations per rank (default 5,000) on 1 and N ranks.

Usage::

    .venv/bin/python benchmarks/bench_distributed.py [--ranks 2] [--stations 10000] [--nx 64 --nz 25]
    .venv/bin/python benchmarks/bench_distributed.py --quick     # a small check (minutes less)

A GPU run (NCCL, ``--device cuda``) uses one GPU per rank; none was available when the
numbers in docs/distributed.md were measured.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.multiprocessing as mp


def _problem(nx: int, nz: int, n_stations: int, seed: int = 0):
    from gempy_gravinv import PrismMesh, Survey

    h = 50.0
    mesh = PrismMesh.from_tensor([h] * nx, [h] * nx, [h] * nz, origin=(0.0, 0.0, -h * nz))
    rng = np.random.default_rng(seed)  # scattered stations: no lattice shortcut
    loc = np.column_stack([rng.uniform(0, nx * h, n_stations), rng.uniform(0, nx * h, n_stations),
                           rng.uniform(5.0, 50.0, n_stations)])
    return mesh, Survey(loc)


def _warm_up(device: str, store: str) -> None:
    """Compile the kernels on small operators first (torch.compile is per process)."""
    from gempy_gravinv import GravityOperator

    for nx, nz, n in ((4, 3, 8), (6, 4, 40), (7, 5, 90)):
        mesh, survey = _problem(nx, nz, n)
        op = GravityOperator(mesh, survey, device=device, store=store, compile=True, lattice=False)
        op.adjoint(op.forward(torch.ones(mesh.n_cells, dtype=torch.float64, device=op.device)))


def _timed(fn, cpu: list | None = None) -> float:
    """Wall seconds of ``fn`` between barriers; appends this process's CPU seconds to ``cpu``."""
    from gempy_gravinv._distributed import barrier

    barrier()
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    c1 = time.process_time()
    barrier()
    if cpu is not None:
        cpu.append(c1 - c0)
    return time.perf_counter() - t0


def _worker(local_rank: int, world: int, port: int, threads: int, job: dict, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(local_rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(local_rank), LOCAL_WORLD_SIZE=str(world))
    torch.set_num_threads(threads)
    from gempy_gravinv._distributed import ShardedGravityOperator, init_distributed, shutdown_distributed

    env = init_distributed(job["device"], timeout_s=3600)
    mesh, survey = _problem(job["nx"], job["nz"], job["stations"])
    res: dict = dict(rank=env.rank, world_size=env.world_size, threads=threads)
    m = torch.as_tensor(np.random.default_rng(1).normal(0, 300, mesh.n_cells))
    if "matrix_free" in job["stores"]:
        op = ShardedGravityOperator(mesh, survey, device=job["device"], store="matrix_free", compile=True,
                                    lattice=False)
        res["stations"] = op.n_local
        op.adjoint(op.forward(m))  # untimed: the first product at this size compiles the kernels
        cpu: list = []
        times = [_timed(lambda: op.adjoint(op.forward(m)), cpu) for _ in range(job["repeat"])]
        res["mf_pair_s"], res["mf_pair_cpu_s"] = min(times), min(cpu)
        res["mf_estimate_bytes"] = op.estimate_memory().total
        del op
    if "dense" in job["stores"]:
        _warm_up(job["device"], "dense")
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        holder = {}
        res["dense_build_s"] = _timed(lambda: holder.update(op=ShardedGravityOperator(
            mesh, survey, device=job["device"], dtype=torch.float32, store="dense", compile=True, lattice=False)))
        op = holder["op"]
        m32 = m.to(torch.float32)
        op.adjoint(op.forward(m32))
        res["dense_pair_s"] = min(_timed(lambda: op.adjoint(op.forward(m32))) for _ in range(job["repeat"]))
        res["dense_estimate_bytes"] = op.estimate_memory().total
        res["dense_block_bytes"] = op.estimate_memory().dense_matrix
        res["dense_rss_peak_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        res["rss_before_dense_bytes"] = rss0
    Path(out, f"rank{env.rank}.json").write_text(json.dumps(res))
    shutdown_distributed()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_config(world: int, threads: int, job: dict) -> list[dict]:
    """Spawn ``world`` ranks of ``threads`` threads each on ``job``; every rank's measurements."""
    with tempfile.TemporaryDirectory() as tmp:
        mp.start_processes(_worker, args=(world, _free_port(), threads, job, tmp), nprocs=world, join=True,
                           start_method="spawn")
        return [json.loads(Path(tmp, f"rank{r}.json").read_text()) for r in range(world)]


def _gib(b: float) -> str:
    return f"{b / 2**30:.3f} GiB"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ranks", type=int, default=2, help="ranks of the sharded runs (default 2)")
    ap.add_argument("--nx", type=int, default=64, help="cells per horizontal axis (50 m)")
    ap.add_argument("--nz", type=int, default=25, help="layers (50 m)")
    ap.add_argument("--stations", type=int, default=10_000, help="stations of the strong-scaling problem")
    ap.add_argument("--weak-stations", type=int, default=5_000, help="stations per rank of the weak scaling")
    ap.add_argument("--repeat", type=int, default=1, help="best of N timed pairs")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda (one GPU per rank, NCCL)")
    ap.add_argument("--no-weak", action="store_true", help="skip the weak scaling")
    ap.add_argument("--no-dense", action="store_true", help="skip the dense (memory) runs")
    ap.add_argument("--quick", action="store_true", help="a small problem (24 x 24 x 10 cells x 2,000 stations)")
    ap.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    a = ap.parse_args(argv)
    if a.quick:
        a.nx, a.nz, a.stations, a.weak_stations = 24, 10, 2000, 1000
    n = a.ranks
    cores = os.cpu_count() or 1
    cuda = torch.cuda.is_available()
    stores = ["matrix_free"] + ([] if a.no_dense else ["dense"])
    print(f"bench_distributed: {a.nx}x{a.nx}x{a.nz} = {a.nx * a.nx * a.nz:,} cells x {a.stations:,} stations, "
          f"{cores} CPU cores, device {a.device}, torch {torch.__version__}; "
          f"{'CUDA available' if cuda else 'no GPU on this machine: CPU (gloo) only'}", flush=True)
    job = dict(nx=a.nx, nz=a.nz, stations=a.stations, repeat=a.repeat, device=a.device, stores=stores)
    configs = [("1 process x 1 thread", 1, 1), (f"1 process x {n} threads", 1, n), (f"{n} ranks x 1 thread", n, 1)]
    results = {}
    for name, world, threads in configs:
        t0 = time.perf_counter()
        results[name] = run_config(world, threads, job)
        print(f"  ran {name} in {time.perf_counter() - t0:.0f} s", flush=True)
    base, multi, shard = (results[c[0]] for c in configs)
    print("\nstrong scaling (seconds; sharded: the slowest rank; ratio = time / 1 process x 1 thread):")
    print(f"{'configuration':>24} {'mf fwd+adj':>11} {'ratio':>6} {'pairs/s':>9} {'CPU s/rank':>10} {'ratio':>6}"
          + (f" {'dense build':>12} {'ratio':>6} {'dense fwd+adj':>14}" if "dense" in stores else ""))
    for name, rs in results.items():
        mf = max(r["mf_pair_s"] for r in rs)
        pairs = a.stations * a.nx * a.nx * a.nz / mf
        c = max(r["mf_pair_cpu_s"] for r in rs)
        line = (f"{name:>24} {mf:11.2f} {mf / base[0]['mf_pair_s']:6.2f} {pairs:9.2e} {c:10.2f} "
                f"{c / base[0]['mf_pair_cpu_s']:6.2f}")
        if "dense" in stores:
            b = max(r["dense_build_s"] for r in rs)
            line += f" {b:12.2f} {b / base[0]['dense_build_s']:6.2f} {max(r['dense_pair_s'] for r in rs):14.3f}"
        print(line)
    r_mf = max(r["mf_pair_s"] for r in shard) / base[0]["mf_pair_s"]
    r_mt = max(r["mf_pair_s"] for r in shard) / multi[0]["mf_pair_s"]
    print(f"\n{n} ranks vs 1 process x 1 thread: {r_mf:.2f}x the time; vs 1 process x {n} threads: {r_mt:.2f}x")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {cores} cores (wall times of parallel runs "
          "need idle cores; CPU s/rank is the work each rank did)")
    if "dense" in stores:
        print("\nmemory per rank with the dense G (float32; estimate = the operator's own accounting):")
        for name, rs in results.items():
            for r in rs:
                print(f"{name:>24} rank {r['rank']}: {r['stations']:>7,} stations, operator estimate "
                      f"{_gib(r['dense_estimate_bytes'])} (G block {_gib(r['dense_block_bytes'])}), peak RSS "
                      f"{_gib(r['dense_rss_peak_bytes'])}")
        est = max(r["dense_estimate_bytes"] for r in shard) / base[0]["dense_estimate_bytes"]
        blk = max(r["dense_block_bytes"] for r in shard) / base[0]["dense_block_bytes"]
        rss = max(r["dense_rss_peak_bytes"] for r in shard) / base[0]["dense_rss_peak_bytes"]
        print(f"{n} ranks vs 1 process, per rank: operator estimate {est:.2f}x, G block {blk:.2f}x, "
              f"peak RSS {rss:.2f}x (RSS includes torch itself, ~0.3-0.5 GiB per process)")
        print("matrix-free per rank: " + ", ".join(f"{name} {_gib(max(r['mf_estimate_bytes'] for r in rs))}"
                                                   for name, rs in results.items())
              + " (chunk workspace + replicated cells: not sharded)")
    out = dict(args=vars(a), strong=results)
    if not a.no_weak:
        wjob = dict(job, stores=["matrix_free"])
        weak = {}
        for world in (1, n):
            weak[world] = run_config(world, 1, dict(wjob, stations=a.weak_stations * world))
        t1, tn = (max(r["mf_pair_s"] for r in weak[w]) for w in (1, n))
        c1, cn = (max(r["mf_pair_cpu_s"] for r in weak[w]) for w in (1, n))
        print(f"\nweak scaling ({a.weak_stations:,} stations per rank, 1 thread per rank): 1 rank {t1:.2f} s, "
              f"{n} ranks {tn:.2f} s per forward+adjoint (efficiency {t1 / tn:.2f}); CPU s per rank {c1:.2f} vs "
              f"{cn:.2f}")
        out["weak"] = weak
    print("\nno GPU measured in this run" if not cuda else "")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
