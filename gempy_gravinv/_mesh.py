"""Prism geometry: cells as right rectangular prisms, from discretize meshes or arrays."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ._validation import as_finite_array, check_choice, fits_lonlat

#: Largest compressed face grid (cells) the overlap check fills; beyond it, a k-d tree is used.
_OVERLAP_GRID_MAX = 10_000_000
#: A station farther from the mesh than this many horizontal extents is refused (or warned).
FAR_STATION_FACTOR = 10.0


def find_overlapping_cells(bounds, decimals: int = 6) -> tuple[int, int] | None:
    """Two prisms whose interiors overlap, or ``None`` when no two do.

    Grid-based: the face coordinates of all cells (rounded to ``10**-decimals`` m) cut
    space into a rectilinear grid; every cell covers a box of grid cells, and a grid cell
    covered twice is an overlap. The coverage is counted with a 3-D difference array
    (O(n_cells + grid size)). When that grid would be too large (very irregular cells),
    a k-d tree of the cell centres finds the candidate pairs instead.

    Parameters
    ----------
    bounds : ndarray, shape (n_cells, 6)
        ``(west, east, south, north, bottom, top)`` in metres, widths > 0.
    decimals : int
        Faces closer than ``10**-decimals`` m count as the same (touching, not overlapping).

    Returns
    -------
    (int, int) or None
        Indices of two overlapping cells.
    """
    b = np.round(np.asarray(bounds, dtype=np.float64), decimals)
    n = b.shape[0]
    if n < 2:
        return None
    axes, lo, hi = [], [], []
    for a in range(3):
        u = np.unique(b[:, 2 * a: 2 * a + 2])
        axes.append(u)
        lo.append(np.searchsorted(u, b[:, 2 * a]))
        hi.append(np.searchsorted(u, b[:, 2 * a + 1]))
    gshape = tuple(len(u) for u in axes)  # one more node than grid cells per axis
    if float(np.prod(gshape, dtype=np.float64)) <= _OVERLAP_GRID_MAX:
        # 3-D difference array: +1/-1 at the 8 corners of each cell's box, then prefix sums
        idx = np.concatenate([np.ravel_multi_index((hi[0] if k & 1 else lo[0], hi[1] if k & 2 else lo[1],
                                                    hi[2] if k & 4 else lo[2]), gshape) for k in range(8)])
        sign = np.repeat([(-1.0) ** bin(k).count("1") for k in range(8)], n)
        cover = np.bincount(idx, weights=sign, minlength=int(np.prod(gshape))).astype(np.int32).reshape(gshape)
        for ax in range(3):
            np.cumsum(cover, axis=ax, out=cover)
        hot = np.argwhere(cover[:-1, :-1, :-1] > 1)
        if hot.size == 0:
            return None
        gi, gj, gk = hot[0]
        hit = np.flatnonzero((lo[0] <= gi) & (gi < hi[0]) & (lo[1] <= gj) & (gj < hi[1])
                             & (lo[2] <= gk) & (gk < hi[2]))
        return int(hit[0]), int(hit[1])
    from scipy.spatial import cKDTree

    cc = np.column_stack([(b[:, 0] + b[:, 1]) / 2, (b[:, 2] + b[:, 3]) / 2, (b[:, 4] + b[:, 5]) / 2])
    half = np.column_stack([b[:, 1] - b[:, 0], b[:, 3] - b[:, 2], b[:, 5] - b[:, 4]]) / 2
    rad = np.linalg.norm(half, axis=1)
    tree = cKDTree(cc)
    tol = 10.0 ** -decimals
    for start in range(0, n, 4096):
        idx = np.arange(start, min(n, start + 4096))
        cand = tree.query_ball_point(cc[idx], rad[idx] + rad.max())
        i = np.repeat(idx, [len(c) for c in cand])
        j = np.fromiter((v for c in cand for v in c), dtype=np.int64, count=len(i))
        keep = i < j
        i, j = i[keep], j[keep]
        hit = np.flatnonzero(np.all(np.abs(cc[j] - cc[i]) < (half[j] + half[i] - tol), axis=1))
        if hit.size:
            return int(i[hit[0]]), int(j[hit[0]])
    return None


def active_mask(active_cells, n_cells: int) -> np.ndarray:
    """Boolean mask (n_cells,) of the active cells, from a mask or from cell indices.

    Parameters
    ----------
    active_cells : array_like of bool or int, or None
        A boolean mask with one entry per cell, or the (unique, non-negative) indices
        of the active cells, as SimPEG takes them; ``None`` means every cell.
    n_cells : int
        Number of cells of the full mesh.

    Returns
    -------
    numpy.ndarray of bool

    Raises
    ------
    ValueError or TypeError
        A mask of the wrong length, indices out of range, negative or repeated,
        floats (a 0/1 float array is ambiguous: pass ``mask.astype(bool)``), or no
        active cell.
    """
    if active_cells is None:
        return np.ones(n_cells, dtype=bool)
    a = np.asarray(active_cells)
    if a.dtype == bool:
        if a.shape != (n_cells,):
            raise ValueError(f"active_cells mask has shape {a.shape}, mesh has {n_cells} cells")
        mask = a.copy()
    elif a.dtype.kind in "iu":
        idx = a.reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= n_cells):
            raise ValueError(f"active_cells indices must lie in [0, {n_cells - 1}]; "
                             f"got values from {idx.min()} to {idx.max()}")
        if np.unique(idx).size != idx.size:
            raise ValueError("active_cells indices contain duplicates")
        mask = np.zeros(n_cells, dtype=bool)
        mask[idx] = True
    else:
        raise TypeError(f"active_cells must be a boolean mask or integer cell indices, got dtype {a.dtype}"
                        + ("; convert a 0/1 array with .astype(bool)" if a.dtype.kind == "f" else ""))
    if not mask.any():
        raise ValueError("active_cells selects no cell")
    return mask


def as_prism_mesh(mesh: Any, active_cells=None) -> PrismMesh:
    """The cells of ``mesh`` as a :class:`PrismMesh`.

    Parameters
    ----------
    mesh : PrismMesh, discretize.TensorMesh or discretize.TreeMesh
        Cells in metres, z up. A :class:`PrismMesh` is returned as it is.
    active_cells : array_like of bool or int, optional
        With a discretize mesh: the cells that carry density (see :func:`active_mask`).

    Returns
    -------
    PrismMesh

    Raises
    ------
    TypeError
        Anything else, or ``active_cells`` given with a :class:`PrismMesh` (whose cells
        are already the active ones).
    """
    if isinstance(mesh, PrismMesh):
        if active_cells is not None:
            raise TypeError("active_cells applies to a discretize mesh; a PrismMesh holds only active cells")
        return mesh
    if getattr(mesh, "dim", None) == 3 and hasattr(mesh, "cell_centers"):
        return PrismMesh.from_discretize(mesh, active_cells=active_cells)
    raise TypeError(f"mesh must be a PrismMesh or a 3-D discretize TensorMesh/TreeMesh, got {type(mesh).__name__}")


class PrismMesh:
    """A set of right rectangular prisms (the cells a density model lives on).

    Parameters
    ----------
    bounds : array_like, shape (n_cells, 6)
        Cell bounds ``(west, east, south, north, bottom, top)`` in metres, z up.
        Every cell must have strictly positive extent on each axis.
    shape : tuple of int, optional
        ``(nx, ny, nz)`` when the cells are the active cells of a tensor mesh (set by
        :meth:`from_discretize` / :meth:`from_tensor`); used for sections and outputs.
    active_cells : ndarray of bool, optional
        Mask over the full tensor/tree mesh the cells came from.
    check_overlap : bool
        Refuse prisms whose interiors overlap (:func:`find_overlapping_cells`, sort- and
        grid-based, O(n log n)); skipped for cells of a discretize mesh, which never
        overlap.

    Raises
    ------
    ValueError
        Non-finite bounds, a degenerate cell, or two overlapping cells.

    Notes
    -----
    The cell order is the order of ``bounds``; :meth:`from_discretize` keeps
    discretize's (Fortran, x fastest) order of the active cells, so models from SimPEG
    line up without reordering.
    """

    def __init__(self, bounds, *, shape: tuple[int, int, int] | None = None,
                 active_cells: np.ndarray | None = None, source: Any = None,
                 check_overlap: bool = True) -> None:
        b = as_finite_array(bounds, name="bounds")
        if b.ndim != 2 or b.shape[1] != 6:
            raise ValueError(f"bounds must have shape (n_cells, 6), got {b.shape}")
        widths = b[:, 1::2] - b[:, 0::2]
        bad = np.any(widths <= 0, axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"{int(bad.sum())} degenerate cell(s) with zero or negative width "
                f"(west<east, south<north, bottom<top required); first is cell {i}: {b[i].tolist()}"
            )
        if check_overlap:
            pair = find_overlapping_cells(b)
            if pair is not None:
                i, j = pair
                raise ValueError(
                    f"cells {i} and {j} overlap ({b[i].tolist()} and {b[j].tolist()} m, west, east, south, "
                    "north, bottom, top): the mass they share would count twice; cells may only touch"
                )
        self._bounds = b
        self.shape = None if shape is None else tuple(int(s) for s in shape)
        self.active_cells = None if active_cells is None else np.asarray(active_cells, bool)
        self.source = source
        self._node_cache = None

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_tensor(cls, hx, hy, hz, origin=(0.0, 0.0, 0.0)) -> PrismMesh:
        """Build a full tensor mesh from cell widths (m) and the south-west-bottom origin (m).

        Cells are ordered x fastest, then y, then z (discretize's order).
        """
        from discretize import TensorMesh

        return cls.from_discretize(TensorMesh([np.asarray(hx, float), np.asarray(hy, float),
                                               np.asarray(hz, float)], origin=origin))

    @classmethod
    def from_discretize(cls, mesh: Any, active_cells=None) -> PrismMesh:
        """Build from a ``discretize.TensorMesh`` or ``discretize.TreeMesh``.

        Parameters
        ----------
        mesh : discretize.TensorMesh or discretize.TreeMesh
            A 3-D mesh in metres, z up.
        active_cells : array_like of bool or int, optional
            Cells that carry density (SimPEG's ``active_cells``); all by default.

        Returns
        -------
        PrismMesh
            The active cells as prisms, in the mesh's cell order.
        """
        import discretize

        if getattr(mesh, "dim", None) != 3:
            raise ValueError("a 3-D discretize mesh is required")
        mask = active_mask(active_cells, mesh.n_cells)
        if isinstance(mesh, discretize.TensorMesh):
            cc = mesh.cell_centers
            h = np.asarray(mesh.h_gridded)
            shape = tuple(int(s) for s in mesh.shape_cells)
        elif isinstance(mesh, discretize.TreeMesh):
            cc = mesh.cell_centers
            h = np.asarray(mesh.h_gridded)
            shape = None
        else:
            raise TypeError(f"unsupported mesh type {type(mesh).__name__}: TensorMesh or TreeMesh")
        lo = cc - h / 2
        hi = cc + h / 2
        bounds = np.column_stack([lo[:, 0], hi[:, 0], lo[:, 1], hi[:, 1], lo[:, 2], hi[:, 2]])[mask]
        return cls(bounds, shape=shape, active_cells=mask, source=mesh, check_overlap=False)

    # ------------------------------------------------------------------ geometry
    @property
    def bounds(self) -> np.ndarray:
        """Cell bounds (n_cells, 6): west, east, south, north, bottom, top (m)."""
        v = self._bounds.view()
        v.flags.writeable = False
        return v

    @property
    def n_cells(self) -> int:
        """Number of cells (prisms)."""
        return int(self._bounds.shape[0])

    @property
    def cell_centers(self) -> np.ndarray:
        """Cell centres (n_cells, 3), metres."""
        b = self._bounds
        return np.column_stack([(b[:, 0] + b[:, 1]) / 2, (b[:, 2] + b[:, 3]) / 2, (b[:, 4] + b[:, 5]) / 2])

    @property
    def cell_widths(self) -> np.ndarray:
        """Cell widths (n_cells, 3), metres."""
        return self._bounds[:, 1::2] - self._bounds[:, 0::2]

    @property
    def volumes(self) -> np.ndarray:
        """Cell volumes (n_cells,), m³."""
        return np.prod(self.cell_widths, axis=1)

    @property
    def extent(self) -> np.ndarray:
        """(xmin, xmax, ymin, ymax, zmin, zmax) of all cells, metres."""
        b = self._bounds
        return np.array([b[:, 0].min(), b[:, 1].max(), b[:, 2].min(), b[:, 3].max(),
                         b[:, 4].min(), b[:, 5].max()])

    def __len__(self) -> int:
        return self.n_cells

    def __repr__(self) -> str:
        e = self.extent
        shp = f", shape={self.shape}" if self.shape else ""
        return (f"PrismMesh(n_cells={self.n_cells}{shp}, x=[{e[0]:.1f}, {e[1]:.1f}], "
                f"y=[{e[2]:.1f}, {e[3]:.1f}], z=[{e[4]:.1f}, {e[5]:.1f}] m)")

    # ------------------------------------------------------------------ nodes
    def corner_nodes(self, decimals: int = 6) -> tuple[np.ndarray, np.ndarray]:
        """Unique prism corners and, per cell, the indices of its 8 corners.

        Neighbouring cells share corners; evaluating the prism kernel once per unique
        corner and differencing per cell is what makes the node-sharing forward cheap.

        Parameters
        ----------
        decimals : int
            Corners closer than ``10**-decimals`` m are merged.

        Returns
        -------
        nodes : ndarray, shape (n_nodes, 3)
            Unique corner coordinates, metres.
        index : ndarray of int64, shape (n_cells, 8)
            Corner ``k`` of cell ``c`` is ``nodes[index[c, k]]``; corner ``k`` takes
            x from bit 0, y from bit 1, z from bit 2 (0 = lower bound, 1 = upper bound),
            with sign ``(-1)**(3 - popcount(k))`` in the corner sum.
        """
        if self._node_cache is not None and self._node_cache[0] == decimals:
            return self._node_cache[1], self._node_cache[2]
        grid = self.tensor_nodes()
        if grid is not None:
            # tensor mesh: the full node grid (x slowest, z fastest), index by arithmetic
            xn, yn, zn = grid
            nodes = np.stack(np.meshgrid(xn, yn, zn, indexing="ij"), -1).reshape(-1, 3)
            nx, ny, nz = self.shape
            full = np.flatnonzero(self.active_cells) if self.active_cells is not None else np.arange(self.n_cells)
            i, j, k = full % nx, (full // nx) % ny, full // (nx * ny)
            index = np.empty((self.n_cells, 8), dtype=np.int64)
            for c in range(8):
                index[:, c] = ((i + (c & 1)) * (ny + 1) + (j + ((c >> 1) & 1))) * (nz + 1) + (k + ((c >> 2) & 1))
            self._node_cache = (decimals, nodes, index)
            return nodes, index
        tree = self._tree_nodes()
        if tree is not None:
            self._node_cache = (decimals, *tree)
            return tree
        b = self._bounds
        corners = np.empty((self.n_cells, 8, 3))
        for k in range(8):
            corners[:, k, 0] = b[:, 1] if k & 1 else b[:, 0]
            corners[:, k, 1] = b[:, 3] if k & 2 else b[:, 2]
            corners[:, k, 2] = b[:, 5] if k & 4 else b[:, 4]
        exact = corners.reshape(-1, 3)
        # rounded coordinates are only the keys that merge shared corners; the nodes keep
        # their exact coordinates (rounding them would shift the kernel by up to 10**-decimals m)
        _, first, inverse = np.unique(np.round(exact, decimals), axis=0, return_index=True,
                                      return_inverse=True)
        nodes = exact[first]
        index = inverse.reshape(self.n_cells, 8).astype(np.int64)
        self._node_cache = (decimals, nodes, index)
        return nodes, index

    def _tree_nodes(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Corner nodes of the active cells of a discretize TreeMesh from its own node numbering, else None.

        discretize numbers each cell's corners in the order :meth:`corner_nodes` uses
        (x from bit 0, y from bit 1, z from bit 2) and shares hanging nodes' numbers
        between neighbours, so no coordinate sort is needed (``np.unique`` over 8 corners
        per cell costs ~10x more on a tutorial octree).
        """
        src = self.source
        if src is None or not (hasattr(src, "total_nodes") and hasattr(src, "cell_nodes")):
            return None
        mask = self.active_cells if self.active_cells is not None else np.ones(src.n_cells, bool)
        if mask.shape != (src.n_cells,) or int(mask.sum()) != self.n_cells:
            return None
        cell_nodes = np.asarray(src.cell_nodes)[mask]
        all_nodes = np.asarray(src.total_nodes, dtype=np.float64)
        used = np.zeros(all_nodes.shape[0], dtype=bool)
        used[cell_nodes.reshape(-1)] = True
        renumber = np.cumsum(used) - 1
        return all_nodes[used], renumber[cell_nodes].astype(np.int64)

    def tensor_nodes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Node coordinates along x, y, z (metres) when the cells come from a tensor mesh, else None."""
        src = self.source
        if self.shape is None or src is None or not hasattr(src, "nodes_x"):
            return None
        return np.asarray(src.nodes_x, float), np.asarray(src.nodes_y, float), np.asarray(src.nodes_z, float)

    @property
    def full_index(self) -> np.ndarray:
        """Index of each cell in the full source mesh (discretize order)."""
        if self.active_cells is None:
            return np.arange(self.n_cells)
        return np.flatnonzero(self.active_cells)

    # ------------------------------------------------------------------ checks
    def stations_inside(self, locations, tol: float = 1e-9) -> np.ndarray:
        """Indices of stations strictly inside any cell (faces, edges, corners allowed).

        Parameters
        ----------
        locations : array_like, shape (n, 3)
            Station coordinates, metres.
        tol : float
            A station closer than ``tol`` metres to a face counts as on it.

        Returns
        -------
        ndarray of int
            Indices of the offending stations (empty if none).
        """
        from scipy.spatial import cKDTree

        loc = np.asarray(locations, float)
        grid = self.tensor_nodes()
        if grid is not None:  # tensor mesh: locate by bisection, O(n log n)
            nx, ny, nz = self.shape
            ijk, inside = [], np.ones(len(loc), bool)
            for ax, nodes in enumerate(grid):
                i = np.searchsorted(nodes, loc[:, ax]) - 1
                ok = (i >= 0) & (i < len(nodes) - 1)
                ic = np.clip(i, 0, len(nodes) - 2)
                inside &= ok & (loc[:, ax] > nodes[ic] + tol) & (loc[:, ax] < nodes[ic + 1] - tol)
                ijk.append(ic)
            full = ijk[0] + nx * (ijk[1] + ny * ijk[2])
            act = np.ones(nx * ny * nz, bool) if self.active_cells is None else self.active_cells
            return np.flatnonzero(inside & act[full])
        cc = self.cell_centers
        half = self.cell_widths / 2
        tree = cKDTree(cc)
        r = float(np.linalg.norm(half, axis=1).max())
        cand = tree.query_ball_point(loc, r + tol)
        out = []
        for i, cells in enumerate(cand):
            if not cells:
                continue
            c = np.asarray(cells)
            d = np.abs(loc[i] - cc[c]) < (half[c] - tol)
            if np.any(np.all(d, axis=1)):
                out.append(i)
        return np.asarray(out, dtype=int)

    def stations_surrounded(self, loc: np.ndarray) -> np.ndarray:
        """Indices of stations (n, 3) m whose 8 diagonal neighbours (a µm-scale step) all lie inside active cells.

        A station strictly inside a cell, or on a face, edge or corner with active cells
        all round it: within the rock.
        """
        loc = np.asarray(loc, dtype=np.float64)
        if not len(loc) or not self.n_cells:
            return np.zeros(0, int)
        step = max(1e-6 * float(self.cell_widths.min()), 1e-6)
        keep = np.ones(len(loc), bool)
        for sx in (-1.0, 1.0):
            for sy in (-1.0, 1.0):
                for sz in (-1.0, 1.0):
                    hit = np.zeros(len(loc), bool)
                    hit[self.stations_inside(loc + step * np.array([sx, sy, sz]))] = True
                    keep &= hit
        return np.flatnonzero(keep)

    def check_stations(self, locations, *, outside: str = "error", inside: str = "error",
                       far_factor: float = FAR_STATION_FACTOR, allow: str | None = None) -> None:
        """Check where stations lie relative to the cells.

        Parameters
        ----------
        locations : array_like, shape (n, 3)
            Station coordinates, metres, z up.
        outside : {"error", "warn"}
            What a station below the whole mesh, or farther from it than ``far_factor``
            times its horizontal extent, gets: a ``ValueError`` (default) or a warning.
            Both are legal geometry but are usually a sign convention (depth instead of
            elevation) or coordinate system (degrees, another CRS, local vs UTM) mistake.
        inside : {"error", "warn"}
            What a station strictly inside an active cell gets: a ``ValueError`` (default:
            an inversion's stations lie above its cells) or a warning (borehole gravity:
            the prism formulas hold inside a cell too, as SimPEG allows).
        far_factor : float
            Distance, in horizontal extents of the mesh, beyond which a station is "far".
        allow : str or None
            How the caller lets such stations pass, appended to the error (``None``: the
            operator's, the inversion's and the command line's ways).

        Raises
        ------
        ValueError
            With ``inside="error"``, a station strictly inside a cell; with
            ``outside="error"``, one below the mesh or far from it.
        """
        check_choice(outside, ("error", "warn"), name="outside")
        check_choice(inside, ("error", "warn"), name="inside")
        loc = np.asarray(locations, float)
        bad = self.stations_inside(loc)
        # on a face, edge or corner shared by active cells all round (every diagonal step lands inside one):
        # within the ground, e.g. depths given as negative elevations on a layer boundary
        buried = np.setdiff1d(self.stations_surrounded(loc), bad)
        if buried.size and inside == "error":
            i = int(buried[0])
            raise ValueError(
                f"{buried.size} station(s) lie on faces between active cells, with active cells all round them "
                f"(first: station {i} at {loc[i].tolist()} m): within the ground. z must be an elevation, positive "
                "up (depths given?); stations lie above the active cells.")
        bad = np.union1d(bad, buried).astype(int)
        if bad.size and inside == "warn":
            warnings.warn(f"{bad.size} station(s) lie inside active cells (first: station {int(bad[0])} at "
                          f"{loc[bad[0]].tolist()} m): borehole data, or stations meant above the ground?",
                          UserWarning, stacklevel=3)
        elif bad.size:
            raise ValueError(
                f"{bad.size} station(s) lie inside mesh cells (first: station {int(bad[0])} at "
                f"{loc[bad[0]].tolist()} m). Stations must be outside or on the faces of active cells: "
                "raise them above the mesh top, or deactivate the cells above topography. Stations draped just "
                "above a topography lie inside the cells activated by their centres (discretize's "
                "active_from_xyz), which reach up to half a cell above the ground: "
                "gempy_gravinv.active_from_topography(mesh, topography, locations) leaves those cells out (the "
                "command line's --topography does). To compute such stations inside their cells, as SimPEG "
                "does: INRConfig(check_stations=False), GravityOperator(..., check_stations=False)."
            )
        problems = []
        e = self.extent
        below = np.flatnonzero(loc[:, 2] < e[4] - 1e-9)
        if below.size:
            i = int(below[0])
            problems.append(
                f"{below.size} station(s) lie below the whole mesh (first: station {i} at z = {loc[i, 2]:.6g} m, "
                f"mesh bottom at z = {e[4]:.6g} m): z must be an elevation, positive up (depths given?)")
        span = max(e[1] - e[0], e[3] - e[2])
        gap = np.maximum(np.maximum(e[0:6:2] - loc, loc - e[1:6:2]), 0.0)
        dist = np.linalg.norm(gap, axis=1)
        far = np.flatnonzero(dist > far_factor * span)
        if far.size:
            i = int(far[np.argmax(dist[far])])
            problems.append(
                f"{far.size} station(s) lie farther from the mesh than {far_factor:g} x its horizontal extent "
                f"({far_factor * span:.4g} m); station {i} at {loc[i].tolist()} m is {dist[i]:.4g} m away: "
                "stations and mesh in different coordinate systems (degrees, another CRS, local vs UTM)?")
        spread = float(np.ptp(loc[:, :2], axis=0).max()) if len(loc) else 0.0
        cell = float(self.cell_widths[:, :2].min()) if self.n_cells else 0.0
        if len(loc) >= 3 and spread < cell and fits_lonlat(loc[:, :2]):
            problems.append(
                f"all {len(loc)} stations lie within {spread:.3g} m of each other horizontally, less than one "
                f"cell ({cell:.4g} m), at coordinates that fit longitude/latitude ranges: degrees instead of "
                "metres? (project them to the mesh's coordinate system: the command line's --crs)")
        if not problems:
            return
        if outside == "error":
            if allow is None:
                allow = ("to allow it: GravityOperator(..., check_stations='warn'), INRConfig(check_stations=False) "
                         "or check_stations: false in an invert --config file; command line: forward "
                         "--allow-outside-stations")
            raise ValueError("; ".join(problems) + f" ({allow})")
        for msg in problems:
            warnings.warn(msg, UserWarning, stacklevel=3)

    # ------------------------------------------------------------------ models on the mesh
    def to_full(self, values, fill=np.nan) -> np.ndarray:
        """Scatter values on the (active) cells into the full source mesh (discretize order)."""
        v = np.asarray(values)
        if self.active_cells is None:
            return v
        full = np.full((self.active_cells.size,) + v.shape[1:], fill, dtype=float)
        full[self.active_cells] = v
        return full
