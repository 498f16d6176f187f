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
                   two_d_axes=False, pixel_um=(0.1, 0.05), dtype="float32", spectra_shape=None):
    """A MAPS v10 file; returns {method: element maps (E, rows, cols)} as written."""
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
        maps.create_dataset("Scan/x_axis", data=x)
        maps.create_dataset("Scan/y_axis", data=y)
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


def write_maps_v9(path, elements=("Fe", "Zn", "Cu"), rows=10, cols=14, lowercase=True,
                  pixel_um=(0.2, 0.2)):
    """A legacy v9 file (MapsPy/IDL naming when lowercase); returns {"XRF_fits":..., "XRF_roi":...}."""
    scalers = ["SRcurrent", "us_ic", "ds_ic"] if lowercase else ["SR_Current", "US_IC", "DS_IC"]
    written = {"XRF_fits": element_maps(len(elements), rows, cols, seed=3),
               "XRF_roi": element_maps(len(elements), rows, cols, seed=4)}
    with h5py.File(path, "w") as f:
        maps = f.create_group("MAPS")
        maps.create_dataset("version", data=np.array([9.0], dtype=np.float32))
        for key, data in written.items():
            maps.create_dataset(key, data=data)
        maps.create_dataset("channel_names", data=c_names(elements))
        maps.create_dataset("channel_units", data=np.array([fortran_names(["ug/cm2"] * len(elements))] * 3
                                                           + [fortran_names(["cts/s"] * len(elements))]))
        maps.create_dataset("scalers", data=scaler_values(len(scalers), rows, cols))
        maps.create_dataset("scaler_names", data=fortran_names(scalers))
        x, y = axes_um(rows, cols, pixel_um)
        maps.create_dataset("x_axis", data=x)
        maps.create_dataset("y_axis", data=y)
        maps.create_dataset("mca_arr", data=np.ones((16, rows, cols), dtype=np.float32))
    return written


PYXRF_EXTRAS = ["compton", "elastic", "snip_bkg", "r_factor", "sel_cnt", "total_cnt"]
PYXRF_SCALERS = ["i0", "i0_time", "time"]


def write_pyxrf(path, elements=("Fe_K", "Zn_K", "Au_M"), rows=10, cols=12, pixel_um=(0.3, 0.15)):
    """A PyXRF file; returns {"xrf_fit": maps, "xrf_roi": maps, "scalers": (rows, cols, P)}."""
    fit = element_maps(len(elements), rows, cols, seed=5)
    roi = element_maps(len(elements), rows, cols, seed=6)
    extras = element_maps(len(PYXRF_EXTRAS), rows, cols, seed=7)
    rng = np.random.default_rng(8)
    scalers = rng.uniform(1, 2, (rows, cols, len(PYXRF_SCALERS))).astype(np.float32)
    with h5py.File(path, "w") as f:
        det = f.create_group("xrfmap/detsum")
        det.create_dataset("counts", data=np.ones((rows, cols, 64), dtype=np.float32), compression="gzip")
        det.create_dataset("xrf_fit", data=np.concatenate([fit, extras]))
        det.create_dataset("xrf_fit_name", data=np.array([n.encode() for n in list(elements) + PYXRF_EXTRAS],
                                                         dtype="S20"))
        det.create_dataset("xrf_roi", data=roi)
        det.create_dataset("xrf_roi_name", data=np.array([n.encode() for n in elements], dtype="S20"))
        f.create_group("xrfmap/det1").create_dataset("counts", data=np.ones((rows, cols, 64), np.float32))
        x, y = axes_um(rows, cols, pixel_um)
        yy, xx = np.meshgrid(y, x, indexing="ij")
        pos = f.create_group("xrfmap/positions")
        pos.create_dataset("name", data=np.array([b"x_pos", b"y_pos"]))
        pos.create_dataset("pos", data=np.stack([xx, yy]))
        sc = f.create_group("xrfmap/scalers")
        sc.create_dataset("name", data=np.array([n.encode() for n in PYXRF_SCALERS]))
        sc.create_dataset("val", data=scalers)
        md = f.create_group("xrfmap/scan_metadata")
        md.attrs["file_format"] = "NSLS2-XRF-MAP"
        md.attrs["file_format_version"] = "1.0"
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
                value = obj[()]
                out[name] = hashlib.sha256(
                    str((value.dtype, value.shape)).encode() + np.ascontiguousarray(value).tobytes()
                ).hexdigest()
        f.visititems(visit)
    return out
