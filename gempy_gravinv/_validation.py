"""Small input checks shared by the public constructors (clear, early errors)."""

from __future__ import annotations

import os

import numpy as np


def _check_real_dtype(values, name: str, allow_bool: bool) -> None:
    """Refuse complex values always, and booleans unless ``allow_bool`` (casting would hide them)."""
    if isinstance(values, (bool, np.bool_)) and not allow_bool:
        raise TypeError(f"{name} must hold real numbers, got a bool")
    if isinstance(values, complex):
        raise TypeError(f"{name} must hold real numbers, got a complex value")
    kind = getattr(getattr(values, "dtype", None), "kind", None)
    if kind is None and hasattr(values, "is_complex"):  # torch tensors
        kind = "c" if values.is_complex() else ("b" if str(values.dtype) == "torch.bool" else None)
    if kind is None and isinstance(values, (list, tuple)):
        try:
            kind = np.asarray(values).dtype.kind
        except (TypeError, ValueError):  # ragged: reported by the float conversion
            return
    if kind == "c":
        raise TypeError(f"{name} must hold real numbers, got complex values (the imaginary part would be "
                        "dropped)")
    if kind == "b" and not allow_bool:
        raise TypeError(f"{name} must hold real numbers, got booleans (True/False would be read as 1/0)")


def as_finite_array(values, *, name: str, ndim: int | None = None, shape=None,
                    allow_bool: bool = True) -> np.ndarray:
    """Return ``values`` as a float64 array, raising if it is empty, ragged or non-finite.

    Parameters
    ----------
    values : array_like
        Input values. Complex values are refused (casting would drop the imaginary part).
    name : str
        Name used in error messages.
    ndim : int, optional
        Required number of dimensions.
    shape : tuple, optional
        Required shape; ``None`` entries match any length.
    allow_bool : bool
        Accept booleans (as 0/1); ``False`` refuses them.

    Returns
    -------
    numpy.ndarray
        float64 copy of the input.
    """
    _check_real_dtype(values, name, allow_bool)
    if hasattr(values, "detach") and hasattr(values, "requires_grad"):  # torch: its values, on the host
        values = values.detach().cpu()
        values = (values.double() if values.is_floating_point() else values).numpy()
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


def check_choice(value, choices, *, name: str):
    """Return ``value`` if it is one of ``choices``, else raise a ``ValueError`` naming both.

    Parameters
    ----------
    value : object
        The setting to check.
    choices : sequence
        The allowed values.
    name : str
        Name of the setting, used in the message.

    Returns
    -------
    object
        ``value`` unchanged.
    """
    choices = tuple(choices)
    try:
        ok = value in choices
    except TypeError:  # unhashable or incomparable values are never a choice
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value


def _require_real(value, name: str, what: str) -> None:
    """``TypeError`` unless ``value`` is a real number (``bool`` and strings refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")


def check_number(value, *, name: str, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, allow_none: bool = False) -> float | None:
    """Return ``value`` as a finite float inside ``[low, high]``, else raise naming ``name``.

    Parameters
    ----------
    value : float, int or None
        The setting to check (``bool`` and strings are refused).
    name : str
        Name of the setting, used in the message.
    low, high : float, optional
        Bounds of the allowed range (``None``: unbounded on that side).
    low_open, high_open : bool
        Exclude the bound itself (``value > low`` rather than ``>=``).
    allow_none : bool
        Accept ``None`` (returned as ``None``).

    Returns
    -------
    float or None
    """
    if value is None and allow_none:
        return None
    _require_real(value, name, "a number")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {v}")
    if low is not None and (v <= low if low_open else v < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {v}")
    if high is not None and (v >= high if high_open else v > high):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {v}")
    return v


def check_int(value, *, name: str, minimum: int | None = None, allow_none: bool = False,
              maximum: int | None = None) -> int | None:
    """Return ``value`` as an ``int`` within ``[minimum, maximum]``, else raise naming ``name``.

    A float with an integral value (``3.0``) is accepted; ``bool``, strings, ``2.5`` and
    non-finite values are refused.

    Parameters
    ----------
    value : int, float or None
        The setting to check.
    name : str
        Name of the setting, used in the message.
    minimum : int, optional
        Smallest allowed value.
    maximum : int, optional
        Largest allowed value.
    allow_none : bool
        Accept ``None`` (returned as ``None``).

    Returns
    -------
    int or None
    """
    if value is None and allow_none:
        return None
    _require_real(value, name, "an integer")
    if not np.isfinite(float(value)) or int(value) != value:
        raise ValueError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be an integer <= {maximum}, got {v}")
    return v


def check_plain_name(value, *, name: str) -> str:
    """Return ``value`` if it is a plain file-name stem, else a ``ValueError`` naming ``name``.

    A stem goes into paths such as ``{folder}/{stem}_model.nc``: it must be a non-empty
    string with no path separator (slash, backslash, the platform's), no ``:``, no NUL, no
    ``..`` and no leading ``.``, so that it cannot write outside its folder.

    Parameters
    ----------
    value : object
        The name to check.
    name : str
        What the name is, for the message.

    Returns
    -------
    str
    """
    ok = isinstance(value, str) and value.strip() != "" and ".." not in value and not value.startswith(".")
    if ok:
        ok = not any(c in value for c in {"/", "\\", ":", "\0", os.sep})
    if not ok:
        raise ValueError(f"{name} {value!r} is not a plain file-name stem (a plain name: no path separators, "
                         "no '..', not empty, not starting with '.'): it must not write outside its folder")
    return value


def fits_lonlat(xy) -> bool:
    """Whether every (x, y) of ``xy`` (n, 2) fits longitude/latitude ranges (|x| <= 180, |y| <= 90)."""
    xy = np.asarray(xy, dtype=float)
    return bool(np.all(np.abs(xy[:, 0]) <= 180.0) and np.all(np.abs(xy[:, 1]) <= 90.0))
