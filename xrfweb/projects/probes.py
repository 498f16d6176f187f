"""Measured probes: staff attach a knife-edge or ptychographic probe file to a dataset, and its
jobs then use it as the PSF exactly as the CLI's `--probe FILE --probe-pixel-nm P` does.

The file is read by the enhancer's own reader (enhancer.probe.read_probe) in a limited child
process (enhancer.formats.read_probe_safely): what it refuses is refused here, in its words,
and nothing is kept. It is stored under DATA_DIR/probes under a generated name.
"""
import math
import os

from django.db import transaction

from enhancer import UserError
from xrfweb.paths import new_name, probes_dir
from xrfweb.projects.models import Dataset
from xrfweb.projects.uploads import sniff

PROBE_MAX_MB = 64  # a probe is a small array (a 1024^2 complex128 one is 16 MB)
PROBE_MAX_PIXELS = 2048 * 2048
PROBE_SUFFIXES = {"npy": ".npy", "tiff": ".tiff", "hdf5": ".h5"}  # what read_probe reads


def _busy(dataset: Dataset) -> None:
    """A queued or running job reads the attached probe (an enhancement of the dataset, or a
    training that simulates with its probe): it stays as it is until the job ends."""
    from xrfweb.projects.services import Busy, jobs_reading

    busy = jobs_reading(dataset, probe_only=True).first()
    if busy:
        raise Busy(f"{busy.kind} job {busy.id} is still queued or running with the probe of {dataset}; "
                   "wait for it or cancel it first")


def _pixel(raw) -> float:
    if raw in (None, ""):
        raise UserError("give the probe's pixel size in nm (pixel_nm): it is never assumed")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise UserError(f"the probe's pixel size (pixel_nm) must be a number in nm, not {raw!r}") from None
    if not (math.isfinite(value) and 0 < value < 1e6):
        raise UserError(f"the probe's pixel size (pixel_nm) must be a positive number of nm (got {raw!r})")
    return value


def attach_probe(dataset: Dataset, uploaded, pixel_nm, dataset_path=None, *, by) -> Dataset:
    """Check an uploaded probe file (a TemporaryUploadedFile) with the enhancer's reader, store
    it, and make it the dataset's probe: its FWHM (x, y) becomes the dataset's probe FWHM. A
    probe attached before is replaced (its file removed once the row says so). The file counts
    towards the storage quota of the user who attached it (`by`), as an upload does."""
    from enhancer.formats.safety import read_probe_safely
    from enhancer.probe import measured_fwhm
    from xrfweb.projects.services import ensure_room

    pixel = _pixel(pixel_nm)
    dataset_path = (dataset_path or "").strip() or None
    name = (uploaded.name or "probe")[:255]
    if uploaded.size == 0:
        raise UserError(f"{name} is empty")
    if uploaded.size > PROBE_MAX_MB * 1024 * 1024:
        raise UserError(f"{name} is {uploaded.size / 2 ** 20:.0f} MB; a probe file may be at most "
                        f"{PROBE_MAX_MB} MB")
    found = sniff(uploaded.temporary_file_path())
    if found is None or found[0] not in PROBE_SUFFIXES:
        raise UserError(f"{name} is not a probe file: a probe is one 2-D array in .npy, .tif/.tiff "
                        "or HDF5 (with dataset_path naming the dataset when it holds several)")
    if dataset_path and found[0] != "hdf5":
        raise UserError("dataset_path names a dataset inside an HDF5 file; this file is not HDF5")
    before = dataset.measured_probe or {}  # replaced: its file no longer counts once this one is kept
    ensure_room(by, uploaded.size, freed=before.get("size_bytes", 0) if before.get("attached_by") == by.id else 0)
    _busy(dataset)
    stored = new_name(PROBE_SUFFIXES[found[0]])
    path = probes_dir() / stored
    os.replace(uploaded.temporary_file_path(), path)  # same disk: a rename, not a copy
    try:
        try:
            probe = read_probe_safely(path, dataset_path)
        except UserError as e:
            raise UserError(str(e).replace(stored, name)) from None
        if probe.size > PROBE_MAX_PIXELS:
            raise UserError(f"{name}: the probe is {probe.shape[0]} x {probe.shape[1]} pixels; at most "
                            f"{PROBE_MAX_PIXELS} pixels (2048 x 2048) are taken")
        fx, fy = measured_fwhm(probe, pixel)
        summary = {"name": name, "file": stored, "pixel_nm": pixel, "fwhm_nm": [round(fx, 1), round(fy, 1)],
                   "dataset_path": dataset_path, "size_bytes": uploaded.size, "attached_by": by.id}
        old = _set(dataset, summary, (summary["fwhm_nm"][0], summary["fwhm_nm"][1]), by=by)
    except BaseException:
        path.unlink(missing_ok=True)  # nothing half-kept
        raise
    if old:
        (probes_dir() / old["file"]).unlink(missing_ok=True)
    return dataset


def detach_probe(dataset: Dataset, probe_fwhm_nm=None) -> Dataset:
    """Forget the dataset's measured probe: its probe is then unknown, or the FWHM stated here."""
    from xrfweb.projects.services import parse_physics

    probe = parse_physics(probe_fwhm_nm, "the probe FWHM (probe_fwhm_nm)")
    if not dataset.measured_probe:
        raise UserError(f"{dataset} has no measured probe attached")
    _busy(dataset)
    old = _set(dataset, None, probe or (None, None))
    if old:
        (probes_dir() / old["file"]).unlink(missing_ok=True)
    return dataset


def _set(dataset: Dataset, summary, fwhm, by=None) -> dict | None:
    """Save the row's measured probe and probe FWHM together; returns the probe it replaced."""
    from xrfweb.projects.services import ensure_room

    with transaction.atomic():
        locked = Dataset.objects.select_for_update().get(id=dataset.id)
        _busy(locked)  # again, under the lock: a job may have been queued meanwhile
        old = locked.measured_probe
        if by is not None:  # the quota again, with by's row locked until this commits
            mine = old and old.get("attached_by") == by.id
            ensure_room(by, summary["size_bytes"], freed=old.get("size_bytes", 0) if mine else 0)
        locked.measured_probe, (locked.probe_fwhm_x_nm, locked.probe_fwhm_y_nm) = summary, fwhm
        locked.save(update_fields=["measured_probe", "probe_fwhm_x_nm", "probe_fwhm_y_nm"])
    dataset.measured_probe, dataset.probe_fwhm_x_nm, dataset.probe_fwhm_y_nm = summary, *fwhm
    return old


def public(dataset: Dataset) -> dict | None:
    """What the API and the pages say about the attached probe (never our stored name)."""
    m = dataset.measured_probe
    if not m:
        return None
    return {"name": m["name"], "pixel_nm": m["pixel_nm"], "fwhm_nm": m["fwhm_nm"],
            "dataset_path": m.get("dataset_path")}


def read_attached(dataset: Dataset):
    """(intensity, pixel_nm, name) of the attached probe, read again by the enhancer's reader
    (the worker's job: enhancer.probe.record_measured_probe takes it from there)."""
    from enhancer.formats.safety import read_probe_safely

    m = dataset.measured_probe
    if not m:
        raise UserError(f"{dataset} has no measured probe attached any more")
    path = dataset.measured_probe_path
    if not path.is_file():
        raise UserError(f"the measured probe {m['name']} of {dataset} is missing from the store")
    try:
        probe = read_probe_safely(path, m.get("dataset_path"))
    except UserError as e:
        raise UserError(str(e).replace(m["file"], m["name"])) from None
    return probe, float(m["pixel_nm"]), m["name"]
