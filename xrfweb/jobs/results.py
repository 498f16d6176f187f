"""Result downloads: which file of a finished job's folder answers which format."""
from django.http import FileResponse, Http404
from django.utils.text import slugify

from xrfweb.jobs.models import Job

# format -> (file in the job's result folder, download suffix, what it is)
FORMATS = {
    "h5": ("result.h5", ".h5", "HDF5 in the input's layout (MAPS or PyXRF inputs)"),
    "tiff": ("result-tiff.zip", "-tiff.zip", "one float32 TIFF per element, zipped"),
    "png": ("result.png", ".png", "a picture of every element, with scale bars"),
    "csv": ("result.csv", ".csv", "one line per pixel: row, col, position, one column per element"),
}
# what the worker writes in a job's result folder: the downloads, and the trust report
FILES = {**{fmt: name for fmt, (name, _, _) in FORMATS.items()}, "report": "report.json"}


class ResultNotReady(Exception):
    pass


def result_response(job: Job, fmt: str) -> FileResponse:
    """The file for a download. Raises ResultNotReady (job not succeeded) or Http404 (format)."""
    if fmt not in FORMATS:
        raise Http404(f"no such format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if job.status != Job.Status.SUCCEEDED:
        raise ResultNotReady(f"job {job.id} is {job.status}; results exist once it has succeeded")
    name, suffix, _ = FORMATS[fmt]
    path = job.result_dir / name
    if not path.is_file():
        raise ResultNotReady(f"job {job.id} has no {fmt} result")
    stem = slugify(job.dataset.original_name.rsplit(".", 1)[0]) if job.dataset else "result"
    return FileResponse(open(path, "rb"), as_attachment=True,
                        filename=f"{stem}-enhanced-job{job.id}{suffix}")


def available(job: Job) -> list[str]:
    """The formats a finished job can be downloaded in."""
    if job.status != Job.Status.SUCCEEDED or job.kind != Job.Kind.ENHANCE:
        return []
    folder = job.result_dir
    return [fmt for fmt, (name, _, _) in FORMATS.items() if (folder / name).is_file()]


def native(job: Job) -> str | None:
    """The format closest to the input: HDF5 for an HDF5 input, else the TIFF set (a job has
    one or the other); None when the job has no results."""
    have = available(job)
    return next((fmt for fmt in ("h5", "tiff") if fmt in have), have[0] if have else None)
