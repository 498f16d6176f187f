"""Units of motor positions, and the scan step they give, found where each file states them.

Order of precedence (the first that answers wins; README.md beside this file says the same):
1. the user's step (`pixel_nm=`, `--pixel-nm`): read_map applies it over everything below;
2. `pixel_size_nm` stored on enhanced maps written here (the fine grid);
3. motor positions x their unit, the unit taken from, in this order:
   - a `units` attribute on the axis dataset (fine axes written here carry one);
   - MAPS: the unit of the `x_coord` / `y_coord` scalers (`/MAPS/scaler_units`, `/MAPS/Scalers/Units`);
   - MAPS: the Extra PVs (v9 `/MAPS/extra_pvs` rows name, value, description, unit; v10
     `/MAPS/Scan/Extra_PVs/{Names,Values,Description,Unit}`): the scan record's positioner units
     (`scan1.P1EU` for x, the fast loop; `scan2.P1EU` for y), else the positioner motor's EGU
     (`<motor>.EGU` where `scan1.P1PV` names the motor), else the unit column beside `scanN.P1SI`
     (the step), `scanN.P1PV` or the motor itself;
   - PyXRF: `xrfmap/scan_metadata` attributes `param_fast_axis_units` (x), `param_slow_axis_units` (y);
   - none stated: um, the usual unit of both, and the source says it was assumed;
4. TIFF: our JSON metadata, ImageJ's unit with the resolution tags, or resolution tags in cm;
5. nothing: unknown (None). Nothing fills it in; enhancing then needs the user's step.
A step from axes or resolution tags under MIN_STEP_NM or over MAX_STEP_NM is not XRF mapping (a
unit misread, or a single repeated position): it is treated as unknown and the reason is kept.
"""
from __future__ import annotations

import re

import h5py
import numpy as np

from enhancer.formats import rules

MIN_STEP_NM, MAX_STEP_NM = 5.0, 1e6  # 5 nm .. 1 mm
NM_PER_UNIT = {"nm": 1.0, "nanometer": 1.0, "nanometers": 1.0, "um": 1e3, "µm": 1e3, "μm": 1e3,
               "micron": 1e3, "microns": 1e3, "micrometer": 1e3, "micrometers": 1e3, "mm": 1e6,
               "millimeter": 1e6, "millimeters": 1e6}
ASSUMED = "um"
SMALL = 1024 * 1024  # unit and PV tables are a few kB; anything larger is not one


def nm_per(unit) -> float | None:
    """nm per one `unit` ("mm", "um", "microns"...), or None for anything else."""
    if unit is None:
        return None
    text = str(unit).strip().strip("[]()").strip()
    return NM_PER_UNIT.get(text) or NM_PER_UNIT.get(text.lower())


def _texts(f, path) -> list[str] | None:
    ds = f.get(path)
    if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "SUO" or ds.nbytes > SMALL or ds.ndim > 2:
        return None
    return [rules.decode_names(row) for row in np.atleast_2d(ds[()])] if ds.ndim == 2 else \
        [rules.decode_names(ds[()])]


def attr_unit(ds) -> str | None:
    if not isinstance(ds, h5py.Dataset):
        return None
    for key in ("units", "unit"):
        if key in ds.attrs:
            value = ds.attrs[key]
            value = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
            if nm_per(value):
                return value.strip()
    return None


def _scaler_units(f, names_path, units_path) -> dict:
    names, units = _texts(f, names_path), _texts(f, units_path)
    if not names or not units or len(names[0]) != len(units[0]):
        return {}
    return {n.lower(): u for n, u in zip(names[0], units[0]) if nm_per(u)}


def extra_pvs(f) -> list[tuple[str, str, str]]:
    """(name, value, unit) of each Extra PV a MAPS file holds (v10 group, else the v9 table)."""
    group = "/MAPS/Scan/Extra_PVs"
    names, values = _texts(f, f"{group}/Names"), _texts(f, f"{group}/Values")
    if names and values and len(names[0]) == len(values[0]):
        units = _texts(f, f"{group}/Unit") or _texts(f, f"{group}/Units")
        units = units[0] if units and len(units[0]) == len(names[0]) else [""] * len(names[0])
        return list(zip(names[0], values[0], units))
    table = _texts(f, "/MAPS/extra_pvs")
    if table and len(table) >= 2:  # rows: name, value, (description, unit) as XRF-Maps writes
        units = table[3] if len(table) >= 4 else [""] * len(table[0])
        return list(zip(table[0], table[1], units))
    return []


