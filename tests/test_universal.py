"""The universal model: a network conditioned on the probe (x, y), scale and dose."""
import numpy as np
import pytest
import torch

from enhancer import UserError, universal
from enhancer.bundle import Bundle, load_bundle, save_bundle
from enhancer.degrade import Degradation
from enhancer.enhance import enhance
from enhancer.network import ResidualEnhancer
from enhancer.phantoms import phantom


def small_universal(seed=0) -> Bundle:
    torch.manual_seed(seed)
    net = ResidualEnhancer(1, 2, 8, universal.CONDITION_CHANNELS)
    for p in net.output_conv.parameters():  # not the identity: the condition must matter
        torch.nn.init.normal_(p, std=0.05)
    return Bundle(net, {"name": "u", "elements": "any", "conditions": universal.conditions_config()})


def test_the_condition_changes_the_output_and_the_scale_sets_the_grid():
    b = small_universal()
    g = phantom("cell", 32, 2, seed=1)
    a = enhance(g, b, conditions=((2.0, 2.0), 2, 500.0))
    c = enhance(g, b, conditions=((6.0, 6.0), 2, 500.0))
    assert a.shape == (2, 64, 64)
    assert enhance(g, b, conditions=((2.0, 2.0), 3, 500.0)).shape == (2, 96, 96)
    assert np.abs(a - c).max() > 1e-3


def test_totals_are_kept_whatever_the_condition():
    b = small_universal()
    g = phantom("particles", 32, 2, seed=2)
    out = enhance(g, b, conditions=((3.0, 5.0), 4, 50.0))
    np.testing.assert_allclose(out.mean(axis=(1, 2)), g.mean(axis=(1, 2)), rtol=1e-4)


def test_a_quarter_turn_in_the_ensemble_swaps_the_probe_axes():
    """An elliptical probe: the 8-fold ensemble of a rotated map equals the rotated ensemble only if
    each rotated pass is told the rotated probe."""
    b = small_universal()
    g = phantom("cell", 32, 1, seed=3)
    out = enhance(g, b, conditions=((2.0, 6.0), 1, 500.0), ensemble=8)
    turned = enhance(np.rot90(g, 1, axes=(-2, -1)).copy(), b, conditions=((6.0, 2.0), 1, 500.0), ensemble=8)
    np.testing.assert_allclose(np.rot90(out, 1, axes=(-2, -1)), turned, atol=2e-3)


def test_conditions_are_required_by_a_universal_model_and_refused_by_others():
    with pytest.raises(UserError, match="probe, step and dose"):
        enhance(np.ones((1, 16, 16), np.float32), small_universal())
    single = Bundle(ResidualEnhancer(1, 1, 4), {"name": "s", "elements": "any", "scale": 1})
    with pytest.raises(UserError, match="one condition"):
        enhance(np.ones((1, 16, 16), np.float32), single, conditions=((2.0, 2.0), 1, 500.0))


def test_a_conditioned_bundle_round_trips(tmp_path):
    b = small_universal()
    save_bundle(tmp_path / "u", b.network, b.config)
    loaded = load_bundle(tmp_path / "u")
    assert loaded.conditions["probe_fwhm_px"] == [1.5, 8.0]
    g = phantom("cell", 24, 1, seed=4)
    cond = ((3.0, 3.0), 2, 500.0)
    np.testing.assert_allclose(enhance(g, loaded, conditions=cond), enhance(g, b, conditions=cond), atol=1e-5)


def test_the_sampler_degrades_by_the_forward_model():
    """A noiseless-ish draw: the coarse patch is the truth blurred and box-sampled."""
    truth = phantom("texture", 192, 1, seed=5)[0]
    s = universal.Sampler([truth], seed=0)
    x, c, y = s.batch(4)
    assert x.shape == y.shape == (4, 1, universal.PATCH, universal.PATCH)
    assert c.shape == (4, universal.CONDITION_CHANNELS)
    assert (c[:, :2] * 8 >= universal.PROBE_PX[0] - 1e-6).all() and (c[:, :2] * 8 <= universal.PROBE_PX[1] + 1e-6).all()
    # same normalisation on both sides: the input's mean is close to the truth's
    assert abs(float(x.mean()) - float(y.mean())) < 0.1 * float(y.mean()) + 1e-3


def test_training_resumes_and_records_each_command(tmp_path):
    out = tmp_path / "u"
    universal.train(out, steps=2, blocks=1, filters=4, batch=2, phantoms=2, eval_every=1, command="first",
                    progress=lambda *a, **k: None)
    universal.train(out, steps=4, blocks=1, filters=4, batch=2, phantoms=2, eval_every=1, command="second",
                    progress=lambda *a, **k: None)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    import json
    st = json.loads(state["state"])
    assert st["step"] == 4 and [h["step"] for h in st["history"]] == [0, 1, 2, 3, 4]  # the start is scored too
    assert load_bundle(out).config["command"].startswith("first")


def test_the_universal_model_starts_as_the_wiener_filter_with_a_trained_trunk():
    net = universal._network("protocol-b", 8, 32).eval()
    source = load_bundle("protocol-b").network
    torch.testing.assert_close(net.blocks[3].conv1.weight, source.blocks[3].conv1.weight)
    g = torch.rand(1, 1, 40, 40)
    cond = universal.condition((4.0, 4.0), 4, 1000.0)[None]
    with torch.no_grad():  # the last layer starts at zero: the output is the input
        torch.testing.assert_close(net(g, cond), g)


