"""NSLS-II PyXRF HDF5 ("NSLS2-XRF-MAP").

Layout followed (NSLS-II/PyXRF):
- pyxrf/model/load_data_from_db.py, write_db_to_hdf: spectra in xrfmap/det<N>/counts and
  xrfmap/detsum/counts (rows, cols, points; never opened here); xrfmap/positions/name + pos of
  shape (2, rows, cols) with names renamed to x_pos / y_pos; xrfmap/scalers/name + val of shape
  (rows, cols, P), the scaler axis LAST.
- pyxrf/model/fileio.py, the fit-saving helper: xrfmap/<det>/xrf_fit (n, rows, cols) with
  xrf_fit_name beside it (byte strings); xrf_roi / xrf_roi_name the same way.
Fit channels that are not elements (snip_bkg, r_factor, sel_cnt, total_cnt, compton, elastic)
are kept apart as extras. Positions are motor units, usually um.

Enhanced maps go beside the originals: xrfmap/<det>/<xrf_fit|xrf_roi>_enhanced + ..._enhanced_name
(+ ..._enhanced_positions (2, H, W): the enhanced grid's x, y in the input's units),
with attributes pixel_size_nm (y, x), scale, provenance (JSON) and the enhancement's fields, and
the trust maps, when the result has them: ..._enhanced_uncertainty, ..._enhanced_chi2 (E, H, W)
in ..._enhanced_name order, read back as extras "uncertainty:<El>", "chi2:<El>".
"""
from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np

from enhancer import UserError
from enhancer.formats import hdf5, rules, trustmaps, units
from enhancer.xrfmap import XRFMap

ORDER = ("xrf_fit", "xrf_roi")
ALIASES = {"fitted": "xrf_fit", "roi": "xrf_roi"}
ENHANCED = "_enhanced"


def is_pyxrf(f: h5py.File) -> bool:
    return isinstance(f.get("xrfmap"), h5py.Group)


def _detector(f) -> h5py.Group:
    root = f["xrfmap"]
    dets = [k for k in root if k == "detsum" or re.fullmatch(r"det\d+", k)]
    dets.sort(key=lambda k: (k != "detsum", k))  # the sum of all channels first
    for key in dets:
        group = root.get(key)
        if isinstance(group, h5py.Group) and _methods(group):
            return group
    raise UserError(f"{Path(f.filename).name} is a PyXRF file with no fitted or ROI maps "
                    "(no xrfmap/detsum/xrf_fit); fit it in PyXRF first")


def _methods(group) -> list[str]:
    return [k for k in group if isinstance(group.get(k), h5py.Dataset) and k + "_name" in group
            and (k in ORDER or k[: -len(ENHANCED)] in ORDER)]


def _choose(method, available, name) -> str:
    if method is None:
        return next((m for m in ORDER if m in available), sorted(available)[0])
    wanted = str(method).lower()
    for key, value in ALIASES.items():  # "Fitted_Enhanced" -> "xrf_fit_enhanced"
        if wanted.startswith(key):
            wanted = value + wanted[len(key):]
    if wanted in available:
        return wanted
    raise UserError(f"{name} has no {method!r} maps; it has: {', '.join(sorted(available))}")


def read(f: h5py.File, path, method=None) -> XRFMap:
    name = Path(path).name
    det = _detector(f)
    available = _methods(det)
    method = _choose(method, available, name)
    maps_path, names_path = f"{det.name}/{method}", f"{det.name}/{method}_name"
    where = f"{name}:{maps_path}"
    ds = det[method]
    hdf5.check_maps(ds, where)  # shape, numbers, size: before anything else is read
    names = hdf5.read_names(det[method + "_name"], f"{name}:{names_path}")
    elements, element_idx, data, repairs, extras = hdf5.read_fit_maps(ds, names, where)
    # only results written here hold trust maps; an original's datasets are never taken for them
    trust_paths = {k: f"{maps_path}_{k}" for k in trustmaps.KINDS} if method.endswith(ENHANCED) else {}
    trust, trust_found = hdf5.read_trust_maps(f, trust_paths, ds, element_idx, elements, name)
    extras.update(trust)

    shape2d = tuple(ds.shape[1:])
    pos_path = f"{maps_path}_positions" if method.endswith(ENHANCED) else None
    if pos_path is None or not isinstance(f.get(pos_path), h5py.Dataset):
        pos_path = "xrfmap/positions/pos"  # the enhanced grid's own, when written beside its maps
    unit_x, unit_y, step_from = units.pyxrf_units(f)
    stated = units.attr_unit(f.get(pos_path))  # fine positions written here say their unit
    if stated:
        unit_x, unit_y, step_from = stated, stated, f"{pos_path} units attribute"
    x_axis, y_axis = _positions(f, pos_path, name)
    x_axis, y_axis = units.to_um(x_axis, unit_x), units.to_um(y_axis, unit_y)
    pixel, note, step_source = hdf5.attr_pixel(ds), None, "the pixel_size_nm attribute of the enhanced maps"
    if pixel is None:
        step_source = f"the positions in {unit_x} ({step_from})"
        pixel, note = units.plausible(rules.pixel_size_from_axes(x_axis, y_axis), step_source)
    scalers = _scalers(f, shape2d, name)
    datasets = {"maps": maps_path, "names": names_path, **trust_found}
    if x_axis is not None and rules.axis_fits(x_axis, shape2d[1], shape2d, 1):
        datasets.update(x_axis=f"/{pos_path.lstrip('/')}[x_pos]", y_axis=f"/{pos_path.lstrip('/')}[y_pos]")
    else:
        x_axis = y_axis = None  # incomplete scans (PyXRF #184, #334): maps without positions
    if scalers:
        datasets.update(scalers="/xrfmap/scalers/val", scaler_names="/xrfmap/scalers/name")
    return XRFMap(
        elements=elements, data=data, pixel_size_nm=pixel, x_axis_um=x_axis, y_axis_um=y_axis,
        scalers=scalers, extras=extras, units="counts", source_format="pyxrf",
        source={"path": str(path), "method": method, "datasets": datasets,
                "axes_units": [unit_x, unit_y], "axes_units_from": step_from, "pixel_size_note": note,
                "pixel_size_from": step_source,
                "elements": {names[i]: f"{maps_path}[{i}]" for i in element_idx},
                "methods": sorted(available), "detector": det.name.rsplit("/", 1)[-1]},
        provenance={"repairs": repairs} if repairs else {},
    )


