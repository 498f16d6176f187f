"""Builders of small beamline files, following the layouts their own software writes.

MAPS v10 / v9: AdvancedPhotonSource/XRF-Maps src/io/file/hdf5_io.cpp (commit 0023868):
  HDF5_IO::save_element_fits   -> /MAPS/XRF_Analyzed/<method>/Counts_Per_Sec (chunks (1, rows, cols),
                                  deflate), Channel_Names / Channel_Units as 256-byte C strings
                                  (NUL padded), order K, _L, _M, then extras (Num_Iter...)
  HDF5_IO::_save_scalers       -> /MAPS/Scalers/Values (n, rows, cols), Names/Units 256-byte
                                  Fortran strings (space padded)
  HDF5_IO::_save_scan_meta_data-> /MAPS/Scan/x_axis, y_axis (1-D; 2-D (rows, cols) since 4c5f121)
  HDF5_IO::add_v9_layout, _add_v9_scalers -> /MAPS/XRF_fits, XRF_roi, XRF_roi_plus, channel_names,
                                  channel_units (4, n), scalers, scaler_names, x_axis, y_axis
  "HDF5_SAVE_VERSION 10.0" -> /MAPS/version
PyXRF: NSLS-II/PyXRF pyxrf/model/load_data_from_db.py, write_db_to_hdf:
  xrfmap/det<N>/counts and xrfmap/detsum/counts (rows, cols, 4096) gzip, xrfmap/positions/name
  (x_pos, y_pos) + pos (2, rows, cols), xrfmap/scalers/name + val (rows, cols, P), scaler axis last;
  and the fit-saving helper of pyxrf/model/fileio.py: xrfmap/detsum/xrf_fit + xrf_fit_name.
The maps are made here (smooth blobs, one per element), so tests compare against known arrays.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import h5py
import numpy as np
import tifffile

HXN_SET = Path(__file__).resolve().parents[1] / "demo" / "hxn-fe-aggregate"  # the real HXN maps
HXN_ELEMENTS = ["Cr_K", "P_K", "S_K", "Si_K"]


def element_maps(count: int, rows: int = 12, cols: int = 16, seed: int = 0) -> np.ndarray:
    """(count, rows, cols) float32: a blob per element at a different place, plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols]
    out = np.empty((count, rows, cols), dtype=np.float32)
    for i in range(count):
        cy, cx = rng.uniform(2, rows - 2), rng.uniform(2, cols - 2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8)
        out[i] = 100 * (i + 1) * blob + rng.uniform(0, 5, (rows, cols))
    return out


def fortran_names(names) -> np.ndarray:
    return np.array([n.ljust(256).encode() for n in names], dtype="S256")


def c_names(names) -> np.ndarray:
    return np.array([n.encode() for n in names], dtype="S256")  # numpy pads with NULs


def axes_um(rows, cols, pixel_um=(0.1, 0.05), two_d=False, seed=1):
    """Motor positions in um; 2-D ones carry encoder jitter like real fly scans."""
    y = 1000.0 + np.arange(rows) * pixel_um[0]
    x = -250.0 + np.arange(cols) * pixel_um[1]
    if not two_d:
        return x, y
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(y, x, indexing="ij")
    return xx + rng.normal(0, pixel_um[1] * 0.02, xx.shape), yy + rng.normal(0, pixel_um[0] * 0.02, yy.shape)


SCALERS = ["SR_Current", "US_IC", "DS_IC", "abs_ic"]
EXTRAS = ["Num_Iter", "Fit_Residual", "Total_Fluorescence_Yield", "Sum_Elastic_Inelastic"]


