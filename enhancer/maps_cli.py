"""`python -m enhancer info`, `degrade` and `roi`: a map file in, facts or maps out, no model.
Registered from cli.py."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import UserError
from .cli_common import add_forward_args, degradation, fine_pixel
from .formats import read


def save_maps(path, xrfmap):
    """Write maps made here (degrade), by the output's suffix (results: pipeline.Result.write)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(path, xrfmap.data)
    elif suffix in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(path, xrfmap.data, metadata={"axes": "QYX", "elements": xrfmap.elements})
    else:
        raise UserError(f"{path}: write .npy or .tif for this input (HDF5 inputs are written as HDF5)")
    return path


def cmd_info(args):
    from .physics import estimate_counts

    m = read(args.file, args.pixel_nm)
    px = m.pixel_size_nm
    print(json.dumps({
        "format": m.source_format,
        "elements": m.elements,
        "shape": list(m.shape),
        "pixel_size_nm": None if px is None else (px[0] if px[0] == px[1] else list(px)),
        "pixel_size_from": m.source.get("pixel_size_from"),
        "pixel_size_note": m.source.get("pixel_size_note"),
        "scalers": sorted(m.scalers),
        "extras": sorted(m.extras),
        "units": m.units,
        "counts_estimate": estimate_counts(m.data),  # peak counts from the Poisson noise; null: no telling
    }))


def cmd_degrade(args):
    m = read(args.input, args.pixel_nm)
    d = degradation(args, fine_pixel(m, args.pixel_nm))
    out = m.with_data(d.apply(m.data, seed=args.seed), pixel_size_nm=(d.step_nm, d.step_nm))
    save_maps(args.output, out)


def cmd_roi(args):
    from .formats import read_maps
    from .roi import find_rois, grid_step_nm, write_scan_list

    for name in ("pixel_nm", "step_nm"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be positive")
    if args.min_area_px < 1 or (args.clusters is not None and args.clusters < 1) or \
            (args.top is not None and args.top < 1):
        raise UserError("--min-area-px, --clusters and --top must be 1 or more")
    m = read_maps(args.input, args.maps, args.pixel_nm)  # the enhanced maps when it has both
    rois = find_rois(m, elements=args.elements, pixel_nm=args.pixel_nm, clusters=args.clusters,
                     min_area_px=args.min_area_px, step_nm=args.step_nm, top=args.top)
    used = {"maps": m.source.get("maps"), "method": m.source.get("method"),
            "grid_step_nm": grid_step_nm(m, args.pixel_nm),
            "step_from": m.source.get("pixel_size_from") or "motor axes"}
    csv_path, json_path = write_scan_list(rois, args.output, list(m.elements), source=str(args.input),
                                          elements_segmented=args.elements or list(m.elements), **used)
    print(json.dumps({"rois": len(rois), "clusters": len({r["cluster"] for r in rois}), **used,
                      "csv": str(csv_path), "json": str(json_path)}))


def add_info_parser(sub) -> None:
    s = sub.add_parser("info", help="what a map file holds, as JSON")
    s.add_argument("file")
    s.add_argument("--pixel-nm", type=float)
    s.set_defaults(run=cmd_info)


def add_degrade_parser(sub) -> None:
    s = sub.add_parser("degrade", help="simulate a measurement: probe blur, step sampling, noise")
    s.add_argument("input")
    s.add_argument("output")
    add_forward_args(s)
    s.set_defaults(run=cmd_degrade)


def add_roi_parser(sub) -> None:
    from .roi import CONVENTION, CSV_COLUMNS

    s = sub.add_parser(
        "roi", help="suggest regions for targeted fine scans (CSV + JSON scan list)",
        description="Segment the map on a sum of elements, cluster the regions by content and "
                    "rank them (rare kinds and strong signals first). Writes OUT.csv with columns "
                    f"{', '.join(CSV_COLUMNS)}, <element>_mean, and OUT.json beside it. "
                    f"Coordinates: {CONVENTION}.")
    s.add_argument("input", metavar="IN", help="a map file (usually the enhanced one)")
    s.add_argument("output", metavar="OUT.csv", help="the scan list to write (a .json goes beside it)")
    s.add_argument("--pixel-nm", type=float,
                   help="the map's pixel (grid step) in nm; wins over the file's axes and step")
    s.add_argument("--elements", nargs="+", help="elements to segment on (default: all)")
    s.add_argument("--clusters", type=int, help="number of kinds of region (default: by silhouette)")
    s.add_argument("--min-area-px", type=int, default=20, help="smallest region kept, in pixels")
    s.add_argument("--step-nm", type=float, help="suggested fine-scan step (default: the map's pixel)")
    s.add_argument("--top", type=int, help="keep only the N best regions")
    s.add_argument("--maps", choices=["original", "enhanced"],
                   help="which maps of a result file holding both (default: enhanced)")
    s.set_defaults(run=cmd_roi)
