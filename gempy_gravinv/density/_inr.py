"""INRDensity: coordinate encoding + MLP + bounded output, a density field anywhere."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from .._mesh import PrismMesh
from .._validation import as_finite_array, check_choice, check_int
from ._encodings import ENCODINGS, CoordinateNormalizer, cached_on_points, make_encoding
from ._warp import CellIndexWarp

OUTPUTS = ("tanh", "sigmoid", "linear")
_ACTIVATIONS = {
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
}

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def as_torch_dtype(dtype) -> torch.dtype:
    """``"float32"``/``"float64"``/torch dtype -> torch dtype.

    Parameters
    ----------
    dtype : str or torch.dtype
        ``"float32"``, ``"float64"``, ``torch.float32`` or ``torch.float64``.

    Returns
    -------
    torch.dtype

    Raises
    ------
    TypeError
        Any other value.
    """
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}")


def check_bounds(bounds) -> tuple[float, float] | None:
    """Validate ``(lo, hi)`` density bounds.

    Parameters
    ----------
    bounds : (float, float) or None
        Lower and upper density contrast, kg/m³, finite, ``lo < hi``.

    Returns
    -------
    (float, float) or None
        ``None`` passes through.
    """
    if bounds is None:
        return None
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"bounds must be a pair (lo, hi) in kg/m³, got {bounds!r}") from exc
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"bounds must be finite, got ({lo}, {hi})")
    if lo >= hi:
        raise ValueError(f"bounds need lo < hi (kg/m³), got lo={lo}, hi={hi}")
    return lo, hi


class BoundedOutput(nn.Module):
    """Map an unbounded network output to density in kg/m³.

    ``"tanh"``: ``mid + half · tanh(raw)`` (with bounds ±600 this is the paper's
    ``600 tanh``); ``"sigmoid"``: ``lo + (hi - lo) · sigmoid(raw)``; ``"linear"``:
    ``scale · raw`` (no bounds).

    Parameters
    ----------
    kind : {"tanh", "sigmoid", "linear"}
        The map.
    bounds : (lo, hi) or None
        Density contrast bounds, kg/m³ (required unless ``kind="linear"``).
    scale : float
        kg/m³ per unit of the raw output for ``"linear"``.
    """

    def __init__(self, kind: str = "tanh", bounds=(-600.0, 600.0), scale: float = 1.0) -> None:
        super().__init__()
        check_choice(kind, OUTPUTS, name="output")
        b = check_bounds(bounds)
        if kind != "linear" and b is None:
            raise ValueError(f"output {kind!r} needs bounds (lo, hi) in kg/m³")
        self.kind = kind
        self.bounds = b
        self.scale = float(scale)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        if self.kind == "linear":
            return self.scale * raw
        lo, hi = self.bounds
        if self.kind == "tanh":
            return (lo + hi) / 2 + (hi - lo) / 2 * torch.tanh(raw)
        return lo + (hi - lo) * torch.sigmoid(raw)

    def inverse(self, value: float, margin: float = 0.01) -> float:
        """Raw value giving ``value`` kg/m³ (kept ``margin`` of the range inside the bounds)."""
        if self.kind == "linear":
            return value / self.scale
        lo, hi = self.bounds
        t = min(max((value - lo) / (hi - lo), margin), 1 - margin)
        if self.kind == "tanh":
            return math.atanh(2 * t - 1)
        return math.log(t / (1 - t))


def cell_points(mesh: PrismMesh, quadrature: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Evaluation points of a mesh: cell centres or Gauss–Legendre points per cell.

    Parameters
    ----------
    mesh : PrismMesh
        The cells.
    quadrature : int
        1: cell centres; ``q`` > 1: ``q³`` Gauss–Legendre points per cell.

    Returns
    -------
    points : ndarray (n_cells · q³, 3)
        Metres, grouped by cell (cell 0's points first).
    weights : ndarray (n_cells, q³)
        Weights that sum to 1 per cell: ``(values.reshape(n_cells, q³) * weights).sum(1)``
        is the cell-average density.
    """
    q = check_int(quadrature, name="quadrature (points per axis)", minimum=1)
    if q == 1:
        return mesh.cell_centers, np.ones((mesh.n_cells, 1))
    from .._operator import GravityOperator

    pts, wts, _ = GravityOperator._quadrature_points(mesh, q)
    w = wts.reshape(mesh.n_cells, q**3) / mesh.volumes[:, None]
    return pts, w


