"""`python -m enhancer info FILE` on every format: JSON for good files, one line and exit 2 for bad.

Every file goes through the CLI's main() (the code `python -m enhancer` runs; each read still
happens in its own child process); a few also go through a real `python -m enhancer`, which
imports torch and so costs seconds each on a shared machine.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from formats_fixtures import (HXN_ELEMENTS, HXN_SET, hxn_arrays, write_hxn_zip, write_maps_v9,
                              write_maps_v10, write_pyxrf)
from hostile_files import make_hostile_files

REPO = Path(__file__).resolve().parents[1]


def info_main(capsys, path, *extra):
    from enhancer.cli import main

    code = main(["info", str(path), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def info_process(path, *extra):
    done = subprocess.run([sys.executable, "-m", "enhancer", "info", str(path), *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    return done.returncode, done.stdout, done.stderr


def _pixel(value):
    """info prints one number for square pixels, else [y, x]."""
    return None if value is None else (value, value) if isinstance(value, (int, float)) else tuple(value)


def _bad(path, words, code, out, err):
    err = err.strip()
    if code != 2 or "\n" in err or "Traceback" in err or out.strip():
        return f"{path.name}: exit {code}, stderr {err[:300]!r}"
    if not all(w.lower() in err.lower() for w in words):
        return f"{path.name}: {err!r} lacks {words}"
    return None


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return make_hostile_files(tmp_path_factory.mktemp("hostile"))


def test_info_on_every_hostile_file_exits_2_with_one_line(hostile, capsys):
    problems = [_bad(path, words, *info_main(capsys, path)) for path, words in hostile]
    assert [p for p in problems if p] == []


def test_python_m_enhancer_info_on_hostile_files(hostile):
    chosen = [c for c in hostile if c[0].name in ("truncated.h5", "external_link.h5", "png_named.tiff")]
    problems = [_bad(path, words, *info_process(path)) for path, words in chosen]
    assert len(chosen) == 3 and [p for p in problems if p] == []


def _good_files(tmp_path):
    write_maps_v10(tmp_path / "v10.h5")
    write_maps_v10(tmp_path / "v10_2d.h50", two_d_axes=True, pixel_um=(0.05, 0.05))
    write_maps_v9(tmp_path / "v9.h5")
    write_pyxrf(tmp_path / "pyxrf.h5")
    write_hxn_zip(tmp_path / "hxn.zip")
    np.save(tmp_path / "stack.npy", hxn_arrays())
    return {
        "v10.h5": ("maps-v10", ["Fe", "Zn", "Ca_K", "Pt_L"], [4, 12, 16], (100.0, 50.0)),
        "v10_2d.h50": ("maps-v10", ["Fe", "Zn", "Ca_K", "Pt_L"], [4, 12, 16], (50.0, 50.0)),
        "v9.h5": ("maps-v9", ["Fe", "Zn", "Cu"], [3, 10, 14], (200.0, 200.0)),
        "pyxrf.h5": ("pyxrf", ["Fe_K", "Zn_K", "Au_M"], [3, 10, 12], (300.0, 150.0)),
        "hxn.zip": ("tiff-set", HXN_ELEMENTS, [4, 160, 160], None),
        "stack.npy": ("npy", ["map_1", "map_2", "map_3", "map_4"], [4, 160, 160], None),
    }


def test_info_on_good_files(tmp_path, capsys):
    for name, (fmt, elements, shape, pixel) in _good_files(tmp_path).items():
        code, out, err = info_main(capsys, tmp_path / name)
        assert code == 0, err
        printed = json.loads(out)
        assert (printed["format"], printed["elements"], printed["shape"]) == (fmt, elements, shape), name
        if pixel is None:
            assert printed["pixel_size_nm"] is None
        else:
            assert _pixel(printed["pixel_size_nm"]) == pytest.approx(pixel, rel=0.03), name


def test_python_m_enhancer_info_on_the_real_hxn_folder_with_a_stated_pixel():
    code, out, err = info_process(HXN_SET, "--pixel-nm", "45")
    assert code == 0, err
    printed = json.loads(out)
    assert printed["format"] == "tiff-set" and printed["elements"] == HXN_ELEMENTS
    assert _pixel(printed["pixel_size_nm"]) == (45.0, 45.0)
