"""`python -m enhancer enhance` and `consistency`: a model run on a map with the map's own physics,
and the chi^2 of the result against the map. Registered from cli.py."""
from __future__ import annotations

import json
import sys

import numpy as np

from . import UserError
from .formats import read

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
    from .bundle import find_bundle, load_bundle
    from .fit import require

    _, config = find_bundle(args.model)  # model.json only: every refusal below runs without torch
    scan = read(args.input)
    physics = map_physics(scan, args)  # --pixel-nm is the scan step, over the file's
    f = require(config, physics, args.scale, _flags(scan))  # refuse before any work
    from . import pipeline  # imports torch (~2 s): only once the command is known to be sound

    bundle = load_bundle(args.model)
    pipeline.run(scan, bundle, physics=physics, scale=f.scale, device=args.device,
                 ensemble=args.ensemble).write(args.output)
    if f.note:  # after the run: an error is then the one line on stderr
        print(f"note: {f.note}", file=sys.stderr)


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


def add_enhance_parser(sub) -> None:
    s = sub.add_parser("enhance", help="enhance every element of a map with a model")
    s.add_argument("input")
    s.add_argument("output")
    s.add_argument("--model", required=True,
                   help="a model folder or a shipped name (universal, protocol-a, -b, -c)")
    add_physics_args(s)
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("--ensemble", type=int, default=1, help="average over N flips/rotations (1-8)")
    s.set_defaults(run=cmd_enhance)


def add_consistency_parser(sub) -> None:
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
