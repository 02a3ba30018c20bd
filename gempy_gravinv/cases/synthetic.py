"""Synthetic benchmark cases with known truth: the paper's blocky and smooth cases.

Every case returns a :class:`SyntheticCase`: a tensor :class:`~gempy_gravinv.PrismMesh`
(discretize cell order: x fastest, then y, then z from the bottom), a
:class:`~gempy_gravinv.Survey` with seeded Gaussian noise, the true density
**contrast** in kg/m³ and the noise-free g_z in mGal, positive downward.

- :func:`dipping_block`: the paper's blocky case (seven +400 kg/m³ slabs stepping down).
- :func:`smooth_grf`: the paper's smooth case (Gaussian random field, 1.6–3.5 g/cm³).
- :func:`single_block`: a tiny case (one dense block) for fast tests of inversions.

Conventions: metres, z up; density contrast in kg/m³; g_z in mGal, positive downward.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .._constants import SI_TO_MGAL, G
from .._forward import forward_gz
from .._mesh import PrismMesh
from .._survey import Survey
from .._validation import check_choice, check_number

__all__ = ["SyntheticCase", "dipping_block", "smooth_grf", "single_block", "make_noise",
           "grf_field", "layer_index", "paper_sensitivity"]


@dataclass
class SyntheticCase:
    """A synthetic gravity problem with known truth.

    Attributes
    ----------
    name : str
        Case label (``"dipping_block"``, ``"dipping_block_paper"``, ``"smooth_grf"``, ...).
    mesh : PrismMesh
        Tensor mesh built from a ``discretize.TensorMesh`` (``mesh.source``); cells in
        discretize order (x fastest, then y, then z from the bottom); ``mesh.shape`` is
        ``(nx, ny, nz)``.
    survey : Survey
        Stations (metres, z up) with the noisy g_z (mGal, positive downward) and its
        standard deviation (mGal).
    model : numpy.ndarray, shape (n_cells,)
        True density **contrast**, kg/m³, relative to ``reference_density``.
    gz_clean : numpy.ndarray, shape (n_data,)
        Noise-free g_z of ``model``, mGal, positive downward (float64 prism operator).
    reference_density : float
        Absolute density the contrast is relative to, kg/m³ (0 for the dipping block;
        the field mean for the GRF).
    bounds : tuple of float
        Plausible (lower, upper) contrast bounds for inversions, kg/m³.
    meta : dict
        Seeds, noise level and noise std, geometry notes (JSON-serialisable values).
    """

    name: str
    mesh: PrismMesh
    survey: Survey
    model: np.ndarray
    gz_clean: np.ndarray
    reference_density: float
    bounds: tuple[float, float]
    meta: dict = field(default_factory=dict)

    @property
    def absolute_density(self) -> np.ndarray:
        """True absolute density on the cells, kg/m³ (``model + reference_density``)."""
        return self.model + self.reference_density

    def __repr__(self) -> str:
        return (f"SyntheticCase(name={self.name!r}, n_cells={self.mesh.n_cells}, "
                f"shape={self.mesh.shape}, n_data={self.survey.n_data}, "
                f"model in [{self.model.min():.1f}, {self.model.max():.1f}] kg/m³, "
                f"reference_density={self.reference_density:.1f} kg/m³)")


# ---------------------------------------------------------------------- helpers
def make_noise(gz, relative_noise: float = 0.01, seed: int | None = 0,
               scale_from=None) -> tuple[np.ndarray, np.ndarray]:
    """Add seeded Gaussian noise with σ = ``relative_noise`` · std(g_z).

    Parameters
    ----------
    gz : array_like, shape (n_data,)
        Noise-free g_z, mGal (any sign convention; the noise is symmetric).
    relative_noise : float
        σ as a fraction of the population standard deviation (``ddof=0``) of ``gz``;
        0.01 in both paper cases. Must be > 0.
    seed : int or None
        Seed of ``numpy.random.default_rng``; ``None`` draws fresh entropy.
    scale_from : array_like, shape (n_data,), optional
        Take σ from the standard deviation of this array instead of ``gz`` (mGal; the
        paper scales its noise by the g_z of the *absolute* density while the case
        holds the contrast's).

    Returns
    -------
    gz_noisy : numpy.ndarray, shape (n_data,)
        ``gz + σ · N(0, 1)``, mGal.
    std : numpy.ndarray, shape (n_data,)
        σ for every datum, mGal (the standard deviation to put in the survey).

    Raises
    ------
    ValueError
        Non-positive ``relative_noise``, non-finite or constant ``gz``.
    """
    g = np.asarray(gz, dtype=np.float64).reshape(-1)
    if g.size == 0 or not np.all(np.isfinite(g)):
        raise ValueError("gz must be a non-empty finite array (mGal)")
    check_number(relative_noise, name="relative_noise", low=0.0, low_open=True)
    ref = g if scale_from is None else np.asarray(scale_from, dtype=np.float64).reshape(-1)
    if ref.shape != g.shape or not np.all(np.isfinite(ref)):
        raise ValueError(f"scale_from must be a finite array of {g.size} values (mGal)")
    sigma = float(relative_noise) * float(np.std(ref))
    if sigma <= 0:
        raise ValueError("gz is constant: std(gz) = 0 gives no noise scale")
    rng = np.random.default_rng(seed)
    noisy = g + sigma * rng.standard_normal(g.size)
    return noisy, np.full(g.size, sigma)


def layer_index(mesh: PrismMesh) -> np.ndarray:
    """Horizontal-layer index of every cell of a tensor mesh, counted from the top (0 = top).

    Parameters
    ----------
    mesh : PrismMesh
        Tensor mesh (``mesh.shape`` set) in discretize order; active cells allowed.

    Returns
    -------
    numpy.ndarray of int, shape (n_cells,)
    """
    if mesh.shape is None:
        raise ValueError("layer_index needs a tensor mesh (PrismMesh.shape is None)")
    nx, ny, nz = mesh.shape
    iz = np.repeat(np.arange(nz), nx * ny)  # discretize order: z slowest, from the bottom
    if mesh.active_cells is not None:
        iz = iz[mesh.active_cells]
    return (nz - 1 - iz).astype(int)


def _tensor_case_mesh(shape, cell_size, origin) -> PrismMesh:
    nx, ny, nz = (int(s) for s in shape)
    if min(nx, ny, nz) < 1:
        raise ValueError(f"shape must be three positive integers, got {shape}")
    if not np.all(np.asarray(cell_size, float) > 0):
        raise ValueError(f"cell_size must be > 0 (m), got {cell_size}")
    h = np.broadcast_to(np.asarray(cell_size, float), (3,))
    return PrismMesh.from_tensor([h[0]] * nx, [h[1]] * ny, [h[2]] * nz, origin=origin)


def _stations_over_centres(mesh: PrismMesh, z: float) -> np.ndarray:
    """Stations at every cell-centre (x, y) of a tensor mesh, at elevation z (m); x fastest."""
    src = mesh.source
    xx, yy = np.meshgrid(src.cell_centers_x, src.cell_centers_y, indexing="xy")
    return np.column_stack([xx.ravel(), yy.ravel(), np.full(xx.size, float(z))])


def _finish(name, mesh, loc, model, reference, bounds, relative_noise, noise_seed, device,
            meta, check_stations=True, sensitivity=None) -> SyntheticCase:
    if sensitivity is None:
        gz, scale_from = forward_gz(mesh, loc, model, device=device, check_stations=check_stations), None
    else:  # the paper's own G (artefact included), applied as its script does
        gz = sensitivity @ model
        scale_from = sensitivity @ (model + reference)
    noisy, std = make_noise(gz, relative_noise, noise_seed, scale_from)
    meta = dict(meta)
    meta.update(noise_seed=noise_seed, relative_noise=float(relative_noise),
                noise_std_mgal=float(std[0]), gz_std_mgal=float(np.std(gz)),
                n_cells=int(mesh.n_cells), n_data=int(loc.shape[0]), shape=list(mesh.shape),
                units={"model": "kg/m3 contrast", "gz": "mGal, positive down", "xyz": "m, z up"})
    return SyntheticCase(name=name, mesh=mesh, survey=Survey(loc, gz=noisy, std=std, name=name),
                         model=np.asarray(model, float), gz_clean=gz, reference_density=float(reference),
                         bounds=(float(bounds[0]), float(bounds[1])), meta=meta)


# ---------------------------------------------------------------------- case 1
def dipping_block(*, noise_seed: int | None = 0, relative_noise: float = 0.01,
                  paper_geometry: bool = False, device: str = "cpu") -> SyntheticCase:
    """The paper's blocky case: seven +400 kg/m³ slabs stepping down and sideways.

    Geometry: 50 m cubes, 21 x 21 cells in x, y with centres at
    0, 50, ..., 1000 m, 11 layers; 441 stations on the cell-centre (x, y) grid. On a
    zero background, slab ``i = 0..6`` spans x-cells 7..12, y-cells ``11-i..15-i``
    (inclusive) and layer ``1+i`` (layer 0 is the top layer), so 7 x 6 x 5 = 210 cells
    carry +400 kg/m³.

    Two vertical placements:

    - ``paper_geometry=False`` (ours): the top of the mesh at z = 0 (layer centres at
      -25, -75, ..., -525 m) and the stations 1 m above it, at z = +1 m.
    - ``paper_geometry=True`` (the public code of Mishra et al., arXiv 2510.17876,
      ``001-EncodingComparisons_blocky.py``): its cell centres lie at depths
      0, 50, ..., 500 m with half-height 25 m and its stations at depth -1 m (z down).
      In our z-up frame: layer centres at z = 0, -50, ..., -500 m (mesh top at
      z = +25 m, bottom at -525 m) and stations at z = +1 m, i.e. **inside** the top
      layer of cells, 1 m above their centres. Our operator refuses stations strictly
      inside cells by default; this case is built (and its data computed) with
      ``check_stations=False``, and any :class:`~gempy_gravinv.GravityOperator` on it
      needs ``check_stations=False`` too (``meta["check_stations"]`` is False).
      Our closed-form prism is exact for a station inside a cell (checked against the
      cell split into 8 sub-prisms at the station); the paper's kernel is not: its
      ``atan2`` branch adds about 2πGρ·48 m to the cell that contains the station
      (2.04 instead of 0.027 mGal for 1000 kg/m³, a 50 m cube). The true model is zero
      in the top layer, so the clean data agree; sensitivities of top-layer cells do
      not. :func:`paper_sensitivity` rebuilds the paper's G, artefact included, for
      exact reproduction.

    Parameters
    ----------
    noise_seed : int or None
        Seed of the Gaussian noise (numpy ``default_rng``).
    relative_noise : float
        σ as a fraction of std(g_z) (0.01 in the paper).
    paper_geometry : bool
        Put the mesh where the paper's code has it (see above).
    device : str
        Torch device used to compute the clean data.

    Returns
    -------
    SyntheticCase
        ``reference_density = 0``, ``bounds = (-600, 600)`` kg/m³ (the paper's
        ``600·tanh`` output range).
    """
    nx = ny = 21
    nz = 11
    h = 50.0
    z_top = 25.0 if paper_geometry else 0.0
    mesh = _tensor_case_mesh((nx, ny, nz), h, origin=(-h / 2, -h / 2, z_top - nz * h))
    m = np.zeros((nx, ny, nz))  # [ix, iy, iz], iz from the bottom
    slabs = []
    for i in range(7):
        layer = 1 + i
        iz = nz - 1 - layer
        m[7:13, 11 - i:16 - i, iz] = 400.0
        slabs.append({"x_cells": [7, 12], "y_cells": [11 - i, 15 - i], "layer_from_top": layer})
    model = m.ravel(order="F")
    loc = _stations_over_centres(mesh, 1.0)
    meta = {
        "case": "dipping block: seven +400 kg/m3 slabs, 50 m cubes",
        "paper_geometry": bool(paper_geometry),
        "check_stations": not paper_geometry,
        "cell_size_m": h,
        "mesh_top_z_m": z_top,
        "station_z_m": 1.0,
        "slab_contrast_kgm3": 400.0,
        "slabs": slabs,
        "geometry_note": (
            "paper geometry: layer centres at z = 0, -50, ..., -500 m, stations at z = +1 m "
            "inside the top layer (as in the paper's public code, z down there); built with "
            "check_stations=False" if paper_geometry else
            "mesh top at z = 0, layer centres at -25 ... -525 m, stations 1 m above the top"),
    }
    name = "dipping_block_paper" if paper_geometry else "dipping_block"
    return _finish(name, mesh, loc, model, 0.0, (-600.0, 600.0), relative_noise, noise_seed,
                   device, meta, check_stations=not paper_geometry)


# ---------------------------------------------------------------------- case 2
def grf_spectrum(shape, cell_size, length_scale: float = 5000.0, nu: float = 1.5) -> np.ndarray:
    """Power spectrum ``(|k|² + λ⁻²)^(-ν-1.5)`` of :func:`grf_field` on its FFT grid, k = 0 removed.

    Parameters
    ----------
    shape : tuple of 3 int
        ``(nx, ny, nz)`` grid size.
    cell_size : float or sequence of 3 floats
        Grid spacing, metres.
    length_scale, nu : float
        λ (m) and ν.

    Returns
    -------
    numpy.ndarray, shape (nx, ny, nz)
        ``P(k)`` with ``|k|`` in rad/m at ``numpy.fft.fftfreq`` wavenumbers (periodic grid);
        the covariance of the unscaled field is ``ifftn(P · fftn(·))``.
    """
    d = np.broadcast_to(np.asarray(cell_size, float), (3,))
    k = [2 * np.pi * np.fft.fftfreq(int(n), d=di) for n, di in zip(shape, d)]
    kx, ky, kz = np.meshgrid(*k, indexing="ij")
    p = (kx**2 + ky**2 + kz**2 + length_scale**-2) ** (-nu - 1.5)
    p[0, 0, 0] = 0.0
    return p


def grf_field(shape, cell_size, length_scale: float = 5000.0, nu: float = 1.5,
              seed: int | None = 0, generator: str = "numpy") -> np.ndarray:
    """A stationary Gaussian random field by FFT, zero mean, unit standard deviation.

    The power spectrum is ``P(k) = (|k|² + λ⁻²)^(-ν-1.5)`` with ``|k|`` in rad/m on the
    FFT grid (periodic), ``λ = length_scale`` (m) and the k = 0 term removed (as the
    paper's code does). White noise is filtered by ``sqrt(P)`` in the Fourier domain.

    Two noise sources (the spectrum, and so the statistics, are the same):

    - ``generator="numpy"``: real white noise from ``numpy.random.default_rng(seed)``,
      float64.
    - ``generator="paper"``: the paper's own recipe (``generate_grf_torch`` of
      ``001-EncodingComparison_smooth.py`` in Mishra et al.'s public code): complex64
      white noise from a CPU ``torch.Generator`` seeded with ``seed``, float32 FFTs, the
      real part kept. With ``seed=41`` (the script's ``SEED``), shape 40 x 40 x 20 and
      500 m cells, it gives the realization behind the paper's smooth-case numbers
      (constant-mean floor 403.5 kg/m³ after the 1.6–3.5 g/cm³ rescale). The paper's
      array has its depth index 0 at the top; it is flipped here so that the last
      index is the top, as for every field of this module.

    Parameters
    ----------
    shape : tuple of int
        ``(nx, ny, nz)`` grid size.
    cell_size : float or sequence of 3 floats
        Grid spacing, metres.
    length_scale : float
        λ, metres (> 0).
    nu : float
        Smoothness ν (> 0); larger is smoother.
    seed : int or None
        Seed of the white noise (``generator="paper"`` needs an int).
    generator : {"numpy", "paper"}
        Noise source, see above.

    Returns
    -------
    numpy.ndarray, shape (nx, ny, nz)
        Dimensionless field indexed ``[ix, iy, iz]`` (iz from the bottom), float64.
    """
    shp = tuple(int(s) for s in shape)
    if len(shp) != 3 or min(shp) < 1:
        raise ValueError(f"shape must be three positive integers, got {shape}")
    check_number(length_scale, name="length_scale (m)", low=0.0, low_open=True)
    check_number(nu, name="nu", low=0.0, low_open=True)
    check_choice(generator, ("numpy", "paper"), name="generator")
    p = grf_spectrum(shp, cell_size, length_scale, nu)
    if generator == "numpy":
        rng = np.random.default_rng(seed)
        w = rng.standard_normal(shp)
        f = np.real(np.fft.ifftn(np.fft.fftn(w) * np.sqrt(p)))
    else:
        if seed is None:
            raise ValueError("generator='paper' needs an integer seed (the paper's script uses 41)")
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        w = torch.randn(shp, dtype=torch.complex64, generator=gen)
        amp = torch.sqrt(torch.as_tensor(p, dtype=torch.float32))
        f = torch.real(torch.fft.ifftn(w * amp)).double().numpy()[:, :, ::-1].copy()
    s = f.std()
    if s == 0:
        raise ValueError("the random field is constant (grid too small for the spectrum)")
    return (f - f.mean()) / s


def smooth_grf(*, seed: int = 0, noise_seed: int | None = None, shape=(40, 40, 20),
               cell_size: float = 500.0, length_scale: float = 5000.0, nu: float = 1.5,
               density_range=(1600.0, 3500.0), relative_noise: float = 0.01,
               generator: str = "numpy", paper_geometry: bool = False,
               device: str = "cpu") -> SyntheticCase:
    """The paper's smooth case: a Gaussian random field of absolute density.

    Geometry: ``shape`` = 40 x 40 x 20 cells of 500 m, top of the
    mesh at z = 0 (x, y cell centres at 250, 750, ... m), one station 1 m above the top
    over every cell-centre (x, y) (1,600 stations). The field (:func:`grf_field`,
    spectrum ``(k² + λ⁻²)^(-ν-1.5)``, λ = 5 km, ν = 1.5) is rescaled min-max to
    ``density_range`` (1600–3500 kg/m³ = 1.6–3.5 g/cm³). The inversion target is the
    contrast to the field mean: ``reference_density`` = mean, ``model`` = field - mean,
    ``bounds`` = range - mean. The data are the g_z of that contrast (float64 prisms),
    with σ = ``relative_noise`` · std(g_z).

    ``paper_geometry=True`` rebuilds the paper's own set-up
    (``001-EncodingComparison_smooth.py``): its cell centres lie at depths 0, 500, ...,
    9500 m and its stations at depth 0, so in our z-up frame the layer centres are at
    z = 0, -500, ... (mesh top at z = +250 m) and every station sits **at the centre of
    a top-layer cell**. Its data come from its own sensitivity matrix
    (:func:`paper_sensitivity`), whose ``atan2`` branch gives the cell holding the
    station a sensitivity of 2πGΔz (Δz = 500 m): 20.97 mGal per g/cm³, where the
    physical value is 0 (the station is at the cell's centre). So each station nearly
    reads off the density of the top-layer cell around it, which no real survey does. The
    noise σ is 1% of std(g_z) of the absolute density, as its script has it. Any
    operator on this case needs ``check_stations=False`` (``meta["check_stations"]``),
    and reproducing the paper means inverting with ``paper_sensitivity(mesh,
    survey.locations)`` as the operator.

    Parameters
    ----------
    seed : int
        Seed of the field realization. ``generator="paper", seed=41`` is the paper's
        own realization (floor 403.5 kg/m³), the one its smooth-case numbers are for.
    noise_seed : int or None
        Seed of the data noise; ``None`` uses ``seed + 1``.
    shape : tuple of int
        ``(nx, ny, nz)``; small values make tiny test versions.
    cell_size : float
        Cube edge, metres.
    length_scale, nu : float
        Spectrum parameters λ (m) and ν.
    density_range : tuple of float
        (min, max) absolute density after rescaling, kg/m³.
    relative_noise : float
        σ as a fraction of std(g_z).
    generator : {"numpy", "paper"}
        White-noise source of the field (:func:`grf_field`): ours (numpy) or the
        paper script's (torch, complex64).
    paper_geometry : bool
        The paper's stations and kernel (see above) instead of ours.
    device : str
        Torch device used to compute the clean data.

    Returns
    -------
    SyntheticCase
        ``model`` in kg/m³ (contrast, zero mean), ``reference_density`` in kg/m³.
    """
    lo, hi = (float(v) for v in density_range)
    if not hi > lo:
        raise ValueError(f"density_range must be (min, max) with max > min (kg/m³), got {density_range}")
    if noise_seed is None:
        noise_seed = int(seed) + 1
    f = grf_field(shape, cell_size, length_scale, nu, seed, generator)
    rho = lo + (f - f.min()) * (hi - lo) / (f.max() - f.min())
    nx, ny, nz = f.shape
    h = float(cell_size)
    z_top = h / 2 if paper_geometry else 0.0
    mesh = _tensor_case_mesh((nx, ny, nz), cell_size, origin=(0.0, 0.0, z_top - nz * h))
    absolute = rho.ravel(order="F")
    ref = float(absolute.mean())
    model = absolute - ref
    loc = _stations_over_centres(mesh, 0.0 if paper_geometry else 1.0)
    sens = paper_sensitivity(mesh, loc, dtype=np.float64) if paper_geometry else None
    meta = {
        "case": "smooth Gaussian random field",
        "seed": int(seed),
        "generator": generator,
        "length_scale_m": float(length_scale),
        "nu": float(nu),
        "cell_size_m": float(cell_size),
        "density_range_kgm3": [lo, hi],
        "reference_density_kgm3": ref,
        "mesh_top_z_m": z_top,
        "station_z_m": 0.0 if paper_geometry else 1.0,
        "paper_geometry": bool(paper_geometry),
        "constant_mean_floor_kgm3": float(np.sqrt(np.mean(model**2))),
        "check_stations": not paper_geometry,
    }
    if paper_geometry:
        meta["geometry_note"] = ("paper geometry: stations at the centres of the top-layer cells, data from "
                                 "the paper's sensitivity matrix (kernel artefact included)")
    name = "smooth_grf_paper" if paper_geometry else "smooth_grf"
    return _finish(name, mesh, loc, model, ref, (lo - ref, hi - ref), relative_noise,
                   noise_seed, device, meta, check_stations=not paper_geometry, sensitivity=sens)


# ---------------------------------------------------------------------- tiny case
def single_block(*, noise_seed: int | None = 0, relative_noise: float = 0.01,
                 shape=(8, 8, 4), cell_size: float = 100.0, contrast: float = 500.0,
                 block=((2, 4), (4, 6), (1, 3)), device: str = "cpu") -> SyntheticCase:
    """A tiny case for fast tests: one dense block in a zero background.

    Mesh of ``shape`` cubes of ``cell_size`` m, top at z = 0, one station 1 m above the
    top over every cell-centre (x, y). The block covers x-cells ``block[0][0]`` to
    ``block[0][1] - 1``, y-cells ``block[1]`` likewise and layers ``block[2]`` counted
    from the top (half-open ranges); the default is off-centre so that position
    recovery is testable.

    Parameters
    ----------
    noise_seed : int or None
        Seed of the noise.
    relative_noise : float
        σ as a fraction of std(g_z).
    shape : tuple of int
        ``(nx, ny, nz)``.
    cell_size : float
        Cube edge, metres.
    contrast : float
        Block density contrast, kg/m³ (non-zero; negative for a deficit).
    block : tuple of 3 (start, stop) pairs
        Half-open cell ranges in x, y and layers from the top.
    device : str
        Torch device used to compute the clean data.

    Returns
    -------
    SyntheticCase
        ``reference_density = 0``; ``bounds = (-1.5 |contrast|, 1.5 |contrast|)``.
    """
    nx, ny, nz = (int(s) for s in shape)
    if contrast == 0:
        raise ValueError("contrast must be non-zero (kg/m³)")
    (x0, x1), (y0, y1), (l0, l1) = block
    for (a, b), n, ax in (((x0, x1), nx, "x"), ((y0, y1), ny, "y"), ((l0, l1), nz, "layer")):
        if not 0 <= a < b <= n:
            raise ValueError(f"block {ax} range [{a}, {b}) must lie inside 0..{n}")
    mesh = _tensor_case_mesh((nx, ny, nz), cell_size, origin=(0.0, 0.0, -nz * float(cell_size)))
    m = np.zeros((nx, ny, nz))
    m[x0:x1, y0:y1, nz - l1:nz - l0] = float(contrast)
    model = m.ravel(order="F")
    loc = _stations_over_centres(mesh, 1.0)
    c = abs(float(contrast))
    meta = {"case": "single block", "block_cells": [[x0, x1], [y0, y1], [l0, l1]],
            "block_contrast_kgm3": float(contrast), "cell_size_m": float(cell_size),
            "block_center_m": mesh.cell_centers[model != 0].mean(axis=0).tolist(),
            "check_stations": True}
    return _finish("single_block", mesh, loc, model, 0.0, (-1.5 * c, 1.5 * c), relative_noise,
                   noise_seed, device, meta)


# ---------------------------------------------------------------------- paper kernel
def paper_sensitivity(mesh: PrismMesh, locations, *, dtype=np.float32) -> np.ndarray:
    """The sensitivity matrix exactly as the paper's public code builds it (artefact included).

    Only for reproducing the paper's numbers on :func:`dipping_block` with
    ``paper_geometry=True``: for stations above or level with the top of the cells it
    equals our prism operator (to float32 rounding); for a station strictly inside a
    cell, the paper's
    ``atan2(xy, z r)`` corner term jumps by π and adds about 2πGρ·(distance to the
    cell's far face) to that cell's sensitivity (2.04 instead of 0.027 mGal for a
    50 m cube of 1000 kg/m³ with the station 1 m above its centre); stations below a
    cell get the same kind of error (the formula assumes the cell lies below). Use
    :class:`~gempy_gravinv.GravityOperator` for anything physical.

    Parameters
    ----------
    mesh : PrismMesh
        Cells (any order; the result follows it).
    locations : array_like, shape (n_data, 3)
        Stations, metres, z up.
    dtype : numpy dtype
        ``float32`` as in the paper's script (default) or ``float64``.

    Returns
    -------
    numpy.ndarray, shape (n_data, n_cells)
        mGal per kg/m³, positive downward.
    """
    loc = np.asarray(locations, float)
    b = mesh.bounds
    # the paper works with z down: depth = -z
    x = np.stack([b[:, 0], b[:, 1]])[:, None, :] - loc[None, :, 0:1]  # (2, n_data, n_cells)
    y = np.stack([b[:, 2], b[:, 3]])[:, None, :] - loc[None, :, 1:2]
    z = np.stack([-b[:, 5], -b[:, 4]])[:, None, :] + loc[None, :, 2:3]  # depth relative to station
    x, y, z = (a.astype(dtype) for a in (x, y, z))

    def corner(xx, yy, zz):
        eps = dtype(1e-20) if dtype == np.float64 else np.float32(1e-20)
        r = np.maximum(np.sqrt(xx * xx + yy * yy + zz * zz), eps)
        return -(xx * np.log(np.abs(yy + r) + eps) + yy * np.log(np.abs(xx + r) + eps)
                 - zz * np.arctan2(xx * yy, zz * r + eps))

    a = np.zeros(x.shape[1:], dtype=dtype)
    for i in (0, 1):
        for j in (0, 1):
            for k in (0, 1):
                s = (-1) ** (3 - i - j - k)
                a += s * corner(x[i], y[j], z[k])
    return (a * dtype(G * SI_TO_MGAL)).astype(dtype)
