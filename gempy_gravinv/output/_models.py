"""Model files: NetCDF (xarray), VTK (discretize/pyvista) and UBC-GIF models.

Models are density contrasts in kg/m³ on the cells of a mesh, in its cell order; the
units and sign convention written into each file are described in the package docstring.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._constants import kgm3_to_gcc
from .._json import to_jsonable
from .._mesh import PrismMesh, as_prism_mesh

__all__ = ["save_netcdf", "load_netcdf", "save_vtk", "save_ubc_model"]

PathLike = str | os.PathLike
_SIGN = ("density contrast relative to reference_density, kg/m3; gravity g_z in mGal is "
         "positive downward (excess mass gives positive g_z)")


def _values(values, mesh: PrismMesh, name: str) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 2 and 1 in v.shape:
        v = v.reshape(-1)
    if v.ndim != 1 or v.shape[0] != mesh.n_cells:
        raise ValueError(f"{name} must have one value per cell ({mesh.n_cells}), got shape {v.shape}")
    if np.isinf(v).any():
        raise ValueError(f"{name} contains inf values")
    return v


def _attr_value(v):
    """A NetCDF-storable attribute value."""
    if v is None:
        return "None"
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (int, float, str, np.integer, np.floating)):
        return v
    if isinstance(v, np.ndarray) and v.dtype.kind in "iuf":
        return v
    if isinstance(v, (list, tuple)) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        return np.asarray(v)
    return json.dumps(to_jsonable(v))


def _is_tensor(mesh: PrismMesh) -> bool:
    src = mesh.source
    return mesh.shape is not None and src is not None and hasattr(src, "h") and len(src.h) == 3


def save_netcdf(path: PathLike, mesh, model, std=None, name: str = "density_contrast",
                attrs: dict | None = None, *, reference_density: float = 0.0, crs=None) -> Path:
    """Write a model (and optionally its standard deviation) to NetCDF through xarray.

    Parameters
    ----------
    path : str or path-like
        Output ``.nc`` file (overwritten). Written with the ``h5netcdf`` engine.
    mesh : PrismMesh or discretize mesh
        The cells the model lives on.
    model : array_like (n_cells,)
        Density contrast, kg/m³, in the mesh's cell order (NumPy or torch).
    std : array_like (n_cells,), optional
        Standard deviation of the model (e.g. an ensemble), kg/m³; stored as
        ``f"{name}_std"``.
    name : str
        Variable name.
    attrs : dict, optional
        Extra global attributes (metrics, settings...); non-scalar values are stored as
        JSON strings.
    reference_density : float
        Absolute density the contrast is relative to, kg/m³ (attribute).
    crs : str, optional
        CRS of the mesh coordinates (e.g. ``survey.crs``: ``"EPSG:25830"`` or WKT):
        written as a CF grid mapping (a scalar ``crs`` variable with ``crs_wkt``, named
        by the data variables' ``grid_mapping`` attribute).

    Returns
    -------
    pathlib.Path
        The written file.

    Notes
    -----
    A tensor mesh becomes variables over ``(z, y, x)`` with cell-centre coordinates
    ``x, y, z`` (m, z up) and widths ``hx, hy, hz``; inactive cells are NaN and the
    ``active`` variable (int8) marks the cells of ``mesh``. Any other mesh becomes
    variables over ``cell`` with centre coordinates and a ``bounds`` (cell, 6) variable.
    """
    import xarray as xr

    mesh = as_prism_mesh(mesh)
    m = _values(model, mesh, "model")
    s = None if std is None else _values(std, mesh, "std")
    var_attrs = {"units": "kg/m3", "long_name": "density contrast",
                 "sign_convention": _SIGN, "reference_density": float(reference_density),
                 "reference_density_units": "kg/m3"}
    data_vars: dict[str, Any] = {}
    coords: dict[str, Any] = {}
    if _is_tensor(mesh):
        nx, ny, nz = mesh.shape
        src = mesh.source
        active = np.ones(nx * ny * nz, bool) if mesh.active_cells is None else mesh.active_cells

        def grid(v):
            return np.asarray(mesh.to_full(v, fill=np.nan), float).reshape((nx, ny, nz), order="F").transpose(2, 1, 0)

        dims = ("z", "y", "x")
        coords = {
            "x": ("x", np.asarray(src.cell_centers_x, float), {"units": "m", "long_name": "easting (cell centre)"}),
            "y": ("y", np.asarray(src.cell_centers_y, float), {"units": "m", "long_name": "northing (cell centre)"}),
            "z": ("z", np.asarray(src.cell_centers_z, float),
                  {"units": "m", "long_name": "elevation (cell centre), z up", "positive": "up"}),
            "hx": ("x", np.asarray(src.h[0], float), {"units": "m", "long_name": "cell width in x"}),
            "hy": ("y", np.asarray(src.h[1], float), {"units": "m", "long_name": "cell width in y"}),
            "hz": ("z", np.asarray(src.h[2], float), {"units": "m", "long_name": "cell height"}),
        }
        data_vars[name] = (dims, grid(m), var_attrs)
        if s is not None:
            data_vars[f"{name}_std"] = (dims, grid(s), dict(var_attrs, long_name="standard deviation of " + name))
        data_vars["active"] = (dims, active.reshape((nx, ny, nz), order="F").transpose(2, 1, 0).astype(np.int8),
                               {"long_name": "1 where the cell is in the model's mesh"})
        layout = "tensor"
    else:
        cc = mesh.cell_centers
        coords = {"x": ("cell", cc[:, 0], {"units": "m"}), "y": ("cell", cc[:, 1], {"units": "m"}),
                  "z": ("cell", cc[:, 2], {"units": "m", "positive": "up"})}
        data_vars[name] = (("cell",), m, var_attrs)
        if s is not None:
            data_vars[f"{name}_std"] = (("cell",), s, dict(var_attrs, long_name="standard deviation of " + name))
        data_vars["bounds"] = (("cell", "face"), np.asarray(mesh.bounds, float),
                               {"units": "m", "long_name": "west, east, south, north, bottom, top"})
        layout = "cells"
    gattrs = {"Conventions": "CF-1.8", "source": "gempy_gravinv", "layout": layout,
              "variable": name, "sign_convention": _SIGN}
    for k, v in (attrs or {}).items():
        gattrs[str(k)] = _attr_value(v)
    if crs is not None:  # CF grid mapping: one scalar variable, named by each data variable
        from ..io import crs_cf_attributes

        for k in (name, f"{name}_std"):
            if k in data_vars:
                data_vars[k][2]["grid_mapping"] = "crs"
        data_vars["crs"] = ((), np.int32(0), crs_cf_attributes(crs))
    ds = xr.Dataset(data_vars=data_vars, coords=coords, attrs=gattrs)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(p, engine="h5netcdf")
    return p


def load_netcdf(path: PathLike, name: str | None = None) -> dict:
    """Read a file written by :func:`save_netcdf`.

    Parameters
    ----------
    path : str or path-like
        The ``.nc`` file.
    name : str, optional
        Variable to read; the file's ``variable`` attribute by default.

    Returns
    -------
    dict
        ``model`` (n_cells,) kg/m³ and ``std`` (or None) in the saved mesh's cell order;
        ``mesh``: the :class:`PrismMesh` rebuilt from the file (a tensor mesh with the
        same active cells, or the per-cell bounds); ``reference_density`` (kg/m³);
        ``attrs`` (global attributes); ``dataset`` (the loaded ``xarray.Dataset``).
    """
    import xarray as xr

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such NetCDF file: {p}")
    with xr.open_dataset(p, engine="h5netcdf") as ds0:
        ds = ds0.load()
    name = name or ds.attrs.get("variable", "density_contrast")
    if name not in ds:
        raise ValueError(f"{p} has no variable {name!r}; it has {sorted(ds.data_vars)}")
    std_name = f"{name}_std"
    if ds.attrs.get("layout") == "tensor":
        from discretize import TensorMesh

        hx, hy, hz = (np.asarray(ds[h].values, float) for h in ("hx", "hy", "hz"))
        origin = (float(ds.x.values[0] - hx[0] / 2), float(ds.y.values[0] - hy[0] / 2),
                  float(ds.z.values[0] - hz[0] / 2))
        tm = TensorMesh([hx, hy, hz], origin=origin)

        def flat(v):
            return np.asarray(v, float).transpose(2, 1, 0).reshape(-1, order="F")

        active = flat(ds["active"].values).astype(bool)
        mesh = PrismMesh.from_discretize(tm, active_cells=None if active.all() else active)
        model = flat(ds[name].values)[active]
        std = flat(ds[std_name].values)[active] if std_name in ds else None
    else:
        mesh = PrismMesh(np.asarray(ds["bounds"].values, float))
        model = np.asarray(ds[name].values, float)
        std = np.asarray(ds[std_name].values, float) if std_name in ds else None
    return {"model": model, "std": std, "mesh": mesh,
            "reference_density": float(ds[name].attrs.get("reference_density", 0.0)),
            "attrs": dict(ds.attrs), "dataset": ds}


def save_vtk(path: PathLike, mesh, **cell_arrays) -> Path:
    """Write cell arrays on a mesh to a VTK XML file (ParaView, pyvista).

    Parameters
    ----------
    path : str or path-like
        Output file. The extension is set to ``.vtr`` (tensor mesh, rectilinear grid)
        or ``.vtu`` (tree mesh or plain prisms, unstructured grid); the written path is
        returned.
    mesh : PrismMesh or discretize mesh
        The cells.
    **cell_arrays : array_like (n_cells,)
        Named arrays in the mesh's cell order, e.g. ``density_contrast=model`` (kg/m³;
        name your arrays with their units in mind). Inactive cells of the source mesh
        are NaN in the file.

    Returns
    -------
    pathlib.Path
    """
    import pyvista as pv

    mesh = as_prism_mesh(mesh)
    if not cell_arrays:
        raise ValueError("give at least one cell array, e.g. save_vtk(path, mesh, density_contrast=model)")
    arrays = {k: _values(v, mesh, k) for k, v in cell_arrays.items()}
    src = mesh.source
    if src is not None and hasattr(src, "to_vtk"):
        full = {k: np.asarray(mesh.to_full(v, fill=np.nan), float) for k, v in arrays.items()}
        grid = src.to_vtk(full)
    else:
        b = np.asarray(mesh.bounds, float)
        n = b.shape[0]
        # VTK hexahedron corner order: bottom face counter-clockwise, then top face
        order = [(0, 2, 4), (1, 2, 4), (1, 3, 4), (0, 3, 4), (0, 2, 5), (1, 2, 5), (1, 3, 5), (0, 3, 5)]
        pts = np.stack([b[:, [i, j, k]] for i, j, k in order], axis=1).reshape(-1, 3)
        cells = np.hstack([np.full((n, 1), 8), np.arange(8 * n).reshape(n, 8)]).ravel()
        grid = pv.UnstructuredGrid(cells, np.full(n, pv.CellType.HEXAHEDRON, dtype=np.uint8), pts)
        for k, v in arrays.items():
            grid.cell_data[k] = v
    ext = (".vtr" if isinstance(grid, pv.RectilinearGrid)
           else ".vtu" if isinstance(grid, pv.UnstructuredGrid) else ".vtk")
    p = Path(path)
    if p.suffix.lower() != ext:
        p = p.with_suffix(ext)
    p.parent.mkdir(parents=True, exist_ok=True)
    grid.save(str(p))
    return p


def save_ubc_model(path: PathLike, mesh, model_kgm3, *, reference_density: float = 0.0,
                   mesh_path: PathLike | None = None) -> Path:
    """Write a model as a UBC-GIF model file in **g/cm³** (GRAV3D's unit), via discretize.

    Parameters
    ----------
    path : str or path-like
        Output model file.
    mesh : PrismMesh or discretize TensorMesh/TreeMesh
        The mesh; a :class:`PrismMesh` must come from discretize (``mesh.source``).
        Inactive cells are written as ``-99999`` (see :mod:`gempy_gravinv.io`).
    model_kgm3 : array_like (n_cells,)
        Density contrast, kg/m³, in the mesh's cell order.
    reference_density : float
        kg/m³ added before the conversion (0 writes the contrast; give the reference to
        write absolute densities).
    mesh_path : str or path-like, optional
        Also write the UBC mesh file there.

    Returns
    -------
    pathlib.Path
        The model file. Read it back with :func:`gempy_gravinv.io.read_ubc_model` and
        :func:`gempy_gravinv.io.model_to_contrast_kgm3`.
    """
    from ..io import write_ubc_model

    mesh = as_prism_mesh(mesh)
    if mesh.source is None:
        raise ValueError("UBC model files need a discretize mesh (PrismMesh.source is None)")
    m = _values(model_kgm3, mesh, "model_kgm3")
    full = mesh.to_full(kgm3_to_gcc(m + float(reference_density)), fill=np.nan)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if mesh_path is not None:
        mp = Path(mesh_path)
        mp.parent.mkdir(parents=True, exist_ok=True)
        mesh.source.write_UBC(str(mp))
    return write_ubc_model(p, mesh.source, full)
