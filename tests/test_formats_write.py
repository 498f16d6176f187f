"""Results go back in the input's layout; originals stay byte-identical; writes are atomic."""
import json
import zipfile

import h5py
import numpy as np
import pytest
import tifffile
from formats_fixtures import (HXN_ELEMENTS, HXN_SET, dataset_digests, file_digest, hxn_arrays,
                              write_hxn_zip, write_maps_v9, write_maps_v10, write_pyxrf)

import enhancer
from enhancer import UserError
from enhancer.formats import maps as maps_module
from enhancer.formats import read_map, write_result

PROVENANCE = {"enhancement": {"model": "protocol-a", "probe": {"fwhm_nm": 60.0}, "scale": 2,
                              "version": "test", "date": "2026-01-01T00:00:00+00:00"}}


def fake_enhanced(m, scale=2):
    """What enhance_map returns: every map on a grid `scale` times finer (values repeated)."""
    data = np.kron(m.data, np.ones((1, scale, scale), dtype=np.float32)) + 0.5
    pixel = tuple(p / scale for p in m.pixel_size_nm) if m.pixel_size_nm else (25.0, 25.0)
    return m.with_data(data, pixel_size_nm=pixel)


def check_hdf5_round_trip(src, out, method, enhanced_method):
    original = read_map(src, method=method)
    digests, file_before = dataset_digests(src), file_digest(src)
    enhanced = fake_enhanced(original)
    assert write_result(original, enhanced, out, PROVENANCE) == out
    assert file_digest(src) == file_before  # the input file itself is never touched
    after = dataset_digests(out)
    assert {k: after.get(k) for k in digests} == digests  # every original dataset byte-identical
    again = read_map(out, method=method)  # the same reader, the originals still there
    np.testing.assert_array_equal(again.data, original.data)
    assert again.pixel_size_nm == pytest.approx(original.pixel_size_nm)
    result = read_map(out, method=enhanced_method)
    assert result.source_format == original.source_format
    assert result.elements == original.elements
    assert result.shape == (len(original.elements), original.shape[1] * 2, original.shape[2] * 2)
    np.testing.assert_array_equal(result.data, enhanced.data)
    assert result.pixel_size_nm == pytest.approx(tuple(p / 2 for p in original.pixel_size_nm))
    return result


def test_maps_v10_result_beside_the_originals(tmp_path):
    src = tmp_path / "scan.h5"
    write_maps_v10(src, methods=("Fitted", "NNLS"))
    result = check_hdf5_round_trip(src, tmp_path / "scan_enhanced.h5", "Fitted", "Fitted_Enhanced")
    assert "Fitted_Enhanced" in result.source["methods"]
    with h5py.File(tmp_path / "scan_enhanced.h5", "r") as f:
        group = f["MAPS/XRF_Analyzed/Fitted_Enhanced"]
        assert group["Channel_Names"].dtype == np.dtype("S256")
        assert group.attrs["model"] == "protocol-a"
        assert json.loads(group.attrs["probe"]) == {"fwhm_nm": 60.0}
        assert group.attrs["scale"] == 2
        assert group.attrs["software_version"] == enhancer.__version__
        assert "date" in group.attrs and json.loads(group.attrs["provenance"])["enhancement"]
    # the default method is still the original NNLS, not the enhanced maps
    assert read_map(tmp_path / "scan_enhanced.h5").source["method"] == "NNLS"


def test_maps_v10_second_enhancement_replaces_the_first(tmp_path):
    src, out = tmp_path / "scan.h5", tmp_path / "out.h5"
    write_maps_v10(src)
    original = read_map(src)
    write_result(original, fake_enhanced(original), out, PROVENANCE)
    result = read_map(out)  # reading the result file and enhancing it again
    write_result(result, fake_enhanced(result), tmp_path / "out2.h5", PROVENANCE)
    again = read_map(tmp_path / "out2.h5", method="Fitted_Enhanced")
    np.testing.assert_array_equal(again.data, fake_enhanced(result).data)


def test_maps_v9_result(tmp_path):
    src = tmp_path / "old.h5"
    write_maps_v9(src)
    check_hdf5_round_trip(src, tmp_path / "old_enhanced.h5", "Fitted", "Fitted_Enhanced")
    with h5py.File(tmp_path / "old_enhanced.h5", "r") as f:
        assert "MAPS/XRF_fits_Enhanced" in f and "MAPS/XRF_fits_Enhanced_channel_names" in f


