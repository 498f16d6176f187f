"""The pages people use: projects, collaborators, enhancement, job list, models (staff)."""
import pytest

from tests.conftest import make_dataset, make_finished_job, make_tiny_model, web_client
from xrfweb.jobs.models import Job
from xrfweb.projects.models import Project

pytestmark = pytest.mark.django_db


def test_sign_in_uses_the_standard_form(client, alice):
    from tests.conftest import PASSWORD

    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response.url == "/"
    assert client.get("/").status_code == 200


def test_a_user_creates_a_project_and_adds_a_collaborator(alice, bob):
    page = web_client(alice)
    response = page.post("/", {"name": "HXN 2026-1 #312"})
    project = Project.objects.get(name="HXN 2026-1 #312")
    assert response.url == f"/projects/{project.id}/" and project.owner == alice
    page.post(f"/projects/{project.id}/collaborators/", {"username": "bob", "action": "add"})
    assert list(project.collaborators.all()) == [bob]
    assert web_client(bob).get(f"/projects/{project.id}/").status_code == 200
    # A collaborator may not change who else sees the project.
    response = web_client(bob).post(f"/projects/{project.id}/collaborators/",
                                    {"username": "bob", "action": "remove"})
    assert response.status_code == 403 and list(project.collaborators.all()) == [bob]
    page.post(f"/projects/{project.id}/collaborators/", {"username": "bob", "action": "remove"})
    assert web_client(bob).get(f"/projects/{project.id}/").status_code == 404


def test_the_project_page_shows_what_parsing_found(project, alice):
    make_dataset(project, alice, name="fine.h5", elements=("Fe", "Cu"), shape=(2, 30, 40))
    rejected = make_dataset(project, alice, name="bad.h5", status="rejected")
    rejected.error = "bad.h5 holds no maps"
    rejected.save()
    html = web_client(alice).get(f"/projects/{project.id}/").content.decode()
    assert "Fe, Cu" in html and "2 × 30 × 40" in html and "bad.h5 holds no maps" in html
    body = web_client(alice).get(f"/projects/{project.id}/datasets.json").json()
    assert {d["name"]: d["status"] for d in body["datasets"]} == {"fine.h5": "ready",
                                                                   "bad.h5": "rejected"}


def test_fitting_models_come_first_and_others_say_why(project, alice):
    dataset = make_dataset(project, alice, pixel_nm=50.0)  # the file says 50 nm; no probe stated
    fits = make_tiny_model("fits-50", pixel_nm=25.0, scale=2)
    coarse = make_tiny_model("needs-200", pixel_nm=100.0, scale=2)
    make_tiny_model("retired-50", pixel_nm=25.0, scale=2, status="retired")
    page = f"/datasets/{dataset.id}/enhance/"
    # The probe is unknown: the page asks for it and starts nothing.
    response = web_client(alice).get(page)
    html = response.content.decode()
    assert 'id="physics-needed"' in html and "the probe FWHM" in html
    assert 'id="physics-probe">unknown' in html
    web_client(alice).post(page, {"model": fits.id})
    assert not Job.objects.exists()
    # Stated right there: the models are judged by it, the best fitting one chosen.
    response = web_client(alice).post(page, {"action": "physics", "pixel_nm": "", "probe_fwhm_nm": "82"})
    assert response.status_code == 302
    response = web_client(alice).get(page)
    ranked = [(m.name, f) for m, f in response.context["candidates"]]
    assert [f.ok for _, f in ranked] == sorted([f.ok for _, f in ranked], reverse=True)
    assert dict(ranked)["fits-50"].ok and response.context["best"] == fits.id
    assert f'value="{fits.id}" checked' in response.content.decode()
    why = dict(ranked)["needs-200"].reason
    assert "200 nm step" in why and "universal" in why
    assert why in response.content.decode().replace("&#x27;", "'")
    assert "retired-50" not in dict(ranked)
    # Starting a job with a model that does not fit is refused in words; a fitting one queues.
    response = web_client(alice).post(page, {"model": coarse.id}, follow=True)
    assert "Not started" in response.content.decode() and not Job.objects.exists()
    response = web_client(alice).post(page, {"model": fits.id})
    job = Job.objects.get()
    # The user lands on the job's own page, not the list of all jobs.
    assert response.url == f"/jobs/{job.id}/" and job.status == "queued" and job.model == fits
    assert job.params["scan_step_nm"] == [50.0, 50.0] and job.params["probe_fwhm_nm"] == [82.0, 82.0]
    assert job.params["scale"] == 2 and not job.params["probe_assumed"]


def test_a_bad_physics_value_on_the_page_is_a_message_and_keeps_what_was_stated(project, alice):
    dataset = make_dataset(project, alice, pixel_nm=50.0)
    dataset.probe_fwhm_x_nm = dataset.probe_fwhm_y_nm = 90.0
    dataset.save()
    response = web_client(alice).post(f"/datasets/{dataset.id}/enhance/",
                                      {"action": "physics", "pixel_nm": "", "probe_fwhm_nm": "-4"}, follow=True)
    assert "Not saved" in response.content.decode() and "positive" in response.content.decode()
    dataset.refresh_from_db()
    assert dataset.probe_fwhm_nm == (90.0, 90.0)


