"""The maps behind the review pages, read once and kept as .npy files for fast windows.

A dataset is read from its upload (in a child process: uploads are untrusted), a job's
enhancement from its result files; both are then stored under DATA_DIR/review/ as float32
.npy files that every later request memory-maps, so a zoom reads only the window it shows.
Each folder is built in a temp folder and renamed into place: a reader never sees half of it,
and two requests building at once waste work but break nothing.

The job's review also holds what the page reports: totals, effective resolution (single-image
FRC) and the trust report (enhancer.trust) when it can be made. `prepare_job` can be called by
the worker right after it writes the results, so that the first page view is instant.
"""
from __future__ import annotations

import fcntl
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from enhancer import UserError
from xrfweb.jobs.models import Job
from xrfweb.paths import data_dir
from xrfweb.projects.models import Dataset
from xrfweb.review.plots import Grid, jsonable

log = logging.getLogger(__name__)
RESOLUTION_NOTE = ("single-image FRC (checkerboard halves, 1/7 threshold): sound for the input; "
                   "optimistic for the enhanced map and blind to invented detail, so read it "
                   "beside the consistency (chi²) map")


class NotReady(Exception):
    """The object has nothing to review yet (a dataset not parsed, a job not succeeded)."""


def _build_once(final: Path, build) -> Path:
    """Run build(tmp_folder) unless final exists, then move the folder into place. A lock file
    makes a second request (a page asks for several things at once) wait for the first build
    instead of repeating it."""
    if final.is_dir():
        return final
    with open(final.parent / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
        try:
            build(tmp)
            tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def write_json_atomic(path: Path, value) -> None:
    """A JSON file that is whole or absent, whoever else writes it at the same time."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}-",
                                     delete=False) as f:
        json.dump(value, f)
    Path(f.name).replace(path)


def _load(folder: Path, name: str) -> np.ndarray:
    return np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)


def _axis_um(axis, n: int, pixel_nm: float | None, along: int) -> np.ndarray | None:
    """Pixel centres in um: the motor positions when the file has them, else from the pixel size,
    else None (the page then offers pixels only)."""
    from enhancer.xrfmap import axis_um

    try:
        return axis_um(axis, n, pixel_nm, along)
    except UserError:
        return None


# --- datasets ---------------------------------------------------------------------------------

@dataclass
class MapSet:
    elements: list[str]
    maps: np.ndarray  # (E, H, W) float32, memory-mapped
    units: str
    pixel_nm: float | None
    grid: Grid
    scalers: dict  # name -> (H, W) memory-mapped

    def element_index(self, element: str) -> int:
        if element not in self.elements:
            raise UserError(f"no element {element!r} in this map; it has {', '.join(self.elements)}")
        return self.elements.index(element)

    def element_map(self, element: str, scaler: str = "") -> np.ndarray:
        """One element's map, divided by a scaler (I0 normalisation) when one is named."""
        i = self.element_index(element)
        if not scaler:
            return self.maps[i]
        from enhancer.formats import normalize_by_scaler
        from enhancer.xrfmap import XRFMap

        one = XRFMap([element], np.asarray(self.maps[i : i + 1]),
                     scalers={k: np.asarray(v) for k, v in self.scalers.items()})
        return normalize_by_scaler(one, scaler).data[0]  # the formats' rule (PyXRF's)

    def units_for(self, scaler: str = "") -> str:
        if not scaler:
            return self.units
        return f"{self.units} / {scaler}" if self.units else f"per {scaler}"


def dataset_folder(dataset: Dataset) -> Path:
    # The stored name is unique for ever: a folder can never describe another upload.
    return data_dir("review") / f"dataset-{dataset.id}-{dataset.stored_name.split('.')[0]}"


def _build_dataset(dataset: Dataset, tmp: Path) -> None:
    m = dataset.read_map()
    np.save(tmp / "maps.npy", m.data.astype(np.float32), allow_pickle=False)
    names = []
    for i, (name, plane) in enumerate(m.scalers.items()):
        np.save(tmp / f"scaler-{i}.npy", np.asarray(plane, np.float32), allow_pickle=False)
        names.append(name)
    pixel_nm = dataset.pixel_nm
    _, h, w = m.data.shape
    x = _axis_um(m.x_axis_um, w, pixel_nm, along=1)
    y = _axis_um(m.y_axis_um, h, pixel_nm, along=0)
    meta = {"elements": list(m.elements), "units": m.units or "", "scalers": names,
            "x_um": None if x is None else x.tolist(), "y_um": None if y is None else y.tolist()}
    (tmp / "meta.json").write_text(json.dumps(meta))


def load_dataset(dataset: Dataset) -> MapSet:
    if dataset.status != Dataset.Status.READY:
        raise NotReady(f"{dataset} is {dataset.status}; maps are shown once it is ready")
    folder = _build_once(dataset_folder(dataset), lambda tmp: _build_dataset(dataset, tmp))
    meta = json.loads((folder / "meta.json").read_text())
    maps = _load(folder, "maps")
    scalers = {name: _load(folder, f"scaler-{i}") for i, name in enumerate(meta["scalers"])}
    return MapSet(meta["elements"], maps, meta["units"], dataset.pixel_nm,
                  Grid(maps.shape[1], maps.shape[2], meta["x_um"], meta["y_um"]), scalers)


# --- enhancement jobs ---------------------------------------------------------------------------

@dataclass
class JobReview:
    summary: dict
    folder: Path
    before: MapSet  # the input, on its own grid

    @property
    def elements(self) -> list[str]:
        return self.summary["elements"]

    def layer(self, name: str) -> np.ndarray:
        """before | after | difference | chi2 | uncertainty, as (E, h, w) memory-mapped arrays."""
        if name == "before":
            return self.before.maps
        if name == "chi2" and not self.summary["trust"].get("available"):
            raise UserError("this job has no consistency map")
        if name == "uncertainty" and not self.summary.get("uncertainty_map"):
            raise UserError("this job has no uncertainty map (it ran without an ensemble)")
        if name not in ("after", "difference", "chi2", "uncertainty"):
            raise UserError(f"unknown layer {name!r}: before, after, difference, chi2 or "
                            "uncertainty")
        return _load(self.folder, name)

    def grid(self, name: str) -> Grid:
        """The fine grid for after/difference; the input's grid, in fine pixel units, for
        before/chi2 (an input pixel covers S fine pixels; its centre is at S*i + (S-1)/2)."""
        s = self.summary
        fine = s["fine"]
        if name in ("after", "difference", "uncertainty"):
            return Grid(fine["shape"][0], fine["shape"][1], fine["x_um"], fine["y_um"])
        scale = s["scale"]
        b = self.before.grid
        return Grid(b.h, b.w, b.x_um, b.y_um, px_step=scale, px_offset=(scale - 1) / 2)


def job_folder(job: Job) -> Path:
    # Ids come back after a database is reset; the creation time pins the job.
    return data_dir("review") / f"job-{job.id}-{int(job.created.timestamp() * 1e6)}"


def _trust(input_map, enhanced, job: Job, tmp: Path) -> dict:
    """The trust report (enhancer.trust): the chi² map is stored, the rest goes in the summary.
    Anything that stops it leaves the page a clear reason instead of the maps."""
    try:
        from enhancer.bundle import load_bundle
        from enhancer.trust import trust_report

        report = trust_report(input_map, enhanced, load_bundle(job.model.bundle_ref))
    except UserError as e:
        return {"available": False, "reason": str(e)}
    except Exception:  # the trust module is young: a failure must not take the page down
        log.exception("trust report for job %s", job.id)
        return {"available": False, "reason": "the trust report failed for this map (see the log)"}
    np.save(tmp / "chi2.npy", np.asarray(report.pop("chi2"), np.float32), allow_pickle=False)
    return {"available": True, **jsonable(report)}


def _read_result(job: Job, before: MapSet):
    """The enhanced maps as the worker wrote them (our own files: read in-process). An HDF5
    result holds them beside the originals, with the trust maps; else the TIFF set."""
    from enhancer.formats import read_map
    from enhancer.formats import read_enhanced
    from enhancer.xrfmap import XRFMap
    from xrfweb.jobs.results import FORMATS

    h5 = job.result_dir / FORMATS["h5"][0]
    if h5.is_file():
        return read_enhanced(h5, XRFMap(before.elements, np.zeros((len(before.elements), 1, 1))))
    return read_map(job.result_dir / FORMATS["tiff"][0])


def _build_job(job: Job, before: MapSet, tmp: Path) -> None:
    from enhancer.baselines import upsample
    from enhancer.metrics import single_image_frc_nm, totals
    from enhancer.xrfmap import fine_axis_um
    from enhancer.xrfmap import XRFMap

    result = _read_result(job, before)
    scale = job.model.scale
    e, h, w = before.maps.shape
    if result.shape != (e, h * scale, w * scale):
        raise UserError(f"the result {list(result.shape)} is not the input {[e, h, w]} "
                        f"enhanced {scale}x")
    after = result.data.astype(np.float32)
    input_nm = before.pixel_nm or job.model.scan_step_nm
    fine_nm = input_nm / scale if input_nm else None
    np.save(tmp / "after.npy", after, allow_pickle=False)
    # The self-ensemble's spread, when the job ran with an ensemble: the result file keeps it.
    sigma = [result.extras.get(f"uncertainty:{el}") for el in result.elements]
    has_sigma = all(s is not None and np.shape(s) == after.shape[1:] for s in sigma)
    if has_sigma:
        np.save(tmp / "uncertainty.npy", np.stack(sigma).astype(np.float32), allow_pickle=False)
    # Enhanced minus the input interpolated to the fine grid (the interpolation the baselines use).
    np.save(tmp / "difference.npy", after - upsample(np.asarray(before.maps), scale),
            allow_pickle=False)
    fx = fine_axis_um(before.grid.x_um, scale) if before.grid.x_um is not None else None
    fy = fine_axis_um(before.grid.y_um, scale) if before.grid.y_um is not None else None
    t_before, t_after = totals(before.maps), totals(after)
    summary = {
        "elements": before.elements, "units": before.units, "scale": scale,
        "input_pixel_nm": input_nm, "fine_pixel_nm": fine_nm,
        "fine": {"shape": [h * scale, w * scale], "x_um": None if fx is None else fx.tolist(),
                 "y_um": None if fy is None else fy.tolist()},
        "totals": {el: {"before": b, "after": a} for el, b, a in zip(before.elements, t_before,
                                                                     t_after)},
        "resolution": {}, "resolution_method": RESOLUTION_NOTE, "uncertainty_map": has_sigma,
    }
    if input_nm:
        for i, el in enumerate(before.elements):
            summary["resolution"][el] = {
                "before_nm": single_image_frc_nm(before.maps[i], input_nm),
                "after_nm": single_image_frc_nm(after[i], fine_nm)}
    input_map = XRFMap(before.elements, np.asarray(before.maps), (input_nm, input_nm)
                       if input_nm else None, before.grid.x_um, before.grid.y_um)
    enhanced = XRFMap(before.elements, after, (fine_nm, fine_nm) if fine_nm else None,
                      extras={f"uncertainty:{el}": s for el, s in zip(before.elements, sigma)}
                      if has_sigma else {})
    summary["trust"] = _trust(input_map, enhanced, job, tmp)
    (tmp / "summary.json").write_text(json.dumps(jsonable(summary)))


def _review(job: Job) -> JobReview:
    before = load_dataset(job.dataset)
    folder = _build_once(job_folder(job), lambda tmp: _build_job(job, before, tmp))
    return JobReview(json.loads((folder / "summary.json").read_text()), folder, before)


def prepare_job(job: Job) -> JobReview:
    """Everything the job page shows, built on first use and kept."""
    if job.kind != Job.Kind.ENHANCE or job.status != Job.Status.SUCCEEDED:
        raise NotReady(f"job {job.id} is {job.status}; its maps are shown once it has succeeded")
    return _review(job)


def build_job_review(job: Job) -> None:
    """For the worker, right after it has written a job's results (before it marks the job
    succeeded): build the review now so the first page view is instant. The review is an
    extra: a failure here is logged and the page builds it again on first view."""
    try:
        shutil.rmtree(job_folder(job), ignore_errors=True)  # a rerun's results replace the old
        _review(job)
    except Exception:
        log.exception("could not prepare the review of job %s", job.id)
