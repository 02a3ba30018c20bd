"""INR gravity inversion: fit a density field to g_z with the physics loss χ²/N.

The trainer evaluates a density backend (default :class:`~gempy_gravinv.density.INRDensity`)
on the cells of a mesh, maps it to g_z with a :class:`~gempy_gravinv.GravityOperator`
(or a user matrix), and minimises ``χ²/N = mean(((G m - d) / σ)²)`` (+ an optional
regulariser) with Adam. It stops at the target misfit, returns the state that really has
the reported misfit (re-evaluated at the end), checkpoints and resumes exactly, and runs
seeded ensembles.

Units: density contrast kg/m³; g_z mGal, positive downward; σ mGal.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._mesh import PrismMesh, as_prism_mesh
from .._operator import GravityOperator, resolve_device
from .._survey import Survey
from ..density import VoxelDensity, cell_points, make_density
from ..density._encodings import ENCODINGS
from ..density._inr import as_torch_dtype, check_bounds
from ._linear import check_head_lambda, solve_head
from ._regularizers import BOUNDARIES, REGULARIZATIONS, depth_power, depth_reference, depth_scale, make_regularizer

WEIGHTINGS = ("none", "depth", "sensitivity")
REG_MODES = ("fixed", "target")
SOLVERS = ("adam", "linear")
SCHEDULES = ("constant", "cosine", "exponential")


# ====================================================================== config
def _matern_lattice(overrides: dict, harmonics: list, power: float) -> dict:
    """Fields of a periodic-lattice encoding scaled by the Matérn amplitude to the power ``power``.

    ℓ (m) and ν come from ``overrides`` (``prior_length``, default 5000 m; ``prior_nu``,
    default 1.5) and are kept in the config's ``prior_length`` / ``prior_nu``.
    """
    ell = overrides.get("prior_length") or 5000.0
    nu = overrides.get("prior_nu", 1.5)
    return dict(encoding="periodic", prior_length=ell, prior_nu=nu,
                encoding_options={"n_harmonics": list(harmonics), "lattice": True, "spectrum": [ell, nu],
                                  "spectrum_power": float(power)})


@dataclass
class INRConfig:
    """Settings of :func:`invert_inr` (JSON/TOML friendly; ``INRConfig(**dict)``).

    ``INRConfig()`` is our general preset: no prior beyond the network's own bias and
    the bounds, early-stopped at χ²/N ≈ 1 (tuned on the dipping block). :meth:`compact`
    adds a minimum-support prior held at the target misfit, for bodies in a quiet
    background (it meets the issue-3 targets on the dipping block: 36-38 kg/m³,
    r ≈ 0.89); :meth:`smooth` is ours for smooth fields (tuned on the GRF);
    :meth:`spectral` (closed-form Gaussian posterior of a Fourier-feature INR, for
    smooth fields that wrap around the mesh box) meets the issue-3 GRF target (0.268 of
    the floor, r 0.963, with a posterior std); :meth:`periodic` is its MLP counterpart;
    :meth:`paper` reproduces the public script of Mishra et al. (arXiv 2510.17876).

    Measured for ``INRConfig()`` (dipping block, our geometry, noise seed 0, RMS density error kg/m³ / r at
    χ²/N ≈ 1.05 unless noted; zero model 83.2): paper settings on the paper geometry
    66.0 / 0.60 (χ²/N 1.81 after 500 epochs); ours 62.7 / 0.65. What moved it: depth
    weighting of the gradient (β = 1: 61.2 / 0.67 with width 128; none: 66.7 / 0.58 at
    χ²/N 1.3), lr 5e-3 instead of 1e-2 (59.8 / 0.70 at χ²/N 1.6 vs 64.1 / 0.63 at 1.2),
    z-scored rather than isotropic coordinates (64.1 vs 66.2), 3 octaves rather than 2
    (63.1 vs 64.1). What did not: β = 2 or sensitivity weighting (slow: χ²/N ≈ 2.1 after
    1500-2500 steps), the output reparametrisation (82-114), positive-only bounds
    (0, 600) (71.9 / 0.47), TV (0.3) with them (67.7), hash grid (67.2) or Fourier
    features (65.6). Smooth GRF (20 x 20 x 10 cells of 1 km, floor 391.7): depth
    weighting hurts (0.59 of the floor vs 0.38), 2 octaves beat 3 (0.33-0.35 vs 0.38),
    1 octave is too smooth (0.70). On the full-size GRF (40 x 40 x 20 cells of 500 m,
    seed 0) :meth:`smooth` reaches only 0.72 of the floor, r 0.70 (χ²/N 1.06).

    Field (density backend)
    -----------------------
    backend : str
        Registered density backend (``"inr"``, ``"voxel"``...).
    encoding : {"positional", "fourier", "hash", "none"}
        Coordinate encoding of the INR.
    encoding_options : dict
        Passed to the encoding (positional: ``n_frequencies``, ``min_frequency``,
        ``base``, ``include_input``; fourier: ``n_features``, ``sigma``; hash:
        ``n_levels``, ``n_features_per_level``, ``log2_hashmap_size``,
        ``base_resolution``, ``finest_resolution``).
    width, depth, activation : MLP hidden width, number of hidden layers, activation.
    output : {"tanh", "sigmoid", "linear"}
        Output map into ``bounds``.
    bounds : (lo, hi) or None
        Density contrast bounds, kg/m³. **Effect**: (0, hi) enforces a positive-only
        contrast (use it only when the user knows the sign).
    init_value : float or None
        Initial density of the field (kg/m³); None = PyTorch default init (paper).
    last_layer_gain : float
        Scales the last layer's initial weights (with ``init_value``).
    normalization : {"zscore", "extent", "isotropic"}
        Coordinate normalisation (paper: zscore per axis).
    axis_scale : (3,) floats
        Per-axis multiplier of normalised coordinates (encoding frequency scaling).
    quadrature : int
        1 = the field is sampled at cell centres; q > 1 = cell averages over q³
        Gauss–Legendre points (**effect**: the forward sees the average of the field over
        each cell, not a point value; costs q³ x the network evaluations).
    net_dtype : {"float32", "float64"}
        Network dtype (float32 is ~2x faster on CPU; the operator keeps ``dtype``).

    Weighting and regularisation
    ----------------------------
    weighting : {"none", "depth", "sensitivity"}
        Preconditions the gradient of the loss w.r.t. the cell densities,
        ``∂L/∂m_j ← P_j ∂L/∂m_j`` before it flows to the network. ``"depth"``:
        ``P_j = ((z_top - z_j + z0) / (Δz/2 + z0))^β`` (Li & Oldenburg's depth
        weighting ``w(z) = (z_top - z + z0)^(-β/2)`` applied as the change of variable
        ``u = w m``, whose gradient-descent step on ``m`` is ``w⁻²`` times the plain one).
        ``"sensitivity"``: ``P_j = (diag(GᵀWᵀWG)_j / max)^(-β/2)``. **Effect**: without
        it, gradients ∝ Gᵀr vanish with depth and the fit puts all structure at the
        top (DESIGN.md: χ² ≈ 1 with r = 0.07); with it, deep cells move as readily as
        shallow ones. The minimiser set is unchanged; the path (and the early-stopped
        model) is not.
    weighting_mode : {"output", "gradient"}
        How ``"depth"`` weighting enters. ``"gradient"``: the preconditioner above (a
        hook on ∂L/∂m; note that Adam undoes it for the voxel backend, one parameter per
        cell). ``"output"``: reparametrise the field, ``m(x) = bound(s(z) · raw(x))`` with
        ``s = ((z_top - z + z0) / (Δz/2 + z0))^(β/2)`` (1 at the top, growing with depth),
        so a gradient step on ``raw`` moves ``m`` by ``s²`` x the plain step (the same
        preconditioner, to first order) *and* deep cells reach their bounds with smaller
        raw values. The trained field (``result.fields``) includes ``s``. ``"sensitivity"``
        weighting is always ``"gradient"``.
    weighting_power : float
        β above (2 matches the 1/r² decay of gravity for ``"depth"``).
    depth_z0 : float or None
        z0 in metres (default: half the top cell's height).
    regularization : {"none", "tv", "smooth", "min_support", "matern"}
        Adds ``reg_weight · R(m)`` to the loss, with ``R`` on the cell values of a tensor
        mesh: ``"tv"`` = Σ_axes mean(√((Δm/ρs)² + ε²) − ε) (anisotropic total variation,
        favours blocky models), ``"smooth"`` = Σ_axes mean((Δm/ρs)²); ``ρs`` =
        half the bounds range (or 100 kg/m³ unbounded), Δ = difference of neighbouring
        cells.
        ``"min_support"`` = mean(w²m² / (w²m² + ε²)) (minimum support, Last & Kubik
        1983; Portniaguine & Zhdanov 1999: counts the cells that carry a contrast, so it
        favours compact bodies), ``w`` = ``((z_top - z + z0) / (Δz/2 + z0))^(β/2)`` with
        β = ``reg_depth_power`` (deep cells pay more, against the pull to the surface),
        ε = ``support_eps``; any mesh.
        ``"matern"`` = the Gaussian-process prior ``mᵀC⁻¹m`` with the Matérn spectrum
        ``(|k|² + ℓ⁻²)^(-ν-3/2)`` (ℓ = ``prior_length``, ν = ``prior_nu``), by DCT on a
        uniform tensor mesh (:mod:`gempy_gravinv.inversion._regularizers`); under a
        misfit constraint its minimiser is the kriging estimate for that covariance.
    reg_weight, reg_eps : floats
        Weight (dimensionless; the data term is χ²/N) and TV smoothing ε. With
        ``reg_mode="target"``, ``reg_weight`` is the prior term's starting size relative
        to the data term.
    reg_mode : {"fixed", "target"}
        ``"fixed"``: loss = χ²/N + reg_weight · R, stopped by the paper's rule.
        ``"target"`` (misfit-constrained prior, the discrepancy principle): train on
        χ²/N alone until it first reaches ``target_chi2 (1 + stop_tol)``, then add the
        prior with weight λ (starting at ``reg_weight · target / R``), multiply λ by
        ``1 + reg_rate`` after each step with χ² below the target and by
        ``1 - reg_rate`` above it, run to ``max_steps`` and keep the state with the
        smallest R among those with χ²/N in the band. **Effect**: the prior shapes the
        model while the misfit stays at the noise level, instead of the model being
        whatever the optimiser's path reached when χ² first crossed 1 (the "fixed"
        mode's prior hardly acts before that). Measured on the dipping block: see
        :meth:`compact`.
    reg_rate : float
        Per-step multiplicative change of λ in ``"target"`` mode (0 < rate < 1).
    support_eps : float
        ε of ``"min_support"``, kg/m³: contrasts well below ε count as "no body".
    reg_depth_power : float
        β of the ``"min_support"`` depth weight (0 = none).
    prior_length, prior_nu : float
        Correlation length ℓ (m) and smoothness ν of ``"matern"``.
    prior_boundary : {"neumann", "periodic"}
        Boundary of ``"matern"``: ``"neumann"`` (DCT, no wrap-around) or ``"periodic"``
        (FFT: the box wraps around, as for a field generated by FFT on the mesh).

    Optimisation and stopping
    -------------------------
    solver : {"adam", "linear"}
        ``"adam"``: train every parameter on the loss below (the paper). ``"linear"``:
        keep the features fixed (the encoding, and the hidden layers at their seeded
        initial values when ``depth > 0``) and compute the last layer in closed form as
        the exact Gaussian posterior with weights ``w ~ N(0, I/λ)`` (kg/m³) and a flat
        prior on the bias (the mean contrast): one thin SVD, seconds, no steps, and the
        posterior standard deviation per cell (``result.std``;
        :mod:`gempy_gravinv.inversion._linear`). Needs ``output="linear"``,
        ``bounds=None``, ``weighting="none"`` and ``regularization="none"`` (the prior is
        on the weights). With features scaled by the square root of a spectrum
        (:meth:`spectral`) this is the Gaussian-process posterior mean for that
        spectrum, truncated to the features. ``lr``, the schedule, batches and the
        stopping rule are not used. Memory: the design ``n_data x F`` and its SVD; the
        features are streamed over blocks of cells (with a matrix-free operator, ``Gᵀ``
        over blocks of stations comes from its adjoint), so no ``n_cells x F`` array is
        held (the full-size GRF solve peaks at 1.7 GB RSS).
    head_lambda : {"discrepancy", "evidence"} or float
        λ of ``solver="linear"``: ``"discrepancy"`` sets χ²/N of the posterior mean to
        ``target_chi2``; ``"evidence"`` maximises ``p(d | λ)`` (type-II maximum
        likelihood); a number > 0 is λ itself (per (kg/m³)², against the data term
        ``Σ((d - Gm)/σ)²``). The kept λ, the implied prior std of the field and the
        effective number of parameters are in ``result.solve_info``.
    head_std : bool
        ``solver="linear"``: compute the posterior std per cell (given λ); costs about
        one more pass of the features through the SVD basis.
    lr : float
        Adam learning rate (paper: 1e-2).
    lr_schedule : {"constant", "cosine", "exponential"}
        ``cosine`` decays to ``lr_min`` at ``max_steps``; ``exponential`` multiplies by
        ``lr_decay`` per step.
    lr_min, lr_decay : floats
    max_steps : int
        Upper bound on optimiser steps (paper: 500 epochs).
    batch_size : int or None
        Stations per step (random mini-batches, own seeded generator); None = all
        (full batch). With mini-batches, the full χ²/N is evaluated every
        ``eval_every`` steps (default: once per pass over the stations) and stopping
        uses those evaluations.
    eval_every : int or None
    early_stopping : bool
        Stop near ``target_chi2`` (else run ``max_steps`` and keep the last state).
    target_chi2, stop_tol : float
        The band ``[target (1 - tol), target (1 + tol)]`` (paper: 1 ± 0.05).
    min_steps, patience, overfit_patience : int
        Paper's rule: after ``min_steps``, stop after ``patience`` consecutive
        evaluations inside the band or ``overfit_patience`` below it. The kept state is
        the evaluated one closest to the target; its χ²/N is recomputed at the end.

    Run
    ---
    seed : int
        Seeds the network (member k uses ``seed + k``) and the mini-batch generator.
    n_members : int
        Ensemble size: mean and standard deviation per cell.
    device : str
        ``"cpu"``, ``"cuda"``, ``"auto"``.
    dtype : {"float64", "float32"}
        Operator and loss dtype.
    store : {"auto", "dense", "matrix_free"}
        GravityOperator storage (dense is fastest when it fits).
    check_stations : bool or None
        Refuse stations inside cells (None: True, or the synthetic case's setting).
    checkpoint_every : int
        Steps between checkpoints (0 = only at the end / on interruption).
    progress : bool
        tqdm progress bar.
    num_threads : int, "auto" or None
        torch intra-op threads during the run (restored after); None leaves torch's
        setting; ``"auto"`` (default) uses 1 thread on the CPU when
        ``n_data x n_cells <= 2e7`` and leaves torch's setting otherwise. On a shared CPU,
        1 thread avoids thread-synchronisation stalls on these small matrices (measured
        on the 2-core machine: the dipping block took 373 s with 2 threads and 29 s with 1
        while ~8 other jobs ran; 191 s against 7.7 s with one other job; on a quiet
        machine 2 threads are ~30% faster: 5.7 s against 7.4 s).
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
    regularization: str = "none"
    reg_weight: float = 0.0
    reg_eps: float = 1e-2
    reg_mode: str = "fixed"
    reg_rate: float = 0.02
    support_eps: float = 50.0
    reg_depth_power: float = 0.0
    prior_length: float | None = None
    prior_nu: float = 1.5
    prior_boundary: str = "neumann"
    solver: str = "adam"
    head_lambda: str | float = "discrepancy"
    head_std: bool = True
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
            self.bounds = tuple(float(b) for b in self.bounds)
        if not isinstance(self.axis_scale, str):
            self.axis_scale = tuple(float(a) for a in self.axis_scale)
        self.encoding_options = dict(self.encoding_options or {})

    # ------------------------------------------------------------------ presets
    @classmethod
    def paper(cls, encoding: str = "positional", case: str = "dipping_block", **overrides) -> "INRConfig":
        """The public scripts of Mishra et al. (arXiv 2510.17876).

        ``case="dipping_block"`` (``001-EncodingComparisons_blocky.py``): MLP 4 x 256,
        LeakyReLU(0.01), z-scored cell-centre coordinates, positional encoding with 2
        octaves (frequencies 1 and 2 rad per z-score unit, raw input included) or a
        2-level hash grid (resolutions 4 and 128, 2 features, 2^17 entries), output
        ``600 tanh`` kg/m³, Adam lr 1e-2, 500 epochs, loss χ²/N with no regulariser and
        no depth weighting, float32, seed 42, early stopping after 100 epochs: 25 epochs
        in 1 ± 0.05 or 5 below it, keeping the epoch closest to 1.
        ``case="smooth_grf"`` (``001-EncodingComparison_smooth.py``): the same network
        with a sigmoid output over the density range (pass ``bounds`` = the case's
        contrast range, kg/m³), Adam lr 1e-3, seed 41.

        One deliberate fix: the paper stores the weights *after* the step that was
        scored; we keep the weights that produced the kept misfit.
        """
        if encoding not in ("positional", "hash"):
            raise ValueError(f"the paper used 'positional' or 'hash' encodings, got {encoding!r}")
        if case not in ("dipping_block", "smooth_grf"):
            raise ValueError(f"case must be 'dipping_block' or 'smooth_grf', got {case!r}")
        enc_opts = ({"n_frequencies": 2, "min_frequency": 1.0, "include_input": True}
                    if encoding == "positional" else
                    {"n_levels": 2, "n_features_per_level": 2, "log2_hashmap_size": 17,
                     "base_resolution": 4, "finest_resolution": 128})
        cfg = cls(encoding=encoding, encoding_options=enc_opts, width=256, depth=4,
                  activation="leaky_relu", output="tanh", bounds=(-600.0, 600.0), init_value=None,
                  last_layer_gain=1.0, normalization="zscore", quadrature=1, net_dtype="float32",
                  weighting="none", regularization="none", reg_weight=0.0, lr=1e-2,
                  lr_schedule="constant", max_steps=500, batch_size=None, early_stopping=True,
                  target_chi2=1.0, stop_tol=0.05, min_steps=100, patience=25, overfit_patience=5,
                  seed=42, dtype="float32")
        if case == "smooth_grf":
            cfg = dataclasses.replace(cfg, output="sigmoid", lr=1e-3, seed=41)
        return dataclasses.replace(cfg, **overrides)

    @classmethod
    def smooth(cls, **overrides) -> "INRConfig":
        """Our preset for smooth fields (the GRF case): ours without depth weighting,
        2 octaves, width 128, up to 3000 steps.

        A sigmoid output in ``bounds`` (pass the plausible contrast range, kg/m³) started
        at 0 (the mean). Measured on the GRF (20 x 20 x 10 cells of 1 km, seed 0):
        depth weighting (β = 1) raised the error from 0.38 to 0.59 of the constant-mean
        floor (a smooth field has as much shallow structure as deep), so it is off here.
        Full size (40 x 40 x 20 cells of 500 m, seed 0, floor 349.8 kg/m³, one thread;
        ``python benchmarks/inr_ablation.py --case smooth_grf --row smooth JSON`` with
        the overrides named):
        0.72 / r 0.70; with 3 octaves 0.617 / r 0.791 (χ²/N 1.08 at 2500 steps, 400 s),
        0.654 / 0.761 when run on to the band (step 2602); adding the ``"matern"`` prior
        in ``reg_mode="target"`` made it worse (0.745). For scale
        (``benchmarks/grf_oracle.py``): kriging with the true Matérn spectrum and
        variance 0.647 / 0.762; the generator's own periodic covariance (an oracle)
        0.293 / 0.956.
        """
        base = dict(weighting="none", encoding_options={"n_frequencies": 2}, width=128, max_steps=3000)
        return dataclasses.replace(cls(), **{**base, **overrides})

    @classmethod
    def periodic(cls, **overrides) -> "INRConfig":
        """Our preset for smooth random fields that wrap around the mesh box (the GRF case).

        Field: ``encoding="periodic"`` with the full 3-D Fourier lattice of the mesh box,
        ``|n| <= (4, 4, 3)`` harmonics per axis, each feature scaled by the Matérn
        amplitude ``(1 + ℓ²|k|²)^(-p(ν+3/2)/2)`` with ``p = 1.5`` (ℓ = ``prior_length``,
        default 5000 m, ν = ``prior_nu``, default 1.5: the GRF's spectrum), an MLP of 2 x
        128 (LeakyReLU), sigmoid output in ``bounds`` (pass the plausible contrast range,
        kg/m³) started at 0; no weighting, no prior term, Adam lr 1e-2 up to
        ``max_steps`` steps, stopped at χ²/N ≈ 1. The network's kernel then follows the
        prior's spectrum (Tancik et al. 2020), so early stopping at the noise level acts
        like the posterior mean under that covariance.

        **The assumption**: the field is periodic on the mesh box (opposite faces agree;
        the bottom is tied to the top). That is how the benchmark's field is generated (by
        FFT on the mesh, in the paper's code as in ours), and it is most of what an
        estimator can gain there: ``benchmarks/grf_oracle.py`` gives the posterior mean
        with the generator's periodic covariance 0.255 of the floor (r 0.967) on the
        paper's realization, and with the same covariance without the wrap 0.453 (r
        0.894). For real data the wrap is a choice to make knowingly: pad the mesh so that
        it falls outside the region of interest, or use :meth:`smooth`.

        Measured on the paper's realization (``smooth_grf(seed=41, generator="paper")``,
        floor 403.5 kg/m³, our geometry, one thread; ``python benchmarks/inr_ablation.py
        --case smooth_grf --grf-generator paper --grf-seed 41 --rows periodic``), RMS
        error / floor, r, χ²/N: 0.321, 0.948, 1.050 (903 s); network seed 1: 0.347,
        0.940, 1.049; the mean of the two 0.329, 0.946. What each part is worth:
        per-axis box harmonics only (K = 3) 0.401 / 0.916; the lattice with amplitude
        power p = 1 0.377 / 0.928 (with the periodic Matérn prior in target mode 0.352 /
        0.938); p = 2 0.307 / 0.952 but still at χ²/N 2.3 after 4000 steps; no wrap
        (:meth:`smooth`, 3 octaves) 0.555 / 0.832.
        """
        base = dict(_matern_lattice(overrides, [4, 4, 3], 1.5),
                    width=128, depth=2, weighting="none", lr=1e-2, max_steps=6000)
        return dataclasses.replace(cls(), **{**base, **overrides})

    @classmethod
    def spectral(cls, **overrides) -> "INRConfig":
        """A one-layer Fourier-feature INR with a Gaussian prior, solved in closed form (smooth GRFs).

        Field: ``m(x) = b + Σ_n w_n a_n [sin, cos](2π n·t(x))`` with the 3-D Fourier lattice
        of the mesh box, ``|n| <= (8, 8, 6)`` harmonics per axis (1,878 wave vectors,
        3,756 features), each scaled by the Matérn amplitude ``a_n = (1 + ℓ²|k_n|²)^(-(ν+3/2)/2)``
        (``spectrum_power=1``: the square root of the spectrum; ℓ = ``prior_length``,
        default 5000 m, ν = ``prior_nu``, default 1.5), no hidden layer, linear output.
        ``solver="linear"``: the weights ``w ~ N(0, I/λ)`` and a flat bias give the exact
        Gaussian posterior, so the mean is the Gaussian-process (kriging) estimate for
        the periodic Matérn covariance truncated to the lattice, with λ (the prior's
        variance) that maximises the evidence ``p(d | λ)`` (``head_lambda="discrepancy"``
        sets χ²/N = 1 instead), and ``result.std`` is the posterior std per cell. No
        bounds (a bound would make it nonlinear). The evidence's χ²/N is the Bayesian
        expectation ``(N - p_eff) / N`` (p_eff: ``result.solve_info``), below 1.

        **The assumptions**: those of :meth:`periodic` (the field is periodic on the mesh
        box; pad the mesh for real data) plus a Gaussian field with the given ℓ and ν;
        the harmonics (8, 8, 6) suit a box of about 4ℓ x 4ℓ x 2ℓ on a grid of at least
        16 x 16 x 12 cells; scale them with box/ℓ otherwise (``encoding_options``).

        Measured on the paper's realization (``smooth_grf(seed=41, generator="paper")``,
        floor 403.5 kg/m³, noise seed 1, our geometry, one thread; ``python
        benchmarks/inr_ablation.py --case smooth_grf --grf-generator paper --grf-seed 41
        --rows spectral``), RMS error / floor, r, χ²/N: 0.268, 0.963, 0.936 in 27 s
        (42-49 s beside another job), 95.4% of the cells within 1.96 posterior std (the oracle posterior mean with the
        generator's covariance and the true variance: 0.255, 0.967). With
        ``head_lambda="discrepancy"`` 0.276, 0.961, 1.000 (coverage 80.0%: the
        discrepancy λ is too large). Misspecified priors: ℓ = 2500 m 0.273 / 0.962, ℓ =
        10000 m 0.268 / 0.963, ν = 0.5 0.285 / 0.959. What does the work: the amplitude
        (flat features: 0.678 / 0.736) and enough harmonics (|n| <= (4, 4, 3) cannot fit
        the data to χ²/N = 1 and is refused). On the numpy realizations, seeds 0 / 1 / 2:
        0.320 / 0.438 / 0.315, r 0.948 / 0.900 / 0.949 (the oracle: 0.293 / 0.431 /
        0.308).
        """
        base = dict(_matern_lattice(overrides, [8, 8, 6], 1.0),
                    depth=0, output="linear", bounds=None, init_value=None, weighting="none",
                    solver="linear", head_lambda="evidence", net_dtype="float64")
        return dataclasses.replace(cls(), **{**base, **overrides})

    @classmethod
    def compact(cls, **overrides) -> "INRConfig":
        """Our preset for compact bodies (the dipping block): a dense feature grid INR with
        a minimum-support prior held at the target misfit.

        Field: a one-level hash-grid encoding of 32 cells per axis over the z-scored box
        (33³ vertices fit the 2^16 table, so it is a dense, collision-free trilinear feature
        grid with 2 features), an MLP of 1 x 32 (LeakyReLU), sigmoid output in
        (-600, 600) kg/m³ started at 0; no gradient weighting. Prior:
        ``regularization="min_support"`` (ε = 50 kg/m³, depth weight β = 1) in
        ``reg_mode="target"``; Adam lr 1e-2 for 2000 steps; the operator and loss in
        float32 (``dtype``: half the memory traffic of the dense G, whose rounding is far
        below the 1% noise; float64 gives 37.3 / 0.890 on seed 0 in 11.7 s).

        Measured with ``python benchmarks/inr_ablation.py --noise-seeds 0 1 2 --seeds 0 1
        --rows compact`` (dipping block, our geometry, one torch thread on this stop's
        2-core CPU), RMS density error kg/m³ / r / χ²/N: noise seeds 0, 1, 2 x network
        seeds 0, 1: 36.2-38.5 / 0.885-0.897 / 0.955-1.013, 7.3-10.5 s of training each
        (seed 0/0: 36.2 / 0.897 / 1.001). Measured earlier (float64, stop 8): SimPEG's
        L2 gives 68.0 / 0.553 and its sparse inversion 52.1 / 0.778; the zero model scores 83.2, the paper's INR 59-64. What does it, on
        seed 0: the prior in ``"target"`` mode. The same field without it (early-stopped
        at χ²/N ≈ 1) gives 68.6 / 0.544; the positional-encoding INR of :meth:`ours` with
        the same prior 62.6 / 0.649 (without: 62.7; it barely holds χ²/N = 1 while the
        prior pulls, so λ keeps falling); Fourier features with it 94.7 / 0.250 (compact
        but scattered); TV instead of minimum support 71.1; lr 5e-3 40.4. The voxel
        backend with the same prior (``backend="voxel", lr=0.05``) gives 39.7 in 3.8 s.

        Use it when the anomaly comes from bounded bodies in a quiet background; set
        ``support_eps`` to about 1/8 of the expected contrast and ``bounds`` to the
        plausible range.
        """
        base = dict(encoding="hash",
                    encoding_options={"n_levels": 1, "n_features_per_level": 2, "log2_hashmap_size": 16,
                                      "base_resolution": 32, "finest_resolution": 32},
                    width=32, depth=1, weighting="none", lr=1e-2, max_steps=2000,
                    regularization="min_support", reg_mode="target", reg_weight=1.0,
                    reg_depth_power=1.0, support_eps=50.0, dtype="float32")
        return dataclasses.replace(cls(), **{**base, **overrides})

    @classmethod
    def ours(cls, **overrides) -> "INRConfig":
        """Our preset (same as ``INRConfig()``), with overrides."""
        return dataclasses.replace(cls(), **overrides)

    @classmethod
    def from_file(cls, path) -> "INRConfig":
        """Read a JSON or TOML file of fields (an optional ``preset`` key: ``"ours"``,
        ``"compact"``, ``"smooth"``, ``"periodic"``, ``"spectral"`` or ``"paper"``)."""
        from ..io import read_config

        return cls.from_dict(read_config(path, section="inr"))

    @classmethod
    def from_dict(cls, data: dict) -> "INRConfig":
        """Build from a dict (``preset`` key selects the base: ``"ours"`` (default),
        ``"compact"``, ``"smooth"``, ``"periodic"``, ``"spectral"`` or ``"paper"``)."""
        data = dict(data)
        preset = data.pop("preset", "ours")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown INRConfig option(s) {unknown}; valid: {sorted(names)}")
        return cls.preset(preset, **data)

    @classmethod
    def preset(cls, name: str, **overrides) -> "INRConfig":
        """The preset called ``name`` (``"ours"``, ``"compact"``, ``"smooth"``, ``"periodic"``, ``"spectral"`` or
        ``"paper"``),
        with field overrides; a clear ``ValueError`` for another name."""
        presets = {"ours": cls.ours, "paper": cls.paper, "compact": cls.compact, "smooth": cls.smooth,
                   "periodic": cls.periodic, "spectral": cls.spectral}
        if name not in presets:
            raise ValueError(f"preset must be one of {sorted(presets)}, got {name!r}")
        return presets[name](**overrides)

    def to_dict(self) -> dict:
        """JSON-serialisable dict of the fields."""
        d = asdict(self)
        for k in ("bounds", "axis_scale"):
            if d[k] is not None:
                d[k] = list(d[k])
        return d

    def validate(self) -> None:
        """Raise a clear ``ValueError``/``TypeError`` for a bad setting."""
        if self.backend == "inr" and self.encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {self.encoding!r}; choose one of {ENCODINGS}")
        if self.output != "linear" or self.bounds is not None:
            check_bounds(self.bounds)
        if self.weighting_mode not in ("output", "gradient"):
            raise ValueError(f"weighting_mode must be 'output' or 'gradient', got {self.weighting_mode!r}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if self.regularization not in REGULARIZATIONS:
            raise ValueError(f"regularization must be one of {REGULARIZATIONS}, got {self.regularization!r}")
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {SCHEDULES}, got {self.lr_schedule!r}")
        for name in ("max_steps", "n_members"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name in ("min_steps", "checkpoint_every"):
            v = getattr(self, name)
            if int(v) != v or v < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        for name in ("patience", "overfit_patience"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.batch_size is not None and (int(self.batch_size) != self.batch_size or self.batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer or None, got {self.batch_size!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not self.target_chi2 > 0 or not 0 <= self.stop_tol < 1:
            raise ValueError("target_chi2 must be > 0 and stop_tol in [0, 1)")
        if self.reg_weight < 0:
            raise ValueError(f"reg_weight must be >= 0, got {self.reg_weight}")
        if self.reg_mode not in REG_MODES:
            raise ValueError(f"reg_mode must be one of {REG_MODES}, got {self.reg_mode!r}")
        if self.reg_mode == "target":
            if self.regularization == "none" or not self.reg_weight > 0:
                raise ValueError("reg_mode='target' needs a regularization and reg_weight > 0 "
                                 "(the initial weight of the prior term, adapted during the run)")
            if not self.early_stopping:
                raise ValueError("reg_mode='target' keeps the state at the target misfit; "
                                 "it cannot be combined with early_stopping=False")
        if not 0 < self.reg_rate < 1:
            raise ValueError(f"reg_rate must be in (0, 1), got {self.reg_rate}")
        if not self.support_eps > 0:
            raise ValueError(f"support_eps must be > 0 kg/m³, got {self.support_eps}")
        if self.prior_length is not None and not self.prior_length > 0:
            raise ValueError(f"prior_length must be > 0 m, got {self.prior_length}")
        if self.regularization == "matern" and self.prior_length is None:
            raise ValueError("regularization='matern' needs prior_length (the correlation length, m)")
        if self.prior_boundary not in BOUNDARIES:
            raise ValueError(f"prior_boundary must be one of {BOUNDARIES}, got {self.prior_boundary!r}")
        if not self.prior_nu > 0:
            raise ValueError(f"prior_nu must be > 0, got {self.prior_nu}")
        if self.reg_depth_power < 0:
            raise ValueError(f"reg_depth_power must be >= 0, got {self.reg_depth_power}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        check_head_lambda(self.head_lambda)
        if self.solver == "linear":
            bad = [f"{k}={v!r}" for k, v, ok in (
                ("backend", self.backend, "inr"), ("output", self.output, "linear"), ("bounds", self.bounds, None),
                ("weighting", self.weighting, "none"), ("regularization", self.regularization, "none"))
                if v != ok]
            if bad:
                raise ValueError("solver='linear' solves the last layer of an INR with output='linear', "
                                 "bounds=None, weighting='none' and regularization='none' (its prior is on the "
                                 f"weights); got {', '.join(bad)}. Use solver='adam' for those")
        nt = self.num_threads
        if nt is not None and nt != "auto" and (isinstance(nt, str) or int(nt) != nt or nt < 1):
            raise ValueError(f"num_threads must be a positive integer, 'auto' or None, got {nt!r}")
        if int(self.quadrature) != self.quadrature or self.quadrature < 1:
            raise ValueError(f"quadrature must be a positive integer, got {self.quadrature}")
        as_torch_dtype(self.dtype)
        as_torch_dtype(self.net_dtype)

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


# ====================================================================== result
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
        Seconds: ``setup`` (operator), ``train`` (all members), ``total``; ``steps``.
    completed : bool
        False when the run was cut by ``stop_after`` (resume to finish).
    solve_info : list of dict or None
        ``solver="linear"``: per member, the kept λ (``head_lambda``), the rule that
        chose it, the prior std of a weight and of the field (kg/m³), the effective
        number of parameters, the log evidence and the smallest reachable χ²/N.
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

    @property
    def field(self) -> torch.nn.Module:
        """The trained field (the ensemble mean field for several members)."""
        return self.fields[0] if len(self.fields) == 1 else EnsembleField(self.fields)

    @torch.no_grad()
    def evaluate(self, points) -> np.ndarray:
        """Density contrast (n,) kg/m³ of the trained field at ``points`` (n, 3) metres."""
        p = torch.as_tensor(np.asarray(points, dtype=np.float64).reshape(-1, 3))
        return self.field(p).detach().cpu().double().numpy()

    def summary(self) -> str:
        """One-line summary (χ²/N, RMS error, r, time)."""
        s = f"chi2/N={self.chi2:.3f}"
        if self.metrics:
            m = self.metrics
            if m.get("rms_error_kgm3") is not None:
                s += f" rms_err={m['rms_error_kgm3']:.1f} kg/m3 r={m['pearson_r']:.3f}"
        return s + f" steps={self.timings.get('steps')} train={self.timings.get('train', 0):.2f}s"

    def save(self, directory, *, figures: bool = True, name: str = "inr") -> dict:
        """Write model files, metrics.json, history.json and figures into ``directory``.

        Files: ``{name}_model.nc`` (NetCDF: model and std, kg/m³), ``{name}_model.vtr``
        (VTK), ``{name}_model.den`` (UBC model, g/cm³), ``metrics.json``,
        ``history.json`` and PNG figures (sections, data maps, convergence, ensemble
        std), through :mod:`gempy_gravinv.output` and :mod:`gempy_gravinv.plotting`.

        Returns
        -------
        dict
            ``{kind: path}`` of what was written (``"failed: ..."`` for a writer that
            could not handle this mesh, e.g. UBC for a non-tensor mesh).
        """
        from .. import output as _out

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        written: dict[str, Any] = {}
        attrs = {"method": "INR", "chi2_per_datum": self.chi2, "units": "kg/m3 density contrast"}
        jobs = [
            ("netcdf", lambda: _out.save_netcdf(d / f"{name}_model.nc", self.mesh, self.model, std=self.std,
                                                attrs=attrs)),
            ("vtk", lambda: _out.save_vtk(d / f"{name}_model", self.mesh, **self._cell_arrays())),
            ("ubc", lambda: _out.save_ubc_model(d / f"{name}_model.den", self.mesh, self.model)),
        ]
        for kind, job in jobs:
            try:
                written[kind] = str(job())
            except Exception as exc:  # one writer failing (e.g. UBC on a tree mesh) is reported
                written[kind] = f"failed: {exc}"
        written["metrics"] = str(_out.save_metrics_json(d / "metrics.json", self.metrics_report()))
        hp = d / "history.json"
        hp.write_text(json.dumps(_jsonable({"histories": self.histories})))
        written["history"] = str(hp)
        if figures:
            written.update(self._figures(d, name))
        return written

    def _cell_arrays(self) -> dict:
        arrays = {"density_contrast": self.model}
        if self.std is not None:
            arrays["std"] = self.std
        if self.true_model is not None:
            arrays["true_density_contrast"] = self.true_model
        return arrays

    def metrics_report(self) -> dict:
        """Metrics plus run information (what ``metrics.json`` holds)."""
        rep = dict(self.metrics or {})
        rep.update(method="INR", chi2_per_datum_recomputed=self.chi2, member_chi2=self.member_chi2,
                   best_step=self.best_step, stop_reason=self.stop_reason, n_members=len(self.fields),
                   timings=self.timings, config=self.config.to_dict())
        if self.solve_info is not None:
            rep["solve_info"] = self.solve_info
        if self.solve_info is not None and self.std is not None and self.true_model is not None:
            from .. import metrics as _metrics  # calibration of the posterior std

            rep["posterior_coverage_95"] = _metrics.coverage(self.model, self.true_model, self.std)
        return rep

    def _figures(self, d: Path, name: str) -> dict:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .. import plotting as _pl

        out: dict[str, Any] = {}
        hist = {"chi2": self.history["chi2"], "loss": self.history["loss"], "lr": self.history["lr"]}
        if any(self.history["reg"]):
            hist["reg"] = self.history["reg"]
        if self.config.reg_mode == "target" and any(self.history.get("reg_weight", [])):
            hist["reg_weight (λ)"] = self.history["reg_weight"]
        best_i = self.history["step"].index(self.best_step) if self.best_step in self.history["step"] else None
        jobs = [
            ("sections", lambda: _pl.plot_sections(self.mesh, {"INR": self.model}, true=self.true_model)),
            ("data_maps", lambda: _pl.plot_data_maps(self.survey, self.predicted)),
            ("convergence", lambda: _pl.plot_convergence(hist, target={"chi2": self.config.target_chi2},
                                                         best=best_i, xlabel="step")),
        ]
        if self.std is not None:
            jobs.append(("std", lambda: _pl.plot_std(self.mesh, self.std, true=self.true_model,
                                                     label="ensemble std")))
        for kind, job in jobs:
            path = d / f"{name}_{kind}.png"
            try:
                fig = job()
                fig.savefig(path, dpi=100, bbox_inches="tight")
                out[kind] = str(path)
            except Exception as exc:  # a figure that cannot be drawn (e.g. non-tensor mesh)
                out[kind] = f"failed: {exc}"
            finally:
                plt.close("all")
        return out


def _jsonable(obj):
    from ..output import to_jsonable

    return to_jsonable(obj)


# ====================================================================== problem setup
class _Problem:
    """Data, operator rows and cell geometry shared by the members of one inversion."""

    def __init__(self, survey: Survey, mesh: PrismMesh, cfg: INRConfig, operator=None) -> None:
        if not isinstance(survey, Survey):
            raise TypeError(f"survey must be a gempy_gravinv.Survey, got {type(survey).__name__}")
        mesh = as_prism_mesh(mesh)
        if not survey.has_data or survey.std is None:
            raise ValueError("invert_inr needs observed data with uncertainties: "
                             "Survey(locations, gz=... mGal, std=... mGal)")
        self.survey, self.mesh, self.cfg = survey, mesh, cfg
        self.device = resolve_device(cfg.device)
        self.dtype = as_torch_dtype(cfg.dtype)
        tk = dict(device=self.device, dtype=self.dtype)
        self.op = None
        self.G = None
        if operator is None:
            chk = True if cfg.check_stations is None else bool(cfg.check_stations)
            self.op = GravityOperator(mesh, survey, device=self.device, dtype=self.dtype, store=cfg.store,
                                      check_stations=chk)
            if self.op.store == "dense":
                self.G = self.op.dense()
        elif isinstance(operator, GravityOperator):
            if operator.n_cells != mesh.n_cells or operator.n_data != survey.n_data:
                raise ValueError(f"operator maps {operator.n_cells} cells to {operator.n_data} data; "
                                 f"mesh has {mesh.n_cells} cells, survey {survey.n_data} stations")
            self.op = operator
            if operator.store == "dense":
                self.G = operator.dense().to(**tk)
        else:
            G = torch.as_tensor(np.asarray(operator) if not torch.is_tensor(operator) else operator)
            if G.shape != (survey.n_data, mesh.n_cells):
                raise ValueError(f"operator matrix has shape {tuple(G.shape)}; expected "
                                 f"(n_data={survey.n_data}, n_cells={mesh.n_cells}) in mGal per kg/m³")
            self.G = G.to(**tk)
        self.d = torch.as_tensor(survey.gz, **tk)
        self.std = torch.as_tensor(survey.std, **tk)
        pts, w = cell_points(mesh, cfg.quadrature)
        self.points = torch.as_tensor(pts, dtype=torch.float64, device=self.device)
        self.qweights = torch.as_tensor(w, **tk)
        self.precond = self._preconditioner()
        self.reg = make_regularizer(cfg, mesh, self.device, self.dtype)

    # -------------------------------------------------------------- physics
    def forward(self, m: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Differentiable g_z (mGal) of cell densities m (n_cells,), optionally a row subset."""
        if self.G is not None:
            return (self.G if rows is None else self.G[rows]) @ m
        g = self.op(m)
        return g if rows is None else g[rows]

    def chi2(self, m: torch.Tensor, rows=None) -> torch.Tensor:
        d = self.d if rows is None else self.d[rows]
        s = self.std if rows is None else self.std[rows]
        return (((self.forward(m, rows) - d) / s) ** 2).mean()

    def cell_density(self, fld: torch.nn.Module) -> torch.Tensor:
        """Cell-average density of a field (n_cells,) in the operator dtype."""
        if isinstance(fld, DepthScaledField) and isinstance(fld.base, VoxelDensity):
            zc = torch.as_tensor(self.mesh.cell_centers[:, 2], device=fld.base.values.device)
            v = fld.base.output(fld.scale(zc).to(fld.base.values.dtype) * fld.base.values)
        elif isinstance(fld, VoxelDensity) and self.cfg.quadrature == 1:
            v = fld.on_mesh(self.mesh)
        else:
            v = fld(self.points)
        v = v.to(self.dtype).reshape(self.mesh.n_cells, -1)
        return v[:, 0] if v.shape[1] == 1 else (v * self.qweights).sum(1)

    # -------------------------------------------------------------- weighting
    def _preconditioner(self) -> torch.Tensor | None:
        cfg = self.cfg
        if cfg.weighting == "none" or (cfg.weighting == "depth" and cfg.weighting_mode == "output"):
            return None
        beta = float(cfg.weighting_power)
        if cfg.weighting == "depth":
            zc = torch.as_tensor(self.mesh.cell_centers[:, 2], device=self.device, dtype=self.dtype)
            p = depth_scale(zc, self.mesh, cfg.depth_z0, 2 * beta)
        else:
            if self.G is not None:
                jtj = ((self.G / self.std[:, None]) ** 2).sum(0)
            else:
                jtj = self.op.jtj_diag(1.0 / self.std)
            jtj = jtj / jtj.max()
            p = jtj.clamp_min(1e-12) ** (-beta / 2)
        return p / p.max()

    # -------------------------------------------------------------- regularisation
    def regularizer(self, m: torch.Tensor) -> torch.Tensor:
        """R(m) of ``cfg.regularization`` (dimensionless) for cell densities m (kg/m³)."""
        return self.reg(m)


class DepthScaledField(torch.nn.Module):
    """``m(x) = bound(s(z) · raw(x))``, ``s = ((z_top - z + z0) / (z_ref + z0))^(β/2)``.

    Wraps a backend with ``raw(points)`` and ``output`` (INRDensity) or ``values`` and
    ``output`` (VoxelDensity): the depth-weighting reparametrisation of
    :class:`INRConfig` (``weighting_mode="output"``). ``forward(points)`` returns the
    density contrast (n,) in kg/m³ at points (n, 3) in metres, z up.
    """

    def __init__(self, base: torch.nn.Module, z_top: float, z0: float, z_ref: float, beta: float) -> None:
        super().__init__()
        if not hasattr(base, "output") or not (hasattr(base, "raw") or hasattr(base, "values")):
            raise TypeError(f"weighting_mode='output' needs a backend with raw()/values and output; "
                            f"{type(base).__name__} has not: use weighting_mode='gradient'")
        self.base = base
        self.z_top, self.z0, self.z_ref, self.beta = float(z_top), float(z0), float(z_ref), float(beta)

    def scale(self, z: torch.Tensor) -> torch.Tensor:
        """s(z) (dimensionless), 1 at depth ``z_ref`` below the top."""
        return depth_power(z, self.z_top, self.z_ref, self.z0, self.beta)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        p = torch.as_tensor(points)
        if hasattr(self.base, "raw"):
            raw = self.base.raw(p)
        else:
            raw = self.base.values[torch.as_tensor(self.base.cell_index(p), device=self.base.values.device)]
        s = self.scale(p[:, 2].to(device=raw.device, dtype=torch.float64)).to(raw.dtype)
        return self.base.output(s * raw)


def _make_field(cfg: INRConfig, mesh: PrismMesh, seed: int, device, factory=None) -> torch.nn.Module:
    if factory is not None:  # invert_inr(density=...): a module (copied per member) or f(mesh, seed)
        if cfg.weighting == "depth" and cfg.weighting_mode == "output":
            raise ValueError("weighting_mode='output' rescales an INR's own output and is not applied to a "
                             "density= backend; use weighting_mode='gradient' (the default)")
        fld = copy.deepcopy(factory) if isinstance(factory, torch.nn.Module) else factory(mesh, seed)
        return fld.to(device)
    opts = cfg.field_options(mesh, seed)
    if cfg.backend == "voxel":
        opts.pop("seed", None)
    fld = make_density(cfg.backend, **opts)
    if cfg.weighting == "depth" and cfg.weighting_mode == "output":
        top, zref, z0 = depth_reference(mesh, cfg.depth_z0)
        fld = DepthScaledField(fld, top, z0, zref, cfg.weighting_power)
    return fld.to(device)


def _scheduler(cfg: INRConfig, opt: torch.optim.Optimizer):
    if cfg.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(cfg.max_steps), eta_min=cfg.lr_min)
    if cfg.lr_schedule == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_decay)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)


# ====================================================================== training
class _Stopper:
    """The stopping rule, with exact bookkeeping of the kept state.

    ``reg_mode="fixed"``: the paper's rule (stop after ``patience`` evaluations in the
    band ``target (1 ± tol)`` or ``overfit_patience`` below it; keep the evaluated state
    closest to the target).

    ``reg_mode="target"`` (misfit-constrained prior): phase ``"fit"`` trains on χ²/N
    alone until it first enters the band or goes below it; phase ``"shape"`` then adds
    ``weight · R(m)`` and adapts the weight after every step (``x (1 + rate)`` while
    χ²/N is below the target, ``x (1 - rate)`` while above), so the prior reshapes the
    model while the misfit stays at the target. It runs to ``max_steps`` and keeps the
    in-band state with the smallest R; without one, the state closest to the target.
    """

    def __init__(self, cfg: INRConfig) -> None:
        self.cfg = cfg
        self.best_gap = math.inf
        self.best_step = -1
        self.best_chi2 = math.nan
        self.best_state: dict | None = None
        self.in_band = 0
        self.below = 0
        self.phase = "fit" if cfg.reg_mode == "target" else "fixed"
        self.weight = float(cfg.reg_weight)
        self.best_reg = math.inf

    def reg_weight(self) -> float:
        """Weight of the prior term in the loss of the current step."""
        return 0.0 if self.phase == "fit" else self.weight

    def _keep(self, step: int, chi2: float, fld: torch.nn.Module) -> None:
        self.best_step, self.best_chi2 = step, chi2
        self.best_state = {k: v.detach().clone() for k, v in fld.state_dict().items()}

    def update(self, step: int, chi2: float, fld: torch.nn.Module, reg: float = 0.0) -> str | None:
        cfg = self.cfg
        if not cfg.early_stopping:
            return None
        lo, hi = cfg.target_chi2 * (1 - cfg.stop_tol), cfg.target_chi2 * (1 + cfg.stop_tol)
        gap = abs(chi2 - cfg.target_chi2)
        if self.phase == "shape":
            if lo <= chi2 <= hi and reg < self.best_reg:
                self.best_reg, self.best_gap = reg, gap
                self._keep(step, chi2, fld)
            elif not math.isfinite(self.best_reg) and gap < self.best_gap:
                self.best_gap = gap
                self._keep(step, chi2, fld)
            return None
        if gap < self.best_gap:
            self.best_gap = gap
            self._keep(step, chi2, fld)
        if self.phase == "fit":
            if chi2 <= hi and step + 1 >= cfg.min_steps:
                # the prior term starts at reg_weight x the data term
                self.phase = "shape"
                self.weight = float(cfg.reg_weight) * cfg.target_chi2 / max(reg, 1e-12)
            return None
        if step + 1 < cfg.min_steps:
            return None
        self.in_band = self.in_band + 1 if lo <= chi2 <= hi else 0
        self.below = self.below + 1 if chi2 < lo else 0
        if self.in_band >= cfg.patience:
            return "target misfit reached"
        if self.below >= cfg.overfit_patience:
            return "below target misfit"
        return None

    def adapt(self, chi2: float) -> None:
        """After a step of phase ``"shape"``: move the prior weight toward the target misfit."""
        if self.phase == "shape" and math.isfinite(chi2):
            r = float(self.cfg.reg_rate)
            self.weight *= (1 + r) if chi2 < self.cfg.target_chi2 else (1 - r)

    def state(self) -> dict:
        return dict(best_gap=self.best_gap, best_step=self.best_step, best_chi2=self.best_chi2,
                    best_state=self.best_state, in_band=self.in_band, below=self.below,
                    phase=self.phase, weight=self.weight, best_reg=self.best_reg)

    def load(self, s: dict) -> None:
        for k, v in s.items():
            setattr(self, k, v)


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])


def _resume_key(cfg: INRConfig) -> dict:
    d = cfg.to_dict()
    for k in ("progress", "checkpoint_every", "device", "store", "num_threads"):
        d.pop(k, None)
    return d


def _load_checkpoint(ckpt: Path, cfg: INRConfig, device, fld: torch.nn.Module) -> dict:
    """Read ``ckpt``, check it was written with ``cfg``'s settings, load its field into ``fld``."""
    ck = torch.load(ckpt, map_location=device, weights_only=False)
    if ck.get("config_key") != _resume_key(cfg):
        raise ValueError(f"checkpoint {ckpt} was written with other settings; "
                         "delete it or pass resume=False")
    fld.load_state_dict(ck["field"])
    return ck


def _save_checkpoint(ckpt: Path, payload: dict) -> None:
    """Write ``payload`` to ``ckpt`` atomically (a temporary file, then a rename)."""
    tmp = ckpt.with_suffix(ckpt.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, ckpt)


def _train_member(prob: _Problem, cfg: INRConfig, member: int, ckpt: Path | None, resume: bool,
                  stop_after: int | None, true_model: np.ndarray | None, pbar_desc: str) -> dict:
    """Train one member; returns its kept field, misfit and history."""
    from tqdm.auto import tqdm

    seed = int(cfg.seed) + member
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    fld = _make_field(cfg, prob.mesh, seed, prob.device, getattr(prob, "field_factory", None))
    opt = torch.optim.Adam(fld.parameters(), lr=cfg.lr)
    sched = _scheduler(cfg, opt)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    stopper = _Stopper(cfg)
    hist: dict[str, list] = {"step": [], "chi2": [], "loss": [], "reg": [], "reg_weight": [], "lr": [],
                             "time": []}
    step = 0
    elapsed0 = 0.0
    reason = "max_steps reached"
    done = False
    perm: torch.Tensor | None = None
    pos = 0

    if ckpt is not None and resume and ckpt.exists():
        ck = _load_checkpoint(ckpt, cfg, prob.device, fld)
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        _set_rng_state(ck["rng"])
        gen.set_state(ck["batch_rng"])
        stopper.load(ck["stopper"])
        hist = ck["history"]
        step, elapsed0, reason, done = ck["step"], ck["elapsed"], ck["reason"], ck["done"]
        perm, pos = ck.get("perm"), ck.get("pos", 0)

    def save_ckpt(is_done: bool, why: str) -> None:
        if ckpt is None:
            return
        _save_checkpoint(ckpt, dict(version=1, config_key=_resume_key(cfg), member=member, field=fld.state_dict(),
                                    optimizer=opt.state_dict(), scheduler=sched.state_dict(), rng=_rng_state(),
                                    batch_rng=gen.get_state(), stopper=stopper.state(), history=hist, step=step,
                                    elapsed=elapsed0 + (time.perf_counter() - t0), reason=why, done=is_done,
                                    perm=perm, pos=pos))

    n = prob.survey.n_data
    bs = None if cfg.batch_size is None or cfg.batch_size >= n else int(cfg.batch_size)
    eval_every = cfg.eval_every or (1 if bs is None else max(1, math.ceil(n / bs)))
    t0 = time.perf_counter()
    steps_this_call = 0
    bar = tqdm(total=cfg.max_steps, initial=step, desc=pbar_desc, disable=not cfg.progress or done,
               leave=False, unit="step")
    try:
        while not done and step < cfg.max_steps:
            if stop_after is not None and steps_this_call >= stop_after:
                save_ckpt(False, reason)
                break
            rows = None
            if bs is not None:
                if perm is None or pos + bs > n:
                    perm = torch.randperm(n, generator=gen).to(prob.device)
                    pos = 0
                rows = perm[pos:pos + bs]
                pos += bs
            m = prob.cell_density(fld)
            if prob.precond is not None and m.requires_grad:
                m.register_hook(lambda g, p=prob.precond: g * p)
            chi2_b = prob.chi2(m, rows)
            w_reg = stopper.reg_weight() if cfg.reg_mode == "target" else float(cfg.reg_weight)
            if prob.reg is None:
                reg = None
            elif w_reg > 0:
                reg = prob.regularizer(m)
            else:  # target mode's fit phase: the prior's value only (history, and λ at the switch)
                with torch.no_grad():
                    reg = prob.regularizer(m.detach())
            loss = chi2_b + w_reg * reg if reg is not None and w_reg > 0 else chi2_b
            # misfit of the *current* state (before its update) drives stopping
            if bs is None:
                chi2_full = float(chi2_b.detach())
            elif step % eval_every == 0:
                with torch.no_grad():
                    chi2_full = float(prob.chi2(m.detach()))
            else:
                chi2_full = None
            lr_now = opt.param_groups[0]["lr"]
            if chi2_full is not None:
                reg_val = 0.0 if reg is None else float(reg.detach())
                hist["step"].append(step)
                hist["chi2"].append(chi2_full)
                hist["loss"].append(float(loss.detach()))
                hist["reg"].append(reg_val)
                hist["reg_weight"].append(w_reg)
                hist["lr"].append(lr_now)
                hist["time"].append(elapsed0 + time.perf_counter() - t0)
                why = stopper.update(step, chi2_full, fld, reg_val)
                if why is not None:
                    reason, done = why, True
                    break
                if not math.isfinite(chi2_full):
                    raise FloatingPointError(f"χ²/N became {chi2_full} at step {step}: lower lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if stopper.phase == "shape":  # λ follows this step's misfit (the batch's, with mini-batches)
                stopper.adapt(chi2_full if bs is None else float(chi2_b.detach()))
            step += 1
            steps_this_call += 1
            bar.update(1)
            if chi2_full is not None:
                bar.set_postfix(chi2=f"{chi2_full:.3g}", refresh=False)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                save_ckpt(False, reason)
        else:
            done = True
    except KeyboardInterrupt:
        save_ckpt(False, "interrupted")
        bar.close()
        raise
    bar.close()
    if step >= cfg.max_steps:
        done = True
        if cfg.reg_mode == "target":
            reason = ("max_steps reached; kept the in-band state with the smallest prior"
                      if math.isfinite(stopper.best_reg) else
                      "max_steps reached; misfit never held in the band with the prior, kept the closest state")
    if done and cfg.early_stopping is False:
        # keep the final state (after the last update): score it
        with torch.no_grad():
            stopper.best_state = {k: v.detach().clone() for k, v in fld.state_dict().items()}
            stopper.best_step = step
            stopper.best_chi2 = float(prob.chi2(prob.cell_density(fld)))
    if done or stop_after is not None:
        save_ckpt(done, reason)
    elapsed = elapsed0 + time.perf_counter() - t0
    kept = copy.deepcopy(fld)
    if stopper.best_state is not None:
        kept.load_state_dict(stopper.best_state)
    kept.eval()
    with torch.no_grad():
        m_kept = prob.cell_density(kept)
        chi2_kept = float(prob.chi2(m_kept))
    return dict(field=kept, model=m_kept.detach().cpu().double().numpy(), chi2=chi2_kept,
                recorded_chi2=stopper.best_chi2, best_step=stopper.best_step, reason=reason, history=hist,
                steps=step, train_time=elapsed, done=done)


def _solve_member(prob: _Problem, cfg: INRConfig, member: int, ckpt: Path | None, resume: bool,
                  desc: str) -> dict:
    """``solver="linear"``: one member's closed-form head (kept in ``ckpt`` once solved)."""
    seed = int(cfg.seed) + member
    fld = _make_field(cfg, prob.mesh, seed, prob.device, getattr(prob, "field_factory", None))
    if ckpt is not None and resume and ckpt.exists():
        ck = _load_checkpoint(ckpt, cfg, prob.device, fld)
        fld.eval()
        return {**ck["out"], "field": fld}
    out = solve_head(prob, cfg, fld, desc)
    if ckpt is not None:
        _save_checkpoint(ckpt, dict(version=1, config_key=_resume_key(cfg), member=member,
                                    field=fld.state_dict(), out={k: v for k, v in out.items() if k != "field"},
                                    done=True))
    return out


def _checkpoint_path(checkpoint, member: int, n_members: int) -> Path | None:
    if checkpoint is None:
        return None
    p = Path(checkpoint)
    if p.suffix == "" or p.is_dir():
        p.mkdir(parents=True, exist_ok=True)
        return p / f"inr_member{member}.pt"
    p.parent.mkdir(parents=True, exist_ok=True)
    return p if n_members == 1 else p.with_name(f"{p.stem}.member{member}{p.suffix}")


def invert_inr(survey: Survey, mesh, config: INRConfig | dict | None = None, *,
               true_model=None, operator=None, checkpoint=None, resume: bool = False,
               stop_after: int | None = None, density=None, **options) -> INRResult:
    """Invert g_z for a density contrast field with an implicit neural representation.

    Parameters
    ----------
    survey : Survey
        Stations (m, z up) with observed g_z (mGal, positive down) and std (mGal).
    mesh : PrismMesh or discretize mesh
        Cells the field is sampled on and the forward integrates over.
    config : INRConfig or dict, optional
        Settings; ``INRConfig()`` (ours) by default, ``INRConfig.paper()`` for the paper.
    true_model : array_like (n_cells,), optional
        True contrast (kg/m³) to compute metrics against.
    operator : GravityOperator or array (n_data, n_cells), optional
        Forward operator to use instead of building one (mGal per kg/m³, positive down).
    checkpoint : path, optional
        File (or directory) for checkpoints; with ``resume=True`` an existing one is
        continued from its step to the same result as an uninterrupted run (bit for bit
        on the same device, dtype and number of torch threads; float32 reductions
        depend on the thread count).
    resume : bool
        Continue from ``checkpoint`` if it exists.
    stop_after : int, optional
        Run at most this many steps per member in this call, checkpoint and return
        (``result.completed`` is False); resume later. For time-sliced jobs and tests.
    density : torch.nn.Module or callable, optional
        Train this density backend instead of ``make_density(config.backend, ...)``:
        a module (deep-copied for each member; the caller's module is not modified) or
        a factory ``density(mesh, seed) -> module`` (e.g. a geology + INR hybrid,
        :class:`gempy_gravinv.density.HybridDensity`). Its ``forward(points (n, 3) m)``
        returns kg/m³. The ``config`` field options are then not used to build it.
    **options
        Any :class:`INRConfig` field, overriding ``config`` (e.g. ``max_steps=200``).

    Returns
    -------
    INRResult
        Model on the mesh (kg/m³), ensemble std, predicted g_z (mGal), history,
        metrics, trained fields, timings.

    Raises
    ------
    ValueError / TypeError
        Survey without data or std, mesh/operator mismatch, bad options.
    """
    t_start = time.perf_counter()
    if config is None:
        cfg = INRConfig()
    elif isinstance(config, INRConfig):
        cfg = config
    elif isinstance(config, dict):
        cfg = INRConfig.from_dict(config)
    else:
        raise TypeError(f"config must be an INRConfig or dict, got {type(config).__name__}")
    if options:
        names = {f.name for f in dataclasses.fields(INRConfig)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise TypeError(f"invert_inr got unknown option(s) {unknown}; valid: {sorted(names)}")
        cfg = dataclasses.replace(cfg, **options)
    cfg.validate()
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint= (the file to resume from)")
    if stop_after is not None and checkpoint is None:
        raise ValueError("stop_after needs checkpoint= (so the run can be resumed)")
    n_threads0 = torch.get_num_threads()
    threads = cfg.num_threads
    if threads == "auto":
        n_cells = getattr(mesh, "n_cells", None)
        small = n_cells is not None and isinstance(survey, Survey) and survey.n_data * int(n_cells) <= 2e7
        threads = 1 if small and resolve_device(cfg.device).type == "cpu" else None
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        return _invert(survey, mesh, cfg, t_start, true_model, operator, checkpoint, resume, stop_after, density)
    finally:
        torch.set_num_threads(n_threads0)


def _invert(survey, mesh, cfg, t_start, true_model, operator, checkpoint, resume, stop_after,
            density) -> INRResult:
    prob = _Problem(survey, mesh, cfg, operator)
    prob.field_factory = density
    mesh = prob.mesh
    if true_model is not None:
        true_model = np.asarray(true_model, dtype=np.float64).reshape(-1)
        if true_model.shape[0] != mesh.n_cells:
            raise ValueError(f"true_model has {true_model.shape[0]} values, mesh has {mesh.n_cells} cells")
    t_setup = time.perf_counter() - t_start

    outs = []
    for k in range(int(cfg.n_members)):
        desc = "INR" if cfg.n_members == 1 else f"INR member {k + 1}/{cfg.n_members}"
        ck = _checkpoint_path(checkpoint, k, cfg.n_members)
        if cfg.solver == "linear":
            outs.append(_solve_member(prob, cfg, k, ck, resume, desc))
        else:
            outs.append(_train_member(prob, cfg, k, ck, resume, stop_after, true_model, desc))
    members = np.stack([o["model"] for o in outs])
    model = members.mean(0)
    std = members.std(0, ddof=1) if len(outs) > 1 else None
    if all(o.get("std") is not None for o in outs):  # closed-form posteriors: the mixture's std
        var = np.mean([o["std"] ** 2 for o in outs], axis=0) + (members.var(0) if len(outs) > 1 else 0.0)
        std = np.sqrt(var)
    with torch.no_grad():
        mt = torch.as_tensor(model, device=prob.device, dtype=prob.dtype)
        pred = prob.forward(mt)
        chi2 = float(((pred - prob.d) / prob.std).pow(2).mean())
    predicted = pred.detach().cpu().double().numpy()
    train_time = sum(o["train_time"] for o in outs)
    timings = dict(setup=t_setup, train=train_time, total=time.perf_counter() - t_start,
                   steps=int(sum(o["steps"] for o in outs)), device=str(prob.device))
    metrics = None
    if true_model is not None:
        from .. import metrics as _metrics

        metrics = _metrics.evaluate(model=model, true=true_model, pred=predicted, survey=survey, mesh=mesh,
                                    wall_time=train_time, device=str(prob.device))
    res = INRResult(model=model, std=std, members=members, predicted=predicted, chi2=chi2,
                    member_chi2=[o["chi2"] for o in outs], history=outs[0]["history"],
                    histories=[o["history"] for o in outs], best_step=outs[0]["best_step"],
                    stop_reason=outs[0]["reason"], metrics=metrics, fields=[o["field"] for o in outs],
                    config=cfg, timings=timings, mesh=mesh, survey=survey, true_model=true_model,
                    completed=all(o["done"] for o in outs),
                    solve_info=[o["info"] for o in outs] if cfg.solver == "linear" else None)
    res._recorded_chi2 = [o["recorded_chi2"] for o in outs]  # type: ignore[attr-defined]
    return res
