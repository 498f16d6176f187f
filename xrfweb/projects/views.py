"""Pages for projects and their datasets: list, create, collaborators, upload, download."""
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpResponseForbidden, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from enhancer import UserError
from xrfweb import access
from xrfweb.projects.models import Project
from xrfweb.projects.probes import attach_probe, detach_probe
from xrfweb.projects.services import delete_dataset, keep_upload, start_probe_estimate
from xrfweb.projects.uploads import max_upload_bytes, takes_large_uploads, uploaded_file
from xrfweb.side_tasks import reap_stale


def dataset_summary(dataset) -> dict:
    """What parsing found, for the live table and the API."""
    return {
        "id": dataset.id, "name": dataset.original_name, "status": dataset.status,
        "elements": dataset.elements, "shape": dataset.shape,
        "pixel_size_nm": dataset.pixel_size_nm, "pixel_nm": dataset.pixel_nm,
        "scan_step_nm": dataset.scan_step_nm, "probe_fwhm_nm": dataset.probe_fwhm_nm,
        "counts_estimate": dataset.counts_estimate,
        "scalers": dataset.scalers, "source_format": dataset.source_format,
        "size_bytes": dataset.size_bytes, "error": dataset.error,
    }


@login_required
def home(request):
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        if not name:
            messages.error(request, "Give the project a name (the beamtime or proposal).")
        else:
            project = Project.objects.create(name=name[:200], owner=request.user)
            return redirect("project", project.id)
    projects = access.projects_for_user(request.user).select_related("owner")
    return render(request, "projects/home.html", {"projects": projects})


@login_required
def project_detail(request, project_id: int):
    project = access.get_project_for_user(request.user, project_id)
    return render(request, "projects/project.html", {
        "project": project,
        "datasets": project.datasets.all(),
        "jobs": project.jobs.select_related("dataset", "model")[:20],
        "can_manage": access.can_manage_project(request.user, project),
        "max_upload_bytes": max_upload_bytes(),
    })


@login_required
def project_datasets_json(request, project_id: int):
    project = access.get_project_for_user(request.user, project_id)
    return JsonResponse({"datasets": [dataset_summary(d) for d in project.datasets.all()]})


@login_required
@require_POST
def project_collaborators(request, project_id: int):
    project = access.get_project_for_user(request.user, project_id)
    if not access.can_manage_project(request.user, project):
        return HttpResponseForbidden("Only the project's owner adds or removes collaborators.")
    username = request.POST.get("username", "").strip()
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        messages.error(request, f"There is no user called {username!r}.")
    elif request.POST.get("action") == "remove":
        project.collaborators.remove(user)
        messages.success(request, f"{user} no longer sees this project.")
    elif user != project.owner:
        project.collaborators.add(user)
        messages.success(request, f"{user} now sees this project.")
    return redirect("project", project.id)


@takes_large_uploads
@login_required
@require_POST
def project_upload(request, project_id: int):
    """The browser's XHR upload (with a progress bar). Answers JSON: the dataset, or an error."""
    project = access.get_project_for_user(request.user, project_id)
    try:
        uploaded = uploaded_file(request, request.FILES, "choose a file to upload")
        dataset = keep_upload(request.user, project, uploaded, request.POST.get("pixel_nm"),
                              request.POST.get("probe_fwhm_nm"))
    except MultiPartParserError as e:  # e.g. a file name past Django's header size limit
        return JsonResponse({"error": f"the upload could not be read: {e}"}, status=400)
    except UserError as e:  # UploadRefused: 413
        return JsonResponse({"error": str(e)}, status=getattr(e, "http_status", 400))
    return JsonResponse(dataset_summary(dataset), status=201)


@login_required
def dataset_file(request, dataset_id: int):
    """The original upload, to those who may see its project, under its original name; never
    typed from that name (a file called x.html must not come back as text/html)."""
    dataset = access.get_dataset_for_user(request.user, dataset_id)
    return FileResponse(open(dataset.path, "rb"), as_attachment=True,
                        filename=dataset.original_name, content_type="application/octet-stream")


@login_required
@require_POST
def dataset_probe(request, dataset_id: int):
    """The dataset page's "Estimate the probe": queued on a worker; the page follows it."""
    dataset = access.get_dataset_for_user(request.user, dataset_id)
    try:
        start_probe_estimate(dataset)
    except UserError as e:
        messages.error(request, f"Not started: {e}")
    return redirect(reverse("dataset-detail", args=[dataset.id]) + "#physics")


@login_required
def dataset_probe_json(request, dataset_id: int):
    reap_stale()  # an estimate whose worker died ends failed with the reason, not polled for ever
    dataset = access.get_dataset_for_user(request.user, dataset_id)
    return JsonResponse({"probe_estimate": dataset.probe_estimate})


@takes_large_uploads
@login_required
@require_POST
def dataset_measured_probe(request, dataset_id: int):
    """Staff attach a measured probe file (or, with action=detach, detach it) on the dataset page."""
    dataset = access.get_dataset_for_user(request.user, dataset_id)
    access.require_staff(request.user, "attach a measured probe")
    back = redirect(reverse("dataset-detail", args=[dataset.id]) + "#measured-probe")
    try:
        if request.POST.get("action") == "detach":
            detach_probe(dataset, request.POST.get("probe_fwhm_nm"))
            messages.success(request, f"Measured probe detached; {dataset.physics.describe()}.")
            return back
        uploaded = uploaded_file(request, request.FILES, "choose the probe file")
        attach_probe(dataset, uploaded, request.POST.get("pixel_nm"), request.POST.get("dataset_path"),
                     by=request.user)
    except (UserError, MultiPartParserError) as e:
        messages.error(request, f"Not attached: {e}" if request.POST.get("action") != "detach"
                       else f"Not detached: {e}")
        return back
    messages.success(request, f"Measured probe {dataset.measured_probe['name']} attached: FWHM "
                              f"{dataset.measured_probe['fwhm_nm'][0]:g} x {dataset.measured_probe['fwhm_nm'][1]:g} nm.")
    return back


@login_required
@require_POST
def dataset_delete(request, dataset_id: int):
    """Delete an upload with its jobs and their results (the page asks first)."""
    dataset = access.get_dataset_for_user(request.user, dataset_id)
    project = dataset.project
    try:
        delete_dataset(dataset)
    except UserError as e:
        messages.error(request, f"Not deleted: {e}")
    else:
        messages.success(request, f"Deleted {dataset.original_name} and its jobs' results.")
    return redirect("project", project.id)
