"""TIFF maps: per-element TIFF sets (a folder or a zip) and single / multi-page TIFF files.

PyXRF and uProbeX export one TIFF per element; the element and line are in the file name
(SUM_maps_XRF_Fe_K.tiff -> "Fe_K"). Such files carry no pixel size: the user states it, unless
the file was written here (JSON metadata in the ImageDescription, and resolution tags in
pixels per cm, which Fiji also reads).

Output of an enhanced TIFF set: the same file names with an `_enhanced` suffix
(SUM_maps_XRF_Fe_K_enhanced.tiff), at the same paths inside a zip (its folders kept), in a zip
when the output is named .zip and in a folder otherwise, plus provenance.json beside the maps. Members of a zip are read in memory, never extracted.
Trust maps, when the result has them, go beside as SUM_maps_XRF_Fe_K_enhanced_uncertainty.tiff
and ..._enhanced_chi2.tiff; their metadata ({"trust_map": kind, "element": ...}), not their
name, makes the reader put them in extras ("uncertainty:Fe_K") instead of among the maps.
A multi-page TIFF result keeps them in NPY sidecars (see npy.read_trust_sidecars).
"""
from __future__ import annotations

import io
import json
import zipfile
from contextlib import ExitStack
from pathlib import Path, PurePosixPath

import numpy as np
import tifffile

from enhancer import UserError
from enhancer.formats import npy, rules, trustmaps, units
from enhancer.xrfmap import XRFMap

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
ENHANCED = "_enhanced"


def is_tiff_bytes(head: bytes) -> bool:
    return head[:4] in TIFF_MAGIC


def _skip(name: str) -> bool:
    base = PurePosixPath(name).name
    return not base or base.startswith(".") or name.startswith("__MACOSX/")


def folder_members(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not _skip(p.name))
    if len(files) > rules.MAX_MEMBERS:
        raise UserError(f"folder {folder.name} holds {len(files)} files; at most {rules.MAX_MEMBERS}")
    out = []
    for p in files:
        with open(p, "rb") as fh:
            if is_tiff_bytes(fh.read(4)):
                out.append(p)
    return out


def zip_members(zf: zipfile.ZipFile, what: str) -> list[zipfile.ZipInfo]:
    out = []
    for info in rules.safe_zip_members(zf, what):
        if _skip(info.filename):
            continue
        with zf.open(info) as fh:
            if is_tiff_bytes(fh.read(4)):
                out.append(info)
    return sorted(out, key=lambda i: i.filename)


def _names_for(stems: list[str]) -> list[str]:
    names = [rules.element_from_filename(s) for s in stems]
    # two detectors' Fe_K in one folder: the file names are the only unambiguous names
    return names if len(set(names)) == len(names) else stems


def _page_array(tif: tifffile.TiffFile, what: str) -> np.ndarray:
    series = tif.series
    if len(series) != 1:
        raise UserError(f"{what} holds {len(series)} images of different sizes; expected one map")
    rules.check_numeric(series[0].dtype, what)
    rules.check_declared_size(series[0].shape, series[0].dtype, what)
    if int(tif.pages[0].photometric) in (2, 3, 6):  # RGB, palette, YCbCr
        raise UserError(f"{what} is a colour image, not a map of numbers")
    try:
        return series[0].asarray()
    except Exception as exc:  # tifffile raises many kinds for a broken strip table
        raise UserError(f"{what} is a damaged TIFF: {str(exc)[:200]}") from None


def _metadata(tif: tifffile.TiffFile) -> dict:
    meta = tif.shaped_metadata
    return dict(meta[0]) if meta else {}


