"""Grounds to trust (or distrust) an enhanced map: data consistency, uncertainty, resolution.

Data consistency: the enhanced map is the model's claim about the sample. Re-measuring it with
the model's probe and step, without noise (degrade.blur + degrade.sample), must give back the
measured input up to Poisson noise. chi^2 = (measured - re-measured)^2 / expected variance, per
pixel of the input's grid; its mean is ~1 where the claim fits the data. Detail the data cannot
support (an invented blob, a removed feature) lights up.

Noise rule (one place: `noise_variance`): in counts, a pixel expecting n counts has variance n;
in the map's units (value = counts / gain) that is value / gain. We take the value from the
re-measured enhancement (Pearson's chi^2: the claim's own expectation), floored at one count
(1 / gain units) so empty background does not divide by ~0, plus the model's read noise.

Gain (counts per unit of the map), per element, chosen by `gain=`:
- "model": the model's degradation puts C counts at the noise-free peak, g = C / peak, where
  peak = min(max of the re-measured map, max of the input) (an invented blob cannot set it).
- "data": real data rarely has the model's dose, so the gain is estimated from the data as the
  larger of two estimates that mostly err low (too much noise):
  (a) the input's own pixel-to-pixel noise (residual against its 4-neighbour mean; structure
  adds to it), (b) a robust (median, then 4-sigma clipped) fit of the residual between the input
  and the re-measured enhancement (inconsistent regions add to it; a median ignores them unless
  they cover half the map). On simulated phantoms it agrees with the model's gain within ~10%.
  It makes the mean chi^2 ~1 by construction: with it, only the map (local excess) speaks.
- "auto" (the default): "model" when the data estimate is within a factor 2 of the model's gain
  for every element (the data look like the model's dose, and the exact dose lets a globally
  wrong map raise the mean chi^2), else "data". The summary says which was used.
- a number: the gain itself (counts per unit), e.g. for raw count maps 1.0.

The chi^2 map is averaged over a probe-sized window (at least 3 x 3 pixels): a window of n
pixels averages n independent chi^2(1) values, so noise alone rarely passes THRESHOLD while an
invented feature spanning the probe keeps its full height.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from . import UserError
from .degrade import Degradation, blur, sample
from .metrics import single_image_frc_nm
from .xrfmap import XRFMap, with_fine_axes

THRESHOLD = 3.0  # smoothed chi^2 above this: the data do not support the map there
SUSPECT_FRACTION = 0.01  # over 1% of the map above THRESHOLD: look at those regions
BAD_FRACTION = 0.05  # over 5%, or a mean chi^2 over BAD_MEAN: the map does not fit the data
BAD_MEAN = 2.0
MEDIAN_CHI2_1 = 0.4549  # median of a chi^2 variable with one degree of freedom
CLIPPED_VAR_4SIGMA = 0.9989  # variance of a unit Gaussian clipped at +-4 sigma


def _as3(a) -> np.ndarray:
    a = np.asarray(a, np.float64)
    return a[None] if a.ndim == 2 else a


def remeasure(enhanced, degradation: Degradation, fine_pixel_nm: float | None = None) -> np.ndarray:
    """The enhanced (fine) maps seen through the model's probe and step, without noise."""
    d = degradation
    if fine_pixel_nm and abs(fine_pixel_nm - d.pixel_nm) > 1e-6 * d.pixel_nm:
        d = dataclasses.replace(d, pixel_nm=float(fine_pixel_nm))  # the user's step, same probe
    return sample(blur(_as3(enhanced), d.probe()), d.scale, d.mode).astype(np.float64)


def model_gain(measured, expected, counts: float) -> np.ndarray:
    """Counts per unit per element from the model's dose: C counts at the noise-free peak."""
    peak = np.minimum(_as3(expected).reshape(len(_as3(expected)), -1).max(1),
                      _as3(measured).reshape(len(_as3(measured)), -1).max(1))
    return np.where(peak > 0, counts / np.maximum(peak, 1e-30), 0.0)


def _robust_gain(residual: np.ndarray, mean: np.ndarray, factor: float = 1.0) -> float:
    """Gain from residuals whose variance should be factor * mean / gain.

    A median starts it (outliers: structure, invented detail), then a few rounds of a 4-sigma
    clipped mean, which unlike the median stays unbiased for Poisson at a few counts."""
    ok = mean > 0.02 * mean.max()  # near-empty pixels say little; leave them out
    if ok.sum() < 16:
        return 0.0
    q = residual[ok] ** 2 / (factor * mean[ok])  # = chi^2 / gain
    med = np.median(q)
    if med <= 0:
        return 0.0
    g = MEDIAN_CHI2_1 / med
    for _ in range(3):
        kept = q * g < 16.0
        if not kept.any():
            break
        g = float(CLIPPED_VAR_4SIGMA / np.mean(q[kept]))
    return g


