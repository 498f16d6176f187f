"""A validation against a fine scan (Job.validation) and a blind probe estimate
(Dataset.probe_estimate) whose worker died never stay "running" for ever (xrfweb/side_tasks.py):
past XRFWEB_SIDE_TASK_TIMEOUT_S the reaper fails them, a worker restarting under the same name
fails what its previous life ran, the pages and the API say why, and the user starts again."""
import signal
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import api_client, make_dataset, make_finished_job, start_worker, stop_worker, web_client
from tests.reliability import work
from tests.reliability.helpers import record
from xrfweb import side_tasks
from xrfweb.jobs.models import Job
from xrfweb.projects.models import Dataset, Project


def ago(**delta) -> str:
    return (timezone.now() - timedelta(**delta)).isoformat()


@pytest.mark.django_db
def test_past_the_limit_the_reaper_fails_them_with_the_reason_and_leaves_fresh_ones(alice, tiny_model, settings):
    limit = settings.XRFWEB_SIDE_TASK_TIMEOUT_S
    project = Project.objects.create(name="stale", owner=alice)
    fine = make_dataset(project, alice, pixel_nm=12.5)
    stale_job = make_finished_job(make_dataset(project, alice), tiny_model, alice)
    fresh_job = make_finished_job(make_dataset(project, alice), tiny_model, alice)
    Job.objects.filter(id=stale_job.id).update(validation={  # taken by a worker that then died
        "status": "running", "fine_dataset": fine.id, "asked": ago(seconds=limit + 120),
        "worker": "gone@host", "started": ago(seconds=limit + 60)})
    Job.objects.filter(id=fresh_job.id).update(validation={  # waited, then taken a minute ago
        "status": "running", "fine_dataset": fine.id, "asked": ago(seconds=limit + 120),
        "worker": "alive@host", "started": ago(seconds=60)})
    never_taken, fresh = make_dataset(project, alice), make_dataset(project, alice)
    Dataset.objects.filter(id=never_taken.id).update(probe_estimate={"status": "running",
                                                                     "asked": ago(seconds=limit + 1)})
    Dataset.objects.filter(id=fresh.id).update(probe_estimate=side_tasks.asked())
    web, api = web_client(alice), api_client(alice)

    # The pages' polls run the reaper: failed, with the reason in words.
    assert web.get(f"/jobs/{stale_job.id}/status.json").json()["validation_status"] == "failed"
    v = api.get(f"/api/v1/jobs/{stale_job.id}/").json()["validation"]
    assert v["status"] == "failed" and v["fine_dataset"] == fine.id and v["worker"] == "gone@host"
    assert v["error"] == ("the worker stopped while validating against the fine scan (no outcome "
                          "60 minutes after it started); start it again")
    page = web.get(f"/jobs/{stale_job.id}/").content.decode()
    assert f"The validation failed: {v['error']}" in page and "Validate again" in page
    e = web.get(f"/datasets/{never_taken.id}/probe.json").json()["probe_estimate"]
    assert e["status"] == "failed" and e["error"] == (
        "no worker took up the estimate within 60 minutes (are the workers running?); start it again")
    assert api.get(f"/api/v1/datasets/{never_taken.id}/").json()["probe_estimate"] == e
    page = web.get(f"/datasets/{never_taken.id}/").content.decode()
    assert f"No estimate: {e['error']}" in page and "Estimate again" in page

    # Fresh ones (asked, or taken by a worker, within the limit) are left running.
    assert Job.objects.get(id=fresh_job.id).validation["status"] == "running"
    assert web.get(f"/jobs/{fresh_job.id}/status.json").json()["validation_status"] == "running"
    assert web.get(f"/datasets/{fresh.id}/probe.json").json()["probe_estimate"]["status"] == "running"
    assert side_tasks.reap_stale() == 0
    busy = api.post(f"/api/v1/jobs/{fresh_job.id}/validate/", {"fine_dataset": fine.id}, format="json")
    assert busy.status_code == 409 and "being validated already" in busy.json()["error"]

    # The user starts them again: running anew.
    started = api.post(f"/api/v1/datasets/{never_taken.id}/probe-estimate/")
    assert started.status_code == 202 and started.json()["probe_estimate"]["status"] == "running"
    assert api.post(f"/api/v1/jobs/{stale_job.id}/validate/", {"fine_dataset": fine.id},
                    format="json").status_code == 202
    assert Job.objects.get(id=stale_job.id).validation["status"] == "running"


