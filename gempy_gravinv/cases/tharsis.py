"""The Tharsis real-data case (IGME Bouguer stations, Iberian Pyrite Belt, Spain).

What this module decides, and why (stated again in every report it feeds):

- **Stations**: the packaged GeoJSON (208 stations, EPSG:23030, metres). No elevations are
  given, so the stations lie on a **flat observation surface** at ``z_obs`` (default
  1 m above the top of the model mesh, which is at z = 0). Coordinates are shifted to a
  local origin (the south-west corner of the stations, rounded down to 1 km) so that the
  numbers stay small; ``meta["origin"]`` holds the shift.
- **Regional**: the Bouguer anomaly (positive = excess mass, our sign: mGal positive
  down) carries a regional trend that a few kilometres of model cannot explain. The
  default removes a **least-squares plane** ``a + b·x + c·y`` from the data
  (``trend="planar"``, fitted with ``verde.Trend``); ``trend="mean"`` removes only the
  mean (a datum offset);
  ``trend="none"`` keeps the raw anomaly. The inversions fit the residual.
- **Noise**: ``std_i = floor + relative·|d_i|`` on the inverted (detrended) data, with
  ``floor = 0.5`` mGal and ``relative = 0.02`` by default: the usual SimPEG choice
  (absolute floor plus a percentage). 0.5 mGal covers reading, drift and terrain
  correction errors of a regional ground survey (two stations at the same location
  differ by 1.1 mGal).
- **Mesh** (:func:`design_mesh`): core cells over the station extent plus a margin,
  geometrically growing padding cells around and below it (built with discretize's
  ``mesh_builder_xyz``), top at z = 0. The case uses
  1 km x 1 km x 500 m core cells to 3 km depth, 2 padding cells (x1.5) on each side and 2
  below: 27 x 23 x 8 = 4,968 cells (the median station spacing is ~460 m, so shorter
  wavelengths are averaged out).

Data source: © CN Instituto Geológico y Minero de España (IGME); see :data:`ATTRIBUTION`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._mesh import PrismMesh
from .._mesh_design import tensor_mesh
from .._survey import Survey
from .._validation import check_choice, check_number

__all__ = ["ATTRIBUTION", "TharsisCase", "data_path", "load_stations", "remove_regional",
           "noise_std", "design_mesh", "tharsis_case"]

#: The attribution the IGME licence requires (the line of the data README).
ATTRIBUTION = "Data source: © CN Instituto Geológico y Minero de España (IGME)."
#: Property of each feature holding the Bouguer anomaly (mGal, reduction density 2.67 g/cm³).
VALUE_PROPERTY = "VALU_BOU267"


def data_path(name: str = "tharsis_bouguer_stations.geojson") -> Path:
    """Path of a file of the packaged Tharsis data.

    Parameters
    ----------
    name : str
        File name in ``gempy_gravinv/data/tharsis`` (``README.md``, ``*.geojson``, ``*.qmd``).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        The package was installed without its data.
    """
    from importlib.resources import files

    p = Path(str(files("gempy_gravinv") / "data" / "tharsis" / name))
    if not p.exists():
        raise FileNotFoundError(f"packaged Tharsis file not found: {p} (is the package installed with its data?)")
    return p


def attribution() -> str:
    """The attribution line the IGME licence requires.

    Returns
    -------
    str
        The ``Data source:`` line of the packaged data README, or :data:`ATTRIBUTION`
        when the README is missing.
    """
    try:
        for line in data_path("README.md").read_text(encoding="utf-8").splitlines():
            if line.strip().startswith("Data source:"):
                return line.strip()
    except FileNotFoundError:
        pass
    return ATTRIBUTION


def load_stations(path=None, *, z: float = 0.0, value_property: str = VALUE_PROPERTY) -> Survey:
    """Read the Tharsis Bouguer stations (GeoJSON points, projected metres).

    Parameters
    ----------
    path : str or path-like, optional
        GeoJSON file; the packaged copy by default.
    z : float
        Station elevation to use, metres (the file has none: a flat surface).
    value_property : str
        Feature property with the Bouguer anomaly, mGal (positive = excess mass, which
        is our sign: positive downward).

    Returns
    -------
    Survey
        Stations (UTM metres, z = ``z``) with g_z in mGal, positive downward; no std.
    """
    p = data_path() if path is None else Path(path)
    if not p.exists():
        raise FileNotFoundError(f"Tharsis stations file not found: {p}")
    try:
        from ..io import read_geojson
    except ImportError:  # pragma: no cover - io is part of the package
        read_geojson = None
    if read_geojson is not None:
        return read_geojson(p, value_property=value_property, z=float(z))
    doc = json.loads(p.read_text())  # pragma: no cover
    xy = np.array([f["geometry"]["coordinates"][:2] for f in doc["features"]], float)
    g = np.array([float(f["properties"][value_property]) for f in doc["features"]])
    return Survey(np.c_[xy, np.full(len(g), float(z))], gz=g, name=doc.get("name"))


def remove_regional(survey: Survey, trend: str = "planar") -> tuple[np.ndarray, np.ndarray, dict]:
    """Remove a regional trend from g_z (mGal, positive down).

    Parameters
    ----------
    survey : Survey
        Stations with g_z.
    trend : {"planar", "mean", "none"}
        ``"planar"``: least-squares plane ``a + b (x - x̄) + c (y - ȳ)`` (x, y in km
        from the station centroid), fitted by ``verde.Trend(degree=1)``;
        ``"mean"``: the mean only (a datum offset); ``"none"``: nothing.

    Returns
    -------
    residual : ndarray (n_data,)
        g_z minus the trend, mGal.
    regional : ndarray (n_data,)
        The removed trend at the stations, mGal.
    info : dict
        ``trend``, the coefficients (``a`` mGal, ``b``/``c`` mGal/km) and the centre.
    """
    check_choice(trend, ("planar", "mean", "none"), name="trend")
    survey.require_data()
    g = survey.gz
    loc = survey.locations
    if trend == "none":
        reg = np.zeros_like(g)
        info: dict[str, Any] = {"trend": "none"}
    elif trend == "mean":
        reg = np.full_like(g, g.mean())
        info = {"trend": "mean", "a_mgal": float(g.mean())}
    else:  # planar
        import verde as vd

        if g.size < 3:
            raise ValueError(f"a planar trend needs at least 3 stations, got {g.size}")
        xc, yc = loc[:, 0].mean(), loc[:, 1].mean()
        coords = ((loc[:, 0] - xc) / 1000.0, (loc[:, 1] - yc) / 1000.0)  # km from the centroid
        fit = vd.Trend(degree=1).fit(coords, g)
        coef = fit.coef_  # [a (mGal), b (mGal/km along x), c (mGal/km along y)]
        reg = fit.predict(coords)
        info = {"trend": "planar", "a_mgal": float(coef[0]), "b_mgal_per_km": float(coef[1]),
                "c_mgal_per_km": float(coef[2]), "centre_m": [float(xc), float(yc)]}
    return g - reg, reg, info


def noise_std(gz, floor: float = 0.5, relative: float = 0.02) -> np.ndarray:
    """Data standard deviations ``floor + relative·|gz|`` (mGal).

    Parameters
    ----------
    gz : array_like
        The data being inverted, mGal.
    floor : float
        Absolute floor, mGal (> 0).
    relative : float
        Fraction of |gz| added to the floor (>= 0, dimensionless).

    Returns
    -------
    numpy.ndarray
        Standard deviations, mGal, the shape of ``gz``.
    """
    check_number(floor, name="floor (mGal)", low=0.0, low_open=True)
    check_number(relative, name="relative", low=0.0)
    return floor + relative * np.abs(np.asarray(gz, dtype=float))


def design_mesh(survey_or_locations, core_cell=(500.0, 500.0, 250.0), padding=(3, 1.4),
                depth: float = 4000.0, margin: float | None = None, top: float = 0.0,
                padding_depth: int = 2) -> PrismMesh:
    """A tensor mesh for a station layout: core cells, lateral and bottom padding.

    :func:`gempy_gravinv.tensor_mesh` with this case's defaults (stations at or above
    ``top``); :func:`gempy_gravinv.mesh_from_survey` derives the sizes from the stations
    instead.

    Parameters
    ----------
    survey_or_locations : Survey or array_like (n, 3)
        Stations, metres.
    core_cell : (dx, dy, dz)
        Core cell size, metres.
    padding : (n_pad, factor)
        Number of padding cells on each side (x, y) and their growth factor (> 1).
    depth : float
        Thickness of the core (uniform ``dz``) below ``top``, metres.
    margin : float, optional
        Distance the core extends past the outermost stations, metres (default one
        core cell).
    top : float
        Elevation of the mesh top, metres; stations must be at or above it.
    padding_depth : int
        Number of padding cells below the core (same growth factor).

    Returns
    -------
    PrismMesh
        Built from a ``discretize.TensorMesh`` (``mesh.source``), all cells active,
        ``mesh.shape == (nx, ny, nz)``.
    """
    return tensor_mesh(survey_or_locations, core_cell=core_cell, padding=padding, depth=depth, margin=margin,
                       top=top, padding_depth=padding_depth)


@dataclass
class TharsisCase:
    """The prepared Tharsis problem (our units).

    Attributes
    ----------
    survey : Survey
        Stations (local metres, flat surface at ``meta["z_obs"]``) with the detrended
        g_z (mGal, positive down) and its std (mGal).
    raw : Survey
        The same stations with the original Bouguer anomaly (no std).
    regional : ndarray
        Removed trend at the stations, mGal.
    mesh : PrismMesh
        Model mesh (:func:`design_mesh`).
    meta : dict
        Every choice made (origin shift, z, trend coefficients, noise model, mesh), and
        the attribution line.
    """

    survey: Survey
    raw: Survey
    regional: np.ndarray
    mesh: PrismMesh
    meta: dict = field(default_factory=dict)

    def notes(self) -> list[str]:
        """Human-readable statements for reports (flat surface, trend, noise, source)."""
        m = self.meta
        t = m["trend"]
        if t["trend"] == "planar":
            b, c = t["b_mgal_per_km"], t["c_mgal_per_km"]
            trend = (f"planar regional removed by least squares: {t['a_mgal']:.2f} mGal "
                     f"{'+' if b >= 0 else '-'} {abs(b):.3f} mGal/km · (x - x̄) "
                     f"{'+' if c >= 0 else '-'} {abs(c):.3f} mGal/km · (y - ȳ), (x̄, ȳ) the station centroid")
        elif t["trend"] == "mean":
            trend = f"datum offset removed (mean {t['a_mgal']:.2f} mGal)"
        else:
            trend = "no regional removed"
        return [
            f"Stations: {self.survey.n_data} IGME Bouguer stations (reduction density 2.67 g/cm³); "
            f"no elevations are given, so they lie on a flat observation surface at z = {m['z_obs']:g} m "
            f"above a mesh top at z = {m['top']:g} m.",
            f"Coordinates: EPSG:23030 (ED50 / UTM 30N) shifted by -({m['origin'][0]:.0f}, {m['origin'][1]:.0f}) m.",
            f"Regional: {trend}.",
            f"Noise: std = {m['noise_floor']:g} mGal + {100 * m['noise_relative']:g}% of |residual| "
            f"(mean {float(np.mean(self.survey.std)):.3f} mGal).",
            f"Mesh: {self.mesh.n_cells} cells, shape {self.mesh.shape}, core cell {tuple(m['core_cell'])} m, "
            f"core depth {m['depth']:g} m.",
            m["attribution"],
        ]


def tharsis_case(path=None, *, z_obs: float = 1.0, trend: str = "planar", floor: float = 0.5,
                 relative: float = 0.02, core_cell=(1000.0, 1000.0, 500.0), depth: float = 3000.0,
                 padding=(2, 1.5), padding_depth: int = 2, local_origin: bool = True) -> TharsisCase:
    """Load, detrend, weight and mesh the Tharsis stations (choices in the module docstring).

    Parameters
    ----------
    path : path-like, optional
        GeoJSON file (packaged copy by default).
    z_obs : float
        Elevation of the flat observation surface, metres (mesh top at z = 0).
    trend : {"planar", "mean", "none"}
        Regional removal (:func:`remove_regional`).
    floor, relative : float
        Noise model (:func:`noise_std`): mGal and fraction of |residual|.
    core_cell, depth, padding, padding_depth :
        Mesh design (:func:`design_mesh`).
    local_origin : bool
        Shift x, y by the south-west station corner rounded down to 1 km.

    Returns
    -------
    TharsisCase
    """
    check_number(z_obs, name="z_obs (m above the mesh top at z = 0)", low=0.0)
    raw = load_stations(path, z=z_obs)
    loc = raw.locations.copy()
    origin = np.zeros(2)
    if local_origin:
        origin = np.floor(loc[:, :2].min(0) / 1000.0) * 1000.0
        loc[:, :2] -= origin
    raw = Survey(loc, gz=raw.gz, name="tharsis")
    resid, regional, info = remove_regional(raw, trend)
    std = noise_std(resid, floor, relative)
    survey = Survey(loc, gz=resid, std=std, name="tharsis")
    mesh = design_mesh(survey, core_cell=core_cell, padding=padding, depth=depth, top=0.0,
                       padding_depth=padding_depth)
    meta = {"origin": [float(o) for o in origin], "z_obs": float(z_obs), "top": 0.0, "trend": info,
            "noise_floor": float(floor), "noise_relative": float(relative),
            "core_cell": [float(c) for c in core_cell], "depth": float(depth),
            "padding": [int(padding[0]), float(padding[1])], "padding_depth": int(padding_depth),
            "crs": "EPSG:23030", "attribution": attribution(),
            "source": str(data_path() if path is None else path)}
    return TharsisCase(survey=survey, raw=raw, regional=regional, mesh=mesh, meta=meta)
