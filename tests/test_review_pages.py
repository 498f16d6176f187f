"""Review pages and their JSON on real files: a MAPS upload, and a job whose results the worker's
own writer produced from a real (small, perturbed) network. Values are checked against the
files a user downloads, not against the page code's own arithmetic."""
import json
import zipfile

import numpy as np
import pytest
import torch
from django.utils import timezone

from enhancer.baselines import upsample
from enhancer.formats import read_map
from enhancer.metrics import single_image_frc_nm
from enhancer.xrfmap import line_profile
from tests.conftest import make_dataset, make_tiny_model, web_client
from tests.formats_fixtures import SCALERS, scaler_values, write_maps_v10
from xrfweb.jobs.models import Job
from xrfweb.review.plots import decode

pytestmark = pytest.mark.django_db
ROWS, COLS = 24, 32  # 50 nm pixels: the tiny model's scan step (25 nm x 2)


def perturbed_model(name="tiny-review"):
    """The shared tiny model with a non-zero output layer, so enhanced != interpolated input."""
    from enhancer.bundle import load_bundle, save_bundle
    from xrfweb.paths import models_dir

    model = make_tiny_model(name)
    bundle = load_bundle(model.bundle_ref)
    torch.manual_seed(0)
    with torch.no_grad():
        bundle.network.output_conv.weight.normal_(0, 0.05)
    save_bundle(models_dir() / model.folder, bundle.network, bundle.config)
    return model


@pytest.fixture
def maps_dataset(project, alice, tmp_path):
    path = tmp_path / "2xfm_0042.h5"
    written = write_maps_v10(path, elements=("Fe", "Zn"), rows=ROWS, cols=COLS,
                             pixel_um=(0.05, 0.05))["Fitted"]
    dataset = make_dataset(project, alice, content=path.read_bytes(), name=path.name,
                           elements=("Fe", "Zn"), shape=(2, ROWS, COLS), pixel_nm=50.0)
    dataset.scalers = SCALERS
    dataset.save()
    return dataset, written


def finish_job(dataset, model, user, ensemble=1):
    """A succeeded job with the result files the worker writes (xrfweb.jobs.work)."""
    from enhancer import pipeline
    from enhancer.bundle import load_bundle
    from xrfweb.jobs.work import write_results

    job = Job.objects.create(kind="enhance", status="succeeded", progress=1.0, created_by=user,
                             project=dataset.project, dataset=dataset, model=model,
                             finished=timezone.now(), params={"ensemble": ensemble})
    original = read_map(dataset.path)
    write_results(job, pipeline.run(original, load_bundle(model.bundle_ref), ensemble=ensemble))
    return job


@pytest.fixture
def finished(maps_dataset, alice):
    return finish_job(maps_dataset[0], perturbed_model(), alice)


def get_json(client, url, status=200):
    response = client.get(url)
    assert response.status_code == status, response.content[:300]
    body = response.content
    if response.get("Content-Encoding") == "gzip":
        import gzip
        body = gzip.decompress(body)
    return json.loads(body)


def downloaded(client, job, fmt="tiff"):
    response = client.get(f"/jobs/{job.id}/result.{fmt}")
    return b"".join(response.streaming_content)


# --- dataset page --------------------------------------------------------------------------------

def test_the_dataset_page_offers_every_element_and_its_scalers(maps_dataset, alice):
    dataset, _ = maps_dataset
    page = web_client(alice).get(f"/datasets/{dataset.id}/").content.decode()
    assert 'value="Fe"' in page and 'value="Zn"' in page
    assert "Normalise by (I0)" in page and '<option value="US_IC">' in page
    assert "vendor/plotly-cartesian-4.1.1.min.js" in page
    assert f"/datasets/{dataset.id}/maps.json" in page


def test_dataset_maps_are_the_files_maps_on_the_motor_axes(maps_dataset, alice):
    dataset, written = maps_dataset
    body = get_json(web_client(alice), f"/datasets/{dataset.id}/maps.json")
    assert body["elements"] == ["Fe", "Zn"] and body["units"] == "cts/s"
    assert body["scalers"] == SCALERS
    fe = body["maps"]["Fe"]
    assert fe["factor"] == 1  # small: sent whole
    assert np.allclose(decode(fe["z"]), written[0])
    assert decode(fe["x_um"])[0] == pytest.approx(-250.0) and decode(fe["y_um"])[1] == \
        pytest.approx(1000.05)
    only_zn = get_json(web_client(alice), f"/datasets/{dataset.id}/maps.json?elements=Zn")
    assert list(only_zn["maps"]) == ["Zn"]


