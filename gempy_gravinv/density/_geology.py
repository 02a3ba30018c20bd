"""GeologyDensity: a GemPy structural model + unit density contrasts as a density backend.

``GeologyDensity(geo_model, unit_densities)(points)`` returns the density contrast
(kg/m³) at any points (discretize cell centres, GemPy's regular grid, custom points):
GemPy's soft lithology at the points (:class:`gempy_gravinv.geomodel.TorchGeoModel`)
times the unit contrasts. It is differentiable in the unit densities
(``learn_densities=True``) and, optionally, in structural parameters (dips of chosen
orientations, elevations of chosen surface points) through GemPy's PyTorch backend.

With fixed geometry the soft lithology at a point set is computed once and cached, so
training loops that evaluate it every step pay for GemPy once.

Conventions: metres, z up; density contrast in kg/m³; unit order = GemPy's lithology ids
(id 1 = the unit above the first surface of the pile, the basement last).

GemPy is imported when a backend is built, never when this module is imported. Every
GemPy call goes through :func:`gempy_gravinv.geomodel.gempy_torch` (torch's global state
is restored afterwards).
"""

from __future__ import annotations

import copy
import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .._validation import check_int, check_number
from ..geomodel import TorchGeoModel, dips_from_gradients, unit_names_of
from ._inr import evaluate_on_mesh

__all__ = ["GeologyDensity", "resolve_unit_densities"]

#: sigmoid slope used with fixed geometry: sharp contacts (GemPy's normalised frame)
SHARP_SLOPE = 5.0e4


def resolve_unit_densities(unit_densities, names: Sequence[str]) -> np.ndarray:
    """Unit density contrasts (kg/m³) as an array in GemPy id order.

    Parameters
    ----------
    unit_densities : sequence of float or mapping name -> float
        One contrast per unit (kg/m³), in GemPy id order, or a dict naming every unit.
    names : sequence of str
        The model's unit names in id order (:func:`gempy_gravinv.geomodel.unit_names_of`).

    Returns
    -------
    numpy.ndarray, shape (n_units,)
    """
    names = list(names)
    if isinstance(unit_densities, Mapping):
        unknown = sorted(set(unit_densities) - set(names))
        missing = [n for n in names if n not in unit_densities]
        if unknown or missing:
            raise ValueError(f"unit_densities must name every unit of the model {names}; "
                             f"unknown {unknown}, missing {missing}")
        vals = np.array([float(unit_densities[n]) for n in names])
    else:
        if torch.is_tensor(unit_densities):
            unit_densities = unit_densities.detach().cpu().numpy()
        vals = np.asarray(unit_densities, dtype=np.float64).reshape(-1)
        if vals.size != len(names):
            raise ValueError(f"unit_densities needs {len(names)} values (kg/m³, GemPy id order "
                             f"{names}), got {vals.size}")
    if not np.all(np.isfinite(vals)):
        raise ValueError(f"unit_densities must be finite (kg/m³), got {vals.tolist()}")
    from .._constants import check_density_units  # warns on g/cm³ (2.67) or absolute (2670) values

    check_density_units(vals, name=f"unit_densities {vals.tolist()}",
                        hint="Unit densities are contrasts in kg/m³ (GemPy's absolute g/cm³ minus a reference, x1000).")
    return vals


