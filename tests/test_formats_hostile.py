"""Hostile files: a clear UserError for each, nothing crashes the caller, memory stays bounded."""
import json
import signal
import subprocess
import sys
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from formats_fixtures import write_maps_v10
from hostile_files import make_hostile_files

from enhancer import UserError
from enhancer.formats import check_hdf5_safe, read_map, read_map_safely
from enhancer.formats.safety import explain_exit

REQUIRED = ["empty.h5", "text_named.h5", "truncated.h5", "external_link.h5", "external_storage.h5",
            "virtual.h5", "huge_shape.h5", "compression_bomb.h5", "all_nan.h5", "names_mismatch.h5",
            "no_maps.h5", "strings.h5", "complex.h5", "png_named.tiff", "zip_named.h5",
            "traversal.zip", "one_pixel.h5"]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return make_hostile_files(tmp_path_factory.mktemp("hostile"))


def _problems(cases, reader):
    problems = []
    for path, words in cases:
        try:
            reader(path)
            problems.append(f"{path.name}: read without error")
        except UserError as exc:
            text = str(exc)
            missing = [w for w in words if w.lower() not in text.lower()]
            if missing or "\n" in text:
                problems.append(f"{path.name}: {text!r} lacks {missing} or is not one line")
    return problems


# Run in a fresh interpreter so that its peak memory (ru_maxrss) measures these reads alone.
# (ru_maxrss is no good here: Linux carries the forking parent's peak across exec, and pytest
# holds torch by the time this runs; VmHWM after a reset measures this process alone.)
_SCRIPT = """
import json, sys
from pathlib import Path
open("/proc/self/clear_refs", "w").write("5")  # reset the peak-RSS mark inherited from pytest
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from test_formats_hostile import _problems
from enhancer.formats import read_map, read_map_safely
cases = [(Path(p), w) for p, w in json.loads(sys.argv[3])]
problems = _problems(cases, read_map_safely if sys.argv[4] == "child" else read_map)
peak_mb = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
print(json.dumps({"problems": problems, "peak_mb": peak_mb}))
"""


def _run_all(cases, mode):
    here = Path(__file__).resolve().parent
    args = [sys.executable, "-c", _SCRIPT, str(here), str(here.parent),
            json.dumps([(str(p), w) for p, w in cases]), mode]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]  # the caller was not taken down
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_set_covers_the_issue(hostile):
    names = [p.name for p, _ in hostile]
    assert len(hostile) >= 15
    assert set(REQUIRED) <= set(names)
    assert all(p.exists() for p, _ in hostile)


def test_each_is_refused_in_a_child_with_memory_bounded(hostile):
    result = _run_all(hostile, "child")
    assert result["problems"] == []
    assert result["peak_mb"] < 250, result  # bombs declare 0.8-370 GB; none was loaded


def test_each_is_refused_in_process_too(hostile):
    result = _run_all(hostile, "in-process")
    assert result["problems"] == []
    assert result["peak_mb"] < 250, result


def test_a_pickle_is_never_run(hostile):
    pickle = next(p for p, _ in hostile if p.name == "pickle.npy")
    with pytest.raises(UserError):
        read_map(pickle)
    assert not (pickle.parent / "PICKLE_RAN").exists()


@pytest.mark.parametrize("name,words", [("external_link.h5", "external link"),
                                        ("external_storage.h5", "external storage"),
                                        ("virtual.h5", "virtual dataset")])
def test_structure_check_refuses_before_reading(hostile, name, words):
    path = next(p for p, _ in hostile if p.name == name)
    with pytest.raises(UserError, match=words):
        check_hdf5_safe(path)


def test_structure_check_passes_a_good_file(tmp_path):
    write_maps_v10(tmp_path / "good.h5", spectra_shape=(4096, 2000, 2000))
    check_hdf5_safe(tmp_path / "good.h5")  # big spectra are not a reason to refuse


def test_a_good_file_reads_the_same_in_a_child(tmp_path):
    path = tmp_path / "good.h5"
    write_maps_v10(path)
    inside, child = read_map(path, normalize="US_IC"), read_map_safely(path, normalize="US_IC")
    np.testing.assert_array_equal(child.data, inside.data)
    assert child.elements == inside.elements and child.pixel_size_nm == inside.pixel_size_nm
    assert list(child.scalers) == list(inside.scalers) and list(child.extras) == list(inside.extras)
    np.testing.assert_array_equal(child.x_axis_um, inside.x_axis_um)
    assert child.source == inside.source and child.provenance == inside.provenance


def test_a_slow_read_is_stopped(tmp_path):
    path = tmp_path / "good.h5"
    write_maps_v10(path)
    with pytest.raises(UserError, match="took longer than 0.01 s"):
        read_map_safely(path, timeout_s=0.01)


def test_a_map_larger_than_the_memory_limit_is_stopped(tmp_path):
    """3 x 5120 x 5120 float32 (315 MB) of honest data, read with 250 MB allowed."""
    path = tmp_path / "big.h5"
    rng = np.random.default_rng(0)
    plane = ((rng.random((1024, 1024)) < 0.05) * rng.integers(1, 50, (1024, 1024))).astype(np.float32)
    chunk = zlib.compress(plane.tobytes(), 6)  # ~27x: a sparse map, not a bomb
    with h5py.File(path, "w") as f:
        group = f.create_group("MAPS/XRF_Analyzed/Fitted")
        group["Channel_Names"] = np.array([b"Fe", b"Zn", b"Cu"], dtype="S256")
        ds = group.create_dataset("Counts_Per_Sec", shape=(3, 5120, 5120), dtype="f4",
                                  chunks=(1, 1024, 1024), compression="gzip")
        for e in range(3):
            for i in range(0, 5120, 1024):
                for j in range(0, 5120, 1024):
                    ds.id.write_direct_chunk((e, i, j), chunk)
    with pytest.raises(UserError, match="memory"):
        read_map_safely(path, memory_mb=250)


def test_a_crashed_reader_is_explained():
    text = explain_exit("scan.h5", -signal.SIGSEGV, "", 120, 4096)
    assert "crashed" in text and "SIGSEGV" in text and "scan.h5" in text
    assert "memory" in explain_exit("scan.h5", 1, "Traceback...\nMemoryError", 120, 4096)
    assert "CPU" in explain_exit("scan.h5", -signal.SIGXCPU, "", 120, 4096)
    assert "exit status 3" in explain_exit("scan.h5", 3, "", 120, 4096)


def test_walk_survives_a_hard_link_cycle_and_finds_what_is_below(tmp_path):
    path = tmp_path / "cycle.h5"
    with h5py.File(path, "w") as f:
        deep = f.create_group("MAPS/XRF_Analyzed/Fitted")
        deep["loop"] = f["MAPS"]  # a hard link back up: legal HDF5, endless for a naive walk
        deep["Counts_Per_Sec"] = h5py.ExternalLink("elsewhere.h5", "/data")
    with pytest.raises(UserError, match="external link"):
        check_hdf5_safe(path)
