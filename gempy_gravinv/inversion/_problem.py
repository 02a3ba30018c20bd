"""The inversion problem: data, forward operator, weighting, prior and the field to train.

Units: density contrast kg/m³; g_z mGal, positive downward; σ mGal.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging

import numpy as np
import torch

from .._device import available_memory
from .._distributed import (
    ShardedGravityOperator,
    all_gather_objects,
    all_reduce_gradients,
    all_reduce_sum,
    check_same_on_ranks,
    env_info,
    fingerprint,
    gather_blocks,
    launched_processes,
    rank,
    rank_device,
    run_on_all,
    split_counts,
    world_size,
)
from .._mesh import PrismMesh, as_prism_mesh
from .._multi import MultiComponentOperator, make_operator
from .._operator import GravityOperator, resolve_device
from .._survey import Survey
from ..density import VoxelDensity, as_torch_dtype, cached_on_points, cell_points, make_density
from ..metrics import RESIDUAL_Z, MoranI
from ._checkpoint import data_key
from ._config import INRConfig
from ._depth import MeshTopDepth, depth_weight, footprint, make_depth
from ._memory import EVAL_CHUNK
from ._noise import estimate_noise
from ._period import choose_period
from ._prior import null_count, select_prior, smooth_config
from ._regional import make_regional
from ._regularizers import make_regularizer
from ._streamed import ROW_BLOCK_BYTES, SetupPlan, plan_setup
from ._warmstart import choose_regional, fit_field, prior_test_bytes, start_from_choice, weighted_start

logger = logging.getLogger(__name__)

#: How a report begins where the user set the prior (``INRConfig.prior``).
_USER_SET = "set by the user (prior={!r}; the data's compact-or-smooth test not run): "

#: Field evaluation points (cells x quadrature points) from which a sharded run's training
#: step evaluates the field on a shard of the cells per rank and gathers the densities
#: (then the parameter gradients are all-reduced); below it every rank evaluates all cells.
SHARD_CELLS_FROM = 1 << 20


def _unit_std(survey: Survey, cfg: INRConfig) -> Survey:
    """``noise="estimate"`` and no std: σ = 1 mGal at every station (the estimate then scales it)."""
    if cfg.noise != "estimate" or not survey.has_data or survey.std is not None:
        return survey
    if not getattr(survey, "is_gz_only", True):
        raise ValueError("noise='estimate' without a std needs one unit for all data: the survey mixes "
                         "components (mGal and Eötvös); give the std of each")
    return survey.with_data(survey.gz, np.ones(survey.n_data))


class Problem:
    """What the members of one inversion share: data, operator, cell geometry, loss.

    Parameters
    ----------
    survey : Survey
        Stations with observed g_z (mGal, positive down) and std (mGal).
    mesh : PrismMesh or discretize mesh
        Cells the field is sampled on.
    cfg : INRConfig
        Settings (device, dtype, storage, weighting, regularisation, quadrature).
    operator : GravityOperator or array (n_data, n_cells), optional
        Forward operator to use instead of building one (mGal per kg/m³, positive down).
    density : torch.nn.Module or callable, optional
        The density backend to train instead of ``cfg.backend`` (see :meth:`make_field`).

    Notes
    -----
    Under an initialised ``torch.distributed`` process group of more than one rank the
    stations are sharded (:class:`~gempy_gravinv._distributed.ShardedGravityOperator`;
    ``operator`` may be one, a whole :class:`GravityOperator` or a matrix, which are then
    split): ``op`` is sharded, ``G`` is None, and the misfit sums the ranks' stations.
    The data ``d``/``std``, the cells, the field and the prior are replicated on every
    rank, so every rank takes the same optimiser steps. From :data:`SHARD_CELLS_FROM`
    evaluation points the training step also splits the cells: each rank evaluates the
    field on its shard, the densities are gathered, and the parameter gradients summed
    (:meth:`reduce_gradients`).
    """

    def __init__(self, survey: Survey, mesh, cfg: INRConfig, operator=None, density=None) -> None:
        if not isinstance(survey, Survey):
            raise TypeError(f"survey must be a gempy_gravinv.Survey, got {type(survey).__name__}")
        mesh = as_prism_mesh(mesh)
        self.sharded = world_size() > 1
        self.std_stated = survey.std is not None  # without one, noise='estimate' starts from σ = 1 mGal
        survey = run_on_all(lambda: _checked_survey(survey, cfg, self.sharded), "checking the data")
        if self.sharded:  # each rank read its own copy of the inputs: they must be the same
            check_same_on_ranks(dict(mesh=fingerprint(mesh.bounds), data=data_key(survey, mesh), settings=fingerprint(
                {k: v for k, v in cfg.to_dict().items() if k != "progress"})), "inputs", "every rank must read the "
                "same stations, data, std and mesh (one file on a shared file system, or identical copies) with "
                "the same settings")
        self.survey, self.mesh, self.cfg = survey, mesh, cfg
        launched = launched_processes()
        if not self.sharded and launched > 1:
            logger.warning("launched as %d processes but no process group is initialised: every process runs the "
                           "whole problem (call gempy_gravinv._distributed.init_distributed() first to shard "
                           "the stations)", launched)
        self.device = rank_device(cfg.device) if self.sharded else resolve_device(cfg.device)
        self.dtype = as_torch_dtype(cfg.dtype)
        tk = dict(device=self.device, dtype=self.dtype)
        self.op = None
        self.G = None
        chk = True if cfg.check_stations is None else bool(cfg.check_stations)
        if self.sharded:
            self.op = self._sharded_operator(operator, chk)
        elif operator is None:  # one operator per component when the survey mixes them
            self.op = make_operator(mesh, survey, device=self.device, dtype=self.dtype, store=cfg.store,
                                    check_stations=chk, progress=bool(cfg.progress))  # a bar while G is built
            if self.op.store == "dense" and isinstance(self.op, GravityOperator):  # the multi keeps its blocks
                self.G = self.op.dense()
        elif isinstance(operator, (MultiComponentOperator, ShardedGravityOperator)):
            self._check_shape(operator)
            self.op = operator
        elif isinstance(operator, GravityOperator):
            self._check_shape(operator)
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
        if isinstance(self.op, ShardedGravityOperator):  # this rank's stations
            self.d_local, self.std_local = self.d[self.op.start:self.op.stop], self.std[self.op.start:self.op.stop]
        pts, w = cell_points(mesh, cfg.quadrature)
        self.points = torch.as_tensor(pts, dtype=torch.float64, device=self.device)
        self.qweights = torch.as_tensor(w, **tk)
        self.depth = make_depth(cfg.depth_from, mesh, survey, cfg.depth_z0)
        self.density = density
        self._starts: dict[float, torch.Tensor | None] = {}
        self.grams: dict = {}  # β -> (σ, n x n Gram of the least-squares design) during the setup: see _warmstart
        self.posteriors: dict = {}  # β -> (σ, its factored ridge posterior without a regional) during the setup
        self.lattice_sums: dict = {}  # unscaled lattice sums (see _lattice_design), shared by selection and solve
        self._held: torch.Tensor | None = None  # the operator's G, held while the setup reads it (plan.hold)
        self._holding = True
        self._whole_op = None  # with the stations split over ranks: the whole-survey operator the setup reads
        self.prior_selection: dict | None = None
        self.regional_selection: dict | None = None
        self.setup_plan = self._plan_setup(cfg)
        if cfg.regional == "auto":
            self.cfg = cfg = self._choose_regional(cfg)
        self._data_model(cfg)
        start_from_choice(self, cfg)  # with a regional, then the choice's factors are released
        self.noise_estimate = self._noise(cfg) if cfg.noise != "stated" else None
        self.period_selection: dict | None = None
        if cfg.period_from_data and density is None:
            factor, self.period_selection = choose_period(
                self, cfg, self._fresh_field)
            self.cfg = cfg = dataclasses.replace(cfg, encoding_options={**cfg.encoding_options,
                                                                        "period_factor": factor})
        if cfg.prior == "smooth" and density is not None:
            raise ValueError("prior='smooth' models a Matérn lattice field in closed form; a given density "
                             "(backend) has its own model: leave prior unset")
        if cfg.prior_from_data:
            self.cfg = cfg = self._select_prior(cfg)
        elif (cfg.lattice_from_data or cfg.prior == "smooth") and density is None:
            user = cfg.prior == "smooth"
            cfg, lattice = smooth_config(self, cfg)
            self.cfg = cfg
            self.prior_selection = dict(prior="smooth", rule=(_USER_SET.format("smooth") if user else "")
                                        + lattice["rule"], lattice=lattice, set_by="user" if user else "config")
        elif cfg.prior == "compact":
            self.prior_selection = dict(prior="compact", rule=_USER_SET.format("compact") + "the minimum-support "
                                        "prior", set_by="user")
        self.shard_cells = self.sharded and self.points.shape[0] >= SHARD_CELLS_FROM
        self.cell_counts = split_counts(mesh.n_cells, world_size(), noun="cells") if self.shard_cells else None
        self.precond = self._preconditioner()
        self.moran = None  # the residual whiteness test of states during training (g_z data)
        if survey.is_gz_only and survey.n_data >= 6:  # sharded: every rank holds the gathered g_z
            self.moran = MoranI(survey.locations)
        self.test_white = bool(cfg.start_fallback)  # test in-band states for white residuals while training
        # the last closed-form step: computed now, while G is held; a cooled ε starts from it
        start = self.run_start()
        self.reg = make_regularizer(cfg, mesh, self.device, self.dtype, self.depth, start,
                                    self.under_survey if start is not None else None)
        if getattr(self.reg, "cooling_steps", 0):
            sched = self.reg.schedule()
            said = (f"minimum-support ε cooled from {sched['eps_start']:.3g} to {sched['eps_end']:.3g} kg/m³ "
                    f"over {sched['cooling_steps']} steps")
            logger.info(said)
            if self.prior_selection is None:  # the compactness prior as configured, not checked against the data
                self.prior_selection = dict(prior="compact", rule="the compactness prior as configured")
            self.prior_selection.update(support_eps=sched, rule=self.prior_selection["rule"] + "; " + said)
        self._holding, self._held = False, None
        for held in (self.grams, self.posteriors, *([self.lattice_sums] if self.cfg.solver != "linear" else [])):
            held.clear()  # n x n each, not held through training; a lattice's sums only for the closed-form solve

    def _plan_setup(self, cfg: INRConfig) -> SetupPlan:
        """How the closed-form setup reads its design: held, streamed, or not at all (:func:`plan_setup`).

        Decided once, before the setup fills memory, on the free memory of the device
        (with several ranks: each rank's share of its node's host memory, or its own
        GPU's, the smallest over the ranks, so that every rank takes the same path).
        Warned when refused and ``cfg`` asks for the setup (a least-squares start, the
        regional's or the prior's choice).
        """
        free = available_memory(self.device)
        if self.sharded:  # each rank reads the whole design: the node's host memory is shared by its ranks
            if self.device.type != "cuda":
                free //= max(1, env_info().local_world_size)
            free = min(all_gather_objects(int(free)))
        split = isinstance(self.op, ShardedGravityOperator)
        by_matrix = split and not isinstance(self.op.local, GravityOperator)  # a user's matrix split by rows
        source = None if self.op is None or by_matrix else self.op.local if split else self.op
        budget = int(source.memory_budget) if source is not None else ROW_BLOCK_BYTES
        self.setup_block_rows = max(1, budget // (8 * self.mesh.n_cells))  # rows of a held G read at once
        itemsize = torch.finfo(getattr(self.op, "dtype", self.dtype)).bits // 8  # of a G held (a matrix's own)
        test = prior_test_bytes(self.mesh.n_cells, nulls=null_count(self.mesh)) if cfg.prior_from_data else 0
        reserve = 2 * budget + test
        plan = plan_setup(self.survey.n_data, self.mesh.n_cells, self.device, free, stored=self.G is not None,
                          itemsize=itemsize, reserve=reserve, streamable=not by_matrix)
        self.setup_wanted = wanted = cfg.warm_start == "least_squares" or cfg.regional == "auto" or cfg.prior_from_data
        if plan.refusal is None and wanted:
            said = plan.describe(self.survey.n_data)
            logger.info("closed-form setup: the %d x %d design %s (%d panel(s) of %d rows; about %.2f GiB)",
                        self.survey.n_data, self.mesh.n_cells, said["design"], said["panels"], said["panel_rows"],
                        plan.peak_gib(self.survey.n_data, self.mesh.n_cells, itemsize, reserve))
        if plan.refusal is not None and wanted:
            logger.warning("no least-squares start, prior check or regional choice: %s. A compact inversion "
                           "without the start puts its mass near the stations", plan.refusal)
        return plan

    @property
    def design_refusal(self) -> str | None:
        """Why the closed-form setup cannot run (``setup_plan.refusal``), or None."""
        return self.setup_plan.refusal

    def setup_rows(self):
        """What the closed-form setup reads the sensitivity's rows from (mGal per kg/m³, positive down).

        The stored G; else (``setup_plan.hold``) the operator's G, built once and held
        until the setup ends (a later call builds it again); else the operator, whose
        ``dense_rows`` evaluate the kernels at every pass. With the stations split over
        ranks, the operator is a whole-survey one of this rank's own
        (:meth:`ShardedGravityOperator.whole`), and a user's matrix split by rows is
        gathered (collective).
        """
        if self.G is not None:
            return self.G
        split = isinstance(self.op, ShardedGravityOperator)
        if split and self._whole_op is None:
            self._whole_op = self.op.whole()  # None for a user's matrix
        op = self._whole_op if split else self.op
        if not self.setup_plan.hold:
            return op
        if self._held is None:
            G = (op if op is not None else self.op).dense()
            if not self._holding:
                return G
            self._held = G
        return self._held

    def _data_model(self, cfg: INRConfig) -> None:
        """The regional part of the data (``cfg.regional``), solved with the density."""
        self.regional = make_regional(cfg.regional, self.survey.locations, self.std)

    def _choose_regional(self, cfg: INRConfig) -> INRConfig:
        """``regional="auto"``: the regional of best leave-one-out prediction (every rank makes the same choice)."""
        self.regional_selection = choose_regional(self, cfg.warm_start_power)
        logger.info("%s", self.regional_selection["rule"])
        return dataclasses.replace(cfg, regional=self.regional_selection["kind"])

    def _noise(self, cfg: INRConfig) -> dict:
        """``cfg.noise`` = "report" or "estimate": the noise level from the data; "estimate" then targets it."""
        if self.sharded:
            raise ValueError(f"noise={cfg.noise!r} is not available with several ranks yet: estimate it in one "
                             "process (noise='report') and pass the std")
        est = estimate_noise(self, cfg, self._fresh_field)
        if cfg.noise == "estimate":
            self.std = self.std * est["scale"]
            self.survey = self.survey.with_data(self.survey.gz, self.std.detach().cpu().numpy())
            self._data_model(cfg)
        est["used"] = cfg.noise == "estimate"
        return est

    def predicted(self, m: torch.Tensor) -> tuple[torch.Tensor, dict | None]:
        """g_z at the stations (mGal) of cell densities m, with the best regional, and that regional."""
        g = self.forward(m)
        if self.regional is None:
            return g, None
        c = self.regional.fit(self.d - g)
        return g + self.regional.field(c), self.regional.describe(c)

    def residuals_white(self, m: torch.Tensor) -> bool:
        """Whether the residuals of cell densities ``m`` (with the regional) are spatially white.

        Moran's I of ``(d - G m) / σ`` over each station's 4 nearest, z-score at most
        :data:`~gempy_gravinv.metrics.RESIDUAL_Z`; True without the test.
        """
        if self.moran is None:
            return True
        with torch.no_grad():
            z = (self.d - self.predicted(m)[0]) / self.std  # the score alone: no p-value on this path
            return self.moran.zscore(self.moran.statistic(z)) <= RESIDUAL_Z

    def _check_shape(self, op) -> None:
        if op.n_cells != self.mesh.n_cells or op.n_data != self.survey.n_data:
            raise ValueError(f"operator maps {op.n_cells} cells to {op.n_data} data; "
                             f"mesh has {self.mesh.n_cells} cells, survey {self.survey.n_data} stations")

    def _sharded_operator(self, operator, check_stations: bool) -> ShardedGravityOperator:
        """The stations split over the ranks: built here, or the given operator split."""
        cfg = self.cfg
        if operator is None:
            return ShardedGravityOperator(self.mesh, self.survey, device=self.device, dtype=self.dtype,
                                          store=cfg.store, check_stations=check_stations)
        if isinstance(operator, ShardedGravityOperator):
            self._check_shape(operator)
            return operator
        if isinstance(operator, GravityOperator):
            self._check_shape(operator)
            return ShardedGravityOperator.from_operator(operator)
        G = torch.as_tensor(np.asarray(operator) if not torch.is_tensor(operator) else operator)
        return ShardedGravityOperator.from_matrix(G.to(device=self.device, dtype=self.dtype), self.mesh,
                                                  self.survey)

    def parallel_info(self) -> dict:
        """``world_size`` and ``rank_stations`` (stations per rank) of this problem's operator."""
        if isinstance(self.op, ShardedGravityOperator):
            return dict(world_size=self.op.world_size, rank_stations=list(self.op.counts))
        return dict(world_size=1, rank_stations=[int(self.survey.n_data)])

    def variant(self, **changes) -> Problem:
        """A copy of the problem with settings changed (data, operator, depth, prior and regional shared).

        For a second run of the same inversion, e.g. ``variant(warm_start="none")``.
        """
        other = copy.copy(self)
        other.cfg = dataclasses.replace(self.cfg, **changes)
        other.cfg.validate()
        return other

    def make_field(self, seed: int) -> torch.nn.Module:
        """A fresh density field for one member, seeded with ``seed``, on the problem's device.

        With ``density`` given: a module is deep-copied (the caller's is not modified),
        a factory ``density(mesh, seed)`` is called. Otherwise ``cfg.backend`` is built
        from :meth:`INRConfig.field_options`, wrapped in :class:`DepthScaledField` for
        ``weighting_mode="output"``.
        """
        fld = make_field(self.cfg, self.mesh, seed, self.device, self.density, self.depth)
        start = self.run_start()
        if start is not None:
            fit_field(self, fld, start, steps=self.cfg.warm_start_steps, lr=self.cfg.lr)
        return fld

    @functools.cached_property
    def under_survey(self) -> np.ndarray:
        """Which cells (bool (n_cells,)) lie under the stations' horizontal convex hull (:func:`footprint`)."""
        return footprint(self.survey.locations, self.mesh.cell_centers)

    def _select_prior(self, cfg: INRConfig) -> INRConfig:
        """``prior_from_data``: keep the compactness prior or take the smooth model (:func:`select_prior`)."""
        cfg, self.prior_selection = select_prior(self, cfg)
        return cfg

    def run_start(self) -> torch.Tensor | None:
        """The model (n_cells,) kg/m³ the runs start from: the least-squares start with ``warm_start="least_squares"``.

        None without a warm start, or where the problem is too large for one.
        """
        return self.least_squares_start() if self.cfg.warm_start == "least_squares" else None

    def least_squares_start(self, beta: float | None = None) -> torch.Tensor | None:
        """The depth-weighted least-squares model at the target misfit (n_cells,) kg/m³.

        ``beta`` is the exponent of the depth weight (default ``cfg.warm_start_power``);
        each is computed once. None when the problem is too large for it (see
        :mod:`gempy_gravinv.inversion._warmstart`).
        """
        beta = float(self.cfg.warm_start_power if beta is None else beta)
        if beta not in self._starts:
            self._starts[beta] = weighted_start(self, beta, self.cfg.target_chi2)
        return self._starts[beta]

    # -------------------------------------------------------------- physics
    def forward(self, m: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Differentiable g_z (mGal) of cell densities m (n_cells,), optionally a row subset.

        Sharded: the whole g_z, gathered on every rank (the gradient of a replicated loss
        of it is exact).
        """
        if isinstance(self.op, ShardedGravityOperator):
            g = self.op.gathered(m)
            return g if rows is None else g[rows]
        if self.G is not None:
            return (self.G if rows is None else self.G[rows]) @ m
        g = self.op(m)
        return g if rows is None else g[rows]

    def chi2(self, m: torch.Tensor, rows=None) -> torch.Tensor:
        """χ²/N (dimensionless) of cell densities m (n_cells,) kg/m³, over all stations or ``rows``.

        Sharded: each rank sums its own stations and the sums are all-reduced; the value
        is the whole χ²/N on every rank, and its gradient (after the operator's
        all-reduced adjoint) is the whole gradient.
        """
        if self.sharded:  # (one process with a ShardedGravityOperator: the whole path below)
            return self._sharded_chi2(m, rows)
        d = self.d if rows is None else self.d[rows]
        s = self.std if rows is None else self.std[rows]
        r = (self.forward(m, rows) - d) / s
        if self.regional is not None:  # the misfit after the best regional
            r = self.regional.project(r, rows)
        return (r**2).mean()

    def _fresh_field(self, cfg: INRConfig) -> torch.nn.Module:
        """A field of ``cfg`` (its own backend, seeded with ``cfg.seed``) on this problem's mesh and device."""
        return make_field(cfg, self.mesh, int(cfg.seed), self.device, None, self.depth)

    def whiten(self, design: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(design / σ, d / σ)`` in the design's dtype, projected off the regional's columns.

        The whitened form every closed-form solver uses: ``design`` (n_data, k) holds
        g_z columns (mGal per unit of each column); with ``cfg.regional`` the projection
        integrates the regional out of the Gaussian likelihood.
        """
        s = self.std.to(design)
        A, b = design / s[:, None], self.d.to(design) / s
        if self.regional is not None:
            A, b = self.regional.project(A), self.regional.project(b)
        return A, b

    def _sharded_chi2(self, m: torch.Tensor, rows) -> torch.Tensor:
        g = self.op(m)
        d, s, n = self.d_local, self.std_local, self.survey.n_data
        if rows is not None:
            mine = self.op.local_rows(rows)
            g, d, s, n = g[mine], d[mine], s[mine], int(rows.shape[0])
        r = (g - d) / s
        if self.regional is not None:  # off the regional's columns (this rank's rows of the basis): Qᵀ r all-reduced
            Q = self.regional.Q if rows is None else self.regional._basis(rows)
            Q = Q[self.op.start:self.op.stop] if rows is None else Q[(rows >= self.op.start) & (rows < self.op.stop)]
            Q = Q.to(r)
            r = r - Q @ all_reduce_sum((Q.T @ r).detach())  # exact gradient: Σ_ranks Q_rᵀ (r_r - Q_r c) = 0
        local = (r**2).sum()
        total = all_reduce_sum(local.detach().clone())
        return (local + (total - local.detach())) / n  # value: the whole sum; gradient: this rank's part

    def cell_density(self, fld: torch.nn.Module, *, shard: bool = False) -> torch.Tensor:
        """Cell-average density of a field (n_cells,) in the operator dtype.

        ``shard`` (the training step; a collective): with :attr:`shard_cells`, each rank
        evaluates its shard of the cells and the values are gathered; the caller must
        then :meth:`reduce_gradients` after the backward pass.
        """
        voxel = isinstance(fld, VoxelDensity) or isinstance(getattr(fld, "base", None), VoxelDensity)
        if shard and self.shard_cells and torch.is_grad_enabled() and not voxel:  # a voxel lookup: nothing to split
            n, counts = self.mesh.n_cells, self.cell_counts
            nq = self.points.shape[0] // n
            c0 = sum(counts[:rank()])
            v = fld(self.points[c0 * nq:(c0 + counts[rank()]) * nq]).to(self.dtype).reshape(counts[rank()], nq)
            v = gather_blocks(v, counts)
            return v[:, 0] if nq == 1 else (v * self.qweights).sum(1)
        if isinstance(fld, DepthScaledField) and isinstance(fld.base, VoxelDensity):
            s = fld.scale_at(torch.as_tensor(self.mesh.cell_centers))
            v = fld.base.output(s.to(device=fld.base.values.device, dtype=fld.base.values.dtype) * fld.base.values)
        elif isinstance(fld, VoxelDensity) and self.cfg.quadrature == 1:
            v = fld.on_mesh(self.mesh)
        elif not torch.is_grad_enabled() and self.points.shape[0] > EVAL_CHUNK:  # no backward: in blocks
            v = torch.cat([fld(self.points[a:a + EVAL_CHUNK]) for a in range(0, self.points.shape[0], EVAL_CHUNK)])
        else:
            v = fld(self.points)
        v = v.to(self.dtype).reshape(self.mesh.n_cells, -1)
        return v[:, 0] if v.shape[1] == 1 else (v * self.qweights).sum(1)

    def reduce_gradients(self, fld: torch.nn.Module) -> None:
        """After a backward pass through ``cell_density(fld, shard=True)``: sum the gradients over the ranks."""
        if self.shard_cells:
            all_reduce_gradients(fld)

    # -------------------------------------------------------------- weighting
    def _preconditioner(self) -> torch.Tensor | None:
        cfg = self.cfg
        if cfg.weighting == "none" or (cfg.weighting == "depth" and cfg.weighting_mode == "output"):
            return None
        beta = float(cfg.weighting_power)
        if cfg.weighting == "depth":
            cc = torch.as_tensor(self.mesh.cell_centers)
            p = depth_weight(self.depth, cc, 2 * beta).to(device=self.device, dtype=self.dtype)
        else:
            if self.G is not None:
                jtj = ((self.G / self.std[:, None]) ** 2).sum(0)
            else:
                jtj = self.op.jtj_diag(1.0 / self.std)
            jtj = jtj / jtj.max()
            p = jtj.clamp_min(1e-12) ** (-beta / 2)
        return p / p.max()

    # -------------------------------------------------------------- regularisation
    def regularizer(self, m: torch.Tensor, step: int | None = None) -> torch.Tensor:
        """R(m) of ``cfg.regularization`` (dimensionless) for cell densities m (kg/m³).

        ``step``: the number of steps the prior has acted, for a prior that changes with
        it (a cooled minimum-support ε); None: its final form.
        """
        return self.reg(m, step)


def _checked_survey(survey: Survey, cfg: INRConfig, sharded: bool) -> Survey:
    """The survey with its std (see :func:`_unit_std`); refused without data, or with settings for g_z alone."""
    survey = _unit_std(survey, cfg)
    if not survey.has_data or survey.std is None:
        raise ValueError("invert_inr needs observed data with uncertainties: "
                         "Survey(locations, gz=... mGal, std=... mGal), or noise='estimate'")
    if survey.is_gz_only:
        return survey
    comps = ", ".join(survey.component_groups())
    if cfg.depth_from == "stations":
        raise ValueError(f"depth_from='stations' derives depths from g_z point-mass sensitivities, but the survey "
                         f"holds {comps}: use depth_from='station_surface' or 'mesh_top'")
    if len(survey.component_groups()) > 1 and cfg.regional != "none":
        raise ValueError(f"regional={cfg.regional!r} fits one offset/plane to all data, but the survey mixes "
                         f"{comps} (mGal and Eötvös): use regional='none'")
    if sharded and len(survey.component_groups()) > 1:
        raise ValueError(f"several ranks shard one component's stations; this survey mixes {comps}: run it in "
                         "one process")
    return survey


class DepthScaledField(torch.nn.Module):
    """``m(x) = bound(s(x) · raw(x))`` with the depth weight ``s = (d(x) / d_ref)^(β/2)``.

    Wraps a backend with ``raw(points)`` and ``output`` (INRDensity) or ``values`` and
    ``output`` (VoxelDensity): the depth-weighting reparametrisation of
    :class:`INRConfig` (``weighting_mode="output"``); ``d`` is a depth model of
    :mod:`gempy_gravinv.inversion._depth` (below the mesh top, or below the stations).
    ``forward(points)`` returns the density contrast (n,) in kg/m³ at points (n, 3) in
    metres, z up.
    """

    def __init__(self, base: torch.nn.Module, depth, beta: float) -> None:
        super().__init__()
        if not hasattr(base, "output") or not (hasattr(base, "raw") or hasattr(base, "values")):
            raise TypeError(f"weighting_mode='output' needs a backend with raw()/values and output; "
                            f"{type(base).__name__} has not: use weighting_mode='gradient'")
        self.base = base
        self.depth = depth
        self.beta = float(beta)

    def scale_at(self, points: torch.Tensor) -> torch.Tensor:
        """s(x) (n,), dimensionless, float64: 1 at the reference depth, growing with depth."""
        p = torch.as_tensor(points).detach().to(torch.float64)
        return cached_on_points(self, p, lambda u: depth_weight(self.depth, u.cpu(), self.beta))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        p = torch.as_tensor(points)
        if hasattr(self.base, "raw"):
            raw = self.base.raw(p)
        else:
            raw = self.base.values[torch.as_tensor(self.base.cell_index(p), device=self.base.values.device)]
        s = self.scale_at(p).to(device=raw.device, dtype=raw.dtype)
        return self.base.output(s * raw)


def make_field(cfg: INRConfig, mesh: PrismMesh, seed: int, device, factory=None, depth=None) -> torch.nn.Module:
    """A density field for ``cfg`` on ``mesh`` (see :meth:`Problem.make_field`).

    ``depth`` is the depth model of ``weighting_mode="output"`` (default: below the mesh top).
    """
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
        fld = DepthScaledField(fld, depth if depth is not None else MeshTopDepth(mesh, cfg.depth_z0),
                               cfg.weighting_power)
    return fld.to(device)