def evaluate_on_mesh(density: nn.Module, mesh: PrismMesh, quadrature: int = 1,
                     chunk: int = 200_000) -> torch.Tensor:
    """Cell-average density of a backend on ``mesh`` (differentiable).

    Parameters
    ----------
    density : torch.nn.Module
        Density backend: points (n, 3) m -> density contrast (n,) kg/m³.
    mesh : PrismMesh
        The cells.
    quadrature : int
        1: the value at the cell centre; ``q`` > 1: the mean over ``q³`` Gauss–Legendre
        points per cell.
    chunk : int
        Points evaluated per call (memory bound).

    Returns
    -------
    torch.Tensor (n_cells,)
        Density contrast, kg/m³.
    """
    pts, w = cell_points(mesh, quadrature)
    p = torch.as_tensor(pts)
    vals = torch.cat([density(p[i:i + chunk]) for i in range(0, p.shape[0], chunk)])
    wt = torch.as_tensor(w, dtype=vals.dtype, device=vals.device)
    return (vals.reshape(mesh.n_cells, -1) * wt).sum(1)


def _periodic_box(mesh: PrismMesh, box_extent) -> np.ndarray:
    """The box (6,) m of a periodic encoding: ``box_extent`` when given (checked), else the mesh's extent."""
    if box_extent is None:
        return np.asarray(mesh.extent, dtype=np.float64)
    e = as_finite_array(box_extent, name="box_extent (xmin, xmax, ymin, ymax, zmin, zmax, metres)", shape=(6,))
    if not np.all(e[1::2] > e[0::2]):
        raise ValueError("box_extent must be 6 finite numbers (xmin, xmax, ymin, ymax, zmin, zmax, metres) with "
                         f"each max above its min, got {e.tolist()}")
    return e


