"""NumPy files: NPY (one array, (rows, cols) or (elements, rows, cols)) and NPZ.

Never unpickled (allow_pickle=False): an object array is refused by its header, before loading.
NPZ: either the layout written here (maps, elements, pixel_size_nm, provenance) or one 2-D
array per element, the member name being the element.
An NPY carries no names or pixel size; write_result puts them in a sidecar `<file>.json`
(read back when present) so that NPY in -> NPY out keeps provenance.
Trust maps of an NPY or multi-page TIFF result: `<out>.uncertainty.npy`, `<out>.chi2.npy`
(out.npy -> out.uncertainty.npy), in the main array's shape, read back when the result's
metadata lists them ("trust_maps"); an NPZ result holds them as arrays `uncertainty`, `chi2`.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from enhancer import UserError
from enhancer.formats import rules, trustmaps
from enhancer.xrfmap import XRFMap

NPY_MAGIC = b"\x93NUMPY"


def _header(fh, what: str, numeric: bool = True):
    """(shape, dtype) from an NPY header, checked before any data is read."""
    try:
        version = np.lib.format.read_magic(fh)
        read = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read is None:
            raise ValueError(f"NPY format version {version} is not supported")
        shape, _, dtype = read(fh, max_header_size=10000)
    except Exception as exc:  # numpy raises ValueError / SyntaxError for a bad header
        raise UserError(f"{what} is not a valid NPY array: {str(exc)[:200]}") from None
    if dtype.hasobject:
        raise UserError(f"{what} holds Python objects (pickled data); refused")
    if numeric:
        rules.check_numeric(dtype, what)
    rules.check_declared_size(shape, dtype, what)
    return shape, dtype


def _as_maps(array: np.ndarray, what: str) -> np.ndarray:
    rules.check_numeric(array.dtype, what)
    if array.ndim == 2:
        array = array[None]
    rules.check_map_shape(array.shape, what)
    return np.asarray(array, dtype=np.float32)


def _sidecar(path: Path) -> dict:
    side = path.with_name(path.name + ".json")
    if not side.is_file() or side.stat().st_size > 1_000_000:
        return {}
    try:
        meta = json.loads(side.read_text())
    except (ValueError, UnicodeDecodeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _load(path: Path) -> np.ndarray:
    """One NPY file, its header checked (no pickles, numbers, size) before the data is read."""
    with open(path, "rb") as fh:
        shape, dtype = _header(fh, path.name)
        offset = fh.tell()
    if path.stat().st_size < offset + int(np.prod(shape)) * dtype.itemsize:
        raise UserError(f"{path.name} is truncated: its header declares {shape} {dtype}")
    return np.load(path, allow_pickle=False)


def read_trust_sidecars(path: Path, meta: dict, elements, maps_shape) -> tuple[dict, list[str]]:
    """Trust maps kept beside an NPY or TIFF result (the kinds its metadata lists; the file names
    are made here, never taken from the file): (extras, names of listed files that are gone)."""
    extras, missing = {}, []
    for kind in trustmaps.listed(meta):
        side = trustmaps.sidecar(path, kind)
        if not side.is_file():  # the result was copied without it: the maps are still good
            missing.append(side.name)
            continue
        extras.update(trustmaps.to_extras(kind, elements, _load(side), maps_shape, side.name))
    return extras, missing


def read_npy(path: Path) -> XRFMap:
    array = _load(path)
    data = _as_maps(array, path.name)
    meta = _sidecar(path)
    names = meta.get("elements")
    if not (isinstance(names, list) and len(names) == data.shape[0]):
        names = ([rules.element_from_filename(path.stem)] if data.shape[0] == 1
                 else [f"map_{i + 1}" for i in range(data.shape[0])])
    names = [str(n) for n in names]
    xrf = _finish(path, "npy", names, data, meta.get("pixel_size_nm"),
                  {"maps": "array", "ndim": array.ndim}, str(meta.get("units", "")))
    xrf.extras, missing = read_trust_sidecars(path, meta, names, data.shape)
    if missing:
        xrf.provenance["trust_maps_missing"] = missing
    return xrf


def read_npz(path: Path) -> XRFMap:
    with zipfile.ZipFile(path) as zf:
        members = [i for i in rules.safe_zip_members(zf, path.name) if i.filename.endswith(".npy")]
        for info in members:
            with zf.open(info) as fh:
                _header(fh, f"{path.name}:{info.filename}", numeric=False)
    keys = [i.filename[: -len(".npy")] for i in members]
    with np.load(path, allow_pickle=False) as npz:
        if "maps" in keys and "elements" in keys:
            data = _as_maps(npz["maps"], f"{path.name}:maps")
            names = [str(n) for n in np.atleast_1d(npz["elements"])]
            pixel = npz["pixel_size_nm"] if "pixel_size_nm" in keys else None
            units = str(npz["units"]) if "units" in keys else ""
            xrf = _finish(path, "npz", names, data, pixel, {"maps": "maps", "names": "elements"}, units)
            for kind in trustmaps.KINDS:
                if kind in keys:
                    xrf.extras.update(trustmaps.to_extras(kind, names, npz[kind], data.shape,
                                                          f"{path.name}:{kind}"))
            return xrf
        arrays = {k: npz[k] for k in keys}
    planes = {k: a for k, a in arrays.items() if a.ndim == 2 and a.dtype.kind in "iuf"}
    if not planes:
        raise UserError(f"{path.name} holds no 2-D maps (members: {', '.join(keys[:12]) or 'none'})")
    shapes = {p.shape for p in planes.values()}
    if len(shapes) != 1:
        raise UserError(f"{path.name} holds maps of different sizes: {sorted(shapes)}")
    rules.check_declared_size((len(planes),) + shapes.pop(), np.float32, path.name)
    data = _as_maps(np.stack(list(planes.values())), path.name)
    return _finish(path, "npz", list(planes), data, None, {k: k for k in planes}, "")


def _finish(path, fmt, names, data, pixel, datasets, units) -> XRFMap:
    rules.check_names(names, data.shape[0], path.name)
    repairs = rules.repair(data, names, path.name)
    try:
        pixel = rules.pixel_override(pixel)
    except UserError:
        pixel = None
    return XRFMap(
        elements=names, data=data, pixel_size_nm=pixel, units=units, source_format=fmt,
        source={"path": str(path), "method": None, "datasets": datasets,
                "elements": {n: f"{path.name}[{i}]" for i, n in enumerate(names)}},
        provenance={"repairs": repairs} if repairs else {},
    )


def as_input_shape(original: XRFMap, stack: np.ndarray) -> np.ndarray:
    """NPY out in the input's shape: (rows, cols) stays 2-D."""
    stack = np.asarray(stack, dtype=np.float32)
    if original.source.get("datasets", {}).get("ndim") == 2 and stack.shape[0] == 1:
        return stack[0]
    return stack


def npy_bytes_and_sidecar(original: XRFMap, enhanced: XRFMap, attrs: dict):
    """NPY out in the input's shape, with the JSON sidecar."""
    meta = {"elements": enhanced.elements, "units": enhanced.units, **attrs}
    return as_input_shape(original, enhanced.data), meta


def save_npz(fh, enhanced: XRFMap, attrs: dict, trust=None) -> None:
    extra = {kind: np.asarray(stack, dtype=np.float32) for kind, stack in (trust or {}).items()}
    if enhanced.pixel_size_nm:
        extra["pixel_size_nm"] = np.asarray(enhanced.pixel_size_nm, dtype=np.float64)
    np.savez(fh, maps=np.asarray(enhanced.data, dtype=np.float32),
             elements=np.array(enhanced.elements, dtype=str), units=np.array(enhanced.units),
             provenance=np.array(json.dumps(attrs, default=str)), **extra)
