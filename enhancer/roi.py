"""Where to scan next: regions of interest for targeted fine scans, after ROI-Finder.

The seed's workflow is a fast coarse scan, enhancement, ROI-Finder on the enhanced maps, then
fine scans of the chosen regions only. ROI-Finder (Chowdhury et al., J. Synchrotron Rad. 2022)
segments cells on a sum of chosen elements (median filter, Otsu threshold, erosion-dilation),
describes each cell by its shape and element content, and clusters the cells so that beam time
goes to each kind of cell. Here, in that order:

1. segment: each chosen element divided by its own robust brightness (so no element dominates),
   summed, 3x3 median, Otsu threshold, opening, holes filled, connected regions of at least
   min_area_px pixels;
2. features: area, eccentricity, mean content of every element in the region;
3. clusters: k-means on the standardised element content (each element over its robust
   brightness), k chosen by the silhouette unless given (one cluster when no split is clear).
   Kinds are told by chemistry: area and eccentricity vary within a kind, and clustering on them
   too split phantom cells of one kind into arbitrary groups (silhouette 0.5 vs 0.9), so they
   are reported, not clustered on;
4. score in [0, 1] = 0.5 * brightness (the region's mean chosen-element signal over the
   brightest region's) + 0.5 * rarity (1 - its cluster's share of the regions): rare kinds and
   strong signals first. The list is sorted by score.

Coordinates: x runs along columns, y along rows. With motor axes in the file they are used;
otherwise the origin (0, 0) is the centre of the first pixel and steps are the pixel size.
x_um, y_um are the centre of the box; width_um, height_um its full extent (margin included).
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.measure import label, regionprops

from . import UserError
from .map_scale import map_scale
from .xrfmap import XRFMap, axis_um

# Kaufman & Rousseeuw: a mean silhouette over 0.5 is "reasonable structure", below it a split
# "could be artificial" (a single Gaussian cloud splits at ~0.4): then one cluster.
MIN_SILHOUETTE = 0.5


def element_sum(maps: np.ndarray, elements: list[str], use=None) -> np.ndarray:
    """The chosen elements, each divided by its robust brightness, summed (H, W)."""
    names = list(use) if use else list(elements)
    missing = [el for el in names if el not in elements]
    if missing:
        raise UserError(f"element(s) {', '.join(missing)} not in the map; it has {', '.join(elements)}")
    total = np.zeros(maps.shape[-2:], np.float64)
    for el in names:
        m = np.asarray(maps[elements.index(el)], np.float64)
        total += m / map_scale(m)
    return total


def segment(image: np.ndarray, min_area_px: int = 20) -> np.ndarray:
    """Label image of the regions (0 = background), as ROI-Finder's binarisation."""
    smooth = ndimage.median_filter(image, size=3)
    if np.ptp(smooth) <= 0:
        return np.zeros(image.shape, np.int32)
    mask = smooth > threshold_otsu(smooth)
    mask = ndimage.binary_opening(mask, iterations=1)  # erosion-dilation: specks, thin bridges go
    mask = ndimage.binary_fill_holes(mask)
    labels = label(mask, connectivity=2)
    sizes = np.bincount(labels.ravel())
    small = sizes < min_area_px
    small[0] = False
    labels[small[labels]] = 0
    return label(labels > 0, connectivity=2).astype(np.int32)


def _standardise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    sd = x.std(0)
    keep = sd > 1e-12 * (np.abs(x).max(0) + 1e-30)
    return (x[:, keep] - x[:, keep].mean(0)) / sd[keep]


