"""End to end with a real worker: a dataset with an attached measured probe (a zone plate's
focus: side lobes, far from a Gaussian) is enhanced; the job records the probe, the worker uses
it exactly as the CLI's --probe FILE --probe-pixel-nm P does, and the result carries it."""
import json
import zipfile

import numpy as np
import pytest

from enhancer.degrade import Degradation
from enhancer.formats import read_map
from enhancer.phantoms import phantom
from enhancer.probe import fwhm_of, measured_degradation, zone_plate_probe
from tests.conftest import api_client, make_tiny_model, web_client
from tests.test_chain_enhance import wait_status
from tests.test_chain_validate import tiff_zip, upload
from tests.test_cli import cli
from xrfweb.jobs.models import Job
from xrfweb.paths import models_dir
from xrfweb.projects.models import Project


@pytest.mark.django_db(transaction=True)
def test_an_enhancement_uses_the_attached_probe_as_the_cli_does(celery_worker_process, alice, staff, tmp_path):
    worker = celery_worker_process
    project = Project.objects.create(name="zone plate", owner=alice)
    model = make_tiny_model(name="tiny-zp", pixel_nm=25.0, scale=2, probe_fwhm_nm=80.0)
    zp = zone_plate_probe(80, 5)  # 80 nm FWHM on 5 nm pixels, about half its energy in side lobes
    np.save(tmp_path / "zp.npy", np.sqrt(zp).astype(np.complex64))  # as ptychography gives it
    truth = phantom("cell", 128, 2, seed=2_000_031)
    coarse = measured_degradation(Degradation(80, 25, 2, 1000), zp, 5).apply(truth, seed=0)
    tiff_zip(tmp_path / "coarse.zip", coarse)
    api, staff_api = api_client(alice), api_client(staff)
    dataset = upload(api, worker, project, tmp_path / "coarse.zip", "50")
    with open(tmp_path / "zp.npy", "rb") as f:
        response = staff_api.post(f"/api/v1/datasets/{dataset['id']}/probe/", {"file": f, "pixel_nm": "5"},
                                  format="multipart")
    assert response.status_code == 201, response.content
    fwhm = [round(v, 1) for v in fwhm_of(zp, 5)]
    assert response.json()["probe_fwhm_nm"] == fwhm

    response = api.post("/api/v1/jobs/", {"dataset": dataset["id"], "model": model.id}, format="json")
    assert response.status_code == 201, response.content
    job = wait_status(worker, api, f"/api/v1/jobs/{response.json()['id']}/", {"succeeded", "failed", "cancelled"})
    assert job["status"] == "succeeded", job["error"]
    assert job["params"]["measured_probe"] == {"name": "zp.npy", "pixel_nm": 5.0, "fwhm_nm": fwhm,
                                               "dataset_path": None}
    assert job["params"]["probe_fwhm_nm"] == fwhm and not job["params"]["probe_assumed"]
    assert "measured probe: zp.npy" in web_client(alice).get(f"/jobs/{job['id']}/").content.decode()

    # The provenance of the download and the report record the probe the PSF was.
    result = Job.objects.get(id=job["id"]).result_dir
    report = json.loads((result / "report.json").read_text())
    assert report["measured_probe"]["file"] == "zp.npy" and report["measured_probe"]["fwhm_nm"] == fwhm
    enhanced = read_map(result / "result-tiff.zip")
    with zipfile.ZipFile(result / "result-tiff.zip") as zf:  # the TIFF set's provenance.json
        attrs = json.loads(next(zf.read(n) for n in zf.namelist() if n.endswith("provenance.json")))
    kept = json.loads(attrs["provenance"])["measured_probe"]
    assert kept["file"] == "zp.npy" and np.asarray(kept["intensity"]).ndim == 2

    # The CLI with --probe on the same file and model gives the same maps and the same check; the
    # probe's Gaussian fit (same FWHM) does not: the worker did use the measured probe.
    bundle = str(models_dir() / "tiny-zp")
    r = cli("enhance", "coarse.zip", "cli.npy", "--model", bundle, "--pixel-nm", 50, "--probe", "zp.npy",
            "--probe-pixel-nm", 5, "--device", "cpu", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    chi2 = lambda trust: {e: v["mean_chi2"] for e, v in trust["consistency"]["elements"].items()}  # noqa: E731
    cli_trust = json.loads(json.loads((tmp_path / "cli.npy.json").read_text())["provenance"])["trust"]
    assert chi2(cli_trust) == pytest.approx(chi2(report), rel=1e-4)
    assert np.allclose(np.load(tmp_path / "cli.npy"), enhanced.data, rtol=1e-4, atol=1e-6)
    r = cli("enhance", "coarse.zip", "gauss.npy", "--model", bundle, "--pixel-nm", 50, "--probe-fwhm-nm",
            f"{fwhm[0]},{fwhm[1]}", "--device", "cpu", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    gauss = json.loads(json.loads((tmp_path / "gauss.npy.json").read_text())["provenance"])["trust"]
    assert all(abs(chi2(gauss)[e] / chi2(report)[e] - 1) > 0.05 for e in chi2(report)), (chi2(gauss), chi2(report))
