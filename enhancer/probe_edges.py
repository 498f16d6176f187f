"""Edge spread on located sharp edges: a second blind view of the probe (docs/probe.md).

Where the map has sharp boundaries (a cell's membranes and nuclei) the profile across one is the
probe's edge spread, whatever the object's power spectrum does. Candidates are where the
gradient across an axis is in the map's top 3%, the gradient along it under a quarter of that and
a local maximum across; each (9 pixels apart) has 7 lines averaged across it, over a window of
+-max(4, 3 sigma) steps with sigma the spectrum fit's (tied to the probe, so that neighbours stay
out at small probes), fitted by the knife-edge model (erf and the box dwell), and kept when its
standard error is under 20% and it sits within 3 steps of the candidate.

Edges mislead where they are no sharp boundary: a grain's soft rim reads wide, a neighbouring
texture domain inside the window narrow, a grating has no isolated edge. So an axis takes the
edges' width (their 30th percentile) only when all of these hold, each read from the map:
- the spectrum is no line spectrum (a grating: probe_spectrum's `lines`);
- the spectrum fit's object slope sits at its lower bound (under BETA_AT_BOUND): the power-law
  object is strained there (cells' spectra fall slower than k^-2.5 in some directions, and the fit
  then trades the probe for the slope), where a slope inside its range means the model fits;
- at least MIN_EDGES clean edges;
- the edges are sharp boundaries: fitted again over a window twice as wide, their median width
  changes by under 5% (SHARP). An erf across a membrane keeps its width; a soft rim or a window
  reaching into neighbouring structure does not (on tuning phantoms cells read 1.00-1.05,
  aggregates 0.79-0.92, stars 0.54-0.96, textures 0.64-0.71, particles 0.57-0.63: docs/probe.md).
Tuned on seeds 3,000,000-3,000,003 only (docs/probe.md, Session 7).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .edge_fit import ProbeRefused, fit_edge
from .probe_spectrum import BETA, GRATING, SYSTEMATIC

TOP = 0.97  # gradient quantile of a candidate
ALONG = 0.25  # largest gradient along the edge, relative to across
MAX_SE = 0.2  # largest relative standard error of a kept edge's sigma
MAX_EDGES = 60
MIN_EDGES = 5
SHARP = (0.95, 1.05)  # median width over a doubled window / width, for a sharp boundary
BETA_AT_BOUND = BETA[0] + 0.1  # the spectrum fit's slope at (within 0.1 of) its lower bound
QUANTILE = 0.3  # of the edges' widths: a few soft or doubled edges among them read wide


def estimate(maps: np.ndarray, fit: dict, dwell: bool = True) -> list:
    """Per axis (x, y): None where the spectrum fit stands, else the edges' sigma in steps, its
    relative uncertainty and the number of edges."""
    if fit["lines"] > GRATING or fit["beta"] >= BETA_AT_BOUND:
        return [None, None]
    out = []
    for e in edge_sigmas(maps, fit["sigma"], dwell):
        ratio = e[:, 1] / e[:, 0]
        ok = np.isfinite(ratio)
        ratio = np.median(ratio[ok]) if len(e) >= MIN_EDGES and ok.sum() >= 3 else np.nan
        if not SHARP[0] <= ratio <= SHARP[1]:
            out.append(None)
            continue
        spread = np.subtract(*np.percentile(np.log(e[:, 0]), [75, 25])) / 1.35  # a robust sd of log sigma
        out.append((float(np.quantile(e[:, 0], QUANTILE)), float(np.hypot(spread / np.sqrt(len(e)), SYSTEMATIC)),
                    len(e)))
    return out


def edge_sigmas(maps: np.ndarray, sigma_guess, dwell: bool = True) -> list[np.ndarray]:
    """Per axis (x, y): (n, 2) arrays of the clean edges' sigma (in steps) across that axis, and
    their sigma over the doubled window (NaN where it leaves the map)."""
    m = np.asarray(maps, np.float64)
    m = m[None] if m.ndim == 2 else m
    peak = m.reshape(len(m), -1).max(1)
    img = (m / np.where(peak > 0, peak, 1)[:, None, None]).mean(0)
    out = []
    for image, guess in ((img, sigma_guess[0]), (img.T, sigma_guess[1])):
        out.append(_along_rows(image, guess, 1.0 if dwell else 0.0))
    return out


def _along_rows(image, guess, width):
    half = int(max(4, np.ceil(3 * guess)))
    smooth = ndimage.gaussian_filter(image, 1.0)
    across, along = np.abs(ndimage.sobel(smooth, axis=1)), np.abs(ndimage.sobel(smooth, axis=0))
    cand = (across >= np.quantile(across, TOP)) & (along < ALONG * across) \
        & (across == ndimage.maximum_filter1d(across, 3, axis=1))
    cand[:4] = cand[-4:] = False
    cand[:, :half + 1] = cand[:, -half - 1:] = False
    ys, xs = np.nonzero(cand)
    taken = np.zeros_like(cand)
    sigmas = []
    for i in np.argsort(-across[ys, xs])[:400]:
        y0, x0 = ys[i], xs[i]
        if taken[y0, x0]:
            continue
        taken[max(0, y0 - 4): y0 + 5, max(0, x0 - 4): x0 + 5] = True
        try:
            sigma, se, centre = _fit_at(image, y0, x0, half, width)
        except ProbeRefused:
            continue
        if se < MAX_SE * sigma and abs(centre) < 3:
            wide = np.nan  # the same edge over a window twice as wide: does its width hold?
            if x0 - 2 * half >= 0 and x0 + 2 * half < image.shape[1]:
                try:
                    wide = _fit_at(image, y0, x0, 2 * half, width)[0]
                except ProbeRefused:
                    pass
            sigmas.append((sigma, wide))
        if len(sigmas) >= MAX_EDGES:
            break
    return np.array(sigmas).reshape(-1, 2)


def _fit_at(image, y0, x0, half, width):
    """The knife-edge fit of 7 rows' mean across (y0, x0), over +-half pixels."""
    x = np.arange(-half, half + 1, dtype=float)
    return fit_edge(x, image[y0 - 3: y0 + 4, x0 - half: x0 + half + 1].mean(0), width)
