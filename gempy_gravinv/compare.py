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

Outputs (:func:`write_report`): ``comparison.md``, ``comparison.csv``, ``comparison.json``,
``sections.png`` (same sections, one colour scale), ``data_<method>.png`` (observed,
predicted, residual), ``models.npz`` and UBC model files (``models/<method>.mod``) so that
any model can be read back on the mesh.

Units: kg/m³ density contrast, mGal g_z positive downward, metres z up, seconds, bytes.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ._mesh import PrismMesh, as_prism_mesh
from ._survey import Survey

__all__ = ["MethodRun", "Comparison", "run_comparison", "write_report", "run_case", "METHODS", "CASES"]

METHODS = ("inr", "inr_paper", "simpeg_l2", "simpeg_sparse")
CASES = ("dipping_block", "smooth_grf", "tharsis")
_LABELS = {"inr": "INR (ours)", "inr_paper": "INR (paper settings)", "simpeg_l2": "SimPEG L2",
           "simpeg_sparse": "SimPEG sparse (IRLS)", "zero": "zero model (floor)"}


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

    def __enter__(self) -> "_PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def increase(self) -> int:
        return int(self.peak - self.base)


def device_description(device: str = "cpu") -> str:
    """A short description of where a method ran (device, CPU threads or GPU name)."""
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
    model : ndarray (n_cells,)
        Density contrast on the mesh cells, kg/m³.
    pred : ndarray (n_data,)
        Predicted g_z, mGal, positive downward.
    wall_time : float
        Seconds.
    peak_memory : int
        Peak resident memory above the level at the start of the method, bytes.
    device : str
    history : dict
        Convergence record (INR: χ²/N per step; SimPEG: beta, phi_d, phi_m per iteration).
    metrics : dict
        :func:`gempy_gravinv.metrics.evaluate` output.
    info : dict
        Settings and notes.
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
    """All methods on one survey and mesh; see :func:`write_report`."""

    name: str
    survey: Survey
    mesh: PrismMesh
    true: np.ndarray | None
    runs: dict[str, MethodRun]
    notes: list[str] = field(default_factory=list)
    agreement: dict[str, dict[str, float]] = field(default_factory=dict)

    def table(self) -> list[dict[str, Any]]:
        """One row per method: the metrics that go in the CSV/markdown table."""
        rows = []
        for key, run in self.runs.items():
            m = run.metrics
            rows.append({
                "method": key, "label": _LABELS.get(key, key),
                "chi2_per_datum": m.get("chi2_per_datum"), "rms_misfit_mgal": m.get("rms_misfit_mgal"),
                "rms_error_kgm3": m.get("rms_error_kgm3"), "rms_error_over_floor": m.get("rms_error_over_floor"),
                "pearson_r": m.get("pearson_r"), "pearson_r_by_layer": m.get("pearson_r_by_layer"),
                "wall_time_s": run.wall_time, "peak_memory_mib": run.peak_memory / 2**20, "device": run.device,
                "iterations": run.info.get("iterations"), "cpu_time_s": run.info.get("cpu_time_s"),
            })
        return rows


# ---------------------------------------------------------------------- methods
def _inr_available() -> bool:
    try:
        from .inversion import INRConfig, invert_inr  # noqa: F401
    except ImportError:
        return False
    return True


def _run_inr(survey, mesh, true, preset: str, overrides: dict, device: str):
    from .inversion import INRConfig, invert_inr

    cfg = INRConfig.preset(preset)
    res = invert_inr(survey, mesh, cfg, true_model=true, device=device, **overrides)
    hist = {"chi2": list(res.history.get("chi2", []))}
    info = {"preset": preset, "overrides": overrides, "iterations": len(hist["chi2"]),
            "stop_reason": res.stop_reason, "best_step": res.best_step}
    return np.asarray(res.model, float), np.asarray(res.predicted, float), hist, info


def _run_simpeg(survey, mesh, kind: str, reference, bounds, kw: dict, device: str):
    from .simpeg import run_inversion

    res = run_inversion(survey, mesh, kind=kind, reference=reference, bounds=bounds, device=device, **kw)
    hist = {k: [h[k] for h in res.history] for k in ("beta", "phi_d", "phi_m", "chi2")}
    info = {"kind": kind, "iterations": len(res.history), "setup_time_s": res.setup_time, **res.info,
            "options": kw}
    return np.asarray(res.model, float), res.gz_pred, hist, info


