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
    try:
        m, s = torch.broadcast_tensors(m, s)
    except RuntimeError:
        raise ValueError(f"prior mean ({m.numel()} values) and std ({s.numel()} values) must have the same "
                         "length, or one of them a single value") from None
    if not bool(torch.isfinite(m).all()):
        raise ValueError(f"prior mean must be finite (units of the site), got {m.tolist()}")
    if not bool(torch.isfinite(s).all()) or torch.any(s <= 0):
        raise ValueError(f"prior std must be finite and > 0 (units of the site), got {s.tolist()}")
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
    unit_names : sequence of str, optional
        Labels of the units (GemPy id order), the ``unit`` coordinate of the ArviZ
        output; default: the forward's unit names.
    dip_names : sequence of str, optional
        Labels of the random orientations (``orientation`` coordinate); default
        ``orientation_<row>``.
    point_names : sequence of str, optional
        Labels of the random surface points (``surface_point`` coordinate); default
        ``point_<row>``.
    reference_unit : int or str, optional
        Make the densities identifiable when a datum offset (or a mean alignment) is
        free: a uniform shift of every contrast acts on the data like the offset, so
        only differences between units are informed. With a reference unit (its index
        in GemPy id order, or its name), the sampled site is ``densities_rel``
        (n_units - 1 values, dimension ``unit_rel``): the contrasts of the other units
        relative to the reference unit, kg/m³, whose prior is the one ``densities``
        implies for the differences (a Normal prior gives a correlated multivariate
        Normal). The forward then sees the reference unit at contrast 0 (the
        background of the mesh), and ``densities`` is recorded as a deterministic site
        with that vector.

    Notes
    -----
    Site names in the Pyro model and in the ArviZ output: ``densities`` (kg/m³),
    ``densities_rel`` (kg/m³, with a reference unit), ``dips`` (deg), ``sp_z`` (m).
    """

    densities: Any = None
    fixed_densities: Sequence[float] | None = None
    dips: Any = None
    dip_index: Sequence[int] = field(default_factory=list)
    sp_z: Any = None
    sp_index: Sequence[int] = field(default_factory=list)
    unit_names: Sequence[str] | None = None
    dip_names: Sequence[str] | None = None
    point_names: Sequence[str] | None = None
    reference_unit: int | str | None = None

    def validate(self, n_units: int, unit_names: Sequence[str] | None = None) -> None:
        """Check shapes against a model with ``n_units`` units; raise ValueError.

        ``unit_names`` (the forward's) fill :attr:`unit_names` when it is not given and
        resolve a reference unit given by name.
        """
        if self.unit_names is None and unit_names is not None and len(unit_names) == n_units:
            self.unit_names = list(unit_names)
        for attr, n in (("unit_names", n_units), ("dip_names", len(self.dip_index)),
                        ("point_names", len(self.sp_index))):
            v = getattr(self, attr)
            if v is not None and len(v) != n:
                raise ValueError(f"{attr} has {len(v)} labels, expected {n}")
            if v is not None and len(set(v)) != len(v):
                raise ValueError(f"{attr} names a label twice: {list(v)} (they become ArviZ coordinates)")
        if self.dips is None and len(self.dip_index):
            raise ValueError("dip_index given without a dips prior: give dips=... or leave dip_index empty")
        if self.sp_z is None and len(self.sp_index):
            raise ValueError("sp_index given without an sp_z prior: give sp_z=... or leave sp_index empty")
        if self.densities is None and self.reference_unit is not None:
            raise ValueError("reference_unit applies to a densities prior; with fixed_densities there is nothing "
                             "to sample relative to it")
        self._ref = None
        if self.reference_unit is not None:
            self._ref = self._reference_index(n_units)
        if self.densities is None:
            if self.fixed_densities is None:
                raise ValueError("give a densities prior or fixed_densities (kg/m³)")
            if len(np.atleast_1d(self.fixed_densities)) != n_units:
                raise ValueError(f"fixed_densities needs {n_units} values (kg/m³)")
            if not np.all(np.isfinite(np.asarray(self.fixed_densities, dtype=float))):
                raise ValueError(f"fixed_densities must be finite (kg/m³), got {list(self.fixed_densities)}")
        else:
            self.densities = as_event(self.densities, n_units, "densities")
            if self._ref is not None:
                self._rel_prior = _difference_prior(self.densities, self._ref)
        if self.dips is not None:
            if len(self.dip_index) == 0:
                raise ValueError("dips prior given without dip_index (orientation rows)")
            self.dips = as_event(self.dips, len(self.dip_index), "dips")
        if self.sp_z is not None:
            if len(self.sp_index) == 0:
                raise ValueError("sp_z prior given without sp_index (surface-point rows)")
            self.sp_z = as_event(self.sp_z, len(self.sp_index), "sp_z")

    def _reference_index(self, n_units: int) -> int:
        r = self.reference_unit
        if isinstance(r, str):
            names = list(self.unit_names or [])
            if r not in names:
                raise ValueError(f"reference_unit {r!r} is not a unit name: {names}")
            return names.index(r)
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 0 <= int(r) < n_units:
            raise ValueError(f"reference_unit must be a unit name or an index in [0, {n_units}), got {r!r}")
        return int(r)

    @property
    def reference_index(self) -> int | None:
        """Index of the reference unit (after :meth:`validate`), or None."""
        return getattr(self, "_ref", None)

    @property
    def relative_unit_names(self) -> list[str]:
        """Labels of the units of ``densities_rel`` (all but the reference)."""
        names = list(self.unit_names or [])
        return [n for i, n in enumerate(names) if i != self.reference_index]

    @property
    def random_sites(self) -> list[str]:
        """Names of the structural/density sites that are sampled."""
        out = [n for n in ("densities", "dips", "sp_z") if getattr(self, n) is not None]
        if self.reference_index is not None and "densities" in out:
            out[out.index("densities")] = "densities_rel"
        return out

    def sample(self) -> dict[str, torch.Tensor]:
        """Sample the parameter sites inside a Pyro model; returns forward kwargs."""
        import pyro

        out: dict[str, Any] = {}
        if self.densities is not None and self.reference_index is not None:
            rel = pyro.sample("densities_rel", self._rel_prior)
            k = self.reference_index
            zero = torch.zeros(rel.shape[:-1] + (1,), dtype=rel.dtype)
            out["densities"] = pyro.deterministic("densities", torch.cat([rel[..., :k], zero, rel[..., k:]], -1))
        elif self.densities is not None:
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


def _difference_prior(prior: Any, ref: int) -> Any:
    """The prior of (ρ_j - ρ_ref, j != ref) implied by a prior on all contrasts ρ (kg/m³).

    Exact for a (multivariate) Normal prior; other priors are refused with a message.
    """
    import pyro.distributions as dist

    base = prior.base_dist if isinstance(prior, dist.Independent) else prior
    if isinstance(base, dist.Normal):
        mean, cov = base.loc, torch.diag_embed(base.scale ** 2)
    elif isinstance(base, dist.MultivariateNormal):
        mean, cov = base.loc, base.covariance_matrix
    else:
        raise ValueError("reference_unit needs a Normal or MultivariateNormal densities prior, got "
                         f"{type(base).__name__}; give the prior of the differences directly instead")
    n = mean.shape[-1]
    D = torch.zeros(n - 1, n, dtype=mean.dtype)
    others = [i for i in range(n) if i != ref]
    D[torch.arange(n - 1), others] = 1.0
    D[:, ref] = -1.0
    return dist.MultivariateNormal(D @ mean, D @ cov @ D.T)
