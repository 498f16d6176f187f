"""Rules every reader follows, kept in one place: limits, names, repairs, pixel size.

Stated rules (the web and the CLI show the resulting messages as they are):
- A map is a 2-D array of real numbers (integers or floats) of at least MIN_SIDE x MIN_SIDE pixels;
  strings, complex numbers, booleans and records are refused.
- No dataset, TIFF page or array member larger than MAX_MAP_BYTES (declared size) is read, and a
  compressed one that would expand more than MAX_RATIO times (and past RATIO_CHECK_BYTES) is
  refused as a compression bomb.
- NaN / Inf pixels are replaced by 0 and counted per element in provenance["repairs"]; a map
  with no finite pixel at all is refused (there is nothing to repair it from).
- Negative values are kept as they are (fits and background-subtracted ROIs legitimately dip
  below zero; clipping would change totals); their count is recorded in provenance["repairs"].
"""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import PurePosixPath

import numpy as np

from enhancer import UserError

MAX_MAP_BYTES = 2 * 1024**3  # 2 GiB declared: about 45 elements of 3000 x 3000 float32
MAX_RATIO = 100  # real maps compress 2-10x; a bomb of zeros compresses ~1000x
RATIO_CHECK_BYTES = 64 * 1024**2  # small datasets cannot hurt, whatever their ratio
MIN_SIDE = 2
MAX_MEMBERS = 2000  # files inside a zip, or TIFFs in a folder

SYMBOLS = set(
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se "
    "Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb "
    "Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm "
    "Bk Cf Es Fm Md No Lr".split()
)
# "Fe", "Fe_K", "Pt_L", "Au_M", "Fe_Ka1": an element line. Anything else in a fit result
# (Num_Iter, Fit_Residual, Sum_Elastic_Inelastic, snip_bkg, r_factor, compton, pile-ups
# such as "Fe_Fe") is an extra channel, not an element.
_ELEMENT_RE = re.compile(r"^([A-Z][a-z]?)(_[KLM][a-z0-9]*)?$")
_NAME_IN_FILENAME_RE = re.compile(r"(?<![A-Za-z])([A-Z][a-z]?)_([KLM][a-z0-9]*)(?![A-Za-z])")


def is_element(name: str) -> bool:
    m = _ELEMENT_RE.match(name)
    return bool(m) and m.group(1) in SYMBOLS


def element_from_filename(stem: str) -> str:
    """'SUM_maps_XRF_Fe_K' -> 'Fe_K'; 'Zn' -> 'Zn'; anything else: the stem itself."""
    found = [m for m in _NAME_IN_FILENAME_RE.finditer(stem) if m.group(1) in SYMBOLS]
    if found:
        return f"{found[-1].group(1)}_{found[-1].group(2)}"
    return stem


def decode_names(raw) -> list[str]:
    """Names as stored: bytes or str, NUL-padded (C strings) or space-padded (Fortran)."""
    names = []
    for item in np.asarray(raw).ravel():
        if isinstance(item, bytes):
            item = item.decode("utf-8", errors="replace")
        names.append(str(item).split("\x00", 1)[0].strip())
    return names


def check_numeric(dtype, what: str) -> None:
    dtype = np.dtype(dtype)
    if dtype.kind not in "iuf":
        kinds = {"S": "text", "U": "text", "O": "text or Python objects", "c": "complex numbers",
                 "b": "true/false values", "V": "records"}
        found = kinds.get(dtype.kind, str(dtype))
        raise UserError(f"{what} holds {found} ({dtype}); maps must be real numbers")


def check_declared_size(shape, dtype, what: str, stored_bytes: int | None = None) -> None:
    """Refuse before reading: too large, or compressed far beyond what real maps do."""
    nbytes = int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
    if nbytes > MAX_MAP_BYTES:
        raise UserError(
            f"{what} declares {tuple(shape)} = {nbytes / 1024**3:.1f} GiB, too large to read "
            f"(limit {MAX_MAP_BYTES / 1024**3:.0f} GiB)"
        )
    if stored_bytes is not None and nbytes > RATIO_CHECK_BYTES and nbytes > MAX_RATIO * stored_bytes:
        raise UserError(
            f"{what} would expand from {stored_bytes} bytes on disk to {nbytes} bytes: "
            f"compressed more than {MAX_RATIO}x, refused as a compression bomb"
        )


def check_map_shape(shape, what: str) -> None:
    if len(shape) != 3:
        raise UserError(f"{what} has shape {tuple(shape)}; expected (elements, rows, cols)")
    if shape[0] == 0 or shape[1] == 0 or shape[2] == 0:
        raise UserError(f"{what} holds no maps (shape {tuple(shape)})")
    if shape[1] < MIN_SIDE or shape[2] < MIN_SIDE:
        raise UserError(
            f"{what} is {shape[1]} x {shape[2]} pixels, too small to be a map "
            f"(at least {MIN_SIDE} x {MIN_SIDE})"
        )


