"""The forward model: blur, step sampling, noise (benchmark-protocol.md, steps 1-3)."""
import numpy as np
import pytest

from enhancer.degrade import Degradation, add_noise, blur, gaussian_probe, resample_probe, sample
from enhancer.phantoms import KINDS, contrast, phantom, training_set


def test_probe_is_normalised_and_has_the_asked_fwhm():
    h = gaussian_probe(200, 50)
    assert h.sum() == pytest.approx(1.0)
    row = h[h.shape[0] // 2]
    above = np.nonzero(row >= row.max() / 2)[0]
    # FWHM 4 pixels: the half-maximum crossing lies between 3 and 5 sampled pixels wide
    assert 3 <= len(above) <= 5


def test_elliptical_probe_is_wider_along_y():
    h = gaussian_probe(100, 50, fwhm_y_nm=300)
    assert h.shape[0] > h.shape[1]


def test_blur_conserves_the_total_before_noise():
    maps = phantom("cell", 96, 3, seed=4)
    blurred = blur(maps, gaussian_probe(200, 50))
    np.testing.assert_allclose(blurred.sum(axis=(1, 2)), maps.sum(axis=(1, 2)), rtol=1e-5)
    assert np.abs(blurred - maps).max() > 0.01  # and it does blur


def test_measured_probe_is_resampled_and_normalised():
    measured = gaussian_probe(200, 10)  # a probe measured on a 10 nm grid
    p = resample_probe(measured * 37.0, probe_pixel_nm=10, pixel_nm=50)
    assert p.sum() == pytest.approx(1.0)
    assert p.shape[0] % 2 == 1 and p.shape[0] < measured.shape[0]
    with pytest.raises(ValueError):
        resample_probe(np.full((3, 3), np.nan), 10, 50)


def test_box_sampling_averages_blocks_and_point_takes_centres():
    m = np.arange(64, dtype=np.float32).reshape(1, 8, 8)
    box = sample(m, 4)
    assert box.shape == (1, 2, 2)
    assert box[0, 0, 0] == pytest.approx(m[0, :4, :4].mean())
    point = sample(m, 4, mode="point")
    assert point[0, 1, 1] == m[0, 6, 6]
    assert sample(m, 4).mean() == pytest.approx(m.mean())


def test_poisson_noise_has_poisson_statistics_at_the_peak_count():
    flat = np.full((1, 200, 200), 2.5, np.float32)  # every pixel is the peak
    noisy = add_noise(flat, counts=100, seed=1)
    counts = noisy / 2.5 * 100
    assert counts.mean() == pytest.approx(100, rel=0.01)
    assert counts.var() == pytest.approx(100, rel=0.05)  # variance = mean for Poisson
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3)  # whole counts
    assert add_noise(flat, counts=100, seed=1).tobytes() == noisy.tobytes()  # seeded
    assert add_noise(flat, counts=100, seed=2).tobytes() != noisy.tobytes()


def test_read_noise_adds_gaussian_spread():
    flat = np.full((1, 200, 200), 1.0, np.float32)
    n = add_noise(flat, counts=1e6, read_noise=50.0, seed=0) * 1e6
    assert np.std(n - 1e6) == pytest.approx(np.sqrt(1e6 + 2500), rel=0.05)


def test_degradation_keeps_units_and_shape():
    d = Degradation(200, 50, scale=4, counts=1000)
    truth = phantom("particles", 128, 2, seed=3) * 1e4  # counts/s-like units
    g = d.apply(truth, seed=0)
    assert g.shape == (2, 32, 32)
    np.testing.assert_allclose(g.mean(axis=(1, 2)), truth.mean(axis=(1, 2)), rtol=0.05)
    assert Degradation.from_dict(d.to_dict()) == d


@pytest.mark.parametrize("kind", KINDS + ("mixed",))
def test_every_phantom_kind_is_non_negative_and_structured(kind):
    m = phantom(kind, 96, 3, seed=7)
    assert m.shape == (3, 96, 96) and m.dtype == np.float32
    assert m.min() >= 0 and m.std() > 0
    assert np.array_equal(m, phantom(kind, 96, 3, seed=7))


def test_contrast_concentrates_the_signal_in_the_brightest_spots():
    m = phantom("particles", 96, 2, seed=4)
    hdr = contrast(m, 3.0)
    assert hdr.shape == m.shape and hdr.dtype == np.float32
    np.testing.assert_allclose(hdr.max(axis=(1, 2)), 1.0)

    def top_share(a):  # fraction of each element's total in its brightest 1% of pixels
        flat = np.sort(a.reshape(len(a), -1), axis=1)
        return flat[:, -flat.shape[1] // 100 :].sum(1) / flat.sum(1)

    assert (top_share(hdr) > 1.5 * top_share(m)).all()
    np.testing.assert_allclose(contrast(m, 1.0), m / m.max(axis=(1, 2), keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(contrast(m, 1.0, 2.0) - 2.0, contrast(m, 1.0), atol=1e-6)  # a pedestal


def test_training_phantoms_can_be_seen_through_a_fine_probe():
    sharp = training_set(3, ["cell", "star"], 96, seed=5)
    assert [m.shape for m in sharp] == [(3, 96, 96)] * 3
    np.testing.assert_array_equal(sharp[1], phantom("star", 96, 3, seed=500_001))  # kinds in turn
    soft = training_set(3, ["cell", "star"], 96, seed=5, fine_probe_nm=(80, 80), pixel_nm=50)
    for s, b in zip(sharp, soft):
        np.testing.assert_allclose(b.sum(axis=(1, 2)), s.sum(axis=(1, 2)), rtol=1e-4)  # totals kept

        def roughness(a):  # mean squared difference between neighbouring pixels
            return (np.diff(a, axis=-1) ** 2).mean()

        assert roughness(b) < 0.7 * roughness(s)
    drawn = training_set(4, ["cell"], 64, seed=5, gamma=(2, 2), fine_probe_nm=(0, 80), pixel_nm=50)
    assert all(m.max() <= 1.0 + 1e-6 for m in drawn)  # the contrast comes first, then the probe


def test_transfer_is_the_probe_mtf_times_the_dwell_and_zero_at_the_step_period():
    n, d = 64, Degradation(probe_fwhm_nm=200, pixel_nm=50, scale=4, counts=None)
    t = d.transfer(n)
    c = n // 2  # zero frequency, fftshift layout
    assert t[c, c] == pytest.approx(1.0)
    sigma = 200 / 2.3548 / 50
    f = 3 / n  # three cycles across the map, along x: Gaussian MTF times the box's sinc
    assert t[c, c + 3] == pytest.approx(np.exp(-2 * np.pi**2 * sigma**2 * f**2) * np.sinc(4 * f), rel=1e-3)
    assert t[c, c + n // 4] < 1e-12 and t[c + n // 4, c] < 1e-12  # a wave of the step's period
    point = Degradation(probe_fwhm_nm=200, pixel_nm=50, scale=4, counts=None, mode="point").transfer(n)
    assert point[c, c + n // 4] > 1e-3  # block centres see it (aliased onto the zero frequency)
    same_grid = Degradation(probe_fwhm_nm=200, pixel_nm=50, scale=1).transfer(n)
    assert same_grid[c, c + n // 4] > 1e-3