def data_gain(measured, expected) -> np.ndarray:
    """Counts per unit per element estimated from the data (see the module docstring)."""
    out = []
    four = np.array([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]])
    for x, e in zip(_as3(measured), _as3(expected)):
        # (a) the input alone: x minus its 4-neighbour mean has variance 1.25 var for white noise
        local = ndimage.uniform_filter(x, 3, mode="reflect")
        g_input = _robust_gain(x - ndimage.convolve(x, four, mode="reflect"), local, 1.25)
        # (b) the input against the claim
        g_claim = _robust_gain(x - e, np.clip(e, 0, None))
        out.append(max(g_input, g_claim))
    return np.array(out)


def noise_variance(expected, gain, read_noise: float = 0.0) -> np.ndarray:
    """Poisson variance in the map's units, at least one count's worth (see the docstring)."""
    g = np.asarray(gain, np.float64)[:, None, None]
    safe = np.where(g > 0, g, 1.0)
    var = np.maximum(np.clip(_as3(expected), 0, None), 1.0 / safe) / safe + (read_noise / safe) ** 2
    return np.where(g > 0, var, np.inf)  # an empty element (no gain) contributes chi^2 = 0


def window_px(degradation: Degradation) -> int:
    """Odd window on the input's grid about one probe FWHM wide, at least 3."""
    fwhm = max(degradation.probe_fwhm_nm, degradation.probe_fwhm_y_nm or 0)
    n = int(round(fwhm / degradation.step_nm))
    return max(3, n + 1 - n % 2)


def _verdict(mean: float, fraction: float) -> str:
    if mean > BAD_MEAN or fraction > BAD_FRACTION:
        return "inconsistent"
    if fraction > SUSPECT_FRACTION:
        return "suspect"
    return "consistent"


def consistency(measured, enhanced, degradation: Degradation, *, elements=None, fine_pixel_nm=None,
                gain="auto", smooth: bool = True) -> tuple[np.ndarray, dict]:
    """chi^2 of the enhanced maps against the measured ones, on the measured grid.

    measured (E, H, W), enhanced (E, H*S, W*S). Returns (chi2 (E, H, W) float32, summary dict);
    chi2 is averaged over window_px(degradation) pixels when smooth.
    """
    x = _as3(measured)
    expected = remeasure(enhanced, degradation, fine_pixel_nm)
    if expected.shape != x.shape:
        raise UserError(f"the enhanced maps {list(_as3(enhanced).shape)} re-measured with step "
                        f"{degradation.scale} give {list(expected.shape)}, but the input is "
                        f"{list(x.shape)}; were they enhanced from this input with this model?")
    elements = list(elements) if elements is not None else [str(i) for i in range(len(x))]
    g_model = model_gain(x, expected, degradation.counts) if degradation.counts else None
    if isinstance(gain, (int, float)) and not isinstance(gain, bool):
        if gain <= 0:
            raise UserError("the gain (counts per unit) must be positive")
        g, source = np.full(len(x), float(gain)), "given"
    elif gain == "model":
        if g_model is None:
            raise UserError("this model was trained without noise (counts: null); use the data gain")
        g, source = g_model, "model"
    elif gain in ("auto", "data"):
        g, source = data_gain(x, expected), "data"
        if gain == "auto" and g_model is not None and np.all((g > 0.5 * g_model) & (g < 2 * g_model)):
            g, source = g_model, "model"  # the data look like the model's dose: use the exact one
    else:
        raise UserError(f"unknown gain {gain!r}: auto, data, model or a number (counts per unit)")
    read_noise = degradation.read_noise if source == "model" else 0.0
    raw = (x - expected) ** 2 / noise_variance(expected, g, read_noise)
    n = window_px(degradation)
    chi2 = ndimage.uniform_filter(raw, size=(1, n, n), mode="reflect") if smooth else raw
    per = {}
    for i, el in enumerate(elements):
        mean = float(raw[i].mean())
        fraction = float((chi2[i] > THRESHOLD).mean())
        per[el] = {
            "mean_chi2": mean,
            "fraction_above": fraction,
            "max_chi2": float(chi2[i].max()),
            "gain": float(g[i]),
            "counts_at_peak": float(g[i] * x[i].max()),
            "model_gain": None if g_model is None else float(g_model[i]),
            "verdict": _verdict(mean, fraction),
        }
    order = ("consistent", "suspect", "inconsistent")
    summary = {
        "verdict": max((p["verdict"] for p in per.values()), key=order.index, default="consistent"),
        "threshold": THRESHOLD,
        "window_px": n if smooth else 1,
        "gain_source": source,
        "elements": per,
    }
    return chi2.astype(np.float32), summary


def uncertainty_maps(enhanced: XRFMap) -> np.ndarray | None:
    """The self-ensemble's standard deviation (E, h, w), when enhance_map stored it."""
    keys = [f"uncertainty:{el}" for el in enhanced.elements]
    if not all(k in enhanced.extras for k in keys):
        return None
    return np.stack([np.asarray(enhanced.extras[k], np.float32) for k in keys])


