"""A :class:`GravityOperator` split by stations across ranks (exact: the same numbers as one process).

Each rank builds the operator of its block of stations only. Forward: the rank's block
of g_z (or the gathered whole). Adjoint: the partial ``G_rᵀ r_r`` all-reduced, so every
rank holds the full ``Gᵀ r``. Units: density contrast kg/m³; g_z mGal, positive down.
"""

from __future__ import annotations

import numpy as np
import torch

from .._device import MemoryEstimate, available_memory
from .._mesh import as_prism_mesh
from .._operator import GravityOperator
from .._survey import Survey
from .._validation import check_choice
from ._group import (
    all_reduce_sum,
    any_rank,
    env_info,
    gather_blocks,
    rank,
    rank_device,
    run_on_all,
    split_counts,
    world_size,
)


def _sharing(device: torch.device) -> int:
    """Ranks sharing the memory of ``device``: the node's ranks for host memory, 1 for a rank's own GPU."""
    return 1 if device.type == "cuda" else max(1, env_info().local_world_size)


# ---------------------------------------------------------------------------------- autograd
class _ShardForward(torch.autograd.Function):
    """Local block ``G_r m``; backward all-reduces ``G_rᵀ g_r`` (the full gradient on every rank)."""

    @staticmethod
    def forward(ctx, m, sop):  # type: ignore[override]
        ctx.sop = sop
        return sop._local.forward(m)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):  # type: ignore[override]
        return ctx.sop._reduced_adjoint(g), None


class _MatrixBlock:
    """Rows of a user matrix G (mGal per kg/m³) with the operator methods the shard uses."""

    def __init__(self, G: torch.Tensor) -> None:
        self._G, self.store = G, "dense"
        self.n_data, self.n_cells = int(G.shape[0]), int(G.shape[1])
        self.device, self.dtype = G.device, G.dtype

    def forward(self, m):
        return self._G @ m

    def adjoint(self, r):
        return self._G.T @ r

    def dense(self):
        return self._G

    def jtj_diag(self, weights=None):
        g2 = self._G * self._G
        return g2.sum(0) if weights is None else (g2 * (weights * weights)[:, None]).sum(0)

    def estimate_memory(self) -> MemoryEstimate:
        b = self._G.numel() * self._G.element_size()
        return MemoryEstimate(0, b, 0, b, "dense", available_memory(self.device))


