"""Named comparison cases: survey, mesh, truth and per-method settings, then the run."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from .._validation import check_choice
from ._cv import CV_METHODS, station_cv
from ._report import write_report
from ._run import METHODS, Comparison, run_comparison

logger = logging.getLogger(__name__)

#: Built-in cases of :func:`run_case`.
CASES = ("dipping_block", "smooth_grf", "tharsis")

# fewer SimPEG iterations for the quick smoke runs
_QUICK_SIMPEG = {"max_iter": 15, "max_irls_iterations": 10}


def _dipping_block(quick: bool) -> dict[str, Any]:
    from ..cases.synthetic import dipping_block

    c = dipping_block(noise_seed=0)
    return {"survey": c.survey, "mesh": c.mesh, "true": c.model, "bounds": c.bounds, "reference": 0.0,
            "inr_preset": "compact",
            "inr": {"max_steps": 300} if quick else {}, "inr_paper": {"max_steps": 150} if quick else {},
            "simpeg": dict(_QUICK_SIMPEG) if quick else {},
            "notes": [f"Dipping block (seven +400 kg/m³ slabs stepping down and sideways, 50 m cells, "
                      f"{c.survey.n_data} stations 1 m above the mesh), noise σ = 1% of std(g_z), seed 0. "
                      f"SimPEG bounds {c.bounds} kg/m³, reference 0."]}


def _smooth_grf(quick: bool) -> dict[str, Any]:
    from ..cases.synthetic import smooth_grf

    kw = {"shape": (16, 16, 8), "cell_size": 1250.0} if quick else {}
    c = smooth_grf(seed=0, **kw)
    return {"survey": c.survey, "mesh": c.mesh, "true": c.model, "bounds": c.bounds, "reference": 0.0,
            "inr_preset": "spectral",
            "inr": {},
            "inr_paper": {"bounds": tuple(c.bounds), **({"max_steps": 150} if quick else {})},
            "simpeg": dict(_QUICK_SIMPEG) if quick else {},
            "notes": [f"Smooth GRF (a Gaussian random field of absolute density), shape {c.mesh.shape}, "
                      f"contrast to the field mean {c.reference_density:.1f} kg/m³ (reference model 0 = "
                      f"the true mean), bounds {tuple(round(b, 1) for b in c.bounds)} kg/m³, "
                      f"noise σ = 1% of std(g_z)."]}


def _tharsis(quick: bool) -> dict[str, Any]:
    from ..cases.tharsis import tharsis_case

    kw = {"core_cell": (2000.0, 2000.0, 1000.0), "depth": 4000.0, "padding": (2, 1.5)} if quick else {}
    t = tharsis_case(**kw)
    return {"survey": t.survey, "mesh": t.mesh, "true": None, "bounds": (-600.0, 600.0), "reference": 0.0,
            "inr": {"noise": "report", **({"max_steps": 300} if quick else {})},
            "inr_paper": {"max_steps": 150} if quick else {},
            "simpeg": dict(_QUICK_SIMPEG) if quick else {},
            "notes": t.notes() + ["No truth: the table reports data misfit, time and memory; the "
                                  "agreement table compares the recovered models."],
            "meta": t.meta}


_SETUPS: dict[str, Callable[[bool], dict[str, Any]]] = {
    "dipping_block": _dipping_block, "smooth_grf": _smooth_grf, "tharsis": _tharsis}


def case_setup(case: str, quick: bool = False) -> dict[str, Any]:
    """Survey, mesh, truth and per-method settings of a named case.

    Parameters
    ----------
    case : {"dipping_block", "smooth_grf", "tharsis"}
    quick : bool
        Smaller settings for smoke runs.

    Returns
    -------
    dict
        ``survey``, ``mesh``, ``true`` (kg/m³ or None), ``bounds`` and ``reference``
        (kg/m³), ``inr_preset``, the override dicts ``inr``, ``inr_paper`` and
        ``simpeg``, and ``notes`` for the report.
    """
    check_choice(case, CASES, name="case")
    return _SETUPS[case](quick)


def run_case(case: str, out_dir: str | os.PathLike | None = None, *, quick: bool = False,
             methods: Sequence[str] = METHODS, device: str = "cpu", figures: bool = True,
             cv_folds: int | None = None, log: Callable[[str], None] | None = logger.info) -> Comparison:
    """Run a named comparison case and (optionally) write its report.

    Parameters
    ----------
    case : {"dipping_block", "smooth_grf", "tharsis"}
        The dipping block and the smooth GRF (synthetic, true model known) or the
        Tharsis real data (no truth).
    out_dir : str or path-like, optional
        Where :func:`~gempy_gravinv.compare.write_report` writes; nothing is written
        when None.
    quick : bool
        Smaller settings (fewer INR steps / SimPEG iterations, smaller GRF and coarser
        Tharsis mesh) for smoke tests.
    methods : sequence of str
        Subset of :data:`~gempy_gravinv.compare.METHODS`.
    device : str
        Torch device.
    figures : bool
        Write figures.
    cv_folds : int, optional
        Also run a ``cv_folds``-fold cross-validation over the stations
        (:func:`~gempy_gravinv.compare.station_cv`): each method (and a thin-plate
        spline) predicts the stations it did not see; stored in ``comp.station_cv``
        and written to ``station_cv.md``/``.json``. Default: 5 for ``"tharsis"``
        (none with ``quick``), none for the synthetic cases (their truth is known).
    log : callable, optional
        Progress messages (see :func:`~gempy_gravinv.compare.run_comparison`).

    Returns
    -------
    Comparison
    """
    s = case_setup(case, quick)
    if cv_folds is None:
        cv_folds = 5 if case == "tharsis" and not quick else 0
    comp = run_comparison(s["survey"], s["mesh"], true=s["true"], methods=methods, reference=s["reference"],
                          bounds=s["bounds"], inr_overrides=s["inr"], inr_paper_overrides=s["inr_paper"],
                          inr_preset=s.get("inr_preset", "auto"),
                          simpeg_options=s["simpeg"], device=device, name=case + (" (quick)" if quick else ""),
                          notes=s["notes"], log=log)
    if out_dir is not None:
        write_report(comp, out_dir, figures=figures)
    if cv_folds:
        cv_methods = ["tps"] + [m for m in methods if m in CV_METHODS]
        comp.station_cv = station_cv(s["survey"], s["mesh"], methods=cv_methods, k=int(cv_folds), seed=0,
                                     inr_preset=s.get("inr_preset", "auto"), inr_overrides=s["inr"],
                                     bounds=s["bounds"], reference=s["reference"], simpeg_options=s["simpeg"],
                                     device=device, log=log)
        if out_dir is not None:
            comp.station_cv.write(out_dir)
    return comp