def kmeans(x: np.ndarray, k: int, seed: int = 0, restarts: int = 8, iterations: int = 100):
    """Plain k-means (k-means++ starts, best of several); returns (labels, inertia)."""
    rng = np.random.default_rng(seed)
    best = (None, math.inf)
    for _ in range(restarts):
        centres = [x[rng.integers(len(x))]]
        for _ in range(1, k):
            d2 = np.min([((x - c) ** 2).sum(1) for c in centres], axis=0)
            p = d2 / d2.sum() if d2.sum() > 0 else None
            centres.append(x[rng.choice(len(x), p=p)])
        centres = np.array(centres)
        for _ in range(iterations):
            labels = ((x[:, None] - centres[None]) ** 2).sum(2).argmin(1)
            new = np.array([x[labels == j].mean(0) if np.any(labels == j) else centres[j] for j in range(k)])
            if np.allclose(new, centres):
                break
            centres = new
        inertia = float(((x - centres[labels]) ** 2).sum())
        if inertia < best[1]:
            best = (labels, inertia)
    return best


def silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette width (Rousseeuw 1987); 0 for a single cluster."""
    ks = np.unique(labels)
    if len(ks) < 2:
        return 0.0
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(2))
    s = np.zeros(len(x))
    for i in range(len(x)):
        own = labels == labels[i]
        if own.sum() < 2:
            continue  # a singleton's silhouette is 0 by convention
        a = d[i, own].sum() / (own.sum() - 1)
        b = min(d[i, labels == k].mean() for k in ks if k != labels[i])
        s[i] = (b - a) / max(a, b) if max(a, b) > 0 else 0.0
    return float(s.mean())


def cluster(features: np.ndarray, clusters: int | None = None, seed: int = 0) -> np.ndarray:
    """Cluster labels for the rows of features (standardised here): 0 is the largest cluster.
    k is chosen by the silhouette (2..6) when not given."""
    n = len(features)
    x = _standardise(features)
    if n < 3 or x.shape[1] == 0:
        return np.zeros(n, int)
    if clusters:
        best = kmeans(x, min(int(clusters), n), seed)[0]
    else:
        best, best_s = np.zeros(n, int), MIN_SILHOUETTE
        for k in range(2, min(6, n - 1) + 1):
            labels = kmeans(x, k, seed)[0]
            s = silhouette(x, labels)
            if s > best_s:
                best, best_s = labels, s
    by_size = np.argsort(-np.bincount(best), kind="stable")
    return np.argsort(by_size)[best]


def _pixel_nm(xrfmap: XRFMap, pixel_nm) -> tuple[float | None, float | None]:
    if pixel_nm:
        return float(pixel_nm), float(pixel_nm)
    if xrfmap.pixel_size_nm:
        return float(xrfmap.pixel_size_nm[0]), float(xrfmap.pixel_size_nm[1])
    return None, None


def grid_step_nm(xrfmap: XRFMap, pixel_nm=None) -> list[float] | None:
    """The (y, x) step in nm of the grid the boxes are placed on: the user's, else the map's."""
    py, px = _pixel_nm(xrfmap, pixel_nm)
    return None if py is None else [py, px]


def find_rois(xrfmap: XRFMap, *, elements=None, pixel_nm=None, clusters=None, min_area_px=20,
              margin=0.1, step_nm=None, top=None, seed=0) -> list[dict]:
    """Ranked fine-scan suggestions for a map (best first); see the module docstring.

    elements: names to segment on (default all); margin: added on each side as a fraction of
    the box (at least one pixel); step_nm: suggested fine-scan step (default the map's pixel).
    """
    data = xrfmap.data
    if not np.isfinite(data).all():
        raise UserError("the map holds NaN or infinite values; repair or mask them first")
    py, px = _pixel_nm(xrfmap, pixel_nm)
    h, w = data.shape[-2:]
    y_um = axis_um(xrfmap.y_axis_um, h, py, along=0)
    x_um = axis_um(xrfmap.x_axis_um, w, px, along=1)
    if pixel_nm:  # the user's step wins over the file's axes; their origin is kept
        y_um, x_um = y_um[0] + np.arange(h) * py / 1000.0, x_um[0] + np.arange(w) * px / 1000.0
    dy = abs(float(np.median(np.diff(y_um)))) if h > 1 else (py or 0) / 1000
    dx = abs(float(np.median(np.diff(x_um)))) if w > 1 else (px or 0) / 1000
    step = float(step_nm) if step_nm else 1000.0 * min(dx, dy)
    if step <= 0:
        raise UserError("the suggested step must be positive")
    signal = element_sum(data, list(xrfmap.elements), elements)
    labels = segment(signal, min_area_px)
    regions = regionprops(labels)
    if not regions:
        return []
    scales = [map_scale(m) for m in data]
    content = np.array([[float(m[r.coords[:, 0], r.coords[:, 1]].mean()) for m in data] for r in regions])
    brightness = np.array([signal[r.coords[:, 0], r.coords[:, 1]].mean() for r in regions])
    kinds = cluster(content / np.array(scales), clusters, seed)
    share = np.bincount(kinds)[kinds] / len(regions)
    score = 0.5 * brightness / brightness.max() + 0.5 * (1.0 - share)
    rois = []
    for i, r in enumerate(regions):
        r0, c0, r1, c1 = r.bbox
        mr, mc = max(1, round(margin * (r1 - r0))), max(1, round(margin * (c1 - c0)))
        r0, c0, r1, c1 = max(0, r0 - mr), max(0, c0 - mc), min(h, r1 + mr), min(w, c1 + mc)
        rois.append({
            "x_um": float(np.interp((c0 + c1 - 1) / 2, np.arange(w), x_um)),
            "y_um": float(np.interp((r0 + r1 - 1) / 2, np.arange(h), y_um)),
            "width_um": (c1 - c0) * dx,
            "height_um": (r1 - r0) * dy,
            "score": float(score[i]),
            "step_nm": step,
            "cluster": int(kinds[i]),
            "area_um2": float(r.area * dx * dy),
            "eccentricity": float(r.eccentricity),
            "pixels": [int(r0), int(c0), int(r1), int(c1)],  # row0, col0, row1, col1 (exclusive)
            "content": {el: float(v) for el, v in zip(xrfmap.elements, content[i])},
        })
    rois.sort(key=lambda r: -r["score"])
    for rank, r in enumerate(rois, 1):
        r["rank"] = rank
    return rois[:top] if top else rois


CSV_COLUMNS = ("rank", "x_um", "y_um", "width_um", "height_um", "score", "step_nm", "cluster",
               "area_um2", "eccentricity")
CONVENTION = ("x along columns, y along rows, in um: the file's motor positions, or from the "
              "centre of the first pixel when it has none; x_um, y_um = the box centre; "
              "width_um, height_um = the box's full extent")


def scan_list_csv(rois: list[dict], elements: list[str]) -> str:
    """The scan list as CSV text: CSV_COLUMNS, then the mean content of each element."""
    from enhancer.formats.export import csv_writer

    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow([*CSV_COLUMNS, *(f"{el}_mean" for el in elements)])
    for r in rois:
        writer.writerow([*(f"{r[c]:.6g}" if isinstance(r[c], float) else r[c] for c in CSV_COLUMNS),
                         *(f"{r['content'][el]:.6g}" for el in elements)])
    return out.getvalue()


def scan_list_json(rois: list[dict], **meta) -> str:
    return json.dumps({"convention": CONVENTION, **meta, "rois": rois}, indent=2)


def write_scan_list(rois: list[dict], csv_path, elements: list[str], **meta):
    """CSV at csv_path and JSON beside it (same name, .json), each written atomically."""
    from .formats.write import atomic_file

    csv_path = Path(csv_path)
    json_path = csv_path.with_suffix(".json")
    if json_path == csv_path:
        raise UserError(f"{csv_path}: name the scan list .csv (the JSON goes beside it)")
    with atomic_file(csv_path) as tmp:
        tmp.write_text(scan_list_csv(rois, elements))
    with atomic_file(json_path) as tmp:
        tmp.write_text(scan_list_json(rois, **meta))
    return csv_path, json_path
