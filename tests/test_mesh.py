"""PrismMesh: validation, geometry from discretize meshes, corner nodes, station checks."""

import warnings

import numpy as np
import pytest

from gempy_gravinv import PrismMesh


def _tree_mesh():
    import discretize

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        tm = discretize.TreeMesh([[(10.0, 8)], [(10.0, 8)], [(10.0, 8)]], origin=(0.0, 0.0, -80.0),
                                 diagonal_balance=False)
    tm.refine_ball([40.0, 40.0, -40.0], 15.0, 3)
    return tm


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "bounds, match",
    [
        ([[0, 1, 0, 1, 0, 0]], "degenerate"),  # zero height
        ([[0, 1, 0, 1, 0, 1], [1, 0, 0, 1, 0, 1]], "first is cell 1"),  # west > east
        ([[0, 1, 2, 1, 0, 1]], "degenerate"),  # south > north
        ([[0, 1, 0, 1, np.nan, 1]], "NaN/inf"),
        ([[0, 1, 0, 1, 0, np.inf]], "NaN/inf"),
        (np.zeros((0, 6)), "empty"),
        (np.zeros((3, 5)), r"shape \(n_cells, 6\)"),
        (np.zeros(6), r"shape \(n_cells, 6\)"),
    ],
)
def test_prismmesh_rejects_bad_bounds(bounds, match):
    with pytest.raises(ValueError, match=match):
        PrismMesh(bounds)


def test_from_discretize_rejects_bad_input():
    import discretize

    m = discretize.TensorMesh([[(1.0, 3)], [(1.0, 3)], [(1.0, 2)]])
    with pytest.raises(ValueError, match="mask has shape"):
        PrismMesh.from_discretize(m, active_cells=np.ones(5, dtype=bool))
    with pytest.raises(ValueError, match="selects no cell"):
        PrismMesh.from_discretize(m, active_cells=np.zeros(m.n_cells, dtype=bool))
    with pytest.raises(ValueError, match="3-D"):
        PrismMesh.from_discretize(discretize.TensorMesh([[(1.0, 3)], [(1.0, 3)]]))
    with pytest.raises(ValueError, match="3-D"):
        PrismMesh.from_discretize(np.zeros((3, 3)))


# ------------------------------------------------------------------ geometry
def test_from_discretize_tensor_with_active_cells():
    import discretize

    hx = [5.0, 10.0, 10.0, 20.0]
    hy = [8.0, 8.0, 16.0]
    hz = [4.0, 6.0, 12.0]
    mesh = discretize.TensorMesh([hx, hy, hz], origin=(100.0, -50.0, -22.0))
    active = mesh.cell_centers[:, 2] < -10.0  # top layer inactive (air)
    pm = PrismMesh.from_discretize(mesh, active_cells=active)
    assert pm.n_cells == int(active.sum()) == 24
    assert pm.shape == (4, 3, 3)
    np.testing.assert_array_equal(pm.active_cells, active)
    assert pm.source is mesh
    np.testing.assert_allclose(pm.cell_centers, mesh.cell_centers[active], rtol=0, atol=1e-12)
    np.testing.assert_allclose(pm.volumes, mesh.cell_volumes[active], rtol=1e-14)
    np.testing.assert_allclose(pm.cell_widths, mesh.h_gridded[active], rtol=1e-14)
    # extent of the active part: the top 12 m layer is gone
    np.testing.assert_allclose(pm.extent, [100, 145, -50, -18, -22, -12])
    # integer indices select the same cells as the boolean mask
    pm2 = PrismMesh.from_discretize(mesh, active_cells=np.flatnonzero(active))
    np.testing.assert_array_equal(pm2.bounds, pm.bounds)
    # to_full scatters back in discretize order with NaN in inactive cells
    full = pm.to_full(np.arange(pm.n_cells, dtype=float))
    assert np.isnan(full[~active]).all()
    np.testing.assert_array_equal(full[active], np.arange(pm.n_cells))


def test_from_tensor_matches_discretize():
    import discretize

    pm = PrismMesh.from_tensor([2.0, 3.0], [1.0, 1.0, 1.0], [4.0], origin=(1.0, 2.0, -4.0))
    m = discretize.TensorMesh([[2.0, 3.0], [1.0, 1.0, 1.0], [4.0]], origin=(1.0, 2.0, -4.0))
    np.testing.assert_allclose(pm.cell_centers, m.cell_centers)
    assert pm.volumes.sum() == pytest.approx(5.0 * 3.0 * 4.0)
    # x fastest: cell 1 is east of cell 0, cell 2 north of cell 0
    c = pm.cell_centers
    assert c[1, 0] > c[0, 0] and c[1, 1] == c[0, 1]
    assert c[2, 1] > c[0, 1] and c[2, 0] == c[0, 0]