def _pixel_from(tif: tifffile.TiffFile, meta: dict):
    """(pixel (y, x) nm or None, why a stated one is not taken or None)."""
    if "pixel_size_nm" in meta:  # written here
        try:
            return rules.pixel_override(meta["pixel_size_nm"]), None
        except UserError:
            return None, None
    # Resolution tags only when they say a length: ImageJ's unit (Fiji), or pixels per cm (as
    # written here). The default (1, 1) per inch of most writers says nothing.
    page = tif.pages[0]
    unit = str((tif.imagej_metadata or {}).get("unit", "")) if tif.is_imagej else ""
    nm_per_unit = {"micron": 1e3, "um": 1e3, "µm": 1e3, "\\u00B5m": 1e3, "nm": 1.0, "mm": 1e6}.get(unit)
    if nm_per_unit is None and int(page.resolutionunit) == 3:
        nm_per_unit = 1e7
    if nm_per_unit is None:
        return None, None
    xres, yres = page.get_resolution()
    if xres <= 0 or yres <= 0:
        return None, None
    return units.plausible((nm_per_unit / yres, nm_per_unit / xres), "the TIFF's resolution tags")


def _open(source, what: str) -> tifffile.TiffFile:
    try:
        return tifffile.TiffFile(source)
    except Exception as exc:
        raise UserError(f"{what} is not a readable TIFF: {str(exc)[:200]}") from None


def read_set(path: Path) -> XRFMap:
    """A folder or zip of single-map TIFFs, one per element."""
    with ExitStack() as stack:  # the zip stays open while its members are read
        if path.is_dir():
            members = folder_members(path)
            stems = [p.stem for p in members]
            labels = [p.name for p in members]
            opener = lambda i: members[i]  # noqa: E731
            container = "folder"
        else:
            zf = stack.enter_context(zipfile.ZipFile(path))
            members = zip_members(zf, path.name)
            stems = [PurePosixPath(i.filename).stem for i in members]
            labels = [i.filename for i in members]
            opener = lambda i: io.BytesIO(zf.read(members[i]))  # noqa: E731
            container = "zip"
        if not members:
            raise UserError(f"{path.name} holds no TIFF maps")
        data, pixel, note, map_units, trust_of, first_map = None, None, None, "", {}, True
        for i, label in enumerate(labels):
            what = f"{path.name}:{label}"
            with _open(opener(i), what) as tif:
                plane = _page_array(tif, what)
                if plane.ndim != 2:
                    raise UserError(f"{what} holds {plane.shape} values; a TIFF set has one 2-D map per file")
                meta = _metadata(tif)
                kind = _trust_kind(meta)
                if data is None:
                    rules.check_map_shape((len(labels),) + plane.shape, path.name)
                    rules.check_declared_size((len(labels),) + plane.shape, np.float32, path.name)
                    data = np.empty((len(labels),) + plane.shape, dtype=np.float32)
                elif plane.shape != data.shape[1:]:
                    raise UserError(f"{what} is {plane.shape[0]} x {plane.shape[1]} pixels but "
                                    f"{labels[0]} is {data.shape[1]} x {data.shape[2]}; a set needs one size")
                if kind:
                    trust_of[i] = f"{kind}:{meta['element']}"
                elif first_map:  # the first element map says the pixel size and units
                    (pixel, note), map_units = _pixel_from(tif, meta), str(meta.get("units", ""))
                    first_map = False
                data[i] = plane
    extras = {}
    if trust_of:  # a result read back: its trust maps go to extras, not among the elements
        keep = [i for i in range(len(labels)) if i not in trust_of]
        if not keep:
            raise UserError(f"{path.name} holds only trust maps (uncertainty, chi2), no element maps")
        extras = {key: data[i].copy() for i, key in trust_of.items()}
        data, labels, stems = data[keep], [labels[i] for i in keep], [stems[i] for i in keep]
    names = _names_for(stems)
    repairs = rules.repair(data, names, path.name)
    return XRFMap(
        elements=names, data=data, pixel_size_nm=pixel, units=map_units, source_format="tiff-set",
        extras=extras,
        source={"path": str(path), "method": None, "container": container, "pixel_size_note": note,
                "datasets": dict(zip(names, labels)), "elements": dict(zip(names, labels))},
        provenance={"repairs": repairs} if repairs else {},
    )


def _trust_kind(meta: dict) -> str | None:
    """The kind of trust map a member written by write_set_members holds, or None for a map."""
    kind = meta.get("trust_map")
    return kind if kind in trustmaps.KINDS and isinstance(meta.get("element"), str) else None


