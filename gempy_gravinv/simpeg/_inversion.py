"""SimPEG's recommended gravity inversion recipes, on our simulation or on SimPEG's own.

Inputs and outputs are in our conventions (density contrast in kg/m³, g_z in mGal
positive downward); the conversion to SimPEG's (g/cm³, upward g_z) happens here and in
:class:`gempy_gravinv.simpeg.Simulation3DIntegral`, through
:mod:`gempy_gravinv._constants` only.

Recipes (those of the SimPEG 0.25 user tutorials for gravity inversion):

- ``kind="l2"``: ``L2DataMisfit`` + ``WeightedLeastSquares``; directives
  ``UpdateSensitivityWeights``, ``BetaEstimate_ByEig``, ``BetaSchedule``,
  ``TargetMisfit``, ``UpdatePreconditioner``; ``ProjectedGNCG`` with bounds.
- ``kind="sparse"``: ``L2DataMisfit`` + ``Sparse(norms=[p_s, p_x, p_y, p_z])`` (default
  ``[0, 2, 2, 2]``: compact smallness, smooth gradients); directives
  ``UpdateSensitivityWeights``, ``UpdateIRLS``, ``BetaEstimate_ByEig``,
  ``UpdatePreconditioner``; ``ProjectedGNCG`` with bounds.
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._constants import gcc_to_kgm3, gz_from_upward, kgm3_to_gcc
from .._mesh import PrismMesh, active_mask
from .._plausible import implausible_model
from .._survey import Survey
from .._validation import check_choice

__all__ = ["InversionResult", "run_inversion", "make_simulation"]

logger = logging.getLogger(__name__)

_KINDS = ("l2", "sparse")
_ENGINES = ("ours", "simpeg")

#: Fraction of the bounds' range by which a starting model on a bound is moved inside
START_INSIDE = 1e-4


@dataclass
class InversionResult:
    """Result of :func:`run_inversion` (our units).

    Attributes
    ----------
    model : ndarray (n_active,)
        Recovered density contrast on the active cells, kg/m³ (discretize order).
    gz_pred : ndarray (n_data,)
        Predicted g_z, mGal, positive downward.
    history : list of dict
        SimPEG's convergence record, one entry per iteration: ``iter``, ``beta``,
        ``phi_d``, ``phi_m``, ``chi2`` (= phi_d / n_data).
    wall_time : float
        Seconds for the whole inversion (simulation set-up included).
    setup_time : float
        Seconds to build the simulation's sensitivity (included in ``wall_time``).
    kind, engine : str
        Recipe and simulation used.
    chi2 : float
        Final χ²/N of the data misfit (target 1).
    mesh : discretize mesh
        The mesh the model lives on.
    active_cells : ndarray of bool
        Mask of the active cells of ``mesh``.
    model_simpeg : ndarray (n_active,)
        The final model in SimPEG's units (g/cm³), as the optimiser returned it.
    info : dict
        ``n_iter`` (Gauss–Newton iterations run), ``norms`` (sparse only),
        ``beta0_ratio``, ``seed``.
    """

    model: np.ndarray
    gz_pred: np.ndarray
    history: list[dict[str, float]]
    wall_time: float
    setup_time: float
    kind: str
    engine: str
    chi2: float
    mesh: Any
    active_cells: np.ndarray
    model_simpeg: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def full_model(self, fill: float = np.nan) -> np.ndarray:
        """The model scattered onto all cells of :attr:`mesh` (kg/m³; ``fill`` elsewhere)."""
        out = np.full(self.active_cells.size, fill, dtype=float)
        out[self.active_cells] = self.model
        return out


def _as_discretize(mesh, active_cells):
    """(discretize mesh, bool mask of its active cells) from a discretize mesh or a PrismMesh built from one."""
    import discretize

    if isinstance(mesh, PrismMesh):
        if mesh.source is None:
            raise TypeError("a PrismMesh without a discretize source mesh cannot be used by SimPEG: "
                            "build it with PrismMesh.from_discretize / from_tensor")
        if active_cells is None and mesh.active_cells is not None:
            active_cells = mesh.active_cells
        mesh = mesh.source
    if not isinstance(mesh, (discretize.TensorMesh, discretize.TreeMesh)) or mesh.dim != 3:
        raise TypeError(f"mesh must be a 3-D discretize TensorMesh/TreeMesh or a PrismMesh, got {type(mesh).__name__}")
    return mesh, active_mask(active_cells, mesh.n_cells)


def make_simulation(survey, mesh, active_cells=None, *, engine: str = "ours", device: str = "cpu",
                    store_sensitivities: str = "ram"):
    """A SimPEG gravity simulation (identity map on active cells, g/cm³) for our survey.

    Parameters
    ----------
    survey : Survey or simpeg gravity survey
        Stations (our :class:`~gempy_gravinv.Survey` is converted with ``to_simpeg``).
    mesh : discretize mesh or PrismMesh
        Model mesh (metres, z up); a PrismMesh must come from discretize.
    active_cells : array_like of bool or int, optional
        Active cells of the mesh (a mask or indices; all by default).
    engine : {"ours", "simpeg"}
        :class:`gempy_gravinv.simpeg.Simulation3DIntegral` or SimPEG's own
        (``engine="choclo"``); both store float64 sensitivities.
    device : str
        Device of our simulation (ignored for SimPEG's).
    store_sensitivities : str
        ``"ram"`` (default) or ``"forward_only"``.

    Returns
    -------
    simulation : simpeg simulation
        Model: density contrast on the active cells, g/cm³; data: upward g_z, mGal.
    simpeg_survey : simpeg gravity survey
    mesh : discretize mesh
    active_cells : numpy.ndarray of bool
        Mask of the active cells of ``mesh``.
    """
    from simpeg import maps
    from simpeg.potential_fields import gravity

    check_choice(engine, _ENGINES, name="engine")
    mesh, mask = _as_discretize(mesh, active_cells)
    sv = survey.to_simpeg() if isinstance(survey, Survey) else survey
    n_active = int(mask.sum())
    mapping = maps.IdentityMap(nP=n_active)
    if engine == "ours":
        from ._simulation import Simulation3DIntegral

        sim = Simulation3DIntegral(mesh, survey=sv, active_cells=mask, rhoMap=mapping,
                                   store_sensitivities=store_sensitivities, device=device,
                                   sensitivity_dtype=np.float64)
    else:
        sim = gravity.simulation.Simulation3DIntegral(
            mesh, survey=sv, active_cells=mask, rhoMap=mapping, engine="choclo",
            store_sensitivities=store_sensitivities, sensitivity_dtype=np.float64)
    return sim, sv, mesh, mask


def _recorder_directive(n_data: int):
    from simpeg import directives

    class _Record(directives.InversionDirective):
        """Stores beta, phi_d, phi_m (and χ²/N) at the end of every iteration."""

        def initialize(self):
            self.history = []

        def endIter(self):
            phi_d = float(self.invProb.phi_d)
            self.history.append({"iter": int(self.opt.iter), "beta": float(self.invProb.beta),
                                 "phi_d": phi_d, "phi_m": float(self.invProb.phi_m),
                                 "chi2": phi_d / n_data})

    return _Record()


def run_inversion(survey: Survey, mesh, kind: str = "l2", *, reference=None, bounds=None,
                  active_cells=None, seed: int = 0, engine: str = "ours", device: str = "cpu",
                  norms=None, alpha_s: float = 1.0, alpha_x: float | None = None,
                  alpha_y: float | None = None, alpha_z: float | None = None,
                  max_iter: int = 30, max_irls_iterations: int = 25, beta0_ratio: float = 10.0,
                  cooling_factor: float = 2.0, cooling_rate: int = 1, chifact: float = 1.0,
                  cg_maxiter: int = 30, cg_rtol: float = 1e-3, starting_model=None,
                  simulation=None, verbose: bool = False) -> InversionResult:
    """Invert g_z with SimPEG's recommended recipe (L2 or sparse/IRLS).

    Parameters
    ----------
    survey : Survey
        Stations with observed g_z (mGal, positive down) and std (mGal).
    mesh : discretize.TensorMesh / TreeMesh, or PrismMesh built from one
        Model mesh (metres, z up). A PrismMesh's ``active_cells`` are used.
    kind : {"l2", "sparse"}
        ``"l2"``: WeightedLeastSquares with a beta schedule and target misfit;
        ``"sparse"``: Sparse norms with IRLS (see module docstring).
    reference : float or array_like (n_active,), optional
        Reference model, density contrast kg/m³ (0 by default). Also the starting model
        unless ``starting_model`` is given.
    bounds : (lower, upper), optional
        Bounds on the density contrast, kg/m³ (scalars or arrays); unbounded by default.
    active_cells : array_like of bool or int, optional
        Active cells of the mesh (all by default).
    seed : int
        Seed of ``BetaEstimate_ByEig`` (the only random step) and NumPy's global RNG.
    engine : {"ours", "simpeg"}
        Our :class:`~gempy_gravinv.simpeg.Simulation3DIntegral` or SimPEG's own
        (choclo, float64 sensitivities).
    device : str
        Device of our simulation.
    norms : sequence of 4 floats, optional
        Sparse norms ``[p_s, p_x, p_y, p_z]`` (``kind="sparse"``); default ``[0, 2, 2, 2]``.
    alpha_s, alpha_x, alpha_y, alpha_z : float
        Regularisation weights (SimPEG's defaults when None).
    max_iter : int
        Maximum Gauss–Newton iterations (``ProjectedGNCG.maxIter``); raised to leave room
        for the IRLS iterations when ``kind="sparse"``.
    max_irls_iterations : int
        ``UpdateIRLS.max_irls_iterations``.
    beta0_ratio : float
        ``BetaEstimate_ByEig.beta0_ratio``.
    cooling_factor, cooling_rate : float, int
        Beta cooling (``BetaSchedule`` for L2, ``UpdateIRLS`` for sparse).
    chifact : float
        Target χ²/N (``TargetMisfit.chifact`` / ``UpdateIRLS.chifact_target``).
    cg_maxiter, cg_rtol : int, float
        Inner conjugate-gradient controls of ``ProjectedGNCG`` (``cg_atol=0``).
    starting_model : float or array_like, optional
        Starting density contrast, kg/m³ (default: the reference), clipped to the bounds;
        a cell on a bound (the reference 0 with bounds ``(0, hi)``) starts
        :data:`START_INSIDE` of the bounds' range inside it, since SimPEG's projected
        Gauss-Newton would hold it there.
    simulation : simpeg simulation, optional
        A ready simulation (identity ``rhoMap`` on the same active cells, g/cm³) to reuse
        its stored sensitivity; overrides ``engine``.
    verbose : bool
        Show SimPEG's iteration printout.

    Returns
    -------
    InversionResult
        Model (kg/m³ contrast), predicted g_z (mGal, positive down), convergence record,
        wall time.

    Raises
    ------
    ValueError
        Unknown ``kind``/``engine``, survey without data or std, bad bounds.
    """
    from simpeg import data_misfit, directives, inverse_problem, inversion, optimization, regularization

    check_choice(kind, _KINDS, name="kind")
    check_choice(engine, _ENGINES, name="engine")
    if not isinstance(survey, Survey):
        raise TypeError(f"survey must be a gempy_gravinv.Survey, got {type(survey).__name__}")
    survey.require_data(need_std=True)
    np.random.seed(seed)

    t0 = time.perf_counter()
    if simulation is None:
        sim, sv, dmesh, mask = make_simulation(survey, mesh, active_cells, engine=engine, device=device)
    else:
        sim = simulation
        sv = sim.survey
        dmesh, mask = _as_discretize(mesh, active_cells if active_cells is not None else sim.active_cells)
        engine = "ours" if type(sim).__module__.startswith("gempy_gravinv") else "simpeg"
    n_active = int(mask.sum())
    if sv.nD != survey.n_data:
        raise ValueError(f"the simulation's survey has {sv.nD} data, the survey {survey.n_data}")
    if getattr(sim, "store_sensitivities", "ram") == "ram":
        _ = sim.G  # build (and time) the stored sensitivity before the inversion proper
    setup = time.perf_counter() - t0

    def _vec(x, name, default):
        if x is None:
            return np.full(n_active, default, dtype=float)
        a = np.asarray(x, dtype=float)
        if np.isnan(a).any():
            raise ValueError(f"{name} holds NaN: give numbers, kg/m³ (±inf for no bound)")
        if a.ndim == 0:
            return np.full(n_active, float(a))
        if a.shape != (n_active,):
            raise ValueError(f"{name} must be a scalar or have {n_active} values (active cells), got {a.shape}")
        return a.copy()

    ref = kgm3_to_gcc(_vec(reference, "reference", 0.0))
    lo, hi = (-np.inf, np.inf) if bounds is None else bounds
    lower = kgm3_to_gcc(_vec(lo, "bounds[0]", -np.inf))
    upper = kgm3_to_gcc(_vec(hi, "bounds[1]", np.inf))
    if np.any(lower >= upper):
        raise ValueError("bounds must satisfy lower < upper (kg/m³)")
    m0 = kgm3_to_gcc(_vec(starting_model, "starting_model", 0.0)) if starting_model is not None else ref.copy()
    m0 = np.clip(m0, lower, upper)
    # SimPEG's projected Gauss-Newton keeps a cell that starts on a bound there (its CG
    # runs on the cells off the bounds only): start a hair inside them
    inside = START_INSIDE * np.where(np.isfinite(upper - lower), upper - lower, 1.0)
    on_bound = (m0 <= lower) | (m0 >= upper)
    if np.any(on_bound):
        logger.info("%d cells start on a bound: moved %.3g of the bounds' range inside", int(on_bound.sum()),
                    START_INSIDE)
        m0 = np.clip(m0, lower + inside, upper - inside)

    data = survey.to_simpeg_data(sv)
    dmis = data_misfit.L2DataMisfit(data=data, simulation=sim)
    from simpeg import maps

    mapping = maps.IdentityMap(nP=n_active)
    reg_kw = dict(active_cells=mask, mapping=mapping, reference_model=ref, alpha_s=alpha_s)
    for name, val in (("alpha_x", alpha_x), ("alpha_y", alpha_y), ("alpha_z", alpha_z)):
        if val is not None:
            reg_kw[name] = val
    if kind == "l2":
        reg = regularization.WeightedLeastSquares(dmesh, **reg_kw)
    else:
        reg = regularization.Sparse(dmesh, **reg_kw)
        reg.norms = list(norms) if norms is not None else [0, 2, 2, 2]

    n_iter = max_iter if kind == "l2" else max_iter + max_irls_iterations
    opt = optimization.ProjectedGNCG(maxIter=n_iter, lower=lower, upper=upper, maxIterLS=20,
                                     cg_maxiter=cg_maxiter, cg_rtol=cg_rtol, cg_atol=0.0)
    inv_prob = inverse_problem.BaseInvProblem(dmis, reg, opt)
    record = _recorder_directive(survey.n_data)
    sens = directives.UpdateSensitivityWeights(every_iteration=False)
    beta0 = directives.BetaEstimate_ByEig(beta0_ratio=beta0_ratio, random_seed=seed)
    precond = directives.UpdatePreconditioner(update_every_iteration=True)
    if kind == "l2":
        dlist = [sens, beta0,
                 directives.BetaSchedule(coolingFactor=cooling_factor, coolingRate=cooling_rate),
                 directives.TargetMisfit(chifact=chifact), record, precond]
    else:
        irls = directives.UpdateIRLS(cooling_factor=cooling_factor, cooling_rate=cooling_rate,
                                     chifact_start=chifact, chifact_target=chifact,
                                     max_irls_iterations=max_irls_iterations, f_min_change=1e-4,
                                     misfit_tolerance=1e-2, verbose=verbose)
        dlist = [sens, irls, beta0, record, precond]
    inv = inversion.BaseInversion(inv_prob, directiveList=dlist)
    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    # SimPEG calls gc.collect() at every objective evaluation; with torch, gempy & co.
    # imported, a full collection scans millions of objects (~0.1 s each on 2 cores).
    # Freezing the objects that exist now makes those collections cheap without changing
    # any number (same for both engines).
    gc.freeze()
    try:
        with sink:
            m_rec = inv.run(m0)
    finally:
        gc.unfreeze()
    wall = time.perf_counter() - t0

    d_pred = sim.dpred(m_rec)
    gz_pred = gz_from_upward(d_pred) if survey.is_gz_only else d_pred * survey.simpeg_sign  # only gz flips
    r = (gz_pred - survey.gz) / survey.std
    chi2 = float(np.mean(r * r))
    if chi2 >= 10 * chifact:  # SimPEG ends silently at max_iter: say it, with what to check
        logger.warning("SimPEG %s ended at χ²/N %.3g, far above its target %g: check the data's unit (mGal), "
                       "sign (g_z positive down), σ, and that the bounds are in kg/m³ (not g/cm³) and hold the "
                       "contrasts", kind, chi2, chifact)
    model = gcc_to_kgm3(np.asarray(m_rec, dtype=float))
    if (why := implausible_model(model)) is not None:
        logger.warning("SimPEG %s: %s", kind, why)
    return InversionResult(model=model, gz_pred=gz_pred,
                           history=list(record.history), wall_time=wall, setup_time=setup, kind=kind,
                           engine=engine, chi2=chi2, mesh=dmesh, active_cells=mask,
                           model_simpeg=np.asarray(m_rec, dtype=float).copy(),
                           info={"n_iter": int(opt.iter), "norms": None if kind == "l2" else list(reg.norms),
                                 "beta0_ratio": beta0_ratio, "seed": seed})