def test_from_discretize_tree_mesh():
    tm = _tree_mesh()
    pm = PrismMesh.from_discretize(tm)
    assert pm.shape is None and pm.n_cells == tm.n_cells
    assert len(np.unique(pm.volumes)) > 1  # really a refined (multi-level) mesh
    np.testing.assert_allclose(pm.cell_centers, tm.cell_centers, atol=1e-12)
    np.testing.assert_allclose(pm.volumes, tm.cell_volumes, rtol=1e-14)
    # the cells tile the domain: total volume = domain volume, no overlap
    assert pm.volumes.sum() == pytest.approx(80.0**3, rel=1e-14)
    np.testing.assert_allclose(pm.extent, [0, 80, 0, 80, -80, 0])
    # with an active subset
    active = tm.cell_centers[:, 2] < -20.0
    pa = PrismMesh.from_discretize(tm, active_cells=active)
    np.testing.assert_allclose(pa.volumes.sum(), tm.cell_volumes[active].sum())


@pytest.mark.parametrize("kind", ["tensor", "tree"])
def test_corner_nodes_reconstruct_bounds(kind):
    if kind == "tensor":
        pm = PrismMesh.from_tensor([5.0, 10.0, 10.0], [8.0, 8.0], [4.0, 6.0], origin=(0.5, -3.0, -10.0))
        n_expected = 4 * 3 * 3  # (nx+1)(ny+1)(nz+1) shared nodes
    else:
        pm = PrismMesh.from_discretize(_tree_mesh())
        n_expected = None
    nodes, index = pm.corner_nodes()
    assert index.shape == (pm.n_cells, 8)
    if n_expected is not None:
        assert nodes.shape[0] == n_expected
    corners = nodes[index]  # (n_cells, 8, 3)
    b = pm.bounds
    for k in range(8):
        np.testing.assert_allclose(corners[:, k, 0], b[:, 1] if k & 1 else b[:, 0], atol=1e-6)
        np.testing.assert_allclose(corners[:, k, 1], b[:, 3] if k & 2 else b[:, 2], atol=1e-6)
        np.testing.assert_allclose(corners[:, k, 2], b[:, 5] if k & 4 else b[:, 4], atol=1e-6)
    # nodes are unique
    assert np.unique(np.round(nodes, 6), axis=0).shape[0] == nodes.shape[0]


# ------------------------------------------------------------------ stations vs cells
def test_stations_inside_cells_rejected_faces_edges_corners_allowed():
    pm = PrismMesh.from_tensor([10.0, 10.0], [10.0, 10.0], [10.0], origin=(0.0, 0.0, -10.0))
    allowed = np.array([
        [5.0, 5.0, 0.0],      # on the top face
        [10.0, 10.0, 0.0],    # corner on the top
        [0.0, 0.0, -10.0],    # bottom corner
        [5.0, 5.0, 1.0],      # above
        [-1.0, 5.0, -5.0],    # beside
        [0.0, 5.0, -5.0],     # on the side face
    ])
    assert pm.stations_inside(allowed).size == 0
    pm.check_stations(allowed)
    inside = np.vstack([allowed, [[5.0, 5.0, -0.001], [19.0, 19.0, -9.0]]])
    np.testing.assert_array_equal(pm.stations_inside(inside), [6, 7])
    with pytest.raises(ValueError, match="2 station\\(s\\) lie inside mesh cells.*station 6"):
        pm.check_stations(inside)
    # on a face or edge shared by active cells: not strictly inside one, but within the ground all the same
    within = np.array([[10.0, 5.0, -5.0], [10.0, 10.0, -5.0]])  # a face of two cells, the edge of four
    assert pm.stations_inside(within).size == 0
    with pytest.raises(ValueError, match="2 station\\(s\\) lie on faces between active cells"):
        pm.check_stations(within)


def test_stations_in_inactive_cells_are_allowed():
    import discretize

    mesh = discretize.TensorMesh([[(10.0, 2)], [(10.0, 2)], [(10.0, 2)]], origin=(0.0, 0.0, -20.0))
    active = mesh.cell_centers[:, 2] < -10.0  # top layer is air
    pm = PrismMesh.from_discretize(mesh, active_cells=active)
    pm.check_stations([[5.0, 5.0, -5.0]])  # inside an air cell: fine
    with pytest.raises(ValueError, match="inside mesh cells"):
        pm.check_stations([[5.0, 5.0, -15.0]])
