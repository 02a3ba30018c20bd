"""The compact model on a graded mesh's core: the padding cells hold the background.

A mesh built as SimPEG users build theirs has a core of fine cells under the survey and
padding cells that grow outward beside and below it (an octree: coarse cells beyond its
finest ones). The padding keeps the mesh's edges away from the data. For the compact
model it is a trap: a padding cell holds a large volume for one cell's count in the
minimum-support prior, the optimiser moves a weakly sensitive cell as fast as a well
sensitive one, and a cell that has crossed the support threshold ε no longer feels the
prior (its penalty has saturated). Part of the field then goes into a thin skin of
mass in the padding and the bodies under the survey come out smeared.

With ``INRConfig.compact_on_core`` (on in :meth:`~gempy_gravinv.inversion.INRConfig.auto`)
the compact model trains on the cells of the mesh's core
(:func:`~gempy_gravinv.inversion._period.in_core`) and the cells beyond it hold the
background, 0 kg/m³: the compactness prior's "bodies in a quiet background", with the
bodies where the data resolve them. It applies where the core extends past the
outermost stations by a margin of ``max(h, L / 10)`` (``h`` the core's cell width, ``L``
the stations' larger horizontal extent; the margin of
:func:`~gempy_gravinv.mesh_from_survey`'s meshes), whose cells hold the sources just
beyond the edge stations: without it the padding is where those sources and the noise
of the edge stations go, and the compact model on the core alone puts them into the
core's edge cells instead. It also needs bounds that admit 0 and an operator that can
be restricted to the core's cells. The choices made on the whole mesh (the prior, the
regional, the noise level) stand. The smooth model keeps every cell: a distributed field
goes on beyond the survey, and its padding predicts stations beyond it.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch

from .._mesh import PrismMesh
from ..metrics import evaluate
from ._period import core_extent, in_core
from ._problem import Problem

logger = logging.getLogger(__name__)

#: The settings whose choices were made on the whole mesh, off for the run on the core
_DECIDED = dict(prior_from_data=False, noise="stated", period_from_data=False, check_stations=False)
#: The sentence the problem adds to the prior's rule where it cools ε (replaced by the core's own)
_EPS_SAID = "; minimum-support ε cooled"


class CoreField(torch.nn.Module):
    """A density field that is ``field`` inside the box ``box`` (6,) m and 0 kg/m³ beyond it."""

    def __init__(self, field: torch.nn.Module, box: np.ndarray) -> None:
        super().__init__()
        self.inner = field
        self.register_buffer("box", torch.as_tensor(np.asarray(box, dtype=np.float64)))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """Density contrast (n,) kg/m³ at ``points`` (n, 3) m: 0 outside the core's box."""
        v = self.inner(points)
        b = self.box.to(points)
        inside = torch.all((points >= b[0::2]) & (points <= b[1::2]), dim=1)
        return torch.where(inside, v, torch.zeros_like(v))


@dataclasses.dataclass
class Core:
    """The core of a graded mesh that a compact run trains on.

    Attributes
    ----------
    mesh : PrismMesh
        The whole mesh (the result's mesh).
    keep : numpy.ndarray of bool (n_cells,)
        The core's cells among ``mesh``'s.
    box : numpy.ndarray (6,)
        The core's box, m (west, east, south, north, bottom, top).
    """

    mesh: PrismMesh
    keep: np.ndarray
    box: np.ndarray

    def embed(self, values: np.ndarray | None) -> np.ndarray | None:
        """Values on the core's cells (..., n_core) spread over the whole mesh (..., n_cells), 0 beyond."""
        if values is None:
            return None
        v = np.asarray(values, dtype=np.float64)
        out = np.zeros(v.shape[:-1] + (self.mesh.n_cells,))
        out[..., self.keep] = v
        return out

    def report(self) -> dict:
        """What the run trained on: cells of the core and of the mesh, the core's box (m), and why."""
        n, k = int(self.keep.size), int(self.keep.sum())
        return dict(trained=k, mesh=n, box=[float(b) for b in self.box],
                    rule=f"the compact model trained on the mesh's core ({k} of {n} cells); the padding cells "
                         "beyond it hold the background, 0 kg/m³")


