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

import contextlib
import copy
import hashlib
import io
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["GeologyDensity", "LoadedGeoModel", "gempy_lithology_ids", "load_geomodel", "unit_names_of",
           "resolve_unit_densities", "backend_from_cli", "GEOMODEL_CASES"]

#: sigmoid slope used with fixed geometry: sharp contacts (GemPy's normalised frame)
SHARP_SLOPE = 5.0e4


def unit_names_of(geo_model: Any) -> list[str]:
    """Unit names of a GemPy model in lithology-id order (id 1 first, basement last)."""
    return [str(n) for n in geo_model.structural_frame.elements_names]


def resolve_unit_densities(unit_densities, names: Sequence[str]) -> np.ndarray:
    """Unit density contrasts (kg/m³) as an array in GemPy id order.

    Parameters
    ----------
    unit_densities : sequence of float or mapping name -> float
        One contrast per unit (kg/m³), in GemPy id order, or a dict naming every unit.
    names : sequence of str
        The model's unit names in id order (:func:`unit_names_of`).

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
    return vals


def gempy_lithology_ids(geo_model: Any, points) -> np.ndarray:
    """GemPy's own integer lithology ids at points (``gempy.compute_model_at``).

    The reference the soft lithology of :class:`GeologyDensity` is tested against. The
    model is deep-copied (``compute_model_at`` replaces its custom grid and solutions).

    Parameters
    ----------
    geo_model : gempy GeoModel
    points : array_like, shape (n, 3)
        Metres, z up.

    Returns
    -------
    numpy.ndarray of int, shape (n,)
        1 .. n_units (id 1 = unit above the first surface, basement last).
    """
    import gempy as gp

    from ..geomodel import gempy_torch

    pts = _check_points(points)
    gm = copy.deepcopy(geo_model)
    gm._solutions = None
    with gempy_torch(grads=False), contextlib.redirect_stdout(io.StringIO()):
        ids = gp.compute_model_at(gm, pts)
    return np.rint(np.asarray(ids, dtype=np.float64)).astype(int).reshape(-1)


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
        from ..geomodel import TorchGeoModel

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
        if not density_scale > 0 or not dip_scale > 0 or not sp_z_scale > 0:
            raise ValueError("density_scale, dip_scale and sp_z_scale must be > 0")
        structural = bool(learn_dips) or bool(learn_sp_z)
        slope = (100.0 if structural else SHARP_SLOPE) if sigmoid_slope is None else float(sigmoid_slope)
        if not slope > 0:
            raise ValueError(f"sigmoid_slope must be > 0, got {sigmoid_slope}")
        if int(cache_size) < 1:
            raise ValueError(f"cache_size must be >= 1, got {cache_size}")
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
        from ..geomodel import dips_from_gradients

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

    def set_learn_densities(self, flag: bool) -> "GeologyDensity":
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
        from ._inr import evaluate_on_mesh

        return evaluate_on_mesh(self, mesh, quadrature)

    def extra_repr(self) -> str:
        rho = ", ".join(f"{n}={v:.0f}" for n, v in zip(self.unit_names, self.unit_densities().tolist()))
        return (f"units: {rho} kg/m³, learn_densities={self.learns_densities}, "
                f"dips={self.dip_index}, sp_z={self.sp_index}, sigmoid_slope={self.sigmoid_slope:g}")


# ====================================================================== loading models
#: built-in GemPy models for ``--geomodel NAME``: name -> "module:function" (called with no
#: arguments; returns a :class:`LoadedGeoModel`)
GEOMODEL_CASES = {
    "layered": "gempy_gravinv._geology_case:_layered_case_model",
    "tharsis-intrusion": "gempy_gravinv.density._geology:_tharsis_intrusion_model",
}


@dataclass
class LoadedGeoModel:
    """A GemPy model with what a density backend needs besides it.

    Attributes
    ----------
    geo_model : gempy GeoModel
    unit_densities : numpy.ndarray (n_units,) or None
        Unit contrasts in kg/m³ (GemPy id order) when the source defines them.
    origin : numpy.ndarray (3,)
        Where the model's coordinate origin lies in the frame of the data it belongs to
        (e.g. the UTM corner of a model built in local coordinates); zeros otherwise.
    name : str
    notes : list of str
    """

    geo_model: Any
    unit_densities: np.ndarray | None = None
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    name: str = ""
    notes: list = field(default_factory=list)

    @property
    def extent(self) -> np.ndarray:
        """The model's extent (x_min, x_max, y_min, y_max, z_min, z_max) in its own frame, m."""
        return np.asarray(self.geo_model.grid.extent, dtype=np.float64)


