"""Memory per rank of a station-sharded operator for a given world size, before anything is built."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._device import MemoryEstimate, available_memory, resolve_device
from .._mesh import as_prism_mesh
from .._validation import check_choice
from ._group import split_counts


# ---------------------------------------------------------------------------------- memory planning
@dataclass(frozen=True)
class RankMemoryPlan:
    """Operator memory of every rank for a given world size (bytes), before anything is built.

    Attributes
    ----------
    world_size : int
        Ranks the plan is for.
    counts : list of int
        Stations per rank.
    per_rank : list of MemoryEstimate
        Each rank's block: geometry, dense block (if held), chunk workspace, total.
    available : int
        Memory one rank may use: the node's free memory over the ranks sharing it.
    fixed : int
        Bytes every rank needs whatever the split (cells, columns, workspace, ``extra``).
    per_station : int
        Bytes each station adds to its rank (its coordinates, and its dense row).
    """

    world_size: int
    counts: list
    per_rank: list
    available: int
    fixed: int
    per_station: int

    @property
    def largest(self) -> int:
        """The largest rank's total, bytes."""
        return max(e.total for e in self.per_rank)

    def min_world_size(self, headroom: float = 0.9) -> int | None:
        """Fewest ranks (same memory per rank) whose largest block fits; None if none does."""
        room = headroom * self.available - self.fixed
        if room <= 0:
            return None
        n = sum(self.counts)
        return max(1, int(np.ceil(n * self.per_station / room)))


def _n_columns(mesh, kernel: str, method: str, quadrature: int) -> int:
    if kernel == "point":
        return mesh.n_cells * quadrature**3
    if method == "cells":
        return mesh.n_cells * 8
    return int(mesh.corner_nodes()[0].shape[0])


def estimate_rank_memory(mesh, n_data: int, n_ranks: int, *, dtype: torch.dtype = torch.float64,
                         store: str = "auto", counts=None, memory_budget: int | None = None,
                         kernel: str = "prism", method: str = "nodes", quadrature: int = 2,
                         ranks_per_node: int | None = None, available: int | None = None,
                         device: str | torch.device = "cpu", extra_bytes: int = 0) -> RankMemoryPlan:
    """Operator memory per rank of a station-sharded run on ``n_ranks`` ranks, without building it.

    Counts what :meth:`GravityOperator.estimate_memory` counts for each rank's block:
    the replicated geometry (cells, corner nodes), the rank's stations, its dense block
    ``n_local x n_cells`` when held, and the chunk workspace.

    Parameters
    ----------
    mesh : PrismMesh or discretize mesh
        The cells.
    n_data : int
        Stations in the whole survey.
    n_ranks : int
        World size to plan for (>= 1).
    dtype : torch.dtype
        Operator dtype.
    store : {"auto", "dense", "matrix_free"}
        ``"auto"``: dense when every block fits half of a rank's share (as the operator decides).
    counts : sequence of int, optional
        Stations per rank (default: as equal as possible).
    memory_budget : int, optional
        Chunk workspace per rank (bytes); default as :class:`GravityOperator`.
    kernel, method, quadrature
        As for :class:`GravityOperator`.
    ranks_per_node : int, optional
        Ranks sharing one node's memory (default: ``n_ranks``, all on this node).
    available : int, optional
        Free memory of one node, bytes (default: this machine's, on ``device``).
    device : str or torch.device
        Where the blocks will live (for the default ``available``).
    extra_bytes : int
        Replicated bytes per rank besides the operator (the network, the cell points).

    Returns
    -------
    RankMemoryPlan
    """
    mesh = as_prism_mesh(mesh)
    check_choice(store, ("auto", "dense", "matrix_free"), name="store")
    c = split_counts(int(n_data), int(n_ranks), counts)
    it = torch.finfo(dtype).bits // 8
    node = int(available_memory(resolve_device(device)) if available is None else available)
    share = node // max(1, int(ranks_per_node or n_ranks))
    if memory_budget is None:
        cap = 2 * 1024**3 if resolve_device(device).type == "cuda" else 256 * 1024**2
        memory_budget = int(min(share // 4, cap))
    cols = _n_columns(mesh, kernel, method, quadrature)
    fixed_geom = cols * 3 * it + (mesh.n_cells * 64 if kernel == "prism" and method == "nodes" else 0)
    if store == "auto":
        store = "dense" if max(c) * mesh.n_cells * it <= min(0.5 * share, 8 * 1024**3) else "matrix_free"
    per_rank = []
    for n_local in c:
        geom = fixed_geom + n_local * 3 * it
        dense = n_local * mesh.n_cells * it
        total = geom + memory_budget + (dense if store == "dense" else 0) + int(extra_bytes)
        per_rank.append(MemoryEstimate(geom, dense, memory_budget, total, store, share))
    per_station = 3 * it + (mesh.n_cells * it if store == "dense" else 0)
    return RankMemoryPlan(int(n_ranks), c, per_rank, share, fixed_geom + memory_budget + int(extra_bytes),
                          per_station)


def check_rank_memory(plan: RankMemoryPlan, *, headroom: float = 0.9) -> RankMemoryPlan:
    """Refuse, naming the rank, a plan whose largest rank would not fit ``headroom`` x its share.

    Returns ``plan`` when every rank fits.

    Raises
    ------
    MemoryError
        Which rank needs how much, what it has, and how many ranks would fit.
    """
    worst = int(np.argmax([e.total for e in plan.per_rank]))
    need = plan.per_rank[worst].total
    if need <= headroom * plan.available:
        return plan
    gib = 1024**3
    fit = plan.min_world_size(headroom)
    hint = (f"at least {fit} ranks with this much memory each would fit" if fit is not None else
            "no number of ranks fits (the cells alone exceed one rank's share): use store='matrix_free', "
            "a coarser mesh or ranks with more memory")
    raise MemoryError(f"rank {worst} of {plan.world_size} would need {need / gib:.2f} GiB "
                      f"({plan.per_rank[worst]}) but has {plan.available / gib:.2f} GiB (its share of the node's "
                      f"free memory): {hint}")
