"""Security of the web and API requests (issue 21): body sizes before sign-in, the per-user cap
on active jobs and the API throttles, redirects after cancel, model.json's fields on upload."""
import json

import pytest
from django.test import Client

from tests.conftest import api_client, make_dataset, web_client
from tests.reliability.helpers import MULTIPART, multipart, record
from xrfweb.projects.uploads import CappedTemporaryFileUploadHandler

pytestmark = pytest.mark.django_db
HDF5 = b"\x89HDF\r\n\x1a\n" + bytes(4096)


# --- hole 4: large bodies before sign-in --------------------------------------------------------

@pytest.fixture
def stored(monkeypatch):
    """The upload files the handler opened on disk (each a file name it was given)."""
    opened = []
    new_file = CappedTemporaryFileUploadHandler.new_file

    def spy(self, field_name, file_name, *args, **kwargs):
        opened.append(file_name)
        return new_file(self, field_name, file_name, *args, **kwargs)

    monkeypatch.setattr(CappedTemporaryFileUploadHandler, "new_file", spy)
    return opened


def test_signed_out_large_bodies_are_refused_before_anything_is_stored(project, alice, staff,
                                                                        stored):
    big = multipart({"file": ("scan.h5", HDF5 + bytes(4 * 1024 * 1024), "text/plain")},
                    {"username": "alice", "password": "x"})
    paths = ["/accounts/login/", "/admin/login/", f"/projects/{project.id}/upload/",
             f"/api/v1/projects/{project.id}/datasets/", "/models/upload/",
             "/api/v1/models/upload/", "/api/v1/auth/token/", "/"]
    answers = {p: Client().post(p, big, content_type=MULTIPART).status_code for p in paths}
    assert all(400 <= code < 500 for code in answers.values()), answers
    assert stored == []
    # Signed in, other pages keep the small limit; the upload views take the file.
    assert 400 <= web_client(alice).post("/", big, content_type=MULTIPART).status_code < 500
    assert stored == []
    ok = web_client(alice).post(f"/projects/{project.id}/upload/", big, content_type=MULTIPART)
    assert ok.status_code == 201, ok.content
    ok = api_client(alice).post(f"/api/v1/projects/{project.id}/datasets/", big,
                                content_type=MULTIPART)
    assert ok.status_code == 201, ok.content
    record("access", "a 4 MB multipart body, signed out, to the sign-in, admin, upload and API "
           "URLs", f"answers {sorted(set(answers.values()))} before any byte is stored; signed in, "
           "only the upload views take more than Django's 2.5 MB")


# --- hole 5: active jobs per user ---------------------------------------------------------------

def test_queued_and_running_jobs_are_capped_per_user(project, alice, bob, tiny_model, settings):
    from xrfweb.jobs.models import Job

    settings.XRFWEB_MAX_ACTIVE_JOBS = 2
    dataset = make_dataset(project, alice, pixel_nm=50.0)
    dataset.probe_fwhm_x_nm = 80.0  # the tiny model's probe: it fits (enhancer.fit)
    dataset.save()
    api = api_client(alice)
    body = {"dataset": dataset.id, "model": tiny_model.id}
    assert [api.post("/api/v1/jobs/", body, format="json").status_code for _ in range(2)] == [201] * 2
    over = api.post("/api/v1/jobs/", body, format="json")
    assert over.status_code == 429 and "2 jobs" in over.json()["error"], over.content
    page = web_client(alice).post(f"/datasets/{dataset.id}/enhance/", {"model": tiny_model.id},
                                  follow=True)
    assert "2 jobs" in page.content.decode() and Job.objects.count() == 2
    # Another user is not held back, and a finished job frees a place.
    assert api_client(bob).post("/api/v1/jobs/", body, format="json").status_code == 201
    Job.objects.filter(created_by=alice).update(status="succeeded")
    assert api.post("/api/v1/jobs/", body, format="json").status_code == 201
    record("access", "a third job while two are queued (XRFWEB_MAX_ACTIVE_JOBS=2)",
           f"API 429: \"{over.json()['error']}\"; the page says so; other users unaffected")


def test_the_api_throttles_each_user(alice, bob, settings):
    from rest_framework.settings import api_settings

    assert api_settings.DEFAULT_THROTTLE_CLASSES, "no API throttle"
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    limit = int(rates["user"].split("/")[0])
    api = api_client(alice)
    codes = [api.get("/api/v1/projects/").status_code for _ in range(limit + 1)]
    assert codes[:limit] == [200] * limit and codes[-1] == 429, codes[-3:]
    assert api_client(bob).get("/api/v1/projects/").status_code == 200
    record("access", f"{limit + 1} API requests from one user within the throttle's window",
           f"the last answers 429; other users unaffected (rates {rates})")


