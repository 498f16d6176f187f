"""The probe from the data: a blind estimate from a map's power spectrum, and knife-edge fits.

Blind estimate (docs/probe.md): the 2-D power spectrum is fitted by a power-law object seen
through a Gaussian probe over white noise (enhancer.probe_spectrum); here the fit is turned into
FWHM (x, y) with an uncertainty, or refused (ProbeRefused), never guessed, where the map carries
too little information: flat, pure noise, sharp up to the step, a probe too large for the map,
or an uncertainty over half the estimate. Where that fit's object model is strained and the map
has sharp boundaries, an axis takes the width of its located edges instead (enhancer.probe_edges).

Knife-edge: a line scan across an edge (or a 2-D map of one, its lines averaged after each is
located) is fitted by an error function; its 10-90% width and FWHM follow from sigma.
"""
from __future__ import annotations

import numpy as np

from . import UserError, probe_edges, probe_spectrum
from .probe_spectrum import SYSTEMATIC
from .degrade import FWHM_PER_SIGMA
from .edge_fit import ProbeRefused, fit_edge  # noqa: F401 (ProbeRefused: this module's API)

MAX_RELATIVE_UNCERTAINTY = 0.5  # above this a knife-edge fit says nothing: refused
# A blind estimate is refused above 35%: on the tuning phantoms the estimates over it were Siemens
# stars read 50-70% narrow, and no estimate within 20% was lost (docs/probe.md)
BLIND_MAX_RELATIVE_UNCERTAINTY = 0.35
MIN_LINE = 32  # pixels along an axis for a spectrum


def blind(maps: np.ndarray, step_nm: tuple[float, float], dwell: bool = True) -> dict:
    """The probe's FWHM (x, y) in nm from a measured map (E, H, W) with steps (x, y) in nm."""
    maps = np.asarray(maps, np.float64)
    maps = maps[None] if maps.ndim == 2 else maps
    if min(maps.shape[-2:]) < MIN_LINE:
        raise ProbeRefused(f"the map is {maps.shape[-2]} x {maps.shape[-1]} pixels: at least "
                           f"{MIN_LINE} along each axis are needed to see the spectrum's fall-off")
    if not np.isfinite(maps).all():
        raise UserError("the map holds NaN or infinite values")
    flat = "the map is flat: no structure to measure a probe from"
    if np.all(maps.std(axis=(-2, -1)) <= 1e-12 * (np.abs(maps).max() + 1e-30)):
        raise ProbeRefused(flat)
    f = probe_spectrum.fit(maps, dwell=dwell)
    if f["flat"]:
        raise ProbeRefused(flat)
    edges = probe_edges.estimate(maps, f, dwell)
    axes = {}
    for i, (name, step) in enumerate((("x", step_nm[0]), ("y", step_nm[1]))):
        n_line = maps.shape[-1] if name == "x" else maps.shape[-2]
        fwhm = float(f["sigma"][i] * FWHM_PER_SIGMA * step)
        a = f[name]
        if a["peak_snr"] < 10:
            raise ProbeRefused(f"along {name} the map's structure hardly rises above its noise (peak "
                               f"signal-to-noise {a['peak_snr']:.1f} in the spectrum): it looks like "
                               "pure noise, no probe can be measured from it")
        if a["k_noise"] >= 0.45 or fwhm < step:
            raise ProbeRefused(f"along {name} the map is sharp up to the step (fitted FWHM "
                               f"{fwhm:.0f} nm for a {step:g} nm step): the probe is under "
                               "about one step and the map cannot show its size")
        if fwhm > step * n_line / 6:
            raise ProbeRefused(f"along {name} the fitted FWHM ({fwhm:.0f} nm) is over a sixth of "
                               "the map: too large to measure on this map")
        unc = float(fwhm * np.hypot(f["se_log"][i], SYSTEMATIC))
        if not np.isfinite(unc) or unc > BLIND_MAX_RELATIVE_UNCERTAINTY * fwhm:
            raise ProbeRefused(f"along {name} the fit cannot pin the probe down (FWHM {fwhm:.0f}"
                               f" +- {unc:.0f} nm): too little structure above the noise")
        a = {**a, "edges": 0}
        if edges[i] is not None:  # sharp edges where the spectrum's object model is strained
            sigma, rel, a["edges"] = edges[i]
            fwhm = float(sigma * FWHM_PER_SIGMA * step)
            unc = fwhm * rel
        axes[name] = {"fwhm_nm": fwhm, "uncertainty_nm": unc, **a}
    return {"fwhm_nm": [round(axes["x"]["fwhm_nm"], 1), round(axes["y"]["fwhm_nm"], 1)],
            "uncertainty_nm": [round(axes["x"]["uncertainty_nm"], 1), round(axes["y"]["uncertainty_nm"], 1)],
            "method": "blind", "step_nm": [float(step_nm[0]), float(step_nm[1])],
            "sampling": "box" if dwell else "point", "spectral_slope": round(f["beta"], 2),
            "fit": {n: {"peak_snr": round(a["peak_snr"], 1), "signal_until_cycles_per_step": round(a["k_noise"], 3),
                        "edges_used": a["edges"]}
                    for n, a in axes.items()}}


