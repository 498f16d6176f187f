"""The one in-memory type for an XRF map, whatever file it came from, and its motor axes."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from . import UserError


@dataclass
class XRFMap:
    """Elemental maps of one scan.

    data is float32 (E, H, W): one map per element, rows along y, columns along x.
    pixel_size_nm is (y, x) in nm, or None when the file does not say (TIFF, NPY).
    """

    elements: list[str]
    data: np.ndarray
    pixel_size_nm: tuple[float, float] | None = None
    x_axis_um: np.ndarray | None = None  # motor positions along columns, 1-D (W,) or 2-D (H, W)
    y_axis_um: np.ndarray | None = None  # motor positions along rows, 1-D (H,) or 2-D (H, W)
    scalers: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (H, W)
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # fit channels that are not elements
    units: str = ""
    source_format: str = "array"  # "maps-v10", "maps-v9", "pyxrf", "tiff-set", "tiff", "npy", "npz"
    source: dict = field(default_factory=dict)  # path, and where in the file each map came from
    provenance: dict = field(default_factory=dict)  # normalisation, enhancement... as applied

    def __post_init__(self):
        self.data = np.asarray(self.data, dtype=np.float32)
        if self.data.ndim == 2:
            self.data = self.data[None]
        if self.data.ndim != 3:
            raise ValueError(f"maps must be (elements, rows, cols); got shape {self.data.shape}")
        if len(self.elements) != self.data.shape[0]:
            raise ValueError(
                f"{len(self.elements)} element names for {self.data.shape[0]} maps"
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.data.shape)

    def with_data(self, data: np.ndarray, pixel_size_nm=None, **changes) -> "XRFMap":
        """A copy holding new maps (e.g. enhanced ones on a finer grid).

        Axes and scalers are dropped when the grid changes size, since they no longer line up.
        """
        same_grid = data.shape[-2:] == self.data.shape[-2:]
        return replace(
            self,
            data=data,
            pixel_size_nm=pixel_size_nm if pixel_size_nm is not None else self.pixel_size_nm,
            x_axis_um=self.x_axis_um if same_grid else None,
            y_axis_um=self.y_axis_um if same_grid else None,
            scalers=dict(self.scalers) if same_grid else {},
            extras=dict(self.extras) if same_grid else {},
            provenance=dict(self.provenance),
            **changes,
        )


def axis_um(axis, n: int, pixel_nm: float, along: int) -> np.ndarray:
    """Positions (um) of the n pixel centres: the file's motor axis if it fits, else from 0."""
    if axis is not None:
        a = np.asarray(axis, np.float64)
        a = a.mean(axis=1 - along) if a.ndim == 2 else a  # (H, W) grids: one line per axis
        if a.shape == (n,) and np.isfinite(a).all():
            return a
    if not pixel_nm or pixel_nm <= 0:
        raise UserError("the map has neither motor positions nor a pixel size: give --pixel-nm")
    return np.arange(n) * pixel_nm / 1000.0


def fine_axis_um(axis_coarse, scale: int) -> np.ndarray:
    """Motor positions of an enhanced grid's pixel centres, from a regular scan's axis (a
    straight line fitted to it, so jitter in the recorded positions does not bend the grid)."""
    a = np.asarray(axis_coarse, np.float64)
    slope, offset = np.polyfit(np.arange(len(a)), a, 1) if len(a) > 1 else (0.0, float(a[0]))
    return offset + slope * ((np.arange(len(a) * scale) + 0.5) / scale - 0.5)


def with_fine_axes(scan: XRFMap, enhanced: XRFMap, scale: int) -> XRFMap:
    """The enhanced map with motor axes on its own grid, derived from the scan's when it has none."""
    if enhanced.x_axis_um is not None or scan.x_axis_um is None or scan.y_axis_um is None:
        return enhanced
    x, y = (np.asarray(a, np.float64) for a in (scan.x_axis_um, scan.y_axis_um))
    x = x.mean(0) if x.ndim == 2 else x  # (H, W) grids: one line per axis
    y = y.mean(1) if y.ndim == 2 else y
    return replace(enhanced, x_axis_um=fine_axis_um(x, scale), y_axis_um=fine_axis_um(y, scale))


def line_profile(map2d, p0, p1, n: int | None = None) -> np.ndarray:
    """Values along the line p0 -> p1 ((row, col) each), bilinear, one sample per pixel or n."""
    from skimage.measure import profile_line

    prof = profile_line(np.asarray(map2d, np.float64), p0, p1, order=1, mode="reflect")
    if n:
        prof = np.interp(np.linspace(0, len(prof) - 1, n), np.arange(len(prof)), prof)
    return prof
