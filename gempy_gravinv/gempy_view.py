"""Back into GemPy: an inverted density on a GemPy model's regular grid, 3D views, VTK.

- :func:`density_on_geomodel_grid`: sample a density (an INR / hybrid / geology backend,
  any ``points -> kg/m³`` callable, or a model on a mesh such as a SimPEG inversion's) at
  the cell centres of a regular grid over a GemPy model's extent (GemPy's C order: x
  slowest). Returns a :class:`GridDensity`.
- :meth:`GridDensity.to_pyvista` / :meth:`GridDensity.save_vtk`: a ``pyvista.ImageData``
  with the density as cell data (``.vti`` for ParaView).
- :func:`render_3d`: an off-screen 3D picture (PNG) of the density (cells above/below a
  threshold, an outline) with the GemPy model's surfaces; falls back to a matplotlib 3D
  scatter when VTK cannot render (the reason is returned).

Conventions: metres, z up; density contrast in kg/m³. Heavy imports (gempy, pyvista,
matplotlib) happen inside the functions.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._mesh import as_prism_mesh
from ._validation import check_choice, check_int

logger = logging.getLogger(__name__)

#: octree levels GemPy evaluates when the surfaces of a model are extracted for a 3D view
SURFACE_OCTREE_LEVELS = 4

__all__ = ["GridDensity", "anomaly_index", "regular_grid_points", "sample_mesh_model", "density_on_geomodel_grid",
           "geomodel_surfaces", "render_3d", "save_backend_outputs"]


@dataclass
class GridDensity:
    """A density sampled on a regular grid (GemPy's regular-grid convention).

    Attributes
    ----------
    values : numpy.ndarray, shape (nx, ny, nz)
        Density contrast, kg/m³ (NaN where undefined, e.g. outside the source mesh).
    extent : numpy.ndarray (6,)
        ``(x_min, x_max, y_min, y_max, z_min, z_max)``, m.
    resolution : tuple of 3 int
        Cells per axis ``(nx, ny, nz)``.
    name : str
        Array name (``"density_contrast"``).
    extra : dict
        Further arrays of the same shape (e.g. ``"geology"``, ``"residual"`` of a hybrid).
    """

    values: np.ndarray
    extent: np.ndarray
    resolution: tuple
    name: str = "density_contrast"
    extra: dict = field(default_factory=dict)

    @property
    def spacing(self) -> np.ndarray:
        """Cell size (dx, dy, dz), m."""
        e = np.asarray(self.extent, float)
        return (e[1::2] - e[0::2]) / np.asarray(self.resolution, float)

    @property
    def points(self) -> np.ndarray:
        """Cell centres (n, 3) in GemPy's order (x slowest, z fastest), m."""
        return regular_grid_points(self.extent, self.resolution)

    def to_pyvista(self):
        """``pyvista.ImageData`` with the density (and ``extra``) as cell data."""
        import pyvista as pv

        e = np.asarray(self.extent, float)
        img = pv.ImageData(dimensions=tuple(int(r) + 1 for r in self.resolution),
                           spacing=tuple(self.spacing), origin=(e[0], e[2], e[4]))
        img.cell_data[self.name] = np.asarray(self.values, float).ravel(order="F")
        for k, v in self.extra.items():
            img.cell_data[k] = np.asarray(v, float).ravel(order="F")
        return img

    def save_vtk(self, path) -> Path:
        """Write a ``.vti`` file (VTK XML image data) for ParaView; returns the path."""
        p = Path(path)
        if p.suffix.lower() != ".vti":
            p = p.with_suffix(".vti")
        p.parent.mkdir(parents=True, exist_ok=True)
        self.to_pyvista().save(str(p))
        return p


def regular_grid_points(extent, resolution) -> np.ndarray:
    """Cell centres of a regular grid, GemPy's order (x slowest, then y, z fastest).

    Parameters
    ----------
    extent : sequence of 6 floats
        ``(x_min, x_max, y_min, y_max, z_min, z_max)``, m.
    resolution : sequence of 3 int
        Cells per axis ``(nx, ny, nz)``.

    Returns
    -------
    numpy.ndarray, shape (nx · ny · nz, 3)
        Cell centres, m.
    """
    e = np.asarray(extent, dtype=np.float64).reshape(-1)
    r = [check_int(v, name="resolution", minimum=1) for v in resolution]  # 8.7 refused, not cut to 8
    if e.size != 6 or len(r) != 3 or min(r) < 1 or np.any(e[1::2] <= e[0::2]):
        raise ValueError(f"need extent (6 floats, min < max) and resolution (3 positive ints), "
                         f"got {extent}, {resolution}")
    axes = [e[2 * i] + (np.arange(r[i]) + 0.5) * (e[2 * i + 1] - e[2 * i]) / r[i] for i in range(3)]
    xx, yy, zz = np.meshgrid(*axes, indexing="ij")
    return np.column_stack([xx.ravel(), yy.ravel(), zz.ravel()])


def sample_mesh_model(mesh, model, points, fill: float = np.nan) -> np.ndarray:
    """Value of a cell model at points: the value of the cell containing each point.

    Parameters
    ----------
    mesh : PrismMesh or discretize mesh
        The model's cells (active cells only when the PrismMesh has an active mask).
    model : array_like, shape (n_cells,)
        Cell values (e.g. a SimPEG or INR density contrast, kg/m³).
    points : array_like, shape (n, 3)
        Metres.
    fill : float
        Value for points outside every cell.

    Returns
    -------
    numpy.ndarray, shape (n,)
    """
    mesh = as_prism_mesh(mesh)
    v = np.asarray(model, dtype=np.float64).reshape(-1)
    if v.size != mesh.n_cells:
        raise ValueError(f"model has {v.size} values, the mesh has {mesh.n_cells} cells")
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    from scipy.spatial import cKDTree

    c = mesh.cell_centers
    _, idx = cKDTree(c).query(p)
    b = np.asarray(mesh.bounds, float)[idx]
    tol = 1e-9 * max(1.0, float(np.abs(b).max()))
    inside = np.all((p >= b[:, 0::2] - tol) & (p <= b[:, 1::2] + tol), axis=1)
    out = np.where(inside, v[idx], fill)
    if not np.all(inside):
        # a nearest centre can miss on graded meshes: check the few nearest cells
        miss = np.flatnonzero(~inside)
        _, kidx = cKDTree(c).query(p[miss], k=min(8, len(c)))
        kidx = np.atleast_2d(kidx)
        for j, row in zip(miss, kidx):
            bb = np.asarray(mesh.bounds, float)[row]
            ok = np.all((p[j] >= bb[:, 0::2] - tol) & (p[j] <= bb[:, 1::2] + tol), axis=1)
            if ok.any():
                out[j] = v[row[np.argmax(ok)]]
    return out


def _geomodel_extent_resolution(geo_model, resolution) -> tuple[np.ndarray, tuple]:
    grid = geo_model.grid
    ext = np.asarray(grid.extent if getattr(grid, "extent", None) is not None else
                     grid.regular_grid.extent, dtype=np.float64)
    if resolution is None:
        res = None
        for attr in ("dense_grid", "octree_grid", "regular_grid"):
            with contextlib.suppress(Exception):
                g = getattr(grid, attr)
                if g is not None and getattr(g, "resolution", None) is not None:
                    res = tuple(int(r) for r in g.resolution)
                    break
        resolution = res or (20, 20, 20)
    return ext, tuple(int(r) for r in resolution)


def density_on_geomodel_grid(geo_model, density, *, mesh=None, resolution=None, extent=None,
                             chunk: int = 200_000) -> GridDensity:
    """Put a density on a GemPy model's regular grid.

    Parameters
    ----------
    geo_model : gempy GeoModel or None
        Gives the extent (and, without ``resolution``, its dense/octree grid
        resolution). ``None`` needs ``extent`` and ``resolution``.
    density : callable or array_like
        A density backend / trained field (``points (n, 3) m -> kg/m³``; an INR, a
        :class:`~gempy_gravinv.density.HybridDensity`, a
        :class:`~gempy_gravinv.density.GeologyDensity`) evaluated at the grid cell
        centres, or a cell model (n_cells,) kg/m³ on ``mesh`` (e.g. a SimPEG inversion)
        sampled at them (NaN outside the mesh).
    mesh : PrismMesh or discretize mesh, optional
        Required when ``density`` is an array.
    resolution : sequence of 3 int, optional
        Grid resolution (default: the GemPy model's grid).
    extent : sequence of 6 floats, optional
        Overrides the model's extent, m.

    Returns
    -------
    GridDensity
        ``values`` (nx, ny, nz) kg/m³; for a hybrid also ``extra["geology"]`` and
        ``extra["residual"]``.
    """
    if geo_model is not None:
        ext, res = _geomodel_extent_resolution(geo_model, resolution)
    else:
        if extent is None or resolution is None:
            raise ValueError("without a geo_model give extent= and resolution=")
        ext, res = np.asarray(extent, float), tuple(int(r) for r in resolution)
    if extent is not None:
        ext = np.asarray(extent, dtype=np.float64)
    pts = regular_grid_points(ext, res)
    extra: dict[str, np.ndarray] = {}
    if callable(density) and not isinstance(density, np.ndarray):
        p = torch.as_tensor(pts)
        comps = getattr(density, "components", None)
        vals, geo, resid = [], [], []
        with torch.no_grad():
            for i in range(0, p.shape[0], chunk):
                if comps is not None:
                    c = comps(p[i:i + chunk])
                    vals.append(c["total"].double().cpu())
                    geo.append(c["geology"].double().cpu())
                    resid.append(c["residual"].double().cpu())
                else:
                    vals.append(density(p[i:i + chunk]).double().cpu())
        v = torch.cat(vals).numpy()
        if comps is not None:
            extra = {"geology": torch.cat(geo).numpy().reshape(res), "residual": torch.cat(resid).numpy().reshape(res)}
    else:
        if mesh is None:
            raise ValueError("a cell model (array) needs mesh= (the cells it lives on)")
        v = sample_mesh_model(mesh, density, pts)
    return GridDensity(values=v.reshape(res), extent=ext, resolution=res, extra=extra)


def geomodel_surfaces(geo_model, offset=None) -> dict:
    """The GemPy model's contact surfaces as ``{name: (pyvista.PolyData, colour)}``.

    Computes the model (numpy backend, on a deep copy, inside the torch guard) if it has
    no meshes yet.

    Parameters
    ----------
    geo_model : gempy GeoModel
        The structural model.
    offset : array_like (3,), optional
        Shift added to the vertices, m (e.g. a local-coordinate model shown in UTM).

    Returns
    -------
    dict
        ``{surface name: (pyvista.PolyData, colour)}``, vertices in metres, z up.
    """
    import pyvista as pv

    from .geomodel import gempy_torch
    from .geomodel._loading import bare_copy

    gm = geo_model
    elems = gm.structural_frame.structural_elements
    if not any(getattr(e, "vertices", None) is not None and len(e.vertices) for e in elems):
        import gempy as gp

        gm = bare_copy(geo_model)  # its centered-grid kernel does not belong to the octree grid
        opts = gm.interpolation_options
        ev = getattr(opts, "evaluation_options", None)
        if hasattr(gm.grid, "set_octree_grid_by_levels") and ev is not None:
            # surfaces come from GemPy's octree: define it ("Octree grid is active but not defined" otherwise)
            levels = max(int(getattr(ev, "number_octree_levels", 0) or 0), SURFACE_OCTREE_LEVELS)
            with gempy_torch(grads=False), contextlib.redirect_stdout(io.StringIO()):
                gm.grid.set_octree_grid_by_levels(levels, ev, np.asarray(gm.grid.extent, float))
                gm.grid.active_grids = gm.grid.GridTypes.OCTREE
        elif hasattr(gm.grid.GridTypes, "OCTREE"):  # pragma: no cover - older gempy
            gm.grid.active_grids = gm.grid.GridTypes.OCTREE
        if ev is not None and hasattr(ev, "mesh_extraction"):
            ev.mesh_extraction = True
        else:  # pragma: no cover - older gempy
            opts.mesh_extraction = True
        with gempy_torch(grads=False), contextlib.redirect_stdout(io.StringIO()):
            gp.compute_model(gm)
        elems = gm.structural_frame.structural_elements
    out = {}
    for e in elems:
        v, f = getattr(e, "vertices", None), getattr(e, "edges", None)
        if v is None or f is None or len(v) == 0 or len(f) == 0:
            continue
        vv = np.asarray(v, float) + (0.0 if offset is None else np.asarray(offset, float).reshape(1, 3))
        out[e.name] = (pv.PolyData(vv, np.insert(np.asarray(f), 0, 3, axis=1).ravel()), e.color)
    return out


def render_3d(grid: GridDensity, path, *, geo_model=None, threshold: float | None = None,
              below: bool = False, cmap: str = "RdBu_r", clim=None, title: str | None = None,
              window_size=(900, 700), stations=None, fallback: bool = True, offset=None,
              style: str = "threshold", surfaces: dict | None = None) -> dict:
    """Render a gridded density (and the GemPy model's surfaces) off-screen to a PNG.

    Parameters
    ----------
    grid : GridDensity
        Density contrast on a regular grid, kg/m³.
    path : str or path
        PNG to write (its folder is created).
    geo_model : gempy GeoModel, optional
        Draws its contact surfaces (semi-transparent), shifted by ``offset`` (3,) m.
    threshold : float, optional
        Show cells with density ≥ threshold (≤ with ``below``), kg/m³. Default: the 90th
        percentile of |density| (cells beyond it, both signs).
    below : bool
        Show the cells at or below ``threshold`` instead (negative anomalies).
    cmap : str
        Matplotlib / VTK colour map.
    clim : (float, float), optional
        Colour limits, kg/m³ (default symmetric ±max|ρ|).
    title : str, optional
        Title of the picture.
    window_size : (int, int)
        Picture size in pixels (pyvista).
    stations : array_like (n, 3), optional
        Station locations to draw as points (m).
    fallback : bool
        If VTK cannot render (no display/OpenGL), draw a matplotlib 3D scatter instead.
    style : {"threshold", "slices"}
        ``"threshold"``: the cells beyond ``threshold``; ``"slices"``: three orthogonal
        slices through the centre of the volume (all values; for layered fields).
    offset : array_like (3,), optional
        Shift (m) added to the GemPy model's coordinates (model + offset = grid
        coordinates).
    surfaces : dict, optional
        Precomputed :func:`geomodel_surfaces` (saves recomputing the GemPy model).

    Returns
    -------
    dict
        ``{"path": str, "renderer": "pyvista" | "matplotlib", "error": str | None}``
        (``error``: why pyvista failed, when the fallback was used, or why the
        surfaces were skipped).

    Raises
    ------
    ValueError
        An unknown ``style``, or a grid without any finite value.
    """
    check_choice(style, ("threshold", "slices"), name="style")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    vals = np.asarray(grid.values, float)
    finite = vals[np.isfinite(vals)]
    if finite.size == 0:
        raise ValueError("the grid has no finite density values")
    vmax = float(np.abs(finite).max()) or 1.0
    clim = tuple(clim) if clim is not None else (-vmax, vmax)
    thr = float(np.percentile(np.abs(finite), 90)) if threshold is None else float(threshold)
    err = None
    try:
        import pyvista as pv

        img = grid.to_pyvista()
        pl = pv.Plotter(off_screen=True, window_size=list(window_size))
        pl.add_mesh(img.outline(), color="k")
        arr = img.cell_data[grid.name]
        bar = {"title": "density contrast (kg/m³)"}
        if style == "slices":
            pl.add_mesh(img.cell_data_to_point_data().slice_orthogonal(), scalars=grid.name, cmap=cmap,
                        clim=clim, scalar_bar_args=bar)
        else:
            if threshold is None:
                keep = np.abs(np.nan_to_num(arr)) >= thr
            else:
                keep = (arr <= thr) if below else (arr >= thr)
            if keep.any():
                sub = img.extract_cells(np.flatnonzero(keep))
                pl.add_mesh(sub, scalars=grid.name, cmap=cmap, clim=clim, opacity=0.9, scalar_bar_args=bar)
        if geo_model is not None or surfaces is not None:
            try:
                surfs = surfaces if surfaces is not None else geomodel_surfaces(geo_model, offset)
                for name, (surf, color) in surfs.items():
                    pl.add_mesh(surf, color=color or "grey", opacity=0.35, label=name)
            except Exception as exc:  # surfaces are decoration
                err = f"surfaces skipped: {exc}"
        if stations is not None:
            pl.add_points(np.asarray(stations, float).reshape(-1, 3), color="k", point_size=4)
        pl.show_bounds(xtitle="x (m)", ytitle="y (m)", ztitle="z (m)")
        if title:
            pl.add_title(title, font_size=10)
        pl.camera_position = "iso"
        pl.screenshot(str(p))
        pl.close()
        if not p.exists() or p.stat().st_size == 0:
            raise RuntimeError("pyvista wrote no image")
        return {"path": str(p), "renderer": "pyvista", "error": err}
    except Exception as exc:
        if not fallback:
            raise
        err = f"{type(exc).__name__}: {exc}"
        logger.info("pyvista could not render (%s): drawing a matplotlib 3D scatter instead", err)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = grid.points
    v = vals.reshape(-1)
    keep = np.isfinite(v) & ((np.abs(v) >= thr) if threshold is None else ((v <= thr) if below else (v >= thr)))
    if style == "slices":
        keep = np.isfinite(v)
    fig = plt.figure(figsize=(8, 6))
    ax = fig.add_subplot(projection="3d")
    sc = ax.scatter(pts[keep, 0], pts[keep, 1], pts[keep, 2], c=v[keep], cmap=cmap, vmin=clim[0], vmax=clim[1],
                    s=12, alpha=0.8)
    fig.colorbar(sc, ax=ax, shrink=0.6, label="density contrast (kg/m³)")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_zlabel("z (m)")
    if title:
        ax.set_title(title)
    fig.savefig(p, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return {"path": str(p), "renderer": "matplotlib", "error": err}


def save_backend_outputs(result, directory, *, name: str = "inr", figures: bool = True,
                         resolution=(40, 40, 20), geo_model=None, offset=None,
                         description: str | None = None) -> dict:
    """Extra outputs of an inversion with a GemPy backend (geology or hybrid).

    Writes, into ``directory``: ``{name}_components.npz`` (cell values, kg/m³: ``total``,
    ``geology``, ``residual``), ``{name}_components.vtr/.vtu`` (the same as VTK cell
    arrays), ``{name}_geology.json`` (unit names, fitted unit contrasts, settings) and,
    with ``figures``, ``{name}_components.png`` (sections of the three parts through the
    anomaly: the largest residual, else the largest density), ``{name}_residual.png``
    (the residual on its own symmetric colour scale, from its values), the
    gridded field ``{name}_grid.vti`` and off-screen 3D views ``{name}_3d.png`` (total)
    and ``{name}_3d_residual.png`` (hybrid residual) with the GemPy surfaces.

    Parameters
    ----------
    result : INRResult
        From :func:`gempy_gravinv.inversion.invert_inr` with ``density=`` a geology or
        hybrid backend (``result.field``).
    directory : str or path
        Output folder (created if needed).
    name : str
        File-name prefix.
    figures : bool
        Also write the sections, the gridded field and the 3D views.
    resolution : 3 ints
        Regular grid of the 3D view (over the GemPy model's extent shifted by the
        backend's offset, clipped to the mesh).
    geo_model : gempy GeoModel, optional
        Default: the backend's.
    offset : (3,) m, optional
        Default: the backend's (model coordinates + offset = data coordinates).
    description : str, optional
        Stored in the JSON.

    Returns
    -------
    dict
        ``{kind: path}``: ``components``, ``components_vtk``, ``geology`` and, with
        ``figures``, ``components_png`` (tensor meshes), ``grid_vtk``, ``view_3d``,
        ``view_3d_residual`` (hybrid); ``"failed: <reason>"`` for an output that could
        not be written (``surfaces`` when the GemPy surfaces could not be computed: the
        views are drawn without them). ``renderer_3d`` says which renderer drew the 3D
        views and why pyvista failed if it did.
    """
    from .density import GeologyDensity
    from .output import save_figures, save_metrics_json, save_vtk, write_each

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    fld = result.field
    mesh = result.mesh
    geo = fld if isinstance(fld, GeologyDensity) else getattr(fld, "geology", None)
    if geo is None:
        raise TypeError("save_backend_outputs needs a result trained with a GeologyDensity or HybridDensity")
    gm = geo.geo_model if geo_model is None else geo_model
    off = geo.offset if offset is None else np.asarray(offset, float)
    comps = _cell_components(fld, mesh)
    info = dict(geo.summary(), offset_m=np.asarray(off, float).tolist(), description=description,
                residual_units=getattr(fld, "residual_units", None),
                depth_range=getattr(fld, "depth_range", None),
                rms_kgm3={k: float(np.sqrt(np.mean(v ** 2))) for k, v in comps.items()})
    written: dict[str, Any] = write_each([
        ("components", lambda: _save_npz(d / f"{name}_components.npz", comps)),
        ("components_vtk", lambda: save_vtk(d / f"{name}_components", mesh,
                                            **{f"{k}_kgm3": v for k, v in comps.items()})),
        ("geology", lambda: save_metrics_json(d / f"{name}_geology.json", info)),
    ])
    if not figures:
        return written
    if mesh.shape is not None:  # sections need a tensor mesh
        jobs = [("components", lambda: _components_figure(mesh, comps))]
        if np.any(np.abs(comps.get("residual", 0.0)) > 0):
            jobs.append(("residual", lambda: _components_figure(mesh, comps, "residual")))
        png = save_figures(d, name, jobs, dpi=110)
        written.update({f"{k}_png": v for k, v in png.items()})
    grid = density_on_geomodel_grid(None, fld, extent=_view_extent(gm, off, mesh), resolution=resolution)
    written.update(write_each([("grid_vtk", lambda: grid.save_vtk(d / f"{name}_grid.vti"))]))
    try:
        surfs = geomodel_surfaces(gm, off)
    except Exception as exc:  # the density views do not need the surfaces
        logger.warning("GemPy surfaces skipped in the 3D views: %s", exc)
        surfs = None
        written["surfaces"] = f"failed: {exc}"
    r = render_3d(grid, d / f"{name}_3d.png", surfaces=surfs, style="slices",
                  title=f"{name}: density contrast (kg/m³)", stations=result.survey.locations)
    written["view_3d"] = r["path"]
    written["renderer_3d"] = r["renderer"] + (f" ({r['error']})" if r["error"] else "")
    if grid.extra:
        res_grid = GridDensity(values=grid.extra["residual"], extent=grid.extent, resolution=grid.resolution,
                               name="residual_kgm3")
        if np.any(np.abs(res_grid.values) > 0):
            r2 = render_3d(res_grid, d / f"{name}_3d_residual.png", surfaces=surfs,
                           title=f"{name}: INR residual (kg/m³)", stations=result.survey.locations)
            written["view_3d_residual"] = r2["path"]
    return written


def _cell_components(fld, mesh) -> dict[str, np.ndarray]:
    """``total``, ``geology`` and ``residual`` density (kg/m³) of a backend at the cell centres."""
    pts = torch.as_tensor(mesh.cell_centers)
    with torch.no_grad():
        if hasattr(fld, "components"):
            return {k: v.double().cpu().numpy() for k, v in fld.components(pts).items() if k != "weight"}
        tot = fld(pts).double().cpu().numpy()
    return {"total": tot, "geology": tot, "residual": np.zeros_like(tot)}


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)
    return path


def anomaly_index(mesh, values) -> tuple[int, int, int]:
    """Cell indices ``(ix, iy, iz)`` of the largest ``|values - median|`` on a tensor mesh.

    Sections drawn through these indices cut the anomaly (a fixed middle slice can miss
    a compact body).

    Parameters
    ----------
    mesh : PrismMesh or discretize.TensorMesh
        Tensor mesh (``shape`` known; active cells allowed).
    values : array_like, shape (n_cells,)
        Cell values in the mesh's cell order (e.g. a residual density, kg/m³).

    Returns
    -------
    tuple of 3 int
        ``ix, iy, iz`` in discretize order (iz counted from the bottom).
    """
    m = as_prism_mesh(mesh)
    if m.shape is None:
        raise ValueError("anomaly_index needs a tensor mesh (its shape)")
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size != m.n_cells:
        raise ValueError(f"values has {v.size} entries for {m.n_cells} cells")
    w = np.abs(np.nan_to_num(v - np.nanmedian(v)))
    full = int(np.asarray(m.full_index)[int(np.argmax(w))])
    nx, ny, _ = m.shape
    return full % nx, (full // nx) % ny, full // (nx * ny)


def _components_figure(mesh, comps: dict[str, np.ndarray], which: str = "all"):
    """Sections through the anomaly: total and geology on one scale, the residual on its own."""
    from .plotting import plot_sections

    res = np.asarray(comps.get("residual", np.zeros(1)), float)
    has_res = bool(np.any(np.abs(res) > 0))
    idx = anomaly_index(mesh, res if has_res else comps["total"])
    if which == "residual":
        vmax = float(np.nanmax(np.abs(res))) or 1.0  # the residual's own scale, from its values
        fig = plot_sections(mesh, {"residual": res}, index=idx, outline=False, cmap="RdBu_r",
                            vmin=-vmax, vmax=vmax)
    else:
        shown = {k: v for k, v in comps.items() if k != "residual" or not has_res}
        fig = plot_sections(mesh, shown, index=idx, outline=False)
    return getattr(fig, "figure", fig)


def _view_extent(geo_model, offset, mesh) -> np.ndarray:
    """The GemPy model's extent shifted by ``offset`` and clipped to the mesh (the mesh's if disjoint), m."""
    ext = np.asarray(geo_model.grid.extent, float) + np.repeat(np.asarray(offset, float), 2)
    me = np.asarray(mesh.extent, float)
    ext = np.array([max(ext[0], me[0]), min(ext[1], me[1]), max(ext[2], me[2]), min(ext[3], me[3]),
                    max(ext[4], me[4]), min(ext[5], me[5])])
    return me if np.any(ext[1::2] <= ext[0::2]) else ext
