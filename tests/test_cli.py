"""`python -m enhancer`: the interface contract beamline scripts rely on."""
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from enhancer.bundle import save_bundle
from enhancer.formats import read_map
from enhancer.phantoms import phantom
from tests.formats_fixtures import write_maps_v10
from tests.test_enhance import random_bundle

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "enhancer", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


@pytest.fixture
def model_a(tmp_path):
    b = random_bundle(scale=1)
    return save_bundle(tmp_path / "model-a", b.network, b.config)


@pytest.mark.parametrize("sub", ["info", "degrade", "train", "enhance", "evaluate", "bench"])
def test_every_subcommand_has_help(sub):
    r = cli(sub, "--help")
    assert r.returncode == 0 and "usage:" in r.stdout


def test_info_degrade_enhance_evaluate_on_npy(tmp_path, model_a):
    truth = tmp_path / "truth.npy"
    np.save(truth, phantom("cell", 64, 2, seed=1))
    info = json.loads(cli("info", truth, "--pixel-nm", 50).stdout)
    assert info["shape"] == [2, 64, 64] and info["pixel_size_nm"] == 50.0

    r = cli("degrade", truth, tmp_path / "low.npy", "--probe-fwhm-nm", 200, "--pixel-nm", 50, "--seed", 3)
    assert r.returncode == 0, r.stderr
    low = np.load(tmp_path / "low.npy")
    assert low.shape == (2, 64, 64) and not np.array_equal(low, np.load(truth))

    r = cli("enhance", tmp_path / "low.npy", tmp_path / "out.npy", "--model", model_a, "--pixel-nm", 50,
            "--ensemble", 2)
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "out.npy").shape == (2, 64, 64)
    assert np.load(tmp_path / "out.uncertainty.npy").shape == (2, 64, 64)

    r = cli("evaluate", "--truth", truth, "--enhanced", tmp_path / "out.npy", "--input", tmp_path / "low.npy",
            "--pixel-nm", 50)
    report = json.loads(r.stdout)
    assert {"psnr", "ssim", "frc_nm", "totals"} <= set(report)
    assert max(abs(t) for t in report["totals"]) < 0.01


def test_degrade_with_scale_shrinks_the_map_and_enhance_restores_it(tmp_path):
    np.save(tmp_path / "truth.npy", phantom("particles", 64, 1, seed=2)[0])
    assert cli("degrade", tmp_path / "truth.npy", tmp_path / "low.tif", "--probe-fwhm-nm", 200,
               "--pixel-nm", 50, "--scale", 4).returncode == 0
    assert json.loads(cli("info", tmp_path / "low.tif", "--pixel-nm", 200).stdout)["shape"] == [1, 16, 16]
    b = random_bundle(scale=4)
    save_bundle(tmp_path / "m4", b.network, b.config)
    assert cli("enhance", tmp_path / "low.tif", tmp_path / "up.npy", "--model", tmp_path / "m4",
               "--pixel-nm", 200).returncode == 0
    assert np.load(tmp_path / "up.npy").shape == (1, 64, 64)


def test_train_writes_a_bundle_that_enhance_uses(tmp_path):
    np.save(tmp_path / "fine.npy", phantom("cell", 96, 2, seed=5))
    r = cli("train", tmp_path / "fine.npy", "--out", tmp_path / "m", "--probe-fwhm-nm", 200,
            "--pixel-nm", 50, "--steps", 6, "--blocks", 1, "--filters", 4)
    assert r.returncode == 0, r.stderr
    config = json.loads((tmp_path / "m" / "model.json").read_text())
    assert config["command"].startswith("python -m enhancer train")
    assert config["pixel_nm"] == 50 and config["scale"] == 1 and config["elements"] == "any"


def test_train_can_start_from_a_model_and_records_every_command(tmp_path, model_a):
    config = json.loads((model_a / "model.json").read_text())
    (model_a / "model.json").write_text(json.dumps({**config, "command": "python -m enhancer train A"}))
    r = cli("train", "--out", tmp_path / "tuned", "--probe-fwhm-nm", 200, "--pixel-nm", 50, "--steps", 2,
            "--phantoms", 2, "--phantom-size", 96, "--phantom-kinds", "aggregate,cell", "--init", model_a, "--lr", 3e-4,
            "--phantom-gamma", "1,2", "--phantom-offset", "0,1", "--phantom-probe-nm", "0,80", "--loss", "mse")
    assert r.returncode == 0, r.stderr
    tuned = json.loads((tmp_path / "tuned" / "model.json").read_text())
    first, second = tuned["command"].split(" && ")
    assert first == "python -m enhancer train A" and "--init" in second
    assert tuned["architecture"] == config["architecture"]  # the source's 2 x 8, not the defaults
    assert tuned["training"]["initialised_from"]["model"] == "model-a"
    data = tuned["training"]["data"]
    assert data["phantom_kinds"] == ["aggregate", "cell"] and data["phantom_gamma"] == [1, 2]
    assert data["phantom_offset"] == [0, 1] and data["phantom_probe_nm"] == [0, 80]
    assert tuned["training"]["lr"] == 3e-4 and tuned["training"]["loss"] == "mse"
    from enhancer.bundle import load_bundle

    before, after = load_bundle(model_a).network, load_bundle(tmp_path / "tuned").network
    w0, w1 = before.output_conv.weight, after.output_conv.weight
    assert w1.abs().max() > 0.05  # a fresh network starts with this layer at zero
    assert (w1 - w0).abs().max() < 0.01  # two small steps from the source's weights


