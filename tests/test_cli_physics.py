"""The CLI contract for a map's physics (issue 16, item 4): every refusal is exit 2, one line.

python -m enhancer enhance IN OUT --model M --pixel-nm STEP --probe-fwhm-nm FWHM|FX,FY
    [--scale S] [--counts C] [--ensemble N]
"""
import json

import numpy as np
import pytest

from enhancer.bundle import save_bundle
from enhancer.degrade import Degradation
from enhancer.network import ResidualEnhancer
from enhancer.phantoms import phantom
from tests.test_cli import cli
from tests.test_enhance import random_bundle

CONDITIONS = {"probe_fwhm_px": [1.5, 8], "scale": [1, 4], "counts": [20, 10000]}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A measured map (no step in the file), a single-condition model (200 nm probe, 50 nm
    step) and a conditioned one named universal."""
    d = tmp_path_factory.mktemp("cli-physics")
    truth = phantom("cell", 64, 1, seed=4)
    np.save(d / "scan.npy", Degradation(200.0, 50.0, 1, counts=500).apply(truth, seed=1))
    b = random_bundle(scale=1)
    save_bundle(d / "single", b.network, {**b.config, "name": "single"})
    net = ResidualEnhancer(1, 1, 4, condition_channels=4)
    save_bundle(d / "universal", net, {"name": "universal", "elements": "any", "conditions": CONDITIONS})
    return d


def enhance(folder, model, *flags):
    return cli("enhance", "scan.npy", "out.npy", "--model", folder / model, *flags, cwd=folder)


def refused(r, *words):
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    for w in words:
        assert w in r.stderr, r.stderr
    return r.stderr


@pytest.mark.parametrize("flags,words", [
    (["--pixel-nm", "50"], ["universal needs the probe FWHM", "--probe-fwhm-nm"]),
    ([], ["the scan step and the probe FWHM", "--pixel-nm", "--probe-fwhm-nm"]),
    (["--pixel-nm", "50", "--probe-fwhm-nm", "100", "--scale", "5"], ["scale must be 1-4"]),
    (["--pixel-nm", "50", "--probe-fwhm-nm", "100", "--scale", "0"], ["scale must be 1-4"]),
    (["--pixel-nm", "50", "--probe-fwhm-nm", "0"], ["--probe-fwhm-nm", "positive"]),
    (["--pixel-nm", "50", "--probe-fwhm-nm", "-100"], ["--probe-fwhm-nm", "positive"]),
    (["--pixel-nm", "50", "--probe-fwhm-nm", "100,0"], ["--probe-fwhm-nm", "positive"]),
    (["--pixel-nm", "0", "--probe-fwhm-nm", "100"], ["--pixel-nm", "positive"]),
    (["--pixel-nm", "50", "--probe-fwhm-nm", "abc"], ["--probe-fwhm-nm"]),
    # FX along x (columns), FY along y (rows): 100 x 400 nm at 50 nm steps, 4x: 8 x 32 px
    (["--pixel-nm", "50", "--probe-fwhm-nm", "100,400", "--scale", "4"], ["8 x 32 output pixels", "1.5-8"]),
    (["--pixel-nm", "50", "--probe-fwhm-nm", "10"], ["outside universal's 1.5-8"]),
    (["--pixel-nm", "50", "--probe-fwhm-nm", "100", "--counts", "5"], ["20-10000 counts"]),
    (["--pixel-nm", "50", "--probe-fwhm-nm", "100", "--counts", "50000"], ["20-10000 counts"]),
    (["--pixel-nm", "50", "--probe-fwhm-nm", "100", "--counts", "0"], ["--counts must be positive"]),
])
def test_universal_refusals(folder, flags, words):
    refused(enhance(folder, "universal", *flags), *words)


@pytest.mark.parametrize("flags,words", [
    (["--pixel-nm", "100"], ["step is 100 nm", "10%", "universal"]),
    (["--pixel-nm", "50,60"], ["step is 50 x 60 nm", "universal"]),
    (["--pixel-nm", "50", "--probe-fwhm-nm", "100"], ["probe is 100 nm", "universal"]),
    (["--pixel-nm", "50", "--probe-fwhm-nm", "200,240"], ["probe is 200 x 240 nm", "universal"]),
    (["--pixel-nm", "50", "--scale", "2"], ["not 2x", "universal"]),
    ([], ["scan step is unknown", "--pixel-nm"]),
])
def test_single_condition_refusals_name_universal(folder, flags, words):
    refused(enhance(folder, "single", *flags), *words)


def test_single_condition_without_a_probe_assumes_its_own_and_says_so(folder):
    r = enhance(folder, "single", "--pixel-nm", "52", "--counts", "1000")
    assert r.returncode == 0, r.stderr
    assert "assumed" in r.stderr and "200 nm" in r.stderr
    assert np.load(folder / "out.npy").shape == (1, 64, 64)
    r = enhance(folder, "single", "--pixel-nm", "50", "--probe-fwhm-nm", "190,210", "--counts", "1000")
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_help_documents_the_contract():
    out = cli("enhance", "--help").stdout
    for flag in ("--pixel-nm", "--probe-fwhm-nm", "--scale", "--counts", "--ensemble", "FX,FY"):
        assert flag in out
    assert "nearest 3 output pixels" in " ".join(out.split())


def test_info_reports_the_dose_estimated_from_the_data(folder):
    info = json.loads(cli("info", folder / "scan.npy").stdout)
    assert 350 < info["counts_estimate"] < 650  # simulated at 500 counts at the clean peak
