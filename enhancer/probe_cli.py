"""`python -m enhancer probe` (the probe from a map or a knife-edge scan) and `validate` (an
enhanced map against a fine scan of part of the same area). Registered from cli.py."""
from __future__ import annotations

import csv
import sys
import json
from pathlib import Path

import numpy as np

from . import UserError


def read_edge(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A knife-edge scan: (values, positions_nm or None). CSV with position_nm,value columns or one
    value column; .npy of one line or one 2-D map; any map file (its first element, or the one
    element it holds)."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{path}: no such file")
    if p.suffix.lower() in (".csv", ".txt"):
        return _read_csv(p)
    if p.suffix.lower() == ".npy":
        try:
            a = np.load(p, allow_pickle=False)
        except ValueError as e:
            raise UserError(f"{path}: not a plain numeric .npy ({e})") from None
        if a.ndim == 1 or a.ndim == 2:
            if not np.issubdtype(a.dtype, np.number):
                raise UserError(f"{path}: holds {a.dtype}, not numbers")
            return np.asarray(a, np.float64), None
    from .formats import read

    m = read(path)
    if m.data.shape[0] != 1:
        raise UserError(f"{path}: holds {m.data.shape[0]} maps; a knife-edge scan is one line or one map")
    return np.asarray(m.data[0], np.float64), None


def _read_csv(p: Path):
    with open(p, newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise UserError(f"{p}: empty")
    header = [c.strip().lower() for c in rows[0]]
    has_header = any(not _is_number(c) for c in rows[0])
    body = rows[1:] if has_header else rows
    try:
        values = np.array([[float(c) for c in r] for r in body], np.float64)
    except ValueError:
        raise UserError(f"{p}: every row after the header must hold numbers") from None
    if values.ndim != 2 or len(values) == 0:
        raise UserError(f"{p}: rows of differing lengths")
    if values.shape[1] == 1:
        return values[:, 0], None
    if has_header and "position_nm" in header and "value" in header:
        return values[:, header.index("value")], values[:, header.index("position_nm")]
    if values.shape[1] == 2 and not has_header:
        return values[:, 1], values[:, 0]
    raise UserError(f"{p}: expected columns position_nm,value (or one value column); got {rows[0]}")


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def cmd_probe(args):
    from .probe import blind, knife_edge

    sampling = args.sampling
    if args.knife_edge:
        values, positions = read_edge(args.input)
        if positions is None and not args.pixel_nm:
            raise UserError("give --pixel-nm: the knife-edge scan's step in nm")
        if args.pixel_nm is not None and args.pixel_nm <= 0:
            raise UserError("--pixel-nm must be positive")
        step = args.pixel_nm or float(np.median(np.diff(np.sort(positions))))
        result = knife_edge(values, step, positions, sampling=sampling, axis=args.axis)
    else:
        from .formats import read

        m = read(args.input, args.pixel_nm)
        if args.pixel_nm is not None and args.pixel_nm <= 0:
            raise UserError("--pixel-nm must be positive")
        if args.pixel_nm:
            step = (float(args.pixel_nm),) * 2
        elif m.pixel_size_nm is not None:
            step = (float(m.pixel_size_nm[1]), float(m.pixel_size_nm[0]))  # (x, y) from (y, x)
        else:
            raise UserError(f"the scan step of {args.input} is unknown: give --pixel-nm")
        data = m.data
        if args.element:
            if args.element not in m.elements:
                raise UserError(f"no element {args.element!r} in {args.input}; it has {', '.join(m.elements)}")
            data = data[m.elements.index(args.element)][None]
        result = blind(data, step, dwell=sampling == "box")
        result["elements"] = [args.element] if args.element else list(m.elements)
    print(json.dumps(result))


def add_parser(sub) -> None:
    s = sub.add_parser(
        "probe", help="estimate the probe's FWHM from a map (blind) or a knife-edge scan",
        description="Prints one JSON object: fwhm_nm [x, y] (x along columns), uncertainty_nm, method. "
                    "Blind: from the map's power spectrum (docs/probe.md). A map with too little "
                    "information (flat, pure noise, a probe under one step) is refused (exit 2).")
    s.add_argument("input", metavar="IN", help="a map file, or with --knife-edge a scan across an edge")
    s.add_argument("--pixel-nm", type=float, help="the scan step in nm (read from the file when it says)")
    s.add_argument("--element", help="use this element only (default: all, each scaled to its peak)")
    s.add_argument("--knife-edge", action="store_true",
                   help="IN is a knife-edge scan: .csv (position_nm,value or one value column), a 1-D "
                        ".npy, or a 2-D map of an edge; fitted by an error function")
    s.add_argument("--axis", choices=["x", "y"],
                   help="knife-edge: the axis the scan runs along (default: x for a line, the one with "
                        "the larger gradient for a map)")
    s.add_argument("--sampling", choices=["box", "point"], default="box",
                   help="box (default): each pixel integrates over its step (fly scans); point: step scans")
    s.set_defaults(run=cmd_probe)


def _step(m, given, flag: str, what: str) -> float:
    """The file's pixel where it says, else the flag's; never assumed."""
    if m.pixel_size_nm is not None:
        return float(np.mean(m.pixel_size_nm))
    if given:
        if given <= 0:
            raise UserError(f"{flag} must be positive")
        return float(given)
    raise UserError(f"the pixel size of {what} is unknown: give {flag}")


def cmd_validate(args):
    from .formats import read, read_enhanced
    from .formats.write import atomic_file
    from .validate import validate_result

    inp = read(args.input)
    enhanced = read_enhanced(args.enhanced, inp)
    fine = read(args.fine)
    step = _step(inp, args.pixel_nm, "--pixel-nm", args.input)
    fine_pixel = _step(fine, args.fine_pixel_nm, "--fine-pixel-nm", args.fine)
    report = validate_result(inp, enhanced, fine, step, fine_pixel)
    with atomic_file(args.out) as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("offset_px", "overlap_px", "psnr_db", "ssim", "frc_nm", "elements")}))


