"""The blind probe fit on a map's 2-D power spectrum (enhancer.probe.blind refuses or reports it).

The map's 2-D power spectrum (a 2-D Hann window, averaged over the elements, each scaled to its
peak) is averaged into bins of log-spaced radius (6 per octave) and direction (8 sectors over
180 degrees) and fitted in the log domain (soft-L1 loss) by

    P(kx, ky) = A_s |k|^-beta exp(-4 pi^2 (sx^2 kx^2 + sy^2 ky^2)) sinc^2(kx) sinc^2(ky) + N

an object whose power falls as a power law of |k| with one slope beta for every direction but its
own amplitude A_s per sector (elongated cells, bars and edges that favour one direction), seen
through a Gaussian probe (sx, sy in steps), the dwell's box average of one step (sinc^2, k in
cycles per step; "point" sampling drops it), over white Poisson noise N. Why 2-D: an object's
amplitude may differ between directions but not change with |k| the way the probe's fall-off
does, and the shared slope ties every direction's fall-off to one object; a 1-D spectrum along x
(the old estimator) averages over ky and so mixes the y blur and the object's direction into x.
beta is held between 2.5 and 4.5: a map of objects with edges has a 2-D power falling as about
k^-3, smooth insides steeper; a free slope traded itself against the probe and read particles and
aggregates 15-25% wide (docs/probe.md). Two exceptions, both from what the spectrum shows:
- only the falling side is fitted: below the ring of most power (a Siemens star's spokes put
  their power in a ring) the object shapes the spectrum, not the probe;
- a spectrum of lines (a grating: bins' mean power several times their median, where a random
  object's speckle gives ~1.2-1.4) lets beta go down to 0: a bar target's groups of equal
  contrast put a flat envelope on their lines, and a slope of 2.5 read bars ~35% narrow.
"""
from __future__ import annotations

import numpy as np
from scipy import optimize

SECTORS = 8
PER_OCTAVE = 6
# Relative spread of blind estimates on tuning phantoms (docs/probe.md), added to a fit's own
# uncertainty: the spectrum fit's (enhancer.probe) and the located edges' (enhancer.probe_edges).
SYSTEMATIC = 0.12
BETA = (2.5, 4.5)  # the object's slope for a map of objects (below)
GRATING = 2.5  # median mean/median power per bin above which the spectrum is lines: a grating
GRATING_BETA = (0.0, 4.5)  # a bar target's groups of equal contrast put a flat envelope on its lines


