"""Model page (training history, benchmark table, held-out example with FRC) and the comparison
of models and classical methods on one map."""
import json

import numpy as np
import pytest

from enhancer.metrics import psnr
from tests.conftest import make_tiny_model, web_client
from tests.test_review_pages import get_json, maps_dataset  # noqa: F401 (fixture)
from xrfweb.review.plots import decode

pytestmark = pytest.mark.django_db
HISTORY = [{"epoch": 1, "step": 200, "loss": 0.04, "val_psnr": 28.9, "val_ssim": 0.91},
           {"epoch": 2, "step": 400, "loss": 0.03, "val_psnr": 29.6, "val_ssim": 0.93}]
BENCH = {"case": "B", "protocol": {"pixel_nm": 50.0, "probe_fwhm_nm": 200.0, "scale": 4,
                                   "counts": 1000.0},
         "command": "python -m enhancer bench --cases B --record",
         "results": [{"set": "held-out phantoms", "summary": {
    "input": {"psnr": 24.1, "ssim": 0.8, "frc_nm": 400, "totals_error": 0.001},
    "network": {"psnr": 30.2, "ssim": 0.93, "frc_nm": 210, "totals_error": 0.002}}}]}


def with_bundle_config(model, **extra):
    """Write extra sections into the model's bundle (model.json), as training and bench do."""
    from enhancer.bundle import CONFIG
    from xrfweb.paths import models_dir

    path = models_dir() / model.folder / CONFIG
    config = {**json.loads(path.read_text()), **extra}
    path.write_text(json.dumps(config))
    model.config = config
    model.save()
    return model


def test_curves_and_benchmark_come_from_the_bundle(alice):
    model = make_tiny_model("benched")
    with_bundle_config(model, training={"history": HISTORY}, benchmark=BENCH)
    body = get_json(web_client(alice), f"/models/{model.id}/curves.json")
    assert [h["val_psnr"] for h in body["history"]] == [28.9, 29.6]
    rows = body["benchmark"]["rows"]
    assert [(r["case"], r["set"]) for r in rows] == [("B", "held-out phantoms")]
    assert rows[0]["summary"]["network"]["frc_nm"] == 210
    assert body["benchmark"]["protocol"]["scale"] == 4
    assert body["training"] is False and body["steps"] == []
    page = web_client(alice).get(f"/models/{model.id}/").content.decode()
    assert f"/models/{model.id}/curves.json" in page and f"?models={model.id}" in page


def test_a_bundle_without_a_benchmark_says_so(alice, tiny_model):
    body = get_json(web_client(alice), f"/models/{tiny_model.id}/curves.json")
    assert body["benchmark"]["rows"] == [] and body["history"] == []


def test_the_example_runs_every_method_on_a_held_out_phantom_once(alice, tiny_model):
    from xrfweb.paths import data_dir

    ex = get_json(web_client(alice), f"/models/{tiny_model.id}/example.json")
    truth = decode(ex["maps"]["truth"]["z"])
    assert truth.shape == (128, 128)  # 64 input pixels x 2
    assert decode(ex["maps"]["measured"]["z"]).shape == (64, 64)
    assert set(ex["methods"]) == {"input", "wiener", "rl_oracle", "network"}
    for name, m in ex["methods"].items():
        estimate = decode(ex["maps"][name]["z"])
        assert m["psnr"] == pytest.approx(psnr(estimate, truth), abs=1e-3)
        assert len(m["frc"]["per_um"]) == len(m["frc"]["frc"]) == 64
        assert m["frc"]["resolution_nm"] >= 2 * 25.0  # never finer than the fine grid's Nyquist
    cached = list(data_dir("review").glob(f"model-{tiny_model.id}-*.json"))
    assert len(cached) == 1
    assert get_json(web_client(alice), f"/models/{tiny_model.id}/example.json") == ex
    with_bundle_config(tiny_model, training={"history": HISTORY})  # retrained in place
    get_json(web_client(alice), f"/models/{tiny_model.id}/example.json")
    assert len(list(data_dir("review").glob(f"model-{tiny_model.id}-*.json"))) == 2


def test_models_are_compared_with_wiener_and_rl_on_a_phantom(alice, tiny_model):
    other = make_tiny_model("scale-4", scale=4)
    body = get_json(web_client(alice),
                    f"/models/compare/maps.json?models={tiny_model.id},{other.id}")
    assert body["truth"] is True and body["models"] == ["tiny", "scale-4"]
    assert set(body["metrics"]) == {"input (bicubic)", "Wiener (oracle)",
                                    "Richardson-Lucy (oracle)", "tiny"}
    assert "100 nm step" in body["skipped"]["scale-4"] and "universal" in body["skipped"]["scale-4"]
    truth = decode(body["maps"]["truth"]["z"])
    for name, m in body["metrics"].items():
        assert m["psnr"] == pytest.approx(psnr(decode(body["maps"][name]["z"]), truth), abs=1e-3)
    # Oracle-tuned methods are tuned for PSNR: they do at least as well as plain interpolation.
    assert body["metrics"]["Wiener (oracle)"]["psnr"] >= body["metrics"]["input (bicubic)"]["psnr"] - 0.5
    page = web_client(alice).get(f"/models/compare/maps/?models={tiny_model.id}").content.decode()
    assert f'data-url="/models/compare/maps.json?models={tiny_model.id}"' in page


def test_on_real_data_the_comparison_uses_fixed_parameters(alice, tiny_model, maps_dataset):  # noqa: F811
    dataset, written = maps_dataset
    body = get_json(web_client(alice), f"/models/compare/maps.json?models={tiny_model.id}"
                                       f"&dataset={dataset.id}&element=Zn")
    assert body["truth"] is False and "Zn, central 24 x 32 pixels" in body["source"]
    assert set(body["metrics"]) == {"input (bicubic)", "Wiener (balance 0.05)",
                                    "Richardson-Lucy (30 iterations)", "tiny"}
    assert decode(body["maps"]["tiny"]["z"]).shape == (48, 64)
    assert all(np.isfinite(m["single_image_frc_nm"]) for m in body["metrics"].values())
    wrong = make_tiny_model("wrong-step", pixel_nm=100.0)
    refused = get_json(web_client(alice), f"/models/compare/maps.json?models={wrong.id}"
                                          f"&dataset={dataset.id}", 400)
    assert "200 nm step" in refused["error"] and "put a fitting model first" in refused["error"]
