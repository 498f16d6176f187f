"""Starting and cancelling jobs: the one place that creates Job rows and enqueues their tasks."""
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from enhancer import UserError
from xrfweb import side_tasks
from xrfweb.jobs.models import Job
from xrfweb.projects.models import Dataset
from xrfweb.projects.probes import public
from xrfweb.projects.services import Busy
from xrfweb.registry.models import EnhancementModel

MAX_TRAIN_MINUTES = 24 * 60
MAX_TRAIN_STEPS = 1_000_000


class TooManyJobs(UserError):
    """Over XRFWEB_MAX_ACTIVE_JOBS: the API answers 429, the page says why."""
    http_status = 429


def _claim_a_place(user) -> None:
    """Each user may have XRFWEB_MAX_ACTIVE_JOBS jobs queued or running at once: one user
    cannot fill the first-in-first-out queue ahead of everyone else. Call inside the
    transaction that creates the job: the user's row is locked, so two requests at once
    cannot both take the last place."""
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk"))
    cap = settings.XRFWEB_MAX_ACTIVE_JOBS
    active = Job.objects.filter(created_by=user,
                                status__in=(Job.Status.QUEUED, Job.Status.RUNNING)).count()
    if active >= cap:
        raise TooManyJobs(f"you have {active} jobs queued or running, the most one user may "
                          f"have at once ({cap}); wait for one to finish or cancel one")


def _enqueue(job: Job) -> None:
    # Import here: tasks pulls in the Celery task registry, which models must not need.
    from xrfweb.jobs import tasks
    from xrfweb.queueing import send_after_commit

    task = tasks.enhance_dataset if job.kind == Job.Kind.ENHANCE else tasks.train_model
    # After commit: the worker must find the row, and a rolled-back request enqueues nothing.
    send_after_commit(task, job.id)


def model_fit(dataset: Dataset, model: EnhancementModel, scale=None):
    """enhancer.fit's verdict for this model on this dataset, with the web's own conditions
    first (a ready dataset, an approved model, the elements a joint model was trained for)."""
    from enhancer.fit import Fit, fit

    if dataset.status != Dataset.Status.READY:
        return Fit(False, f"dataset {dataset} is {dataset.status}, not ready")
    if model.status != EnhancementModel.Status.APPROVED:
        return Fit(False, f"model {model} is {model.status}; only approved models run")
    elements = model.elements
    if elements != "any" and list(elements) != list(dataset.elements):
        return Fit(False, f"model {model} is trained for {', '.join(elements)}; the map has "
                          + ", ".join(dataset.elements))
    return fit({"name": model.name, **model.config}, dataset.physics, scale)


def fitting_problem(dataset: Dataset, model: EnhancementModel, scale=None) -> str:
    """Why this model cannot enhance this dataset, or "" when it fits."""
    f = model_fit(dataset, model, scale)
    return "" if f.ok else f.reason


def start_enhancement(user, dataset: Dataset, model: EnhancementModel, *, ensemble: int = 1,
                      scale=None) -> Job:
    from xrfweb.projects.services import ensure_dose

    ensure_dose(dataset)
    f = model_fit(dataset, model, scale)
    if not f.ok:
        raise UserError(f.reason)
    if not 1 <= ensemble <= 8:
        raise UserError("ensemble takes 1 to 8")
    p = f.physics  # what it runs with, recorded: the job page and the API show it
    params = {"ensemble": ensemble, "pixel_nm": dataset.pixel_nm, "scan_step_nm": list(p.scan_step_nm),
              "probe_fwhm_nm": list(p.probe_fwhm_nm), "probe_assumed": dataset.probe_fwhm_nm is None,
              "scale": f.scale, "fine_pixel_nm": list(f.fine_pixel_nm), "counts": p.counts,
              "counts_estimated": p.counts_estimated, "note": f.note}
    if dataset.measured_probe:  # the worker reads it and uses it as the PSF (work.enhance)
        params["measured_probe"] = public(dataset)
    with transaction.atomic():
        _claim_a_place(user)
        job = Job.objects.create(
            kind=Job.Kind.ENHANCE, created_by=user, project=dataset.project, dataset=dataset,
            model=model, params=params,
        )
        _enqueue(job)
    return job


