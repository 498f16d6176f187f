"""`python -m enhancer SUBCOMMAND ...`: the same science the web uses, for beamline scripts.

Every error a user can cause ends as one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from . import Cancelled, UserError
from .formats import read

EXIT_USER = 2


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


def _degradation(args, fine_pixel_nm):
    from .degrade import Degradation
    from .probe import measured_degradation
    from .probe_cli import measured_probe

    measured = measured_probe(args)
    if measured is not None and args.probe_fwhm_nm is not None:
        raise UserError("give --probe FILE or --probe-fwhm-nm, not both (a measured probe's FWHM is read from it)")
    if measured is None and args.probe_fwhm_nm is None:
        raise UserError("give the probe: --probe-fwhm-nm FWHM, or a measured one with --probe FILE --probe-pixel-nm P")
    if (args.probe_fwhm_nm is not None and args.probe_fwhm_nm <= 0) or fine_pixel_nm <= 0:
        raise UserError("--probe-fwhm-nm and --pixel-nm must be positive")
    if args.scale < 1:
        raise UserError("--scale must be 1 or more")
    d = Degradation(args.probe_fwhm_nm or 1.0, fine_pixel_nm, args.scale, args.counts or None)
    return d if measured is None else measured_degradation(d, *measured)


def _fine_pixel(m, given):
    """degrade, train, evaluate: --pixel-nm is the fine grid's pixel, else the file's."""
    if given:
        return float(given)
    if m.pixel_size_nm is None:
        raise UserError(f"the pixel size of {m.source.get('path', 'the map')} is unknown: give --pixel-nm")
    return float(np.mean(m.pixel_size_nm))


def cmd_degrade(args):
    m = read(args.input, args.pixel_nm)
    d = _degradation(args, _fine_pixel(m, args.pixel_nm))
    out = m.with_data(d.apply(m.data, seed=args.seed), pixel_size_nm=(d.step_nm, d.step_nm))
    save_maps(args.output, out)


def _range(text: str, flag: str, least: float, most: float) -> tuple[float, float]:
    """"V" or "LOW,HIGH" -> (low, high), both within least..most ("V" is (V, V))."""
    try:
        values = [float(v) for v in text.split(",")]
        low, high = values[0], values[-1]
        if len(values) <= 2 and least <= low <= high <= most:
            return low, high
    except ValueError:
        pass
    raise UserError(f"{flag} takes V or LOW,HIGH with {least:g} <= LOW <= HIGH <= {most:g}; got {text!r}")


def cmd_train(args):
    from .bundle import load_bundle
    from .phantoms import KINDS
    from .train import train
    from .trainset import build_run

    maps, names = [], []
    fine_pixel_nm = args.pixel_nm  # on degrade and train, --pixel-nm is the fine grid's
    for f in args.highres:
        m = read(f, args.pixel_nm)
        fine_pixel_nm = fine_pixel_nm or _fine_pixel(m, None)
        maps.append(m.data)
        names.append(Path(f).name)
    coarse = [read(f, None).data for f in args.coarse] if args.coarse else None
    kinds = [k.strip() for k in args.phantom_kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS + ("mixed",)]
    if unknown or not kinds:
        raise UserError(f"--phantom-kinds takes a comma list of {', '.join(KINDS)}, mixed; got {args.phantom_kinds!r}")
    low, high = _range(args.phantom_gamma, "--phantom-gamma", 0.2, 5)
    offsets = _range(args.phantom_offset, "--phantom-offset", 0, 10)
    if not maps and not args.phantoms:
        raise UserError("give high-resolution maps to learn from, or --phantoms N")
    if not fine_pixel_nm:
        raise UserError("give --pixel-nm: the fine grid's pixel size in nm")
    fine_probe = _range(args.phantom_probe_nm, "--phantom-probe-nm", 0, 10 * fine_pixel_nm)
    if coarse is not None and (args.phantoms or len(coarse) != len(maps)):
        raise UserError("--coarse takes one coarse scan per fine map, in the same order (no --phantoms)")
    run = build_run(maps, fine_pixel_nm, phantoms=args.phantoms, phantom_kinds=kinds, phantom_size=args.phantom_size,
                    phantom_gamma=(low, high), phantom_offset=offsets, phantom_probe_nm=fine_probe,
                    seed=args.seed, coarse=coarse,
                    sources={"files": names, "coarse_files": [Path(f).name for f in args.coarse or []]})
    init = load_bundle(args.init) if args.init else None

    def report(p):
        print(json.dumps(p), flush=True)

    bundle = train(run.maps, _degradation(args, fine_pixel_nm), args.out, minutes=args.minutes, steps=args.steps,
                   blocks=args.blocks, filters=args.filters, device=args.device, seed=args.seed, lr=args.lr,
                   validation=run.validation, source_summary=run.summary, progress=report, coarse=run.coarse,
                   init=init,
                   loss=args.loss, command="python -m enhancer " + shlex.join(sys.argv[1:]))
    print(json.dumps({"model": str(bundle.path), **bundle.spec.metrics}))


# What the one fit rule (enhancer.fit) asks for, and the flag that states it.
FLAGS = {"step": "--pixel-nm", "probe": "--probe-fwhm-nm", "dose": "--counts"}
SCALE_HELP = ("output grid = STEP / S. Default: a single-condition model's own scale; for a "
              "conditioned model (universal) the scale in 1-4 that puts the probe's FWHM nearest "
              "3 output pixels while both axes stay within its range")


def add_physics_args(s) -> None:
    """The map's physics flags, the same on every subcommand that runs a model."""
    s.add_argument("--pixel-nm", metavar="STEP", help="the map's scan step in nm, or X,Y "
                   "(default: what the file says; unknown is refused, never assumed)")
    s.add_argument("--probe-fwhm-nm", metavar="FWHM|FX,FY|auto",
                   help="the probe's FWHM in nm; FX along x (columns, the fast axis), FY along y (rows); "
                        "auto: estimated from the map (`probe`, docs/probe.md) and recorded in the result. "
                        "Needed by universal; a single-condition model assumes its own and says so")
    from .probe_cli import add_probe_args

    add_probe_args(s)
    s.add_argument("--scale", type=int, metavar="S", help=SCALE_HELP)
    s.add_argument("--counts", type=float, metavar="C",
                   help="expected counts at the brightest pixel (default: estimated from the data's "
                        "Poisson noise, enhancer.physics.estimate_counts)")


