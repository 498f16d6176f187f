"""Trust maps (extras "uncertainty:<El>", "chi2:<El>") travel in result files, in every layout.

Each layout is checked twice: through read_map (the round trip) and by opening the file with
h5py / tifffile / numpy directly at the names the formats README documents (the contract).
"""
import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
from formats_fixtures import (dataset_digests, element_maps, file_digest, tiff_file_bytes,
                              write_maps_v9, write_maps_v10, write_pyxrf)

from enhancer import UserError
from enhancer.formats import hdf5, npy, read_map, read_map_safely, tiff, write_result
from enhancer.formats import write as write_module

KINDS = ("uncertainty", "chi2")
LAYOUTS = ["maps-v10", "maps-v9", "pyxrf", "tiff-set-folder", "tiff-set-zip", "tiff", "npy-2d",
           "npy-3d", "npz"]
HDF5 = {"maps-v10": "Fitted_Enhanced", "maps-v9": "XRF_fits_Enhanced", "pyxrf": "xrf_fit_enhanced"}
TIFF_SET = ["SUM_maps_XRF_Fe_K", "SUM_maps_XRF_Zn_K", "SUM_maps_XRF_Ca_K"]
OUT = {"maps-v10": "out.h5", "maps-v9": "out.h5", "pyxrf": "out.h5", "tiff-set-folder": "out",
       "tiff-set-zip": "out.zip", "tiff": "out.tif", "npy-2d": "out.npy", "npy-3d": "out.npy",
       "npz": "out.npz"}


def make_input(layout, folder: Path) -> Path:
    """A small input file of the layout, in folder/in/."""
    src = folder / "in"
    src.mkdir()
    maps = element_maps(3, 12, 16, seed=9)
    if layout == "maps-v10":
        write_maps_v10(src / "scan.h5")
        return src / "scan.h5"
    if layout == "maps-v9":
        write_maps_v9(src / "old.h5")
        return src / "old.h5"
    if layout == "pyxrf":
        write_pyxrf(src / "scan2D.h5")
        return src / "scan2D.h5"
    if layout == "tiff-set-folder":
        for stem, plane in zip(TIFF_SET, maps):
            (src / f"{stem}.tiff").write_bytes(tiff_file_bytes(plane))
        return src
    if layout == "tiff-set-zip":
        with zipfile.ZipFile(src / "set.zip", "w") as zf:
            for stem, plane in zip(TIFF_SET, maps):
                zf.writestr(f"{stem}.tiff", tiff_file_bytes(plane))
        return src / "set.zip"
    if layout == "tiff":
        tifffile.imwrite(src / "stack.tif", maps, photometric="minisblack")
        return src / "stack.tif"
    if layout == "npz":
        np.savez(src / "maps.npz", Fe=maps[0], Zn=maps[1])
        return src / "maps.npz"
    np.save(src / "one.npy", maps[0] if layout == "npy-2d" else maps)
    return src / "one.npy"


def read_input(layout, src):
    return read_map(src) if layout in HDF5 else read_map(src, pixel_nm=50)


def enhanced_of(original, trust=True, scale=2, seed=0):
    """What enhance_map + attach_trust give: finer maps, and per element an uncertainty and a chi^2
    map on the fine grid (distinct random values, so any mix-up of elements or kinds shows).
    Num_Iter is an extra that is not a trust map."""
    data = np.kron(original.data, np.ones((1, scale, scale), np.float32)) + 0.5
    pixel = tuple(p / scale for p in original.pixel_size_nm) if original.pixel_size_nm else (25.0, 25.0)
    out = original.with_data(data, pixel_size_nm=pixel)
    rng = np.random.default_rng(seed)
    out.extras["Num_Iter"] = np.full(data.shape[1:], 7.0, np.float32)
    if trust:
        for kind in KINDS:
            for el in original.elements:
                out.extras[f"{kind}:{el}"] = rng.uniform(0, 5, data.shape[1:]).astype(np.float32)
    return out


