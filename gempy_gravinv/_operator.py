"""GravityOperator: density on cells (kg/m³) -> g_z at stations (mGal, positive down).

Matrix-free and chunked, with an exact adjoint wired into autograd. The forward never
builds the n_data x n_cells matrix unless ``store="dense"`` (or ``"auto"`` and it fits).

How it is computed. Every prism is a signed sum over its 8 corners of the corner
function ``K`` (:mod:`gempy_gravinv._kernels`). Neighbouring cells share corners, so
the operator evaluates ``K`` once per unique corner node and station, and folds the
density into node weights ``w = Dᵀ ρ`` (``D`` is the sparse cell-to-corner sign map):

    g = G_mgal · K(stations, nodes) · w,        Gᵀ r = D · (K(stations, nodes)ᵀ r).

On a tensor mesh there are ~1.2 nodes per cell against 8 corners per cell: about 8x
fewer transcendental evaluations than the cell-by-cell path (``method="cells"``, kept
as the reference). Point masses (``kernel="point"``) use the same chunked machinery
with Gauss–Legendre points inside each cell.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch

from ._components import UNITS, check_component, kernel_kind
from ._device import DeviceUnavailableError, MemoryEstimate, available_memory, resolve_device
from ._kernels import (
    CORNER_SIGNS,
    as_rows3,
    cell_corner_sum,
    cell_jtj,
    grid_cell_rows,
    grid_kernel,
    kernel_block,
    kernel_block3,
    kernel_block3_t,
    kernel_matvec3,
    kernel_rmatvec3,
)
from ._lattice import LatticePlan
from ._mesh import PrismMesh, as_prism_mesh
from ._runtime import compiled, in_forked_child
from ._survey import Survey
from ._validation import check_choice, check_int, check_number

# re-exported: these lived here before ``_device`` existed
__all__ = ["DeviceUnavailableError", "GravityOperator", "MemoryEstimate", "available_memory", "resolve_device"]

_STORES = ("auto", "dense", "matrix_free")
_METHODS = ("nodes", "cells")
_KERNELS = ("prism", "point")
# bytes of temporaries per evaluated (station, column) pair, in units of the dtype size
_TEMPS_PER_PAIR = {"prism": 14, "point": 8}
# a tensor mesh's full node grid is kept (rows by triple differences) while the active
# cells use at least this share of its nodes; below, only their nodes are evaluated
_GRID_NODE_FRACTION = 0.8
# CPU work (station-column pairs) from which "auto" compiles: compilation costs ~5-20 s once
_AUTO_COMPILE_PAIRS_MATRIX_FREE = 1e7
AUTO_COMPILE_PAIRS_DENSE = 2e8


class _GravityFunction(torch.autograd.Function):
    """g = G m with backward Gᵀ r (exact adjoint, chunked); twice differentiable."""

    @staticmethod
    def forward(ctx, density, op):  # type: ignore[override]
        ctx.op = op
        return op.forward(density, _check=False)  # the public call checks, not the autograd path

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        return _GravityAdjointFunction.apply(grad_out, ctx.op), None


class _GravityAdjointFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, residual, op):  # type: ignore[override]
        ctx.op = op
        return op.adjoint(residual)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        return _GravityFunction.apply(grad_out, ctx.op), None


class GravityOperator:
    """Linear map from density contrast on prisms to g_z at stations.

    Parameters
    ----------
    mesh : PrismMesh or discretize mesh
        The cells. A discretize ``TensorMesh``/``TreeMesh`` is wrapped with
        :meth:`PrismMesh.from_discretize` (all cells active).
    survey : Survey or array_like (n_data, 3)
        Stations (metres, z up).
    device : str or torch.device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    dtype : torch.dtype
        ``torch.float64`` (default) or ``torch.float32``. Geometry is shifted to a local
        origin in float64 before the cast. Prism kernels in float32 lose accuracy beyond
        ~10 cell sizes (see :mod:`gempy_gravinv._kernels`).
    store : {"auto", "dense", "matrix_free"}
        ``"dense"`` builds and keeps G (n_data x n_cells); ``"matrix_free"`` recomputes
        kernel blocks at every product; ``"auto"`` keeps G when it takes less than
        ``dense_fraction`` of free memory and ``max_dense_bytes``.
    method : {"nodes", "cells"}
        ``"nodes"`` (default) shares corner evaluations between neighbouring cells;
        ``"cells"`` evaluates 8 corners per cell (reference path, same result).
    kernel : {"prism", "point"}
        Closed-form prisms (exact) or point masses at ``quadrature**3`` Gauss–Legendre
        points per cell (approximate; accurate a few cell sizes away from a station).
    quadrature : int
        Gauss–Legendre points per axis for ``kernel="point"`` (>= 1).
    memory_budget : int, optional
        Bytes one chunk of temporaries may use (> 0); default: a quarter of free memory,
        capped at 256 MiB on CPU (cache-friendly) and 2 GiB on CUDA.
    dense_fraction : float
        With ``store="auto"``: the largest share of free memory a dense G may take.
    max_dense_bytes : int
        With ``store="auto"``: the largest dense G kept, bytes.
    check_stations : bool or "warn"
        Raise if a station lies strictly inside a cell, below the whole mesh or farther
        than 10 horizontal mesh extents from it (default True); ``"warn"`` only warns
        about the last two (:meth:`PrismMesh.check_stations`); ``False`` checks nothing.
    compile : bool or "auto"
        Fuse the kernel evaluation with ``torch.compile`` (C++/OpenMP on CPU, Triton on
        CUDA): ~3-10x faster products, after a one-off compilation of ~5-20 s per process
        (cached on disk by torch). ``"auto"`` compiles on CUDA, and on CPU when one
        matrix-free product has >= 1e7 station-column pairs or a dense build >= 2e8.
        The environment variable ``GEMPY_GRAVINV_COMPILE=0|1`` overrides ``"auto"``.
        Falls back to eager kernels (with a warning) if compilation fails.
    lattice : bool or "auto"
        Translation-invariant fast path (:mod:`gempy_gravinv._lattice`) for stations on a
        lattice congruent with a tensor mesh of uniform x/y widths (e.g. gridded data over
        cell centres, at a few elevations): the kernel is evaluated once per offset, dense
        rows are gathers, and products are FFT correlations (cost independent of the
        number of stations). ``"auto"`` uses it whenever it applies and saves work;
        ``True`` raises if it does not apply. Same results to rounding.
    progress : bool
        Show a tqdm bar while building a dense G.
    component : str, optional
        The datum every station measures (:mod:`gempy_gravinv._components`): ``"gz"``
        (default: the survey's one component, ``"gz"`` unless ``Survey(components=)``
        says otherwise; mGal, positive downward), ``"gx"``, ``"gy"`` (mGal) or a gradient
        ``"gxx"``, ``"gxy"``, ``"gxz"``, ``"gyy"``, ``"gyz"``, ``"gzz"``, ``"guv"``
        (Eötvös, z up: ``gzz`` positive above excess mass). Products, the adjoint, ``dense``
        and ``jtj_diag`` are then in that unit per kg/m³. The lattice path is ``gz`` only.
        A survey mixing components is refused: :func:`gempy_gravinv.make_operator` builds
        one operator per component (:class:`gempy_gravinv._multi.MultiComponentOperator`).

    Raises
    ------
    ValueError
        An unknown option, a station strictly inside a cell (with ``check_stations``),
        or ``lattice=True`` where the lattice path does not apply.
    MemoryError
        ``store="dense"`` and G does not fit in free memory.

    Examples
    --------
    >>> import numpy as np, torch
    >>> mesh = PrismMesh.from_tensor([10.0] * 4, [10.0] * 4, [10.0] * 2, origin=(0, 0, -20))
    >>> op = GravityOperator(mesh, Survey([[20.0, 20.0, 1.0]]), device="cpu")
    >>> gz = op(torch.full((mesh.n_cells,), 300.0, dtype=torch.float64))  # mGal, positive down
    >>> bool(gz[0] > 0)
    True
    """

    def __init__(self, mesh, survey, device: str | torch.device = "auto",
                 dtype: torch.dtype = torch.float64, store: str = "auto", *,
                 method: str = "nodes", kernel: str = "prism", quadrature: int = 2,
                 memory_budget: int | None = None, dense_fraction: float = 0.5,
                 max_dense_bytes: int = 8 * 1024**3, check_stations: bool = True,
                 compile: bool | str = "auto", lattice: bool | str = "auto",
                 progress: bool = False, component: str | None = None) -> None:
        mesh = as_prism_mesh(mesh)
        if not isinstance(survey, Survey):
            survey = Survey(survey)
        check_choice(store, _STORES, name="store")
        check_choice(method, _METHODS, name="method")
        check_choice(kernel, _KERNELS, name="kernel")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        if kernel == "point":
            check_int(quadrature, name="quadrature (points per axis)", minimum=1)
        check_choice(lattice, (True, False, "auto"), name="lattice")
        check_choice(compile, (True, False, "auto"), name="compile")
        component = _survey_component(survey, component)
        self.component = check_component(component)
        self.units = UNITS[component]
        self._kind = kernel_kind(kernel, component)
        if check_stations:  # inside a cell: always refused; below / far from the mesh: "warn" allows
            mesh.check_stations(survey.locations, outside="warn" if check_stations == "warn" else "error")
        self.mesh = mesh
        self.survey = survey
        self.device = resolve_device(device)
        self.dtype = dtype
        self.method = method
        self.kernel = kernel
        self.quadrature = int(quadrature)
        self.progress = progress
        self.n_data = survey.n_data
        self.n_cells = mesh.n_cells
        self._itemsize = torch.finfo(dtype).bits // 8

        # local origin, in float64, before any cast
        e = mesh.extent
        self.origin = np.array([(e[0] + e[1]) / 2, (e[2] + e[3]) / 2, e[5]])
        tk = dict(device=self.device, dtype=dtype)
        self._stations = torch.as_tensor(survey.locations - self.origin, **tk)

        if kernel == "point":
            pts, wts, owner = self._quadrature_points(mesh, self.quadrature)
            self._columns = torch.as_tensor(pts - self.origin, **tk)
            self._col_weight = torch.as_tensor(wts, **tk)  # m³ per column
            self._col_owner = torch.as_tensor(owner, device=self.device)
        elif method == "nodes":
            nodes, index = mesh.corner_nodes()
            grid = mesh.tensor_nodes()
            if grid is not None:  # the full node grid: keep only the active cells' nodes when that saves work
                used = np.zeros(nodes.shape[0], dtype=bool)
                used[index.reshape(-1)] = True  # a mask, not np.unique: no sort
                if used.sum() < _GRID_NODE_FRACTION * nodes.shape[0]:
                    nodes, index, grid = nodes[used], (np.cumsum(used) - 1)[index], None
            self._columns = torch.as_tensor(nodes - self.origin, **tk)
            self._index = torch.as_tensor(index, device=self.device)
            self._index_t = self._index.T.contiguous()  # (8, n_cells): one gather index per corner
            self._signs = torch.tensor(CORNER_SIGNS, **tk)
            # tensor mesh, mostly active: G rows are triple differences of K on the node grid
            self._tensor_shape = None if grid is None else tuple(len(g) for g in grid)
            self._grid = None if grid is None else [torch.as_tensor(g - o, **tk) for g, o in zip(grid, self.origin)]
            self._full_index = torch.as_tensor(mesh.full_index, device=self.device)
        else:
            self._bounds = torch.as_tensor(mesh.bounds - np.repeat(self.origin, 2), **tk)
        self._lattice = None
        if (lattice and kernel == "prism" and method == "nodes" and component == "gz"
                and mesh.tensor_nodes() is not None):
            grid = [g - o for g, o in zip(mesh.tensor_nodes(), self.origin)]
            self._lattice = LatticePlan.build(grid, mesh.full_index, mesh.n_cells, survey.locations - self.origin,
                                              self.device, dtype)
        if lattice is True and self._lattice is None:
            raise ValueError("lattice=True, but the stations are not on a lattice congruent with a tensor mesh "
                             "of uniform x/y cell widths with kernel='prism', method='nodes', component='gz' "
                             "(or the plan would not save work)")
        self.n_columns = int(self._columns.shape[0]) if method == "nodes" or kernel == "point" else self.n_cells * 8
        # x, y, z as unit-stride rows (3, n): compiled kernel loops vectorise over them
        self._stations3 = as_rows3(self._stations)
        self._columns3 = as_rows3(self._columns) if method == "nodes" or kernel == "point" else None

        avail = available_memory(self.device)
        if memory_budget is None:
            cap = 2 * 1024**3 if self.device.type == "cuda" else 256 * 1024**2
            memory_budget = int(min(avail // 4, cap))
        check_number(memory_budget, name="memory_budget (bytes)", low=0, low_open=True)
        self.memory_budget = int(memory_budget)
        self.compile = compile
        self._use_compiled = False  # set once the store is known
        dense_bytes = self.n_data * self.n_cells * self._itemsize
        if store == "auto":
            store = "dense" if dense_bytes <= min(dense_fraction * avail, max_dense_bytes) else "matrix_free"
        self.store = store
        self._use_compiled = self._want_compile(compile, store)
        self._G: torch.Tensor | None = None
        if store == "dense":
            if dense_bytes > avail:
                raise MemoryError(f"store='dense' needs {dense_bytes / 1024**3:.2f} GiB for G but "
                                  f"{avail / 1024**3:.2f} GiB are free: use store='matrix_free'")
            self._G = self.dense()

    # ------------------------------------------------------------------ geometry helpers
    @staticmethod
    def _quadrature_points(mesh: PrismMesh, n: int):
        x, w = np.polynomial.legendre.leggauss(n)
        u = (x + 1) / 2
        wu = w / 2
        U = np.stack(np.meshgrid(u, u, u, indexing="ij"), -1).reshape(-1, 3)
        W = np.prod(np.stack(np.meshgrid(wu, wu, wu, indexing="ij"), -1).reshape(-1, 3), axis=1)
        b = mesh.bounds
        lo = b[:, 0::2]
        h = b[:, 1::2] - lo
        pts = (lo[:, None, :] + U[None] * h[:, None, :]).reshape(-1, 3)
        wts = (W[None, :] * mesh.volumes[:, None]).reshape(-1)
        owner = np.repeat(np.arange(mesh.n_cells), U.shape[0])
        return pts, wts, owner

    def _chunk_rows(self, n_cols: int, temps: int) -> int:
        per_row = max(1, n_cols) * temps * self._itemsize
        return max(1, min(self.n_data, self.memory_budget // per_row))

    def _col_chunk(self) -> int:
        temps = _TEMPS_PER_PAIR[self.kernel]
        # <= 2048 columns: products sum per chunk, then over chunks (node sums cancel ~1e8-fold: accuracy)
        return max(1, min(self.n_columns, 2048, self.memory_budget // (temps * self._itemsize)))

    # ------------------------------------------------------------------ column space
    def _to_columns(self, m: torch.Tensor) -> torch.Tensor:
        """Cell densities (n_cells, k) -> column weights (n_columns, k)."""
        if self.kernel == "point":
            return m[self._col_owner] * self._col_weight[:, None]
        w = torch.zeros((self.n_columns, m.shape[1]), dtype=m.dtype, device=m.device)
        contrib = self._signs[None, :, None] * m[:, None, :]  # (n_cells, 8, k)
        w.index_add_(0, self._index.reshape(-1), contrib.reshape(-1, m.shape[1]))
        return w

    def _from_columns(self, u: torch.Tensor) -> torch.Tensor:
        """Column sums (n_columns, k) -> cell gradient (n_cells, k) (adjoint of _to_columns)."""
        if self.kernel == "point":
            out = torch.zeros((self.n_cells, u.shape[1]), dtype=u.dtype, device=u.device)
            out.index_add_(0, self._col_owner, u * self._col_weight[:, None])
            return out
        return (u[self._index] * self._signs[None, :, None]).sum(1)

    def _want_compile(self, compile, store: str) -> bool:
        if in_forked_child():  # compiled OpenMP regions deadlock in a forked child (see _runtime)
            return False
        if compile in (True, False):
            return bool(compile)
        env = os.environ.get("GEMPY_GRAVINV_COMPILE")
        if env is not None and env.strip() != "":
            return env.strip().lower() not in ("0", "false", "no", "off")
        if self.method == "cells" and self.kernel == "prism":
            return False
        if self.device.type == "cuda":
            return True
        pairs = self.n_data * self.n_columns
        if store == "matrix_free":
            return pairs >= _AUTO_COMPILE_PAIRS_MATRIX_FREE
        return pairs >= AUTO_COMPILE_PAIRS_DENSE

    def _kernel_call(self, fn, *args) -> torch.Tensor:
        """Run a kernel function, compiled when enabled (eager fallback on failure)."""
        if self._use_compiled and in_forked_child():  # built in the parent, used in a forked child
            self._use_compiled = False
        if self._use_compiled:
            try:
                return compiled(fn)(*args, kind=self._kind)
            except Exception as exc:  # pragma: no cover - depends on the toolchain
                warnings.warn(f"torch.compile of the gravity kernel failed ({type(exc).__name__}: {exc}); "
                              "falling back to eager kernels", RuntimeWarning, stacklevel=3)
                self._use_compiled = False
        return fn(*args, kind=self._kind)

    def _fused_gather(self) -> bool:
        """Prism node path with compiled kernels: cells from a fused gather of the corner values (any mesh)."""
        return (self._use_compiled and not in_forked_child() and self.kernel == "prism"
                and self.method == "nodes" and self._lattice is None)

    def _block(self, r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
        """K block (rows r0:r1 stations, columns c0:c1), mGal per column unit."""
        return self._kernel_call(kernel_block3, self._stations3[:, r0:r1], self._columns3[:, c0:c1])

    def _block_matvec(self, r0, r1, c0, c1, w: torch.Tensor) -> torch.Tensor:
        """K[r0:r1, c0:c1] @ w for w (c, k)."""
        if w.shape[1] == 1:
            return self._kernel_call(kernel_matvec3, self._stations3[:, r0:r1], self._columns3[:, c0:c1],
                                     w[:, 0])[:, None]
        return self._block(r0, r1, c0, c1) @ w

    def _block_rmatvec(self, r0, r1, c0, c1, r: torch.Tensor) -> torch.Tensor:
        """K[r0:r1, c0:c1]ᵀ @ r for r (s, k)."""
        if r.shape[1] == 1:
            return self._kernel_call(kernel_rmatvec3, self._stations3[:, r0:r1], self._columns3[:, c0:c1],
                                     r[:, 0])[:, None]
        return self._block(r0, r1, c0, c1).T @ r

    def _blocks(self):
        """Yield (r0, r1, c0, c1) covering the (station, column) plane within the budget."""
        cc = self._col_chunk()
        for c0 in range(0, self.n_columns, cc):
            c1 = min(self.n_columns, c0 + cc)
            rr = self._chunk_rows(c1 - c0, _TEMPS_PER_PAIR[self.kernel])
            for r0 in range(0, self.n_data, rr):
                yield r0, min(self.n_data, r0 + rr), c0, c1

    # ------------------------------------------------------------------ products
    def _as_columns(self, values, n: int, name: str, what: str, units: str) -> tuple[torch.Tensor, bool]:
        """Validate ``values`` as (n,) or (n, k) floating data on this device/dtype."""
        v = torch.as_tensor(values)
        if not torch.is_floating_point(v):
            raise TypeError(f"{name} must be a floating-point tensor ({units}), got {v.dtype}")
        shape = tuple(v.shape)
        v = v.to(device=self.device, dtype=self.dtype)
        vec = v.ndim == 1
        if vec:
            v = v[:, None]
        if v.ndim != 2 or v.shape[0] != n:
            raise ValueError(f"{name} must have shape ({what},) or ({what}, k) with {what}={n}, got {shape}")
        return v, vec

    def _as_model(self, density) -> tuple[torch.Tensor, bool]:
        return self._as_columns(density, self.n_cells, "density", "n_cells", "kg/m³")

    def _as_data(self, residual) -> tuple[torch.Tensor, bool]:
        return self._as_columns(residual, self.n_data, "residual", "n_data", "mGal")

    @torch.no_grad()
    def forward(self, density, *, _check: bool = True) -> torch.Tensor:
        """G·m without autograd: density (n_cells[, k]) kg/m³ -> g_z (n_data[, k]) mGal, positive down; NaN refused."""
        m, vec = self._as_model(density)
        if _check and not bool(torch.isfinite(m).all()):  # one check per call, not on the autograd path
            raise ValueError(f"density contains {int((~torch.isfinite(m)).sum())} NaN/inf value(s) (kg/m³): every "
                             "cell needs a finite contrast (leave inactive cells out of the mesh)")
        if self._G is not None:
            out = self._G @ m
        elif self._lattice is not None:
            out = self._lattice.forward(m)
        elif self.method == "cells" and self.kernel == "prism":
            out = torch.zeros((self.n_data, m.shape[1]), dtype=self.dtype, device=self.device)
            for r0, r1, rows in self._dense_rows():
                out[r0:r1] = rows @ m
        else:
            w = self._to_columns(m)
            out = torch.zeros((self.n_data, m.shape[1]), dtype=self.dtype, device=self.device)
            for r0, r1, c0, c1 in self._blocks():
                out[r0:r1] += self._block_matvec(r0, r1, c0, c1, w[c0:c1])
        return out[:, 0] if vec else out

    @torch.no_grad()
    def adjoint(self, residual) -> torch.Tensor:
        """Gᵀ·r without autograd: r (n_data[, k]) mGal -> (n_cells[, k]) mGal per kg/m³."""
        r, vec = self._as_data(residual)
        if self._G is not None:
            out = self._G.T @ r
        elif self._lattice is not None:
            out = self._lattice.adjoint(r)
        elif self.method == "cells" and self.kernel == "prism":
            out = torch.zeros((self.n_cells, r.shape[1]), dtype=self.dtype, device=self.device)
            for r0, r1, rows in self._dense_rows():
                out += rows.T @ r[r0:r1]
        else:
            u = torch.zeros((self.n_columns, r.shape[1]), dtype=self.dtype, device=self.device)
            for r0, r1, c0, c1 in self._blocks():
                u[c0:c1] += self._block_rmatvec(r0, r1, c0, c1, r[r0:r1])
            out = self._from_columns(u)
        return out[:, 0] if vec else out

    def __call__(self, density) -> torch.Tensor:
        """Differentiable G·m: density (n_cells[, k]) kg/m³ -> g_z (n_data[, k]) mGal, positive down.

        Gradients flow to ``density`` through the exact chunked adjoint Gᵀ.
        """
        m = torch.as_tensor(density)
        if m.device != self.device or m.dtype != self.dtype:
            m = m.to(device=self.device, dtype=self.dtype)
        return _GravityFunction.apply(m, self)

    # ------------------------------------------------------------------ dense rows / G
    def _dense_rows(self, start: int = 0):
        """Yield (r0, r1, G[r0:r1]) blocks of the sensitivity from row ``start`` on, mGal per kg/m³."""
        from tqdm.auto import tqdm

        if self.kernel == "prism" and self.method == "cells":
            rr = self._chunk_rows(self.n_cells * 8, _TEMPS_PER_PAIR["prism"])
        elif self._fused_gather():  # compiled: K (rows x n_nodes) and the cells (rows x n_cells), no temporaries
            rr = self._chunk_rows(self.n_columns + self.n_cells, 1)
        elif self.kernel == "prism":
            # a row block holds K (rows x n_nodes) and the gather (rows x n_cells x 8)
            rr = self._chunk_rows(self.n_columns * _TEMPS_PER_PAIR["prism"] + self.n_cells * 3, 1)
        else:
            rr = self._chunk_rows(self.n_columns * _TEMPS_PER_PAIR["point"] + self.n_cells, 1)
        starts = range(int(start), self.n_data, rr)
        it = tqdm(starts, desc="gravity G", unit="block", disable=not self.progress, leave=False)
        for r0 in it:
            r1 = min(self.n_data, r0 + rr)
            yield r0, r1, self._rows(r0, r1)

    def _rows(self, r0: int, r1: int) -> torch.Tensor:
        if self._lattice is not None:
            return self._lattice.rows(r0, r1)
        if self.kernel == "point":
            k = self._block(r0, r1, 0, self.n_columns) * self._col_weight[None, :]
            out = torch.zeros((r1 - r0, self.n_cells), dtype=self.dtype, device=self.device)
            out.index_add_(1, self._col_owner, k)
            return out
        if self.method == "cells":
            b = self._bounds
            st = self._stations[r0:r1]
            out = torch.zeros((r1 - r0, self.n_cells), dtype=self.dtype, device=self.device)
            for k, s in enumerate(CORNER_SIGNS):
                corner = torch.stack([b[:, 1] if k & 1 else b[:, 0], b[:, 3] if k & 2 else b[:, 2],
                                      b[:, 5] if k & 4 else b[:, 4]], dim=1)
                out += s * kernel_block(st, corner, self._kind)
            return out
        if self._tensor_shape is not None and not self._fused_gather():  # kernel on the node grid, then differences
            k = grid_cell_rows(self._kernel_call(grid_kernel, self._stations[r0:r1], *self._grid))
            return k if self.n_cells == k.shape[1] else k[:, self._full_index]
        # Kᵀ (nodes, rows): each cell's 8 corners are gathered as contiguous rows, added in place
        kt = self._kernel_call(kernel_block3_t, self._stations3[:, r0:r1], self._columns3)
        if self._fused_gather():
            return compiled(cell_corner_sum)(kt, self._index_t).T
        out = None
        for c in range(8):
            col = kt.index_select(0, self._index_t[c])
            if out is None:
                out = col if CORNER_SIGNS[c] > 0 else col.neg_()
            elif CORNER_SIGNS[c] > 0:
                out.add_(col)
            else:
                out.sub_(col)
        return out.T  # (rows, n_cells), a transposed view

    def dense_rows(self, start: int = 0):
        """Yield ``(r0, r1, G[r0:r1])``: the sensitivity in row blocks that fit the memory budget.

        Units: the component's (mGal or Eötvös) per kg/m³. Lets a caller store G in its
        own array (another dtype, a memmap) without holding a second full copy. ``start``:
        the first row (the rows before it are not computed).
        """
        start = check_int(start, name="start (the first row)", minimum=0, maximum=self.n_data)
        if self._G is not None:
            yield from ([(start, self.n_data, self._G[start:])] if start < self.n_data else [])
            return
        yield from self._dense_rows(start)

    def dense(self) -> torch.Tensor:
        """The full sensitivity G (n_data, n_cells), mGal per kg/m³, positive down.

        Returns the cached matrix when ``store == "dense"``; builds it (in chunks)
        otherwise. Check :meth:`estimate_memory` first on large problems.
        """
        if self._G is not None:
            return self._G
        G = torch.empty((self.n_data, self.n_cells), dtype=self.dtype, device=self.device)
        for r0, r1, rows in self._dense_rows():
            G[r0:r1] = rows
        return G

    @torch.no_grad()
    def jtj_diag(self, weights=None) -> torch.Tensor:
        """diag(Gᵀ Wᵀ W G) for a diagonal data weighting W (n_data,), without storing G.

        Parameters
        ----------
        weights : array_like (n_data,), optional
            Diagonal of W (e.g. 1/std, mGal⁻¹); ones by default.

        Returns
        -------
        torch.Tensor (n_cells,)
            Σ_i w_i² G_ij², (mGal per kg/m³)² times the weight units.
        """
        w2 = None
        if weights is not None:
            w = torch.as_tensor(weights, device=self.device, dtype=self.dtype).reshape(-1)
            if w.shape[0] != self.n_data:
                raise ValueError(f"weights has {w.shape[0]} values, survey has {self.n_data}")
            w2 = (w * w)[:, None]
        if self._G is not None:
            g2 = self._G * self._G
            return (g2 * w2).sum(0) if w2 is not None else g2.sum(0)
        out = torch.zeros(self.n_cells, dtype=self.dtype, device=self.device)
        if self._fused_gather():  # corners gathered, squared and summed in one compiled pass
            w = torch.ones(self.n_data, dtype=self.dtype, device=self.device) if w2 is None else w2[:, 0]
            rr = self._chunk_rows(self.n_columns + self.n_cells, 1)  # K and (at most) the cells: no temporaries
            for r0 in range(0, self.n_data, rr):
                r1 = min(self.n_data, r0 + rr)
                kt = self._kernel_call(kernel_block3_t, self._stations3[:, r0:r1], self._columns3)
                out += compiled(cell_jtj)(kt, self._index_t, w[r0:r1])
            return out
        for r0, r1, rows in self._dense_rows():
            g2 = rows * rows
            out += (g2 * w2[r0:r1]).sum(0) if w2 is not None else g2.sum(0)
        return out

    # ------------------------------------------------------------------ reporting
    def estimate_memory(self) -> MemoryEstimate:
        """Memory this operator needs (bytes), before or after it is built."""
        it = self._itemsize
        geom = (self.n_data * 3 + self.n_columns * 3) * it
        if self.kernel == "prism" and self.method == "nodes":
            geom += self.n_cells * 8 * 8
        dense = self.n_data * self.n_cells * it
        work = self.memory_budget
        total = geom + work + (dense if self.store == "dense" else 0)
        return MemoryEstimate(geom, dense, work, total, self.store, available_memory(self.device))

    def __repr__(self) -> str:
        return (f"GravityOperator(n_data={self.n_data}, n_cells={self.n_cells}, kernel={self.kernel!r}, "
                f"method={self.method!r}, component={self.component!r}, store={self.store!r}, "
                f"lattice={self._lattice is not None}, "
                f"device={str(self.device)!r}, "
                f"dtype={self.dtype})")


def _survey_component(survey: Survey, component: str | None) -> str:
    """The one component of ``survey`` (``component`` when given: it must agree with the survey's)."""
    if component is not None:
        check_component(component)
    groups = survey.component_groups()
    if component is None and len(groups) == 1:
        return next(iter(groups))
    if component is not None and (not survey.components_given or set(groups) == {component}):
        return component
    given = "" if component is None else f" but component={component!r}"
    raise ValueError(f"the survey's data are {', '.join(groups)}{given}: a GravityOperator evaluates one "
                     "component; gempy_gravinv.make_operator(mesh, survey) builds one per component (rows in the "
                     "survey's order)")
