"""The web's validation against a fine scan (issue 17, item 6): POST /api/v1/jobs/{id}/validate/
starts it, a real worker scores the job's result (enhancer.validate), the job's detail shows it."""
import io
import zipfile

import numpy as np
import pytest
import tifffile

from enhancer.degrade import Degradation
from enhancer.phantoms import phantom
from tests.conftest import api_client, make_dataset, make_finished_job, make_tiny_model, web_client
from tests.test_chain_enhance import wait_status
from xrfweb.projects.models import Project

ELEMENTS = ["Fe", "Zn"]


def tiff_zip(path, maps) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for e, m in zip(ELEMENTS, maps):
            buf = io.BytesIO()
            tifffile.imwrite(buf, np.asarray(m, np.float32))
            zf.writestr(f"maps/{e}.tiff", buf.getvalue())


def upload(api, worker, project, path, pixel_nm):
    with open(path, "rb") as f:
        response = api.post(f"/api/v1/projects/{project.id}/datasets/", {"file": f, "pixel_nm": pixel_nm},
                            format="multipart")
    assert response.status_code == 201, response.content
    dataset = wait_status(worker, api, f"/api/v1/datasets/{response.json()['id']}/", {"ready", "rejected"})
    assert dataset["status"] == "ready", dataset["error"]
    return dataset