def _check_points(points) -> np.ndarray:
    if torch.is_tensor(points):
        points = points.detach().cpu().numpy()
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or p.shape[0] == 0:
        raise ValueError(f"points must have shape (n, 3) in metres, got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("points contain NaN or inf")
    return p


class _Shared:
    """Holder of the GemPy model and the per-point-set caches; shared by deep copies.

    The INR trainer deep-copies the field it trains (ensembles, the kept state); the
    GemPy model and the cached lithology are immutable for a given geometry, so copies
    share them instead of duplicating GemPy objects.
    """

    def __init__(self, geo_model: Any, sigmoid_slope: float, cache_size: int) -> None:
        self.geo_model = copy.deepcopy(geo_model)
        self.sigmoid_slope = float(sigmoid_slope)
        self.cache_size = int(cache_size)
        self.models: OrderedDict[str, Any] = OrderedDict()  # key -> TorchGeoModel
        self.memberships: OrderedDict[str, torch.Tensor] = OrderedDict()  # key -> (n, n_units)
        self.gempy_calls = 0

    def __deepcopy__(self, memo):
        return self

    def _put(self, store: OrderedDict, key: str, value):
        store[key] = value
        store.move_to_end(key)
        while len(store) > self.cache_size:
            store.popitem(last=False)

    def torch_model(self, key: str, pts: np.ndarray):
        if key in self.models:
            self.models.move_to_end(key)
            return self.models[key]
        tgm = TorchGeoModel(self.geo_model, pts, sigmoid_slope=self.sigmoid_slope)
        self._put(self.models, key, tgm)
        return tgm


def _points_key(pts: np.ndarray) -> str:
    h = hashlib.blake2b(np.ascontiguousarray(pts).view(np.uint8), digest_size=16)
    return f"{pts.shape[0]}:{h.hexdigest()}"


class GeologyDensity(nn.Module):
    """A GemPy structural model with unit density contrasts, as a density backend.

    ``forward(points)`` -> density contrast (n,) kg/m³ at points (n, 3) m, z up: the
    soft unit membership of GemPy's model at the points (hat functions of the fractional
    lithology id; rows sum to 1) times the unit contrasts.

    Parameters
    ----------
    geo_model : gempy GeoModel
        The structural model (deep-copied; the caller's model is not modified).
    unit_densities : sequence of float or dict
        Density contrast of each unit in kg/m³, in GemPy id order (id 1 = the unit above
        the first surface, basement last; see :attr:`unit_names`) or a dict naming every
        unit. Use :func:`gempy_gravinv.gcc_to_kgm3` for g/cm³.
    learn_densities : bool
        Make the unit contrasts trainable: ``ρ = ρ₀ + density_scale · θ`` with ``θ``
        (dimensionless, starts at 0) an ``nn.Parameter`` (the scaling lets Adam's
        ~``lr``-sized steps move ρ by ~``lr · density_scale`` kg/m³).
    density_scale : float
        kg/m³ per unit of ``θ``.
    learn_dips : sequence of int, optional
        Orientation rows (``geo_model.orientations_copy`` order) whose dip (degrees) is
        trainable: ``dip = dip₀ + dip_scale · φ``. Disables the lithology cache: every
        forward runs GemPy with gradients (slow; keep point sets small).
    learn_sp_z : sequence of int, optional
        Surface-point rows whose elevation (m) is trainable: ``z = z₀ + sp_z_scale · ψ``.
    dip_scale, sp_z_scale : float
        Degrees and metres per unit of ``φ`` and ``ψ``.
    sigmoid_slope : float, optional
        Sharpness of GemPy's soft lithology (normalised-frame units). Default: 5e4 (sharp
        contacts, matching GemPy's integer lithology) with fixed geometry, 100 when
        structure is learned (GemPy's default 5e6 gives zero structural gradients).
    mesh, points : optional
        A :class:`~gempy_gravinv.PrismMesh` (its cell centres) or points (n, 3) m to
        evaluate and cache right away (otherwise on first use).
    cache_size : int
        Number of point sets whose lithology is kept (LRU).
    offset : sequence of 3 floats, optional
        Origin of the GemPy model's coordinates in the caller's frame, m: the model is
        evaluated at ``points - offset`` (e.g. a model built in local coordinates,
        evaluated at UTM points). Default (0, 0, 0).

    Notes
    -----
    The soft lithology depends only on the geometry; with fixed geometry it is computed
    once per point set (keyed by the points' bytes) without an autograd graph, and the
    forward is a matrix product, differentiable in the unit densities. Learned structure
    goes through :class:`gempy_gravinv.geomodel.TorchGeoModel` (GemPy's PyTorch backend,
    world-unit parameters mapped into GemPy's frame in torch).
    """

    def __init__(self, geo_model: Any, unit_densities, *, learn_densities: bool = False,
                 density_scale: float = 100.0, learn_dips: Sequence[int] | None = None,
                 learn_sp_z: Sequence[int] | None = None, dip_scale: float = 1.0,
                 sp_z_scale: float = 10.0, sigmoid_slope: float | None = None, mesh=None,
                 points=None, cache_size: int = 4, offset=None) -> None:
        super().__init__()
        if geo_model is None or not hasattr(geo_model, "structural_frame"):
            raise TypeError(f"geo_model must be a gempy GeoModel, got {type(geo_model).__name__}")
        self.unit_names = unit_names_of(geo_model)
        self.n_units = len(self.unit_names)
        rho0 = resolve_unit_densities(unit_densities, self.unit_names)
        for value, name in ((density_scale, "density_scale"), (dip_scale, "dip_scale"),
                            (sp_z_scale, "sp_z_scale")):
            check_number(value, name=name, low=0.0, low_open=True)
        structural = bool(learn_dips) or bool(learn_sp_z)
        slope = (100.0 if structural else SHARP_SLOPE) if sigmoid_slope is None else sigmoid_slope
        slope = check_number(slope, name="sigmoid_slope", low=0.0, low_open=True)
        cache_size = check_int(cache_size, name="cache_size", minimum=1)
        off = np.zeros(3) if offset is None else np.asarray(offset, dtype=np.float64).reshape(-1)
        if off.size != 3 or not np.all(np.isfinite(off)):
            raise ValueError(f"offset must be 3 finite numbers (m), got {offset}")
        self.offset = off
        self._shared = _Shared(geo_model, slope, cache_size)
        self.register_buffer("rho0", torch.as_tensor(rho0, dtype=torch.float64))
        self.density_scale = float(density_scale)
        self.rho_theta = nn.Parameter(torch.zeros(self.n_units, dtype=torch.float64),
                                      requires_grad=bool(learn_densities))
        self.dip_scale, self.sp_z_scale = float(dip_scale), float(sp_z_scale)
        sp = geo_model.surface_points_copy
        ori = geo_model.orientations_copy
        n_sp, n_ori = len(np.asarray(sp.xyz)), len(np.asarray(ori.xyz))
        self.dip_index = self._indices(learn_dips, n_ori, "learn_dips (orientation rows)")
        self.sp_index = self._indices(learn_sp_z, n_sp, "learn_sp_z (surface-point rows)")
        dip0, _, _ = dips_from_gradients(np.asarray(ori.grads, dtype=np.float64))
        self.register_buffer("dip0", torch.as_tensor(dip0[self.dip_index], dtype=torch.float64))
        self.register_buffer("sp_z0", torch.as_tensor(np.asarray(sp.xyz, dtype=np.float64)[self.sp_index, 2]))
        self.dip_phi = nn.Parameter(torch.zeros(len(self.dip_index), dtype=torch.float64),
                                    requires_grad=bool(self.dip_index))
        self.sp_psi = nn.Parameter(torch.zeros(len(self.sp_index), dtype=torch.float64),
                                   requires_grad=bool(self.sp_index))
        self._last: tuple[Any, str] | None = None
        if mesh is not None:
            points = mesh.cell_centers
        if points is not None:
            self.membership(points)

    @staticmethod
    def _indices(idx, n: int, what: str) -> list[int]:
        if not idx:
            return []
        a = [int(i) for i in np.atleast_1d(idx)]
        if any(i < 0 or i >= n for i in a) or len(set(a)) != len(a):
            raise ValueError(f"{what} must be unique indices in [0, {n}), got {a}")
        return a

    # ------------------------------------------------------------------ parameters
    @property
    def geo_model(self) -> Any:
        """The (copied) GemPy model."""
        return self._shared.geo_model

    @property
    def sigmoid_slope(self) -> float:
        """Sharpness of the soft lithology (GemPy's normalised frame)."""
        return self._shared.sigmoid_slope

    @property
    def learns_structure(self) -> bool:
        """True when dips or surface-point elevations are trainable."""
        return bool(self.dip_index) or bool(self.sp_index)

    @property
    def learns_densities(self) -> bool:
        """True when the unit contrasts are trainable."""
        return bool(self.rho_theta.requires_grad)

    def set_learn_densities(self, flag: bool) -> GeologyDensity:
        """Switch training of the unit contrasts on or off (returns self)."""
        self.rho_theta.requires_grad_(bool(flag))
        return self

    def unit_densities(self) -> torch.Tensor:
        """Current unit density contrasts (n_units,) in kg/m³ (GemPy id order)."""
        return self.rho0 + self.density_scale * self.rho_theta

    def dips(self) -> torch.Tensor:
        """Current dips (degrees) of the orientations in ``dip_index``."""
        return self.dip0 + self.dip_scale * self.dip_phi

    def sp_z(self) -> torch.Tensor:
        """Current elevations (m) of the surface points in ``sp_index``."""
        return self.sp_z0 + self.sp_z_scale * self.sp_psi

    def structural_params(self) -> dict:
        """Keyword arguments for :meth:`TorchGeoModel.soft_lithology` (empty if fixed)."""
        kw: dict[str, Any] = {}
        if self.dip_index:
            kw.update(dips=self.dips(), dip_index=self.dip_index)
        if self.sp_index:
            kw.update(sp_z=self.sp_z(), sp_index=self.sp_index)
        return kw

    def summary(self) -> dict:
        """JSON-friendly current values: unit contrasts (kg/m³), dips (deg), sp z (m)."""
        with torch.no_grad():
            out = {"unit_names": self.unit_names,
                   "unit_densities_kgm3": self.unit_densities().cpu().tolist(),
                   "sigmoid_slope": self.sigmoid_slope}
            if self.dip_index:
                out.update(dip_index=self.dip_index, dips_deg=self.dips().cpu().tolist())
            if self.sp_index:
                out.update(sp_index=self.sp_index, sp_z_m=self.sp_z().cpu().tolist())
        return out

    # ------------------------------------------------------------------ evaluation
    def _key(self, points) -> tuple[np.ndarray | None, str]:
        last = self._last
        if last is not None and last[0] is points:
            return None, last[1]
        pts = _check_points(points)
        key = _points_key(pts)
        if torch.is_tensor(points) or isinstance(points, np.ndarray):
            self._last = (points, key)
        return pts, key

    def membership(self, points) -> torch.Tensor:
        """Soft unit membership (n, n_units) at points (n, 3) m; rows sum to 1.

        Cached (no graph) with fixed geometry; differentiable in the structural
        parameters when they are learned.
        """
        pts, key = self._key(points)
        sh = self._shared
        if not self.learns_structure and key in sh.memberships:
            sh.memberships.move_to_end(key)
            return sh.memberships[key]
        if pts is None:
            pts = _check_points(points)
        tgm = sh.torch_model(key, pts - self.offset if np.any(self.offset) else pts)
        sh.gempy_calls += 1
        if self.learns_structure:
            return tgm.soft_lithology(**self.structural_params())
        with torch.no_grad():
            memb = tgm.soft_lithology().detach().to(torch.float64)
        sh._put(sh.memberships, key, memb)
        sh.models.pop(key, None)  # the membership is all we need for this point set
        return memb

    def soft_ids(self, points) -> torch.Tensor:
        """Fractional lithology id (n,) at points: Σ_k k · membership_k (1 .. n_units)."""
        memb = self.membership(points)
        k = torch.arange(1, self.n_units + 1, dtype=memb.dtype, device=memb.device)
        return memb @ k

    def lithology(self, points) -> np.ndarray:
        """Integer lithology id (n,) at points: the unit of largest membership."""
        with torch.no_grad():
            return (self.membership(points).argmax(dim=1) + 1).cpu().numpy()

    def forward(self, points) -> torch.Tensor:
        """Density contrast (n,) in kg/m³ at ``points`` (n, 3) m, z up."""
        memb = self.membership(points)
        dev = points.device if torch.is_tensor(points) else memb.device
        rho = self.unit_densities().to(device=dev)
        return memb.to(device=dev, dtype=rho.dtype) @ rho

    def on_mesh(self, mesh, quadrature: int = 1) -> torch.Tensor:
        """Cell-average density (n_cells,) kg/m³ on a :class:`~gempy_gravinv.PrismMesh`."""
        return evaluate_on_mesh(self, mesh, quadrature)

    def extra_repr(self) -> str:
        rho = ", ".join(f"{n}={v:.0f}" for n, v in zip(self.unit_names, self.unit_densities().tolist()))
        return (f"units: {rho} kg/m³, learn_densities={self.learns_densities}, "
                f"dips={self.dip_index}, sp_z={self.sp_index}, sigmoid_slope={self.sigmoid_slope:g}")