def _positions(f, pos_path, name):
    pos = f.get(pos_path)
    labels = f.get(pos_path[: -len("/pos")] + "/name") if pos_path.endswith("/pos") else None
    if not isinstance(pos, h5py.Dataset) or pos.ndim != 3 or pos.shape[0] < 2:
        return None, None
    if pos.dtype.kind not in "iuf":
        return None, None
    order = [0, 1]
    if isinstance(labels, h5py.Dataset):
        names = hdf5.read_names(labels, f"{name}:/xrfmap/positions/name")
        if "x_pos" in names and "y_pos" in names:
            order = [names.index("x_pos"), names.index("y_pos")]
    # float64: stage positions near 1000 um lose the step's precision in float32
    planes = hdf5.read_array(pos, f"{name}:{pos_path}")
    return planes[order[0]], planes[order[1]]


def _scalers(f, shape2d, name) -> dict:
    val, labels = f.get("xrfmap/scalers/val"), f.get("xrfmap/scalers/name")
    if not isinstance(val, h5py.Dataset) or not isinstance(labels, h5py.Dataset):
        return {}
    if val.ndim != 3 or tuple(val.shape[:2]) != shape2d:
        return {}
    what = f"{name}:/xrfmap/scalers/val"
    rules.check_numeric(val.dtype, what)
    rules.check_declared_size(val.shape, val.dtype, what, val.id.get_storage_size())
    names = hdf5.read_names(labels, f"{name}:/xrfmap/scalers/name")
    out = {}
    for k, label in enumerate(names[: val.shape[2]]):
        plane = np.empty(shape2d, dtype=np.float32)
        val.read_direct(plane, source_sel=np.s_[:, :, k])  # scaler axis last, unlike MAPS
        out[label] = plane
    return out


def write(f: h5py.File, original: XRFMap, enhanced: XRFMap, attrs: dict, trust=None) -> str:
    method = original.source.get("method") or "xrf_fit"
    target = method + ENHANCED
    det = f["xrfmap"][original.source.get("detector", "detsum")]
    for key in (target, target + "_name"):
        if key in det:
            del det[key]  # a second enhancement replaces the first, never the originals
    ds = hdf5.write_maps(det, target, enhanced.data)
    hdf5.write_names(det, target + "_name", enhanced.elements)
    hdf5.write_trust_maps(det, {k: f"{target}_{k}" for k in trustmaps.KINDS}, trust or {},
                          enhanced.units or "counts")
    _write_positions(det, f"{target}_positions", enhanced, original.source.get("axes_units"))
    ds.attrs.update(attrs)
    return ds.name


def _write_positions(det, name, enhanced: XRFMap, axes_units) -> None:
    """The enhanced grid's positions (2, H, W), x then y, as PyXRF's positions/pos, in the input's
    units (attribute units)."""
    if name in det:
        del det[name]
    if enhanced.x_axis_um is None or enhanced.y_axis_um is None:
        return
    unit = (axes_units or [units.ASSUMED])[0]
    h, w = enhanced.shape[1:]
    x, y = (np.asarray(a, np.float64) for a in (enhanced.x_axis_um, enhanced.y_axis_um))
    x = x if x.ndim == 2 else np.broadcast_to(x[None, :], (h, w))
    y = y if y.ndim == 2 else np.broadcast_to(y[:, None], (h, w))
    det.create_dataset(name, data=units.from_um(np.stack([x, y]), unit)).attrs["units"] = unit
