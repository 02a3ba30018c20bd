"""Plain-JSON conversion of the values the package reports (NumPy, torch, paths)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np


def to_jsonable(obj: Any) -> Any:
    """Convert NumPy / torch / Path values inside ``obj`` to plain JSON types.

    Dicts, lists and tuples are converted recursively (dict keys become strings),
    arrays and tensors become nested lists, NumPy scalars become Python scalars, NaN
    and inf become ``None`` (so the result is strict JSON), paths become strings and
    anything else its ``str``.

    Parameters
    ----------
    obj : object
        Value to convert.

    Returns
    -------
    object
        A value ``json.dumps(..., allow_nan=False)`` accepts.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "detach"):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (str, int)):
        return obj
    return str(obj)
