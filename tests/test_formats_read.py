"""Reading every format: elements without extras, shape, pixel size from the axes, scalers."""
import resource
import shutil
import zipfile

import numpy as np
import pytest
import tifffile
from formats_fixtures import (EXTRAS, HXN_ELEMENTS, HXN_SET, PYXRF_EXTRAS, PYXRF_SCALERS, SCALERS,
                              hxn_arrays, write_hxn_zip, write_maps_v9, write_maps_v10, write_pyxrf)

from enhancer import UserError
from enhancer.formats import detect_format, normalize_by_scaler, read_map, summarize


def test_maps_v10_with_1d_axes(tmp_path):
    path = tmp_path / "scan.h5"
    written = write_maps_v10(path)
    m = read_map(path)
    assert detect_format(path) == "maps-v10"
    assert m.elements == ["Fe", "Zn", "Ca_K", "Pt_L"]  # NUL padding gone, extras apart
    assert sorted(m.extras) == sorted(EXTRAS)
    assert m.shape == (4, 12, 16)
    assert m.pixel_size_nm == pytest.approx((100.0, 50.0))
    np.testing.assert_array_equal(m.data, written["Fitted"])
    assert list(m.scalers) == SCALERS  # space padding gone
    assert m.units == "cts/s"
    assert m.x_axis_um.shape == (16,) and m.y_axis_um.shape == (12,)
    assert m.source["datasets"]["maps"] == "/MAPS/XRF_Analyzed/Fitted/Counts_Per_Sec"
    assert m.source["elements"]["Pt_L"].endswith("Counts_Per_Sec[3]")
    assert m.source["detector"] == "sum"
    assert m.provenance == {}  # nothing repaired, nothing normalised: off by default


def test_maps_v10_with_2d_axes_and_jitter(tmp_path):
    path = tmp_path / "scan.h5"
    write_maps_v10(path, two_d_axes=True, pixel_um=(0.04, 0.03))
    m = read_map(path)
    assert m.x_axis_um.shape == (12, 16)
    assert m.pixel_size_nm == pytest.approx((40.0, 30.0), rel=0.02)


def test_maps_v10_method_order_and_choice(tmp_path):
    path = tmp_path / "scan.h5"
    written = write_maps_v10(path, methods=("ROI", "Fitted", "NNLS"))
    np.testing.assert_array_equal(read_map(path).data, written["NNLS"])  # NNLS, then Fitted, then ROI
    assert read_map(path).source["methods"] == ["Fitted", "NNLS", "ROI"]
    np.testing.assert_array_equal(read_map(path, method="roi").data, written["ROI"])
    with pytest.raises(UserError, match="no 'SVD' maps.*Fitted, NNLS, ROI"):
        read_map(path, method="SVD")


def test_maps_v10_detector_file_and_float64(tmp_path):
    path = tmp_path / "scan.h53"
    written = write_maps_v10(path, dtype="float64")
    m = read_map(path)
    assert m.source["detector"] == "3"
    assert m.data.dtype == np.float32
    np.testing.assert_allclose(m.data, written["Fitted"], rtol=1e-6)


def test_spectra_are_never_read(tmp_path):
    """mca_arr declares 4096 x 3000 x 3000 float32 (137 GiB): touching it would fail or blow memory."""
    path = tmp_path / "scan.h5"
    write_maps_v10(path, spectra_shape=(4096, 3000, 3000))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    m = read_map(path)
    assert m.shape == (4, 12, 16)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB


@pytest.mark.parametrize("lowercase", [True, False])
def test_maps_v9_both_scaler_generations(tmp_path, lowercase):
    path = tmp_path / "old.h5"
    written = write_maps_v9(path, lowercase=lowercase)
    m = read_map(path)
    assert detect_format(path) == "maps-v9"
    assert m.elements == ["Fe", "Zn", "Cu"]
    assert m.shape == (3, 10, 14)
    assert m.pixel_size_nm == pytest.approx((200.0, 200.0))
    np.testing.assert_array_equal(m.data, written["XRF_fits"])  # XRF_fits before XRF_roi
    assert m.units == "cts/s"  # the last row of channel_units (4, n)
    assert ("us_ic" if lowercase else "US_IC") in m.scalers
    np.testing.assert_array_equal(read_map(path, method="ROI").data, written["XRF_roi"])
    # US_IC asked for, us_ic present: the same scaler in two naming generations
    n = read_map(path, normalize="US_IC")
    key = "us_ic" if lowercase else "US_IC"
    np.testing.assert_allclose(n.data, written["XRF_fits"] / m.scalers[key][None], rtol=1e-6)


