"""Forward choices and the Pyro model factory (priors -> GemPy -> density -> g_z -> likelihood).

Forwards map ``(densities kg/m³, dips deg, sp_z m)`` to g_z in mGal, positive downward:

- :class:`MeshForward` (a): GemPy soft lithology at the cell centres of a mesh, density
  per cell, :class:`gempy_gravinv.GravityOperator` (built once).
- :class:`CenteredGridForward` (b): GemPy's own centered-grid gravity kernel.
- :class:`LinearUnitForward`: geometry fixed, g_z = A · densities (A = G · membership);
  exact, fast, used for the conjugate check and density-only inversions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .._mesh import as_prism_mesh
from .._operator import GravityOperator
from .._survey import Survey
from ._likelihoods import NoAlignment, OffsetAlignment, ReferenceAlignment
from ._priors import PriorSpec

__all__ = ["MeshForward", "CenteredGridForward", "LinearUnitForward", "make_model"]

log = logging.getLogger(__name__)


class MeshForward:
    """(a) GemPy lithology at mesh cell centres -> density per cell -> GravityOperator.

    Parameters
    ----------
    geo_model : gempy GeoModel
        The structural model (its units in GemPy id order).
    mesh : PrismMesh or discretize mesh
        Cells (metres) whose centres GemPy evaluates; should cover the model volume.
    survey : Survey
        Stations (metres).
    sigmoid_slope : float
        Sharpness of GemPy's soft lithology (see :class:`~gempy_gravinv.geomodel.TorchGeoModel`).
    store : str
        ``GravityOperator`` storage; ``"auto"`` here means ``"dense"`` up to 2e7
        station-cell pairs, else ``"matrix_free"``.
    device : str
        Torch device of the operator.
    """

    def __init__(self, geo_model: Any, mesh, survey: Survey, *, sigmoid_slope: float = 100.0,
                 store: str = "auto", device: str = "cpu") -> None:
        from ..geomodel import TorchGeoModel

        self.mesh = as_prism_mesh(mesh)
        self.survey = survey
        self.geomodel = TorchGeoModel(geo_model, self.mesh.cell_centers, sigmoid_slope=sigmoid_slope)
        if store == "auto":
            store = "dense" if survey.n_data * self.mesh.n_cells <= 2e7 else "matrix_free"
        self.mesh.check_stations(survey.locations, allow="the Bayesian problem takes no stations below or far from "
                                 "its mesh: give stations and mesh in one coordinate system, z up")
        self.operator = GravityOperator(self.mesh, survey, device=device, store=store, check_stations=False)
        self.n_units = self.geomodel.n_units
        self.unit_names = self.geomodel.unit_names

    def density(self, densities, **params) -> torch.Tensor:
        """Density contrast per cell, kg/m³ (shape (n_cells,))."""
        return self.geomodel.density(densities, **params)

    def __call__(self, densities, **params) -> torch.Tensor:
        """g_z at the stations, mGal, positive downward."""
        return self.operator(self.density(densities, **params))


class CenteredGridForward:
    """(b) GemPy's centered-grid gravity (``set_centered_grid`` + ``calculate_gravity_gradient``).

    Parameters
    ----------
    geo_model : gempy GeoModel
        The structural model.
    survey : Survey
        Stations (metres).
    resolution : sequence of 3 int
        GemPy centered-grid resolution per station.
    radius : float or sequence of 3 float
        Kernel radius, metres.
    sigmoid_slope : float
        Sharpness of GemPy's soft lithology.

    Notes
    -----
    Returns our convention (mGal, positive downward, kg/m³ contrasts). GemPy's kernel is
    absolute and truncated (see :class:`~gempy_gravinv.geomodel.GemPyCenteredGravity`):
    use it with a datum offset.
    """

    def __init__(self, geo_model: Any, survey: Survey, *, resolution=(10, 10, 10),
                 radius=2000.0, sigmoid_slope: float = 100.0) -> None:
        from ..geomodel import GemPyCenteredGravity

        self.survey = survey
        self.gravity = GemPyCenteredGravity(geo_model, survey.locations, resolution=resolution,
                                            radius=radius, sigmoid_slope=sigmoid_slope)
        self.geomodel = self.gravity.geomodel
        self.n_units = self.gravity.n_units
        self.unit_names = self.geomodel.unit_names

    def __call__(self, densities, **params) -> torch.Tensor:
        """g_z at the stations, mGal, positive downward."""
        return self.gravity.gz(densities, **params)


class LinearUnitForward:
    """Fixed geometry: g_z = A @ densities, A (n_data, n_units) in mGal per kg/m³.

    Parameters
    ----------
    matrix : array_like, shape (n_data, n_units)
        Sensitivity of each station to each unit's density contrast (g_z positive down).
    unit_names : list of str, optional
        Unit labels (default ``unit_1``, ``unit_2``...).
    """

    def __init__(self, matrix, unit_names=None) -> None:
        A = torch.as_tensor(np.asarray(matrix, dtype=np.float64))
        if A.ndim != 2:
            raise ValueError(f"matrix must be 2-D (n_data, n_units), got {tuple(A.shape)}")
        if not bool(torch.isfinite(A).all()):
            raise ValueError("matrix holds NaN or inf")
        if unit_names is not None and len(unit_names) != A.shape[1]:
            raise ValueError(f"unit_names has {len(unit_names)} names for {A.shape[1]} units")
        self.A = A
        self.n_units = A.shape[1]
        self.unit_names = unit_names or [f"unit_{i + 1}" for i in range(self.n_units)]

    @classmethod
    def from_membership(cls, mesh, survey: Survey, membership, unit_names=None) -> LinearUnitForward:
        """Build A = G · membership from a (n_cells, n_units) membership on a mesh."""
        op = GravityOperator(as_prism_mesh(mesh), survey, device="cpu", store="dense")
        W = torch.as_tensor(np.asarray(membership, dtype=np.float64))
        return cls(op.forward(W).detach(), unit_names)

    @classmethod
    def from_geomodel(cls, geo_model: Any, mesh, survey: Survey, *, sigmoid_slope: float = 100.0,
                      **params) -> LinearUnitForward:
        """Freeze the geometry of a GemPy model (optionally at given structural params)."""
        from ..geomodel import TorchGeoModel

        m = as_prism_mesh(mesh)
        tg = TorchGeoModel(geo_model, m.cell_centers, sigmoid_slope=sigmoid_slope)
        with torch.no_grad():
            W = tg.soft_lithology(**params)
        return cls.from_membership(m, survey, W.numpy(), tg.unit_names)

    def __call__(self, densities, **params) -> torch.Tensor:
        """g_z (mGal, positive down); structural params are rejected (geometry fixed)."""
        if any(v is not None for k, v in params.items() if k in ("dips", "sp_z")):
            raise ValueError("LinearUnitForward has fixed geometry: no dips / sp_z priors")
        rho = torch.as_tensor(densities, dtype=self.A.dtype)
        return rho @ self.A.T


def _check_stations_agree(forward, survey: Survey) -> None:
    """Refuse a survey whose stations are not those the forward predicts at (count, then places)."""
    own = getattr(forward, "survey", None)
    n = int(own.n_data) if own is not None else (int(forward.A.shape[0]) if hasattr(forward, "A") else None)
    if n is not None and n != survey.n_data:
        raise ValueError(f"the forward predicts {n} stations, the survey holds {survey.n_data}: build the forward "
                         "on the survey that is inverted")
    if own is not None:
        gap = float(np.abs(np.asarray(own.locations, float) - np.asarray(survey.locations, float)).max())
        if gap > 1e-6 * max(1.0, float(np.abs(np.asarray(survey.locations, float)).max())):
            raise ValueError(f"the forward's stations differ from the survey's by up to {gap:.4g} m: build the "
                             "forward on the survey that is inverted")


def make_model(forward: Callable[..., torch.Tensor], priors: PriorSpec, likelihood: Callable,
               survey: Survey, *, alignment: Callable | None = None,
               station_names=None) -> Callable:
    """Build a Pyro model ``model(obs=None)`` for a gravity survey.

    Parameters
    ----------
    forward : MeshForward, CenteredGridForward, LinearUnitForward or callable
        ``forward(densities_kgm3, dips=..., dip_index=..., sp_z=..., sp_index=...)``
        -> g_z (n_data,) mGal positive downward; must expose ``n_units``.
    priors : PriorSpec
        Which parameters are random, and their priors.
    likelihood : GaussianLikelihood, HierarchicalNoise, StudentTLikelihood or callable
        ``likelihood(pred, obs, survey)`` sampling site ``obs``.
    survey : Survey
        Stations; its ``gz`` is the default observation.
    alignment : OffsetAlignment, ReferenceAlignment or None
        Datum handling applied to the prediction before the likelihood. With a free
        offset or a mean alignment and random densities, give the priors a
        ``reference_unit`` (otherwise a uniform density shift duplicates the offset and
        the mesh edges decide the absolute contrasts; a warning is logged).
    station_names : sequence of str, optional
        Station labels, the ``station`` coordinate of the ArviZ output (default
        ``0 .. n_data - 1``).

    Returns
    -------
    callable
        ``model(obs=survey.gz)``: sites ``densities`` / ``dips`` / ``sp_z`` (as in the
        prior spec), alignment and noise sites, deterministic ``gz_pred`` (mGal, before
        noise, after alignment) and observed ``obs``. ``model.forward``, ``.priors``,
        ``.survey`` are attached for the runners. Pass ``obs=None`` to simulate.
    """
    n_units = getattr(forward, "n_units", None)
    if n_units is None:
        raise TypeError("forward must expose n_units")
    priors.validate(n_units, getattr(forward, "unit_names", None))
    align = alignment or NoAlignment()
    if (isinstance(align, (OffsetAlignment, ReferenceAlignment)) and priors.densities is not None
            and priors.reference_index is None and n_units > 1):
        log.warning("a datum offset / alignment is free and every unit density is random: a uniform "
                    "shift of the contrasts duplicates the offset (only differences are informed); "
                    "set PriorSpec(reference_unit=...) to sample contrasts relative to one unit")
    if station_names is not None and len(station_names) != survey.n_data:
        raise ValueError(f"station_names has {len(station_names)} labels for {survey.n_data} stations")
    _check_stations_agree(forward, survey)
    if isinstance(align, ReferenceAlignment):
        align.check_survey(survey.n_data)
    default_obs = None if survey.gz is None else torch.as_tensor(survey.gz, dtype=torch.float64)

    def model(obs: Any = "default"):
        import pyro

        o = default_obs if isinstance(obs, str) and obs == "default" else obs
        if o is not None and not isinstance(o, torch.Tensor):
            o = torch.as_tensor(np.asarray(o, float))
        params = priors.sample()
        dens = params.pop("densities")
        pred = forward(dens, **params)
        pred = align(pred, o if o is not None else default_obs)  # reference needs data
        pred = pyro.deterministic("gz_pred", pred)
        return likelihood(pred, o, survey)

    model.forward = forward  # type: ignore[attr-defined]
    model.priors = priors  # type: ignore[attr-defined]
    model.survey = survey  # type: ignore[attr-defined]
    model.likelihood = likelihood  # type: ignore[attr-defined]
    model.alignment = align  # type: ignore[attr-defined]
    model.station_names = None if station_names is None else [str(n) for n in station_names]  # type: ignore[attr-defined]
    return model
