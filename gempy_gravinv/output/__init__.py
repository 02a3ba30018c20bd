"""Writers for recovered models, metrics and figures.

Models are density **contrasts in kg/m³** on the cells of a :class:`~gempy_gravinv.PrismMesh`
in its cell order (discretize order for meshes from discretize). Files say their units:

- NetCDF: kg/m³ with ``units``, ``sign_convention`` and ``reference_density`` attributes;
  a tensor mesh becomes a ``(z, y, x)`` grid with cell-centre coordinates in metres
  (z up), any other mesh a per-cell table with centres and bounds.
- VTK: cell arrays in the units given (kg/m³ for densities), through discretize's
  ``to_vtk`` (``.vtr`` for tensor meshes, ``.vtu`` otherwise).
- UBC-GIF model files: **g/cm³** (GRAV3D's unit), through :func:`gempy_gravinv.io.write_ubc_model`.
- JSON: metrics and run information, strict JSON (NaN and inf become ``null``).
- Data: ``{name}_data.csv`` / ``.nc``: stations (m), observed, std, predicted and
  residual g_z (mGal, positive downward).

Output folders of the command line are prepared by :func:`prepare_run_folder` (refuse a
non-empty or unwritable folder, lock it, overwrite only this program's files).

Heavy imports (xarray, pyvista, discretize, matplotlib) happen inside the functions.
"""

from .._json import to_jsonable
from ._data import save_data_csv, save_data_netcdf
from ._folder import (
    BAYES_FILES,
    COMPARE_FILES,
    INVERSION_FILES,
    REPRODUCE_FILES,
    RunFolder,
    check_name,
    prepare_run_folder,
)
from ._inversion import save_inversion
from ._models import load_netcdf, save_netcdf, save_ubc_model, save_vtk
from ._writers import save_figures, save_metrics_json, write_each

__all__ = ["save_netcdf", "load_netcdf", "save_vtk", "save_ubc_model", "save_metrics_json",
           "save_figures", "save_inversion", "save_data_csv", "save_data_netcdf", "to_jsonable", "write_each",
           "prepare_run_folder", "RunFolder", "check_name", "INVERSION_FILES", "COMPARE_FILES", "REPRODUCE_FILES",
           "BAYES_FILES"]
