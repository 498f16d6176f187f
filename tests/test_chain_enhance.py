"""The whole chain with real processes: the web stores a row and enqueues after commit, a real
Celery worker (its own process, the real Redis) runs the task, the row changes, the web shows it."""
import numpy as np
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
    # The chi^2 map comes with the maps: each input pixel's value over its 2 x 2 fine pixels.
    chi2 = np.stack([enhanced.extras[f"chi2:{el}"] for el in enhanced.elements])
    assert chi2.shape == (4, 320, 320) and np.isfinite(chi2).all() and chi2.min() >= 0
    assert np.array_equal(chi2[:, ::2, ::2], chi2[:, 1::2, 1::2])
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


def test_a_maps_file_comes_back_in_its_own_layout(celery_worker_process, alice, tmp_path):
    from tests.formats_fixtures import write_maps_v10

    worker = celery_worker_process
    project = Project.objects.create(name="2-ID-E", owner=alice)
    model = make_tiny_model("maps-model", pixel_nm=25.0, scale=2)
    path = tmp_path / "2xfm_0042.h5"
    written = write_maps_v10(path, elements=("Fe", "Zn"), rows=24, cols=32,
                             pixel_um=(0.05, 0.05))["Fitted"]
    api = api_client(alice)
    with open(path, "rb") as f:
        response = api.post(f"/api/v1/projects/{project.id}/datasets/", {"file": f},
                            format="multipart")
    dataset = wait_status(worker, api, f"/api/v1/datasets/{response.json()['id']}/",
                          {"ready", "rejected"})
    assert dataset["status"] == "ready", dataset["error"]
    assert dataset["source_format"] == "maps-v10" and dataset["elements"] == ["Fe", "Zn"]
    assert dataset["pixel_size_nm"] == pytest.approx([50.0, 50.0])
    assert len(dataset["scalers"]) == 4

    response = api.post("/api/v1/jobs/", {"dataset": dataset["id"], "model": model.id},
                        format="json")
    job = wait_status(worker, api, f"/api/v1/jobs/{response.json()['id']}/",
                      {"succeeded", "failed", "cancelled"})
    assert job["status"] == "succeeded", job["error"]
    assert set(job["results"]) == {"h5", "tiff", "png", "csv"}

    response = api.get(f"/api/v1/jobs/{job['id']}/result/?format=h5")
    download = tmp_path / "enhanced.h5"
    download.write_bytes(b"".join(response.streaming_content))
    # Enhanced maps sit beside the originals, which are kept as they were.
    assert read_map(download).shape == (2, 24, 32)
    enhanced = read_map(download, method="Fitted_Enhanced")
    assert enhanced.source_format == "maps-v10"
    assert enhanced.shape == (2, 48, 64)
    # The network starts as the identity: the enhanced maps keep each element's total counts.
    assert enhanced.data.sum(axis=(1, 2)) == pytest.approx(4 * written.sum(axis=(1, 2)), rel=1e-3)
    # Every download carries the chi^2 map: the same one in the HDF5, the TIFF set and the CSV.
    chi2 = np.stack([enhanced.extras[f"chi2:{el}"] for el in ("Fe", "Zn")])
    assert chi2.shape == (2, 48, 64) and np.isfinite(chi2).all() and chi2.min() >= 0
    tiff = tmp_path / "enhanced-tiff.zip"
    tiff.write_bytes(b"".join(api.get(f"/api/v1/jobs/{job['id']}/result/?format=tiff").streaming_content))
    from_tiff = read_map(tiff)
    assert np.array_equal(np.stack([from_tiff.extras[f"chi2:{el}"] for el in ("Fe", "Zn")]), chi2)
    for fmt, magic in (("png", b"\x89PNG"), ("csv", b"row,col")):
        body = b"".join(api.get(f"/api/v1/jobs/{job['id']}/result/?format={fmt}")
                        .streaming_content)
        assert body.startswith(magic), fmt
    assert b",chi2_Fe,chi2_Zn" in body.split(b"\n", 1)[0]


def test_a_damaged_upload_is_rejected_in_words(celery_worker_process, alice, tmp_path):
    project = Project.objects.create(name="broken", owner=alice)
    api = api_client(alice)
    broken = b"\x89HDF\r\n\x1a\n" + b"not really hdf5" * 100
    import io

    response = api.post(f"/api/v1/projects/{project.id}/datasets/",
                        {"file": io.BytesIO(broken)}, format="multipart")
    dataset = wait_status(celery_worker_process, api,
                          f"/api/v1/datasets/{response.json()['id']}/", {"ready", "rejected"})
    assert dataset["status"] == "rejected"
    assert dataset["error"] and "Traceback" not in dataset["error"]
    assert ".h5" not in dataset["error"] or dataset["name"] in dataset["error"]
