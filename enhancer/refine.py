"""A data step after the universal network: Richardson-Lucy from its output to the data's noise.

USRNet's idea without its cost (see universal.py): the network is one pass and cannot fit the
data exactly; where the dose is high, its output re-measured by the stated probe and step misses
the scan by several times the Poisson noise (mean chi^2 9 at probe 2 px, scale 1, 5000 counts).
Richardson-Lucy with the exact forward model (degrade.blur then degrade.sample: probe, box dwell,
step) starting from the network's output closes that gap, and stops by the discrepancy principle:
as soon as the mean Poisson chi^2 per scan pixel (trust.py's rule: the model's gain and noise
variance) is at most TARGET_CHI2, before any iteration if the network already fits. At low doses
the network's output already fits (chi^2 0.5-0.7 at 50 counts) and is left as it is; iterating
there would fit noise (measured: -0.1 dB per iteration at 50 counts). The rule never sees a truth.

Memory stays that of a few tiles whatever the map's size: each iteration re-measures the map tile
by tile into one scan-sized buffer, which then holds the data/model ratio, and multiplies the map
in place by that ratio spread back through the probe, tile by tile; each tile reads a halo as
wide as the probe's kernel, so tiles give what the whole map gives.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

TARGET_CHI2 = 1.0  # the discrepancy principle: the model fits the data to its noise
MAX_ITERATIONS = 30  # a dose stated too high never reaches the target; each one past it fits noise
TILE = 768  # output pixels a side, as enhance.TILE
RANK_TOLERANCE = 1e-4  # a probe is blurred as the sum of its separable parts above this weight


def _separable(psf: np.ndarray) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The probe as a few (column, row) 1-D kernels: one for a Gaussian, a few for a measured one
    (a 29 x 29 kernel costs 841 operations a pixel; its rank-1 part costs 58)."""
    u, s, vt = np.linalg.svd(np.asarray(psf, np.float64))
    keep = s > RANK_TOLERANCE * s[0]
    return [(torch.tensor(u[:, i] * s[i], dtype=torch.float32), torch.tensor(vt[i], dtype=torch.float32))
            for i in np.nonzero(keep)[0]]


def _symmetric(n: int, pad: int) -> torch.Tensor:
    """Indices padding an axis of n by `pad` as ndimage's 'reflect' (d c b a | a b c d), the forward
    model's boundary (degrade.blur), for any pad."""
    j = np.arange(-pad, n + pad) % (2 * n)
    return torch.from_numpy(np.where(j >= n, 2 * n - 1 - j, j))


