"""What an INR inversion returns: the model on the mesh, the trained fields, history."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._forward import forward_gz
from .._mesh import PrismMesh
from .._multi import make_operator
from .._survey import Survey
from ..metrics import coverage, evaluate, misfit_by_component
from ._config import INRConfig
from ._regional import regional_at


class EnsembleField(torch.nn.Module):
    """Mean of several density fields: ``forward(points) -> (n,)`` kg/m³."""

    def __init__(self, fields) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(fields)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return torch.stack([f(points).to(torch.float64) for f in self.members]).mean(0)

    def std(self, points: torch.Tensor) -> torch.Tensor:
        """Standard deviation over members (n,), kg/m³ (ddof = 1; 0 for one member)."""
        v = torch.stack([f(points).to(torch.float64) for f in self.members])
        return v.std(0) if v.shape[0] > 1 else torch.zeros_like(v[0])


class InversionInterrupted(KeyboardInterrupt):
    """Ctrl-C (``KeyboardInterrupt``) stopped :func:`~gempy_gravinv.invert_inr` during training.

    A ``KeyboardInterrupt``, so code that does not know it still stops. The checkpoint
    (when one was given) holds the state at the end of the last whole step, so
    ``invert_inr(..., checkpoint=..., resume=True)`` continues the run exactly.

    Attributes
    ----------
    result : INRResult
        The kept state so far (``completed=False``, ``stop_reason="interrupted"``): the
        members trained so far, the interrupted one at its kept state.
    checkpoint : str or None
        The checkpoint file or folder of the run.
    """

    def __init__(self, result: INRResult, checkpoint=None) -> None:
        self.result = result
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        where = f"; checkpoint in {self.checkpoint}" if self.checkpoint else "; no checkpoint was asked for"
        super().__init__(f"INR training interrupted after {result.timings.get('steps')} steps{where}")


@dataclass
class INRResult:
    """What :func:`invert_inr` returns.

    Attributes
    ----------
    model : ndarray (n_cells,)
        Recovered density contrast on the mesh cells, kg/m³ (ensemble mean).
    std : ndarray (n_cells,) or None
        Ensemble standard deviation per cell, kg/m³ (None for one member); with
        ``solver="linear"`` the posterior std (of the mixture over members).
    members : ndarray (n_members, n_cells)
        Each member's model, kg/m³.
    predicted : ndarray (n_data,)
        g_z of ``model``, mGal, positive downward.
    chi2 : float
        χ²/N of ``model`` (recomputed at the end).
    member_chi2 : list of float
        χ²/N of each member's kept state (recomputed from the kept weights).
    history : dict of lists
        Member 0's training history: ``step``, ``chi2`` (χ²/N of the state at that step,
        before its update), ``loss``, ``reg``, ``lr``, ``time``. ``histories`` has all.
    best_step, stop_reason : member 0's kept step and why training stopped.
    metrics : dict or None
        :func:`gempy_gravinv.metrics.evaluate` against ``true_model`` (if given).
    fields : list of torch.nn.Module
        Trained fields (kept states): callable on any points (n, 3) m -> kg/m³.
    config : INRConfig
    timings : dict
        Seconds: ``setup`` (operator), ``train`` (all members; the wall time where the
        second run from the network's own start trained beside the first), ``total``;
        ``steps`` (of both runs where both were kept or compared); ``starts_side_by_side``
        (whether the two runs trained in two threads); ``world_size`` and
        ``rank_stations`` (stations each rank held; one entry for one process).
    completed : bool
        False when the run was cut by ``stop_after`` or interrupted (``stop_reason``
        ``"interrupted"``; see :class:`InversionInterrupted`): resume to finish.
    solve_info : list of dict or None
        ``solver="linear"``: per member, the kept λ (``head_lambda``), the rule that
        chose it, the prior std of a weight and of the field (kg/m³), the effective
        number of parameters, the log evidence and the smallest reachable χ²/N.
    recorded_chi2 : list of float or None
        Per member, χ²/N as recorded during training for the kept state (it equals
        ``member_chi2`` up to round-off: the kept state is the scored one).

    prior_selection : dict or None
        With ``prior_from_data``: the prior chosen (``"compact"`` or ``"smooth"``), the
        statistic and threshold it was chosen by, and the rule as a sentence. With
        ``prior`` set (:class:`INRConfig`): that prior, ``set_by="user"`` and the rule.
    period_selection : dict or None
        With ``period_from_data``: the period chosen for the periodic lattice (the mesh
        box or twice it), the two log evidences, the log Bayes factor and the rule.
    noise_estimate : dict or None
        With ``noise="report"`` or ``"estimate"``: the noise level the data support
        (``scale`` κ on the stated σ, ``std_median_mgal``, ``stated_median_mgal``: None
        where no std was stated and κ scales σ = 1 mGal, the
        lattice it was estimated with, ``used``: whether the misfit targets it, ``rule``).
    regional : dict or None
        With ``config.regional``: the fitted regional (``kind``, ``offset_mgal`` and,
        for a plane, ``trend_mgal_per_extent``); ``predicted`` includes it.
    regional_selection : dict or None
        With ``regional="auto"``: the kind chosen, the leave-one-out χ²/N of each
        candidate with its standard error, and the rule as a sentence.
    residual_check : dict or None
        For g_z data: whether the normalised residuals are spatially white
        (:func:`gempy_gravinv.metrics.residual_autocorrelation`: Moran's I over the 4
        nearest stations, its z-score and p-value under white noise) and ``rule``, a
        sentence; the same dict as ``metrics["residual_autocorrelation"]``.
    start_selection : dict or None
        With ``start_fallback``, when the least-squares start's model left correlated
        residuals and a second run was trained from the network's own start: the start
        kept (``"least_squares"`` or ``"none"``), each run's Moran's I, z-score and
        χ²/N, the difference in standard errors and the rule as a sentence. None when
        one run sufficed.
    coordinate_selection : dict or None
        With ``coordinate_fallback``, when the kept run ended above the target misfit on a
        graded mesh and trained again in the mesh's cell-index coordinates: the run kept
        (``coordinates``: ``"box"`` or ``"cells"``), each run's χ²/N and the rule as a
        sentence. None when the first run fitted the data.
    setup : dict or None
        Where the config uses the closed-form setup (a least-squares start, the prior's
        or the regional's choice): how it read the design, ``design`` (``"in memory"``,
        one panel of every row; ``"streamed"``, ``panels`` panels of ``panel_rows``
        rows; or ``"refused"``) and ``reason`` (why refused, else None).

    Files and figures are written by :func:`gempy_gravinv.output.save_inversion`.
    """

    model: np.ndarray
    std: np.ndarray | None
    members: np.ndarray
    predicted: np.ndarray
    chi2: float
    member_chi2: list
    history: dict
    histories: list
    best_step: int
    stop_reason: str
    metrics: dict | None
    fields: list
    config: INRConfig
    timings: dict
    mesh: PrismMesh
    survey: Survey
    true_model: np.ndarray | None = None
    completed: bool = True
    solve_info: list | None = None
    recorded_chi2: list | None = None
    prior_selection: dict | None = None
    regional: dict | None = None
    period_selection: dict | None = None
    noise_estimate: dict | None = None
    regional_selection: dict | None = None
    residual_check: dict | None = None
    start_selection: dict | None = None
    coordinate_selection: dict | None = None
    setup: dict | None = None

    def cell_arrays(self) -> dict:
        """Per-cell arrays for model files.

        ``density_contrast`` (kg/m³), plus ``std`` and ``true_density_contrast`` when present.
        """
        arrays = {"density_contrast": self.model}
        if self.std is not None:
            arrays["std"] = self.std
        if self.true_model is not None:
            arrays["true_density_contrast"] = self.true_model
        return arrays

    @property
    def field(self) -> torch.nn.Module:
        """The trained field (the ensemble mean field for several members)."""
        return self.fields[0] if len(self.fields) == 1 else EnsembleField(self.fields)

    @torch.no_grad()
    def evaluate(self, points) -> np.ndarray:
        """Density contrast (n,) kg/m³ of the trained field at ``points`` (n, 3) metres."""
        p = torch.as_tensor(np.asarray(points, dtype=np.float64).reshape(-1, 3))
        return self.field(p).detach().cpu().double().numpy()

    def predict(self, locations, component="gz", *, device: str = "cpu") -> np.ndarray:
        """Data (n,) of the model at new stations ``locations`` (n, 3) m: g_z in mGal by default.

        The forward of the cell model through the mesh, plus the fitted regional
        (``config.regional``) evaluated there: what the inversion predicts for stations
        it did not see.

        Parameters
        ----------
        locations : array_like (n, 3)
            Stations, metres, z up.
        component : str or sequence of str (n,)
            The gravity component to predict (``"gz"``, ``"gzz"``...), one for all
            stations or one per station (a station may appear once per component).
            Units and signs as :class:`~gempy_gravinv.Survey`: ``gz`` mGal positive
            downward, ``gx``/``gy`` mGal, gradients in Eötvös (z up, ``gzz`` positive
            above excess mass). The regional is added to the component it was fitted to
            (the survey's) only.
        device : str
            Torch device.

        Returns
        -------
        numpy.ndarray (n,)
            Each value in its component's unit.
        """
        if isinstance(component, str) and component == "gz":
            g = forward_gz(self.mesh, locations, self.model, device=device)
        else:
            sv = Survey(locations, components=component)
            op = make_operator(self.mesh, sv, device=device, dtype=torch.float64, store="matrix_free")
            g = op.forward(torch.as_tensor(np.asarray(self.model, dtype=np.float64))).cpu().numpy()
        if self.regional is None:
            return g
        fitted = str(self.survey.components[0])  # a regional is fitted to single-component data only
        on = np.broadcast_to(np.asarray(component, dtype=str) == fitted, g.shape)
        return g + np.where(on, regional_at(self.regional, locations), 0.0)

    def summary(self) -> str:
        """One-line summary (χ²/N, RMS error, r, time)."""
        s = f"chi2/N={self.chi2:.3f}"
        if self.metrics:
            m = self.metrics
            if m.get("rms_error_kgm3") is not None:
                s += f" rms_err={m['rms_error_kgm3']:.1f} kg/m3 r={m['pearson_r']:.3f}"
        s += f" steps={self.timings.get('steps')} train={self.timings.get('train', 0):.2f}s"
        if self.prior_selection is not None:
            s += f" prior={self.prior_selection['prior']}" + (
                " (set)" if self.prior_selection.get("set_by") == "user" else "")
        if self.period_selection is not None:
            s += " period=" + ("box" if self.period_selection["period_factor"] == 1.0 else "2x box")
        if self.noise_estimate is not None:
            est = self.noise_estimate
            s += (f" noise={est['scale']:.3g}x stated" if est.get("stated_median_mgal") is not None
                  else f" noise={est['std_median_mgal']:.3g} mGal (estimated)")
        if self.regional_selection is not None:
            s += f" regional={self.regional_selection['kind']} (chosen)"
        if self.residual_check is not None:
            s += f" residual_I={self.residual_check['moran_i']:.2f} (z={self.residual_check['z']:.1f})"
        if self.start_selection is not None:
            s += f" start={self.start_selection['start']} (chosen)"
        if self.coordinate_selection is not None:
            s += f" coordinates={self.coordinate_selection['coordinates']} (chosen)"
        return s

    def metrics_report(self) -> dict:
        """Metrics plus run information (what ``metrics.json`` holds)."""
        rep = dict(self.metrics or {})
        if not rep:  # no true model: the same keys, the data's fit filled in (the model's errors None)
            sv = self.survey  # obs and std given apart: the residual check is this result's own (below)
            rep = evaluate(pred=self.predicted, obs=sv.gz, std=sv.std,
                           components=None if sv.is_gz_only else sv.components)
        rep.update(method="INR", chi2_per_datum_recomputed=self.chi2, member_chi2=self.member_chi2,
                   best_step=self.best_step, stop_reason=self.stop_reason, n_members=len(self.fields),
                   timings=self.timings, config=self.config.to_dict())
        rep.update({k: self.timings[k] for k in ("world_size", "rank_stations") if k in self.timings})
        if self.solve_info is not None:
            rep["solve_info"] = self.solve_info
        if self.prior_selection is not None:
            rep["prior_selection"] = self.prior_selection
        if self.regional is not None:
            rep["regional"] = self.regional
        if self.regional_selection is not None:
            rep["regional_selection"] = self.regional_selection
        if self.period_selection is not None:
            rep["period_selection"] = self.period_selection
        if self.noise_estimate is not None:
            rep["noise_estimate"] = self.noise_estimate
        if self.residual_check is not None:
            rep["residual_autocorrelation"] = self.residual_check
        if self.start_selection is not None:
            rep["start_selection"] = self.start_selection
        if self.coordinate_selection is not None:
            rep["coordinate_selection"] = self.coordinate_selection
        if self.setup is not None:
            rep["closed_form_setup"] = self.setup
        if not self.survey.is_gz_only and "rms_misfit_by_component" not in rep:  # value and unit per component
            rep["rms_misfit_by_component"] = misfit_by_component(self.predicted, self.survey.data,
                                                                 self.survey.components, self.survey.std)
        if self.solve_info is not None and self.std is not None and self.true_model is not None:
            rep["posterior_coverage_95"] = coverage(self.model, self.true_model, self.std)
        return rep