def read_tiff(path: Path) -> XRFMap:
    """One TIFF file: a single map, or one map per page."""
    with _open(path, path.name) as tif:
        array = _page_array(tif, path.name)
        meta = _metadata(tif)
        labels = (tif.imagej_metadata or {}).get("Labels") if tif.is_imagej else None
        pixel, note = _pixel_from(tif, meta)
    array = np.squeeze(array)
    if array.ndim == 2:
        array = array[None]
    rules.check_map_shape(array.shape, path.name)
    data = np.asarray(array, dtype=np.float32)
    count = data.shape[0]
    names = meta.get("elements") or ([meta["element"]] if "element" in meta else None) or labels
    if not (isinstance(names, list) and len(names) == count and all(isinstance(n, str) for n in names)):
        names = [rules.element_from_filename(path.stem)] if count == 1 else [
            f"map_{i + 1}" for i in range(count)]
    rules.check_names(names, count, path.name)
    repairs = rules.repair(data, names, path.name)
    extras, missing = npy.read_trust_sidecars(path, meta, names, data.shape)
    provenance = {"repairs": repairs} if repairs else {}
    if missing:
        provenance["trust_maps_missing"] = missing
    return XRFMap(
        elements=names, data=data, pixel_size_nm=pixel, units=str(meta.get("units", "")),
        source_format="tiff", extras=extras,
        source={"path": str(path), "method": None, "datasets": {"maps": "pages"}, "pixel_size_note": note,
                "elements": {n: f"page {i + 1}" for i, n in enumerate(names)}},
        provenance=provenance,
    )


def tiff_bytes(data: np.ndarray, meta: dict, pixel_size_nm) -> bytes:
    """A float32 TIFF (one page per map) with JSON metadata and resolution tags."""
    extra = {}
    if pixel_size_nm:
        y_nm, x_nm = pixel_size_nm
        extra = {"resolution": (1e7 / x_nm, 1e7 / y_nm), "resolutionunit": "CENTIMETER"}
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.asarray(data, dtype=np.float32), photometric="minisblack",
                     metadata=rules.jsonable(meta), **extra)
    return buf.getvalue()


def member_names(original: XRFMap, enhanced: XRFMap, kind: str | None = None) -> list[str]:
    """Where each enhanced map goes: the original file's name with the `_enhanced` suffix
    (`_enhanced_<kind>` for a trust map)."""
    sources = original.source.get("elements", {})
    tail = ENHANCED + (f"_{kind}" if kind else "")
    out = []
    for element in enhanced.elements:
        src = PurePosixPath(sources.get(element, f"{element}.tiff"))
        # the member's folder inside a zip stays (scan_0042/maps/Fe_K.tiff -> scan_0042/maps/...)
        out.append(str(src.with_name(src.stem + tail + (src.suffix or ".tiff"))))
    return out


def write_set_members(original: XRFMap, enhanced: XRFMap, attrs: dict, trust=None):
    """(name, bytes) pairs of an enhanced TIFF set: the maps, the trust maps ({kind: (E, H, W)}),
    provenance.json last."""
    for name, element, plane in zip(member_names(original, enhanced), enhanced.elements, enhanced.data):
        meta = {"element": element, "units": enhanced.units, **attrs}
        yield name, tiff_bytes(plane, meta, enhanced.pixel_size_nm)
    trust = trust or {}
    for kind, stack in trust.items():
        for name, element, plane in zip(member_names(original, enhanced, kind), enhanced.elements, stack):
            meta = {"element": element, "trust_map": kind, "description": trustmaps.DESCRIPTIONS[kind],
                    "units": enhanced.units if kind == "uncertainty" else "",
                    **{k: attrs[k] for k in ("pixel_size_nm", "software_version", "date") if k in attrs}}
            yield name, tiff_bytes(plane, meta, enhanced.pixel_size_nm)
    listing = {"trust_maps": list(trust)} if trust else {}
    folders = {str(PurePosixPath(n).parent) for n in member_names(original, enhanced)}
    beside = folders.pop() if len(folders) == 1 else "."  # beside the maps when they share a folder
    yield str(PurePosixPath(beside) / "provenance.json"), json.dumps(
        rules.jsonable({**attrs, **listing}), indent=2).encode()