def _rows(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Each row of x (H, W + len(k) - 1) correlated with k: (H, W). A matrix-vector product over
    strided windows, about 3x faster on CPU than a one-channel conv2d with the same kernel."""
    return x.unfold(1, len(k), 1) @ k


def _blur(x: torch.Tensor, parts, flip: bool) -> torch.Tensor:
    """(H, W) convolved with the probe (as degrade.blur), or with its mirror image (flip: the
    adjoint, which spreads a ratio back)."""
    ry, rx = (len(parts[0][0]) - 1) // 2, (len(parts[0][1]) - 1) // 2
    h, w = x.shape
    p = x.index_select(0, _symmetric(h, ry)).index_select(1, _symmetric(w, rx))
    out = 0
    for col, row in parts:  # correlating with the mirrored kernel is convolving
        c, r = (col, row) if flip else (col.flip(0), row.flip(0))
        out = out + _rows(_rows(p, r).t().contiguous(), c).t()
    return out


def _tiles(n: int, size: int):
    return [(a, min(a + size, n)) for a in range(0, n, size)]


class _Forward:
    """The map (fine, in place) and the scan, tile by tile on the scan's grid."""

    def __init__(self, fine: np.ndarray, psf: np.ndarray, scale: int, tile: int):
        self.fine, self.s = fine, scale
        self.parts = _separable(psf)
        r = max(psf.shape) // 2
        self.halo = math.ceil(r / scale) + 1  # scan pixels: the kernel's reach, rounded up
        h, w = fine.shape[0] // scale, fine.shape[1] // scale
        side = max(tile // scale, 8)
        self.boxes = [(y, x) for y in _tiles(h, side) for x in _tiles(w, side)]
        self.shape = (h, w)

    def _window(self, y0, y1, n):
        return max(y0 - self.halo, 0), min(y1 + self.halo, n)

    def remeasure(self, out: np.ndarray) -> None:
        """out (h, w) = the map seen through the probe and the dwell, without noise."""
        s, (h, w) = self.s, self.shape
        for (y0, y1), (x0, x1) in self.boxes:
            (wy0, wy1), (wx0, wx1) = self._window(y0, y1, h), self._window(x0, x1, w)
            x = torch.from_numpy(self.fine[wy0 * s: wy1 * s, wx0 * s: wx1 * s])
            m = _blur(x, self.parts, flip=False)
            m = F.avg_pool2d(m[None, None], s)[0, 0] if s > 1 else m
            out[y0:y1, x0:x1] = m[y0 - wy0: y1 - wy0, x0 - wx0: x1 - wx0].numpy()

    def spread_back(self, ratio: np.ndarray) -> None:
        """The map (in place) times the ratio (h, w) spread back through the dwell and the probe:
        one Richardson-Lucy step (the adjoint of a unit-sum blur and a box average is 1 on 1)."""
        s, (h, w) = self.s, self.shape
        for (y0, y1), (x0, x1) in self.boxes:
            (wy0, wy1), (wx0, wx1) = self._window(y0, y1, h), self._window(x0, x1, w)
            r = torch.from_numpy(ratio[wy0:wy1, wx0:wx1])
            if s > 1:
                r = r.repeat_interleave(s, 0).repeat_interleave(s, 1)
            c = _blur(r, self.parts, flip=True)
            core = c[(y0 - wy0) * s: (y1 - wy0) * s, (x0 - wx0) * s: (x1 - wx0) * s].numpy()
            self.fine[y0 * s: y1 * s, x0 * s: x1 * s] *= core


def _mean_chi2(measured: np.ndarray, expected: np.ndarray, counts: float, rows: int = 256) -> float:
    """trust.consistency's mean chi^2 (the model's gain, Pearson variance), a band of rows at a time."""
    from .trust import model_gain, noise_variance

    gain = model_gain(np.array([measured.max()]), np.array([expected.max()]), counts)
    total = 0.0
    for a in range(0, measured.shape[0], rows):
        e = expected[a: a + rows]
        total += float(((measured[a: a + rows] - e) ** 2 / noise_variance(e, gain)[0]).sum())
    return total / measured.size


@torch.inference_mode()
def refine(fine: np.ndarray, coarse: np.ndarray, psf: np.ndarray, scale: int, counts: float, *,
           max_iterations: int = MAX_ITERATIONS, target: float = TARGET_CHI2, tile: int = TILE,
           cancel=None) -> dict:
    """Richardson-Lucy on one element's map `fine` (H*S, W*S) float32, in place (clipped at 0 first),
    against its scan `coarse` (H, W) measured through `psf` (the probe on the fine grid, unit sum)
    at step `scale` with `counts` at the peak, until the mean chi^2 is at most `target`.
    Returns {"iterations", "chi2_before", "chi2_after"}."""
    from . import Cancelled

    np.clip(fine, 0, None, out=fine)
    data = np.clip(np.asarray(coarse, np.float32), 0, None)
    model = _Forward(fine, psf, scale, tile)
    buf = np.empty(model.shape, np.float32)
    chi2, n = [], 0
    while True:
        model.remeasure(buf)
        chi2.append(_mean_chi2(data, buf, counts))
        if chi2[-1] <= target or n >= max_iterations:
            break
        if cancel and cancel():
            raise Cancelled("enhancement cancelled")
        np.maximum(buf, 1e-12 * max(float(buf.max()), 1e-30), out=buf)
        np.divide(data, buf, out=buf)  # the buffer now holds data / model
        model.spread_back(buf)
        n += 1
    return {"iterations": n, "chi2_before": chi2[0], "chi2_after": chi2[-1]}
