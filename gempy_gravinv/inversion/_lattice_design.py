"""The design ``G Φ`` of a Fourier-lattice field, by sums that separate over the axes.

A periodic-encoding feature is ``a_n [sin, cos](2π n·t(x))``, ``t`` an affine map of each
axis of its own (:class:`~gempy_gravinv.density._encodings.PeriodicEncoding`), in periods.
A prism carries one density, so a cell's value of the feature is its mean over the cell:
``e^{2πi n·t}`` averaged over a box is ``Π_a e^{2πi n_a t_a(c)} sinc(n_a Δt_a)`` (``Δt_a``
the cell's width in periods, ``sinc(x) = sin(πx)/(πx)``). The lattice describes one
period centred on its box; beyond it (the far padding of a lattice on a padded mesh's
core) a point would repeat one already used, so the field is its mean there (0), and a
cell across the window's edge averages only its part inside (:func:`axis_means`).

At cell centres on a tensor grid, these factors depend on one axis' index each, so the
sum over the cells of one row of the sensitivity,

``S_r(n) = Σ_c G[r, c] Π_a M_a(c, n_a)``,

is three small matrix products, one per axis, of the row laid out on the grid; the
features' sums are ``Im S_r(n)`` (sines) and ``Re S_r(n)`` (cosines). The cost is about
``n_data · n_grid · (2K_x + 1)`` multiply-adds (``n_grid`` the tensor grid's nodes,
``K_x`` the harmonics along x) instead of ``n_data · n_cells · F`` for ``F`` features, and
no ``n_cells x F`` feature array is formed. It applies to a one-layer periodic field
whose cells lie on a tensor grid (tensor meshes, with or without inactive cells);
:meth:`SeparableLattice.of` returns None otherwise and the caller takes the same cell
means cell by cell (:func:`cell_features`).

The sums do not depend on the amplitudes ``a_n``: a problem that holds a dict
``lattice_sums`` keeps them, keyed by the lattice's waves and its cells' spans in
periods, so the model selection's lattices and the closed-form solve that follows share
them (at most :data:`SUMS_CACHE_BYTES` in all, the least recently used dropped first).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Iterable

import numpy as np
import torch

from ..density._encodings import PeriodicEncoding

#: Largest grid (nodes) per cell for which the separable sums are used: a tensor mesh has
#: one node per cell, an active subset under topography a few; an octree's grids (one
#: per cell size, each over the box of its cells) a few.
GRID_PER_CELL = 8
#: Most cell sizes (groups of one tensor grid each) the separable sums take.
MAX_GROUPS = 64
#: Largest intermediate array of one block of rows, bytes (complex128).
BLOCK_BYTES = 256 * 2**20
#: Most bytes of unscaled sums a problem's ``lattice_sums`` keeps for reuse.
SUMS_CACHE_BYTES = 256 * 2**20


def _axis_grid(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of one axis' ``t`` over the cells (sorted) and each cell's index into them."""
    values, index = np.unique(t, return_inverse=True)
    return values, index.reshape(-1)


def is_lattice_field(field: torch.nn.Module) -> bool:
    """Whether ``field`` is a one-layer periodic field (a periodic encoding, no hidden layer)."""
    mlp = getattr(field, "mlp", None)
    return (isinstance(getattr(field, "encoding", None), PeriodicEncoding) and isinstance(mlp, torch.nn.Sequential)
            and len(mlp) == 0)


def _cell_spans(field: torch.nn.Module, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(t_lo, t_hi, centre)``: the cells' faces (n, 3) and the box's centre (3,) in periods of the lattice."""
    enc = field.encoding

    def to_t(x):
        u = field.normalizer(torch.as_tensor(np.array(x, dtype=np.float64)).to(field.normalizer.center.device))
        return ((u - enc.lo.to(u)) / (enc.hi - enc.lo).to(u)).cpu().numpy()

    with torch.no_grad():
        t_lo, t_hi = to_t(bounds[:, 0::2]), to_t(bounds[:, 1::2])
    return t_lo, t_hi, np.full(3, 0.5 / float(getattr(field, "period_factor", 1.0)))


def axis_means(t_lo: np.ndarray, t_hi: np.ndarray, centre: float, k: int) -> torch.Tensor:
    """``M (N, 2k+1)`` complex128: the mean over each cell ``[t_lo, t_hi]`` (periods) of ``e^{2πi n t}``, n = -k..k.

    Only the cell's part inside the window ``[centre - 1/2, centre + 1/2]`` (one period
    centred on the box) counts; the field is 0 outside it: ``M = f e^{2πi n t_o} sinc(n w_o)``
    with ``w_o``, ``t_o`` the width and centre of that part and ``f`` its fraction of the cell.
    """
    lo, hi = np.maximum(t_lo, centre - 0.5), np.minimum(t_hi, centre + 0.5)
    w = np.clip(hi - lo, 0.0, None)
    frac = torch.as_tensor(w / (t_hi - t_lo))[:, None]
    harm = torch.arange(-k, k + 1, dtype=torch.float64)[None, :]
    mid = torch.as_tensor((lo + hi) / 2)[:, None]
    return frac * torch.exp(2j * math.pi * mid * harm) * torch.sinc(harm * torch.as_tensor(w)[:, None])


def _wave_integers(field: torch.nn.Module) -> torch.Tensor:
    """The lattice's wave vectors as integers per axis (W, 3) int64."""
    return torch.round(field.encoding.wave.to(torch.float64).cpu() / (2 * math.pi)).to(torch.int64)


