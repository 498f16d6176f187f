"""What several `python -m enhancer` subcommands share: the fine grid's pixel and the simulated
measurement (degrade, train, evaluate). Its own module so that the subcommand modules import it
and never each other."""
from __future__ import annotations

import numpy as np

from . import UserError


def fine_pixel(m, given):
    """degrade, train, evaluate: --pixel-nm is the fine grid's pixel, else the file's."""
    if given:
        return float(given)
    if m.pixel_size_nm is None:
        raise UserError(f"the pixel size of {m.source.get('path', 'the map')} is unknown: give --pixel-nm")
    return float(np.mean(m.pixel_size_nm))


def degradation(args, fine_pixel_nm):
    from .probe import one_probe, simulation
    from .probe_cli import measured_probe

    measured = measured_probe(args)
    one_probe(args.probe_fwhm_nm, measured is not None, "--probe-fwhm-nm FWHM", "--probe FILE --probe-pixel-nm P")
    if (args.probe_fwhm_nm is not None and args.probe_fwhm_nm <= 0) or fine_pixel_nm <= 0:
        raise UserError("--probe-fwhm-nm and --pixel-nm must be positive")
    if args.scale < 1:
        raise UserError("--scale must be 1 or more")
    return simulation(args.probe_fwhm_nm, fine_pixel_nm, args.scale, args.counts or None, measured)


def add_forward_args(s) -> None:
    """The simulated measurement's flags, the same on degrade and train."""
    from .probe_cli import add_probe_args

    s.add_argument("--probe-fwhm-nm", type=float, help="probe FWHM in nm (or --probe FILE)")
    add_probe_args(s)
    s.add_argument("--pixel-nm", type=float, help="fine pixel size in nm (read from the file when it says)")
    s.add_argument("--scale", type=int, default=1, help="scan step in fine pixels (S)")
    s.add_argument("--counts", type=float, default=1000.0, help="Poisson peak count (0: no noise)")
    s.add_argument("--seed", type=int, default=0)
