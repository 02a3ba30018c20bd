"""Devices and memory: resolve a device setting, free memory, the operator's memory estimate, the optimiser."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


class DeviceUnavailableError(ValueError, RuntimeError):
    """A known device this machine lacks (``"cuda"`` without a GPU): a bad setting and, as before, a RuntimeError."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device of a setting, checked against this machine.

    ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``
    (``"mps"`` where PyTorch has it). Raises ``ValueError`` for an unknown name (``"gpu"``:
    PyTorch calls GPUs ``"cuda"``), :class:`DeviceUnavailableError` (a ``ValueError`` and
    a ``RuntimeError``) for a device this machine does not have, ``TypeError`` for
    neither a string nor a ``torch.device``.
    """
    ok = "use 'cpu', 'cuda', 'cuda:N' (N-th GPU) or 'auto' (CUDA when available)"
    if isinstance(device, str) and device.strip().lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string or torch.device, got {type(device).__name__}")
    try:
        dev = torch.device(device.strip().lower() if isinstance(device, str) else device)
    except (RuntimeError, ValueError):
        hint = " (PyTorch calls GPUs 'cuda')" if str(device).strip().lower().startswith("gpu") else ""
        raise ValueError(f"unknown device {device!r}{hint}: {ok}") from None
    mps = getattr(torch.backends, "mps", None)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(f"device {str(device)!r} was asked for but CUDA is not available "
                                     "(no GPU, or a CPU-only PyTorch build); use 'cpu' or 'auto'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceUnavailableError(f"device {str(device)!r}: this machine has {torch.cuda.device_count()} "
                                     "GPU(s), numbered from 0")
    if dev.type == "mps" and not (mps is not None and mps.is_available()):
        raise DeviceUnavailableError(f"device {str(device)!r} was asked for but MPS is not available")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {str(device)!r} is not supported: {ok}")
    return dev


def adam(params, lr: float) -> torch.optim.Adam:
    """Adam with learning rate ``lr`` on ``params``, as one fused kernel where torch has one.

    The fused implementation (CPU and CUDA) updates every parameter and its moments in a
    single pass instead of a dozen elementwise kernels per tensor; it computes the same
    update up to floating-point rounding. Other devices (MPS) or non-float parameters
    use the default implementation.
    """
    params = list(params)
    fused = bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=lr, fused=fused)


def available_memory(device: torch.device) -> int:
    """Free memory in bytes on ``device`` (host RAM for CPU)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # pragma: no cover - psutil is a dependency
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


@dataclass(frozen=True)
class MemoryEstimate:
    """Memory a :class:`GravityOperator` needs, in bytes.

    Attributes
    ----------
    geometry : int
        Stations, columns (nodes or points) and the cell-to-column map.
    dense_matrix : int
        The full n_data x n_cells sensitivity (only held when ``store == "dense"``).
    workspace : int
        Peak temporaries of one chunk.
    total : int
        What the chosen store will hold at its peak.
    store : str
        The resolved store.
    available : int
        Free memory on the device when estimated.
    """

    geometry: int
    dense_matrix: int
    workspace: int
    total: int
    store: str
    available: int

    def __str__(self) -> str:
        gib = 1024**3
        return (f"store={self.store}: total {self.total / gib:.3f} GiB (geometry {self.geometry / gib:.3f}, "
                f"dense G {self.dense_matrix / gib:.3f}{'' if self.store == 'dense' else ' not held'}, "
                f"chunk workspace {self.workspace / gib:.3f}); available {self.available / gib:.2f} GiB")