def stored_trust(layout, out: Path, original) -> dict:
    """{kind: (E, H, W)} exactly where the README says, read without enhancer.formats."""
    found = {}
    if layout in HDF5:
        with h5py.File(out, "r") as f:
            if layout == "maps-v10":
                group = f["MAPS/XRF_Analyzed/Fitted_Enhanced"]
                names = [n.decode().rstrip("\x00") for n in group["Channel_Names"][()]]
                places = {"uncertainty": group.get("Uncertainty"), "chi2": group.get("Chi2")}
            else:
                base = "MAPS/XRF_fits_Enhanced" if layout == "maps-v9" else "xrfmap/detsum/xrf_fit_enhanced"
                names = [n.decode().rstrip("\x00") for n in f[base + ("_channel_names" if layout == "maps-v9"
                                                                      else "_name")][()]]
                places = {k: f.get(f"{base}_{k}") for k in KINDS}
            assert names == original.elements  # the stacks follow the enhanced maps' names
            for kind, ds in places.items():
                if ds is not None:
                    assert ds.dtype == np.float32
                    found[kind] = ds[()]
    elif layout.startswith("tiff-set"):
        stems = [f"{Path(original.source['elements'][el]).stem}_enhanced_{{}}.tiff"
                 for el in original.elements]  # one file per element, named after its map
        if layout == "tiff-set-folder":
            members = {p.name: p.read_bytes() for p in out.iterdir()}
        else:
            with zipfile.ZipFile(out) as zf:
                members = {n: zf.read(n) for n in zf.namelist()}
        for kind in KINDS:
            if stems[0].format(kind) in members:
                found[kind] = np.stack([tifffile.imread(io.BytesIO(members[s.format(kind)])) for s in stems])
    elif layout == "npz":
        with np.load(out) as z:
            found = {k: z[k] for k in KINDS if k in z.files}
    else:  # TIFF and NPY: sidecars out.uncertainty.npy, out.chi2.npy
        for kind in KINDS:
            side = out.with_name(f"out.{kind}.npy")
            if side.exists():
                found[kind] = np.load(side, allow_pickle=False)
    return found


def names_written(layout, out: Path) -> list[str]:
    if layout in HDF5:
        with h5py.File(out, "r") as f:
            seen = []
            f.visit(seen.append)
            return seen
    if layout == "tiff-set-zip":
        with zipfile.ZipFile(out) as zf:
            return zf.namelist()
    if layout == "npz":
        with np.load(out) as z:
            return list(z.files)
    where = out if layout == "tiff-set-folder" else out.parent
    return sorted(p.name for p in where.iterdir())


def expected_names(layout) -> set:
    """Everything a result with trust maps adds, by the README's names."""
    if layout == "maps-v10":
        g = "MAPS/XRF_Analyzed/Fitted_Enhanced"
        return {g} | {f"{g}/{n}" for n in ("Counts_Per_Sec", "Channel_Names", "Channel_Units",
                                             "Uncertainty", "Chi2", "x_axis", "y_axis")}
    if layout == "maps-v9":  # with the fine grid's axes
        base = "MAPS/XRF_fits_Enhanced"
        return {base, base + "_channel_names", base + "_uncertainty", base + "_chi2", base + "_x_axis",
                base + "_y_axis"}
    if layout == "pyxrf":
        base = "xrfmap/detsum/xrf_fit_enhanced"
        return {base, base + "_name", base + "_uncertainty", base + "_chi2", base + "_positions"}
    if layout.startswith("tiff-set"):
        return {f"{s}_enhanced{tail}.tiff" for s in TIFF_SET for tail in ("", "_uncertainty", "_chi2")
                } | {"provenance.json"}
    if layout == "npz":
        return {"maps", "elements", "units", "provenance", "pixel_size_nm", "uncertainty", "chi2"}
    main = ["out.tif"] if layout == "tiff" else ["out.npy", "out.npy.json"]
    return set(main) | {"out.uncertainty.npy", "out.chi2.npy"}


