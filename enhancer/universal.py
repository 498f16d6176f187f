"""The `universal` model: one network for any probe (x, y), scan step and dose.

SRMD's idea (Zhang et al. 2018): the degradation is an input. Each map goes in with a vector
(probe FWHM x and y in output pixels, scale, noise level) that the network sees as constant planes
beside the map. Training draws a new degradation for every patch from the ranges below, through
the one forward model's rules (Gaussian probe, box dwell, Poisson at a peak count), on phantoms of
every kind. Why not USRNet's unfolded data term or DPIR's plug-and-play prior: both need many
network passes per map (8 and 24-40 iterations); on CPU workers one pass is what a map can
afford. Their data term comes after the one pass instead (refine.py: Richardson-Lucy from the
network's output to the data's noise), and the chi^2 consistency map checks the result.

    python -m enhancer.universal --out OUT --steps 1100 --init protocol-b --eval-every 100
resumes from `OUT/checkpoint.pt` when it exists (same command, same arguments).
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import UserError
from .bundle import Bundle, load_bundle, save_bundle
from .conditions import BALANCE, CONDITION_CHANNELS, COUNTS, PROBE_PX, SCALES, condition, wiener_start
from .degrade import FWHM_PER_SIGMA
from .network import ResidualEnhancer

PATCH = 72  # fine pixels; divisible by every scale
KINDS = ["mixed", "mixed", "aggregate", "aggregate", "star", "particles", "bars", "cell", "texture"]
VALIDATION_SEED = 1_500_000  # below bench.HELD_OUT_SEED, above every training seed


def conditions_config() -> dict:
    """The ranges the model was trained for: the fit rule (enhancer/fit.py) reads these."""
    return {"probe_fwhm_px": list(PROBE_PX), "scale": [SCALES[0], SCALES[-1]], "counts": list(COUNTS),
            "vector": "probe_fwhm_x_px/8, probe_fwhm_y_px/8, scale/4, sqrt(20/counts)",
            "start": f"Wiener filter of the stated probe and dwell, regulariser {BALANCE} / sqrt(counts)"}


def _gauss_blur(m: torch.Tensor, fwhm_x: float, fwhm_y: float) -> torch.Tensor:
    """(N, 1, H, W) blurred by a separable Gaussian, reflect boundary (as degrade.blur)."""
    for fwhm, dim in ((fwhm_y, 2), (fwhm_x, 3)):
        if fwhm <= 0:
            continue
        sigma = fwhm / FWHM_PER_SIGMA
        r = max(1, int(math.ceil(4 * sigma)))
        t = torch.arange(-r, r + 1, dtype=torch.float32)
        k = torch.exp(-0.5 * (t / sigma) ** 2)
        k = k / k.sum()
        shape, pad = ((1, 1, -1, 1), (0, 0, r, r)) if dim == 2 else ((1, 1, 1, -1), (r, r, 0, 0))
        m = F.conv2d(F.pad(m, pad, mode="reflect"), k.view(shape))
    return m


def _normaliser(g: torch.Tensor) -> float:
    """map_scale's rule (99.9th percentile after a 1-pixel smoothing), in torch."""
    s = float(torch.quantile(_gauss_blur(g, FWHM_PER_SIGMA, FWHM_PER_SIGMA).flatten(), 0.999))
    return s if s > 0 else float(max(g.abs().max(), 1e-12))


