"""Process groups: rank and world size from the environment, collectives that are no-ops for one process.

``torchrun`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``;
SLURM's ``srun`` sets ``SLURM_PROCID``/``SLURM_NTASKS``/``SLURM_LOCALID``. gloo on CPUs,
NCCL on GPUs.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from .._device import resolve_device
from .._validation import check_choice, check_number

logger = logging.getLogger(__name__)

_BACKENDS = ("auto", "gloo", "nccl")


# ---------------------------------------------------------------------------------- environment
@dataclass(frozen=True)
class DistEnv:
    """Where this process stands among the processes of one job.

    Attributes
    ----------
    rank : int
        This process, 0 ... world_size - 1 (rank 0 writes the outputs).
    world_size : int
        Processes in the job.
    local_rank : int
        This process on its node (picks the GPU: ``cuda:local_rank``).
    local_world_size : int
        Processes on this node (they share its memory).
    source : str
        ``"torchrun"`` (RANK / WORLD_SIZE), ``"slurm"`` (SLURM_PROCID / SLURM_NTASKS),
        ``"process_group"`` (already initialised) or ``"single"`` (one process).
    """

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    source: str


def _env_int(environ, *names: str) -> int | None:
    for name in names:
        v = environ.get(name)
        if v is not None and v.strip() != "":
            try:
                return int(v)
            except ValueError:
                raise ValueError(f"environment variable {name}={v!r} is not an integer") from None
    return None


def env_info(environ=None) -> DistEnv:
    """Rank and world size from the environment that ``torchrun`` or SLURM's ``srun`` set.

    ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``LOCAL_WORLD_SIZE`` (torchrun) take precedence
    over ``SLURM_PROCID``/``SLURM_NTASKS``/``SLURM_LOCALID``/``SLURM_NTASKS_PER_NODE``
    (``srun`` without torchrun), which are used only when the job script exported
    ``MASTER_ADDR`` and ``MASTER_PORT`` (a batch script's own shell also has SLURM
    variables, and a plain ``python`` there is one process). Without either: one
    process. An initialised process group wins over the environment.

    Parameters
    ----------
    environ : mapping, optional
        The environment to read (``os.environ`` by default).

    Returns
    -------
    DistEnv

    Raises
    ------
    ValueError
        A variable that is not an integer, or a rank outside ``0 ... world_size - 1``.
    """
    if dist.is_available() and dist.is_initialized():
        ws, r = dist.get_world_size(), dist.get_rank()
        e = os.environ if environ is None else environ
        lr = _env_int(e, "LOCAL_RANK", "SLURM_LOCALID")
        lws = _env_int(e, "LOCAL_WORLD_SIZE")
        return DistEnv(r, ws, r if lr is None else lr, ws if lws is None else lws, "process_group")
    e = os.environ if environ is None else environ
    if _env_int(e, "WORLD_SIZE") is not None:
        ws, r, source = _env_int(e, "WORLD_SIZE"), _env_int(e, "RANK") or 0, "torchrun"
        lr, lws = _env_int(e, "LOCAL_RANK"), _env_int(e, "LOCAL_WORLD_SIZE")
    elif (_env_int(e, "SLURM_PROCID") is not None and _env_int(e, "SLURM_NTASKS") is not None
          and e.get("MASTER_ADDR") and e.get("MASTER_PORT")):  # a batch script's own shell: not a rank
        ws, r, source = _env_int(e, "SLURM_NTASKS"), _env_int(e, "SLURM_PROCID"), "slurm"
        lr = _env_int(e, "SLURM_LOCALID")
        per_node = e.get("SLURM_NTASKS_PER_NODE", "").split("(")[0].split(",")[0]
        lws = int(per_node) if per_node.isdigit() else None
    else:
        return DistEnv(0, 1, 0, 1, "single")
    if ws < 1 or not 0 <= r < ws:
        raise ValueError(f"rank {r} and world size {ws} from the environment ({source}) are inconsistent: "
                         "the rank must lie in 0 ... world_size - 1")
    lr = r if lr is None else lr
    lws = (ws if lr == r else max(lr + 1, 1)) if lws is None else lws
    return DistEnv(r, ws, lr, lws, source)


#: Seconds the ranks wait for each other to join the process group, unless
#: ``GEMPY_GRAVINV_JOIN_TIMEOUT`` or ``join_timeout_s`` says otherwise (see :func:`init_distributed`).
JOIN_TIMEOUT_S = 300.0


def _join_timeout(join_timeout_s: float | None) -> float:
    if join_timeout_s is None:
        text = os.environ.get("GEMPY_GRAVINV_JOIN_TIMEOUT", "").strip()
        try:
            join_timeout_s = float(text) if text else JOIN_TIMEOUT_S
        except ValueError:
            raise ValueError(f"environment variable GEMPY_GRAVINV_JOIN_TIMEOUT={text!r} is not a number of "
                             "seconds") from None
    check_number(join_timeout_s, name="join timeout (seconds)", low=0, low_open=True)
    return float(join_timeout_s)


def _missing_variables(env: DistEnv) -> list[str]:
    """The rendezvous variables a launch of several processes lacks (RANK for a torchrun-style one)."""
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
    if env.source == "torchrun" and not os.environ.get("RANK", "").strip():
        missing.insert(0, "RANK")
    return missing


def _join_store(env: DistEnv, join_s: float):
    """The rendezvous store at MASTER_ADDR:MASTER_PORT, as this rank sees it (rank 0 hosts it).

    Rank 0 waits there for every rank to connect, the others for rank 0 to listen, both
    at most ``join_s`` seconds: a rank that failed before joining ends the wait of the
    others with a ``TimeoutError`` instead of the collectives' long timeout.
    """
    addr, port = os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]
    try:
        port_no = int(port)
    except ValueError:
        raise ValueError(f"environment variable MASTER_PORT={port!r} is not a port number") from None
    t0 = time.monotonic()
    try:
        return dist.TCPStore(addr, port_no, env.world_size, env.rank == 0,
                             timeout=datetime.timedelta(seconds=join_s), multi_tenant=True)
    except RuntimeError as exc:  # torch's DistError: a timeout, or an address that cannot be used
        said = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__
        if time.monotonic() - t0 < join_s:
            raise ConnectionError(f"rank {env.rank} of {env.world_size}: cannot join at {addr}:{port} ({said}): "
                                  "check MASTER_ADDR and MASTER_PORT (a free port on the first node)") from None
        who = ("not every rank joined" if env.rank == 0 else "rank 0 did not open the rendezvous")
        raise TimeoutError(f"rank {env.rank} of {env.world_size}: {who} at {addr}:{port} within {join_s:g} s "
                           f"({said}). A rank that failed before joining (see its own error), a rank never "
                           "started, or another WORLD_SIZE, MASTER_ADDR or MASTER_PORT on some rank; set "
                           "GEMPY_GRAVINV_JOIN_TIMEOUT (seconds) where starting the ranks takes longer") from None


def launched_processes() -> int:
    """Processes the launcher (``torchrun``, ``srun``) says this job has; 1 where it says nothing usable.

    Read from the environment alone (:func:`env_info`), whether or not a process group
    was initialised: more than 1 without a group means every process runs the whole job.
    """
    try:
        return env_info(dict(os.environ)).world_size
    except ValueError:
        return 1


def fingerprint(*values) -> str:
    """SHA-256 hex digest of arrays and plain values, for comparing inputs between ranks.

    Parameters
    ----------
    *values : array_like, torch.Tensor or JSON-able value
        Arrays are hashed as float64 with their shape; anything else as sorted-key JSON
        (``repr`` for what JSON cannot hold).

    Returns
    -------
    str
        Equal for equal values on any rank.
    """
    h = hashlib.sha256()
    for v in values:
        if isinstance(v, (np.ndarray, torch.Tensor)):
            a = np.ascontiguousarray(np.asarray(v.detach().cpu() if torch.is_tensor(v) else v, dtype=np.float64))
            h.update(f"array{a.shape}".encode())
            h.update(a.tobytes())
        else:
            h.update(json.dumps(v, sort_keys=True, default=repr).encode())
    return h.hexdigest()


def init_distributed(device: str | torch.device = "cpu", backend: str = "auto", *,
                     timeout_s: float = 1800.0, join_timeout_s: float | None = None) -> DistEnv:
    """Join this process to the job's process group (nothing to do for one process).

    Reads the rank and world size from the environment (:func:`env_info`) and the
    rendezvous address from ``MASTER_ADDR`` / ``MASTER_PORT`` (``torchrun`` sets them;
    a SLURM script exports them, see ``docs/distributed.md``). Logs "waiting for N
    ranks at ADDR:PORT" while the ranks join. Once joined, the log records of this
    package below ERROR are shown on rank 0 alone (:func:`main_rank_logging`).
    Idempotent.

    Parameters
    ----------
    device : str or torch.device
        The device the run uses: CUDA picks NCCL and ``cuda:LOCAL_RANK``, else gloo.
    backend : {"auto", "gloo", "nccl"}
        ``"auto"``: NCCL for CUDA, gloo otherwise.
    timeout_s : float
        Seconds a collective may wait for the other ranks before failing (> 0): a rank
        that died makes the others fail instead of hanging. Long, since ranks legitimately
        wait at a collective while rank 0 writes a checkpoint or the outputs.
    join_timeout_s : float, optional
        Seconds the ranks wait for each other to join (> 0). Default
        ``GEMPY_GRAVINV_JOIN_TIMEOUT`` from the environment, else :data:`JOIN_TIMEOUT_S`
        (300 s): ``srun`` starts a job's tasks within seconds of each other and importing
        torch from a cold shared file system takes a minute or two, so 5 minutes is ample
        for ranks that are alive, while a rank that failed before it joined (bad
        arguments, an unreadable file) is reported within 5 minutes instead of the
        collectives' 30. Under ``torchrun``'s own store (the processes start once every
        node has joined, and ``torchrun`` stops them all when one fails) the collectives'
        timeout applies.

    Returns
    -------
    DistEnv

    Raises
    ------
    ValueError
        Unknown backend, NCCL without CUDA, a bad timeout, or a multi-process launch
        without ``RANK`` (where ``WORLD_SIZE`` is set), ``MASTER_ADDR`` or ``MASTER_PORT``.
    TimeoutError
        The other ranks did not join within the join timeout.
    ConnectionError
        The rendezvous address cannot be used (e.g. rank 0's port is taken).
    """
    check_choice(backend, _BACKENDS, name="backend")
    check_number(timeout_s, name="timeout_s (seconds)", low=0, low_open=True)
    env = env_info()
    if env.world_size == 1 or env.source == "process_group":
        return env
    join_s = _join_timeout(join_timeout_s)
    dev = resolve_device(device)
    if backend == "auto":
        backend = "nccl" if dev.type == "cuda" else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        raise ValueError("backend 'nccl' needs CUDA; use backend='gloo' on CPUs")
    missing = _missing_variables(env)
    if missing:
        rank_hint = (f"RANK (this process's rank, 0 ... {env.world_size - 1}), " if "RANK" in missing else "")
        raise ValueError(f"{env.world_size} processes ({env.source}, WORLD_SIZE={env.world_size}) but "
                         f"{', '.join(missing)} not set: launch with torchrun, or export {rank_hint}MASTER_ADDR (the "
                         "first node's host name) and MASTER_PORT (a free port) in the job script")
    if backend == "nccl":
        torch.cuda.set_device(env.local_rank % max(1, torch.cuda.device_count()))
    timeout = datetime.timedelta(seconds=float(timeout_s))
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"  # torchrun's agents host the store
    logger.log(logging.INFO if env.rank == 0 else logging.DEBUG, "waiting for %d ranks at %s:%s (rank %d, %s)",
               env.world_size, os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"], env.rank,
               "torchrun's store" if agent else f"up to {join_s:g} s")
    if agent:
        dist.init_process_group(backend, init_method="env://", rank=env.rank, world_size=env.world_size,
                                timeout=timeout)
    else:
        store = _join_store(env, join_s)
        dist.init_process_group(backend, store=store, rank=env.rank, world_size=env.world_size, timeout=timeout)
        store.set_timeout(timeout)  # joined: later waits on the store (NCCL's set-up) take the collectives' time
    main_rank_logging(env.rank)
    logger.log(logging.INFO if env.rank == 0 else logging.DEBUG, "process group: rank %d of %d (%s, %s)", env.rank,
               env.world_size, backend, env.source)
    return env_info()


def shutdown_distributed(wait: bool = True) -> None:
    """Leave the process group; nothing to do for one process.

    ``wait``: first wait for every rank (a normal end); False after an error, when the
    other ranks may never arrive.
    """
    if dist.is_available() and dist.is_initialized():
        try:
            if wait:
                dist.barrier()
        finally:
            dist.destroy_process_group()
            main_rank_logging(0)


def world_size() -> int:
    """Processes in the initialised process group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """Rank of this process (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """True on rank 0 (the rank that writes files and prints), and for one process."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op for one process)."""
    if world_size() > 1:
        dist.barrier()


def rank_device(device: str | torch.device = "cpu") -> torch.device:
    """Device of this rank: ``"cuda"`` (or ``"auto"`` on a GPU machine) becomes ``cuda:LOCAL_RANK``."""
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None and world_size() > 1:
        return torch.device("cuda", env_info().local_rank % max(1, torch.cuda.device_count()))
    return dev


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over the ranks, in place and returned (``t`` itself for one process)."""
    if world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on at least one (a collective)."""
    if world_size() == 1:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def all_gather_objects(obj) -> list:
    """Every rank's ``obj`` (picklable), in rank order (a collective)."""
    if world_size() == 1:
        return [obj]
    out: list = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def run_on_all(fn, what: str):
    """Run ``fn()`` on every rank; if it raises on any rank, raise on every rank (no hang).

    The rank that failed re-raises its own exception; the others raise ``ValueError``
    naming the failed rank(s), ``what`` and the first message.
    """
    err = None
    try:
        value = fn()
    except Exception as exc:  # reported to the other ranks, then re-raised
        err = exc
        value = None
    if world_size() == 1:
        if err is not None:
            raise err
        return value
    msgs = all_gather_objects(None if err is None else f"{type(err).__name__}: {err}")
    failed = [i for i, m in enumerate(msgs) if m is not None]
    if err is not None:
        raise err
    if failed:
        raise ValueError(f"{what} failed on rank(s) {failed}: {msgs[failed[0]]}")
    return value


def check_same_on_ranks(parts: dict, what: str = "inputs", hint: str = "") -> None:
    """Refuse, on every rank, values that differ from rank 0's, naming the ranks (a collective).

    Parameters
    ----------
    parts : dict
        Name -> fingerprint (a hash, or any picklable value compared with ``==``) of
        each thing every rank must hold alike, e.g. ``{"data": ..., "settings": ...}``.
    what : str
        What the values are, for the message.
    hint : str
        What to do about a difference, appended to the message.

    Raises
    ------
    ValueError
        On every rank, where some rank's value differs from rank 0's: the message names
        each such rank and which of ``parts`` differ.
    """
    if world_size() == 1:
        return
    everyone = all_gather_objects(dict(parts))
    ref = everyone[0]
    differ = {r: [k for k in ref if p.get(k) != ref[k]] or sorted(set(p) ^ set(ref))
              for r, p in enumerate(everyone) if p != ref}
    if differ:
        said = "; ".join(f"rank {r}: {', '.join(names)}" for r, names in differ.items())
        raise ValueError(f"rank(s) {sorted(differ)} hold other {what} than rank 0 ({said} differ)"
                         + (f": {hint}" if hint else ""))


#: The package whose log records :func:`main_rank_logging` shows on rank 0 alone.
_PACKAGE = __name__.split(".")[0]


class _MainRankOnly(logging.Filter):
    """On a rank other than 0: the package's records below ERROR turned into DEBUG records.

    Every rank runs the same computation and logs the same messages: a handler shows
    them once, rank 0's, unless the package's logger is at DEBUG (``--verbose``).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == _PACKAGE or record.name.startswith(_PACKAGE + ".")
        if not ours or record.levelno >= logging.ERROR:
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(_PACKAGE).isEnabledFor(logging.DEBUG)


_MAIN_RANK_ONLY = _MainRankOnly()


def main_rank_logging(this_rank: int) -> None:
    """Show this package's log records below ERROR on rank 0 only; on the other ranks they become DEBUG.

    :func:`init_distributed` calls it once the ranks have joined, and
    :func:`shutdown_distributed` undoes it. The filter goes on the handlers of the
    ``gempy_gravinv`` logger and of the root logger present at the call (the command
    line's, or an application's); errors are shown on every rank. The other ranks also
    ignore Python warnings (rank 0 gives the same ones) until rank 0's settings return.

    Parameters
    ----------
    this_rank : int
        The calling process's rank: 0 removes the filter, any other rank installs it.
    """
    for lg in (logging.getLogger(_PACKAGE), logging.getLogger()):
        for handler in lg.handlers:
            if this_rank == 0:
                handler.removeFilter(_MAIN_RANK_ONLY)
            elif _MAIN_RANK_ONLY not in handler.filters:
                handler.addFilter(_MAIN_RANK_ONLY)
    global _SAVED_WARNING_FILTERS
    if this_rank != 0 and _SAVED_WARNING_FILTERS is None:
        _SAVED_WARNING_FILTERS = list(warnings.filters)
        warnings.simplefilter("ignore")
    elif this_rank == 0 and _SAVED_WARNING_FILTERS is not None:
        warnings.filters[:] = _SAVED_WARNING_FILTERS
        _SAVED_WARNING_FILTERS = None


#: the Python warning filters a rank other than 0 had before :func:`main_rank_logging` silenced them
_SAVED_WARNING_FILTERS: list | None = None


class _GatherBlocks(torch.autograd.Function):
    """Blocks of every rank -> the whole; backward keeps this rank's rows of a replicated gradient."""

    @staticmethod
    def forward(ctx, local, counts):  # type: ignore[override]
        r = rank()
        ctx.rows = (sum(counts[:r]), sum(counts[:r + 1]))
        width = max(counts)
        pad = torch.zeros((width, *local.shape[1:]), dtype=local.dtype, device=local.device)
        pad[:local.shape[0]] = local
        parts = [torch.empty_like(pad) for _ in counts]
        dist.all_gather(parts, pad)
        return torch.cat([p[:c] for p, c in zip(parts, counts, strict=True)])

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        return g[ctx.rows[0]:ctx.rows[1]], None


def gather_blocks(local: torch.Tensor, counts) -> torch.Tensor:
    """Every rank's block (counts[rank], ...) -> the whole (sum(counts), ...) on every rank, in rank order.

    Differentiable: the gradient of a loss that every rank computes identically from the
    whole (a replicated loss) flows back to each rank's own rows. A collective.
    """
    if world_size() == 1:
        return local
    if local.shape[0] != counts[rank()]:
        raise ValueError(f"rank {rank()} holds {local.shape[0]} rows, counts say {counts[rank()]}")
    return _GatherBlocks.apply(local.contiguous(), list(counts))


def all_reduce_gradients(module: torch.nn.Module) -> None:
    """Sum the parameter gradients of ``module`` over the ranks (one flat all-reduce).

    A parameter with a gradient on any rank gets one on every rank (zeros where it had
    none); a parameter without a gradient anywhere keeps None, as in one process.
    """
    if world_size() == 1:
        return
    params = list(module.parameters())
    if not params:
        return
    dev = params[0].device if dist.get_backend() != "nccl" else _comm_device()
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.float64, device=dev)
    dist.all_reduce(has, op=dist.ReduceOp.MAX)
    used = [p for p, h in zip(params, has.tolist(), strict=True) if h > 0]
    for p in used:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    if not used:
        return
    flat = torch.cat([p.grad.reshape(-1).to(torch.float64) for p in used])
    dist.all_reduce(flat)
    pos = 0
    for p in used:
        n = p.numel()
        p.grad.copy_(flat[pos:pos + n].view_as(p.grad))
        pos += n