def test_enhancing_a_maps_file_writes_maps_with_both(tmp_path, model_a):
    src = tmp_path / "scan.h5"
    write_maps_v10(src, rows=24, cols=24, pixel_um=(0.05, 0.05))  # the pixel comes from the axes
    r = cli("enhance", src, tmp_path / "scan-enhanced.h5", "--model", model_a)
    assert r.returncode == 0, r.stderr
    with h5py.File(tmp_path / "scan-enhanced.h5") as f:
        assert set(f["MAPS/XRF_Analyzed"]) == {"Fitted", "Fitted_Enhanced"}
    original, enhanced = read_map(src), read_map(tmp_path / "scan-enhanced.h5", method="Fitted_Enhanced")
    assert enhanced.elements == original.elements and enhanced.shape == original.shape
    np.testing.assert_array_equal(read_map(tmp_path / "scan-enhanced.h5").data, original.data)


@pytest.mark.parametrize("args, words", [
    (["info", "missing.h5"], "no such file"),
    (["enhance", "x.npy", "y.npy", "--model", "no-such-model"], "no model"),
    (["degrade", "truth.npy", "o.npy", "--probe-fwhm-nm", "-5", "--pixel-nm", "50"], "positive"),
    (["enhance", "truth.npy", "o.npy", "--model", "MODEL", "--pixel-nm", "400"], "universal"),
    (["enhance", "truth.npy", "o.npy", "--model", "MODEL", "--pixel-nm", "50", "--ensemble", "12"],
     "ensemble"),
    (["enhance", "truth.npy", "o.npy", "--model", "MODEL"], "--pixel-nm"),
    (["info", "notes.h5"], "text file"),
    (["train", "--out", "m", "--probe-fwhm-nm", "200", "--steps", "3"], "phantoms"),
    (["train", "--out", "m", "--probe-fwhm-nm", "200", "--pixel-nm", "50", "--steps", "2", "--phantoms", "1",
      "--phantom-kinds", "blobs"], "phantom-kinds"),
    (["train", "--out", "m", "--probe-fwhm-nm", "200", "--pixel-nm", "50", "--scale", "4", "--steps", "2",
      "--phantoms", "1", "--init", "MODEL"], "cannot start"),
    (["train", "--out", "m", "--probe-fwhm-nm", "200", "--pixel-nm", "50", "--steps", "2", "--phantoms", "1",
      "--lr", "0"], "learning rate"),
    (["train", "--out", "m", "--probe-fwhm-nm", "200", "--pixel-nm", "50", "--steps", "2", "--phantoms", "1",
      "--phantom-gamma", "3,1"], "phantom-gamma"),
    (["train", "--out", "m", "--probe-fwhm-nm", "200", "--pixel-nm", "50", "--steps", "2", "--phantoms", "1",
      "--phantom-offset", "lots"], "phantom-offset"),
    (["train", "--out", "m", "--probe-fwhm-nm", "200", "--pixel-nm", "50", "--steps", "2", "--phantoms", "1",
      "--phantom-probe-nm", "-10"], "phantom-probe-nm"),
    (["train", "--out", "m", "--probe-fwhm-nm", "200", "--pixel-nm", "50", "--steps", "2", "--phantoms", "1",
      "--loss", "huber"], "loss"),
])
def test_errors_are_one_line_and_exit_2(tmp_path, model_a, args, words):
    np.save(tmp_path / "truth.npy", phantom("cell", 32, 1))
    np.save(tmp_path / "x.npy", phantom("cell", 32, 1))
    (tmp_path / "notes.h5").write_text("just some text, not HDF5")
    r = cli(*[str(model_a) if a == "MODEL" else a for a in args], cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert words in r.stderr.lower()


@pytest.mark.parametrize("args, code", [
    (["enhance", "--help"], 0),
    (["enhance", "x.npy", "y.npy", "--model", "no-such-model"], 2),
    (["enhance", "x.npy", "y.npy", "--model", "universal", "--pixel-nm", "50", "--probe-fwhm-nm", "-1"], 2),
    (["enhance", "x.npy", "y.npy", "--model", "universal", "--pixel-nm", "50", "--probe-fwhm-nm", "100",
      "--scale", "9"], 2),
    (["train", "--out", "m", "--probe-fwhm-nm", "200", "--pixel-nm", "50", "--steps", "2", "--phantoms", "1",
      "--phantom-kinds", "blobs"], 2),
])
def test_help_and_refusals_do_not_import_torch(tmp_path, args, code):
    """Importing torch costs ~2 s of CPU: a mistyped command is refused (and --help shown) without it."""
    np.save(tmp_path / "x.npy", phantom("cell", 32, 1))
    run = ("import sys\nfrom enhancer.cli import main\n"
           "try:\n    rc = main(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
           "print(rc, 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", run, *args], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert r.stdout.splitlines()[-1] == f"{code} False", r.stdout[-300:] + r.stderr


@pytest.fixture(scope="module")
def benched(tmp_path_factory):
    """`bench --quick` on one model at noise seeds 0 (with --record) and 5, run side by side: the
    two tests below read the same runs (a bench run is the slowest thing in this file)."""
    folder = tmp_path_factory.mktemp("bench")
    b = random_bundle(scale=1)
    # the same model twice: seed 0's --record rewrites its model.json while seed 5 may read it
    models = {seed: save_bundle(folder / f"model-a-{seed}", b.network, b.config) for seed in (0, 5)}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    runs = {seed: subprocess.Popen(
        [sys.executable, "-m", "enhancer", "bench", "--cases", "A", "--models", str(models[seed]), "--quick",
         "--noise-seed", str(seed), "--out", str(folder / str(seed)), *(["--record"] if seed == 0 else [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for seed in (0, 5)}
    for seed, run in runs.items():
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
    return models[0], {seed: folder / str(seed) for seed in runs}


def test_bench_writes_the_protocol_table_and_records_it(benched):
    model_a, outs = benched
    table = json.loads((outs[0] / "table.json").read_text())
    assert [e["set"] for e in table["results"]] == ["held-out phantoms", "high-contrast phantoms", "real HXN"]
    summary = table["results"][0]["summary"]
    assert set(summary) == {"input", "wiener", "rl_oracle", "network", "network_x8"}
    # with the true probe, oracle-tuned RL must beat the raw input: the baseline is real
    assert summary["rl_oracle"]["psnr"] > summary["input"]["psnr"]
    assert "| A | held-out phantoms | network |" in (outs[0] / "table.md").read_text()
    recorded = json.loads((model_a / "model.json").read_text())["benchmark"]
    assert recorded["case"] == "A" and recorded["results"][0]["summary"] == summary


def test_bench_draws_other_noise_on_request(benched):
    _, outs = benched
    tables = [json.loads((outs[seed] / "table.json").read_text()) for seed in (0, 5)]
    assert [t["noise_seed"] for t in tables] == [0, 5]
    first, other = (t["results"][0]["maps"]["input"][0]["psnr"] for t in tables)
    assert first != other and abs(first - other) < 1.0  # another draw of the same noise


def test_train_on_paired_scans(tmp_path):
    big = phantom("cell", 224, 2, seed=4)
    np.save(tmp_path / "fine.npy", big[:, 16:208, 8:208])
    np.save(tmp_path / "area.npy", big[:, 12:172, 20:180])
    assert cli("degrade", tmp_path / "area.npy", tmp_path / "coarse.npy", "--probe-fwhm-nm", 200,
               "--pixel-nm", 50, "--scale", 4).returncode == 0
    r = cli("train", tmp_path / "fine.npy", "--coarse", tmp_path / "coarse.npy", "--out", tmp_path / "m",
            "--probe-fwhm-nm", 200, "--pixel-nm", 50, "--scale", 4, "--steps", 4, "--blocks", 1, "--filters", 4)
    assert r.returncode == 0, r.stderr
    config = json.loads((tmp_path / "m" / "model.json").read_text())
    assert config["training"]["approach"] == "paired scans"
    assert config["training"]["data"]["coarse_files"] == ["coarse.npy"]
    r = cli("train", tmp_path / "fine.npy", "--coarse", tmp_path / "coarse.npy", tmp_path / "coarse.npy",
            "--out", tmp_path / "n", "--probe-fwhm-nm", 200, "--pixel-nm", 50, "--scale", 4, "--steps", 2)
    assert r.returncode == 2 and "one coarse scan per fine map" in r.stderr
