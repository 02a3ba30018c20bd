"""Readers and writers for stations, gravity data, meshes and density models.

One module per file format; every public name is importable from here.

Formats and units
-----------------

====================  ===============================  ===================  ===========================
format                functions                        coordinates          values
====================  ===============================  ===================  ===========================
CSV stations          read_csv, write_csv              m, z up (elevation)  g_z and std in mGal
                                                       (ft, km converted)   (µGal, m/s², gu converted)
UBC-GIF GRAV3D data   read_ubc_obs, write_ubc_obs      m, z up (elevation)  g_z and std in mGal
GeoJSON Points        read_geojson                     m, projected CRS     g_z and std in mGal
                                                       (to_crs reprojects)
UBC-GIF mesh          read_ubc_mesh                    m, z up              --
UBC-GIF model         read_ubc_model, write_ubc_model  discretize order     density in the file's units
                                                                            (g/cm³ for GRAV3D)
JSON / TOML settings  read_config                      --                   --
====================  ===============================  ===================  ===========================

Signs: g_z is the gravity anomaly in mGal, **positive downward** (excess mass below gives
a positive value) in every station format. GRAV3D files use the same sign, so nothing is
flipped on reading or writing (SimPEG's ``read_grav3d_ubc`` / ``write_grav3d_ubc`` flip
it because SimPEG stores the upward component). Density models read from UBC files stay
in the file's units (g/cm³ for GRAV3D); :func:`model_to_contrast_kgm3` converts them to
the density contrast in kg/m³ used by the rest of the package.

Other components: a ``component`` column (CSV) or property (GeoJSON) names each datum's
gravity component (absent: ``gz``); the value and std of ``gx``, ``gy``, ``gz`` are in
mGal, those of the gradients ``gxx`` … ``gzz``, ``guv`` in Eötvös (z up, SimPEG's
signs). GRAV3D observation files hold g_z only (:func:`write_ubc_obs` refuses others).

:func:`read_stations` picks the station reader from the file's extension or content.

Coordinate reference systems are read with pyproj (:mod:`._crs`): GeoJSON ``crs``
members, ``# crs:`` comment lines of CSV files. Longitude/latitude are never taken as
metres: they are refused, or reprojected to a projected CRS the caller names
(``to_crs``). The CRS travels on :attr:`gempy_gravinv.Survey.crs`;
:func:`crs_cf_attributes` gives the CF grid-mapping attributes for NetCDF files.

Inactive cells in UBC models
----------------------------
GRAV3D writes ``-100`` in the cells it removed (above topography) and GIFtools uses the
no-data value ``-99999`` (both in :data:`UBC_NO_DATA`). Neither is a plausible density
(g/cm³), so by default :func:`read_ubc_model` turns these values into NaN, meaning
*inactive*; :func:`write_ubc_model` writes NaN as ``-99999``. Pass ``no_data=()`` to keep
every value as it is. NaN or inf written in a model file is an error naming the line
(pass ``no_data=(-99999, -100, float("nan"))`` to read NaN as inactive);
:func:`model_to_contrast_kgm3` refuses g/cm³ models holding values beyond 100 (kg/m³
written as g/cm³) and warns when the contrast looks like absolute densities.
"""

from __future__ import annotations

from ._common import PathLike as PathLike
from ._config import read_config as read_config
from ._crs import crs_cf_attributes, parse_crs
from ._csv import read_csv, write_csv
from ._geojson import read_geojson
from ._stations import read_stations
from ._topography import read_topography
from ._ubc_mesh import (
    UBC_NO_DATA,
    model_to_contrast_kgm3,
    read_ubc_mesh,
    read_ubc_model,
    write_ubc_model,
)
from ._ubc_obs import read_ubc_obs, write_ubc_obs

__all__ = [
    "read_csv",
    "write_csv",
    "read_ubc_obs",
    "write_ubc_obs",
    "read_stations",
    "read_ubc_mesh",
    "read_ubc_model",
    "write_ubc_model",
    "model_to_contrast_kgm3",
    "read_geojson",
    "UBC_NO_DATA",
    "crs_cf_attributes",
    "parse_crs",
    "read_topography",
]