def test_the_job_list_shows_queue_positions_timings_and_errors(project, alice, tiny_model):
    dataset = make_dataset(project, alice)
    done = make_finished_job(dataset, tiny_model, alice)
    failed = Job.objects.create(kind="enhance", status="failed", created_by=alice,
                                project=project, dataset=dataset, model=tiny_model,
                                error="the map's pixel is 50 nm but ...")
    first = Job.objects.create(kind="enhance", created_by=alice, project=project,
                               dataset=dataset, model=tiny_model)
    second = Job.objects.create(kind="enhance", created_by=alice, project=project,
                                dataset=dataset, model=tiny_model)
    jobs = {j["id"]: j for j in web_client(alice).get("/jobs/status.json").json()["jobs"]}
    assert jobs[first.id]["queue_position"] == 1 and jobs[second.id]["queue_position"] == 2
    assert jobs[failed.id]["error"].startswith("the map's pixel")
    assert jobs[done.id]["results"] == ["png", "tiff"] and jobs[done.id]["queue_position"] is None
    assert web_client(alice).get("/jobs/").status_code == 200


def test_cancel_stops_a_queued_job_at_once_and_flags_a_running_one(project, alice, tiny_model):
    dataset = make_dataset(project, alice)
    queued = Job.objects.create(kind="enhance", created_by=alice, project=project,
                                dataset=dataset, model=tiny_model)
    running = Job.objects.create(kind="enhance", status="running", created_by=alice,
                                 project=project, dataset=dataset, model=tiny_model)
    page = web_client(alice)
    page.post(f"/jobs/{queued.id}/cancel/")
    page.post(f"/jobs/{running.id}/cancel/")
    queued.refresh_from_db()
    running.refresh_from_db()
    assert queued.status == "cancelled" and queued.finished
    assert running.status == "running" and running.cancel_requested  # the worker stops it


def test_a_job_whose_heartbeat_stopped_is_failed_when_anyone_looks(project, alice, tiny_model,
                                                                    settings):
    from datetime import timedelta

    from django.utils import timezone

    dataset = make_dataset(project, alice)
    stale = Job.objects.create(kind="enhance", status="running", created_by=alice,
                               project=project, dataset=dataset, model=tiny_model,
                               heartbeat=timezone.now() - timedelta(seconds=301))
    alive = Job.objects.create(kind="enhance", status="running", created_by=alice,
                               project=project, dataset=dataset, model=tiny_model,
                               heartbeat=timezone.now())
    jobs = {j["id"]: j for j in web_client(alice).get("/jobs/status.json").json()["jobs"]}
    assert jobs[stale.id]["status"] == "failed" and "stopped responding" in jobs[stale.id]["error"]
    assert jobs[alive.id]["status"] == "running"


def test_a_result_that_is_not_ready_says_so(project, alice, tiny_model):
    dataset = make_dataset(project, alice)
    job = Job.objects.create(kind="enhance", status="running", created_by=alice,
                             project=project, dataset=dataset, model=tiny_model)
    response = web_client(alice).get(f"/jobs/{job.id}/result.tiff")
    assert response.status_code == 409 and b"results exist once it has succeeded" in response.content


def test_staff_approve_and_retire_models(staff, alice):
    model = make_tiny_model("candidate", status="draft")
    page = web_client(staff)
    assert "candidate" in page.get("/models/").content.decode()
    page.post(f"/models/{model.id}/status/", {"status": "approved"})
    model.refresh_from_db()
    assert model.status == "draft"  # no approval benchmark yet: refused (tests/test_approval.py)
    page.post(f"/models/{model.id}/status/", {"status": "approved", "reason": "a test model"})
    model.refresh_from_db()
    assert model.status == "approved"
    assert "candidate" in web_client(alice).get("/models/").content.decode()
    page.post(f"/models/{model.id}/status/", {"status": "retired"})
    model.refresh_from_db()
    assert model.status == "retired"
    assert "candidate" not in web_client(alice).get("/models/").content.decode()


def test_every_page_renders(project, alice, staff, tiny_model):
    dataset = make_dataset(project, alice)
    job = make_finished_job(dataset, tiny_model, alice)
    train = Job.objects.create(kind="train", created_by=staff, params={"name": "x"},
                               curves=[{"step": 200, "loss": 0.1, "val_psnr": 30.0}])
    for url in ("/", f"/projects/{project.id}/", "/jobs/", "/models/", f"/jobs/{job.id}/",
                f"/datasets/{dataset.id}/", f"/models/{tiny_model.id}/",
                f"/datasets/{dataset.id}/enhance/", f"/models/compare/?ids={tiny_model.id}",
                "/models/train/", "/models/upload/", f"/models/training/{train.id}/",
                "/api/docs/", "/api/schema/"):
        assert web_client(staff).get(url).status_code == 200, url
