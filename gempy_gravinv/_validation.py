"""Small input checks shared by the public constructors (clear, early errors)."""

from __future__ import annotations

import numpy as np


def as_finite_array(values, *, name: str, ndim: int | None = None, shape=None) -> np.ndarray:
    """Return ``values`` as a float64 array, raising if it is empty, ragged or non-finite.

    Parameters
    ----------
    values : array_like
        Input values.
    name : str
        Name used in error messages.
    ndim : int, optional
        Required number of dimensions.
    shape : tuple, optional
        Required shape; ``None`` entries match any length.

    Returns
    -------
    numpy.ndarray
        float64 copy of the input.
    """
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric array-like, got {type(values).__name__}") from exc
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if shape is not None:
        if len(shape) != arr.ndim or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
            want = tuple("n" if s is None else s for s in shape)
            raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = np.argwhere(bad)[:5].tolist()
        raise ValueError(f"{name} contains {int(bad.sum())} NaN/inf value(s), first at index {idx}")
    return arr
