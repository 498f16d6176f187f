"""Tiled, batched enhancement of every element of a map, with counts kept quantitative.

Each map is divided by a robust scale of its own (normalise), enhanced, and multiplied back
(the exact inverse). Then negatives are clipped and each element's mean is restored to the
input's: blur and box sampling conserve the mean, so the fine map's mean is the scan's mean.
Tiles overlap by the network's receptive radius plus the interpolation's support, and only
each tile's core is kept: every kept pixel saw exactly what it would see untiled.
"""
from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import logging
import math

import numpy as np
import torch

from . import Cancelled, UserError, __version__
from .bundle import Bundle
from .formats.trustmaps import KINDS as TRUST_KINDS
from .map_scale import map_scale
from .network import fold_batchnorm, upsample
from .xrfmap import XRFMap

# Tiles of this many output pixels a side, one at a time: the universal model recomputes 8% of a
# 2048^2 map in the overlaps (27% with 384 x 4, the earlier choice), in less peak memory.
TILE, BATCH = 768, 1
# torch.compile pays from about this much work (~50 s eager on a 2-core CPU): compiling costs ~3 s
# with inductor's on-disk cache warm and ~30 s cold, and saves about a fifth of the eager time.
COMPILE_MIN_GFLOP = 10_000.0
log = logging.getLogger(__name__)


def autocast(device: torch.device):
    """bf16 autocast where the hardware does bf16 fast (CUDA, or CPUs with AVX512-BF16/AMX).

    Under autocast the convolutions run in bf16; the global skip adds the fp32 input to their
    output, so the map itself keeps fp32 precision and only the learned residual is rounded.
    """
    fast = device.type == "cuda" or torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast)


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but no CUDA GPU is available here")
    if device not in ("cpu", "cuda"):
        raise UserError(f"unknown device {device!r}: use auto, cpu or cuda")
    return torch.device(device)


@contextlib.contextmanager
def _freed_memory_held(cpu: bool):
    """Convolution outputs on a tile are tens of MB each; glibc hands every freed block over 32 MB
    back to the OS at once, so each new one was page-faulted in afresh: 37% of the CPU time of
    enhancing 1024^2 to 4096^2 maps went to the kernel (sys). While enhancing, freed blocks stay
    in the process; afterwards malloc_trim hands them back. Not glibc (macOS, musl), or a GPU:
    nothing to do."""
    try:
        libc = ctypes.CDLL("libc.so.6") if cpu else None
    except OSError:
        libc = None
    if libc is None or not hasattr(libc, "malloc_trim"):
        yield
        return
    libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: the heap, not mmap, up to 1 GB a block
    libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: keep up to 1 GB freed at the heap's top
    try:
        yield
    finally:  # glibc's default thresholds (128 KiB; fixed now, where they had adjusted themselves)
        libc.mallopt(-3, 128 * 1024)
        libc.mallopt(-1, 128 * 1024)
        libc.malloc_trim(0)


def _tile_length(n: int, tile: int, margin: int) -> int:
    """The fewest tiles of at most `tile` that cover n, made equal: the last one does not
    overlap the one before by most of its length (work that is thrown away)."""
    if n <= tile:
        return n
    k = math.ceil((n - 2 * margin) / (tile - 2 * margin))
    return math.ceil((n - 2 * margin) / k) + 2 * margin


def _tile_starts(n: int, tile: int, core: int) -> list[int]:
    """Start positions of tiles of length `tile` covering 0..n, cores abutting."""
    if n <= tile:
        return [0]
    starts = list(range(0, n - tile, core)) + [n - tile]
    return sorted(set(starts))


def _interruption(e: BaseException | None) -> bool:
    """A stop that arrived while compiling (a job's time limit, a cancel), maybe wrapped by
    torch's compiler: it must go on up, not be taken for a compile failure. The time limit is
    Celery's, named rather than imported: this package never imports the web's libraries."""
    while e is not None:
        if isinstance(e, Cancelled) or type(e).__name__ == "SoftTimeLimitExceeded":
            return True
        e = e.__cause__ or e.__context__
    return False


