"""Where case B's FRC resolution stops on each held-out map, and why.

For the input, RL-oracle and the network: the period (nm) where the FRC with the truth first falls
below 1/7, on the protocol's noisy input and on a noiseless one, and the ring-mean of the forward
model's transfer function (probe x dwell average) at that period. A wave whose period equals the
scan step is sampled at the same phase at every point and averages to zero over each dwell, so it
leaves no trace in the coarse map; only a prior can put it back (docs/benchmarks.md, "B's FRC
target is out of reach").

Usage: .venv/bin/python scripts/frc_check.py [MODEL ...]   (default: the shipped protocol-b)
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from enhancer.baselines import rl_oracle, upsample  # noqa: E402
from enhancer.bench import CASES, held_out_set  # noqa: E402
from enhancer.bundle import load_bundle  # noqa: E402
from enhancer.degrade import Degradation  # noqa: E402
from enhancer.enhance import enhance  # noqa: E402
from enhancer.metrics import frc_curve, resolution_from_curve, ring_sum  # noqa: E402


def crossings(est, truth, pixel):
    return [resolution_from_curve(*frc_curve(e, t), pixel) for e, t in zip(est, truth)]


def at_period(ring_means, n, pixel, period):
    """The value of a ring profile (rings 1..n/2 of an n x n spectrum) at a period in nm."""
    return ring_means[min(len(ring_means), round(n * pixel / period)) - 1]


def main(models):
    pixel, fwhm, scale, counts, default_model = CASES["B"]
    forward, step = Degradation(fwhm, pixel, scale), scale * pixel
    bundles = [(Path(m).name, load_bundle(m)) for m in (models or [default_model])]
    methods = ["input", "rl_oracle"] + [name for name, _ in bundles]
    print(f"case B: probe {fwhm:.0f} nm, pixel {pixel:.0f} nm, step {step:.0f} nm")
    t = ring_sum(forward.transfer(192), mean=True)
    print("the forward model's transfer, ring mean on 192 x 192, at a period of " + ", ".join(
        f"{p} nm: {at_period(t, 192, pixel, p):.1e}" for p in (400, 313, 250, 200, 160, 125, 100)))
    print(f"FRC period (nm) per element: noisy (peak {counts:.0f}) | noiseless | transfer at the noisy period")
    periods = {(m, noisy): [] for m in methods for noisy in (True, False)}
    aggregate = []  # whether each element map is an aggregate's
    for i, (name, truth) in enumerate(held_out_set()):
        h, w = (np.array(truth.shape[-2:]) // scale) * scale
        truth, n = truth[:, :h, :w], min(h, w)
        transfer = ring_sum(forward.transfer(n), mean=True)
        row = {}
        for noisy in (True, False):
            g = Degradation(fwhm, pixel, scale, counts if noisy else None).apply(truth, seed=i)
            est = {"input": upsample(g, scale), "rl_oracle": rl_oracle(g, forward.probe(), truth, scale)[0]}
            est.update({m: enhance(g, b) for m, b in bundles})
            for m in methods:
                row[(m, noisy)] = crossings(est[m], truth, pixel)
                periods[(m, noisy)] += row[(m, noisy)]
        for m in methods:
            at = [at_period(transfer, n, pixel, p) for p in row[(m, True)]]
            print(f"{name:12s} {m:12s} {' '.join(f'{p:4.0f}' for p in row[(m, True)])} | "
                  f"{' '.join(f'{p:4.0f}' for p in row[(m, False)])} | {' '.join(f'{a:.3f}' for a in at)}")
        aggregate += [name.startswith("aggregate")] * len(truth)
    total = len(periods[(methods[0], True)])
    print(f"\nmean over {total} element maps (the bench's FRC nm); how many cross within 10% of the step:")
    for m in methods:
        near = sum(abs(p - step) <= 0.1 * step for p in periods[(m, True)])
        print(f"{m:12s} noisy {np.mean(periods[(m, True)]):4.0f}  noiseless {np.mean(periods[(m, False)]):4.0f}"
              f"  near the {step:.0f} nm step: {near}/{total}")
    print(f"\nthe target's arithmetic (noisy): the mean without the aggregates, and with every aggregate "
          f"element at the {2 * pixel:.0f} nm limit:")
    for m in methods:
        p = np.array(periods[(m, True)])
        capped = np.where(aggregate, 2 * pixel, p)
        print(f"{m:12s} {p[~np.array(aggregate)].mean():4.0f}  {capped.mean():4.0f}")


if __name__ == "__main__":
    main(sys.argv[1:])
