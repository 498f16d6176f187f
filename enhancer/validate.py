"""An enhanced map against a fine scan of part of the same area: the independent measurement the
seed's workflow ends with (benchmark protocol, "Probe estimates and validation").

FINE is resampled to the enhanced grid (box average for whole ratios, else area-weighted
interpolation), located on it by pairs.locate (element sums, normalised cross-correlation) and
used as the truth on the overlap: PSNR with range(FINE) over the overlap (metrics.psnr), SSIM,
FRC resolution. Scored beside it: the input (bicubic on the enhanced grid, baselines.upsample) and
Richardson-Lucy with the enhancement's probe, its iterations tuned on the overlap (the protocol's
oracle baseline).
"""
from __future__ import annotations

import numpy as np

from . import UserError
from .pairs import MIN_CORRELATION, MIN_OVERLAP, locate
from .xrfmap import XRFMap


def matched_elements(a: list[str], b: list[str]) -> tuple[list[int], list[int], list[str]]:
    """Indices of the elements two maps share, by name (case-insensitive), in a's order."""
    lower = [x.lower() for x in b]
    pairs = [(i, lower.index(x.lower())) for i, x in enumerate(a) if x.lower() in lower]
    if not pairs:
        raise UserError(f"the fine scan shares no element with the input ({', '.join(a)} vs {', '.join(b)})")
    return [p[0] for p in pairs], [p[1] for p in pairs], [a[p[0]] for p in pairs]


def to_grid(maps: np.ndarray, pixel_nm: float, target_nm: float) -> np.ndarray:
    """Maps of pixel `pixel_nm` on a grid of `target_nm`: whole ratios box-averaged (a coarser scan
    of the same sample), others interpolated with anti-aliasing."""
    from skimage.transform import rescale

    from .degrade import sample

    ratio = target_nm / pixel_nm
    if abs(ratio - round(ratio)) < 1e-3 and round(ratio) >= 1:
        return sample(maps, int(round(ratio)))
    return np.stack([rescale(m, 1 / ratio, order=1, anti_aliasing=ratio > 1, preserve_range=True)
                     for m in maps]).astype(np.float32)


def validate(inp: XRFMap, enhanced: XRFMap, fine: XRFMap, step_nm: float, fine_pixel_nm: float,
             probe_fwhm_nm=None, measured_probe=None) -> dict:
    """The validation report (see the module's docstring). probe_fwhm_nm (x, y) or a measured
    probe (intensity, its pixel in nm) gives the RL baseline; without either it is None."""
    from .baselines import richardson_lucy, upsample
    from .degrade import gaussian_probe, resample_probe
    from .metrics import frc_resolution_nm, psnr, psnr_per_element, ssim

    if inp.shape[0] != enhanced.shape[0]:
        raise UserError(f"the input has {inp.shape[0]} elements, the enhanced map {enhanced.shape[0]}")
    scale = enhanced.shape[-1] / inp.shape[-1]
    if abs(scale - round(scale)) > 1e-6 or enhanced.shape[-2] != round(scale) * inp.shape[-2]:
        raise UserError(f"the enhanced map {list(enhanced.shape[1:])} is not a whole multiple of the "
                        f"input {list(inp.shape[1:])}: is it this input's enhancement?")
    scale = int(round(scale))
    pixel = step_nm / scale
    ie, fe, names = matched_elements(inp.elements, fine.elements)
    truth = to_grid(fine.data[fe], fine_pixel_nm, pixel)
    if min(truth.shape[-2:]) < 8:
        raise UserError(f"the fine scan covers only {truth.shape[-2]} x {truth.shape[-1]} pixels of the "
                        "enhanced grid: too small to compare")
    pair = locate(enhanced.data[ie], truth)
    numbers = (f"overlap {100 * pair.overlap:.0f}% of the fine scan (at least {100 * MIN_OVERLAP:.0f}%), "
               f"correlation {pair.correlation:.2f} (at least {MIN_CORRELATION}), offset {list(pair.offset_px)}")
    if pair.overlap < MIN_OVERLAP or pair.correlation < MIN_CORRELATION:
        raise UserError(f"the fine scan does not match the enhanced map: {numbers}")
    oy, ox = pair.offset_px
    h, w = pair.fine.shape[-2:]
    y0, x0 = max(0, oy), max(0, ox)
    box = (slice(y0, y0 + h), slice(x0, x0 + w))
    gt = pair.coarse.astype(np.float64)
    estimates = {"input": upsample(inp.data[ie], scale)[:, box[0], box[1]],
                 "enhanced": pair.fine}
    probe = None
    if measured_probe is not None:
        probe = resample_probe(np.asarray(measured_probe[0], np.float64), measured_probe[1], pixel)
    elif probe_fwhm_nm is not None:
        probe = gaussian_probe(probe_fwhm_nm[0], pixel, probe_fwhm_nm[1])
    rl_iterations = None
    if probe is not None:
        best = None
        for n in (2, 5, 10, 20, 40):  # the protocol's oracle, tuned on the overlap
            est = richardson_lucy(inp.data[ie], probe, scale, n)[:, box[0], box[1]]
            score = psnr(est, gt)
            if best is None or score > best[0]:
                best = (score, n, est)
        estimates["rl"], rl_iterations = best[2], best[1]
    report = {
        "offset_px": [int(oy), int(ox)], "overlap_px": [int(h), int(w)],
        "overlap_fraction": round(float(pair.overlap), 4), "correlation": round(float(pair.correlation), 4),
        "psnr_db": {k: psnr(v, gt) for k, v in estimates.items()},
        "ssim": {k: ssim(v, gt) for k, v in estimates.items()},
        "frc_nm": {k: frc_resolution_nm(estimates[k], gt, pixel) for k in ("input", "enhanced")},
        "psnr_db_per_element": {k: dict(zip(names, psnr_per_element(v, gt))) for k, v in estimates.items()},
        "elements": names, "scale": scale, "input_step_nm": float(step_nm), "pixel_nm": float(pixel),
        "fine_pixel_nm": float(fine_pixel_nm), "rl_iterations": rl_iterations,
    }
    report["psnr_db"].setdefault("rl", None)
    report["ssim"].setdefault("rl", None)
    return report


def validate_result(inp: XRFMap, enhanced: XRFMap, fine: XRFMap, step_nm: float, fine_pixel_nm: float,
                    probe_fwhm_nm=None) -> dict:
    """validate() with the RL baseline's probe taken from the result's provenance (the probe it was
    enhanced with, measured or Gaussian), else probe_fwhm_nm (x, y); the report names it
    (rl_probe). The CLI and the web's validation both call this."""
    made = enhanced.provenance.get("enhancement") or {}
    probe = made.get("probe_fwhm_nm") or probe_fwhm_nm
    if probe is not None:
        probe = (float(probe[0]), float(probe[1])) if isinstance(probe, (list, tuple)) else (float(probe),) * 2
    kept = enhanced.provenance.get("measured_probe") or {}
    measured = (kept["intensity"], kept["pixel_nm"]) if kept.get("intensity") else None
    report = validate(inp, enhanced, fine, step_nm, fine_pixel_nm, probe_fwhm_nm=probe, measured_probe=measured)
    report["rl_probe"] = (f"measured ({kept.get('file')})" if measured else
                          f"Gaussian {probe[0]:g} x {probe[1]:g} nm" if probe else None)
    return report
