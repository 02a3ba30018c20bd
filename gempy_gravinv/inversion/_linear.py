"""Closed-form Gaussian posterior of an INR's last layer (one job: ``solver="linear"``).

For a field ``m(x) = b + wᵀφ(x)`` whose features ``φ`` (the encoding, or the hidden
layers held fixed) do not change, the gravity data are linear in the head ``(b, w)``:
``d = G Φ w + b G 1 + e`` with ``Φ`` the cell-averaged features and ``e ~ N(0, diag σ²)``.
With the prior ``w ~ N(0, I / λ)`` (in kg/m³, λ per (kg/m³)² relative to the whitened
data term) and a flat prior on the bias ``b`` (the mean contrast), the posterior of the
head is Gaussian and is computed exactly here from one thin SVD:

- mean: ``w = argmin |(d - GΦw - bG1) / σ|² + λ|w|²``;
- λ by the discrepancy principle (χ²/N of the mean at ``target_chi2``), by the type-II
  maximum likelihood (the evidence ``p(d | λ)``), or given;
- the posterior standard deviation of every cell's density, given λ.

For a one-layer network on Fourier features scaled by the square root of a spectrum
(:class:`~gempy_gravinv.density._encodings.PeriodicEncoding` with ``spectrum_power=1``)
the weight prior *is* the Gaussian-process prior with that spectrum, truncated to the
lattice, and the mean is its posterior mean (kriging).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from .._validation import check_choice
from ._lattice_design import BLOCK_BYTES, SeparableLattice, cell_features, is_lattice_field

HEAD_RULES = ("discrepancy", "evidence")


def check_head_lambda(value) -> None:
    """Raise ``ValueError`` unless ``value`` is a rule of :data:`HEAD_RULES` or a number > 0."""
    if isinstance(value, str):
        check_choice(value, HEAD_RULES, name="head_lambda (or a number > 0)")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"head_lambda must be one of {HEAD_RULES} or a finite number > 0, got {value!r}")


def _head(field: torch.nn.Module) -> torch.nn.Linear:
    """The field's last layer, after checking that the field is linear in it."""
    last = getattr(field, "last", None)
    out = getattr(field, "output", None)
    if not isinstance(last, torch.nn.Linear) or last.out_features != 1 or not hasattr(field, "features"):
        raise TypeError(f"solver='linear' needs an INRDensity (a field with features() and a last layer); "
                        f"got {type(field).__name__}: use solver='adam'")
    if getattr(out, "kind", None) != "linear":
        raise ValueError("solver='linear' needs a field linear in its last layer: output='linear' and "
                         "bounds=None (a bounded output is not linear; use solver='adam' for bounds)")
    return last


def _drop_caches(field: torch.nn.Module) -> None:
    """Forget the encodings' cached features (they can be n_points x F; the head needs none)."""
    for mod in field.modules():
        if getattr(mod, "_cache", None) is not None:
            mod._cache = None


