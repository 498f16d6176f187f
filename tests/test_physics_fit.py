"""The map's physics (enhancer.physics) and the one fit rule (enhancer.fit)."""
import json

import numpy as np
import pytest

from enhancer import UserError
from enhancer.bundle import SHIPPED_DIR
from enhancer.degrade import Degradation
from enhancer.map_scale import map_scale
from enhancer.fit import fit, rank
from enhancer.phantoms import phantom
from enhancer.physics import Physics, counts_per_element, estimate_counts, parse_probe

UNIVERSAL = {"name": "universal", "pixel_nm": 25.0, "scale": 2,
             "conditions": {"probe_fwhm_px": [1.5, 8], "scale": [1, 4], "counts": [20, 10000]}}


def shipped(name):
    return json.loads((SHIPPED_DIR / name / "model.json").read_text())


# --- the dose, from Poisson statistics -------------------------------------------------------

@pytest.mark.parametrize("kind", ["cell", "particles", "aggregate"])
@pytest.mark.parametrize("counts", [20, 200, 5000])
@pytest.mark.parametrize("probe_px,scale", [(3, 1), (8, 2)])
def test_estimate_counts_reads_the_dose_of_simulated_poisson_maps(kind, counts, probe_px, scale):
    truth = phantom(kind, 192, 2, seed=11)
    d = Degradation(probe_fwhm_nm=probe_px * 10.0, pixel_nm=10.0, scale=scale, counts=counts)
    measured = d.apply(truth, seed=5) * 7.3  # any units: the estimate must not care
    clean = Degradation(probe_fwhm_nm=probe_px * 10.0, pixel_nm=10.0, scale=scale, counts=None).apply(truth)
    # add_noise's `counts` is the clean maximum's; the estimate reports the robust peak's
    expected = np.array([counts * map_scale(c) / c.max() for c in clean])
    assert counts_per_element(measured) == pytest.approx(expected, rel=0.5)  # the worst: sparse, curved
    assert estimate_counts(measured) == pytest.approx(np.median(expected), rel=0.25)


def test_estimate_counts_tells_low_from_high_dose_and_none_without_noise():
    truth = phantom("cell", 128, 1, seed=2)
    low = Degradation(300.0, 100.0, 1, counts=30).apply(truth, seed=1)
    high = Degradation(300.0, 100.0, 1, counts=3000).apply(truth, seed=1)
    assert estimate_counts(high) > 30 * estimate_counts(low)
    assert estimate_counts(np.zeros((1, 64, 64))) is None


# --- parse_probe -----------------------------------------------------------------------------

def test_parse_probe():
    assert parse_probe("150") == (150.0, 150.0)
    assert parse_probe("150,200") == (150.0, 200.0)  # x along columns, y along rows
    assert parse_probe(" 150 , 200 ") == (150.0, 200.0)
    assert parse_probe([40, 60]) == (40.0, 60.0)
    for bad in ("0", "-5", "abc", "1,2,3", "nan", "", "150,0"):
        with pytest.raises(UserError):
            parse_probe(bad)


# --- the fit rule: single-condition models ---------------------------------------------------

def test_single_condition_fits_its_own_physics_within_ten_percent():
    b = shipped("protocol-b")  # 200 nm probe, 50 nm fine pixel, scale 4: 200 nm step
    f = fit(b, Physics((210.0, 190.0), (190.0, 215.0), 1000.0))
    assert f.ok and f.scale == 4 and f.note == ""
    assert f.fine_pixel_nm == (52.5, 47.5)


def test_single_condition_without_a_probe_assumes_its_own_and_says_so():
    f = fit(shipped("protocol-a"), Physics((50.0, 50.0), None, 1000.0))
    assert f.ok and f.physics.probe_fwhm_nm == (200.0, 200.0)
    assert "assumed" in f.note and "200 nm" in f.note


@pytest.mark.parametrize("physics,words", [
    (Physics((56.0, 50.0), (200.0, 200.0)), "step is 56 x 50 nm"),  # x axis 12% off
    (Physics((100.0, 100.0), (200.0, 200.0)), "step is 100 nm"),
    (Physics((50.0, 50.0), (100.0, 100.0)), "probe is 100 nm"),
    (Physics((50.0, 50.0), (200.0, 230.0)), "probe is 200 x 230 nm"),  # y axis 15% off
])
def test_single_condition_refuses_beyond_ten_percent_naming_universal(physics, words):
    f = fit(shipped("protocol-a"), physics)
    assert not f.ok and words in f.reason and "universal" in f.reason and "10%" in f.reason


