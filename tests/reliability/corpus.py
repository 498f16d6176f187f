"""The hostile-upload corpus: tests/hostile_files.py's 24 broken map files, plus what only a web
upload can bring (lying names and content types, traversal and overlong names, oversize bodies,
pickled "models", valid maps that must still be read), each with the outcome it must get.

make_corpus(dirpath, max_upload_mb) -> [Case] (59: 51 map uploads, 8 model uploads). Outcomes:
  refused  - the upload answers 4xx (`status`) with an error naming the problem; nothing kept;
  rejected - accepted (201), then the parser marks the dataset `rejected` with a reason;
  ready    - accepted and read (a renamed file or a hostile *name* on a good file): names and
             content types never decide anything.
`words` must all appear (case-insensitive) in the error or the reason.
"""
from __future__ import annotations

import gzip
import io
import json
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import tifffile

from tests.formats_fixtures import element_maps, write_maps_v10
from tests.hostile_files import make_hostile_files

# hostile_files cases that cannot even be stored: no content, or a content no reader takes.
NOT_STORED = {"empty.h5": ["empty"], "text_named.h5": ["not a file xrfweb reads"],
              "png_named.tiff": ["not a file xrfweb reads"]}
PICKLE_MARKERS = ("PICKLE_RAN", "MODEL_PICKLE_RAN")  # created if anything unpickles our payloads
# Markup that would run or link if a page used it as HTML (issue 21).
XSS = '<img src=x onerror="window.__xss=1">'
MARKUP_NAMES = ('<a href="https://evil.example/">Fe</a>', XSS)


