"""Trust in an enhanced map (enhancer.trust): data consistency, uncertainty, resolution, report.

The forward model is the benchmark protocol's (200 nm probe, 50 nm fine pixel, 1000 counts at
the peak). "Lights up" means: the chi^2 map's mean over the feature's footprint is at least 3x
its mean elsewhere.
"""
import json

import h5py
import numpy as np
import pytest
import torch

from enhancer import UserError
from enhancer.baselines import richardson_lucy
from enhancer.bundle import save_bundle
from enhancer.cli import main
from enhancer.degrade import Degradation, blur, sample
from enhancer.enhance import enhance, enhance_map
from enhancer.formats import read_map, write_result
from enhancer.metrics import psnr
from enhancer.phantoms import phantom
from enhancer.train import train
from enhancer.trust import (
    SUSPECT_FRACTION, THRESHOLD, attach_trust, chi2_on_fine_grid, consistency, resolution_summary,
    trust_report, uncertainty_maps, uncertainty_summary,
)
from enhancer.xrfmap import XRFMap
from tests.formats_fixtures import write_maps_v10
from tests.test_enhance import random_bundle
from tests.test_roi import cell_field

torch.set_num_threads(1)
ELEMENTS = ["Fe", "Zn"]


def protocol(scale=1, counts=1000.0):
    return Degradation(200, 50, scale, counts=counts)


def with_blob(maps, cy, cx, sigma=3.0, height=0.5):
    """maps plus a Gaussian blob (fine pixels) of height x the map's peak: invented detail."""
    y, x = np.mgrid[: maps.shape[-2], : maps.shape[-1]]
    g = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2))
    return (maps + height * maps.max() * g).astype(np.float32)


def footprint(shape, cy, cx, radius):
    y, x = np.mgrid[: shape[-2], : shape[-1]]
    return np.hypot(y - cy, x - cx) <= radius


def contrast(chi2, mask):
    """Mean chi^2 inside the footprint over the mean outside it."""
    return float(chi2[:, mask].mean() / chi2[:, ~mask].mean())


def means(summary):
    return [e["mean_chi2"] for e in summary["elements"].values()]