class _Runner:
    """Runs the network on normalised coarse arrays (C, h, w) -> fine (C, h*S, w*S), tile by tile."""

    def __init__(self, bundle: Bundle, device, tile: int, batch: int, fast: bool = True, scale: int = 1):
        self.device = pick_device(device) if isinstance(device, str) else device
        self.fast = fast
        if fast:  # BN folded, channels_last, bf16 autocast where the hardware is fast at it
            self.net = fold_batchnorm(bundle.network).to(self.device, memory_format=torch.channels_last)
        else:
            self.net = bundle.network.eval().to(self.device)
        self.compiled = None
        self.scale = scale
        self.condition = None  # (K,) for a conditioned network, set per element and pass
        # Coarse tiles -> the network's fine-grid input. A conditioned network's start is a Wiener
        # filter (set per element and pass), which needs `reach` more coarse pixels of context on
        # each side than the tile: each tile's start is filtered from a window that wide, so
        # memory stays that of a few tiles whatever the map's size.
        self.start, self.reach = (lambda t: upsample(t, scale)), 0
        self.divisor = 1.0  # each element's scale (normalise), applied tile by tile: no normalised copy
        # Coarse-grid margin: the network's reach on the fine grid, plus bicubic support (2).
        self.margin = math.ceil(bundle.network.receptive_radius / self.scale) + 2
        # `tile` is the fine-grid side; cores must stay large against the margins to pay.
        self.tile, self.batch = max(tile // self.scale, 2 * self.margin + 16), batch

    def compile(self):
        """Inductor with the weights frozen (oneDNN convolutions with prepacked weights and
        fused bias/ReLU/skip). CPU only: on CUDA it has not been measured, so the eager network runs there."""
        if self.fast and self.device.type == "cpu":
            self.compiled = torch.compile(self.net, dynamic=False, options={"freezing": True})

    def _forward(self, fine, compiled=True):
        args = (fine,) if self.condition is None else (fine, self.condition.expand(len(fine), -1).to(fine.device))
        if compiled and self.compiled is not None:
            try:
                return self.compiled(*args)
            except Exception as e:  # no C++ compiler, an unsupported op...: eager is still right
                if _interruption(e):
                    raise
                log.warning("torch.compile failed, running eager: %s", str(e)[:300])
                self.compiled = None
        return self.net(*args)

    @torch.inference_mode()
    def __call__(self, x: np.ndarray, progress=None, cancel=None, out=None) -> np.ndarray:
        """out: where to write the result (C, h*S, w*S); a new array if None."""
        c, h, w = x.shape
        s, m = self.scale, self.margin
        if out is None:
            out = np.zeros((c, h * s, w * s), np.float32)
        while True:
            try:
                return self._run(x, out, progress, cancel)
            except torch.OutOfMemoryError:
                if self.tile <= 2 * m + 16:
                    raise
                self.tile = max(self.tile // 2, 2 * m + 16)  # back off and retry with smaller tiles
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()

    def _run(self, x, out, progress, cancel):
        c, h, w = x.shape
        s, m = self.scale, self.margin
        th, tw = _tile_length(h, self.tile, m), _tile_length(w, self.tile, m)
        boxes = [(y, x0) for y in _tile_starts(h, th, th - 2 * m) for x0 in _tile_starts(w, tw, tw - 2 * m)]
        # Every window has one shape (so a batch filters at once): shifted inward at the map's
        # edges, where the start pads by reflection as it would on the whole map.
        wh, ww = min(th + 2 * self.reach, h), min(tw + 2 * self.reach, w)
        xt = torch.from_numpy(x)
        for i in range(0, len(boxes), self.batch):
            if cancel and cancel():
                raise Cancelled("enhancement cancelled")
            group = boxes[i : i + self.batch]
            at = [(min(max(y - self.reach, 0), h - wh), min(max(x0 - self.reach, 0), w - ww)) for y, x0 in group]
            windows = torch.stack([xt[:, y : y + wh, x0 : x0 + ww] for y, x0 in at]) / self.divisor
            windows = windows.to(self.device)
            fine = self.start(windows)  # in fp32: the global skip carries it to the output
            if self.reach:
                fine = torch.stack([f[:, (y - wy) * s : (y - wy + th) * s, (x0 - wx) * s : (x0 - wx + tw) * s]
                                    for f, (y, x0), (wy, wx) in zip(fine, group, at)])
            if self.fast:
                with autocast(self.device):
                    pred = self._forward(fine.contiguous(memory_format=torch.channels_last),
                                         compiled=len(group) == self.batch)  # one shape compiled
            else:
                pred = self._forward(fine, compiled=False)
            pred = pred.float().cpu().numpy()
            for (y, x0), p in zip(group, pred):
                # Keep the core; a tile at the map's edge also keeps its outer margin.
                y0 = 0 if y == 0 else y + m
                y1 = h if y + th == h else y + th - m
                x1_ = 0 if x0 == 0 else x0 + m
                x2_ = w if x0 + tw == w else x0 + tw - m
                out[:, y0 * s : y1 * s, x1_ * s : x2_ * s] = p[
                    :, (y0 - y) * s : (y1 - y) * s, (x1_ - x0) * s : (x2_ - x0) * s
                ]
            if progress:
                progress(min(1.0, (i + len(group)) / len(boxes)))
        return out


_DIHEDRAL = [(k, f) for f in (False, True) for k in range(4)]


def _transform(a, k, flip):
    a = np.flip(a, -1) if flip else a
    return np.ascontiguousarray(np.rot90(a, k, axes=(-2, -1)))


def _untransform(a, k, flip):
    a = np.rot90(a, -k, axes=(-2, -1))
    return np.ascontiguousarray(np.flip(a, -1) if flip else a)


def enhance(maps: np.ndarray, bundle: Bundle, *, device="auto", ensemble: int = 1, progress=None,
            cancel=None, tile: int = TILE, batch: int = BATCH, return_variance: bool = False,
            fast: bool = True, compile: bool | None = None, conditions=None, psf=None, refine: bool = True,
            refined: list | None = None):
    """Enhance (E, H, W) coarse maps -> (E, H*S, W*S) on the model's fine grid.

    conditions: for a conditioned model (universal), (probe FWHM (x, y) in output pixels, scale,
    peak counts: one number or one per element); the fit rule (enhancer/fit.py) derives them from
    a map's physics. A single-condition model takes None and its own scale.
    refine: then fit a conditioned model's output to the data (refine.py: Richardson-Lucy with the
    stated probe, or `psf` (the measured probe on the output grid), to the noise's chi^2); each
    element's record goes into the list `refined` when one is given.

    ensemble = 1..8 averages over flips/rotations; with return_variance the variance over them
    comes too (None for ensemble 1). fast=False runs the plain fp32 network (for comparisons).
    compile: torch.compile the network; None decides by the amount of work (COMPILE_MIN_GFLOP).
    Memory: the input, the output and a few tiles (each tile normalised, and for a conditioned
    model Wiener-filtered, on its own), whatever the map's size; an ensemble adds one element's
    working copies.
    """
    maps = np.asarray(maps, np.float32)
    if maps.ndim == 2:
        maps = maps[None]
    if not 1 <= ensemble <= 8:
        raise UserError("--ensemble takes 1 to 8 (flips and rotations of the map)")
    if not np.isfinite(maps).all():
        raise UserError("the map holds NaN or infinite values; repair or mask them first")
    joint = bundle.elements != "any"
    if joint and len(bundle.elements) != maps.shape[0]:
        raise UserError(f"model {bundle.name} is trained for the elements {', '.join(bundle.elements)}; "
                        f"this map has {maps.shape[0]}")
    e, h, w = maps.shape
    conditioned = bundle.network.condition_channels > 0
    if conditioned != (conditions is not None):
        raise UserError(f"model {bundle.name} " + ("needs the map's probe, step and dose" if conditioned
                                                    else "is made for one condition and takes none"))
    if conditioned:
        from .conditions import REACH_PX, condition, wiener_start

        probe_px, s, counts = conditions
        counts = np.broadcast_to(np.asarray(counts, float), (e,))
    else:
        s = bundle.scale
    norm = bundle.spec.normalisation  # the rule the model was trained with (train.py writes it)
    scales = np.array([map_scale(m, norm.percentile, norm.sigma_px) for m in maps], np.float32)
    runner = _Runner(bundle, device, tile, batch, fast, scale=s)
    with _freed_memory_held(runner.device.type == "cpu"):
        work = bundle.network.flops_per_pixel() * e * ensemble * h * w * s * s / 1e9
        if compile or (compile is None and work >= COMPILE_MIN_GFLOP):
            runner.compile()
        out = np.empty((e, h * s, w * s), np.float32)
        var = np.empty_like(out) if return_variance and ensemble > 1 else None
        # Element-agnostic: each element is its own single-channel image, one at a time.
        groups = [slice(0, e)] if joint else [slice(i, i + 1) for i in range(e)]
        passes = _DIHEDRAL[:ensemble]
        total, done = len(groups) * len(passes), 0
        for idx in groups:  # in place where it can be: a 4000 x 4000 element is 64 MB a copy
            scale = scales[idx, None, None]
            runner.divisor = torch.from_numpy(scale)
            acc = acc2 = None
            for k, flip in passes:
                step = (lambda f, d=done: progress((d + f) / total)) if progress else None
                x = _transform(maps[idx], k, flip)  # a view, unless turned
                if conditioned:  # a quarter turn swaps the probe's x and y
                    fx, fy = probe_px if k % 2 == 0 else probe_px[::-1]
                    c = float(counts[idx.start])
                    runner.condition = condition((fx, fy), s, c)[None]
                    # The network starts from the Wiener estimate on the fine grid (conditions.py).
                    runner.start = lambda t, p=(fx, fy), c=c: wiener_start(t, p, s, c)
                    runner.reach = math.ceil(REACH_PX / s) + 2  # + the bicubic's support
                if len(passes) == 1:  # straight into the result: one pass holds no copy of the element
                    p = runner(x, step, cancel, out=out[idx])
                else:
                    p = _untransform(runner(x, step, cancel), k, flip)
                if acc is None:
                    acc, acc2 = p, (p * p if var is not None else None)
                else:
                    acc += p
                    if var is not None:
                        acc2 += p * p
                done += 1
            if len(passes) > 1:
                acc /= len(passes)
            if var is not None:
                acc2 /= len(passes)
                acc2 -= acc * acc
                np.clip(acc2, 0, None, out=acc2)
                np.multiply(acc2, scale**2, out=var[idx])
            np.multiply(acc, scale, out=out[idx])
            if conditioned and refine:  # the data step, in the map's own units (refine.py)
                from .degrade import gaussian_probe
                from .refine import refine as data_step

                kernel = gaussian_probe(probe_px[0], 1.0, probe_px[1]) if psf is None else psf
                for i in range(idx.start, idx.stop):
                    r = data_step(out[i], maps[i], kernel, s, float(counts[i]), cancel=cancel)
                    if refined is not None:
                        refined.append(r)
        np.clip(out, 0, None, out=out)
        for i in range(e):  # restore each element's mean (see module docstring)
            mean_in, mean_out = float(maps[i].mean()), float(out[i].mean())
            if mean_in > 0 and mean_out > 0:
                out[i] *= mean_in / mean_out
        return (out, var) if return_variance else out


def _element_counts(xrfmap: XRFMap, bundle: Bundle, f):
    """A conditioned model's dose per element: a dose the data told (estimated) is read per
    element, since elements differ by orders of magnitude in one scan, and kept within the
    model's range; a stated dose is the user's, for every element."""
    from .physics import counts_per_element

    if not f.physics.counts_estimated:
        return f.physics.counts
    lo, hi = bundle.spec.conditions.counts  # required in a conditioned model.json
    per = counts_per_element(xrfmap.data)
    return np.clip(np.where(np.isfinite(per), per, f.physics.counts), lo, hi)


def enhance_map(xrfmap: XRFMap, bundle: Bundle, *, physics=None, scale=None, device="auto", ensemble=1,
                progress=None, cancel=None) -> XRFMap:
    """Enhance every element of an XRFMap; the result records how it was made.

    physics: the map's (enhancer.physics.Physics; None = physics_of(xrfmap), what the file says
    and the dose estimated from the data). The one fit rule (enhancer.fit) decides whether the
    model may run and at which scale, or raises UserError saying why not.
    """
    from .fit import require
    from .physics import physics_of

    stated = physics if physics is not None else physics_of(xrfmap)
    f = require(bundle.config, stated, scale)
    conditions = (f.probe_fwhm_px, f.scale, _element_counts(xrfmap, bundle, f)) if f.conditioned else None
    # The data step re-measures with the map's own probe: a measured one when the physics has it.
    psf = f.degradation().probe() if f.conditioned and f.physics.measured_probe is not None else None
    refined = []
    out, var = enhance(xrfmap.data, bundle, device=device, ensemble=ensemble, progress=progress,
                       cancel=cancel, return_variance=True, conditions=conditions, psf=psf, refined=refined)
    fx, fy = f.fine_pixel_nm
    result = xrfmap.with_data(out, pixel_size_nm=(fy, fx))
    # Trust maps read back from an earlier result describe that result, not this one.
    result.extras = {k: v for k, v in result.extras.items() if k.split(":")[0] not in TRUST_KINDS}
    p = f.physics
    result.provenance["enhancement"] = {
        "model": bundle.name,
        "probe_fwhm_nm": list(p.probe_fwhm_nm),
        "probe_assumed": stated.probe_fwhm_nm is None,
        "scale": f.scale,
        "input_pixel_nm": list(p.scan_step_nm),
        "counts": p.counts,
        "counts_estimated": p.counts_estimated,
        "counts_per_element": (np.atleast_1d(conditions[2]).tolist() if conditions else None),
        "note": f.note,
        "ensemble": ensemble,
        "data_step": ({"method": "Richardson-Lucy from the network's output until mean chi^2 <= 1",
                       "elements": dict(zip(xrfmap.elements, refined))} if refined else None),
        "software_version": __version__,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if ensemble > 1:
        result.extras.update({f"uncertainty:{el}": np.sqrt(v) for el, v in zip(xrfmap.elements, var)})
    if f.scale == 1 and xrfmap.x_axis_um is not None:
        result.x_axis_um, result.y_axis_um = xrfmap.x_axis_um, xrfmap.y_axis_um
    return result
