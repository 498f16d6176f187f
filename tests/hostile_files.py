"""Hostile and broken map files, for the formats tests and the web's reliability tests.

make_hostile_files(dirpath) -> [(path, words)]: reading each file must raise enhancer.UserError
whose message contains every word in `words` (case-insensitive), without crashing the caller
and without reading more than the limits allow. File names lie on purpose (a zip named .h5, a
PNG named .tiff): formats are told by content.

Standalone on purpose (numpy, h5py, tifffile, Pillow only) so other test suites can import it.
"""
from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

import h5py
import numpy as np
import tifffile
from PIL import Image

MAPS = "MAPS/XRF_Analyzed/Fitted"


def _maps_v10(path, data=None, names=None, **dataset_kwargs):
    """A minimal MAPS v10 file; data=None leaves Counts_Per_Sec to the caller."""
    f = h5py.File(path, "w")
    f.create_dataset("MAPS/version", data=np.array([10.0], np.float32))
    group = f.require_group(MAPS)
    if names is not None:
        group.create_dataset("Channel_Names", data=np.array([n.encode() for n in names], dtype="S256"))
    if data is not None:
        group.create_dataset("Counts_Per_Sec", data=data, **dataset_kwargs)
    return f


def _good_maps(count=2, rows=8, cols=8):
    return np.random.default_rng(0).uniform(1, 10, (count, rows, cols)).astype(np.float32)


