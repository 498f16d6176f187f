"""`python -m enhancer info FILE` on every format: JSON for good files, one line and exit 2 for bad."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from formats_fixtures import (HXN_ELEMENTS, HXN_SET, hxn_arrays, write_hxn_zip, write_maps_v9,
                              write_maps_v10, write_pyxrf)
from hostile_files import make_hostile_files

pytestmark = pytest.mark.skipif(importlib.util.find_spec("enhancer.cli") is None,
                                reason="enhancer.cli (the lead's CLI) is not there yet")
REPO = Path(__file__).resolve().parents[1]


def info(path, *extra):
    return subprocess.run([sys.executable, "-m", "enhancer", "info", str(path), *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=120)


def _pixel(value):
    """info prints one number for square pixels, else [y, x]."""
    return None if value is None else (value, value) if isinstance(value, (int, float)) else tuple(value)


def test_info_on_hostile_files_exits_2_with_one_line(tmp_path):
    problems = []
    for path, words in make_hostile_files(tmp_path / "hostile"):
        done = info(path)
        err = done.stderr.strip()
        if done.returncode != 2 or "\n" in err or "Traceback" in err or done.stdout.strip():
            problems.append(f"{path.name}: exit {done.returncode}, stderr {err[:300]!r}")
        elif not all(w.lower() in err.lower() for w in words):
            problems.append(f"{path.name}: {err!r} lacks {words}")
    assert problems == []


def test_info_on_good_files(tmp_path):
    write_maps_v10(tmp_path / "v10.h5")
    write_maps_v10(tmp_path / "v10_2d.h50", two_d_axes=True, pixel_um=(0.05, 0.05))
    write_maps_v9(tmp_path / "v9.h5")
    write_pyxrf(tmp_path / "pyxrf.h5")
    write_hxn_zip(tmp_path / "hxn.zip")
    np.save(tmp_path / "stack.npy", hxn_arrays())
    expected = {
        "v10.h5": ("maps-v10", ["Fe", "Zn", "Ca_K", "Pt_L"], [4, 12, 16], (100.0, 50.0)),
        "v10_2d.h50": ("maps-v10", ["Fe", "Zn", "Ca_K", "Pt_L"], [4, 12, 16], (50.0, 50.0)),
        "v9.h5": ("maps-v9", ["Fe", "Zn", "Cu"], [3, 10, 14], (200.0, 200.0)),
        "pyxrf.h5": ("pyxrf", ["Fe_K", "Zn_K", "Au_M"], [3, 10, 12], (300.0, 150.0)),
        "hxn.zip": ("tiff-set", HXN_ELEMENTS, [4, 160, 160], None),
        "stack.npy": ("npy", ["map_1", "map_2", "map_3", "map_4"], [4, 160, 160], None),
    }
    for name, (fmt, elements, shape, pixel) in expected.items():
        done = info(tmp_path / name)
        assert done.returncode == 0, done.stderr
        printed = json.loads(done.stdout)
        assert (printed["format"], printed["elements"], printed["shape"]) == (fmt, elements, shape), name
        if pixel is None:
            assert printed["pixel_size_nm"] is None
        else:
            assert _pixel(printed["pixel_size_nm"]) == pytest.approx(pixel, rel=0.03), name


def test_info_on_the_real_hxn_folder_with_a_stated_pixel():
    done = info(HXN_SET, "--pixel-nm", "45")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["format"] == "tiff-set" and _pixel(printed["pixel_size_nm"]) == (45.0, 45.0)
