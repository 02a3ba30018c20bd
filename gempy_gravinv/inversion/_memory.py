"""Memory of an INR run, estimated before it starts (bytes).

The operator reports its own need (:meth:`GravityOperator.estimate_memory`); the field's
training step holds, for every point the field is evaluated at, its encoded features and
each hidden layer's activations for the backward pass; Adam keeps two moments per
parameter. A run whose estimate exceeds the free memory of its device is refused with the
estimate, before any work.

Under several ranks (a station-sharded operator) the estimate is per rank: the rank's
operator block plus the replicated field, optimiser and cells, against the rank's share
of its node's free memory; :func:`estimate_run_memory` also plans for another world
size, and the refusal names the rank and the number of ranks that would fit.
"""

from __future__ import annotations

import math

import torch

from .._device import available_memory
from .._distributed import ShardedGravityOperator, check_rank_memory, env_info, estimate_rank_memory, run_on_all

#: Points per block when a field is evaluated without gradients (final models, predictions).
EVAL_CHUNK = 1 << 18


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def estimate_run_memory(prob, field: torch.nn.Module, world_size: int | None = None) -> dict:
    """Bytes an INR run on ``prob`` will need at its peak, by part (per rank when sharded).

    Parameters
    ----------
    prob : Problem
        Operator, points and settings of the run.
    field : torch.nn.Module
        A field as the run builds it (its parameters and layer widths are counted).
    world_size : int, optional
        Plan for this many ranks (stations split as equally as possible, all on this
        node) instead of the run's own operator: the largest rank's need.

    Returns
    -------
    dict
        ``operator`` (this rank's block), ``field_step`` (features and activations of
        one training step, forward and backward), ``optimizer`` (parameters, gradients,
        Adam moments), ``points`` (coordinates and cell vectors), ``total`` and
        ``available`` (bytes: the rank's share of its node's free memory), ``world_size``,
        and with ``world_size`` the ``plan``
        (:class:`~gempy_gravinv._distributed.RankMemoryPlan` of the operator).
    """
    n_points = int(prob.points.shape[0])
    n_cells = int(prob.mesh.n_cells)
    plan = None
    if world_size is not None:
        plan = estimate_rank_memory(prob.mesh, prob.survey.n_data, int(world_size), dtype=prob.dtype,
                                    store=prob.cfg.store, device=prob.device)
        op_bytes = plan.largest
    elif prob.op is not None:
        op_bytes = prob.op.estimate_memory().total
    else:
        op_bytes = prob.G.numel() * prob.G.element_size()
    params = [p for p in field.parameters()]
    n_params = sum(p.numel() for p in params)
    p_size = params[0].element_size() if params else 4
    enc = getattr(getattr(field, "encoding", None), "out_dim", None)
    if enc is None:  # a backend without an encoding (voxel, geology...): one value per point
        per_point = 4
    else:
        widths = [m.out_features for m in field.modules() if isinstance(m, torch.nn.Linear)]
        per_point = int(enc) + 2 * sum(widths)  # features, and pre- and post-activation per layer
    field_step = 3 * n_points * per_point * p_size  # forward values, saved tensors, gradients
    optimizer = 4 * n_params * p_size
    points = n_points * 3 * 8 + 6 * n_cells * prob.d.element_size()
    total = op_bytes + field_step + optimizer + points
    ranks = int(world_size) if world_size is not None else (
        prob.op.world_size if isinstance(prob.op, ShardedGravityOperator) else 1)
    per_node = ranks if world_size is not None else env_info().local_world_size if ranks > 1 else 1
    if prob.device.type == "cuda":  # one GPU per rank
        per_node = 1
    est = dict(operator=int(op_bytes), field_step=int(field_step), optimizer=int(optimizer), points=int(points),
               total=int(total), available=int(available_memory(prob.device)) // max(1, per_node),
               world_size=ranks)
    if plan is not None:
        est["plan"] = plan
    return est


def check_run_memory(prob, field: torch.nn.Module, *, headroom: float = 0.9) -> dict:
    """Refuse, with the estimate, a run that would not fit in ``headroom`` x the free memory.

    Returns the estimate (:func:`estimate_run_memory`) when it fits. Under several ranks
    a collective: every rank checks its own need, and a refusal on one rank is raised on
    every rank.

    Raises
    ------
    MemoryError
        The estimate by part, the free memory, and what to change (per rank when
        sharded: the rank, and how many ranks would fit).
    """
    return run_on_all(lambda: _check(prob, field, headroom), "the memory check")


def _check(prob, field: torch.nn.Module, headroom: float) -> dict:
    est = estimate_run_memory(prob, field)
    if est["available"] > 0 and est["total"] > headroom * est["available"] and math.isfinite(est["total"]):
        parts = ", ".join(f"{k} {_gib(est[k])}" for k in ("operator", "field_step", "optimizer", "points"))
        if isinstance(prob.op, ShardedGravityOperator) and prob.op.world_size > 1:
            plan = estimate_rank_memory(prob.mesh, prob.survey.n_data, prob.op.world_size, dtype=prob.dtype,
                                        store=prob.op.store, counts=prob.op.counts, device=prob.device,
                                        extra_bytes=est["total"] - est["operator"])
            try:
                check_rank_memory(plan, headroom=headroom)
            except MemoryError as exc:
                raise MemoryError(f"this sharded INR run ({parts} on rank {prob.op.rank}): {exc}") from None
            raise MemoryError(f"rank {prob.op.rank} of {prob.op.world_size} needs about {_gib(est['total'])} "
                              f"({parts}) but has {_gib(est['available'])} (its share of the node): use more "
                              "ranks or nodes, store='matrix_free', or a smaller network")
        raise MemoryError(
            f"this INR run needs about {_gib(est['total'])} ({parts}) but {prob.device} has "
            f"{_gib(est['available'])} free: use a coarser mesh or fewer cells, quadrature=1, a smaller "
            f"network (width/depth), store='matrix_free', several ranks (torchrun), or a device with more memory")
    return est
