"""The model page's evidence: training history, the lead's benchmark table, and an example on a
held-out phantom (before/after, FRC curves against the truth, with Wiener and Richardson-Lucy).

The example is small (a 64-input-pixel phantom, about 256 fine pixels a side at most), computed
on the first view on the CPU and kept under DATA_DIR/review/, keyed by the model's config so a
retrained bundle gets a new one.
"""
from __future__ import annotations

import hashlib
import json
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from xrfweb.paths import data_dir
from xrfweb.review.data import write_json_atomic
from xrfweb.registry.models import EnhancementModel
from xrfweb.review.plots import Grid, heatmap, jsonable

INPUT_PX = 64  # the example phantom's side in input pixels


def bundle_config(model: EnhancementModel) -> dict:
    """model.json as it is on disk now (a bundle retrained in place gains epochs and new
    weights), else the copy registered with the model; checked against the schema (UserError
    naming the field) before any page shows it."""
    from enhancer.bundle import CONFIG, SHIPPED_DIR, check_config

    ref = Path(model.bundle_ref)
    path = (ref if ref.is_absolute() else SHIPPED_DIR / ref) / CONFIG
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        config = model.config
    return check_config(config)


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


def build_example(model: EnhancementModel) -> dict:
    """Truth, measured input, and every method's estimate on one held-out phantom, with scores
    (enhancer.bench.example), as the page draws them."""
    from enhancer.bench import example
    from enhancer.bundle import load_bundle

    ex = example(load_bundle(model.bundle_ref), INPUT_PX)
    pixel_nm, scale, size = ex["pixel_nm"], ex["scale"], ex["truth"].shape[-1]
    fine = Grid(size, size, np.arange(size) * pixel_nm / 1000, np.arange(size) * pixel_nm / 1000)
    coarse_n = ex["measured"].shape[-1]
    coarse_um = (np.arange(coarse_n) * scale + (scale - 1) / 2) * pixel_nm / 1000
    coarse = Grid(coarse_n, coarse_n, coarse_um, coarse_um, px_step=scale, px_offset=(scale - 1) / 2)
    maps = {"truth": heatmap(ex["truth"][0], fine), "measured": heatmap(ex["measured"][0], coarse),
            **{name: heatmap(est[0], fine) for name, est in ex["estimates"].items()}}
    return jsonable({"phantom": ex["phantom"], "maps": maps, "methods": ex["methods"]})


def example(model: EnhancementModel, guard=None) -> dict:
    """The cached example (built on first use, inside guard: review/limits.py)."""
    path = data_dir("review") / f"model-{model.id}-{config_key(model)}.json"
    if path.is_file():
        return json.loads(path.read_text())
    with guard or nullcontext():
        result = build_example(model)
    write_json_atomic(path, result)
    return result
