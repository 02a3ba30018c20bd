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
"""

from __future__ import annotations

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