def knife_edge(values: np.ndarray, step_nm: float, positions_nm: np.ndarray | None = None,
               sampling: str = "box", axis: str | None = None) -> dict:
    """FWHM from a knife-edge scan: a 1-D line across an edge (positions or a step), or a 2-D map of
    an edge (each line across it fitted, the median kept; the axis across the edge is the one with
    the larger mean gradient unless given). Returns the probe JSON with the other axis None."""
    v = np.asarray(values, np.float64)
    if not np.isfinite(v).all():
        raise UserError("the knife-edge scan holds NaN or infinite values")
    if v.ndim == 3 and v.shape[0] == 1:
        v = v[0]
    if v.ndim == 1:
        x = np.asarray(positions_nm, np.float64) if positions_nm is not None else np.arange(len(v)) * step_nm
        width = float(np.median(np.diff(np.sort(x)))) if sampling == "box" else 0.0
        if len(v) < 8:
            raise ProbeRefused(f"a knife-edge scan of {len(v)} points is too short (at least 8)")
        sigma, se, _ = fit_edge(x, v, width)
        axis = axis or "x"
    elif v.ndim == 2:
        if axis is None:
            gx, gy = np.abs(np.diff(v, axis=1)).mean(), np.abs(np.diff(v, axis=0)).mean()
            axis = "x" if gx >= gy else "y"
        lines = v if axis == "x" else v.T
        x = np.arange(lines.shape[1]) * step_nm
        width = step_nm if sampling == "box" else 0.0
        xs, vs = [], []
        for line in lines:  # each line located on its own (the edge may be tilted), then pooled
            try:
                x0 = fit_edge(x, line, width)[2]
            except ProbeRefused:
                continue
            xs.append(x - x0)
            vs.append(line)
        if len(xs) < 3:
            raise ProbeRefused("too few lines of the map cross an edge")
        sigma, se, _ = fit_edge(np.concatenate(xs), np.concatenate(vs), width)
    else:
        raise UserError(f"a knife-edge scan is a line or one 2-D map; got shape {list(v.shape)}")
    fwhm, unc = sigma * FWHM_PER_SIGMA, se * FWHM_PER_SIGMA
    if not np.isfinite(unc) or unc > MAX_RELATIVE_UNCERTAINTY * fwhm:
        raise ProbeRefused(f"the edge fit cannot pin the probe down (FWHM {fwhm:.0f} +- {unc:.0f} nm)")
    if fwhm < 0.5 * step_nm:
        raise ProbeRefused(f"the edge is sharper than the step ({fwhm:.0f} nm FWHM for a {step_nm:g} nm "
                           "step): the probe is under one step and this scan cannot show its size")
    i = 0 if axis == "x" else 1
    out = [None, None]
    unc_out = [None, None]
    out[i], unc_out[i] = round(fwhm, 1), round(unc, 1)
    return {"fwhm_nm": out, "uncertainty_nm": unc_out, "method": "knife-edge", "axis": axis,
            "step_nm": float(step_nm), "sampling": sampling}