def map_physics(m, args):
    """The Physics of map m from the flags (enhancer.physics.physics_of); a bad value is a
    UserError naming its flag."""
    from .physics import parse_pair, physics_of

    def parsed(flag, value, what):
        try:
            return parse_pair(value, what) if value is not None else None
        except UserError as e:
            raise UserError(f"{flag}: {e}") from None

    from .probe_cli import stated_probe

    step = parsed("--pixel-nm", args.pixel_nm, "the scan step")
    auto = str(args.probe_fwhm_nm or "").strip().lower() == "auto"  # the blind estimate
    probe = None if auto else parsed("--probe-fwhm-nm", args.probe_fwhm_nm, "the probe FWHM")
    if args.counts is not None and not args.counts > 0:
        raise UserError(f"--counts must be positive (got {args.counts:g})")
    return stated_probe(m, physics_of(m, step, probe, args.counts), args)


def _flags(m) -> dict:
    """FLAGS, with why the file's own step was not taken when it says (formats/units.py)."""
    note = m.source.get("pixel_size_note")
    return {**FLAGS, "step": f"--pixel-nm; the file: {note}"} if note else FLAGS


def cmd_enhance(args):
    from . import pipeline
    from .bundle import load_bundle
    from .fit import require

    bundle = load_bundle(args.model)
    scan = read(args.input)
    physics = map_physics(scan, args)  # --pixel-nm is the scan step, over the file's
    f = require(bundle.config, physics, args.scale, _flags(scan))  # refuse before any work
    pipeline.run(scan, bundle, physics=physics, scale=f.scale, device=args.device,
                 ensemble=args.ensemble).write(args.output)
    if f.note:  # after the run: an error is then the one line on stderr
        print(f"note: {f.note}", file=sys.stderr)


