"""Job pages: the job list (live), starting an enhancement, status JSON, cancel, downloads."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from enhancer import UserError
from xrfweb import access
from xrfweb.jobs import results, services
from xrfweb.jobs.models import Job
from xrfweb.jobs.runner import reap_stale_jobs
from xrfweb.registry.suggest import rank_models


def job_summary(job: Job) -> dict:
    """What the job list, the job page and the API show of a job."""
    return {
        "id": job.id, "kind": job.kind, "status": job.status, "progress": round(job.progress, 4),
        "message": job.message, "error": job.error, "queue_position": job.queue_position(),
        "worker": job.worker, "created": job.created, "started": job.started,
        "finished": job.finished, "duration_s": job.duration_s(),
        "dataset": job.dataset_id, "model": job.model_id, "project": job.project_id,
        "cancel_requested": job.cancel_requested,
        "results": sorted(results.available(job)),
    }


@login_required
def job_list(request):
    reap_stale_jobs()
    jobs = access.jobs_for_user(request.user).select_related("dataset", "model", "created_by")
    return render(request, "jobs/list.html", {"jobs": jobs[:200], "formats": results.FORMATS})


@login_required
def job_list_json(request):
    reap_stale_jobs()
    jobs = access.jobs_for_user(request.user).select_related("dataset", "model")[:200]
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
def dataset_enhance(request, dataset_id: int):
    """Choose a model for a dataset (fitting ones first) and start the job."""
    dataset = access.get_dataset_for_user(request.user, dataset_id)
    candidates = rank_models(dataset, access.models_for_user(request.user).filter(
        status="approved"))
    if request.method == "POST":
        try:
            model = access.get_model_for_user(request.user, request.POST.get("model"))
            job = services.start_enhancement(request.user, dataset, model,
                                             ensemble=int(request.POST.get("ensemble") or 1))
        except (UserError, ValueError) as e:
            messages.error(request, f"Not started: {e}")
        else:
            messages.success(request, f"Job {job.id} queued.")
            return redirect("job-list")
    return render(request, "jobs/enhance.html", {"dataset": dataset, "candidates": candidates})
