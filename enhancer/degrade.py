"""The forward model g = (f * h) sampled + n: the one place where maps are degraded.

Follows the benchmark protocol (docs/benchmarks.md): probe blur on the fine grid (reflect boundary),
step sampling by an S x S box average (dwell integration) or block centres, Poisson noise at a
peak count per element plus optional Gaussian read noise. Values keep their units.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def gaussian_probe(fwhm_nm: float, pixel_nm: float, fwhm_y_nm: float | None = None) -> np.ndarray:
    """A circular (or elliptical, with fwhm_y_nm) Gaussian probe on the fine grid, unit sum."""
    if fwhm_nm <= 0 or pixel_nm <= 0:
        raise ValueError("probe FWHM and pixel size must be positive")
    sx = fwhm_nm / FWHM_PER_SIGMA / pixel_nm
    sy = (fwhm_y_nm if fwhm_y_nm else fwhm_nm) / FWHM_PER_SIGMA / pixel_nm
    ry, rx = max(1, int(np.ceil(4 * sy))), max(1, int(np.ceil(4 * sx)))
    y, x = np.mgrid[-ry : ry + 1, -rx : rx + 1]
    h = np.exp(-0.5 * ((x / sx) ** 2 + (y / sy) ** 2))
    return (h / h.sum()).astype(np.float64)


def resample_probe(probe: np.ndarray, probe_pixel_nm: float, pixel_nm: float) -> np.ndarray:
    """A measured probe intensity (e.g. from ptychography) resampled to pixel_nm, unit sum."""
    probe = np.abs(np.asarray(probe, dtype=np.float64))
    if probe.ndim != 2 or probe.sum() <= 0 or not np.isfinite(probe).all():
        raise ValueError("a measured probe must be a finite 2-D intensity array with a positive sum")
    zoom = probe_pixel_nm / pixel_nm
    if abs(zoom - 1) > 1e-6:
        probe = np.clip(ndimage.zoom(probe, zoom, order=1), 0, None)
    if probe.shape[0] % 2 == 0 or probe.shape[1] % 2 == 0:  # odd size keeps the centre on a pixel
        probe = np.pad(probe, ((0, 1 - probe.shape[0] % 2), (0, 1 - probe.shape[1] % 2)))
    return probe / probe.sum()


def blur(maps: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """Convolve each element map with the probe; reflect boundary, so totals are conserved."""
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim == 2:
        return blur(maps[None], probe)[0]
    return np.stack([ndimage.convolve(m, probe, mode="reflect") for m in maps]).astype(np.float32)


def sample(maps: np.ndarray, scale: int, mode: str = "box") -> np.ndarray:
    """Scan at a step of `scale` fine pixels: average each S x S block, or take block centres."""
    maps = np.asarray(maps)
    if scale == 1:
        return maps.astype(np.float32)
    h, w = (maps.shape[-2] // scale) * scale, (maps.shape[-1] // scale) * scale
    m = maps[..., :h, :w]
    if mode == "point":
        return m[..., scale // 2 :: scale, scale // 2 :: scale].astype(np.float32)
    if mode != "box":
        raise ValueError(f"unknown sampling mode {mode!r} (box or point)")
    shape = m.shape[:-2] + (h // scale, scale, w // scale, scale)
    return m.reshape(shape).mean(axis=(-3, -1)).astype(np.float32)


def add_noise(maps: np.ndarray, counts: float | None, read_noise: float = 0.0, seed=None) -> np.ndarray:
    """Poisson noise with the brightest pixel of each element expecting `counts` counts.

    read_noise is a Gaussian standard deviation in counts. Output is in the input's units.
    """
    rng = np.random.default_rng(seed)
    maps = np.asarray(maps, dtype=np.float64)
    squeeze = maps.ndim == 2
    maps = maps[None] if squeeze else maps
    out = np.empty_like(maps)
    for i, m in enumerate(maps):
        peak = m.max()
        if not counts or peak <= 0:
            out[i] = m
            continue
        gain = counts / peak  # counts per unit
        c = rng.poisson(np.clip(m, 0, None) * gain).astype(np.float64)
        if read_noise:
            c += rng.normal(0.0, read_noise, size=c.shape)
        out[i] = c / gain
    out = out.astype(np.float32)
    return out[0] if squeeze else out


@dataclass
class Degradation:
    """How a fine map becomes a measured one: probe, scan step (scale) and dose."""

    probe_fwhm_nm: float
    pixel_nm: float  # the fine grid's pixel
    scale: int = 1  # scan step = scale * pixel_nm
    counts: float | None = 1000.0  # Poisson peak count; None = no noise
    read_noise: float = 0.0
    probe_fwhm_y_nm: float | None = None
    mode: str = "box"
    # A measured probe (intensity rows, unit sum) on its own pixel: when set it is the PSF
    # everywhere the physics is simulated, and probe_fwhm_nm (x) / probe_fwhm_y_nm only summarise it.
    measured_probe: list | None = None
    measured_probe_pixel_nm: float | None = None

    def probe(self) -> np.ndarray:
        if self.measured_probe is not None:
            return resample_probe(np.asarray(self.measured_probe, np.float64), self.measured_probe_pixel_nm,
                                  self.pixel_nm)
        return gaussian_probe(self.probe_fwhm_nm, self.pixel_nm, self.probe_fwhm_y_nm)

    @property
    def step_nm(self) -> float:
        return self.pixel_nm * self.scale

    def apply(self, maps: np.ndarray, seed=None, probe: np.ndarray | None = None) -> np.ndarray:
        blurred = blur(maps, self.probe() if probe is None else probe)
        return add_noise(sample(blurred, self.scale, self.mode), self.counts, self.read_noise, seed)

    def transfer(self, n: int, probe: np.ndarray | None = None) -> np.ndarray:
        """|probe MTF x dwell-average response| on an n x n grid (zero frequency at the centre, as
        np.fft.fftshift lays it out): the fraction of the truth's amplitude at each frequency that
        reaches the coarse map, before aliasing. A box dwell has zeros at multiples of 1/scale along
        each axis: a wave of the step's period averages to nothing in every dwell."""
        h = self.probe() if probe is None else probe
        mtf = np.abs(np.fft.fft2(h / h.sum(), (n, n)))  # zero-padded; |FFT| ignores the offset
        f = np.fft.fftfreq(n)
        dwell = np.abs(np.outer(np.sinc(self.scale * f), np.sinc(self.scale * f))) if self.mode == "box" else 1.0
        return np.fft.fftshift(mtf * dwell)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Degradation":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
