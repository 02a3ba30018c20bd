"""Data layout and sensitivity storage of the drop-in SimPEG gravity simulation.

- :func:`component_rows`: the rows of each component in SimPEG's data vector (receiver
  by receiver; within a receiver, the components of a location are consecutive).
- :func:`allocate`: the sensitivity array in RAM or as a ``numpy.memmap`` on disk.
- :func:`matvec`, :func:`rmatvec`: products with a stored sensitivity, as SimPEG
  computes them (the vector cast to the storage dtype, one BLAS product in that dtype:
  float32 storage gives float32 products), or accumulated in float64 over row blocks
  when asked (float32 storage then keeps only its 1e-7 rounding of each entry).
- :func:`weighted_colsum_sq`: ``Σ_i w_i G_ij²`` in float64 (SimPEG's ``einsum`` promotes
  a float32 ``G`` to float64 too).
"""

from __future__ import annotations

import logging
import os

import numpy as np

from .._survey import group_components, simpeg_layout

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
    loc, comps = simpeg_layout(survey)  # the one layout shared with Survey.from_simpeg and the operators
    return {c: (rows, loc[rows]) for c, rows in group_components(comps).items()}


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

    In RAM a float64 array is column-major (Fortran order): the operators' compiled
    blocks come as (cells, stations), so filling it is a contiguous copy rather than a
    transposition (about a quarter of a tutorial mesh's G build). A float32 array stays
    row-major as SimPEG's: its float32 products (:func:`matvec`) then accumulate in
    SimPEG's order, and give SimPEG's float32 results (a column-major float32 G sums in
    another order, 2e-7 apart).

    On disk the file is a ``.npy`` file when its name ends in ``.npy`` (readable with
    ``np.load(..., mmap_mode="r")``), else raw C-ordered data as SimPEG's choclo engine
    writes it. Parent folders are created.
    """
    if store != "disk":
        return np.empty(shape, dtype=dtype, order="F" if np.dtype(dtype) == np.float64 else "C")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    log.info("writing the %d x %d sensitivity (%s) to %s", shape[0], shape[1], np.dtype(dtype).name, path)
    if path.endswith(".npy"):
        return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    return np.memmap(path, shape=shape, dtype=dtype, order="C", mode="w+")


def build(shape: tuple[int, int], dtype, store: str, path: str | None, ops: dict) -> np.ndarray:
    """The sensitivity in SimPEG's units from the operators' row blocks (:func:`allocate`'s array).

    Parameters
    ----------
    shape : (nD, nC)
        Data by active cells.
    dtype : np.float32 or np.float64
        Storage; every entry is computed in float64, scaled, then rounded once.
    store : {"ram", "disk"}
    path : str or None
        The ``"disk"`` file.
    ops : dict
        ``component -> (rows, GravityOperator, scale)``: the data rows of each component
        and the factor from the operator's unit per kg/m³ to SimPEG's per g/cm³.

    Returns
    -------
    (nD, nC) numpy.ndarray or numpy.memmap
        A float64 single-component G built in one block (the tutorial meshes) is that
        block itself, scaled in place: no second array, no copy.
    """
    import itertools

    import torch

    streams = {comp: op.dense_rows() for comp, (_, op, _) in ops.items()}
    if store == "ram" and np.dtype(dtype) == np.float64 and len(ops) == 1:
        comp, (rows, op, scale) = next(iter(ops.items()))
        first = next(streams[comp], None)
        whole = first is not None and first[:2] == (0, shape[0]) and np.array_equal(rows, np.arange(shape[0]))
        if whole and op.store != "dense":  # a fresh block (not the operator's stored G): ours to keep
            return first[2].to(device="cpu", dtype=torch.float64).mul_(scale).numpy()
        streams[comp] = itertools.chain([] if first is None else [first], streams[comp])
    G = allocate(shape, dtype, store, path)
    for comp, (rows, _, scale) in ops.items():
        contiguous = len(rows) == 0 or bool(np.all(np.diff(rows) == 1))
        for r0, r1, block in streams[comp]:  # computed in float64, scaled, then rounded once
            b = block.to(device="cpu", dtype=torch.float64)
            if contiguous:  # (cells, rows) blocks into column-major G: contiguous copies
                dst = torch.from_numpy(G[rows[0] + r0:rows[0] + r1])
                if G.dtype == np.float64:
                    torch.mul(b, scale, out=dst)
                else:
                    dst.copy_(b * scale)
            else:
                G[rows[r0:r1]] = b.numpy() * scale
    if isinstance(G, np.memmap):
        G.flush()
    return G


def _row_block(G: np.ndarray) -> int:
    return max(1, min(G.shape[0], _BLOCK_BYTES // max(1, 8 * G.shape[1])))


def matvec(G: np.ndarray, v: np.ndarray, accumulate: type | None = None) -> np.ndarray:
    """``G @ v``.

    Parameters
    ----------
    G : (n, m) numpy.ndarray or numpy.memmap
        Stored sensitivity, float32 or float64.
    v : (m,) array_like
        Vector.
    accumulate : None or numpy.float64
        None: SimPEG's product, ``G @ v.astype(G.dtype)`` (float32 in, float32 out for a
        float32 ``G``). ``np.float64``: float64 sums over row blocks upcast one at a time.

    Returns
    -------
    (n,) numpy.ndarray
        In ``G``'s dtype (``accumulate=None``) or float64.
    """
    if accumulate is None or G.dtype == np.float64:
        return np.asarray(G @ np.asarray(v).astype(G.dtype, copy=False))
    v = np.asarray(v, dtype=np.float64)
    out = np.empty(G.shape[0], dtype=np.float64)
    b = _row_block(G)
    for r0 in range(0, G.shape[0], b):
        out[r0:r0 + b] = np.asarray(G[r0:r0 + b], dtype=np.float64) @ v
    return out


def rmatvec(G: np.ndarray, v: np.ndarray, accumulate: type | None = None) -> np.ndarray:
    """``G.T @ v``: as :func:`matvec` (SimPEG's product in ``G``'s dtype, or float64 sums over row blocks)."""
    if accumulate is None or G.dtype == np.float64:
        return np.asarray(G.T @ np.asarray(v).astype(G.dtype, copy=False))
    v = np.asarray(v, dtype=np.float64)
    out = np.zeros(G.shape[1], dtype=np.float64)
    b = _row_block(G)
    for r0 in range(0, G.shape[0], b):
        out += np.asarray(G[r0:r0 + b], dtype=np.float64).T @ v[r0:r0 + b]
    return out


def weighted_colsum_sq(G: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``Σ_i w_i G_ij²`` (the diagonal of ``Gᵀ diag(w) G``) in float64, over row (C order) or column blocks."""
    w = np.asarray(weights, dtype=np.float64)
    out = np.zeros(G.shape[1], dtype=np.float64)
    if G.flags.f_contiguous and not G.flags.c_contiguous:  # column blocks are contiguous
        bc = max(1, _BLOCK_BYTES // max(1, 8 * G.shape[0]))
        for c0 in range(0, G.shape[1], bc):
            g = np.asarray(G[:, c0:c0 + bc], dtype=np.float64)
            out[c0:c0 + bc] = w @ (g * g)
        return out
    b = _row_block(G)
    for r0 in range(0, G.shape[0], b):
        g = np.asarray(G[r0:r0 + b], dtype=np.float64)
        out += w[r0:r0 + b] @ (g * g)
    return out
