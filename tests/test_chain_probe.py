"""The dataset page's "Estimate the probe" (issue 17, item 6): a real worker runs the blind
estimate (enhancer.probe.blind) on the upload; the page shows it with its uncertainty and one
click states it as the dataset's probe."""
import numpy as np
import pytest

from enhancer.degrade import Degradation
from enhancer.phantoms import phantom
from enhancer.probe import blind
from tests.conftest import api_client, make_dataset, web_client
from tests.test_browser_review import SECONDS, browser, page, sign_in  # noqa: F401
from tests.test_chain_validate import tiff_zip, upload
from xrfweb.projects.models import Dataset, Project


@pytest.mark.django_db(transaction=True)
def test_the_worker_estimates_the_probe_or_says_why_not(celery_worker_process, alice, charlie, tmp_path):
    worker = celery_worker_process
    project = Project.objects.create(name="probe", owner=alice)
    api, web = api_client(alice), web_client(alice)
    maps = Degradation(80, 10, 2, 1000).apply(phantom("texture", 256, 2, seed=2_000_011), seed=0)
    tiff_zip(tmp_path / "map.zip", maps)
    tiff_zip(tmp_path / "flat.zip", np.ones((2, 64, 64)))
    ready = upload(api, worker, project, tmp_path / "map.zip", "20")
    flat = upload(api, worker, project, tmp_path / "flat.zip", "20")

    assert web_client(charlie).post(f"/datasets/{ready['id']}/probe/").status_code == 404
    # One started through the API, one through the page: the same service function.
    response = api.post(f"/api/v1/datasets/{ready['id']}/probe-estimate/")
    assert response.status_code == 202 and response.json()["id"] == ready["id"], response.content
    assert response.json()["probe_estimate"]["status"] == "running"
    response = web.post(f"/datasets/{flat['id']}/probe/")
    assert response.status_code == 302 and response["Location"] == f"/datasets/{flat['id']}/#physics"
    done = lambda d: (lambda: (e := web.get(f"/datasets/{d['id']}/probe.json").json()["probe_estimate"])  # noqa: E731
                      and e["status"] != "running" and e)
    e = worker.wait_for(done(ready), 120, "the estimate")
    assert e["status"] == "done", e
    expected = blind(Dataset.objects.get(id=ready["id"]).read_map().data, (20.0, 20.0))
    assert e["fwhm_nm"] == expected["fwhm_nm"] and e["uncertainty_nm"] == expected["uncertainty_nm"]
    assert api.get(f"/api/v1/datasets/{ready['id']}/").json()["probe_estimate"] == e
    page = web.get(f"/datasets/{ready['id']}/").content.decode()
    assert f'data-probe="{e["fwhm_nm"][0]},{e["fwhm_nm"][1]}"' in page and "±" in page
    e = worker.wait_for(done(flat), 120, "the refusal")
    assert e["status"] == "failed" and "flat" in e["error"]
    assert "No estimate:" in web.get(f"/datasets/{flat['id']}/").content.decode()


@pytest.mark.django_db
def test_the_estimate_needs_a_ready_map_with_a_known_step(project, alice):
    unknown = make_dataset(project, alice)
    unknown.pixel_size_nm = None
    unknown.save()
    web = web_client(alice)
    for d in (unknown, make_dataset(project, alice, status="parsing")):
        web.post(f"/datasets/{d.id}/probe/")
        d.refresh_from_db()
        assert d.probe_estimate is None
    page = web.get(f"/datasets/{unknown.id}/").content.decode()
    assert "scan step is unknown" in page