def read_probe(path: str, dataset: str | None = None) -> np.ndarray:
    """A measured probe from a file: a 2-D array in .npy, .tif/.tiff, or HDF5 (FILE.h5 holding one
    2-D dataset, or FILE.h5:/path/to/dataset, or `dataset` named apart). Complex amplitudes
    (ptychography) become |a|^2. Returned as a non-negative intensity of unit sum (not resampled)."""
    from pathlib import Path

    text = str(path)
    inner = dataset or None
    if inner is None and ":" in text and not Path(text).exists():
        text, inner = text.rsplit(":", 1)
    p = Path(text)
    if not p.exists():
        raise UserError(f"{text}: no such probe file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            a = np.load(p, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            a = tifffile.imread(p)
        elif suffix in (".h5", ".hdf5", ".hdf", ".cxi", ".nxs"):
            a = _read_hdf5_probe(p, inner)
        else:
            raise UserError(f"{p.name}: a probe is read from .npy, .tif/.tiff or HDF5 (.h5)")
    except (OSError, ValueError) as e:
        raise UserError(f"{p.name}: cannot read a probe from it ({e})") from None
    a = np.squeeze(np.asarray(a))
    if np.iscomplexobj(a):
        a = np.abs(a) ** 2
    if a.ndim != 2 or min(a.shape) < 3 or not np.issubdtype(a.dtype, np.number):
        raise UserError(f"{p.name}: a probe is one 2-D array; got shape {list(a.shape)}")
    a = np.asarray(a, np.float64)
    if not np.isfinite(a).all():
        raise UserError(f"{p.name}: the probe holds NaN or infinite values")
    if not np.any(a):
        raise UserError(f"{p.name}: the probe is all zero (no intensity)")
    if a.min() < -1e-6 * max(a.max(), 1e-30) or a.sum() <= 0:
        raise UserError(f"{p.name}: a probe intensity is non-negative with a positive sum")
    a = np.clip(a, 0, None)
    return a / a.sum()


def _read_hdf5_probe(p, inner):
    import h5py

    with h5py.File(p, "r") as f:
        if inner:
            if inner not in f or not isinstance(f[inner], h5py.Dataset):
                raise UserError(f"{p.name}: no dataset {inner!r}")
            return f[inner][()]
        found = []
        f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset)
                     and len([n for n in obj.shape if n > 1]) == 2 else None)
        if len(found) != 1:
            raise UserError(f"{p.name}: holds {len(found)} 2-D datasets ({', '.join(found[:5])}); "
                            "name one as FILE.h5:/path/to/probe")
        return f[found[0]][()]


def fwhm_of(probe: np.ndarray, pixel_nm: float) -> tuple[float, float]:
    """(x, y) full widths at half maximum of a probe intensity, through its peak along each axis,
    interpolated between pixels: what a universal model is told about a measured probe."""
    a = np.asarray(probe, np.float64)
    iy, ix = np.unravel_index(int(np.argmax(a)), a.shape)
    return _width(a[iy, :], ix) * pixel_nm, _width(a[:, ix], iy) * pixel_nm


def measured_fwhm(probe: np.ndarray, pixel_nm: float) -> tuple[float, float]:
    """fwhm_of a probe a facility attaches to a map, refusing one that is cut off by its array or
    is not a probe at all (it must fall to half its peak on both sides of it along each axis)."""
    a = np.asarray(probe, np.float64)
    iy, ix = np.unravel_index(int(np.argmax(a)), a.shape)
    for name, line, i in (("x", a[iy, :], ix), ("y", a[:, ix], iy)):
        half = line[i] / 2
        if not (np.any(line[:i] <= half) and np.any(line[i + 1:] <= half)):
            raise UserError(f"the probe does not fall to half its peak on both sides along {name}: "
                            "it is cut off by its array, or not a probe")
    return fwhm_of(a, pixel_nm)


def one_probe(fwhm_nm, measured: bool, fwhm_name: str, measured_name: str) -> None:
    """A simulated measurement's probe is a Gaussian of a stated FWHM or a measured probe (its FWHM
    read from it): one of them, never both. The CLI's degrade and train (--probe-fwhm-nm, --probe)
    and the web's training (probe_fwhm_nm, measured_probe_dataset) come through here, each naming
    its own fields."""
    if measured and fwhm_nm is not None:
        raise UserError(f"give {measured_name} or {fwhm_name}, not both (a measured probe's FWHM is read from it)")
    if not measured and fwhm_nm is None:
        raise UserError(f"give the probe: {fwhm_name}, or a measured one with {measured_name}")


def simulation(fwhm_nm, pixel_nm: float, scale: int, counts, measured=None):
    """The simulated measurement degrade and train learn from: a Gaussian probe of fwhm_nm, or the
    measured probe (intensity, its pixel in nm) as the PSF, its FWHM read from it (fwhm_nm unused:
    one_probe refuses both). The CLI's --probe and the web's training with a dataset's attached
    probe both come through here."""
    from .degrade import Degradation

    d = Degradation(fwhm_nm or 1.0, pixel_nm, scale, counts)
    return d if measured is None else measured_degradation(d, *measured)


def trained_with(d, name: str, pixel_nm: float) -> dict:
    """What a model trained through a measured probe records of it in training.data.measured_probe
    (its degradation holds the PSF itself, on the fine grid): the file's name, its own pixel, and
    the FWHM (x, y) of the PSF it became. The CLI's train --probe and the web's training with a
    dataset's attached probe both record it so."""
    return {"file": name, "pixel_nm": float(pixel_nm),
            "fwhm_nm": [d.probe_fwhm_nm, d.probe_fwhm_y_nm or d.probe_fwhm_nm]}


