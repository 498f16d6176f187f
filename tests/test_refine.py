"""The data step after the universal network (enhancer/refine.py)."""
import numpy as np
import pytest

from enhancer.bundle import load_bundle
from enhancer.degrade import Degradation, blur, gaussian_probe, sample
from enhancer.enhance import enhance
from enhancer.metrics import psnr
from enhancer.phantoms import phantom
from enhancer.refine import _Forward, refine


def _tilted_probe():
    """A measured-like probe that is not separable: an elliptical Gaussian turned by 30 degrees."""
    y, x = np.mgrid[-9:10, -9:10].astype(float)
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    u, v = c * x + s * y, -s * x + c * y
    h = np.exp(-0.5 * ((u / 3.0) ** 2 + (v / 1.2) ** 2))
    return h / h.sum()


@pytest.mark.parametrize("psf, scale", [(gaussian_probe(5.0, 1.0, 3.0), 2), (_tilted_probe(), 3),
                                        (gaussian_probe(2.0, 1.0), 1)])
def test_the_step_remeasures_by_the_one_forward_model(psf, scale):
    """Tile by tile, edges included, it is degrade.blur then degrade.sample."""
    fine = phantom("cell", 96, 1, seed=5)[0].astype(np.float32)
    out = np.empty((96 // scale, 96 // scale), np.float32)
    _Forward(fine, psf, scale, tile=30).remeasure(out)
    np.testing.assert_allclose(out, sample(blur(fine, psf), scale), atol=2e-5 * fine.max())


def _case(probe_px, scale, counts, seed):
    truth = phantom("aggregate", 96, 1, seed=seed)[0]
    d = Degradation(probe_px, 1.0, scale, counts)
    return truth, d.apply(truth, seed=seed), d.probe()


def test_a_high_dose_is_fitted_to_its_noise_and_comes_closer_to_the_truth():
    """A start that does not fit the data (the scan interpolated, as a network's output that is
    too smooth): the step brings the mean chi^2 down to 1 and the map closer to the truth."""
    truth, g, psf = _case(2.0, 1, 5000.0, seed=7)
    start = blur(g, gaussian_probe(2.0, 1.0))
    fine = start.copy()
    r = refine(fine, g, psf, 1, 5000.0)
    assert r["chi2_before"] > 2 and r["chi2_after"] <= 1.0 and 0 < r["iterations"] < 30
    assert psnr(fine, truth) > psnr(start, truth) + 1.0


def test_the_shipped_model_gains_at_a_high_dose_and_is_left_alone_at_a_low_one():
    """The measured gain (docs/benchmarks.md): at probe 2 px, scale 1, 5000 counts the network
    does not fit the data and the step adds over 1 dB; at 50 counts its output already fits and
    is returned as it was."""
    bundle = load_bundle("universal")
    truth, g, _ = _case(2.0, 1, 5000.0, seed=11)
    log = []
    raw = enhance(g[None], bundle, conditions=((2.0, 2.0), 1, 5000.0), refine=False)
    fitted = enhance(g[None], bundle, conditions=((2.0, 2.0), 1, 5000.0), refined=log)
    assert log[0]["iterations"] > 0 and log[0]["chi2_after"] <= 1.0
    assert psnr(fitted, truth[None]) > psnr(raw, truth[None]) + 0.5
    truth, g, _ = _case(8.0, 4, 50.0, seed=12)
    log = []
    raw = enhance(g[None], bundle, conditions=((8.0, 8.0), 4, 50.0), refine=False)
    fitted = enhance(g[None], bundle, conditions=((8.0, 8.0), 4, 50.0), refined=log)
    assert log[0]["iterations"] == 0
    np.testing.assert_array_equal(fitted, raw)


def test_totals_are_kept_and_tiles_give_the_whole_map():
    truth, g, psf = _case(3.0, 2, 5000.0, seed=9)
    start = np.clip(np.repeat(np.repeat(g, 2, 0), 2, 1), 0, None).astype(np.float32)
    whole, tiled = start.copy(), start.copy()
    r = refine(whole, g, psf, 2, 5000.0, max_iterations=6, target=0.0)
    refine(tiled, g, psf, 2, 5000.0, max_iterations=6, target=0.0, tile=40)
    assert r["iterations"] == 6
    np.testing.assert_allclose(tiled, whole, atol=1e-5 * whole.max())
    assert abs(whole.mean() / g.mean() - 1) < 0.01


def test_a_measured_probe_is_the_data_step_psf_and_the_result_records_the_step():
    """A zone plate's focus (side lobes) at a high dose: the step fits the scan through the measured
    probe itself, so the result is consistent with the data under that probe (trust's check), and
    the provenance says how many iterations each element took."""
    from enhancer.enhance import enhance_map
    from enhancer.fit import require
    from enhancer.physics import Physics
    from enhancer.probe import fwhm_of, measured_degradation, zone_plate_probe
    from enhancer.trust import consistency
    from enhancer.xrfmap import XRFMap

    zp = zone_plate_probe(200, 10)
    d = measured_degradation(Degradation(200, 50, 2, 5000.0), zp, 10)
    g = d.apply(phantom("cell", 128, 2, seed=2_000_410), seed=0)
    fwhm = tuple(fwhm_of(d.probe(), 50))
    physics = Physics((100.0, 100.0), fwhm, 5000.0, measured_probe=(zp, 10))
    result = enhance_map(XRFMap(["Fe", "Zn"], g), load_bundle("universal"), physics=physics)
    step = result.provenance["enhancement"]["data_step"]["elements"]
    assert all(s["iterations"] > 0 and s["chi2_after"] <= 1.0 for s in step.values())
    f = require(load_bundle("universal").config, physics)
    _, summary = consistency(g, result.data, f.degradation(), gain="model")
    assert all(e["mean_chi2"] <= 1.05 for e in summary["elements"].values())
