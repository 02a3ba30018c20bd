"""Settings of the INR inversion (:class:`INRConfig`) and its named presets.

Every field has a default, so ``INRConfig()`` runs as it is; a preset is a set of
overrides with a stated purpose and assumptions. Units: density contrast kg/m³, lengths
m, misfit χ²/N (dimensionless).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field

from .._mesh import PrismMesh
from ._config_checks import check_config
from ._presets import Presets


@dataclass
class INRConfig(Presets):
    """Settings of :func:`~gempy_gravinv.invert_inr` (JSON/TOML friendly; ``INRConfig(**dict)``).

    ``INRConfig()`` (preset ``"ours"``) makes no assumption beyond the network's own bias
    and the bounds: depth-weighted gradients, early-stopped at χ²/N ≈ 1. The other
    presets state what they assume: :meth:`compact` (a minimum-support prior held at the
    target misfit: bodies in a quiet background), :meth:`smooth` (smooth fields),
    :meth:`periodic` and :meth:`spectral` (smooth random fields that wrap around the mesh
    box), :meth:`paper` (the public scripts of Mishra et al., arXiv 2510.17876); their
    results: ``benchmarks/inr_ablation.py`` and the README.

    Field (density backend)
    -----------------------
    backend : str
        Registered density backend (``"inr"``, ``"voxel"``...).
    encoding : {"positional", "fourier", "hash", "periodic", "none"}
        Coordinate encoding of the INR.
    encoding_options : dict
        Passed to the encoding (positional: ``n_frequencies``, ``min_frequency``,
        ``base``, ``include_input``; fourier: ``n_features``, ``sigma``; hash:
        ``n_levels``, ``n_features_per_level``, ``log2_hashmap_size``,
        ``base_resolution``, ``finest_resolution``; periodic: ``n_harmonics``,
        ``lattice``, ``spectrum``, ``spectrum_power``).
    width, depth, activation : MLP hidden width, number of hidden layers, activation.
    output : {"tanh", "sigmoid", "linear"}
        Output map into ``bounds``.
    bounds : (lo, hi) or None
        Density contrast bounds, kg/m³. (0, hi) enforces a positive-only contrast (use
        it only when the sign is known).
    init_value : float or None
        Initial density of the field (kg/m³), within ``bounds``; on a bound (the default 0
        with positive-only bounds ``(0, hi)``) the bounded output starts 1% of the range
        inside it. None = PyTorch's default initialisation.
    last_layer_gain : float
        Scales the last layer's initial weights (with ``init_value``).
    normalization : {"zscore", "extent", "isotropic", "cells"}
        Coordinate normalisation (:class:`~gempy_gravinv.density.INRDensity`).
        ``"cells"``: a hash grid in the mesh's cell-index space, whose vertices follow
        the cell sizes of a graded mesh; ``auto()`` trains in it again where a run in
        z-scored coordinates does not reach the target misfit on a graded mesh.
    axis_scale : (3,) floats
        Per-axis multiplier of normalised coordinates (encoding frequency scaling).
    quadrature : int
        1 = the field is sampled at cell centres; q > 1 = cell averages over q³
        Gauss–Legendre points (the forward sees the average of the field over each
        cell; costs q³ x the network evaluations). A one-layer periodic field solved in
        closed form (``solver="linear"``) takes its exact cell means whatever q.
    net_dtype : {"float32", "float64"}
        Network dtype (the operator keeps ``dtype``).

    warm_start : {"none", "least_squares"}
        ``"least_squares"``: before training, fit the field (Adam on the squared error,
        ``warm_start_steps`` steps at ``lr``) to the minimum depth-weighted-norm model
        at the target misfit, ``m0 = b + s ⊙ w`` with ``s = (d/d_ref)^(β/2)``
        (β = ``warm_start_power``, depth from ``depth_from``) and ``w`` the Gaussian
        posterior mean for the design ``G diag(s) / σ`` with λ by the discrepancy
        principle (:mod:`gempy_gravinv.inversion._warmstart`). That model puts mass at
        about the right depth; a compactness prior then shapes it, as minimum-structure
        sparse inversions do. The design's products are formed from the sensitivity's
        rows, held or streamed from the operator in panels within 3/4 of the device's
        free memory; skipped, with a warning, when not even the n x n matrices and one
        row fit, or one ``n_data² x n_cells`` Gram product costs more than 1e13
        multiply-adds (:func:`~gempy_gravinv.inversion._streamed.plan_setup`).
    warm_start_power : float
        β of the warm start's depth weight (2 counters the 1/depth² decay of gravity).
    start_fallback : bool
        With ``warm_start="least_squares"`` on g_z data: where no state at the target misfit had
        white residuals (Moran's I z ≤ 3), train again from the network's own start (beside
        the first run when a core is spare) and keep the whiter run. On in :meth:`auto`.
    coordinate_fallback : bool
        With a hash grid (``encoding="hash"``) on a mesh of cells of several sizes: where
        the kept run ends above the target misfit (χ²/N > ``target_chi2 (1 +
        stop_tol)``: the network could not fit the data), train again with the grid in
        the mesh's cell-index space (``normalization="cells"``) and keep the run closer
        to the target (``result.coordinate_selection`` says why). On in :meth:`auto`.
    compact_on_core : bool
        On a graded mesh (padding cells growing outward, an octree's coarse cells) whose
        core of finest cells extends past the outermost stations by ``max(h, L / 10)``
        on every side (``h`` its cell width, ``L`` the stations' larger horizontal
        extent; the margin of :func:`~gempy_gravinv.mesh_from_survey`): the compact model
        (minimum support) trains on the core's cells alone and the cells beyond it hold
        the background, 0 kg/m³ (the model, members, std and fields are 0 there). The
        padding otherwise takes part of the field into a skin of mass that smears the
        bodies under the survey (:mod:`gempy_gravinv.inversion._core_cells`). The prior,
        regional and noise level are chosen on the whole mesh; the smooth model keeps
        every cell. ``result.prior_selection["cells"]`` says how many cells trained. Not
        with a given operator that is not a matrix, or bounds that exclude 0. On in
        :meth:`auto`.
    prior_from_data : bool
        Choose the prior from the data (with or without a warm start: the image it reads
        is computed for it): keep the configured compactness prior when the
        least-squares image is heavier-tailed than Gaussian fields' images through the
        same map (sparse sources; :mod:`gempy_gravinv.inversion._prior`), otherwise
        (distributed sources) model a
        Matérn field on a Fourier lattice with the period, ℓ and ν of largest evidence,
        solved in closed form (:mod:`gempy_gravinv.inversion._period`). The choice and
        its reason are in ``result.prior_selection`` and ``metrics.json``.
    prior : {None, "compact", "smooth"}
        The prior set by the user instead of chosen from the data (no compact-or-smooth
        test): ``"compact"`` keeps the configured minimum-support prior (it needs
        ``regularization="min_support"``); ``"smooth"`` models the Matérn field on a
        Fourier lattice of largest evidence in closed form, ``prior_from_data``'s smooth
        branch. ``result.prior_selection`` says that the user set it. None: as configured
        (``prior_from_data``, ``lattice_from_data`` or the regularisation).
        ``INRConfig.auto(prior=...)`` keeps every other derived scale of the default and
        turns ``prior_from_data`` off.
    smooth_power : float
        β of the least-squares image that ``prior_from_data`` reads on a mesh of one cell
        size (1: the sensitivity weighting of SimPEG's recipes); on a graded mesh it reads
        the start's image (``warm_start_power``) against correlated nulls too.
    lattice_from_data : bool
        The model is the Matérn field on a Fourier lattice whose period, ℓ and ν have the
        largest evidence, solved in closed form: ``prior_from_data``'s smooth branch,
        without the compactness check (:meth:`matern`). Not with ``prior_from_data``.
    warm_start_steps : int
        Most optimiser steps of the fit to the warm start (it stops once the field's
        χ²/N is within 1% of the start's).

    period_from_data : bool
        With ``encoding="periodic"``: let the data choose the lattice's period, the
        mesh box (the field wraps around it, as an FFT-made field does) or twice the box
        (it need not), by the closed-form evidence of the two one-layer lattice models
        (:mod:`gempy_gravinv.inversion._period`). The choice and the log Bayes factor
        are in ``result.period_selection`` and ``metrics.json``. On in
        :meth:`periodic` and :meth:`spectral`.

    Data model
    ----------
    regional : {"none", "constant", "plane", "auto"}
        A regional part of the data solved with the density (a flat prior): a datum
        offset (mGal), or an offset and a plane in the stations' x, y
        (:mod:`gempy_gravinv.inversion._regional`). The misfit is that of the residual
        after the best regional; ``result.regional`` holds the fitted one and
        ``result.predicted`` includes it. For reduced anomalies with a datum or the field
        of sources outside the mesh; not for synthetic data made by the mesh alone.
        ``"auto"``: the kind that predicts left-out stations best, by exact leave-one-out
        cross-validation of the depth-weighted least-squares model with the start's depth
        weight (β = ``warm_start_power``) and the one-standard-error rule, paired over
        stations (the simplest kind within one standard error of the best;
        :func:`gempy_gravinv.inversion._warmstart.choose_regional`).
        The choice and the scores are in ``result.regional_selection`` and ``metrics.json``.
    noise : {"stated", "report", "estimate"}
        The noise σ the misfit targets. ``"stated"``: the survey's std. ``"report"``: the
        survey's std, and the noise level the data support is estimated and reported
        beside it (``result.noise_estimate``, ``metrics.json``): the evidence of a Matérn
        lattice field (:mod:`gempy_gravinv.inversion._noise`), a factor κ on the stated
        σ. ``"estimate"``: the misfit targets κ x the stated σ; a survey without std is
        then accepted (σ = κ x 1 mGal, the same at every station). The estimate costs
        one closed-form evidence search over the lattice grid (seconds to a minute on a
        CPU for 10⁴ cells and 10³ stations).

    Weighting and regularisation
    ----------------------------
    weighting : {"none", "depth", "sensitivity"}
        Preconditions the gradient of the loss w.r.t. the cell densities,
        ``∂L/∂m_j ← P_j ∂L/∂m_j``, before it flows to the network. ``"depth"``:
        ``P_j = ((z_top - z_j + z0) / (Δz/2 + z0))^β`` (Li & Oldenburg's depth
        weighting ``w(z) = (z_top - z + z0)^(-β/2)`` applied as the change of variable
        ``u = w m``, whose gradient-descent step on ``m`` is ``w⁻²`` times the plain one).
        ``"sensitivity"``: ``P_j = (diag(GᵀWᵀWG)_j / max)^(-β/2)``. Without weighting,
        gradients ∝ Gᵀr vanish with depth and an early-stopped fit puts its structure
        at the top; with it, deep cells move as readily as shallow ones. The set of
        minimisers is unchanged; the path (and the early-stopped model) is not.
    weighting_mode : {"output", "gradient"}
        How ``"depth"`` weighting enters. ``"gradient"``: the preconditioner above (a
        hook on ∂L/∂m; Adam undoes it for the voxel backend, one parameter per cell).
        ``"output"``: reparametrise the field, ``m(x) = bound(s(z) · raw(x))`` with
        ``s = ((z_top - z + z0) / (Δz/2 + z0))^(β/2)`` (1 at the top, growing with depth),
        so a gradient step on ``raw`` moves ``m`` by ``s²`` x the plain step and deep
        cells reach their bounds with smaller raw values. The trained field
        (``result.fields``) includes ``s``. ``"sensitivity"`` weighting is always
        ``"gradient"``.
    weighting_power : float
        β above (2 matches the 1/r² decay of gravity for ``"depth"``).
    depth_z0 : float or None
        z0 in metres (default: half the top cell's height), with ``depth_from="mesh_top"``.
    depth_from : {"mesh_top", "station_surface", "stations"}
        What the depth of every depth weight (``weighting="depth"``, the
        ``"min_support"`` weight) is measured from. ``"mesh_top"``: ``z_top - z + z0``,
        below the flat top of the mesh. ``"station_surface"``: under the stations
        (inside their horizontal convex hull) the vertical distance below the surface
        through them (their elevations interpolated), so topography and station height
        need no setting and a body near the survey's edge is weighted as one under its
        centre; outside the hull that distance grows as the data's sensitivity falls
        (padding cells come out deep). ``"stations"``: the depth below the stations
        implied by the data's sensitivity, ``d ∝ (Σ_i (K_i(x)/σ_i)²)^(-1/2)`` (``K_i`` the
        point-mass kernel of station ``i``), so that topography, station height and
        spacing and the survey's edges are accounted for with no setting (see
        :mod:`gempy_gravinv.inversion._depth`). In both cases the weight is
        ``(d / d_ref)^(β/2)``, 1 at the shallowest cell.
    regularization : {"none", "tv", "smooth", "min_support", "matern"}
        Adds ``reg_weight · R(m)`` to the loss, with ``R`` on the cell values:
        ``"tv"`` = Σ_axes mean(√((Δm/ρs)² + ε²) − ε) (anisotropic total variation,
        blocky models), ``"smooth"`` = Σ_axes mean((Δm/ρs)²), on a tensor mesh;
        ``ρs`` = half the bounds range (or 100 kg/m³ unbounded), Δ = difference of
        neighbouring cells. ``"min_support"`` = mean(w²m² / (w²m² + ε²)) (minimum
        support, Last & Kubik 1983; Portniaguine & Zhdanov 1999: counts the cells that
        carry a contrast, so it favours compact bodies), ``w`` =
        ``((z_top - z + z0) / (Δz/2 + z0))^(β/2)`` with β = ``reg_depth_power``,
        ε = ``support_eps``; any mesh. ``"matern"`` = the Gaussian-process prior
        ``mᵀC⁻¹m`` with the Matérn spectrum ``(|k|² + ℓ⁻²)^(-ν-3/2)`` (ℓ =
        ``prior_length``, ν = ``prior_nu``), by DCT (or FFT) on a uniform tensor mesh;
        under a misfit constraint its minimiser is the kriging estimate for that
        covariance.
    reg_weight, reg_eps : floats
        Weight (dimensionless; the data term is χ²/N) and TV smoothing ε. With
        ``reg_mode="target"``, ``reg_weight`` is the prior term's starting size relative
        to the data term.
    reg_mode : {"fixed", "target"}
        ``"fixed"``: loss = χ²/N + reg_weight · R, stopped by the early-stopping rule.
        ``"target"`` (misfit-constrained prior, the discrepancy principle): train on
        χ²/N alone until it first reaches ``target_chi2 (1 + stop_tol)``, then add the
        prior with weight λ (starting at ``reg_weight · target / R``), multiply λ by
        ``1 + reg_rate`` after each step with χ² below the target and by
        ``1 - reg_rate`` above it, run to ``max_steps`` (from a least-squares start,
        ``max_steps`` steps of the prior, however many steps the misfit alone took to
        come back to the band) and keep the state with the
        smallest R among those with χ²/N in the band. The prior then shapes the model
        while the misfit stays at the noise level.
    reg_rate : float
        Per-step multiplicative change of λ in ``"target"`` mode (0 < rate < 1).
    support_eps : float or None
        ε of ``"min_support"``, kg/m³: contrasts well below ε count as "no body".
        None: 1/12 of the largest bound magnitude (50 kg/m³ for ±600; 50 unbounded).
    support_cooling : float
        Fraction of ``max_steps`` over which ε cools (with a least-squares start) from the
        90th percentile ``a`` of ``|w m₀|`` to ``a/3``, at most ``support_eps``; 0: fixed.
    reg_depth_power : float
        β of the ``"min_support"`` depth weight (0 = none).
    prior_length, prior_nu : float
        Correlation length ℓ (m) and smoothness ν of ``"matern"`` (and of the Matérn
        amplitude of the periodic presets).
    prior_boundary : {"neumann", "periodic"}
        Boundary of ``"matern"``: ``"neumann"`` (DCT, no wrap-around) or ``"periodic"``
        (FFT: the box wraps around).

    Optimisation and stopping
    -------------------------
    solver : {"adam", "linear"}
        ``"adam"``: train every parameter on the loss. ``"linear"``: keep the features
        fixed (the encoding, and the hidden layers at their seeded initial values when
        ``depth > 0``) and compute the last layer in closed form as the exact Gaussian
        posterior with weights ``w ~ N(0, I/λ)`` (kg/m³) and a flat prior on the bias
        (the mean contrast): one thin SVD, and the posterior standard deviation per cell
        (``result.std``). Needs ``output="linear"``, ``bounds=None``,
        ``weighting="none"`` and ``regularization="none"`` (the prior is on the
        weights). ``lr``, the schedule, batches and the stopping rule are not used.
        Memory: the design ``n_data x F`` and its SVD; the features are streamed over
        blocks of cells.
    head_lambda : {"discrepancy", "evidence"} or float
        λ of ``solver="linear"``: ``"discrepancy"`` sets χ²/N of the posterior mean to
        ``target_chi2``; ``"evidence"`` maximises ``p(d | λ)`` (type-II maximum
        likelihood); a number > 0 is λ itself (per (kg/m³)², against the data term
        ``Σ((d - Gm)/σ)²``). The kept λ, the implied prior std of the field and the
        effective number of parameters are in ``result.solve_info``.
    head_std : bool
        ``solver="linear"``: compute the posterior std per cell.
    head_bounds : (float, float) or None
        ``solver="linear"``: hold the model within ``(lo, hi)`` kg/m³: the model of
        largest posterior density among those within the bounds, where the unbounded
        posterior mean leaves them (``result.solve_info[0]["bounds"]`` says how many
        cells it moved; the posterior std stays the unbounded Gaussian's). The smooth
        model the default picks from the data takes the run's ``bounds`` here.
    lr : float
        Adam learning rate.
    lr_schedule : {"constant", "cosine", "exponential"}
        ``cosine`` decays to ``lr_min`` at ``max_steps``; ``exponential`` multiplies by
        ``lr_decay`` per step.
    lr_min, lr_decay : floats
    max_steps : int
        Upper bound on optimiser steps; with ``reg_mode="target"`` from a least-squares
        start, on the steps of the prior (the run then ends ``max_steps - 1`` steps after
        the prior began, at most ``2 max_steps - 1`` in all).
    batch_size : int or None
        Stations per step (random mini-batches, own seeded generator); None = all.
        With mini-batches the full χ²/N is evaluated every ``eval_every`` steps
        (default: once per pass over the stations) and stopping uses those evaluations.
    eval_every : int or None
    early_stopping : bool
        Stop near ``target_chi2`` (else run ``max_steps`` and keep the last state).
    target_chi2, stop_tol : float
        The band ``[target (1 - tol), target (1 + tol)]``.
    min_steps, patience, overfit_patience : int
        After ``min_steps``, stop after ``patience`` consecutive evaluations inside the
        band or ``overfit_patience`` below it. The kept state is the evaluated one
        closest to the target; its χ²/N is recomputed at the end.

    Run
    ---
    seed : int
        Seeds the network (member k uses ``seed + k``) and the mini-batch generator.
        Ensembles of ``n`` members with seeds less than ``n`` apart share members (seed 0
        and seed 1 share ``n - 1``): space the seeds of ensembles compared with each
        other by at least ``n_members``.
    n_members : int
        Ensemble size: mean and standard deviation per cell.
    device : str
        ``"cpu"``, ``"cuda"``, ``"auto"``.
    dtype : {"float64", "float32"}
        Operator and loss dtype.
    store : {"auto", "dense", "matrix_free"}
        GravityOperator storage (dense is fastest when it fits).
    check_stations : bool or None
        Refuse stations inside cells (None: True).
    checkpoint_every : int
        Steps between checkpoints (0 = only at the end / on interruption).
    progress : bool
        tqdm progress bar.
    num_threads : int, "auto" or None
        torch intra-op threads during the run (restored after); None leaves torch's
        setting; ``"auto"`` uses 1 thread on the CPU when ``n_data x n_cells <= 2e7``
        (on these small matrices thread synchronisation costs more than it saves on a
        busy CPU) and leaves torch's setting otherwise.
    """

    backend: str = "inr"
    encoding: str = "positional"
    encoding_options: dict = field(default_factory=lambda: {"n_frequencies": 3})
    width: int = 64
    depth: int = 3
    activation: str = "leaky_relu"
    output: str = "sigmoid"
    bounds: tuple | list | None = (-600.0, 600.0)
    init_value: float | None = 0.0
    last_layer_gain: float = 0.1
    normalization: str = "zscore"
    axis_scale: tuple | list = (1.0, 1.0, 1.0)
    quadrature: int = 1
    net_dtype: str = "float32"
    weighting: str = "depth"
    weighting_power: float = 1.0
    weighting_mode: str = "gradient"
    depth_z0: float | None = None
    depth_from: str = "mesh_top"
    warm_start: str = "none"
    prior_from_data: bool = False
    lattice_from_data: bool = False
    prior: str | None = None
    smooth_power: float = 1.0
    warm_start_power: float = 2.0
    warm_start_steps: int = 300
    start_fallback: bool = False
    coordinate_fallback: bool = False
    compact_on_core: bool = False
    regional: str = "none"
    noise: str = "stated"
    period_from_data: bool = False
    regularization: str = "none"
    reg_weight: float = 0.0
    reg_eps: float = 1e-2
    reg_mode: str = "fixed"
    reg_rate: float = 0.02
    support_eps: float | None = 50.0
    support_cooling: float = 0.0
    reg_depth_power: float = 0.0
    prior_length: float | None = None
    prior_nu: float = 1.5
    prior_boundary: str = "neumann"
    solver: str = "adam"
    head_lambda: str | float = "discrepancy"
    head_std: bool = True
    head_bounds: tuple[float, float] | None = None
    lr: float = 5e-3
    lr_schedule: str = "constant"
    lr_min: float = 1e-4
    lr_decay: float = 0.995
    max_steps: int = 2500
    batch_size: int | None = None
    eval_every: int | None = None
    early_stopping: bool = True
    target_chi2: float = 1.0
    stop_tol: float = 0.05
    min_steps: int = 0
    patience: int = 1
    overfit_patience: int = 1
    seed: int = 0
    n_members: int = 1
    device: str = "cpu"
    dtype: str = "float64"
    store: str = "auto"
    check_stations: bool | None = None
    checkpoint_every: int = 0
    progress: bool = True
    num_threads: int | str | None = "auto"

    def __post_init__(self) -> None:
        if self.bounds is not None and not isinstance(self.bounds, str):
            if not hasattr(self.bounds, "__iter__"):
                raise TypeError(f"bounds must be a pair (lo, hi) in kg/m³, got {self.bounds!r}")
            self.bounds = tuple(float(b) for b in self.bounds)
        if not isinstance(self.axis_scale, str):
            self.axis_scale = tuple(float(a) for a in self.axis_scale)
        self.encoding_options = dict(self.encoding_options or {})

    # ------------------------------------------------------------------ files and dicts
    @classmethod
    def from_file(cls, path) -> INRConfig:
        """Read a JSON or TOML file of fields (its ``[inr]`` table, if any; ``preset``: the base)."""
        from ..io import read_config

        return cls.from_dict(read_config(path, section="inr"))

    @classmethod
    def from_dict(cls, data: dict) -> INRConfig:
        """Build from a dict of fields; a ``preset`` key (default ``"ours"``) selects the base."""
        data = dict(data)
        preset = data.pop("preset", "ours")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown INRConfig option(s) {unknown}; valid: {sorted(names)}")
        return cls.preset(preset, **data)

    def to_dict(self) -> dict:
        """JSON-serialisable dict of the fields."""
        return {k: list(v) if k in ("bounds", "axis_scale", "head_bounds") and v is not None else v
                for k, v in asdict(self).items()}

    def validate(self) -> None:
        """Raise a ``ValueError``/``TypeError`` that names the first bad setting."""
        check_config(self)

    def field_options(self, mesh: PrismMesh, seed: int) -> dict:
        """Keyword arguments of the density backend for ``mesh`` and ``seed``."""
        if self.backend == "voxel":
            return dict(mesh=mesh, output=self.output, bounds=self.bounds,
                        init_value=0.0 if self.init_value is None else self.init_value, dtype=self.net_dtype)
        return dict(mesh=mesh, normalization=self.normalization, axis_scale=tuple(self.axis_scale),
                    encoding=self.encoding, encoding_options=dict(self.encoding_options),
                    width=self.width, depth=self.depth, activation=self.activation, output=self.output,
                    bounds=self.bounds, init_value=self.init_value, last_layer_gain=self.last_layer_gain,
                    seed=seed, dtype=self.net_dtype)