def cell_features(field: torch.nn.Module, bounds: np.ndarray) -> torch.Tensor:
    """The cell means of a one-layer periodic field's features ``(n, 2W)`` float64, cell by cell.

    ``bounds`` (n, 6) m: the cells. The sines' columns, then the cosines', times the
    amplitudes, as the field's own features are ordered; the means of :func:`axis_means`.
    """
    n = _wave_integers(field)
    t_lo, t_hi, centre = _cell_spans(field, np.asarray(bounds, dtype=np.float64))
    s = torch.ones(t_lo.shape[0], n.shape[0], dtype=torch.complex128)
    for a in range(3):
        k = int(n[:, a].abs().max())
        s = s * axis_means(t_lo[:, a], t_hi[:, a], float(centre[a]), k)[:, n[:, a] + k]
    amp = field.encoding.amp.detach().to(torch.float64).cpu()
    return torch.cat([amp * s.imag, amp * s.real], dim=1)


class _Grid:
    """Cells on one tensor grid.

    ``cells``: which cells (indices, or ``slice(None)`` for all in order); ``shape``: the grid's; ``flat``: each
    cell's node; ``exps``: the axis means at the grid's nodes, one ``(N_a, M_a)`` per axis.
    """

    def __init__(self, cells, shape, flat, exps) -> None:
        self.cells, self.shape, self.flat, self.exps = cells, shape, flat, exps
        self.back = [e.T for e in exps]  # (M_a, N_a)


def _tensor_grid(t_lo: np.ndarray, t_hi: np.ndarray) -> tuple[list, tuple, list] | None:
    """``(axes, shape, spans)`` of cells ``[t_lo, t_hi]`` (n, 3) on a tensor grid of their centres, or None.

    None where cells of one centre along an axis have different widths there (no tensor grid).
    """
    axes = [_axis_grid(np.round((t_lo[:, a] + t_hi[:, a]) / 2, 12)) for a in range(3)]
    spans = []
    for a, (v, idx) in enumerate(axes):  # each grid value's cell faces
        lo, hi = np.zeros(len(v)), np.ones(len(v))
        lo[idx], hi[idx] = t_lo[:, a], t_hi[:, a]
        if not (np.allclose(lo[idx], t_lo[:, a], rtol=0, atol=1e-9)
                and np.allclose(hi[idx], t_hi[:, a], rtol=0, atol=1e-9)):
            return None
        spans.append((lo, hi))
    return axes, tuple(len(v) for v, _ in axes), spans


def _cell_groups(t_lo: np.ndarray, t_hi: np.ndarray) -> list[tuple] | None:
    """The cells as groups that each lie on a tensor grid: all at once (a tensor mesh), else by their widths.

    Returns ``[(cells, (axes, shape, spans)), ...]`` (``cells`` None for all, else their
    indices; the rest from :func:`_tensor_grid`). Cells of one width triple (one level of
    an octree) always lie on one. None where the grids together would have more than
    :data:`GRID_PER_CELL` nodes per cell or there are more than :data:`MAX_GROUPS` widths.
    """
    n = t_lo.shape[0]
    grid = _tensor_grid(t_lo, t_hi)
    if grid is not None and math.prod(grid[1]) <= GRID_PER_CELL * n:
        return [(None, grid)]
    _, key = np.unique(np.round(t_hi - t_lo, 9), axis=0, return_inverse=True)
    key = key.reshape(-1)
    sizes = int(key.max()) + 1
    if sizes > MAX_GROUPS:
        return None
    groups = [(i, _tensor_grid(t_lo[i], t_hi[i])) for i in (np.flatnonzero(key == g) for g in range(sizes))]
    return groups if sum(math.prod(g[1]) for _, g in groups) <= GRID_PER_CELL * n else None


