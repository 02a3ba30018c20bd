"""Station CSV dialects met in real exports: semicolons and decimal commas, BOM, Latin-1, quotes, id columns.

Also the ``compare --cv K`` check that refuses more folds than stations before anything runs.
"""

import numpy as np
import pytest

from gempy_gravinv import io as gio

ROWS = [(25.0, 25.0, 10.0, 0.02587, 0.005), (115.0, 25.0, 10.0, 0.042076, 0.005),
        (205.0, 25.0, 10.0, 0.062542, 0.005), (295.0, 25.0, 10.0, 0.059864, 0.005)]


def _check(s, n=None):
    ref = np.asarray(ROWS[:n])
    np.testing.assert_array_equal(s.locations, ref[:, :3])
    np.testing.assert_array_equal(s.gz, ref[:, 3])
    np.testing.assert_array_equal(s.std, ref[:, 4])


def _lines(sep=",", decimal=".", quote=""):
    def fmt(v):
        return quote + repr(v).replace(".", decimal) + quote

    return [sep.join(fmt(v) for v in row) for row in ROWS]


def test_semicolon_separator(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("# exported\nx;y;z;gz;std\n" + "\n".join(_lines(";")) + "\n")
    _check(gio.read_csv(f))
    _check(gio.read_stations(f))


def test_semicolon_with_decimal_commas(tmp_path):
    f = tmp_path / "euro.csv"
    f.write_text("x;y;z;gz (mGal);std (mGal)\n" + "\n".join(_lines(";", ",")) + "\n")
    _check(gio.read_csv(f))
    f.write_text("\n".join(_lines(" ; ", ",")) + "\n")  # headerless, blanks around the separator
    _check(gio.read_csv(f))
    f.write_text("x;y;z;gz\n1;2;3;1.234,5\n")  # a thousands separator is not guessed: named as is
    with pytest.raises(ValueError, match=r"line 2: '1\.234,5' is not a number"):
        gio.read_csv(f)


def test_utf8_byte_order_mark_is_ignored(tmp_path):
    f = tmp_path / "bom.csv"
    f.write_bytes(("\ufeffx,y,z,gz,std\n" + "\n".join(_lines()) + "\n").encode("utf-8"))
    _check(gio.read_csv(f))
    f.write_bytes(("\ufeff# crs: EPSG:25830\nx,y,z,gz,std\n" + "\n".join(_lines()) + "\n").encode("utf-8"))
    s = gio.read_csv(f)
    _check(s)
    assert s.crs == "EPSG:25830"
    obs = tmp_path / "bom.obs"  # the other readers of text lines benefit too
    obs.write_bytes(("\ufeff2\n" + "\n".join(" ".join(row.split(",")) for row in _lines()[:2]) + "\n").encode())
    _check(gio.read_ubc_obs(obs), 2)


def test_latin1_file_is_named_not_utf8(tmp_path):
    f = tmp_path / "latin1.csv"
    f.write_bytes("x,y,z,gz (µGal)\n1,2,3,4\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.csv, line 1: byte 0xb5 at offset 10 is not UTF-8 text.*"
                                         r"save the file as UTF-8") as e:
        gio.read_csv(f)
    assert "not a text file" not in str(e.value)
    f.write_bytes("x,y,z,gz\n1,2,3,4\n5,6,7,8 # é\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"line 3: byte 0xe9 at offset 27 is not UTF-8"):
        gio.read_csv(f)


def test_quoted_numbers(tmp_path):
    f = tmp_path / "q.csv"
    f.write_text('"x","y","z","gz","std"\n' + "\n".join(_lines(quote='"')) + "\n")
    _check(gio.read_csv(f))
    f.write_text("\n".join(_lines(";", ",", quote='"')) + "\n")  # headerless, decimal commas in quotes
    _check(gio.read_csv(f))
    f.write_text('x,y,z,gz\n1,2,3,"abc"\n')
    with pytest.raises(ValueError, match="line 2: 'abc' is not a number"):
        gio.read_csv(f)


@pytest.mark.parametrize("start", [0, 1])
def test_headerless_station_id_column_is_refused(tmp_path, start):
    f = tmp_path / "ids.csv"
    f.write_text("".join(f"{start + i}.0,{r[0]},{r[1]},{r[2]},{r[3]}\n" for i, r in enumerate(ROWS)))
    with pytest.raises(ValueError, match=rf"ids\.csv, line 1: .*counts the rows \({start}\.\.{start + 3}\).*"
                                         r"station id.*add a header row"):
        gio.read_csv(f)
    f.write_text("".join(f"{start + i} {' '.join(map(str, r))}\n" for i, r in enumerate(ROWS)))  # 6 columns
    with pytest.raises(ValueError, match=r"6 columns without a header \(the first column, .*station id\)"):
        gio.read_csv(f)
    f.write_text("id,x,y,z,gz,std\n" + "".join(f"{start + i}," + r + "\n" for i, r in enumerate(_lines())))
    _check(gio.read_csv(f))  # with a header the id column is ignored


def test_headerless_coordinates_still_read_by_position(tmp_path):
    f = tmp_path / "xyz.csv"
    f.write_text("\n".join(_lines()) + "\n")
    _check(gio.read_csv(f))
    f.write_text("0,0,10,0.1\n1,0,10,0.2\n")  # two stations at x = 0, 1 m: too few rows to call it an id
    np.testing.assert_array_equal(gio.read_csv(f).locations[:, 0], [0, 1])
    f.write_text("1,0,10\n2,0,10\n4,0,10\n")  # not consecutive: a coordinate
    np.testing.assert_array_equal(gio.read_csv(f).locations[:, 0], [1, 2, 4])


def test_compare_cv_more_folds_than_stations_refused_before_running(tmp_path, capsys):
    from gempy_gravinv.cli import main

    st = tmp_path / "st.csv"
    st.write_text("x,y,z,gz,std\n" + "\n".join(_lines()[:3]) + "\n")
    mesh = tmp_path / "m.msh"
    mesh.write_text("2 2 2\n0 0 0\n2*50\n2*50\n2*50\n")
    out = tmp_path / "out"
    rc = main(["compare", str(st), "--mesh", str(mesh), "-o", str(out), "--quick", "--device", "cpu",
               "--no-figures", "--cv", "4", "--methods", "simpeg_l2"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "--cv 4 folds need at least 4 stations" in err and "has 3" in err, err
    assert not out.exists() or not any(out.iterdir())


def test_a_data_column_of_another_name_is_named_with_the_accepted_ones(tmp_path):
    f = tmp_path / "b.csv"
    f.write_text("x,y,z,bouguer,std\n0,0,1,2.5,0.1\n10,0,1,2.6,0.1\n")
    with pytest.raises(ValueError, match="a std column without a data column .* one of gz, g_z, grav, gravity"):
        gio.read_stations(f)


def test_longitude_latitude_columns_a_late_crs_comment_and_gradients_in_mgal_per_metre(tmp_path):
    import pyproj

    f = tmp_path / "ll.csv"
    f.write_text("lon,lat,z,gz,std\n-6.9,37.5,100,1.0,0.1\n-6.8,37.6,100,1.0,0.1\n")
    with pytest.raises(ValueError, match="has coordinates in degree, not metres"):
        gio.read_stations(f)
    s = gio.read_stations(f, to_crs="EPSG:25830")
    x, y = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:25830", always_xy=True).transform(-6.9, 37.5)
    np.testing.assert_allclose(s.locations[0], [x, y, 100.0])
    late = tmp_path / "late.csv"
    late.write_text("x,y,z,gz,std\n# crs: EPSG:4326\n-6.9,37.5,100,1.0,0.1\n-6.8,37.6,100,1.0,0.1\n")
    np.testing.assert_allclose(gio.read_stations(late, to_crs="EPSG:25830").locations[0], [x, y, 100.0])
    g = tmp_path / "gzz.csv"
    g.write_text("x,y,z,component,data (mGal/m),std (mGal/m)\n0,0,10,gzz,0.001,0.0001\n10,0,10,gzz,0.002,0.0001\n")
    np.testing.assert_allclose(gio.read_stations(g).gz, [10.0, 20.0])  # 1 mGal/m = 1e4 Eötvös