def _tharsis_intrusion_model() -> LoadedGeoModel:
    """DESIGN case 4's Tharsis intrusion (host rock over plutonite), local coordinates."""
    from .._constants import gcc_to_kgm3
    from ..bayes.cases import THARSIS_DENSITY_MEAN_GCC, tharsis_intrusion

    case = tharsis_intrusion(n_cells=(2, 2, 2), subset=2)  # only the GeoModel is used
    ox, oy = case.meta["origin_xy_m"]
    return LoadedGeoModel(case.geo_model, gcc_to_kgm3(np.asarray(THARSIS_DENSITY_MEAN_GCC, float)),
                          np.array([ox, oy, 0.0]), "tharsis-intrusion",
                          ["GemPy model of gempy_gravinv.bayes.cases.tharsis_intrusion (prior means: "
                           "dips 10 deg, host rock +230, plutonite -370 kg/m3)",
                           "local coordinates: origin at the SW station corner rounded down to 1 km"])


def load_geomodel(spec) -> LoadedGeoModel:
    """A GemPy model from a built-in case name or a file.

    Parameters
    ----------
    spec : str, path, GeoModel or LoadedGeoModel
        - a GeoModel: wrapped as is;
        - a built-in name in :data:`GEOMODEL_CASES` (``"layered"``: the synthetic case's
          model with its unit densities; ``"tharsis-intrusion"``: the Bayesian Tharsis
          intrusion model, prior-mean unit densities, local coordinates with their UTM
          origin);
        - a ``.gempy`` file written by ``gempy.save_model`` (read with
          ``gempy.load_model``);
        - a ``.json`` file in GemPy's JSON schema (``gempy.modules.json_io.JsonIO``).
        Files carry no unit densities (give them separately).

    Returns
    -------
    LoadedGeoModel
    """
    if isinstance(spec, LoadedGeoModel):
        return spec
    if hasattr(spec, "structural_frame"):
        return LoadedGeoModel(spec, name=str(getattr(getattr(spec, "meta", None), "name", "")))
    s = str(spec)
    if s in GEOMODEL_CASES:
        import importlib

        mod, _, attr = GEOMODEL_CASES[s].partition(":")
        try:
            fn = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"built-in geomodel {s!r} is not available in this installation "
                             f"({GEOMODEL_CASES[s]}: {exc})") from exc
        out = fn()
        if not isinstance(out, LoadedGeoModel):
            gm, rho = (out if isinstance(out, tuple) else (out, None))[:2]
            out = LoadedGeoModel(gm, None if rho is None else np.asarray(rho, dtype=np.float64), name=s)
        return out
    p = Path(s)
    if not p.exists():
        raise FileNotFoundError(f"geomodel {s!r}: neither a built-in case {sorted(GEOMODEL_CASES)} "
                                "nor an existing .gempy/.json file")
    import warnings

    import gempy as gp

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if p.suffix.lower() == ".gempy":
            return LoadedGeoModel(gp.load_model(str(p)), name=p.stem)
        if p.suffix.lower() == ".json":
            from gempy.modules.json_io import JsonIO

            return LoadedGeoModel(JsonIO.load_model_from_json(str(p)), name=p.stem)
    raise ValueError(f"geomodel file must be .gempy (gempy.save_model) or .json (GemPy JSON), got {p.name}")


def _auto_offset(loaded: LoadedGeoModel, mesh) -> np.ndarray:
    """0 if the mesh overlaps the model's extent, else the model's origin if that overlaps."""
    ext = loaded.extent
    me = np.asarray(mesh.extent, dtype=np.float64)

    def overlap(shift):
        lo = np.maximum(me[0:4:2] - shift[:2], ext[0:4:2])
        hi = np.minimum(me[1:4:2] - shift[:2], ext[1:4:2])
        return float(np.prod(np.clip(hi - lo, 0, None)))

    a0, a1 = overlap(np.zeros(3)), overlap(loaded.origin)
    if a0 == 0 and a1 == 0:
        raise ValueError(f"the mesh (x {me[0]:.0f}..{me[1]:.0f}, y {me[2]:.0f}..{me[3]:.0f} m) does not overlap "
                         f"the GemPy model {loaded.name!r} (x {ext[0]:.0f}..{ext[1]:.0f}, y {ext[2]:.0f}..{ext[3]:.0f} m"
                         f", origin {loaded.origin[:2].tolist()}): use the same coordinates")
    return np.zeros(3) if a0 >= a1 else np.asarray(loaded.origin, dtype=np.float64)


