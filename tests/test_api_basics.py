"""REST API v1: token auth, projects, model bundles, training requests, errors as JSON."""
import io
import pickle

import pytest
from rest_framework.test import APIClient

from tests.conftest import PASSWORD, api_client, make_dataset, make_tiny_model
from xrfweb.jobs.models import Job
from xrfweb.registry.models import EnhancementModel

pytestmark = pytest.mark.django_db


def test_a_token_comes_from_username_and_password(alice):
    client = APIClient()
    response = client.post("/api/v1/auth/token/", {"username": "alice", "password": PASSWORD})
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/projects/").status_code == 200
    response = APIClient().post("/api/v1/auth/token/", {"username": "alice", "password": "no"})
    assert response.status_code == 400 and "Unable to log in" in response.json()["error"]
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert bad.get("/api/v1/projects/").status_code == 401


def test_projects_are_created_and_listed(alice):
    api = api_client(alice)
    response = api.post("/api/v1/projects/", {"name": "HXN 2026-1"}, format="json")
    assert response.status_code == 201
    assert response.json()["owner"] == "alice" and response.json()["collaborators"] == []
    assert api.get(f"/api/v1/projects/{response.json()['id']}/").json()["name"] == "HXN 2026-1"
    response = api.post("/api/v1/projects/", {}, format="json")
    assert response.status_code == 400 and response.json()["error"].startswith("name:")


def test_user_mistakes_get_400_with_a_message_never_500(project, alice, tiny_model):
    api = api_client(alice)
    dataset = make_dataset(project, alice, pixel_nm=200.0)
    cases = [
        api.post("/api/v1/jobs/", {"dataset": dataset.id, "model": tiny_model.id}, format="json"),
        api.post("/api/v1/jobs/", {"dataset": "x", "model": tiny_model.id}, format="json"),
        api.post("/api/v1/jobs/", "{not json", content_type="application/json"),
        api.post(f"/api/v1/projects/{project.id}/datasets/", {}, format="multipart"),
        api.get("/api/v1/jobs/1/result/?format=exe"),
    ]
    for response in cases[:4]:
        assert response.status_code == 400, response.content
        assert response.json()["error"]
    assert "step is 200 nm" in cases[0].json()["error"] and "universal" in cases[0].json()["error"]
    assert cases[4].status_code in (400, 404) and cases[4].json()["error"]
    assert not Job.objects.exists()


def bundle_files(tmp_path):
    """A real bundle's two files, as an external group would send them."""
    model = make_tiny_model("source-bundle")
    from xrfweb.paths import models_dir

    folder = models_dir() / model.folder
    return (folder / "model.safetensors").read_bytes(), (folder / "model.json").read_bytes()


def test_staff_upload_an_external_bundle_as_a_draft(staff, tmp_path):
    weights, config = bundle_files(tmp_path)
    response = api_client(staff).post("/api/v1/models/upload/", {
        "name": "from-another-facility", "weights": io.BytesIO(weights),
        "config": io.BytesIO(config)}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft" and body["scan_step_nm"] == 50.0
    from enhancer.bundle import load_bundle

    model = EnhancementModel.objects.get(name="from-another-facility")
    assert load_bundle(model.bundle_ref).scale == 2


class Payload:
    def __reduce__(self):
        return (print, ("pwned",))


def test_a_pickle_is_refused_and_nothing_is_kept(staff, tmp_path):
    from xrfweb.paths import models_dir

    _, config = bundle_files(tmp_path)
    before = sorted(p.name for p in models_dir().iterdir())
    for weights in (pickle.dumps(Payload()), b"PK\x03\x04 a torch zip"):
        response = api_client(staff).post("/api/v1/models/upload/", {
            "name": "evil", "weights": io.BytesIO(weights), "config": io.BytesIO(config)},
            format="multipart")
        assert response.status_code == 400 and "safetensors" in response.json()["error"]
    response = api_client(staff).post("/api/v1/models/upload/", {
        "name": "evil", "weights": io.BytesIO(b"x"), "config": io.BytesIO(b"{")},
        format="multipart")
    assert response.status_code == 400 and "JSON" in response.json()["error"]
    assert not EnhancementModel.objects.filter(name="evil").exists()
    assert sorted(p.name for p in models_dir().iterdir()) == before


def test_training_requests_are_checked_before_queueing(staff, project, alice):
    api = api_client(staff)
    good = {"probe_fwhm_nm": 80, "pixel_nm": 25, "scale": 2, "counts": 500, "steps": 100,
            "phantoms": 2}
    for change, words in (({"scale": 7}, "scale must be"), ({"steps": None}, "give a budget"),
                          ({"minutes": 5}, "give a budget"), ({"counts": -1}, "positive"),
                          ({"phantoms": 0}, "at least one dataset")):
        response = api.post("/api/v1/models/train/", {**good, **change}, format="json")
        assert response.status_code == 400 and words in response.json()["error"], change
    dataset = make_dataset(project, alice)
    response = api.post("/api/v1/models/train/", {**good, "datasets": [dataset.id],
                                                  "name": "fine-pt"}, format="json")
    assert response.status_code == 201
    job = Job.objects.get(id=response.json()["id"])
    assert job.kind == "train" and job.status == "queued"
    assert job.params["datasets"] == [dataset.id] and job.params["name"] == "fine-pt"


def test_the_schema_describes_the_contract(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = set(schema["paths"])
    assert {"/api/v1/auth/token/", "/api/v1/projects/", "/api/v1/projects/{project_id}/",
            "/api/v1/projects/{project_id}/datasets/", "/api/v1/datasets/{dataset_id}/",
            "/api/v1/models/", "/api/v1/models/train/", "/api/v1/models/upload/",
            "/api/v1/jobs/", "/api/v1/jobs/{job_id}/", "/api/v1/jobs/{job_id}/cancel/",
            "/api/v1/jobs/{job_id}/result/"} <= paths
    job = schema["components"]["schemas"]["Job"]["properties"]
    assert {"id", "status", "progress", "error"} <= set(job)
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs and "cdn" not in docs.lower()


def test_shipped_bundles_are_registered_once_and_decisions_kept(db):
    from enhancer.bundle import shipped_bundles
    from xrfweb.registry.shipped import register_shipped_models

    names = [p.name for p in shipped_bundles()]
    if not names:
        pytest.skip("no shipped bundle in enhancer/models yet")
    registered = EnhancementModel.objects.filter(name__in=names)
    assert sorted(m.name for m in registered) == sorted(names)
    assert {m.status for m in registered} == {"approved"}
    registered.filter(name=names[0]).update(status="retired")
    assert register_shipped_models(verbosity=0) == []  # idempotent
    assert EnhancementModel.objects.get(name=names[0]).status == "retired"
