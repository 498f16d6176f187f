"""Each map's own brightness, by which a network sees it normalised (and is multiplied back).

One rule for training and enhancement: a model's `normalisation` section in model.json names
these numbers, and `enhance` reads them from there (bundle.Normalisation), so a model trained
with one rule is never run with another.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

PERCENTILE = 99.9  # high enough to be the map's bright features, low enough to skip a hot pixel
SIGMA_PX = 1.0  # light smoothing first, so that noise does not set the scale


def map_scale(m: np.ndarray, percentile: float = PERCENTILE, sigma_px: float = SIGMA_PX) -> float:
    """A robust brightness of one map: a high percentile after light smoothing."""
    # overwrite_input: the percentile partitions the smoothed copy itself, not one more copy
    smooth = ndimage.gaussian_filter(np.asarray(m, np.float32), sigma_px)
    s = float(np.percentile(smooth, percentile, overwrite_input=True))
    return s if s > 0 and math.isfinite(s) else float(max(np.abs(m).max(), 1e-12))
