"""PNG pictures of maps drawn with Pillow (matplotlib is not a dependency): viridis colours,
a colour bar with the values and units, and a scale bar when the pixel size is known.

Display range: minimum to the 99.5th percentile, so that a few hot pixels do not turn the
whole map dark; the top of the colour bar says so (">= value").
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# viridis at 9 evenly spaced points (matplotlib's _cm_listed), interpolated to 256
_VIRIDIS = np.array([(68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
                     (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37)], dtype=float)
LUT = np.stack([np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_VIRIDIS)), _VIRIDIS[:, c])
                for c in range(3)], axis=1).astype(np.uint8)
MIN_SIDE_PX = 400
PAD, TITLE_H, BAR_W, LABEL_W = 12, 28, 18, 90


def _font(size=14):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def display_range(plane: np.ndarray) -> tuple[float, float]:
    finite = plane[np.isfinite(plane)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(np.percentile(finite, 99.5))
    if hi <= lo:
        hi = float(finite.max())
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def nice_length_nm(width_nm: float) -> float:
    """1, 2 or 5 x 10^k nm, at most a fifth of the map's width."""
    target = width_nm / 5
    power = 10 ** math.floor(math.log10(target))
    return max(m * power for m in (1, 2, 5) if m * power <= target)


def _label_nm(nm: float) -> str:
    return f"{nm / 1000:g} um" if nm >= 1000 else f"{nm:g} nm"  # the built-in font has no µ


def render(plane: np.ndarray, title: str, units: str = "", pixel_size_nm=None) -> Image.Image:
    """One map: title, picture, colour bar; scale bar when the pixel size is known."""
    plane = np.asarray(plane, dtype=np.float64)
    lo, hi = display_range(plane)
    index = np.clip((np.nan_to_num(plane, nan=lo) - lo) / (hi - lo), 0, 1) * 255
    rgb = LUT[index.astype(np.uint8)]
    h, w = plane.shape
    zoom = max(1, math.ceil(MIN_SIDE_PX / max(h, w)))
    picture = Image.fromarray(rgb, "RGB").resize((w * zoom, h * zoom), Image.NEAREST)

    font, small = _font(15), _font(12)
    width = PAD + picture.width + PAD + BAR_W + LABEL_W
    height = TITLE_H + picture.height + PAD
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((PAD, 6), title, fill="black", font=font)
    canvas.paste(picture, (PAD, TITLE_H))

    # colour bar: top is the high end of the display range
    bar_x, bar_h = PAD + picture.width + PAD, picture.height
    ramp = LUT[np.linspace(255, 0, bar_h).astype(np.uint8)]
    canvas.paste(Image.fromarray(np.repeat(ramp[:, None, :], BAR_W, axis=1), "RGB"), (bar_x, TITLE_H))
    draw.rectangle([bar_x, TITLE_H, bar_x + BAR_W - 1, TITLE_H + bar_h - 1], outline="black")
    tx = bar_x + BAR_W + 4
    draw.text((tx, TITLE_H), f">= {hi:.3g}", fill="black", font=small)
    draw.text((tx, TITLE_H + bar_h // 2 - 7), f"{(lo + hi) / 2:.3g}", fill="black", font=small)
    draw.text((tx, TITLE_H + bar_h - 30), f"{lo:.3g}", fill="black", font=small)
    if units:
        draw.text((tx, TITLE_H + bar_h - 15), units[:14], fill="black", font=small)

    if pixel_size_nm:
        x_nm = float(pixel_size_nm[1])
        length = nice_length_nm(w * x_nm)
        bar_px = max(1, round(length / x_nm * zoom))
        x0, y0 = PAD + 10, TITLE_H + picture.height - 22
        draw.rectangle([x0 - 1, y0 - 1, x0 + bar_px, y0 + 6], fill="white", outline="black")
        draw.text((x0, y0 - 18), _label_nm(length), fill="white", font=small,
                  stroke_width=2, stroke_fill="black")
    return canvas


def montage(panels: list[Image.Image], columns: int = 3) -> Image.Image:
    cols = min(columns, len(panels))
    rows = math.ceil(len(panels) / cols)
    cell_w, cell_h = max(p.width for p in panels), max(p.height for p in panels)
    sheet = Image.new("RGB", (cols * cell_w, rows * cell_h), "white")
    for i, panel in enumerate(panels):
        sheet.paste(panel, ((i % cols) * cell_w, (i // cols) * cell_h))
    return sheet