def cmd_evaluate(args):
    from .baselines import upsample
    from .metrics import frc_resolution_nm, psnr, ssim, totals_error

    truth, est = read(args.truth, args.pixel_nm), read(args.enhanced, args.pixel_nm)
    if truth.shape != est.shape:
        raise UserError(f"truth {list(truth.shape)} and enhanced {list(est.shape)} differ in shape")
    fine_pixel_nm = _fine_pixel(truth, args.pixel_nm)
    report = {"psnr": psnr(est.data, truth.data), "ssim": ssim(est.data, truth.data),
              "frc_nm": frc_resolution_nm(est.data, truth.data, fine_pixel_nm)}
    if args.input:
        inp = read(args.input, None)
        scale = truth.shape[-1] // inp.shape[-1]
        up = upsample(inp.data, scale)
        report["totals"] = totals_error(est.data, inp.data)
        report["input"] = {"psnr": psnr(up, truth.data), "ssim": ssim(up, truth.data),
                           "frc_nm": frc_resolution_nm(up, truth.data, fine_pixel_nm)}
    else:
        report["totals"] = totals_error(est.data, truth.data)
    print(json.dumps(report))


def cmd_bench(args):
    if args.universal and not args.speed:  # the universal model's own grid of conditions
        from .bench_universal import run

        return run((args.models or ["universal"])[0], args.quick, args.out, args.record,
                   "python -m enhancer " + shlex.join(sys.argv[1:]))
    from .bench import run_bench

    run_bench(args)


def cmd_consistency(args):
    from .bundle import load_bundle
    from .fit import require
    from .formats import read_enhanced
    from .formats.write import atomic_file
    from .trust import consistency

    if not str(args.out).lower().endswith(".npy"):
        raise UserError(f"{args.out}: the chi^2 map is written as .npy")
    gain = _gain(args.gain)
    bundle = load_bundle(args.model)
    measured = read(args.input)
    enhanced = read_enhanced(args.enhanced, measured)
    f = require(bundle.config, map_physics(measured, args), args.scale, _flags(measured))
    if enhanced.shape[0] != measured.shape[0]:
        raise UserError(f"{args.enhanced} has {enhanced.shape[0]} maps but {args.input} has "
                        f"{measured.shape[0]}")
    chi2, summary = consistency(measured.data, enhanced.data, f.degradation(),
                                elements=measured.elements, fine_pixel_nm=f.fine_pixel_nm[0], gain=gain)
    with atomic_file(args.out) as tmp, open(tmp, "wb") as fh:
        np.save(fh, chi2, allow_pickle=False)
    if f.note:
        print(f"note: {f.note}", file=sys.stderr)
    print(json.dumps(summary))


