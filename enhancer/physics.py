"""A map's physics: scan step, probe and dose. Never assumed: None means "unknown, ask".

`Physics` is what every part of the product passes around (CLI, web jobs, the fit rule in
enhancer.fit). Axes follow the map: x along columns (the fast axis), y along rows.

The dose is the only one of the three the data can tell by itself. XRF counts are Poisson: in a
map stored in any units u = N / g (N counts, g counts per unit), the noise variance is u / g, so
noise variance against the local mean has slope 1 / g. Only pixels where the element is (local
mean above 5% of the peak) are read: a real map's background (fitted, normalised, offset) is
rarely Poisson in its own mean. The noise is read from a second-difference residual (Immerkaer's
3 x 3 mask), which removes a locally linear signal; the slope is the median over pixels of
residual^2 / (sum of mask^2 x local mean), divided by the chi-square(1) median so the median
estimates the mean even where an edge leaves signal in a few residuals. The peak counts are then
g times the map's robust peak (enhancer.map_scale's smoothed 99.9th percentile), which is what
enhancer.degrade.add_noise's `counts` means: the brightest pixel's expected counts.

Measured on simulated phantoms (five kinds, probes of 2-8 fine pixels at steps of 1-2, 20-2,000
counts, per element): median error 4%, 90% within 17%, 2% beyond 35% (sparse, sharply curved
maps at mid doses read up to ~40% low).
Where the probe is about one input pixel or less, real detail also passes the mask and high doses
read low (a lower bound); a map that is not Poisson (fitted, background-subtracted) reads as what
its noise says.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from . import UserError
from .map_scale import map_scale  # the same robust peak as normalisation uses

# Immerkaer (1996) noise mask: zero response to constant and linear signals.
_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
_MASK_POWER = float((_MASK**2).sum())  # 36: residual variance / pixel variance for white noise
_CHI2_1_MEDIAN = 0.454936423119572  # median of chi-square with one degree of freedom
MIN_PIXELS = 64  # fewer usable pixels than this: no estimate
SIGNAL_FRACTION = 0.05  # pixels whose local mean is above this fraction of the peak are read
GAUSSIAN_COUNTS = 5.0  # from about this many counts a pixel's Poisson noise is near Gaussian


@dataclass(frozen=True)
class Physics:
    """What a map was measured with. None = unknown (never filled in by a guess)."""

    scan_step_nm: tuple[float, float] | None = None  # (x, y): the input's step
    probe_fwhm_nm: tuple[float, float] | None = None  # (x along columns, y along rows)
    counts: float | None = None  # expected counts at the brightest pixel
    counts_estimated: bool = False  # counts came from estimate_counts, not from a person
    # A measured probe (intensity, its pixel in nm): the PSF wherever the physics is simulated
    # (Fit.degradation); probe_fwhm_nm is then its summary (enhancer.probe.fwhm_of).
    measured_probe: tuple | None = field(default=None, compare=False, repr=False)

    def missing(self) -> list[str]:
        """The unknowns, in the user's words."""
        return [w for w, v in (("scan step", self.scan_step_nm), ("probe FWHM", self.probe_fwhm_nm),
                               ("dose", self.counts)) if v is None]

    def describe(self) -> str:
        return "; ".join([f"step {pair_text(self.scan_step_nm)} nm" if self.scan_step_nm else "step unknown",
                          f"probe {pair_text(self.probe_fwhm_nm)} nm" if self.probe_fwhm_nm else "probe unknown",
                          f"{self.counts:.3g} counts at the peak" if self.counts else "dose unknown"])

    def to_dict(self) -> dict:
        return {"scan_step_nm": list(self.scan_step_nm) if self.scan_step_nm else None,
                "probe_fwhm_nm": list(self.probe_fwhm_nm) if self.probe_fwhm_nm else None,
                "counts": self.counts}


def pair_text(pair) -> str:
    """(x, y) as "150" when round, else "150 x 200" (x first)."""
    x, y = pair
    return f"{x:g}" if math.isclose(x, y, rel_tol=1e-9) else f"{x:g} x {y:g}"


