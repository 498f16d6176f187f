"""A dataset's physics in the API (issue 16, item 1): probe_fwhm_nm and counts_estimate on every
dataset, stated on upload and by PATCH (anyone with access; others 404; bad values 400), and the
jobs that record what they ran with (item 5)."""
import pytest

from tests.conftest import api_client, make_dataset, make_tiny_model, web_client
from tests.test_web_uploads import HDF5, upload
from xrfweb.jobs.models import Job
from xrfweb.projects.models import Dataset

pytestmark = pytest.mark.django_db


def test_unknown_physics_is_null_never_assumed(project, alice):
    dataset = make_dataset(project, alice)
    dataset.pixel_size_nm = None
    dataset.save()
    body = api_client(alice).get(f"/api/v1/datasets/{dataset.id}/").json()
    assert body["pixel_nm"] is None and body["scan_step_nm"] is None
    assert body["probe_fwhm_nm"] is None and body["counts_estimate"] is None


def test_upload_takes_the_probe_as_one_number_or_x_y(project, alice):
    api = api_client(alice)
    r = api.post(f"/api/v1/projects/{project.id}/datasets/",
                 {"file": _file(), "pixel_nm": "40", "probe_fwhm_nm": "150,200"}, format="multipart")
    assert r.status_code == 201, r.content
    assert r.json()["probe_fwhm_nm"] == [150.0, 200.0] and r.json()["pixel_nm"] == 40.0
    r = upload(web_client(alice), project, HDF5, probe_fwhm_nm="60")  # the page's form
    assert r.status_code == 201
    assert Dataset.objects.get(id=r.json()["id"]).probe_fwhm_nm == (60.0, 60.0)


@pytest.mark.parametrize("probe", ["0", "-3", "abc", "1,2,3", "nan"])
def test_upload_with_a_bad_probe_is_400_and_keeps_nothing(project, alice, probe):
    r = api_client(alice).post(f"/api/v1/projects/{project.id}/datasets/",
                               {"file": _file(), "probe_fwhm_nm": probe}, format="multipart")
    assert r.status_code == 400 and "probe FWHM" in r.json()["error"]
    assert not Dataset.objects.exists()


