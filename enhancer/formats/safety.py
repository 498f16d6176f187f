"""Untrusted files are parsed in a child process with memory and time limits, and a result
that copies an upload and appends to it (the HDF5 layouts) is written in one too.

A malformed HDF5 or TIFF can crash the C library that reads it (h5py #1183, #2569; the HDF5
CVE list); in a child that crash becomes a UserError instead of taking the web or worker
process down. The child is a fresh interpreter started with subprocess, not multiprocessing:
Celery's prefork workers are daemonic and may not have multiprocessing children.

The child hands its result back as plain .npy files and JSON in a temp folder, never as a
pickle: a child that parsed a hostile file is itself untrusted, and unpickling what it sent
could run code in the caller. The arrays are loaded with allow_pickle=False and re-checked.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from enhancer import UserError
from enhancer.xrfmap import XRFMap

ROOT = Path(__file__).resolve().parents[2]  # the folder holding the enhancer package

# Limits are set first, before numpy/h5py are imported, so that they cover everything.
_BOOT = """
import json, resource, sys
args = json.loads(sys.stdin.read())
limit = args["memory_mb"] * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
resource.setrlimit(resource.RLIMIT_CPU, (args["cpu_s"], args["cpu_s"] + 5))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
sys.path.insert(0, args["root"])
import importlib
module, entry = args["entry"].split(":")  # e.g. enhancer.formats.safety:child_main
getattr(importlib.import_module(module), entry)(args)
"""


def _dump(xrf: XRFMap, out: Path) -> None:
    """An XRFMap as .npy files and meta.json in out (what _load_result reads back)."""
    from enhancer.formats.rules import jsonable

    out.mkdir(exist_ok=True)
    arrays = {"data": xrf.data}
    if xrf.x_axis_um is not None:
        arrays["x_axis"] = xrf.x_axis_um
    if xrf.y_axis_um is not None:
        arrays["y_axis"] = xrf.y_axis_um
    for i, plane in enumerate(xrf.scalers.values()):
        arrays[f"scaler_{i}"] = plane
    for i, plane in enumerate(xrf.extras.values()):
        arrays[f"extra_{i}"] = plane
    for key, array in arrays.items():
        np.save(out / f"{key}.npy", np.asarray(array), allow_pickle=False)
    meta = {
        "elements": xrf.elements, "pixel_size_nm": xrf.pixel_size_nm, "units": xrf.units,
        "source_format": xrf.source_format, "source": xrf.source, "provenance": xrf.provenance,
        "scalers": list(xrf.scalers), "extras": list(xrf.extras),
    }
    (out / "meta.json").write_text(json.dumps(jsonable(meta)))


@contextmanager
def reported(out: Path):
    """The child's body runs inside this: any error is left in out/error.json as a kind and a
    message (the parent turns it into words), never a traceback."""
    try:
        yield
    except UserError as exc:
        _error(out, "user", str(exc))
    except MemoryError:
        _error(out, "memory", "")
    except Exception as exc:  # a library error no rule foresaw: still a message, not a traceback
        _error(out, "other", f"{type(exc).__name__}: {str(exc)[:300]}")


def child_main(args: dict) -> None:
    """Runs in the child: read, then leave the result (or the error) in args["out_dir"]."""
    out = Path(args["out_dir"])
    with reported(out):
        from enhancer.formats.reading import read_map

        _dump(read_map(args["path"], **args["kwargs"]), out)


def probe_child_main(args: dict) -> None:
    """Runs in the child: read a measured probe (enhancer.probe.read_probe), leave it as probe.npy."""
    out = Path(args["out_dir"])
    with reported(out):
        from enhancer.probe import read_probe

        np.save(out / "probe.npy", read_probe(args["path"], args.get("dataset")), allow_pickle=False)
        (out / "meta.json").write_text("{}")


def _error(out: Path, kind: str, message: str) -> None:
    (out / "error.json").write_text(json.dumps({"kind": kind, "message": message}))


def explain_exit(name: str, rc: int, stderr_tail: str, timeout_s: float, memory_mb: int) -> str:
    """The user's message for a child that ended without a result."""
    if "MemoryError" in stderr_tail or "std::bad_alloc" in stderr_tail:
        return f"reading {name} needs more than {memory_mb} MB of memory; stopped"
    if rc < 0:
        sig = -rc
        if sig == signal.SIGXCPU:
            return f"reading {name} used more than {timeout_s:g} s of CPU; stopped"
        if sig == signal.SIGKILL:
            return f"reading {name} was killed (out of memory?); the file was not read"
        label = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return (f"{name} crashed the file reader ({label}); the file is damaged or hostile "
                "and was not read")
    return f"{name} could not be read: the reader stopped with exit status {rc}"


