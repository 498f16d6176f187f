"""`validate`: an enhanced map scored against a fine scan of part of the same area."""
import json

import numpy as np
import pytest

from enhancer import UserError
from enhancer.baselines import richardson_lucy
from enhancer.degrade import Degradation, gaussian_probe
from enhancer.metrics import psnr, ssim
from enhancer.phantoms import phantom
from enhancer.validate import to_grid, validate
from enhancer.xrfmap import XRFMap
from tests.test_cli import cli

ELEMENTS = ["Fe", "Zn", "Ca"]


def scene(kind, seed):
    """A held-out truth (50 nm pixels), its coarse scan (200 nm step, 200 nm probe) and an
    enhancement of it (Richardson-Lucy: imperfect, as real ones are)."""
    truth = phantom(kind, 256, 3, seed=seed)
    coarse = Degradation(200, 50, 4, 1000).apply(truth, seed=seed)
    enhanced = richardson_lucy(coarse, gaussian_probe(200, 50), 4, 10)
    return truth, coarse, enhanced


def fine_scan(truth, oy, ox, h, w, seed):
    """A fine scan (25 nm pixels, 50 nm probe, 2000 counts) of the truth's rows oy..oy+h, cols
    ox..ox+w on its 50 nm grid."""
    up = np.repeat(np.repeat(truth[:, oy:oy + h, ox:ox + w], 2, 1), 2, 2)
    return Degradation(50, 25, 1, 2000).apply(up, seed=seed)


@pytest.mark.parametrize("kind,offset,size", [("cell", (37, 81), (96, 120)),
                                              ("particles", (150, 12), (80, 80)),
                                              ("aggregate", (5, 140), (120, 100))])
def test_known_offsets_recovered_exactly_and_psnr_is_the_metrics_modules(kind, offset, size):
    truth, coarse, enhanced = scene(kind, 3_000_000 + offset[0])
    fine = fine_scan(truth, *offset, *size, seed=1)
    r = validate(XRFMap(ELEMENTS, coarse), XRFMap(ELEMENTS, enhanced), XRFMap(ELEMENTS, fine), 200.0, 25.0,
                 probe_fwhm_nm=(200, 200))
    assert r["offset_px"] == list(offset) and r["overlap_px"] == list(size)
    oy, ox = offset
    gt = to_grid(fine, 25.0, 50.0)
    est = enhanced[:, oy:oy + size[0], ox:ox + size[1]]
    assert r["psnr_db"]["enhanced"] == psnr(est, gt)
    assert r["ssim"]["enhanced"] == ssim(est, gt)
    assert r["psnr_db"]["rl"] >= r["psnr_db"]["enhanced"] - 1e-9  # RL tuned on the overlap includes 10
    assert set(r["frc_nm"]) == {"input", "enhanced"} and r["elements"] == ELEMENTS


def test_a_fine_scan_hanging_over_the_edge_keeps_its_offset():
    truth, coarse, enhanced = scene("texture", 3_000_100)
    big = np.pad(truth, ((0, 0), (0, 0), (0, 40)), mode="reflect")
    fine = fine_scan(big, 60, 200, 80, 96, seed=2)  # cols 200..296: 56 of 96 inside
    r = validate(XRFMap(ELEMENTS, coarse), XRFMap(ELEMENTS, enhanced), XRFMap(ELEMENTS, fine), 200.0, 25.0)
    assert r["offset_px"] == [60, 200] and r["overlap_px"] == [80, 56] and r["psnr_db"]["rl"] is None


def test_too_little_overlap_or_another_sample_is_refused_with_the_numbers():
    truth, coarse, enhanced = scene("texture", 3_000_200)
    big = np.pad(truth, ((0, 0), (0, 0), (0, 80)), mode="reflect")
    fine = fine_scan(big, 60, 220, 80, 96, seed=2)  # 36 of 96 columns inside: 38%
    # Placements under half inside along an axis are not searched: the best one left is reported.
    with pytest.raises(UserError, match=r"overlap \d+% of the fine scan .*correlation"):
        validate(XRFMap(ELEMENTS, coarse), XRFMap(ELEMENTS, enhanced), XRFMap(ELEMENTS, fine), 200.0, 25.0)
    other = fine_scan(phantom("cell", 256, 3, seed=3_000_201), 40, 40, 96, 96, seed=3)
    with pytest.raises(UserError, match=r"correlation -?0\.\d\d \(at least 0.5\)"):
        validate(XRFMap(ELEMENTS, coarse), XRFMap(ELEMENTS, enhanced), XRFMap(ELEMENTS, other), 200.0, 25.0)


def test_validate_cli_writes_the_report(tmp_path):
    truth, coarse, enhanced = scene("texture", 3_000_300)
    np.save(tmp_path / "in.npy", coarse)
    np.save(tmp_path / "enh.npy", enhanced)
    np.save(tmp_path / "fine.npy", fine_scan(truth, 20, 30, 100, 100, seed=4))
    r = cli("validate", "in.npy", "enh.npy", "fine.npy", "--pixel-nm", 200, "--fine-pixel-nm", 25,
            "--out", "report.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["offset_px"] == [20, 30] and report["overlap_px"] == [100, 100]
    assert set(report["psnr_db"]) == {"input", "enhanced", "rl"} and set(report["frc_nm"]) == {"input", "enhanced"}
    assert json.loads(r.stdout)["offset_px"] == [20, 30]
    r = cli("validate", "in.npy", "enh.npy", "fine.npy", "--pixel-nm", 200, "--out", "r2.json", cwd=tmp_path)
    assert r.returncode == 2 and "--fine-pixel-nm" in r.stderr and not (tmp_path / "r2.json").exists()
    np.save(tmp_path / "far.npy", fine_scan(np.pad(truth, ((0, 0), (0, 0), (0, 90)), mode="reflect"),
                                            0, 230, 100, 100, seed=5))
    r = cli("validate", "in.npy", "enh.npy", "far.npy", "--pixel-nm", 200, "--fine-pixel-nm", 25,
            "--out", "r3.json", cwd=tmp_path)
    assert r.returncode == 2 and "overlap" in r.stderr and "%" in r.stderr and not (tmp_path / "r3.json").exists()