def start_training(user, *, name: str, datasets: list[Dataset], phantoms: int, probe_fwhm_nm: float | None,
                   pixel_nm: float, scale: int, counts: float, steps: int | None = None,
                   minutes: float | None = None, probe_dataset: Dataset | None = None,
                   blocks: int = 8, filters: int = 32,
                   measured_probe_dataset: Dataset | None = None) -> Job:
    """Train a model from ready datasets and/or generated phantoms (simulated degradation).
    The probe is a Gaussian of probe_fwhm_nm or the measured probe attached to
    measured_probe_dataset (the PSF, as the CLI's train --probe: enhancer.probe.simulation)."""
    from enhancer.probe import one_probe

    name = name.strip()
    if not name or not slugify(name):
        raise UserError("give the model a name with letters or digits")
    if EnhancementModel.objects.filter(name=name).exists():
        raise UserError(f"a model named {name!r} exists already")
    if not datasets and phantoms <= 0:
        raise UserError("choose at least one dataset or some phantoms to train on")
    for d in datasets:
        if d.status != Dataset.Status.READY:
            raise UserError(f"dataset {d} is {d.status}, not ready")
    one_probe(probe_fwhm_nm, measured_probe_dataset is not None, "probe_fwhm_nm",
              "measured_probe_dataset (a dataset with a measured probe attached)")
    measured = _measured_probe(measured_probe_dataset, probe_dataset)
    if not ((probe_fwhm_nm is None or probe_fwhm_nm > 0) and pixel_nm > 0 and counts > 0):
        raise UserError("probe FWHM, pixel size and counts must be positive")
    if scale not in (1, 2, 3, 4):
        raise UserError("scale must be 1, 2, 3 or 4")
    if (steps is None) == (minutes is None):
        raise UserError("give a budget: either steps or minutes")
    if steps is not None and not 1 <= steps <= MAX_TRAIN_STEPS:
        raise UserError(f"steps must be between 1 and {MAX_TRAIN_STEPS}")
    if minutes is not None and not 0 < minutes <= MAX_TRAIN_MINUTES:
        raise UserError(f"minutes must be between 0 and {MAX_TRAIN_MINUTES}")
    if not (1 <= blocks <= 32 and 4 <= filters <= 128):
        raise UserError("the network takes 1 to 32 blocks of 4 to 128 filters")
    params = {
        "name": name, "datasets": [d.id for d in datasets], "phantoms": phantoms,
        "probe_fwhm_nm": probe_fwhm_nm, "pixel_nm": pixel_nm, "scale": scale, "counts": counts,
        "steps": steps, "minutes": minutes,
        "probe_dataset": probe_dataset.id if probe_dataset else None,
        "blocks": blocks, "filters": filters,
    }
    if measured:  # the worker reads it and checks it is still the one attached (work.train)
        params["measured_probe"] = measured
    with transaction.atomic():
        _claim_a_place(user)
        job = Job.objects.create(kind=Job.Kind.TRAIN, created_by=user, params=params)
        _enqueue(job)
    return job


def _measured_probe(dataset: Dataset | None, probe_dataset: Dataset | None) -> dict | None:
    """What a training job records of the measured probe it simulates with: the dataset it is
    attached to and its summary (the job page and the API show it)."""
    if dataset is None:
        return None
    if probe_dataset is not None:
        raise UserError("give probe_dataset (a map read as the probe) or measured_probe_dataset, not both")
    if not dataset.measured_probe:
        raise UserError(f"dataset {dataset} has no measured probe attached: staff attach one on its page "
                        f"(or POST /api/v1/datasets/{dataset.id}/probe/), or train with probe_fwhm_nm")
    return {"dataset": dataset.id, **public(dataset)}


def request_cancel(job: Job) -> Job:
    """Ask a job to stop. A queued job is cancelled at once; a running one stops at its next
    check (enhancer raises Cancelled between tiles or steps)."""
    Job.objects.filter(id=job.id, status=Job.Status.QUEUED).update(
        status=Job.Status.CANCELLED, cancel_requested=True, finished=timezone.now(),
        message="cancelled before it started",
    )
    Job.objects.filter(id=job.id, status=Job.Status.RUNNING).update(
        cancel_requested=True, message="cancelling"
    )
    job.refresh_from_db()
    return job


def start_validation(job: Job, fine_dataset_id) -> Job:
    """Score a succeeded enhancement against a fine scan (a ready dataset of the job's project)
    on the worker (jobs.validate_job). Raises UserError with the reason when it cannot start."""
    from xrfweb.jobs import tasks
    from xrfweb.queueing import send_after_commit

    if job.kind != Job.Kind.ENHANCE or job.status != Job.Status.SUCCEEDED:
        raise UserError(f"job {job.id} is a {job.status} {job.kind} job: only a succeeded "
                        "enhancement can be validated")
    try:
        fine = Dataset.objects.get(id=int(fine_dataset_id), project_id=job.project_id)
    except (Dataset.DoesNotExist, ValueError, TypeError, OverflowError):
        raise UserError(f"fine_dataset must be the id of a dataset in this job's project "
                        f"(got {fine_dataset_id!r})") from None
    if fine.status != Dataset.Status.READY:
        raise UserError(f"dataset {fine} is {fine.status}, not ready")
    if fine.pixel_nm is None:
        raise UserError(f"the pixel size of {fine} is unknown: state it on its page first")
    side_tasks.reap_stale()  # one whose worker died must not block starting again
    with transaction.atomic():
        # one at a time per job: the row lock makes two requests at once start one
        locked = Job.objects.select_for_update().get(id=job.id)
        if side_tasks.is_running(locked.validation):
            raise Busy(f"job {job.id} is being validated already; wait for it")
        locked.validation = side_tasks.asked(fine_dataset=fine.id)
        locked.save(update_fields=["validation"])
        send_after_commit(tasks.validate_job, job.id)
    job.refresh_from_db()
    return job