def read_map_safely(path, *, timeout_s=120, memory_mb=4096, **kwargs) -> XRFMap:
    """read_map in a child process limited to memory_mb of address space and timeout_s."""
    unknown = set(kwargs) - {"method", "pixel_nm", "normalize"}
    if unknown:  # a caller's mistake, not the file's: fail here, not as a message about the file
        raise TypeError(f"read_map_safely got unexpected arguments: {sorted(unknown)}")
    path = Path(path).absolute()
    with tempfile.TemporaryDirectory(prefix="xrfweb-read-") as tmp:
        out = Path(tmp)
        _run_child("enhancer.formats.safety:child_main", {"path": str(path), "kwargs": kwargs}, out, path.name,
                   timeout_s, memory_mb)
        return _load_result(out)


def read_probe_safely(path, dataset: str | None = None, *, timeout_s=60, memory_mb=2048) -> np.ndarray:
    """read_probe (an uploaded probe file, dataset: an HDF5 dataset's path) in a limited child
    process; the intensity comes back as .npy and is checked again here."""
    path = Path(path).absolute()
    with tempfile.TemporaryDirectory(prefix="xrfweb-probe-") as tmp:
        out = Path(tmp)
        _run_child("enhancer.formats.safety:probe_child_main", {"path": str(path), "dataset": dataset}, out,
                   path.name, timeout_s, memory_mb)
        a = np.load(out / "probe.npy", allow_pickle=False)
    if a.dtype.kind != "f" or a.ndim != 2 or not np.isfinite(a).all() or a.min() < 0 or not a.sum() > 0:
        raise UserError("the probe reader returned something other than a probe intensity; refused")
    return a


def write_result_safely(original: XRFMap, enhanced: XRFMap, out_path, provenance, *,
                        timeout_s=600, memory_mb=8192) -> Path:
    """write_result for a layout that copies the upload and opens the copy read-write (HDF5),
    in a child process with the same limits as reading: the upload's bytes are never opened
    by h5py in the calling (web or worker) process. The upload is original.source["path"],
    which the caller must have set from its own record (the web: the dataset row)."""
    path = Path(original.source.get("path", "")).absolute()
    out_path = Path(out_path).absolute()
    with tempfile.TemporaryDirectory(prefix="xrfweb-write-") as tmp:
        out = Path(tmp)
        _dump(original, out / "original")
        _dump(enhanced, out / "enhanced")
        _run_child("enhancer.formats.write:child_write", {"path": str(path), "result": str(out_path),
                                   "provenance": provenance or {}}, out, path.name,
                   timeout_s, memory_mb, doing="writing the result of")
    return out_path


def _run_child(entry: str, extra: dict, out: Path, name: str, timeout_s, memory_mb,
               doing: str = "reading") -> None:
    """Run entry ("module:function") with args in a fresh, limited interpreter; raise its error
    as a UserError."""
    args = {**extra, "entry": entry, "out_dir": str(out), "root": str(ROOT),
            "memory_mb": int(memory_mb), "cpu_s": int(timeout_s) + 1}
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               HDF5_PLUGIN_PATH=str(out))  # no compression plugin is loaded from the system
    stderr_path = out / "stderr.txt"
    try:
        with open(stderr_path, "wb") as stderr:
            proc = subprocess.run([sys.executable, "-c", _BOOT], input=json.dumps(args).encode(),
                                  stdout=subprocess.DEVNULL, stderr=stderr, env=env, cwd=out,
                                  timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise UserError(f"{doing} {name} took longer than {timeout_s:g} s; stopped") from None
    error = out / "error.json"
    if error.is_file():
        err = json.loads(error.read_text())
        if err["kind"] == "memory":
            raise UserError(f"{doing} {name} needs more than {memory_mb} MB of memory; stopped")
        if err["kind"] == "other":
            if doing == "reading":
                raise UserError(f"{name} could not be read (damaged?): {err['message']}")
            raise UserError(f"{doing} {name} failed: {err['message']}")
        raise UserError(err["message"])
    if proc.returncode != 0 or not (out / "meta.json").is_file():
        tail = stderr_path.read_bytes()[-4000:].decode(errors="replace")
        raise UserError(explain_exit(name, proc.returncode, tail, timeout_s, memory_mb))


def _load_result(out: Path) -> XRFMap:
    meta = json.loads((out / "meta.json").read_text())

    def load(key):
        array = np.load(out / f"{key}.npy", allow_pickle=False)
        if array.dtype.kind not in "iuf":
            raise UserError("the file reader returned something other than numbers; refused")
        return array

    axis = {k: load(k) if (out / f"{k}.npy").is_file() else None for k in ("x_axis", "y_axis")}
    pixel = meta["pixel_size_nm"]
    return XRFMap(
        elements=[str(e) for e in meta["elements"]], data=load("data").astype(np.float32, copy=False),
        pixel_size_nm=tuple(float(v) for v in pixel) if pixel else None,
        x_axis_um=axis["x_axis"], y_axis_um=axis["y_axis"],
        scalers={n: load(f"scaler_{i}") for i, n in enumerate(meta["scalers"])},
        extras={n: load(f"extra_{i}") for i, n in enumerate(meta["extras"])},
        units=str(meta["units"]), source_format=str(meta["source_format"]),
        source=meta["source"], provenance=meta["provenance"],
    )
