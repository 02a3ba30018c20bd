"""Several gravity components in one survey: one :class:`GravityOperator` per component.

A survey whose data mix components (airborne gradiometry: ``gzz``, ``gxz``, ``gyz`` and
``gz`` at every station) maps density contrast (kg/m³) to data in each datum's unit:
``gx``, ``gy``, ``gz`` in mGal (``gz`` positive downward) and the gradient tensor in
Eötvös (z up, SimPEG's signs; :mod:`gempy_gravinv._components`).
:class:`MultiComponentOperator` composes one single-component operator per component
(the same kernels, no copy of them) and returns rows in the survey's datum order;
:func:`make_operator` picks it or a plain :class:`GravityOperator`.
"""

from __future__ import annotations

import numpy as np
import torch

from ._components import UNITS
from ._device import MemoryEstimate, available_memory, resolve_device
from ._mesh import as_prism_mesh
from ._operator import GravityOperator
from ._survey import Survey
from ._validation import check_choice, check_int

__all__ = ["MultiComponentOperator", "make_operator"]


class _RowStream:
    """Rows ``[a, b)`` of one operator's sensitivity, pulled in order from its ``dense_rows`` blocks from ``start``."""

    def __init__(self, op: GravityOperator, start: int = 0) -> None:
        self._it = op.dense_rows(start)
        self._buf: torch.Tensor | None = None
        self._b0 = self._b1 = int(start)

    def take(self, a: int, b: int) -> torch.Tensor:
        parts = []
        while a < b:
            if self._buf is None or a >= self._b1:
                self._b0, self._b1, self._buf = next(self._it)
            hi = min(b, self._b1)
            parts.append(self._buf[a - self._b0:hi - self._b0])
            a = hi
        return parts[0] if len(parts) == 1 else torch.cat(parts)


