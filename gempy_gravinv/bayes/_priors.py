"""Prior specification for Bayesian GemPy gravity models (Pyro distributions).

Units of the sampled sites: dips in degrees, surface-point elevations in metres, unit
density contrasts in kg/m³ (GemPy id order: id 1 = unit above the first surface,
basement last).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["PriorSpec", "normal", "as_event"]


def normal(mean, std) -> Any:
    """A factorised Normal prior over a vector (``event_dim = 1``), float64.

    Parameters
    ----------
    mean, std : float or array_like
        Location and scale (units of the site: deg, m or kg/m³); broadcast together;
        ``std`` > 0.

    Returns
    -------
    pyro.distributions.Independent
        ``Normal(mean, std).to_event(1)``.
    """
    import pyro.distributions as dist

    m = torch.as_tensor(np.atleast_1d(np.asarray(mean, dtype=np.float64)))
    s = torch.as_tensor(np.atleast_1d(np.asarray(std, dtype=np.float64)))
    m, s = torch.broadcast_tensors(m, s)
    if torch.any(s <= 0):
        raise ValueError(f"prior std must be > 0 (units of the site), got {s.tolist()}")
    return dist.Normal(m, s).to_event(1)


def as_event(d: Any, size: int, name: str) -> Any:
    """Make ``d`` a distribution over a vector of ``size`` values (event_dim 1).

    Accepts any Pyro distribution whose ``batch_shape + event_shape`` is ``(size,)``
    (batch dims are moved to the event with ``to_event``); a scalar one is expanded.

    Parameters
    ----------
    d : pyro.distributions.Distribution
        The prior.
    size : int
        Number of values of the site.
    name : str
        Site name, used in the message.

    Returns
    -------
    pyro.distributions.Distribution
        With ``event_shape == (size,)``.

    Raises
    ------
    ValueError
        The distribution has another shape.
    """
    shape = tuple(d.batch_shape) + tuple(d.event_shape)
    if shape == ():
        d = d.expand((size,))
        shape = (size,)
    if shape != (size,):
        raise ValueError(f"prior for {name} has shape {shape}, expected ({size},)")
    if len(d.batch_shape) > 0:
        d = d.to_event(len(d.batch_shape))
    return d


@dataclass
class PriorSpec:
    """Which GemPy parameters are random, and their priors.

    Parameters
    ----------
    densities : pyro Distribution or None
        Prior on the unit density contrasts, kg/m³, shape (n_units,), GemPy id order.
        ``None``: densities fixed to ``fixed_densities``.
    fixed_densities : array_like, optional
        Unit density contrasts in kg/m³ when ``densities`` is None.
    dips : pyro Distribution or None
        Prior on the dips (degrees) of the orientations ``dip_index``.
    dip_index : sequence of int
        Rows of ``geo_model.orientations_copy`` whose dips are random.
    sp_z : pyro Distribution or None
        Prior on the elevations (metres) of surface points ``sp_index``.
    sp_index : sequence of int
        Rows of ``geo_model.surface_points_copy`` whose elevations are random.

    Notes
    -----
    Site names in the Pyro model and in the ArviZ output: ``densities`` (kg/m³),
    ``dips`` (deg), ``sp_z`` (m).
    """

    densities: Any = None
    fixed_densities: Sequence[float] | None = None
    dips: Any = None
    dip_index: Sequence[int] = field(default_factory=list)
    sp_z: Any = None
    sp_index: Sequence[int] = field(default_factory=list)

    def validate(self, n_units: int) -> None:
        """Check shapes against a model with ``n_units`` units; raise ValueError."""
        if self.densities is None:
            if self.fixed_densities is None:
                raise ValueError("give a densities prior or fixed_densities (kg/m³)")
            if len(np.atleast_1d(self.fixed_densities)) != n_units:
                raise ValueError(f"fixed_densities needs {n_units} values (kg/m³)")
        else:
            self.densities = as_event(self.densities, n_units, "densities")
        if self.dips is not None:
            if len(self.dip_index) == 0:
                raise ValueError("dips prior given without dip_index (orientation rows)")
            self.dips = as_event(self.dips, len(self.dip_index), "dips")
        if self.sp_z is not None:
            if len(self.sp_index) == 0:
                raise ValueError("sp_z prior given without sp_index (surface-point rows)")
            self.sp_z = as_event(self.sp_z, len(self.sp_index), "sp_z")

    @property
    def random_sites(self) -> list[str]:
        """Names of the structural/density sites that are sampled."""
        return [n for n in ("densities", "dips", "sp_z") if getattr(self, n) is not None]

    def sample(self) -> dict[str, torch.Tensor]:
        """Sample the parameter sites inside a Pyro model; returns forward kwargs."""
        import pyro

        out: dict[str, Any] = {}
        if self.densities is not None:
            out["densities"] = pyro.sample("densities", self.densities)
        else:
            out["densities"] = torch.as_tensor(np.asarray(self.fixed_densities, float))
        if self.dips is not None:
            out["dips"] = pyro.sample("dips", self.dips)
            out["dip_index"] = list(self.dip_index)
        if self.sp_z is not None:
            out["sp_z"] = pyro.sample("sp_z", self.sp_z)
            out["sp_index"] = list(self.sp_index)
        return out
