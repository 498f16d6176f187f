"""APS MAPS / XRF-Maps HDF5: the v10 layout and the legacy v9 one.

Layout followed (AdvancedPhotonSource/XRF-Maps, src/io/file/hdf5_io.cpp at commit 0023868):
- HDF5_IO::save_element_fits: /MAPS/XRF_Analyzed/<Fitted|NNLS|ROI>/Counts_Per_Sec (channels, rows,
  cols), chunked (1, rows, cols) with deflate; Channel_Names and Channel_Units are H5T_C_S1 of
  256 bytes (NUL padded), channels in K, _L, _M order then pile-ups and extras.
- HDF5_IO::_save_scalers: /MAPS/Scalers/Values (n, rows, cols), Names/Units H5T_FORTRAN_S1 of 256
  bytes (space padded).
- HDF5_IO::_save_scan_meta_data: /MAPS/Scan/x_axis, y_axis (1-D there; (rows, cols) since
  XRF-Maps commit 4c5f121, so both are handled).
- HDF5_IO::add_v9_layout / _add_v9_scalers: v9 names /MAPS/XRF_fits (= Fitted), XRF_roi (= ROI),
  XRF_roi_plus (= NNLS), channel_names, channel_units (4, n), scalers, scaler_names, x_axis,
  y_axis (hard links to the v10 datasets); older MapsPy/IDL files spell scalers us_ic, ds_ic.
Spectra (/MAPS/Spectra/mca_arr, /MAPS/mca_arr) are never opened.

Enhanced maps go beside the originals:
- v10: /MAPS/XRF_Analyzed/<method>_Enhanced/{Counts_Per_Sec, Channel_Names, Channel_Units}
  and, when the result has them, the trust maps Uncertainty and Chi2 (E, H, W) in the same group
  and x_axis, y_axis: the enhanced grid's positions in the input's units (attribute units)
- v9:  /MAPS/<XRF_fits|XRF_roi|XRF_roi_plus>_Enhanced + <same>_channel_names
  (+ <same>_uncertainty, <same>_chi2, <same>_x_axis, <same>_y_axis)
with attributes pixel_size_nm (y, x), scale, provenance (JSON) and the enhancement's fields.
Trust maps are stacked in Channel_Names order; read back as extras "uncertainty:<El>", "chi2:<El>".
"""
from __future__ import annotations

import re
from pathlib import Path

import h5py

from enhancer import UserError
from enhancer.formats import hdf5, rules, trustmaps, units
from enhancer.xrfmap import XRFMap

V10_ORDER = ("NNLS", "Fitted", "ROI")
V9_ORDER = ("XRF_fits", "XRF_roi", "XRF_roi_plus")
# XRF_roi_plus before XRF_roi: aliases are matched by prefix (XRF_roi_plus_Enhanced...)
V9_TO_V10 = {"XRF_fits": "Fitted", "XRF_roi_plus": "NNLS", "XRF_roi": "ROI"}
ENHANCED = "_Enhanced"


def layout(f: h5py.File) -> str | None:
    maps = f.get("MAPS")
    if not isinstance(maps, h5py.Group):
        return None
    # XRF-Maps --add-v9layout keeps both: the v10 groups are the richer description
    if isinstance(maps.get("XRF_Analyzed"), h5py.Group):
        return "maps-v10"
    if any(isinstance(maps.get(n), h5py.Dataset) for n in V9_ORDER):
        return "maps-v9"
    raise UserError(f"{Path(f.filename).name} is a MAPS file with no maps: neither "
                    "/MAPS/XRF_Analyzed nor /MAPS/XRF_fits / XRF_roi")


def detector_of(path) -> str:
    """`.h5` is the average of all detectors; `.h50`.. `.h5N` hold detector N."""
    m = re.search(r"\.h5(\d+)$", str(path))
    return m.group(1) if m else "sum"


def v10_methods(f) -> list[str]:
    analyzed = f["MAPS/XRF_Analyzed"]
    return [k for k in analyzed if isinstance(analyzed.get(k), h5py.Group)
            and isinstance(analyzed[k].get("Counts_Per_Sec"), h5py.Dataset)]


def v9_methods(f) -> list[str]:
    return [k for k in f["MAPS"] if isinstance(f["MAPS"].get(k), h5py.Dataset)
            and (k in V9_ORDER or (k.endswith(ENHANCED) and k[: -len(ENHANCED)] in V9_ORDER))]


def _match(wanted: str, available: list[str]) -> str | None:
    return next((m for m in available if m.lower() == wanted.lower()), None)


