"""Quality against a truth (PSNR, SSIM, FRC resolution), single-image FRC for real data, totals.
Definitions follow the benchmark protocol (docs/benchmarks.md).
"""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

FRC_THRESHOLD = 1 / 7


def _as3(a):
    a = np.asarray(a, np.float64)
    return a[None] if a.ndim == 2 else a


def psnr_per_element(est, truth) -> list[float]:
    """10 log10(range(truth)^2 / MSE) per element, range = max - min of the truth."""
    out = []
    for e, t in zip(_as3(est), _as3(truth)):
        mse = float(np.mean((e - t) ** 2))
        rng = float(t.max() - t.min()) or 1.0
        out.append(float("inf") if mse == 0 else 10 * np.log10(rng * rng / mse))
    return out


def psnr(est, truth) -> float:
    return float(np.mean(psnr_per_element(est, truth)))


def ssim(est, truth) -> float:
    vals = []
    for e, t in zip(_as3(est), _as3(truth)):
        rng = float(t.max() - t.min()) or 1.0
        vals.append(structural_similarity(e, t, data_range=rng))
    return float(np.mean(vals))


def frc_curve(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Fourier ring correlation of two 2-D images; returns (frequency in cycles/pixel, FRC).

    A Hann window first, so the image edges do not correlate as spurious high frequencies.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    n = min(a.shape)
    a, b = a[:n, :n], b[:n, :n]
    win = np.outer(np.hanning(n), np.hanning(n))
    fa = np.fft.fftshift(np.fft.fft2((a - a.mean()) * win))
    fb = np.fft.fftshift(np.fft.fft2((b - b.mean()) * win))
    num, pa, pb = (ring_sum(v) for v in ((fa * np.conj(fb)).real, np.abs(fa) ** 2, np.abs(fb) ** 2))
    return np.arange(1, n // 2 + 1) / n, num / np.sqrt(pa * pb + 1e-30)


def ring_sum(values, mean=False) -> np.ndarray:
    """Sums (or means) of an n x n spectrum (zero frequency at the centre) over rings 1..n/2 of
    frequency k/n; the rings frc_curve uses."""
    n = values.shape[0]
    y, x = np.indices((n, n)) - n // 2
    r = np.round(np.hypot(y, x)).astype(int).ravel()
    sums = np.bincount(r, np.asarray(values).ravel(), minlength=n // 2 + 1)[1 : n // 2 + 1]
    return sums / np.bincount(r, minlength=n // 2 + 1)[1 : n // 2 + 1] if mean else sums


def resolution_from_curve(freq, frc, pixel_nm: float, threshold=FRC_THRESHOLD) -> float:
    """The period (nm) at which the FRC first falls below the threshold; Nyquist if never."""
    below = np.nonzero(frc < threshold)[0]
    if len(below) == 0:
        return 2.0 * pixel_nm
    i = below[0]
    if i == 0:
        f = freq[0]
    else:  # interpolate between the last point above and the first below
        f0, f1, c0, c1 = freq[i - 1], freq[i], frc[i - 1], frc[i]
        f = f0 + (f1 - f0) * (c0 - threshold) / (c0 - c1)
    return float(pixel_nm / f)


def frc_resolution_nm(est, truth, pixel_nm: float) -> float:
    """Mean over elements of the FRC resolution of estimate against truth."""
    return float(np.mean([resolution_from_curve(*frc_curve(e, t), pixel_nm)
                          for e, t in zip(_as3(est), _as3(truth))]))


def single_image_frc_nm(map2d, pixel_nm: float) -> float:
    """Resolution of one image with no truth: FRC between its two diagonal checkerboard halves.

    Caveats: the halves have pixels twice as large and share the noise-free signal only, so this
    measures where signal gives way to independent noise; it cannot see detail a network invented
    consistently in both halves. Compare maps with it, do not quote it as the truth.
    """
    m = np.asarray(map2d, np.float64)
    h, w = (m.shape[0] // 2) * 2, (m.shape[1] // 2) * 2
    m = m[:h, :w]
    pairs = [(m[0::2, 0::2], m[1::2, 1::2]), (m[0::2, 1::2], m[1::2, 0::2])]
    curves = [frc_curve(a, b) for a, b in pairs]
    freq = curves[0][0]
    frc = np.mean([c[1] for c in curves], axis=0)
    return resolution_from_curve(freq, frc, 2 * pixel_nm)


def totals(maps) -> list[float]:
    """Per-element total per unit area (the mean), comparable across grids of different steps."""
    return [float(m.mean()) for m in _as3(maps)]


def totals_error(output, reference) -> list[float]:
    """Relative difference of each element's total, output vs reference."""
    return [o / r - 1 if r else 0.0 for o, r in zip(totals(output), totals(reference))]
