"""Forward/adjoint throughput of GravityOperator vs SimPEG (choclo engine), same run, same machine.

Usage::

    gempy-gravinv bench [--sizes small,medium] [--repeat 3] [--cuda-large]
    .venv/bin/python benchmarks/bench_kernels.py ...   # the same

The command prints, for each problem size, wall times (best of ``--repeat``) and
cell-station pairs per second for:

- ours, matrix-free general path (node sharing, ``lattice=False``), eager and
  torch.compile'd; forward and adjoint;
- ours, matrix-free lattice path (offset kernel + FFT; these gridded cases qualify);
- ours, dense: building G (general compiled path, and lattice gather), then one G·m;
- SimPEG ``Simulation3DIntegral(engine="choclo")``: ``forward_only`` dpred (recomputes
  the kernel), and ``ram`` (building G: the first dpred; then one product),

and the ratios ours / SimPEG measured in this run. ``--cuda-large`` adds the 1e6 cells x
1e4 stations forward+adjoint on CUDA with peak GPU memory.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Iterator

import numpy as np
import torch

from ._constants import gz_from_upward, kgm3_to_gcc
from ._mesh import PrismMesh
from ._operator import GravityOperator
from ._survey import Survey
from ._validation import check_choice, check_int

SIZES = {
    # name: (nx, ny, nz, cell, n_station_side)  -> cells, stations
    "tiny": (6, 6, 3, 50.0, 6),           # smoke test only
    "small": (21, 21, 11, 50.0, 21),      # 4,851 cells x 441 stations (dipping block)
    "medium": (40, 40, 20, 500.0, 40),    # 32,000 cells x 1,600 stations (smooth GRF)
}


def case(nx: int, ny: int, nz: int, h: float, ns: int):
    """Tensor mesh of ``h``-metre cubes (top at z = 0) and ``ns x ns`` stations 1 m above it.

    Parameters
    ----------
    nx, ny, nz : int
        Cells per axis.
    h : float
        Cell size, m.
    ns : int
        Stations per side of the square station grid.

    Returns
    -------
    mesh : discretize.TensorMesh
    stations : numpy.ndarray (ns², 3)
        Station coordinates, m, z up.
    """
    from discretize import TensorMesh

    mesh = TensorMesh([[h] * nx, [h] * ny, [h] * nz], origin=(-h / 2, -h / 2, -nz * h))
    xs = np.linspace(0, (nx - 1) * h, ns)
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    st = np.column_stack([X.ravel(), Y.ravel(), np.ones(X.size)])
    return mesh, st


def best(fn, repeat: int) -> float:
    """Best wall time of ``repeat`` calls of ``fn()``, seconds."""
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


def run_size(name: str, repeat: int = 3) -> list[str]:
    """Time every path on one problem size against SimPEG.

    Parameters
    ----------
    name : str
        A key of :data:`SIZES`.
    repeat : int
        Best of ``repeat`` timings.

    Returns
    -------
    list of str
        The report: a heading, one line per timing (seconds and cell-station pairs per
        second) and the ratios SimPEG / ours.
    """
    from simpeg import maps
    from simpeg.potential_fields import gravity

    mesh, st = case(*SIZES[name])
    pm = PrismMesh.from_discretize(mesh)
    sv = Survey(st)
    pairs = pm.n_cells * sv.n_data
    rng = np.random.default_rng(0)
    m = rng.normal(size=pm.n_cells) * 100
    r = rng.normal(size=sv.n_data)
    rows = []

    def simpeg_sim(store):
        return gravity.simulation.Simulation3DIntegral(
            mesh, survey=sv.to_simpeg(), rhoMap=maps.IdentityMap(nP=pm.n_cells), engine="choclo",
            store_sensitivities=store, sensitivity_dtype=np.float64)

    # SimPEG forward_only (numba JIT warm-up first)
    sim = simpeg_sim("forward_only")
    m_gcc = kgm3_to_gcc(m)  # SimPEG's units
    sim.dpred(m_gcc)
    t_sp_fwd = best(lambda: sim.dpred(m_gcc), repeat)
    rows.append(("simpeg choclo forward_only dpred", t_sp_fwd))
    # SimPEG ram: G build (first dpred; the first one in the process compiles its numba kernel) and one product
    builds_sp = []
    for _ in range(2):
        t0 = time.perf_counter()
        sim_ram = simpeg_sim("ram")
        sim_ram.dpred(m_gcc)
        builds_sp.append(time.perf_counter() - t0)
    t_sp_first, t_sp_build = builds_sp
    t_sp_prod = best(lambda: sim_ram.G @ m_gcc, repeat)
    rows.append(("simpeg choclo ram: first build G (incl. numba compile)", t_sp_first))
    rows.append(("simpeg choclo ram: build G", t_sp_build))
    rows.append(("simpeg choclo ram: G·m", t_sp_prod))
    ref = gz_from_upward(sim.dpred(m_gcc))

    results = {}
    for label, compile_ in (("eager", False), ("compiled", True)):
        op = GravityOperator(pm, sv, device="cpu", store="matrix_free", compile=compile_, lattice=False)
        t0 = time.perf_counter()
        out = op.forward(m)
        op.adjoint(r)
        t_first = time.perf_counter() - t0
        err = float(np.abs(out.numpy() - ref).max() / np.abs(ref).max())
        t_f = best(lambda op=op: op.forward(m), repeat)
        t_a = best(lambda op=op: op.adjoint(r), repeat)
        results[label] = (t_f, t_a)
        rows.append((f"ours matrix-free {label}: first call (incl. compile)", t_first))
        rows.append((f"ours matrix-free {label}: forward (rel. diff to SimPEG {err:.1e})", t_f))
        rows.append((f"ours matrix-free {label}: adjoint", t_a))
    t0 = time.perf_counter()
    opl = GravityOperator(pm, sv, device="cpu", store="matrix_free", lattice=True)
    t_lat_setup = time.perf_counter() - t0
    err_l = float(np.abs(opl.forward(m).numpy() - ref).max() / np.abs(ref).max())
    t_lf = best(lambda: opl.forward(m), repeat)
    t_la = best(lambda: opl.adjoint(r), repeat)
    rows.append(("ours lattice: set-up (offset kernel + FFTs)", t_lat_setup))
    rows.append((f"ours lattice: forward (rel. diff to SimPEG {err_l:.1e})", t_lf))
    rows.append(("ours lattice: adjoint", t_la))
    builds = {}
    for label, lat in (("general compiled", False), ("lattice", True)):
        for first in (True, False):  # the first build in the process compiles its kernels
            t0 = time.perf_counter()
            opd = GravityOperator(pm, sv, device="cpu", store="dense", compile=True, lattice=lat)
            builds[label] = time.perf_counter() - t0
            rows.append((f"ours dense ({label}): {'first build G (incl. compile)' if first else 'build G'}",
                         builds[label]))
    t_dprod = best(lambda: opd.forward(m), repeat)
    rows.append(("ours dense: G·m", t_dprod))

    lines = [f"\n## {name}: {pm.n_cells:,} cells x {sv.n_data:,} stations = {pairs:.3g} pairs",
             f"{'what':62s} {'time (s)':>10s} {'pairs/s':>10s}"]
    lines += [f"{what:62s} {t:10.4f} {pairs / t:10.3g}" for what, t in rows]
    tf_c, ta_c = results["compiled"]
    tf_e, _ = results["eager"]
    lines += [
        f"ratio forward, SimPEG forward_only / ours compiled matrix-free: {t_sp_fwd / tf_c:.2f}x",
        f"ratio adjoint-vs-forward_only,    SimPEG / ours compiled:       {t_sp_fwd / ta_c:.2f}x",
        f"ratio forward, SimPEG forward_only / ours eager matrix-free:    {t_sp_fwd / tf_e:.2f}x",
        f"ratio forward, SimPEG forward_only / ours lattice:              {t_sp_fwd / t_lf:.2f}x",
        "ratio G build (both warm), SimPEG ram / ours dense general compiled: "
        f"{t_sp_build / builds['general compiled']:.2f}x",
        f"ratio G build (both warm), SimPEG ram / ours dense lattice:         {t_sp_build / builds['lattice']:.2f}x",
    ]
    return lines


def run_cuda_large() -> list[str]:
    """1e6 cells x 1e4 stations forward+adjoint on CUDA: pairs/s and peak GPU memory.

    Returns
    -------
    list of str
        One line per dtype (float32, float64): seconds, cell-station pairs per second,
        peak GPU memory in GiB; a single "skipped" line without CUDA.
    """
    if not torch.cuda.is_available():
        return ["\n## CUDA large: skipped (no CUDA device)"]
    from discretize import TensorMesh

    n = 100  # 100 x 100 x 100 = 1e6 cells, 100 x 100 = 1e4 stations
    mesh = TensorMesh([[10.0] * n, [10.0] * n, [10.0] * n], origin=(0, 0, -10.0 * n))
    xs = np.linspace(5, 10 * n - 5, 100)
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    sv = Survey(np.column_stack([X.ravel(), Y.ravel(), np.ones(X.size)]))
    lines = []
    for dtype in (torch.float32, torch.float64):
        torch.cuda.reset_peak_memory_stats()
        op = GravityOperator(mesh, sv, device="cuda", dtype=dtype, store="matrix_free", compile=True)
        m = torch.randn(mesh.n_cells, device="cuda", dtype=dtype, requires_grad=True)
        loss = op(m).square().sum()
        loss.backward()  # warm-up / compile
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        loss = op(m).square().sum()
        loss.backward()
        torch.cuda.synchronize()
        t = time.perf_counter() - t0
        pairs = 2 * mesh.n_cells * sv.n_data
        lines.append(f"\n## CUDA {torch.cuda.get_device_name()} {dtype}: 1e6 cells x 1e4 stations "
                     f"forward+adjoint {t:.3f} s, {pairs / t:.3g} cell-station pairs/s, peak GPU memory "
                     f"{torch.cuda.max_memory_allocated() / 1024**3:.2f} GiB")
    return lines


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """Add the benchmark options (shared by the CLI and the script) to ``ap``."""
    ap.add_argument("--sizes", default="small,medium", help=f"comma list of {', '.join(SIZES)}")
    ap.add_argument("--repeat", type=int, default=3, help="best of N timings")
    ap.add_argument("--cuda-large", action="store_true", help="add 1e6 cells x 1e4 stations on CUDA")
    ap.add_argument("--threads", type=int, default=None, metavar="N",
                    help="threads of both codes: torch's and SimPEG's numba (default: every core)")


def report(args: argparse.Namespace) -> Iterator[str]:
    """The benchmark's report, one block of lines per problem size, as each is measured.

    The first block names the machine; the command (``gempy-gravinv bench``,
    ``benchmarks/bench_kernels.py``) prints each block as it arrives.

    Parameters
    ----------
    args : argparse.Namespace
        ``sizes`` (comma list of :data:`SIZES` keys), ``repeat`` (int >= 1),
        ``cuda_large`` (bool), ``threads`` (int >= 1 or None: every core; torch's and
        numba's, so both codes run on the same cores), as :func:`add_arguments` declares
        them.

    Yields
    ------
    str
        A block of report lines (joined with newlines).
    """
    sizes = [s.strip() for s in args.sizes.split(",")]
    for s in sizes:
        check_choice(s, SIZES, name="size")
    repeat = check_int(args.repeat, name="--repeat", minimum=1)
    threads = check_int(getattr(args, "threads", None), name="--threads", minimum=1, allow_none=True)
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    numba_threads = "n/a"
    try:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        numba_threads = numba.get_num_threads()
    except ImportError:
        pass
    yield (f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
           f"{torch.__version__}, threads: torch {torch.get_num_threads()}, SimPEG's numba {numba_threads}")
    for name in sizes:
        yield "\n".join(run_size(name, repeat))
    if args.cuda_large:
        yield "\n".join(run_cuda_large())
