"""Density backends: the protocol and a registry by name (for configs and the CLI).

A *density backend* is a ``torch.nn.Module`` whose ``forward(points)`` takes points
``(n, 3)`` in metres (z up) and returns the density contrast ``(n,)`` in kg/m³ as a
tensor that carries gradients to the backend's parameters. The operator, the INR
trainer and the Bayesian models only rely on that.

Register a backend with :func:`register_density` (a class, a factory, or a lazy
``"module:attr"`` string so heavy optional imports such as GemPy happen only when the
backend is built) and build it with :func:`make_density`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch

from .._validation import check_choice


@runtime_checkable
class DensityBackend(Protocol):
    """What every density backend provides.

    ``forward(points)``: points ``(n, 3)`` metres, z up -> density contrast ``(n,)`` kg/m³.
    """

    def forward(self, points: torch.Tensor) -> torch.Tensor:  # pragma: no cover - protocol
        ...

    def __call__(self, points: torch.Tensor) -> torch.Tensor:  # pragma: no cover - protocol
        ...


_REGISTRY: dict[str, Any] = {}


def register_density(name: str, backend: Any = None, *, overwrite: bool = False):
    """Register a density backend under ``name``.

    Parameters
    ----------
    name : str
        Registry key (case-sensitive), e.g. ``"inr"``, ``"voxel"``, ``"geology"``.
    backend : class, callable or str, optional
        An ``nn.Module`` subclass or factory returning one, or a lazy reference
        ``"package.module:Attr"`` imported on first use. Without it, returns a decorator.
    overwrite : bool
        Allow replacing an existing entry (otherwise a ``ValueError``).

    Examples
    --------
    >>> @register_density("constant_example", overwrite=True)
    ... class Constant(torch.nn.Module):
    ...     def __init__(self, value=100.0):
    ...         super().__init__(); self.value = torch.nn.Parameter(torch.tensor(float(value)))
    ...     def forward(self, points):
    ...         return self.value.expand(points.shape[0])
    >>> make_density("constant_example", value=5.0)(torch.zeros(2, 3)).tolist()
    [5.0, 5.0]
    """
    if not isinstance(name, str) or not name:
        raise ValueError("a density backend name must be a non-empty string")

    def _add(obj):
        if not (callable(obj) or (isinstance(obj, str) and ":" in obj)):
            raise TypeError(f"backend for {name!r} must be a class, a factory or 'module:attr', got {obj!r}")
        if name in _REGISTRY and not overwrite and _REGISTRY[name] is not obj:
            raise ValueError(f"density backend {name!r} is already registered; pass overwrite=True")
        _REGISTRY[name] = obj
        return obj

    if backend is None:
        return _add
    return _add(backend)


def _resolve(name: str) -> Callable[..., Any]:
    check_choice(name, available_densities(), name="density backend")
    obj = _REGISTRY[name]
    if isinstance(obj, str):
        mod, _, attr = obj.partition(":")
        obj = getattr(importlib.import_module(mod), attr)
        _REGISTRY[name] = obj
    return obj


def get_density_class(name: str) -> Callable[..., Any]:
    """The class (or factory) registered under ``name`` (imports lazy entries).

    Parameters
    ----------
    name : str
        A registered backend name (:func:`available_densities`).

    Returns
    -------
    class or callable

    Raises
    ------
    ValueError
        ``name`` is not registered.
    """
    return _resolve(name)


def make_density(name: str, **kwargs: Any) -> torch.nn.Module:
    """Build the density backend registered as ``name`` with ``kwargs``.

    Parameters
    ----------
    name : str
        A registered backend name (:func:`available_densities`).
    **kwargs
        Passed to the backend's constructor.

    Returns
    -------
    torch.nn.Module
        ``module(points (n, 3) m) -> (n,)`` density contrast, kg/m³.
    """
    return _resolve(name)(**kwargs)


def available_densities() -> list[str]:
    """Names of the registered backends, sorted."""
    return sorted(_REGISTRY)
