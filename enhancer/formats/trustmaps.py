"""Trust maps stored beside enhanced maps: which extras they are, and how they come back.

An enhanced XRFMap carries them as extras named "<kind>:<Element>", on the enhanced grid:
- uncertainty: the self-ensemble's standard deviation, in the map's units (enhance_map, ensemble > 1)
- chi2: the data-consistency chi^2, each input pixel's value over the fine pixels it covers
  (trust.attach_trust)
A result stores each kind as one (E, H, W) float32 stack in the enhanced maps' element order
(write.py says where, per layout), and a reader puts it back under the same extras names.

Other extras are not trust maps and are not written: fit channels such as Num_Iter come from the
input, whose copy (HDF5) still holds them, and the TIFF / NPY readers make none.
Values are kept as stored (no NaN repair): a NaN uncertainty means "unknown", never "certain".
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from enhancer import UserError
from enhancer.formats import rules

KINDS = ("uncertainty", "chi2")
V10_NAMES = {"uncertainty": "Uncertainty", "chi2": "Chi2"}  # MAPS v10 capitalises its datasets
DESCRIPTIONS = {  # stored beside each stack, for whoever opens the file in HDFView or Fiji
    "uncertainty": "self-ensemble standard deviation of the enhanced maps, in their units",
    "chi2": "data-consistency chi^2 (about 1 where the enhanced map fits the measured data, above "
            "3 where the data do not support it), each input pixel over the fine pixels it covers",
}


def stacks(enhanced) -> dict[str, np.ndarray]:
    """{kind: (E, H, W) float32} for each kind the enhanced map carries; none when it has none.

    A kind is stored for every element or not at all: a partial set, or maps on another grid,
    is a mistake of the caller (enhance_map and attach_trust always give all of them)."""
    out = {}
    for kind in KINDS:
        keys = [f"{kind}:{el}" for el in enhanced.elements]
        missing = [k for k in keys if k not in enhanced.extras]
        if len(missing) == len(keys):
            continue
        if missing:
            raise ValueError(f"{kind} maps are given for some elements but not for "
                             f"{', '.join(k.split(':', 1)[1] for k in missing)}; a result holds "
                             "them for every element or for none")
        planes = [np.asarray(enhanced.extras[k], dtype=np.float32) for k in keys]
        for key, plane in zip(keys, planes):
            if plane.shape != enhanced.data.shape[1:]:
                raise ValueError(f"{key} is {list(plane.shape)} but the enhanced maps are "
                                 f"{list(enhanced.data.shape[1:])}; trust maps lie on the enhanced grid")
        out[kind] = np.stack(planes)
    return out


def check_shape(kind: str, shape, maps_shape, where: str) -> None:
    if tuple(shape) != tuple(maps_shape):
        raise UserError(f"{where} holds {kind} maps of shape {list(shape)}, but the maps are "
                        f"{list(maps_shape)}; the file is damaged or was put together by hand")


def to_extras(kind: str, elements, planes, maps_shape, where: str) -> dict[str, np.ndarray]:
    """Stored planes back to extras "<kind>:<Element>"; UserError when they do not fit the maps."""
    planes = np.asarray(planes)
    if planes.ndim == 2:
        planes = planes[None]
    rules.check_numeric(planes.dtype, where)
    check_shape(kind, planes.shape, maps_shape, where)
    planes = planes.astype(np.float32, copy=False)
    return {f"{kind}:{el}": plane for el, plane in zip(elements, planes)}


def sidecar(path, kind: str) -> Path:
    """Where an NPY or TIFF result keeps one kind: out.npy -> out.uncertainty.npy."""
    return Path(path).with_suffix(f".{kind}.npy")


def listed(meta: dict) -> list[str]:
    """The kinds a result's metadata says it wrote (names only: never a path from the file)."""
    kinds = meta.get("trust_maps")
    return [k for k in KINDS if isinstance(kinds, list) and k in kinds]
