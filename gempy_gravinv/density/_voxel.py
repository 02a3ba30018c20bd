"""VoxelDensity: one parameter per cell (the mesh-based model, for comparison)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .._mesh import PrismMesh
from ._inr import BoundedOutput, as_torch_dtype


class VoxelDensity(nn.Module):
    """Piecewise-constant density: one free parameter per cell of ``mesh``.

    Parameters
    ----------
    mesh : PrismMesh
        The cells; a point takes the value of the cell that contains it (the nearest
        cell centre for points outside the mesh or on a non-tensor mesh).
    output : {"linear", "tanh", "sigmoid"}
        ``"linear"``: the parameters are the densities (kg/m³); otherwise bounded in
        ``bounds`` as in :class:`INRDensity`.
    bounds : (lo, hi), optional
        kg/m³; required for bounded outputs.
    init_value : float
        Initial density everywhere, kg/m³.
    dtype : {"float32", "float64"}
        Parameter dtype.
    """

    def __init__(self, mesh: PrismMesh, *, output: str = "linear", bounds=None, init_value: float = 0.0,
                 dtype="float64", seed: int | None = None) -> None:
        super().__init__()
        if not isinstance(mesh, PrismMesh):
            raise TypeError(f"VoxelDensity needs a PrismMesh, got {type(mesh).__name__}")
        self.mesh = mesh
        self.dtype = as_torch_dtype(dtype)
        self.output = BoundedOutput(output, bounds)
        raw0 = self.output.inverse(float(init_value))
        self.values = nn.Parameter(torch.full((mesh.n_cells,), raw0, dtype=self.dtype))
        self._cache: tuple | None = None
        self.options = dict(output=output, bounds=None if bounds is None else list(bounds),
                            init_value=init_value, dtype=str(self.dtype).split(".")[-1])

    def cell_index(self, points) -> np.ndarray:
        """Index of the cell holding each point (n,) (nearest cell centre outside)."""
        p = np.asarray(torch.as_tensor(points).detach().cpu().numpy(), dtype=np.float64).reshape(-1, 3)
        b = self.mesh.bounds
        inside = None
        shp = self.mesh.shape
        if shp is not None and int(np.prod(shp)) == self.mesh.n_cells:
            nx, ny, nz = self.mesh.shape
            ex = np.r_[b[:nx, 0], b[nx - 1, 1]]
            ey = np.r_[b[::nx][:ny, 2], b[(ny - 1) * nx, 3]]
            ez = np.r_[b[::nx * ny][:nz, 4], b[(nz - 1) * nx * ny, 5]]
            ix = np.clip(np.searchsorted(ex, p[:, 0], side="right") - 1, 0, nx - 1)
            iy = np.clip(np.searchsorted(ey, p[:, 1], side="right") - 1, 0, ny - 1)
            iz = np.clip(np.searchsorted(ez, p[:, 2], side="right") - 1, 0, nz - 1)
            inside = ix + nx * (iy + ny * iz)
        if inside is None:
            from scipy.spatial import cKDTree

            inside = cKDTree(self.mesh.cell_centers).query(p)[1]
        return np.asarray(inside, dtype=np.int64)

    def cell_values(self) -> torch.Tensor:
        """Density (n_cells,) kg/m³ on the mesh cells."""
        return self.output(self.values)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """Density (n,) kg/m³ of the cells holding ``points`` (n, 3) metres."""
        p = torch.as_tensor(points)
        key = (p.shape, p.data_ptr(), getattr(p, "_version", 0))
        if self._cache is None or self._cache[0] != key:
            idx = torch.as_tensor(self.cell_index(p), device=self.values.device)
            self._cache = (key, idx)
        return self.cell_values()[self._cache[1]]

    def on_mesh(self, mesh: PrismMesh | None = None, quadrature: int = 1) -> torch.Tensor:
        """Cell densities (n_cells,) kg/m³ (quadrature is irrelevant: constant per cell)."""
        if mesh is not None and mesh is not self.mesh:
            if mesh.n_cells != self.mesh.n_cells or not np.allclose(mesh.bounds, self.mesh.bounds):
                from ._inr import evaluate_on_mesh

                return evaluate_on_mesh(self, mesh, quadrature)
        return self.cell_values()
