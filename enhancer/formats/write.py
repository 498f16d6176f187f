"""A result goes back in the input's layout, written atomically (temp name, then os.replace).

HDF5 (MAPS v10/v9, PyXRF): a copy of the input file with the enhanced maps added beside the
originals, which stay byte-identical (the copy is made with shutil, then only new objects are
created). TIFF set -> TIFF set (folder or zip), TIFF -> multi-page TIFF, NPY -> NPY (+ sidecar
JSON), NPZ -> NPZ. Enhanced maps may be on a finer grid (scale S): their pixel size is stored.

Trust maps (trustmaps.py: extras "uncertainty:<El>", "chi2:<El>" on the enhanced grid) go beside
the enhanced maps, one (E, H, W) float32 stack per kind in the enhanced maps' element order:
- MAPS v10: /MAPS/XRF_Analyzed/<method>_Enhanced/Uncertainty, .../Chi2
- MAPS v9:  /MAPS/<XRF_fits|XRF_roi|XRF_roi_plus>_Enhanced_uncertainty, ..._Enhanced_chi2
- PyXRF:    xrfmap/<det>/<xrf_fit|xrf_roi>_enhanced_uncertainty, ..._enhanced_chi2
- TIFF set: <name>_enhanced_uncertainty.tiff, <name>_enhanced_chi2.tiff per element
- TIFF, NPY: sidecars <out>.uncertainty.npy, <out>.chi2.npy (out.npy -> out.uncertainty.npy),
  listed in the result's metadata ("trust_maps"); NPZ: arrays `uncertainty`, `chi2`.
Other extras (fit channels such as Num_Iter) are not written. A result without trust maps has
none of these. Every file of a result is written under a temp name and all are swapped in
together at the end, the main file last: a failure leaves none of them behind.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import zipfile
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

import enhancer
from enhancer import UserError
from enhancer.formats import maps, npy, pyxrf, rules, tiff, trustmaps
from enhancer.xrfmap import XRFMap, with_fine_axes


@contextmanager
def atomic_file(out_path):
    """Yield a temp path beside out_path; on success it replaces out_path, on failure it goes."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        tmp.chmod(0o644)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_folder(out_path):
    """Same for a folder: built under a temp name, then swapped in (an old one is removed)."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield tmp
        tmp.chmod(0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / "x")
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_members(out_path, members, as_zip: bool) -> None:
    """(name, bytes) pairs into a zip or a folder, atomically."""
    if as_zip:
        with atomic_file(out_path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, payload in members:
                zf.writestr(name, payload)
    else:
        with atomic_folder(out_path) as tmp:
            for name, payload in members:
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_bytes(payload)


def result_attrs(original: XRFMap, enhanced: XRFMap, provenance: dict) -> dict:
    """What is stored beside enhanced maps: model, probe, scale, software version, date..."""
    prov = {**enhanced.provenance, **(provenance or {})}
    enhancement = prov.get("enhancement") if isinstance(prov.get("enhancement"), dict) else {}
    fields = {**enhancement, **{k: v for k, v in prov.items() if k in ("model", "probe", "scale")}}
    scale = enhanced.data.shape[-1] / original.data.shape[-1]
    attrs = {
        "software": "xrfweb enhancer",
        "software_version": enhancer.__version__,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "scale": int(scale) if float(scale).is_integer() else float(scale),
        "source_method": original.source.get("method") or "",
    }
    for key, value in fields.items():
        if value is None:
            continue
        attrs[key] = value if isinstance(value, (str, int, float)) else json.dumps(value, default=str)
    if enhanced.pixel_size_nm:
        attrs["pixel_size_nm"] = np.asarray(enhanced.pixel_size_nm, dtype=np.float64)
    attrs["provenance"] = json.dumps(prov, default=str)
    return attrs


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


HDF5_LAYOUTS = ("maps-v10", "maps-v9", "pyxrf")
_HDF5_SUFFIX = re.compile(r"^\.(h5\d*|h5t|hdf5?|he5)$")  # .h50.. are MAPS' per-detector files
BY_SUFFIX = {".npy": "npy", ".npz": "npz", ".tif": "tiff", ".tiff": "tiff", ".zip": "tiff-set",
             "": "tiff-set"}  # no suffix: a folder of TIFFs
KEEPS = {"maps-v10": ".h5 (or .hdf5, .h50..)", "maps-v9": ".h5 (or .hdf5, .h50..)",
         "pyxrf": ".h5 (or .hdf5)", "tiff-set": ".zip or a folder (no suffix)", "tiff": ".tif or .tiff",
         "npy": ".npy", "npz": ".npz"}


def output_layout(original: XRFMap, out: Path) -> str:
    """The layout the output's name asks for: its suffix, never the input's layout under another
    suffix. HDF5 can only be written from an HDF5 input (the result is a copy of it)."""
    suffix, fmt = out.suffix.lower(), original.source_format
    keeps = f"write {KEEPS.get(fmt, 'the same suffix')} to keep the input's layout ({fmt})"
    if _HDF5_SUFFIX.match(suffix):
        if fmt in HDF5_LAYOUTS:
            return fmt
        raise UserError(f"{out.name}: an HDF5 result is a copy of an HDF5 input, and this input is "
                        f"{fmt}; {keeps}, or write .npy, .npz, .tif, .zip or a folder")
    if suffix in BY_SUFFIX:
        return BY_SUFFIX[suffix]
    raise UserError(f"{out.name}: {suffix} is no map format written here; {keeps}, or write .npy, "
                    ".npz, .tif, .zip or a folder")


def write_result(original: XRFMap, enhanced: XRFMap, out_path, provenance: dict | None = None,
                 sandboxed: bool = False) -> Path:
    """Write enhanced maps (and their trust maps) in the layout the output's suffix names (the
    input's own when it keeps it: see output_layout); returns the path written. The HDF5 layouts
    copy original.source["path"] and append to the copy with h5py: that runs in a limited child
    process (safety.write_result_safely), as every read of a file does; `sandboxed` says this is
    that child."""
    out = Path(out_path)
    fmt = output_layout(original, out)
    if fmt != original.source_format:  # another layout: nothing of the input's file names carries over
        original = replace(original, source_format=fmt,
                           source={k: v for k, v in original.source.items() if k not in ("elements", "datasets")})
    if fmt in HDF5_LAYOUTS and not sandboxed:
        from enhancer.formats.safety import write_result_safely

        return write_result_safely(original, enhanced, out, provenance)
    trust = trustmaps.stacks(enhanced)  # a malformed set fails here, before anything is written
    attrs = result_attrs(original, enhanced, provenance or {})
    listing = {"trust_maps": list(trust)} if trust else {}
    if fmt in ("maps-v10", "maps-v9", "pyxrf"):
        src = Path(original.source.get("path", ""))
        if not src.is_file():
            raise UserError(f"the original file {src} is gone; the result cannot be written in its layout")
        if out.resolve() == src.resolve():
            raise UserError("the result would overwrite the original file; choose another name")
        scale = enhanced.shape[-1] / original.shape[-1]
        if float(scale).is_integer():  # the enhanced grid's own axes, written beside its maps
            enhanced = with_fine_axes(original, enhanced, int(scale))
        with atomic_file(out) as tmp:
            shutil.copyfile(src, tmp)
            with h5py.File(tmp, "r+") as f:
                (pyxrf if fmt == "pyxrf" else maps).write(f, original, enhanced, attrs, trust)
    elif fmt == "tiff-set":
        as_zip = out.suffix.lower() == ".zip"
        write_members(out, tiff.write_set_members(original, enhanced, attrs, trust), as_zip)
    elif fmt in ("tiff", "npy"):
        # several files: all written under temp names, swapped in on leaving, the main one last
        with ExitStack() as files:
            main = files.enter_context(atomic_file(out))
            if fmt == "tiff":
                meta = {"elements": enhanced.elements, "units": enhanced.units, **attrs, **listing}
                main.write_bytes(tiff.tiff_bytes(enhanced.data, meta, enhanced.pixel_size_nm))
            else:
                data, meta = npy.npy_bytes_and_sidecar(original, enhanced, {**attrs, **listing})
                _save_npy(main, data)
                side = files.enter_context(atomic_file(out.with_name(out.name + ".json")))
                side.write_text(json.dumps(rules.jsonable(meta), indent=2))
            for kind, stack in trust.items():
                _save_npy(files.enter_context(atomic_file(trustmaps.sidecar(out, kind))),
                          npy.as_input_shape(original, stack) if fmt == "npy" else stack)
    elif fmt == "npz":
        with atomic_file(out) as tmp, open(tmp, "wb") as fh:
            npy.save_npz(fh, enhanced, rules.jsonable(attrs), trust)
    else:
        raise UserError(f"cannot write results in the layout {fmt!r}; export them as TIFF, PNG or CSV")
    return out


def child_write(args: dict) -> None:
    """Runs in the child: copy the upload and append the enhanced maps (write_result)."""
    from enhancer.formats.safety import _load_result, reported  # the child's own helpers

    out = Path(args["out_dir"])
    with reported(out):
        original, enhanced = _load_result(out / "original"), _load_result(out / "enhanced")
        original.source["path"] = args["path"]  # the caller's, never what a reader child said
        write_result(original, enhanced, args["result"], args["provenance"], sandboxed=True)
        (out / "meta.json").write_text("{}")