def _choose(method, available: list[str], default_order, aliases: dict, name: str) -> str:
    if not available:
        raise UserError(f"{name} holds no maps to read")
    if method is None:
        for m in default_order:
            if m in available:
                return m
        return sorted(available)[0]
    wanted = str(method)
    for key, value in aliases.items():  # XRF_fits in a v10 file, Fitted_Enhanced in a v9 one
        if wanted.lower().startswith(key.lower()) and not _match(wanted, available):
            wanted = value + wanted[len(key):]
            break
    found = _match(wanted, available)
    if found:
        return found
    raise UserError(f"{name} has no {method!r} maps; it has: {', '.join(sorted(available))}")


def read(f: h5py.File, path, fmt: str, method=None) -> XRFMap:
    name = Path(path).name
    if fmt == "maps-v10":
        method = _choose(method, v10_methods(f), V10_ORDER, V9_TO_V10, name)
        group = f"/MAPS/XRF_Analyzed/{method}"
        maps_path, names_path, units_path = (f"{group}/Counts_Per_Sec", f"{group}/Channel_Names",
                                             f"{group}/Channel_Units")
        scalers_path, scaler_names_path = "/MAPS/Scalers/Values", "/MAPS/Scalers/Names"
        scaler_units_path = "/MAPS/Scalers/Units"
        x_path, y_path = "/MAPS/Scan/x_axis", "/MAPS/Scan/y_axis"
        fine_paths = (f"{group}/x_axis", f"{group}/y_axis")
        trust_paths = {k: f"{group}/{v}" for k, v in trustmaps.V10_NAMES.items()}
    else:
        method = _choose(method, v9_methods(f), V9_ORDER, {v: k for k, v in V9_TO_V10.items()}, name)
        maps_path = f"/MAPS/{method}"
        names_path = f"/MAPS/{method}_channel_names"
        if names_path not in f:
            names_path = "/MAPS/channel_names"
        units_path = "/MAPS/channel_units"
        scalers_path, scaler_names_path = "/MAPS/scalers", "/MAPS/scaler_names"
        scaler_units_path = "/MAPS/scaler_units"
        x_path, y_path = "/MAPS/x_axis", "/MAPS/y_axis"
        fine_paths = (f"/MAPS/{method}_x_axis", f"/MAPS/{method}_y_axis")
        trust_paths = {k: f"/MAPS/{method}_{k}" for k in trustmaps.KINDS}

    ds = hdf5.dataset(f, maps_path)
    where = f"{name}:{maps_path}"
    hdf5.check_maps(ds, where)  # shape, numbers, size: before anything else is read
    names = hdf5.read_names(hdf5.dataset(f, names_path), f"{name}:{names_path}")
    elements, element_idx, data, repairs, extras = hdf5.read_fit_maps(ds, names, where)
    # only results written here hold trust maps; an original's datasets are never taken for them
    if not method.endswith(ENHANCED):
        trust_paths = {}
    trust, trust_found = hdf5.read_trust_maps(f, trust_paths, ds, element_idx, elements, name)
    extras.update(trust)

    shape2d = ds.shape[1:]
    if method.endswith(ENHANCED) and all(isinstance(f.get(p), h5py.Dataset) for p in fine_paths):
        x_path, y_path = fine_paths  # the enhanced grid's own axes, written beside its maps
    unit_x, unit_y, step_from = units.maps_units(f, x_path, y_path, scaler_names_path, scaler_units_path)
    x_axis = units.to_um(_optional_array(f, x_path, name), unit_x)
    y_axis = units.to_um(_optional_array(f, y_path, name), unit_y)
    # enhanced maps are on a finer grid than the scan axes: their pixel size is an attribute
    pixel = hdf5.attr_pixel(ds) or (hdf5.attr_pixel(ds.parent) if fmt == "maps-v10" else None)
    note, step_source = None, "the pixel_size_nm attribute of the enhanced maps"
    if pixel is None:
        step_source = f"the motor axes in {unit_x} ({step_from})"
        pixel, note = units.plausible(rules.pixel_size_from_axes(x_axis, y_axis), step_source)
    scalers = _scalers(f, scalers_path, scaler_names_path, shape2d, name)
    datasets = {"maps": maps_path, "names": names_path, **trust_found}
    if scalers:
        datasets.update(scalers=scalers_path, scaler_names=scaler_names_path)
    if rules.axis_fits(x_axis, shape2d[1], shape2d, 1):
        datasets["x_axis"] = x_path
    else:
        x_axis = None
    if rules.axis_fits(y_axis, shape2d[0], shape2d, 0):
        datasets["y_axis"] = y_path
    else:
        y_axis = None
    methods = v10_methods(f) if fmt == "maps-v10" else v9_methods(f)
    return XRFMap(
        elements=elements, data=data, pixel_size_nm=pixel, x_axis_um=x_axis, y_axis_um=y_axis,
        scalers=scalers, extras=extras, units=_units(f, units_path, element_idx[0]),
        source_format=fmt,
        source={"path": str(path), "method": method, "datasets": datasets,
                "axes_units": [unit_x, unit_y], "axes_units_from": step_from, "pixel_size_note": note,
                "pixel_size_from": step_source,
                "elements": {names[i]: f"{maps_path}[{i}]" for i in element_idx},
                "methods": sorted(methods), "detector": detector_of(path)},
        provenance={"repairs": repairs} if repairs else {},
    )