class Sampler:
    """(the Wiener start of a patch on the fine grid, condition, truth patch), a new degradation
    each; the start is computed on the whole map and then cut, as enhancement computes it."""

    def __init__(self, maps: list[np.ndarray], seed: int, patch: int = PATCH):
        self.patch = patch
        self.maps = [torch.from_numpy(np.ascontiguousarray(m, np.float32))[None, None] for m in maps]
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(seed)

    def draw_condition(self):
        r = self.rng
        fx = math.exp(r.uniform(*np.log(PROBE_PX)))
        fy = fx if r.random() < 0.4 else math.exp(r.uniform(*np.log(PROBE_PX)))
        return (fx, fy), int(r.choice(SCALES)), math.exp(r.uniform(*np.log(COUNTS)))

    def one(self):
        r = self.rng
        m = self.maps[r.integers(len(self.maps))]
        m = torch.rot90(m.flip(-1) if r.integers(2) else m, int(r.integers(4)), (-2, -1))
        probe, s, counts = self.draw_condition()
        if r.random() < 0.3:  # a real fine scan is itself seen through a (smaller) probe
            u = r.uniform(0, 0.4)
            m = _gauss_blur(m, u * probe[0], u * probe[1])
        h, w = (m.shape[-2] // s) * s, (m.shape[-1] // s) * s
        m = m[..., :h, :w]
        clean = F.avg_pool2d(_gauss_blur(m, *probe), s)
        gain = counts / max(float(clean.max()), 1e-12)
        g = torch.poisson(clean.clamp(min=0) * gain, generator=self.gen) / gain
        norm = _normaliser(g)
        start = wiener_start(g / norm, probe, s, counts)
        p = self.patch // s
        for _ in range(8):  # skip empty background
            y, x = int(r.integers(0, g.shape[-2] - p + 1)), int(r.integers(0, g.shape[-1] - p + 1))
            truth = m[..., y * s : (y + p) * s, x * s : (x + p) * s]
            if truth.max() > 0.1 * norm:
                break
        fine = start[..., y * s : (y + p) * s, x * s : (x + p) * s]
        return fine[0], condition(probe, s, counts), truth[0] / norm

    def batch(self, n: int):
        xs, cs, ys = zip(*(self.one() for _ in range(n)))
        return torch.stack(xs), torch.stack(cs), torch.stack(ys)


def validation_set(quick=False):
    """Fixed (coarse, probe_px, scale, counts, truth) cases over the ranges, from held-out seeds."""
    from .degrade import Degradation
    from .phantoms import phantom

    cases = [((2.0, 2.0), 1, 500.0), ((3.0, 3.0), 2, 5000.0), ((5.0, 5.0), 4, 500.0),
             ((8.0, 8.0), 2, 50.0), ((2.0, 4.0), 4, 5000.0), ((6.0, 3.0), 1, 50.0)]
    kinds = ("cell", "aggregate", "particles") if not quick else ("cell",)
    out = []
    for i, (probe, s, counts) in enumerate(cases):
        truth = phantom(kinds[i % len(kinds)], 96, 2, seed=VALIDATION_SEED + i)
        d = Degradation(probe[0], 1.0, s, counts, probe_fwhm_y_nm=probe[1])
        out.append((d.apply(truth, seed=VALIDATION_SEED + i), probe, s, counts, truth))
    return out


def evaluate(bundle: Bundle, cases) -> float:
    from .enhance import enhance
    from .metrics import psnr

    return float(np.mean([psnr(enhance(g, bundle, conditions=(probe, s, counts)), t)
                          for g, probe, s, counts, t in cases]))


def _network(init, blocks, filters) -> ResidualEnhancer:
    if init is None:
        return ResidualEnhancer(1, blocks, filters, CONDITION_CHANNELS)
    source = load_bundle(init).network
    args = source.args
    if args["channels"] != 1:
        raise UserError(f"model {init!r} is element-joint; the universal model starts from an element-agnostic one")
    net = ResidualEnhancer(1, args["blocks"], args["filters"], CONDITION_CHANNELS)
    state = source.state_dict()
    if args.get("condition_channels") == CONDITION_CHANNELS:  # a universal model: train it further
        net.load_state_dict(state)
        return net
    w = state["input_conv.weight"]  # the map's channel keeps its weights; the condition starts at 0
    state["input_conv.weight"] = torch.cat([w, torch.zeros(w.shape[0], CONDITION_CHANNELS, *w.shape[2:])], 1)
    net.load_state_dict(state)
    # The last layer starts at zero: the network starts as its input, the Wiener estimate (the
    # source's own residual was learnt on an interpolated scan and would sharpen twice).
    torch.nn.init.zeros_(net.output_conv.weight)
    torch.nn.init.zeros_(net.output_conv.bias)
    return net


def _lr(base, step, steps, warmup=200):
    return base * min(1.0, (step + 1) / warmup) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / steps))))


def _log_mse(pred, truth):
    """The mean over patches of log MSE: the mean PSNR, which the benchmark scores per condition.
    A plain MSE is ruled by the hard patches (wide probes, low doses: errors 10x larger) and
    bought their gain with losses on the easy ones (seen on validation)."""
    return torch.log(((pred - truth) ** 2).mean(dim=(1, 2, 3)) + 1e-6).mean()


LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss, "psnr": _log_mse}


def _train_mode(net):
    """Training mode with every BatchNorm frozen as the fixed affine map it is at inference: a
    batch mixes probes, steps and doses, so its statistics are not any one map's, and a network
    that learnt on them lost 0.4 dB on validation in 450 steps where it had started."""
    net.train()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()


