"""The shipped bundles do what their model.json says: each beats oracle Richardson-Lucy on a held-out
phantom of its case, and protocol-b on the real HXN maps (the protocol's real-data target), with the
benchmark's own degradations. A worse model shipped by mistake fails here, not at a beamline."""
import pytest

from enhancer.bench import CASES, held_out_set, real_maps, run_case
from enhancer.bundle import load_bundle


def network_and_rl(case, name, truth):
    """The bench's own rows for one map (its degradation, noise draw and oracle RL)."""
    rows = run_case(case, load_bundle(CASES[case][4]), [(name, truth)])
    return rows["network"][0]["psnr"], rows["rl_oracle"][0]["psnr"]


@pytest.mark.parametrize("case", ["A", "B", "C"])
def test_each_shipped_model_beats_oracle_rl_on_a_held_out_phantom(case):
    net, rl = network_and_rl(case, "particles-0", dict(held_out_set())["particles-0"])
    assert net > rl + 1.0, (case, net, rl)
    config = load_bundle(CASES[case][4]).config
    assert config["command"].startswith("python -m enhancer train")
    assert config["benchmark"]["case"] == case


def test_protocol_b_beats_oracle_rl_on_the_real_hxn_maps():
    net, rl = network_and_rl("B", *real_maps()[0])
    assert net > rl, (net, rl)
