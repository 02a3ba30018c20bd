"""Side-by-side comparison: INR inversions vs SimPEG's mesh-based inversions, same data and mesh.

Every method inverts the same :class:`~gempy_gravinv.Survey` on the same tensor mesh; the
INR field is sampled at that mesh's cells (the mesh SimPEG inverts on), so every metric is
computed the same way, by :func:`gempy_gravinv.metrics.evaluate`:

- ``inr``: :func:`gempy_gravinv.invert_inr` with one of our presets (``inr_preset``:
  ``INRConfig()``, ``.compact()`` for the dipping block, ``.spectral()`` for the GRF);
- ``inr_paper``: the same with the paper's preset (``INRConfig.paper()``);
- ``simpeg_l2`` / ``simpeg_sparse``: :func:`gempy_gravinv.simpeg.run_inversion` (SimPEG's
  recommended L2 and sparse/IRLS recipes) on our drop-in simulation;
- ``zero``: the trivial zero-contrast model, as a floor.

Modules: ``_run`` (:func:`run_comparison`, :class:`Comparison`), ``_report``
(:func:`write_report`: ``comparison.md``, ``comparison.csv``, ``comparison.json``,
``sections.png`` (same sections, one colour scale), ``data_<method>.png`` (observed,
predicted, residual), ``models.npz`` and UBC model files ``models/<method>.mod`` so that
any model can be read back on the mesh) ``_cases`` (:func:`run_case` on the built-in
cases) and ``_cv`` (:func:`station_cv`: k-fold cross-validation over stations, each
method's held-out predictions beside a thin-plate-spline interpolation).

Units: kg/m³ density contrast, mGal g_z positive downward, metres z up, seconds, bytes.
"""

from ._cases import CASES, case_setup, run_case
from ._cv import CV_METHODS, StationCV, kfold, station_cv, thin_plate_spline
from ._report import write_report
from ._run import METHODS, Comparison, MethodRun, device_description, run_comparison
from ._run import _inr_available as _inr_available  # re-exported: callers use it to skip INR methods

__all__ = ["MethodRun", "Comparison", "run_comparison", "write_report", "run_case", "case_setup",
           "device_description", "METHODS", "CASES", "CV_METHODS", "StationCV", "kfold", "station_cv",
           "thin_plate_spline"]
