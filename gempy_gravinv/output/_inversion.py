"""Files and figures of an INR inversion result."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .._json import to_jsonable
from ..inversion import INRResult
from ._data import save_data_csv, save_data_netcdf
from ._folder import check_name
from ._models import save_netcdf, save_ubc_model, save_vtk
from ._writers import save_figures, save_metrics_json, write_each

PathLike = str | os.PathLike


#: The file-name prefix of :func:`save_inversion` whose metrics and history files carry no prefix
DEFAULT_NAME = "inr"


def save_inversion(result: INRResult, directory: PathLike, *, figures: bool = True, name: str = DEFAULT_NAME) -> dict:
    """Write an INR result's model files, metrics, history and figures into ``directory``.

    Files: ``{name}_model.nc`` (NetCDF: model and std, kg/m³ density contrast),
    ``{name}_model.vtr`` (VTK), ``{name}_model.den`` (UBC model, g/cm³),
    ``{name}_data.csv`` and ``{name}_data.nc`` (per station: x, y, z in m; observed,
    std, predicted and residual = observed - predicted g_z in mGal, positive down; a
    survey with other components adds ``component`` and ``unit`` and each row is in its unit),
    ``metrics.json`` (:meth:`INRResult.metrics_report`), ``history.json`` (every
    member's training history) and PNG figures (sections, data maps, convergence,
    ensemble or posterior std). With a ``name`` other than ``"inr"`` the metrics and
    history are ``{name}_metrics.json`` and ``{name}_history.json``, so that results
    saved under several names into one folder keep their own.

    Parameters
    ----------
    result : INRResult
        What :func:`~gempy_gravinv.invert_inr` returned.
    directory : str or path-like
        Output folder (created if missing).
    figures : bool
        Also draw the PNG figures.
    name : str
        File-name prefix: a plain stem (no path separators, no ``..``; ``ValueError``
        otherwise, so no name writes outside ``directory``).

    Returns
    -------
    dict
        ``{kind: path}`` of what was written (kinds ``netcdf``, ``vtk``, ``ubc``,
        ``data_csv``, ``data_netcdf``, ``metrics``, ``history`` and the figures);
        ``"failed: <reason>"`` for an output that could not be written (e.g. UBC for a
        non-tensor mesh) — the others are still written.
    """
    check_name(name)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    attrs = {"method": "INR", "chi2_per_datum": result.chi2, "units": "kg/m3 density contrast"}
    if result.prior_selection is not None:
        attrs["prior_selection"] = result.prior_selection["rule"]
    if result.period_selection is not None:
        attrs["period_selection"] = result.period_selection["rule"]
    if getattr(result, "noise_estimate", None) is not None:
        attrs["noise_estimate"] = result.noise_estimate["rule"]
    if getattr(result, "regional_selection", None) is not None:
        attrs["regional_selection"] = result.regional_selection["rule"]
    if getattr(result, "residual_check", None) is not None:
        attrs["residual_autocorrelation"] = result.residual_check["rule"]
    if getattr(result, "start_selection", None) is not None:
        attrs["start_selection"] = result.start_selection["rule"]
    if getattr(result, "coordinate_selection", None) is not None:
        attrs["coordinate_selection"] = result.coordinate_selection["rule"]
    if result.regional is not None:
        attrs["regional"] = result.regional["kind"]
        attrs["regional_offset_mgal"] = result.regional["offset_mgal"]
    written = write_each([
        ("netcdf", lambda: save_netcdf(d / f"{name}_model.nc", result.mesh, result.model, std=result.std,
                                       attrs=attrs, crs=getattr(result.survey, "crs", None))),
        ("vtk", lambda: save_vtk(d / f"{name}_model", result.mesh, **result.cell_arrays())),
        ("ubc", lambda: save_ubc_model(d / f"{name}_model.den", result.mesh, result.model)),
        ("data_csv", lambda: save_data_csv(d / f"{name}_data.csv", result.survey, result.predicted)),
        ("data_netcdf", lambda: save_data_netcdf(d / f"{name}_data.nc", result.survey, result.predicted,
                                                 attrs={"method": "INR", "chi2_per_datum": result.chi2})),
    ])
    stem = "" if name == DEFAULT_NAME else f"{name}_"  # results of other names beside it keep their own
    written["metrics"] = str(save_metrics_json(d / f"{stem}metrics.json", result.metrics_report()))
    hp = d / f"{stem}history.json"
    hp.write_text(json.dumps(to_jsonable({"histories": result.histories})))
    written["history"] = str(hp)
    if figures:
        written.update(save_figures(d, name, inversion_figures(result)))
    return written


def inversion_figures(result: INRResult) -> list:
    """``(kind, draw)`` pairs of an INR result's figures, for :func:`save_figures`."""
    from .. import plotting as pl

    h = result.history
    hist = {"chi2": h["chi2"], "loss": h["loss"], "lr": h["lr"]}
    if any(h["reg"]):
        hist["reg"] = h["reg"]
    if result.config.reg_mode == "target" and any(h.get("reg_weight", [])):
        hist["reg_weight (λ)"] = h["reg_weight"]
    best_i = h["step"].index(result.best_step) if result.best_step in h["step"] else None
    jobs = [
        ("sections", lambda: pl.plot_sections(result.mesh, {"INR": result.model}, true=result.true_model)),
        ("data_maps", lambda: pl.plot_data_maps(result.survey, result.predicted)),
        ("convergence", lambda: pl.plot_convergence(hist, target={"chi2": result.config.target_chi2},
                                                    best=best_i, xlabel="step")),
    ]
    if result.std is not None:
        jobs.append(("std", lambda: pl.plot_std(result.mesh, result.std, true=result.true_model,
                                                label="ensemble std")))
    return jobs
