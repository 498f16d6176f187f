"""`python -m enhancer bench --speed`: inference and training throughput, and peak memory.

Every number is a ratio against a baseline measured in the same run: the naive eager fp32
forward of the same network, and this machine's own matmul peaks (fp32 and bf16).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from .conditions import condition
from .bundle import load_bundle
from .degrade import Degradation
from .enhance import BATCH, TILE, _freed_memory_held, _Runner, _tile_length, autocast, enhance
from .metrics import psnr
from .network import ResidualEnhancer
from .phantoms import phantom


def _rate(fn, seconds=3.0):
    """Calls per second of fn, after a warm-up call, over at least `seconds`."""
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 2:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def matmul_peak(dtype, n=2048):
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return 2 * n**3 * _rate(lambda: a @ b, 2.0) / 1e9


def inference(bundle, tile=TILE, batch=BATCH):
    """GFLOP/s on the same fine-grid tiles of: the naive eager fp32 forward, the enhancement's
    eager fast path (BN folded, channels_last, bf16 autocast where the CPU is fast at it) and
    that path compiled: the tile and batch enhance() uses."""
    flop = bundle.network.flops_per_pixel() * batch * tile * tile / 1e9
    net = bundle.network.eval()
    runner = _Runner(bundle, "cpu", tile, batch, scale=_scale(bundle))
    if bundle.conditions:  # the universal model: a mid-range condition (the cost is the same for any)
        runner.condition = condition((4.0, 4.0), 4, 500.0)[None]
    rates = {}
    with torch.inference_mode(), _freed_memory_held(True):  # as enhance() runs it
        x = torch.rand(batch, bundle.network.args["channels"], tile, tile)
        cond = None if runner.condition is None else runner.condition.expand(batch, -1)
        rates["naive_fp32_gflops"] = flop * _rate(lambda: net(x, cond))
        fine = x.contiguous(memory_format=torch.channels_last)
        with autocast(runner.device):
            rates["eager_fast_gflops"] = flop * _rate(lambda: runner._forward(fine, compiled=False))
            runner.compile()
            t0 = time.perf_counter()
            runner._forward(fine)
            rates["compile_seconds"] = time.perf_counter() - t0
            if runner.compiled is not None:  # None: compiling failed here (logged), eager it is
                rates["compiled_gflops"] = flop * _rate(lambda: runner._forward(fine))
    return rates


def quality_change(bundle, compile):
    """PSNR (dB) of the fast path minus the plain fp32 path, on a held-out phantom."""
    truth = phantom("cell", 256, 2, seed=3_000_000)
    if bundle.conditions:
        d, kw = Degradation(4.0, 1.0, 4, 500.0), {"conditions": ((4.0, 4.0), 4, 500.0)}
    else:
        d, kw = bundle.degradation, {}
    g = d.apply(truth, seed=1)
    # batch=1: every tile is a full batch, so with compile every tile takes the compiled network
    fast = enhance(g, bundle, compile=compile, batch=1, **kw)
    return psnr(fast, truth) - psnr(enhance(g, bundle, fast=False, **kw), truth)


def whole_map(bundle, precision="fp32", side=2048):
    """GFLOP/s of enhance() itself on a 1 x side x side map (output side x side: scale 1), the
    start (the universal model's Wiener filter), tiling and the inverse normalisation included;
    eager, and compiled (its compile time included, inductor's on-disk cache warm); for a
    conditioned model the data step (refine.py) is left out of those two, which run on noise it
    would iterate to its cap, and timed with the network on a phantom it fits. On a shared
    machine the peak moves with the load: it is measured just before and just after, and each
    rate is given as a fraction of their mean."""
    maps = np.random.default_rng(0).random((1, side, side), dtype=np.float32)
    # The network's rate: the data step after it (refine.py) has its own cost, and on this random
    # map, which no dose explains, it would run to its cap (docs/benchmarks.md gives its cost).
    kw = {"conditions": ((3.0, 3.0), 1, 500.0), "refine": False} if bundle.conditions else {}
    s = 1 if bundle.conditions else bundle.scale
    flop = bundle.network.flops_per_pixel() * side * side * s * s / 1e9
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    out = {}
    r = _Runner(bundle, "cpu", TILE, BATCH, scale=s)
    n = _tile_length(side, r.tile, r.margin)  # one tile of the whole map's shape:
    enhance(maps[:, :n, :n], bundle, compile=True, **kw)  # warms inductor's on-disk cache for it
    before = matmul_peak(dtype)
    for name, compiled in (("eager", False), ("compiled", True)):
        t0 = time.perf_counter()
        enhance(maps, bundle, compile=compiled, **kw)
        out[f"{name}_gflops"] = flop / (time.perf_counter() - t0)
    names = ["eager", "compiled"]
    if bundle.conditions:  # the whole enhancement, data step included, on a map a dose explains:
        # a phantom at the highest dose of the bench's smallest probe, where the step runs longest
        from .degrade import Degradation
        from .phantoms import phantom

        scan = Degradation(2.0, 1.0, 1, 5000.0).apply(phantom("mixed", side, 1, seed=3), seed=1)
        t0 = time.perf_counter()
        enhance(scan, bundle, conditions=((2.0, 2.0), 1, 5000.0))
        out["eager_with_data_step_gflops"] = flop / (time.perf_counter() - t0)  # the network's FLOPs
        names.append("eager_with_data_step")
    out[f"{precision}_matmul_gflops_before_after"] = [before, matmul_peak(dtype)]
    peak = sum(out[f"{precision}_matmul_gflops_before_after"]) / 2
    out.update({f"{name}_fraction_of_matmul_peak": out[f"{name}_gflops"] / peak for name in names})
    return out


def _scale(bundle) -> int:
    return 4 if bundle.conditions else bundle.scale


def training(steps=6, batch=16, patch=64):
    """Samples/s of a naive fp32 training loop vs the bf16-autocast loop train.py runs."""
    rates = {}
    for name, bf16 in (("naive_fp32", False), ("bf16_autocast", True)):
        torch.manual_seed(0)
        net = ResidualEnhancer(1, 8, 32)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        x, y = torch.rand(batch, 1, patch, patch), torch.rand(batch, 1, patch, patch)

        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = net(x)
            loss = F.l1_loss(out.float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        rates[name] = batch * _rate(step, 4.0)
    return rates


# VmHWM, not getrusage's ru_maxrss: Linux carries a forked child's maxrss over from its parent
# (the parent's size at fork survives exec), which would report the benchmark's own footprint.
MEMORY_CHILD = """
import sys, numpy as np, torch
from enhancer.bundle import load_bundle
from enhancer.enhance import enhance
e, n = int(sys.argv[2]), int(sys.argv[3])
b = load_bundle(sys.argv[1])
maps = np.random.default_rng(0).random((e, n, n), dtype=np.float32)
enhance(maps, b, conditions=((3.0, 3.0), 1, 500.0) if b.conditions else None)  # universal: same grid
print(int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024)
"""


def peak_rss_mb(model, elements, side):
    """Peak resident memory (MB) of a fresh process enhancing an (elements, side, side) map."""
    r = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(model), str(elements), str(side)],
                       capture_output=True, text=True, timeout=3600,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if r.returncode:
        return {"error": r.stderr.strip().splitlines()[-1]}
    return {"peak_rss_mb": round(float(r.stdout.split()[-1])),
            "input_mb": round(elements * side * side * 4 / 2**20)}


def run_speed(args, model_names):
    report = {"threads": torch.get_num_threads(), "torch": torch.__version__,
              "matmul_gflops": {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}}
    # The peak of the precision enhance() runs in here: bf16 with AVX512-BF16/AMX, else fp32.
    bf16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    report["precision"] = "bf16" if bf16 else "fp32"
    dtype = torch.bfloat16 if bf16 else torch.float32
    for name in dict.fromkeys(model_names):
        b = load_bundle(name)
        before = matmul_peak(dtype)
        rates = inference(b)
        rates[f"{report['precision']}_matmul_gflops_before_after"] = [before, matmul_peak(dtype)]
        peak = sum(rates[f"{report['precision']}_matmul_gflops_before_after"]) / 2  # the load moves it
        # Large maps take the compiled path (enhance.COMPILE_MIN_GFLOP), small ones the eager one.
        best = rates.get("compiled_gflops", rates["eager_fast_gflops"])
        report[b.name] = {
            "flops_per_pixel": b.network.flops_per_pixel(), **rates, "enhance_gflops": best,
            "speedup_vs_naive": best / rates["naive_fp32_gflops"],
            "eager_speedup_vs_naive": rates["eager_fast_gflops"] / rates["naive_fp32_gflops"],
            "fraction_of_matmul_peak": best / peak,
            "whole_map_2048": whole_map(b, report["precision"]),
            "psnr_change_db": quality_change(b, compile=True),
            "eager_psnr_change_db": quality_change(b, compile=False),
        }
        print(json.dumps({b.name: report[b.name]}), flush=True)
    report["training_samples_per_s"] = training()
    first = model_names[0]
    sides = [(1, 1024), (1, 2048), (10, 4000)] if not args.quick else [(1, 256), (1, 512)]
    if load_bundle(first).conditions and not args.quick:  # 10 x 4000^2 takes most of an hour on 2 cores
        sides = [(1, 1024), (1, 2048), (1, 4096)]
    report["memory"] = {f"{e}x{n}x{n}": peak_rss_mb(first, e, n) for e, n in sides}
    print(json.dumps(report, indent=2))
    return report
