"""Reading a map file: the format told by content (magic bytes, HDF5 structure), never by name."""
from __future__ import annotations

import zipfile
from pathlib import Path

from enhancer import UserError
from enhancer.formats import hdf5, maps, npy, pyxrf, rules, tiff
from enhancer.formats.normalize import normalize_by_scaler
from enhancer.xrfmap import XRFMap

FORMATS = ("maps-v10", "maps-v9", "pyxrf", "tiff-set", "tiff", "npy", "npz")
READS = "MAPS or PyXRF HDF5, TIFF (one per element: a folder or zip of them), NPY or NPZ"
_OTHER_MAGIC = {
    b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
    b"%PDF": "a PDF document", b"\x1f\x8b": "a gzip archive", b"\x0e\x03\x13\x01": "an HDF4 file",
    b"CDF\x01": "a netCDF file", b"CDF\x02": "a netCDF file", b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
}


def _sniff(path: Path) -> str:
    """Coarse kind by content: folder, hdf5, zip, tiff, npy; anything else is refused by name."""
    if path.is_dir():
        return "folder"
    if not path.is_file():
        raise UserError(f"no such file: {path.name}")
    if path.stat().st_size == 0:
        raise UserError(f"{path.name} is empty")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if hdf5.has_signature(path):
        return "hdf5"
    if head[:4] == b"PK\x03\x04" or head[:4] == b"PK\x05\x06":
        return "zip"
    if tiff.is_tiff_bytes(head):
        return "tiff"
    if head[:6] == npy.NPY_MAGIC:
        return "npy"
    for magic, label in _OTHER_MAGIC.items():
        if head.startswith(magic):
            raise UserError(f"{path.name} is {label}, not a map file; xrfweb reads {READS}")
    try:
        head.decode("utf-8")
        kind = "a text file"
    except UnicodeDecodeError:
        kind = "not a recognised map file"
    raise UserError(f"{path.name} is {kind}; xrfweb reads {READS}")


def _hdf5_layout(f, name: str) -> str:
    if pyxrf.is_pyxrf(f):
        return "pyxrf"
    found = maps.layout(f)
    if found is None:
        raise UserError(f"{name} is an HDF5 file but neither a MAPS (/MAPS) nor a PyXRF (/xrfmap) "
                        "file; no maps found")
    return found


def _zip_kind(path: Path) -> str:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"{path.name} is a damaged zip archive: {exc}") from None
    with zf:
        if tiff.zip_members(zf, path.name):
            return "tiff-set"
        members = [i for i in zf.infolist() if not i.is_dir()]
        if members and all(i.filename.endswith(".npy") for i in members):
            if all(zf.open(i).read(6) == npy.NPY_MAGIC for i in members):
                return "npz"
        listing = ", ".join(i.filename for i in members[:8]) or "nothing"
    raise UserError(f"{path.name} is a zip archive with no TIFF or NPY maps (it holds: {listing})")


def detect_format(path) -> str:
    """One of FORMATS, by content; UserError for anything else."""
    path = Path(path)
    kind = _sniff(path)
    if kind == "folder":
        if not tiff.folder_members(path):
            raise UserError(f"folder {path.name} holds no TIFF maps")
        return "tiff-set"
    if kind == "hdf5":
        with hdf5.open_checked(path) as f:
            return _hdf5_layout(f, path.name)
    if kind == "zip":
        return _zip_kind(path)
    return kind


def _read(path: Path, method) -> XRFMap:
    kind = _sniff(path)
    if kind == "hdf5":
        with hdf5.open_checked(path) as f:
            fmt = _hdf5_layout(f, path.name)
            return pyxrf.read(f, path, method) if fmt == "pyxrf" else maps.read(f, path, fmt, method)
    if method is not None:
        raise UserError(f"{path.name} holds one set of maps; a method ({method!r}) applies to "
                        "MAPS and PyXRF files only")
    if kind == "folder":
        return tiff.read_set(path)
    if kind == "zip":
        return tiff.read_set(path) if _zip_kind(path) == "tiff-set" else npy.read_npz(path)
    if kind == "tiff":
        return tiff.read_tiff(path)
    return npy.read_npy(path)


def read_map(path, *, method=None, pixel_nm=None, normalize=None) -> XRFMap:
    """Read the maps of a trusted file. pixel_nm (nm, or (y, x)) overrides the file's pixel size;
    normalize names a scaler to divide by (off by default)."""
    path = Path(path)
    try:
        xrf = _read(path, method)
    except UserError:
        raise
    except MemoryError:
        raise UserError(f"not enough memory to read the maps of {path.name}") from None
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError,
            zipfile.BadZipFile) as exc:  # a damaged file shows up as any of these
        text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UserError(f"{path.name} could not be read (damaged?): {text}") from None
    override = rules.pixel_override(pixel_nm)
    if override is not None:
        xrf.pixel_size_nm = override
    # where the step came from, in words (the readers say which part of the file)
    xrf.source["pixel_size_from"] = ("user" if override is not None
                                     else xrf.source.get("pixel_size_from") or "file"
                                     if xrf.pixel_size_nm else None)
    if normalize:
        xrf = normalize_by_scaler(xrf, normalize)
    return xrf


def summarize(xrfmap: XRFMap) -> dict:
    """What `info` prints: format, elements, shape, pixel size in nm (y, x) or null."""
    return {
        "format": xrfmap.source_format,
        "elements": list(xrfmap.elements),
        "shape": list(xrfmap.shape),
        "pixel_size_nm": list(xrfmap.pixel_size_nm) if xrfmap.pixel_size_nm else None,
        "pixel_size_from": xrfmap.source.get("pixel_size_from"),  # where the step came from
        "pixel_size_note": xrfmap.source.get("pixel_size_note"),  # why a step is unknown
        "method": xrfmap.source.get("method"),
        "methods": xrfmap.source.get("methods", []),
        "extras": sorted(xrfmap.extras),
        "scalers": sorted(xrfmap.scalers),
        "units": xrfmap.units,
    }
