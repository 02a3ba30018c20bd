"""The one place that protects the process from GemPy's global torch state.

GemPy 2026.0.x, when switched to its PyTorch backend,

- enters a process-wide ``torch.no_grad()`` that it never leaves (with ``grads=False``),
- permanently replaces functions of the global ``torch`` module (``sum``, ``zeros``, ``min``,
  ``max``, ``transpose``, ...) with numpy-flavoured wrappers and adds new ones
  (``array``, ``to_numpy``, ...), after which ``torch.zeros(2, 3)`` or
  ``torch.sum(x, dim=1)`` raise ``TypeError`` (and Pyro's diagnostics break),
- calls ``torch.set_default_device``.

:func:`gempy_torch` is a context manager (and :func:`guarded` a decorator) that switches
GemPy to its PyTorch backend for the duration of the block and, on exit (also on error),
restores the torch module attributes, the grad mode, the default device and GemPy's own
backend state to what they were before. Every GemPy call in this package goes through it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

__all__ = ["gempy_torch", "guarded", "pristine_torch_attributes", "restore_torch"]

F = TypeVar("F", bound=Callable[..., Any])

_LOCK = threading.RLock()
_DEPTH = 0


def _is_gempy_function(obj: Any) -> bool:
    mod = getattr(obj, "__module__", None) or ""
    return callable(obj) and mod.startswith(("gempy_engine", "gempy."))


def _snapshot() -> dict[str, Any]:
    """Non-module attributes of ``torch`` with GemPy's replacements repaired."""
    vf = torch._C._VariableFunctions
    snap: dict[str, Any] = {}
    for name, value in vars(torch).items():
        if isinstance(value, types.ModuleType):
            continue
        if _is_gempy_function(value):
            # polluted before we were imported: repair from torch's C bindings if possible
            if hasattr(vf, name):
                snap[name] = getattr(vf, name)
            continue
        snap[name] = value
    return snap


#: torch attributes as they were when this module was imported (GemPy pollution repaired)
_PRISTINE: dict[str, Any] = _snapshot()


def pristine_torch_attributes() -> dict[str, Any]:
    """A copy of the saved, unpatched ``torch`` module attributes (name -> object)."""
    return dict(_PRISTINE)


def restore_torch() -> list[str]:
    """Put back every ``torch`` attribute GemPy replaced or added.

    Returns
    -------
    list of str
        Names that were repaired (empty when nothing had been touched).
    """
    fixed = []
    tdict = vars(torch)
    for name in list(tdict):
        value = tdict[name]
        if name in _PRISTINE:
            if value is not _PRISTINE[name]:
                setattr(torch, name, _PRISTINE[name])
                fixed.append(name)
        elif _is_gempy_function(value):
            delattr(torch, name)
            fixed.append(name)
    for name, value in _PRISTINE.items():  # deleted names
        if name not in tdict:
            setattr(torch, name, value)
            fixed.append(name)
    return fixed


_BT_ATTRS = ("engine_backend", "tensor_backend_pointer", "tfnp", "_", "t", "dtype", "dtype_obj",
             "tensor_types", "COMPUTE_GRADS", "use_gpu", "use_pykeops", "device",
             "_torch_no_grad_context")