def test_i0_normalisation_divides_by_the_scaler(maps_dataset, alice):
    dataset, written = maps_dataset
    body = get_json(web_client(alice), f"/datasets/{dataset.id}/maps.json?scaler=US_IC")
    us_ic = scaler_values(len(SCALERS), ROWS, COLS)[SCALERS.index("US_IC")]
    assert np.allclose(decode(body["maps"]["Zn"]["z"]), written[1] / us_ic, rtol=1e-5)
    assert body["units"] == "cts/s / US_IC"
    refused = get_json(web_client(alice), f"/datasets/{dataset.id}/maps.json?scaler=I9", 400)
    assert "no scaler named 'I9'" in refused["error"]


def test_a_zoomed_dataset_window_comes_at_full_resolution(maps_dataset, alice):
    dataset, written = maps_dataset
    body = get_json(web_client(alice),
                    f"/datasets/{dataset.id}/region.json?element=Zn&x0=4&x1=9&y0=2&y1=5")
    r0, r1, c0, c1 = body["window"]
    assert (r0, c0) == (1, 3) and r1 >= 6 and c1 >= 10
    assert np.allclose(decode(body["z"]), written[1][r0:r1, c0:c1])


@pytest.mark.parametrize("query, message", [
    ("element=Cu&x0=0&x1=4&y0=0&y1=4", "no element 'Cu'"),
    ("element=Fe&x0=abc&x1=4&y0=0&y1=4", "x0 must be a number"),
    ("element=Fe&x0=nan&x1=4&y0=0&y1=4", "x0 must be a finite number"),
])
def test_bad_window_requests_get_a_message(maps_dataset, alice, query, message):
    dataset, _ = maps_dataset
    body = get_json(web_client(alice), f"/datasets/{dataset.id}/region.json?{query}", 400)
    assert message in body["error"]


def test_a_dataset_not_read_yet_has_no_maps(project, alice):
    dataset = make_dataset(project, alice, status="parsing")
    body = get_json(web_client(alice), f"/datasets/{dataset.id}/maps.json", 409)
    assert "is parsing" in body["error"]
    assert "once the file has been read" in web_client(alice).get(
        f"/datasets/{dataset.id}/").content.decode()


# --- job page ------------------------------------------------------------------------------------

def test_a_running_job_page_shows_its_progress(maps_dataset, alice, tiny_model):
    dataset, _ = maps_dataset
    job = Job.objects.create(kind="enhance", status="running", progress=0.42, created_by=alice,
                             project=dataset.project, dataset=dataset, model=tiny_model,
                             message="enhancing")
    page = web_client(alice).get(f"/jobs/{job.id}/").content.decode()
    assert 'id="progress" max="1" value="0.42"' in page and "enhancing" in page
    assert f"/jobs/{job.id}/status.json" in page and "Cancel" in page
    body = get_json(web_client(alice), f"/jobs/{job.id}/review.json", 409)
    assert "is running" in body["error"]


def test_job_review_numbers_match_the_downloaded_result(finished, maps_dataset, alice):
    dataset, written = maps_dataset
    client = web_client(alice)
    body = get_json(client, f"/jobs/{finished.id}/review.json")
    result = read_map(_as_file(client, finished))
    assert body["elements"] == ["Fe", "Zn"] and body["scale"] == 2
    assert body["input_pixel_nm"] == 50.0 and body["fine_pixel_nm"] == 25.0
    for i, el in enumerate(["Fe", "Zn"]):
        assert body["totals"][el]["before"] == pytest.approx(written[i].mean(), rel=1e-5)
        assert body["totals"][el]["after"] == pytest.approx(result.data[i].mean(), rel=1e-5)
        assert body["resolution"][el]["before_nm"] == pytest.approx(
            single_image_frc_nm(written[i], 50.0))
        assert body["resolution"][el]["after_nm"] == pytest.approx(
            single_image_frc_nm(result.data[i], 25.0), rel=1e-4)
    assert set(body["downloads"]) == {"h5", "tiff", "png", "csv"}
    assert body["downloads"]["csv"]["page"] == f"/jobs/{finished.id}/result.csv"
    assert body["downloads"]["h5"]["api"] == f"/api/v1/jobs/{finished.id}/result/?format=h5"
    assert body["trust"]["available"] or body["trust"]["reason"]


def _as_file(client, job):
    """The downloaded TIFF zip as a path read_map can open."""
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "result.zip"
    path.write_bytes(downloaded(client, job))
    assert zipfile.is_zipfile(path)
    return path