def uncertainty_summary(enhanced: XRFMap) -> dict | None:
    """Per element: the ensemble's spread, as a fraction of the map's mean and of its 99th
    percentile (how large a feature must be to stand above the spread). None without ensemble."""
    sigma = uncertainty_maps(enhanced)
    if sigma is None:
        return None
    out = {}
    for el, s, m in zip(enhanced.elements, sigma, enhanced.data):
        mean, p99 = float(m.mean()), float(np.percentile(m, 99))
        out[el] = {
            "mean_sigma": float(s.mean()),
            "p99_sigma": float(np.percentile(s, 99)),
            "relative_to_mean": float(s.mean() / mean) if mean > 0 else None,
            "relative_to_p99": float(s.mean() / p99) if p99 > 0 else None,
        }
    return out


def resolution_summary(input_map, input_pixel_nm: float, enhanced_map, fine_pixel_nm: float,
                       elements=None) -> dict:
    """Effective resolution (nm) per element before and after, by single-image FRC.

    Takes XRFMaps or (E, H, W) arrays. See metrics.single_image_frc_nm for what this can and
    cannot see: it cannot tell invented detail from real detail; the chi^2 map can.
    """
    a = input_map.data if isinstance(input_map, XRFMap) else _as3(input_map)
    b = enhanced_map.data if isinstance(enhanced_map, XRFMap) else _as3(enhanced_map)
    if elements is None:
        elements = input_map.elements if isinstance(input_map, XRFMap) else [str(i) for i in range(len(a))]
    out = {}
    for el, m_in, m_out in zip(elements, a, b):
        before = single_image_frc_nm(m_in, input_pixel_nm)
        after = single_image_frc_nm(m_out, fine_pixel_nm)
        out[el] = {"input_nm": before, "enhanced_nm": after, "improvement": before / after}
    return out


RESOLUTION_CAVEAT = (
    "single-image FRC (checkerboard halves, 1/7 threshold): the input's value is sound; the "
    "enhanced map's noise is correlated between neighbouring pixels, so its value is optimistic, "
    "at best the fine grid's Nyquist limit, and blind to invented detail: read it with the chi^2 map")


def trust_report(input_map: XRFMap, enhanced: XRFMap, bundle, *, gain="auto", rois=True,
                 roi_elements=None, top_rois: int = 50, physics=None, scale=None) -> dict:
    """Everything the job page shows beside an enhanced map.

    Returns {"elements", "chi2": (E, H, W) float32 on the input's grid, "consistency": summary,
    "resolution": per element, "resolution_method", "uncertainty": per element or None,
    "rois": the top_rois best scan suggestions on the enhanced map}. All but "chi2" is
    JSON-serialisable (and small: it goes into the result file's provenance attribute).
    physics, scale: what the map was enhanced with (None: physics_of(input_map), the model's
    own scale or the fit rule's default); the re-measurement uses that probe, step and dose.
    """
    from .fit import require
    from .physics import physics_of
    from .roi import find_rois

    f = require(bundle.config, physics if physics is not None else physics_of(input_map), scale)
    step_nm, scale = float(np.mean(f.physics.scan_step_nm)), f.scale
    if enhanced.shape != (input_map.shape[0], input_map.shape[1] * scale, input_map.shape[2] * scale):
        raise UserError(f"the enhanced maps {list(enhanced.shape)} are not the input "
                        f"{list(input_map.shape)} enhanced {scale}x")
    fine_nm = float(np.mean(enhanced.pixel_size_nm)) if enhanced.pixel_size_nm else step_nm / scale
    chi2, summary = consistency(input_map.data, enhanced.data, f.degradation(),
                                elements=input_map.elements, fine_pixel_nm=fine_nm, gain=gain)
    report = {
        "elements": list(input_map.elements),
        "chi2": chi2,
        "consistency": summary,
        "resolution": resolution_summary(input_map, step_nm, enhanced, fine_nm),
        "resolution_method": RESOLUTION_CAVEAT,
        "uncertainty": uncertainty_summary(enhanced),
        "rois": [],
    }
    if rois:
        report["rois"] = find_rois(with_fine_axes(input_map, enhanced, scale), elements=roi_elements,
                                   pixel_nm=fine_nm, top=top_rois)
    return report


def attach_trust(enhanced: XRFMap, report: dict) -> XRFMap:
    """A copy of the enhanced map that carries its trust report, ready for formats.write_result:
    extras "chi2:<El>" on the enhanced grid, and the summaries in provenance["trust"]."""
    scale = enhanced.shape[-1] // report["chi2"].shape[-1]
    out = dataclasses.replace(enhanced, extras=dict(enhanced.extras), provenance=dict(enhanced.provenance))
    for el, c in zip(report["elements"], chi2_on_fine_grid(report["chi2"], scale)):
        out.extras[f"chi2:{el}"] = c
    out.provenance["trust"] = {k: v for k, v in report.items() if k != "chi2"}
    return out


def chi2_on_fine_grid(chi2: np.ndarray, scale: int) -> np.ndarray:
    """Each input pixel's chi^2 over the S x S fine pixels it covers, to lie over the enhanced map."""
    return np.repeat(np.repeat(chi2, scale, axis=-2), scale, axis=-1)