def expected_stack(enhanced, kind):
    return np.stack([enhanced.extras[f"{kind}:{el}"] for el in enhanced.elements])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_trust_maps_round_trip_in_every_layout(tmp_path, layout):
    src = make_input(layout, tmp_path)
    original = read_input(layout, src)
    before = dataset_digests(src) if layout in HDF5 else None
    src_bytes = {p: file_digest(p) for p in ([src] if src.is_file() else src.iterdir())}
    enhanced = enhanced_of(original)
    out = write_result(original, enhanced, tmp_path / "res" / OUT[layout], {"model": "m"})

    assert {p: file_digest(p) for p in src_bytes} == src_bytes  # the input is never touched
    if before is not None:
        after = dataset_digests(out)
        assert {k: after.get(k) for k in before} == before  # originals byte-identical in the copy
        assert read_map(out).extras.keys() == original.extras.keys()  # no trust maps on originals
    stored = stored_trust(layout, out, original)
    assert set(stored) == set(KINDS)
    for kind in KINDS:
        want = expected_stack(enhanced, kind)
        if layout == "npy-2d":
            want = want[0]  # like the map itself, a 2-D NPY stays 2-D
        np.testing.assert_array_equal(stored[kind], want)
    new = set(names_written(layout, out)) - (set(names_written(layout, src)) if layout in HDF5 else set())
    assert new == expected_names(layout)  # the maps, the trust maps, nothing else (no Num_Iter)

    back = read_map(out, method=HDF5.get(layout))
    np.testing.assert_array_equal(back.data, enhanced.data)
    assert back.elements == original.elements
    trust_keys = {f"{k}:{el}" for k in KINDS for el in original.elements}
    assert set(back.extras) == trust_keys  # Num_Iter, not a trust map, is not written
    for key in trust_keys:
        assert back.extras[key].dtype == np.float32
        np.testing.assert_array_equal(back.extras[key], enhanced.extras[key])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_result_without_trust_maps_has_none(tmp_path, layout):
    src = make_input(layout, tmp_path)
    original = read_input(layout, src)
    out = write_result(original, enhanced_of(original, trust=False), tmp_path / "res" / OUT[layout])
    names = names_written(layout, out)
    assert not [n for n in names if "uncertainty" in n.lower() or "chi2" in n.lower()]
    assert stored_trust(layout, out, original) == {}
    assert not any(":" in k for k in read_map(out, method=HDF5.get(layout)).extras)
    if layout in ("tiff", "npy-2d", "npy-3d"):
        assert names == ["out.npy", "out.npy.json"] if layout.startswith("npy") else ["out.tif"]