def test_pyxrf(tmp_path):
    path = tmp_path / "scan2D_1234.h5"
    written = write_pyxrf(path)
    m = read_map(path)
    assert detect_format(path) == "pyxrf"
    assert m.elements == ["Fe_K", "Zn_K", "Au_M"]
    assert sorted(m.extras) == sorted(PYXRF_EXTRAS)
    assert m.shape == (3, 10, 12)
    assert m.pixel_size_nm == pytest.approx((300.0, 150.0))  # float64 positions near 1000 um
    np.testing.assert_array_equal(m.data, written["xrf_fit"])
    assert list(m.scalers) == PYXRF_SCALERS
    for k, name in enumerate(PYXRF_SCALERS):  # the scaler axis is last in PyXRF files
        np.testing.assert_array_equal(m.scalers[name], written["scalers"][:, :, k])
    np.testing.assert_array_equal(read_map(path, method="xrf_roi").data, written["xrf_roi"])
    np.testing.assert_array_equal(read_map(path, method="ROI").data, written["xrf_roi"])


def test_pyxrf_spectra_are_never_read(tmp_path):
    path = tmp_path / "scan.h5"
    written = write_pyxrf(path)
    import h5py

    with h5py.File(path, "r+") as f:  # 2000 x 2000 x 4096 float32 spectra, declared only
        del f["xrfmap/detsum/counts"]
        f.create_dataset("xrfmap/detsum/counts", shape=(2000, 2000, 4096), dtype="f4", chunks=(1, 1, 4096))
    np.testing.assert_array_equal(read_map(path).data, written["xrf_fit"])


def test_normalisation_follows_pyxrf_zero_rule(tmp_path):
    path = tmp_path / "scan.h5"
    written = write_pyxrf(path)
    m = read_map(path)
    i0 = m.scalers["i0"].astype(np.float64).copy()
    i0[0, :3] = 0.0
    m.scalers["i0"] = i0.astype(np.float32)
    n = normalize_by_scaler(m, "i0")
    expected_scaler = i0.copy()
    expected_scaler[0, :3] = i0[i0 != 0].mean()
    np.testing.assert_allclose(n.data, written["xrf_fit"] / expected_scaler[None], rtol=1e-5)
    assert n.provenance["normalization"]["scaler"] == "i0"
    assert n.provenance["normalization"]["zeros_replaced_by_mean"] == 3
    assert n.units == "counts / i0"
    assert "normalization" not in m.provenance  # the input map is left as it was
    with pytest.raises(UserError, match="already normalised"):
        normalize_by_scaler(n, "i0")
    m.scalers["zero"] = np.zeros_like(i0, dtype=np.float32)
    with pytest.raises(UserError, match="zero everywhere"):
        normalize_by_scaler(m, "zero")
    with pytest.raises(UserError, match="no scaler named 'sclr_i0'.*i0, i0_time, time"):
        normalize_by_scaler(m, "sclr_i0")


def test_nan_inf_replaced_and_counted_negative_kept(tmp_path):
    path = tmp_path / "scan.h5"
    write_maps_v10(path)
    import h5py

    with h5py.File(path, "r+") as f:
        ds = f["MAPS/XRF_Analyzed/Fitted/Counts_Per_Sec"]
        plane = ds[1]
        plane[0, :2] = np.nan
        plane[3, 3] = np.inf
        plane[5, 5] = -7.0
        ds[1] = plane
    m = read_map(path)
    assert np.isfinite(m.data).all()
    assert m.data[1, 0, 0] == 0 and m.data[1, 3, 3] == 0
    assert m.data[1, 5, 5] == -7.0
    assert m.provenance["repairs"]["nonfinite_pixels_set_to_zero"] == {"Zn": 3}
    assert m.provenance["repairs"]["negative_pixels_kept"] == {"Zn": 1}