def markup_in_every_string(config: dict) -> dict:
    """model.json with markup before every string value (and in the benchmark's method names).
    Keywords with fixed values are kept (format, degradation.mode, normalisation.kind, elements
    "any"): the typed config refuses any other value of those by name."""
    def walk(value, key=""):
        if isinstance(value, dict):
            return {(XSS + k if key == "summary" else k): walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if isinstance(value, str) and key not in ("format", "mode", "kind") and \
                (key, value) != ("elements", "any"):
            return XSS + value
        return value
    return walk(config)


@dataclass(frozen=True)
class Case:
    name: str  # the label in docs/reliability.md
    path: Path  # the bytes sent
    what: str  # what the file is, in words
    expect: str  # refused | rejected | ready
    words: tuple[str, ...] = ()
    send_as: str = ""  # the file name the client claims ("" = path.name)
    content_type: str = "application/octet-stream"
    status: int = 0  # refused: the HTTP status expected (400, 413)
    target: str = "map"  # map: a dataset upload; model: weights (path) + config to the model upload
    config: Path | None = None
    elements: tuple[str, ...] = ()  # ready: the element names the dataset must show

    @property
    def filename(self) -> str:
        return self.send_as or self.path.name


class _Payload:
    """Unpickling this creates a marker file: proof that something ran an uploaded pickle."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _tiff(array, metadata=None) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.asarray(array, dtype=np.float32), metadata=metadata)
    return buf.getvalue()


def _maps(path, data, names=("Fe", "Zn")):
    """A MAPS v10 file holding exactly `data` (any dtype), with a 50 nm scan step."""
    with h5py.File(path, "w") as f:
        f["MAPS/version"] = np.array([10.0], np.float32)
        f["MAPS/Scan/x_axis"] = np.arange(data.shape[-1]) * 0.05
        f["MAPS/Scan/y_axis"] = np.arange(data.shape[-2]) * 0.05
        group = f.require_group("MAPS/XRF_Analyzed/Fitted")
        group["Channel_Names"] = np.array([n.encode() for n in names], dtype="S256")
        group["Counts_Per_Sec"] = data
    return path


def _bundle(dirpath: Path) -> tuple[Path, Path]:
    """A real, tiny model bundle (weights, config) to pair with hostile halves."""
    from enhancer.bundle import CONFIG, WEIGHTS, save_bundle
    from enhancer.degrade import Degradation
    from enhancer.network import ResidualEnhancer

    config = {"name": "corpus", "elements": "any", "pixel_nm": 25.0, "scale": 2,
              "degradation": Degradation(probe_fwhm_nm=80.0, pixel_nm=25.0, scale=2).to_dict()}
    folder = save_bundle(dirpath / "_bundle", ResidualEnhancer(1, 1, 4), config)
    return folder / WEIGHTS, folder / CONFIG


def _map_cases(d: Path, max_upload_mb: int) -> list[Case]:
    good = element_maps(2, 12, 16)
    cases = []

    def add(name, what, expect, words=(), **kw):
        cases.append(Case(name, d / name, what, expect, tuple(words), **kw))
        return d / name

    write_maps_v10(d / "good.h5", elements=("Fe", "Zn"), pixel_um=(0.05, 0.05))
    good_h5 = (d / "good.h5").read_bytes()
    # Hostile names on a good file: stored under a generated name, the name kept as a label only.
    for name, send_as, what in (
        ("traversal_name.h5", "../../../../etc/cron.d/evil.h5", "path traversal in the name"),
        ("windows_path.h5", "C:\\Windows\\System32\\drivers\\etc\\hosts.h5", "Windows path"),
        ("overlong_name.h5", "a" * 300 + ".h5", "a 303-character name (a 255-character label)"),
        ("html_name.h5", "<script>alert(1)</script>.html", "an HTML name with a script tag"),
    ):
        add(name, what, "ready", send_as=send_as).write_bytes(good_h5)
    add("overlong_header.h5", "a 1004-character name: past Django's 1 KiB part-header limit",
        "refused", ["header size"], status=400,
        send_as="a" * 1000 + ".h5").write_bytes(good_h5)
    add("h5_as_text.txt", "a good MAPS file named .txt, sent as text/html", "ready",
        content_type="text/html").write_bytes(good_h5)
    add("tiff_named.h5", "a good TIFF named .h5", "ready",
        elements=("tiff_named",)).write_bytes(_tiff(good[0]))
    # Single maps named after their element: the name must survive our generated store name.
    add("SUM_maps_XRF_Fe_K.tiff", "one TIFF map named after its element", "ready",
        elements=("Fe_K",)).write_bytes(_tiff(good[0]))
    np.save(add("Zn_L.npy", "one NPY map named after its element", "ready", elements=("Zn_L",)),
            good[1])
    tiffs = add("tiffset_named.tiff", "a zip of per-element TIFFs named .tiff", "ready")
    with zipfile.ZipFile(tiffs, "w") as zf:
        for element, array in zip(("Fe_K", "Zn_K"), good):
            zf.writestr(f"SUM_maps_XRF_{element}.tiff", _tiff(array))

    # Markup in element names (NPZ names, TIFF metadata, zip member names) and in file names:
    # stored and read as they are; the pages show them as text (test_security_browser.py).
    buf = io.BytesIO()
    np.savez(buf, maps=good, elements=np.array(MARKUP_NAMES))
    add("markup_elements.npz", "NPZ whose element names are <a href> and <img onerror> markup",
        "ready", elements=MARKUP_NAMES, send_as=f"{XSS}.npz").write_bytes(buf.getvalue())
    add("markup_tiff_metadata.tiff", "a TIFF stack whose metadata names markup elements",
        "ready", elements=MARKUP_NAMES).write_bytes(_tiff(good, {"elements": list(MARKUP_NAMES)}))
    with zipfile.ZipFile(add("markup_members.zip", "a TIFF set whose member names hold markup",
                             "ready", send_as='<svg onload="alert(1)">.zip'), "w") as zf:
        for member, array in zip((f"SUM_maps_XRF_{XSS}.tiff", "<svg onload=alert(1)>.tiff"), good):
            zf.writestr(member, _tiff(array))

    # Content no reader takes, whatever its name and content type claim.
    add("html_as_tiff.tiff", "HTML with a script, sent as image/tiff", "refused",
        ["not a file xrfweb reads"], status=400, content_type="image/tiff").write_text(
        "<html><script>alert(document.cookie)</script></html>")
    add("svg_named.h5", "an SVG with a script named .h5", "refused", ["not a file xrfweb reads"],
        status=400).write_text('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>')
    add("gzipped.h5.gz", "a gzipped MAPS file", "refused", ["not a file xrfweb reads"],
        status=400).write_bytes(gzip.compress(good_h5))

    # Values: repaired and documented (NaN/Inf -> 0, negatives kept), or refused.
    nan_inf = good.copy()
    nan_inf[0, 0, :4] = np.nan
    nan_inf[1, 3, 3], nan_inf[1, 4, 4] = np.inf, -np.inf
    _maps(add("nan_inf_pixels.h5", "some NaN and +/-Inf pixels (set to 0, counted)", "ready"),
          nan_inf)
    _maps(add("negative.h5", "negative counts (kept, counted)", "ready"), good - 5.0)
    add("all_inf.tiff", "a TIFF map that is all Inf", "rejected",
        ["map all_inf in all_inf.tiff", "no finite value"]).write_bytes(
        _tiff(np.full((8, 8), np.inf)))
    add("one_pixel.tiff", "a 1-pixel TIFF map", "rejected", ["shape"]).write_bytes(
        _tiff(np.ones((1, 1))))
    np.save(add("one_row.npy", "a 1 x 64 NPY map", "rejected", ["too small"]),
            np.ones((1, 64), np.float32))

    # Dtypes and names.
    _maps(add("uint16.h5", "integer counts (uint16)", "ready"), (good * 10).astype(np.uint16))
    compound = np.zeros((2, 8, 8), dtype=[("a", "f4"), ("b", "i4")])
    _maps(add("compound_dtype.h5", "a compound (record) dtype", "rejected", ["real numbers"]),
          compound)
    _maps(add("too_many_names.h5", "3 channel names for 2 maps", "rejected",
              ["3 names for 2 maps"]), good, names=("Fe", "Zn", "Cu"))
    with h5py.File(add("soft_link_loop.h5", "the maps are a soft link to themselves", "rejected",
                       ["damaged"]), "w") as f:
        f["MAPS/version"] = np.array([10.0], np.float32)
        f.require_group("MAPS/XRF_Analyzed/Fitted")
        f["MAPS/XRF_Analyzed/Fitted/Counts_Per_Sec"] = h5py.SoftLink(
            "/MAPS/XRF_Analyzed/Fitted/Counts_Per_Sec")

    # Bodies larger than the cap: stopped while streaming (within the declared-size slack), and
    # refused from the declared length alone.
    cap = max_upload_mb * 1024 * 1024
    add("oversize_streamed.h5", f"{max_upload_mb} MB + 0.5 MB: stopped while streaming", "refused",
        ["upload limit"], status=413).write_bytes(good_h5 + bytes(cap + cap // 2 - len(good_h5)))
    add("oversize_declared.h5", f"3 x {max_upload_mb} MB: refused before reading", "refused",
        ["upload limit"], status=413).write_bytes(good_h5 + bytes(3 * cap))
    return cases


def _model_cases(d: Path) -> list[Case]:
    weights, config = _bundle(d)
    marker = d / PICKLE_MARKERS[1]
    cases = []

    def add(name, what, words, *, config_path=config):
        cases.append(Case(name, d / name, what, "refused", tuple(words), status=400,
                          target="model", config=config_path))
        return d / name

    add("pickle.safetensors", "a pickle with a __reduce__ payload as the weights",
        ["safetensors"]).write_bytes(pickle.dumps(_Payload(marker)))
    with zipfile.ZipFile(add("torch_save.pt", "a torch.save() zip whose data.pkl is a payload",
                             ["safetensors"]), "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(_Payload(marker)))
        zf.writestr("archive/version", "3\n")
    add("header_bomb.safetensors", "safetensors declaring a 2**62-byte header",
        ["safetensors"]).write_bytes(struct.pack("<Q", 2 ** 62) + b"{}")
    # Good weights with a hostile config.
    bad_config = d / "config_pickle.json"
    bad_config.write_bytes(pickle.dumps(_Payload(marker)))
    cases.append(Case("config_pickle.json", weights, "good weights, model.json is a pickle",
                      "refused", ("JSON",), status=400, target="model", config=bad_config))
    huge = json.loads(config.read_text())
    huge["architecture"] = {"channels": 1, "blocks": 100_000, "filters": 4096}
    big_config = d / "config_huge_network.json"
    big_config.write_text(json.dumps(huge))
    cases.append(Case("config_huge_network.json", weights,
                      "model.json asking for 100000 blocks of 4096 filters", "refused",
                      ("architecture outside",), status=400, target="model", config=big_config))
    # Markup in every string field, and in a number field: the number is refused, named.
    bench = {"case": "B", "protocol": {"pixel_nm": 50.0, "probe_fwhm_nm": 200.0, "scale": 4,
                                       "counts": 1000.0},
             "command": "python -m enhancer bench", "machine": "a laptop",
             "results": [{"set": "held-out phantoms",
                          "summary": {"network": {"psnr": 30.0, "ssim": 0.9}}}]}
    marked = markup_in_every_string({**json.loads(config.read_text()), "benchmark": bench})
    marked["benchmark"]["protocol"]["scale"] = XSS
    markup = d / "config_markup.json"
    markup.write_text(json.dumps(marked))
    cases.append(Case("config_markup.json", weights,
                      "markup in every string field of model.json, and in a number field",
                      "refused", ("benchmark.protocol.scale",), status=400, target="model",
                      config=markup))
    unknown = d / "config_unknown_field.json"
    unknown.write_text(json.dumps({**json.loads(config.read_text()), "<script>": "x"}))
    cases.append(Case("config_unknown_field.json", weights, "model.json with an unknown field",
                      "refused", ("unknown field",), status=400, target="model", config=unknown))
    other = json.loads(config.read_text())
    other["architecture"] = {"channels": 1, "blocks": 2, "filters": 8}
    mismatch = d / "config_mismatch.json"
    mismatch.write_text(json.dumps(other))
    cases.append(Case("config_mismatch.json", weights, "weights of another architecture",
                      "refused", ("do not match",), status=400, target="model", config=mismatch))
    return cases


def make_corpus(dirpath, max_upload_mb: int = 1) -> list[Case]:
    d = Path(dirpath)
    d.mkdir(parents=True, exist_ok=True)
    cases = []
    for path, words in make_hostile_files(d / "hostile"):
        if path.name in NOT_STORED:
            cases.append(Case(path.name, path, "from tests/hostile_files.py", "refused",
                              tuple(NOT_STORED[path.name]), status=400))
        else:
            cases.append(Case(path.name, path, "from tests/hostile_files.py", "rejected",
                              tuple(words)))
    cases += _map_cases(d, max_upload_mb)
    cases += _model_cases(d)
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "corpus case names must be unique"
    return cases


def pickle_markers(dirpath) -> list[Path]:
    """Files that exist only if some code unpickled one of the corpus's payloads."""
    d = Path(dirpath)
    return [d / "hostile" / PICKLE_MARKERS[0], d / PICKLE_MARKERS[1]]
