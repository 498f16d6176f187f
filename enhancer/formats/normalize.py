"""I0 normalisation by a named scaler (US_IC, us_ic, i0, sclr_i0...), off unless asked for.

PyXRF's rule (NSLS-II/PyXRF pyxrf/core/utils.py, normalize_data_by_scaler): maps / scaler, with
zeros in the scaler replaced by the mean of its non-zero values (kept away from 0 by 1e-10).
Where PyXRF silently skips an all-zero scaler, here it is refused: the user asked for it.
Non-finite scaler pixels count as zeros. Recorded in provenance["normalization"].
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from enhancer import UserError
from enhancer.xrfmap import XRFMap


def find_scaler(scalers: dict, name: str) -> str:
    if name in scalers:
        return name
    matches = [k for k in scalers if k.lower() == str(name).lower()]  # US_IC and us_ic
    if len(matches) == 1:
        return matches[0]
    have = ", ".join(sorted(scalers)) or "none"
    raise UserError(f"no scaler named {name!r} to normalise by; this file has: {have}")


def normalize_by_scaler(xrfmap: XRFMap, name: str) -> XRFMap:
    if xrfmap.provenance.get("normalization"):
        done = xrfmap.provenance["normalization"].get("scaler")
        raise UserError(f"these maps are already normalised by {done}")
    key = find_scaler(xrfmap.scalers, name)
    scaler = np.array(xrfmap.scalers[key], dtype=np.float64)
    if scaler.shape != xrfmap.data.shape[1:]:
        raise UserError(f"scaler {key} is {scaler.shape} but the maps are {xrfmap.data.shape[1:]}")
    scaler[~np.isfinite(scaler)] = 0.0
    nonzero = scaler != 0
    if not nonzero.any():
        raise UserError(f"scaler {key} is zero everywhere; the maps cannot be normalised by it")
    zeros = int((~nonzero).sum())
    if zeros:
        mean = float(scaler[nonzero].mean())
        if abs(mean) < 1e-10:
            mean = 1e-10 if mean >= 0 else -1e-10
        scaler[~nonzero] = mean
    data = (xrfmap.data / scaler[None]).astype(np.float32)
    provenance = dict(xrfmap.provenance)
    provenance["normalization"] = {
        "scaler": key, "zeros_replaced_by_mean": zeros,
        "rule": "maps / scaler; zero scaler pixels replaced by the mean of the non-zero ones (PyXRF)",
    }
    units = f"{xrfmap.units} / {key}" if xrfmap.units else f"per {key}"
    return replace(xrfmap, data=data, units=units, provenance=provenance)