def train(out_dir, *, steps, init=None, blocks=8, filters=32, batch=16, lr=2e-4, phantoms=192,
          seed=11, eval_every=250, patch=PATCH, loss="psnr", command=None, progress=print):
    from .enhance import autocast
    from .phantoms import training_set

    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    net = _network(init, blocks, filters)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    ckpt = out_dir / "checkpoint.pt"
    state = {"step": 0, "seconds": 0.0, "best": -1e9, "history": [], "commands": []}
    if ckpt.is_file():  # resume: our own file, loaded without unpickling arbitrary objects
        saved = torch.load(ckpt, map_location="cpu", weights_only=True)
        net.load_state_dict(saved["network"])
        opt.load_state_dict(saved["optimizer"])
        state = json.loads(saved["state"])
    if command and command not in state["commands"]:
        state["commands"].append(command)
    maps = [el for m in training_set(phantoms, KINDS, 192, seed, gamma=(1.0, 3.0)) for el in m]
    sampler = Sampler(maps, seed + state["step"], patch)
    cases = validation_set()
    config = {"name": out_dir.name, "elements": "any", "conditions": conditions_config(),
              "normalisation": {"kind": "smoothed-percentile", "percentile": 99.9, "sigma_px": 1.0,
                                "inverse": "multiply back, clip at 0, restore each element's mean"},
              "training": {"approach": "simulated degradation, a new one per patch", "patch": patch,
                           "batch": batch, "lr": lr, "loss": loss, "seed": seed,
                           "batchnorm": "frozen (inference statistics)", "steps": steps,
                           "data": {"phantoms": phantoms, "phantom_size": 192, "phantom_kinds": KINDS,
                                    "phantom_gamma": [1.0, 3.0], "fine_probe": "30% of the patches: 0-0.4x the probe",
                                    "fine_scans": "none: the only real fine scans here are the benchmark's"},
                           "initialised_from": init}}

    def evaluate_and_keep():
        net.eval()
        score = evaluate(Bundle(net, config), cases)
        state["history"].append({"step": state["step"], "loss": float(np.mean(losses)) if losses else None,
                                 "val_psnr": score, "minutes": state["seconds"] / 60})
        losses.clear()
        if score > state["best"]:  # the start itself counts: training never ships worse than it
            state["best"] = score
            config["training"].update(history=state["history"], steps_done=state["step"])
            config["metrics"] = {"validation_psnr": score}
            config["command"] = " && ".join(state["commands"]) or None
            save_bundle(out_dir, net, config)
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"network": net.state_dict(), "optimizer": opt.state_dict(), "state": json.dumps(state)}, tmp)
        tmp.replace(ckpt)
        progress(json.dumps(state["history"][-1]), flush=True)

    losses = []
    if state["step"] == 0:
        evaluate_and_keep()
    while state["step"] < steps:
        t0 = time.monotonic()
        _train_mode(net)
        for g in opt.param_groups:
            g["lr"] = _lr(lr, state["step"], steps)
        x, c, y = sampler.batch(batch)
        with autocast(torch.device("cpu")):
            pred = net(x, c)
        error = LOSSES[loss](pred.float(), y)
        opt.zero_grad(set_to_none=True)
        error.backward()
        opt.step()
        state["step"] += 1
        state["seconds"] += time.monotonic() - t0
        losses.append(error.item())
        if state["step"] % eval_every == 0 or state["step"] >= steps:
            evaluate_and_keep()
    return load_bundle(out_dir)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m enhancer.universal", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--init", help="start from this element-agnostic model's weights")
    p.add_argument("--blocks", type=int, default=8)
    p.add_argument("--filters", type=int, default=32)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--loss", choices=sorted(LOSSES), default="psnr",
                   help="psnr (default: the mean over patches of log MSE), mse or l1")
    p.add_argument("--phantoms", type=int, default=192)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--patch", type=int, default=PATCH, help="fine pixels, a multiple of 12 (every scale)")
    a = p.parse_args(argv)
    if a.patch % 12 or a.patch < 24:
        p.error("--patch must be a multiple of 12 (so every scale 1-4 divides it), at least 24")
    command = "python -m enhancer.universal " + shlex.join(sys.argv[1:] if argv is None else argv)
    train(a.out, steps=a.steps, init=a.init, blocks=a.blocks, filters=a.filters, batch=a.batch, lr=a.lr,
          phantoms=a.phantoms, seed=a.seed, eval_every=a.eval_every, patch=a.patch, loss=a.loss,
          command=command)


if __name__ == "__main__":
    main()