def _feature_chunks(prob, field: torch.nn.Module, cells: int):
    """Yield ``(c0, c1, Φ[c0:c1])``: cell-averaged features (c1 - c0, F) in the operator dtype.

    Streams over the cells so that no n_cells x F array is ever held; the encodings'
    caches are dropped after each chunk. A one-layer periodic field's features are its
    exact cell means (:func:`~gempy_gravinv.inversion._lattice_design.cell_features`);
    other fields' the quadrature's.
    """
    n = prob.mesh.n_cells
    if is_lattice_field(field):  # complex cell means (cells x waves) and their products: within BLOCK_BYTES per chunk
        cells = max(1, min(cells, BLOCK_BYTES // (48 * int(field.encoding.wave.shape[0]))))
    for c0 in range(0, n, cells):
        c1 = min(n, c0 + cells)
        yield c0, c1, cell_feature_rows(prob, field, slice(c0, c1))


def cell_feature_rows(prob, field: torch.nn.Module, cells) -> torch.Tensor:
    """Cell-averaged features (n, F) of the cells ``cells`` (a slice or an index array), operator dtype.

    A one-layer periodic field's are its exact cell means
    (:func:`~gempy_gravinv.inversion._lattice_design.cell_features`); other fields' the
    quadrature's weighted mean over each cell's points.
    """
    with torch.no_grad():
        if is_lattice_field(field):
            return cell_features(field, prob.mesh.bounds[cells]).to(device=prob.device, dtype=prob.dtype)
        nq = prob.points.shape[0] // prob.mesh.n_cells
        idx = torch.arange(prob.mesh.n_cells, device=prob.points.device)[cells]
        pts = prob.points[(idx[:, None] * nq + torch.arange(nq, device=idx.device)[None, :]).reshape(-1)]
        phi = field.features(pts).to(prob.dtype)
        _drop_caches(field)
        if nq > 1:
            w = prob.qweights[idx] if prob.qweights.ndim == 2 else prob.qweights[None, :]
            phi = (phi.reshape(idx.shape[0], nq, -1) * w[:, :, None]).sum(1)
        return phi


def _design(prob, field: torch.nn.Module, cells: int = 8192, rows: int = 512,
            sep: SeparableLattice | None = None) -> tuple[torch.Tensor, float]:
    """``G [1, Φ]`` (n_data, 1 + F), mGal per kg/m³, and the mean of ``|φ|²`` over the cells.

    Dense G: one pass over the features, ``Σ_chunks G[:, c] Φ_c``. Matrix-free: per block
    of ``rows`` stations the operator's adjoint gives ``Gᵀ`` for those rows (n_cells x
    rows), then one pass over the features; memory n_cells x rows plus a chunk of features.
    A one-layer periodic field on a tensor grid of cells takes the separable sums of
    :class:`~gempy_gravinv.inversion._lattice_design.SeparableLattice` instead (``sep``:
    the field's, where the caller has built it).
    """
    n, nd = prob.mesh.n_cells, prob.survey.n_data

    def adjoint_rows(r0: int, r1: int) -> torch.Tensor:
        e = torch.zeros(nd, r1 - r0, dtype=prob.dtype, device=prob.device)
        e[torch.arange(r0, r1), torch.arange(r1 - r0)] = 1.0
        return prob.op.adjoint(e)

    spans = [(0, nd)] if prob.G is not None else [(r0, min(nd, r0 + rows)) for r0 in range(0, nd, rows)]
    blocks = ((r0, r1, prob.G.T if prob.G is not None else adjoint_rows(r0, r1)) for r0, r1 in spans)
    sep = sep or SeparableLattice.of(prob, field)
    if sep is not None:
        return sep.design(blocks), sep.mean_sq
    out: torch.Tensor | None = None
    sq = 0.0
    for r0, r1, gt in blocks:  # (n_cells, r1 - r0)
        for c0, c1, phi in _feature_chunks(prob, field, cells):
            if out is None:
                out = torch.zeros(nd, 1 + phi.shape[1], dtype=prob.dtype, device=prob.device)
            g = gt[c0:c1].T
            out[r0:r1, 0] += g.sum(1)
            out[r0:r1, 1:] += g @ phi
            if r0 == 0:
                sq += float(phi.pow(2).sum())
    return out, sq / n


def project_gram(gram: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``(I - q qᵀ) K (I - q qᵀ)``: the Gram ``K`` (n, n) of a design projected off the unit vector ``q`` (n,)."""
    Kq = gram @ q
    return gram - q[:, None] * Kq[None, :] - Kq[:, None] * q[None, :] + (q @ Kq) * torch.outer(q, q)


def maximise_1d(f: Callable[[float], float], lo: float, hi: float, n: int,
                f_grid: Callable[[np.ndarray], np.ndarray] | None = None) -> float:
    """The ``x`` in [lo, hi] where ``f`` is largest: the best of ``n`` grid points, refined by golden section.

    The golden section keeps one of its two points each iteration (one new evaluation)
    and stops once the bracket is below 1e-12 of the grid range. ``f_grid``: ``f`` on an
    array of points at once (the grid's values), where the caller has it.
    """
    grid = np.linspace(lo, hi, n)
    i = int(np.argmax(f_grid(grid) if f_grid is not None else [f(x) for x in grid]))
    a, z = grid[max(i - 1, 0)], grid[min(i + 1, n - 1)]
    g = (math.sqrt(5) - 1) / 2
    x1, x2 = z - g * (z - a), a + g * (z - a)
    f1, f2 = f(x1), f(x2)
    tol = 1e-12 * max(abs(hi - lo), 1e-300)
    while z - a > tol:
        if f1 > f2:  # the maximum is in [a, x2]
            z, x2, f2 = x2, x1, f1
            x1 = z - g * (z - a)
            f1 = f(x1)
        else:  # in [x1, z]
            a, x1, f1 = x1, x2, f2
            x2 = a + g * (z - a)
            f2 = f(x2)
    return 0.5 * (a + z)


class HeadPosterior:
    """The exact Gaussian posterior of ``(b, w)`` for one λ-free SVD; see the module text.

    Parameters
    ----------
    A : Tensor (n_data, F)
        Whitened design of the weights, ``G Φ / σ`` (dimensionless per kg/m³).
    a0 : Tensor (n_data,) or None
        Whitened design of the bias, ``G 1 / σ``; None: no flat bias (the model is
        ``Φ w`` alone; a mean may be among the weights, under their prior).
    b : Tensor (n_data,)
        Whitened data ``d / σ``.
    evidence_only : bool
        Only the λ-dependent evidence, misfit and leave-one-out pieces (no weights),
        from the Gram matrix of the design's smaller side (``Ã Ãᵀ``, n x n, or
        ``Ãᵀ Ã`` where there are fewer weights than data).
    gram : bool
        Weights too, from that Gram matrix (faster than an SVD, less accurate in its
        weakest directions: for approximate models). Without ``Ãᵀ Ã``'s eigenvectors,
        the weights come from one product with ``Ãᵀ`` (``V`` is built only if asked for).
    gram_matrix : Tensor (n_data, n_data), optional
        ``Ã Ãᵀ`` of the projected design when the caller has it (with ``evidence_only``
        or ``gram``).
    """

    def __init__(self, A: torch.Tensor, a0: torch.Tensor, b: torch.Tensor, *, evidence_only: bool = False,
                 gram: bool = False, gram_matrix: torch.Tensor | None = None) -> None:
        self.n = int(b.shape[0])
        if a0 is None:  # no flat bias: nothing is projected off, and the bias is 0 (a02 = ∞: no variance of its own)
            self.a0, self.a02, self._q = None, math.inf, None
            self.bt = b
        else:
            self.a0, self.a02 = a0, float(a0 @ a0)
            if not self.a02 > 0:
                raise ValueError("the mesh's uniform density gives no signal at the stations (G·1 = 0)")
            self._q = a0 / math.sqrt(self.a02)
            self.bt = b - self._q * (self._q @ b)  # projected: the bias takes its own direction
        self.A, self.b = A, b
        self._At: torch.Tensor | None = A if a0 is None else None  # no flat bias: nothing to project off
        self._V: torch.Tensor | None = None
        self._g: torch.Tensor | None = None
        self.evidence_only = bool(evidence_only)
        if evidence_only or gram:
            # λ-dependent evidence and misfit only need the singular values and Uᵀb: from the
            # Gram matrix of the smaller side (one product and one symmetric
            # eigendecomposition, far cheaper than an SVD); directions below 1e-6 of the
            # largest singular value, which the Gram's round-off cannot resolve, are left
            # out. ``gram``: the weights from ``Ãᵀ U / S`` (accurate to ~1e-4 in the weakest
            # kept direction: for approximate models such as a start, not for the exact
            # closed-form solver)
            if gram_matrix is None and A.shape[1] < self.n:  # fewer weights than data: Ãᵀ Ã
                ev, V = torch.linalg.eigh(self.At.T @ self.At)
                S, V = self._kept(ev, V)
                self.U, self.S, self._V = (self.At @ V) / S[None, :], S, V
            else:
                ev, U = torch.linalg.eigh(self.At @ self.At.T if gram_matrix is None else gram_matrix)
                self.S, self.U = self._kept(ev, U)
        else:
            if self.At.shape[1] > self.n:  # more weights than data: Ãᵀ = Q R, and Ã = Rᵀ Qᵀ = U S (Q W)ᵀ
                # from the SVD of the n x n Rᵀ (Householder QR is as stable as the SVD, at a third of its
                # time on a wide design); V = Ãᵀ U / S is built only where it is asked for
                U, S, _ = torch.linalg.svd(torch.linalg.qr(self.At.T, mode="r").R.T)
                V = None
            else:
                U, S, Vh = torch.linalg.svd(self.At, full_matrices=False)
                V = Vh.T
            keep = S > S.max() * 1e-12 if S.numel() else S > 0
            self.U, self.S, self._V = U[:, keep], S[keep], None if V is None else V[:, keep]
        self.c = self.U.T @ self.bt
        self._u2: torch.Tensor | None = None  # U², for the leave-one-out diagonal
        self.res_perp = float(self.bt @ self.bt - self.c @ self.c)  # the part no weight can fit
        self.s2 = self.S * self.S
        self.n_weights = int(A.shape[1])

    @staticmethod
    def _kept(ev: torch.Tensor, vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Singular values ``sqrt(ev)`` above 1e-6 of the largest, and their eigenvectors."""
        S = ev.clamp_min(0.0).sqrt()
        keep = S > S.max() * 1e-6 if S.numel() else S > 0
        return S[keep], vectors[:, keep]

    @property
    def At(self) -> torch.Tensor:
        """The design projected off the bias direction, ``(I - q qᵀ) A`` (n_data, F); built on first use."""
        if self._At is None:
            # A - x as (-x) + A in place: the same values, one n x F temporary fewer
            self._At = (self._q[:, None] * (self._q @ self.A)[None, :]).neg_().add_(self.A)
        return self._At

    @property
    def V(self) -> torch.Tensor | None:
        """Right singular vectors (F, k) of the projected design (None for ``evidence_only``); built on first use."""
        if self._V is None and not self.evidence_only:
            self._V = (self.At.T @ self.U) / self.S[None, :]
        return self._V

    # ---------------------------------------------------------------- λ-dependent pieces
    def chi2(self, lam: float) -> float:
        """χ²/N of the posterior mean at λ (dimensionless)."""
        f = lam / (self.s2 + lam)
        return (self.res_perp + float(((f * self.c) ** 2).sum())) / self.n

    def chi2_min(self) -> float:
        """The smallest χ²/N the features can reach (λ → 0)."""
        return self.res_perp / self.n

    def chi2_bias_only(self) -> float:
        """χ²/N with the weights at zero (λ → ∞): the best constant density."""
        return float(self.bt @ self.bt) / self.n

    def log_evidence(self, lam: float) -> float:
        """``log p(d | λ)`` up to a constant independent of λ (flat bias integrated out)."""
        return float(-0.5 * torch.log1p(self.s2 / lam).sum()
                     - 0.5 * (self.bt @ self.bt - (self.c ** 2 * self.s2 / (self.s2 + lam)).sum()))

    def _log_evidences(self, lams: np.ndarray) -> np.ndarray:
        """:meth:`log_evidence` at every λ of ``lams`` (k,), in blocks of λ."""
        out = np.empty(len(lams))
        lam_all = torch.as_tensor(lams, dtype=self.s2.dtype, device=self.s2.device)
        fit = self.c ** 2 * self.s2
        bb = self.bt @ self.bt
        for i in range(0, len(lams), 64):
            lam = lam_all[i:i + 64, None]
            val = (-0.5 * torch.log1p(self.s2[None, :] / lam).sum(1)
                   - 0.5 * (bb - (fit[None, :] / (self.s2[None, :] + lam)).sum(1)))
            out[i:i + 64] = val.cpu().numpy()
        return out

    def effective_parameters(self, lam: float) -> float:
        """``Σ s²/(s² + λ)``: how many weight directions the data determine."""
        return float((self.s2 / (self.s2 + lam)).sum())

    def weights(self, lam: float) -> tuple[torch.Tensor, float]:
        """Posterior mean ``(w (F,), b)`` at λ, kg/m³."""
        if self.evidence_only:
            raise ValueError("this posterior was built with evidence_only=True: it has no weights")
        if self._V is None:  # V = Ãᵀ U / S: one product with Ãᵀ instead of forming V
            w = self.At.T @ (self.U @ (self.c / (self.s2 + lam)))
        else:
            w = self._V @ (self.S / (self.s2 + lam) * self.c)
        b0 = 0.0 if self.a0 is None else float(self.a0 @ (self.b - self.A @ w)) / self.a02
        return w, b0

    def loo_residuals(self, lam: float, keep: torch.Tensor, flat: torch.Tensor | None = None) -> torch.Tensor:
        """Leave-one-out residuals ``(d_i - d̂_{-i}) / σ_i`` (n_data,) of the posterior mean at λ.

        Exact for this linear model (every station predicted from the others, the flat
        parameters refitted each time): the whitened residual ``r = Q b`` and the diagonal
        of ``Q = P - U f Uᵀ`` (``f = s²/(s² + λ)``, ``P`` the projection off the flat
        columns) give ``r_i / Q_ii``. ``keep`` (n_data,) is ``diag(P)``.

        ``flat`` (n_data, p): more flat columns (whitened), e.g. a regional's, beside those
        this posterior was built without. Their flat prior turns ``Q`` into
        ``Q - Q T (Tᵀ Q T)⁻¹ Tᵀ Q`` (the universal-kriging projection, nested), so one
        eigendecomposition serves every set of extra columns: the same residuals as a
        posterior built on the design projected off them, up to the directions each
        leaves out below its eigenvalue threshold.
        """
        lams = torch.as_tensor([float(lam)], dtype=self.s2.dtype, device=self.s2.device)
        return self._loo_block(lams, keep, self._flat_parts(flat))[:, 0]

    def _flat_parts(self, flat: torch.Tensor | None) -> tuple | None:
        """The λ-independent pieces of extra flat columns, or None.

        ``(P T, Uᵀ P T, Tᵀ P T, Tᵀ P b, tol)``: ``tol`` is 1e-10 of ``Tᵀ P T``'s largest
        eigenvalue, below which ``Tᵀ Q T`` counts as lost to round-off.
        """
        if flat is None:
            return None
        T = flat.to(self.U).reshape(self.n, -1)
        T0 = T if self._q is None else T - self._q[:, None] * (self._q @ T)[None, :]  # P T
        TT = T0.T @ T0
        return T0, self.U.T @ T0, TT, T0.T @ self.bt, 1e-10 * float(torch.linalg.eigvalsh(TT)[-1])

    def _nested(self, lams: torch.Tensor, parts: tuple | None):
        """``(f, r, QT, M⁻¹, fits)`` at every λ of ``lams`` (L,), ``r`` the whitened residuals (n_data, L).

        ``r`` are those of the posterior means, the extra flat columns of ``parts``
        (:meth:`_flat_parts`) refitted by the nested projection. ``QT``, ``M⁻¹``
        (``(Tᵀ Q T)⁻¹``) and ``fits`` are None without extra columns.

        ``fits`` (L,): where the weights alone fit the extra columns (λ → 0), ``Tᵀ Q T`` is their small
        difference from ``Tᵀ P T``, lost to round-off; ``r`` is left without their refit there.
        """
        f = self.s2[:, None] / (self.s2[:, None] + lams[None, :])  # (k, L)
        fc = f * self.c[:, None]
        r = self.bt[:, None] - self.U @ fc
        if parts is None:
            return f, r, None, None, None
        T0, UT, TT, Tb, tol = parts  # P T (n, p), Uᵀ P T (k, p), Tᵀ P T (p, p), Tᵀ P b (p,)
        p, L = T0.shape[1], lams.numel()
        # Q T for every λ: (n, p, L)
        QT = T0[:, :, None] - (self.U @ (UT[:, :, None] * f[:, None, :]).reshape(-1, p * L)).reshape(-1, p, L)
        M = TT[None] - torch.einsum("kp,kl,kq->lpq", UT, f, UT)  # Tᵀ Q T (L, p, p)
        tb = Tb[:, None] - UT.T @ fc  # Tᵀ Q b (p, L)
        fits = torch.linalg.eigvalsh(M)[:, 0] <= tol
        Mi = torch.linalg.pinv(M, hermitian=True)
        refit = torch.einsum("npl,lpq,ql->nl", QT, Mi, tb)
        return f, r - torch.where(fits[None, :], 0.0, refit), QT, Mi, fits

    def _loo_block(self, lams: torch.Tensor, keep: torch.Tensor, parts: tuple | None) -> torch.Tensor:
        """:meth:`loo_residuals` at every λ of ``lams`` (L,): (n_data, L), one pass over ``U²`` for all.

        ``parts``: :meth:`_flat_parts` of the extra flat columns, or None. Where the
        weights alone fit them (λ → 0) the residuals are infinite: those λ are never chosen.
        """
        f, r, QT, Mi, fits = self._nested(lams, parts)
        if self._u2 is None:
            self._u2 = self.U * self.U
        q = keep[:, None] - self._u2 @ f
        if QT is None:
            return r / q.clamp_min(1e-12)
        q = q - torch.einsum("npl,lpq,nql->nl", QT, Mi, QT)
        return torch.where(fits[None, :], math.inf, r / q.clamp_min(1e-12))

    def residuals(self, lam: float, flat: torch.Tensor | None = None) -> torch.Tensor:
        """Whitened residuals ``Q b`` (n_data,) of the posterior mean at λ (``inf``: the weights at 0).

        ``flat``: extra flat columns refitted by the nested projection (:meth:`loo_residuals`),
        so that ``|Q b|² / n`` is the χ²/N of the model with them. The weights' data-space
        vector is ``Q b / λ`` (the weights are ``Ãᵀ Q b / λ``).
        """
        lams = torch.as_tensor([float(lam)], dtype=self.s2.dtype, device=self.s2.device)
        return self._nested(lams, self._flat_parts(flat))[1][:, 0]

    def drop_loo_cache(self) -> None:
        """Free the squared eigenvectors (n_data x k) the leave-one-out diagonals keep between calls."""
        self._u2 = None

    def loo(self, keep: torch.Tensor, flat: torch.Tensor | None = None) -> tuple[float, torch.Tensor]:
        """``(λ, leave-one-out residuals)`` at the λ of smallest leave-one-out χ²/N (grid, then golden section).

        ``flat``: extra flat columns, as in :meth:`loo_residuals`. The grid's λ are
        evaluated in blocks, one pass over the eigenvectors per block.
        """
        lo, hi = self._bracket()
        n = max(241, int(8 * math.log(hi / lo)))
        parts = self._flat_parts(flat)  # once for every λ below
        per_lam = 8 * self.n * (3 if parts is None else 3 + 2 * parts[0].shape[1])  # bytes
        block = max(1, min(64, int(2**25 // per_lam)))

        def on_lams(x: np.ndarray) -> np.ndarray:
            out = np.empty(len(x))
            lams = torch.as_tensor(np.exp(x), dtype=self.s2.dtype, device=self.s2.device)
            for i in range(0, len(x), block):
                out[i:i + block] = (-(self._loo_block(lams[i:i + block], keep, parts) ** 2).mean(0)).cpu().numpy()
            return out

        lam = math.exp(maximise_1d(lambda x: float(on_lams(np.array([x]))[0]), math.log(lo), math.log(hi), n,
                                   f_grid=on_lams))
        lams = torch.as_tensor([lam], dtype=self.s2.dtype, device=self.s2.device)
        return lam, self._loo_block(lams, keep, parts)[:, 0]

    # ---------------------------------------------------------------- choosing λ
    def _bracket(self) -> tuple[float, float]:
        if not self.s2.numel():
            return 1e-14, 1e8
        # from well below the smallest kept s² (every direction fitted) to well above the largest
        return float(self.s2.min()) * 1e-8, float(self.s2.max()) * 1e8

    def discrepancy(self, target: float, flat: torch.Tensor | None = None) -> float:
        """The λ whose posterior mean has χ²/N = ``target`` (bisection in log λ).

        ``flat``: extra flat columns, refitted as in :meth:`residuals`. Raises
        ``ValueError`` when the features cannot fit the data to ``target`` (the mean
        would fit noise with unbounded weights). Returns ``inf`` when the flat columns
        alone (the best constant density) already fit to ``target`` (the weights stay 0).
        """
        if flat is None:
            chi2, flat_only = self.chi2, self.chi2_bias_only()
        else:
            parts = self._flat_parts(flat)

            def chi2(lam: float) -> float:
                lams = torch.as_tensor([lam], dtype=self.s2.dtype, device=self.s2.device)
                return float(self._nested(lams, parts)[1].square().sum()) / self.n

            flat_only = chi2(math.inf)
        if flat_only <= target:
            return math.inf
        lo, hi = self._bracket()
        self.check_reachable(target, chi2)
        a, z = math.log(lo), math.log(hi)
        for _ in range(200):
            mid = 0.5 * (a + z)
            if chi2(math.exp(mid)) < target:
                a = mid
            else:
                z = mid
            if z - a < 1e-10:
                break
        return math.exp(0.5 * (a + z))

    def check_reachable(self, target: float, chi2: Callable[[float], float] | None = None) -> None:
        """Raise ``ValueError`` when no weights fit the data to χ²/N = ``target``.

        Then the features are too few for the data (the model is mis-specified): the
        discrepancy λ does not exist, and the evidence drives λ to 0 and the weights to
        values that fit noise, a model far worse than the constant mean. An error, not
        such a model. ``chi2``: χ²/N as a function of λ (default :meth:`chi2`).
        """
        lo, _ = self._bracket()
        best = (chi2 or self.chi2)(lo)
        if best >= target:
            raise ValueError(f"the field's features cannot fit the data to χ²/N = {target:g}: the best they "
                             f"reach is {best:.4g}. Use more features (e.g. more harmonics) or solver='adam'")

    def evidence(self, target: float | None = None) -> float:
        """The λ that maximises ``p(d | λ)`` (grid in log λ, then golden-section).

        With ``target``, first :meth:`check_reachable` (the evidence of features that
        cannot fit the data to the noise level is not worth maximising).
        """
        if target is not None:
            self.check_reachable(target)
        lo, hi = self._bracket()
        n = max(241, int(8 * math.log(hi / lo)))
        return math.exp(maximise_1d(lambda x: self.log_evidence(math.exp(x)), math.log(lo), math.log(hi), n,
                                    f_grid=lambda x: self._log_evidences(np.exp(x))))

    # ---------------------------------------------------------------- uncertainty
    def cell_std(self, phi: torch.Tensor, lam: float, chunk: int = 8192) -> torch.Tensor:
        """Posterior standard deviation (n_cells,) kg/m³ of ``Φ w + b`` at a given λ.

        ``b`` given ``w`` is ``a0ᵀ(d̃ - A w)/|a0|²`` plus its own variance ``1/|a0|²``, so
        ``m = Ψ w + const + ε`` with ``Ψ = Φ - 1 gᵀ``, ``g = Aᵀa0/|a0|²``, and
        ``Var m_i = Ψ_i Cov(w) Ψ_iᵀ + 1/|a0|²`` with
        ``Cov(w) = V diag(1/(s²+λ)) Vᵀ + (I - VVᵀ)/λ``.
        """
        dtype = self.V.dtype
        return torch.cat([self.cell_std_by(lambda M, p=p: p @ M, (p * p).sum(1), lam)
                          for p in (phi[i:i + chunk].to(dtype) for i in range(0, phi.shape[0], chunk))])

    @property
    def bias_gradient(self) -> torch.Tensor:
        """``g = Aᵀa0/|a0|²`` (F,): how the bias's posterior mean moves with the weights; built on first use."""
        if self._g is None:
            self._g = self.A.new_zeros(self.A.shape[1]) if self.a0 is None else (self.A.T @ self.a0) / self.a02
        return self._g

    def cell_std_by(self, apply: Callable[[torch.Tensor], torch.Tensor], phi_sq: torch.Tensor, lam: float,
                    block: int = 64) -> torch.Tensor:
        """:meth:`cell_std` with the features given as a product: ``apply(M) = Φ M`` (n, k) for M (F, k).

        ``phi_sq``: ``|φ_i|²`` (n,). ``Ψ V = Φ V - 1 (gᵀV)`` and ``|Ψ_i|² = |φ_i|² - 2 φ_i·g + |g|²``;
        ``Φ V`` is formed ``block`` columns at a time.
        """
        g = self.bias_gradient
        if not math.isfinite(lam):  # λ = ∞: the weights are fixed at 0
            var = torch.zeros_like(phi_sq)
        else:
            shrink = 1.0 / lam - 1.0 / (self.s2 + lam)
            gv = g @ self.V
            var = (phi_sq - 2 * apply(g[:, None])[:, 0].to(phi_sq) + g @ g) / lam
            for j in range(0, gv.numel(), block):
                pv = apply(self.V[:, j:j + block]).to(phi_sq) - gv[None, j:j + block]
                var = var - (pv * pv * shrink[None, j:j + block]).sum(1)
        return (var.clamp_min(0.0) + 1.0 / self.a02).sqrt()