@pytest.mark.django_db(transaction=True)
def test_a_job_is_validated_against_a_fine_scan_by_the_worker(celery_worker_process, alice, tmp_path):
    worker = celery_worker_process
    project = Project.objects.create(name="fine", owner=alice)
    model = make_tiny_model(pixel_nm=25.0, scale=2, probe_fwhm_nm=80.0)
    api = api_client(alice)
    # A truth on a 25 nm grid, its coarse scan (50 nm step, 80 nm probe) and a fine scan
    # (12.5 nm pixels, 25 nm probe) of its rows 40..136, cols 60..156.
    truth = phantom("cell", 192, 2, seed=17)
    tiff_zip(tmp_path / "coarse.zip", Degradation(80, 25, 2, 1000).apply(truth, seed=1))
    crop = np.repeat(np.repeat(truth[:, 40:136, 60:156], 2, 1), 2, 2)
    tiff_zip(tmp_path / "fine.zip", Degradation(25, 12.5, 1, 2000).apply(crop, seed=2))
    coarse = upload(api, worker, project, tmp_path / "coarse.zip", "50")
    fine = upload(api, worker, project, tmp_path / "fine.zip", "12.5")
    response = api.post("/api/v1/jobs/", {"dataset": coarse["id"], "model": model.id}, format="json")
    assert response.status_code == 201, response.content
    url = f"/api/v1/jobs/{response.json()['id']}/"
    job = wait_status(worker, api, url, {"succeeded", "failed", "cancelled"})
    assert job["status"] == "succeeded", job["error"] and job["validation"] is None

    response = api.post(url + "validate/", {"fine_dataset": fine["id"]}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["validation"] is None  # null until done
    again = api.post(url + "validate/", {"fine_dataset": fine["id"]}, format="json")
    # 409 while the first runs (one at a time), as for a probe estimate; 202 if it ended already
    assert again.status_code in (202, 409), again.content
    v = worker.wait_for(lambda: api.get(url).json()["validation"], 180, "the validation")
    assert "error" not in v, v["error"]
    assert v["status"] == "done" and v["fine_dataset"] == fine["id"]
    assert v["offset_px"] == [40, 60] and v["overlap_px"] == [96, 96]
    assert v["elements"] == ELEMENTS and v["scale"] == 2 and v["pixel_nm"] == 25.0
    for key in ("input", "enhanced", "rl"):
        assert np.isfinite(v["psnr_db"][key]) and -1 <= v["ssim"][key] <= 1
    assert v["rl_probe"] == "Gaussian 80 x 80 nm"  # the probe the job ran with
    # The job page: the numbers, and the fine scan's FRC as the resolution headline.
    web = web_client(alice)
    page = web.get(url.removeprefix("/api/v1")).content.decode()
    assert 'id="validated-resolution"' in page and "fine.zip" in page
    assert f"{v['psnr_db']['enhanced']:.2f}" in page and f"{v['ssim']['rl']:.3f}" in page
    review = web.get(url.removeprefix("/api/v1") + "review.json").json()
    assert review["validation"]["resolution_nm"] == v["frc_nm"]["enhanced"]

    # A fine scan of another sample: the worker's refusal, in words, on the row.
    other = phantom("particles", 192, 2, seed=99)
    tiff_zip(tmp_path / "other.zip", Degradation(25, 12.5, 1, 2000).apply(
        np.repeat(np.repeat(other[:, :96, :96], 2, 1), 2, 2), seed=3))
    other = upload(api, worker, project, tmp_path / "other.zip", "12.5")
    assert api.post(url + "validate/", {"fine_dataset": other["id"]}, format="json").status_code == 202
    v = worker.wait_for(lambda: (api.get(url).json()["validation"] or {}).get("error"), 180,
                        "the refusal")
    assert "does not match" in v


@pytest.mark.django_db
def test_validate_refuses_what_it_cannot_score_and_hides_jobs_from_strangers(alice, charlie, tiny_model):
    project = Project.objects.create(name="p", owner=alice)
    mine = make_dataset(project, alice)
    job = make_finished_job(mine, tiny_model, alice)
    url = f"/api/v1/jobs/{job.id}/validate/"
    elsewhere = make_dataset(Project.objects.create(name="q", owner=alice), alice)
    parsing = make_dataset(project, alice, status="parsing")
    api = api_client(alice)
    for body, words in [({}, "fine_dataset"), ({"fine_dataset": elsewhere.id}, "this job's project"),
                        ({"fine_dataset": parsing.id}, "not ready"), ({"fine_dataset": "x"}, "fine_dataset")]:
        response = api.post(url, body, format="json")
        assert response.status_code == 400 and words in response.json()["error"], response.content
    job.status = "failed"
    job.save()
    response = api.post(url, {"fine_dataset": mine.id}, format="json")
    assert response.status_code == 400 and "only a succeeded enhancement" in response.json()["error"]
    assert api_client(charlie).post(url, {"fine_dataset": mine.id}, format="json").status_code == 404
    job.refresh_from_db()
    assert job.validation is None  # nothing was started


@pytest.mark.django_db
def test_the_job_page_offers_the_projects_ready_scans_and_escapes_what_users_named(alice, charlie, tiny_model):
    project = Project.objects.create(name="p", owner=alice)
    job = make_finished_job(make_dataset(project, alice), tiny_model, alice)
    fine = make_dataset(project, alice, name="<img src=x onerror=alert(1)>.h5", pixel_nm=12.5)
    make_dataset(project, alice, name="still-parsing.h5", status="parsing")
    web = web_client(alice)
    page = web.get(f"/jobs/{job.id}/").content.decode()
    assert f'<option value="{fine.id}"' in page and "still-parsing" not in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;.h5" in page

    response = web.post(f"/jobs/{job.id}/validate/", {"fine_dataset": fine.id})
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.id}/#validation"
    job.refresh_from_db()
    assert job.validation["status"] == "running" and job.validation["fine_dataset"] == fine.id
    assert 'data-running="1"' in web.get(f"/jobs/{job.id}/").content.decode()
    assert web_client(alice).get(f"/jobs/{job.id}/status.json").json()["validation_status"] == "running"

    job.validation = {"status": "failed", "fine_dataset": fine.id, "error": "no <b>match</b>"}
    job.save()
    page = web.get(f"/jobs/{job.id}/").content.decode()
    assert "The validation failed: no &lt;b&gt;match&lt;/b&gt;" in page and "Validate again" in page
    assert web_client(charlie).post(f"/jobs/{job.id}/validate/", {"fine_dataset": fine.id}).status_code == 404
