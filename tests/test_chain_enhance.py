"""The whole chain with real processes: the web stores a row and enqueues after commit, a real
Celery worker (its own process, the real Redis) runs the task, the row changes, the web shows it."""
import pytest

from enhancer.formats import read_map
from tests.conftest import api_client, make_tiny_model, web_client
from tests.formats_fixtures import HXN_ELEMENTS, write_hxn_zip
from xrfweb.jobs.models import Job
from xrfweb.projects.models import Project

pytestmark = pytest.mark.django_db(transaction=True)


def wait_status(worker, client, url, wanted, timeout=120):
    def done():
        body = client.get(url).json()
        return body if body["status"] in wanted else None
    return worker.wait_for(done, timeout, f"{url} to reach {wanted}")


def test_a_tiff_set_is_parsed_enhanced_and_downloaded(celery_worker_process, alice, tmp_path):
    worker = celery_worker_process
    project = Project.objects.create(name="HXN", owner=alice)
    model = make_tiny_model(pixel_nm=25.0, scale=2)
    api = api_client(alice)
    upload = tmp_path / "hxn.zip"
    write_hxn_zip(upload)

    with open(upload, "rb") as f:
        response = api.post(f"/api/v1/projects/{project.id}/datasets/",
                            {"file": f, "pixel_nm": "50"}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "uploaded"
    dataset = wait_status(worker, api, f"/api/v1/datasets/{response.json()['id']}/",
                          {"ready", "rejected"})
    assert dataset["status"] == "ready", dataset["error"]
    assert dataset["elements"] == HXN_ELEMENTS and dataset["shape"] == [4, 160, 160]

    response = api.post("/api/v1/jobs/", {"dataset": dataset["id"], "model": model.id},
                        format="json")
    assert response.status_code == 201, response.content
    job = wait_status(worker, api, f"/api/v1/jobs/{response.json()['id']}/",
                      {"succeeded", "failed", "cancelled"})
    assert job["status"] == "succeeded", job["error"]
    assert job["progress"] == 1.0 and job["worker"] == worker.nodename
    assert job["started"] and job["finished"] and job["queue_position"] is None
    assert set(job["results"]) == {"tiff", "png", "csv"}  # no HDF5 layout for a TIFF input

    # The page shows what the worker wrote.
    listed = web_client(alice).get("/jobs/status.json").json()["jobs"]
    assert [(j["id"], j["status"]) for j in listed] == [(job["id"], "succeeded")]

    response = api.get(f"/api/v1/jobs/{job['id']}/result/?format=tiff")
    assert response.status_code == 200
    download = tmp_path / "result.zip"
    download.write_bytes(b"".join(response.streaming_content))
    enhanced = read_map(download)
    assert enhanced.shape == (4, 320, 320)  # scale 2
    assert [e.removesuffix("_enhanced") for e in enhanced.elements] == HXN_ELEMENTS \
        or enhanced.elements == HXN_ELEMENTS
    assert enhanced.pixel_size_nm == pytest.approx((25.0, 25.0))


def test_a_second_delivery_of_a_job_does_nothing(celery_worker_process, alice):
    """Redis may hand a message out twice (visibility timeout): the row's status guards it."""
    from xrfweb.jobs import tasks

    worker = celery_worker_process
    job = Job.objects.create(kind="enhance", created_by=alice, status="succeeded", progress=1.0)
    delivery = tasks.enhance_dataset.delay(job.id)
    worker.wait_for(lambda: f"{delivery.id}] succeeded" in worker.log_tail(400), 60,
                    "the worker to handle the delivery")
    job.refresh_from_db()
    assert job.status == "succeeded" and job.worker == "" and job.started is None
