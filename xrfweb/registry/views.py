"""Model pages: everyone sees the models they may use; staff train, upload, approve, retire."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from enhancer import UserError
from xrfweb import access
from xrfweb.jobs import services as job_services
from xrfweb.jobs.models import Job
from xrfweb.projects.models import Dataset
from xrfweb.projects.uploads import takes_large_uploads
from xrfweb.registry import approval, services


@login_required
def model_list(request):
    models = access.models_for_user(request.user)
    training = Job.objects.none()
    if request.user.is_staff:
        training = Job.objects.filter(kind=Job.Kind.TRAIN).select_related("model")[:20]
    return render(request, "registry/list.html", {"models": models, "training": training})


@login_required
@require_POST
def model_status(request, model_id: int):
    access.require_staff(request.user)
    model = access.get_model_for_user(request.user, model_id)
    try:
        services.set_status(model, request.POST.get("status", ""), request.user,
                            request.POST.get("reason", ""))
        messages.success(request, f"Model {model} is now {model.status}.")
    except UserError as e:
        messages.error(request, f"{model}: {e}")
    return redirect(request.POST.get("next") or "model-list")


@login_required
@require_POST
def model_benchmark(request, model_id: int):
    """Queue the approval benchmark (a worker runs it; the model page follows it)."""
    access.require_staff(request.user)
    model = approval.request_benchmark(access.get_model_for_user(request.user, model_id))
    messages.info(request, f"The approval benchmark of {model} is {model.benchmark['status']}.")
    return redirect("model-detail", model.id)


@login_required
def model_benchmark_json(request, model_id: int):
    access.require_staff(request.user)
    model = access.get_model_for_user(request.user, model_id)
    return JsonResponse({"benchmark": model.benchmark, "problem": approval.problem(model)})


def _number(post, key, cast=float, required=True):
    raw = post.get(key, "").strip()
    if not raw:
        if required:
            raise UserError(f"{key.replace('_', ' ')} is required")
        return None
    try:
        return cast(raw)
    except ValueError:
        raise UserError(f"{key.replace('_', ' ')}: {raw!r} is not a number") from None


@login_required
def model_train(request):
    access.require_staff(request.user)
    datasets = Dataset.objects.filter(status=Dataset.Status.READY).select_related("project")
    if request.method == "POST":
        post = request.POST
        try:
            chosen = [access.get_dataset_for_user(request.user, i)
                      for i in post.getlist("datasets")]
            probe_id = post.get("probe_dataset") or None
            measured_id = post.get("measured_probe_dataset") or None
            job = job_services.start_training(
                request.user, name=post.get("name", ""), datasets=chosen,
                phantoms=_number(post, "phantoms", int, required=False) or 0,
                probe_fwhm_nm=_number(post, "probe_fwhm_nm", required=False),
                pixel_nm=_number(post, "pixel_nm"),
                scale=_number(post, "scale", int), counts=_number(post, "counts"),
                steps=_number(post, "steps", int, required=False),
                minutes=_number(post, "minutes", required=False),
                probe_dataset=access.get_dataset_for_user(request.user, probe_id) if probe_id
                else None,
                measured_probe_dataset=access.get_dataset_for_user(request.user, measured_id)
                if measured_id else None,
            )
        except UserError as e:
            messages.error(request, f"Not started: {e}")
        else:
            messages.success(request, f"Training job {job.id} queued.")
            return redirect("model-training", job.id)
    return render(request, "registry/train.html", {
        "datasets": datasets, "form": request.POST,
        "with_probes": [d for d in datasets if d.measured_probe]})


@login_required
def model_training(request, job_id: int):
    """Live curves of one training job."""
    access.require_staff(request.user)
    job = access.get_job_for_user(request.user, job_id)
    return render(request, "registry/training.html", {"job": job})


@takes_large_uploads
@login_required
def model_upload(request):
    access.require_staff(request.user)
    if request.method == "POST":
        try:
            model = services.add_uploaded_bundle(
                request.user, request.POST.get("name", ""), request.FILES.get("weights"),
                request.FILES.get("config"),
            )
        except UserError as e:
            messages.error(request, f"Not added: {e}")
        else:
            messages.success(request, f"Model {model} added as a draft; approve it to offer it.")
            return redirect("model-list")
    return render(request, "registry/upload.html")


@login_required
def model_compare(request):
    """Side by side: configuration, metrics and training curves of the chosen models."""
    ids = [i for i in request.GET.getlist("ids") if i.isdigit()]
    models = [access.get_model_for_user(request.user, i) for i in ids]
    curves = {m.name: services.training_curves(m) for m in models}
    return render(request, "registry/compare.html", {
        "models": models, "curves": curves, "benchmark_rows": _benchmark_rows(models),
        "all_models": access.models_for_user(request.user),
    })




def _benchmark_rows(models) -> list[tuple[str, list]]:
    """The approval benchmarks side by side, case by case: every model on a row was measured on
    the same phantoms with the same noise (a case another model was not run on shows '–')."""
    summaries = [m.benchmark.get("summary") or {} for m in models]
    rows = []
    for case in sorted({c for s in summaries for c in s}):
        per = [s.get(case) for s in summaries]
        rows += [(f"Case {case}: PSNR (dB)", [p and p["network"]["psnr"] for p in per]),
                 (f"Case {case}: gain over the input (dB)",
                  [p and p["network"]["psnr"] - p["input"]["psnr"] for p in per]),
                 (f"Case {case}: gain over Richardson-Lucy (dB)",
                  [p and p["network"]["psnr"] - p["rl_oracle"]["psnr"] for p in per])]
    return rows