def _optional_array(f, path, name):
    ds = f.get(path)
    if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "iuf" or ds.ndim not in (1, 2):
        return None
    return hdf5.read_array(ds, f"{name}:{path}")


def _units(f, path, index) -> str:
    ds = f.get(path)
    if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "SUO" or ds.nbytes > hdf5.SMALL_BYTES:
        return "cts/s"
    raw = ds[()]
    if getattr(raw, "ndim", 0) == 2:
        # XRF-Maps' v9 channel_units is (4, n): the units of the maps normalised by SR_current,
        # US_IC and DS_IC (ug/cm2 once quantified), then of the maps as stored (cts/s). Older MAPS
        # files hold only those three rows (3, n): none describes the stored maps, which are cts/s.
        if raw.shape[0] != 4:
            return "cts/s"
        raw = raw[3]
    names = rules.decode_names(raw)
    return names[index] if index < len(names) and names[index] else "cts/s"


def _scalers(f, values_path, names_path, shape2d, name) -> dict:
    values, names = f.get(values_path), f.get(names_path)
    if not isinstance(values, h5py.Dataset) or not isinstance(names, h5py.Dataset):
        return {}
    if values.ndim != 3 or tuple(values.shape[1:]) != tuple(shape2d):
        return {}  # incomplete scan or trimmed maps: scalers no longer line up
    labels = hdf5.read_names(names, f"{name}:{names_path}")
    planes = hdf5.read_planes(values, list(range(min(len(labels), values.shape[0]))),
                              f"{name}:{values_path}")
    return {label: plane for label, plane in zip(labels, planes) if label}


def write(f: h5py.File, original: XRFMap, enhanced: XRFMap, attrs: dict, trust=None) -> str:
    """Add the enhanced maps (and trust: {kind: (E, H, W)}) beside the originals in an open copy
    of the original file."""
    method = original.source.get("method") or ("Fitted" if original.source_format == "maps-v10"
                                               else "XRF_fits")
    target = method + ENHANCED
    if original.source_format == "maps-v10":
        analyzed = f.require_group("/MAPS/XRF_Analyzed")
        if target in analyzed:
            del analyzed[target]  # a second enhancement replaces the first, never the originals
        group = analyzed.create_group(target)
        hdf5.write_maps(group, "Counts_Per_Sec", enhanced.data)
        hdf5.write_names(group, "Channel_Names", enhanced.elements, width=256)
        hdf5.write_names(group, "Channel_Units", [enhanced.units or "cts/s"] * len(enhanced.elements),
                         width=256)
        hdf5.write_trust_maps(group, trustmaps.V10_NAMES, trust or {}, enhanced.units or "cts/s")
        hdf5.write_axes(group, ("x_axis", "y_axis"), enhanced, _axes_units(original))
        group.attrs.update(attrs)
        return f"/MAPS/XRF_Analyzed/{target}"
    maps = f["/MAPS"]
    for key in (target, target + "_channel_names"):
        if key in maps:
            del maps[key]
    ds = hdf5.write_maps(maps, target, enhanced.data)
    hdf5.write_names(maps, target + "_channel_names", enhanced.elements, width=256)
    hdf5.write_trust_maps(maps, {k: f"{target}_{k}" for k in trustmaps.KINDS}, trust or {},
                          enhanced.units or "cts/s")
    hdf5.write_axes(maps, (f"{target}_x_axis", f"{target}_y_axis"), enhanced, _axes_units(original))
    ds.attrs.update(attrs)
    return f"/MAPS/{target}"


def _axes_units(original: XRFMap) -> tuple[str, str]:
    found = original.source.get("axes_units") or ()
    return tuple(found) if len(found) == 2 else (units.ASSUMED, units.ASSUMED)
