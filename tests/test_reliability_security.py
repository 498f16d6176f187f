"""Security promises of the checklist: CSRF on every form, sign-in throttling, uploads never
served as something a browser runs, the per-user quota through the API, and Django's deployment
check under production settings."""
import os
import subprocess
import sys

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import PASSWORD, REPO, api_client, make_finished_job, web_client
from tests.reliability import work
from tests.reliability.helpers import MULTIPART, files_under, multipart, record
from tests.test_reliability_access import routes, url_for
from xrfweb.accounts import lockout
from xrfweb.paths import tmp_dir, uploads_dir
from xrfweb.projects.models import Dataset, Project

pytestmark = pytest.mark.django_db
HDF5 = b"\x89HDF\r\n\x1a\n" + bytes(4096)


# --- CSRF ---------------------------------------------------------------------------------------

def csrf_client(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_every_post_without_the_csrf_token_is_refused(project, alice, tiny_model):
    dataset = work.ready_dataset(project, alice)
    job = make_finished_job(dataset, tiny_model, alice)
    ids = {"project_id": project.id, "dataset_id": dataset.id, "job_id": job.id,
           "model_id": tiny_model.id}
    client = csrf_client(alice)
    refused = []
    for name, params in routes():
        response = client.post(url_for(name, params, ids), {"name": "x", "username": "bob"})
        if name == "api-token":  # takes a password, never the session: nothing to forge
            continue
        assert response.status_code == 403, (name, response)
        if name != "api-docs":  # (its HTML renderer drops the reason)
            assert b"CSRF" in response.content, (name, response.content[:200])
        refused.append(name)
    assert Project.objects.count() == 1 and project.collaborators.count() == 1
    record("access", f"POST without a CSRF token to all {len(refused)} session URLs",
           "403 CSRF, nothing changed")


def test_forms_work_with_the_token_from_the_page(project, alice):
    client = csrf_client(alice)
    client.get(f"/projects/{project.id}/")
    token = client.cookies["csrftoken"].value
    response = client.post("/", {"name": "with token", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    response = client.post(f"/projects/{project.id}/upload/",
                           multipart({"file": ("scan.h5", HDF5, "application/octet-stream")}),
                           content_type=MULTIPART, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201  # the page's XHR sends the token in a header
    api = APIClient(enforce_csrf_checks=True)
    api.force_login(alice)
    assert api.post("/api/v1/projects/", {"name": "x"}, format="json").status_code == 403
    assert api_client(alice).post("/api/v1/projects/", {"name": "x"},
                                  format="json").status_code == 201  # a token is not ambient


# --- sign-in throttling -------------------------------------------------------------------------

def sign_in(client, password, username="alice", **extra):
    return client.post("/accounts/login/", {"username": username, "password": password}, **extra)


def test_sign_in_is_locked_after_repeated_failures(alice, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, "wrong").status_code == 200  # the form again, with the error
    assert sign_in(client, "wrong").status_code == 429  # the failure that reaches the limit
    response = sign_in(client, PASSWORD)  # the right password, too late
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # The API token endpoint and the admin's sign-in obey the same lock.
    response = APIClient().post("/api/v1/auth/token/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429 and "Too many" in response.json()["error"]
    admin = Client()
    admin.post("/admin/login/", {"username": "alice", "password": PASSWORD})
    assert "_auth_user_id" not in admin.session
    # Another address is not locked; another user name from the same address is (per address).
    other = Client()
    assert sign_in(other, PASSWORD, REMOTE_ADDR="10.0.0.7").status_code == 302
    assert sign_in(Client(), "wrong", username="bob").status_code == 429
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    record("access", f"{settings.AXES_FAILURE_LIMIT} wrong passwords for one user from one address",
           "sign-in page, API token and admin sign-in refused (429 with the reason) for "
           f"{minutes} minutes, even with the right password; other addresses unaffected")


def test_password_spraying_from_one_address_is_locked(alice, bob, charlie, settings):
    """Many user names from one address, a few tries each: the address is locked (django-axes,
    counted in the shared Redis cache), and other addresses are not."""
    names = [f"user{i}" for i in range(settings.AXES_FAILURE_LIMIT - 2)] + ["bob", "charlie"]
    answers = [sign_in(Client(), "Winter2026!", username=name).status_code for name in names]
    assert answers == [200] * (len(names) - 1) + [429], answers  # the last reaches the limit
    assert sign_in(Client(), PASSWORD).status_code == 429  # even alice, with her password
    response = APIClient().post("/api/v1/auth/token/", {"username": "bob", "password": PASSWORD})
    assert response.status_code == 429
    assert sign_in(Client(), PASSWORD, REMOTE_ADDR="10.0.0.8").status_code == 302
    assert settings.CACHES["default"]["BACKEND"] == "xrfweb.cache.SharedCache"  # Redis, shared
    record("access", f"one wrong password each for {len(names)} user names from one address",
           "the address is locked (429 for every name, the right password too); other addresses "
           "sign in")


def test_a_success_does_not_clear_an_address_count(alice, settings):
    # (else an attacker with an account of their own could clear it between sprays)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(Client(), "wrong", username="bob")
    assert sign_in(Client(), PASSWORD).status_code == 302
    assert sign_in(Client(), "wrong").status_code == 429  # the limit-th failure
    assert sign_in(Client(), PASSWORD).status_code == 429


def test_failed_tokens_count_too(alice, settings):
    api = APIClient()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        assert api.post("/api/v1/auth/token/", {"username": "alice", "password": "no"}
                        ).status_code == 400
    assert sign_in(Client(), PASSWORD).status_code == 429


# --- downloads ----------------------------------------------------------------------------------

def assert_download_headers(response, what):
    content_type = response["Content-Type"].split(";")[0].strip().lower()
    assert response.status_code == 200, what
    assert not any(k in content_type for k in ("html", "svg", "xml", "javascript")), \
        (what, content_type)
    assert response["Content-Disposition"].startswith("attachment"), what
    assert response["X-Content-Type-Options"] == "nosniff", what


@pytest.mark.parametrize("name", ["<script>alert(1)</script>.html", "evil.svg", "page.htm",
                                  "x.js", "scan.h5"])
def test_uploads_are_never_served_as_something_a_browser_runs(project, alice, name):
    body = HDF5 + b"<html><script>alert(document.cookie)</script></html>"
    response = web_client(alice).post(
        f"/projects/{project.id}/upload/",
        multipart({"file": (name, body, "text/html")}), content_type=MULTIPART)
    assert response.status_code == 201
    download = web_client(alice).get(f"/datasets/{response.json()['id']}/file")
    assert_download_headers(download, name)
    assert download["Content-Type"] == "application/octet-stream"
    assert b"".join(download.streaming_content) == body


def test_results_are_downloads_with_safe_types(project, alice, tiny_model):
    from xrfweb.jobs.results import FORMATS

    dataset = work.ready_dataset(project, alice, name="<img src=x onerror=alert(1)>.html")
    job = make_finished_job(dataset, tiny_model, alice, formats=tuple(FORMATS))
    for fmt in FORMATS:
        assert_download_headers(web_client(alice).get(f"/jobs/{job.id}/result.{fmt}"), fmt)
        response = api_client(alice).get(f"/api/v1/jobs/{job.id}/result/?format={fmt}")
        assert_download_headers(response, fmt)
        assert "<" not in response["Content-Disposition"]
    record("access", "downloads of uploads named .html/.svg/.js and of every result format",
           "Content-Type never HTML/SVG/XML/JS (uploads: application/octet-stream), "
           "Content-Disposition: attachment, X-Content-Type-Options: nosniff")


# --- quota --------------------------------------------------------------------------------------

def test_the_quota_holds_through_the_api_and_keeps_nothing_refused(project, alice, settings):
    settings.XRFWEB_USER_QUOTA_MB = 1
    other = Project.objects.create(name="another", owner=alice)
    half = multipart({"file": ("half.h5", HDF5 + bytes(600 * 1024), "application/octet-stream")})
    api = api_client(alice)
    assert api.post(f"/api/v1/projects/{project.id}/datasets/", half,
                    content_type=MULTIPART).status_code == 201
    before = files_under(uploads_dir(), tmp_dir())
    response = api.post(f"/api/v1/projects/{other.id}/datasets/", half, content_type=MULTIPART)
    assert response.status_code == 400 and "1 MB storage quota" in response.json()["error"]
    assert files_under(uploads_dir(), tmp_dir()) == before and Dataset.objects.count() == 1
    record("access", "an upload past the user's quota (API, another of their projects)",
           "400 naming the quota; nothing stored")


# --- deployment ---------------------------------------------------------------------------------

def test_the_deployment_check_passes_under_production_settings(tmp_path):
    # The production environment: none of the test session's switches (a browser test sets
    # DJANGO_ALLOW_ASYNC_UNSAFE, which the deployment check rightly refuses).
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(DEBUG="0", SECRET_KEY="x" * 20 + "-production-secret-of-fifty-or-more-characters-1",
               ALLOWED_HOSTS="xrf.example.org", XRFWEB_DATA_DIR=str(tmp_path),
               DJANGO_SETTINGS_MODULE="xrfweb.settings")
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level",
                             "WARNING"], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    record("deployment", "manage.py check --deploy --fail-level WARNING (DEBUG=0)",
           "exit 0: " + result.stdout.strip())
