"""model.json as a typed, checked object (enhancer.bundle.ModelConfig): read once, refused by
field name; the normalisation train writes is the one enhance uses; checkpoints carry their
architecture and arguments, and a resumed run uses them."""
import json

import numpy as np
import pytest
import torch

from enhancer import UserError
from enhancer.bundle import ModelConfig, load_bundle, save_bundle, shipped_bundles, validate_bundle_files
from enhancer.degrade import Degradation
from enhancer.enhance import enhance
from enhancer.phantoms import phantom
from enhancer.train import train
from tests.test_enhance import random_bundle


def test_every_shipped_model_json_reads_as_a_model_config():
    assert shipped_bundles()
    for path in shipped_bundles():
        spec = ModelConfig.from_dict(json.loads((path / "model.json").read_text()))
        if spec.conditions:  # universal: a range of probes, steps and doses, no one degradation
            assert spec.degradation is None and spec.architecture.condition_channels == 4
        else:
            assert spec.degradation.probe_fwhm_nm == 200
        assert spec.architecture.blocks > 0
        assert spec.benchmark and spec.training and spec.command.startswith("python -m enhancer")


@pytest.fixture
def saved(tmp_path):
    b = random_bundle()
    save_bundle(tmp_path / "m", b.network, b.config)
    return tmp_path / "m"


@pytest.mark.parametrize("change, field", [
    ({"scale": "2"}, "scale"),
    ({"pixel_nm": True}, "pixel_nm"),
    ({"colour": "blue"}, "colour"),
    ({"degradation": {"probe_fwhm_nm": 200, "pixel_nm": 50, "counts": "lots"}}, "degradation.counts"),
    ({"degradation": {"probe_fwhm_nm": 200, "pixel_nm": 50, "shape": "round"}}, "degradation.shape"),
    ({"architecture": {"channels": 1, "blocks": 2, "filters": 8.5}}, "architecture.filters"),
    ({"normalisation": {"percentile": "high"}}, "normalisation.percentile"),
    ({"elements": [1, 2]}, "elements"),
    ({"training": []}, "training"),
    ({"conditions": {"probe_fwhm_px": [1, 8], "scale": [1, 4]}}, "counts"),
])
def test_a_wrong_type_or_unknown_field_is_refused_by_name(saved, change, field):
    cfg = saved / "model.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), **change}))
    for check in (lambda: load_bundle(saved),
                  lambda: validate_bundle_files(saved / "model.safetensors", cfg)):
        with pytest.raises(UserError, match=field.replace(".", r"\.")):
            check()


def test_nothing_is_saved_that_would_not_load(tmp_path):
    b = random_bundle()
    with pytest.raises(UserError, match="unknown field colour"):
        save_bundle(tmp_path / "m", b.network, {**b.config, "colour": "blue"})
    assert not (tmp_path / "m").exists()


def test_enhance_normalises_as_the_model_json_says(saved):
    x = phantom("cell", 48, 1, seed=3) + 0.05
    plain = enhance(x, load_bundle(saved))
    cfg = saved / "model.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()),
                               "normalisation": {"percentile": 60.0, "sigma_px": 0.0}}))
    assert not np.allclose(enhance(x, load_bundle(saved)), plain)  # a non-linear network: it matters


def test_a_resumed_run_keeps_its_checkpoint_architecture_and_arguments(tmp_path):
    d = Degradation(200, 50, scale=1, counts=None)
    maps = [phantom("cell", 64, 1, seed=1)]
    with pytest.raises(Exception):
        train(maps, d, tmp_path / "m", steps=10, blocks=1, filters=4, eval_every=5, batch_size=2,
              patch=16, lr=5e-4, loss="mse", cancel=lambda: True)
    saved = torch.load(tmp_path / "m" / "checkpoint.pt", weights_only=True)
    assert json.loads(saved["architecture"]) == {"channels": 1, "blocks": 1, "filters": 4}
    assert json.loads(saved["args"])["loss"] == "mse"
    # asked again with other sizes and arguments: the run goes on as it started
    b = train(maps, d, tmp_path / "m", steps=10, blocks=3, filters=16, eval_every=5, batch_size=2,
              patch=16, lr=1e-3, loss="l1")
    assert b.network.args == {"channels": 1, "blocks": 1, "filters": 4}
    assert b.config["training"]["loss"] == "mse" and b.config["training"]["lr"] == 5e-4
    assert b.config["normalisation"]["percentile"] == 99.9


def test_the_web_reads_a_model_config_without_torch():
    import subprocess
    import sys

    code = "import sys, enhancer.model_config; assert 'torch' not in sys.modules, 'torch imported'"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