def _gain(text: str):
    if text in ("auto", "model", "data"):
        return text
    try:
        return float(text)
    except ValueError:
        raise UserError(f"--gain takes auto, model, data or a number; got {text!r}") from None


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


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error here (scripts read stderr's last line)."""

    def error(self, message):
        self.exit(EXIT_USER, f"error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m enhancer", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    from . import probe_cli

    s = sub.add_parser("info", help="what a map file holds, as JSON")
    s.add_argument("file")
    s.add_argument("--pixel-nm", type=float)
    s.set_defaults(run=cmd_info)

    def forward(s):
        s.add_argument("--probe-fwhm-nm", type=float, help="probe FWHM in nm (or --probe FILE)")
        probe_cli.add_probe_args(s)
        s.add_argument("--pixel-nm", type=float, help="fine pixel size in nm (read from the file when it says)")
        s.add_argument("--scale", type=int, default=1, help="scan step in fine pixels (S)")
        s.add_argument("--counts", type=float, default=1000.0, help="Poisson peak count (0: no noise)")
        s.add_argument("--seed", type=int, default=0)

    s = sub.add_parser("degrade", help="simulate a measurement: probe blur, step sampling, noise")
    s.add_argument("input")
    s.add_argument("output")
    forward(s)
    s.set_defaults(run=cmd_degrade)

    s = sub.add_parser("train", help="train a model by simulated degradation of fine maps")
    s.add_argument("highres", nargs="*", help="fine maps to learn from")
    s.add_argument("--out", required=True, help="the model folder to write")
    forward(s)
    budget = s.add_mutually_exclusive_group(required=True)
    budget.add_argument("--minutes", type=float)
    budget.add_argument("--steps", type=int)
    s.add_argument("--blocks", type=int, default=8)
    s.add_argument("--filters", type=int, default=32)
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("--phantoms", type=int, default=0, help="also learn from N generated phantoms")
    s.add_argument("--coarse", nargs="+", metavar="COARSE",
                   help="paired scans: one real coarse scan of the same area "
                        "per fine map, in order; aligned by cross-correlation, used instead of simulated ones")
    s.add_argument("--phantom-size", type=int, default=192)
    s.add_argument("--phantom-kinds", default="mixed",
                   help="comma list of phantom kinds, used in turn (default: mixed, a random draw per map)")
    s.add_argument("--phantom-gamma", default="1", metavar="G|LOW,HIGH",
                   help="raise each phantom (peak 1) to a power drawn from LOW..HIGH: >1 gives sparse, "
                        "high-contrast maps like real particle scans (default 1: as generated)")
    s.add_argument("--phantom-offset", default="0", metavar="V|LOW,HIGH",
                   help="add a flat pedestal drawn from LOW..HIGH (in units of the peak) under each phantom")
    s.add_argument("--phantom-probe-nm", default="0", metavar="FWHM|LOW,HIGH",
                   help="blur each phantom by a Gaussian probe of this FWHM (drawn from LOW..HIGH), as a "
                        "real fine scan is blurred by its own smaller probe (default 0: perfectly sharp)")
    s.add_argument("--loss", default="l1", choices=["l1", "mse"],
                   help="l1 (default) commits to sharp detail; mse aims at the mean, as PSNR scores")
    s.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (lower it to fine-tune briefly)")
    s.add_argument("--init", metavar="MODEL",
                   help="start from this model's weights (fine-tuning); its blocks and filters are kept")
    s.set_defaults(run=cmd_train)

    s = sub.add_parser("enhance", help="enhance every element of a map with a model")
    s.add_argument("input")
    s.add_argument("output")
    s.add_argument("--model", required=True,
                   help="a model folder or a shipped name (universal, protocol-a, -b, -c)")
    add_physics_args(s)
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("--ensemble", type=int, default=1, help="average over N flips/rotations (1-8)")
    s.set_defaults(run=cmd_enhance)

    s = sub.add_parser("evaluate", help="PSNR, SSIM, FRC resolution and totals against a truth")
    s.add_argument("--truth", required=True)
    s.add_argument("--enhanced", required=True)
    s.add_argument("--input", help="the degraded input, for its scores and the totals check")
    s.add_argument("--pixel-nm", type=float, help="the truth's pixel in nm")
    s.set_defaults(run=cmd_evaluate)

    s = sub.add_parser("bench", help="the benchmark protocol's table for the shipped models")
    s.add_argument("--out", default="bench-out", help="folder for table.json, table.md, figure")
    s.add_argument("--models", nargs="*", help="models to bench (default: the shipped ones)")
    s.add_argument("--cases", default="ABC", help="protocol cases to run, e.g. AB")
    s.add_argument("--quick", action="store_true", help="a small held-out set, for a smoke run")
    s.add_argument("--speed", action="store_true", help="measure inference speed and memory instead")
    s.add_argument("--universal", action="store_true",
                   help="the universal model over the grid of probes, steps and doses (with --speed: its speed)")
    s.add_argument("--record", action="store_true", help="write each case's results into its model.json")
    s.add_argument("--noise-seed", type=int, default=0,
                   help="seed of the noise draws (0, the default, is the recorded benchmark's); "
                        "others show how much a margin moves with the draw")
    s.set_defaults(run=cmd_bench)

    from .roi import CONVENTION, CSV_COLUMNS
    from .trust import THRESHOLD

    s = sub.add_parser(
        "consistency", help="chi^2 of an enhanced map against its measured input",
        description="Re-measure ENHANCED with the model's probe and step (no noise) and compare it "
                    "with IN in units of the expected Poisson noise. Writes the chi^2 map (E x H x "
                    "W on the input's grid, averaged over a probe-sized window, ~1 where the "
                    f"enhanced map fits the data, above {THRESHOLD:g} where the data do not support "
                    "it) and prints a JSON summary.")
    s.add_argument("input", metavar="IN", help="the measured map that was enhanced")
    s.add_argument("enhanced", metavar="ENHANCED", help="the enhanced map (a result file or maps)")
    s.add_argument("--model", required=True, help="the model that enhanced it (folder or shipped name)")
    add_physics_args(s)  # the physics it was enhanced with
    s.add_argument("--out", required=True, metavar="CHI2.npy", help="where to write the chi^2 map")
    s.add_argument("--gain", default="auto",
                   help="counts per map unit: auto (default), model, data, or a number")
    s.set_defaults(run=cmd_consistency)

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

    probe_cli.add_parser(sub)  # probe and validate wire their own subcommands
    probe_cli.add_validate_parser(sub)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER
    except Cancelled as e:
        print(f"stopped: {e}", file=sys.stderr)
        return EXIT_USER
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
