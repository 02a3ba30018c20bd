"""The named presets of :class:`~gempy_gravinv.inversion.INRConfig` (one job: the presets).

A preset is a set of field overrides with a stated purpose and assumptions; each is a
class method of :class:`Presets`, which :class:`~gempy_gravinv.inversion.INRConfig`
inherits. Units: density contrast kg/m³, lengths m, misfit χ²/N (dimensionless).
"""

from __future__ import annotations

import dataclasses
from typing import Self

from .._survey import Survey
from .._validation import check_choice
from ._config_checks import implied_overrides

PRESETS = ("ours", "auto", "compact", "smooth", "matern", "periodic", "spectral", "paper")

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


class Presets:
    """The named presets: class methods returning an :class:`INRConfig` (see :data:`PRESETS`)."""

    # ------------------------------------------------------------------ presets
    @classmethod
    def paper(cls, encoding: str = "positional", case: str = "dipping_block", **overrides) -> Self:
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
        scored; here the kept weights are those that produced the kept misfit.
        """
        check_choice(encoding, ("positional", "hash"), name="the paper's encoding")
        check_choice(case, ("dipping_block", "smooth_grf"), name="case")
        enc_opts = ({"n_frequencies": 2, "min_frequency": 1.0, "include_input": True} if encoding == "positional"
                    else {"n_levels": 2, "n_features_per_level": 2, "log2_hashmap_size": 17, "base_resolution": 4,
                          "finest_resolution": 128})
        cfg = cls(encoding=encoding, encoding_options=enc_opts, width=256, depth=4, activation="leaky_relu",
                  output="tanh", bounds=(-600.0, 600.0), init_value=None, last_layer_gain=1.0, normalization="zscore",
                  quadrature=1, net_dtype="float32", weighting="none", regularization="none", reg_weight=0.0, lr=1e-2,
                  lr_schedule="constant", max_steps=500, batch_size=None, early_stopping=True, target_chi2=1.0,
                  stop_tol=0.05, min_steps=100, patience=25, overfit_patience=5, seed=42, dtype="float32")
        if case == "smooth_grf":
            cfg = dataclasses.replace(cfg, output="sigmoid", lr=1e-3, seed=41)
        return dataclasses.replace(cfg, **overrides)

    @classmethod
    def smooth(cls, **overrides) -> Self:
        """Smooth fields that need not wrap around the mesh box.

        ``INRConfig()`` without depth weighting (a smooth field has as much shallow
        structure as deep), a positional encoding of 2 octaves, width 128, up to 3000
        steps; a sigmoid output in ``bounds`` (pass the plausible contrast range, kg/m³)
        started at 0.
        """
        base = dict(weighting="none", encoding_options={"n_frequencies": 2}, width=128, max_steps=3000)
        return dataclasses.replace(cls(), **{**base, **overrides})

    @classmethod
    def matern(cls, **overrides) -> Self:
        """A smooth Gaussian field whose covariance the data choose, in closed form.

        The Matérn field on a Fourier lattice of the mesh box (or of twice the box: the
        field need not wrap) with the period, correlation length ℓ (1/16 to 1/2 of the
        horizontal extent) and smoothness ν (0.5, 1.5, 2.5) of largest evidence, λ at
        the evidence's maximum (:func:`gempy_gravinv.inversion._period.choose_lattice`):
        the model ``auto()`` uses when it finds distributed sources, here without that
        check. The posterior mean and its per-cell std; no bounds unless given
        (``bounds=(lo, hi)`` kg/m³: the posterior's mode within them, ``head_bounds``).
        For smooth fields and for predicting stations between the given ones (combine
        with ``regional``). ``result.prior_selection`` holds the chosen lattice.
        """
        return dataclasses.replace(cls(), **{**dict(lattice_from_data=True, bounds=None), **overrides})

    @classmethod
    def periodic(cls, **overrides) -> Self:
        """Smooth random fields that wrap around the mesh box, trained by Adam.

        Field: ``encoding="periodic"`` with the full 3-D Fourier lattice of the mesh box,
        ``|n| <= (4, 4, 3)`` harmonics per axis, each feature scaled by the Matérn
        amplitude ``(1 + ℓ²|k|²)^(-p(ν+3/2)/2)`` with ``p = 1.5`` (ℓ = ``prior_length``,
        default 5000 m, ν = ``prior_nu``, default 1.5), an MLP of 2 x 128 (LeakyReLU),
        sigmoid output in ``bounds`` (pass the plausible contrast range, kg/m³) started
        at 0; no weighting, no prior term, Adam lr 1e-2 up to 6000 steps, stopped at
        χ²/N ≈ 1. The network's kernel then follows the prior's spectrum (Tancik et al.
        2020), so early stopping at the noise level acts like the posterior mean under
        that covariance.

        **The assumption**: the field is periodic on the mesh box (opposite faces agree;
        the bottom is tied to the top), as a field generated by FFT on the mesh is. It is
        checked against the data (``period_from_data``): when the evidence favours a
        field that does not wrap, the period becomes twice the box, and
        ``result.period_selection`` says so.
        """
        base = dict(_matern_lattice(overrides, [4, 4, 3], 1.5), period_from_data=True,
                    width=128, depth=2, weighting="none", lr=1e-2, max_steps=6000)
        return dataclasses.replace(cls(), **{**base, **overrides})

    @classmethod
    def spectral(cls, **overrides) -> Self:
        """A one-layer Fourier-feature INR with a Gaussian prior, solved in closed form.

        Field: ``m(x) = b + Σ_n w_n a_n [sin, cos](2π n·t(x))`` with the 3-D Fourier lattice
        of the mesh box, ``|n| <= (8, 8, 6)`` harmonics per axis (1,878 wave vectors,
        3,756 features), each scaled by the Matérn amplitude ``a_n = (1 + ℓ²|k_n|²)^(-(ν+3/2)/2)``
        (the square root of the spectrum; ℓ = ``prior_length``, default 5000 m, ν =
        ``prior_nu``, default 1.5), no hidden layer, linear output. ``solver="linear"``:
        the weights ``w ~ N(0, I/λ)`` and a flat bias give the exact Gaussian posterior,
        so the mean is the Gaussian-process (kriging) estimate for the periodic Matérn
        covariance truncated to the lattice, with the λ that maximises the evidence
        ``p(d | λ)`` (``head_lambda="discrepancy"`` sets χ²/N = 1 instead), and
        ``result.std`` is the posterior std per cell. No bounds (a bound would make it
        nonlinear). The evidence's χ²/N is the Bayesian expectation ``(N - p_eff) / N``
        (p_eff: ``result.solve_info``), below 1.

        **The assumptions**: those of :meth:`periodic` (the field is periodic on the mesh
        box, or on twice the box when the evidence says so) plus a Gaussian field with the given ℓ and ν;
        the harmonics (8, 8, 6) suit a box of about 4ℓ x 4ℓ x 2ℓ on a grid of at least
        16 x 16 x 12 cells; scale them with box/ℓ otherwise (``encoding_options``). Too
        few harmonics to fit the data to the target misfit are refused with an error.
        """
        base = dict(_matern_lattice(overrides, [8, 8, 6], 1.0), period_from_data=True,
                    depth=0, output="linear", bounds=None, init_value=None, weighting="none",
                    solver="linear", head_lambda="evidence", net_dtype="float64")
        return dataclasses.replace(cls(), **{**base, **overrides})

    @classmethod
    def compact(cls, **overrides) -> Self:
        """Compact bodies in a quiet background.

        A dense feature-grid INR with a minimum-support prior held at the target misfit.

        Field: a one-level hash-grid encoding of 32 cells per axis over the z-scored box
        (33³ vertices fit the 2^16 table, so it is a dense, collision-free trilinear
        feature grid with 2 features), an MLP of 1 x 32 (LeakyReLU), sigmoid output in
        (-600, 600) kg/m³ started at 0; no gradient weighting. Prior:
        ``regularization="min_support"`` (ε = 50 kg/m³, depth weight β = 1) in
        ``reg_mode="target"``; Adam lr 1e-2 for 2000 steps; the operator and loss in
        float32 (half the memory traffic of a dense G; its rounding is far below a 1%
        noise level).

        Set ``support_eps`` to about 1/8 of the expected contrast and ``bounds`` to the
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
    def auto(cls, **overrides) -> Self:
        """Compact bodies on any geometry: the scales come from the problem, not from a case.

        :meth:`compact`'s network and minimum-support prior held at the target misfit,
        with every depth measured vertically below the surface through the stations
        (``depth_from="station_surface"``: topography, draped or flat stations, station
        height and active cells need no setting, a body near the survey's edge is
        weighted as one under its centre, and cells beyond the stations as deep as the
        data's sensitivity there says), training started from the
        depth-weighted least-squares model at the target misfit
        (``warm_start="least_squares"``, β = 2: Li & Oldenburg's depth weighting for
        gravity, which offsets the 1/depth² decay of the kernel so that bodies can sit at
        any depth), and the support threshold ε cooled from the start's own amplitude
        over the first half of training (``support_cooling=0.5``), at most 1/12 of the
        largest bound magnitude (``support_eps=None``). Pass ``bounds`` (kg/m³).

        The compactness assumption is checked against the data (``prior_from_data``):
        when the least-squares image (β = ``smooth_power`` = 1 on cells of one size; on
        a graded mesh the start's own, β = 2, tested against smooth lattice fields as
        well as white cells) looks like a distributed field rather than sparse bodies,
        the model becomes a Gaussian (Matérn) field on
        a Fourier lattice, solved in closed form, whose period (the mesh box or twice
        it), correlation length and smoothness are those of largest evidence
        (:func:`gempy_gravinv.inversion._period.choose_lattice`; ℓ from 1/16 to 1/2 of
        the horizontal extent). ``result.prior_selection`` says which and why.

        Where no state of the compact model at the target misfit has white residuals, it
        trains again from the network's own start and keeps the run that explains the
        anomalies' shape (``start_fallback``; ``result.start_selection`` says why).
        ``start_fallback=False`` keeps the first run; another ``warm_start`` turns it off.
        On a graded mesh, where the kept run ends above the target misfit (its grid, spread
        over the whole mesh box, is too coarse for the fine cells), it trains again with the
        grid in the mesh's cell-index space (``coordinate_fallback``;
        ``result.coordinate_selection`` says why). On a graded mesh whose core extends a
        margin past the stations, the compact model trains on the core's cells and the
        padding holds the background (``compact_on_core``;
        ``result.prior_selection["cells"]``).

        ``auto(prior="compact")`` or ``auto(prior="smooth")`` sets the prior instead
        (``INRConfig.prior``; CLI ``invert --prior``) and keeps every other scale derived
        here: for a user who knows the sources are bodies in a quiet background, or a
        distributed field. ``result.prior_selection`` then says that the user set it.
        """
        base = dict(depth_from="station_surface", warm_start="least_squares", warm_start_power=2.0, support_eps=None,
                    support_cooling=0.5, prior_from_data=True, smooth_power=1.0, regional="auto",
                    start_fallback=True, coordinate_fallback=True, compact_on_core=True)
        return cls.compact(**{**base, **implied_overrides(overrides)})

    @classmethod
    def default(cls, survey: Survey | None = None, **overrides) -> Self:
        """The settings of a run that names no preset: :meth:`auto`, adapted to the survey.

        What :func:`~gempy_gravinv.invert_inr` uses with ``config=None`` and
        ``gempy-gravinv invert`` without ``--preset`` or ``--config``. For a survey with
        other components than g_z, depths are measured below the mesh top
        (``depth_from="mesh_top"``; pass ``depth_from="station_surface"`` to measure them
        below the stations) and no regional is fitted (one offset or plane cannot serve mGal and
        Eötvös data). ``INRConfig()`` itself is the plain network (:meth:`ours`), the base
        every preset overrides; a config file without a ``preset`` key starts from it.
        """
        if survey is not None and not survey.is_gz_only:
            overrides = {"depth_from": "mesh_top", "regional": "none", **overrides}
        return cls.auto(**overrides)

    @classmethod
    def ours(cls, **overrides) -> Self:
        """The general preset (the same as ``INRConfig()``), with overrides."""
        return dataclasses.replace(cls(), **overrides)

    @classmethod
    def preset(cls, name: str, **overrides) -> Self:
        """The preset called ``name`` (one of :data:`PRESETS`), with field overrides."""
        check_choice(name, PRESETS, name="preset")
        return getattr(cls, name)(**overrides)
