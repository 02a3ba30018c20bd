"""Data layout and sensitivity storage of the drop-in SimPEG gravity simulation.

- :func:`component_rows`: the rows of each component in SimPEG's data vector (receiver
  by receiver; within a receiver, the components of a location are consecutive).
- :func:`allocate`: the sensitivity array in RAM or as a ``numpy.memmap`` on disk.
- :func:`matvec`, :func:`rmatvec`, :func:`weighted_colsum_sq`: products with a stored
  sensitivity, accumulated in float64 over row blocks whatever the storage dtype
  (float32 storage keeps its 1e-7 relative error; the sums do not grow it).
"""

from __future__ import annotations

import logging
import os

import numpy as np

from .._components import check_component

log = logging.getLogger(__name__)

#: bytes of float64 temporaries one product block may take
_BLOCK_BYTES = 32 * 1024**2


def component_rows(survey) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Rows and locations of each component in SimPEG's data order.

    Parameters
    ----------
    survey : simpeg.potential_fields.gravity.survey.Survey
        Receivers with any of the gravity components.

    Returns
    -------
    dict
        ``component -> (rows (n,) int64, locations (n, 3) metres)``, in order of first
        appearance; the rows of all components partition ``range(survey.nD)``.

    Raises
    ------
    ValueError
        A component that is not a gravity component (named in the message).
    """
    source = getattr(survey, "source_field", None)
    if source is None:
        raise AttributeError(f"The survey '{survey}' has no 'source_field' attribute.")
    groups: dict[str, tuple[list, list]] = {}
    offset = 0
    for rx in source.receiver_list:
        comps = list(rx.components) if not isinstance(rx.components, str) else [rx.components]
        loc = np.atleast_2d(np.asarray(rx.locations, dtype=np.float64))
        n_c, n = len(comps), loc.shape[0]
        for i, c in enumerate(comps):
            check_component(c)
            rows, locs = groups.setdefault(c, ([], []))
            rows.append(offset + i + n_c * np.arange(n, dtype=np.int64))
            locs.append(loc)
        offset += n_c * n
    return {c: (np.concatenate(r), np.concatenate(x, axis=0)) for c, (r, x) in groups.items()}


def sensitivity_file(path: str, engine: str) -> str:
    """The file a ``"disk"`` sensitivity goes to, as SimPEG places it.

    ``engine="choclo"``: ``path`` is the file itself (a directory is refused, as SimPEG
    does, when the simulation is built); ``"geoana"``: ``path`` is a directory holding
    ``sensitivity.npy``.
    """
    if engine == "geoana":
        return os.path.join(path, "sensitivity.npy")
    return path


def allocate(shape: tuple[int, int], dtype, store: str, path: str | None = None) -> np.ndarray:
    """An uninitialised sensitivity array: ``np.empty`` (``"ram"``) or a C-ordered memmap (``"disk"``).

    On disk the file is a ``.npy`` file when its name ends in ``.npy`` (readable with
    ``np.load(..., mmap_mode="r")``), else raw C-ordered data as SimPEG's choclo engine
    writes it. Parent folders are created.
    """
    if store != "disk":
        return np.empty(shape, dtype=dtype)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    log.info("writing the %d x %d sensitivity (%s) to %s", shape[0], shape[1], np.dtype(dtype).name, path)
    if path.endswith(".npy"):
        return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    return np.memmap(path, shape=shape, dtype=dtype, order="C", mode="w+")


def _row_block(G: np.ndarray) -> int:
    return max(1, min(G.shape[0], _BLOCK_BYTES // max(1, 8 * G.shape[1])))


def matvec(G: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``G @ v`` in float64 (row blocks of a float32 ``G`` are upcast one at a time)."""
    v = np.asarray(v, dtype=np.float64)
    if G.dtype == np.float64 and not isinstance(G, np.memmap):
        return G @ v
    out = np.empty(G.shape[0], dtype=np.float64)
    b = _row_block(G)
    for r0 in range(0, G.shape[0], b):
        out[r0:r0 + b] = np.asarray(G[r0:r0 + b], dtype=np.float64) @ v
    return out


def rmatvec(G: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``G.T @ v`` in float64 (accumulated over row blocks)."""
    v = np.asarray(v, dtype=np.float64)
    if G.dtype == np.float64 and not isinstance(G, np.memmap):
        return G.T @ v
    out = np.zeros(G.shape[1], dtype=np.float64)
    b = _row_block(G)
    for r0 in range(0, G.shape[0], b):
        out += np.asarray(G[r0:r0 + b], dtype=np.float64).T @ v[r0:r0 + b]
    return out


def weighted_colsum_sq(G: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``Σ_i w_i G_ij²`` (the diagonal of ``Gᵀ diag(w) G``) in float64, over row blocks."""
    w = np.asarray(weights, dtype=np.float64)
    out = np.zeros(G.shape[1], dtype=np.float64)
    b = _row_block(G)
    for r0 in range(0, G.shape[0], b):
        g = np.asarray(G[r0:r0 + b], dtype=np.float64)
        out += w[r0:r0 + b] @ (g * g)
    return out