def run_comparison(survey: Survey, mesh, *, true=None, methods: Sequence[str] = METHODS,
                   reference=0.0, bounds=None, inr_overrides: dict | None = None,
                   inr_paper_overrides: dict | None = None, inr_preset: str = "ours",
                   simpeg_options: dict | None = None,
                   device: str = "cpu", name: str = "comparison", notes: Sequence[str] = (),
                   log: Callable[[str], None] | None = print) -> Comparison:
    """Run the INR and SimPEG inversions on one survey and mesh and evaluate them alike.

    Parameters
    ----------
    survey : Survey
        Stations with observed g_z (mGal, positive down) and std (mGal).
    mesh : PrismMesh (from a discretize tensor mesh) or discretize.TensorMesh
        The mesh every method inverts on; all cells active.
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
    inr_preset : {"ours", "compact", "smooth", "periodic", "spectral", "paper"}
        Which of our :class:`~gempy_gravinv.inversion.INRConfig` presets the ``inr``
        method starts from (``"compact"`` assumes bodies in a quiet background).
    simpeg_options : dict, optional
        Extra keyword arguments of :func:`gempy_gravinv.simpeg.run_inversion`.
    device : str
        Torch device for the INR and our SimPEG simulation.
    name : str
        Label of the comparison (report title).
    notes : sequence of str
        Lines added to the report (data choices, attribution...).
    log : callable, optional
        Progress messages (``print`` by default; None for silence).

    Returns
    -------
    Comparison
    """
    from .metrics import evaluate

    if not isinstance(survey, Survey):
        raise TypeError(f"survey must be a gempy_gravinv.Survey, got {type(survey).__name__}")
    survey.require_data(need_std=True)
    mesh = as_prism_mesh(mesh)
    if mesh.source is None or mesh.shape is None:
        raise ValueError("the comparison needs a tensor mesh built from discretize (PrismMesh.from_discretize)")
    if mesh.active_cells is not None and not mesh.active_cells.all():
        raise ValueError("the comparison needs all cells of the mesh active")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {METHODS}")
    if true is not None:
        true = np.asarray(true, float)
        if true.shape != (mesh.n_cells,):
            raise ValueError(f"true has shape {true.shape}, the mesh has {mesh.n_cells} cells")
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
        say(f"[compare] {name}: running {_LABELS[key]} ...")
        with _PeakMemory() as mem:
            t0 = time.perf_counter()
            c0 = time.process_time()
            if key in ("inr", "inr_paper"):
                ov = dict((inr_overrides if key == "inr" else inr_paper_overrides) or {})
                ov.setdefault("progress", log is not None)  # tqdm bar only when logging
                model, pred, hist, info = _run_inr(survey, mesh, true, inr_preset if key == "inr" else "paper",
                                                   ov, device)
            else:
                kind = "l2" if key == "simpeg_l2" else "sparse"
                model, pred, hist, info = _run_simpeg(survey, mesh, kind, reference, bounds,
                                                      dict(simpeg_options or {}), device)
            wall = time.perf_counter() - t0
            info["cpu_time_s"] = time.process_time() - c0
        met = evaluate(model=model, true=true, pred=pred, survey=survey, mesh=mesh, wall_time=wall,
                       peak_memory=mem.increase, device=dev)
        runs[key] = MethodRun(key, model, pred, wall, mem.increase, dev, hist, met, info)
        say(f"[compare]   chi2/N={_fmt(met['chi2_per_datum'])} rms_err={_fmt(met['rms_error_kgm3'])} "
            f"r={_fmt(met['pearson_r'])} time={wall:.1f}s")

    # agreement between methods (the only model comparison without truth)
    keys = [k for k in runs if k != "zero"]
    agree: dict[str, dict[str, float]] = {}
    for a in keys:
        agree[a] = {}
        for b in keys:
            ma, mb = runs[a].model, runs[b].model
            ok = np.std(ma) > 0 and np.std(mb) > 0
            agree[a][b] = float(np.corrcoef(ma, mb)[0, 1]) if ok else float("nan")
    return Comparison(name=name, survey=survey, mesh=mesh, true=true, runs=runs, notes=notes, agreement=agree)


# ---------------------------------------------------------------------- report
def _fmt(v, nd: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x, 2) for x in v) + "]"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    a = abs(float(v))
    if a != 0 and (a >= 1e4 or a < 1e-3):
        return f"{float(v):.{nd}g}"
    return f"{float(v):.{nd}f}" if a < 10 else f"{float(v):.1f}"


def _clean(v):
    """JSON-safe copy (NaN/inf -> None), shared with the other writers."""
    from .output import to_jsonable

    return to_jsonable(v)


