"""Simple review pages for now; access goes through xrfweb.access like everywhere else."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from xrfweb import access


@login_required
def dataset_detail(request, dataset_id: int):
    dataset = access.get_dataset_for_user(request.user, dataset_id)
    return render(request, "review/dataset.html", {"dataset": dataset})


@login_required
def job_detail(request, job_id: int):
    job = access.get_job_for_user(request.user, job_id)
    return render(request, "review/job.html", {"job": job})


@login_required
def model_detail(request, model_id: int):
    model = access.get_model_for_user(request.user, model_id)
    return render(request, "review/model.html", {"model": model})
