"""The comparison report: tables (CSV, JSON, Markdown), model files and figures.

Each output is written by its own function, run through
:func:`gempy_gravinv.output.write_each` / :func:`~gempy_gravinv.output.save_figures`: one
output that cannot be written is recorded as ``"failed: <reason>"`` (and listed in the
Markdown report) without losing the others.

Units: kg/m³ density contrast, mGal g_z positive downward, metres z up, seconds, MiB.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._json import to_jsonable
from ..output import save_figures, write_each
from ._run import LABELS, Comparison, fmt

PathLike = str | os.PathLike

_CSV_COLUMNS = ["method", "label", "chi2_per_datum", "rms_misfit_mgal", "rms_error_kgm3",
                "rms_error_over_floor", "pearson_r", "pearson_r_by_layer", "wall_time_s", "cpu_time_s",
                "peak_memory_mib", "device", "iterations"]
_UNITS = {"density": "kg/m³ contrast", "gz": "mGal, positive downward", "length": "m, z up",
          "time": "s", "memory": "MiB above the level at the method's start (RSS)"}
_FAILED = "failed: "


def _failed(value: str) -> bool:
    return value.startswith(_FAILED)


def recovered_models(comp: Comparison) -> dict[str, np.ndarray]:
    """The recovered models by method key (kg/m³ contrast on the mesh), without the zero floor."""
    return {k: r.model for k, r in comp.runs.items() if k != "zero"}


# ---------------------------------------------------------------------- tables
def write_csv(path: PathLike, rows: list[dict[str, Any]]) -> Path:
    """Write the table as CSV, one row per method.

    Parameters
    ----------
    path : str or path-like
        Output ``.csv`` file.
    rows : list of dict
        :meth:`Comparison.table` rows; list values (per-layer r) are written as JSON.

    Returns
    -------
    pathlib.Path
    """
    p = Path(path)
    with p.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=_CSV_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (json.dumps(to_jsonable(r[k])) if isinstance(r[k], list) else r[k])
                        for k in _CSV_COLUMNS})
    return p


def write_json(path: PathLike, comp: Comparison, rows: list[dict[str, Any]]) -> Path:
    """Write everything as strict JSON: table, metrics, settings, histories, agreement, units.

    Parameters
    ----------
    path : str or path-like
        Output ``.json`` file (NaN and inf become ``null``).
    comp : Comparison
    rows : list of dict
        :meth:`Comparison.table` rows.

    Returns
    -------
    pathlib.Path
    """
    doc = {"name": comp.name, "n_data": comp.survey.n_data, "n_cells": comp.mesh.n_cells,
           "mesh_shape": list(comp.mesh.shape), "notes": comp.notes, "table": rows,
           "metrics": {k: r.metrics for k, r in comp.runs.items()},
           "info": {k: r.info for k, r in comp.runs.items()},
           "history": {k: r.history for k, r in comp.runs.items()},
           "agreement_r": comp.agreement, "units": _UNITS}
    p = Path(path)
    p.write_text(json.dumps(to_jsonable(doc), indent=2, ensure_ascii=False), encoding="utf-8")
    return p


# ---------------------------------------------------------------------- models
def write_models_npz(path: PathLike, comp: Comparison, models: dict[str, np.ndarray]) -> Path:
    """Write the recovered models (and the true one, when known) to one ``.npz`` file.

    Parameters
    ----------
    path : str or path-like
        Output ``.npz`` file.
    comp : Comparison
    models : dict of str to numpy.ndarray (n_cells,)
        Density contrasts, kg/m³, in the mesh's (discretize) cell order.

    Returns
    -------
    pathlib.Path
    """
    p = Path(path)
    np.savez_compressed(p, **models, **({"true": comp.true} if comp.true is not None else {}))
    return p


def write_ubc(path: PathLike, mesh, model: np.ndarray) -> Path:
    """Write one model as a UBC-GIF model file on the comparison mesh, in g/cm³.

    Parameters
    ----------
    path : str or path-like
        Output ``.mod`` file (its folder is created).
    mesh : PrismMesh
        The comparison mesh (built from a discretize mesh).
    model : numpy.ndarray (n_cells,)
        Density contrast on the active cells, kg/m³; written as a contrast in g/cm³,
        GRAV3D's unit and what ``gempy-gravinv forward`` reads (inactive cells get the UBC
        no-data value). Read it back with :func:`gempy_gravinv.io.read_ubc_model` and
        :func:`gempy_gravinv.io.model_to_contrast_kgm3`.

    Returns
    -------
    pathlib.Path
    """
    from ..output import save_ubc_model

    return save_ubc_model(path, mesh, np.asarray(model, float))


def _ubc_jobs(directory: Path, comp: Comparison, models: dict[str, np.ndarray]):
    """``(kind, writer)`` jobs of the UBC files: one per model, ``true.mod`` when known."""
    named = dict(models, **({"true": comp.true} if comp.true is not None else {}))

    def job(key: str) -> Callable[[], Path]:
        return lambda: write_ubc(directory / f"{key}.mod", comp.mesh, named[key])

    return [(f"ubc_{k}", job(k)) for k in named]


# ---------------------------------------------------------------------- figures
def _colour_range(comp: Comparison, models: dict[str, np.ndarray]) -> tuple[float, float]:
    """One colour scale for every section, kg/m³: the true model's range, else 0.5-99.5 %."""
    has_truth = comp.true is not None
    allv = np.concatenate([np.ravel(v) for v in models.values()] + ([comp.true] if has_truth else []))
    lo, hi = (float(allv.min()), float(allv.max())) if has_truth else np.percentile(allv, [0.5, 99.5])
    if not hi > lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def _save_png(path: Path, draw: Callable[[], Any], dpi: int) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig = draw()
    try:
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
    return path