def core_of(prob: Problem, operator=None) -> Core | None:
    """The core the compact run of ``prob`` trains on, or None where it trains on every cell.

    None unless ``compact_on_core`` is set, the run is the compact model (the
    minimum-support prior trained by Adam on the config's own network), the mesh has a
    core smaller than it (:func:`~gempy_gravinv.inversion._period.in_core`) that
    extends past the outermost stations by the margin ``max(h, L / 10)`` on every side
    (``h`` the core's horizontal cell width, ``L`` the stations' larger horizontal
    extent), the bounds admit 0 kg/m³, and the operator is built here or held as a
    matrix whose columns can be taken.
    """
    cfg = prob.cfg
    if not (cfg.compact_on_core and cfg.regularization == "min_support" and cfg.solver == "adam"
            and prob.density is None):
        return None
    if operator is not None and (prob.G is None or prob.sharded):
        logger.info("compact model on every cell: the given operator cannot be restricted to the mesh's core")
        return None
    if cfg.bounds is not None and not cfg.bounds[0] <= 0.0 <= cfg.bounds[1]:
        return None
    keep = in_core(prob.mesh)
    if keep is None or keep.all() or keep.sum() < 2:
        return None
    box = core_extent(prob.mesh)
    xy = np.asarray(prob.survey.locations, dtype=np.float64)[:, :2]
    lo, hi = xy.min(0), xy.max(0)
    h = float(prob.mesh.cell_widths[keep, :2].max())
    margin = max(h, float((hi - lo).max()) / 10.0)
    gap = float(min((lo - box[0:4:2]).min(), (box[1:4:2] - hi).min()))
    if gap < margin * (1.0 - 1e-6):
        logger.info("compact model on every cell: the mesh's core extends %.4g m past the outermost stations, "
                    "less than the margin max(cell, extent / 10) = %.4g m its padding stands in for", gap, margin)
        return None
    return Core(mesh=prob.mesh, keep=keep, box=box)


def core_mesh(mesh: PrismMesh, keep: np.ndarray) -> PrismMesh:
    """The cells ``keep`` (bool (n_cells,)) of ``mesh`` as a mesh of their own, in the same order."""
    if mesh.source is not None:
        n_source = mesh.n_cells if mesh.active_cells is None else mesh.active_cells.size
        active = np.zeros(n_source, dtype=bool)
        active[mesh.full_index[keep]] = True
        return PrismMesh.from_discretize(mesh.source, active_cells=active)
    return PrismMesh(mesh.bounds[keep], check_overlap=False)


def on_core(prob: Problem, operator=None) -> tuple[Problem, Core | None]:
    """``(problem, core)``: the compact run of ``prob`` on its mesh's core, or ``(prob, None)``.

    The new problem keeps what ``prob`` chose on the whole mesh (the prior and its
    report, the regional, the noise level and its report, the lattice period) and
    builds its own start and support threshold on the core's cells.
    """
    core = core_of(prob, operator)
    if core is None:
        return prob, None
    cfg = dataclasses.replace(prob.cfg, **_DECIDED)
    held = prob.G is not None and not prob.sharded  # the columns of a held G; else the core's own operator
    op = prob.G[:, torch.as_tensor(np.flatnonzero(core.keep), device=prob.G.device)] if held else None
    sub = Problem(prob.survey, core_mesh(prob.mesh, core.keep), cfg, op, None)
    said = (sub.prior_selection or {}).get("rule", "")
    eps = said[said.find(_EPS_SAID) + 2:] if _EPS_SAID in said else ""
    first = dict(prob.prior_selection or dict(prior="compact", rule="the compactness prior as configured"))
    first.pop("support_eps", None)
    rule = first["rule"].split(_EPS_SAID)[0]
    sel = dict(first, cells=core.report(), rule=f"{rule}; {core.report()['rule']}" + (f"; {eps}" if eps else ""))
    if sub.prior_selection is not None and "support_eps" in sub.prior_selection:
        sel["support_eps"] = sub.prior_selection["support_eps"]
    sub.prior_selection = sel
    sub.regional_selection, sub.noise_estimate = prob.regional_selection, prob.noise_estimate
    sub.period_selection = prob.period_selection
    logger.info("%s", core.report()["rule"])
    return sub, core


def core_result(res, core: Core, config, true_model: np.ndarray | None):
    """The result of a run on ``core`` on the whole mesh: model, members and std there (0 beyond the core).

    The fields are wrapped to read 0 kg/m³ beyond the core's box, the settings that
    were decided on the whole mesh take their values in ``config`` (the run's settings
    there) back, and the metrics against ``true_model`` are those of the whole mesh.
    """
    res.model, res.members, res.std = core.embed(res.model), core.embed(res.members), core.embed(res.std)
    res.fields = [CoreField(f, core.box) for f in res.fields]
    res.config = dataclasses.replace(res.config, **{k: getattr(config, k) for k in _DECIDED})
    res.mesh, res.true_model = core.mesh, true_model
    if true_model is not None:
        res.metrics = evaluate(model=res.model, true=true_model, pred=res.predicted, survey=res.survey,
                               mesh=core.mesh, wall_time=res.timings["train"], device=res.timings["device"])
        res.metrics["residual_autocorrelation"] = res.residual_check
    return res
