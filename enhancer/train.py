"""Training by simulated degradation (the seed's Approach 2) or on paired scans (Approach 1).

Random patches that skip empty background, flips and rotations, L1 (or MSE) loss, Adam with
warm-up and a cosine schedule over the budget (minutes or steps), validation PSNR/SSIM each epoch,
the best weights kept as the bundle, a checkpoint each epoch so a stopped run resumes where it was.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import Cancelled, UserError
from .bundle import Bundle, Normalisation, load_bundle, save_bundle
from .degrade import Degradation, blur, sample
from .enhance import autocast, pick_device
from .map_scale import map_scale
from .metrics import psnr, ssim
from .network import ResidualEnhancer, upsample
from .pairs import align


class PatchSampler:
    """Aligned (degraded, truth) patch pairs, normalised the way enhancement normalises."""

    def __init__(self, highres, degradation: Degradation, patch: int, joint: bool, seed: int,
                 probe=None, coarse=None, norm: Normalisation = Normalisation()):
        self.d, self.s = degradation, degradation.scale
        self.patch = max(self.s, patch // self.s * self.s)
        self.rng = np.random.default_rng(seed)
        self.symmetric = degradation.probe_fwhm_y_nm is None and probe is None
        # A measured probe need not survive a flip or a turn: the patches are used as they are.
        self.augment = degradation.measured_probe is None
        probe = degradation.probe() if probe is None else probe
        # (truth, blurred, gain per channel, scale per channel, measured coarse scan or None)
        self.maps = []
        self.pairs = []  # Approach 1: the aligned (coarse, fine) scans, whole
        for k, m in enumerate(highres):
            m = np.asarray(m, np.float32)
            m = m[None] if m.ndim == 2 else m
            measured = None
            if coarse is not None:  # Approach 1: a real coarse scan of the same area
                pair = align(m, coarse[k], self.s)
                m, measured = pair.fine, pair.coarse
                self.pairs.append((measured, m))
            for idx in ([slice(None)] if joint else [slice(i, i + 1) for i in range(len(m))]):
                chans = m[idx]
                if chans.shape[-1] < self.patch or chans.shape[-2] < self.patch or chans.max() <= 0:
                    continue
                if measured is not None:
                    scale = np.array([map_scale(c, norm.percentile, norm.sigma_px) for c in measured[idx]], np.float32)
                    self.maps.append((chans, None, None, scale, measured[idx]))
                    continue
                blurred = blur(chans, probe)
                coarse_clean = sample(blurred, self.s, degradation.mode)
                peak = coarse_clean.reshape(len(chans), -1).max(1)
                gain = np.where(peak > 0, (degradation.counts or 0) / np.maximum(peak, 1e-12), 0)
                noisy = degradation.apply(chans, seed=int(self.rng.integers(1 << 31)), probe=probe)
                scale = np.array([map_scale(c, norm.percentile, norm.sigma_px) for c in noisy], np.float32)
                self.maps.append((chans, blurred, gain.astype(np.float32), scale, None))
        if not self.maps:
            raise UserError(f"no training map is at least {self.patch} x {self.patch} pixels with signal")
        area = np.array([m[0].shape[-1] * m[0].shape[-2] for m in self.maps], float)
        self.weights = area / area.sum()

    def _crop(self):
        truth, blurred, gain, scale, measured = self.maps[self.rng.choice(len(self.maps), p=self.weights)]
        h, w = truth.shape[-2:]
        p, s = self.patch, self.s
        for _ in range(8):  # skip empty background: retry crops whose peak is faint
            y = self.rng.integers(0, (h - p) // s + 1) * s
            x = self.rng.integers(0, (w - p) // s + 1) * s
            t = truth[:, y : y + p, x : x + p]
            if t.max() > 0.1 * scale.max():
                break
        if measured is not None:
            return t, measured[:, y // s : (y + p) // s, x // s : (x + p) // s], None, scale
        return t, blurred[:, y : y + p, x : x + p], gain, scale

    def batch(self, n: int):
        xs, ys = [], []
        for _ in range(n):
            t, b, gain, scale = self._crop()
            k = int(self.rng.integers(4)) if self.symmetric else 2 * int(self.rng.integers(2))
            flip = bool(self.rng.integers(2))
            if not self.augment:
                k, flip = 0, False
            t, b = (np.rot90(np.flip(a, -1) if flip else a, k, axes=(-2, -1)) for a in (t, b))
            if gain is None:  # a measured coarse patch: its noise is real
                xs.append(b / scale[:, None, None])
                ys.append(t / scale[:, None, None])
                continue
            coarse = sample(b, self.s, self.d.mode).astype(np.float64)
            noisy = np.empty_like(coarse)
            for c in range(len(coarse)):  # Poisson at the map's peak count, as in degrade.add_noise
                if gain[c] > 0:
                    noisy[c] = self.rng.poisson(np.clip(coarse[c], 0, None) * gain[c])
                    if self.d.read_noise:
                        noisy[c] += self.rng.normal(0, self.d.read_noise, noisy[c].shape)
                    noisy[c] /= gain[c]
                else:
                    noisy[c] = coarse[c]
            xs.append(noisy / scale[:, None, None])
            ys.append(t / scale[:, None, None])
        return (torch.from_numpy(np.stack(xs).astype(np.float32)),
                torch.from_numpy(np.ascontiguousarray(np.stack(ys)).astype(np.float32)))


def _centre_pair(coarse, fine, size, s):
    """The central size x size coarse pixels of a pair, and the fine pixels under them."""
    h, w = coarse.shape[-2:]
    ny, nx = min(size, h), min(size, w)
    y, x = (h - ny) // 2, (w - nx) // 2
    return (coarse[..., y : y + ny, x : x + nx],
            fine[..., y * s : (y + ny) * s, x * s : (x + nx) * s])


def _validation_set(highres, validation, degradation, seed):
    """(degraded, truth) pairs. Without explicit validation maps, central crops of the inputs."""
    if validation is None:
        validation = []
        for m in highres[:2]:
            m = np.asarray(m, np.float32)
            m = m[None] if m.ndim == 2 else m
            h, w = m.shape[-2:]
            c = min(128, h, w) // degradation.scale * degradation.scale
            validation.append(m[:, (h - c) // 2 : (h - c) // 2 + c, (w - c) // 2 : (w - c) // 2 + c])
    pairs = []
    for i, t in enumerate(validation):
        t = np.asarray(t, np.float32)
        t = t[None] if t.ndim == 2 else t
        h, w = (t.shape[-2] // degradation.scale) * degradation.scale, (t.shape[-1] // degradation.scale) * degradation.scale
        t = t[:, :h, :w]
        pairs.append((degradation.apply(t, seed=seed + 7919 * (i + 1)), t))
    return pairs


def evaluate(bundle: Bundle, pairs, device) -> tuple[float, float]:
    from .enhance import enhance

    ps, ss = [], []
    for degraded, truth in pairs:
        est = enhance(degraded, bundle, device=device)
        ps.append(psnr(est, truth))
        ss.append(ssim(est, truth))
    return float(np.mean(ps)), float(np.mean(ss))


LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}


def _lr(base: float, fraction: float, step: int, warmup: int) -> float:
    warm = min(1.0, (step + 1) / warmup)
    return base * warm * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, fraction))))


def _steps_done(spec) -> int | None:
    history = spec.training.get("history") or [{}]
    return spec.training.get("steps_done", history[-1].get("step"))


@dataclass
class RunArgs:
    """How a run trains, kept in its checkpoint: a resumed run goes on with these (and the
    checkpoint's architecture), whatever a later command says; only the budget may grow."""
    blocks: int = 8
    filters: int = 32
    lr: float = 1e-3
    loss: str = "l1"
    patch: int | None = None  # fine pixels; None: by scale
    batch_size: int = 16
    seed: int = 0
    eval_every: int = 200

    def check(self):
        if self.loss not in LOSSES:
            raise UserError(f"the loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        if not 0 < self.lr <= 1:
            raise UserError(f"the learning rate must be in (0, 1], not {self.lr:g}")


def _resume(ckpt: Path, dev) -> dict | None:
    """The checkpoint of a stopped run (our own file, loaded without unpickling arbitrary
    objects): weights, optimizer, progress, architecture and run arguments."""
    if not ckpt.is_file():
        return None
    saved = torch.load(ckpt, map_location=dev, weights_only=True)
    return {"network": saved["network"], "optimizer": saved["optimizer"],
            "state": json.loads(saved["state"]),
            "architecture": json.loads(saved["architecture"]) if "architecture" in saved else None,
            "args": json.loads(saved["args"]) if "args" in saved else None}


def _configuration(out_dir: Path, degradation, elements, args: RunArgs, norm: Normalisation, *,
                   maps: int, coarse, minutes, steps, source_summary, init, commands) -> dict:
    """model.json's content, less what training adds as it goes (history, metrics)."""
    joint = elements != "any"
    return {
        "name": out_dir.name,
        "elements": list(elements) if joint else "any",
        "pixel_nm": degradation.pixel_nm,
        "scale": degradation.scale,
        "degradation": degradation.to_dict(),
        "normalisation": asdict(norm),  # enhance reads this back (bundle.Normalisation)
        "training": {"maps": maps, "approach": "paired scans" if coarse is not None else
                     "simulated degradation", "patch": args.patch, "batch": args.batch_size,
                     "lr": args.lr, "loss": args.loss, "seed": args.seed, "minutes": minutes,
                     "steps": steps, "data": source_summary,
                     "initialised_from": init and {"model": init.name, "metrics": init.spec.metrics,
                                                   "steps": _steps_done(init.spec)}},
        "command": " && ".join(commands) or None,
    }


def _loop(net, opt, sampler, pairs, config, state, args: RunArgs, degradation, out_dir, dev, *,
          fraction, warmup, progress, cancel, checkpoint) -> None:
    """Train until the budget is spent: each eval_every steps, validate, keep the best bundle,
    checkpoint and report."""
    losses = []
    while fraction() < 1.0:
        t0 = time.monotonic()
        net.train()
        for g in opt.param_groups:
            g["lr"] = _lr(args.lr, fraction(), state["step"], warmup)
        x, y = sampler.batch(args.batch_size)
        x, y = x.to(dev), y.to(dev)
        with autocast(dev):
            pred = net(upsample(x, degradation.scale))
        error = LOSSES[args.loss](pred.float(), y)
        opt.zero_grad(set_to_none=True)
        error.backward()
        opt.step()
        losses.append(error.item())
        state["step"] += 1
        state["elapsed"] += time.monotonic() - t0
        if state["step"] % args.eval_every == 0 or fraction() >= 1.0:
            val_psnr, val_ssim = evaluate(Bundle(net, config), pairs, dev)
            record = {"epoch": len(state["history"]) + 1, "step": state["step"],
                      "loss": float(np.mean(losses)), "val_psnr": val_psnr, "val_ssim": val_ssim,
                      "minutes": state["elapsed"] / 60}
            losses = []
            state["history"].append(record)
            if val_psnr > state["best_psnr"]:
                state["best_psnr"] = val_psnr
                config["training"]["history"] = state["history"]
                config["metrics"] = {"validation_psnr": val_psnr, "validation_ssim": val_ssim}
                save_bundle(out_dir, net, config)
            checkpoint()
            if progress:
                progress({"fraction": min(1.0, fraction()), **record})
        if cancel and cancel():
            checkpoint()
            raise Cancelled("training cancelled")


def train(highres, degradation: Degradation, out_dir, *, minutes=None, steps=None, blocks=8,
          filters=32, device="auto", seed=0, progress=None, cancel=None, elements="any",
          validation=None, patch=None, batch_size=16, lr=1e-3, eval_every=200,
          source_summary=None, command=None, probe=None, coarse=None, init=None, loss="l1") -> Bundle:
    """Train a model; returns the best bundle, written to out_dir (model.safetensors + model.json).

    coarse: real coarse scans of the same areas as `highres`, one each (Approach 1); they are
    aligned to their fine scans and used as the inputs instead of simulated degradations.
    init: a Bundle to start from (fine-tuning) instead of the identity; its architecture is kept.
    loss: "l1" (sharper, the default) or "mse": MSE's optimum is the mean over what the measurement
    leaves uncertain, which is what PSNR scores; L1 commits to one guess (e.g. a speck's position).
    A checkpoint in out_dir resumes its run: its architecture and RunArgs win over these.
    """
    if coarse is not None and len(coarse) != len(highres):
        raise UserError(f"{len(coarse)} coarse scans for {len(highres)} fine ones: give one of each per area")
    if (minutes is None) == (steps is None):
        raise UserError("give a budget: either minutes or steps")
    if (minutes is not None and minutes <= 0) or (steps is not None and steps <= 0):
        raise UserError("the training budget must be positive")
    out_dir = Path(out_dir)
    ckpt = out_dir / "checkpoint.pt"
    dev = pick_device(device)
    saved = _resume(ckpt, dev)
    args = RunArgs(blocks, filters, lr, loss, patch, batch_size, seed, eval_every)
    if saved and saved["args"]:
        args = RunArgs(**saved["args"])
    args.check()
    args.patch = args.patch or (64 if degradation.scale == 1 else max(96, 16 * degradation.scale))
    torch.manual_seed(args.seed)
    norm = init.spec.normalisation if init is not None else Normalisation()
    joint = elements != "any"
    sampler = PatchSampler(highres, degradation, args.patch, joint, args.seed, probe, coarse, norm)
    if coarse is not None and validation is None:  # central crops of the real pairs
        pairs = [_centre_pair(c, f, 128 // degradation.scale, degradation.scale) for c, f in sampler.pairs]
    else:
        pairs = _validation_set(highres, validation, degradation, args.seed)
    channels = sampler.maps[0][0].shape[0]
    if init is not None:
        if init.network.args["channels"] != channels or init.scale != degradation.scale:
            raise UserError(f"model {init.name!r} cannot start this training: it takes "
                            f"{init.network.args['channels']} channel(s) at scale {init.scale}, "
                            f"this run has {channels} at scale {degradation.scale}")
        args.blocks, args.filters = init.network.args["blocks"], init.network.args["filters"]
    arch = saved["architecture"] if saved and saved["architecture"] else \
        {"channels": channels, "blocks": args.blocks, "filters": args.filters}
    net = ResidualEnhancer(**arch).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    state = {"step": 0, "elapsed": 0.0, "best_psnr": -1e9, "history": []}
    if saved:
        net.load_state_dict(saved["network"])
        opt.load_state_dict(saved["optimizer"])
        state = saved["state"]
        sampler.rng = np.random.default_rng(args.seed + state["step"])
        if "commands" not in state and (out_dir / "model.json").is_file():  # older checkpoints
            state["commands"] = [json.loads((out_dir / "model.json").read_text()).get("command")]
    elif init is not None:
        net.load_state_dict(init.network.state_dict())
    # Every command that contributed (a run can be resumed with a larger budget, or start from
    # another model's weights) is recorded, in order.
    if init is not None and "commands" not in state:
        state["commands"] = (init.spec.command or "").split(" && ")
    state["commands"] = [c for c in state.get("commands", []) if c] + ([command] if command else [])
    config = _configuration(out_dir, degradation, elements, args, norm, maps=len(highres), coarse=coarse,
                            minutes=minutes, steps=steps, source_summary=source_summary, init=init,
                            commands=state["commands"])
    base_in = [psnr(upsample(torch.from_numpy(d[None]), degradation.scale)[0].numpy(), t) for d, t in pairs]
    config["training"]["validation_input_psnr"] = float(np.mean(base_in))

    def fraction():
        return state["step"] / steps if steps is not None else state["elapsed"] / (60 * minutes)

    def checkpoint():
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"network": net.state_dict(), "optimizer": opt.state_dict(),
                    "state": json.dumps(state), "architecture": json.dumps(dict(net.args)),
                    "args": json.dumps(asdict(args))}, tmp)
        tmp.replace(ckpt)

    warmup = min(200, max(1, steps // 20)) if steps else 200
    _loop(net, opt, sampler, pairs, config, state, args, degradation, out_dir, dev, fraction=fraction,
          warmup=warmup, progress=progress, cancel=cancel, checkpoint=checkpoint)
    # The bundle on disk is the best epoch so far (this run's or, resumed, an earlier one's);
    # record the full history and every command in it.
    if not (out_dir / "model.json").is_file():
        save_bundle(out_dir, net, config)
    kept = load_bundle(out_dir)
    kept.config["training"].update(history=state["history"], steps_done=state["step"],
                                   minutes_done=state["elapsed"] / 60)
    kept.config["command"] = config["command"]
    return Bundle(kept.network, kept.config, save_bundle(out_dir, kept.network, kept.config))
