"""What a conditioned network (the universal model) is told about a map's degradation, and the
ranges it is trained for: one place, read by training (universal.py) and enhancement (enhance.py).
"""
from __future__ import annotations

import math

import torch

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))

PROBE_PX = (1.5, 8.0)  # probe FWHM in output pixels, each axis independently
SCALES = (1, 2, 3, 4)
COUNTS = (20.0, 10_000.0)  # peak counts per element
CONDITION_CHANNELS = 4
# The Wiener filter's reach in output pixels: beyond it the widest probe's kernel at the highest
# dose holds 1e-5 of its weight (1e-2 at the narrow end, but as a checkerboard that averages out:
# a start tiled with this much context matches the whole map's to 4e-4 of the peak, 2e-6 for 8 px).
REACH_PX = 64
# Wiener regulariser = BALANCE / sqrt(counts): the best fixed rule over 10 held-out phantoms and
# conditions (a / counts was best at a = 3 for 50 counts and a = 30 for 5000).
BALANCE = 0.4


def condition(probe_px, scale: int, counts: float) -> torch.Tensor:
    """The network's view of a degradation: each entry about 0..1."""
    fx, fy = probe_px
    return torch.tensor([fx / 8.0, fy / 8.0, scale / 4.0, math.sqrt(COUNTS[0] / counts)], dtype=torch.float32)


def wiener_start(coarse: torch.Tensor, probe_px, scale: int, counts: float, balance: float = BALANCE) -> torch.Tensor:
    """The physics first, as USRNet's data step: the scan (N, 1, h, w) interpolated to the fine
    grid and deconvolved by the stated probe and dwell in one Wiener filter, (N, 1, h*S, w*S).
    The network starts from this estimate and learns only what the filter gets wrong (noise it
    lets through, detail it cannot restore), so with its last layer at zero it is the filter.

    The transfer function is the Gaussian probe's (x and y apart) times the box dwell's
    (sinc(S f) on each axis); the regulariser balance / sqrt(counts) grows as the dose falls.
    Symmetric padding by the filter's whole reach keeps the edges from ringing and from the wrap
    of the FFT, so a pixel's start depends only on the scan within REACH_PX of it and a map can
    be filtered tile by tile (enhance.py); the mean passes (the transfer is 1 at zero frequency;
    the cut padding moves it by well under 1%, and enhance restores each element's mean exactly)."""
    from .network import upsample

    up = upsample(coarse.float(), scale)
    sx, sy = (p / FWHM_PER_SIGMA for p in probe_px)
    h, w = up.shape[-2:]
    pad_y, pad_x = min(REACH_PX, h - 1), min(REACH_PX, w - 1)
    x = torch.nn.functional.pad(up, (pad_x, pad_x, pad_y, pad_y), mode="reflect")
    fy = torch.fft.fftfreq(x.shape[-2], dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(x.shape[-1], dtype=torch.float64)[None, :]
    transfer = (torch.exp(-2 * math.pi**2 * (sx**2 * fx**2 + sy**2 * fy**2))
                * torch.sinc(scale * fx) * torch.sinc(scale * fy))
    lam = balance / math.sqrt(counts)
    filt = (transfer / (transfer**2 + lam)).to(torch.float32)
    out = torch.fft.irfft2(torch.fft.rfft2(x) * filt, s=x.shape[-2:])
    return out[..., pad_y : pad_y + h, pad_x : pad_x + w]