def add_validate_parser(sub) -> None:
    s = sub.add_parser(
        "validate", help="score an enhanced map against a fine scan of part of the same area",
        description="FINE (any supported format, its own pixel) is resampled to the enhanced grid, "
                    "located on it by phase correlation of the element sums and used as the truth on "
                    "the overlap: PSNR (range of FINE over the overlap), SSIM and FRC of the enhanced "
                    "map, the input and Richardson-Lucy. Under 50%% overlap or a correlation under 0.5: "
                    "exit 2 with the numbers.")
    s.add_argument("input", metavar="INPUT", help="the measured (coarse) map that was enhanced")
    s.add_argument("enhanced", metavar="ENHANCED", help="its enhancement (a result file or maps)")
    s.add_argument("fine", metavar="FINE", help="a finer scan of part of the same area")
    s.add_argument("--pixel-nm", type=float, help="INPUT's step in nm, where its file does not say")
    s.add_argument("--fine-pixel-nm", type=float, help="FINE's pixel in nm, where its file does not say")
    s.add_argument("--out", required=True, metavar="REPORT.json", help="where to write the report")
    s.set_defaults(run=cmd_validate)


def add_probe_args(s) -> None:
    """--probe FILE --probe-pixel-nm P: a measured probe, the PSF wherever the physics is simulated."""
    s.add_argument("--probe", metavar="FILE",
                   help="a measured probe: a 2-D intensity or complex amplitude (|a|^2 is taken) in .npy, "
                        ".tif or HDF5 (FILE.h5 or FILE.h5:/dataset); used as the PSF, its FWHM as the summary")
    s.add_argument("--probe-pixel-nm", type=float, metavar="P", help="the measured probe's pixel in nm")


def measured_probe(args):
    """(intensity, pixel_nm) from --probe/--probe-pixel-nm, or None when no probe file is given."""
    from .probe import read_probe

    if not getattr(args, "probe", None):
        if getattr(args, "probe_pixel_nm", None) is not None:
            raise UserError("--probe-pixel-nm goes with --probe FILE")
        return None
    if args.probe_pixel_nm is None or not args.probe_pixel_nm > 0:
        raise UserError("--probe needs --probe-pixel-nm: the measured probe's pixel in nm (never assumed)")
    return read_probe(args.probe), float(args.probe_pixel_nm)


def stated_probe(m, physics, args):
    """The physics with the probe a person gave beyond a FWHM: a measured one (--probe: the PSF,
    its FWHM the summary) or `--probe-fwhm-nm auto` (the blind estimate). Either is recorded in
    the map's provenance (it travels into the result file)."""
    import dataclasses

    from .probe import blind, record_measured_probe

    measured = measured_probe(args)
    auto = str(args.probe_fwhm_nm or "").strip().lower() == "auto"
    if measured is not None and args.probe_fwhm_nm is not None:
        raise UserError("give --probe FILE or --probe-fwhm-nm, not both (a measured probe's FWHM is read from it)")
    if measured is not None:
        return record_measured_probe(m, physics, *measured, Path(args.probe).name)
    if auto:
        if physics.scan_step_nm is None:
            raise UserError("--probe-fwhm-nm auto estimates the probe from the map in units of its step, "
                            "which is unknown: give --pixel-nm")
        estimate = blind(m.data, physics.scan_step_nm)
        m.provenance["probe_estimate"] = estimate
        print(f"note: probe estimated from the map: {estimate['fwhm_nm'][0]:g} x {estimate['fwhm_nm'][1]:g} "
              f"nm (+- {estimate['uncertainty_nm'][0]:g} x {estimate['uncertainty_nm'][1]:g})", file=sys.stderr)
        return dataclasses.replace(physics, probe_fwhm_nm=tuple(float(v) for v in estimate["fwhm_nm"]))
    return physics
