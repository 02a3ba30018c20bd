"""Closed-form gravity kernels in torch (any device, float32 or float64).

Sign: the named functions return g_z **positive downward** in mGal (excess mass below a
station gives a positive value). Inputs are metres, kg/m³ and kg. The block functions
(``kernel_block``, ``kernel_matvec``, ``kernel_rmatvec``) take a ``kind`` naming any
component (``"prism_gxx"``...; :mod:`gempy_gravinv._components` has their formulas,
units and signs).

The prism formula is the classic corner sum (Nagy et al. 2000) of

    K(x, y, z) = x ln(y + r) + y ln(x + r) - z atan(x y / (z r)),

with ``(x, y, z)`` the corner minus the station and ``r`` its norm, so that
``g_z = G ρ Σ_corners s K`` with ``s = +1`` for an even number of lower bounds. The logs
use the cancellation-free form of Fukushima (2020) / choclo: for ``a < 0``,
``ln(a + r) = ln((b² + c²) / (r - a))``, and terms whose coefficient vanishes are zero,
so stations on faces, edges and corners of a prism give finite, correct values.

Accuracy (``benchmarks/kernel_accuracy.py``: a 1 m cube against a 50-digit mpmath
evaluation of the same formula; relative error of g_z):

=================  =========  =========
distance (cells)   float64    float32
=================  =========  =========
1                  9e-16      2e-7
10                 6e-14      2e-5
30                 2e-12      4e-3
100                7e-10      0.18
1000               3e-7       >1
=================  =========  =========

The 8-corner sum cancels in the far field, so float32 prisms are only usable within a
few cell sizes of a station: the operator defaults to float64 (and shifts coordinates to
a local origin before any cast); use point masses (``kernel="point"``) for float32 far
fields. ``tests/test_kernels.py::test_far_field_accuracy_float64_and_float32`` pins this.
"""

from __future__ import annotations

import torch

from ._components import POINT_COMPONENTS, PRISM_COMPONENTS, component_pair_kernels
from ._constants import SI_TO_MGAL, G

#: Sign of corner k (bit 0: x upper, bit 1: y upper, bit 2: z upper) in the corner sum.
CORNER_SIGNS = tuple((-1) ** (3 - bin(k).count("1")) for k in range(8))
#: G in mGal·m²/kg: ``G_MGAL * ρ * K`` is g_z in mGal.
G_MGAL = G * SI_TO_MGAL


#: The g_z corner function K(x, y, z) (metres): ``G * ρ * Σ_corners s K`` is g_z in m/s²,
#: positive downward (:func:`gempy_gravinv._components.prism_gz`).
prism_corner_kernel = PRISM_COMPONENTS["gz"]
#: The point-mass g_z pair function ``-z / r³`` (1/m²) for a mass at (x, y, z) relative to
#: a station: ``G * m * point_pair_kernel`` is g_z in m/s², positive downward; 0 at r = 0.
point_pair_kernel = POINT_COMPONENTS["gz"]


def prism_gz(stations: torch.Tensor, bounds: torch.Tensor, density: torch.Tensor) -> torch.Tensor:
    """g_z of prisms at stations, cell by cell (the reference path; no node sharing).

    Parameters
    ----------
    stations : torch.Tensor, shape (n_data, 3)
        Station coordinates, metres, z up.
    bounds : torch.Tensor, shape (n_cells, 6)
        Prism bounds (west, east, south, north, bottom, top), metres.
    density : torch.Tensor, shape (n_cells,)
        Density contrast, kg/m³.

    Returns
    -------
    torch.Tensor, shape (n_data,)
        g_z in mGal, positive downward. Memory is O(n_data * n_cells); use
        :class:`gempy_gravinv.GravityOperator` for large problems.
    """
    return prism_gz_matrix(stations, bounds) @ density


