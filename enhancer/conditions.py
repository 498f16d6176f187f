"""What a conditioned network (the universal model) is told about a map's degradation, and the
ranges it is trained for: one place, read by training (universal.py) and enhancement (enhance.py).
"""
from __future__ import annotations

import math

import torch

PROBE_PX = (1.5, 8.0)  # probe FWHM in output pixels, each axis independently
SCALES = (1, 2, 3, 4)
COUNTS = (20.0, 10_000.0)  # peak counts per element
CONDITION_CHANNELS = 4


def condition(probe_px, scale: int, counts: float) -> torch.Tensor:
    """The network's view of a degradation: each entry about 0..1."""
    fx, fy = probe_px
    return torch.tensor([fx / 8.0, fy / 8.0, scale / 4.0, math.sqrt(COUNTS[0] / counts)], dtype=torch.float32)
