"""Job pages: the job list (live), starting an enhancement, status JSON, cancel, downloads."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from enhancer import UserError
from xrfweb import access
from xrfweb.jobs import results, services
from xrfweb.jobs.models import Job
from xrfweb.jobs.runner import reap_stale_jobs
from xrfweb.projects.services import ensure_dose, set_physics
from xrfweb.registry.suggest import rank_models


def job_summary(job: Job) -> dict:
    """What the job list, the job page and the API show of a job."""
    return {
        "id": job.id, "kind": job.kind, "status": job.status, "progress": round(job.progress, 4),
        "message": job.message, "error": job.error, "queue_position": job.queue_position(),
        "worker": job.worker, "created": job.created, "started": job.started,
        "finished": job.finished, "duration_s": job.duration_s(),
        "dataset": job.dataset_id, "model": job.model_id, "project": job.project_id,
        "dataset_name": str(job.dataset or ""), "model_name": str(job.model or ""),
        "model_status": job.model.status if job.model else "",
        "project_name": str(job.project or ""),
        "cancel_requested": job.cancel_requested,
        "results": sorted(results.available(job)),
        "validation_status": (job.validation or {}).get("status"),  # running, done, failed or None
    }


@login_required
def job_list(request):
    reap_stale_jobs()
    jobs = access.jobs_for_user(request.user).select_related("dataset", "model", "project",
                                                             "created_by")
    return render(request, "jobs/list.html", {"jobs": jobs[:200], "formats": results.FORMATS})


@login_required
def job_list_json(request):
    reap_stale_jobs()
    jobs = access.jobs_for_user(request.user).select_related("dataset", "model", "project")[:200]
    return JsonResponse({"jobs": [job_summary(j) for j in jobs]})


@login_required
def job_status_json(request, job_id: int):
    reap_stale_jobs()
    job = access.get_job_for_user(request.user, job_id)
    return JsonResponse({**job_summary(job), "curves": job.curves})


@login_required
@require_POST
def job_cancel(request, job_id: int):
    job = services.request_cancel(access.get_job_for_user(request.user, job_id))
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse(job_summary(job))
    messages.info(request, f"Job {job.id}: {job.message or job.status}.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = "job-list"  # never off-site (an open redirect)
    return redirect(target)


@login_required
def job_result(request, job_id: int, fmt: str):
    job = access.get_job_for_user(request.user, job_id)
    try:
        return results.result_response(job, fmt)
    except results.ResultNotReady as e:
        return HttpResponse(str(e), status=409, content_type="text/plain")


@login_required
@require_POST
def job_validate(request, job_id: int):
    """The job page's "Validate against a fine scan": the API's own start (services.start_validation)."""
    job = access.get_job_for_user(request.user, job_id)
    try:
        services.start_validation(job, request.POST.get("fine_dataset"))
    except UserError as e:
        messages.error(request, f"Not started: {e}")
    else:
        messages.success(request, "Validation queued: its numbers appear here when the worker is done.")
    return redirect(reverse("job-detail", args=[job.id]) + "#validation")


def _scale(raw):
    """The page's optional scale: blank is the fit rule's default."""
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise UserError(f"the scale must be a whole number 1-4 (got {raw!r})") from None


@login_required
def dataset_enhance(request, dataset_id: int):
    """Every approved model with whether it fits this map and why not, the best fitting one
    chosen; while the map's step or probe is unknown it asks for them here, and starts nothing."""
    dataset = ensure_dose(access.get_dataset_for_user(request.user, dataset_id))
    if request.method == "POST" and request.POST.get("action") == "physics":
        try:
            set_physics(dataset, pixel_nm=request.POST.get("pixel_nm", ""),
                        probe_fwhm_nm=request.POST.get("probe_fwhm_nm", ""))
        except UserError as e:
            messages.error(request, f"Not saved: {e}")
        else:
            messages.success(request, f"{dataset}: {dataset.physics.describe()}.")
            back = request.POST.get("next", "")
            if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
                return redirect(back)
            return redirect("dataset-enhance", dataset.id)
    elif request.method == "POST":
        try:
            model = access.get_model_for_user(request.user, request.POST.get("model"))
            if dataset.physics.scan_step_nm is None or dataset.physics.probe_fwhm_nm is None:
                raise UserError("state the map's scan step and probe first")
            job = services.start_enhancement(request.user, dataset, model,
                                             ensemble=int(request.POST.get("ensemble") or 1),
                                             scale=_scale(request.POST.get("scale")))
        except (UserError, ValueError) as e:
            messages.error(request, f"Not started: {e}")
        else:
            messages.success(request, f"Job {job.id} queued.")
            return redirect("job-detail", job.id)
    candidates = rank_models(dataset, access.models_for_user(request.user).filter(status="approved"))
    physics = dataset.physics
    return render(request, "jobs/enhance.html", {
        "dataset": dataset, "candidates": candidates, "physics": physics,
        "best": next((m.id for m, f in candidates if f.ok), None),
        "can_start": physics.scan_step_nm is not None and physics.probe_fwhm_nm is not None,
    })