def _sections_figure(comp: Comparison, models: dict[str, np.ndarray]):
    from .. import plotting

    lo, hi = _colour_range(comp, models)
    labelled = {LABELS.get(k, k): v for k, v in models.items()}
    return plotting.plot_sections(comp.mesh, labelled, true=comp.true, vmin=lo, vmax=hi)


def _data_map(comp: Comparison, key: str) -> Callable[[], Any]:
    def draw():
        from .. import plotting

        fig = plotting.plot_data_maps(comp.survey, comp.runs[key].pred)
        fig.suptitle(LABELS.get(key, key))
        return fig

    return draw


def write_figures(directory: PathLike, comp: Comparison, models: dict[str, np.ndarray]) -> dict[str, str]:
    """Draw ``sections.png`` (every model, one colour scale) and ``data_<method>.png``.

    Parameters
    ----------
    directory : str or path-like
        Output folder (must exist).
    comp : Comparison
    models : dict of str to numpy.ndarray (n_cells,)
        Recovered density contrasts, kg/m³.

    Returns
    -------
    dict
        ``{"sections": path, "data_<method>": path}``, or ``"failed: <reason>"``.
    """
    d = Path(directory)
    written = write_each([("sections", lambda: _save_png(d / "sections.png",
                                                          lambda: _sections_figure(comp, models), dpi=110))])
    data = save_figures(d, "data", [(k, _data_map(comp, k)) for k in comp.runs if k != "zero"])
    written.update({f"data_{k}": v for k, v in data.items()})
    return written


