"""Memory of an INR run, estimated before it starts (bytes).

The operator reports its own need (:meth:`GravityOperator.estimate_memory`); the field's
training step holds, for every point the field is evaluated at, its encoded features and
each hidden layer's activations for the backward pass; Adam keeps two moments per
parameter. A run whose estimate exceeds the free memory of its device is refused with the
estimate, before any work.
"""

from __future__ import annotations

import math

import torch

from .._operator import available_memory

#: Points per block when a field is evaluated without gradients (final models, predictions).
EVAL_CHUNK = 1 << 18


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def estimate_run_memory(prob, field: torch.nn.Module) -> dict:
    """Bytes an INR run on ``prob`` will need at its peak, by part.

    Parameters
    ----------
    prob : Problem
        Operator, points and settings of the run.
    field : torch.nn.Module
        A field as the run builds it (its parameters and layer widths are counted).

    Returns
    -------
    dict
        ``operator``, ``field_step`` (features and activations of one training step,
        forward and backward), ``optimizer`` (parameters, gradients, Adam moments),
        ``points`` (coordinates and cell vectors), ``total`` and ``available`` (bytes).
    """
    n_points = int(prob.points.shape[0])
    n_cells = int(prob.mesh.n_cells)
    op_bytes = prob.op.estimate_memory().total if prob.op is not None else prob.G.numel() * prob.G.element_size()
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
    return dict(operator=int(op_bytes), field_step=int(field_step), optimizer=int(optimizer), points=int(points),
                total=int(total), available=int(available_memory(prob.device)))


def check_run_memory(prob, field: torch.nn.Module, *, headroom: float = 0.9) -> dict:
    """Refuse, with the estimate, a run that would not fit in ``headroom`` x the free memory.

    Returns the estimate (:func:`estimate_run_memory`) when it fits.

    Raises
    ------
    MemoryError
        The estimate by part, the free memory, and what to change.
    """
    est = estimate_run_memory(prob, field)
    if est["available"] > 0 and est["total"] > headroom * est["available"] and math.isfinite(est["total"]):
        parts = ", ".join(f"{k} {_gib(est[k])}" for k in ("operator", "field_step", "optimizer", "points"))
        raise MemoryError(
            f"this INR run needs about {_gib(est['total'])} ({parts}) but {prob.device} has "
            f"{_gib(est['available'])} free: use a coarser mesh or fewer cells, quadrature=1, a smaller "
            f"network (width/depth), store='matrix_free', or a device with more memory")
    return est