class INRDensity(nn.Module):
    """Implicit neural density field: normalise → encode → MLP → bounded output.

    Parameters
    ----------
    mesh : PrismMesh, optional
        Fits the coordinate normalisation to its cell centres (and the hash grid box).
    points : array_like (n, 3), optional
        Alternative to ``mesh``: points (m) to fit the normalisation to.
    center, scale : array_like (3,), optional
        Explicit normalisation (m, m per unit); overrides ``mesh``/``points``.
    normalization : {"zscore", "extent", "isotropic", "cells"}
        See :class:`~gempy_gravinv.density._encodings.CoordinateNormalizer`. The paper
        z-scores each axis. ``"cells"``: a hash grid reads the coordinates in the
        mesh's cell-index space (:class:`~gempy_gravinv.density._warp.CellIndexWarp`:
        along each axis, equal steps are equal numbers of the finest cells there), so
        its vertices follow the cell sizes of a graded mesh; needs ``mesh``. Other
        encodings, whose frequencies are in metres, z-score instead.
    axis_scale : sequence of 3 floats
        Multiplies the normalised coordinates per axis: raises (>1) or lowers (<1) the
        encoding frequencies along x, y, z.
    encoding : {"positional", "fourier", "hash", "periodic", "none"}
        Coordinate encoding; ``encoding_options`` go to its constructor (e.g.
        ``n_frequencies``, ``min_frequency`` for positional; ``n_features``, ``sigma``
        for fourier; ``n_levels``, ``base_resolution``... for hash; ``n_harmonics`` for
        periodic, whose period is the mesh box: needs ``mesh``; ``period_factor`` f > 1
        makes the period f times the box along every axis, from its low corner, so the
        field need not agree on opposite faces; ``box_extent`` (xmin, xmax, ymin, ymax,
        zmin, zmax in m) replaces the mesh box by another, e.g. the core of a padded
        mesh: at points outside it the field is the lattice's periodic continuation,
        while the closed-form head's cell values keep one period centred on the box,
        :mod:`gempy_gravinv.inversion._lattice_design`).
    width, depth : int
        Hidden units per layer and number of hidden layers (the paper used 256, 4).
    activation : str
        ``leaky_relu`` (slope 0.01, the paper), ``relu``, ``tanh``, ``silu``, ``gelu``,
        ``softplus``.
    output : {"tanh", "sigmoid", "linear"}
        Bounded output in ``bounds`` (kg/m³) or linear (``bounds=None``).
    bounds : (lo, hi)
        Density contrast bounds, kg/m³ (paper: ±600).
    init_value : float, optional
        Start the field near this density (kg/m³): the last layer's weights are scaled
        by ``last_layer_gain`` and its bias set so the output is ``init_value``.
        ``None`` keeps PyTorch's default initialisation (the paper).
    last_layer_gain : float
        Multiplier of the last layer's initial weights when ``init_value`` is set.
    seed : int, optional
        Seeds the weights (a local generator state: the global RNG is restored after).
    dtype : {"float32", "float64"}
        Network dtype. Points are cast to it; outputs are in it.

    Notes
    -----
    ``forward(points)`` takes points (n, 3) in metres, z up, and returns the density
    contrast (n,) in kg/m³; the field is defined everywhere (the hash grid clamps points
    outside its box to the box). The defaults are those of
    :class:`~gempy_gravinv.INRConfig` (a 3 x 64 LeakyReLU MLP on a 3-octave positional
    encoding, sigmoid output in ±600 kg/m³ started at 0, float32), so a field built here
    and one built by the trainer from ``INRConfig()`` are the same network.
    """

    def __init__(self, mesh: PrismMesh | None = None, *, points=None, center=None, scale=None,
                 normalization: str = "zscore", axis_scale=(1.0, 1.0, 1.0),
                 encoding: str = "positional", encoding_options: dict | None = None,
                 width: int = 64, depth: int = 3, activation: str = "leaky_relu",
                 output: str = "sigmoid", bounds=(-600.0, 600.0), init_value: float | None = 0.0,
                 last_layer_gain: float = 0.1, seed: int | None = None, dtype="float32") -> None:
        super().__init__()
        check_choice(encoding, ENCODINGS, name="encoding")
        check_choice(activation, sorted(_ACTIVATIONS), name="activation")
        width = check_int(width, name="width", minimum=1)
        depth = check_int(depth, name="depth", minimum=0)
        self.dtype = as_torch_dtype(dtype)
        if center is not None and scale is not None:
            self.normalizer = CoordinateNormalizer(center, scale, axis_scale)
            ref = None
        else:
            if mesh is not None:
                ref = mesh.cell_centers
            elif points is not None:
                ref = np.asarray(points, dtype=np.float64).reshape(-1, 3)
            else:
                raise ValueError("INRDensity needs a mesh, points, or center and scale to normalise coordinates")
            if normalization == "cells" and encoding == "hash":
                if mesh is None:
                    raise ValueError("normalization='cells' needs a mesh: its cells set the coordinates")
                self.normalizer = CellIndexWarp.from_mesh(mesh)
            else:
                self.normalizer = CoordinateNormalizer.from_points(
                    ref, "zscore" if normalization == "cells" else normalization, axis_scale)
        self.options: dict[str, Any] = dict(
            normalization=normalization, axis_scale=list(map(float, axis_scale)), encoding=encoding,
            encoding_options=dict(encoding_options or {}), width=int(width), depth=int(depth),
            activation=activation, output=output, bounds=None if bounds is None else list(bounds),
            init_value=init_value, last_layer_gain=last_layer_gain, seed=seed, dtype=str(self.dtype).split(".")[-1])
        box = None
        if encoding == "periodic":  # the period is the mesh box, cell faces included
            if mesh is None:
                raise ValueError("encoding='periodic' needs a mesh: its period is the mesh's box")
            encoding_options = dict(encoding_options or {})
            e = _periodic_box(mesh, encoding_options.pop("box_extent", None))
            corners = torch.as_tensor(np.array([[e[0], e[2], e[4]], [e[1], e[3], e[5]]]))
            u = self.normalizer(corners).numpy()
            f = float(encoding_options.pop("period_factor", 1.0))
            if not f >= 1.0:
                raise ValueError(f"period_factor must be >= 1 (the period in boxes), got {f}")
            box = (u.min(0), u.max(0) if f == 1.0 else u.min(0) + f * (u.max(0) - u.min(0)))
            self.period_factor = f  # the box is the first 1/f of each period
            encoding_options = {"lengths": f * (e[1::2] - e[0::2]), **encoding_options}
        elif encoding == "hash":
            if ref is not None:
                u = self.normalizer(torch.as_tensor(ref)).numpy()
                box = (u.min(0), u.max(0))
                box = (box[0], np.where(box[1] > box[0], box[1], box[0] + 1.0))
            else:
                box = (-np.ones(3), np.ones(3))
        self.output = BoundedOutput(output, bounds)

        rng_state = torch.get_rng_state()
        try:
            if seed is not None:
                torch.manual_seed(int(seed))
            self.encoding = make_encoding(encoding, seed=0 if seed is None else int(seed), box=box,
                                          **dict(encoding_options or {}))
            layers: list[nn.Module] = []
            d_in = self.encoding.out_dim
            for _ in range(int(depth)):
                layers += [nn.Linear(d_in, int(width), dtype=torch.float64), _ACTIVATIONS[activation]()]
                d_in = int(width)
            self.last = nn.Linear(d_in, 1, dtype=torch.float64)
            self.mlp = nn.Sequential(*layers)
            if init_value is not None:
                with torch.no_grad():
                    self.last.weight.mul_(float(last_layer_gain))
                    self.last.bias.fill_(self.output.inverse(float(init_value)))
        finally:
            if seed is not None:
                torch.set_rng_state(rng_state)
        self.to(self.dtype)
        # normalisation and the hash box stay in float64 (metres in, cast after)
        self.normalizer.double()

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # new normaliser values: drop the cached points
        self.__dict__.pop("_cache", None)
        super()._load_from_state_dict(*args, **kwargs)

    # ------------------------------------------------------------------ evaluation
    def features(self, points: torch.Tensor) -> torch.Tensor:
        """What the last layer sees (n, F), dimensionless: the encoding after the hidden layers.

        ``raw(points) = last(features(points))``: the field is linear in the last
        layer's weights and bias given these (used by ``solver="linear"``).
        """
        p = torch.as_tensor(points)
        if p.ndim != 2 or p.shape[-1] != 3:
            raise ValueError(f"points must have shape (n, 3) in metres, got {tuple(p.shape)}")
        # a trainer evaluates the same points every step: their normalised coordinates are cached
        u = cached_on_points(self, p, lambda q: self.normalizer(
            q.to(device=self.normalizer.device, dtype=torch.float64)).to(self.dtype))
        return self.mlp(self.encoding(u))

    def raw(self, points: torch.Tensor) -> torch.Tensor:
        """The network output before the bound (n,), dimensionless."""
        return self.last(self.features(points))[:, 0]

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """Density contrast (n,) in kg/m³ at ``points`` (n, 3) in metres, z up."""
        return self.output(self.raw(points))

    def on_mesh(self, mesh: PrismMesh, quadrature: int = 1) -> torch.Tensor:
        """Cell-average density (n_cells,) kg/m³ on ``mesh`` (differentiable)."""
        return evaluate_on_mesh(self, mesh, quadrature)

    def extra_repr(self) -> str:
        o = self.options
        return (f"encoding={o['encoding']}, width={o['width']}, depth={o['depth']}, "
                f"output={o['output']}{tuple(o['bounds']) if o['bounds'] else ''} kg/m³")
