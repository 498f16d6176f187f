"""GPU check: on a CUDA machine, train for a fixed budget and enhance a large map, printing
throughput. Run it whenever a GPU is at hand and record what it prints in docs/benchmarks.md:

    .venv/bin/python scripts/gpu_check.py --minutes 3 --side 4096

Exits 3 (and says so) when no CUDA device is present, so it never passes quietly on a CPU.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from enhancer.degrade import Degradation  # noqa: E402
from enhancer.enhance import enhance  # noqa: E402
from enhancer.phantoms import phantom  # noqa: E402
from enhancer.speed import matmul_peak  # noqa: E402
from enhancer.train import train  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--side", type=int, default=4096, help="side of the map to enhance")
    p.add_argument("--blocks", type=int, default=8)
    p.add_argument("--filters", type=int, default=32)
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: this check needs a GPU", file=sys.stderr)
        return 3
    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    a, b = torch.randn(8192, 8192, device="cuda"), torch.randn(8192, 8192, device="cuda")
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(10):
        a.bfloat16() @ b.bfloat16()
    torch.cuda.synchronize()
    report["bf16_matmul_tflops"] = 10 * 2 * 8192**3 / (time.perf_counter() - t0) / 1e12
    d = Degradation(200, 50, scale=1, counts=1000)
    maps = [phantom("mixed", 256, 3, seed=i) for i in range(32)]
    with tempfile.TemporaryDirectory() as tmp:
        bundle = train(maps, d, Path(tmp) / "m", minutes=args.minutes, blocks=args.blocks,
                       filters=args.filters, device="cuda", batch_size=64, eval_every=500)
        hist = bundle.config["training"]["history"]
        report["train_steps"] = hist[-1]["step"]
        report["train_samples_per_s"] = hist[-1]["step"] * 64 / (hist[-1]["minutes"] * 60)
        report["val_psnr"] = bundle.config["metrics"]["validation_psnr"]
        report["val_input_psnr"] = bundle.config["training"]["validation_input_psnr"]
        big = np.random.default_rng(0).random((1, args.side, args.side), dtype=np.float32)
        enhance(big[:, :512, :512], bundle, device="cuda")  # warm-up
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        enhance(big, bundle, device="cuda", tile=1024, batch=8)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        report["enhance_megapixels_per_s"] = args.side**2 / seconds / 1e6
        report["enhance_tflops"] = bundle.network.flops_per_pixel() * args.side**2 / seconds / 1e12
        report["peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