class MultiComponentOperator:
    """Linear map from density contrast on prisms to data of several gravity components.

    Parameters
    ----------
    mesh : PrismMesh or discretize mesh
        The cells.
    survey : Survey
        Stations with a component per datum (``Survey(..., components=...)``); a station
        measuring several components appears once per component.
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``...
    dtype : torch.dtype
        ``torch.float64`` (default) or ``torch.float32``.
    store : {"auto", "dense", "matrix_free"}
        One decision for all components: ``"auto"`` keeps the sensitivities (each
        component's block) when the whole n_data x n_cells matrix takes less than
        ``dense_fraction`` of free memory and ``max_dense_bytes``.
    dense_fraction, max_dense_bytes :
        As :class:`GravityOperator`.
    **options
        Passed to every component's :class:`GravityOperator` (``method``, ``kernel``,
        ``quadrature``, ``memory_budget``, ``check_stations``, ``compile``, ``lattice``,
        ``progress``). ``component`` is refused: it comes from ``survey.components``.

    Attributes
    ----------
    operators : dict
        ``component -> (rows (n,) int64, GravityOperator)``, in order of first appearance.
    components : ndarray of str (n_data,)
        The component of every datum.
    units : str
        The data's unit: ``"mGal"``, ``"Eötvös"`` or ``"mixed"`` (see :attr:`data_units`).

    Notes
    -----
    Products, the adjoint, ``dense``, ``dense_rows`` and ``jtj_diag`` are in each datum's
    unit per kg/m³, rows in the survey's order; ``__call__`` is differentiable through
    each component's exact adjoint. ``dense()`` assembles a new matrix (the components'
    blocks stay where they are).

    Examples
    --------
    >>> import torch
    >>> from gempy_gravinv import PrismMesh
    >>> mesh = PrismMesh.from_tensor([10.0] * 4, [10.0] * 4, [10.0] * 2, origin=(0, 0, -20))
    >>> sv = Survey([[20.0, 20.0, 1.0]] * 2, components=["gz", "gzz"])
    >>> op = MultiComponentOperator(mesh, sv, device="cpu")
    >>> d = op(torch.full((mesh.n_cells,), 300.0, dtype=torch.float64))  # [mGal, Eötvös]
    >>> bool(d[0] > 0 and d[1] > 0)  # gz positive down, gzz positive above excess mass
    True
    """

    def __init__(self, mesh, survey, device: str | torch.device = "auto", dtype: torch.dtype = torch.float64,
                 store: str = "auto", *, dense_fraction: float = 0.5, max_dense_bytes: int = 8 * 1024**3,
                 **options) -> None:
        if "component" in options:
            raise TypeError("component= names the one component of a GravityOperator; a MultiComponentOperator "
                            "takes every datum's component from survey.components")
        mesh = as_prism_mesh(mesh)
        if not isinstance(survey, Survey):
            survey = Survey(survey)
        check_choice(store, ("auto", "dense", "matrix_free"), name="store")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.mesh, self.survey = mesh, survey
        self.device, self.dtype = resolve_device(device), dtype
        self.n_data, self.n_cells = survey.n_data, mesh.n_cells
        itemsize = torch.finfo(dtype).bits // 8
        if store == "auto":  # one decision for the whole matrix
            fits = self.n_data * self.n_cells * itemsize <= min(dense_fraction * available_memory(self.device),
                                                               max_dense_bytes)
            store = "dense" if fits else "matrix_free"
        self.store = store
        self.components = survey.components
        self.operators: dict[str, tuple[np.ndarray, GravityOperator]] = {}
        for comp, rows in survey.component_groups().items():
            op = GravityOperator(mesh, survey.subset(rows), device=self.device, dtype=dtype, store=store,
                                 component=comp, **options)
            self.operators[comp] = (rows, op)
        units = {UNITS[c] for c in self.operators}
        self.units = units.pop() if len(units) == 1 else "mixed"
        self.component = next(iter(self.operators)) if len(self.operators) == 1 else "mixed"
        order = np.concatenate([rows for rows, _ in self.operators.values()])
        self._inverse = torch.as_tensor(np.argsort(order), device=self.device)
        self._rows = {c: torch.as_tensor(rows, device=self.device) for c, (rows, _) in self.operators.items()}
        self.memory_budget = min(op.memory_budget for _, op in self.operators.values())

    @property
    def data_units(self) -> np.ndarray:
        """The unit of every datum (n_data,): ``"mGal"`` or ``"Eötvös"``."""
        return self.survey.units

    # ------------------------------------------------------------------ products
    def _data(self, residual) -> torch.Tensor:
        r = torch.as_tensor(residual)
        if not torch.is_floating_point(r):
            raise TypeError(f"residual must be a floating-point tensor (mGal / Eötvös), got {r.dtype}")
        if r.ndim not in (1, 2) or r.shape[0] != self.n_data:
            raise ValueError(f"residual must have shape (n_data,) or (n_data, k) with n_data={self.n_data}, "
                             f"got {tuple(r.shape)}")
        return r.to(device=self.device, dtype=self.dtype)

    @torch.no_grad()
    def forward(self, density) -> torch.Tensor:
        """G·m without autograd: density (n_cells[, k]) kg/m³ -> data (n_data[, k]), each datum in its unit."""
        parts = [(self._rows[c], op.forward(density)) for c, (_, op) in self.operators.items()]
        out = torch.empty((self.n_data, *parts[0][1].shape[1:]), dtype=self.dtype, device=self.device)
        for rows, g in parts:
            out[rows] = g
        return out

    @torch.no_grad()
    def adjoint(self, residual) -> torch.Tensor:
        """Gᵀ·r without autograd: r (n_data[, k]) in the data's units -> (n_cells[, k]) per kg/m³."""
        r = self._data(residual)
        out = None
        for c, (_, op) in self.operators.items():
            a = op.adjoint(r[self._rows[c]])
            out = a if out is None else out.add_(a)
        return out

    def __call__(self, density) -> torch.Tensor:
        """Differentiable G·m: density (n_cells[, k]) kg/m³ -> data (n_data[, k]) in the survey's order."""
        g = torch.cat([op(density) for _, op in self.operators.values()])
        return g[self._inverse]

    # ------------------------------------------------------------------ sensitivity
    def dense_rows(self, start: int = 0):
        """Yield ``(r0, r1, G[r0:r1])`` in the survey's order, row blocks within the memory budget.

        ``start``: the first row (the rows before it are not computed).
        """
        start = check_int(start, name="start (the first row)", minimum=0, maximum=self.n_data)
        itemsize = torch.finfo(self.dtype).bits // 8
        block = max(1, min(self.n_data, self.memory_budget // max(1, self.n_cells * itemsize)))
        streams = {c: _RowStream(op, int(np.searchsorted(rows, start))) for c, (rows, op) in self.operators.items()}
        for r0 in range(start, self.n_data, block):
            r1 = min(self.n_data, r0 + block)
            out = torch.empty((r1 - r0, self.n_cells), dtype=self.dtype, device=self.device)
            for c, (rows, _) in self.operators.items():
                a, b = np.searchsorted(rows, [r0, r1])
                if b > a:
                    out[torch.as_tensor(rows[a:b] - r0, device=self.device)] = streams[c].take(int(a), int(b))
            yield r0, r1, out

    def dense(self) -> torch.Tensor:
        """The full sensitivity (n_data, n_cells), each row in its datum's unit per kg/m³ (a new tensor)."""
        G = torch.empty((self.n_data, self.n_cells), dtype=self.dtype, device=self.device)
        for c, (_, op) in self.operators.items():
            rows = self._rows[c]
            for r0, r1, block in op.dense_rows():
                G[rows[r0:r1]] = block
        return G

    @torch.no_grad()
    def jtj_diag(self, weights=None) -> torch.Tensor:
        """diag(Gᵀ Wᵀ W G) (n_cells,) for a diagonal data weighting W (n_data,), e.g. 1/std.

        Parameters
        ----------
        weights : array_like (n_data,), optional
            Diagonal of W, per datum (1/mGal or 1/Eötvös); ones by default.

        Returns
        -------
        torch.Tensor (n_cells,)
            Σ_i w_i² G_ij².
        """
        w = None
        if weights is not None:
            w = torch.as_tensor(weights, device=self.device, dtype=self.dtype).reshape(-1)
            if w.shape[0] != self.n_data:
                raise ValueError(f"weights has {w.shape[0]} values, survey has {self.n_data}")
        out = torch.zeros(self.n_cells, dtype=self.dtype, device=self.device)
        for c, (_, op) in self.operators.items():
            out += op.jtj_diag(None if w is None else w[self._rows[c]])
        return out

    # ------------------------------------------------------------------ reporting
    def estimate_memory(self) -> MemoryEstimate:
        """Memory of all components' operators (bytes): geometry and matrices add, the workspace is reused."""
        ests = [op.estimate_memory() for _, op in self.operators.values()]
        geom = sum(e.geometry for e in ests)
        dense = sum(e.dense_matrix for e in ests)
        work = max(e.workspace for e in ests)
        total = geom + work + (dense if self.store == "dense" else 0)
        return MemoryEstimate(geom, dense, work, total, self.store, available_memory(self.device))

    def __repr__(self) -> str:
        parts = ", ".join(f"{c} x{rows.size}" for c, (rows, _) in self.operators.items())
        return (f"MultiComponentOperator(n_data={self.n_data}, n_cells={self.n_cells}, components: {parts}, "
                f"store={self.store!r}, device={str(self.device)!r}, dtype={self.dtype})")


def make_operator(mesh, survey, **options) -> GravityOperator | MultiComponentOperator:
    """The forward operator of a survey: one :class:`GravityOperator`, or one per component.

    Parameters
    ----------
    mesh : PrismMesh or discretize mesh
        The cells (density contrast in kg/m³).
    survey : Survey or array_like (n_data, 3)
        Stations; their ``components`` decide the operator.
    **options
        Passed to the operator (``device``, ``dtype``, ``store``, ``check_stations``...).
        ``component=`` forces a single-component :class:`GravityOperator`.

    Returns
    -------
    GravityOperator or MultiComponentOperator
        A :class:`GravityOperator` when the data are of one component (``gz``: mGal,
        positive down; others: mGal / Eötvös), else a :class:`MultiComponentOperator`
        with rows in the survey's order.
    """
    if not isinstance(survey, Survey):
        survey = Survey(survey)
    if "component" in options or len(survey.component_groups()) == 1:
        return GravityOperator(mesh, survey, **options)
    return MultiComponentOperator(mesh, survey, **options)
