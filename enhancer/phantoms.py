"""Synthetic ground-truth maps for training and benchmarks when no fine scan exists.

Each kind returns float32 (E, H, W), non-negative, in arbitrary concentration units. Elements are
correlated the way they are in real samples (several elements share a structure with different
weights) so an element-joint model has something to learn, and every kind holds detail below a
typical probe: granules of 1-3 pixels, thin membranes and filaments, sharp edges.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

KINDS = ("cell", "particles", "texture", "star", "bars", "aggregate")
MIXED = {"cell": 0.35, "particles": 0.3, "texture": 0.2, "star": 0.075, "bars": 0.075}  # "mixed" draws


def _grid(size):
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return y, x


def _disc(y, x, cy, cx, ry, rx, angle):
    c, s = np.cos(angle), np.sin(angle)
    u = ((x - cx) * c + (y - cy) * s) / rx
    v = (-(x - cx) * s + (y - cy) * c) / ry
    return u * u + v * v


def _granules(rng, size, n, radius=(0.6, 1.8)):
    """Sub-probe dots: sharp small Gaussians of random brightness."""
    img = np.zeros((size, size), np.float32)
    ys, xs = rng.integers(0, size, n), rng.integers(0, size, n)
    img[ys, xs] = rng.uniform(0.3, 1.0, n)
    return ndimage.gaussian_filter(img, rng.uniform(*radius)) * 8


def _filaments(rng, size, n):
    """Thin curved lines, one or two pixels wide."""
    img = np.zeros((size, size), np.float32)
    for _ in range(n):
        p = rng.uniform(0, size, 2)
        angle = rng.uniform(0, 2 * np.pi)
        for _ in range(int(size * rng.uniform(0.3, 1.0))):
            angle += rng.normal(0, 0.08)
            p = p + (np.sin(angle), np.cos(angle))
            iy, ix = int(p[0]) % size, int(p[1]) % size
            img[iy, ix] = 1.0
    return np.clip(ndimage.gaussian_filter(img, 0.5) * 3, 0, 1)


def _smooth_field(rng, size, sigma):
    f = ndimage.gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), sigma)
    return (f - f.min()) / (np.ptp(f) + 1e-12)


def cell(rng, size, n_el):
    """Cells with membranes, nuclei, granules and filaments; elements share these with weights."""
    y, x = _grid(size)
    parts = {k: np.zeros((size, size), np.float32) for k in ("cyto", "membrane", "nucleus")}
    for _ in range(rng.integers(2, 6)):
        cy, cx = rng.uniform(0.1, 0.9, 2) * size
        ry, rx = rng.uniform(0.08, 0.3, 2) * size
        a = rng.uniform(0, np.pi)
        d = _disc(y, x, cy, cx, ry, rx, a)
        parts["cyto"] = np.maximum(parts["cyto"], (d < 1) * rng.uniform(0.3, 0.6))
        width = rng.uniform(0.03, 0.12)
        parts["membrane"] = np.maximum(parts["membrane"], (np.abs(d - 1) < width) * 1.0)
        dn = _disc(y, x, cy + rng.normal(0, ry / 6), cx + rng.normal(0, rx / 6), ry / 2.5, rx / 2.5, a)
        parts["nucleus"] = np.maximum(parts["nucleus"], (dn < 1) * rng.uniform(0.5, 1.0))
    inside = parts["cyto"] > 0
    parts["granules"] = _granules(rng, size, rng.integers(size // 4, size)) * inside
    parts["filaments"] = _filaments(rng, size, rng.integers(3, 10)) * inside
    parts["texture"] = _smooth_field(rng, size, rng.uniform(2, 6)) * inside
    keys = list(parts)
    maps = []
    for _ in range(n_el):
        w = rng.dirichlet(np.ones(len(keys)) * 0.5) * rng.uniform(0.5, 2.0)
        maps.append(sum(wi * parts[k] for wi, k in zip(w, keys)))
    return np.stack(maps)


def particles(rng, size, n_el):
    """An aggregate of nanoparticles of several compositions and sizes (like the HXN sample)."""
    y, x = _grid(size)
    n_kinds = rng.integers(2, 5)
    composition = rng.dirichlet(np.ones(n_el) * 0.4, n_kinds)
    maps = np.zeros((n_el, size, size), np.float32)
    for _ in range(rng.integers(10, 60)):
        k = rng.integers(n_kinds)
        cy, cx = rng.uniform(0, size, 2)
        r = rng.choice([rng.uniform(1, 3), rng.uniform(3, 12)])
        d = _disc(y, x, cy, cx, r, r * rng.uniform(0.6, 1.4), rng.uniform(0, np.pi))
        profile = np.sqrt(np.clip(1 - d, 0, None)) * rng.uniform(0.3, 1.0)  # a ball's thickness
        maps += composition[k][:, None, None] * profile
    return maps


def texture(rng, size, n_el):
    """Band-limited fields thresholded into sharp-edged domains, plus a smooth background."""
    maps = []
    for _ in range(n_el):
        f = _smooth_field(rng, size, rng.uniform(1.5, 8))
        edges = (f > rng.uniform(0.4, 0.7)).astype(np.float32)
        maps.append(0.6 * edges * rng.uniform(0.5, 1) + 0.4 * _smooth_field(rng, size, 10) * rng.uniform(0, 1))
    return np.stack(maps)


def star(rng, size, n_el):
    """A Siemens star: spokes whose period falls below any probe toward the centre."""
    y, x = _grid(size)
    cy, cx = rng.uniform(0.4, 0.6, 2) * size
    theta = np.arctan2(y - cy, x - cx)
    r = np.hypot(y - cy, x - cx)
    spokes = rng.integers(12, 40)
    s = ((np.sin(spokes * theta + rng.uniform(0, np.pi)) > 0) & (r < size * 0.45)).astype(np.float32)
    return np.stack([s * rng.uniform(0.3, 1) + rng.uniform(0, 0.05) for _ in range(n_el)])


def bars(rng, size, n_el):
    """Bar groups with periods from 2 to 16 pixels, in both orientations."""
    img = np.zeros((size, size), np.float32)
    y0 = 4
    period = 2
    while y0 < size - 8 and period <= 16:
        h = min(5 * period, size - y0 - 4)
        x = np.arange(size)
        row = (x // (period // 2)) % 2 == 0
        img[y0 : y0 + h, 4 : size // 2] = row[4 : size // 2]
        img[y0 : y0 + h, size // 2 + 4 : size - 4] = ((np.arange(h) // (period // 2)) % 2 == 0)[:, None]
        y0 += h + 4
        period += 2
    if rng.random() < 0.5:
        img = img.T
    return np.stack([img * rng.uniform(0.3, 1) + rng.uniform(0, 0.05) for _ in range(n_el)])


def aggregate(rng, size, n_el):
    """Clumped grains of several compositions whose insides are not flat: thickness and
    composition vary within each grain and fine specks sit on them (real aggregates, like HXN's,
    look like this; smooth balls teach a network to paint cartoons)."""
    y, x = _grid(size)
    n_kinds = rng.integers(2, 5)
    composition = rng.dirichlet(np.ones(n_el) * 0.4, n_kinds)
    maps = np.zeros((n_el, size, size), np.float32)
    centres = rng.uniform(0.2, 0.8, (rng.integers(1, 4), 2)) * size
    spread = size * rng.uniform(0.06, 0.16)
    for _ in range(rng.integers(40, 150)):
        cy, cx = centres[rng.integers(len(centres))] + rng.normal(0, spread, 2)
        r = float(np.exp(rng.uniform(np.log(1.0), np.log(20.0))))
        d = _disc(y, x, cy, cx, r, r * rng.uniform(0.5, 1.5), rng.uniform(0, np.pi))
        inside = np.clip(1 - d, 0, None)
        profile = inside ** rng.uniform(0.2, 0.8) * rng.uniform(0.2, 1.0)
        grain = composition[rng.integers(n_kinds)][:, None, None] * profile
        amount = rng.uniform(0.2, 0.9, (n_el, 1, 1))  # texture differs per element
        field = np.stack([np.clip(2.5 * _smooth_field(rng, size, rng.uniform(0.7, 3.0)) - 0.75, 0, 1)
                          for _ in range(n_el)])
        maps += grain * (1 - amount + amount * field) * (inside > 0)
    support = maps.sum(0) > 0.05 * maps.sum(0).max()
    for e in range(n_el):
        if rng.random() < 0.6:  # specks: bright 1-2 pixel dots on the grains
            maps[e] += _granules(rng, size, rng.integers(size // 4, size * 2), (0.5, 1.0)) * support * \
                rng.uniform(0.1, 0.5) * maps[e].max()
    return maps


def contrast(maps: np.ndarray, gamma: float, offset: float = 0.0) -> np.ndarray:
    """Each element scaled to a peak of 1, raised to `gamma`, plus `offset`. gamma > 1 leaves a
    few bright spots carrying most of the signal over a faint rest, as in real maps of sparse
    particles; an offset is a flat pedestal under the structure (a substrate's or matrix
    element's signal). A network that never saw either lost to Richardson-Lucy on them
    (docs/benchmarks.md)."""
    peak = maps.max(axis=(-2, -1), keepdims=True)
    return ((maps / np.where(peak > 0, peak, 1)) ** gamma + offset).astype(np.float32)


def phantom(kind: str = "cell", size: int = 256, n_elements: int = 4, seed: int = 0) -> np.ndarray:
    """One ground-truth map set, float32 (E, size, size). kind "mixed" draws a kind at random."""
    rng = np.random.default_rng(seed)
    if kind == "mixed":
        kind = str(rng.choice(list(MIXED), p=list(MIXED.values())))
    make = {"cell": cell, "particles": particles, "texture": texture, "star": star, "bars": bars,
            "aggregate": aggregate}
    if kind not in make:
        raise ValueError(f"unknown phantom kind {kind!r}; choose from {', '.join(KINDS)} or mixed")
    maps = make[kind](rng, size, n_elements).astype(np.float32)
    maps += rng.uniform(0.0, 0.03) * maps.max()  # a little background, as in real maps
    return np.clip(maps, 0, None)


def training_set(n: int, kinds, size: int, seed: int, gamma=(1.0, 1.0), offset=(0.0, 0.0),
                 fine_probe_nm=(0.0, 0.0), pixel_nm: float = 50.0) -> list[np.ndarray]:
    """n phantoms for training, kinds used in turn (so a list sets the proportions), each with a
    contrast drawn from gamma and offset and, when fine_probe_nm is not zero, blurred by a
    Gaussian probe of a FWHM drawn from it: a real fine scan, the truth a model learns from in
    Approach 2, is itself seen through a smaller probe, and a model that only ever saw perfectly
    sharp truths over-sharpens real maps (docs/benchmarks.md)."""
    from .degrade import blur, gaussian_probe

    maps = []
    for i in range(n):
        m = phantom(kinds[i % len(kinds)], size, 3, seed=seed * 100_000 + i)
        rng = np.random.default_rng(seed * 100_000 + i)
        if (*gamma, *offset) != (1, 1, 0, 0):
            m = contrast(m, rng.uniform(*gamma), rng.uniform(*offset))
        fwhm = rng.uniform(*fine_probe_nm)
        if fwhm > 0:
            m = blur(m, gaussian_probe(fwhm, pixel_nm))
        maps.append(m)
    return maps


def recipe(probe_fwhm_nm: float) -> dict:
    """How protocol-b and -c were last fine-tuned (docs/benchmarks.md), for a probe: the kinds in
    these proportions, contrast powers 1-3, a fine probe up to 0.8x the coarse one (160 nm under
    200 nm), with the default L1 loss. The web's staff training uses it, so its models learn what
    the shipped ones learnt."""
    return {"phantom_kinds": ["mixed", "mixed", "aggregate", "aggregate", "star"],
            "phantom_gamma": [1.0, 3.0], "phantom_probe_nm": [0.0, 0.8 * probe_fwhm_nm]}
