"""Access over EVERY URL, enumerated from the resolver so that a new endpoint cannot be missed:
another user gets exactly what a missing id gets (404; 403 on staff-only pages; 405 for a wrong
method), owners and staff get through; ids in query strings and bodies too. Signed-out visitors
are sent to sign in; the admin is for staff. (tests/test_web_access.py has the hand-written
matrix; this file makes it exhaustive.)"""
import shutil

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.conftest import api_client, web_client
from tests.reliability import work
from tests.reliability.helpers import record
from xrfweb.jobs.models import Job

pytestmark = pytest.mark.django_db
MISSING = 2**31 - 1  # an id nothing has
SECRET = "Secret beamtime 2026-1"

# URLs that take no object id at all, and those that take ids in the query or the body (checked
# one by one below). A new URL must be added to one of these, or take its ids in the path.
NO_IDS = {"healthz", "login", "logout", "api-token", "api-projects", "api-models",
          "api-model-upload", "api-schema", "api-docs", "home", "model-list", "model-upload",
          "job-list", "job-list-json", "favicon"}
IDS_ELSEWHERE = {"compare-maps", "compare-maps-json", "model-compare", "api-jobs",
                 "api-model-train", "model-train"}
PUBLIC = {"healthz", "login", "logout", "api-token", "api-schema", "api-docs", "favicon"}


def routes():
    """(name, {param: converter}) of every URL pattern outside the admin."""
    def walk(patterns, converters, admin):
        for p in patterns:
            conv = {**converters, **p.pattern.converters}
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, conv, admin or str(p.pattern) == "admin/")
            elif isinstance(p, URLPattern) and not admin:
                yield p.name, conv
    return list(walk(get_resolver().url_patterns, {}, False))


@pytest.fixture
def world(project, alice, staff):
    """Alice's project (bob collaborates) with a dataset, an approved and a draft model, a
    finished enhancement with real results, and a training job."""
    from enhancer import pipeline
    from enhancer.bundle import load_bundle
    from enhancer.formats import read_map
    from xrfweb.jobs.work import write_results

    project.name = SECRET
    project.save()
    dataset = work.ready_dataset(project, alice)
    approved = work.model("approved-one")
    draft = work.model("draft-one")
    draft.status = "draft"
    draft.save()
    job = Job.objects.create(kind="enhance", status="succeeded", progress=1.0, created_by=alice,
                             project=project, dataset=dataset, model=approved,
                             params={"ensemble": 1, "pixel_nm": 50.0})
    original = read_map(dataset.path)
    write_results(job, pipeline.run(original, load_bundle(approved.bundle_ref)))
    training = Job.objects.create(kind="train", status="succeeded", created_by=staff,
                                  model=draft, params={"name": "draft-one"})
    yield {"project": project, "dataset": dataset, "approved": approved, "draft": draft,
           "job": job, "training": training}
    # The rows are rolled back and their ids come again: leave no files keyed by them (results,
    # the review pages' caches).
    from xrfweb.paths import data_dir

    shutil.rmtree(job.result_dir, ignore_errors=True)
    shutil.rmtree(data_dir("review"), ignore_errors=True)


def url_for(name, params, ids) -> str:
    kwargs = {p: ("tiff" if p == "fmt" else ids[p]) for p in params}
    return reverse(name, kwargs=kwargs)


def answers(user, url):
    """GET and POST status through the pages' client (session) and the API's (token)."""
    client = api_client(user) if url.startswith("/api/") else web_client(user)
    return client.get(url), client.post(url)


def test_every_url_is_classified():
    names = {name for name, params in routes() if not params}
    unclassified = names - NO_IDS - IDS_ELSEWHERE
    assert not unclassified, f"new URLs: say whether they take ids, and test them: {unclassified}"
    assert not (NO_IDS | IDS_ELSEWHERE) - names, "a listed URL no longer exists: update the lists"


