"""`python -m enhancer bench --universal`: the universal model over the off-protocol grid.

Held-out phantoms of every kind, degraded by the one forward model at each condition of the grid
(probe FWHM 2, 3, 5, 8 output pixels x scale 1, 2, 4 x peak counts 50, 500, 5000, plus elliptical
probes 2x4 and 3x6), each scored for the input, Richardson-Lucy with the true probe and its
iteration count tuned on the truth (oracle), and the universal model told the true physics. Then
the protocol cases A, B, C against protocol-a/-b/-c, and what a probe stated 25% too small or too
large costs. Targets (issue 16): >= 1.5 dB over RL-oracle on the mean, >= 0.5 dB on every
condition, within 0.5 dB of the protocol models, totals within 1%.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from .baselines import rl_oracle, upsample
from .bench import CASES, HELD_OUT_SEED
from .bundle import load_bundle
from .degrade import Degradation
from .enhance import enhance
from .metrics import psnr, totals_error
from .phantoms import KINDS, phantom

PROBES = (2.0, 3.0, 5.0, 8.0)
SCALES = (1, 2, 4)
COUNTS = (50.0, 500.0, 5000.0)
ELLIPTICAL = (((2.0, 4.0), 2, 500.0), ((3.0, 6.0), 2, 500.0))


def grid():
    """(probe (x, y) in output pixels, scale, counts) for every condition of the issue's grid."""
    return [((p, p), s, c) for p in PROBES for s in SCALES for c in COUNTS] + list(ELLIPTICAL)


def held_out(size=96):
    """One map of every kind, from the benchmark's held-out seeds (no training run uses them)."""
    return [(k, phantom(k, size, 3, seed=HELD_OUT_SEED + 500 + j)) for j, k in enumerate(KINDS)]


def run_condition(bundle, maps, probe_px, scale, counts, stated=1.0, seed=0):
    """Mean PSNR of the network told the probe x `stated`, and its worst totals error. The input
    and oracle-RL rows of the same draws come from cached_baselines."""
    d = Degradation(probe_px[0], 1.0, scale, counts, probe_fwhm_y_nm=probe_px[1])
    told = (probe_px[0] * stated, probe_px[1] * stated)
    scores, worst_totals = [], 0.0
    for i, (_, truth) in enumerate(maps):
        g = d.apply(truth, seed=seed + i)
        est = enhance(g, bundle, conditions=(told, scale, counts))
        scores.append(psnr(est, truth))
        worst_totals = max(worst_totals, float(np.max(np.abs(totals_error(est, g)))))
    return {"network": float(np.mean(scores)), "totals_error": worst_totals}


def _key(probe_px, scale, counts) -> str:
    return f"{probe_px[0]:g}x{probe_px[1]:g}/s{scale}/c{counts:g}"


def cached_baselines(out_dir, maps=None, conditions=None, seed=0) -> dict:
    """Input and oracle-RL PSNR per condition. They do not depend on the model and are most of the
    benchmark's time (RL tried at 11 iteration counts per map), so they are kept in
    OUT/universal-baselines.json, written after each condition: a stopped run resumes there."""
    maps = held_out() if maps is None else maps
    path = Path(out_dir) / "universal-baselines.json"
    signature = {"maps": [[name, hashlib.sha1(np.ascontiguousarray(m, np.float32)).hexdigest()] for name, m in maps],
                 "seed": seed}
    cache = json.loads(path.read_text()) if path.is_file() else {}
    if cache.get("signature") != signature:
        cache = {"signature": signature, "rows": {}}
    for probe, scale, counts in grid() if conditions is None else conditions:
        if _key(probe, scale, counts) in cache["rows"]:
            continue
        d = Degradation(probe[0], 1.0, scale, counts, probe_fwhm_y_nm=probe[1])
        rows = {"input": [], "rl_oracle": []}
        for i, (_, truth) in enumerate(maps):
            g = d.apply(truth, seed=seed + i)  # the draw run_condition makes
            rows["input"].append(psnr(upsample(g, scale), truth))
            rows["rl_oracle"].append(psnr(rl_oracle(g, d.probe(), truth, scale)[0], truth))
        cache["rows"][_key(probe, scale, counts)] = {k: float(np.mean(v)) for k, v in rows.items()}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache, indent=1))
        tmp.replace(path)
    return cache["rows"]


