"""What a training run learns from and is judged on, built the same way for the CLI's `train`
and the web's staff training: the fine maps given, generated phantoms, and the validation set
that picks the best epoch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import UserError
from .phantoms import KINDS, contrast, phantom, training_set

VALIDATION_SEED = 10**6  # above every training phantom's seed (seed * 100_000 + i, i < 10**5)


@dataclass
class TrainingRun:
    maps: list[np.ndarray]  # fine maps (C, H, W) to learn from
    coarse: list[np.ndarray] | None  # paired real coarse scans, one per fine map (Approach 1)
    validation: list[np.ndarray] | None  # None: central crops of the paired scans (train.py)
    summary: dict  # what model.json records about the data


def validation_set(kinds, gamma_high: float = 1.0, offset_high: float = 0.0) -> list[np.ndarray]:
    """Fixed held-out phantoms: cells, particles, textures (and aggregates when they are learnt),
    plus high-contrast or offset versions when the run learns those, so the best epoch must be
    good on them too."""
    checked = ("cell", "particles", "texture") + (("aggregate",) if "aggregate" in kinds else ())
    maps = [phantom(k, 128, 3, seed=VALIDATION_SEED + i) for i, k in enumerate(checked)]
    if gamma_high > 1 or offset_high > 0:
        maps += [contrast(phantom(k, 128, 3, seed=VALIDATION_SEED + 10 + i), g, o) for i, (k, g, o) in
                 enumerate((("particles", gamma_high, 0), ("aggregate", gamma_high, 0),
                            ("texture", 1, offset_high)))]
    return maps


def build_run(fine_maps, fine_pixel_nm: float, *, phantoms: int = 0, phantom_kinds=("mixed",),
              phantom_size: int = 192, phantom_gamma=(1.0, 1.0), phantom_offset=(0.0, 0.0),
              phantom_probe_nm=(0.0, 0.0), seed: int = 0, coarse=None, sources: dict | None = None
              ) -> TrainingRun:
    """The run's maps and validation set. sources: where the fine maps came from (file names or
    dataset ids), recorded in the summary."""
    kinds = list(phantom_kinds)
    unknown = [k for k in kinds if k not in KINDS + ("mixed",)]
    if unknown or not kinds:
        raise UserError(f"the phantom kinds are a list of {', '.join(KINDS)}, mixed; got {kinds!r}")
    maps = list(fine_maps)
    if not maps and not phantoms:
        raise UserError("give high-resolution maps to learn from, or phantoms")
    if coarse is not None and (phantoms or len(coarse) != len(maps)):
        raise UserError("give one coarse scan per fine map, in the same order, and no phantoms")
    maps += training_set(phantoms, kinds, phantom_size, seed, tuple(phantom_gamma), tuple(phantom_offset),
                         tuple(phantom_probe_nm), fine_pixel_nm)
    validation = None if coarse is not None else validation_set(kinds, phantom_gamma[1], phantom_offset[1])
    summary = {**(sources or {}), "phantoms": phantoms, "phantom_size": phantom_size,
               "phantom_kinds": kinds, "phantom_gamma": list(phantom_gamma),
               "phantom_offset": list(phantom_offset), "phantom_probe_nm": list(phantom_probe_nm)}
    return TrainingRun(maps, coarse, validation, summary)
