"""Files from other facilities (issue 20): motor units, v9 units, the step never guessed.

The files are built by tests/formats_fixtures.py in the layouts the facilities' software writes
(2-ID-E MAPS v9 with motors in mm, XRF-Maps v10 Extra_PVs, PyXRF's own writer).
"""
import json

import h5py
import numpy as np
import pytest
from formats_fixtures import aps_2ide_pvs, write_extra_pvs_v10, write_maps_v9, write_maps_v10, write_pyxrf

from enhancer import cli
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

