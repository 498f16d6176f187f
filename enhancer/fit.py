"""The one fit rule: may this model enhance a map with this physics, at which scale, and if not,
why not (in words). The CLI, the web's pages, its API and its jobs all ask here.

Two kinds of model:
- made for one condition (protocol-a/-b/-c, or trained by staff): its scan step (scale x fine
  pixel) and its probe (x and y, from its degradation) are fixed. A map fits when its stated
  step and probe are each within 10% of the model's on both axes. Without a stated probe the
  model's own is assumed, and the Fit says so in `note` (printed on stderr, shown on the pages).
  Its dose is not a refusal (the estimate is rough) but a note when it is 3x off, and a
  ranking penalty.
- conditioned (its config has a `conditions` section, e.g. `universal`): takes the probe in
  OUTPUT pixels (per axis), the scale and the dose as inputs, within the ranges the section
  states. It needs the step and the probe. The default scale is the one in the model's range
  that puts the probe's FWHM nearest DEFAULT_PROBE_PX output pixels (geometric mean of x and y;
  the smaller scale on a tie) among the scales that keep both axes in range: about 3 pixels
  across the probe samples it finely enough to restore, without spending pixels on detail the
  probe never passed.
A step or a probe that is unknown is never guessed (except the single-condition model's own
probe, said aloud); the Fit names what is missing in `missing` ("step", "probe", "dose").
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from . import UserError
from .physics import Physics, pair_text

TOLERANCE = 0.10  # a single-condition model's step and probe, relative
DEFAULT_PROBE_PX = 3.0  # the default scale aims the probe's FWHM at this many output pixels
DOSE_NOTE_FACTOR = 3.0  # a single-condition model's dose this far off gets a note
WAY_ON = "universal"  # the conditioned model to name when a single-condition model refuses


@dataclass(frozen=True)
class Fit:
    ok: bool
    reason: str = ""  # why not, in words ("" when ok)
    scale: int | None = None  # the scale it runs at (output grid = step / scale)
    note: str = ""  # an assumption or a warning the user must see even when ok
    physics: Physics | None = None  # what it runs with (an assumed probe filled in, said in note)
    fine_pixel_nm: tuple[float, float] | None = None  # (x, y) of the output grid
    probe_fwhm_px: tuple[float, float] | None = None  # (x, y) in output pixels
    missing: tuple[str, ...] = ()  # what must be stated: "step", "probe", "dose"
    mismatch: float = math.inf  # for ranking: 0 = exactly what the model was made for
    conditioned: bool = False

    def degradation(self):
        """The forward model this map was measured by, on the output grid (the consistency
        check re-measures the enhanced map with it). Degradation has square pixels: the x pixel
        is kept and the y probe rescaled, so the probe spans the same output pixels per axis."""
        from .degrade import Degradation

        (fx, fy), (px, py) = self.fine_pixel_nm, self.physics.probe_fwhm_nm
        d = Degradation(probe_fwhm_nm=px, pixel_nm=fx, scale=self.scale, counts=self.physics.counts,
                        probe_fwhm_y_nm=py * fx / fy)
        if self.physics.measured_probe is not None:  # the measured probe itself is the PSF
            from .probe import measured_degradation

            return measured_degradation(d, *self.physics.measured_probe)
        return d

    def describe(self) -> str:
        """One line for people: how it runs, or why not."""
        if not self.ok:
            return self.reason
        p = self.physics
        parts = [f"scale {self.scale}",
                 f"output pixel {pair_text(self.fine_pixel_nm)} nm" if self.fine_pixel_nm else "",
                 f"probe {pair_text(self.probe_fwhm_px)} output px" if self.probe_fwhm_px else "",
                 f"{p.counts:.3g} counts" if p and p.counts else ""]
        return ", ".join(x for x in parts if x) + (f" ({self.note})" if self.note else "")


def conditions(config: dict) -> dict | None:
    """A conditioned model's ranges, or None for a model made for one condition."""
    c = config.get("conditions")
    return c if isinstance(c, dict) and c else None