@pytest.mark.django_db
def test_the_api_starts_one_estimate_at_a_time_of_a_ready_map_with_a_step(project, alice, charlie):
    """POST /api/v1/datasets/{id}/probe-estimate/: 202 running, 409 while it runs, 400 with the
    reason when it cannot start, 404 to strangers (no message reaches a worker here: the test's
    transaction never commits)."""
    d = make_dataset(project, alice)
    url = f"/api/v1/datasets/{d.id}/probe-estimate/"
    api = api_client(alice)
    assert api_client(charlie).post(url).status_code == 404
    assert api_client(charlie).get(f"/api/v1/datasets/{d.id}/").status_code == 404
    d.refresh_from_db()
    assert d.probe_estimate is None  # a stranger started nothing
    first = api.post(url)
    assert first.status_code == 202 and first.json()["probe_estimate"]["status"] == "running"
    second = api.post(url)
    assert second.status_code == 409, second.content
    assert second.json() == {"error": "the probe is being estimated already; wait for it"}
    assert api.get(f"/api/v1/datasets/{d.id}/").json()["probe_estimate"] == first.json()["probe_estimate"]
    unknown = make_dataset(project, alice)
    Dataset.objects.filter(id=unknown.id).update(pixel_size_nm=None)
    parsing = make_dataset(project, alice, status="parsing")
    for other, words in ((unknown, "scan step is unknown"), (parsing, "is parsing, not ready")):
        response = api.post(f"/api/v1/datasets/{other.id}/probe-estimate/")
        assert response.status_code == 400 and words in response.json()["error"], response.content
        other.refresh_from_db()
        assert other.probe_estimate is None
    assert api.get(url).status_code == 405  # POST only


@pytest.mark.django_db(transaction=True)
def test_one_click_states_the_estimate_as_the_probe(page, live_server, alice):  # noqa: F811
    project = Project.objects.create(name="p", owner=alice)
    d = make_dataset(project, alice)
    d.pixel_nm_given, d.probe_estimate = 40.0, {
        "status": "done", "fwhm_nm": [81.5, 90.2], "uncertainty_nm": [6.1, 7.0], "method": "blind",
        "step_nm": [40.0, 40.0]}
    d.save()
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/datasets/{d.id}/")
    assert "81.5 ± 6.1 nm" in page.inner_text("#probe-estimated")
    page.click("#use-probe")
    page.wait_for_selector("#physics-probe:has-text('81.50 × 90.20 nm')", timeout=30 * SECONDS)
    d.refresh_from_db()
    assert d.probe_fwhm_nm == (81.5, 90.2) and d.pixel_nm_given == 40.0  # the stated step kept


@pytest.mark.django_db(transaction=True)
def test_a_validation_or_estimate_whose_message_redis_lost_is_sent_again(celery_worker_process, alice, tiny_model):
    """The row says running but no message reached a worker (Redis was down or restarted): the
    workers' resend (xrfweb.queueing.resend_waiting) sends it again and a worker finishes it."""
    from tests.conftest import make_finished_job
    from xrfweb import side_tasks
    from xrfweb.jobs.models import Job
    from xrfweb.queueing import resend_waiting

    project = Project.objects.create(name="lost", owner=alice)
    job = make_finished_job(make_dataset(project, alice), tiny_model, alice)
    Job.objects.filter(id=job.id).update(validation=side_tasks.asked(fine_dataset=10**6))
    unknown = make_dataset(project, alice)
    Dataset.objects.filter(id=unknown.id).update(pixel_size_nm=None, probe_estimate=side_tasks.asked())
    assert resend_waiting() >= 2
    worker = celery_worker_process
    v = worker.wait_for(lambda: Job.objects.get(id=job.id).validation["status"] != "running"
                        and Job.objects.get(id=job.id).validation, 60, "the validation sent again")
    assert v == {"status": "failed", "fine_dataset": 10**6, "error": "the fine scan's dataset was deleted"}
    e = worker.wait_for(lambda: Dataset.objects.get(id=unknown.id).probe_estimate["status"] != "running"
                        and Dataset.objects.get(id=unknown.id).probe_estimate, 60, "the estimate sent again")
    assert e["status"] == "failed" and "scan step is unknown" in e["error"]
