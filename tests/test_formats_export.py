"""Exports: per-element float32 TIFF (zip or folder), PNG with colour and scale bars, CSV."""
import csv
import io
import zipfile

import numpy as np
import pytest
import tifffile
from formats_fixtures import HXN_ELEMENTS, HXN_SET, write_maps_v10
from PIL import Image

from enhancer import UserError
from enhancer.formats import export_csv, export_png, export_tiff, read_map
from enhancer.formats.png import LUT, display_range, nice_length_nm


@pytest.fixture
def hxn():
    return read_map(HXN_SET, pixel_nm=(40, 50))


@pytest.mark.parametrize("name", ["maps.zip", "maps_folder"])
def test_tiff_export_reads_back_exactly(tmp_path, hxn, name):
    out = export_tiff(hxn, tmp_path / name)
    again = read_map(out)
    assert again.elements == HXN_ELEMENTS
    assert again.pixel_size_nm == pytest.approx((40.0, 50.0))
    np.testing.assert_array_equal(again.data, hxn.data)


def test_tiff_export_is_float32_with_resolution_for_fiji(tmp_path, hxn):
    out = export_tiff(hxn, tmp_path / "maps.zip")
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == sorted(f"{e}.tiff" for e in HXN_ELEMENTS)
        with tifffile.TiffFile(io.BytesIO(zf.read("S_K.tiff"))) as tif:
            assert tif.pages[0].dtype == np.float32
            assert int(tif.pages[0].resolutionunit) == 3  # centimetre
            xres, yres = tif.pages[0].get_resolution()
            assert (1e7 / xres, 1e7 / yres) == pytest.approx((50.0, 40.0))


def test_png_has_map_colour_bar_and_scale_bar(tmp_path, hxn):
    with_bar = Image.open(export_png(hxn, tmp_path / "s.png", element="S_K"))
    hxn.pixel_size_nm = None
    without = Image.open(export_png(hxn, tmp_path / "s_nobar.png", element="S_K"))
    assert with_bar.mode == "RGB" and with_bar.size == without.size
    assert with_bar.width > 160 * 3  # the 160-pixel map is zoomed to be seen
    pixels = np.asarray(with_bar)
    # the viridis ends are both drawn (map and colour bar)
    assert (np.abs(pixels.astype(int) - LUT[0]).sum(axis=2) < 6).any()
    assert (np.abs(pixels.astype(int) - LUT[255]).sum(axis=2) < 6).any()
    assert not np.array_equal(pixels, np.asarray(without))  # only the scale bar differs


def test_png_of_all_elements_is_a_montage(tmp_path, hxn):
    one = Image.open(export_png(hxn, tmp_path / "one.png", element="Cr_K"))
    allm = Image.open(export_png(hxn, tmp_path / "all.png"))
    assert allm.width == 3 * one.width and allm.height == 2 * one.height
    with pytest.raises(UserError, match="no element 'Fe_K'"):
        export_png(hxn, tmp_path / "x.png", element="Fe_K")


def test_scale_bar_and_range_rules():
    assert nice_length_nm(160 * 50) == 1000  # 8 um wide -> a 1 um bar
    assert nice_length_nm(3000) == 500
    plane = np.linspace(0, 1, 1600).reshape(40, 40)
    plane[0, 0] = 1e6  # one hot pixel does not set the top of the range
    lo, hi = display_range(plane)
    assert lo > 0 and hi <= 1


def test_csv_long_table_with_positions(tmp_path):
    write_maps_v10(tmp_path / "scan.h5")
    m = read_map(tmp_path / "scan.h5")
    out = export_csv(m, tmp_path / "scan.csv")
    with open(out) as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["row", "col", "y_um", "x_um", "Fe", "Zn", "Ca_K", "Pt_L"]
    assert len(rows) == 1 + 12 * 16
    table = np.array(rows[1:], dtype=float)
    r, c = table[:, 0].astype(int), table[:, 1].astype(int)
    np.testing.assert_allclose(table[:, 4:].T, m.data[:, r, c], rtol=1e-6)
    np.testing.assert_allclose(table[:, 3], m.x_axis_um[c], atol=1e-6)
    np.testing.assert_allclose(table[:, 2], m.y_axis_um[r], atol=1e-6)


def test_csv_grids_one_per_element(tmp_path, hxn):
    out = export_csv(hxn, tmp_path / "grids.zip")
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == sorted([f"{e}.csv" for e in HXN_ELEMENTS] + ["metadata.json"])
        grid = np.loadtxt(io.StringIO(zf.read("Si_K.csv").decode()), delimiter=",")
    np.testing.assert_allclose(grid, hxn.data[3], rtol=1e-6)