def _scan_unit(pvs, scan: str) -> tuple[str | None, str]:
    """The unit of positioner 1 of the sscan record `scan` (scan1: the fast loop, x)."""
    def find(suffix):
        return next(((n, v, u) for n, v, u in pvs if n.endswith(f"{scan}.{suffix}")), None)

    eu = find("P1EU")
    if eu and nm_per(eu[1]):
        return eu[1], f"Extra PV {eu[0]} = {eu[1]}"
    pv = find("P1PV")
    motor = re.sub(r"\.(VAL|RBV|DRBV)$", "", pv[1]) if pv and pv[1] else None
    if motor:
        for n, v, u in pvs:
            if n == f"{motor}.EGU" and nm_per(v):
                return v, f"Extra PV {n} = {v}"
        for n, v, u in pvs:
            if n in (motor, f"{motor}.VAL", f"{motor}.RBV") and nm_per(u):
                return u, f"Extra PV {n} in {u}"
    for entry in (find("P1SI"), pv):
        if entry and nm_per(entry[2]):
            return entry[2], f"Extra PV {entry[0]} in {entry[2]}"
    return None, ""


def maps_units(f, x_path, y_path, scaler_names, scaler_units) -> tuple[str, str, str]:
    """(x unit, y unit, where they were read) for a MAPS file's axes."""
    x_attr, y_attr = attr_unit(f.get(x_path)), attr_unit(f.get(y_path))
    if x_attr or y_attr:
        return x_attr or y_attr, y_attr or x_attr, f"{x_path} units attribute"
    scalers = _scaler_units(f, scaler_names, scaler_units)
    if "x_coord" in scalers or "y_coord" in scalers:
        x, y = scalers.get("x_coord"), scalers.get("y_coord")
        return x or y, y or x, f"{scaler_units} (x_coord, y_coord)"
    pvs = extra_pvs(f)
    (x, x_where), (y, y_where) = _scan_unit(pvs, "scan1"), _scan_unit(pvs, "scan2")
    if x or y:
        where = "; ".join(w for w in (x_where, y_where) if w)
        return x or y, y or x, where
    return ASSUMED, ASSUMED, f"no unit stated in the file; {ASSUMED} assumed"


def pyxrf_units(f) -> tuple[str, str, str]:
    """(x unit, y unit, where) for PyXRF positions: the scan metadata's fast/slow axis units."""
    md = f.get("xrfmap/scan_metadata")
    attrs = md.attrs if isinstance(md, h5py.Group) else {}

    def unit(key):
        value = attrs.get(key) if key in attrs else None
        value = value.decode(errors="replace") if isinstance(value, bytes) else value
        return str(value).strip() if value is not None and nm_per(value) else None

    x, y = unit("param_fast_axis_units"), unit("param_slow_axis_units")
    if x or y:
        return x or y, y or x, "xrfmap/scan_metadata param_fast_axis_units, param_slow_axis_units"
    return ASSUMED, ASSUMED, f"no unit stated in the file; {ASSUMED} assumed"


def to_um(axis, unit: str):
    """Positions in `unit` as um (float64), or None."""
    if axis is None:
        return None
    return np.asarray(axis, dtype=np.float64) * (nm_per(unit) / 1000.0)


def from_um(axis_um, unit: str) -> np.ndarray:
    return np.asarray(axis_um, dtype=np.float64) / (nm_per(unit) / 1000.0)


def plausible(pixel, where: str) -> tuple[tuple[float, float] | None, str | None]:
    """(pixel, None) when the step is one XRF mapping uses; (None, the reason) when not."""
    if pixel is None:
        return None, None
    if all(MIN_STEP_NM <= p <= MAX_STEP_NM for p in pixel):
        return pixel, None
    shown = " x ".join(f"{p:g}" for p in pixel)
    return None, (f"{where} give a step of {shown} nm (y x), outside {MIN_STEP_NM:g} nm - 1 mm: "
                  "treated as unknown; state the step (--pixel-nm)")
