"""A synthetic GemPy case: a layered structural model plus a dense body it does not contain.

:func:`layered_geomodel` builds a small three-unit GemPy model (a low-density cover, a
middle unit and a dense basement, separated by two gently dipping contacts).
:func:`geology_case` puts it on a tensor mesh (GemPy's own lithology at the cell centres),
adds an unmodelled dense block inside the middle unit, computes g_z with our prism
operator and adds seeded noise. It returns a :class:`GeologySyntheticCase`: the
:class:`~gempy_gravinv.cases.synthetic.SyntheticCase` fields plus the GeoModel, the unit
density contrasts and the two parts of the truth (geology, body).
:func:`layered_model` is the same GemPy model with its unit contrasts, as the built-in
``--geomodel layered`` of the GemPy density backends.

This is the benchmark of the hybrid density backend (GemPy geology + INR residual): the
geology explains the layers, the residual INR must find the body.

Conventions: metres, z up; density contrast in kg/m³; g_z in mGal, positive downward.
Importing this module does not import GemPy; building a case does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..geomodel import LoadedGeoModel, gempy_lithology_ids
from .synthetic import SyntheticCase, _finish, _stations_over_centres, _tensor_case_mesh

__all__ = ["GeologySyntheticCase", "layered_geomodel", "layered_model", "geology_case", "LAYERED_UNITS",
           "LAYERED_DENSITIES"]

#: unit names of :func:`layered_geomodel`, in GemPy id order (id 1 first, basement last)
LAYERED_UNITS = ("cover", "middle", "basement")
#: their default density contrasts, kg/m³ (GemPy id order)
LAYERED_DENSITIES = (-300.0, 0.0, 250.0)


@dataclass(repr=False)
class GeologySyntheticCase(SyntheticCase):
    """A :class:`~gempy_gravinv.cases.synthetic.SyntheticCase` built from a GemPy model.

    Extra attributes
    ----------------
    geo_model : gempy GeoModel
        The structural model (it does *not* contain the body).
    unit_names : tuple of str
        Units in GemPy id order (id 1 first, basement last).
    unit_densities : numpy.ndarray, shape (n_units,)
        True density contrast of every unit, kg/m³ (GemPy id order).
    geology_model : numpy.ndarray, shape (n_cells,)
        The geology part of the truth on the cells, kg/m³ (GemPy's integer lithology at
        the cell centres mapped to ``unit_densities``).
    body_model : numpy.ndarray, shape (n_cells,)
        The unmodelled part, kg/m³ (``model = geology_model + body_model``).
    lithology : numpy.ndarray of int, shape (n_cells,)
        GemPy's lithology id at the cell centres.
    """

    geo_model: Any = None
    unit_names: tuple = ()
    unit_densities: np.ndarray = field(default_factory=lambda: np.zeros(0))
    geology_model: np.ndarray = field(default_factory=lambda: np.zeros(0))
    body_model: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lithology: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))

    @property
    def body_mask(self) -> np.ndarray:
        """Cells of the unmodelled body (bool, n_cells)."""
        return self.body_model != 0


def _plane_element(name: str, extent, z_center: float, slope_x: float, slope_y: float, color: str):
    """A GemPy structural element on the plane z = z_center + sx (x - xc) + sy (y - yc)."""
    from gempy.core.data import OrientationsTable, StructuralElement, SurfacePointsTable

    x0, x1, y0, y1 = (float(v) for v in extent[:4])
    xc, yc = (x0 + x1) / 2, (y0 + y1) / 2
    fx = np.array([0.15, 0.85, 0.15, 0.85, 0.5])
    fy = np.array([0.15, 0.15, 0.85, 0.85, 0.5])
    x = x0 + fx * (x1 - x0)
    y = y0 + fy * (y1 - y0)
    z = z_center + slope_x * (x - xc) + slope_y * (y - yc)
    sp = SurfacePointsTable.from_arrays(x=x, y=y, z=z, names=[name] * len(x))
    n = np.array([-slope_x, -slope_y, 1.0])
    n /= np.linalg.norm(n)
    ori = OrientationsTable.from_arrays(x=np.array([xc]), y=np.array([yc]), z=np.array([z_center]),
                                        G_x=n[:1], G_y=n[1:2], G_z=n[2:], names=[name])
    return StructuralElement(name=name, surface_points=sp, orientations=ori, color=color)


def layered_geomodel(extent=(0.0, 1000.0, 0.0, 1000.0, -500.0, 0.0), *,
                     top_z: float = -130.0, base_z: float = -310.0,
                     top_slope=(-0.08, 0.04), base_slope=(-0.10, 0.0), refinement: int = 3,
                     name: str = "layered") -> Any:
    """A three-unit GemPy model with two planar, gently dipping contacts.

    Units in GemPy id order: ``"cover"`` (id 1, above the top contact), ``"middle"``
    (id 2) and ``"basement"`` (id 3). The contact surfaces are named after the unit above
    them (``"cover"``, ``"middle"``).

    Parameters
    ----------
    extent : sequence of 6 floats
        ``(x_min, x_max, y_min, y_max, z_min, z_max)`` in metres, z up.
    top_z, base_z : float
        Elevation (m) of the top and base contacts at the centre of the extent.
    top_slope, base_slope : pairs of float
        Contact slopes ``(dz/dx, dz/dy)`` (dimensionless); negative ``dz/dx`` dips east.
    refinement : int
        GemPy octree levels of the model's own regular grid (3 = 8³ cells).
    name : str
        GemPy project name.

    Returns
    -------
    gempy.core.data.GeoModel
    """
    import gempy as gp
    from gempy.core.data import StructuralFrame, StructuralGroup
    from gempy.core.data.structural_group import StackRelationType

    ext = [float(v) for v in extent]
    if len(ext) != 6 or ext[0] >= ext[1] or ext[2] >= ext[3] or ext[4] >= ext[5]:
        raise ValueError(f"extent must be (x_min, x_max, y_min, y_max, z_min, z_max) with min < max, got {extent}")
    if not ext[4] < base_z < top_z < ext[5]:
        raise ValueError(f"need z_min < base_z < top_z < z_max, got base_z={base_z}, top_z={top_z}, "
                         f"extent z {ext[4]}..{ext[5]}")
    e1 = _plane_element("cover", ext, top_z, *top_slope, color="#e6c06b")
    e2 = _plane_element("middle", ext, base_z, *base_slope, color="#7fa86b")
    grp = StructuralGroup(name="strata", elements=[e1, e2], structural_relation=StackRelationType.ERODE)
    frame = StructuralFrame(structural_groups=[grp], color_gen=gp.data.ColorsGenerator())
    return gp.create_geomodel(project_name=name, extent=ext, refinement=int(refinement),
                              structural_frame=frame)


def geology_case(*, shape=(20, 20, 10), cell_size: float = 50.0,
                 unit_densities=LAYERED_DENSITIES, body_contrast: float = 400.0,
                 body=((12, 16), (6, 11), (3, 5)), noise_seed: int | None = 0,
                 relative_noise: float = 0.01, device: str = "cpu",
                 geomodel_options: dict | None = None) -> GeologySyntheticCase:
    """The layered GemPy model on a tensor mesh plus an unmodelled dense block; noisy g_z.

    Mesh of ``shape`` cubes of ``cell_size`` m, top at z = 0, x and y from 0; one station
    1 m above the top over every cell-centre (x, y). The geology part of the truth is
    GemPy's integer lithology at the cell centres (``gempy.compute_model_at``) mapped to
    ``unit_densities``; the body adds ``body_contrast`` on the half-open cell ranges
    ``body`` (x-cells, y-cells, layers from the top), by default inside the middle unit.

    Parameters
    ----------
    shape : tuple of 3 int
        ``(nx, ny, nz)``.
    cell_size : float
        Cube edge, m.
    unit_densities : sequence of 3 floats
        Contrast of cover, middle, basement, kg/m³ (GemPy id order).
    body_contrast : float
        Density contrast added in the body, kg/m³.
    body : 3 (start, stop) pairs
        Body cells (half-open), layers counted from the top.
    noise_seed : int or None
        Seed of the Gaussian noise (:func:`gempy_gravinv.cases.synthetic.make_noise`).
    relative_noise : float
        Noise σ as a fraction of std(g_z) (dimensionless).
    device : str
        Torch device for the clean data.
    geomodel_options : dict, optional
        Passed to :func:`layered_geomodel` (its extent is the mesh's).

    Returns
    -------
    GeologySyntheticCase
        ``name="geology_layered"``, ``reference_density=0``, ``bounds=(-600, 600)``.
    """
    nx, ny, nz = (int(s) for s in shape)
    h = float(cell_size)
    mesh = _tensor_case_mesh((nx, ny, nz), h, origin=(0.0, 0.0, -nz * h))
    ext = mesh.extent
    gm = layered_geomodel(extent=tuple(float(v) for v in ext), **dict(geomodel_options or {}))
    rho = np.asarray(unit_densities, dtype=np.float64).reshape(-1)
    if rho.size != len(LAYERED_UNITS):
        raise ValueError(f"unit_densities needs {len(LAYERED_UNITS)} values {LAYERED_UNITS}, got {rho.size}")
    ids = gempy_lithology_ids(gm, mesh.cell_centers)
    geology = rho[ids - 1]
    (x0, x1), (y0, y1), (l0, l1) = body
    for (a, b), n, ax in (((x0, x1), nx, "x"), ((y0, y1), ny, "y"), ((l0, l1), nz, "layer")):
        if not 0 <= a < b <= n:
            raise ValueError(f"body {ax} range [{a}, {b}) must lie inside 0..{n}")
    b = np.zeros((nx, ny, nz))
    b[x0:x1, y0:y1, nz - l1:nz - l0] = float(body_contrast)
    body_model = b.ravel(order="F")
    model = geology + body_model
    loc = _stations_over_centres(mesh, 1.0)
    meta = {"case": "layered GemPy model + unmodelled body", "unit_names": list(LAYERED_UNITS),
            "unit_densities_kgm3": rho.tolist(), "body_cells": [[x0, x1], [y0, y1], [l0, l1]],
            "body_contrast_kgm3": float(body_contrast), "cell_size_m": h,
            "body_center_m": mesh.cell_centers[body_model != 0].mean(axis=0).tolist(),
            "check_stations": True}
    base = _finish("geology_layered", mesh, loc, model, 0.0, (-600.0, 600.0), relative_noise,
                   noise_seed, device, meta)
    return GeologySyntheticCase(**{f: getattr(base, f) for f in base.__dataclass_fields__},
                                geo_model=gm, unit_names=LAYERED_UNITS, unit_densities=rho,
                                geology_model=geology, body_model=body_model, lithology=ids)


def layered_model() -> LoadedGeoModel:
    """The built-in ``--geomodel layered``: the default :func:`geology_case` model.

    Returns
    -------
    LoadedGeoModel
        :func:`layered_geomodel` on x, y in 0..1000 m, z in -500..0 m, with the unit
        contrasts :data:`LAYERED_DENSITIES` (kg/m³) and no unmodelled body; origin zero.
    """
    return LoadedGeoModel(layered_geomodel(extent=(0.0, 1000.0, 0.0, 1000.0, -500.0, 0.0)),
                          np.asarray(LAYERED_DENSITIES, dtype=np.float64), name="layered",
                          notes=["gempy_gravinv.cases.geology.layered_geomodel: cover -300, middle 0, "
                                 "basement +250 kg/m3 (no unmodelled body)"])