# ---------------------------------------------------------------------- markdown
def _metrics_table(comp: Comparison, rows: list[dict[str, Any]]) -> list[str]:
    has_truth = comp.true is not None
    head = ["method", "χ²/N", "RMS misfit (mGal)"]
    if has_truth:
        head += ["RMS density error (kg/m³)", "RMS / mean floor", "r", "r per layer (top first)"]
    head += ["wall time (s)", "CPU time (s)", "peak memory (MiB)", "iterations", "device"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["label"], fmt(r["chi2_per_datum"]), fmt(r["rms_misfit_mgal"])]
        if has_truth:
            cells += [fmt(r["rms_error_kgm3"]), fmt(r["rms_error_over_floor"]), fmt(r["pearson_r"]),
                      fmt(r["pearson_r_by_layer"])]
        cells += [fmt(r["wall_time_s"], 2), fmt(r["cpu_time_s"], 2), fmt(r["peak_memory_mib"], 1),
                  fmt(r["iterations"]), r["device"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    if has_truth:
        z = comp.runs["zero"].metrics
        lines += ["", f"Floors: zero model {fmt(z.get('floor_zero_kgm3'))} kg/m³, constant-mean model "
                      f"{fmt(z.get('floor_mean_kgm3'))} kg/m³."]
    return lines


def _agreement_table(comp: Comparison) -> list[str]:
    keys = list(comp.agreement)
    if len(keys) <= 1:
        return []
    lines = ["", "Agreement between recovered models (Pearson r over all cells):", "",
             "| | " + " | ".join(LABELS.get(k, k) for k in keys) + " |", "|---|" + "---|" * len(keys)]
    for a in keys:
        lines.append(f"| {LABELS.get(a, a)} | " + " | ".join(fmt(comp.agreement[a][b]) for b in keys) + " |")
    return lines


def _files_lines(comp: Comparison, written: dict[str, str]) -> list[str]:
    lines = []
    if not any(_failed(v) for k, v in written.items() if k.startswith("ubc_")):
        lines += ["", "Models: `models.npz` (kg/m³ contrast) and UBC files in `models/` (g/cm³ contrast, on the mesh)."]
    if "sections" in written and not _failed(written["sections"]):
        lines += ["", "Figures: `sections.png` (every model on the same sections and colour scale"
                      + (", true model first" if comp.true is not None else "") + "), `data_<method>.png`."]
    failed = [f"{k} ({v[len(_FAILED):]})" for k, v in written.items() if _failed(v)]
    if failed:
        lines += ["", "Not written: " + "; ".join(failed) + "."]
    return lines


def write_markdown(path: PathLike, comp: Comparison, rows: list[dict[str, Any]],
                   written: dict[str, str]) -> Path:
    """Write the Markdown report: metrics table, floors, agreement, notes and the files.

    Parameters
    ----------
    path : str or path-like
        Output ``.md`` file.
    comp : Comparison
    rows : list of dict
        :meth:`Comparison.table` rows.
    written : dict of str to str
        What the other writers produced (``"failed: ..."`` entries are listed).

    Returns
    -------
    pathlib.Path
    """
    lines = [f"# {comp.name}: INR vs SimPEG on the same survey and mesh", "",
             f"{comp.survey.n_data} stations, mesh {comp.mesh.shape} = {comp.mesh.n_cells} cells. "
             "Density contrast in kg/m³, g_z in mGal (positive down). Memory: peak RSS above the level "
             "at the start of each method (memory an earlier method freed but the allocator kept is reused "
             "without being counted: for clean numbers run one method per process with `--methods`). "
             "CPU time: user + system seconds of all threads (on a shared machine, a better measure of "
             "the work than wall time).", ""]
    lines += _metrics_table(comp, rows) + _agreement_table(comp)
    if comp.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in comp.notes]
    lines += _files_lines(comp, written)
    p = Path(path)
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


# ---------------------------------------------------------------------- all of it
def write_report(comp: Comparison, out_dir: PathLike, *, figures: bool = True) -> dict[str, Path | str]:
    """Write the tables (Markdown, CSV, JSON), the models and the figures of a comparison.

    Files: ``comparison.csv``, ``comparison.json``, ``models.npz``, ``models/<method>.mod``
    (UBC, g/cm³ contrast, and ``true.mod`` when the truth is known), ``sections.png`` and
    ``data_<method>.png`` (with ``figures``), and last ``comparison.md``, which lists any
    output that could not be written.

    Parameters
    ----------
    comp : Comparison
    out_dir : str or path-like
        Created if needed.
    figures : bool
        Write the PNG figures (sections with one colour scale, data maps).

    Returns
    -------
    dict
        ``{kind: pathlib.Path}`` for each output written (``csv``, ``json``, ``models``,
        ``ubc_<method>``, ``sections``, ``data_<method>``, ``markdown``), or the string
        ``"failed: <reason>"`` for one that could not be.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = comp.table()
    models = recovered_models(comp)
    written = write_each([
        ("csv", lambda: write_csv(out / "comparison.csv", rows)),
        ("json", lambda: write_json(out / "comparison.json", comp, rows)),
        ("models", lambda: write_models_npz(out / "models.npz", comp, models)),
        *_ubc_jobs(out / "models", comp, models),
    ])
    if figures and models:
        written.update(write_figures(out, comp, models))
    written.update(write_each([("markdown", lambda: write_markdown(out / "comparison.md", comp, rows, written))]))
    return {k: v if _failed(v) else Path(v) for k, v in written.items()}
