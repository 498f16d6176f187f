"""Files from other facilities (issue 20): motor units, v9 units, the step never guessed.

The files are built by tests/formats_fixtures.py in the layouts the facilities' software writes
(2-ID-E MAPS v9 with motors in mm, XRF-Maps v10 Extra_PVs, PyXRF's own writer).
"""
import json
import zipfile

import h5py
import numpy as np
import pytest
import tifffile
from formats_fixtures import (aps_2ide_pvs, element_maps, tiff_file_bytes, write_corpus,
                              write_extra_pvs_v10, write_maps_v9, write_maps_v10, write_pyxrf)

from enhancer import UserError, cli
from enhancer.formats import read_map


def info(path, capsys, *flags):
    assert cli.main(["info", str(path), *flags]) == 0
    return json.loads(capsys.readouterr().out)


# --- 1. motor units --------------------------------------------------------------------------

@pytest.mark.parametrize("stated", [("egu",), ("p1si",), ("p1eu",), ("egu", "p1si")])
def test_v9_axes_in_mm_said_by_extra_pvs(tmp_path, capsys, stated):
    path = tmp_path / "2xfm_0042.mda.h5"
    write_maps_v9(path, pixel_um=(10.0, 10.0), motor_unit="mm", extra_pvs=aps_2ide_pvs(0.010, stated))
    out = info(path, capsys)
    assert out["pixel_size_nm"] == pytest.approx(10_000.0)  # 10 um, not 10 nm
    m = read_map(path)
    assert m.source["axes_units"] == ["mm", "mm"]
    assert "Extra PV" in m.source["axes_units_from"]
    assert np.diff(m.x_axis_um).mean() == pytest.approx(10.0)  # axes kept in um inside


def test_v9_axes_in_mm_said_by_scaler_units(tmp_path, capsys):
    path = tmp_path / "2xfm_0043.mda.h5"
    write_maps_v9(path, pixel_um=(10.0, 5.0), motor_unit="mm", coord_scalers_unit="mm")
    assert info(path, capsys)["pixel_size_nm"] == pytest.approx([10_000.0, 5_000.0])
    assert "scaler_units" in read_map(path).source["axes_units_from"]


def test_v10_axes_in_mm_said_by_scan_extra_pvs(tmp_path, capsys):
    path = tmp_path / "bnp_fly0100.mda.h5"
    write_maps_v10(path, pixel_um=(2.0, 2.0), motor_unit="mm")
    write_extra_pvs_v10(path, aps_2ide_pvs(0.002, ("egu",)))
    assert info(path, capsys)["pixel_size_nm"] == pytest.approx(2_000.0)


def test_pyxrf_positions_in_the_scan_metadata_units(tmp_path, capsys):
    path = tmp_path / "scan2D_5678.h5"
    write_pyxrf(path, pixel_um=(0.3, 0.15), axes_units="um")
    assert info(path, capsys)["pixel_size_nm"] == pytest.approx([300.0, 150.0])
    with h5py.File(path, "r+") as f:  # an SRX-like stage in mm
        f["xrfmap/positions/pos"][...] = f["xrfmap/positions/pos"][()] / 1000
        f["xrfmap/scan_metadata"].attrs["param_fast_axis_units"] = "mm"
        f["xrfmap/scan_metadata"].attrs["param_slow_axis_units"] = "mm"
    assert info(path, capsys)["pixel_size_nm"] == pytest.approx([300.0, 150.0])


def test_no_unit_stated_is_assumed_um_and_said(tmp_path, capsys):
    path = tmp_path / "plain.h5"
    write_maps_v9(path, pixel_um=(0.2, 0.2))
    out = info(path, capsys)
    assert out["pixel_size_nm"] == pytest.approx(200.0)
    assert "assumed" in out["pixel_size_from"]