def write_report(comp: Comparison, out_dir, *, figures: bool = True) -> dict[str, Path]:
    """Write the table (markdown, CSV, JSON), figures and models of a comparison.

    Parameters
    ----------
    comp : Comparison
    out_dir : path-like
        Created if needed.
    figures : bool
        Write the PNG figures (sections with one colour scale, data maps).

    Returns
    -------
    dict of str to Path
        What was written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    rows = comp.table()
    has_truth = comp.true is not None

    # CSV
    cols = ["method", "label", "chi2_per_datum", "rms_misfit_mgal", "rms_error_kgm3", "rms_error_over_floor",
            "pearson_r", "pearson_r_by_layer", "wall_time_s", "cpu_time_s", "peak_memory_mib", "device",
            "iterations"]
    p = out / "comparison.csv"
    with p.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: (json.dumps(_clean(r[k])) if isinstance(r[k], list) else r[k]) for k in cols})
    paths["csv"] = p

    # JSON (everything, including histories and floors)
    doc = {"name": comp.name, "n_data": comp.survey.n_data, "n_cells": comp.mesh.n_cells,
           "mesh_shape": list(comp.mesh.shape), "notes": comp.notes, "table": rows,
           "metrics": {k: r.metrics for k, r in comp.runs.items()},
           "info": {k: r.info for k, r in comp.runs.items()},
           "history": {k: r.history for k, r in comp.runs.items()},
           "agreement_r": comp.agreement,
           "units": {"density": "kg/m³ contrast", "gz": "mGal, positive downward", "length": "m, z up",
                     "time": "s", "memory": "MiB above the level at the method's start (RSS)"}}
    p = out / "comparison.json"
    p.write_text(json.dumps(_clean(doc), indent=2, ensure_ascii=False), encoding="utf-8")
    paths["json"] = p

    # Markdown
    lines = [f"# {comp.name}: INR vs SimPEG on the same survey and mesh", "",
             f"{comp.survey.n_data} stations, mesh {comp.mesh.shape} = {comp.mesh.n_cells} cells. "
             "Density contrast in kg/m³, g_z in mGal (positive down). Memory: peak RSS above the level "
             "at the start of each method (memory an earlier method freed but the allocator kept is reused "
             "without being counted: for clean numbers run one method per process with `--methods`). "
             "CPU time: user + system seconds of all threads (on a shared machine, a better measure of "
             "the work than wall time).", ""]
    head = ["method", "χ²/N", "RMS misfit (mGal)"]
    if has_truth:
        head += ["RMS density error (kg/m³)", "RMS / mean floor", "r", "r per layer (top first)"]
    head += ["wall time (s)", "CPU time (s)", "peak memory (MiB)", "iterations", "device"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for r in rows:
        cells = [r["label"], _fmt(r["chi2_per_datum"]), _fmt(r["rms_misfit_mgal"])]
        if has_truth:
            cells += [_fmt(r["rms_error_kgm3"]), _fmt(r["rms_error_over_floor"]), _fmt(r["pearson_r"]),
                      _fmt(r["pearson_r_by_layer"])]
        cells += [_fmt(r["wall_time_s"], 2), _fmt(r["cpu_time_s"], 2), _fmt(r["peak_memory_mib"], 1),
                  _fmt(r["iterations"]), r["device"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    if has_truth:
        z = comp.runs["zero"].metrics
        lines += ["", f"Floors: zero model {_fmt(z.get('floor_zero_kgm3'))} kg/m³, constant-mean model "
                      f"{_fmt(z.get('floor_mean_kgm3'))} kg/m³."]
    keys = list(comp.agreement)
    if len(keys) > 1:
        lines += ["", "Agreement between recovered models (Pearson r over all cells):", "",
                  "| | " + " | ".join(_LABELS.get(k, k) for k in keys) + " |", "|---|" + "---|" * len(keys)]
        for a in keys:
            lines.append(f"| {_LABELS.get(a, a)} | " + " | ".join(_fmt(comp.agreement[a][b]) for b in keys) + " |")
    if comp.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in comp.notes]

    # models (npz + UBC, readable back on the mesh)
    models = {k: r.model for k, r in comp.runs.items() if k != "zero"}
    np.savez_compressed(out / "models.npz", **models, **({"true": comp.true} if has_truth else {}))
    paths["models"] = out / "models.npz"
    try:
        from .io import write_ubc_model

        mdir = out / "models"
        mdir.mkdir(exist_ok=True)
        for k, v in models.items():
            write_ubc_model(mdir / f"{k}.mod", comp.mesh.source, v)
        if has_truth:
            write_ubc_model(mdir / "true.mod", comp.mesh.source, comp.true)
        lines += ["", "Models: `models.npz` and UBC files in `models/` (kg/m³ contrast, on the mesh)."]
    except ImportError:  # pragma: no cover
        pass

    if figures and models:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from . import plotting

        labelled = {_LABELS.get(k, k): v for k, v in models.items()}
        allv = np.concatenate([np.ravel(v) for v in labelled.values()] + ([comp.true] if has_truth else []))
        lo, hi = np.percentile(allv, [0.5, 99.5]) if not has_truth else (float(allv.min()), float(allv.max()))
        if not hi > lo:
            hi = lo + 1.0
        fig = plotting.plot_sections(comp.mesh, labelled, true=comp.true, vmin=float(lo), vmax=float(hi))
        fig.savefig(out / "sections.png", dpi=110)
        paths["sections"] = out / "sections.png"
        for k, r in comp.runs.items():
            if k == "zero":
                continue
            fig = plotting.plot_data_maps(comp.survey, r.pred)
            fig.suptitle(_LABELS.get(k, k))
            fig.savefig(out / f"data_{k}.png", dpi=100)
            paths[f"data_{k}"] = out / f"data_{k}.png"
        lines += ["", "Figures: `sections.png` (every model on the same sections and colour scale"
                      + (", true model first" if has_truth else "") + "), `data_<method>.png`."]
    p = out / "comparison.md"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    paths["markdown"] = p
    return paths


# ---------------------------------------------------------------------- cases
def _case_setup(case: str, quick: bool) -> dict[str, Any]:
    """Survey, mesh, truth and per-method settings of a named case."""
    if case == "dipping_block":
        from .synthetic import dipping_block

        c = dipping_block(noise_seed=0)
        return {"survey": c.survey, "mesh": c.mesh, "true": c.model, "bounds": c.bounds, "reference": 0.0,
                "inr_preset": "compact",
                "inr": {"max_steps": 300} if quick else {}, "inr_paper": {"max_steps": 150} if quick else {},
                "simpeg": {"max_iter": 15, "max_irls_iterations": 10} if quick else {},
                "notes": [f"Dipping block (DESIGN.md case 1), noise σ = 1% of std(g_z), seed 0. "
                          f"SimPEG bounds {c.bounds} kg/m³, reference 0."]}
    if case == "smooth_grf":
        from .synthetic import smooth_grf

        kw = {"shape": (16, 16, 8), "cell_size": 1250.0} if quick else {}
        c = smooth_grf(seed=0, **kw)
        return {"survey": c.survey, "mesh": c.mesh, "true": c.model, "bounds": c.bounds, "reference": 0.0,
                "inr_preset": "spectral",
                "inr": {},
                "inr_paper": {"bounds": tuple(c.bounds), **({"max_steps": 150} if quick else {})},
                "simpeg": {"max_iter": 15, "max_irls_iterations": 10} if quick else {},
                "notes": [f"Smooth GRF (DESIGN.md case 2), shape {c.mesh.shape}, contrast to the field mean "
                          f"{c.reference_density:.1f} kg/m³ (reference model 0 = the true mean), "
                          f"bounds {tuple(round(b, 1) for b in c.bounds)} kg/m³, noise σ = 1% of std(g_z)."]}
    if case == "tharsis":
        from .tharsis import tharsis_case

        kw = {"core_cell": (2000.0, 2000.0, 1000.0), "depth": 4000.0, "padding": (2, 1.5)} if quick else {}
        t = tharsis_case(**kw)
        return {"survey": t.survey, "mesh": t.mesh, "true": None, "bounds": (-600.0, 600.0), "reference": 0.0,
                "inr": {"max_steps": 300} if quick else {}, "inr_paper": {"max_steps": 150} if quick else {},
                "simpeg": {"max_iter": 15, "max_irls_iterations": 10} if quick else {},
                "notes": t.notes() + ["No truth: the table reports data misfit, time and memory; the "
                                      "agreement table compares the recovered models."],
                "meta": t.meta}
    raise ValueError(f"unknown case {case!r}; choose from {CASES}")


def run_case(case: str, out_dir=None, *, quick: bool = False, methods: Sequence[str] = METHODS,
             device: str = "cpu", figures: bool = True, log: Callable[[str], None] | None = print) -> Comparison:
    """Run a named comparison case and (optionally) write its report.

    Parameters
    ----------
    case : {"dipping_block", "smooth_grf", "tharsis"}
    out_dir : path-like, optional
        Where :func:`write_report` writes; nothing is written when None.
    quick : bool
        Smaller settings (fewer INR steps / SimPEG iterations, smaller GRF and coarser
        Tharsis mesh) for smoke tests.
    methods : sequence of str
        Subset of :data:`METHODS`.
    device : str
        Torch device.
    figures : bool
        Write figures.
    log : callable, optional
        Progress messages.

    Returns
    -------
    Comparison
    """
    s = _case_setup(case, quick)
    comp = run_comparison(s["survey"], s["mesh"], true=s["true"], methods=methods, reference=s["reference"],
                          bounds=s["bounds"], inr_overrides=s["inr"], inr_paper_overrides=s["inr_paper"],
                          inr_preset=s.get("inr_preset", "ours"),
                          simpeg_options=s["simpeg"], device=device, name=case + (" (quick)" if quick else ""),
                          notes=s["notes"], log=log)
    if out_dir is not None:
        write_report(comp, out_dir, figures=figures)
    return comp