# ---------------------------------------------------------------------------------- the operator
class ShardedGravityOperator:
    """A :class:`GravityOperator` split by stations across the ranks of a process group.

    Each rank builds a :class:`GravityOperator` on its block of stations only
    (:func:`split_counts`). With one process it is the whole operator. Collective: every
    rank must construct it and call its products in the same order.

    Parameters
    ----------
    mesh : PrismMesh or discretize mesh
        The cells (replicated on every rank).
    survey : Survey or array_like (n_data, 3)
        All stations (metres, z up), in the same order on every rank.
    device : str or torch.device
        ``"cuda"`` means this rank's GPU (``cuda:LOCAL_RANK``).
    dtype : torch.dtype
        float64 (default) or float32.
    store : {"auto", "dense", "matrix_free"}
        As for :class:`GravityOperator`; ``"auto"`` is decided once for all ranks: dense
        only when every rank's block fits its share of the node's free memory.
    counts : sequence of int, optional
        Stations per rank (default: as equal as possible).
    **options
        Passed to :class:`GravityOperator` (``method``, ``kernel``, ``memory_budget``,
        ``check_stations``, ``compile``, ``lattice``, ``dense_fraction``,
        ``max_dense_bytes``...).

    Attributes
    ----------
    n_data, n_cells : int
        Stations of the whole survey, cells.
    counts : list of int
        Stations per rank; ``start``/``stop`` bound this rank's block.
    local : GravityOperator
        This rank's operator (its ``n_data`` is ``counts[rank]``).

    Examples
    --------
    >>> import torch
    >>> from gempy_gravinv import PrismMesh, Survey
    >>> mesh = PrismMesh.from_tensor([10.0] * 4, [10.0] * 4, [10.0] * 2, origin=(0, 0, -20))
    >>> op = ShardedGravityOperator(mesh, Survey([[20.0, 20.0, 1.0], [5.0, 5.0, 1.0]]), device="cpu")
    >>> g = op.forward(torch.full((mesh.n_cells,), 300.0, dtype=torch.float64), gather=True)
    >>> tuple(g.shape), bool((g > 0).all())  # mGal, positive down above excess mass
    ((2,), True)
    """

    def __init__(self, mesh, survey, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64,
                 store: str = "auto", *, counts=None, **options) -> None:
        mesh = as_prism_mesh(mesh)
        if not isinstance(survey, Survey):
            survey = Survey(survey)
        self._setup(mesh, survey, counts, device, dtype)
        check_choice(store, ("auto", "dense", "matrix_free"), name="store")
        itemsize = torch.finfo(dtype).bits // 8
        frac = float(options.pop("dense_fraction", 0.5))
        cap = int(options.pop("max_dense_bytes", 8 * 1024**3))
        if store == "auto":  # one decision for all ranks
            share = available_memory(self.device) / _sharing(self.device)
            fits = self.n_local * mesh.n_cells * itemsize <= min(frac * share, cap)
            store = "matrix_free" if any_rank(not fits) else "dense"
        sub = survey.subset(np.arange(self.start, self.stop))
        self._local = run_on_all(lambda: GravityOperator(mesh, sub, device=self.device, dtype=dtype, store=store,
                                                         **options), "building the operator block")
        self.store = store

    def _setup(self, mesh, survey: Survey, counts, device, dtype) -> None:
        self.mesh, self.survey, self.dtype = mesh, survey, dtype
        self.world_size, self.rank = world_size(), rank()
        self.counts = split_counts(survey.n_data, self.world_size, counts)
        offsets = np.concatenate([[0], np.cumsum(self.counts)])
        self.start, self.stop = int(offsets[self.rank]), int(offsets[self.rank + 1])
        self.n_data, self.n_cells, self.n_local = survey.n_data, mesh.n_cells, self.stop - self.start
        self.device = rank_device(device)

    @classmethod
    def from_operator(cls, op: GravityOperator, counts=None) -> ShardedGravityOperator:
        """Shard a whole :class:`GravityOperator`'s stations with the same settings (rebuilt per rank)."""
        return cls(op.mesh, op.survey, device=op.device, dtype=op.dtype, store=op.store, counts=counts,
                   **_settings(op))

    def whole(self) -> GravityOperator | None:
        """A matrix-free :class:`GravityOperator` on every station with this rank's settings (None for a matrix).

        For the pieces that need every row of the sensitivity on one rank without holding
        it (the streamed closed-form setup). Not collective.
        """
        if not isinstance(self._local, GravityOperator):
            return None
        return GravityOperator(self.mesh, self.survey, device=self.device, dtype=self.dtype, store="matrix_free",
                               **_settings(self._local))

    @classmethod
    def from_matrix(cls, G, mesh, survey: Survey, counts=None) -> ShardedGravityOperator:
        """Shard the rows of a user matrix ``G`` (n_data, n_cells), mGal per kg/m³, positive down."""
        G = torch.as_tensor(G)
        self = cls.__new__(cls)
        self._setup(as_prism_mesh(mesh), survey, counts, G.device, G.dtype)
        if tuple(G.shape) != (self.n_data, self.n_cells):
            raise ValueError(f"operator matrix has shape {tuple(G.shape)}; expected (n_data={self.n_data}, "
                             f"n_cells={self.n_cells}) in mGal per kg/m³")
        self._local = _MatrixBlock(G[self.start:self.stop].contiguous())
        self.store = "dense"
        return self

    # ------------------------------------------------------------------ helpers
    @property
    def local(self):
        """Block operator of this rank (a :class:`GravityOperator` on its stations)."""
        return self._local

    @property
    def sharded(self) -> bool:
        """True when the stations are split over more than one rank."""
        return self.world_size > 1

    def local_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Positions in this rank's block of the global station indices ``rows`` that it holds."""
        r = rows[(rows >= self.start) & (rows < self.stop)]
        return r - self.start

    def _local_data(self, values, name: str) -> torch.Tensor:
        """A local (n_local[, k]) or global (n_data[, k]) data array -> this rank's block."""
        v = torch.as_tensor(values).to(device=self.device, dtype=self.dtype)
        if v.shape[0] == self.n_local:
            return v
        if v.shape[0] == self.n_data:
            return v[self.start:self.stop]
        raise ValueError(f"{name} has {v.shape[0]} rows; expected this rank's {self.n_local} stations or all "
                         f"{self.n_data} (mGal)")

    def _reduced_adjoint(self, r: torch.Tensor) -> torch.Tensor:
        return all_reduce_sum(self._local.adjoint(r).contiguous())

    def gather(self, local: torch.Tensor) -> torch.Tensor:
        """Every rank's block (n_local[, k]) -> the whole (n_data[, k]) on every rank, in station order."""
        return gather_blocks(local, self.counts)

    # ------------------------------------------------------------------ products
    @torch.no_grad()
    def forward(self, density, *, gather: bool = False) -> torch.Tensor:
        """G·m without autograd: density (n_cells[, k]) kg/m³ -> g_z mGal, positive down.

        Returns this rank's block (n_local[, k]), or the whole (n_data[, k]) on every rank
        with ``gather=True``.
        """
        g = self._local.forward(torch.as_tensor(density).to(device=self.device, dtype=self.dtype))
        return self.gather(g) if gather else g

    @torch.no_grad()
    def adjoint(self, residual) -> torch.Tensor:
        """Gᵀ·r summed over the ranks: r (this rank's n_local[, k] or all n_data[, k]) mGal -> (n_cells[, k]).

        Collective; every rank gets the same full product (mGal per kg/m³).
        """
        return self._reduced_adjoint(self._local_data(residual, "residual"))

    def __call__(self, density) -> torch.Tensor:
        """Differentiable block G_r·m (n_local[, k]) mGal; its backward all-reduces G_rᵀ g."""
        m = torch.as_tensor(density)
        if m.device != self.device or m.dtype != self.dtype:
            m = m.to(device=self.device, dtype=self.dtype)
        return _ShardForward.apply(m, self)

    def gathered(self, density) -> torch.Tensor:
        """Differentiable whole G·m (n_data[, k]) mGal on every rank (a replicated loss of it is exact)."""
        return gather_blocks(self(density), self.counts)

    def dense(self) -> torch.Tensor:
        """The whole sensitivity G (n_data, n_cells), mGal per kg/m³, gathered on every rank.

        Replicated: for the pieces that need the whole design (least-squares start,
        closed-form head); it needs n_data x n_cells memory on every rank.
        """
        return self.gather(self._local.dense())

    @torch.no_grad()
    def jtj_diag(self, weights=None) -> torch.Tensor:
        """diag(Gᵀ W² G) summed over the ranks (n_cells,); ``weights`` local or global (n_data,), mGal⁻¹."""
        w = None if weights is None else self._local_data(torch.as_tensor(weights).reshape(-1), "weights")
        return all_reduce_sum(self._local.jtj_diag(w).contiguous())

    def estimate_memory(self) -> MemoryEstimate:
        """Memory of this rank's block (bytes); ``available`` is this rank's share (of the node's RAM, or its GPU)."""
        e = self._local.estimate_memory()
        share = e.available // _sharing(self.device)
        return MemoryEstimate(e.geometry, e.dense_matrix, e.workspace, e.total, e.store, int(share))

    def __repr__(self) -> str:
        return (f"ShardedGravityOperator(n_data={self.n_data}, n_cells={self.n_cells}, rank={self.rank}, "
                f"world_size={self.world_size}, counts={self.counts}, store={self.store!r})")


def _settings(op: GravityOperator) -> dict:
    """The options that rebuild ``op`` on other stations (its kernel, method, budget, component)."""
    opts = dict(method=op.method, kernel=op.kernel, quadrature=op.quadrature, memory_budget=op.memory_budget,
                check_stations=False, compile=op.compile)
    if getattr(op, "component", "gz") != "gz":  # gravity-gradient operators: the same component per block
        opts["component"] = op.component
    return opts
