"""Models and classical methods side by side on the same map.

The science is enhancer.bench.compare: with no dataset, a held-out phantom with its truth and
oracle-tuned Wiener and Richardson-Lucy; with a dataset (real data, no truth), a central crop of
one element with fixed parameters and single-image FRC. Here: which models take part, the crop,
the plots and the cache.

Every estimate lies on the first model's fine grid; a model the fit rule (enhancer.fit) refuses
for the compared input is listed with its reason and not run. Results are kept under DATA_DIR/review/ by their inputs.
"""
from __future__ import annotations

import hashlib
from contextlib import nullcontext
import json

import numpy as np

from enhancer import UserError
from xrfweb.paths import data_dir
from xrfweb.review.data import write_json_atomic
from xrfweb.review.model_review import config_key
from xrfweb.review.plots import Grid, heatmap, jsonable

FINE_PX = 256  # the side of the compared region on the fine grid: small enough for a CPU request


def _networks(models, bundles, physics, scale) -> tuple[dict, dict, dict]:
    """The models that can take the compared input (name -> bundle), their fits (enhancer.fit:
    the one rule), and why the others not."""
    from enhancer.fit import fit

    networks, fits, skipped = {}, {}, {}
    for model, bundle in zip(models, bundles):
        f = fit({"name": model.name, **bundle.config}, physics, scale)
        problem = f.reason
        if not problem and bundle.elements != "any" and len(bundle.elements) != 1:
            problem = f"trained jointly on {', '.join(bundle.elements)}; compared here on one map"
        if problem:
            skipped[model.name] = problem
        else:
            networks[model.name], fits[model.name] = bundle, f
    return networks, fits, skipped


def _reference(models, bundles):
    """The first model sets the compared grid and the classical methods' probe: it must be made
    for one condition."""
    from enhancer.fit import conditions

    if conditions(bundles[0].config):
        raise UserError(f"{models[0].name} takes any probe and step: put a model made for one "
                        "condition first (its probe and step set the comparison)")
    return bundles[0]


def on_phantom(models, bundles) -> dict:
    from enhancer.bench import EXAMPLE_SEED, compare

    from enhancer.fit import own_physics

    ref = _reference(models, bundles)
    d = ref.degradation
    networks, fits, skipped = _networks(models, bundles, own_physics(ref.config), ref.scale)
    result = compare(ref, networks, side_px=FINE_PX, fits=fits)
    um = np.arange(FINE_PX) * result["fine_pixel_nm"] / 1000
    grid = Grid(FINE_PX, FINE_PX, um, um)
    return {"source": f"held-out cell phantom (seed {EXAMPLE_SEED}) degraded by {models[0].name}'s "
                      f"forward model: probe {d.probe_fwhm_nm:g} nm, step {d.step_nm:g} nm, "
                      f"{d.counts:g} counts at the peak",
            "truth": True, "maps": {"truth": heatmap(result["truth"], grid),
                                    **{name: heatmap(e, grid) for name, e in result["estimates"].items()}},
            "metrics": result["metrics"], "skipped": skipped}


def on_dataset(models, bundles, mapset, element: str, physics) -> dict:
    from enhancer.bench import compare
    from enhancer.fit import fit

    ref = _reference(models, bundles)
    scale = ref.scale
    f = fit({"name": models[0].name, **ref.config}, physics)
    if not f.ok:
        raise UserError(f"{f.reason}; put a fitting model first")
    step = float(np.mean(f.physics.scan_step_nm))
    full = np.asarray(mapset.maps[mapset.element_index(element)], np.float32)
    side = max(16, FINE_PX // scale)
    h, w = full.shape
    r0, c0 = max(0, (h - side) // 2), max(0, (w - side) // 2)
    crop = full[r0 : r0 + side, c0 : c0 + side]
    networks, fits, skipped = _networks(models, bundles, physics, scale)
    result = compare(ref, networks, crop, step, fits=fits)
    fine_nm = result["fine_pixel_nm"]
    ch, cw = crop.shape[0] * scale, crop.shape[1] * scale
    grid = Grid(ch, cw, np.arange(cw) * fine_nm / 1000, np.arange(ch) * fine_nm / 1000)
    return {"source": f"{element}, central {crop.shape[0]} x {crop.shape[1]} pixels of the map "
                      f"(rows {r0}-{r0 + crop.shape[0] - 1}, columns {c0}-{c0 + crop.shape[1] - 1})",
            "truth": False, "maps": {name: heatmap(e, grid) for name, e in result["estimates"].items()},
            "metrics": result["metrics"], "skipped": skipped}


def comparison(models, dataset=None, mapset=None, element: str = "", guard=None) -> dict:
    """The comparison payload for these models (first = reference), cached by its inputs;
    computed inside guard (review/limits.py) when it is not."""
    from enhancer.bundle import load_bundle
    if not models:
        raise UserError("choose at least one model to compare")
    key = json.dumps([[m.id, config_key(m)] for m in models] +
                     [dataset.stored_name if dataset else None, element,
                      dataset.physics.to_dict() if dataset else None])  # a stated step or probe changes it
    path = data_dir("review") / f"compare-{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"
    if path.is_file():
        return json.loads(path.read_text())
    with guard or nullcontext():
        bundles = [load_bundle(m.bundle_ref) for m in models]
        result = (on_dataset(models, bundles, mapset, element, dataset.physics) if mapset
                  else on_phantom(models, bundles))
    result = jsonable({**result, "models": [m.name for m in models]})
    write_json_atomic(path, result)
    return result