# --- hole 6: redirects after cancel -------------------------------------------------------------

@pytest.mark.parametrize("target", ["https://evil.example/x", "//evil.example/x",
                                    "/\\evil.example", "javascript:alert(1)"])
def test_cancel_never_redirects_off_site(project, alice, tiny_model, target):
    from xrfweb.jobs.models import Job

    job = Job.objects.create(kind="enhance", created_by=alice, project=project, model=tiny_model)
    response = web_client(alice).post(f"/jobs/{job.id}/cancel/", {"next": target})
    assert response.status_code == 302 and response["Location"] == "/jobs/", response["Location"]
    same_site = web_client(alice).post(f"/jobs/{job.id}/cancel/", {"next": f"/jobs/{job.id}/"})
    assert same_site["Location"] == f"/jobs/{job.id}/"


# --- hole 1: model.json's fields on upload ------------------------------------------------------

@pytest.mark.parametrize("change, field", [
    (lambda c: c["benchmark"]["protocol"].update(scale='<img src=x onerror="alert(1)">'),
     "benchmark.protocol.scale"),
    (lambda c: c.update(surprise="<script>"), "surprise"),
    (lambda c: c.update(name=["a", "list"]), "name"),
    (lambda c: c["benchmark"].update(results=[{"set": 3, "summary": {}}]), "benchmark.results[0].set"),
])
def test_model_uploads_name_the_bad_field(staff, tmp_path, change, field):
    from enhancer.bundle import CONFIG, WEIGHTS
    from tests.conftest import make_tiny_model
    from tests.test_review_models import BENCH
    from xrfweb.paths import models_dir

    model = make_tiny_model("to-copy")
    config = {**json.loads((models_dir() / "to-copy" / CONFIG).read_text()),
              "benchmark": json.loads(json.dumps(BENCH))}
    change(config)
    weights = (models_dir() / "to-copy" / WEIGHTS).read_bytes()
    body = multipart({"weights": ("model.safetensors", weights, "application/octet-stream"),
                      "config": ("model.json", json.dumps(config).encode(), "application/json")},
                     {"name": "hostile"})
    response = api_client(staff).post("/api/v1/models/upload/", body, content_type=MULTIPART)
    assert response.status_code == 400 and field in response.json()["error"], response.content
    page = web_client(staff).post("/models/upload/", body, content_type=MULTIPART, follow=True)
    assert field in page.content.decode()
    assert model.__class__.objects.filter(name="hostile").count() == 0


# --- hole 7: heavy work inside web requests -----------------------------------------------------

def test_heavy_views_are_bounded_per_user_and_site_wide(alice, bob, tiny_model, settings):
    """A first comparison (Richardson-Lucy and inference in the request) takes one of
    XRFWEB_HEAVY_REQUESTS places, one per user: past that 429 with Retry-After; a result
    already computed is served at once."""
    from django.core.cache import cache

    from xrfweb.paths import data_dir

    # An example kept by an earlier test would be served at once (that is the point of keeping
    # it): on SQLite a rolled-back test hands the same model id and config to the next one.
    for kept in data_dir("review").glob(f"model-{tiny_model.id}-*.json"):
        kept.unlink()
    settings.XRFWEB_HEAVY_REQUESTS = 1
    url = f"/models/compare/maps.json?models={tiny_model.id}"
    cache.add(f"heavy-work:user:{alice.pk}", 1, 60)  # alice's other comparison, still running
    busy = web_client(alice).get(url)
    assert busy.status_code == 429 and busy["Retry-After"] and busy.json()["retry_after_s"] > 0
    cache.add("heavy-work:place:0", 1, 60)  # and the site's one place is taken
    assert web_client(bob).get(url).status_code == 429
    cache.delete("heavy-work:place:0")
    assert web_client(bob).get(url).status_code == 200  # computed, then kept
    assert web_client(alice).get(url).status_code == 200  # kept: no place needed
    assert cache.get("heavy-work:place:0") is None  # given back
    example = f"/models/{tiny_model.id}/example.json"
    assert web_client(alice).get(example).status_code == 429  # alice is still busy
    cache.delete(f"heavy-work:user:{alice.pk}")
    assert web_client(alice).get(example).status_code == 200
    record("access", "a first model comparison while the user's other one runs, and while the "
           "site's place is taken", "429 with Retry-After (the page asks again); once free it "
           "is computed and kept, and a kept result is served at once")
