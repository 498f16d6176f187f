"""Is a model sharper than the truth supports? Its output, and that output blurred by a Gaussian
of sigma 0.5-1.5 fine pixels, against the truth, on the benchmark's sets (the same degradations
as `python -m enhancer bench`). If blurring raises PSNR, the network commits to detail the
measurement does not carry. The numbers behind "the network over-sharpens real maps" in
docs/benchmarks.md:

    .venv/bin/python scripts/sharpness_check.py protocol-b B
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402

from enhancer.bench import CASES, held_out_set, high_contrast_set, real_maps  # noqa: E402
from enhancer.bundle import load_bundle  # noqa: E402
from enhancer.degrade import Degradation  # noqa: E402
from enhancer.enhance import enhance  # noqa: E402
from enhancer.metrics import psnr  # noqa: E402

SIGMAS = (0, 0.5, 0.75, 1.0, 1.5)


def main(model, case):
    pixel, fwhm, scale, counts, _ = CASES[case]
    d = Degradation(fwhm, pixel, scale, counts)
    b = load_bundle(model)
    for name, maps in (("held-out phantoms", held_out_set()), ("high-contrast phantoms", high_contrast_set()),
                       ("real HXN", real_maps())):
        scores = {s: [] for s in SIGMAS}
        for i, (_, truth) in enumerate(maps):
            h, w = (np.array(truth.shape[-2:]) // scale) * scale
            truth = truth[:, :h, :w]
            est = enhance(d.apply(truth, seed=i), b)  # seed i, as bench.run_case
            for s in SIGMAS:
                blurred = np.stack([gaussian_filter(e, s) for e in est]) if s else est
                scores[s].append(psnr(blurred, truth))
        print(f"{name:24s}" + "  ".join(f"sigma {s:g}: {np.mean(v):.2f}" for s, v in scores.items()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "protocol-b", sys.argv[2] if len(sys.argv) > 2 else "B")
