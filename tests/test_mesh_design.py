"""A mesh designed from the stations: the rules, the ground, the command line."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import gempy_gravinv as gg
from gempy_gravinv import io as gio
from gempy_gravinv._mesh_design import padding_distance
from gempy_gravinv.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _grid(n=12, spacing=50.0, z=1.0, x0=1000.0, y0=-300.0):
    xx, yy = np.meshgrid(x0 + spacing * np.arange(n), y0 + spacing * np.arange(n))
    return np.c_[xx.ravel(), yy.ravel(), np.full(n * n, z)]


def _core_widths(dmesh, axis):
    return np.asarray(dmesh.h[axis])


def test_rules_on_a_station_grid():
    loc = _grid()
    mesh, d = gg.mesh_from_survey(loc)
    dm = mesh.source
    assert d.station_spacing == pytest.approx(50.0)
    assert d.cell_size == pytest.approx(50.0)  # the spacing
    assert d.extent == pytest.approx(550.0) and d.depth == pytest.approx(275.0)  # half the extent
    assert d.top == pytest.approx(1.0) and dm.nodes[:, 2].max() == pytest.approx(1.0)  # flat at the lowest station
    assert dm.n_cells == d.n_cells == d.n_active == int(np.prod(d.shape)) <= 100_000
    core = np.isclose(_core_widths(dm, 0), 50.0)
    xn = dm.nodes_x
    core_lo, core_hi = xn[np.argmax(core)], xn[len(core) - np.argmax(core[::-1])]
    assert core_lo <= loc[:, 0].min() - d.margin + 1e-6 and core_hi >= loc[:, 0].max() + d.margin - 1e-6
    # each station of the grid sits at the centre of a cell column, not on faces
    frac = (loc[:, 0] - core_lo) / 50.0 % 1.0
    assert np.allclose(frac, 0.5)
    # the padding reaches the depth beyond the core, half of it below
    pad = _core_widths(dm, 0)[:d.padding_cells]
    assert pad.sum() >= d.depth and pad[1:].sum() < d.depth  # outermost first
    assert padding_distance(50.0, d.padding_cells_below, 1.3) >= d.depth / 2
    assert 1.0 - dm.nodes[:, 2].min() >= d.depth + d.depth / 2 - 1e-6
    gg.GravityOperator(mesh, gg.Survey(loc))  # stations on the top faces are accepted


def test_lengths_scale_with_the_survey():
    a = gg.mesh_from_survey(_grid())[1]
    b = gg.mesh_from_survey(_grid(spacing=500.0, z=10.0, x0=10000.0, y0=-3000.0))[1]
    assert b.shape == a.shape
    for key in ("cell_size", "depth", "margin", "station_spacing", "extent", "top"):
        assert getattr(b, key) == pytest.approx(10 * getattr(a, key))


def test_cell_budget_grows_the_cells_or_refuses_a_given_size():
    loc = np.c_[np.random.default_rng(3).uniform(0, 20_000, (400, 2)), np.zeros(400)]
    mesh, d = gg.mesh_from_survey(loc, max_cells=20_000)
    assert mesh.n_cells <= 20_000 and "grown" in d.reasons["cell_size"]
    assert d.cell_size > d.station_spacing
    with pytest.raises(ValueError, match="more than max_cells"):
        gg.mesh_from_survey(loc, cell_size=100.0, max_cells=20_000)
    m2, d2 = gg.mesh_from_survey(loc, cell_size=2000.0, depth=4000.0)
    assert d2.cell_size == 2000.0 and d2.depth == 4000.0 and d2.reasons["cell_size"] == d2.reasons["depth"] == "given"
    assert m2.source.nodes[:, 2].min() <= -4000.0


def test_bad_surveys_are_refused():
    with pytest.raises(ValueError, match="one station position"):
        gg.mesh_from_survey(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 2.0]]))
    with pytest.raises(ValueError, match="finite|NaN"):
        gg.mesh_from_survey(np.array([[0.0, np.nan, 1.0], [10.0, 0.0, 1.0]]))
    with pytest.raises(ValueError, match="cell_size"):
        gg.mesh_from_survey(_grid(), cell_size=-5.0)
    with pytest.raises(ValueError, match="depth"):
        gg.mesh_from_survey(_grid(), depth=0.0)


def test_stations_at_several_heights_without_a_ground_are_warned():
    loc = _grid()
    loc[:, 2] += np.linspace(0.0, 200.0, len(loc))
    with pytest.warns(UserWarning, match="give the ground"):
        gg.mesh_from_survey(loc)


def _hill(x, y):
    return 60.0 * np.exp(-((x - 1275.0) ** 2 + (y + 25.0) ** 2) / 200.0 ** 2)


def test_a_ground_sets_the_top_and_the_active_cells():
    xx, yy = np.meshgrid(np.linspace(0, 2600, 80), np.linspace(-1300, 1300, 80))
    topo = np.c_[xx.ravel(), yy.ravel(), _hill(xx, yy).ravel()]
    loc = _grid()
    loc[:, 2] = _hill(loc[:, 0], loc[:, 1]) + 1.0  # draped 1 m above the ground
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the cells holding draped stations
        mesh, d = gg.mesh_from_survey(loc, topography=topo)
    dm = mesh.source
    assert d.top == pytest.approx(topo[:, 2].max()) and dm.nodes[:, 2].max() == pytest.approx(d.top)
    assert d.n_active == mesh.n_cells < d.n_cells
    cc = dm.cell_centers[mesh.active_cells]
    assert np.all(cc[:, 2] <= _hill(cc[:, 0], cc[:, 1]) + 1e-6)  # no active cell centre above the ground
    assert dm.nodes[:, 2].min() <= loc[:, 2].min() - d.depth  # the core reaches the depth below the lowest station
    op = gg.GravityOperator(mesh, gg.Survey(loc))  # every station above the rock
    assert op.n_cells == mesh.n_cells


def test_draped_stations_on_cell_faces_clear_the_cells_around_them():
    """Stations on the vertical faces between cells that reach above the ground: those cells are cleared."""
    from discretize import TensorMesh

    dm = TensorMesh([np.full(8, 10.0), np.full(8, 10.0), np.full(6, 10.0)], origin=[0.0, 0.0, -55.0])
    # the ground 1.0-2.6 m above the top layer's centres (z = 0; the cells reach 5 m up)
    topo = np.array([[x, y, 1.0 + 0.02 * x] for x in np.linspace(-10, 90, 21) for y in np.linspace(-10, 90, 21)])
    loc = np.array([[40.0, 40.0, 1.8 + 1.0], [25.0, 35.0, 1.5 + 1.0]])  # 1 m up: on an edge; inside a cell
    bare = gg.PrismMesh.from_discretize(dm, gg.active_from_topography(dm, topo))
    with pytest.raises(ValueError, match="faces between active cells|inside"):
        bare.check_stations(loc)
    with pytest.warns(UserWarning, match="hold 2 station"):
        active = gg.active_from_topography(dm, topo, loc)
    gg.PrismMesh.from_discretize(dm, active).check_stations(loc)  # accepted
    cleared = np.flatnonzero(bare.active_cells & ~active)
    assert len(cleared) == 5  # 4 cells round the edge station, 1 holding the other
    assert np.all(dm.cell_centers[cleared, 2] + 5.0 > loc[:, 2].min())  # each reaches above the stations


def test_cli_mesh_and_invert_without_a_mesh(tmp_path, capsys):
    from gempy_gravinv.cases.synthetic import single_block

    case = single_block(noise_seed=1, shape=(6, 6, 3))
    csv = tmp_path / "stations.csv"
    gio.write_csv(csv, case.survey)
    msh = tmp_path / "designed.msh"
    assert main(["mesh", str(csv), "-o", str(msh), "--max-cells", "3000"]) == 0
    design = json.loads(msh.with_suffix(".json").read_text())
    dm = gio.read_ubc_mesh(msh)
    assert list(dm.shape_cells) == design["shape"] and dm.n_cells <= 3000
    assert main(["mesh", str(csv), "-o", str(msh)]) == 2  # exists: refused
    bare = tmp_path / "bare.msh"
    assert main(["mesh", str(csv), "-o", str(bare), "--max-cells", "3000", "--no-padding"]) == 0
    assert json.loads(bare.with_suffix(".json").read_text())["padding_cells"] == 0 < design["padding_cells"]
    assert "--overwrite" in capsys.readouterr().err
    out = tmp_path / "inv"
    rc = main(["invert", str(csv), "-o", str(out), "--max-cells", "3000", "--max-steps", "30", "--no-figures",
               "--no-progress", "--preset", "ours"])
    assert rc == 0
    assert (out / "mesh.msh").read_text() == msh.read_text()  # the same design
    model = gio.read_ubc_model(out / "inr_model.den", gio.read_ubc_mesh(out / "mesh.msh"))
    assert model.shape == (dm.n_cells,) and np.isfinite(model).all()
    assert json.loads((out / "metrics.json").read_text())["n_data"] == case.survey.n_data
    capsys.readouterr()
    # resumed with other mesh options: refused before the folder's mesh is replaced
    before = (out / "mesh.msh").read_text()
    assert main(["invert", str(csv), "-o", str(out), "--cell-size", str(2 * design["cell_size"]), "--max-steps", "30",
                 "--no-figures", "--no-progress", "--preset", "ours", "--resume"]) == 2
    assert "holds another mesh" in capsys.readouterr().err and (out / "mesh.msh").read_text() == before
    for extra, msg in ((["--mesh", str(msh), "--cell-size", "20"], "not with --mesh"),
                       (["--mesh", str(msh), "--no-padding"], "--no-padding design a mesh"),
                       (["--active-model", str(out / "inr_model.den")], "give that mesh with --mesh")):
        assert main(["invert", str(csv), "-o", str(tmp_path / "x"), *extra]) == 2
        assert msg in capsys.readouterr().err


def test_without_padding_the_mesh_ends_at_the_core():
    mesh, d = gg.mesh_from_survey(_grid(), padding=False)
    assert d.padding_cells == d.padding_cells_below == 0
    for axis in range(3):
        assert np.allclose(mesh.source.h[axis], d.cell_size)


def test_cli_mesh_with_a_ground_writes_its_active_cells(tmp_path, capsys):
    xx, yy = np.meshgrid(np.linspace(0, 2600, 40), np.linspace(-1300, 1300, 40))
    topo = tmp_path / "dem.csv"
    np.savetxt(topo, np.c_[xx.ravel(), yy.ravel(), _hill(xx, yy).ravel()], delimiter=",", header="x,y,z",
               comments="")
    loc = _grid()
    loc[:, 2] = _hill(loc[:, 0], loc[:, 1]) + 1.0
    stations = tmp_path / "st.csv"
    gio.write_csv(stations, loc)
    msh, act = tmp_path / "m.msh", tmp_path / "active.mod"
    assert main(["mesh", str(stations), "-o", str(msh), "--topography", str(topo), "--active-out", str(act)]) == 0
    dm = gio.read_ubc_mesh(msh)
    active = gio.read_ubc_model(act, dm) != 0
    design = json.loads(msh.with_suffix(".json").read_text())
    assert 0 < active.sum() == design["n_active"] < dm.n_cells
    assert dm.nodes[:, 2].max() == pytest.approx(_hill(xx, yy).max())
    gg.PrismMesh.from_discretize(dm, active).check_stations(loc)  # every station above the rock
    capsys.readouterr()
    assert main(["mesh", str(stations), "-o", str(tmp_path / "n.msh"), "--active-out", str(act)]) == 2
    assert "--topography" in capsys.readouterr().err


def test_a_ground_elevation_below_airborne_stations():
    loc = _grid(z=300.0)
    mesh, d = gg.mesh_from_survey(loc, ground_elevation=20.0)
    assert d.top == 20.0 and mesh.source.nodes[:, 2].max() == pytest.approx(20.0)
    assert mesh.source.nodes[:, 2].min() <= 20.0 - d.depth and "given ground" in d.reasons["top"]
    assert gg.mesh_from_survey(loc)[1].top == 300.0  # without it: the stations stand on the ground
    with pytest.raises(ValueError, match="above the lowest station"):
        gg.mesh_from_survey(loc, ground_elevation=400.0)
    with pytest.raises(ValueError, match="not both"):
        gg.mesh_from_survey(loc, ground_elevation=0.0, topography=np.array([[0, 0, 0.0], [1, 0, 0], [0, 1, 0]]))


def test_a_mountain_far_beyond_the_mesh_does_not_lift_its_top():
    xx, yy = np.meshgrid(np.linspace(0, 2600, 40), np.linspace(-1300, 1300, 40))
    topo = np.c_[xx.ravel(), yy.ravel(), _hill(xx, yy).ravel()]
    far = np.array([[60_000.0, 0.0, 2500.0], [60_000.0, 500.0, 2400.0]])  # 60 km east, beyond depth and margin
    loc = _grid()
    loc[:, 2] = _hill(loc[:, 0], loc[:, 1]) + 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        a = gg.mesh_from_survey(loc, topography=topo)[1]
        b = gg.mesh_from_survey(loc, topography=np.r_[topo, far])[1]
    assert b.top == a.top == pytest.approx(topo[:, 2].max()) and b.shape == a.shape
