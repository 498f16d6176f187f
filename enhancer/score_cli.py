"""`python -m enhancer evaluate` (scores against a truth) and `bench` (the benchmark protocol's
table). Registered from cli.py."""
from __future__ import annotations

import json
import shlex
import sys

from . import UserError
from .cli_common import fine_pixel
from .formats import read


def cmd_evaluate(args):
    from .metrics import frc_resolution_nm, psnr, ssim, totals_error

    truth, est = read(args.truth, args.pixel_nm), read(args.enhanced, args.pixel_nm)
    if truth.shape != est.shape:
        raise UserError(f"truth {list(truth.shape)} and enhanced {list(est.shape)} differ in shape")
    fine_pixel_nm = fine_pixel(truth, args.pixel_nm)
    report = {"psnr": psnr(est.data, truth.data), "ssim": ssim(est.data, truth.data),
              "frc_nm": frc_resolution_nm(est.data, truth.data, fine_pixel_nm)}
    if args.input:
        from .baselines import upsample  # imports torch (~2 s): only where the input is scored

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


def add_evaluate_parser(sub) -> None:
    s = sub.add_parser("evaluate", help="PSNR, SSIM, FRC resolution and totals against a truth")
    s.add_argument("--truth", required=True)
    s.add_argument("--enhanced", required=True)
    s.add_argument("--input", help="the degraded input, for its scores and the totals check")
    s.add_argument("--pixel-nm", type=float, help="the truth's pixel in nm")
    s.set_defaults(run=cmd_evaluate)


def add_bench_parser(sub) -> None:
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
