"""gempy_gravinv.io: CSV, UBC-GIF GRAV3D obs, UBC meshes/models, GeoJSON, config files; peers' readers."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from gempy_gravinv import Survey
from gempy_gravinv import io as gio

RNG = np.random.default_rng(7)
LOC = np.column_stack([RNG.uniform(-500, 500, 6), RNG.uniform(4e6, 4.001e6, 6), RNG.uniform(0, 50, 6)])
GZ = RNG.normal(0, 3, 6)
STD = RNG.uniform(0.05, 0.2, 6)


# ------------------------------------------------------------------ CSV
def test_csv_round_trip_is_exact(tmp_path):
    p = gio.write_csv(tmp_path / "s.csv", Survey(LOC, gz=GZ, std=STD))
    text = p.read_text()
    assert text.startswith("#") and "positive downward" in text.splitlines()[0] and "mGal" in text
    assert text.splitlines()[1] == "x,y,z,gz,std"
    s = gio.read_csv(p)
    np.testing.assert_array_equal(s.locations, LOC)
    np.testing.assert_array_equal(s.gz, GZ)  # no sign change, full precision
    np.testing.assert_array_equal(s.std, STD)
    # locations only, and overriding the data of a survey
    s2 = gio.read_csv(gio.write_csv(tmp_path / "l.csv", LOC))
    assert not s2.has_data
    s3 = gio.read_csv(gio.write_csv(tmp_path / "p.csv", Survey(LOC, gz=GZ, std=STD), gz=2 * GZ))
    np.testing.assert_array_equal(s3.gz, 2 * GZ)
    assert s3.std is None


def test_csv_flexible_layouts(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("# comment\n\n1 2 3 0.5   # trailing comment\n4 5 6 -0.25\n")
    s = gio.read_csv(f)
    np.testing.assert_array_equal(s.locations, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(s.gz, [0.5, -0.25])
    f.write_text("1,2,3,0.5,0.1\n4,5,6,0.2,0.3\n")
    np.testing.assert_array_equal(gio.read_csv(f).std, [0.1, 0.3])
    f.write_text("1,2,3\n")
    assert gio.read_csv(f).n_data == 1 and not gio.read_csv(f).has_data
    # header by name, any order, units in brackets, extra columns ignored
    f.write_text("id, gz (mGal), Elevation, Easting, Northing, sigma[mGal]\n7, 1.5, 10, 100, 200, 0.2\n")
    s = gio.read_csv(f)
    np.testing.assert_array_equal(s.locations, [[100, 200, 10]])
    assert s.gz[0] == 1.5 and s.std[0] == 0.2


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty"),
        ("# only a comment\n\n", "empty"),
        ("x,y,z,gz\n", "header but no data"),
        ("x,y,gz\n1,2,3\n", r"missing column\(s\) \['z'\]"),
        ("x,y,z,gz\n1,2,3,nan\n", "line 2: column 'gz' is NaN"),
        ("x,y,z,gz\n1,2,3,4\n1,2,3\n", "line 3: 3 values, expected 4"),
        ("x,y,z,gz\n1,2,3,abc\n", "'abc' is not a number"),
        ("x,y,z,gz\n1,2,,4\n", "line 2: empty value"),
        ("1 2\n", "2 columns without a header"),
        ("1 2 3 4 5 6\n", "6 columns without a header"),
        ("x,y,z,std\n1,2,3,4\n", "std column without a data column"),
        ("x,y,z,gz,std\n1,2,3,4,0\n", "strictly positive"),
        ("x,x,y,z\n1,2,3,4\n", "several columns match 'x'"),
    ],
)
def test_csv_errors(tmp_path, text, match):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(ValueError, match=match):
        gio.read_csv(f)


def test_csv_missing_file_and_binary(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        gio.read_csv(tmp_path / "nope.csv")
    b = tmp_path / "bin.csv"
    b.write_bytes(b"\xff\xfe\x00\x01\x80\x81")
    with pytest.raises(ValueError, match="not a text file"):
        gio.read_csv(b)
    with pytest.raises(ValueError, match="directory"):
        gio.read_csv(tmp_path)


# ------------------------------------------------------------------ UBC GRAV3D obs
def test_ubc_obs_round_trip_and_simpeg_reader(tmp_path):
    from simpeg.utils.io_utils import read_grav3d_ubc

    p = gio.write_ubc_obs(tmp_path / "obs.grv", Survey(LOC, gz=GZ, std=STD))
    assert p.read_text().splitlines()[0] == "6"
    s = gio.read_ubc_obs(p)
    np.testing.assert_array_equal(s.locations, LOC)
    np.testing.assert_array_equal(s.gz, GZ)
    np.testing.assert_array_equal(s.std, STD)
    # SimPEG reads our file and flips GRAV3D's (= our) sign to its upward convention
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = read_grav3d_ubc(str(p))
    np.testing.assert_allclose(d.survey.receiver_locations, LOC, rtol=1e-15)
    np.testing.assert_allclose(d.dobs, -GZ, rtol=1e-15)
    np.testing.assert_allclose(d.standard_deviation, STD, rtol=1e-15)
    # locations-only (survey) and predicted-data (no Err) files
    s_loc = gio.read_ubc_obs(gio.write_ubc_obs(tmp_path / "loc.obs", LOC))
    assert not s_loc.has_data and s_loc.n_data == 6
    s_pre = gio.read_ubc_obs(gio.write_ubc_obs(tmp_path / "pre.obs", LOC, gz=GZ))
    np.testing.assert_array_equal(s_pre.gz, GZ)
    assert s_pre.std is None


def test_ubc_obs_sign_of_a_dense_block_written_by_simpeg(tmp_path):
    """SimPEG forward of excess mass is negative; in its GRAV3D file it is positive, as ours."""
    import discretize
    from simpeg import data as sdata
    from simpeg import maps
    from simpeg.potential_fields import gravity
    from simpeg.utils.io_utils import write_grav3d_ubc

    mesh = discretize.TensorMesh([[(25.0, 4)], [(25.0, 4)], [(25.0, 2)]], origin=(-50.0, -50.0, -50.0))
    loc = np.array([[0.0, 0.0, 1.0], [20.0, -10.0, 5.0]])
    sv = Survey(loc).to_simpeg()
    sim = gravity.simulation.Simulation3DIntegral(
        mesh=mesh, survey=sv, rhoMap=maps.IdentityMap(nP=mesh.n_cells),
        active_cells=np.ones(mesh.n_cells, bool), store_sensitivities="forward_only", engine="choclo")
    dpred = sim.dpred(np.full(mesh.n_cells, 0.3))
    assert np.all(dpred < 0)
    f = tmp_path / "simpeg.obs"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_grav3d_ubc(str(f), sdata.Data(sv, dobs=dpred, standard_deviation=np.full(2, 0.01)))
    s = gio.read_ubc_obs(f)
    np.testing.assert_allclose(s.gz, -dpred, rtol=1e-6)  # SimPEG writes %e: 7 digits
    assert np.all(s.gz > 0)
    np.testing.assert_allclose(s.locations, loc)
    np.testing.assert_allclose(s.std, 0.01)


def test_ubc_obs_comments_and_blank_lines(tmp_path):
    f = tmp_path / "c.obs"
    f.write_text("! GRAV3D observations\n2   ! ndat\n\n 1 2 3 0.5 0.1\n! mid comment\n4 5 6 -0.5 0.2\n")
    s = gio.read_ubc_obs(f)
    np.testing.assert_array_equal(s.locations, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(s.gz, [0.5, -0.5])
    np.testing.assert_array_equal(s.std, [0.1, 0.2])


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty"),
        ("x y z\n1 2 3\n", "expected the number of data"),
        ("3\n1 2 3 4\n1 2 3 4\n", "header says 3 data but the file holds 2"),
        ("0\n", "must be positive"),
        ("2\n1 2 3 4\n1 2 3\n", "3 columns, previous rows have 4"),
        ("1\n1 2\n", "2 columns"),
        ("1\n1 2 3 4 5 6\n", "6 columns"),
        ("1\n1 2 3 nan 1\n", "column 'Grav' is NaN"),
        ("1\n1 2 3 4 0\n", "strictly positive"),
        ("1\n1 2 3 a\n", "'a' is not a number"),
        ("2.5\n1 2 3\n", "expected the number of data"),
    ],
)
def test_ubc_obs_errors(tmp_path, text, match):
    f = tmp_path / "bad.obs"
    f.write_text(text)
    with pytest.raises(ValueError, match=match):
        gio.read_ubc_obs(f)


def test_read_stations_sniffs_format(tmp_path):
    s = Survey(LOC, gz=GZ)
    for name, writer in [("a.obs", gio.write_ubc_obs), ("b.txt", gio.write_ubc_obs),
                         ("c.csv", gio.write_csv), ("d.dat", gio.write_csv)]:
        r = gio.read_stations(writer(tmp_path / name, s))
        np.testing.assert_array_equal(r.locations, LOC)
        np.testing.assert_array_equal(r.gz, GZ)
    ws = tmp_path / "ws.txt"
    ws.write_text("1 2 3 4\n5 6 7 8\n")  # whitespace CSV without header, not GRAV3D
    assert gio.read_stations(ws).n_data == 2
    with pytest.raises(ValueError, match="number of data"):
        gio.read_stations(ws, format="ubc")
    with pytest.raises(ValueError, match="format must be one of 'auto', 'csv', 'ubc'; got 'xls'"):
        gio.read_stations(ws, format="xls")


# ------------------------------------------------------------------ UBC mesh / model
def _tensor_mesh():
    import discretize

    return discretize.TensorMesh([[5.0, 10.0, 10.0], [8.0, 8.0], [2.0, 4.0, 6.0, 8.0]],
                                 origin=(1000.0, 2000.0, -20.0))


def test_ubc_tensor_mesh_read_matches_discretize_and_compressed_notation(tmp_path):
    m = _tensor_mesh()
    m.write_UBC(str(tmp_path / "m.msh"))
    r = gio.read_ubc_mesh(tmp_path / "m.msh")
    assert type(r).__name__ == "TensorMesh"
    for a, b in zip(r.h, m.h):
        np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(r.origin, m.origin)
    # hand-written: comments, N*h notation, origin at the TOP south-west corner (UBC)
    f = tmp_path / "hand.msh"
    f.write_text("! a UBC mesh\n3 2 2\n0 0 100 ! top SW corner\n3*10\n2*5\n 4 6\n")
    h = gio.read_ubc_mesh(f)
    np.testing.assert_allclose(h.h[0], [10, 10, 10])
    np.testing.assert_allclose(h.h[2], [6, 4])  # UBC lists z from the top down
    np.testing.assert_allclose(h.origin, [0, 0, 90])


def test_ubc_octree_mesh_and_model(tmp_path):
    import discretize

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        tm = discretize.TreeMesh([[(10.0, 8)], [(10.0, 8)], [(10.0, 8)]], origin=(0.0, 0.0, -80.0),
                                 diagonal_balance=False)
    tm.refine_ball([40.0, 40.0, -40.0], 15.0, 3)
    tm.write_UBC(str(tmp_path / "oct.msh"))
    r = gio.read_ubc_mesh(tmp_path / "oct.msh")
    assert isinstance(r, discretize.TreeMesh) and r.n_cells == tm.n_cells
    np.testing.assert_allclose(r.cell_centers, tm.cell_centers)
    vals = tm.cell_centers[:, 2] / 100.0
    vals[::7] = np.nan
    gio.write_ubc_model(tmp_path / "oct.den", tm, vals)
    back = gio.read_ubc_model(tmp_path / "oct.den", r)
    np.testing.assert_allclose(back, vals, equal_nan=True)
    ref = tm.read_model_UBC(str(tmp_path / "oct.den"))  # discretize's own reader
    np.testing.assert_array_equal(np.where(np.isnan(vals), -99999.0, vals), ref)


def test_ubc_model_order_is_z_fastest_from_top_then_x_then_y(tmp_path):
    """Independent of discretize: the GIF order of a model file, checked on cell centres."""
    m = _tensor_mesh()
    nx, ny, nz = m.shape_cells
    cc = m.cell_centers
    f = gio.write_ubc_model(tmp_path / "cz.mod", m, cc[:, 2])
    vals = np.loadtxt(f)
    assert vals.shape == (m.n_cells,)
    col = vals.reshape(ny, nx, nz)  # y slowest, then x, z fastest
    zc = np.unique(cc[:, 2])[::-1]  # top down
    np.testing.assert_allclose(col, np.broadcast_to(zc, (ny, nx, nz)))
    fx = gio.write_ubc_model(tmp_path / "cx.mod", m, cc[:, 0])
    colx = np.loadtxt(fx).reshape(ny, nx, nz)
    np.testing.assert_allclose(colx[0, :, 0], np.unique(cc[:, 0]))
    np.testing.assert_allclose(colx[:, 0, 0], np.full(ny, cc[0, 0]))
    # and reading a hand-made file in that order gives cell-centre values back
    hand = tmp_path / "hand.mod"
    hand.write_text("! comment\n\n" + "\n".join(repr(float(v)) for v in vals) + "\n")
    np.testing.assert_allclose(gio.read_ubc_model(hand, m), cc[:, 2])
    hand.write_text("\n".join(repr(float(v)) for v in vals) + "\n\n")  # trailing blank line
    np.testing.assert_allclose(gio.read_ubc_model(hand, m), cc[:, 2])


def test_ubc_model_inactive_values_and_discretize_cross_read(tmp_path):
    m = _tensor_mesh()
    v = np.linspace(-0.3, 0.4, m.n_cells)
    v[3] = np.nan
    p = gio.write_ubc_model(tmp_path / "m.den", m, v)
    np.testing.assert_array_equal(m.read_model_UBC(str(p)), np.where(np.isnan(v), -99999.0, v))
    np.testing.assert_allclose(gio.read_ubc_model(p, m), v, equal_nan=True)
    # a model written by discretize with GRAV3D's -100 air cells
    w = v.copy()
    w[[0, 5]] = -100.0
    w[3] = 0.1
    m.write_model_UBC(str(tmp_path / "d.den"), w)
    r = gio.read_ubc_model(tmp_path / "d.den", m)
    assert np.isnan(r[[0, 5]]).all() and np.isfinite(np.delete(r, [0, 5])).all()
    np.testing.assert_array_equal(gio.read_ubc_model(tmp_path / "d.den", m, no_data=()), w)


def test_ubc_mesh_model_errors(tmp_path):
    m = _tensor_mesh()
    f = tmp_path / "short.den"
    f.write_text("1\n2\n3\n")
    with pytest.raises(ValueError, match=f"holds 3 values but the mesh has {m.n_cells} cells"):
        gio.read_ubc_model(f, m)
    f.write_text("")
    with pytest.raises(ValueError, match="empty"):
        gio.read_ubc_model(f, m)
    f.write_text("1\nfoo\n")
    with pytest.raises(ValueError, match="'foo' is not a number"):
        gio.read_ubc_model(f, m)
    with pytest.raises(TypeError, match="TensorMesh or TreeMesh"):
        gio.read_ubc_model(f, "mesh")
    with pytest.raises(ValueError, match="entries but the mesh has"):
        gio.write_ubc_model(tmp_path / "w.den", m, np.zeros(3))
    with pytest.raises(ValueError, match="inf"):
        gio.write_ubc_model(tmp_path / "w.den", m, np.full(m.n_cells, np.inf))
    g = tmp_path / "bad.msh"
    g.write_text("")
    with pytest.raises(ValueError, match="empty"):
        gio.read_ubc_mesh(g)
    g.write_text("x,y,z,gz\n1,2,3,4\n")
    with pytest.raises(ValueError, match="not a UBC mesh"):
        gio.read_ubc_mesh(g)
    g.write_text("8 7 5\n-100 -87.5\n8*25\n7*25\n5*25\n")  # an origin without its z
    with pytest.raises(ValueError, match="line 2: the origin needs 3 values .* got 2"):
        gio.read_ubc_mesh(g)
    g.write_text("8 7 5\n-100 -87.5 0\n8*25\n7*25\n5*25\n1 2 3\n")  # a line too many: not silently dropped
    with pytest.raises(ValueError, match="line 6: unexpected data after the cell widths in z"):
        gio.read_ubc_mesh(g)
    g.write_text("! a comment\n8 7 5\n-100 -87.5 0\n8*25\n7*25\n5*25\n\n")
    assert gio.read_ubc_mesh(g).shape_cells == (8, 7, 5)
    g.write_text("3 2 2\n0 0 0\n10 10 10\n5 5\n")
    with pytest.raises(ValueError, match="3-D UBC mesh"):
        gio.read_ubc_mesh(g)
    g.write_text("3 2 2\n0 0 0\n10 10\n5 5\n4 6\n")
    with pytest.raises(ValueError, match="cannot read as a UBC mesh"):
        gio.read_ubc_mesh(g)


def test_model_to_contrast_kgm3():
    np.testing.assert_allclose(gio.model_to_contrast_kgm3([2.67, 3.0, np.nan], 2.67),
                               [0.0, 330.0, np.nan], equal_nan=True, atol=1e-12)
    np.testing.assert_allclose(gio.model_to_contrast_kgm3([0.25]), [250.0])
    with pytest.raises(ValueError, match="finite"):
        gio.model_to_contrast_kgm3([1.0], np.nan)


# ------------------------------------------------------------------ GeoJSON
def _fc(features, crs="urn:ogc:def:crs:EPSG::23030", name="test"):
    doc = {"type": "FeatureCollection", "name": name, "features": features}
    if crs is not None:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    return doc


def _pt(coords, **props):
    return {"type": "Feature", "properties": props, "geometry": {"type": "Point", "coordinates": coords}}


def test_geojson_points(tmp_path):
    f = tmp_path / "s.geojson"
    feats = [_pt([206893.36, 4186714.93], BOU=12.85, SIG=0.1, H=250.0),
             _pt([206588.18, 4173949.89], BOU=19.4, SIG=0.2, H=300.0)]
    f.write_text(json.dumps(_fc(feats)))
    s = gio.read_geojson(f, value_property="BOU", std=0.5, z=10.0)
    np.testing.assert_allclose(s.locations, [[206893.36, 4186714.93, 10.0], [206588.18, 4173949.89, 10.0]])
    np.testing.assert_array_equal(s.gz, [12.85, 19.4])  # Bouguer: positive = excess mass = ours
    np.testing.assert_array_equal(s.std, [0.5, 0.5])
    assert s.name == "test"
    s2 = gio.read_geojson(f, value_property="BOU", std="SIG", z="H")
    np.testing.assert_array_equal(s2.locations[:, 2], [250.0, 300.0])
    np.testing.assert_array_equal(s2.std, [0.1, 0.2])
    with pytest.warns(UserWarning, match="points without elevation .* placed at z = 0 m"):
        s3 = gio.read_geojson(f)
    assert not s3.has_data and s3.locations[0, 2] == 0.0
    # an elevation property every point has is read without being named; one some lack is not
    f.write_text(json.dumps(_fc([_pt([206893.36, 4186714.93], BOU=1.0, Elevation=250.0),
                                 _pt([206588.18, 4173949.89], BOU=2.0, Elevation=300.0)])))
    np.testing.assert_array_equal(gio.read_stations(f, value_property="BOU").locations[:, 2], [250.0, 300.0])
    f.write_text(json.dumps(_fc([_pt([206893.36, 4186714.93], BOU=1.0, height=250.0),
                                 _pt([206588.18, 4173949.89], BOU=2.0)])))
    with pytest.warns(UserWarning, match="placed at z = 0 m"):
        assert gio.read_geojson(f, "BOU").locations[1, 2] == 0.0
    # [x, y, z] coordinates carry their own elevation
    f.write_text(json.dumps(_fc([_pt([500000.0, 4e6, 123.0], g=1.0)])))
    assert gio.read_geojson(f, "g").locations[0, 2] == 123.0


@pytest.mark.parametrize(
    "doc, kwargs, match",
    [
        (_fc([_pt([-6.5, 37.6], g=1.0)], crs="urn:ogc:def:crs:OGC:1.3:CRS84"), {}, "geographic"),
        (_fc([_pt([-6.5, 37.6], g=1.0)], crs="EPSG:4326"), {}, "geographic"),
        (_fc([_pt([-6.5, 37.6], g=1.0)], crs="urn:ogc:def:crs:EPSG::4258"), {}, "geographic"),
        (_fc([_pt([-6.5, 37.6], g=1.0)], crs="http://www.opengis.net/def/crs/EPSG/0/4326"), {}, "geographic"),
        (_fc([_pt([-6.5, 37.6], g=1.0)], crs=None), {}, "longitude/latitude"),
        (_fc([_pt([5e5, 4e6], g=1.0)]), {"value_property": "BOU"}, "has no property 'BOU'"),
        (_fc([_pt([5e5, 4e6], g="n/a")]), {"value_property": "g"}, "'n/a' is not a number"),
        (_fc([_pt([5e5, 4e6], g=None)]), {"value_property": "g"}, "is not a number"),
        (_fc([_pt([5e5, 4e6], g=float("nan"))]), {"value_property": "g"}, "NaN"),
        (_fc([_pt([5e5, 4e6], g=1.0), _pt([5e5, 4e6, 3.0], g=1.0)]), {"value_property": "g"}, "mix"),
        (_fc([{"type": "Feature", "properties": {}, "geometry": {"type": "LineString",
                                                                  "coordinates": [[0, 0], [1, 1]]}}]),
         {}, "only Points"),
        (_fc([]), {}, "no features"),
        ({"type": "Feature", "geometry": None}, {}, "FeatureCollection is required"),
        (_fc([_pt([5e5, 4e6], g=1.0)]), {"std": 0.1}, "std was given without value_property"),
        (_fc([_pt([5e5, 4e6], g=1.0)]), {"value_property": "g", "std": -1.0}, "strictly positive"),
    ],
)
def test_geojson_errors(tmp_path, doc, kwargs, match):
    f = tmp_path / "bad.geojson"
    f.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=match):
        gio.read_geojson(f, **kwargs)


def test_geojson_not_json_and_no_crs_warning(tmp_path):
    f = tmp_path / "x.geojson"
    f.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        gio.read_geojson(f)
    f.write_text(json.dumps(_fc([_pt([5e5, 4e6], g=1.0)], crs=None)))
    with pytest.warns(UserWarning, match="no 'crs'"):
        s = gio.read_geojson(f, "g")
    assert s.gz[0] == 1.0


_THARSIS = (Path(__file__).resolve().parents[1] / "gempy_gravinv" / "data" / "tharsis"
            / "tharsis_bouguer_stations.geojson")


def test_tharsis_geojson():
    """The Bouguer stations shipped with the package (gempy_gravinv/data/tharsis)."""
    s = gio.read_geojson(_THARSIS, value_property="VALU_BOU267", std=0.5, z=0.0)
    assert s.n_data == 208
    assert s.gz.min() == pytest.approx(9.5, abs=0.1) and s.gz.max() == pytest.approx(47.3, abs=0.1)
    # mean/std of these 208 values (the README says 25.6 / 8.4, which they do not match)
    assert s.gz.mean() == pytest.approx(25.49, abs=0.01) and s.gz.std() == pytest.approx(8.13, abs=0.01)
    # UTM 30N (ED50) metres around Tharsis, a ~21 x 16 km area
    e = s.locations
    assert 1.5e5 < e[:, 0].min() and e[:, 0].max() < 2.5e5 and 4.1e6 < e[:, 1].min() < 4.2e6
    assert 15e3 < np.ptp(e[:, 0]) < 25e3 and 10e3 < np.ptp(e[:, 1]) < 20e3
    assert np.all(e[:, 2] == 0.0)


# ------------------------------------------------------------------ config files
def test_read_config_json_toml_and_section(tmp_path):
    j = tmp_path / "c.json"
    j.write_text('{"inr": {"epochs": 5}, "seed": 1}')
    assert gio.read_config(j) == {"inr": {"epochs": 5}, "seed": 1}
    assert gio.read_config(j, section="inr") == {"epochs": 5}
    assert gio.read_config(j, section="absent") == {"inr": {"epochs": 5}, "seed": 1}
    t = tmp_path / "c.TOML"
    t.write_text('seed = 2\n[inr]\nepochs = 7\n')
    assert gio.read_config(t, section="inr") == {"epochs": 7}


def test_read_config_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="config file not found"):
        gio.read_config(tmp_path / "nope.toml")
    y = tmp_path / "c.yaml"
    y.write_text("a: 1\n")
    with pytest.raises(ValueError, match=r"suffix of config file c\.yaml must be one of '\.json', '\.toml'"):
        gio.read_config(y)
    j = tmp_path / "bad.json"
    j.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        gio.read_config(j)
    t = tmp_path / "bad.toml"
    t.write_text("a = \n")
    with pytest.raises(ValueError, match="not valid TOML"):
        gio.read_config(t)
    j.write_text("[1, 2]")
    with pytest.raises(ValueError, match="table of settings"):
        gio.read_config(j)


def test_a_crs_in_feet_is_refused_or_its_elevations_named(tmp_path):
    f = tmp_path / "ft.csv"
    f.write_text("# crs: EPSG:2227\nx,y,z,gz\n6000000,2100000,328.08,1.0\n6001000,2101000,330.0,2.0\n")
    with pytest.raises(ValueError, match="EPSG:2227 .* in US survey foot, not metres"):
        gio.read_stations(f)
    with pytest.warns(UserWarning, match="elevations .z. are not: if they are in US survey foot too"):
        s = gio.read_stations(f, to_crs="EPSG:26910")
    import pyproj

    x, y = pyproj.Transformer.from_crs("EPSG:2227", "EPSG:26910", always_xy=True).transform(6000000.0, 2100000.0)
    np.testing.assert_allclose(s.locations[0], [x, y, 328.08])


def test_degrees_written_latitude_first_are_refused_not_reprojected_far_away(tmp_path):
    f = tmp_path / "ll.geojson"
    pts = [(-6.9, 37.5), (-6.85, 37.55), (-6.8, 37.6)]  # lon, lat in southern Spain
    f.write_text(json.dumps(_fc([_pt([lat, lon], g=1.0) for lon, lat in pts], crs="urn:ogc:def:crs:EPSG::4326")))
    with pytest.raises(ValueError, match="as latitude, longitude 100% do: the file writes latitude first"):
        gio.read_geojson(f, "g", z=100.0, to_crs="EPSG:25830")
    f.write_text(json.dumps(_fc([_pt([lon, lat], g=1.0) for lon, lat in pts], crs="urn:ogc:def:crs:EPSG::4326")))
    s = gio.read_geojson(f, "g", z=100.0, to_crs="EPSG:25830")
    assert 1e5 < s.locations[0, 0] < 3e5 and 4.1e6 < s.locations[0, 1] < 4.2e6  # UTM 30N, west of its zone


def test_grav3d_variants_from_gif_programs(tmp_path):
    rows = "500000 4200000 10 0.5D0 0.01\n500100 4200000 10 -999 0.01\n500000 4200100 10 0.7 1.0d-2\n"
    f = tmp_path / "ign.obs"
    f.write_text("IGNORE -999\n3.\n" + rows)
    with pytest.warns(UserWarning, match="1 row.s. hold the IGNORE value -999: left out"):
        s = gio.read_stations(f)
    np.testing.assert_array_equal(s.gz, [0.5, 0.7])
    np.testing.assert_array_equal(s.std, [0.01, 0.01])
    g = tmp_path / "grav3d.csv"  # a GRAV3D file saved with a .csv name
    g.write_text("2\n500000 4200000 10 0.5 0.01\n500100 4200000 10 0.6 0.01\n")
    np.testing.assert_array_equal(gio.read_stations(g).gz, [0.5, 0.6])
    gg = tmp_path / "gg.obs"
    gg.write_text("3 ! ncomp\ngxx gxy gxz gyy gyz gzz\n1\n500000 4200000 10 1 2 3 4 5 6 0.1 0.1 0.1 0.1 0.1 0.1\n")
    with pytest.raises(ValueError, match="gradiometry .GG3D. file.*write the data as CSV"):
        gio.read_stations(gg)


def test_a_crs_per_feature_other_than_the_collections_is_refused(tmp_path):
    """A pre-RFC 7946 ``crs`` on a feature or geometry is refused unless it repeats the collection's."""
    own = {"type": "name", "properties": {"name": "EPSG:25830"}}
    same = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::23030"}}
    f = tmp_path / "s.geojson"
    a, b = _pt([206893.36, 4186714.93], g=1.0), _pt([206588.18, 4173949.89], g=2.0)
    b["crs"] = own
    f.write_text(json.dumps(_fc([a, b])))
    with pytest.raises(ValueError, match="feature 1 names its own CRS 'EPSG:25830'"):
        gio.read_geojson(f, "g")
    del b["crs"]
    b["geometry"]["crs"] = own
    f.write_text(json.dumps(_fc([a, b], crs=None)))
    with pytest.raises(ValueError, match="feature 1's geometry .* not the collection's .none"):
        gio.read_geojson(f, "g")
    b["geometry"]["crs"] = same
    f.write_text(json.dumps(_fc([a, b])))
    np.testing.assert_allclose(gio.read_geojson(f, "g").gz, [1.0, 2.0])
