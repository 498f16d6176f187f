"""Keeping uploads: the one place an uploaded file becomes a Dataset."""
import os

from django.conf import settings
from django.db import transaction
from django.db.models import Sum

from enhancer import UserError
from xrfweb import side_tasks
from xrfweb.paths import new_name, uploads_dir
from xrfweb.projects.models import Dataset, Project
from xrfweb.projects.tasks import parse_dataset
from xrfweb.projects.uploads import sniff
from xrfweb.queueing import send_after_commit

READABLE = "HDF5 (MAPS, PyXRF), TIFF, a zip of TIFF maps, or NPY"


def parse_physics(raw, what: str) -> tuple[float, float] | None:
    """A stated step or probe FWHM in nm: one number, or "x,y"; empty means not stated."""
    from enhancer.physics import parse_pair

    if raw in (None, "") or (isinstance(raw, (list, tuple)) and not raw):
        return None
    value = parse_pair(raw, what)
    if not all(v < 1e7 for v in value):
        raise UserError(f"{what} must be below 10 mm (got {raw!r})")
    return value


def physics_fields(pixel_nm=None, probe_fwhm_nm=None) -> dict:
    """Dataset fields for a stated step and probe (parsed, validated); UserError says why not."""
    step = parse_physics(pixel_nm, "the scan step (pixel_nm)")
    probe = parse_physics(probe_fwhm_nm, "the probe FWHM (probe_fwhm_nm)")
    return {"pixel_nm_given": step[0] if step else None, "pixel_nm_given_y": step[1] if step else None,
            "probe_fwhm_x_nm": probe[0] if probe else None, "probe_fwhm_y_nm": probe[1] if probe else None}


def ensure_dose(dataset: Dataset) -> Dataset:
    """A dataset parsed before doses were estimated gets its estimate now, from the data."""
    if dataset.counts_estimate is None and dataset.status == Dataset.Status.READY:
        from enhancer.physics import estimate_counts

        try:
            dataset.counts_estimate = estimate_counts(dataset.read_map().data)
        except UserError:
            return dataset  # the file no longer reads: the dose stays unknown, and is said so
        dataset.save(update_fields=["counts_estimate"])
    return dataset


def set_physics(dataset: Dataset, **stated) -> Dataset:
    """State a dataset's step (pixel_nm) and/or probe (probe_fwhm_nm): each given key replaces
    what was stated (empty clears it); the others stay. All checked before anything is saved."""
    unknown = set(stated) - {"pixel_nm", "probe_fwhm_nm"}
    if unknown:
        raise UserError(f"only pixel_nm and probe_fwhm_nm can be changed (not {', '.join(sorted(unknown))})")
    fields = physics_fields(**stated)
    if dataset.measured_probe and "probe_fwhm_nm" in stated:
        # The measured probe's FWHM is its summary, not a separate statement: an unchanged value
        # (the page's form sends it back) is fine, another one is refused.
        given, own = (fields["probe_fwhm_x_nm"], fields["probe_fwhm_y_nm"]), dataset.probe_fwhm_nm
        if given[0] is None or own is None or max(abs(a - b) for a, b in zip(given, own)) > 0.01:
            raise UserError(f"the probe is the measured probe {dataset.measured_probe['name']}; "
                            "detach it first to state a FWHM")
        stated = {k: v for k, v in stated.items() if k != "probe_fwhm_nm"}
    keep = {"pixel_nm": ("pixel_nm_given", "pixel_nm_given_y"),
            "probe_fwhm_nm": ("probe_fwhm_x_nm", "probe_fwhm_y_nm")}
    changed = [f for key in stated for f in keep[key]]
    for f in changed:
        setattr(dataset, f, fields[f])
    dataset.save(update_fields=changed)
    return dataset


def used_bytes(user) -> int:
    """What the user's files take in the store: the maps they uploaded and the measured probes
    they attached (xrfweb/projects/probes.py), whoever's datasets those are on."""
    maps = Dataset.objects.filter(uploaded_by=user).aggregate(s=Sum("size_bytes"))["s"] or 0
    probes = Dataset.objects.filter(measured_probe__attached_by=user.id).values_list("measured_probe", flat=True)
    return maps + sum(int(m.get("size_bytes") or 0) for m in probes)


