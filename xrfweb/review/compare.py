"""Models and classical methods side by side on the same map.

With no dataset: a held-out phantom degraded by the first model's forward model, so a truth
exists: PSNR, SSIM and FRC resolution against it, with Wiener and Richardson-Lucy tuned on the
truth (enhancer.baselines.*_oracle: the best those methods could do).
With a dataset (real data, no truth): a central crop of one element, Wiener and
Richardson-Lucy with fixed parameters and the first model's probe, and single-image FRC.

Every estimate lies on the first model's fine grid; a model that expects another scan step is
listed with the reason and not run. Results are kept under DATA_DIR/review/ by their inputs.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np

from enhancer import UserError
from xrfweb.paths import data_dir
from xrfweb.review.data import write_json_atomic
from xrfweb.review.model_review import EXAMPLE_SEED, config_key
from xrfweb.review.plots import Grid, heatmap, jsonable

FINE_PX = 256  # the side of the compared region on the fine grid: small enough for a CPU request
WIENER_BALANCE = 0.05  # fixed parameters on real data (no truth to tune them on)
RL_ITERATIONS = 30


def _fits(bundle, reference) -> str:
    """Why this model cannot take the reference model's input, or ''."""
    if bundle.scale != reference.scale or abs(bundle.pixel_nm - reference.pixel_nm) > \
            0.1 * reference.pixel_nm:
        return (f"expects a {bundle.pixel_nm * bundle.scale:g} nm step enhanced {bundle.scale}x; "
                f"the compared input has a {reference.pixel_nm * reference.scale:g} nm step "
                f"enhanced {reference.scale}x")
    return ""


def _run_models(models, bundles, measured, reference) -> tuple[dict, dict]:
    from enhancer.enhance import enhance

    estimates, skipped = {}, {}
    for model, bundle in zip(models, bundles):
        problem = _fits(bundle, reference)
        if not problem and bundle.elements != "any" and len(bundle.elements) != 1:
            problem = f"trained jointly on {', '.join(bundle.elements)}; compared here on one map"
        if problem:
            skipped[model.name] = problem
        else:
            estimates[model.name] = enhance(measured[None], bundle, device="cpu")[0]
    return estimates, skipped


def on_phantom(models, bundles) -> dict:
    from enhancer.baselines import rl_oracle, upsample, wiener_oracle
    from enhancer.metrics import frc_resolution_nm, psnr, single_image_frc_nm, ssim
    from enhancer.phantoms import phantom

    ref = bundles[0]
    d, scale = ref.degradation, ref.scale
    truth = phantom("cell", FINE_PX, 1, seed=EXAMPLE_SEED)[0]
    measured = d.apply(truth, seed=EXAMPLE_SEED)
    probe = d.probe()
    estimates = {"input (bicubic)": upsample(measured, scale),
                 "Wiener (oracle)": wiener_oracle(measured, probe, truth, scale)[0][0],
                 "Richardson-Lucy (oracle)": rl_oracle(measured, probe, truth, scale)[0][0]}
    networks, skipped = _run_models(models, bundles, measured, ref)
    estimates.update(networks)
    um = np.arange(FINE_PX) * d.pixel_nm / 1000
    grid = Grid(FINE_PX, FINE_PX, um, um)
    rows = {name: {"psnr": psnr(est, truth), "ssim": ssim(est, truth),
                   "frc_nm": frc_resolution_nm(est, truth, d.pixel_nm),
                   "single_image_frc_nm": single_image_frc_nm(est, d.pixel_nm)}
            for name, est in estimates.items()}
    return {"source": f"held-out cell phantom (seed {EXAMPLE_SEED}) degraded by {models[0].name}'s "
                      f"forward model: probe {d.probe_fwhm_nm:g} nm, step {d.step_nm:g} nm, "
                      f"{d.counts:g} counts at the peak",
            "truth": True, "maps": {"truth": heatmap(truth, grid),
                                    **{name: heatmap(e, grid) for name, e in estimates.items()}},
            "metrics": rows, "skipped": skipped}


def on_dataset(models, bundles, mapset, element: str) -> dict:
    from enhancer.baselines import richardson_lucy, upsample, wiener
    from enhancer.metrics import single_image_frc_nm, totals

    ref = bundles[0]
    scale = ref.scale
    step = mapset.pixel_nm or ref.pixel_nm * scale
    if abs(step - ref.pixel_nm * scale) > 0.1 * ref.pixel_nm * scale:
        raise UserError(f"the map's pixel is {step:g} nm but {models[0].name} expects a "
                        f"{ref.pixel_nm * scale:g} nm step; put a fitting model first")
    full = np.asarray(mapset.maps[mapset.element_index(element)], np.float32)
    side = max(16, FINE_PX // scale)
    h, w = full.shape
    r0, c0 = max(0, (h - side) // 2), max(0, (w - side) // 2)
    crop = np.ascontiguousarray(full[r0 : r0 + side, c0 : c0 + side])
    probe = ref.degradation.probe()
    estimates = {"input (bicubic)": upsample(crop, scale),
                 f"Wiener (balance {WIENER_BALANCE:g})": wiener(crop, probe, scale,
                                                                WIENER_BALANCE),
                 f"Richardson-Lucy ({RL_ITERATIONS} iterations)": richardson_lucy(
                     crop, probe, scale, RL_ITERATIONS)}
    networks, skipped = _run_models(models, bundles, crop, ref)
    estimates.update(networks)
    fine_nm = step / scale
    ch, cw = crop.shape[0] * scale, crop.shape[1] * scale
    grid = Grid(ch, cw, np.arange(cw) * fine_nm / 1000, np.arange(ch) * fine_nm / 1000)
    mean_in = totals(crop)[0]
    rows = {name: {"single_image_frc_nm": single_image_frc_nm(est, fine_nm),
                   "total_change": totals(est)[0] / mean_in - 1 if mean_in else None}
            for name, est in estimates.items()}
    rows["input (bicubic)"]["single_image_frc_nm_measured"] = single_image_frc_nm(crop, step)
    return {"source": f"{element}, central {crop.shape[0]} x {crop.shape[1]} pixels of the map "
                      f"(rows {r0}-{r0 + crop.shape[0] - 1}, columns {c0}-{c0 + crop.shape[1] - 1})",
            "truth": False, "maps": {name: heatmap(e, grid) for name, e in estimates.items()},
            "metrics": rows, "skipped": skipped}


def comparison(models, dataset=None, mapset=None, element: str = "") -> dict:
    """The comparison payload for these models (first = reference), cached by its inputs."""
    from enhancer.bundle import load_bundle
    if not models:
        raise UserError("choose at least one model to compare")
    key = json.dumps([[m.id, config_key(m)] for m in models] +
                     [dataset.stored_name if dataset else None, element])
    path = data_dir("review") / f"compare-{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"
    if path.is_file():
        return json.loads(path.read_text())
    bundles = [load_bundle(m.bundle_ref) for m in models]
    result = on_dataset(models, bundles, mapset, element) if mapset else on_phantom(models, bundles)
    result = jsonable({**result, "models": [m.name for m in models]})
    write_json_atomic(path, result)
    return result
