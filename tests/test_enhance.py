"""Network, bundles, tiled enhancement, training, baselines and metrics."""
import json
import pickle

import numpy as np
import pytest
import torch

from enhancer import Cancelled, UserError
from enhancer.baselines import richardson_lucy, rl_oracle, upsample, wiener
from enhancer.bundle import Bundle, load_bundle, save_bundle, validate_bundle_files
from enhancer.degrade import Degradation
from enhancer.enhance import enhance, enhance_map
from enhancer.physics import Physics
from enhancer.metrics import frc_resolution_nm, psnr, single_image_frc_nm, totals_error
from enhancer.network import ResidualEnhancer, fold_batchnorm
from enhancer.phantoms import phantom
from enhancer.train import train
from enhancer.xrfmap import XRFMap

torch.set_num_threads(1)


def random_bundle(scale=1, blocks=2, filters=8, channels=1, elements="any", seed=0):
    """A network with random (non-trivial) weights and batch-norm statistics."""
    torch.manual_seed(seed)
    net = ResidualEnhancer(channels, blocks, filters)
    for p in net.parameters():
        p.data.normal_(0, 0.1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    d = Degradation(200, 50, scale=scale)
    config = {"format": "xrfweb-model", "elements": elements, "pixel_nm": 50, "scale": scale,
              "degradation": d.to_dict(), "architecture": net.args}
    return Bundle(net, config)


def test_network_starts_as_the_identity():
    net = ResidualEnhancer(1, 2, 8).eval()
    x = torch.rand(1, 1, 16, 16)
    assert torch.equal(net(x), x)


def test_folded_batchnorm_gives_the_same_output():
    b = random_bundle()
    x = torch.rand(2, 1, 24, 24)
    with torch.no_grad():
        np.testing.assert_allclose(fold_batchnorm(b.network)(x), b.network.eval()(x), atol=1e-5)


@pytest.mark.parametrize("scale", [1, 4])
def test_tiled_equals_untiled(scale):
    b = random_bundle(scale=scale)
    maps = phantom("cell", 160 // scale * 2, 2, seed=1)[:, : 160 // scale, : 160 // scale] + 0.1
    whole = enhance(maps, b, tile=4096)
    tiled = enhance(maps, b, tile=64, batch=3)
    assert whole.shape == (2, maps.shape[1] * scale, maps.shape[2] * scale)
    np.testing.assert_allclose(tiled, whole, rtol=1e-4, atol=1e-4 * np.abs(whole).max())


def test_normalisation_is_inverted_and_each_mean_preserved():
    b = random_bundle()
    maps = phantom("particles", 96, 3, seed=2) * np.array([1e5, 3.0, 0.02], np.float32)[:, None, None]
    out = enhance(maps, b)
    assert out.min() >= 0
    np.testing.assert_allclose(out.mean(axis=(1, 2)), maps.mean(axis=(1, 2)), rtol=0.01)
    # units kept: each element comes back at its own scale
    assert out[0].max() > 1e3 and out[2].max() < 1


def test_identity_network_round_trips_the_map_exactly():
    net = ResidualEnhancer(1, 1, 4)
    b = Bundle(net, random_bundle().config)
    maps = phantom("texture", 64, 2, seed=5) * 1234.5
    np.testing.assert_allclose(enhance(maps, b), maps, rtol=1e-5)


def test_self_ensemble_returns_mean_and_variance():
    b = random_bundle()
    maps = phantom("cell", 64, 1, seed=3)
    out, var = enhance(maps, b, ensemble=8, return_variance=True)
    assert out.shape == var.shape and var.min() >= 0 and var.max() > 0
    with pytest.raises(UserError):
        enhance(maps, b, ensemble=9)


def test_cancel_stops_between_tiles():
    with pytest.raises(Cancelled):
        enhance(phantom("cell", 96, 1), random_bundle(), cancel=lambda: True)


def test_nan_input_is_a_clear_error():
    maps = phantom("cell", 32, 1)
    maps[0, 3, 3] = np.nan
    with pytest.raises(UserError, match="NaN"):
        enhance(maps, random_bundle())


def test_enhance_map_checks_the_pixel_size_and_records_provenance():
    b = random_bundle(scale=4)
    m = XRFMap(["Fe", "Zn"], phantom("cell", 32, 2) + 0.1, pixel_size_nm=(200.0, 200.0))
    result = enhance_map(m, b)
    assert result.shape == (2, 128, 128) and result.pixel_size_nm == (50.0, 50.0)
    assert result.provenance["enhancement"]["scale"] == 4
    assert result.provenance["enhancement"]["probe_assumed"] is True
    with pytest.raises(UserError, match="step is 50 nm.*universal"):
        enhance_map(m, b, physics=Physics((50.0, 50.0), None, 100.0))
    with pytest.raises(UserError, match="step is unknown"):
        enhance_map(XRFMap(["Fe"], phantom("cell", 32, 1)), b)


def test_element_joint_model_needs_its_elements():
    b = random_bundle(channels=2, elements=["Fe", "Zn"])
    assert enhance(phantom("cell", 48, 2) + 0.1, b).shape == (2, 48, 48)
    with pytest.raises(UserError, match="Fe, Zn"):
        enhance(phantom("cell", 48, 3), b)


def test_bundle_round_trip(tmp_path):
    b = random_bundle()
    save_bundle(tmp_path / "m", b.network, b.config)
    loaded = load_bundle(tmp_path / "m")
    x = phantom("cell", 48, 1, seed=9)
    np.testing.assert_array_equal(enhance(x, loaded), enhance(x, b))
    assert json.loads((tmp_path / "m" / "model.json").read_text())["architecture"]["blocks"] == 2


class Payload:
    def __reduce__(self):
        return (exec, ("open('/tmp/xrfweb-pwned', 'w').write('x')",))


def test_a_pickle_is_refused_and_never_unpickled(tmp_path):
    b = random_bundle()
    save_bundle(tmp_path / "m", b.network, b.config)
    (tmp_path / "m" / "model.safetensors").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(UserError, match="safetensors"):
        load_bundle(tmp_path / "m")
    torch.save(b.network.state_dict(), tmp_path / "m" / "model.safetensors")  # a torch pickle
    with pytest.raises(UserError, match="safetensors"):
        validate_bundle_files(tmp_path / "m" / "model.safetensors", tmp_path / "m" / "model.json")
    import os

    assert not os.path.exists("/tmp/xrfweb-pwned")


def test_bundle_config_is_checked(tmp_path):
    b = random_bundle()
    save_bundle(tmp_path / "m", b.network, b.config)
    cfg = tmp_path / "m" / "model.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "architecture": {"channels": 1, "blocks": 3, "filters": 8}}))
    with pytest.raises(UserError, match="do not match"):
        load_bundle(tmp_path / "m")
    cfg.write_text("{not json")
    with pytest.raises(UserError, match="JSON"):
        load_bundle(tmp_path / "m")
    with pytest.raises(UserError, match="no model"):
        load_bundle(tmp_path / "missing")


@pytest.mark.parametrize("loss", ["l1", "mse"])
def test_training_on_a_tiny_budget_lowers_validation_loss(tmp_path, loss):
    d = Degradation(200, 50, scale=1, counts=1000)
    maps = [phantom("mixed", 96, 2, seed=s) for s in range(4)]
    seen = []
    b = train(maps, d, tmp_path / "m", steps=60, blocks=2, filters=8, eval_every=20, loss=loss,
              batch_size=8, patch=32, validation=[phantom("cell", 64, 2, seed=99)], progress=seen.append)
    assert b.config["training"]["loss"] == loss
    history = b.config["training"]["history"]
    assert [h["step"] for h in history] == [20, 40, 60]
    # validation error falls (PSNR rises); the training loss is too noisy over random patches
    assert history[-1]["val_psnr"] > history[0]["val_psnr"]
    assert b.config["metrics"]["validation_psnr"] > b.config["training"]["validation_input_psnr"]
    assert seen[-1]["fraction"] == 1.0
    assert load_bundle(tmp_path / "m").config["training"]["history"] == history


def test_training_resumes_from_its_checkpoint(tmp_path):
    d = Degradation(200, 50, scale=2, counts=None)
    maps = [phantom("cell", 64, 1, seed=1)]
    with pytest.raises(Cancelled):
        train(maps, d, tmp_path / "m", steps=20, blocks=1, filters=4, eval_every=5, batch_size=2,
              patch=16, cancel=lambda: True)
    b = train(maps, d, tmp_path / "m", steps=20, blocks=1, filters=4, eval_every=5, batch_size=2, patch=16)
    assert [h["step"] for h in b.config["training"]["history"]] == [5, 10, 15, 20]


def test_training_needs_a_budget():
    with pytest.raises(UserError):
        train([phantom("cell", 64, 1)], Degradation(200, 50), "/tmp/unused", blocks=1, filters=4)


def test_rl_and_wiener_beat_the_input_with_the_true_probe():
    d = Degradation(200, 50, scale=1, counts=None)
    truth = phantom("cell", 96, 1, seed=2)
    g = d.apply(truth)
    assert psnr(richardson_lucy(g, d.probe(), iterations=20), truth) > psnr(g, truth) + 1
    assert psnr(wiener(g, d.probe(), balance=0.01), truth) > psnr(g, truth)
    best, iters = rl_oracle(g, d.probe(), truth)
    assert psnr(best, truth) >= psnr(richardson_lucy(g, d.probe(), iterations=20), truth) - 1e-6


def test_upsampling_keeps_block_centres_aligned():
    fine = np.tile(np.arange(64, dtype=np.float32), (64, 1))  # a ramp along x
    coarse = fine.reshape(16, 4, 16, 4).mean(axis=(1, 3))
    up = upsample(coarse, 4)
    error = up[:, 8:-8] - fine[:, 8:-8]
    assert abs(error.mean()) < 1e-3  # no shift: a misplaced grid would offset the whole ramp
    assert np.abs(error).max() < 0.2  # bicubic (a = -0.75) ripples a little on a ramp
    assert upsample(coarse, 4, "lanczos").shape == (64, 64)


def test_frc_and_psnr_behave():
    truth = phantom("cell", 128, 1, seed=1)
    assert frc_resolution_nm(truth, truth, 50) == pytest.approx(100)  # Nyquist
    blurred = Degradation(400, 50, counts=None).apply(truth)
    assert frc_resolution_nm(blurred, truth, 50) > 150
    noisy = Degradation(50, 50, counts=20).apply(truth, seed=1)
    assert single_image_frc_nm(noisy[0], 50) > single_image_frc_nm(truth[0], 50)
    assert psnr(truth + 0.01 * np.ptp(truth), truth) == pytest.approx(40, abs=1e-6)
    assert totals_error(truth * 1.02, truth)[0] == pytest.approx(0.02)


def test_resuming_a_finished_run_keeps_the_best_bundle(tmp_path):
    d = Degradation(200, 50, scale=1, counts=None)
    maps = [phantom("cell", 64, 1, seed=1)]
    first = train(maps, d, tmp_path / "m", steps=10, blocks=1, filters=4, eval_every=5, batch_size=2, patch=16)
    weights = (tmp_path / "m" / "model.safetensors").read_bytes()
    again = train(maps, d, tmp_path / "m", steps=10, blocks=1, filters=4, eval_every=5, batch_size=2,
                  patch=16, command="python -m enhancer train again")
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == weights
    assert again.config["training"]["history"] == first.config["training"]["history"]
    assert again.config["command"].endswith("python -m enhancer train again")


def test_paired_scans_are_aligned_and_trained_on(tmp_path):
    """Approach 1: a coarse scan of part of the fine map's area, offset by an unknown amount."""
    from enhancer.pairs import align

    big = phantom("cell", 224, 2, seed=4)
    d = Degradation(200, 50, scale=4, counts=1000)
    fine = big[:, 16:208, 8:208]
    for oy, ox in [(12, 20), (7, 33), (30, 3)]:
        coarse = d.apply(big[:, oy : oy + 160, ox : ox + 160], seed=1)
        pair = align(fine, coarse, 4)
        # the reported origin is where the first kept coarse pixel starts on the fine map
        origin = (oy - 16, ox - 8)  # of the coarse grid on the fine map; may lie outside it
        assert pair.offset_px == tuple(o % 4 if o < 0 else o for o in origin)
        assert pair.fine.shape[-2:] == tuple(4 * n for n in pair.coarse.shape[-2:])
    with pytest.raises(UserError, match="same area"):
        align(fine, d.apply(phantom("particles", 160, 2, seed=9), seed=1), 4)

    coarse = d.apply(big[:, 12:172, 20:180], seed=1)
    b = train([fine], d, tmp_path / "m", steps=40, blocks=1, filters=8, eval_every=20,
              batch_size=4, patch=32, coarse=[coarse])
    assert b.config["training"]["approach"] == "paired scans"
    history = b.config["training"]["history"]
    assert history[-1]["val_psnr"] > b.config["training"]["validation_input_psnr"]
    with pytest.raises(UserError, match="coarse scans"):
        train([fine, fine], d, tmp_path / "n", steps=2, coarse=[coarse])
