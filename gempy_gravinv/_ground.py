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


def active_from_topography(mesh: Any, topography, locations=None) -> np.ndarray:
    """Cells below the ground: a boolean mask over a discretize mesh's cells.

    Parameters
    ----------
    mesh : discretize.TensorMesh or discretize.TreeMesh
        3-D mesh in metres, z up.
    topography : array_like, shape (n, 3)
        Ground points ``x, y, z`` in metres (z up, elevation), e.g. from
        :func:`gempy_gravinv.io.read_topography`.
    locations : array_like, shape (m, 3), optional
        Station coordinates, metres. A cell whose centre lies below the ground reaches
        up to half a cell above it, so stations draped just above the ground can lie
        inside it: such a cell, holding a station that lies on or above the ground
        interpolated there (within half the thinnest cell), is left inactive, with a
        warning. Stations deeper than that are left for the station checks to refuse.

    Returns
    -------
    numpy.ndarray of bool
        ``discretize.utils.active_from_xyz(mesh, topography)`` (cell centres below the
        interpolated surface), less the cells holding stations (above).

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
    if locations is not None:
        mask = _clear_station_cells(mesh, mask, xyz, as_finite_array(locations, name="locations", ndim=2))
    return mask


def _clear_station_cells(mesh: Any, mask: np.ndarray, xyz: np.ndarray, loc: np.ndarray) -> np.ndarray:
    """``mask`` less the active cells that hold a station lying on or above the ground (see above).

    A station holds a cell where it lies inside it, or on a face, edge or corner with
    active cells all round it: then every active cell that reaches above the station
    from there is cleared (a station on the top face of a cell keeps that cell).
    """
    from ._mesh import PrismMesh

    pm = PrismMesh.from_discretize(mesh, mask)
    held = pm.stations_surrounded(loc)  # inside a cell, or on its faces with active cells all round
    if not held.size:
        return mask
    thinnest = _thinnest_layer(mesh)
    above = held[loc[held, 2] >= _ground_at(xyz, loc[held]) - 0.5 * thinnest]
    if not above.size:
        return mask
    step = max(1e-6 * thinnest, 1e-6)
    cells = np.unique(np.concatenate([  # the cells just above the station on every side of it
        np.asarray(mesh.point2index(loc[above] + step * np.array([sx, sy, 1.0])), dtype=int)
        for sx in (-1.0, 1.0) for sy in (-1.0, 1.0)]))
    cells = cells[mask[cells]]
    out = mask.copy()
    out[cells] = False
    warnings.warn(f"{cells.size} cell(s) whose centres lie below the ground reach above it and hold {above.size} "
                  f"station(s) (first: station {int(above[0])} at {loc[above[0]].tolist()} m): they are left "
                  "inactive, so the stations lie above the rock; cells thinner near the ground make this "
                  "difference smaller", UserWarning, stacklevel=3)
    return out


def _thinnest_layer(mesh: Any) -> float:
    """The smallest vertical gap between the mesh's node levels, m (the thinnest cell's height or less)."""
    return float(np.min(np.diff(np.unique(np.asarray(mesh.nodes, dtype=float)[:, 2]))))


def _ground_at(xyz: np.ndarray, points: np.ndarray, nearest_beyond: bool = True) -> np.ndarray:
    """The ground's elevation at ``points`` (x, y), linear within the topography's points.

    Beyond them (or for any point where they lie on one line): the nearest point's
    elevation, or NaN without ``nearest_beyond``.
    """
    from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator

    if len(xyz) >= 3 and np.linalg.matrix_rank(xyz[:, :2] - xyz[:, :2].mean(0)) == 2:
        z = LinearNDInterpolator(xyz[:, :2], xyz[:, 2])(points[:, :2])
    else:
        z = np.full(len(points), np.nan)
    gap = ~np.isfinite(z)
    if nearest_beyond and gap.any():
        z[gap] = NearestNDInterpolator(xyz[:, :2], xyz[:, 2])(points[gap, :2])
    return z


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
    ground = _ground_at(xyz, loc, nearest_beyond=False)  # extrapolated ground is warned about above
    tol = 0.5 * _thinnest_layer(mesh)
    depth = ground - loc[:, 2]
    below = np.flatnonzero(np.isfinite(depth) & (depth > tol))
    if below.size:
        i = int(below[np.argmax(depth[below])])
        warnings.warn(f"{below.size} station(s) lie below the topography (station {i} {depth[i]:.4g} m below the "
                      "ground interpolated there): stations and topography on different vertical datums?",
                      UserWarning, stacklevel=2)
