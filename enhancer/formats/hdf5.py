"""HDF5 opened safely: the structure is checked before any data is read.

libhdf5 "is not designed to handle maliciously crafted files safely" (HDFGroup/hdf5 SECURITY.md),
so: no external links, no external storage, no virtual datasets, no filter we cannot decode,
declared sizes capped before reading (see rules.py). Untrusted files are read in a child
process as well (safety.py); these checks make the usual hostile cases a clear message.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from enhancer import UserError
from enhancer.formats import rules, trustmaps

MAX_OBJECTS = 200_000  # groups + datasets walked; a real MAPS file has a few hundred
SMALL_BYTES = 16 * 1024**2  # names, units, attributes: never more than this
_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def has_signature(path: Path) -> bool:
    """HDF5 magic at 0 or after a user block (512, 1024, 2048... bytes)."""
    size = path.stat().st_size
    offsets = [0] + [512 * 2**k for k in range(12) if 512 * 2**k + 8 <= size]
    with open(path, "rb") as fh:
        for off in offsets:
            fh.seek(off)
            if fh.read(8) == _SIGNATURE:
                return True
    return False


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


@contextmanager
def open_checked(path):
    """Open read-only and refuse unsafe structure before the caller reads anything."""
    name = Path(path).name
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"{name} is a damaged HDF5 file (truncated?); it cannot be opened: "
                        f"{_short(exc)}") from None
    try:
        check_structure(f, name)
        yield f
    except (OSError, RuntimeError, KeyError) as exc:
        # a corrupt object header or chunk index only shows when it is touched
        raise UserError(f"{name} is a damaged HDF5 file: {_short(exc)}") from None
    finally:
        f.close()


def check_hdf5_safe(path) -> None:
    """Walk the whole structure (links, storage, filters) without reading data; UserError if unsafe."""
    with open_checked(path):
        pass


def check_structure(f: h5py.File, name: str) -> None:
    seen, count, groups = set(), 0, [f]
    while groups:
        group = groups.pop()
        for key in group:
            where = f"{group.name.rstrip('/')}/{key}"
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise UserError(f"{name} has an external link {where} -> {link.filename}:{link.path}; "
                                "files that point into other files are refused")
            if isinstance(link, h5py.SoftLink):
                continue  # its target is walked through its own hard link
            if not isinstance(link, h5py.HardLink):
                raise UserError(f"{name} has a user-defined link {where}; refused")
            count += 1
            if count > MAX_OBJECTS:
                raise UserError(f"{name} holds more than {MAX_OBJECTS} objects; refused")
            obj = group.get(key)
            if isinstance(obj, h5py.Group):
                info = h5py.h5o.get_info(obj.id)
                if (info.fileno, info.addr) not in seen:  # hard-link cycles are legal HDF5
                    seen.add((info.fileno, info.addr))
                    groups.append(obj)
            elif isinstance(obj, h5py.Dataset):
                check_storage(obj, name)


def check_storage(ds: h5py.Dataset, name: str) -> None:
    if ds.is_virtual:
        raise UserError(f"{name} has a virtual dataset {ds.name} (it maps data from other files); "
                        "refused")
    if ds.external:
        raise UserError(f"{name} has a dataset {ds.name} with external storage in "
                        f"{ds.external[0][0]!r} (it could read any file); refused")
    plist = ds.id.get_create_plist()
    for i in range(plist.get_nfilters()):
        code, flags, _, filter_name = plist.get_filter(i)
        optional = flags & h5py.h5z.FLAG_OPTIONAL
        if not optional and not h5py.h5z.filter_avail(code):
            label = filter_name.decode(errors="replace") if isinstance(filter_name, bytes) else filter_name
            raise UserError(f"{name}: dataset {ds.name} needs compression filter {code} ({label}) "
                            "that this reader does not have")


def dataset(f: h5py.File, path: str) -> h5py.Dataset:
    obj = f.get(path)
    if not isinstance(obj, h5py.Dataset):
        raise UserError(f"{Path(f.filename).name} has no dataset {path}")
    return obj


def check_maps(ds: h5py.Dataset, what: str) -> None:
    rules.check_map_shape(ds.shape, what)
    rules.check_numeric(ds.dtype, what)
    rules.check_declared_size(ds.shape, ds.dtype, what, ds.id.get_storage_size())


def read_planes(ds: h5py.Dataset, indices: list[int], what: str) -> np.ndarray:
    """Planes ds[i] for i in indices as float32 (n, rows, cols); memory = what is returned."""
    rules.check_numeric(ds.dtype, what)
    rules.check_declared_size(ds.shape, ds.dtype, what, ds.id.get_storage_size())
    out = np.empty((len(indices),) + tuple(ds.shape[1:]), dtype=np.float32)
    for j, i in enumerate(indices):
        ds.read_direct(out, source_sel=np.s_[i], dest_sel=np.s_[j])
    return out


def read_fit_maps(ds: h5py.Dataset, names: list[str], where: str):
    """A fit result's (channels, rows, cols) stack: elements apart from extras, NaN/Inf repaired.

    Returns (elements, element indices, element maps, repairs, extras by name). The checks run
    before any map is read.
    """
    check_maps(ds, where)
    rules.check_names(names, ds.shape[0], where)
    element_idx, extra_idx = rules.element_indices(names, where)
    data = read_planes(ds, element_idx, where)
    elements = [names[i] for i in element_idx]
    repairs = rules.repair(data, elements, where)
    extras = {names[i]: np.nan_to_num(plane, nan=0.0, posinf=0.0, neginf=0.0)
              for i, plane in zip(extra_idx, read_planes(ds, extra_idx, where))}
    return elements, element_idx, data, repairs, extras


def read_array(ds: h5py.Dataset, what: str, limit: int | None = None) -> np.ndarray:
    """A whole small dataset (axes, scalers of one scan); float64 for numbers."""
    rules.check_numeric(ds.dtype, what)
    if limit is not None and ds.nbytes > limit:
        raise UserError(f"{what} is {ds.nbytes} bytes, more than the {limit} expected")
    rules.check_declared_size(ds.shape, ds.dtype, what, ds.id.get_storage_size())
    return np.asarray(ds[()], dtype=np.float64)


def read_names(ds: h5py.Dataset, what: str) -> list[str]:
    if ds.dtype.kind not in "SUO":
        raise UserError(f"{what} should hold names (text); it holds {ds.dtype}")
    if ds.nbytes > SMALL_BYTES or ds.ndim > 2:
        raise UserError(f"{what} is not a list of names (shape {ds.shape})")
    return rules.decode_names(ds[()])


def attr_pixel(obj) -> tuple[float, float] | None:
    """The pixel_size_nm (y, x) attribute that write_result puts on enhanced maps."""
    if "pixel_size_nm" not in obj.attrs:
        return None
    aid = obj.attrs.get_id("pixel_size_nm")
    if aid.shape != (2,) or aid.dtype.kind not in "iuf":
        return None
    values = np.asarray(obj.attrs["pixel_size_nm"], dtype=np.float64)
    if not np.all(np.isfinite(values)) or not np.all(values > 0):
        return None
    return (float(values[0]), float(values[1]))


def write_names(group: h5py.Group, name: str, names: list[str], width: int | None = None):
    """Fixed-length byte strings, as both MAPS (256, NUL padded) and PyXRF (|S) store them."""
    encoded = [n.encode("utf-8") for n in names]
    width = width or max(len(e) for e in encoded)
    return group.create_dataset(name, data=np.array(encoded, dtype=f"S{width}"))


def write_maps(group: h5py.Group, name: str, data: np.ndarray) -> h5py.Dataset:
    """(E, H, W) float32, one chunk per map, gzip: the layout XRF-Maps itself writes."""
    data = np.ascontiguousarray(data, dtype=np.float32)
    return group.create_dataset(name, data=data, chunks=(1,) + data.shape[1:],
                                compression="gzip", compression_opts=4)


def read_trust_maps(f: h5py.File, paths: dict, maps_ds: h5py.Dataset, element_idx: list[int],
                    elements: list[str], name: str) -> tuple[dict, dict]:
    """Trust maps stored beside enhanced maps ({kind: dataset path}; absent ones are skipped):
    (extras "<kind>:<Element>", {kind: path} of those found). See trustmaps.py."""
    extras, found = {}, {}
    for kind, path in paths.items():
        ds = f.get(path)
        if not isinstance(ds, h5py.Dataset):
            continue
        where = f"{name}:{path}"
        trustmaps.check_shape(kind, ds.shape, maps_ds.shape, where)  # planes line up with the maps
        check_maps(ds, where)
        planes = read_planes(ds, element_idx, where)
        extras.update(trustmaps.to_extras(kind, elements, planes, planes.shape, where))
        found[kind] = path
    return extras, found


def write_trust_maps(group: h5py.Group, names: dict, stacks: dict, units: str) -> None:
    """{kind: dataset name} in group: stale ones removed, present ones written like the maps."""
    for kind, ds_name in names.items():
        if ds_name in group:
            del group[ds_name]  # left by an earlier enhancement; never an original dataset
        if kind in stacks:
            ds = write_maps(group, ds_name, stacks[kind])
            ds.attrs["description"] = trustmaps.DESCRIPTIONS[kind]
            ds.attrs["units"] = units if kind == "uncertainty" else ""


def write_axes(group: h5py.Group, names: tuple[str, str], enhanced, axes_units) -> None:
    """The enhanced grid's x and y positions in the input's units ({name} removed when stale),
    each with a `units` attribute: what the readers take first (units.py)."""
    from enhancer.formats.units import from_um

    for name in names:
        if name in group:
            del group[name]
    if enhanced.x_axis_um is None or enhanced.y_axis_um is None:
        return
    for name, axis, unit in zip(names, (enhanced.x_axis_um, enhanced.y_axis_um), axes_units):
        group.create_dataset(name, data=from_um(axis, unit)).attrs["units"] = unit