def check_names(names: list[str], count: int, what: str) -> None:
    if len(names) != count:
        raise UserError(f"{len(names)} names for {count} maps in {what}")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise UserError(f"repeated map names in {what}: {', '.join(dup)}")
    if any(not n for n in names):
        raise UserError(f"an empty map name in {what}")


def repair(data: np.ndarray, names: list[str], what: str) -> dict:
    """Apply the NaN/Inf rule in place; return the counts for provenance["repairs"]."""
    nonfinite, negative = {}, {}
    for i, name in enumerate(names):
        plane = data[i]
        bad = ~np.isfinite(plane)
        n_bad = int(bad.sum())
        if n_bad == plane.size:
            raise UserError(f"map {name} in {what} has no finite value (all NaN or Inf)")
        if n_bad:
            plane[bad] = 0.0
            nonfinite[name] = n_bad
        n_neg = int((plane < 0).sum())
        if n_neg:
            negative[name] = n_neg
    out = {}
    if nonfinite:
        out["nonfinite_pixels_set_to_zero"] = nonfinite
    if negative:
        out["negative_pixels_kept"] = negative
    return out


def pixel_size_from_axes(x_axis, y_axis):
    """(y_nm, x_nm) from motor positions in um: median |step| * 1000; None when unknown.

    Axes are 1-D (W,) / (H,) or 2-D (H, W) (XRF-Maps since 2026-05; PyXRF positions).
    When only one direction has a step (a single row), the pixel is taken as square.
    """
    def step(axis, along):
        if axis is None:
            return None
        a = np.asarray(axis, dtype=np.float64)
        if a.ndim == 2:
            a = np.diff(a, axis=along)
        elif a.ndim == 1:
            a = np.diff(a)
        else:
            return None
        a = np.abs(a[np.isfinite(a)])
        a = a[a > 0]
        # 9 significant digits: a unit conversion's float noise (0.01 mm -> 9999.99999 nm) goes
        return float(f"{float(np.median(a)) * 1000.0:.9g}") if a.size else None

    x_nm, y_nm = step(x_axis, 1), step(y_axis, 0)
    if x_nm is None and y_nm is None:
        return None
    return (y_nm if y_nm is not None else x_nm, x_nm if x_nm is not None else y_nm)


def axis_fits(axis, length: int, shape2d, along: int) -> bool:
    """An axis lines up with the maps: 1-D of the right length, or 2-D of the map's shape."""
    if axis is None:
        return False
    if axis.ndim == 1:
        return axis.shape[0] == length
    return axis.ndim == 2 and tuple(axis.shape) == tuple(shape2d)


def pixel_override(pixel_nm):
    """pixel_nm given by the user: a number (square pixel) or (y, x)."""
    if pixel_nm is None:
        return None
    values = np.atleast_1d(np.asarray(pixel_nm, dtype=np.float64)).ravel()
    if values.size not in (1, 2) or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise UserError(f"pixel size must be a positive number of nm (or y, x); got {pixel_nm!r}")
    return (float(values[0]), float(values[-1]))


def element_indices(names: list[str], where: str) -> tuple[list[int], list[int]]:
    """Which channels of a fit result are elements and which are extras (kept apart)."""
    keep = [i for i, n in enumerate(names) if is_element(n)]
    if not keep:
        raise UserError(f"no element maps in {where}; its channels are: {', '.join(names[:12])}")
    return keep, [i for i in range(len(names)) if i not in keep]


def safe_zip_members(zf: zipfile.ZipFile, what: str) -> list[zipfile.ZipInfo]:
    """Members of an uploaded zip, refused whole if any name or size is hostile.

    Members are only ever read in memory, so a ../ name could not escape; it is still
    refused because no honest export contains one.
    """
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise UserError(f"{what} holds {len(infos)} files; at most {MAX_MEMBERS}")
    out, total = [], 0
    for info in infos:
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name) or "\x00" in name:
            raise UserError(f"{what} holds a file with an unsafe name {name!r} "
                            "(absolute path or ../); refused")
        if info.is_dir():
            continue
        if info.flag_bits & 0x1:
            raise UserError(f"{what} holds an encrypted file {name!r}; refused")
        stored = info.compress_size if info.compress_type != zipfile.ZIP_STORED else None
        check_declared_size((info.file_size,), np.uint8, f"{what}:{name}", stored)
        total += info.file_size
        out.append(info)
    check_declared_size((total,), np.uint8, what)
    return out


def jsonable(value):
    """Plain JSON types (numpy arrays and numbers become lists and floats) for metadata."""
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
