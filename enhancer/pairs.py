"""The seed's Approach 1: paired scans of the same area, a fine one and a coarse one.

The coarse scan's grid is located on the fine map by phase correlation of the element sums (the
fine map box-sampled to the coarse step first, with sub-step precision), then both are cropped to
their overlap. A pair that overlaps too little, or whose overlap does not look alike, is refused:
training on misaligned pairs teaches a network to blur.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.registration import phase_cross_correlation

from . import UserError
from .degrade import sample

MIN_OVERLAP = 0.5  # of the coarse scan's area
MIN_CORRELATION = 0.5  # Pearson, element sums, over the overlap


@dataclass
class AlignedPair:
    fine: np.ndarray  # (E, h * S, w * S)
    coarse: np.ndarray  # (E, h, w)
    offset_px: tuple[int, int]  # where the coarse grid's first pixel starts on the fine map
    overlap: float
    correlation: float


def _element_sum(maps):
    maps = np.asarray(maps, np.float64)
    peak = maps.reshape(len(maps), -1).max(1)
    return (maps / np.where(peak > 0, peak, 1)[:, None, None]).sum(0)


def align(fine, coarse, scale: int) -> AlignedPair:
    """Crop a fine map and a coarse scan of the same area to their aligned overlap."""
    fine, coarse = np.asarray(fine, np.float32), np.asarray(coarse, np.float32)
    fine = fine[None] if fine.ndim == 2 else fine
    coarse = coarse[None] if coarse.ndim == 2 else coarse
    if fine.shape[0] != coarse.shape[0]:
        raise UserError(f"the fine scan has {fine.shape[0]} elements, the coarse one {coarse.shape[0]}")
    sampled = sample(fine, scale)
    ref, mov = _element_sum(coarse), _element_sum(sampled)
    h, w = min(ref.shape[0], mov.shape[0]), min(ref.shape[1], mov.shape[1])
    shift, _, _ = phase_cross_correlation(ref[:h, :w], mov[:h, :w], upsample_factor=4 * scale,
                                          normalization=None)
    # Shifting the sampled fine map by `shift` lands it on the coarse scan, so the coarse grid's
    # origin sits at -shift coarse pixels, i.e. -shift * scale fine pixels, on the fine map.
    oy, ox = (int(round(-s * scale)) for s in shift)
    # Phase correlation of cropped, blurred maps can miss by a fine pixel: refine nearby.
    candidates = [_overlap(fine, coarse, scale, oy + dy, ox + dx) for dy in range(-2, 3) for dx in range(-2, 3)]
    best = max(candidates, key=lambda c: (c.overlap >= MIN_OVERLAP, c.correlation))
    if best.overlap < MIN_OVERLAP:
        raise UserError(f"the fine and coarse scans overlap on {100 * best.overlap:.0f}% of the coarse "
                        f"scan (at least {100 * MIN_OVERLAP:.0f}% needed): are they of the same area?")
    if best.correlation < MIN_CORRELATION:
        raise UserError(f"the aligned fine and coarse scans do not look alike (correlation "
                        f"{best.correlation:.2f}, at least {MIN_CORRELATION} needed): are they of the same area?")
    return best


def _overlap(fine, coarse, scale, oy, ox) -> AlignedPair:
    """The pair cropped to where a coarse grid with its origin at fine pixel (oy, ox) lies inside."""
    hc, wc = coarse.shape[-2:]
    i0, j0 = max(0, -(oy // scale)), max(0, -(ox // scale))  # first coarse pixel inside the fine map
    i1 = min(hc, (fine.shape[-2] - oy) // scale)
    j1 = min(wc, (fine.shape[-1] - ox) // scale)
    overlap = max(0, i1 - i0) * max(0, j1 - j0) / (hc * wc)
    if overlap == 0:
        return AlignedPair(fine[:, :0, :0], coarse[:, :0, :0], (oy, ox), 0.0, 0.0)
    f = fine[:, oy + i0 * scale : oy + i1 * scale, ox + j0 * scale : ox + j1 * scale]
    c = coarse[:, i0:i1, j0:j1]
    a, b = _element_sum(c).ravel(), _element_sum(sample(f, scale)).ravel()
    corr = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0
    return AlignedPair(f, c, (oy + i0 * scale, ox + j0 * scale), overlap, corr)


def locate(big, small) -> AlignedPair:
    """Where a smaller map on the same grid (a fine scan of part of the area, resampled) lies on a
    bigger one: normalised cross-correlation of the element sums over every placement that keeps
    at least half of it inside along each axis, then the best of the nearby offsets by correlation
    over the overlap. `fine` of the result is big's overlap, `coarse` small's; offset_px is small's
    top-left on big (negative where it starts outside). The caller judges overlap and correlation."""
    from skimage.feature import match_template

    big, small = (np.asarray(a, np.float32) for a in (big, small))
    big, small = (a[None] if a.ndim == 2 else a for a in (big, small))
    if big.shape[0] != small.shape[0]:
        raise UserError(f"the maps have {big.shape[0]} and {small.shape[0]} elements")
    ref, tmpl = _element_sum(big), _element_sum(small)
    h, w = tmpl.shape
    py, px = h // 2, w // 2
    # Padding by half the small map lets it hang half outside along each axis.
    padded = np.pad(ref, ((py, py), (px, px)), constant_values=float(ref.mean()))
    ncc = match_template(padded, tmpl)
    oy, ox = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
    oy, ox = int(oy) - py, int(ox) - px
    candidates = [((oy + dy, ox + dx), _overlap(big, small, 1, oy + dy, ox + dx))
                  for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    offset, best = max(candidates, key=lambda c: (c[1].overlap >= MIN_OVERLAP, c[1].correlation))
    best.offset_px = offset
    return best
