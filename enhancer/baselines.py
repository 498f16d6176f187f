"""Classical baselines with the same probe: interpolation, Wiener, Richardson-Lucy.

For a coarse scan (scale S > 1) the map is first interpolated to the fine grid, then deconvolved
with the effective probe on that grid: the probe convolved with the S x S box of the dwell.
Deconvolution runs on a reflect-padded map (the forward model's boundary) and on maps scaled
to a peak near 1, which is what scikit-image's algorithms assume.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from skimage.restoration import richardson_lucy as sk_richardson_lucy
from skimage.restoration import wiener as sk_wiener

from .metrics import psnr
from .network import upsample as _torch_upsample


def upsample(maps, scale: int, method: str = "bicubic") -> np.ndarray:
    """Coarse -> fine grid with each coarse pixel at its block's centre."""
    maps = np.asarray(maps, np.float32)
    squeeze = maps.ndim == 2
    m = maps[None] if squeeze else maps
    if scale == 1:
        out = m.copy()
    elif method == "bicubic":  # the network's own interpolation, so the baselines share it
        out = _torch_upsample(torch.from_numpy(m[None].copy()), scale)[0].numpy()
    elif method == "lanczos":
        from PIL import Image

        out = np.stack([np.asarray(Image.fromarray(c).resize(
            (c.shape[1] * scale, c.shape[0] * scale), Image.Resampling.LANCZOS)) for c in m])
    else:
        raise ValueError(f"unknown interpolation {method!r} (bicubic or lanczos)")
    return out[0] if squeeze else out


def effective_probe(probe: np.ndarray, scale: int) -> np.ndarray:
    if scale == 1:
        return probe
    box = np.ones((scale + 1 - scale % 2,) * 2)
    if scale % 2 == 0:  # an even box on an odd grid: half weights at the rim keep it centred
        box[0, :] *= 0.5
        box[-1, :] *= 0.5
        box[:, 0] *= 0.5
        box[:, -1] *= 0.5
    eff = ndimage.convolve(np.pad(probe, scale), box / box.sum(), mode="constant")
    eff = eff[~np.all(eff < 1e-12, axis=1)][:, ~np.all(eff < 1e-12, axis=0)]
    return eff / eff.sum()


def _per_map(maps, fn):
    maps = np.asarray(maps, np.float32)
    if maps.ndim == 2:
        return fn(maps, 0)
    return np.stack([fn(m, i) for i, m in enumerate(maps)])


def _padded(m, psf, fn):
    """Run fn on the map reflect-padded by the probe's radius, scaled to peak 1; undo both."""
    pad = max(psf.shape) // 2 + 1
    peak = float(np.abs(m).max()) or 1.0
    out = fn(np.pad(m / peak, pad, mode="symmetric").astype(np.float64))
    return (out[pad:-pad, pad:-pad] * peak).astype(np.float32)


def wiener(maps, probe, scale: int = 1, balance: float = 0.05) -> np.ndarray:
    psf = effective_probe(probe, scale)
    up = upsample(maps, scale)
    return _per_map(up, lambda m, i: _padded(m, psf, lambda x: sk_wiener(x, psf, balance, clip=False)))


def richardson_lucy(maps, probe, scale: int = 1, iterations: int = 30) -> np.ndarray:
    psf = effective_probe(probe, scale)
    up = np.clip(upsample(maps, scale), 0, None)
    return _per_map(up, lambda m, i: _padded(
        m, psf, lambda x: sk_richardson_lucy(x, psf, num_iter=iterations, clip=False)))


RL_ITERATIONS = (1, 2, 3, 5, 8, 12, 18, 27, 40, 60, 90)
WIENER_BALANCES = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def _oracle(run, choices, maps, truth):
    """Per element, the choice with the best PSNR against the truth (an upper bound for users)."""
    maps, truth = np.asarray(maps, np.float32), np.asarray(truth, np.float32)
    maps = maps[None] if maps.ndim == 2 else maps
    truth = truth[None] if truth.ndim == 2 else truth
    best, picks = [], []
    for m, t in zip(maps, truth):
        scored = [(psnr(est := run(m, c), t), c, est) for c in choices]
        score, choice, est = max(scored, key=lambda s: s[0])
        best.append(est)
        picks.append(choice)
    return np.stack(best), picks


def rl_oracle(maps, probe, truth, scale: int = 1):
    """Richardson-Lucy with its iteration count tuned per element for the best PSNR."""
    return _oracle(lambda m, n: richardson_lucy(m, probe, scale, n), RL_ITERATIONS, maps, truth)


def wiener_oracle(maps, probe, truth, scale: int = 1):
    """Wiener with its balance tuned per element for the best PSNR."""
    return _oracle(lambda m, b: wiener(m, probe, scale, b), WIENER_BALANCES, maps, truth)