def ensure_room(user, size: int, freed: int = 0) -> None:
    """The storage quota (XRFWEB_USER_QUOTA_MB), for every file a user stores: refused in words
    when this one (less what it replaces, `freed`) would take them past it. Called again inside
    the transaction that records the file, it first locks the user's row there: two uploads at
    once then take turns, and the second counts the first (outside, it is only an early answer)."""
    if transaction.get_connection().in_atomic_block:
        from django.contrib.auth import get_user_model

        get_user_model().objects.select_for_update().get(pk=user.pk)
    quota = settings.XRFWEB_USER_QUOTA_MB * 1024 * 1024
    if used_bytes(user) - freed + size > quota:
        raise UserError(f"this upload would take you past your {settings.XRFWEB_USER_QUOTA_MB} MB "
                        "storage quota; delete some datasets or measured probes first")


def keep_upload(user, project: Project, uploaded, pixel_nm=None, probe_fwhm_nm=None) -> Dataset:
    """Move a streamed upload (a TemporaryUploadedFile) into the store under a generated name,
    record it, and queue its parsing. The user's file name is kept only as a label."""
    physics = physics_fields(pixel_nm, probe_fwhm_nm)
    size = uploaded.size
    if size == 0:
        raise UserError("the file is empty")
    ensure_room(user, size)
    found = sniff(uploaded.temporary_file_path())
    if found is None:
        raise UserError(f"{uploaded.name} is not a file xrfweb reads ({READABLE})")
    kind, suffix = found
    stored = new_name(suffix)
    path = uploads_dir() / stored
    os.replace(uploaded.temporary_file_path(), path)  # same disk: a rename, not a copy
    try:
        with transaction.atomic():
            ensure_room(user, size)  # again, with the user's row locked until this commits
            dataset = Dataset.objects.create(
                project=project, uploaded_by=user, original_name=(uploaded.name or "upload")[:255],
                stored_name=stored, kind=kind, size_bytes=size, **physics,
            )
            send_after_commit(parse_dataset, dataset.id)
    except Exception:
        path.unlink(missing_ok=True)  # nothing half-kept
        raise
    return dataset


class Busy(UserError):
    """The dataset is in use: a job on it is still queued or running, or its probe estimate is
    running. The API answers 409."""

    http_status = 409


def jobs_reading(dataset: Dataset, probe_only: bool = False):
    """The queued or running jobs whose worker reads this dataset's files: jobs on it, trainings
    that simulate with its attached measured probe and (unless only its probe matters) trainings
    that read its map as their probe."""
    from django.db.models import Q

    from xrfweb.jobs.models import Job

    train = Job.Kind.TRAIN
    readers = Q(dataset=dataset) | Q(kind=train, params__measured_probe__dataset=dataset.id)
    if not probe_only:
        readers |= Q(kind=train, params__probe_dataset=dataset.id)
    return Job.objects.filter(readers, status__in=(Job.Status.QUEUED, Job.Status.RUNNING)).order_by("id")


def delete_dataset(dataset: Dataset) -> None:
    """Forget an upload: its row, its jobs, and their files (the upload, the results, the review
    copies). Refused while a job that reads its files (jobs_reading) is queued or running. The
    files go once the rows are gone, so a failure leaves nothing pointing at missing files."""
    import shutil

    from xrfweb.review.data import dataset_folder, job_folder

    busy = jobs_reading(dataset).first()
    if busy:
        raise Busy(f"{busy.kind} job {busy.id} is still queued or running with {dataset}; cancel it first")
    jobs = list(dataset.jobs.all())
    paths = [dataset.path, dataset_folder(dataset)] + (
        [dataset.measured_probe_path] if dataset.measured_probe else [])
    for job in jobs:
        paths += [job.result_dir, job_folder(job)]

    def remove_files():
        for path in paths:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    with transaction.atomic():
        dataset.delete()  # its jobs go with it (on_delete=CASCADE)
        transaction.on_commit(remove_files)


def start_probe_estimate(dataset: Dataset) -> Dataset:
    """Queue the blind probe estimate of a ready map with a known step (projects.estimate_probe);
    the page's "Estimate the probe" and the API's POST .../probe-estimate/. UserError with the
    reason when it cannot start (Busy while one runs)."""
    from xrfweb.projects.tasks import estimate_probe

    if dataset.status != Dataset.Status.READY:
        raise UserError(f"dataset {dataset} is {dataset.status}, not ready")
    if dataset.scan_step_nm is None:
        raise UserError("the map's scan step is unknown: state it first (the estimate is in nm)")
    side_tasks.reap_stale()  # one whose worker died must not block starting again
    with transaction.atomic():
        locked = Dataset.objects.select_for_update().get(id=dataset.id)
        if side_tasks.is_running(locked.probe_estimate):
            raise Busy("the probe is being estimated already; wait for it")
        locked.probe_estimate = side_tasks.asked()
        locked.save(update_fields=["probe_estimate"])
        send_after_commit(estimate_probe, dataset.id)
    dataset.refresh_from_db()
    return dataset