def prism_gz_matrix(stations: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """Sensitivity block (n_data, n_cells): mGal per kg/m³, positive downward, cell by cell."""
    out = torch.zeros(stations.shape[0], bounds.shape[0], dtype=bounds.dtype, device=bounds.device)
    for k, s in enumerate(CORNER_SIGNS):
        corner = torch.stack([bounds[:, 1] if k & 1 else bounds[:, 0],
                              bounds[:, 3] if k & 2 else bounds[:, 2],
                              bounds[:, 5] if k & 4 else bounds[:, 4]], dim=1)
        out += s * _pairs(stations, corner, "prism", False)
    return out * G_MGAL


#: pair functions by kernel name: f(column - station) -> kernel value. ``"prism"`` and
#: ``"point"`` are g_z (positive down); ``"prism_gxx"``, ``"point_gx"``... are the other
#: components (:mod:`gempy_gravinv._components`: units and signs), scaled so that
#: ``G_MGAL * f`` is in the component's unit (mGal or Eötvös).
PAIR_KERNELS = component_pair_kernels()


def _pairs(st: torch.Tensor, cols: torch.Tensor, kind: str, transpose: bool) -> torch.Tensor:
    return _pairs3(st.T, cols.T, kind, transpose)


def _pairs3(st3: torch.Tensor, cols3: torch.Tensor, kind: str, transpose: bool) -> torch.Tensor:
    # coordinates as rows (3, n): each coordinate is unit-stride, so compiled loops vectorise
    if transpose:  # (n_cols, n_st): reductions over stations run along the fast axis
        x = cols3[0][:, None] - st3[0][None, :]
        y = cols3[1][:, None] - st3[1][None, :]
        z = cols3[2][:, None] - st3[2][None, :]
    else:  # (n_st, n_cols)
        x = cols3[0][None, :] - st3[0][:, None]
        y = cols3[1][None, :] - st3[1][:, None]
        z = cols3[2][None, :] - st3[2][:, None]
    return PAIR_KERNELS[kind](x, y, z)


def as_rows3(points: torch.Tensor) -> torch.Tensor:
    """(n, 3) coordinates -> a contiguous (3, n) tensor: x, y and z as rows (the layout of the ``*3`` kernels).

    Compiled kernels vectorise over a unit-stride axis; columns of an (n, 3) array have
    stride 3, which keeps ``torch.compile``'s CPU loops scalar (about 2x slower).
    """
    return points.T.contiguous()


def kernel_block(st: torch.Tensor, cols: torch.Tensor, kind: str = "prism") -> torch.Tensor:
    """Kernel block K (n_st, n_cols) in mGal per column unit, positive downward (``kind`` "prism"/"point").

    Column unit: prism, per kg/m³ per signed corner; point, per kg. Coordinates in metres
    (any common origin). Other kinds (``"prism_gxx"``, ``"point_gx"``...) give that
    component in its unit (mGal or Eötvös) and sign (:mod:`gempy_gravinv._components`).
    """
    return _pairs(st, cols, kind, False) * G_MGAL


def kernel_block_t(st: torch.Tensor, cols: torch.Tensor, kind: str = "prism") -> torch.Tensor:
    """Transposed kernel block Kᵀ (n_cols, n_st), as :func:`kernel_block`: column-major gathers are row copies."""
    return _pairs(st, cols, kind, True) * G_MGAL


def kernel_block3(st3: torch.Tensor, cols3: torch.Tensor, kind: str = "prism") -> torch.Tensor:
    """:func:`kernel_block` (n_st, n_cols) from coordinates as rows: ``st3`` (3, n_st), ``cols3`` (3, n_cols), m."""
    return _pairs3(st3, cols3, kind, False) * G_MGAL


def kernel_block3_t(st3: torch.Tensor, cols3: torch.Tensor, kind: str = "prism") -> torch.Tensor:
    """:func:`kernel_block_t` (n_cols, n_st) from coordinates as rows (see :func:`kernel_block3`)."""
    return _pairs3(st3, cols3, kind, True) * G_MGAL


def kernel_matvec3(st3: torch.Tensor, cols3: torch.Tensor, w: torch.Tensor, kind: str = "prism") -> torch.Tensor:
    """K @ w (n_st,) from coordinates as rows (see :func:`kernel_block3`); not materialised when compiled."""
    return (_pairs3(st3, cols3, kind, False) * w[None, :]).sum(1) * G_MGAL


def kernel_rmatvec3(st3: torch.Tensor, cols3: torch.Tensor, r: torch.Tensor, kind: str = "prism") -> torch.Tensor:
    """Kᵀ @ r (n_cols,) from coordinates as rows (see :func:`kernel_block3`); not materialised when compiled."""
    return (_pairs3(st3, cols3, kind, True) * r[None, :]).sum(1) * G_MGAL


def cell_corner_sum(kt: torch.Tensor, index_t: torch.Tensor) -> torch.Tensor:
    """Cells from corner values: ``Σ_k s_k kt[index_t[k]]`` (n_cells, n_st) for ``kt`` (n_nodes, n_st).

    ``index_t`` (8, n_cells) holds each cell's corner nodes (corner ``k``: x from bit 0,
    y from bit 1, z from bit 2) and ``s_k`` are :data:`CORNER_SIGNS`. One fused gather
    when compiled.
    """
    out = kt[index_t[7]] - kt[index_t[6]] - kt[index_t[5]] + kt[index_t[4]]
    return out - kt[index_t[3]] + kt[index_t[2]] + kt[index_t[1]] - kt[index_t[0]]


def cell_jtj(kt: torch.Tensor, index_t: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """``Σ_i w2_i G_ij²`` (n_cells,) for the stations of ``kt`` (n_nodes, n_st), G from :func:`cell_corner_sum`."""
    g = cell_corner_sum(kt, index_t)
    return (g * g * w2[None, :]).sum(1)


def grid_kernel(st: torch.Tensor, xn: torch.Tensor, yn: torch.Tensor, zn: torch.Tensor,
                kind: str = "prism") -> torch.Tensor:
    """Corner function on a tensor node grid: (n_st, nx, ny, nz), the kind's unit per kg/m³.

    The 1-D node coordinates are broadcast, so squares and products along one or two axes
    are computed on small arrays. :func:`grid_cell_rows` turns it into sensitivity rows.

    Parameters
    ----------
    st : torch.Tensor, shape (n_st, 3)
        Stations, metres (same origin as the nodes).
    xn, yn, zn : torch.Tensor
        Node coordinates along x, y and z, metres.
    kind : str
        A key of :data:`PAIR_KERNELS` with prism corner functions (``"prism"``, ``"prism_gxx"``...).
    """
    x = xn[None, :, None, None] - st[:, 0, None, None, None]
    y = yn[None, None, :, None] - st[:, 1, None, None, None]
    z = zn[None, None, None, :] - st[:, 2, None, None, None]
    return PAIR_KERNELS[kind](x, y, z) * G_MGAL


def grid_cell_rows(k: torch.Tensor) -> torch.Tensor:
    """Sensitivity rows (n_st, n_cells) of every cell of a tensor grid, discretize order (x fastest).

    ``k`` is :func:`grid_kernel`'s (n_st, nx, ny, nz) corner function; each cell is the
    signed sum over its 8 corners (upper corner positive), as triple differences.
    """
    k = k[:, 1:] - k[:, :-1]
    k = k[:, :, 1:] - k[:, :, :-1]
    k = k[..., 1:] - k[..., :-1]
    return k.permute(0, 3, 2, 1).reshape(k.shape[0], -1)


def kernel_matvec(st: torch.Tensor, cols: torch.Tensor, w: torch.Tensor, kind: str = "prism") -> torch.Tensor:
    """K @ w for a vector w (n_cols,) without materialising K when compiled: (n_st,) mGal."""
    return kernel_matvec3(st.T, cols.T, w, kind)


def kernel_rmatvec(st: torch.Tensor, cols: torch.Tensor, r: torch.Tensor, kind: str = "prism") -> torch.Tensor:
    """Kᵀ @ r for a vector r (n_st,) without materialising K when compiled: (n_cols,)."""
    return kernel_rmatvec3(st.T, cols.T, r, kind)


def point_mass_gz_matrix(stations: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Point-mass sensitivity (n_data, n_points): mGal per kg, positive downward.

    ``g_z = G m (z_station - z_point) / R³``. A station exactly on a point gives 0.

    Parameters
    ----------
    stations : torch.Tensor, shape (n_data, 3)
        Station coordinates, metres.
    points : torch.Tensor, shape (n_points, 3)
        Point-mass coordinates, metres.
    """
    return kernel_block(stations, points, "point")


def point_mass_gz(stations: torch.Tensor, points: torch.Tensor, masses: torch.Tensor) -> torch.Tensor:
    """g_z of point masses at stations.

    Parameters
    ----------
    stations : torch.Tensor, shape (n_data, 3)
        Station coordinates, metres, z up.
    points : torch.Tensor, shape (n_points, 3)
        Mass locations, metres.
    masses : torch.Tensor, shape (n_points,)
        Masses (or mass excesses), kg.

    Returns
    -------
    torch.Tensor, shape (n_data,)
        g_z in mGal, positive downward.
    """
    return point_mass_gz_matrix(stations, points) @ masses
