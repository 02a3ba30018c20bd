"""The closed-form setup's products of the design, without holding the design.

The setup (:mod:`gempy_gravinv.inversion._warmstart`) works with the whitened design
``A = G diag(s) / σ`` (n_data x n_cells, ``s`` the depth weight). Everything it needs of
``A`` is small: the Gram matrix ``A Aᵀ`` (n_data x n_data), the whitened response of a
uniform density ``G 1 / σ`` (n_data,) and one adjoint product ``Aᵀ v`` (n_cells,) per
least-squares model. Where the dense design does not fit in memory, these are formed
here from the sensitivity's rows, streamed from the operator
(:meth:`~gempy_gravinv.GravityOperator.dense_rows`) in float64:

- the Gram matrix by row panels: a panel of ``P`` rows of ``A`` is held while the rows
  after it stream past, ``K[p, q] = A_p A_qᵀ``; ``ceil(n / P)`` panels cost
  ``n_panels (n_panels + 1) / 2`` evaluations of the sensitivity;
- ``G 1 / σ`` in the first panel's pass;
- ``Aᵀ v`` in one more pass.

With the stations split over ranks, every rank streams the rows of a whole-survey
operator of its own and computes the same products (the dense path gathers G instead).

Each entry of ``A`` is formed as the dense path forms it, so the two differ only in the
order of the Gram's sums (round-off).
"""

from __future__ import annotations

import logging
import math
import time

import torch

logger = logging.getLogger(__name__)

#: Bytes per element of the n x n matrices the streamed setup holds at its peak: the Gram
#: (float64), its projection off the flat columns and that projection's temporaries, the
#: eigenvectors, the eigensolver's work space and the leave-one-out squares of the
#: eigenvectors.
GRAM_BYTES_PER_ENTRY = 56
#: The most row panels the Gram is built in (each one more pass over the later rows).
MAX_PANELS = 16
#: Rows of a stored (dense) sensitivity converted to float64 at once.
_STORED_BLOCK_BYTES = 64 << 20


def panel_rows(n_data: int, n_cells: int, budget: float) -> tuple[int, str | None]:
    """Rows of the whitened design held at once within ``budget`` bytes, or ``(0, why not)``.

    ``budget`` is what the setup may use; the n x n matrices
    (:data:`GRAM_BYTES_PER_ENTRY` bytes each) come first, the panel (8 bytes per entry)
    takes the rest. Refused when not one row fits or more than :data:`MAX_PANELS` panels
    would be needed.
    """
    n, N = int(n_data), int(n_cells)
    square = float(n) * n * GRAM_BYTES_PER_ENTRY
    rows = int(min(n, max(0.0, budget - square) // (8 * N)))
    if rows < 1:
        return 0, (f"its {n} x {n} Gram matrix needs about {square / 2**30:.1f} GiB with the setup's other n x n "
                   f"matrices, more than the {budget / 2**30:.1f} GiB the setup may use")
    panels = math.ceil(n / rows)
    if panels > MAX_PANELS:
        return 0, (f"streaming its rows would take {panels} panels of {rows} rows (at most {MAX_PANELS}) within "
                   f"the {budget / 2**30:.1f} GiB the setup may use")
    return rows, None


def _row_blocks(prob, start: int):
    """``(r0, r1, G[r0:r1])`` blocks of the problem's sensitivity from row ``start``, mGal per kg/m³.

    From ``prob.stream_rows``: the stored G (a tensor), or an operator with
    ``dense_rows`` (with the stations split over ranks, a whole-survey operator of each
    rank's own, :meth:`ShardedGravityOperator.whole`).
    """
    rows = prob.stream_rows
    if torch.is_tensor(rows):
        step = max(1, _STORED_BLOCK_BYTES // (8 * prob.mesh.n_cells))
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
        logger.debug("Gram panel %d/%d (rows %d-%d) after %.1f s", k + 1, len(starts), p0, p1,
                     time.perf_counter() - t0)
    return K, a0


@torch.no_grad()
def adjoint(prob, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``Aᵀ v`` (n_cells,) of ``A = G diag(s) / σ`` for a data-space vector ``v`` (n_data,), float64, one pass."""
    std = prob.std.to(device=s.device, dtype=torch.float64)
    u = v.to(device=s.device, dtype=torch.float64) / std
    out = torch.zeros(prob.mesh.n_cells, dtype=torch.float64, device=s.device)
    for r0, r1, block in _row_blocks(prob, 0):
        out += block.to(torch.float64).T @ u[r0:r1]
    return out * s
