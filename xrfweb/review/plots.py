"""What the review pages send to the browser: maps as Plotly's binary typed arrays.

Plain numpy, no Django, so it is tested on its own. A map travels as
{"dtype": "f4", "bdata": <base64 of the float32 bytes>, "shape": "H, W"} (plotly.js >= 2.28
reads that form directly; the page's JS decodes it too, for the log colour scale). Big maps go
as an overview (block means, at most OVERVIEW_PX per side) and a region is sent at full
resolution when someone zooms in (at most REGION_PX per side, so any window stays small).
"""
from __future__ import annotations

import base64
import math

import numpy as np

OVERVIEW_PX = 256  # the first view of one map: at most this many pixels per side
GRID_PX = 192  # a tile in the dataset page's grid of every element
REGION_PX = 512  # a zoomed window: full resolution when it fits, block means otherwise


def typed_array(values, dtype: str = "f4") -> dict:
    """Plotly's base64 typed-array form; 2-D arrays carry their shape ("H, W")."""
    a = np.ascontiguousarray(values, dtype={"f4": "<f4", "f8": "<f8"}[dtype])
    spec = {"dtype": dtype, "bdata": base64.b64encode(a.tobytes()).decode("ascii")}
    if a.ndim == 2:
        spec["shape"] = f"{a.shape[0]}, {a.shape[1]}"
    return spec


def decode(spec: dict) -> np.ndarray:
    """The inverse of typed_array (tests, and anyone reading the JSON from Python)."""
    a = np.frombuffer(base64.b64decode(spec["bdata"]), {"f4": "<f4", "f8": "<f8"}[spec["dtype"]])
    if "shape" in spec:
        a = a.reshape([int(n) for n in spec["shape"].split(",")])
    return a


def factor_for(h: int, w: int, max_px: int) -> int:
    """The smallest whole block size that brings both sides to max_px or fewer."""
    return max(1, math.ceil(max(h, w) / max_px))


def block_mean(a: np.ndarray, factor: int) -> np.ndarray:
    """Mean over factor x factor blocks. The last row/column of blocks may be partial: they are
    the mean of the pixels they hold (NaN padding), so edges are not dimmed."""
    a = np.asarray(a, np.float32)
    if factor == 1:
        return a.copy()
    h, w = a.shape
    hb, wb = -(-h // factor), -(-w // factor)
    padded = np.full((hb * factor, wb * factor), np.nan, np.float32)
    padded[:h, :w] = a
    blocks = padded.reshape(hb, factor, wb, factor)
    with np.errstate(invalid="ignore"):
        return np.nanmean(blocks, axis=(1, 3)).astype(np.float32)


def block_centres(axis: np.ndarray, factor: int) -> np.ndarray:
    """The mean position of each block along one axis (same blocks as block_mean)."""
    axis = np.asarray(axis, np.float64)
    if factor == 1:
        return axis
    n = len(axis)
    padded = np.full(-(-n // factor) * factor, np.nan)
    padded[:n] = axis
    return np.nanmean(padded.reshape(-1, factor), axis=1)


def finite_range(a: np.ndarray) -> tuple[float, float]:
    """min and max of the finite values (0, 0 for an empty or all-NaN map)."""
    a = np.asarray(a)
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return 0.0, 0.0
    return float(finite.min()), float(finite.max())


class Grid:
    """Where the pixels of a map lie: pixel centres along x (columns) and y (rows), in the
    units the page offers: "px" always, "um" when a pixel size or motor positions are known.

    px: pixel index on this grid times `px_step` (1 for a map's own grid; S for an input shown
    beside its S-times finer enhancement, so both share the fine grid's pixel units)."""

    def __init__(self, h: int, w: int, x_um=None, y_um=None, px_step: float = 1.0,
                 px_offset: float = 0.0):
        self.h, self.w = h, w
        self.x_um = None if x_um is None else np.asarray(x_um, np.float64)
        self.y_um = None if y_um is None else np.asarray(y_um, np.float64)
        self.px_step, self.px_offset = px_step, px_offset

    def px(self, n: int) -> np.ndarray:
        return self.px_offset + self.px_step * np.arange(n, dtype=np.float64)

    def axes(self, r0: int, r1: int, c0: int, c1: int, factor: int) -> dict:
        out = {"x_px": typed_array(block_centres(self.px(self.w)[c0:c1], factor), "f8"),
               "y_px": typed_array(block_centres(self.px(self.h)[r0:r1], factor), "f8")}
        if self.x_um is not None and self.y_um is not None:
            out["x_um"] = typed_array(block_centres(self.x_um[c0:c1], factor), "f8")
            out["y_um"] = typed_array(block_centres(self.y_um[r0:r1], factor), "f8")
        return out


def heatmap(a: np.ndarray, grid: Grid, max_px: int = OVERVIEW_PX, window=None) -> dict:
    """One map (or the window (r0, r1, c0, c1) of it) for a Plotly heatmap.

    Returns {"z": typed array, "x_px", "y_px", ["x_um", "y_um"]: pixel centres, "factor": block
    size used (1 = full resolution), "window": [r0, r1, c0, c1], "range": [min, max]}.
    """
    h, w = a.shape
    r0, r1, c0, c1 = window or (0, h, 0, w)
    r0, c0 = max(0, int(r0)), max(0, int(c0))
    r1, c1 = min(h, int(r1)), min(w, int(c1))
    if r1 <= r0 or c1 <= c0:
        raise ValueError("the window holds no pixels of the map")
    part = np.asarray(a[r0:r1, c0:c1], np.float32)
    factor = factor_for(r1 - r0, c1 - c0, max_px)
    z = block_mean(part, factor)
    return {"z": typed_array(z), **grid.axes(r0, r1, c0, c1, factor), "factor": factor,
            "window": [r0, r1, c0, c1], "range": list(finite_range(z))}


def window_from_px(grid: Grid, x0: float, x1: float, y0: float, y1: float) -> tuple:
    """The pixel rows/columns of `grid` inside a range given in its px units (a zoom box),
    one pixel of margin on each side so the edges of the view are covered."""
    def span(lo, hi, n):
        lo, hi = sorted((lo, hi))
        i0 = math.floor((lo - grid.px_offset) / grid.px_step) - 1
        i1 = math.ceil((hi - grid.px_offset) / grid.px_step) + 2
        return max(0, i0), min(n, i1)

    r0, r1 = span(y0, y1, grid.h)
    c0, c1 = span(x0, x1, grid.w)
    return r0, r1, c0, c1



def jsonable(value):
    """Plain JSON for the browser: numpy scalars to Python, NaN and infinities to null
    (JSON.parse refuses NaN)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