def own_physics(config: dict) -> Physics:
    """What a single-condition model was made for: its step, probe and dose."""
    d = config.get("degradation") or {}
    step = float(config["pixel_nm"]) * int(config.get("scale") or 1)
    px = d.get("probe_fwhm_nm")
    probe = (float(px), float(d.get("probe_fwhm_y_nm") or px)) if px else None
    return Physics((step, step), probe, float(d["counts"]) if d.get("counts") else None)


def _name(config) -> str:
    return config.get("name") or "this model"


def _off(a, b) -> float:
    """Largest relative difference over the two axes."""
    return max(abs(x - y) / y for x, y in zip(a, b))


def _bad_values(physics: Physics) -> str:
    for what, pair in (("scan step", physics.scan_step_nm), ("probe FWHM", physics.probe_fwhm_nm)):
        if pair is not None and not all(math.isfinite(v) and v > 0 for v in pair):
            return f"the {what} must be a positive number of nm (got {pair_text(pair)})"
    if physics.counts is not None and not (math.isfinite(physics.counts) and physics.counts > 0):
        return f"the dose must be positive counts at the peak (got {physics.counts:g})"
    return ""


def fit(config: dict, physics: Physics, scale=None) -> Fit:
    """Whether the model with this config (its model.json) may enhance a map with `physics`.

    scale: asked for (None = the model's own, or the conditioned default). When the dose came
    from estimate_counts (physics.counts_estimated), a conditioned model takes an estimate above
    its range as its top (more counts only means less noise); a stated dose outside is refused.
    """
    bad = _bad_values(physics)
    if bad:
        return Fit(False, bad)
    if scale is not None:
        try:
            if isinstance(scale, bool) or float(scale) != int(float(scale)):
                raise ValueError
            scale = int(float(scale))
        except (TypeError, ValueError):
            return Fit(False, f"the scale must be a whole number 1-4 (got {scale!r})")
        if not 1 <= scale <= 4:
            return Fit(False, f"the scale must be 1-4 (got {scale})")
    if conditions(config):
        return _fit_conditioned(config, physics, scale)
    return _fit_single(config, physics, scale)


def _fit_single(config, physics: Physics, scale) -> Fit:
    name, own = _name(config), own_physics(config)
    own_scale = int(config.get("scale") or 1)
    made_for = (f"{name} is made for one condition: a {pair_text(own.scan_step_nm)} nm step and a "
                f"{pair_text(own.probe_fwhm_nm)} nm probe, enhanced {own_scale}x")
    way_on = f"use {WAY_ON}, which takes any step, probe and scale"
    if physics.scan_step_nm is None:
        return Fit(False, f"the scan step is unknown: state it", missing=("step",))
    if scale is not None and scale != own_scale:
        return Fit(False, f"{made_for}, not {scale}x; {way_on}")
    step_off = _off(physics.scan_step_nm, own.scan_step_nm)
    if step_off > TOLERANCE:
        return Fit(False, f"the map's step is {pair_text(physics.scan_step_nm)} nm: {made_for} "
                          f"(more than 10% off); {way_on}")
    note, probe = "", physics.probe_fwhm_nm
    if probe is None:
        probe = own.probe_fwhm_nm
        note = f"the probe was not stated: assumed {name}'s own {pair_text(probe)} nm"
        probe_off = 0.0
    else:
        probe_off = _off(probe, own.probe_fwhm_nm)
        if probe_off > TOLERANCE:
            return Fit(False, f"the probe is {pair_text(probe)} nm: {made_for} "
                              f"(more than 10% off); {way_on}")
    dose_off = 0.0
    if physics.counts and own.counts:
        dose_off = abs(math.log(physics.counts / own.counts))
        if dose_off > math.log(DOSE_NOTE_FACTOR):
            note = "; ".join(x for x in (note, f"{name} is made for {own.counts:g} counts at the peak; "
                                         f"this map has about {physics.counts:.3g}: {WAY_ON} takes the dose into account") if x)
    fine = tuple(s / own_scale for s in physics.scan_step_nm)
    return Fit(True, scale=own_scale, note=note, physics=replace(physics, probe_fwhm_nm=probe),
               fine_pixel_nm=fine, probe_fwhm_px=tuple(p / f for p, f in zip(probe, fine)),
               mismatch=max(step_off, probe_off, dose_off))


def _range(c, key, default):
    lo, hi = c.get(key, default)
    return float(lo), float(hi)


