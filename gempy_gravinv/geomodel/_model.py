"""A GemPy GeoModel evaluated in torch: soft lithology and density at arbitrary points.

GemPy interpolates in a normalised frame. Structural parameters given here in world
units (dips in degrees, surface-point elevations in metres) are mapped into that frame
in torch with the model's own transform matrix (``get_transform_matrix()``), so the
autograd graph reaches them (``Transform.apply`` goes through NumPy and would cut it).

Lithology ids follow GemPy: id 1 is the unit above the first surface of the pile, the
basement has the highest id ``n_units``. The soft (fractional) id comes from GemPy's
sigmoid with a chosen ``sigmoid_slope`` (GemPy's default 5e6 is a step with zero
gradient; 50-500 gives useful gradients on a normalised model).

Every GemPy call runs inside :func:`gempy_gravinv.geomodel.gempy_torch`, which undoes
GemPy's global torch side effects on exit.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from .._constants import gz_from_upward, kgm3_to_gcc
from .._validation import check_number
from ._guard import gempy_torch

__all__ = [
    "TorchGeoModel",
    "GemPyCenteredGravity",
    "gradients_from_dips",
    "dips_from_gradients",
    "soft_lithology",
    "density_at",
    "membership_from_ids",
]

_DTYPE = torch.float64


def _as_t(x, dtype=_DTYPE) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(dtype)
    return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype)


def gradients_from_dips(dip_deg, azimuth_deg, polarity=1.0) -> torch.Tensor:
    """Pole vectors (GemPy's ``G_x, G_y, G_z``) from dip, azimuth and polarity, in torch.

    Parameters
    ----------
    dip_deg : tensor or array_like, shape (n,)
        Dip in degrees from horizontal (0 = flat layer).
    azimuth_deg : tensor or array_like, shape (n,)
        Dip direction in degrees clockwise from north (+y).
    polarity : float or array_like, shape (n,)
        +1 for normal polarity (gradient points up for a flat layer), -1 overturned.

    Returns
    -------
    torch.Tensor, shape (n, 3)
        Unit pole vectors in world coordinates, differentiable in ``dip_deg`` and
        ``azimuth_deg``: ``(sin d sin a, sin d cos a, cos d) * polarity`` (GemPy's
        ``convert_orientation_to_pole_vector``).
    """
    d = torch.deg2rad(_as_t(dip_deg)).reshape(-1)
    a = torch.deg2rad(_as_t(azimuth_deg, dtype=d.dtype)).reshape(-1)
    p = _as_t(polarity, dtype=d.dtype).reshape(-1)
    return torch.stack([torch.sin(d) * torch.sin(a), torch.sin(d) * torch.cos(a), torch.cos(d)],
                       dim=1) * p[:, None]


def dips_from_gradients(gradients) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dip (deg), azimuth (deg) and polarity of pole vectors (inverse of :func:`gradients_from_dips`).

    Parameters
    ----------
    gradients : array_like, shape (n, 3)
        Pole vectors ``G_x, G_y, G_z`` (any length).

    Returns
    -------
    dip_deg, azimuth_deg, polarity : numpy.ndarray, shape (n,)
        Polarity is +1 where ``G_z >= 0`` and -1 otherwise.
    """
    g = np.asarray(gradients, dtype=np.float64).reshape(-1, 3)
    pol = np.where(g[:, 2] >= 0, 1.0, -1.0)
    gp_ = g * pol[:, None]
    norm = np.linalg.norm(gp_, axis=1)
    if np.any(norm == 0):
        raise ValueError("zero-length orientation gradient")
    dip = np.degrees(np.arccos(np.clip(gp_[:, 2] / norm, -1.0, 1.0)))
    az = np.degrees(np.arctan2(gp_[:, 0], gp_[:, 1])) % 360.0
    return dip, az, pol


def membership_from_ids(ids: torch.Tensor, n_units: int) -> torch.Tensor:
    """Soft unit membership from fractional lithology ids (hat functions).

    Parameters
    ----------
    ids : torch.Tensor, shape (n,)
        Fractional lithology id in [1, n_units] (GemPy's soft block).
    n_units : int
        Number of units (basement included).

    Returns
    -------
    torch.Tensor, shape (n, n_units)
        ``max(0, 1 - |id - k|)`` for k = 1..n_units; rows sum to 1 for ids in range.
        Linear interpolation of unit properties between neighbouring ids, which is the
        sigmoid mixing of two units across one contact.
    """
    k = torch.arange(1, n_units + 1, dtype=ids.dtype, device=ids.device)
    ids = ids.clamp(1.0, float(n_units))
    return torch.clamp(1.0 - torch.abs(ids[:, None] - k[None, :]), min=0.0)


class TorchGeoModel:
    """A GemPy GeoModel evaluated in torch at fixed points, differentiable in its parameters.

    Parameters
    ----------
    geo_model : gempy.core.data.GeoModel
        The structural model. It is deep-copied; the caller's model is not modified.
    points : array_like, shape (n_points, 3)
        Evaluation points in metres (world coordinates, z up), e.g. the cell centres of a
        :class:`gempy_gravinv.PrismMesh`.
    sigmoid_slope : float
        GemPy's ``sigmoid_slope`` for the soft lithology block (scalar-field units of the
        normalised frame). Larger is sharper; GemPy's default 5e6 kills gradients.
    dtype : {"float64", "float32"}
        GemPy tensor dtype.
    num_threads : int, optional
        torch threads while GemPy runs (see :func:`~gempy_gravinv.geomodel.gempy_torch`);
        1 is fastest for small models on a shared machine.

    Notes
    -----
    Orientation and surface-point indices refer to the rows of
    ``geo_model.orientations_copy`` / ``geo_model.surface_points_copy`` (the order GemPy
    interpolates in). The model's input transform is frozen at construction: moving a
    surface point changes the data, not the normalisation.
    """

    def __init__(self, geo_model: Any, points, *, sigmoid_slope: float = 100.0,
                 dtype: str = "float64", num_threads: int | None = None) -> None:
        import contextlib
        import io

        import gempy as gp
        from gempy_engine.core.data.options.interpolation_options import InterpolationOptions

        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] == 0:
            raise ValueError(f"points must have shape (n_points, 3) in metres, got {pts.shape}")
        if not np.all(np.isfinite(pts)):
            raise ValueError("points contain NaN or inf")
        self.points = pts
        self.sigmoid_slope = check_number(sigmoid_slope, name="sigmoid_slope", low=0.0, low_open=True)
        self.dtype = dtype
        self.num_threads = num_threads
        gm = copy.deepcopy(geo_model)
        gm._solutions = None  # no weights from a previous run (no setter side effects)
        with contextlib.redirect_stdout(io.StringIO()):  # GemPy prints the active grids
            gp.set_custom_grid(gm.grid, xyz_coord=pts, reset=True)
        gm.grid.active_grids = gm.grid.GridTypes.CUSTOM
        opts = gm.interpolation_options
        opts.sigmoid_slope = self.sigmoid_slope
        opts.evaluation_options.mesh_extraction = False
        opts.evaluation_options.number_octree_levels = 1
        opts.cache_mode = InterpolationOptions.CacheMode.NO_CACHE
        self._gm = gm
        self.n_units = int(gm.structural_frame.number_of_elements)
        self.unit_names = [str(n) for n in gm.structural_frame.elements_names]

        # world -> normalised frame (affine), composed exactly as GemPy does
        M_in = gm.input_transform.get_transform_matrix()
        gt = gm.grid.transform
        piv = np.asarray(gt.cached_pivot if gt.cached_pivot is not None else np.zeros(3), float)
        T0 = np.eye(4)
        T0[:3, 3] = -piv
        T1 = np.eye(4)
        T1[:3, 3] = piv
        M = M_in @ (T1 @ gt.get_transform_matrix() @ T0)
        self._M = torch.as_tensor(M, dtype=_DTYPE)
        lin = (M_in[:3, :3] @ gt.get_transform_matrix()[:3, :3])
        self._grad_map = torch.as_tensor(np.linalg.inv(lin).T, dtype=_DTYPE)

        sp = gm.surface_points_copy
        ori = gm.orientations_copy
        self.surface_points_xyz = np.asarray(sp.xyz, dtype=np.float64).copy()
        self.orientations_xyz = np.asarray(ori.xyz, dtype=np.float64).copy()
        self.orientation_gradients = np.asarray(ori.grads, dtype=np.float64).copy()
        dip, az, pol = dips_from_gradients(self.orientation_gradients)
        self.dips_deg, self.azimuths_deg, self.polarities = dip, az, pol
        self._sp_norm0 = self._to_norm(torch.as_tensor(self.surface_points_xyz, dtype=_DTYPE))
        ref = gm.surface_points_copy_transformed.xyz
        if not np.allclose(self._sp_norm0.numpy(), ref, atol=1e-9):
            raise RuntimeError("internal: torch transform disagrees with GemPy's transform")
        self._grads_norm0 = self._grads_to_norm(torch.as_tensor(self.orientation_gradients,
                                                                dtype=_DTYPE))
        self.n_surface_points = self.surface_points_xyz.shape[0]
        self.n_orientations = self.orientations_xyz.shape[0]

    # ------------------------------------------------------------------ transforms
    def _to_norm(self, xyz: torch.Tensor) -> torch.Tensor:
        M = self._M.to(xyz.dtype)
        return xyz @ M[:3, :3].T + M[:3, 3]

    def _grads_to_norm(self, g: torch.Tensor) -> torch.Tensor:
        out = g @ self._grad_map.to(g.dtype).T
        # GemPy's transform_gradient(preserve_magnitude=True)
        return out * (torch.linalg.norm(g, dim=1) / torch.linalg.norm(out, dim=1))[:, None]

    def _check_index(self, idx, n: int, what: str) -> torch.Tensor:
        idx_a = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        if idx_a.ndim != 1 or np.any(idx_a < 0) or np.any(idx_a >= n):
            raise ValueError(f"{what} indices must be in [0, {n}), got {idx_a.tolist()}")
        if len(np.unique(idx_a)) != len(idx_a):
            raise ValueError(f"{what} indices must be unique, got {idx_a.tolist()}")
        return torch.as_tensor(idx_a)

    def interpolation_tensors(self, *, dips=None, dip_index=None, azimuths=None,
                              sp_z=None, sp_index=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Surface points and orientation gradients in GemPy's normalised frame (torch).

        Parameters
        ----------
        dips : tensor, shape (k,), optional
            Dips in degrees for the orientations ``dip_index`` (azimuth and polarity kept
            from the model unless ``azimuths`` is given).
        dip_index : sequence of int, optional
            Orientation rows the dips apply to (default: all, in order).
        azimuths : tensor, shape (k,), optional
            Dip directions in degrees for the same orientations.
        sp_z : tensor, shape (m,), optional
            Surface-point elevations in metres for rows ``sp_index``.
        sp_index : sequence of int, optional
            Surface-point rows (default: all, in order).

        Returns
        -------
        sp_coords : torch.Tensor, shape (n_surface_points, 3)
        dip_gradients : torch.Tensor, shape (n_orientations, 3)
        """
        sp = self._sp_norm0
        if sp_z is not None:
            z = _as_t(sp_z).reshape(-1)
            idx = (torch.arange(self.n_surface_points) if sp_index is None
                   else self._check_index(sp_index, self.n_surface_points, "surface-point"))
            if z.numel() != idx.numel():
                raise ValueError(f"sp_z has {z.numel()} values for {idx.numel()} surface points")
            dz = z - torch.as_tensor(self.surface_points_xyz[idx.numpy(), 2], dtype=z.dtype)
            delta = torch.zeros(self.n_surface_points, dtype=z.dtype).index_put((idx,), dz)
            sp = sp.to(z.dtype) + delta[:, None] * self._M[:3, 2].to(z.dtype)[None, :]
        g = self._grads_norm0
        if dips is not None or azimuths is not None:
            idx = (torch.arange(self.n_orientations) if dip_index is None
                   else self._check_index(dip_index, self.n_orientations, "orientation"))
            ii = idx.numpy()
            d = _as_t(dips).reshape(-1) if dips is not None else _as_t(self.dips_deg[ii])
            a = (_as_t(azimuths, dtype=d.dtype).reshape(-1) if azimuths is not None
                 else _as_t(self.azimuths_deg[ii], dtype=d.dtype))
            if d.numel() != idx.numel() or a.numel() != idx.numel():
                raise ValueError(f"dips/azimuths must have {idx.numel()} values (one per index)")
            gw = gradients_from_dips(d, a, self.polarities[ii])
            gn = self._grads_to_norm(gw)
            g = g.to(gn.dtype).index_put((idx,), gn)
        return sp, g

    # ------------------------------------------------------------------ evaluation
    def _compute(self, sp: torch.Tensor, g: torch.Tensor, grid: str = "custom"):
        import gempy_engine
        from gempy.modules.data_manipulation import interpolation_input_from_structural_frame

        with gempy_torch(dtype=self.dtype, grads=True, num_threads=self.num_threads):
            ii = interpolation_input_from_structural_frame(self._gm)
            ii.surface_points.sp_coords = sp
            ii.orientations.dip_gradients = g
            sol = gempy_engine.compute_model(
                interpolation_input=ii, options=self._gm.interpolation_options,
                data_descriptor=self._gm.input_data_descriptor)
            out = sol.octrees_output[0].outputs[-1]
            vals = out.custom_grid_values if grid == "custom" else out.geophysics_grid_values
        return vals.reshape(-1)

    def soft_ids(self, **params) -> torch.Tensor:
        """Fractional lithology id at the points (1 .. n_units), differentiable.

        Parameters
        ----------
        **params
            ``dips``, ``dip_index``, ``azimuths``, ``sp_z``, ``sp_index`` as in
            :meth:`interpolation_tensors`.

        Returns
        -------
        torch.Tensor, shape (n_points,)
        """
        sp, g = self.interpolation_tensors(**params)
        return self._compute(sp, g)

    def soft_lithology(self, **params) -> torch.Tensor:
        """Soft unit membership at the points, shape (n_points, n_units); rows sum to 1."""
        return membership_from_ids(self.soft_ids(**params), self.n_units)

    def density(self, unit_densities_kgm3, **params) -> torch.Tensor:
        """Density (contrast) at the points, kg/m³.

        Parameters
        ----------
        unit_densities_kgm3 : tensor, shape (n_units,) or (..., n_units)
            Density contrast of each unit in kg/m³, in GemPy id order (id 1 first,
            basement last).
        **params
            Structural parameters as in :meth:`interpolation_tensors`.

        Returns
        -------
        torch.Tensor, shape (n_points,)
            Linear interpolation of unit densities at the fractional id.
        """
        rho = _as_t(unit_densities_kgm3).reshape(-1)
        if rho.numel() != self.n_units:
            raise ValueError(f"unit_densities_kgm3 needs {self.n_units} values (units "
                             f"{self.unit_names}), got {rho.numel()}")
        return self.soft_lithology(**params) @ rho


class GemPyCenteredGravity:
    """GemPy's own centered-grid gravity, made differentiable in structure and densities.

    GemPy's ``solutions.gravity`` rounds the lithology to integer ids (zero gradient in
    the structure), so here the soft ids on the centered grid are mapped to density and
    multiplied with GemPy's ``calculate_gravity_gradient`` kernel ``tz`` directly.

    Parameters
    ----------
    geo_model : gempy.core.data.GeoModel
        Structural model (deep-copied).
    stations : array_like, shape (n_data, 3)
        Station coordinates in metres.
    resolution : sequence of 3 int
        GemPy's centered-grid resolution (``set_centered_grid``).
    radius : float or sequence of 3 float
        Kernel radius in metres.
    sigmoid_slope : float
        As in :class:`TorchGeoModel`.

    Notes
    -----
    GemPy's ``tz`` (``ugal=True``) gives **mGal** for densities in g/cm³, with the
    upward sign (negative for excess mass). :meth:`gz` returns our convention: mGal,
    positive downward, for density contrasts in kg/m³. Its geometric voxels leave out
    the top ~5% of the kernel depth below each station and can reach beyond the model
    extent, so it differs from a mesh forward by design.
    """

    def __init__(self, geo_model: Any, stations, *, resolution=(10, 10, 10), radius=1000.0,
                 sigmoid_slope: float = 100.0, dtype: str = "float64",
                 num_threads: int | None = None) -> None:
        import contextlib
        import io

        import gempy as gp

        st = np.asarray(stations, dtype=np.float64)
        if st.ndim != 2 or st.shape[1] != 3:
            raise ValueError(f"stations must have shape (n_data, 3), got {st.shape}")
        self.stations = st
        base = TorchGeoModel(geo_model, st[:1], sigmoid_slope=sigmoid_slope, dtype=dtype,
                             num_threads=num_threads)
        gm = base._gm
        with contextlib.redirect_stdout(io.StringIO()):
            gp.set_centered_grid(gm.grid, centers=st, resolution=list(resolution), radius=radius)
        gm.grid.active_grids = gm.grid.GridTypes.CENTERED
        tz = gp.calculate_gravity_gradient(gm.grid.centered_grid, ugal=True)
        self.tz = torch.as_tensor(np.asarray(tz, dtype=np.float64), dtype=_DTYPE)
        self.n_voxels = int(self.tz.numel())
        self._base = base
        self.n_units = base.n_units

    @property
    def geomodel(self) -> TorchGeoModel:
        """The underlying :class:`TorchGeoModel` (parameter mapping)."""
        return self._base

    def gz(self, unit_densities_kgm3, **params) -> torch.Tensor:
        """g_z at the stations, mGal, positive downward (excess mass gives positive values).

        Parameters
        ----------
        unit_densities_kgm3 : tensor, shape (n_units,)
            Density contrast per unit in kg/m³ (GemPy id order).
        **params
            Structural parameters as in :meth:`TorchGeoModel.interpolation_tensors`.
        """
        rho = _as_t(unit_densities_kgm3).reshape(-1)
        if rho.numel() != self.n_units:
            raise ValueError(f"unit_densities_kgm3 needs {self.n_units} values, got {rho.numel()}")
        sp, g = self._base.interpolation_tensors(**params)
        ids = self._base._compute(sp, g, grid="geophysics")
        dens_gcc = membership_from_ids(ids, self.n_units) @ kgm3_to_gcc(rho)
        up = (dens_gcc.reshape(self.stations.shape[0], -1) * self.tz.to(dens_gcc.dtype)).sum(dim=1)
        return gz_from_upward(up)


def soft_lithology(geo_model: Any, points, *, sigmoid_slope: float = 100.0, **params) -> torch.Tensor:
    """Soft unit membership of a GemPy model at points, shape (n_points, n_units).

    Convenience wrapper around :class:`TorchGeoModel` (build one and reuse it when
    evaluating many times). ``params``: ``dips``, ``dip_index``, ``azimuths``, ``sp_z``,
    ``sp_index`` (torch tensors keep their gradients).
    """
    return TorchGeoModel(geo_model, points, sigmoid_slope=sigmoid_slope).soft_lithology(**params)


def density_at(geo_model: Any, points, unit_densities_kgm3, *, sigmoid_slope: float = 100.0,
               **params) -> torch.Tensor:
    """Density contrast (kg/m³) of a GemPy model at points, differentiable.

    Parameters
    ----------
    geo_model : gempy GeoModel
    points : array_like, shape (n_points, 3)
        Metres, z up.
    unit_densities_kgm3 : tensor, shape (n_units,)
        Contrast per unit in kg/m³, GemPy id order (id 1 = unit above the first surface,
        basement last). Use :func:`gempy_gravinv.gcc_to_kgm3` for values in g/cm³.
    sigmoid_slope : float
        Sharpness of the soft lithology.
    **params
        Structural parameters (see :meth:`TorchGeoModel.interpolation_tensors`).

    Returns
    -------
    torch.Tensor, shape (n_points,)
        kg/m³.
    """
    return TorchGeoModel(geo_model, points, sigmoid_slope=sigmoid_slope).density(
        unit_densities_kgm3, **params)

