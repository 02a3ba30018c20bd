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

Heavy imports (xarray, pyvista, discretize, matplotlib) happen inside the functions.
"""

from .._json import to_jsonable
from ._inversion import save_inversion
from ._models import load_netcdf, save_netcdf, save_ubc_model, save_vtk
from ._writers import save_figures, save_metrics_json, write_each

__all__ = ["save_netcdf", "load_netcdf", "save_vtk", "save_ubc_model", "save_metrics_json",
           "save_figures", "save_inversion", "to_jsonable", "write_each"]
