"""The shipped bundles do what their model.json says: each beats oracle Richardson-Lucy on a held-out
phantom of its case, and protocol-b on the real HXN maps (the protocol's real-data target), with the
benchmark's own degradations. A worse model shipped by mistake fails here, not at a beamline."""
import numpy as np
import pytest

from enhancer.baselines import rl_oracle
from enhancer.bench import CASES, REAL_DATA, held_out_set, real_maps
from enhancer.bundle import load_bundle
from enhancer.degrade import Degradation
from enhancer.enhance import enhance
from enhancer.metrics import psnr


def network_and_rl(case, truth, seed=0):
    pixel, fwhm, scale, counts, name = CASES[case]
    d = Degradation(fwhm, pixel, scale, counts)
    h, w = (np.array(truth.shape[-2:]) // scale) * scale
    truth = truth[:, :h, :w]
    g = d.apply(truth, seed=seed)
    return psnr(enhance(g, load_bundle(name)), truth), psnr(rl_oracle(g, d.probe(), truth, scale)[0], truth)


@pytest.mark.parametrize("case", ["A", "B", "C"])
def test_each_shipped_model_beats_oracle_rl_on_a_held_out_phantom(case):
    net, rl = network_and_rl(case, dict(held_out_set())["particles-0"])  # seeds no training used
    assert net > rl + 1.0, (case, net, rl)
    config = load_bundle(CASES[case][4]).config
    assert config["command"].startswith("python -m enhancer train")
    assert config["benchmark"]["case"] == case


@pytest.mark.skipif(not REAL_DATA.is_dir(), reason="../shared/data/real is not beside this checkout")
def test_protocol_b_beats_oracle_rl_on_the_real_hxn_maps():
    net, rl = network_and_rl("B", real_maps()[0][1])  # the bench's map and noise draw
    assert net > rl, (net, rl)
