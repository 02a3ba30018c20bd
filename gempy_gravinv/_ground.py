"""The ground: which cells lie below a topography, and whether stations and topography agree.

Units: metres, z up (elevation).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ._validation import as_finite_array


def _points(topography) -> np.ndarray:
    """The topography's points (n, 3) float64, or an error naming their shape or NaN."""
    xyz = as_finite_array(topography, name="topography", ndim=2)
    if xyz.shape[1] != 3:
        raise ValueError(f"topography must have shape (n, 3): x, y, z in metres; got {xyz.shape}")
    return xyz


def active_from_topography(mesh: Any, topography) -> np.ndarray:
    """Cells below the ground: a boolean mask over a discretize mesh's cells.

    Parameters
    ----------
    mesh : discretize.TensorMesh or discretize.TreeMesh
        3-D mesh in metres, z up.
    topography : array_like, shape (n, 3)
        Ground points ``x, y, z`` in metres (z up, elevation), e.g. from
        :func:`gempy_gravinv.io.read_topography`.

    Returns
    -------
    numpy.ndarray of bool
        ``discretize.utils.active_from_xyz(mesh, topography)`` (cell centres below the
        interpolated surface).

    Raises
    ------
    ValueError
        The topography is not (n, 3) finite points, or it leaves no cell below ground
        (it lies below the whole mesh). A surface above the whole mesh keeps every
        cell.
    """
    from discretize.utils import active_from_xyz

    xyz = _points(topography)
    mask = np.asarray(active_from_xyz(mesh, xyz), dtype=bool)
    if not mask.any():
        zmin = float(mesh.nodes[:, 2].min())
        raise ValueError(f"the topography (z from {xyz[:, 2].min():.6g} to {xyz[:, 2].max():.6g} m) leaves no "
                         f"cell below ground: the mesh bottom is at {zmin:.6g} m")
    return mask


def check_topography(mesh: Any, topography, locations=None) -> None:
    """Refuse a topography that misses the mesh; warn where stations lie beyond it or below the ground.

    Parameters
    ----------
    mesh : discretize.TensorMesh or discretize.TreeMesh
        3-D mesh in metres, z up.
    topography : array_like, shape (n, 3)
        Ground points ``x, y, z`` in metres (z up).
    locations : array_like, shape (m, 3), optional
        Station coordinates, metres. Stations beyond the topography's horizontal extent
        (where the ground is extrapolated from the nearest points), or more than half the
        thinnest cell below the ground interpolated at them (elevations on another datum
        than the topography's?), are warned about.

    Raises
    ------
    ValueError
        The topography's points do not overlap the mesh horizontally (another coordinate
        system?).
    """
    from scipy.interpolate import LinearNDInterpolator

    xyz = _points(topography)
    nodes = np.asarray(mesh.nodes, dtype=float)
    lo, hi = xyz[:, :2].min(0), xyz[:, :2].max(0)
    mlo, mhi = nodes[:, :2].min(0), nodes[:, :2].max(0)
    if np.any(hi < mlo) or np.any(lo > mhi):
        raise ValueError(f"the topography (x {lo[0]:.6g} to {hi[0]:.6g}, y {lo[1]:.6g} to {hi[1]:.6g} m) does not "
                         f"overlap the mesh (x {mlo[0]:.6g} to {mhi[0]:.6g}, y {mlo[1]:.6g} to {mhi[1]:.6g} m): "
                         "another coordinate system?")
    if locations is None:
        return
    loc = np.asarray(locations, dtype=float)
    out = np.any((loc[:, :2] < lo) | (loc[:, :2] > hi), axis=1)
    if out.any():
        warnings.warn(f"{int(out.sum())} station(s) lie beyond the topography's extent (x {lo[0]:.6g} to "
                      f"{hi[0]:.6g}, y {lo[1]:.6g} to {hi[1]:.6g} m): the ground there is extrapolated from the "
                      "nearest points", UserWarning, stacklevel=2)
    if len(xyz) < 3 or np.linalg.matrix_rank(xyz[:, :2] - xyz[:, :2].mean(0)) < 2:
        return
    ground = LinearNDInterpolator(xyz[:, :2], xyz[:, 2])(loc[:, :2])
    tol = 0.5 * float(np.min(np.diff(np.unique(nodes[:, 2]))))
    depth = ground - loc[:, 2]
    below = np.flatnonzero(np.isfinite(depth) & (depth > tol))
    if below.size:
        i = int(below[np.argmax(depth[below])])
        warnings.warn(f"{below.size} station(s) lie below the topography (station {i} {depth[i]:.4g} m below the "
                      "ground interpolated there): stations and topography on different vertical datums?",
                      UserWarning, stacklevel=2)
