"""`python -m enhancer bench`: the benchmark protocol's table (docs/benchmarks.md).

Cases A, B, C on a fixed held-out set of seeded phantoms of every kind (seeds no training
command uses), on high-contrast versions of some (sparse bright spots over a faint rest) and on
the real HXN maps (the protocol's real-data target is case B; A and C are reported too). Each
row: the input (bicubic when S > 1), Wiener and Richardson-Lucy with the true probe and
oracle-tuned parameters, the network, and the network's 8-fold self-ensemble (network_x8). The
protocol's targets are the network's.
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from . import UserError, __version__
from .baselines import rl_oracle, upsample, wiener_oracle
from .bundle import load_bundle
from .degrade import Degradation
from .enhance import enhance
from .metrics import frc_resolution_nm, psnr, ssim, totals_error
from .phantoms import KINDS, contrast, phantom

CASES = {  # case: (pixel nm, probe FWHM nm, scale, peak counts, shipped model)
    "A": (50.0, 200.0, 1, 1000.0, "protocol-a"),
    "B": (50.0, 200.0, 4, 1000.0, "protocol-b"),
    "C": (50.0, 200.0, 1, 50.0, "protocol-c"),
}
HELD_OUT_SEED = 2_000_000  # training uses seeds below 10**6 * 2; see train_cli.cmd_train
REAL_DATA = Path(__file__).resolve().parents[1] / "demo" / "hxn-fe-aggregate"  # the real HXN maps


def held_out_set(quick=False):
    n, size = (1, 96) if quick else (2, 192)
    return [(f"{k}-{i}", phantom(k, size, 3, seed=HELD_OUT_SEED + 10 * j + i))
            for j, k in enumerate(KINDS) for i in range(n)]


def high_contrast_set(quick=False):
    """Sparse, bright maps like real particle scans: held-out phantoms raised to the power 2.5."""
    n, size = (1, 96) if quick else (2, 192)
    return [(f"{k}-hc-{i}", contrast(phantom(k, size, 3, seed=HELD_OUT_SEED + 1000 + 10 * j + i), 2.5))
            for j, k in enumerate(("particles", "aggregate", "cell")) for i in range(n)]


def real_maps(quick=False):
    """The real HXN maps as a truth on a 50 nm grid (their pixel is about 40-50 nm)."""
    from .formats import read_map

    m = read_map(REAL_DATA, pixel_nm=50.0).data
    return [("hxn-real", m[:, 32:128, 32:128] if quick else m)]


def score(est, truth, reference_input, pixel_nm):
    return {"psnr": psnr(est, truth), "ssim": ssim(est, truth),
            "frc_nm": frc_resolution_nm(est, truth, pixel_nm),
            "totals_error": float(np.max(np.abs(totals_error(est, reference_input))))}


def run_case(case, bundle, maps, seed=0, self_ensemble=True):
    """Every method's scores on each map of the case. self_ensemble=False skips network_x8 (8x the
    network's time: the approval benchmark on a CPU worker leaves it out)."""
    pixel, fwhm, scale, counts, _ = CASES[case]
    d = Degradation(fwhm, pixel, scale, counts)
    probe = d.probe()
    # a conditioned model (universal) is told the case's physics, as a user would state it
    told = {"conditions": ((fwhm / pixel,) * 2, scale, counts)} if bundle and bundle.conditions else {}
    rows = {"input": [], "wiener": [], "rl_oracle": [], "network": [], "network_x8": []}
    for i, (name, truth) in enumerate(maps):
        h, w = (np.array(truth.shape[-2:]) // scale) * scale
        truth = truth[:, :h, :w]
        g = d.apply(truth, seed=seed + i)
        estimates = {
            "input": upsample(g, scale),
            "wiener": wiener_oracle(g, probe, truth, scale)[0],
            "rl_oracle": rl_oracle(g, probe, truth, scale)[0],
            "network": enhance(g, bundle, **told) if bundle else None,
            # the 8-fold self-ensemble (enhance --ensemble 8): 8x the time, for the record
            "network_x8": enhance(g, bundle, ensemble=8, **told) if bundle and self_ensemble else None,
        }
        for method, est in estimates.items():
            if est is not None:
                rows[method].append({"map": name, **score(est, truth, g, pixel)})
    return {m: r for m, r in rows.items() if r}


def summarise(rows):
    keys = ("psnr", "ssim", "frc_nm", "totals_error")
    out = {m: {k: float(np.mean([r[k] for r in rs])) for k in keys} for m, rs in rows.items()}
    for m in out:
        out[m]["totals_error"] = float(np.max([r["totals_error"] for r in rows[m]]))
    return out


def markdown(table) -> str:
    lines = ["| case | set | method | PSNR dB | SSIM | FRC nm | max totals error |",
             "|---|---|---|---|---|---|---|"]
    for entry in table["results"]:
        for method, s in entry["summary"].items():
            lines.append(f"| {entry['case']} | {entry['set']} | {method} | {s['psnr']:.2f} | "
                         f"{s['ssim']:.3f} | {s['frc_nm']:.0f} | {100 * s['totals_error']:.2f}% |")
    return "\n".join(lines) + "\n"


def figure(table, path):
    import plotly.graph_objects as go

    fig = go.Figure()
    methods = ["input", "wiener", "rl_oracle", "network", "network_x8"]
    labels = [f"{e['case']} {e['set']}" for e in table["results"]]
    for m in methods:
        fig.add_bar(name=m, x=labels, y=[e["summary"].get(m, {}).get("psnr") for e in table["results"]])
    fig.update_layout(barmode="group", yaxis_title="PSNR (dB)", title="Enhancement benchmark")
    fig.write_html(path, include_plotlyjs=True, full_html=True)


def run_bench(args):
    torch.set_num_threads(max(1, torch.get_num_threads()))
    cases = [c for c in args.cases.upper() if c in CASES]
    if not cases:
        raise UserError("--cases takes letters from A, B, C")
    models = dict(zip(cases, args.models)) if args.models else {c: CASES[c][4] for c in cases}
    if getattr(args, "universal", False) and args.speed:  # without --speed: score_cli.cmd_bench
        from .speed import run_speed

        return run_speed(args, [(args.models or ["universal"])[0]])
    if args.speed:
        from .speed import run_speed

        return run_speed(args, [models[c] for c in cases])
    held = held_out_set(args.quick)
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    table = {"software_version": __version__, "noise_seed": args.noise_seed, "machine": machine, "results": []}
    t0 = time.time()
    for case in cases:
        bundle = load_bundle(models[case]) if models.get(case) else None
        # real HXN: the protocol's target is case B; A and C are measured too, since a model that
        # loses to Richardson-Lucy on real maps should say so whatever the case
        sets = [("held-out phantoms", held), ("high-contrast phantoms", high_contrast_set(args.quick)),
                ("real HXN", real_maps(args.quick))]
        for set_name, maps in sets:
            if not maps:
                continue
            rows = run_case(case, bundle, maps, seed=args.noise_seed)
            table["results"].append({"case": case, "set": set_name, "model": models.get(case),
                                     "summary": summarise(rows), "maps": rows})
            print(markdown({"results": table["results"][-1:]}), flush=True)
    table["seconds"] = time.time() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.json").write_text(json.dumps(table, indent=2))
    (out / "table.md").write_text(markdown(table))
    figure(table, out / "figure.html")
    if args.record:
        record(table, cases, models)
    print(markdown(table))


def record(table, cases, models):
    """Write each case's summary into its model's model.json (section "benchmark")."""
    import shlex
    import sys

    from .bundle import CONFIG

    for case in cases:
        bundle = load_bundle(models[case])
        path = bundle.path / CONFIG
        config = json.loads(path.read_text())
        config["benchmark"] = {
            "case": case, "protocol": dict(zip(("pixel_nm", "probe_fwhm_nm", "scale", "counts"), CASES[case][:4])),
            "results": [{"set": e["set"], "summary": e["summary"]} for e in table["results"] if e["case"] == case],
            "machine": table["machine"], "software_version": table["software_version"],
            "command": "python -m enhancer " + shlex.join(sys.argv[1:]),
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(config, indent=2))
        tmp.replace(path)


# --- the web's model pages: one model's example, several models compared -------------------

EXAMPLE_SEED = 2_000_999  # above HELD_OUT_SEED's range: no training run uses it
WIENER_BALANCE = 0.05  # fixed parameters on real data (no truth to tune them on)
RL_ITERATIONS = 30


def _frc_curve(est, truth, pixel_nm: float) -> dict:
    from .metrics import FRC_THRESHOLD, frc_curve, resolution_from_curve

    freq, frc = frc_curve(est, truth)
    return {"per_um": (freq / pixel_nm * 1000.0).tolist(), "frc": frc.tolist(),
            "resolution_nm": resolution_from_curve(freq, frc, pixel_nm), "threshold": FRC_THRESHOLD}


def example(bundle, input_px: int = 64) -> dict:
    """One held-out cell phantom degraded by the model's own forward model, enhanced by it and by
    the oracle baselines: {"phantom" (words), "pixel_nm" (fine), "scale", "truth", "measured",
    "estimates" {method: (C, h, w)}, "methods" {method: psnr, ssim, frc curve}}."""
    d, scale = bundle.degradation, bundle.scale
    size = max(128, input_px * scale)
    channels = 1 if bundle.elements == "any" else len(bundle.elements)
    truth = phantom("cell", size, max(channels, 1), seed=EXAMPLE_SEED)
    measured = d.apply(truth, seed=EXAMPLE_SEED)
    probe = d.probe()
    estimates = {"input": upsample(measured, scale),
                 "wiener": wiener_oracle(measured, probe, truth, scale)[0],
                 "rl_oracle": rl_oracle(measured, probe, truth, scale)[0],
                 "network": enhance(measured, bundle, device="cpu")}
    return {"phantom": f"cell phantom, seed {EXAMPLE_SEED} (held out), {size} x {size} fine pixels "
                       f"of {d.pixel_nm:g} nm, degraded by the model's own forward model",
            "pixel_nm": d.pixel_nm, "scale": scale, "truth": truth, "measured": measured,
            "estimates": estimates,
            "methods": {name: {"psnr": psnr(est, truth), "ssim": ssim(est, truth),
                               "frc": _frc_curve(est[0], truth[0], d.pixel_nm)}
                        for name, est in estimates.items()}}


def compare(reference, networks: dict, measured=None, scan_step_nm=None, side_px: int = 256,
            fits: dict | None = None) -> dict:
    """Networks (name -> bundle, all taking the reference model's input) beside the classical
    methods, each estimate on the reference's fine grid. fits (name -> enhancer.fit.Fit) gives a
    conditioned network (universal) the probe, scale and dose it runs with.

    measured None: a held-out cell phantom (side_px fine pixels) degraded by the reference's
    forward model, so a truth exists: PSNR, SSIM and FRC against it, Wiener and Richardson-Lucy
    tuned on the truth (the best they could do). measured (h, w), a real map with its step: no
    truth, Wiener and Richardson-Lucy with fixed parameters and the reference's probe,
    single-image FRC and the change of the total. Returns {"truth" (or None), "estimates"
    {name: (H, W)}, "metrics" {name: {...}}, "fine_pixel_nm"}."""
    from .baselines import richardson_lucy, wiener
    from .metrics import single_image_frc_nm, totals

    d, scale = reference.degradation, reference.scale
    probe = d.probe()
    if measured is None:
        truth = phantom("cell", side_px, 1, seed=EXAMPLE_SEED)[0]
        measured = d.apply(truth, seed=EXAMPLE_SEED)
        estimates = {"input (bicubic)": upsample(measured, scale),
                     "Wiener (oracle)": wiener_oracle(measured, probe, truth, scale)[0][0],
                     "Richardson-Lucy (oracle)": rl_oracle(measured, probe, truth, scale)[0][0]}
        fine_nm = d.pixel_nm
    else:
        truth, measured = None, np.ascontiguousarray(measured, np.float32)
        estimates = {"input (bicubic)": upsample(measured, scale),
                     f"Wiener (balance {WIENER_BALANCE:g})": wiener(measured, probe, scale, WIENER_BALANCE),
                     f"Richardson-Lucy ({RL_ITERATIONS} iterations)": richardson_lucy(
                         measured, probe, scale, RL_ITERATIONS)}
        fine_nm = scan_step_nm / scale
    def conditions(name):
        f = (fits or {}).get(name)
        return (f.probe_fwhm_px, f.scale, f.physics.counts) if f is not None and f.conditioned else None

    estimates.update({name: enhance(measured[None], b, device="cpu", conditions=conditions(name))[0]
                      for name, b in networks.items()})
    if truth is not None:
        metrics = {name: {"psnr": psnr(est, truth), "ssim": ssim(est, truth),
                          "frc_nm": frc_resolution_nm(est, truth, fine_nm),
                          "single_image_frc_nm": single_image_frc_nm(est, fine_nm)}
                   for name, est in estimates.items()}
    else:
        mean_in = totals(measured)[0]
        metrics = {name: {"single_image_frc_nm": single_image_frc_nm(est, fine_nm),
                          "total_change": totals(est)[0] / mean_in - 1 if mean_in else None}
                   for name, est in estimates.items()}
        metrics["input (bicubic)"]["single_image_frc_nm_measured"] = single_image_frc_nm(measured, scan_step_nm)
    return {"truth": truth, "estimates": estimates, "metrics": metrics, "fine_pixel_nm": fine_nm}
