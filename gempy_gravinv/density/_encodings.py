"""Coordinate encodings for implicit neural representations (plain torch).

All encodings take *normalised* coordinates (see :class:`CoordinateNormalizer`), shape
``(n, 3)``, and return features ``(n, out_dim)``. Frequencies are in radians per
normalised unit: a feature ``sin(f x)`` has a period of ``2π / f`` normalised units,
i.e. ``2π / f · scale`` metres along an axis normalised with ``scale`` metres per unit.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch import nn

from .._validation import check_choice, check_int, check_number

ENCODINGS = ("positional", "fourier", "hash", "periodic", "none")


class CoordinateNormalizer(nn.Module):
    """Affine map from metres to normalised coordinates ``u = (x - center) / scale · axis_scale``.

    Parameters
    ----------
    center, scale : array_like (3,)
        Centre (m) and metres per normalised unit, per axis (x, y, z).
    axis_scale : array_like (3,), optional
        Extra multipliers per axis (dimensionless). Values > 1 raise the frequencies an
        encoding sees along that axis (finer structure), < 1 lower them.

    Notes
    -----
    Build it with :meth:`from_points` / :meth:`from_extent`:

    - ``"zscore"`` (the paper's choice): centre = mean, scale = standard deviation of the
      cell centres per axis. Anisotropic: a 1000 m x 1000 m x 500 m block gets the same
      number of encoding periods along x and along z.
    - ``"extent"``: the cell-centre box mapped to [-1, 1] per axis (anisotropic too).
    - ``"isotropic"``: one scale for all axes (half the longest side), so a frequency
      means the same wavelength in metres along every axis; with cells of equal size
      this keeps the encoding's resolution matched to what the mesh resolves.
    """

    def __init__(self, center, scale, axis_scale=(1.0, 1.0, 1.0)) -> None:
        super().__init__()
        c = torch.as_tensor(np.asarray(center, dtype=np.float64).reshape(3))
        s = torch.as_tensor(np.asarray(scale, dtype=np.float64).reshape(3))
        a = torch.as_tensor(np.asarray(axis_scale, dtype=np.float64).reshape(3))
        if torch.any(s <= 0) or not torch.all(torch.isfinite(s)):
            raise ValueError(f"normalisation scale must be positive and finite, got {s.tolist()}")
        if torch.any(a <= 0):
            raise ValueError(f"axis_scale must be positive, got {a.tolist()}")
        self.register_buffer("center", c)
        self.register_buffer("scale", s / a)

    @classmethod
    def from_points(cls, points, mode: str = "zscore", axis_scale=(1.0, 1.0, 1.0)) -> CoordinateNormalizer:
        """Normaliser fitted to points.

        Parameters
        ----------
        points : array_like (n, 3)
            Coordinates, m.
        mode : {"zscore", "extent", "isotropic"}
            See the class notes.
        axis_scale : array_like (3,)
            Extra multipliers per axis (dimensionless).

        Returns
        -------
        CoordinateNormalizer
        """
        check_choice(mode, ("zscore", "extent", "isotropic"), name="normalization")
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        if mode == "zscore":
            center = p.mean(0)
            scale = p.std(0)
        else:
            lo, hi = p.min(0), p.max(0)
            center = (lo + hi) / 2
            scale = (hi - lo) / 2
            if mode == "isotropic":
                scale = np.full(3, scale.max())
        scale = np.where(scale > 0, scale, 1.0)  # a single layer/column: any scale works
        return cls(center, scale, axis_scale)

    @property
    def device(self) -> torch.device:
        """Where the centre and scale are."""
        return self.center.device

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """Metres (n, 3) -> normalised coordinates (n, 3), dimensionless."""
        return (points - self.center.to(points)) / self.scale.to(points)

    def inverse(self, u: torch.Tensor) -> torch.Tensor:
        """Normalised coordinates back to metres."""
        return u * self.scale.to(u) + self.center.to(u)


class IdentityEncoding(nn.Module):
    """No encoding: the MLP sees the normalised coordinates (strong spectral bias)."""

    def __init__(self, input_dim: int = 3) -> None:
        super().__init__()
        self.out_dim = input_dim

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return u


class PositionalEncoding(nn.Module):
    """NeRF-style positional encoding ``[u, sin(f_k u), cos(f_k u)]``, ``f_k = f_0 · base^k``.

    Parameters
    ----------
    n_frequencies : int
        Number of octaves ``L`` (the paper uses 2).
    min_frequency : float
        ``f_0`` in radians per normalised unit. The paper's code uses 1 (no π factor);
        NeRF uses π.
    base : float
        Ratio between successive frequencies (2 = octaves).
    include_input : bool
        Prepend the raw normalised coordinates (the paper does).
    frequencies : sequence of float, optional
        Explicit frequencies (rad per unit); overrides the three above.
    """

    def __init__(self, n_frequencies: int = 3, min_frequency: float = 1.0, base: float = 2.0,
                 include_input: bool = True, frequencies=None, input_dim: int = 3) -> None:
        super().__init__()
        if frequencies is None:
            n_frequencies = check_int(n_frequencies, name="n_frequencies", minimum=0)
            min_frequency = check_number(min_frequency, name="min_frequency (rad per normalised unit)",
                                         low=0.0, low_open=True)
            base = check_number(base, name="base", low=0.0, low_open=True)
            f = min_frequency * base ** np.arange(n_frequencies, dtype=np.float64)
        else:
            f = np.asarray(frequencies, dtype=np.float64).reshape(-1)
            if np.any(f <= 0):
                raise ValueError("frequencies must be positive (rad per normalised unit)")
        if f.size == 0 and not include_input:
            raise ValueError("positional encoding with no frequency and include_input=False is empty")
        self.register_buffer("freqs", torch.as_tensor(f))
        self.include_input = bool(include_input)
        self.out_dim = input_dim * (int(self.include_input) + 2 * f.size)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        parts = [u] if self.include_input else []
        if self.freqs.numel():
            fu = u[..., None, :] * self.freqs.to(u)[:, None]  # (n, L, 3)
            # interleave per frequency as [sin f0, cos f0, sin f1, ...] (the paper's order)
            sc = torch.stack([torch.sin(fu), torch.cos(fu)], dim=-2)  # (n, L, 2, 3)
            parts.append(sc.reshape(u.shape[0], -1))
        return torch.cat(parts, dim=-1)


class FourierFeatures(nn.Module):
    """Random Fourier features ``[sin(2π B u), cos(2π B u)]`` (Tancik et al. 2020).

    Parameters
    ----------
    n_features : int
        Rows of ``B``; the output has ``2 n_features`` (+3 with ``include_input``) columns.
    sigma : float
        Standard deviation of ``B``'s entries, cycles per normalised unit.
    seed : int
        Seed of ``B`` (its own generator: the global RNG is untouched).
    """

    def __init__(self, n_features: int = 64, sigma: float = 1.0, seed: int = 0,
                 include_input: bool = True, input_dim: int = 3) -> None:
        super().__init__()
        n_features = check_int(n_features, name="n_features", minimum=1)
        sigma = check_number(sigma, name="sigma (cycles per normalised unit)", low=0.0, low_open=True)
        g = torch.Generator().manual_seed(int(seed))
        B = torch.randn(int(n_features), input_dim, generator=g, dtype=torch.float64) * float(sigma)
        self.register_buffer("B", B)
        self.include_input = bool(include_input)
        self.out_dim = 2 * int(n_features) + (input_dim if include_input else 0)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        proj = 2 * math.pi * u @ self.B.to(u).T
        parts = [u] if self.include_input else []
        parts += [torch.sin(proj), torch.cos(proj)]
        return torch.cat(parts, dim=-1)


def matern_amplitude(k2, length: float, nu: float, power: float = 1.0):
    """Matérn amplitude ``(1 + ℓ²|k|²)^(-p (ν + 3/2) / 2)`` of wave vectors with ``|k|² = k2`` (rad²/m²).

    ``p = 1`` is the square root of the 3-D Matérn spectrum (a feature scaled by it has
    that spectrum's variance); ``length`` ℓ in metres. Works on NumPy arrays and tensors.
    """
    return (1 + float(length) ** 2 * k2) ** (-float(power) * (float(nu) + 1.5) / 2)


def _register_box(module: nn.Module, lo, hi, what: str) -> None:
    """Register buffers ``lo``, ``hi`` (3,) float64 of a box in normalised units (hi > lo)."""
    lo_t = torch.as_tensor(np.asarray(lo, dtype=np.float64).reshape(3))
    hi_t = torch.as_tensor(np.asarray(hi, dtype=np.float64).reshape(3))
    if torch.any(hi_t <= lo_t):
        raise ValueError(f"{what} needs hi > lo on every axis")
    module.register_buffer("lo", lo_t)
    module.register_buffer("hi", hi_t)


def cached_on_points(module: nn.Module, u: torch.Tensor, compute):
    """``compute(u)``, reused while ``module`` sees the same points ``u`` again.

    A trainer evaluates the same points every step; the cache is keyed on their values
    (never serves other points: the same tensor object with an unchanged version counter
    is taken as a hit without comparing, any other tensor is compared value by value) and
    bypassed when gradients with respect to ``u`` are needed.
    """
    if u.requires_grad:
        return compute(u)
    cached = getattr(module, "_cache", None)
    if cached is not None and cached[2] is u and cached[3] == u._version:  # the same tensor, not written since
        return cached[1]
    if (cached is not None and cached[0].shape == u.shape and cached[0].dtype == u.dtype
            and cached[0].device == u.device and torch.equal(cached[0], u)):
        module._cache = (cached[0], cached[1], u, u._version)
        return cached[1]
    out = compute(u)
    module._cache = (u.detach().clone(), out, u, u._version)
    return out


class PeriodicEncoding(nn.Module):
    """Harmonics of a box: ``[sin(2π n t_a), cos(2π n t_a)]``, ``n = 1..K_a`` per axis ``a``.

    ``t = (u - lo) / (hi - lo)`` maps the box (normalised units; built from the *mesh*
    extent, cell faces included, by :class:`~gempy_gravinv.density.INRDensity`) to
    [0, 1], so harmonic ``n`` along an axis of length ``L`` metres has wavelength
    ``L / n`` and the field is **periodic on the box**: it takes the same value on
    opposite faces, and its structure near the bottom is tied to that near the top.
    That is exactly the assumption of an FFT-generated random field on the mesh (the
    smooth-GRF benchmark, and the paper's generator); for real data it is a prior to
    choose knowingly (pad the mesh so the wrap falls outside the region of interest).
    No raw coordinates are appended (they would break the periodicity).

    With ``lattice=True`` the features are the full 3-D Fourier basis of the box instead,
    ``[sin(2π n·t), cos(2π n·t)]`` for every integer vector ``n`` with ``|n_a| <= K_a``
    (one of each ``±n`` pair, ``n ≠ 0``), optionally scaled by a Matérn amplitude
    ``(1 + ℓ²|k_n|²)^(-p (ν + 3/2) / 2)`` (``k_n`` in rad/m from the box lengths in
    metres, ``spectrum = (ℓ, ν)``, ``p = spectrum_power``): an INR whose features carry
    the prior's spectrum (Tancik et al. 2020: the network's kernel follows the feature
    spectrum).

    Parameters
    ----------
    n_harmonics : int or sequence of 3 int
        ``K`` (the same on every axis) or ``(K_x, K_y, K_z)``; each >= 1.
    lo, hi : array_like (3,)
        The box in normalised coordinates.
    lattice : bool
        Full 3-D wave vectors (see above) instead of per-axis harmonics.
    spectrum : (float, float), optional
        ``(ℓ, ν)``: correlation length (m) and smoothness of the amplitude scaling
        (``lattice`` only; needs ``lengths``).
    spectrum_power : float
        ``p`` above (1: the amplitude of a field with that spectrum).
    lengths : array_like (3,), optional
        Box lengths in metres (set by :class:`~gempy_gravinv.density.INRDensity`).
    """

    def __init__(self, n_harmonics=3, lo=(-1.0, -1.0, -1.0), hi=(1.0, 1.0, 1.0), lattice: bool = False,
                 spectrum=None, spectrum_power: float = 1.0, lengths=None) -> None:
        super().__init__()
        k = np.broadcast_to(np.asarray(n_harmonics), (3,))
        if np.any(k.astype(int) != k) or np.any(k < 1):
            raise ValueError(f"n_harmonics must be a positive integer or three of them, got {n_harmonics}")
        k = k.astype(int)
        _register_box(self, lo, hi, "periodic encoding box")
        if lattice:
            grids = np.meshgrid(*(np.arange(-ka, ka + 1) for ka in k), indexing="ij")
            n = np.stack([g.ravel() for g in grids], 1)
            # one of each ±n pair: the first non-zero component positive
            first = np.array([v[np.nonzero(v)[0][0]] if np.any(v) else 0 for v in n])
            n = n[first > 0]
        else:
            if spectrum is not None:
                raise ValueError("spectrum scaling needs lattice=True (full 3-D wave vectors)")
            n = np.zeros((int(k.sum()), 3))
            row = 0
            for a, ka in enumerate(k):
                n[row:row + ka, a] = np.arange(1, ka + 1)
                row += ka
        amp = np.ones(len(n))
        if spectrum is not None:
            if lengths is None:
                raise ValueError("spectrum scaling needs the box lengths in metres (lengths=...)")
            ell, nu = (float(v) for v in spectrum)
            if not ell > 0 or not nu > 0 or not spectrum_power >= 0:
                raise ValueError(f"spectrum needs ℓ > 0 m, ν > 0 and spectrum_power >= 0, got "
                                 f"{spectrum}, {spectrum_power}")
            kvec = 2 * np.pi * n / np.asarray(lengths, dtype=np.float64).reshape(1, 3)
            amp = matern_amplitude((kvec**2).sum(1), ell, nu, spectrum_power)
        self.register_buffer("wave", torch.as_tensor(2 * np.pi * n, dtype=torch.float64))  # rad per unit t
        self.register_buffer("amp", torch.as_tensor(amp, dtype=torch.float64))
        self.out_dim = 2 * len(n)

    def _features(self, u: torch.Tensor) -> torch.Tensor:
        t = (u - self.lo.to(u)) / (self.hi - self.lo).to(u)
        ph = t @ self.wave.to(u).T
        a = self.amp.to(u)
        return torch.cat([a * torch.sin(ph), a * torch.cos(ph)], dim=-1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        # no parameters: the features of a trainer's fixed points are cached (keyed on the
        # values; not when gradients with respect to the points are needed)
        return cached_on_points(self, u, self._features)


_PRIMES = (1, 2654435761, 805459861)


class HashGridEncoding(nn.Module):
    """Multiresolution hash grid (Müller et al. 2022) in plain torch.

    Level ``l`` is a grid of ``N_l = floor(base_resolution · b^l)`` cells per axis over the
    box ``[lo, hi]`` of normalised coordinates, ``b = (finest/base)^(1/(L-1))``; learned
    features at its vertices are interpolated trilinearly, so level ``l`` carries
    structure down to ``(hi - lo) / N_l`` and nothing finer. A level whose
    ``(N_l + 1)³`` vertices fit in ``2^log2_hashmap_size`` entries is indexed densely (no
    collisions); finer levels are hashed (XOR of coordinates times large primes).

    Parameters
    ----------
    n_levels, n_features_per_level, log2_hashmap_size, base_resolution, finest_resolution
        As in Instant-NGP (the paper: 2, 2, 17, 4, 128).
    lo, hi : array_like (3,)
        Box of normalised coordinates mapped to the grid (points outside are clamped).
    init_scale : float
        Features start uniform in ``±init_scale``.
    seed : int
        Seed of the feature initialisation (own generator).
    """

    def __init__(self, n_levels: int = 2, n_features_per_level: int = 2, log2_hashmap_size: int = 17,
                 base_resolution: int = 4, finest_resolution: int = 128, lo=(-1.0, -1.0, -1.0),
                 hi=(1.0, 1.0, 1.0), init_scale: float = 1e-4, seed: int = 0) -> None:
        super().__init__()
        n_levels = check_int(n_levels, name="n_levels", minimum=1)
        n_features_per_level = check_int(n_features_per_level, name="n_features_per_level", minimum=1)
        base_resolution = check_int(base_resolution, name="base_resolution", minimum=1)
        finest_resolution = check_int(finest_resolution, name="finest_resolution", minimum=base_resolution)
        log2_hashmap_size = check_int(log2_hashmap_size, name="log2_hashmap_size", minimum=4)
        check_number(log2_hashmap_size, name="log2_hashmap_size", high=26)
        growth = (finest_resolution / base_resolution) ** (1.0 / (n_levels - 1)) if n_levels > 1 else 1.0
        self.resolutions = [int(math.floor(base_resolution * growth**l + 1e-9)) for l in range(n_levels)]
        self.table_size = 2 ** int(log2_hashmap_size)
        self.n_features = int(n_features_per_level)
        self.out_dim = n_levels * self.n_features
        _register_box(self, lo, hi, "hash grid box")
        g = torch.Generator().manual_seed(int(seed))
        self.tables = nn.ParameterList()
        self.dense_level = []
        for res in self.resolutions:
            n_vert = (res + 1) ** 3
            dense = n_vert <= self.table_size
            size = n_vert if dense else self.table_size
            w = (torch.rand(size, self.n_features, generator=g, dtype=torch.float64) * 2 - 1) * init_scale
            self.tables.append(nn.Parameter(w))
            self.dense_level.append(dense)
        offs = torch.tensor([[(k >> 0) & 1, (k >> 1) & 1, (k >> 2) & 1] for k in range(8)])
        self.register_buffer("corner_offsets", offs)

    def _index(self, corners: torch.Tensor, res: int, dense: bool) -> torch.Tensor:
        if dense:
            r1 = res + 1
            return corners[..., 0] + r1 * (corners[..., 1] + r1 * corners[..., 2])
        h = corners[..., 0] * _PRIMES[0]
        h = h ^ (corners[..., 1] * _PRIMES[1])
        h = h ^ (corners[..., 2] * _PRIMES[2])
        return h % self.table_size

    def _stencils(self, u: torch.Tensor) -> list:
        """Per level: vertex indices (n, 8) and trilinear weights (n, 8) of points ``u``."""
        t = ((u - self.lo.to(u)) / (self.hi - self.lo).to(u)).clamp(0.0, 1.0)
        out = []
        for res, dense in zip(self.resolutions, self.dense_level):
            x = t * res
            x0 = torch.clamp(torch.floor(x), max=res - 1).long()
            frac = x - x0.to(x)
            corners = x0[:, None, :] + self.corner_offsets[None]  # (n, 8, 3)
            o = self.corner_offsets.to(u)[None]  # (1, 8, 3)
            w = torch.where(o > 0, frac[:, None, :], 1 - frac[:, None, :]).prod(-1)  # (n, 8)
            out.append((self._index(corners, res, dense), w))
        return out

    def __getstate__(self) -> dict:  # copies and pickles leave out the cached matrices (rebuilt on use)
        state = dict(super().__getstate__())
        state.pop("_cache", None)
        return state

    def _operators(self, u: torch.Tensor) -> list:
        """Per level: the interpolation matrix ``W`` (n, table rows) of points ``u`` and ``Wᵀ``, sparse CSR."""
        out = []
        for (idx, w), table in zip(self._stencils(u), self.tables):
            n, k = idx.shape
            rows = torch.arange(n, device=idx.device).repeat_interleave(k)
            coo = torch.sparse_coo_tensor(torch.stack([rows, idx.reshape(-1)]), w.reshape(-1).to(table.dtype),
                                          (n, table.shape[0]), check_invariants=False).coalesce()
            with warnings.catch_warnings():  # torch calls its sparse CSR support beta
                warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning)
                out.append((_int32_csr(coo.to_sparse_csr()), _int32_csr(coo.t().coalesce().to_sparse_csr())))
        return out

    def _gather(self, u: torch.Tensor) -> torch.Tensor:
        """Σ_corners w · table[idx] per level (differentiable in the points too)."""
        return torch.cat([(w.to(u)[:, :, None] * table.to(u).index_select(0, idx.reshape(-1))
                           .view(idx.shape[0], idx.shape[1], -1)).sum(1)
                          for (idx, w), table in zip(self._stencils(u), self.tables)], dim=-1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if u.requires_grad or u.device.type not in ("cpu", "cuda"):  # no sparse CSR products elsewhere
            return self._gather(u)
        # A trainer evaluates the same points every step: the interpolation is a fixed sparse
        # matrix per level (8 entries a row), built once and cached (keyed on the values)
        ops = cached_on_points(self, u, self._operators)
        outs = []
        for (W, Wt), table in zip(ops, self.tables):
            if W.dtype != table.dtype:  # the module was cast after the cache was built
                W, Wt = W.to(table.dtype), Wt.to(table.dtype)
            outs.append(_Interpolate.apply(table, W, Wt).to(u.dtype))
        return torch.cat(outs, dim=-1)


def _int32_csr(m: torch.Tensor) -> torch.Tensor:
    """``m`` (sparse CSR) with 32-bit indices where they fit: the sparse BLAS takes them without a copy."""
    if max(m.shape[0] + 1, m.shape[1], m.values().numel()) >= 2**31:
        return m
    return torch.sparse_csr_tensor(m.crow_indices().to(torch.int32), m.col_indices().to(torch.int32), m.values(),
                                   m.shape, check_invariants=False)  # the indices of a valid CSR matrix


class _Interpolate(torch.autograd.Function):
    """``W @ table`` for a fixed sparse ``W``, with the gradient ``Wᵀ @ g`` (both CSR: row-parallel)."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, W: torch.Tensor, Wt: torch.Tensor) -> torch.Tensor:
        ctx.Wt = Wt
        return W @ table

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return ctx.Wt @ grad.contiguous(), None, None


def make_encoding(name: str, *, seed: int = 0, box=None, **options) -> nn.Module:
    """Build an encoding by name.

    Parameters
    ----------
    name : {"positional", "fourier", "hash", "periodic", "none"}
        The encoding (``None`` means ``"none"``).
    seed : int
        Seed of the random parts (Fourier matrix, hash-grid features).
    box : (array_like (3,), array_like (3,)), optional
        ``(lo, hi)`` in normalised units: the hash grid's domain (default: the box of the
        points the density was normalised on) and the periodic encoding's period.
    **options
        Passed to the encoding's constructor.

    Returns
    -------
    torch.nn.Module
        ``forward(u (n, 3)) -> features (n, out_dim)``, with an ``out_dim`` attribute.
    """
    name = "none" if name is None else name
    check_choice(name, ENCODINGS, name="encoding")
    if name == "positional":
        return PositionalEncoding(**options)
    if name == "fourier":
        return FourierFeatures(seed=seed, **options)
    if name == "hash":
        if box is not None:
            options = {"lo": box[0], "hi": box[1], **options}
        return HashGridEncoding(seed=seed, **options)
    if name == "periodic":
        if box is not None:
            options = {"lo": box[0], "hi": box[1], **options}
        return PeriodicEncoding(**options)
    if options:
        raise ValueError(f"encoding 'none' takes no options, got {sorted(options)}")
    return IdentityEncoding()