@pytest.mark.parametrize("pixel_um,unit", [((0.001, 0.001), "um"), ((2000.0, 2000.0), "mm")])
def test_implausible_step_is_unknown_and_said(tmp_path, capsys, pixel_um, unit):
    path = tmp_path / "odd.h5"
    write_maps_v9(path, pixel_um=pixel_um, motor_unit=unit, coord_scalers_unit=unit)
    out = info(path, capsys)
    assert out["pixel_size_nm"] is None
    assert "treated as unknown" in out["pixel_size_note"]
    assert info(path, capsys, "--pixel-nm", "80")["pixel_size_nm"] == 80.0  # the user's step wins


def test_pixel_nm_wins_over_the_file_in_info(tmp_path, capsys):
    path = tmp_path / "2xfm.h5"
    write_maps_v9(path, pixel_um=(10.0, 10.0), motor_unit="mm", extra_pvs=aps_2ide_pvs())
    out = info(path, capsys, "--pixel-nm", "500")
    assert out["pixel_size_nm"] == 500.0 and out["pixel_size_from"] == "user"


# --- 3. units of v9 fits ---------------------------------------------------------------------

@pytest.mark.parametrize("rows", [3, 4])
def test_v9_fits_are_labelled_counts_per_second_in_both_unit_layouts(tmp_path, rows):
    path = tmp_path / "v9.h5"
    write_maps_v9(path, units_rows=rows)
    m = read_map(path)
    assert m.units == "cts/s"  # what XRF_fits holds, not the quantified ug/cm^2
    assert read_map(path, method="ROI").units == "cts/s"


def test_uninitialised_bytes_after_the_units_are_ignored(tmp_path):
    path = tmp_path / "v9.h5"
    write_maps_v9(path, units_rows=4)
    with h5py.File(path, "r") as f:
        assert len(f["MAPS/channel_units"][3, 0]) > 100  # the garbage is really there
    assert read_map(path).units == "cts/s"


def test_h5t_and_h50_names_read_by_content(tmp_path):
    for name, detector in (("2xfm_0042.mda.h50", "0"), ("2xfm_0042.mda.h5t", "sum")):
        written = write_maps_v9(tmp_path / name)
        m = read_map(tmp_path / name)
        np.testing.assert_array_equal(m.data, written["XRF_fits"])
        assert m.source["detector"] == detector



# --- enhancing and roi on these files ---------------------------------------------------------

@pytest.fixture
def model_2x(tmp_path):
    """A 2x model for scans at 100 nm steps (50 nm fine pixels): random weights, no training."""
    from enhancer.bundle import save_bundle
    from tests.test_enhance import random_bundle

    b = random_bundle(scale=2)
    return save_bundle(tmp_path / "model-2x", b.network, b.config)


def run(*args):
    return cli.main([str(a) for a in args])


