"""How the kernels run in this process: compiled or eager, the compile cache, forked children.

Compiled kernels. ``torch.compile`` fuses a kernel evaluation into one C++/OpenMP (CPU)
or Triton (CUDA) loop, at a one-off cost of seconds per process and kernel kind. Its
on-disk cache goes to the user's cache folder (``$XDG_CACHE_HOME/gempy_gravinv/
torchinductor`` or the platform's equivalent), not the shared system temp folder, unless
``TORCHINDUCTOR_CACHE_DIR`` is already set.

Forked children. A process forked after torch ran a parallel (OpenMP) region inherits
a thread pool it cannot use: its next parallel region deadlocks (SimPEG's
``MultiprocessingMetaSimulation`` forks by default on Linux). Importing this module
registers an ``os.register_at_fork`` handler that, in the child, sets torch to one
thread (as PyTorch's own DataLoader workers do) and disables compiled kernels (their
OpenMP regions have a fixed thread count); the child's products then run eagerly on one
thread each, which is what a pool of worker processes wants. Spawned children
(``multiprocessing.get_context("spawn")``) are unaffected.

Reproducible CPU linear algebra. torch's CPU BLAS and LAPACK are Intel MKL (x86 builds),
whose results can differ in the last bits from one process to the next on the same
machine (its code path may depend on memory alignment and run-time dispatch), and a
training run amplifies such differences. Importing this module puts MKL in its
conditional-numerical-reproducibility mode ``AUTO, STRICT`` (the same results on the
same machine and thread count), as ``MKL_CBWR=AUTO,STRICT`` would, unless ``MKL_CBWR`` is
already set. MKL accepts the mode only before its first call in the process: where
torch has already run an MKL routine, a log message says so and the mode is unchanged
(set ``MKL_CBWR`` in the environment instead). :func:`mkl_reproducibility` says which.
"""

from __future__ import annotations

import ctypes
import logging
import os

import torch

log = logging.getLogger(__name__)

#: torch.compile'd kernel functions, shared by all operators of this process
_COMPILED: dict = {}
#: True in a child forked from a process that imported this module
_STATE = {"forked": False}


def _after_fork_in_child() -> None:
    _STATE["forked"] = True
    _COMPILED.clear()
    try:
        torch.set_num_threads(1)
    except Exception:  # pragma: no cover - never seen; a child must not die in an at-fork hook
        pass


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


#: MKL's reproducibility modes (mkl.h): MKL_CBWR_AUTO, MKL_CBWR_STRICT
_MKL_CBWR_AUTO, _MKL_CBWR_STRICT = 2, 0x10000


def _set_mkl_reproducible() -> str:
    """Put torch's MKL in mode ``AUTO, STRICT``; returns what was done (see :func:`mkl_reproducibility`)."""
    if os.environ.get("MKL_CBWR"):
        return f"MKL_CBWR={os.environ['MKL_CBWR']} (set by the user)"
    if not torch.backends.mkl.is_available():
        return "no MKL in this torch build"
    try:
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        setter = lib.mkl_serv_cbwr_set
    except (OSError, AttributeError):
        return "MKL's reproducibility switch is not reachable in this torch build"
    status = int(setter(ctypes.c_int(_MKL_CBWR_AUTO | _MKL_CBWR_STRICT)))
    if status != 0:
        log.info("MKL's reproducible mode could not be set (status %d: MKL already ran in this process); set "
                 "MKL_CBWR=AUTO,STRICT in the environment for results that repeat from process to process", status)
        return f"not set: MKL already ran in this process (status {status})"
    return "AUTO,STRICT"


_STATE["mkl"] = _set_mkl_reproducible()


def mkl_reproducibility() -> str:
    """How MKL (torch's CPU BLAS/LAPACK) was set at import: ``"AUTO,STRICT"``, the user's ``MKL_CBWR``, or why not."""
    return _STATE["mkl"]


def in_forked_child() -> bool:
    """True in a process forked (not spawned) from one that imported ``gempy_gravinv``."""
    return _STATE["forked"]


def compile_cache_dir() -> str:
    """Folder of torch's compile cache: ``TORCHINDUCTOR_CACHE_DIR`` if set, else under the user's cache folder."""
    env = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if env:
        return env
    try:
        import platformdirs

        base = platformdirs.user_cache_dir("gempy_gravinv")
    except ImportError:  # pragma: no cover - platformdirs comes with the dependencies
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gempy_gravinv")
    return os.path.join(base, "torchinductor")


def compiled(fn):
    """``torch.compile(fn, dynamic=True)``, once per process, with its cache in :func:`compile_cache_dir`."""
    if fn not in _COMPILED:
        if not os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
            folder = compile_cache_dir()
            os.makedirs(folder, exist_ok=True)
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder
        log.debug("compiling %s (cache %s)", getattr(fn, "__name__", fn), os.environ["TORCHINDUCTOR_CACHE_DIR"])
        _COMPILED[fn] = torch.compile(fn, dynamic=True)
    return _COMPILED[fn]
