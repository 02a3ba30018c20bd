"""Pyro models in standard units for :class:`~gempy_gravinv.bayes.BayesProblem`.

:class:`SubsetForward` lets a subset of the units carry random densities (the others
stay at their contrasts, kg/m³); :func:`standard_model` samples every parameter as
``loc + scale * z`` with z ~ N(0, 1) and records the physical values (kg/m³, deg, m,
mGal) under their usual site names. g_z in mGal, positive downward.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._survey import Survey
from ._likelihoods import NoAlignment, OffsetAlignment
from ._priors import PriorSpec

__all__ = ["SubsetForward", "standard_model"]


class SubsetForward:
    """A forward whose random densities are a subset of the units; the others stay fixed.

    Parameters
    ----------
    base : MeshForward or CenteredGridForward
        Forward over every unit: contrasts (n_units,) kg/m³ -> g_z mGal (positive down).
    fixed_kgm3 : array_like, shape (n_units,)
        Contrast of every unit, kg/m³ (the free ones are overwritten).
    free : list of int
        Units (GemPy id - 1) whose contrast is given at call time.
    """

    def __init__(self, base: Any, fixed_kgm3: np.ndarray, free: list[int]) -> None:
        self.base = base
        self.fixed = torch.as_tensor(np.asarray(fixed_kgm3, dtype=np.float64))
        self.free = torch.as_tensor(np.asarray(free, dtype=np.int64))
        self.n_units = max(len(free), 1)

    def full(self, densities) -> torch.Tensor:
        """All unit contrasts (kg/m³) from the free ones."""
        if len(self.free) == 0:
            return self.fixed
        d = torch.as_tensor(densities, dtype=torch.float64).reshape(-1)
        return self.fixed.to(d.dtype).index_put((self.free,), d)

    def __call__(self, densities, **params) -> torch.Tensor:
        """g_z (mGal, positive down) for the free contrasts (kg/m³) and structural params."""
        return self.base(self.full(densities), **params)


def standard_model(forward: Any, spec: PriorSpec, sites: dict, likelihood: Any, survey: Survey,
                    offset: tuple[float, float] | None):
    """A Pyro model whose parameters are sampled in standard units: ``loc + scale * z``, z ~ N(0, 1).

    Densities (kg/m³), dips (deg), elevations (m) and the offset (mGal) differ by orders
    of magnitude in their posterior scales; in standard units the MAP search and NUTS
    see a well-conditioned posterior. The physical values are deterministic sites with
    the usual names (``densities``, ``dips``, ``sp_z``, ``offset``), so the ArviZ output
    holds them; :meth:`BayesProblem.label` drops the ``*_decentered`` sites. Otherwise
    as :func:`~gempy_gravinv.bayes.make_model` (same sites, ``gz_pred``, ``obs``).

    Parameters
    ----------
    forward : SubsetForward
        Free contrasts (kg/m³) and structural parameters -> g_z (mGal).
    spec : PriorSpec
        Rows and labels of the random sites (its distributions are not sampled here).
    sites : dict
        Site name -> (mean, std) arrays, in the site's units.
    likelihood : callable
        ``likelihood(pred, obs, survey)`` sampling ``obs``.
    survey : Survey
        Stations and data.
    offset : tuple of float or None
        (mean, std) of a datum offset, mGal, or None.

    Returns
    -------
    callable
        The Pyro model ``model(obs="default")`` with the attributes the runners use.
    """
    spec.validate(forward.n_units, getattr(forward, "unit_names", None))
    default_obs = None if survey.gz is None else torch.as_tensor(survey.gz, dtype=torch.float64)
    tens = {k: (torch.as_tensor(np.asarray(m, float)), torch.as_tensor(np.asarray(sd, float)))
            for k, (m, sd) in sites.items()}

    def model(obs: Any = "default"):
        import pyro
        import pyro.distributions as dist

        o = default_obs if isinstance(obs, str) and obs == "default" else obs
        if o is not None and not isinstance(o, torch.Tensor):
            o = torch.as_tensor(np.asarray(o, float))
        vals = {}
        for name, (m, sd) in tens.items():
            z = pyro.sample(f"{name}_decentered", dist.Normal(torch.zeros_like(m), torch.ones_like(sd)).to_event(1))
            vals[name] = pyro.deterministic(name, m + sd * z)
        params: dict[str, Any] = {}
        if "dips" in vals:
            params.update(dips=vals["dips"], dip_index=list(spec.dip_index))
        if "sp_z" in vals:
            params.update(sp_z=vals["sp_z"], sp_index=list(spec.sp_index))
        pred = forward(vals.get("densities", torch.zeros(1, dtype=torch.float64)), **params)
        if offset is not None:
            z = pyro.sample("offset_decentered", dist.Normal(torch.tensor(0.0, dtype=pred.dtype),
                                                             torch.tensor(1.0, dtype=pred.dtype)))
            pred = pred + pyro.deterministic("offset", offset[0] + offset[1] * z)
        pred = pyro.deterministic("gz_pred", pred)
        return likelihood(pred, o, survey)

    model.forward = forward  # type: ignore[attr-defined]
    model.priors = spec  # type: ignore[attr-defined]
    model.survey = survey  # type: ignore[attr-defined]
    model.likelihood = likelihood  # type: ignore[attr-defined]
    model.alignment = (NoAlignment() if offset is None  # type: ignore[attr-defined]
                       else OffsetAlignment(loc=offset[0], scale=offset[1]))
    model.station_names = None  # type: ignore[attr-defined]
    return model