def test_single_condition_refuses_another_scale_and_an_unknown_step():
    f = fit(shipped("protocol-b"), Physics((200.0, 200.0), (200.0, 200.0)), scale=2)
    assert not f.ok and "universal" in f.reason
    f = fit(shipped("protocol-a"), Physics(None, (200.0, 200.0)))
    assert not f.ok and f.missing == ("step",) and "step is unknown" in f.reason


def test_single_condition_dose_far_off_is_a_note_and_ranks_below_universal():
    far = Physics((50.0, 50.0), (200.0, 200.0), 50.0)
    a, u = fit(shipped("protocol-a"), far), fit(UNIVERSAL, far)
    assert a.ok and "1000 counts" in a.note
    assert [name for name, _ in rank([("protocol-a", a), ("universal", u)])] == ["universal", "protocol-a"]
    c = fit(shipped("protocol-c"), far)  # made for 50 counts: exactly this map
    assert c.ok and c.note == ""
    assert rank([("universal", u), ("protocol-c", c)])[0][0] == "protocol-c"


# --- the fit rule: conditioned models --------------------------------------------------------

def test_conditioned_default_scale_puts_the_probe_nearest_three_output_pixels():
    f = fit(UNIVERSAL, Physics((50.0, 50.0), (40.0, 40.0), 300.0))  # 0.8 steps: 4x -> 3.2 px
    assert f.ok and f.scale == 4 and f.probe_fwhm_px == (3.2, 3.2) and f.fine_pixel_nm == (12.5, 12.5)
    f = fit(UNIVERSAL, Physics((50.0, 50.0), (300.0, 300.0), 300.0))  # 6 steps: 1x
    assert f.ok and f.scale == 1
    f = fit(UNIVERSAL, Physics((100.0, 100.0), (100.0, 200.0), 300.0))  # elliptical: 2 x 1.41 = 2.8
    assert f.ok and f.scale == 2 and f.probe_fwhm_px == (2.0, 4.0)
    f = fit(UNIVERSAL, Physics((100.0, 100.0), (300.0, 700.0), 300.0))  # 2x: 6 x 14 px, out of range
    assert f.ok and f.scale == 1 and f.probe_fwhm_px == (3.0, 7.0)


def test_conditioned_needs_step_and_probe_naming_what_is_missing():
    f = fit(UNIVERSAL, Physics((50.0, 50.0), None, 300.0))
    assert not f.ok and f.missing == ("probe",) and "probe FWHM" in f.reason
    f = fit(UNIVERSAL, Physics(None, None, 300.0))
    assert not f.ok and f.missing == ("step", "probe")
    f = fit(UNIVERSAL, Physics((50.0, 50.0), (100.0, 100.0), None))
    assert not f.ok and f.missing == ("dose",)


@pytest.mark.parametrize("physics,scale,words", [
    (Physics((50.0, 50.0), (100.0, 100.0), 300.0), 5, "scale must be 1-4"),
    (Physics((50.0, 50.0), (100.0, 100.0), 300.0), 0, "scale must be 1-4"),
    (Physics((50.0, 50.0), (100.0, 100.0), 300.0), 2.5, "whole number"),
    (Physics((50.0, 50.0), (300.0, 300.0), 300.0), 4, "24 output pixels"),  # beyond 8
    (Physics((50.0, 50.0), (20.0, 20.0), 300.0), 2, "0.8 output pixels"),  # below 1.5
    (Physics((50.0, 50.0), (10.0, 10.0), 300.0), None, "outside universal's 1.5-8"),  # no scale fits
    (Physics((50.0, 50.0), (100.0, 100.0), 10.0), None, "20-10000 counts"),
    (Physics((50.0, 50.0), (100.0, 100.0), 20000.0), None, "20-10000 counts"),
    (Physics((50.0, 50.0), (0.0, 100.0), 300.0), None, "must be a positive"),
    (Physics((-5.0, -5.0), (100.0, 100.0), 300.0), None, "must be a positive"),
])
def test_conditioned_refusals(physics, scale, words):
    f = fit(UNIVERSAL, physics, scale)
    assert not f.ok and words in f.reason


def test_conditioned_takes_an_estimated_dose_above_its_range_as_its_top():
    f = fit(UNIVERSAL, Physics((50.0, 50.0), (100.0, 100.0), 20000.0, counts_estimated=True))
    assert f.ok and f.physics.counts == 10000 and "above" in f.note
