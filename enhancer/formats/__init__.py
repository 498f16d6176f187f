"""Read and write the files beamlines produce: MAPS v10/v9, PyXRF, TIFF sets, TIFF, NPY, NPZ.

The format is told by content (magic bytes, HDF5 structure), never by the file name.
Every refusal is a UserError with a message for the user. The rules (limits, NaN/Inf,
negative values, names) live in rules.py; the output layouts are described in write.py,
tiff.py and export.py, and summarised in README.md beside this file.

Trusted files: read_map (in-process). Uploaded files: read_map_safely (a child process with
memory and time limits, so that a crash in libhdf5 cannot take the caller down).
"""
from __future__ import annotations

from pathlib import Path

from enhancer import UserError
from enhancer.formats.export import export_csv, export_png, export_tiff
from enhancer.formats.hdf5 import check_hdf5_safe
from enhancer.formats.normalize import normalize_by_scaler
from enhancer.formats.reading import FORMATS, detect_format, read_map, summarize
from enhancer.formats.safety import read_map_safely
from enhancer.formats.write import write_result
from enhancer.xrfmap import XRFMap

__all__ = [
    "FORMATS", "XRFMap", "check_hdf5_safe", "detect_format", "export_csv", "export_png",
    "export_tiff", "normalize_by_scaler", "read", "read_enhanced", "read_map", "read_map_safely",
    "read_maps", "summarize", "write_result",
]


def read(path, pixel_nm=None) -> XRFMap:
    """A map file named by a user (CLI): read in a child process, like an upload."""
    if not Path(path).exists():
        raise UserError(f"{path}: no such file or folder")
    return read_map_safely(path, pixel_nm=pixel_nm)


def _is_enhanced(method) -> bool:
    return str(method or "").lower().endswith("_enhanced")


def read_enhanced(path, measured: XRFMap | None = None, pixel_nm=None) -> XRFMap:
    """The enhanced maps in a result file. An HDF5 result holds the original maps too, and the
    enhanced ones as a method named <method>_enhanced beside them: the one enhanced from the
    measured map's method when there are several. A file holding one set of maps gives those."""
    m = read(path, pixel_nm)
    methods = [str(x) for x in m.source.get("methods", [])]
    enhanced = [x for x in methods if _is_enhanced(x)]
    if not enhanced or _is_enhanced(m.source.get("method")):
        return m
    method = measured.source.get("method", "") if measured is not None else ""
    want = f"{method}_enhanced".lower()
    return read_map_safely(path, method=next((x for x in enhanced if x.lower() == want), enhanced[0]),
                           pixel_nm=pixel_nm)


def read_maps(path, which: str | None = None, pixel_nm=None) -> XRFMap:
    """The enhanced maps of a result file (the default when it holds both) or, with
    which="original", the maps they were made from. source["maps"] says which were read:
    "enhanced", "original", or "as stored" for a file holding one set (TIFF, NPY, NPZ)."""
    if which not in (None, "enhanced", "original"):
        raise UserError(f"maps are 'original' or 'enhanced'; got {which!r}")
    m = read(path, pixel_nm) if which == "original" else read_enhanced(path, pixel_nm=pixel_nm)
    methods = [str(x) for x in m.source.get("methods", [])]
    if _is_enhanced(m.source.get("method")):
        if which == "original":
            raise UserError(f"{Path(path).name} holds only enhanced maps ({m.source['method']})")
        m.source["maps"] = "enhanced"
    elif methods and which == "enhanced":
        raise UserError(f"{Path(path).name} holds no enhanced maps; it has: {', '.join(methods)}")
    else:
        m.source["maps"] = "original" if methods else "as stored"
    return m
