"""The maps behind the review pages, read once and kept as .npy files for fast windows.

A dataset is read from its upload (in a child process: uploads are untrusted), a job's
enhancement from its result files; both are then stored under DATA_DIR/review/ as float32
.npy files that every later request memory-maps, so a zoom reads only the window it shows.
Each folder is built in a temp folder and renamed into place: a reader never sees half of it,
and two requests building at once waste work but break nothing.

A job's review draws what its result holds: the enhanced maps and their trust maps (chi², and
the uncertainty of an ensemble run) from the result files, and the numbers (totals, effective
resolution, consistency, scan suggestions) from the report beside them; the worker computed all
of it once (enhancer.pipeline). Nothing here computes science. `build_job_review` is called by
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


def load_dataset(dataset: Dataset, guard=None) -> MapSet:
    """The dataset's maps, read once (in a child process) and kept; guard (a context manager,
    review/limits.py in a web request) wraps that first read only."""
    if dataset.status != Dataset.Status.READY:
        raise NotReady(f"{dataset} is {dataset.status}; maps are shown once it is ready")
    folder = dataset_folder(dataset)
    if guard is not None and not (folder / "meta.json").is_file():
        with guard:
            _build_once(folder, lambda tmp: _build_dataset(dataset, tmp))
    folder = _build_once(folder, lambda tmp: _build_dataset(dataset, tmp))
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


NO_REPORT = ("this job's result was written without a trust report (by an older version); "
             "run the job again to get one")


def _read_result(job: Job):
    """The enhanced maps with their trust maps as the worker wrote them (our own files), and
    its report: an HDF5 result holds the maps beside the originals, else the TIFF set does."""
    from enhancer.formats import read_enhanced, read_map
    from xrfweb.jobs.results import FILES

    h5 = job.result_dir / FILES["h5"]
    result = read_enhanced(h5) if h5.is_file() else read_map(job.result_dir / FILES["tiff"])
    report = job.result_dir / FILES["report"]
    return result, json.loads(report.read_text()) if report.is_file() else None


def _stack(result, kind: str, shape) -> np.ndarray | None:
    """One kind of trust map (chi2, uncertainty) for every element, or None when any is missing."""
    planes = [result.extras.get(f"{kind}:{el}") for el in result.elements]
    if any(p is None or np.shape(p) != shape for p in planes):
        return None
    return np.stack(planes).astype(np.float32)


def _build_job(job: Job, before: MapSet, tmp: Path) -> None:
    from enhancer.pipeline import difference
    from enhancer.xrfmap import fine_axis_um

    result, report = _read_result(job)
    scale = report["scale"] if report else int(job.params.get("scale") or job.model.scale)
    e, h, w = before.maps.shape
    if result.shape != (e, h * scale, w * scale):
        raise UserError(f"the result {list(result.shape)} is not the input {[e, h, w]} "
                        f"enhanced {scale}x")
    after = result.data.astype(np.float32)
    np.save(tmp / "after.npy", after, allow_pickle=False)
    np.save(tmp / "difference.npy", difference(before.maps, after, scale), allow_pickle=False)
    sigma = _stack(result, "uncertainty", after.shape[1:])  # with an ensemble only
    if sigma is not None:
        np.save(tmp / "uncertainty.npy", sigma, allow_pickle=False)
    chi2 = _stack(result, "chi2", after.shape[1:])
    if report and chi2 is not None:  # each input pixel's value repeats over its S x S fine pixels
        np.save(tmp / "chi2.npy", chi2[:, ::scale, ::scale], allow_pickle=False)
    fx = fine_axis_um(before.grid.x_um, scale) if before.grid.x_um is not None else None
    fy = fine_axis_um(before.grid.y_um, scale) if before.grid.y_um is not None else None
    step = job.params.get("scan_step_nm")  # what the job ran with
    input_nm = float(np.mean(step)) if step else before.pixel_nm or job.model.scan_step_nm
    summary = {
        "elements": before.elements, "units": before.units, "scale": scale,
        "input_pixel_nm": input_nm, "fine_pixel_nm": input_nm / scale if input_nm else None,
        "fine": {"shape": [h * scale, w * scale], "x_um": None if fx is None else fx.tolist(),
                 "y_um": None if fy is None else fy.tolist()},
        "uncertainty_map": sigma is not None,
        "data_step": (report or {}).get("data_step"),  # the universal model's fit to the data, if run
    }
    if report and chi2 is not None:
        summary.update(
            totals=report["totals"], resolution_method=report["resolution_method"],
            resolution={el: {"before_nm": r["input_nm"], "after_nm": r["enhanced_nm"]}
                        for el, r in report["resolution"].items()},
            trust={"available": True, **{k: report[k] for k in (
                "elements", "consistency", "resolution", "resolution_method", "uncertainty", "rois")}})
    else:
        summary.update(
            totals={el: {"before": float(np.mean(b)), "after": float(np.mean(a))}
                    for el, b, a in zip(before.elements, before.maps, after)},
            resolution={}, resolution_method="", trust={"available": False, "reason": NO_REPORT})
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