def test_before_after_and_difference_at_full_resolution(finished, maps_dataset, alice):
    dataset, written = maps_dataset
    client = web_client(alice)
    result = read_map(_as_file(client, finished)).data
    maps = get_json(client, f"/jobs/{finished.id}/maps.json?element=Zn")
    assert maps["element"] == "Zn"
    assert np.allclose(decode(maps["before"]["z"]), written[1])
    assert np.allclose(decode(maps["after"]["z"]), result[1])
    # The input's pixels sit on the fine grid's pixel units: input column j at 2j + 0.5.
    assert decode(maps["before"]["x_px"])[:3].tolist() == [0.5, 2.5, 4.5]
    assert decode(maps["after"]["x_px"])[:3].tolist() == [0, 1, 2]
    window = "x0=10&x1=30&y0=4&y1=20"
    diff = get_json(client, f"/jobs/{finished.id}/region.json?element=Zn&layer=difference&{window}")
    r0, r1, c0, c1 = diff["window"]
    interpolated = upsample(written, 2)[1]
    assert np.allclose(decode(diff["z"]), (result[1] - interpolated)[r0:r1, c0:c1], atol=1e-4)
    assert np.abs(decode(diff["z"])).max() > 1e-3  # the perturbed network did change the map
    before = get_json(client, f"/jobs/{finished.id}/region.json?element=Zn&layer=before&{window}")
    b0, b1, d0, d1 = before["window"]
    assert (b0, d0) == (0, 3) and np.allclose(decode(before["z"]), written[1][b0:b1, d0:d1])


def test_a_line_profile_samples_both_maps_along_the_same_line(finished, maps_dataset, alice):
    dataset, written = maps_dataset
    client = web_client(alice)
    result = read_map(_as_file(client, finished)).data
    body = get_json(client, f"/jobs/{finished.id}/profile.json?element=Fe&x0=4.5&y0=6.5&x1=40.5&y1=30.5")
    after = np.array(body["after"]["values"])
    assert np.allclose(after, line_profile(result[0], (6.5, 4.5), (30.5, 40.5)))
    before = np.array(body["before"]["values"])  # the same line on the input grid: (p - 0.5) / 2
    assert np.allclose(before, line_profile(written[0], (3, 2), (15, 20)))
    length_um = np.hypot(36, 24) * 0.025
    assert body["after"]["distance"]["um"][-1] == pytest.approx(length_um)
    assert body["before"]["distance"]["um"][-1] == pytest.approx(length_um)
    assert len(after) > len(before)  # the fine grid has more samples along the line


def test_the_trust_place_is_marked_when_there_is_no_report(finished, alice):
    from xrfweb.jobs.results import FILES
    from xrfweb.review.data import NO_REPORT

    (finished.result_dir / FILES["report"]).unlink()  # a result from before reports were written
    body = get_json(web_client(alice), f"/jobs/{finished.id}/review.json")
    assert body["trust"] == {"available": False, "reason": NO_REPORT}
    assert "chi2" not in get_json(web_client(alice), f"/jobs/{finished.id}/maps.json")
    page = web_client(alice).get(f"/jobs/{finished.id}/").content.decode()
    assert "Trust map (consistency χ²)" in page and "Not available for this job yet" in page


def test_the_trust_map_is_shown_when_the_report_exists(finished, maps_dataset, alice):
    from enhancer.bundle import load_bundle
    from enhancer.trust import consistency

    client = web_client(alice)
    body = get_json(client, f"/jobs/{finished.id}/review.json")
    if not body["trust"]["available"]:
        pytest.fail(f"trust report failed: {body['trust']['reason']}")
    # The page shows the consistency of the downloaded result with the uploaded map, no other.
    result = read_map(_as_file(client, finished)).data
    chi2, summary = consistency(maps_dataset[1], result, load_bundle(finished.model.bundle_ref).degradation,
                                elements=["Fe", "Zn"], fine_pixel_nm=25.0)
    shown = body["trust"]["consistency"]
    assert shown["verdict"] == summary["verdict"]
    for el in ("Fe", "Zn"):
        assert shown["elements"][el]["mean_chi2"] == pytest.approx(summary["elements"][el]["mean_chi2"], rel=1e-4)
    maps = get_json(client, f"/jobs/{finished.id}/maps.json?element=Fe")
    assert np.allclose(decode(maps["chi2"]["z"]), chi2[0], rtol=1e-4, atol=1e-6)


def test_an_ensemble_jobs_uncertainty_comes_from_its_result(maps_dataset, alice, tmp_path):
    from enhancer.formats import read_enhanced

    dataset, _ = maps_dataset
    job = finish_job(dataset, perturbed_model(), alice, ensemble=4)
    client = web_client(alice)
    body = get_json(client, f"/jobs/{job.id}/review.json")
    assert body["uncertainty_map"] is True
    assert set(body["trust"]["uncertainty"]) == {"Fe", "Zn"}
    h5 = tmp_path / "result.h5"
    h5.write_bytes(downloaded(client, job, "h5"))
    sigma = read_enhanced(h5, read_map(dataset.path)).extras["uncertainty:Zn"]
    maps = get_json(client, f"/jobs/{job.id}/maps.json?element=Zn")
    assert sigma.max() > 0 and np.allclose(decode(maps["uncertainty"]["z"]), sigma)
    plain = get_json(client, f"/jobs/{finish_job(dataset, perturbed_model('p2'), alice).id}"
                             "/maps.json?element=Zn")
    assert "uncertainty" not in plain
