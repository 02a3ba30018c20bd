"""Writing several outputs at once: each writer runs, a failure is reported, not raised."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .._json import to_jsonable

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike
Job = tuple[str, Callable[[], Any]]


def write_each(jobs: Iterable[Job]) -> dict[str, str]:
    """Run each ``(kind, writer)`` job; record its output path or why it failed.

    One output that cannot be written (a UBC file for a tree mesh, a figure that needs a
    tensor mesh) must not lose the others, so each writer's exception is caught, logged
    as a warning and recorded as ``"failed: <reason>"``.

    Parameters
    ----------
    jobs : iterable of (str, callable)
        ``kind`` (the key of the returned dict) and a function of no argument that
        writes one output and returns its path.

    Returns
    -------
    dict
        ``{kind: path or "failed: <reason>"}``, in the order of ``jobs``.
    """
    written: dict[str, str] = {}
    for kind, job in jobs:
        try:
            written[kind] = str(job())
        except Exception as exc:  # one output failing is reported, the others are still written
            logger.warning("could not write %s: %s", kind, exc)
            written[kind] = f"failed: {exc}"
    return written


def save_figures(directory: PathLike, prefix: str, figures: Iterable[Job], *, dpi: int = 100) -> dict[str, str]:
    """Draw each figure and save it as ``{directory}/{prefix}_{kind}.png``.

    Parameters
    ----------
    directory : str or path-like
        Output folder (must exist).
    prefix : str
        File-name prefix: a plain stem (see :func:`check_name`).
    figures : iterable of (str, callable)
        ``kind`` and a function of no argument that returns a matplotlib figure.
    dpi : int
        Resolution of the PNG files.

    Returns
    -------
    dict
        ``{kind: path or "failed: <reason>"}`` (see :func:`write_each`).
    """
    from ._folder import check_name

    check_name(prefix, "figure prefix")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def saver(kind: str, draw: Callable[[], Any]) -> Callable[[], Path]:
        def run() -> Path:
            path = Path(directory) / f"{prefix}_{kind}.png"
            try:
                draw().savefig(path, dpi=dpi, bbox_inches="tight")
            finally:
                plt.close("all")
            return path

        return run

    return write_each((kind, saver(kind, draw)) for kind, draw in figures)


def save_metrics_json(path: PathLike, metrics: dict, *, indent: int = 2) -> Path:
    """Write a (nested) dict of metrics to JSON, NumPy/torch-safe (NaN and inf become null).

    Parameters
    ----------
    path : str or path-like
        Output ``.json`` file.
    metrics : dict
        Values may be NumPy scalars/arrays, torch tensors, paths or nested containers.

    Returns
    -------
    pathlib.Path
    """
    if not isinstance(metrics, dict):
        raise TypeError(f"metrics must be a dict, got {type(metrics).__name__}")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(to_jsonable(metrics), indent=indent, allow_nan=False) + "\n")
    return p