def scaler_values(count, rows, cols, seed=2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(1e4, 2e4, (count, rows, cols)).astype(np.float32)


def write_maps_v10(path, elements=("Fe", "Zn", "Ca_K", "Pt_L"), rows=12, cols=16, methods=("Fitted",),
                   two_d_axes=False, pixel_um=(0.1, 0.05), dtype="float32", spectra_shape=None,
                   motor_unit="um"):
    """A MAPS v10 file; returns {method: element maps (E, rows, cols)} as written. The axes are
    stored in motor_unit (XRF-Maps copies the motors' positions as they are)."""
    path = Path(path)
    written = {}
    with h5py.File(path, "w") as f:
        maps = f.create_group("MAPS")
        maps.create_dataset("version", data=np.array([10.0], dtype=np.float32))
        for k, method in enumerate(methods):
            data = element_maps(len(elements), rows, cols, seed=k)
            extras = element_maps(len(EXTRAS), rows, cols, seed=10 + k)
            group = maps.create_group(f"XRF_Analyzed/{method}")
            group.create_dataset("Counts_Per_Sec", data=np.concatenate([data, extras]).astype(dtype),
                                 chunks=(1, rows, cols), compression="gzip", compression_opts=7)
            names = list(elements) + EXTRAS
            group.create_dataset("Channel_Names", data=c_names(names))
            units = ["cts/s"] * len(elements) + [""] + ["cts/s"] * 3  # Num_Iter has no unit
            group.create_dataset("Channel_Units", data=c_names(units))
            written[method] = data
        maps.create_dataset("Scalers/Values", data=scaler_values(len(SCALERS), rows, cols))
        maps.create_dataset("Scalers/Names", data=fortran_names(SCALERS))
        maps.create_dataset("Scalers/Units", data=fortran_names(["mA", "cts/s", "cts/s", "cts/s"]))
        x, y = axes_um(rows, cols, pixel_um, two_d_axes)
        maps.create_dataset("Scan/x_axis", data=x * 1e-3 / MM_PER[motor_unit])
        maps.create_dataset("Scan/y_axis", data=y * 1e-3 / MM_PER[motor_unit])
        maps.create_dataset("Scan/requested_rows", data=np.array([rows], dtype=np.int32))
        maps.create_dataset("Scan/requested_cols", data=np.array([cols], dtype=np.int32))
        maps.create_dataset("Scan/scan_time_stamp", data=fortran_names(["2026-01-01 10:00:00"]))
        # spectra: never to be read to show maps; a huge declared shape proves it (no storage)
        if spectra_shape is None:
            maps.create_dataset("Spectra/mca_arr", data=np.ones((32, rows, cols), dtype=np.float32))
        else:
            maps.create_dataset("Spectra/mca_arr", shape=spectra_shape, dtype=np.float32,
                                chunks=(spectra_shape[0], 1, 1))
    return written


def garbage_c_names(names, seed=0) -> np.ndarray:
    """256-byte C strings as XRF-Maps' add_v9_layout writes /MAPS/channel_units: H5Dwrite copies 256
    bytes from a std::string holding "cts/s" (hdf5_io.cpp, the "Channel Units are a 4 x channels"
    block), so the NUL after the text is followed by whatever memory came next."""
    rng = np.random.default_rng(seed)
    return np.array([n.encode() + b"\x00" + rng.integers(1, 256, 255 - len(n), dtype=np.uint8).tobytes()
                     for n in names], dtype="S256")


MM_PER = {"um": 1e-3, "mm": 1.0, "nm": 1e-6}


def write_maps_v9(path, elements=("Fe", "Zn", "Cu"), rows=10, cols=14, lowercase=True,
                  pixel_um=(0.2, 0.2), units_rows=4, motor_unit="um", extra_pvs=None,
                  coord_scalers_unit=None):
    """A legacy v9 file (MapsPy/IDL naming when lowercase); returns {"XRF_fits":..., "XRF_roi":...}.

    units_rows: 4 = XRF-Maps' channel_units (three normalisations in ug/cm2, then cts/s, with
    uninitialised bytes after each NUL); 3 = older MAPS files (the three quantified units only).
    motor_unit: the unit the axes are stored in (2-ID-E motors are in mm). extra_pvs: (name,
    value, description, unit) rows written as /MAPS/extra_pvs (4, n), as _add_extra_pvs does.
    coord_scalers_unit: add x_coord / y_coord scalers with this unit in /MAPS/scaler_units.
    """
    scalers = ["SRcurrent", "us_ic", "ds_ic"] if lowercase else ["SR_Current", "US_IC", "DS_IC"]
    scaler_units = ["mA", "cts/s", "cts/s"]
    if coord_scalers_unit:
        scalers, scaler_units = scalers + ["x_coord", "y_coord"], scaler_units + [coord_scalers_unit] * 2
    written = {"XRF_fits": element_maps(len(elements), rows, cols, seed=3),
               "XRF_roi": element_maps(len(elements), rows, cols, seed=4)}
    with h5py.File(path, "w") as f:
        maps = f.create_group("MAPS")
        maps.create_dataset("version", data=np.array([9.0], dtype=np.float32))
        for key, data in written.items():
            maps.create_dataset(key, data=data)
        maps.create_dataset("channel_names", data=c_names(elements))
        quant = [fortran_names(["ug/cm^2" if units_rows == 3 else "ug/cm2"] * len(elements))] * 3
        if units_rows == 4:
            quant = [garbage_c_names(["ug/cm2"] * len(elements), seed=k) for k in range(3)]
            quant.append(garbage_c_names(["cts/s"] * len(elements), seed=3))
        maps.create_dataset("channel_units", data=np.array(quant))
        maps.create_dataset("scalers", data=scaler_values(len(scalers), rows, cols))
        maps.create_dataset("scaler_names", data=fortran_names(scalers))
        maps.create_dataset("scaler_units", data=fortran_names(scaler_units))
        x, y = axes_um(rows, cols, pixel_um)
        maps.create_dataset("x_axis", data=x * 1e-3 / MM_PER[motor_unit])
        maps.create_dataset("y_axis", data=y * 1e-3 / MM_PER[motor_unit])
        if extra_pvs:
            table = [[str(row[k]) for row in extra_pvs] for k in range(4)]
            maps.create_dataset("extra_pvs", data=np.array([fortran_names(r) for r in table]))
            maps.create_dataset("extra_pvs_as_csv", data=fortran_names([f"{r[0]},{r[1]}" for r in extra_pvs]))
        maps.create_dataset("mca_arr", data=np.ones((16, rows, cols), dtype=np.float32))
    return written


def aps_2ide_pvs(step_mm=0.010, stated=("egu", "p1si")) -> list[tuple]:
    """Extra PVs of a 2-ID-E scan (mda -> MAPS): sample stage m24 (x) and m25 (y) in mm.
    stated picks which of them say the unit: "egu" (the motors' EGU fields and the scan's
    P1PV links to them), "p1si" (the unit column beside the scan's step), "p1eu" (the scan
    record's own positioner unit)."""
    rows = [("S:SRcurrentAI.VAL", "102.1", "ring current", "mA"),
            ("2xfm:m7.VAL", "1.25", "slit top", "mm"),  # a motor in mm that is not the stage
            ("2xfm:userStringCalc2.SA", "Lee cell 3", "sample", "")]
    for scan, motor, step in (("scan1", "2xfm:m24", step_mm), ("scan2", "2xfm:m25", step_mm)):
        if "egu" in stated:
            rows += [(f"2xfm:{scan}.P1PV", f"{motor}.VAL", "positioner", ""),
                     (f"{motor}.EGU", "mm", "engineering units", "")]
        rows.append((f"2xfm:{scan}.P1SI", f"{step:.3f}", "step increment", "mm" if "p1si" in stated else ""))
        if "p1eu" in stated:
            rows.append((f"2xfm:{scan}.P1EU", "mm", "positioner units", ""))
        rows.append((f"{motor}.VAL", "12.5", "sample stage", ""))
    return rows


def write_extra_pvs_v10(path, rows) -> None:
    """/MAPS/Scan/Extra_PVs/{Names, Values, Description, Unit}: 255-byte Fortran strings, as
    HDF5_IO::_save_extras writes them."""
    with h5py.File(path, "r+") as f:
        group = f.require_group("MAPS/Scan/Extra_PVs")
        for key, k in (("Names", 0), ("Values", 1), ("Description", 2), ("Unit", 3)):
            group.create_dataset(key, data=np.array([str(r[k]).ljust(255).encode() for r in rows],
                                                    dtype="S255"))


PYXRF_EXTRAS = ["compton", "elastic", "snip_bkg", "r_factor", "sel_cnt", "total_cnt"]
PYXRF_SCALERS = ["i0", "i0_time", "time"]
PYXRF_VERSION = "1.0.29"


def write_pyxrf(path, elements=("Fe_K", "Zn_K", "Au_M"), rows=10, cols=12, pixel_um=(0.3, 0.15),
                axes_units=None, detectors=2, spectrum_len=64):
    """A PyXRF file, written field by field as PyXRF itself writes one.

    Followed: NSLS-II/PyXRF v1.0.29 (+11 commits, b0fd12a, 2024-10-21):
    - pyxrf/model/load_data_from_db.py, save_data_to_hdf5 (lines 3829-4048): the group
      xrfmap/scan_metadata with attributes file_type "XRF-MAP", file_format "NSLS2-XRF-MAP",
      file_format_version "1.0", file_created_time, file_software "PyXRF", file_software_version
      (lines 3938-3962), plus the scan's metadata (scan_id, scan_uid, scan_instrument_id...,
      _extract_metadata_from_header, lines 541-582, with param_fast_axis / param_slow_axis and,
      where the start document has them, param_fast_axis_units / param_slow_axis_units);
      xrfmap/det<N>/counts and xrfmap/detsum/counts (rows, cols, spectrum) float32, gzip, with
      attribute comments "Experimental data from det<N>" / "... from channel sum" (3990-4016);
      xrfmap/positions/name (helper_encode_list: byte strings "x_pos", "y_pos") and pos
      (2, rows, cols) float64 (4018-4024); xrfmap/scalers/name and val (rows, cols, P) (4026-4032).
      PyXRF pads spectra to 4096 points (write_db_to_hdf, line 3447); spectrum_len is kept small
      here, since the maps reader never opens them.
    - pyxrf/model/fileio.py, save_fitdata_to_hdf (lines 2083-2133): xrfmap/detsum/xrf_fit
      (n, rows, cols) from np.asarray of the fitted maps (float64), attribute comments " ";
      xrf_fit_name as "|S20", attribute comments " "; ROI results the same way as xrf_roi /
      xrf_roi_name (pyxrf/model/roi_model.py, lines 355-360).
    Positions carry no unit attribute in PyXRF files: they are the motors' units (um at HXN);
    axes_units, when given, is stored as the start document's param_*_axis_units.
    Returns {"xrf_fit": maps, "xrf_roi": maps, "scalers": (rows, cols, P)}.
    """
    fit = element_maps(len(elements), rows, cols, seed=5)
    roi = element_maps(len(elements), rows, cols, seed=6)
    extras = element_maps(len(PYXRF_EXTRAS), rows, cols, seed=7)
    rng = np.random.default_rng(8)
    scalers = rng.uniform(1, 2, (rows, cols, len(PYXRF_SCALERS))).astype(np.float32)
    with h5py.File(path, "w") as f:
        md = f.create_group("xrfmap/scan_metadata")
        meta = {"scan_id": 1234, "scan_uid": "3f2a-c0ffee", "scan_instrument_id": "HXN",
                "param_fast_axis": "zpssx", "param_slow_axis": "zpssy",
                "file_type": "XRF-MAP", "file_format": "NSLS2-XRF-MAP", "file_format_version": "1.0",
                "file_created_time": "2024-10-21T12:00:00+00:00", "file_software": "PyXRF",
                "file_software_version": PYXRF_VERSION}
        if axes_units:
            meta.update(param_fast_axis_units=axes_units, param_slow_axis_units=axes_units)
        for key, value in meta.items():
            md.attrs[key] = value
        total = np.zeros((rows, cols, spectrum_len), dtype=np.float32)
        for n in range(1, detectors + 1):
            counts = np.full((rows, cols, spectrum_len), n, dtype=np.float32)
            total += counts
            ds = f.create_group(f"xrfmap/det{n}").create_dataset("counts", data=counts, compression="gzip")
            ds.attrs["comments"] = f"Experimental data from det{n}"
        det = f.create_group("xrfmap/detsum")
        det.create_dataset("counts", data=total, compression="gzip").attrs["comments"] = \
            "Experimental data from channel sum"
        x, y = axes_um(rows, cols, pixel_um)
        yy, xx = np.meshgrid(y, x, indexing="ij")
        pos = f.create_group("xrfmap/positions")
        pos.create_dataset("name", data=[b"x_pos", b"y_pos"])
        pos.create_dataset("pos", data=np.stack([xx, yy]).astype(np.float64))
        sc = f.create_group("xrfmap/scalers")
        sc.create_dataset("name", data=[n.encode() for n in PYXRF_SCALERS])
        sc.create_dataset("val", data=scalers)
        for key, maps, names in (("xrf_fit", np.concatenate([fit, extras]), list(elements) + PYXRF_EXTRAS),
                                 ("xrf_roi", roi, list(elements))):
            det.create_dataset(key, data=np.asarray(maps, dtype=np.float64)).attrs["comments"] = " "
            det.create_dataset(key + "_name", data=np.array(names).astype("|S20")).attrs["comments"] = " "
    return {"xrf_fit": fit, "xrf_roi": roi, "scalers": scalers}


def hxn_arrays() -> np.ndarray:
    return np.stack([tifffile.imread(HXN_SET / f"SUM_maps_XRF_{e}.tiff") for e in HXN_ELEMENTS])


def write_hxn_zip(path, folder_inside="maps") -> None:
    """The real HXN set zipped the way people zip folders (a folder inside, a README beside)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for e in HXN_ELEMENTS:
            zf.write(HXN_SET / f"SUM_maps_XRF_{e}.tiff", f"{folder_inside}/SUM_maps_XRF_{e}.tiff")
        zf.writestr(f"{folder_inside}/README.txt", "HXN maps\n")


def tiff_file_bytes(array) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.asarray(array, dtype=np.float32))
    return buf.getvalue()


def file_digest(path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dataset_digests(path) -> dict[str, str]:
    """sha256 of every dataset's bytes (and dtype/shape) in an HDF5 file, by path."""
    import hashlib

    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.id.get_storage_size() > 0:
                value = np.asarray(obj[()])
                # variable-length strings (PyXRF's names) read as objects: hash their bytes
                raw = (b"\0".join(v if isinstance(v, bytes) else str(v).encode() for v in value.ravel())
                       if value.dtype == object else np.ascontiguousarray(value).tobytes())
                out[name] = hashlib.sha256(str((value.dtype, value.shape)).encode() + raw).hexdigest()
        f.visititems(visit)
    return out


def write_corpus(folder) -> dict:
    """Files in the layouts other facilities' software writes, as this project met them; returns
    {file name: what `info` must say (format, elements, pixel_size_nm or None)}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    v9_elements, v10_elements = ["Fe", "Zn", "Cu"], ["Fe", "Zn", "Ca_K", "Pt_L"]
    # APS 2-ID-E, MAPS v9 via mda: motors in mm, said by the Extra PVs; 10 um steps
    write_maps_v9(folder / "2xfm_0042.mda.h5", pixel_um=(10.0, 10.0), motor_unit="mm",
                  extra_pvs=aps_2ide_pvs(0.010))
    # the same scan's detector 0, from an older MAPS: channel_units (3, n), x_coord/y_coord in mm
    write_maps_v9(folder / "2xfm_0042.mda.h50", pixel_um=(10.0, 10.0), motor_unit="mm", units_rows=3,
                  coord_scalers_unit="mm")
    # an XRF-Maps v9 layout (uninitialised bytes after the units) under a name no reader knows
    write_maps_v9(folder / "2xfm_0043.h5t", pixel_um=(0.5, 0.5), units_rows=4)
    # the Bionanoprobe, XRF-Maps v10: 2-D fly-scan axes in mm, said by /MAPS/Scan/Extra_PVs
    write_maps_v10(folder / "bnp_fly0100.mda.h5", two_d_axes=True, pixel_um=(0.1, 0.1), motor_unit="mm")
    write_extra_pvs_v10(folder / "bnp_fly0100.mda.h5", aps_2ide_pvs(0.0001, ("egu",)))
    # NSLS-II PyXRF, positions in um as its start document says
    write_pyxrf(folder / "scan2D_5678.h5", pixel_um=(0.3, 0.15), axes_units="um")
    # NSLS-II ImageJ stack (Fiji: unit "micron", resolution in pixels per micron, slice labels)
    data = element_maps(2, rows=12, cols=12)
    tifffile.imwrite(folder / "hxn_stack.tif", data, imagej=True, resolution=(1 / 0.04, 1 / 0.04),
                     metadata={"unit": "micron", "axes": "ZYX", "Labels": ["Fe_K", "Zn_K"]})
    # a PyXRF TIFF export: one file per element, no step stated anywhere
    (folder / "pyxrf_tiffs").mkdir(exist_ok=True)
    for k, el in enumerate(("Fe_K", "Zn_K")):
        tifffile.imwrite(folder / "pyxrf_tiffs" / f"SUM_maps_XRF_{el}.tiff", data[k])
    return {
        "2xfm_0042.mda.h5": ("maps-v9", v9_elements, 10_000.0),
        "2xfm_0042.mda.h50": ("maps-v9", v9_elements, 10_000.0),
        "2xfm_0043.h5t": ("maps-v9", v9_elements, 500.0),
        "bnp_fly0100.mda.h5": ("maps-v10", v10_elements, 100.0),
        "scan2D_5678.h5": ("pyxrf", ["Fe_K", "Zn_K", "Au_M"], [300.0, 150.0]),
        "hxn_stack.tif": ("tiff", ["Fe_K", "Zn_K"], 40.0),
        "pyxrf_tiffs": ("tiff-set", ["Fe_K", "Zn_K"], None),
    }
