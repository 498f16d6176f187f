"""Web training with a dataset's attached measured probe: staff choose it (measured_probe_dataset)
and the worker simulates the measurement through it exactly as the CLI's `train --probe FILE
--probe-pixel-nm P` does (enhancer.probe.simulation); the job's params and the model's config
record it. The API refuses what cannot run with the reason, before anything is queued."""
import json

import numpy as np
import pytest

from enhancer.probe import fwhm_of, zone_plate_probe
from tests.conftest import api_client, make_dataset, web_client
from tests.test_cli import cli
from tests.test_measured_probe_web import attach, npy_bytes
from xrfweb.jobs.models import Job
from xrfweb.projects.models import Project

TINY = {"phantoms": 1, "pixel_nm": 25, "scale": 2, "counts": 200, "blocks": 1, "filters": 4}


def zp_amplitude():
    """A zone plate's focus (80 nm FWHM on 5 nm pixels: side lobes, far from a Gaussian) as a
    ptychographic complex amplitude."""
    return np.sqrt(zone_plate_probe(80, 5)).astype(np.complex64)


def train(client, **fields):
    return client.post("/api/v1/models/train/", {"steps": 3, **TINY, **fields}, format="json")


@pytest.mark.django_db(transaction=True)
def test_training_simulates_with_the_attached_probe_as_the_cli_does(celery_worker_process, staff, tmp_path):
    worker = celery_worker_process
    d = make_dataset(Project.objects.create(name="zone plate", owner=staff), staff)
    api = api_client(staff)
    assert attach(api, d.id, npy_bytes(zp_amplitude()), pixel_nm="5").status_code == 201
    fwhm = [round(v, 1) for v in fwhm_of(zone_plate_probe(80, 5), 5)]

    response = train(api, name="zp-trained", measured_probe_dataset=d.id)
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    asked = {"dataset": d.id, "name": "zp.npy", "pixel_nm": 5.0, "fwhm_nm": fwhm, "dataset_path": None}
    assert response.json()["params"]["measured_probe"] == asked
    assert response.json()["params"]["probe_fwhm_nm"] is None
    page = web_client(staff).get(f"/models/training/{job_id}/").content.decode()
    assert "Simulated with the measured probe <b>zp.npy</b>" in page
    # While the job may read it, the probe stays as it is (as for an enhancement).
    response = api.delete(f"/api/v1/datasets/{d.id}/probe/")
    assert response.status_code == 409 and f"train job {job_id}" in response.json()["error"]
    worker.wait_for(lambda: Job.objects.get(id=job_id).is_finished, 180, "training to finish")
    job = Job.objects.get(id=job_id)
    assert job.status == "succeeded", job.error

    # The CLI trained with --probe on the same file simulates the same measurement: the same PSF
    # on the same fine grid (model.json's degradation), recorded the same way.
    np.save(tmp_path / "zp.npy", zp_amplitude())
    r = cli("train", "--out", "m", "--pixel-nm", 25, "--scale", 2, "--counts", 200, "--phantoms", 1,
            "--phantom-size", 128, "--steps", 1, "--blocks", 1, "--filters", 4, "--probe", "zp.npy",
            "--probe-pixel-nm", 5, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    cli_config = json.loads((tmp_path / "m" / "model.json").read_text())
    web_config = job.model.config
    assert web_config["degradation"]["measured_probe"] is not None  # not a Gaussian
    assert web_config["degradation"] == cli_config["degradation"]
    recorded = web_config["training"]["data"]["measured_probe"]
    assert recorded == {"dataset": d.id, **cli_config["training"]["data"]["measured_probe"]}
    assert recorded["file"] == "zp.npy" and recorded["pixel_nm"] == 5.0
    assert recorded["fwhm_nm"] == pytest.approx(fwhm, rel=0.05)
    # The phantoms' own fine probes scale with the measured probe's FWHM (the web's recipe).
    mean = (recorded["fwhm_nm"][0] + recorded["fwhm_nm"][1]) / 2
    assert web_config["training"]["data"]["phantom_probe_nm"] == pytest.approx([0.0, 0.8 * mean])
    assert api.delete(f"/api/v1/datasets/{d.id}/probe/").status_code == 200  # free once it ended


@pytest.mark.django_db
def test_the_api_refuses_a_measured_probe_it_cannot_use(project, alice, staff):
    bare = make_dataset(project, alice)
    d = make_dataset(project, alice, name="coarse.h5")
    api = api_client(staff)
    assert attach(api, d.id, npy_bytes(zp_amplitude()), pixel_nm="5").status_code == 201
    cases = [
        ({"measured_probe_dataset": bare.id}, 400, f"dataset {bare} has no measured probe attached"),
        ({"measured_probe_dataset": d.id, "probe_fwhm_nm": 80}, 400, "not both"),
        ({}, 400, "give the probe: probe_fwhm_nm, or a measured one with measured_probe_dataset"),
        ({"measured_probe_dataset": d.id, "probe_dataset": bare.id}, 400,
         "give probe_dataset (a map read as the probe) or measured_probe_dataset, not both"),
        ({"measured_probe_dataset": 10 ** 6}, 404, ""),
    ]
    for fields, code, words in cases:
        response = train(api, name="refused", **fields)
        assert response.status_code == code, (fields, response.content)
        assert words in response.json()["error"], (fields, response.json())
    assert train(api_client(alice), name="x", measured_probe_dataset=d.id).status_code == 403
    assert not Job.objects.exists()  # nothing queued

    # The page: datasets with a probe are offered; chosen, the job records it.
    page = web_client(staff).get("/models/train/").content.decode()
    assert f'<option value="{d.id}">{project} / coarse.h5: zp.npy' in page
    assert f'<option value="{bare.id}">{project} / scan.h5: ' not in page
    response = web_client(staff).post("/models/train/", {
        "name": "from-the-page", "measured_probe_dataset": str(d.id), "probe_fwhm_nm": "", "steps": "3",
        **{k: str(v) for k, v in TINY.items()}})
    assert response.status_code == 302, response.content.decode()[-2000:]
    job = Job.objects.get(params__name="from-the-page")
    assert job.params["measured_probe"]["dataset"] == d.id and job.params["measured_probe"]["name"] == "zp.npy"
    assert attach(api, d.id, npy_bytes(zp_amplitude())).status_code == 409  # the queued job reads it
    # Nor can the dataset be deleted under the queued training (nor the map a training reads as
    # its probe): the worker would find its files gone.
    response = api.delete(f"/api/v1/datasets/{d.id}/")
    assert response.status_code == 409 and f"train job {job.id}" in response.json()["error"], response.content
    as_probe = train(api, name="map-as-probe", probe_dataset=bare.id, probe_fwhm_nm=80)
    assert as_probe.status_code == 201, as_probe.content
    response = api.delete(f"/api/v1/datasets/{bare.id}/")
    assert response.status_code == 409 and f"train job {as_probe.json()['id']}" in response.json()["error"]
    Job.objects.update(status="failed")
    assert api.delete(f"/api/v1/datasets/{bare.id}/").status_code == 204
    assert api.delete(f"/api/v1/datasets/{d.id}/").status_code == 204
