"""The comparison runner: every method on the same survey and mesh, evaluated alike.

Units: kg/m³ density contrast, mGal g_z positive downward, metres z up, seconds, bytes.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._constants import check_density_units
from .._mesh import PrismMesh, as_prism_mesh
from .._plausible import implausible_model
from .._survey import Survey
from .._validation import check_choice

logger = logging.getLogger(__name__)

#: Methods :func:`run_comparison` can run (the ``zero`` floor is always added).
METHODS = ("inr", "inr_paper", "simpeg_l2", "simpeg_sparse")
#: Display name of each method key.
LABELS = {"inr": "INR (ours)", "inr_paper": "INR (paper settings)", "simpeg_l2": "SimPEG L2",
          "simpeg_sparse": "SimPEG sparse (IRLS)", "zero": "zero model (floor)"}


def fmt(v, nd: int = 3) -> str:
    """A metric as short table text: ``–`` for missing/NaN, lists in brackets.

    Parameters
    ----------
    v : float, int, list, tuple or None
        The value (units are the caller's).
    nd : int
        Significant digits (large/small magnitudes) or decimals (others).

    Returns
    -------
    str
    """
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt(x, 2) for x in v) + "]"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    a = abs(float(v))
    if a != 0 and (a >= 1e4 or a < 1e-3):
        return f"{float(v):.{nd}g}"
    return f"{float(v):.{nd}f}" if a < 10 else f"{float(v):.1f}"


# ---------------------------------------------------------------------- bookkeeping
class _PeakMemory:
    """Peak resident memory above the starting level, sampled every ``interval`` s (bytes)."""

    def __init__(self, interval: float = 0.05) -> None:
        import psutil

        self._proc = psutil.Process()
        self.interval = interval
        self.base = self._proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> _PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def increase(self) -> int:
        """Peak RSS minus the RSS at the start, bytes."""
        return int(self.peak - self.base)


def device_description(device: str = "cpu") -> str:
    """A short description of where a method ran.

    Parameters
    ----------
    device : str
        Torch device name (``"cpu"``, ``"cuda"``, ``"cuda:1"``...).

    Returns
    -------
    str
        The GPU name for an available CUDA device; else the CPU with torch's thread
        count, the number of cores and the machine type.
    """
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"cpu ({torch.get_num_threads()} torch threads, {os.cpu_count()} cores, {platform.machine()})"


@dataclass
class MethodRun:
    """One method's result on the comparison mesh (our units).

    Attributes
    ----------
    name : str
        Method key (``inr``, ``inr_paper``, ``simpeg_l2``, ``simpeg_sparse``, ``zero``).
    model : numpy.ndarray (n_cells,)
        Density contrast on the mesh cells, kg/m³.
    pred : numpy.ndarray (n_data,)
        Predicted g_z, mGal, positive downward.
    wall_time : float
        Seconds.
    peak_memory : int
        Peak resident memory above the level at the start of the method, bytes.
    device : str
        Where it ran (:func:`device_description`).
    history : dict
        Convergence record (INR: χ²/N per step; SimPEG: beta, phi_d, phi_m per iteration).
    metrics : dict
        :func:`gempy_gravinv.metrics.evaluate` output.
    info : dict
        Settings and notes (``iterations``, ``cpu_time_s`` in seconds...).
    """

    name: str
    model: np.ndarray
    pred: np.ndarray
    wall_time: float
    peak_memory: int
    device: str
    history: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


@dataclass
class Comparison:
    """All methods on one survey and mesh; written by :func:`~gempy_gravinv.compare.write_report`.

    Attributes
    ----------
    name : str
        Label of the comparison (report title).
    survey : Survey
        Stations with observed g_z (mGal, positive down) and std (mGal).
    mesh : PrismMesh
        The tensor mesh every method inverted on (metres, z up).
    true : numpy.ndarray (n_cells,) or None
        True density contrast, kg/m³, when known.
    runs : dict of str to MethodRun
        One entry per method, ``zero`` (the floor) first.
    notes : list of str
        Lines for the report.
    agreement : dict of str to dict of str to float
        Pearson r between the recovered models of every pair of methods (NaN when one
        model is constant).
    station_cv : StationCV or None
        Held-out station predictions of each method (:func:`station_cv`), when run.
    """

    name: str
    survey: Survey
    mesh: PrismMesh
    true: np.ndarray | None
    runs: dict[str, MethodRun]
    notes: list[str] = field(default_factory=list)
    agreement: dict[str, dict[str, float]] = field(default_factory=dict)
    station_cv: Any = None

    def table(self) -> list[dict[str, Any]]:
        """One row per method: the metrics of the CSV and Markdown tables.

        Returns
        -------
        list of dict
            ``method``, ``label``, ``chi2_per_datum``, ``rms_misfit_mgal`` (mGal),
            ``rms_error_kgm3`` (kg/m³), ``rms_error_over_floor``, ``pearson_r``,
            ``pearson_r_by_layer`` (top first), ``wall_time_s`` (s),
            ``peak_memory_mib`` (MiB), ``device``, ``iterations``, ``cpu_time_s`` (s).
        """
        rows = []
        for key, run in self.runs.items():
            m = run.metrics
            rows.append({
                "method": key, "label": LABELS.get(key, key),
                "chi2_per_datum": m.get("chi2_per_datum"), "rms_misfit_mgal": m.get("rms_misfit_mgal"),
                "rms_error_kgm3": m.get("rms_error_kgm3"), "rms_error_over_floor": m.get("rms_error_over_floor"),
                "pearson_r": m.get("pearson_r"), "pearson_r_by_layer": m.get("pearson_r_by_layer"),
                "wall_time_s": run.wall_time, "peak_memory_mib": run.peak_memory / 2**20, "device": run.device,
                "iterations": run.info.get("iterations"), "cpu_time_s": run.info.get("cpu_time_s"),
            })
        return rows


# ---------------------------------------------------------------------- methods
def _inr_available() -> bool:
    """Whether :mod:`gempy_gravinv.inversion` (the INR trainer) can be imported."""
    try:
        from ..inversion import INRConfig, invert_inr  # noqa: F401
    except ImportError:
        return False
    return True


def _run_inr(survey, mesh, true, preset: str, overrides: dict, device: str):
    from ..inversion import INRConfig, invert_inr

    cfg = INRConfig.preset(preset)
    res = invert_inr(survey, mesh, cfg, true_model=true, device=device, **overrides)
    hist = {"chi2": list(res.history.get("chi2", []))}
    info = {"preset": preset, "overrides": overrides, "iterations": len(hist["chi2"]),
            "stop_reason": res.stop_reason, "best_step": res.best_step}
    for key in ("noise_estimate", "prior_selection", "regional_selection", "start_selection",
                "coordinate_selection"):
        if getattr(res, key) is not None:
            info[key] = getattr(res, key)
    return np.asarray(res.model, float), np.asarray(res.predicted, float), hist, info


def _run_simpeg(survey, mesh, kind: str, reference, bounds, kw: dict, device: str):
    from ..simpeg import run_inversion

    res = run_inversion(survey, mesh, kind=kind, reference=reference, bounds=bounds, device=device, **kw)
    hist = {k: [h[k] for h in res.history] for k in ("beta", "phi_d", "phi_m", "chi2")}
    info = {"kind": kind, "iterations": len(res.history), "setup_time_s": res.setup_time, **res.info,
            "options": kw}
    return np.asarray(res.model, float), res.gz_pred, hist, info


def _agreement(runs: dict[str, MethodRun]) -> dict[str, dict[str, float]]:
    """Pearson r between the recovered models (the only model comparison without truth)."""
    keys = [k for k in runs if k != "zero"]
    agree: dict[str, dict[str, float]] = {}
    for a in keys:
        agree[a] = {}
        for b in keys:
            ma, mb = runs[a].model, runs[b].model
            ok = np.std(ma) > 0 and np.std(mb) > 0
            agree[a][b] = float(np.corrcoef(ma, mb)[0, 1]) if ok else float("nan")
    return agree


def run_comparison(survey: Survey, mesh, *, true=None, methods: Sequence[str] = METHODS,
                   reference=0.0, bounds=None, inr_overrides: dict | None = None,
                   inr_paper_overrides: dict | None = None, inr_preset: str = "auto",
                   simpeg_options: dict | None = None,
                   device: str = "cpu", name: str = "comparison", notes: Sequence[str] = (),
                   log: Callable[[str], None] | None = logger.info) -> Comparison:
    """Run the INR and SimPEG inversions on one survey and mesh and evaluate them alike.

    Parameters
    ----------
    survey : Survey
        Stations with observed g_z (mGal, positive down) and std (mGal).
    mesh : PrismMesh (from a discretize tensor mesh) or discretize.TensorMesh
        The mesh every method inverts on (metres, z up); its active cells (e.g. below
        the topography) carry density, the others stay out of every method.
    true : array_like (n_cells,), optional
        True density contrast, kg/m³, for the model metrics.
    methods : sequence of str
        Subset of :data:`METHODS`. INR methods are skipped with a note when
        :mod:`gempy_gravinv.inversion` is not available.
    reference : float or array_like
        Reference (and starting) contrast of the SimPEG inversions, kg/m³.
    bounds : (lower, upper), optional
        Contrast bounds of the SimPEG inversions, kg/m³.
    inr_overrides, inr_paper_overrides : dict, optional
        :class:`~gempy_gravinv.inversion.INRConfig` fields for the two INR presets.
    inr_preset : str
        Which of our :class:`~gempy_gravinv.inversion.INRConfig` presets the ``inr``
        method starts from (default ``"auto"``: every scale, the prior and the regional
        from the problem; ``"compact"`` assumes bodies in a quiet background).
    simpeg_options : dict, optional
        Extra keyword arguments of :func:`gempy_gravinv.simpeg.run_inversion`.
    device : str
        Torch device for the INR and our SimPEG simulation.
    name : str
        Label of the comparison (report title).
    notes : sequence of str
        Lines added to the report (data choices, attribution...).
    log : callable, optional
        Receives the progress messages: this module's logger at INFO level by default,
        ``print`` for the console, ``None`` for silence (which also hides the INR
        progress bar).

    Returns
    -------
    Comparison
        The ``zero`` floor first, then the methods in the order given.

    Raises
    ------
    TypeError
        ``survey`` is not a :class:`~gempy_gravinv.Survey`.
    ValueError
        A survey without data or std, a mesh that is not a tensor mesh,
        an unknown method, or ``true`` of the wrong length.
    """
    from ..metrics import evaluate

    if not isinstance(survey, Survey):
        raise TypeError(f"survey must be a gempy_gravinv.Survey, got {type(survey).__name__}")
    survey.require_data(need_std=True)
    mesh = as_prism_mesh(mesh)
    if mesh.source is None or mesh.shape is None:
        raise ValueError("the comparison needs a tensor mesh built from discretize (PrismMesh.from_discretize)")
    if isinstance(methods, str):  # one method by name, not its characters
        methods = [methods]
    for key in methods:
        check_choice(key, METHODS, name="method")
    if true is not None:
        true = np.asarray(true, float)
        if true.shape != (mesh.n_cells,):
            raise ValueError(f"true has shape {true.shape}, the mesh has {mesh.n_cells} cells")
        check_density_units(true, name="the true model", hint="(run_comparison takes kg/m³ contrasts)")
    say = log or (lambda s: None)
    notes = list(notes)
    dev = device_description(device)
    runs: dict[str, MethodRun] = {}

    zero = np.zeros(mesh.n_cells)
    runs["zero"] = MethodRun("zero", zero, np.zeros(survey.n_data), 0.0, 0, dev, {}, evaluate(
        model=zero, true=true, pred=np.zeros(survey.n_data), survey=survey, mesh=mesh), {"iterations": 0})

    have_inr = _inr_available()
    for key in methods:
        if key.startswith("inr") and not have_inr:
            notes.append(f"{key}: skipped, gempy_gravinv.inversion (INR) is not available in this build.")
            say(f"[compare] {key}: skipped (INR module not available)")
            continue
        say(f"[compare] {name}: running {LABELS[key]} ...")
        with _PeakMemory() as mem:
            t0 = time.perf_counter()
            c0 = time.process_time()
            if key in ("inr", "inr_paper"):
                ov = dict((inr_overrides if key == "inr" else inr_paper_overrides) or {})
                ov.setdefault("progress", log is not None)  # tqdm bar only when logging
                model, pred, hist, info = _run_inr(survey, mesh, true, inr_preset if key == "inr" else "paper",
                                                   ov, device)
                for what, label in (("prior_selection", "prior from the data"),
                                    ("regional_selection", "regional from the data"),
                                    ("noise_estimate", "noise from the data"),
                                    ("start_selection", "start from the residuals"),
                                    ("coordinate_selection", "coordinates from the misfit")):
                    if what in info:
                        notes.append(f"{LABELS[key]}: {label}: {info[what]['rule']}.")
            else:
                kind = "l2" if key == "simpeg_l2" else "sparse"
                model, pred, hist, info = _run_simpeg(survey, mesh, kind, reference, bounds,
                                                      dict(simpeg_options or {}), device)
            wall = time.perf_counter() - t0
            info["cpu_time_s"] = time.process_time() - c0
        if (why := implausible_model(model)) is not None:  # the method's own run has logged it
            notes.append(f"{LABELS[key]}: {why}.")
        met = evaluate(model=model, true=true, pred=pred, survey=survey, mesh=mesh, wall_time=wall,
                       peak_memory=mem.increase, device=dev)
        runs[key] = MethodRun(key, model, pred, wall, mem.increase, dev, hist, met, info)
        say(f"[compare]   chi2/N={fmt(met['chi2_per_datum'])} rms_err={fmt(met['rms_error_kgm3'])} "
            f"r={fmt(met['pearson_r'])} time={wall:.1f}s")
    return Comparison(name=name, survey=survey, mesh=mesh, true=true, runs=runs, notes=notes,
                      agreement=_agreement(runs))