def _fit_conditioned(config, physics: Physics, scale) -> Fit:
    name, c = _name(config), conditions(config)
    probe_lo, probe_hi = _range(c, "probe_fwhm_px", (1.5, 8))
    scale_lo, scale_hi = _range(c, "scale", (1, 4))
    counts_lo, counts_hi = _range(c, "counts", (20, 10000))
    missing = tuple(w for w, v in (("step", physics.scan_step_nm), ("probe", physics.probe_fwhm_nm)) if v is None)
    if missing:
        words = " and ".join({"step": "the scan step", "probe": "the probe FWHM"}[m] for m in missing)
        return Fit(False, f"{name} needs {words}: state {'them' if len(missing) > 1 else 'it'}",
                   missing=missing, conditioned=True)
    step, probe = physics.scan_step_nm, physics.probe_fwhm_nm
    in_px = [p / s for p, s in zip(probe, step)]  # the probe in input pixels, per axis

    def in_range(s):
        return all(probe_lo <= s * p <= probe_hi for p in in_px)

    scales = [s for s in range(int(math.ceil(scale_lo)), int(scale_hi) + 1)]
    if scale is not None:
        if not scale_lo <= scale <= scale_hi:
            return Fit(False, f"{name} takes a scale of {scale_lo:g}-{scale_hi:g} (got {scale})", conditioned=True)
        if not in_range(scale):
            px = pair_text(tuple(round(scale * p, 2) for p in in_px))
            fitting = [s for s in scales if in_range(s)]
            hint = (f"scale {', '.join(map(str, fitting))} fits" if fitting else "no scale fits")
            return Fit(False, f"at scale {scale} the probe is {px} output pixels; {name} takes "
                              f"{probe_lo:g}-{probe_hi:g} on each axis ({hint})", conditioned=True)
    else:
        fitting = [s for s in scales if in_range(s)]
        if not fitting:
            return Fit(False, f"the probe ({pair_text(probe)} nm) is {pair_text(tuple(round(p, 2) for p in in_px))} "
                              f"scan steps wide: at any scale {scale_lo:g}-{scale_hi:g} that is outside "
                              f"{name}'s {probe_lo:g}-{probe_hi:g} output pixels", conditioned=True)
        mean_px = math.sqrt(in_px[0] * in_px[1])
        scale = min(fitting, key=lambda s: (abs(math.log(s * mean_px / DEFAULT_PROBE_PX)), s))
    note, counts = "", physics.counts
    if counts is None:
        return Fit(False, f"{name} needs the dose (counts at the peak): the data did not tell; state it",
                   missing=("dose",), conditioned=True)
    if counts < counts_lo or (counts > counts_hi and not physics.counts_estimated):
        return Fit(False, f"{name} takes {counts_lo:g}-{counts_hi:g} counts at the peak (got {counts:.3g})",
                   conditioned=True)
    if counts > counts_hi:
        note = f"the map's dose (about {counts:.3g} counts) is above {name}'s range: enhanced as {counts_hi:g}"
        counts = counts_hi
    fine = tuple(s / scale for s in step)
    return Fit(True, scale=scale, note=note, physics=replace(physics, counts=counts), fine_pixel_nm=fine,
               probe_fwhm_px=tuple(p / f for p, f in zip(probe, fine)), mismatch=TOLERANCE,
               conditioned=True)


def require(config: dict, physics: Physics, scale=None, flags: dict | None = None) -> Fit:
    """fit(), raising UserError with the reason when it does not fit. flags maps what is missing
    ("step", "probe", "dose") to how to state it (the CLI's flags), added to the message."""
    f = fit(config, physics, scale)
    if not f.ok:
        how = [flags[m] for m in f.missing if flags and m in flags]
        raise UserError(f.reason + (f" ({', '.join(how)})" if how else ""))
    return f


def rank(fits: list[tuple]) -> list[tuple]:
    """[(item, Fit)] with the fitting ones first, the closest to what they were made for first.
    A conditioned model ranks as a single-condition one at the edge of its tolerance: a model
    made for exactly this map comes first, one merely within 10% or far off in dose after."""
    return sorted(fits, key=lambda p: (not p[1].ok, p[1].mismatch, p[1].conditioned))
