"""Jobs under real conditions: cancel a running training, a worker killed mid-job, staff train
a model that users can then run. Real worker processes, the real Redis."""
import signal

import pytest

from tests.conftest import api_client, start_worker, stop_worker
from xrfweb.jobs.models import Job
from xrfweb.registry.models import EnhancementModel

pytestmark = pytest.mark.django_db(transaction=True)
TINY = {"phantoms": 1, "probe_fwhm_nm": 80, "pixel_nm": 25, "scale": 2, "counts": 200,
        "blocks": 1, "filters": 4}


def job_row(job_id):
    return Job.objects.get(id=job_id)


def test_staff_train_a_model_and_approve_it(celery_worker_process, staff, alice):
    worker = celery_worker_process
    response = api_client(staff).post("/api/v1/models/train/",
                                      {"name": "phantom-x2", "steps": 3, **TINY}, format="json")
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    worker.wait_for(lambda: job_row(job_id).is_finished, 180, "training to finish")
    job = job_row(job_id)
    assert job.status == "succeeded", job.error
    assert job.curves and job.curves[-1]["step"] >= 1
    model = job.model
    assert model.name == "phantom-x2" and model.status == "draft" and model.source == "trained"
    assert model.scan_step_nm == 50.0 and model.probe_fwhm_nm == 80
    # Users see it only once approved.
    assert "phantom-x2" not in {m["name"] for m in api_client(alice).get("/api/v1/models/").json()}
    api_client(staff).post(f"/api/v1/models/{model.id}/status/",
                           {"status": "approved", "reason": "3 steps: a plumbing test"},
                           format="json")
    assert "phantom-x2" in {m["name"] for m in api_client(alice).get("/api/v1/models/").json()}
    from enhancer.bundle import load_bundle

    bundle = load_bundle(model.bundle_ref)
    assert bundle.scale == 2  # the registered folder is a whole bundle
    # It learnt as the shipped models last did: phantoms of several kinds and contrasts, seen
    # through fine probes up to 0.8x its 80 nm probe.
    data = bundle.config["training"]["data"]
    assert data["phantom_probe_nm"] == [0.0, 64.0] and data["phantom_gamma"] == [1.0, 3.0]
    assert "aggregate" in data["phantom_kinds"]


def test_a_running_job_stops_when_cancelled(celery_worker_process, staff):
    worker = celery_worker_process
    api = api_client(staff)
    response = api.post("/api/v1/models/train/", {"name": "endless", "steps": 1_000_000, **TINY},
                        format="json")
    job_id = response.json()["id"]
    worker.wait_for(lambda: job_row(job_id).status == "running", 120, "training to start")
    response = api.post(f"/api/v1/jobs/{job_id}/cancel/")
    assert response.json()["cancel_requested"] is True
    # Checked between steps: it stops once the data is prepared and the first step is done.
    worker.wait_for(lambda: job_row(job_id).is_finished, 120, "the job to stop")
    job = job_row(job_id)
    assert job.status == "cancelled" and job.finished and job.progress < 0.01
    assert not EnhancementModel.objects.filter(name="endless").exists()


def test_a_job_whose_worker_is_killed_ends_failed_with_a_reason(django_db_blocker, staff):
    """SIGKILL the worker (and its pool) mid-job: the row must not stay 'running' forever. A
    worker coming back under the same name fails what its previous life was running.
    It has a queue of its own, so that the session's worker cannot take the job instead."""
    from django.conf import settings

    from xrfweb.jobs.tasks import train_model

    queue = f"{settings.XRFWEB_QUEUE_PREFIX}doomed"
    params = {"name": "doomed", "datasets": [], "steps": 1_000_000, "minutes": None,
              "probe_dataset": None, **TINY}
    job = Job.objects.create(kind="train", created_by=staff, params=params)
    worker = start_worker(queues=[queue])
    try:
        train_model.apply_async((job.id,), queue=queue)
        worker.wait_for(lambda: job_row(job.id).status == "running", 120, "the job to start")
    finally:
        stop_worker(worker, signal.SIGKILL)
    assert job_row(job.id).status == "running"  # nobody has noticed yet

    again = start_worker(nodename=worker.nodename, queues=[queue])
    try:
        again.wait_for(lambda: job_row(job.id).is_finished, 60, "the stale job to be failed")
    finally:
        stop_worker(again)
    failed = job_row(job.id)
    assert failed.status == "failed" and "restarted" in failed.error and failed.finished