class SeparableLattice:
    """The sums over the cells of a one-layer periodic field, axis by axis (see the module text).

    Build it with :meth:`of`, which returns None where the sums do not separate.
    ``design`` gives ``G [1, Φ]`` and ``apply`` gives ``Φ C`` (the field of weights ``C``
    at every cell) without an ``n_cells x F`` feature array. The cells of a tensor mesh
    lie on one grid; those of an octree on one grid per cell size, whose sums add.
    """

    def __init__(self, prob, field: torch.nn.Module, groups, centre, key: str = "") -> None:
        enc = field.encoding
        self.key = key
        self.prob, self.device = prob, prob.device
        n = _wave_integers(field)
        k = n.abs().max(0).values.tolist()
        self.m = [2 * ka + 1 for ka in k]
        self.pick = torch.as_tensor(np.ravel_multi_index(tuple((n[:, a] + k[a]).numpy() for a in range(3)),
                                                         tuple(self.m)), device=self.device)
        self.amp = enc.amp.to(device=self.device, dtype=torch.float64)
        self.w = n.shape[0]
        self.grids = []
        widest = 1
        for cells, (axes, s, spans) in groups:
            exps = [axis_means(a_lo, a_hi, float(centre[a]), ka).to(self.device)
                    for a, ((a_lo, a_hi), ka) in enumerate(zip(spans, k))]
            flat = torch.as_tensor(np.ravel_multi_index(tuple(i for _, i in axes), s), device=self.device)
            self.grids.append(_Grid(slice(None) if cells is None else torch.as_tensor(cells, device=self.device), s,
                                    flat, exps))
            m = self.m
            widest = max(widest, s[0] * s[1] * s[2], m[0] * s[1] * s[2], m[0] * m[1] * s[2], m[0] * m[1] * m[2],
                         s[0] * m[1] * m[2], s[0] * s[1] * m[2])  # every intermediate of design and apply
        self.step = max(1, BLOCK_BYTES // (16 * widest))  # rows (or weight vectors) per intermediate

    @classmethod
    def of(cls, prob, field: torch.nn.Module) -> SeparableLattice | None:
        """The separable sums of ``field`` on ``prob``'s cells, or None where they do not apply.

        They apply to an :class:`~gempy_gravinv.density.INRDensity` whose encoding is a
        :class:`~gempy_gravinv.density._encodings.PeriodicEncoding` with no hidden layer,
        on cells that lie on a tensor grid (one width per node along each axis), or on one
        such grid per cell size (an octree), of at most :data:`GRID_PER_CELL` nodes per
        cell in all.
        """
        if not is_lattice_field(field):
            return None
        t_lo, t_hi, centre = _cell_spans(field, prob.mesh.bounds)
        groups = _cell_groups(t_lo, t_hi)
        if groups is None:
            return None
        key = hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes()
                                      for a in (_wave_integers(field).numpy(), t_lo, t_hi, centre))).hexdigest()
        return cls(prob, field, groups, centre, key)

    @functools.cached_property
    def phi_sq(self) -> torch.Tensor:
        """``|φ_c|²`` per cell (n_cells,) float64: ``Σ_n a_n² Π_a |e_a(c, n_a)|²``, summed axis by axis (once)."""
        amp2 = torch.zeros(math.prod(self.m), dtype=torch.float64, device=self.device)
        amp2[self.pick] = self.amp ** 2
        out = torch.empty(self.prob.mesh.n_cells, dtype=torch.float64, device=self.device)
        for g in self.grids:
            q = [(b.abs() ** 2) for b in g.back]  # (M_a, N_a)
            v = torch.einsum("abc,ax->xbc", amp2.reshape(*self.m), q[0])
            v = torch.einsum("xbc,by->xyc", v, q[1])
            out[g.cells] = torch.einsum("xyc,cz->xyz", v, q[2]).reshape(-1)[g.flat]
        return out

    @property
    def mean_sq(self) -> float:
        """Mean over the cells of ``|φ|²``."""
        return float(self.phi_sq.mean())

    def _sums(self, g: torch.Tensor) -> torch.Tensor:
        """``S (rows, W)`` complex128: each row of ``g`` (rows, n_cells) summed against every wave's cell means."""
        total = None
        for grid in self.grids:
            rows = g[:, grid.cells]
            lay = torch.zeros(g.shape[0], math.prod(grid.shape), dtype=torch.complex128, device=self.device)
            lay[:, grid.flat] = rows.to(torch.complex128)
            s = torch.einsum("rxyz,xa->rayz", lay.reshape(g.shape[0], *grid.shape), grid.exps[0])
            s = torch.einsum("rayz,yb->rabz", s, grid.exps[1])
            s = torch.einsum("rabz,zc->rabc", s, grid.exps[2]).reshape(g.shape[0], -1)[:, self.pick]
            total = s if total is None else total.add_(s)
        return total

    def _row_sums(self, blocks: Iterable[tuple[int, int, torch.Tensor]]):
        """Yield ``(r0, r1, G 1 (float64), S (complex128))`` for blocks of at most ``step`` rows."""
        for r0, r1, gt in blocks:
            g = gt.T  # (rows, n_cells), a view: converted to complex a few rows at a time
            for a0 in range(0, r1 - r0, self.step):
                a1 = min(r1 - r0, a0 + self.step)
                yield r0 + a0, r0 + a1, g[a0:a1].sum(1, dtype=torch.float64), self._sums(g[a0:a1])

    def _cached_sums(self, blocks) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(G 1, S)`` of every row from the problem's ``lattice_sums``, computed and kept on a miss.

        None where the problem keeps no such dict or the sums alone would exceed
        :data:`SUMS_CACHE_BYTES`.
        """
        cache = getattr(self.prob, "lattice_sums", None)
        n = self.prob.survey.n_data
        size = n * (8 + 16 * self.w)
        if cache is None or size > SUMS_CACHE_BYTES:
            return None
        hit = cache.pop(self.key, None)
        if hit is None:
            col = torch.empty(n, dtype=torch.float64, device=self.device)
            S = torch.empty(n, self.w, dtype=torch.complex128, device=self.device)
            for r0, r1, c, s in self._row_sums(blocks):
                col[r0:r1], S[r0:r1] = c, s
            hit = (col, S)
        cache[self.key] = hit  # the most recently used last
        while sum(c.numel() * 8 + S.numel() * 16 for c, S in cache.values()) > SUMS_CACHE_BYTES:
            cache.pop(next(iter(cache)))
        return hit

    def design(self, blocks: Iterable[tuple[int, int, torch.Tensor]]) -> torch.Tensor:
        """``G [1, Φ]`` (n_data, 1 + F) in the problem's dtype: ``G 1``, the sines' columns, the cosines'.

        ``blocks``: ``(r0, r1, Gᵀ[:, r0:r1])`` (n_cells, r1 - r0), mGal per kg/m³; not read
        where the problem's ``lattice_sums`` already holds this lattice's sums.
        """
        prob, w = self.prob, self.w
        out = torch.zeros(prob.survey.n_data, 1 + 2 * w, dtype=prob.dtype, device=self.device)
        cached = self._cached_sums(blocks)
        parts = [(0, out.shape[0], *cached)] if cached is not None else self._row_sums(blocks)
        for r0, r1, col, s in parts:
            out[r0:r1, 0] = col.to(prob.dtype)
            out[r0:r1, 1:1 + w] = (self.amp * s.imag).to(prob.dtype)
            out[r0:r1, 1 + w:] = (self.amp * s.real).to(prob.dtype)
        return out

    def apply(self, coef: torch.Tensor) -> torch.Tensor:
        """``Φ C`` (n_cells,) or (n_cells, k) float64: the features times weights ``C`` (F,) or (F, k).

        ``Σ_n a_n (C_sin sin θ + C_cos cos θ) = Re Σ_n a_n (C_cos - i C_sin) e^{iθ}``, summed on
        each grid one axis at a time and read at each cell's node.
        """
        c = coef.to(device=self.device, dtype=torch.float64)
        one = c.dim() == 1
        c = c[:, None] if one else c
        z = (self.amp[:, None] * (c[self.w:] - 1j * c[:self.w])).T  # (k, W) complex
        out = torch.empty(self.prob.mesh.n_cells, c.shape[1], dtype=torch.float64, device=self.device)
        for a0 in range(0, c.shape[1], self.step):
            a1 = min(c.shape[1], a0 + self.step)
            lay = torch.zeros(a1 - a0, math.prod(self.m), dtype=torch.complex128, device=self.device)
            lay[:, self.pick] = z[a0:a1]
            lay = lay.reshape(a1 - a0, *self.m)
            for g in self.grids:
                v = torch.einsum("kabc,ax->kxbc", lay, g.back[0])
                v = torch.einsum("kxbc,by->kxyc", v, g.back[1])
                v = torch.einsum("kxyc,cz->kxyz", v, g.back[2]).reshape(a1 - a0, -1)
                out[g.cells, a0:a1] = v.real[:, g.flat].T
        return out[:, 0] if one else out