def _csv_floats(v) -> list[float] | None:
    if v is None or v == "":
        return None
    if isinstance(v, str):
        return [float(t) for t in v.replace(" ", "").split(",") if t]
    return [float(t) for t in np.atleast_1d(v)]


def backend_from_cli(args, mesh, cfg=None):
    """The density backend of ``gempy-gravinv invert --backend geology|hybrid``.

    Parameters
    ----------
    args : argparse.Namespace
        Reads ``backend`` (``"inr"``, ``"voxel"``, ``"geology"`` or ``"hybrid"``),
        ``geomodel`` (name or file, see :func:`load_geomodel`), and optionally
        ``unit_densities`` (comma-separated kg/m³ in GemPy id order; needed for model
        files), ``learn_densities`` (bool; always on for ``geology``),
        ``residual_units`` (comma-separated unit names) and ``depth_range``
        ("zmin,zmax" elevations in m).
    mesh : PrismMesh
        The inversion mesh (the backend is evaluated at its cell centres). When it does
        not overlap the model's extent but does after shifting by the model's origin
        (a local-coordinate model such as ``tharsis-intrusion`` with UTM stations), the
        shift is applied.
    cfg : INRConfig, optional
        INR settings of the hybrid's residual network (``field_options``).

    Returns
    -------
    callable or None
        ``None`` for ``inr``/``voxel``; otherwise a factory ``f(mesh, seed) -> module``
        for :func:`gempy_gravinv.inversion.invert_inr` (``density=``), with attributes
        ``geology`` (the :class:`GeologyDensity`) and ``description`` (str).
    """
    backend = getattr(args, "backend", None) or "inr"
    if backend in ("inr", "voxel"):
        return None
    if backend not in ("geology", "hybrid"):
        raise ValueError(f"--backend must be inr, voxel, geology or hybrid, got {backend!r}")
    spec = getattr(args, "geomodel", None)
    if not spec:
        raise ValueError(f"--backend {backend} needs --geomodel (a built-in case "
                         f"{sorted(GEOMODEL_CASES)} or a .gempy/.json file)")
    loaded = load_geomodel(spec)
    gm = loaded.geo_model
    names = unit_names_of(gm)
    rho = loaded.unit_densities
    ud = _csv_floats(getattr(args, "unit_densities", None))
    if ud is not None:
        rho = np.asarray(ud)
    if rho is None:
        raise ValueError(f"--geomodel {spec!r} has no unit densities: pass --unit-densities with "
                         f"{len(names)} comma-separated values in kg/m³ for units {names} (GemPy id order)")
    offset = _auto_offset(loaded, mesh)
    learn = bool(getattr(args, "learn_densities", False)) or backend == "geology"
    geo = GeologyDensity(gm, resolve_unit_densities(rho, names), learn_densities=learn, mesh=mesh,
                         offset=offset)
    units = getattr(args, "residual_units", None)
    units = [u.strip() for u in units.split(",") if u.strip()] if isinstance(units, str) else units
    dr = _csv_floats(getattr(args, "depth_range", None))
    if backend == "geology":
        if units or dr:
            raise ValueError("--residual-units/--depth-range apply to --backend hybrid only")

        def factory(m, seed, _g=geo):
            return copy.deepcopy(_g)
    else:
        from ._hybrid import HybridDensity

        def factory(m, seed, _g=geo):
            opts = dict(mesh=m, seed=seed) if cfg is None else cfg.field_options(m, seed)
            return HybridDensity(_g, residual_units=units, depth_range=dr, **opts)
    factory.geology = geo  # type: ignore[attr-defined]
    factory.loaded = loaded  # type: ignore[attr-defined]
    factory.description = (f"{backend}: GemPy model {loaded.name or spec!r}, units {names}, "  # type: ignore[attr-defined]
                           f"densities {np.round(geo.unit_densities().detach().numpy(), 1).tolist()} kg/m3"
                           f"{', learned' if learn else ''}, offset {offset.tolist()} m"
                           + (f", residual in {units}" if units else "")
                           + (f", residual z in {dr}" if dr else ""))
    return factory