def parse_pair(text, what: str = "probe FWHM") -> tuple[float, float]:
    """"150" -> (150, 150); "150,200" (or "150 x 200") -> (x, y) = (150, 200); a number or a
    two-item list works too. Each value must be a finite number > 0, else UserError naming it."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        parts = [text]
    elif isinstance(text, (list, tuple)):
        parts = list(text)
    elif isinstance(text, str):
        parts = [p for p in re.split(r"\s*(?:,|x|X|×)\s*", text.strip()) if p != ""]
    else:
        raise UserError(f"{what} must be a number in nm, or two (x,y)")
    try:
        values = [float(p) for p in parts]
    except (TypeError, ValueError):
        raise UserError(f"{what} must be a number in nm, or two as x,y (got {text!r})") from None
    if len(values) not in (1, 2):
        raise UserError(f"{what} takes one number, or two as x,y (got {text!r})")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise UserError(f"{what} must be positive (got {text!r})")
    return (values[0], values[-1])


def parse_probe(text) -> tuple[float, float]:
    """The probe FWHM in nm: "150" (round) or "150,200" (x along columns, y along rows)."""
    return parse_pair(text, "probe FWHM")


def counts_per_element(maps) -> np.ndarray:
    """The peak counts of each element map (NaN where the map cannot tell: too few non-zero
    pixels, or no noise at all, e.g. a simulated map without noise)."""
    maps = np.asarray(maps, np.float64)
    maps = maps[None] if maps.ndim == 2 else maps
    out = np.full(maps.shape[0], np.nan)
    for i, m in enumerate(maps):
        if m.shape[0] < 3 or m.shape[1] < 3 or not np.isfinite(m).all():
            continue
        residual = ndimage.correlate(m, _MASK, mode="nearest")[1:-1, 1:-1]
        mean = ndimage.uniform_filter(m, 3, mode="nearest")[1:-1, 1:-1]
        peak = map_scale(m.astype(np.float32))
        # Where the element is: a real map's background (fitted, normalised, offset) is rarely
        # Poisson in its own mean, and where most of a map is background it would set the answer.
        use = mean > SIGNAL_FRACTION * peak
        if use.sum() < MIN_PIXELS:
            use = mean > 0
        if use.sum() < MIN_PIXELS:
            continue
        ratio = residual[use] ** 2 / (_MASK_POWER * mean[use])
        slope = np.median(ratio) / _CHI2_1_MEDIAN
        # The chi-square median holds where a pixel expects several counts; where most expect
        # fewer (sparse or low-dose maps) counts are discrete and the median reads low. There,
        # keep to the pixels that do expect GAUSSIAN_COUNTS, or if too few, use the mean ratio
        # (unbiased for Poisson at any count; at such doses the noise outweighs any signal).
        bright = mean[use] / slope >= GAUSSIAN_COUNTS if slope > 0 else np.zeros_like(ratio, bool)
        if bright.mean() < 0.5:
            if bright.sum() >= MIN_PIXELS:
                slope = np.median(ratio[bright]) / _CHI2_1_MEDIAN
            else:
                slope = (residual[use] ** 2).sum() / (_MASK_POWER * mean[use].sum())
        if not (slope > 0 and math.isfinite(slope)):
            continue
        out[i] = peak / slope
    return out


def estimate_counts(maps) -> float | None:
    """The dose of a map set: the median over elements of their peak counts (see the module
    docstring), or None when no element can tell."""
    per = counts_per_element(maps)
    per = per[np.isfinite(per)]
    return float(np.median(per)) if per.size else None


def physics_of(xrfmap, scan_step_nm=None, probe_fwhm_nm=None, counts=None) -> Physics:
    """A map's physics: what is stated wins, else what the file says (its step), else the
    estimate from the data (the dose). The probe only ever comes from a person (or a measured
    probe). scan_step_nm and probe_fwhm_nm take a number, "x,y" text or an (x, y) pair."""
    step = parse_pair(scan_step_nm, "scan step") if scan_step_nm is not None else None
    if step is None and xrfmap.pixel_size_nm is not None:
        y, x = xrfmap.pixel_size_nm  # XRFMap keeps (y, x), Physics (x, y)
        step = (float(x), float(y))
    probe = parse_probe(probe_fwhm_nm) if probe_fwhm_nm is not None else None
    if counts is not None:
        return Physics(step, probe, float(counts))
    return Physics(step, probe, estimate_counts(xrfmap.data), counts_estimated=True)
