"""The closed-form setup's products of the design, from the sensitivity's rows.

The setup (:mod:`gempy_gravinv.inversion._warmstart`) works with the whitened design
``A = G diag(s) / σ`` (n_data x n_cells, ``s`` the prior scale of each cell). Everything
it needs of ``A`` is small: the Gram matrix ``A Aᵀ`` (n_data x n_data), the whitened
response of a uniform density ``G 1 / σ`` (n_data,) and one adjoint product ``Aᵀ v``
(n_cells,) per least-squares model. They are formed here from the rows of G, read in
blocks and converted to float64:

- the Gram matrix by row panels: a panel of ``P`` rows of ``A`` is held while the rows
  after it pass, ``K[p, q] = A_p A_qᵀ``; ``ceil(n / P)`` panels read the rows
  ``k (k + 1) / 2`` times;
- ``G 1 / σ`` in the first panel's pass;
- ``Aᵀ v`` in one more pass.

Where the rows come from (:func:`plan_setup`): a G the operator stores; else the
operator's G held through the setup where it fits (one evaluation of the kernels); else
the operator itself, whose kernels are evaluated again at every pass. With the stations
split over ranks, every rank reads the rows of a whole-survey operator of its own
(:meth:`~gempy_gravinv._distributed.ShardedGravityOperator.whole`), or of the gathered
G where the split is of a user's matrix, and computes the same products.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import torch

from .._device import available_memory

logger = logging.getLogger(__name__)

#: The setup may take at most this fraction of the device's free memory.
DESIGN_MEMORY_FRACTION = 0.75
#: Largest ``n_data² x n_cells`` (multiply-adds of one Gram matrix ``A Aᵀ`` of the design).
MAX_GRAM_MULTIPLY_ADDS = 1e13
#: Bytes per element of the n x n matrices the setup holds at its peak: the Gram (float64),
#: its projection off the flat columns and that projection's temporaries, the eigenvectors,
#: the eigensolver's work space, the leave-one-out squares of the eigenvectors, and the
#: eigenvectors of the regional's choice, held for the start where it chose none.
GRAM_BYTES_PER_ENTRY = 64
#: The most row panels the Gram is built in (each one more pass over the later rows).
MAX_PANELS = 16
#: Bytes of a block of rows read at once from a user's matrix (operators read in their own blocks).
ROW_BLOCK_BYTES = 64 << 20


@dataclass(frozen=True)
class SetupPlan:
    """How the closed-form setup reads its design (:func:`plan_setup`).

    Attributes
    ----------
    panel_rows : int or None
        Rows of the whitened design held at once (float64); None when refused.
    hold : bool
        Whether the operator's G is built once and held through the setup (else its
        kernels are evaluated at every pass; a stored G is always read where it is).
    refusal : str or None
        Why the setup cannot run (a sentence), or None.
    """

    panel_rows: int | None
    hold: bool
    refusal: str | None

    def describe(self, n_data: int) -> dict:
        """For reports: ``design``, ``panel_rows``, ``panels`` and ``reason`` (or None).

        ``design``: ``"in memory"`` (one panel of every row), ``"streamed"`` (several
        panels) or ``"refused"``.
        """
        if self.refusal:
            return dict(design="refused", panel_rows=None, panels=None, reason=self.refusal)
        panels = math.ceil(int(n_data) / self.panel_rows)
        return dict(design="in memory" if panels == 1 else "streamed", panel_rows=self.panel_rows, panels=panels,
                    reason=None)

    def peak_gib(self, n_data: int, n_cells: int, itemsize: int = 4, reserve: int = 0) -> float:
        """The memory the plan counts on (GiB): the n x n matrices, a panel, a held G and ``reserve`` bytes."""
        n, N = int(n_data), int(n_cells)
        rows = self.panel_rows or 0
        held = n * N * itemsize if self.hold else 0
        return (float(n) * n * GRAM_BYTES_PER_ENTRY + 8.0 * rows * N + held + reserve) / 2**30


def plan_setup(n_data: int, n_cells: int, device: torch.device, free: int | None = None, *, stored: bool = False,
               itemsize: int = 4, reserve: int = 0, streamable: bool = True) -> SetupPlan:
    """How the closed-form setup reads its ``n_data x n_cells`` design, on its memory and cost.

    Within :data:`DESIGN_MEMORY_FRACTION` of the free memory of ``device`` (``free``
    bytes when given), less ``reserve`` bytes (the blocks in which rows are read), the
    n x n matrices come first (:data:`GRAM_BYTES_PER_ENTRY` bytes each). Then, where G
    is not ``stored``: hold the operator's G (``itemsize`` bytes per entry) and one panel
    of every row (8 bytes per entry) if both fit; else, where ``streamable``, read the
    operator's rows at every pass in panels that fit, at most :data:`MAX_PANELS`.
    Refused where none of that fits, or one Gram product costs more than
    :data:`MAX_GRAM_MULTIPLY_ADDS` multiply-adds.
    """
    n, N = int(n_data), int(n_cells)
    if float(n) ** 2 * N > MAX_GRAM_MULTIPLY_ADDS:
        return SetupPlan(None, False, f"one Gram matrix of the {n} x {N} design costs {float(n) ** 2 * N:.1e} "
                                      f"multiply-adds, above {MAX_GRAM_MULTIPLY_ADDS:.0e}, a cap on time, not "
                                      "memory: fewer stations (the cost grows with their square) or cells")
    free = available_memory(device) if free is None else int(free)
    budget = DESIGN_MEMORY_FRACTION * free - reserve - float(n) * n * GRAM_BYTES_PER_ENTRY
    row = 8.0 * N
    hold = not stored and budget >= n * (row + itemsize * N)
    if hold or (stored or streamable) and budget >= row:
        rows = n if hold else int(min(n, budget // row))
        if math.ceil(n / rows) <= MAX_PANELS:
            return SetupPlan(rows, hold, None)
    need = float(n) * n * GRAM_BYTES_PER_ENTRY + reserve + (row if stored or streamable else n * (row + itemsize * N))
    what = "one row of its design" if stored or streamable else "its design held"
    return SetupPlan(None, False, f"the {n} x {N} design's n x n matrices and {what} need "
                                  f"{need / 2**30:.2f} GiB (or more than {MAX_PANELS} panels), more than "
                                  f"{DESIGN_MEMORY_FRACTION:g} of the {free / 2**30:.2f} GiB free on {device}: "
                                  "more memory (or a GPU), fewer cells or fewer stations")


def _row_blocks(prob, start: int):
    """``(r0, r1, G[r0:r1])`` blocks of the problem's sensitivity from row ``start``, mGal per kg/m³.

    From :meth:`Problem.setup_rows`: a tensor (a stored or held G, read in blocks of
    ``prob.setup_block_rows`` rows) or an operator with ``dense_rows``.
    """
    rows = prob.setup_rows()
    if torch.is_tensor(rows):
        step = prob.setup_block_rows
        for r0 in range(start, prob.survey.n_data, step):
            r1 = min(prob.survey.n_data, r0 + step)
            yield r0, r1, rows[r0:r1]
        return
    yield from rows.dense_rows(start)


def _whitened(rows: torch.Tensor, s: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``G_rows diag(s) / σ_rows`` in float64, each entry as the dense setup forms it."""
    return (rows.to(torch.float64) * s[None, :]).div_(std[:, None])