@contextlib.contextmanager
def gempy_torch(*, dtype: str = "float64", grads: bool = True,
                use_gpu: bool = False, skip_gc: bool = True,
                num_threads: int | None = None) -> Iterator[Any]:
    """Run GemPy on its PyTorch backend inside a block and undo its global side effects.

    Parameters
    ----------
    dtype : {"float64", "float32"}
        GemPy tensor dtype.
    grads : bool
        Whether GemPy should build an autograd graph (``compute_grads``). With ``False``
        the block runs under ``torch.no_grad()``.
    use_gpu : bool
        Ask GemPy for CUDA (it then sets the default torch device; restored on exit).
        On CPU the default-device mode GemPy installs is removed at once (it intercepts
        every torch call, a large overhead on small models).
    skip_gc : bool
        Turn GemPy's forced ``gc.collect()`` after each field evaluation into a no-op
        inside the block (on small models it dominates the evaluation time).
    num_threads : int, optional
        torch intra-op threads inside the block (restored on exit). GemPy models of a
        few hundred points are overhead-bound, so one thread is usually the fastest.

    Yields
    ------
    gempy_engine.core.backend_tensor.BackendTensor
        GemPy's backend class, switched to PyTorch.

    Notes
    -----
    Re-entrant: nested blocks switch only once, and only the outermost exit restores.
    After the block, ``torch`` attributes, grad mode, the default device and GemPy's
    backend pointers are exactly as before it, so Pyro and user code are unaffected.
    """
    global _DEPTH
    from gempy_engine.config import AvailableBackends
    from gempy_engine.core.backend_tensor import BackendTensor

    with _LOCK:
        outer = _DEPTH == 0
        if outer:
            grad_mode = torch.is_grad_enabled()
            dev_ctx = getattr(getattr(torch, "_GLOBAL_DEVICE_CONTEXT", None), "device_context", None)
            default_device = None if dev_ctx is None else dev_ctx.device
            bt_state = {k: BackendTensor.__dict__[k] for k in _BT_ATTRS if k in BackendTensor.__dict__}
            pointer = dict(BackendTensor.tensor_backend_pointer)
            with contextlib.redirect_stdout(io.StringIO()):  # GemPy prints on every switch
                BackendTensor.change_backend_gempy(engine_backend=AvailableBackends.PYTORCH,
                                                   use_gpu=use_gpu, dtype=dtype, grads=grads)
            if not use_gpu and dev_ctx is None:
                torch.set_default_device(None)
            threads0 = torch.get_num_threads()
            if num_threads is not None:
                torch.set_num_threads(int(num_threads))
            gc_mod = None
            if skip_gc:
                try:
                    from gempy_engine.modules.evaluator import generic_evaluator as gc_mod
                except ImportError:  # pragma: no cover - other gempy_engine layout
                    gc_mod = None
                if gc_mod is not None and hasattr(gc_mod, "gc"):
                    saved_gc = gc_mod.gc
                    gc_mod.gc = types.SimpleNamespace(collect=lambda *a, **k: 0)
                else:
                    gc_mod = None
        _DEPTH += 1
        try:
            yield BackendTensor
        finally:
            _DEPTH -= 1
            if outer:
                if gc_mod is not None:
                    gc_mod.gc = saved_gc
                if torch.get_num_threads() != threads0:
                    torch.set_num_threads(threads0)
                ctx = BackendTensor.__dict__.get("_torch_no_grad_context")
                if ctx is not None and ctx is not bt_state.get("_torch_no_grad_context"):
                    with contextlib.suppress(Exception):
                        ctx.__exit__(None, None, None)
                for k in _BT_ATTRS:
                    if k in bt_state:
                        setattr(BackendTensor, k, bt_state[k])
                    elif k in BackendTensor.__dict__:
                        with contextlib.suppress(AttributeError):
                            delattr(BackendTensor, k)
                BackendTensor.tensor_backend_pointer.clear()
                BackendTensor.tensor_backend_pointer.update(pointer)
                restore_torch()
                torch.set_grad_enabled(grad_mode)
                now = getattr(getattr(torch, "_GLOBAL_DEVICE_CONTEXT", None), "device_context", None)
                if now is not dev_ctx:
                    # None removes the device mode GemPy installed (it slows every torch op)
                    torch.set_default_device(default_device)


def guarded(func: F | None = None, *, grads: bool = True, dtype: str = "float64") -> F:
    """Decorator form of :func:`gempy_torch` (``@guarded`` or ``@guarded(grads=False)``)."""

    def deco(f: F) -> F:
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            with gempy_torch(grads=grads, dtype=dtype):
                return f(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    if func is not None:
        return deco(func)
    return deco  # type: ignore[return-value]