@pytest.mark.django_db
def test_a_stale_one_does_not_block_starting_again(alice):
    """Nobody read the page since its worker died: starting again reaps it first (no 409)."""
    project = Project.objects.create(name="restart", owner=alice)
    d = make_dataset(project, alice)
    Dataset.objects.filter(id=d.id).update(probe_estimate={"status": "running", "worker": "gone@host",
                                                           "asked": ago(days=1), "started": ago(days=1)})
    response = api_client(alice).post(f"/api/v1/datasets/{d.id}/probe-estimate/")
    assert response.status_code == 202, response.content
    assert response.json()["probe_estimate"]["status"] == "running"
    assert "worker" not in response.json()["probe_estimate"]  # a new request, not the dead one


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_estimate_fails_it_when_it_starts_again(alice, tiny_model):
    """SIGKILL the whole worker (parent and pool child) while it estimates a probe: the broker
    does not hand the message out again (not before its visibility timeout, hours), so the row
    would say running for ever. The worker starting again under its name fails it, and the
    validation the row says it was running too, with the reason."""
    from django.conf import settings

    from xrfweb.projects.tasks import estimate_probe

    queue = f"{settings.XRFWEB_QUEUE_PREFIX}side-kill"
    nodename = f"{settings.XRFWEB_QUEUE_PREFIX}side-kill@localhost"
    project = Project.objects.create(name="side-kill", owner=alice)
    big = work.ready_dataset(project, alice, 1024, 1024)  # seconds of reading and estimating
    Dataset.objects.filter(id=big.id).update(probe_estimate=side_tasks.asked())
    job = make_finished_job(make_dataset(project, alice), tiny_model, alice)
    fine = make_dataset(project, alice, pixel_nm=12.5)
    worker = start_worker(queues=[queue], nodename=nodename)
    try:
        estimate_probe.apply_async((big.id,), queue=queue)
        taken = worker.wait_for(lambda: Dataset.objects.get(id=big.id).probe_estimate.get("worker"),
                                60, "the worker to take the estimate")
        assert taken == nodename
        # A validation that worker was running at the same time (concurrency 1 runs one task,
        # so this one is marked by hand, as side_tasks.run marks it).
        Job.objects.filter(id=job.id).update(validation={
            **side_tasks.asked(fine_dataset=fine.id), "worker": nodename,
            "started": timezone.now().isoformat()})
        stop_worker(worker, signal.SIGKILL)
        killed = Dataset.objects.get(id=big.id).probe_estimate
        assert killed["status"] == "running", killed  # killed mid-task, before any outcome

        api = api_client(alice)
        assert api.get(f"/api/v1/datasets/{big.id}/").json()["probe_estimate"]["status"] == "running"
        worker = start_worker(queues=[queue], nodename=nodename)
        e = worker.wait_for(lambda: (e := Dataset.objects.get(id=big.id).probe_estimate)["status"]
                            != "running" and e, 30, "the restarted worker to fail the estimate")
    finally:
        stop_worker(worker)
    assert e["status"] == "failed" and e["worker"] == nodename
    assert e["error"] == "the worker stopped while estimating the probe (it restarted); start it again"
    assert api.get(f"/api/v1/datasets/{big.id}/").json()["probe_estimate"]["error"] == e["error"]
    assert f"No estimate: {e['error']}" in web_client(alice).get(f"/datasets/{big.id}/").content.decode()
    v = api.get(f"/api/v1/jobs/{job.id}/").json()["validation"]
    assert v["status"] == "failed" and v["fine_dataset"] == fine.id
    assert v["error"] == ("the worker stopped while validating against the fine scan (it restarted); "
                          "start it again")
    # Starting again after this is test_past_the_limit_the_reaper_fails_them_...'s last step.
    record("fault", "SIGKILL the whole worker mid probe estimate, then start it under the same name",
           f"the estimate stayed running while no worker ran (no redelivery); the restarted worker "
           f"failed it and the validation marked as its own: \"{e['error']}\"")
