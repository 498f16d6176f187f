"""Access over every page and API endpoint that takes an id: alice owns the project, bob
collaborates, charlie has no access (404, as if it did not exist), staff sees all. Model
management is staff-only (403)."""
import pytest

from tests.conftest import api_client, make_dataset, make_finished_job, web_client
from xrfweb.jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(project, alice, tiny_model):
    dataset = make_dataset(project, alice)
    job = make_finished_job(dataset, tiny_model, alice)
    running = Job.objects.create(kind="enhance", status="running", created_by=alice,
                                 project=project, dataset=dataset, model=tiny_model)
    return {"project": project, "dataset": dataset, "job": job, "running": running,
            "model": tiny_model}


def page_reads(w):
    p, d, j = w["project"].id, w["dataset"].id, w["job"].id
    return [f"/projects/{p}/", f"/projects/{p}/datasets.json", f"/datasets/{d}/",
            f"/datasets/{d}/file", f"/datasets/{d}/enhance/", f"/jobs/{j}/",
            f"/jobs/{j}/status.json", f"/jobs/{j}/result.tiff"]


def api_reads(w):
    p, d, j = w["project"].id, w["dataset"].id, w["job"].id
    return [f"/api/v1/projects/{p}/", f"/api/v1/projects/{p}/datasets/",
            f"/api/v1/datasets/{d}/", f"/api/v1/jobs/{j}/",
            f"/api/v1/jobs/{j}/result/?format=tiff"]


def test_owner_collaborator_and_staff_read_everything(world, alice, bob, staff):
    for user in (alice, bob, staff):
        for url in page_reads(world):
            assert web_client(user).get(url).status_code == 200, (user, url)
        for url in api_reads(world):
            assert api_client(user).get(url).status_code == 200, (user, url)


def test_another_user_gets_404_on_every_read(world, charlie):
    for url in page_reads(world):
        assert web_client(charlie).get(url).status_code == 404, url
    for url in api_reads(world):
        response = api_client(charlie).get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]  # JSON with a message, never a page


def test_another_user_gets_404_on_every_write(world, charlie):
    w, page, api = world, web_client(charlie), api_client(charlie)
    p, d, r = w["project"].id, w["dataset"].id, w["running"].id
    assert page.post(f"/projects/{p}/upload/", {"file": b"x"}).status_code == 404
    assert page.post(f"/projects/{p}/collaborators/", {"username": "charlie"}).status_code == 404
    assert page.post(f"/datasets/{d}/enhance/", {"model": w["model"].id}).status_code == 404
    assert page.post(f"/jobs/{r}/cancel/").status_code == 404
    assert api.post(f"/api/v1/projects/{p}/datasets/", {}, format="multipart").status_code == 404
    assert api.post("/api/v1/jobs/", {"dataset": d, "model": w["model"].id},
                    format="json").status_code == 404
    assert api.post(f"/api/v1/jobs/{r}/cancel/").status_code == 404
    w["running"].refresh_from_db()
    assert not w["running"].cancel_requested and w["project"].collaborators.count() == 1
    assert Job.objects.count() == 2


def test_lists_hold_only_what_the_user_may_see(world, charlie, bob):
    assert api_client(charlie).get("/api/v1/projects/").json() == []
    assert api_client(charlie).get("/api/v1/jobs/").json() == []
    assert web_client(charlie).get("/jobs/status.json").json() == {"jobs": []}
    assert [p["id"] for p in api_client(bob).get("/api/v1/projects/").json()] == \
        [world["project"].id]
    assert {j["id"] for j in api_client(bob).get("/api/v1/jobs/").json()} == \
        {world["job"].id, world["running"].id}


def test_users_see_only_approved_models(world, charlie, staff):
    from tests.conftest import make_tiny_model

    draft = make_tiny_model("draft-one", status="draft")
    retired = make_tiny_model("old-one", status="retired")
    names = {m["name"] for m in api_client(charlie).get("/api/v1/models/").json()}
    assert world["model"].name in names and not names & {"draft-one", "old-one"}
    for model in (draft, retired):
        assert api_client(charlie).get(f"/api/v1/models/{model.id}/").status_code == 404
        assert web_client(charlie).get(f"/models/{model.id}/").status_code == 404
    staff_names = {m["name"] for m in api_client(staff).get("/api/v1/models/").json()}
    assert {"draft-one", "old-one"} <= staff_names


def test_model_management_is_staff_only(world, alice, staff):
    m = world["model"].id
    page, api = web_client(alice), api_client(alice)
    for url in ("/models/train/", "/models/upload/"):
        assert page.get(url).status_code == 403
        assert web_client(staff).get(url).status_code == 200
    assert page.post(f"/models/{m}/status/", {"status": "retired"}).status_code == 403
    assert api.post(f"/api/v1/models/{m}/status/", {"status": "retired"},
                    format="json").status_code == 403
    assert api.post("/api/v1/models/train/", {"datasets": [], "probe_fwhm_nm": 80,
                    "pixel_nm": 25, "scale": 2, "counts": 100, "steps": 2},
                    format="json").status_code == 403
    assert api.post("/api/v1/models/upload/", {}, format="multipart").status_code == 403
    world["model"].refresh_from_db()
    assert world["model"].status == "approved"


def test_signed_out_visitors_are_sent_to_sign_in(world, client):
    response = client.get(f"/projects/{world['project'].id}/")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")
    assert client.get("/api/v1/projects/").status_code == 401