def fail_at_chi2(layout, monkeypatch):
    """Make the last trust map's write fail, after the maps and the uncertainty are written."""
    def boom():
        raise OSError("disk full")

    if layout in HDF5:
        real = hdf5.write_maps
        monkeypatch.setattr(hdf5, "write_maps", lambda g, name, data: boom() if "hi2" in name
                            else real(g, name, data))
    elif layout.startswith("tiff-set"):
        real = tiff.tiff_bytes
        monkeypatch.setattr(tiff, "tiff_bytes", lambda data, meta, px: boom()
                            if meta.get("trust_map") == "chi2" else real(data, meta, px))
    elif layout == "npz":
        def partial_npz(fh, *args, **kwargs):
            fh.write(b"PK\x03\x04 half an archive")
            boom()
        monkeypatch.setattr(npy.np, "savez", partial_npz)
    else:
        real = write_module._save_npy
        monkeypatch.setattr(write_module, "_save_npy", lambda path, array: boom()
                            if ".chi2." in Path(path).name else real(path, array))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_failure_mid_write_leaves_nothing_behind(tmp_path, layout, monkeypatch):
    src = make_input(layout, tmp_path)
    original = read_input(layout, src)
    res = tmp_path / "res"
    previous = res / OUT[layout]  # an earlier result under the same name stays as it was
    if layout == "tiff-set-folder":
        previous.mkdir(parents=True)
        (previous / "old.tiff").write_bytes(b"old result")
    else:
        res.mkdir()
        previous.write_bytes(b"old result")
    listing = sorted(p.relative_to(res) for p in res.rglob("*"))
    fail_at_chi2(layout, monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        # HDF5 results are written in a sandboxed child (formats/safety.py) that runs this same
        # code; sandboxed=True runs it here, where the failure can be injected
        write_result(original, enhanced_of(original), previous, sandboxed=layout in HDF5)
    assert sorted(p.relative_to(res) for p in res.rglob("*")) == listing  # no temp, no sidecar
    assert (previous / "old.tiff" if previous.is_dir() else previous).read_bytes() == b"old result"


def test_partial_or_misplaced_trust_maps_are_refused_before_writing(tmp_path):
    src = make_input("maps-v10", tmp_path)
    original = read_map(src)
    partial = enhanced_of(original)
    del partial.extras[f"chi2:{original.elements[1]}"]
    with pytest.raises(ValueError, match=f"not for {original.elements[1]}"):
        write_result(original, partial, tmp_path / "a.h5", sandboxed=True)  # the child's own check
    coarse = enhanced_of(original)
    coarse.extras[f"uncertainty:{original.elements[0]}"] = np.ones(original.shape[1:], np.float32)
    with pytest.raises(ValueError, match="enhanced grid"):
        write_result(original, coarse, tmp_path / "b.h5", sandboxed=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


@pytest.mark.parametrize("layout", ["maps-v10", "maps-v9", "pyxrf"])
def test_enhancing_a_result_again_replaces_its_trust_maps(tmp_path, layout):
    src = make_input(layout, tmp_path)
    original = read_map(src)
    first = write_result(original, enhanced_of(original), tmp_path / "first.h5")
    again = read_map(first)  # the original maps, read from the first result
    second = write_result(again, enhanced_of(again, trust=False), tmp_path / "second.h5")
    assert stored_trust(layout, second, original) == {}  # no stale uncertainty from the first
    assert not any(":" in k for k in read_map(second, method=HDF5[layout]).extras)


def test_trust_maps_come_through_the_safe_reader(tmp_path):
    src = make_input("pyxrf", tmp_path)
    original = read_map(src)
    enhanced = enhanced_of(original)
    out = write_result(original, enhanced, tmp_path / "out.h5")
    back = read_map_safely(out, method="Fitted_Enhanced")
    assert back.source["datasets"]["chi2"] == "/xrfmap/detsum/xrf_fit_enhanced_chi2"
    for key in (f"{k}:{el}" for k in KINDS for el in original.elements):
        np.testing.assert_array_equal(back.extras[key], enhanced.extras[key])


def test_a_trust_dataset_that_does_not_fit_the_maps_is_a_clear_error(tmp_path):
    src = make_input("maps-v10", tmp_path)
    original = read_map(src)
    out = write_result(original, enhanced_of(original), tmp_path / "out.h5")
    with h5py.File(out, "r+") as f:
        group = f["MAPS/XRF_Analyzed/Fitted_Enhanced"]
        del group["Chi2"]
        group.create_dataset("Chi2", data=np.ones((2, 5, 5), np.float32))
    with pytest.raises(UserError, match=r"Chi2 holds chi2 maps of shape \[2, 5, 5\]"):
        read_map(out, method="Fitted_Enhanced")
    np.testing.assert_array_equal(read_map(out).data, original.data)  # the originals still read


def test_a_result_copied_without_its_sidecar_still_reads(tmp_path):
    src = make_input("npy-3d", tmp_path)
    original = read_map(src, pixel_nm=50)
    out = write_result(original, enhanced_of(original), tmp_path / "res" / "out.npy")
    (tmp_path / "res" / "out.chi2.npy").unlink()
    back = read_map(out)
    assert back.provenance["trust_maps_missing"] == ["out.chi2.npy"]
    assert {k.split(":")[0] for k in back.extras} == {"uncertainty"}
    meta = json.loads((tmp_path / "res" / "out.npy.json").read_text())
    assert meta["trust_maps"] == ["uncertainty", "chi2"]


def test_cli_enhance_with_ensemble_puts_the_uncertainty_in_the_result(tmp_path):
    import torch

    from enhancer.bundle import save_bundle
    from enhancer.cli import main
    from enhancer.enhance import enhance_map
    from tests.test_enhance import random_bundle

    torch.set_num_threads(1)
    b = random_bundle(scale=1)
    model = save_bundle(tmp_path / "model", b.network, b.config)
    src = tmp_path / "scan.h5"
    write_maps_v10(src, rows=24, cols=24, pixel_um=(0.05, 0.05))
    assert main(["enhance", str(src), str(tmp_path / "scan-x.h5"), "--model", str(model),
                 "--ensemble", "2"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "scan-x.h5", "scan.h5"]
    back = read_map(tmp_path / "scan-x.h5", method="Fitted_Enhanced")
    expected = enhance_map(read_map(src), b, ensemble=2)
    for el in back.elements:
        np.testing.assert_allclose(back.extras[f"uncertainty:{el}"], expected.extras[f"uncertainty:{el}"],
                                   rtol=1e-5, atol=1e-6)


def test_enhancing_a_result_again_at_scale_1_does_not_pass_on_its_old_trust_maps(tmp_path):
    import torch

    from enhancer.enhance import enhance_map
    from tests.test_enhance import random_bundle

    torch.set_num_threads(1)
    src = make_input("npy-3d", tmp_path)
    original = read_map(src, pixel_nm=50)
    b = random_bundle(scale=1)
    first = write_result(original, enhance_map(original, b, ensemble=2), tmp_path / "first.npy")
    again = enhance_map(read_map(first), b, ensemble=1)  # no ensemble: no uncertainty this time
    assert not any(":" in k for k in again.extras)