def one_line_error(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


# 4. output name vs format

def test_hdf5_input_enhanced_to_npy_writes_npy(tmp_path, model_2x):
    src = tmp_path / "scan.h5"
    write_maps_v10(src, pixel_um=(0.1, 0.1))
    for name in ("out.npy", "out.tif", "out.npz", "out.zip"):
        assert run("enhance", src, tmp_path / name, "--model", model_2x) == 0
        assert read_map(tmp_path / name).shape == (4, 24, 32)
    assert "Fe.tiff" not in zipfile.ZipFile(tmp_path / "out.zip").namelist()  # named by element
    assert "Fe_enhanced.tiff" in zipfile.ZipFile(tmp_path / "out.zip").namelist()
    assert np.load(tmp_path / "out.npy").shape == (4, 24, 32)  # really NPY, not HDF5 bytes
    assert json.loads((tmp_path / "out.npy.json").read_text())["elements"] == ["Fe", "Zn", "Ca_K", "Pt_L"]


@pytest.mark.parametrize("name, keep", [("out.h5", ".npy"), ("out.hdf5", ".npy"), ("out.dat", ".npy")])
def test_a_name_that_cannot_hold_the_result_is_refused(tmp_path, model_2x, capsys, name, keep):
    src = tmp_path / "scan.npy"
    np.save(src, np.random.default_rng(0).uniform(0, 1, (2, 12, 12)).astype(np.float32))
    assert run("enhance", src, tmp_path / name, "--model", model_2x, "--pixel-nm", 100) == 2
    one_line_error(capsys, keep)
    assert not (tmp_path / name).exists()


# 5. zip members keep their inner paths

def test_tiff_set_zip_keeps_its_members_paths(tmp_path, model_2x):
    src = tmp_path / "scan_0042.zip"
    with zipfile.ZipFile(src, "w") as zf:
        for k, el in enumerate(("Fe_K", "Zn_K")):
            zf.writestr(f"scan_0042/maps/SUM_maps_XRF_{el}.tiff", tiff_file_bytes(element_maps(1, seed=k)[0]))
    assert run("enhance", src, tmp_path / "out.zip", "--model", model_2x, "--pixel-nm", 100) == 0
    names = zipfile.ZipFile(tmp_path / "out.zip").namelist()
    assert "scan_0042/maps/SUM_maps_XRF_Fe_K_enhanced.tiff" in names
    assert "scan_0042/maps/SUM_maps_XRF_Zn_K_enhanced.tiff" in names
    assert read_map(tmp_path / "out.zip").elements == ["Fe_K", "Zn_K"]
    assert run("enhance", src, tmp_path / "out-folder", "--model", model_2x, "--pixel-nm", 100) == 0
    assert (tmp_path / "out-folder/scan_0042/maps/SUM_maps_XRF_Fe_K_enhanced.tiff").is_file()


# 6. fine axes in the input's units

def test_enhanced_hdf5_results_carry_fine_axes_in_the_inputs_units(tmp_path, model_2x):
    v9, v10, px = tmp_path / "2xfm.h5", tmp_path / "bnp.h5", tmp_path / "pyxrf.h5"
    write_maps_v9(v9, pixel_um=(0.1, 0.1), motor_unit="mm", extra_pvs=aps_2ide_pvs(0.0001))
    write_maps_v10(v10, pixel_um=(0.1, 0.1), two_d_axes=True)
    write_pyxrf(px, pixel_um=(0.1, 0.1))
    for src, method, x_path, unit in ((v9, "XRF_fits_Enhanced", "MAPS/XRF_fits_Enhanced_x_axis", "mm"),
                                      (v10, "Fitted_Enhanced", "MAPS/XRF_Analyzed/Fitted_Enhanced/x_axis", "um"),
                                      (px, "xrf_fit_enhanced", "xrfmap/detsum/xrf_fit_enhanced_positions", "um")):
        out = tmp_path / f"{src.stem}-enhanced.h5"
        assert run("enhance", src, out, "--model", model_2x) == 0
        original, enhanced = read_map(src), read_map(out, method=method)
        with h5py.File(out, "r") as f:
            assert f[x_path].attrs["units"] == unit
            fine = f[x_path][()] if f[x_path].ndim == 1 else f[x_path][0, 0]
            assert fine.shape == (2 * original.shape[2],)  # 32 positions beside 32 columns, not 16
        assert enhanced.pixel_size_nm == pytest.approx((50.0, 50.0), rel=0.01)  # 2-D axes jitter
        x = enhanced.x_axis_um if enhanced.x_axis_um.ndim == 1 else enhanced.x_axis_um[0]
        assert np.diff(x) == pytest.approx(0.05, rel=0.01)  # um, read back through the unit
        x0 = original.x_axis_um if original.x_axis_um.ndim == 1 else original.x_axis_um.mean(0)
        assert x[0] == pytest.approx(x0[0] - 0.025, abs=0.005)  # the first fine pixel's centre


# 7. no silent step

@pytest.mark.parametrize("name", ["map.tif", "map.npy"])
def test_a_map_without_a_step_says_null_and_enhance_asks_for_it(tmp_path, model_2x, capsys, name):
    src = tmp_path / name
    data = element_maps(2)
    tifffile.imwrite(src, data) if name.endswith(".tif") else np.save(src, data)
    assert info(src, capsys)["pixel_size_nm"] is None
    assert run("enhance", src, tmp_path / f"out{src.suffix}", "--model", model_2x) == 2
    one_line_error(capsys, "--pixel-nm")
    assert not (tmp_path / f"out{src.suffix}").exists()
    assert run("enhance", src, tmp_path / f"out{src.suffix}", "--model", model_2x, "--pixel-nm", 100) == 0


def test_the_model_step_is_never_filled_in(tmp_path):
    from enhancer.enhance import enhance_map
    from tests.test_enhance import random_bundle

    np.save(tmp_path / "map.npy", element_maps(1))
    with pytest.raises(UserError, match="step is unknown"):
        enhance_map(read_map(tmp_path / "map.npy"), random_bundle(scale=2))


# 2. roi on an enhanced result

def roi(capsys, *args):
    assert run("roi", *args, "--min-area-px", 3) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_roi_reads_the_enhanced_maps_of_a_result_and_says_so(tmp_path, model_2x, capsys):
    src, out = tmp_path / "scan.h5", tmp_path / "scan-enhanced.h5"
    write_maps_v10(src, pixel_um=(0.1, 0.1))
    assert run("enhance", src, out, "--model", model_2x) == 0
    used = roi(capsys, out, tmp_path / "rois.csv")
    assert used["maps"] == "enhanced" and used["method"] == "Fitted_Enhanced"
    assert used["grid_step_nm"] == pytest.approx([50.0, 50.0])
    assert json.loads((tmp_path / "rois.json").read_text())["maps"] == "enhanced"
    used = roi(capsys, out, tmp_path / "rois.csv", "--maps", "original")
    assert used["maps"] == "original" and used["method"] == "Fitted"
    assert used["grid_step_nm"] == pytest.approx([100.0, 100.0])
    assert run("roi", src, tmp_path / "r.csv", "--maps", "enhanced") == 2
    one_line_error(capsys, "no enhanced maps")


def test_roi_boxes_in_um_on_a_mm_file_and_pixel_nm_wins(tmp_path, capsys):
    src = tmp_path / "2xfm.h5"
    write_maps_v9(src, rows=24, cols=24, pixel_um=(10.0, 10.0), motor_unit="mm", extra_pvs=aps_2ide_pvs())
    used = roi(capsys, src, tmp_path / "rois.csv")
    assert used["grid_step_nm"] == pytest.approx([10_000.0, 10_000.0])
    rois = json.loads((tmp_path / "rois.json").read_text())["rois"]
    assert rois
    for r in rois:
        r0, c0, r1, c1 = r["pixels"]
        assert r["width_um"] == pytest.approx(10.0 * (c1 - c0))  # not 1000x too small
    roi(capsys, src, tmp_path / "rois.csv", "--pixel-nm", 500)
    for r in json.loads((tmp_path / "rois.json").read_text())["rois"]:
        r0, c0, r1, c1 = r["pixels"]
        assert r["width_um"] == pytest.approx(0.5 * (c1 - c0))  # the user's step, not the axes'


def test_info_on_the_corpus_of_other_facilities_files(tmp_path, capsys):
    expected = write_corpus(tmp_path / "corpus")
    for name, (fmt, elements, pixel) in expected.items():
        out = info(tmp_path / "corpus" / name, capsys)
        assert (out["format"], out["elements"]) == (fmt, elements), name
        if pixel is None:
            assert out["pixel_size_nm"] is None, name
        else:
            assert np.allclose(np.atleast_1d(out["pixel_size_nm"]), pixel, rtol=0.02), (name, out)
        assert out["units"] in ("cts/s", "counts", ""), name


def test_tiff_resolution_tags_with_an_implausible_step_are_unknown(tmp_path, capsys):
    data = element_maps(1)[0]
    tifffile.imwrite(tmp_path / "fine.tif", data, resolution=(1e7 / 40, 1e7 / 40), resolutionunit="CENTIMETER")
    assert info(tmp_path / "fine.tif", capsys)["pixel_size_nm"] == pytest.approx(40.0)
    tifffile.imwrite(tmp_path / "odd.tif", data, resolution=(1e7 / 2, 1e7 / 2), resolutionunit="CENTIMETER")
    out = info(tmp_path / "odd.tif", capsys)
    assert out["pixel_size_nm"] is None and "resolution tags" in out["pixel_size_note"]
