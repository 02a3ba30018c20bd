"""Translation-invariant (lattice) fast path for gridded surveys over uniform cells.

When the cells form a tensor mesh whose x and y widths are uniform, and the stations sit
on a lattice congruent with it (every station at the same sub-cell offset, e.g. over the
cell centres) at a few elevations, the prism kernel depends only on the *offset* between
cell and station. Then:

- the cell kernel ``C[a, b, k]`` (8-corner sum) is evaluated once on the small grid of
  offsets (about (2 nx) (2 ny) nz values instead of n_data x n_cells);
- a dense G row is a gather from ``C`` (no transcendental function at all);
- ``G·m`` and ``Gᵀ·r`` are 2-D correlations per layer, done with FFTs in
  O(nz N log N), independent of the number of stations.

The results equal the general node-sharing path to rounding (~1e-13 relative); the
operator picks this path automatically when it applies (``lattice="auto"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._kernels import kernel_block


@dataclass
class _Group:
    """Stations at one elevation: lattice indices and the FFT of the flipped cell kernel."""

    rows: torch.Tensor      # station indices (into the survey) of this group
    p: torch.Tensor         # x lattice index of each station (relative to the group's first)
    q: torch.Tensor         # y lattice index
    C: torch.Tensor         # cell kernel on offsets, (nz, Ny, Nx), mGal per kg/m³
    D_hat: torch.Tensor     # rfft2 of the flipped C, padded to (Ly, Lx)
    C_hat: torch.Tensor     # rfft2 of C, padded to (Ly, Lx)
    p_min: int
    p_max: int
    q_min: int
    q_max: int


def _lattice_index(t: np.ndarray, tol: float = 1e-7) -> tuple[np.ndarray, float] | None:
    """Integer lattice positions if all ``t`` share one fractional part, else None."""
    t0 = t[0]
    k = np.round(t - t0)
    if np.max(np.abs(t - t0 - k)) > tol:
        return None
    return k.astype(np.int64), float(t0)


class LatticePlan:
    """Offset-kernel plan for a uniform-xy tensor mesh and lattice stations.

    Use :meth:`build`, which returns ``None`` when the geometry does not qualify or the
    plan would not save work. Coordinates are local (already shifted), metres.
    """

    def __init__(self, groups, shape, full_index, n_cells, n_data, device, dtype):
        self.groups = groups
        self.shape = shape            # (nx, ny, nz)
        self.full_index = full_index  # (n_cells,) index into the full tensor mesh (F order)
        self.n_cells = n_cells
        self.n_data = n_data
        self.device = device
        self.dtype = dtype
        self.all_active = n_cells == shape[0] * shape[1] * shape[2]

    @classmethod
    def build(cls, nodes_xyz, full_index, n_cells, stations, device, dtype, *, max_ratio: float = 0.25,
              max_groups: int = 16):
        """Plan the offset kernels, or return None when the lattice path does not apply.

        Parameters
        ----------
        nodes_xyz : (array_like, array_like, array_like)
            Node coordinates ``(xn, yn, zn)`` of the tensor mesh, local metres.
        full_index : array_like (n_cells,)
            Index of each (active) cell in the full tensor mesh, Fortran order.
        n_cells : int
            Number of active cells.
        stations : array_like (n_data, 3)
            Station coordinates, local metres, z up.
        device, dtype
            Torch device and float dtype of the plan.
        max_ratio : float
            Largest ratio of offset-grid work to the general path's work.
        max_groups : int
            Largest number of distinct station elevations.

        Returns
        -------
        LatticePlan or None
            None when the x/y widths are not uniform, the stations are not on a lattice
            congruent with the cells, there are too many elevations, or no work is saved.
        """
        xn, yn, zn = (np.asarray(a, float) for a in nodes_xyz)
        hx, hy = np.diff(xn), np.diff(yn)
        if not (np.allclose(hx, hx[0], rtol=1e-10, atol=0) and np.allclose(hy, hy[0], rtol=1e-10, atol=0)):
            return None
        hx, hy = float(hx[0]), float(hy[0])
        st = np.asarray(stations, float)
        lx = _lattice_index((st[:, 0] - xn[0]) / hx)
        ly = _lattice_index((st[:, 1] - yn[0]) / hy)
        if lx is None or ly is None:
            return None
        (px, tx), (py, ty) = lx, ly
        heights, inverse = np.unique(np.round(st[:, 2], 9), return_inverse=True)
        if len(heights) > max_groups:
            return None
        nx, ny, nz = len(xn) - 1, len(yn) - 1, len(zn) - 1
        # work on the offset grids vs the general path
        span = (nx + 1 + px.max() - px.min()) * (ny + 1 + py.max() - py.min()) * (nz + 1) * len(heights)
        if span > max_ratio * len(st) * (nx + 1) * (ny + 1) * (nz + 1):
            return None
        tk = dict(device=device, dtype=dtype)
        groups = []
        for g in range(len(heights)):
            rows = np.flatnonzero(inverse == g)
            p, q = px[rows], py[rows]
            p_min, p_max, q_min, q_max = int(p.min()), int(p.max()), int(q.min()), int(q.max())
            # node offsets: x_node - x_station = (a + q_min_off - t0) hx, a = 0..Nx
            ax = (np.arange(-p_max, nx - p_min + 1) - tx) * hx
            ay = (np.arange(-q_max, ny - q_min + 1) - ty) * hy
            az = zn - st[rows[0], 2]
            X, Y, Z = np.meshgrid(ax, ay, az, indexing="ij")
            offsets = torch.as_tensor(np.stack([X.ravel(), Y.ravel(), Z.ravel()], 1), **tk)
            K = kernel_block(torch.zeros((1, 3), **tk), offsets)[0].reshape(X.shape)
            C = K[1:] - K[:-1]
            C = C[:, 1:] - C[:, :-1]
            C = C[..., 1:] - C[..., :-1]          # (Nx, Ny, nz): cell kernel, upper-corner positive
            C = C.permute(2, 1, 0).contiguous()   # (nz, Ny, Nx)
            Ny_, Nx_ = C.shape[1], C.shape[2]
            Ly, Lx = Ny_ + ny - 1, Nx_ + nx - 1
            D_hat = torch.fft.rfft2(torch.flip(C, dims=(1, 2)), s=(Ly, Lx))
            C_hat = torch.fft.rfft2(C, s=(Ly, Lx))
            groups.append(_Group(torch.as_tensor(rows, device=device), torch.as_tensor(p - p_min, device=device),
                                 torch.as_tensor(q - q_min, device=device), C, D_hat, C_hat,
                                 p_min, p_max, q_min, q_max))
        return cls(groups, (nx, ny, nz), torch.as_tensor(full_index, device=device), n_cells, len(st),
                   device, dtype)

    # --------------------------------------------------------------- helpers
    def _to_grid(self, m: torch.Tensor) -> torch.Tensor:
        """(n_cells, B) -> (B, nz, ny, nx) with zeros in inactive cells."""
        nx, ny, nz = self.shape
        B = m.shape[1]
        if self.all_active:
            full = m
        else:
            full = torch.zeros((nx * ny * nz, B), dtype=m.dtype, device=m.device)
            full[self.full_index] = m
        return full.T.reshape(B, nz, ny, nx)

    def _from_grid(self, grid: torch.Tensor) -> torch.Tensor:
        """(B, nz, ny, nx) -> (n_cells, B)."""
        flat = grid.reshape(grid.shape[0], -1).T
        return flat if self.all_active else flat[self.full_index]

    # --------------------------------------------------------------- products
    def forward(self, m: torch.Tensor) -> torch.Tensor:
        """G·m, m (n_cells, B) kg/m³ -> (n_data, B) mGal."""
        nx, ny, _ = self.shape
        grid = self._to_grid(m)
        out = torch.zeros((self.n_data, m.shape[1]), dtype=m.dtype, device=m.device)
        for g in self.groups:
            Ly, Lx = g.C.shape[1] + ny - 1, g.C.shape[2] + nx - 1
            spec = (torch.fft.rfft2(grid, s=(Ly, Lx)) * g.D_hat[None]).sum(1)  # Σ_k over layers
            conv = torch.fft.irfft2(spec, s=(Ly, Lx))                          # (B, Ly, Lx)
            # station at lattice (p', q') reads the full convolution at (q' + ny - 1, p' + nx - 1)
            out[g.rows] = conv[:, g.q + ny - 1, g.p + nx - 1].T
        return out

    def adjoint(self, r: torch.Tensor) -> torch.Tensor:
        """Gᵀ·r, r (n_data, B) mGal -> (n_cells, B)."""
        nx, ny, nz = self.shape
        B = r.shape[1]
        grid = torch.zeros((B, nz, ny, nx), dtype=r.dtype, device=r.device)
        for g in self.groups:
            Ly, Lx = g.C.shape[1] + ny - 1, g.C.shape[2] + nx - 1
            Sx, Sy = g.p_max - g.p_min, g.q_max - g.q_min
            R = torch.zeros((B, (Sy + 1) * (Sx + 1)), dtype=r.dtype, device=r.device)
            R.index_add_(1, g.q * (Sx + 1) + g.p, r[g.rows].T.contiguous())
            R = R.reshape(B, Sy + 1, Sx + 1)
            spec = torch.fft.rfft2(R, s=(Ly, Lx))[:, None] * g.C_hat[None]   # (B, nz, Ly, Lx//2+1)
            conv = torch.fft.irfft2(spec, s=(Ly, Lx))
            grid += conv[:, :, Sy:Sy + ny, Sx:Sx + nx]
        return self._from_grid(grid)

    def rows(self, r0: int, r1: int) -> torch.Tensor:
        """Dense G rows r0:r1 (n, n_cells), mGal per kg/m³, by gathering the offset kernel."""
        nx, ny, nz = self.shape
        out = torch.empty((r1 - r0, self.n_cells), dtype=self.dtype, device=self.device)
        ii = torch.arange(nx, device=self.device)
        jj = torch.arange(ny, device=self.device)
        for g in self.groups:
            sel = torch.nonzero((g.rows >= r0) & (g.rows < r1)).reshape(-1)
            if sel.numel() == 0:
                continue
            Sx, Sy = g.p_max - g.p_min, g.q_max - g.q_min
            ax = ii[None, :] - g.p[sel][:, None] + Sx   # (n, nx) offset index along x
            ay = jj[None, :] - g.q[sel][:, None] + Sy   # (n, ny)
            blk = g.C[:, ay[:, :, None], ax[:, None, :]]  # (nz, n, ny, nx)
            blk = blk.permute(1, 0, 2, 3).reshape(sel.numel(), -1)  # x fastest, z slowest
            out[g.rows[sel] - r0] = blk if self.all_active else blk[:, self.full_index]
        return out