def test_real_hxn_tiff_set_folder():
    m = read_map(HXN_SET)
    assert detect_format(HXN_SET) == "tiff-set"
    assert m.elements == HXN_ELEMENTS
    assert m.shape == (4, 160, 160)
    assert m.pixel_size_nm is None  # TIFF sets do not say; the user does
    np.testing.assert_array_equal(m.data, hxn_arrays())
    assert m.source["elements"]["S_K"] == "SUM_maps_XRF_S_K.tiff"
    assert read_map(HXN_SET, pixel_nm=45).pixel_size_nm == (45.0, 45.0)
    assert read_map(HXN_SET, pixel_nm=(40, 50)).pixel_size_nm == (40.0, 50.0)
    with pytest.raises(UserError, match="pixel size"):
        read_map(HXN_SET, pixel_nm=-3)


def test_real_hxn_tiff_set_zip_named_anything(tmp_path):
    path = tmp_path / "upload.bin"  # content decides, not the name
    write_hxn_zip(path)
    m = read_map(path)
    assert detect_format(path) == "tiff-set"
    assert m.elements == HXN_ELEMENTS
    assert m.source["container"] == "zip"
    np.testing.assert_array_equal(m.data, hxn_arrays())


def test_tiff_set_with_mixed_sizes_is_refused(tmp_path):
    shutil.copytree(HXN_SET, tmp_path / "set")
    tifffile.imwrite(tmp_path / "set" / "SUM_maps_XRF_Fe_K.tiff", np.ones((20, 30), np.float32))
    with pytest.raises(UserError, match="one size"):
        read_map(tmp_path / "set")


def test_multipage_tiff_npy_npz(tmp_path):
    data = hxn_arrays()
    tifffile.imwrite(tmp_path / "stack.tif", data, photometric="minisblack")
    m = read_map(tmp_path / "stack.tif")
    assert (detect_format(tmp_path / "stack.tif"), m.shape) == ("tiff", (4, 160, 160))
    assert m.elements == ["map_1", "map_2", "map_3", "map_4"]
    np.testing.assert_array_equal(m.data, data)

    np.save(tmp_path / "Fe_K.npy", data[0].astype(np.float64))
    m = read_map(tmp_path / "Fe_K.npy")
    assert (m.elements, m.shape, m.source_format) == (["Fe_K"], (1, 160, 160), "npy")

    np.savez(tmp_path / "maps.npz", Cr_K=data[0], P_K=data[1], note=np.array("not a map"))
    m = read_map(tmp_path / "maps.npz")
    assert (detect_format(tmp_path / "maps.npz"), m.elements) == ("npz", ["Cr_K", "P_K"])
    np.testing.assert_array_equal(m.data, data[:2])


def test_format_is_told_by_content_not_name(tmp_path):
    write_maps_v10(tmp_path / "looks_like.tiff")
    assert detect_format(tmp_path / "looks_like.tiff") == "maps-v10"
    shutil.copy(HXN_SET / "SUM_maps_XRF_S_K.tiff", tmp_path / "scan.h5")
    assert detect_format(tmp_path / "scan.h5") == "tiff"
    assert read_map(tmp_path / "scan.h5").elements == ["scan"]


def test_method_on_a_tiff_is_refused(tmp_path):
    with pytest.raises(UserError, match="MAPS and PyXRF files only"):
        read_map(HXN_SET, method="Fitted")


def test_summary_has_what_info_prints(tmp_path):
    write_maps_v10(tmp_path / "scan.h5")
    s = summarize(read_map(tmp_path / "scan.h5"))
    assert s["format"] == "maps-v10" and s["shape"] == [4, 12, 16]
    assert s["pixel_size_nm"] == pytest.approx([100.0, 50.0])
    assert "Num_Iter" not in s["elements"] and "Num_Iter" in s["extras"]


def test_zip_with_readme_only_is_not_a_tiff_set(tmp_path):
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as zf:
        zf.writestr("README.txt", "hello")
    with pytest.raises(UserError, match="no TIFF or NPY maps"):
        detect_format(tmp_path / "x.zip")


def test_colour_tiff_is_refused(tmp_path):
    tifffile.imwrite(tmp_path / "photo.tif", np.zeros((20, 20, 3), np.uint8), photometric="rgb")
    with pytest.raises(UserError, match="colour image"):
        read_map(tmp_path / "photo.tif")