@pytest.mark.parametrize("who", ["alice", "bob"])  # the owner and a collaborator
def test_patch_states_step_and_probe(project, who, request):
    dataset = make_dataset(project, request.getfixturevalue("alice"))
    api = api_client(request.getfixturevalue(who))
    r = api.patch(f"/api/v1/datasets/{dataset.id}/", {"probe_fwhm_nm": [40, 60]}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["probe_fwhm_nm"] == [40.0, 60.0] and r.json()["pixel_nm"] == 50.0  # step kept
    r = api.patch(f"/api/v1/datasets/{dataset.id}/", {"pixel_nm": "45,55"}, format="json")
    assert r.json()["scan_step_nm"] == [45.0, 55.0] and r.json()["probe_fwhm_nm"] == [40.0, 60.0]
    r = api.patch(f"/api/v1/datasets/{dataset.id}/", {"pixel_nm": ""}, format="json")
    assert r.json()["scan_step_nm"] == [50.0, 50.0]  # cleared: the file's step again


def test_patch_by_a_stranger_is_404_and_changes_nothing(project, alice, charlie):
    dataset = make_dataset(project, alice)
    r = api_client(charlie).patch(f"/api/v1/datasets/{dataset.id}/", {"probe_fwhm_nm": 40}, format="json")
    assert r.status_code == 404
    dataset.refresh_from_db()
    assert dataset.probe_fwhm_nm is None


@pytest.mark.parametrize("body,words", [
    ({"probe_fwhm_nm": 0}, "positive"),
    ({"probe_fwhm_nm": "-5,10"}, "positive"),
    ({"pixel_nm": "fifty"}, "scan step"),
    ({"pixel_nm": [1, 2, 3]}, "scan step"),
    ({"probe_fwhm_nm": 40, "counts_estimate": 9}, "only pixel_nm and probe_fwhm_nm"),
])
def test_patch_with_bad_values_is_400_with_the_reason_and_changes_nothing(project, alice, body, words):
    dataset = make_dataset(project, alice)
    r = api_client(alice).patch(f"/api/v1/datasets/{dataset.id}/", body, format="json")
    assert r.status_code == 400 and words in r.json()["error"]
    dataset.refresh_from_db()
    assert dataset.probe_fwhm_nm is None and dataset.pixel_nm_given is None


def test_jobs_record_the_physics_and_take_a_scale(project, alice):
    dataset = make_dataset(project, alice)  # 50 nm step from the file
    dataset.probe_fwhm_x_nm = dataset.probe_fwhm_y_nm = 80.0
    dataset.counts_estimate = 300.0
    dataset.save()
    model = make_tiny_model("fits", pixel_nm=25.0, scale=2)
    api = api_client(alice)
    r = api.post("/api/v1/jobs/", {"dataset": dataset.id, "model": model.id, "scale": 3}, format="json")
    assert r.status_code == 400 and "not 3x" in r.json()["error"] and "universal" in r.json()["error"]
    r = api.post("/api/v1/jobs/", {"dataset": dataset.id, "model": model.id, "scale": 2}, format="json")
    assert r.status_code == 201, r.content
    params = r.json()["params"]
    assert params["scan_step_nm"] == [50.0, 50.0] and params["probe_fwhm_nm"] == [80.0, 80.0]
    assert params["scale"] == 2 and params["counts"] == 300.0 and params["fine_pixel_nm"] == [25.0, 25.0]
    assert Job.objects.get().params == params


def test_parsing_estimates_the_dose(project, alice, tmp_path):
    from enhancer.degrade import Degradation
    from enhancer.phantoms import phantom
    from xrfweb.projects.tasks import describe
    from enhancer.xrfmap import XRFMap

    maps = Degradation(200.0, 50.0, 1, counts=400).apply(phantom("cell", 96, 2, seed=1), seed=2)
    found = describe(XRFMap(["Fe", "Zn"], maps))["counts_estimate"]
    assert 250 < found < 550


def _file():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("scan.h5", HDF5)


def test_a_dataset_parsed_before_doses_were_estimated_gets_one_when_enhanced(project, alice):
    import shutil

    from tests.formats_fixtures import HXN_SET
    from xrfweb.projects.models import Dataset as D

    dataset = make_dataset(project, alice, name="Fe.tiff", elements=("Fe",), shape=(1, 160, 160))
    shutil.copy(HXN_SET / "SUM_maps_XRF_S_K.tiff", dataset.path)
    D.objects.filter(id=dataset.id).update(kind="tiff", source_format="tiff", counts_estimate=None)
    web_client(alice).get(f"/datasets/{dataset.id}/enhance/")
    dataset.refresh_from_db()
    assert dataset.counts_estimate and dataset.counts_estimate > 0


def test_the_dataset_page_shows_unknown_and_states_the_physics_like_the_api(project, alice, bob, charlie):
    dataset = make_dataset(project, alice)
    dataset.pixel_size_nm = None
    dataset.save()
    page = f"/datasets/{dataset.id}/"
    html = web_client(bob).get(page).content.decode()  # a collaborator
    assert 'id="physics-step">unknown' in html and 'id="physics-probe">unknown' in html
    assert 'id="physics-dose">unknown' in html and 'id="physics-form"' in html
    form = {"action": "physics", "pixel_nm": "45,55", "probe_fwhm_nm": "30", "next": page}
    response = web_client(bob).post(f"/datasets/{dataset.id}/enhance/", form)
    assert response.status_code == 302 and response.url == page  # back where the form was
    dataset.refresh_from_db()
    assert dataset.scan_step_nm == (45.0, 55.0) and dataset.probe_fwhm_nm == (30.0, 30.0)
    html = web_client(bob).get(page).content.decode()
    assert 'id="physics-step">45 × 55 nm' in html and 'id="physics-probe">30 nm' in html
    stranger = web_client(charlie).post(f"/datasets/{dataset.id}/enhance/", {**form, "probe_fwhm_nm": "99"})
    assert stranger.status_code == 404
    dataset.refresh_from_db()
    assert dataset.probe_fwhm_nm == (30.0, 30.0)
