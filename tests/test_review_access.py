"""Review pages and their JSON through xrfweb.access: someone else's dataset, job or model is a
404 everywhere (as if it did not exist); signed-out visitors are sent to sign in."""
import pytest

from tests.conftest import make_dataset, make_finished_job, make_tiny_model, web_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def urls(project, alice, tiny_model):
    dataset = make_dataset(project, alice)
    job = make_finished_job(dataset, tiny_model, alice)
    draft = make_tiny_model("draft-model", status="draft")
    d, j = dataset.id, job.id
    window = "element=Fe&x0=0&x1=4&y0=0&y1=4"
    return {
        "dataset": [f"/datasets/{d}/", f"/datasets/{d}/maps.json", f"/datasets/{d}/region.json?{window}"],
        "job": [f"/jobs/{j}/", f"/jobs/{j}/review.json", f"/jobs/{j}/maps.json",
                f"/jobs/{j}/region.json?{window}", f"/jobs/{j}/profile.json?{window}"],
        "draft": [f"/models/{draft.id}/", f"/models/{draft.id}/curves.json",
                  f"/models/{draft.id}/example.json", f"/models/compare/maps/?models={draft.id}",
                  f"/models/compare/maps.json?models={draft.id}"],
        "compare": [f"/models/compare/maps/?models={tiny_model.id}&dataset={d}",
                    f"/models/compare/maps.json?models={tiny_model.id}&dataset={d}"],
    }


def test_another_user_gets_404_on_every_review_page_and_json(urls, charlie):
    client = web_client(charlie)
    for url in urls["dataset"] + urls["job"] + urls["draft"] + urls["compare"]:
        assert client.get(url).status_code == 404, url


def test_owner_and_collaborator_open_the_pages(urls, alice, bob):
    for user in (alice, bob):
        for url in (urls["dataset"][0], urls["job"][0]):
            assert web_client(user).get(url).status_code == 200, (user, url)


def test_drafts_are_for_staff_only(urls, alice, staff):
    assert web_client(alice).get(urls["draft"][0]).status_code == 404
    assert web_client(staff).get(urls["draft"][0]).status_code == 200
    assert web_client(staff).get(urls["draft"][1]).status_code == 200


def test_ids_that_are_not_numbers_are_404(alice, tiny_model):
    client = web_client(alice)
    assert client.get("/models/compare/maps/?models=1x").status_code == 404
    assert client.get(f"/models/compare/maps/?models={tiny_model.id}&dataset=abc").status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(urls, client):
    for url in urls["dataset"] + urls["job"]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