def record_measured_probe(m, physics, probe: np.ndarray, pixel_nm: float, name: str):
    """The physics with a measured probe (the PSF; its FWHM the summary), recorded in the map's
    provenance as `measured_probe` (it travels into the result file; validate's RL reads it).
    The CLI's --probe and the web's attached probe both come through here."""
    import dataclasses

    from .degrade import Degradation

    fx, fy = fwhm_of(probe, pixel_nm)
    step = min(physics.scan_step_nm) if physics.scan_step_nm else pixel_nm * 4
    kept = measured_degradation(Degradation(fx, min(pixel_nm, step / 4), 1, None), probe, pixel_nm)
    m.provenance["measured_probe"] = {"file": name, "fwhm_nm": [round(fx, 1), round(fy, 1)],
                                      "pixel_nm": kept.pixel_nm, "intensity": kept.measured_probe}
    return dataclasses.replace(physics, probe_fwhm_nm=(fx, fy), measured_probe=(probe, float(pixel_nm)))


def _width(line, i) -> float:
    half = line[i] / 2
    right = i
    while right + 1 < len(line) and line[right + 1] > half:
        right += 1
    left = i
    while left - 1 >= 0 and line[left - 1] > half:
        left -= 1
    # Linear interpolation of the crossings on each side.
    r = right + ((line[right] - half) / (line[right] - line[right + 1]) if right + 1 < len(line) else 0.5)
    lft = left - ((line[left] - half) / (line[left] - line[left - 1]) if left - 1 >= 0 else 0.5)
    return float(r - lft)


def zone_plate_probe(fwhm_nm: float, pixel_nm: float, central_stop: float = 0.5, rings: int = 4) -> np.ndarray:
    """The focus of a zone plate with a central stop (an annular aperture's Airy pattern), with its
    side lobes out to `rings` dark rings, scaled so its central peak's FWHM is fwhm_nm; unit sum.
    A non-Gaussian probe for tests and docs (docs/probe.md)."""
    from scipy.special import j1

    eps = central_stop

    def amplitude(v):
        v = np.where(v == 0, 1e-12, v)
        return (2 * j1(v) / v - eps ** 2 * 2 * j1(eps * v) / (eps * v)) / (1 - eps ** 2)

    v = np.linspace(0, 5, 50001)
    v_half = v[np.argmax(amplitude(v) ** 2 < 0.5)]  # where the intensity is half the peak
    per_nm = v_half / (fwhm_nm / 2)
    radius = int(np.ceil((rings + 1) * np.pi / per_nm / pixel_nm))
    y, x = np.mgrid[-radius: radius + 1, -radius: radius + 1] * pixel_nm
    h = amplitude(np.hypot(y, x) * per_nm) ** 2
    return h / h.sum()


def measured_degradation(d, probe: np.ndarray, probe_pixel_nm: float):
    """The degradation d with a measured probe as its PSF, kept on d's fine grid (cropped to where
    it holds all but 1e-6 of its peak) so a model's config stays small; its FWHM (x, y) summarises it."""
    import dataclasses

    from .degrade import resample_probe

    h = resample_probe(probe, probe_pixel_nm, d.pixel_nm)
    keep = h > 1e-6 * h.max()
    rows, cols = np.nonzero(keep.any(1))[0], np.nonzero(keep.any(0))[0]
    cy, cx = np.unravel_index(int(np.argmax(h)), h.shape)
    ry = max(cy - rows[0], rows[-1] - cy)  # symmetric about the peak: the probe stays centred
    rx = max(cx - cols[0], cols[-1] - cx)
    h = np.pad(h, ((ry, ry), (rx, rx)))[cy: cy + 2 * ry + 1, cx: cx + 2 * rx + 1]
    h = h / h.sum()
    fx, fy = fwhm_of(h, d.pixel_nm)
    if min(fx, fy) < 0.5 * d.pixel_nm:
        raise UserError(f"the measured probe's FWHM ({fx:.0f} x {fy:.0f} nm) is under half the grid's "
                        f"{d.pixel_nm:g} nm pixel: is --probe-pixel-nm right?")
    return dataclasses.replace(d, probe_fwhm_nm=round(fx, 2), probe_fwhm_y_nm=None if abs(fx - fy) < 1e-6 * fx
                               else round(fy, 2), measured_probe=np.round(h, 9).tolist(),
                               measured_probe_pixel_nm=float(d.pixel_nm))
