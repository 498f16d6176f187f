"""The model page's evidence: training history, the lead's benchmark table, and an example on a
held-out phantom (before/after, FRC curves against the truth, with Wiener and Richardson-Lucy).

The example is small (a 64-input-pixel phantom, about 256 fine pixels a side at most), computed
on the first view on the CPU and kept under DATA_DIR/review/, keyed by the model's config so a
retrained bundle gets a new one.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from xrfweb.paths import data_dir
from xrfweb.review.data import write_json_atomic
from xrfweb.registry.models import EnhancementModel
from xrfweb.review.plots import Grid, heatmap, jsonable

EXAMPLE_SEED = 2_000_999  # above enhancer.bench.HELD_OUT_SEED's range: no training run uses it
INPUT_PX = 64


def bundle_config(model: EnhancementModel) -> dict:
    """model.json as it is on disk now (a bundle retrained in place gains epochs and new
    weights), else the copy registered with the model."""
    from enhancer.bundle import CONFIG, SHIPPED_DIR

    ref = Path(model.bundle_ref)
    path = (ref if ref.is_absolute() else SHIPPED_DIR / ref) / CONFIG
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return model.config


def config_key(model: EnhancementModel) -> str:
    """Names what a cached example or comparison was computed with: the bundle as it is now."""
    config = json.dumps(bundle_config(model), sort_keys=True)
    return hashlib.sha256(config.encode()).hexdigest()[:16]


def benchmark(config: dict) -> dict:
    """The bundle's benchmark section as `python -m enhancer bench --record` writes it: the
    protocol case, and per set of maps the table rows of enhancer.bench
    (summary[method] = {psnr, ssim, frc_nm, totals_error}); rows [] when there is none."""
    section = config.get("benchmark") or {}
    case = section.get("case", "")
    rows = [{"case": entry.get("case", case), "set": entry.get("set", ""),
             "summary": entry["summary"]}
            for entry in section.get("results") or []
            if isinstance(entry, dict) and isinstance(entry.get("summary"), dict)]
    return {"rows": rows, "case": case, "protocol": section.get("protocol") or {},
            "machine": section.get("machine", ""), "command": section.get("command", "")}


def history(config: dict) -> list[dict]:
    """Per-epoch training records (epoch, step, loss, val_psnr, val_ssim) from model.json."""
    rows = (config.get("training") or {}).get("history") or []
    return [r for r in rows if isinstance(r, dict)]


def _frc(est, truth, pixel_nm: float) -> dict:
    from enhancer.metrics import FRC_THRESHOLD, frc_curve, resolution_from_curve

    freq, frc = frc_curve(est, truth)
    return {"per_um": (freq / pixel_nm * 1000.0).tolist(), "frc": frc.tolist(),
            "resolution_nm": resolution_from_curve(freq, frc, pixel_nm),
            "threshold": FRC_THRESHOLD}


def build_example(model: EnhancementModel) -> dict:
    """Truth, measured input, and every method's estimate on one held-out phantom, with scores."""
    from enhancer.baselines import rl_oracle, upsample, wiener_oracle
    from enhancer.bundle import load_bundle
    from enhancer.enhance import enhance
    from enhancer.metrics import psnr, ssim
    from enhancer.phantoms import phantom

    bundle = load_bundle(model.bundle_ref)
    d, scale = bundle.degradation, bundle.scale
    size = max(128, INPUT_PX * scale)
    channels = 1 if bundle.elements == "any" else len(bundle.elements)
    truth = phantom("cell", size, max(channels, 1), seed=EXAMPLE_SEED)
    measured = d.apply(truth, seed=EXAMPLE_SEED)
    probe = d.probe()
    estimates = {
        "input": upsample(measured, scale),
        "wiener": wiener_oracle(measured, probe, truth, scale)[0],
        "rl_oracle": rl_oracle(measured, probe, truth, scale)[0],
        "network": enhance(measured, bundle, device="cpu"),
    }
    fine = Grid(size, size, np.arange(size) * d.pixel_nm / 1000, np.arange(size) * d.pixel_nm / 1000)
    coarse_n = measured.shape[-1]
    coarse_um = (np.arange(coarse_n) * scale + (scale - 1) / 2) * d.pixel_nm / 1000
    coarse = Grid(coarse_n, coarse_n, coarse_um, coarse_um, px_step=scale,
                  px_offset=(scale - 1) / 2)
    out = {
        "phantom": f"cell phantom, seed {EXAMPLE_SEED} (held out), {size} x {size} fine pixels "
                   f"of {d.pixel_nm:g} nm, degraded by the model's own forward model",
        "maps": {"truth": heatmap(truth[0], fine), "measured": heatmap(measured[0], coarse)},
        "methods": {},
    }
    for name, est in estimates.items():
        out["maps"][name] = heatmap(est[0], fine)
        out["methods"][name] = {"psnr": psnr(est, truth), "ssim": ssim(est, truth),
                                "frc": _frc(est[0], truth[0], d.pixel_nm)}
    return jsonable(out)


def example(model: EnhancementModel) -> dict:
    """The cached example (built on first use)."""
    path = data_dir("review") / f"model-{model.id}-{config_key(model)}.json"
    if path.is_file():
        return json.loads(path.read_text())
    result = build_example(model)
    write_json_atomic(path, result)
    return result
