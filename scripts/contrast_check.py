"""Network vs oracle Richardson-Lucy on held-out phantoms made high-contrast (raised to a power)
or put on a flat pedestal, case B. The numbers behind "dynamic range is the weakness" in
docs/benchmarks.md:

    .venv/bin/python scripts/contrast_check.py protocol-b
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from enhancer.baselines import rl_oracle  # noqa: E402
from enhancer.bench import CASES  # noqa: E402
from enhancer.bundle import load_bundle  # noqa: E402
from enhancer.degrade import Degradation  # noqa: E402
from enhancer.enhance import enhance  # noqa: E402
from enhancer.metrics import psnr  # noqa: E402
from enhancer.phantoms import contrast, phantom  # noqa: E402


def main(model):
    pixel, fwhm, scale, counts, _ = CASES["B"]
    d = Degradation(fwhm, pixel, scale, counts)
    b = load_bundle(model)
    trials = [(k, g, 0.0) for k in ("particles", "aggregate") for g in (1, 2, 3)] + \
             [("texture", 1, o) for o in (0.0, 3.0)]
    for kind, gamma, offset in trials:
        diffs = []
        for s in range(2):
            t = contrast(phantom(kind, 160, 3, seed=3_000_000 + s), gamma, offset)
            g = d.apply(t, seed=s)
            diffs.append(psnr(enhance(g, b), t) - psnr(rl_oracle(g, d.probe(), t, scale)[0], t))
        print(f"{kind:10s} gamma {gamma} pedestal {offset:g}: network - RL-oracle {np.mean(diffs):+.2f} dB",
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "protocol-b")