def test_pyxrf_result(tmp_path):
    src = tmp_path / "scan2D_1.h5"
    write_pyxrf(src)
    check_hdf5_round_trip(src, tmp_path / "scan2D_1_enhanced.h5", None, "xrf_fit_enhanced")
    with h5py.File(tmp_path / "scan2D_1_enhanced.h5", "r") as f:
        assert f["xrfmap/detsum/xrf_fit_enhanced_name"][()].tolist() == [b"Fe_K", b"Zn_K", b"Au_M"]


def test_real_hxn_set_folder_to_folder(tmp_path):
    original = read_map(HXN_SET, pixel_nm=50)
    enhanced = fake_enhanced(original)
    out = write_result(original, enhanced, tmp_path / "enhanced", PROVENANCE)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"SUM_maps_XRF_{e}_enhanced.tiff" for e in HXN_ELEMENTS] + ["provenance.json"])
    again = read_map(out)
    assert again.elements == HXN_ELEMENTS
    assert again.pixel_size_nm == pytest.approx((25.0, 25.0))
    np.testing.assert_array_equal(again.data, enhanced.data)
    assert json.loads((out / "provenance.json").read_text())["model"] == "protocol-a"


def test_hxn_zip_to_zip(tmp_path):
    write_hxn_zip(tmp_path / "set.zip")
    original = read_map(tmp_path / "set.zip", pixel_nm=40)
    out = write_result(original, fake_enhanced(original), tmp_path / "set_enhanced.zip", PROVENANCE)
    assert zipfile.is_zipfile(out)
    again = read_map(out)
    assert again.source_format == "tiff-set" and again.elements == HXN_ELEMENTS
    np.testing.assert_array_equal(again.data, fake_enhanced(original).data)


def test_multipage_tiff_npy_npz_round_trips(tmp_path):
    data = hxn_arrays()[:, :40, :40]
    tifffile.imwrite(tmp_path / "stack.tif", data, photometric="minisblack")
    np.save(tmp_path / "one.npy", data[0])
    np.savez(tmp_path / "maps.npz", Cr_K=data[0], P_K=data[1])
    for name, out_name in [("stack.tif", "stack_x2.tif"), ("one.npy", "one_x2.npy"), ("maps.npz", "x2.npz")]:
        original = read_map(tmp_path / name, pixel_nm=50)
        enhanced = fake_enhanced(original)
        out = write_result(original, enhanced, tmp_path / out_name, PROVENANCE)
        again = read_map(out)
        assert again.source_format == original.source_format
        assert again.elements == original.elements
        assert again.pixel_size_nm == pytest.approx((25.0, 25.0))
        np.testing.assert_array_equal(again.data, enhanced.data)
    assert np.load(tmp_path / "one_x2.npy").shape == (80, 80)  # a 2-D NPY stays 2-D


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    src = tmp_path / "scan.h5"
    write_maps_v10(src)
    original = read_map(src)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "result.h5").write_bytes(b"previous result")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(maps_module, "write", broken)
    with pytest.raises(OSError):  # the writer as the sandboxed child runs it (here: in-process)
        write_result(original, fake_enhanced(original), out_dir / "result.h5", PROVENANCE,
                     sandboxed=True)
    assert [p.name for p in out_dir.iterdir()] == ["result.h5"]  # no temp file left
    assert (out_dir / "result.h5").read_bytes() == b"previous result"  # nothing half-written


def test_result_needs_the_original_file(tmp_path):
    src = tmp_path / "scan.h5"
    write_maps_v10(src)
    original = read_map(src)
    src.unlink()
    with pytest.raises(UserError, match="is gone"):
        write_result(original, fake_enhanced(original), tmp_path / "out.h5", PROVENANCE)
    assert list(tmp_path.iterdir()) == []


def test_result_never_overwrites_the_original(tmp_path):
    src = tmp_path / "scan.h5"
    write_maps_v10(src)
    original = read_map(src)
    with pytest.raises(UserError, match="overwrite the original"):
        write_result(original, fake_enhanced(original), src, PROVENANCE)