def protocol_cases(bundle, seed=0):
    """Cases A, B, C: the universal model told each case's physics vs the case's own model, on
    the same draws of the benchmark's held-out set."""
    from .bench import held_out_set

    maps = held_out_set()
    out = {}
    for case, (pixel, fwhm, scale, counts, name) in CASES.items():
        own, d = load_bundle(name), Degradation(fwhm, pixel, scale, counts)
        rows = {"model": [], "universal": []}
        for i, (_, truth) in enumerate(maps):
            h, w = (np.array(truth.shape[-2:]) // scale) * scale
            truth = truth[:, :h, :w]
            g = d.apply(truth, seed=seed + i)  # the draw bench.run_case makes
            rows["model"].append(psnr(enhance(g, own), truth))
            rows["universal"].append(psnr(enhance(g, bundle, conditions=((fwhm / pixel,) * 2, scale, counts)), truth))
        out[case] = {"model": name, "model_psnr": float(np.mean(rows["model"])),
                     "universal_psnr": float(np.mean(rows["universal"]))}
    return out


def run(model="universal", quick=False, out_dir="bench-out", record=False, command=None):
    bundle = load_bundle(model)
    maps = held_out(64 if quick else 96)
    conditions = grid()[:: 9 if quick else 1]
    t0 = time.time()
    rows = []
    base = cached_baselines(out_dir, maps, conditions)
    for probe, scale, counts in conditions:
        r = {**run_condition(bundle, maps, probe, scale, counts), **base[_key(probe, scale, counts)]}
        r.update(probe_px=list(probe), scale=scale, counts=counts, margin=r["network"] - r["rl_oracle"])
        rows.append(r)
        print(f"probe {probe[0]:g}x{probe[1]:g} px, scale {scale}, {counts:g} counts: input {r['input']:.2f}, "
              f"RL-oracle {r['rl_oracle']:.2f}, universal {r['network']:.2f} ({r['margin']:+.2f} dB), "
              f"totals {100 * r['totals_error']:.2f}%", flush=True)
    misstated = []
    for probe, scale, counts in ([((3.0, 3.0), 2, 500.0), ((5.0, 5.0), 4, 500.0)] if not quick else []):
        right = run_condition(bundle, maps, probe, scale, counts)["network"]
        for factor in (0.75, 1.25):
            got = run_condition(bundle, maps, probe, scale, counts, stated=factor)["network"]
            misstated.append({"probe_px": list(probe), "scale": scale, "counts": counts, "stated": factor,
                              "psnr": got, "cost_db": right - got})
    table = {
        "grid": rows,
        "mean_margin_db": float(np.mean([r["margin"] for r in rows])),
        "worst_margin_db": float(np.min([r["margin"] for r in rows])),
        "max_totals_error": float(np.max([r["totals_error"] for r in rows])),
        "misstated_probe": misstated,
        "protocol_cases": {} if quick else protocol_cases(bundle),
        "seconds": time.time() - t0,
        "command": command,
    }
    print(markdown(table))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "universal.json").write_text(json.dumps(table, indent=2))
    (out / "universal.md").write_text(markdown(table))
    if record:
        _record(bundle, table)
    return table


def markdown(t) -> str:
    lines = ["| probe px | scale | counts | input dB | RL-oracle dB | universal dB | margin dB | totals |",
             "|---|---|---|---|---|---|---|---|"]
    for r in t["grid"]:
        lines.append(f"| {r['probe_px'][0]:g}x{r['probe_px'][1]:g} | {r['scale']} | {r['counts']:g} | "
                     f"{r['input']:.2f} | {r['rl_oracle']:.2f} | {r['network']:.2f} | {r['margin']:+.2f} | "
                     f"{100 * r['totals_error']:.2f}% |")
    lines.append(f"\nMean margin over RL-oracle {t['mean_margin_db']:+.2f} dB, worst {t['worst_margin_db']:+.2f} dB, "
                 f"largest totals error {100 * t['max_totals_error']:.2f}%.")
    for case, r in t["protocol_cases"].items():
        lines.append(f"- Case {case}: {r['model']} {r['model_psnr']:.2f} dB, universal {r['universal_psnr']:.2f} dB "
                     f"({r['universal_psnr'] - r['model_psnr']:+.2f}).")
    for m in t["misstated_probe"]:
        lines.append(f"- Probe {m['probe_px'][0]:g} px stated x{m['stated']:g} (scale {m['scale']}, "
                     f"{m['counts']:g} counts): costs {m['cost_db']:.2f} dB.")
    return "\n".join(lines) + "\n"


def _record(bundle, table):
    from .bundle import CONFIG

    path = bundle.path / CONFIG
    config = json.loads(path.read_text())
    config["benchmark"] = {k: table[k] for k in ("mean_margin_db", "worst_margin_db", "max_totals_error",
                                                 "grid", "misstated_probe", "protocol_cases", "command")}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=2))
    tmp.replace(path)