def test_the_wiener_start_deconvolves_the_stated_probe_and_keeps_the_mean():
    from enhancer.baselines import upsample
    from enhancer.conditions import wiener_start
    from enhancer.metrics import psnr

    truth = phantom("cell", 96, 1, seed=7)
    for probe, s in (((3.0, 3.0), 2), ((2.0, 5.0), 1)):
        g = Degradation(probe[0], 1.0, s, 5000.0, probe_fwhm_y_nm=probe[1]).apply(truth, seed=1)
        start = wiener_start(torch.from_numpy(g)[None], probe, s, 5000.0)[0].numpy()
        assert start.shape == truth.shape
        assert psnr(start, truth) > psnr(upsample(g, s), truth) + 0.5
        assert abs(start.mean() - g.mean()) < 0.01 * g.mean()  # the padding moves it a little; enhance restores it


@pytest.mark.parametrize("scale", [1, 2])
def test_the_wiener_start_is_filtered_tile_by_tile_and_matches_the_whole_map(scale, monkeypatch):
    """Memory flat in map size: no start is filtered over the whole map, and the tiled result is
    the whole map's (the widest probe at the highest dose: the filter's longest reach)."""
    from enhancer import conditions
    from enhancer import enhance as enhance_module

    b = small_universal()
    side = 240 // scale
    g = Degradation(8.0, 1.0, scale, 10_000.0).apply(phantom("mixed", 240, 1, seed=4), seed=1)
    # The start alone: the data step after it has its own tiles (tests/test_refine.py).
    kw = {"conditions": ((8.0, 8.0), scale, 10_000.0), "refine": False}
    # fp32 even where the CPU has bf16: bf16 kernels block each tile's shape differently, and
    # their rounding (3e-4 of the peak) would hide what this compares, the start's tiles.
    monkeypatch.setattr(enhance_module, "autocast", lambda device: torch.autocast(device.type, enabled=False))
    whole = enhance(g, b, tile=4096, **kw)  # one tile: the start filtered over the whole map
    shapes, real = [], conditions.wiener_start
    monkeypatch.setattr(conditions, "wiener_start", lambda x, *a: shapes.append(x.shape[-2:]) or real(x, *a))
    tiled = enhance(g, b, tile=64, batch=3, **kw)
    assert shapes and max(max(s) for s in shapes) < side  # windows, never the whole map
    np.testing.assert_allclose(tiled, whole, rtol=1e-4, atol=1e-4 * np.abs(whole).max())


def test_the_benchmark_keeps_its_baselines_and_resumes_from_them(tmp_path, monkeypatch):
    from enhancer import bench_universal as bu

    maps = [("cell", phantom("cell", 32, 1, seed=9))]
    first = bu.cached_baselines(tmp_path, maps, [((2.0, 2.0), 1, 500.0)])
    monkeypatch.setattr(bu, "rl_oracle", lambda *a: (_ for _ in ()).throw(AssertionError("recomputed")))
    assert bu.cached_baselines(tmp_path, maps, [((2.0, 2.0), 1, 500.0)]) == first
    with pytest.raises(AssertionError, match="recomputed"):  # another map set is another cache
        bu.cached_baselines(tmp_path, [("cell", phantom("cell", 32, 1, seed=10) * 2)], [((2.0, 2.0), 1, 500.0)])


def test_the_protocol_benchmark_tells_a_conditioned_model_the_case_physics():
    from enhancer.bench import run_case

    rows = run_case("B", small_universal(), [("cell", phantom("cell", 48, 1, seed=11))], self_ensemble=False)
    assert rows["network"][0]["psnr"] > 0 and "network_x8" not in rows


def test_the_universal_bench_covers_the_issue_grid_and_scores_the_stated_probe(tmp_path):
    from enhancer import bench_universal as bu

    grid = bu.grid()
    assert len(grid) == 4 * 3 * 3 + 2 and ((2.0, 4.0), 2, 500.0) in grid and ((8.0, 8.0), 4, 50.0) in grid
    maps = [("cell", phantom("cell", 48, 2, seed=9))]
    r = bu.run_condition(small_universal(), maps, (3.0, 3.0), 2, 500.0)
    base = bu.cached_baselines(tmp_path, maps, [((3.0, 3.0), 2, 500.0)])["3x3/s2/c500"]
    assert base["rl_oracle"] > base["input"]  # RL with the true probe, tuned on the truth
    assert r["totals_error"] < 0.01
    told_wrong = bu.run_condition(small_universal(), maps, (3.0, 3.0), 2, 500.0, stated=1.25)
    assert told_wrong["network"] != r["network"]


def test_training_can_go_on_from_the_shipped_universal_model():
    """--init universal continues the shipped weights as they are (nothing zeroed, no condition
    channel reset): a longer run picks up where the shipped one stopped."""
    shipped = load_bundle("universal").network.state_dict()
    net = universal._network("universal", 8, 32)
    assert net.condition_channels == shipped["input_conv.weight"].shape[1] - 1
    for name, value in net.state_dict().items():
        assert torch.equal(value, shipped[name]), name
    assert net.output_conv.weight.abs().sum() > 0