def test_another_user_cannot_tell_others_objects_from_missing_ones(world, charlie, alice, staff):
    w = world
    theirs = [{"project_id": w["project"].id, "dataset_id": w["dataset"].id,
               "job_id": w["job"].id, "model_id": w["draft"].id},
              {"job_id": w["training"].id}]  # a training job: staff business
    missing = {"project_id": MISSING, "dataset_id": MISSING, "job_id": MISSING,
               "model_id": MISSING}
    checked = 0
    for name, params in routes():
        if not params:
            continue
        for ids in theirs:
            if not set(params) - {"fmt"} <= set(ids):
                continue
            url, url_missing = url_for(name, params, ids), url_for(name, params, missing)
            for got, expected in zip(answers(charlie, url), answers(charlie, url_missing)):
                assert got.status_code in (403, 404, 405), (name, url, got.status_code)
                assert got.status_code == expected.status_code, (name, url)
                assert SECRET.encode() not in got.content, (name, url)
                checked += 1
    assert checked >= 2 * 28
    record("access", f"{checked // 2} id-taking URLs x GET/POST, another user",
           "same status as a missing id (404; 403 staff-only; 405 wrong method); nothing leaked")


def test_owners_collaborators_and_staff_get_through(world, alice, bob, staff):
    w = world
    staff_only = {"model-status", "model-training", "api-model-status", "model-benchmark",
                  "model-benchmark-json", "api-dataset-probe", "dataset-measured-probe"}
    for name, params in routes():
        if not params:
            continue
        ids = {"project_id": w["project"].id, "dataset_id": w["dataset"].id,
               "job_id": w["training"].id if name == "model-training" else w["job"].id,
               "model_id": w["approved"].id}
        url = url_for(name, params, ids)
        for user in (alice, bob, staff):
            client = api_client(user) if url.startswith("/api/") else web_client(user)
            status = client.get(url).status_code
            if name in staff_only and not user.is_staff:
                assert status in (403, 405), (name, user, status)  # 405: a POST-only URL
            else:
                assert status not in (403, 404) and status < 500, (name, user, status)


def test_ids_in_queries_and_bodies_are_checked_too(world, charlie, alice):
    w = world
    d, draft, approved = w["dataset"].id, w["draft"].id, w["approved"].id
    page, api = web_client(charlie), api_client(charlie)
    assert page.get(f"/models/compare/?ids={draft}").status_code == 404
    for url in ("/models/compare/maps/", "/models/compare/maps.json"):
        assert page.get(f"{url}?models={approved}&dataset={d}").status_code == 404
        assert page.get(f"{url}?models={draft}").status_code == 404
        assert web_client(alice).get(f"{url}?models={approved}&dataset={d}").status_code == 200
    assert api.post("/api/v1/jobs/", {"dataset": d, "model": approved},
                    format="json").status_code == 404
    # Alice may not run a draft model on her own dataset (models she cannot see do not exist).
    assert api_client(alice).post("/api/v1/jobs/", {"dataset": d, "model": draft},
                                  format="json").status_code == 404
    assert web_client(alice).post(f"/datasets/{d}/enhance/", {"model": draft}).status_code == 404
    for url, body in (("/api/v1/models/train/", {"datasets": [d], "probe_fwhm_nm": 80,
                                                 "pixel_nm": 25, "scale": 2, "counts": 100,
                                                 "steps": 1}),):
        assert api.post(url, body, format="json").status_code == 403
    assert page.post("/models/train/", {"datasets": [d]}).status_code == 403
    assert Job.objects.count() == 2


def test_signed_out_visitors_get_nothing(world):
    w = world
    ids = {"project_id": w["project"].id, "dataset_id": w["dataset"].id, "job_id": w["job"].id,
           "model_id": w["approved"].id}
    client = Client()
    for name, params in routes():
        if name in PUBLIC:
            continue
        url = url_for(name, params, ids)
        status = client.get(url).status_code
        if url.startswith("/api/"):
            assert status == 401, (name, status)
        else:
            response = client.get(url)
            assert status == 302 and response.url.startswith("/accounts/login/"), (name, status)


def test_the_admin_is_for_staff_only(world, alice, staff):
    for url in ("/admin/", "/admin/auth/user/", f"/admin/auth/user/{alice.id}/change/"):
        response = web_client(alice).get(url)
        assert response.status_code == 302 and response.url.startswith("/admin/login/"), url
        assert web_client(staff).get(url).status_code in (200, 403), url  # staff: no 404 leak