def _comm_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# ---------------------------------------------------------------------------------- station split
def split_counts(n_data: int, n_ranks: int, counts=None, *, noun: str = "stations") -> list[int]:
    """Items per rank: contiguous blocks, as equal as possible, or ``counts`` checked.

    Parameters
    ----------
    n_data : int
        Items in the whole (the survey's stations, or the cells).
    n_ranks : int
        Ranks sharing them.
    counts : sequence of int, optional
        An explicit (possibly unequal) split; must have ``n_ranks`` entries >= 1 summing
        to ``n_data``.
    noun : str
        What is split, plural (``"stations"``, ``"cells"``), for the messages.

    Returns
    -------
    list of int
        Items held by rank 0, 1, ...; rank r holds items
        ``sum(counts[:r]) ... sum(counts[:r + 1]) - 1`` in order.

    Raises
    ------
    ValueError
        Fewer items than ranks, or bad ``counts``.
    """
    one = noun[:-1] if noun.endswith("s") else noun
    if n_data < n_ranks:
        raise ValueError(f"{n_data} {noun} cannot be split over {n_ranks} ranks (each rank needs at least one "
                         f"{one}): use fewer processes")
    if counts is None:
        base, extra = divmod(int(n_data), int(n_ranks))
        return [base + (1 if r < extra else 0) for r in range(n_ranks)]
    c = [int(v) for v in counts]
    if len(c) != n_ranks or sum(c) != n_data or min(c) < 1:
        raise ValueError(f"counts {c} must give each of the {n_ranks} ranks at least one {one} and sum to "
                         f"the {n_data} {noun}")
    return c