class _PickleBomb:
    """An object array member that would create a marker file if anyone unpickled it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _tiff_bytes(array) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.asarray(array, dtype=np.float32))
    return buf.getvalue()


def make_hostile_files(dirpath) -> list[tuple[Path, list[str]]]:
    d = Path(dirpath)
    d.mkdir(parents=True, exist_ok=True)
    targets = d / "_targets"  # files the hostile ones point at; not themselves in the list
    targets.mkdir(exist_ok=True)
    cases: list[tuple[Path, list[str]]] = []

    def add(name, words):
        cases.append((d / name, words))
        return d / name

    add("empty.h5", ["empty"]).write_bytes(b"")
    add("text_named.h5", ["text file"]).write_text("Fe,Zn\n1,2\n")

    whole = d / "_targets" / "whole.h5"
    _maps_v10(whole, np.zeros((3, 300, 300), np.float32), ["Fe", "Zn", "Cu"]).close()
    raw = whole.read_bytes()
    add("truncated.h5", ["damaged"]).write_bytes(raw[: len(raw) // 2])

    with h5py.File(targets / "other.h5", "w") as f:
        f["data"] = _good_maps()
    with _maps_v10(add("external_link.h5", ["external link"]), names=["Fe", "Zn"]) as f:
        f[f"{MAPS}/Counts_Per_Sec"] = h5py.ExternalLink(str(targets / "other.h5"), "/data")

    (targets / "secret.txt").write_bytes(b"x" * 512)
    with _maps_v10(add("external_storage.h5", ["external storage"]), names=["Fe", "Zn"]) as f:
        f[MAPS].create_dataset("Counts_Per_Sec", shape=(2, 8, 8), dtype="f4",
                               external=[(str(targets / "secret.txt"), 0, 512)])

    layout = h5py.VirtualLayout(shape=(2, 8, 8), dtype="f4")
    layout[:] = h5py.VirtualSource(str(targets / "other.h5"), "data", shape=(2, 8, 8))
    with _maps_v10(add("virtual.h5", ["virtual dataset"]), names=["Fe", "Zn"]) as f:
        f[MAPS].create_virtual_dataset("Counts_Per_Sec", layout)

    with _maps_v10(add("huge_shape.h5", ["too large"]), names=[f"m{i}" for i in range(20)]) as f:
        f[MAPS].create_dataset("Counts_Per_Sec", shape=(20, 100_000, 100_000), dtype="f4",
                               chunks=(1, 512, 512))

    # 805 MB of zeros stored in ~0.8 MB: written chunk by chunk, never held in memory here
    with _maps_v10(add("compression_bomb.h5", ["compression bomb"]), names=["Fe", "Zn", "Cu"]) as f:
        ds = f[MAPS].create_dataset("Counts_Per_Sec", shape=(3, 8192, 8192), dtype="f4",
                                    chunks=(1, 1024, 1024), compression="gzip")
        chunk = zlib.compress(bytes(4 * 1024 * 1024), 9)
        for e in range(3):
            for i in range(0, 8192, 1024):
                for j in range(0, 8192, 1024):
                    ds.id.write_direct_chunk((e, i, j), chunk)

    nan = _good_maps()
    nan[0] = np.nan
    _maps_v10(add("all_nan.h5", ["Fe", "no finite value"]), nan, ["Fe", "Zn"]).close()
    _maps_v10(add("names_mismatch.h5", ["3 names for 4 maps"]), _good_maps(4), ["Fe", "Zn", "Cu"]).close()
    with h5py.File(add("no_maps.h5", ["no maps"]), "w") as f:
        f.create_dataset("MAPS/Scan/x_axis", data=np.arange(8.0))
    with h5py.File(add("not_maps.h5", ["neither a MAPS", "PyXRF"]), "w") as f:
        f.create_dataset("entry/data", data=np.arange(8.0))
    with h5py.File(add("pyxrf_spectra_only.h5", ["no fitted"]), "w") as f:
        f.create_dataset("xrfmap/detsum/counts", data=np.ones((4, 4, 16), np.float32))
    _maps_v10(add("strings.h5", ["real numbers", "text"]), np.full((2, 8, 8), b"Fe", dtype="S8"),
              ["Fe", "Zn"]).close()
    _maps_v10(add("complex.h5", ["complex"]), _good_maps().astype(np.complex64), ["Fe", "Zn"]).close()
    _maps_v10(add("one_pixel.h5", ["too small"]), _good_maps(2, 1, 1), ["Fe", "Zn"]).close()

    Image.new("RGB", (16, 16), "red").save(add("png_named.tiff", ["PNG"]), format="PNG")
    with zipfile.ZipFile(add("zip_named.h5", ["zip", "no TIFF"]), "w") as zf:
        zf.writestr("notes.txt", "not maps")
    with zipfile.ZipFile(add("traversal.zip", ["unsafe name"]), "w") as zf:
        zf.writestr("SUM_maps_XRF_Fe_K.tiff", _tiff_bytes(_good_maps(1)[0]))
        zf.writestr("../../SUM_maps_XRF_Zn_K.tiff", _tiff_bytes(_good_maps(1)[0]))
    with zipfile.ZipFile(add("zip_bomb.zip", ["compression bomb"]), "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("SUM_maps_XRF_Fe_K.tiff", "w", force_zip64=True) as member:
            member.write(_tiff_bytes(_good_maps(1)[0])[:8])
            block = bytes(1024 * 1024)
            for _ in range(100):
                member.write(block)

    np.save(add("pickle.npy", ["Python objects"]),
            np.array([_PickleBomb(d / "PICKLE_RAN")], dtype=object), allow_pickle=True)
    with open(add("huge_header.npy", ["too large"]), "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (100_000, 100_000, 10)})
        fh.write(bytes(64))
    with open(add("truncated.npy", ["truncated"]), "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (3, 50, 50)})
        fh.write(bytes(3 * 50 * 50 * 2))

    # a 4 x 4 TIFF whose tags declare 60000 x 60000 float32 (14 GB)
    tiff_bomb = add("tiff_bomb.tiff", ["too large"])
    tiff_bomb.write_bytes(_tiff_bytes(_good_maps(1, 4, 4)[0]))
    with tifffile.TiffFile(tiff_bomb) as tif:
        offsets = [tif.pages[0].tags[name].valueoffset for name in ("ImageWidth", "ImageLength")]
        kinds = [tif.pages[0].tags[name].dtype for name in ("ImageWidth", "ImageLength")]
    with open(tiff_bomb, "r+b") as fh:
        for offset, kind in zip(offsets, kinds):
            fh.seek(offset)
            fh.write((60000).to_bytes(2 if int(kind) == 3 else 4, "little"))
    return cases