@torch.no_grad()
def gram(prob, s: torch.Tensor, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A Aᵀ (n_data, n_data), G 1 / σ (n_data,))`` of ``A = G diag(s) / σ``, float64, in panels of ``rows`` rows.

    Parameters
    ----------
    prob : Problem
        Sensitivity (its operator or stored G, mGal per kg/m³) and σ (mGal).
    s : Tensor (n_cells,)
        The prior scale of each cell (dimensionless).
    rows : int
        Rows of ``A`` held at once (:func:`panel_rows`).
    """
    n, N = prob.survey.n_data, prob.mesh.n_cells
    std = prob.std.to(device=s.device, dtype=torch.float64)
    K = torch.empty((n, n), dtype=torch.float64, device=s.device)
    a0 = torch.empty(n, dtype=torch.float64, device=s.device)
    t0 = time.perf_counter()
    starts = range(0, n, max(1, int(rows)))
    for k, p0 in enumerate(starts):
        p1 = min(n, p0 + int(rows))
        panel = torch.empty((p1 - p0, N), dtype=torch.float64, device=s.device)
        for r0, r1, block in _row_blocks(prob, p0):
            if p0 == 0:  # the first pass sees every row
                a0[r0:r1] = block.to(torch.float64).sum(1) / std[r0:r1]
            if r0 < p1:  # (part of) the panel
                panel[r0 - p0:min(r1, p1) - p0] = _whitened(block[:min(r1, p1) - r0], s, std[r0:min(r1, p1)])
                if r1 >= p1:
                    K[p0:p1, p0:p1] = panel @ panel.T
            if r1 > p1:  # rows after the panel
                q0 = max(r0, p1)
                cross = panel @ _whitened(block[q0 - r0:], s, std[q0:r1]).T
                K[p0:p1, q0:r1] = cross
                K[q0:r1, p0:p1] = cross.T
        del panel
        (logger.info if len(starts) > 1 else logger.debug)("Gram panel %d/%d (rows %d-%d) after %.1f s", k + 1,
                                                           len(starts), p0, p1, time.perf_counter() - t0)
    return K, a0


@torch.no_grad()
def adjoint(prob, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``Aᵀ v`` of ``A = G diag(s) / σ``, float64, one pass over the rows.

    ``v``: a data-space vector (n_data,) or several as columns (n_data, k); the result
    is (n_cells,) or (n_cells, k).
    """
    std = prob.std.to(device=s.device, dtype=torch.float64)
    u = v.to(device=s.device, dtype=torch.float64)
    u = u / (std if u.dim() == 1 else std[:, None])
    out = torch.zeros((prob.mesh.n_cells,) + tuple(u.shape[1:]), dtype=torch.float64, device=s.device)
    for r0, r1, block in _row_blocks(prob, 0):
        out += block.to(torch.float64).T @ u[r0:r1]
    return out * (s if u.dim() == 1 else s[:, None])