@pytest.mark.parametrize("scale", [1, 4])
def test_the_truth_fits_its_own_measurement(scale):
    truth = phantom("cell", 128, 2, seed=1)
    d = protocol(scale)
    measured = d.apply(truth, seed=2)
    chi2, summary = consistency(measured, truth, d, elements=ELEMENTS, gain="model")
    assert chi2.shape == measured.shape == (2, 128 // scale, 128 // scale)
    assert all(0.85 < m < 1.2 for m in means(summary))
    assert all(e["fraction_above"] <= SUSPECT_FRACTION for e in summary["elements"].values())
    assert summary["verdict"] == "consistent"
    # The data's own noise tells the same dose as the model, within 15%.
    _, from_data = consistency(measured, truth, d, elements=ELEMENTS, gain="data")
    for el in ELEMENTS:
        e = from_data["elements"][el]
        assert e["gain"] == pytest.approx(e["model_gain"], rel=0.15)


@pytest.mark.parametrize("scale", [1, 4])
def test_an_invented_blob_lights_up_where_it_was_invented(scale):
    truth = phantom("cell", 128, 2, seed=1)
    d = protocol(scale)
    measured = d.apply(truth, seed=2)
    cy, cx = 70, 44
    mask = footprint(measured.shape, (cy - (scale - 1) / 2) / scale, (cx - (scale - 1) / 2) / scale,
                     max(1.5, 8 / scale))
    chi2, summary = consistency(measured, with_blob(truth, cy, cx), d, elements=ELEMENTS)
    assert contrast(chi2, mask) >= 3
    assert chi2[:, mask].mean() > THRESHOLD
    assert summary["verdict"] != "consistent"
    honest, _ = consistency(measured, truth, d, elements=ELEMENTS)
    assert contrast(honest, mask) < 1.5


def test_a_feature_left_out_lights_up_too():
    truth = phantom("cell", 128, 2, seed=1)
    d = protocol(1)
    measured = d.apply(truth, seed=2)
    smooth = blur(truth.sum(0), d.probe())
    cy, cx = np.unravel_index(np.argmax(smooth), smooth.shape)  # the brightest structure
    mask = footprint(truth.shape, cy, cx, 6)
    missing = truth.copy()
    missing[:, mask] = np.median(truth, axis=(1, 2))[:, None]
    chi2, summary = consistency(measured, missing, d, elements=ELEMENTS)
    assert contrast(chi2, footprint(truth.shape, cy, cx, 8)) >= 3
    assert summary["verdict"] != "consistent"


def test_richardson_lucy_with_the_true_probe_does_not_light_up():
    truth = phantom("cell", 128, 2, seed=1)
    d = protocol(1)
    measured = d.apply(truth, seed=2)
    chi2, summary = consistency(measured, richardson_lucy(measured, d.probe(), 1, 20), d, elements=ELEMENTS)
    assert summary["verdict"] == "consistent"
    assert all(m < 1.2 for m in means(summary))
    assert chi2.max() < 2 * THRESHOLD


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A 1-block, 8-filter network trained for 300 steps on cell phantoms (~10 s on one core)."""
    maps = [phantom("cell", 128, 2, seed=i) for i in range(3)]
    return train(maps, protocol(1), tmp_path_factory.mktemp("m") / "small", steps=300, blocks=1,
                 filters=8, device="cpu", eval_every=300, batch_size=8)


def test_a_trained_network_does_not_light_up_but_its_inventions_do(small_model):
    truth = phantom("cell", 128, 2, seed=12)  # not seen in training
    d = protocol(1)
    measured = d.apply(truth, seed=3)
    out = enhance(measured, small_model, device="cpu")
    assert psnr(out, truth) > psnr(measured, truth) + 0.5  # it is an enhancement
    chi2, summary = consistency(measured, out, d, elements=ELEMENTS)
    assert summary["verdict"] != "inconsistent"
    assert all(m < 1.5 for m in means(summary))
    # A small network is not perfect everywhere (a mean chi^2 of ~1.2, a little more at some
    # edges), but nothing of it stands out the way an invention does.
    mask = footprint(measured.shape, 60, 70, 8)
    assert contrast(chi2, mask) < 2 and chi2[:, mask].mean() < THRESHOLD
    chi2_fake, fake = consistency(measured, with_blob(out, 60, 70), d, elements=ELEMENTS)
    assert contrast(chi2_fake, mask) >= 3 and fake["verdict"] != "consistent"


def test_the_gain_follows_the_data_when_the_dose_differs():
    truth = phantom("particles", 128, 2, seed=5)
    model = protocol(1, counts=1000)
    measured = protocol(1, counts=20000).apply(truth, seed=4)  # a 20x brighter beamline
    true_gain = 20000 / sample(blur(truth, model.probe()), 1).reshape(2, -1).max(1)
    _, auto = consistency(measured, truth, model, elements=ELEMENTS)
    assert auto["gain_source"] == "data"
    np.testing.assert_allclose([auto["elements"][el]["gain"] for el in ELEMENTS], true_gain, rtol=0.15)
    assert all(0.8 < m < 1.25 for m in means(auto))
    _, blind = consistency(measured, truth, model, elements=ELEMENTS, gain="model")
    assert all(m < 0.1 for m in means(blind))  # the model's dose would hide everything here
    _, given = consistency(measured, truth, model, elements=ELEMENTS, gain=float(true_gain.mean()))
    assert given["gain_source"] == "given" and all(0.8 < m < 1.25 for m in means(given))


def test_bad_requests_are_user_errors():
    truth = phantom("cell", 64, 1, seed=0)
    d = protocol(2)
    measured = d.apply(truth, seed=0)
    with pytest.raises(UserError, match="re-measured"):
        consistency(measured, truth[:, :60, :60], d)
    with pytest.raises(UserError, match="gain"):
        consistency(measured, truth, d, gain="fast")
    with pytest.raises(UserError, match="positive"):
        consistency(measured, truth, d, gain=-1.0)
    with pytest.raises(UserError, match="without noise"):
        consistency(measured, truth, protocol(2, counts=None), gain="model")


def test_uncertainty_comes_from_the_self_ensemble():
    b = random_bundle(scale=2)
    m = XRFMap(ELEMENTS, phantom("cell", 48, 2, seed=0) + 0.1, pixel_size_nm=(100.0, 100.0))
    assert uncertainty_summary(enhance_map(m, b, ensemble=1)) is None
    result = enhance_map(m, b, ensemble=8)
    sigma = uncertainty_maps(result)
    assert sigma.shape == result.shape and (sigma >= 0).all() and sigma.max() > 0
    summary = uncertainty_summary(result)
    assert set(summary) == set(ELEMENTS)
    for el, s in zip(ELEMENTS, sigma):
        assert summary[el]["mean_sigma"] == pytest.approx(float(s.mean()), rel=1e-5)


def test_resolution_summary_ranks_a_sharper_measurement_finer():
    truth = phantom("particles", 128, 2, seed=2)
    sharp = Degradation(100, 50, 1, counts=20000).apply(truth, seed=1)
    blurry = Degradation(400, 50, 1, counts=20000).apply(truth, seed=1)
    r = resolution_summary(blurry, 50.0, sharp, 50.0, elements=ELEMENTS)
    for el in ELEMENTS:
        assert r[el]["input_nm"] > r[el]["enhanced_nm"] >= 100.0  # never below Nyquist
        assert r[el]["improvement"] == pytest.approx(r[el]["input_nm"] / r[el]["enhanced_nm"])


def test_trust_report_gives_the_job_page_everything():
    truth, cells = cell_field(size=96, n=5, rare=1, seed=0)
    b = random_bundle(scale=2)  # 200 nm probe, 50 nm fine pixel: scans with a 100 nm step
    coarse = b.degradation.apply(truth, seed=0)
    x_axis, y_axis = 100.0 + 0.1 * np.arange(48), 20.0 + 0.1 * np.arange(48)  # um
    m = XRFMap(ELEMENTS, coarse, pixel_size_nm=(100.0, 100.0), x_axis_um=x_axis, y_axis_um=y_axis)
    enhanced = enhance_map(m, b, ensemble=2)
    report = trust_report(m, enhanced, b)
    assert report["chi2"].shape == coarse.shape
    assert chi2_on_fine_grid(report["chi2"], 2).shape == enhanced.shape
    json.dumps({k: v for k, v in report.items() if k != "chi2"})  # stored as JSON beside the maps
    assert set(report["consistency"]["elements"]) == set(report["resolution"]) == set(ELEMENTS)
    assert set(report["uncertainty"]) == set(ELEMENTS)
    assert len(report["rois"]) >= 4
    for r in report["rois"]:  # boxes in the scan's motor coordinates
        assert 100.0 <= r["x_um"] <= 104.8 and 20.0 <= r["y_um"] <= 24.8
        assert r["step_nm"] == pytest.approx(50.0)
    for cy, cx, *_ in cells:  # fine pixel (cy, cx) lies at coarse (c - 0.5) / 2
        x, y = 100.0 + 0.1 * (cx - 0.5) / 2, 20.0 + 0.1 * (cy - 0.5) / 2
        assert any(abs(r["x_um"] - x) <= r["width_um"] / 2 and abs(r["y_um"] - y) <= r["height_um"] / 2
                   for r in report["rois"])
    with pytest.raises(UserError, match="enhanced"):
        trust_report(m, m, b)


def test_the_report_travels_in_the_result_file(tmp_path):
    src = tmp_path / "scan.h5"
    write_maps_v10(src, rows=48, cols=48, pixel_um=(0.1, 0.1))
    original = read_map(src)
    b = random_bundle(scale=2)
    enhanced = enhance_map(original, b, ensemble=2)
    report = trust_report(original, enhanced, b, top_rois=3)
    assert len(report["rois"]) <= 3
    carried = attach_trust(enhanced, report)
    assert carried.extras[f"chi2:{original.elements[0]}"].shape == enhanced.shape[1:]
    assert "trust" not in enhanced.provenance  # the enhanced map itself is left as it was
    out = write_result(original, carried, tmp_path / "scan-enhanced.h5")
    with h5py.File(out) as f:
        stored = json.loads(f["/MAPS/XRF_Analyzed/Fitted_Enhanced"].attrs["provenance"])
    assert stored["trust"]["consistency"]["verdict"] == report["consistency"]["verdict"]
    assert stored["trust"]["rois"] == json.loads(json.dumps(report["rois"]))


@pytest.fixture
def model_dir(tmp_path):
    b = random_bundle(scale=1)
    return save_bundle(tmp_path / "model", b.network, b.config)


def test_cli_consistency_writes_chi2_and_prints_the_summary(tmp_path, model_dir, capsys):
    truth = phantom("cell", 96, 2, seed=1)
    measured = protocol(1).apply(truth, seed=2)
    np.save(tmp_path / "in.npy", measured)
    np.save(tmp_path / "truth.npy", truth)
    out = tmp_path / "chi2.npy"
    code = main(["consistency", str(tmp_path / "in.npy"), str(tmp_path / "truth.npy"),
                 "--model", str(model_dir), "--pixel-nm", "50", "--out", str(out)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["verdict"] == "consistent" and set(summary["elements"]) == {"map_1", "map_2"}
    chi2 = np.load(out)
    assert chi2.shape == measured.shape and 0.8 < chi2.mean() < 1.2


def test_cli_consistency_reads_the_enhanced_maps_of_an_hdf5_result(tmp_path, model_dir, capsys):
    src, result = tmp_path / "scan.h5", tmp_path / "scan-enhanced.h5"
    write_maps_v10(src, rows=24, cols=24, pixel_um=(0.05, 0.05))
    assert main(["enhance", str(src), str(result), "--model", str(model_dir)]) == 0
    out = tmp_path / "chi2.npy"
    assert main(["consistency", str(src), str(result), "--model", str(model_dir), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    original = read_map(src)
    enhanced = read_map(result, method="Fitted_Enhanced")
    assert list(summary["elements"]) == original.elements
    expected, _ = consistency(original.data, enhanced.data, protocol(1), elements=original.elements)
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-5)


def test_cli_consistency_errors_are_one_line_and_exit_2(tmp_path, model_dir, capsys):
    np.save(tmp_path / "in.npy", np.ones((2, 32, 32), np.float32))
    np.save(tmp_path / "small.npy", np.ones((2, 16, 16), np.float32))
    np.save(tmp_path / "three.npy", np.ones((3, 32, 32), np.float32))
    base = ["consistency", str(tmp_path / "in.npy")]
    out = tmp_path / "chi2.npy"
    step = ["--pixel-nm", "50"]  # an NPY states no step; the model's is never assumed
    assert main([*base, str(tmp_path / "small.npy"), "--model", str(model_dir), "--out", str(out), *step]) == 2
    assert main([*base, str(tmp_path / "three.npy"), "--model", str(model_dir), "--out", str(out), *step]) == 2
    assert main([*base, str(tmp_path / "in.npy"), "--model", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert main([*base, str(tmp_path / "in.npy"), "--model", str(model_dir), "--out", str(out),
                 "--pixel-nm", "400"]) == 2
    assert main([*base, str(tmp_path / "in.npy"), "--model", str(model_dir), "--out", str(out),
                 "--gain", "lots", *step]) == 2
    assert main([*base, str(tmp_path / "in.npy"), "--model", str(model_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 6 and all(line.startswith("error: ") for line in err)
    assert "re-measured" in err[0] and "3 maps" in err[1] and "no model" in err[2]
    assert "400" in err[3] and "--gain" in err[4]
    assert "step is unknown" in err[5] and "--pixel-nm" in err[5]
    assert not out.exists()
