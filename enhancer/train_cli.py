"""`python -m enhancer train`: a model from fine maps or phantoms by simulated degradation.
Registered from cli.py."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from . import UserError
from .cli_common import add_forward_args, degradation, fine_pixel
from .formats import read


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
    from .probe import trained_with
    from .trainset import build_run

    maps, names = [], []
    fine_pixel_nm = args.pixel_nm  # on degrade and train, --pixel-nm is the fine grid's
    for f in args.highres:
        m = read(f, args.pixel_nm)
        fine_pixel_nm = fine_pixel_nm or fine_pixel(m, None)
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
    simulated = degradation(args, fine_pixel_nm)
    sources = {"files": names, "coarse_files": [Path(f).name for f in args.coarse or []]}
    if simulated.measured_probe is not None:
        sources["measured_probe"] = trained_with(simulated, Path(args.probe).name, args.probe_pixel_nm)
    run = build_run(maps, fine_pixel_nm, phantoms=args.phantoms, phantom_kinds=kinds, phantom_size=args.phantom_size,
                    phantom_gamma=(low, high), phantom_offset=offsets, phantom_probe_nm=fine_probe,
                    seed=args.seed, coarse=coarse, sources=sources)
    init = load_bundle(args.init) if args.init else None

    def report(p):
        print(json.dumps(p), flush=True)

    from .train import train  # imports torch (~2 s): after every refusal above

    bundle = train(run.maps, simulated, args.out, minutes=args.minutes, steps=args.steps,
                   blocks=args.blocks, filters=args.filters, device=args.device, seed=args.seed, lr=args.lr,
                   validation=run.validation, source_summary=run.summary, progress=report, coarse=run.coarse,
                   init=init,
                   loss=args.loss, command="python -m enhancer " + shlex.join(sys.argv[1:]))
    print(json.dumps({"model": str(bundle.path), **bundle.spec.metrics}))


def add_parser(sub) -> None:
    s = sub.add_parser("train", help="train a model by simulated degradation of fine maps")
    s.add_argument("highres", nargs="*", help="fine maps to learn from")
    s.add_argument("--out", required=True, help="the model folder to write")
    add_forward_args(s)
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