def spectrum(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kx, ky, P): the mean 2-D power spectrum (rfft2 half plane, k in cycles per step) of the
    elements, each scaled to a peak of 1 and windowed; white noise of variance v reads v."""
    m = np.asarray(maps, np.float64)
    peak = m.reshape(len(m), -1).max(1)
    m = m / np.where(peak > 0, peak, 1)[:, None, None]
    h, w = m.shape[-2:]
    win = np.outer(np.hanning(h), np.hanning(w))
    m = (m - m.mean(axis=(-2, -1), keepdims=True)) * win
    p = (np.abs(np.fft.rfft2(m)) ** 2).mean(0) / (win ** 2).sum()
    ky, kx = np.meshgrid(np.fft.fftfreq(h), np.fft.rfftfreq(w), indexing="ij")
    return kx, ky, p


def _bins(kx, ky, p, k_min):
    """Mean kx, ky and power per (radius, direction) bin: a grating's line spectrum counts by its
    power, not by the valleys between its lines, and every octave weighs alike."""
    k = np.hypot(kx, ky)
    use = k >= k_min  # the lowest frequencies carry the window's leakage of the mean
    k, kx, ky, p = k[use], kx[use], ky[use], p[use]
    edges = np.arange(np.log(k_min), np.log(k.max()) + 1e-9, np.log(2) / PER_OCTAVE)
    ring = np.clip(np.searchsorted(edges, np.log(k), side="right") - 1, 0, len(edges) - 1)
    sector = np.minimum((np.mod(np.arctan2(ky, kx), np.pi) / np.pi * SECTORS).astype(int), SECTORS - 1)
    idx = ring * SECTORS + sector
    n = np.bincount(idx, minlength=len(edges) * SECTORS)
    ok = n > 0

    def mean(v):
        return np.bincount(idx, v, minlength=len(n))[ok] / n[ok]

    # mean / median power per bin: ~1.2-1.4 for the speckle of a random object (an exponential
    # periodogram gives 1.44), several for a grating's lines among empty valleys
    order = np.lexsort((p, idx))
    starts = np.r_[0, np.cumsum(n)[:-1]][ok]
    median = p[order][starts + n[ok] // 2]
    bins = np.nonzero(ok)[0]
    return mean(kx), mean(ky), mean(p), bins % SECTORS, bins // SECTORS, n[ok], mean(p) / np.maximum(median, 1e-300)


def _log_signal(q, kx, ky, sector, dwell):
    beta, log_sx, log_sy = q[SECTORS: SECTORS + 3]
    s = q[:SECTORS][sector] - beta * np.log(np.hypot(kx, ky)) \
        - 4 * np.pi ** 2 * (np.exp(2 * log_sx) * kx ** 2 + np.exp(2 * log_sy) * ky ** 2)
    if dwell:
        s = s + 2 * np.log(np.abs(np.sinc(kx)) + 1e-12) + 2 * np.log(np.abs(np.sinc(ky)) + 1e-12)
    return s


def fit(maps: np.ndarray, dwell: bool = True) -> dict:
    """Fit the spectrum of maps (E, H, W). Returns sigma (x, y) in steps with standard errors of
    log sigma, the slope, the noise level, and per axis the peak signal-to-noise and the highest
    frequency where the signal (median amplitude) stands above the noise."""
    kx, ky, p = spectrum(maps)
    n_line = min(maps.shape[-2:])
    bx, by, bp, sector, ring, count, peakiness = _bins(kx, ky, p, 3.0 / n_line)
    if not np.all(np.isfinite(bp)) or bp.max() <= 0:
        return {"flat": True}
    # Only the falling side: below the frequency of the most power (a ring of it, as a Siemens
    # star's spokes make) the object, not the probe, shapes the spectrum.
    ring_power = np.bincount(ring, bp) / np.maximum(np.bincount(ring), 1)
    keep = ring >= np.argmax(ring_power)
    bx, by, bp, sector, count, peakiness = bx[keep], by[keep], bp[keep], sector[keep], count[keep], peakiness[keep]
    k = np.hypot(bx, by)
    floor0 = np.log(np.median(bp[k > 0.45])) if np.any(k > 0.45) else np.log(bp.min())
    strong = (count >= 8) & (bp > 10 * np.exp(floor0))
    lines = float(np.median(peakiness[strong])) if strong.any() else 1.0
    beta_range = GRATING_BETA if lines > GRATING else BETA
    lp = np.log(np.maximum(bp, bp.max() * 1e-14))
    weight = np.sqrt(np.minimum(count, 50))  # a bin of many pixels is a surer mean, up to a point
    weight = weight / weight.mean()

    def resid(q):
        return (np.logaddexp(_log_signal(q, bx, by, sector, dwell), q[-1]) - lp) * weight

    lower = np.r_[np.full(SECTORS, -np.inf), beta_range[0], np.log(0.05), np.log(0.05), -np.inf]
    upper = np.r_[np.full(SECTORS, np.inf), beta_range[1], np.log(n_line / 4), np.log(n_line / 4), np.inf]
    best = None
    # The cost has local minima: start from several probes, and from a sharp map whose signal
    # reaches the corners (the median there is then no noise floor).
    starts = [(s, b, floor0) for s in (0.5, 1.0, 2.0, 4.0) for b in np.linspace(*beta_range, 4)[1:3]]
    for sigma0, beta0, n0 in starts + [(0.1, np.mean(beta_range), floor0 - 6)]:
        a0 = lp[np.argmin(k)] + beta0 * np.log(k.min())
        q0 = np.r_[np.full(SECTORS, a0), beta0, np.log(sigma0), np.log(sigma0), n0]
        r = optimize.least_squares(resid, q0, loss="soft_l1", f_scale=0.3, bounds=(lower, upper))
        if best is None or r.cost < best.cost:
            best = r
    q = best.x
    s2 = 2 * best.cost / max(1, len(lp) - len(q))
    try:
        cov = np.linalg.pinv(best.jac.T @ best.jac) * s2
        se = np.sqrt(np.maximum(np.diag(cov)[SECTORS + 1: SECTORS + 3], 0))
    except np.linalg.LinAlgError:
        se = np.array([np.inf, np.inf])
    out = {"flat": False, "sigma": np.exp(q[SECTORS + 1: SECTORS + 3]), "se_log": se,
           "beta": float(q[SECTORS]), "noise": float(np.exp(q[-1])), "lines": lines}
    # Along each axis, with the median direction's amplitude: where the signal meets the noise.
    kk = np.linspace(1.0 / n_line, 0.5, 200)
    a = np.median(q[:SECTORS])
    for name, (ax, ay) in (("x", (kk, 0 * kk)), ("y", (0 * kk, kk))):
        qq = q.copy()
        qq[:SECTORS] = a
        snr = np.exp(_log_signal(qq, ax, ay, np.zeros(len(kk), int), dwell) - q[-1])
        above = kk[snr > 1]
        out[name] = {"peak_snr": float(snr.max()), "k_noise": float(above.max()) if len(above) else 0.0}
    return out
