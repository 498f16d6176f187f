"""Issue 18's server-side defects: retired models stay readable for their jobs, datasets can be
deleted (page and API) with their files, the demo is named after what it holds."""
import pytest

from tests.conftest import api_client, make_dataset, make_finished_job, make_tiny_model, web_client
from xrfweb.jobs.models import Job
from xrfweb.projects.models import Dataset

pytestmark = pytest.mark.django_db


def test_a_retired_model_stays_readable_by_the_users_of_its_jobs(project, alice, charlie):
    model = make_tiny_model("old-model")
    other = make_tiny_model("never-used", status="retired")
    job = make_finished_job(make_dataset(project, alice), model, alice)
    model.status = "retired"
    model.save()
    page = web_client(alice).get(f"/models/{model.id}/")
    assert page.status_code == 200 and "Retired" in page.content.decode()
    assert "(retired)" in web_client(alice).get(f"/jobs/{job.id}/").content.decode()
    assert api_client(alice).get(f"/api/v1/models/{model.id}/").json()["status"] == "retired"
    # Not offered for new jobs, and still hidden from those who never used it.
    response = web_client(alice).post(f"/datasets/{job.dataset.id}/enhance/", {"model": model.id})
    assert Job.objects.count() == 1 and response.status_code == 200
    assert web_client(alice).get(f"/models/{other.id}/").status_code == 404
    assert web_client(charlie).get(f"/models/{model.id}/").status_code == 404


def test_deleting_a_dataset_removes_its_files_and_its_jobs_results(
        project, alice, charlie, tiny_model, django_capture_on_commit_callbacks):
    dataset = make_dataset(project, alice)
    job = make_finished_job(dataset, tiny_model, alice)
    upload, results = dataset.path, job.result_dir
    assert upload.is_file() and results.is_dir()
    # A stranger is told nothing exists; the owner deletes it.
    assert api_client(charlie).delete(f"/api/v1/datasets/{dataset.id}/").status_code == 404
    assert upload.is_file()
    with django_capture_on_commit_callbacks(execute=True):  # files go once the rows are gone
        assert api_client(alice).delete(f"/api/v1/datasets/{dataset.id}/").status_code == 204
    assert not Dataset.objects.filter(id=dataset.id).exists()
    assert not Job.objects.filter(id=job.id).exists()
    assert not upload.exists() and not results.exists()
    assert api_client(alice).get(f"/api/v1/datasets/{dataset.id}/").status_code == 404


def test_a_dataset_in_use_by_a_running_job_is_not_deleted(project, alice, tiny_model):
    dataset = make_dataset(project, alice)
    Job.objects.create(kind="enhance", status="running", created_by=alice, project=project,
                       dataset=dataset, model=tiny_model)
    response = api_client(alice).delete(f"/api/v1/datasets/{dataset.id}/")
    assert response.status_code == 409 and "cancel it first" in response.json()["error"]
    page = web_client(alice).post(f"/datasets/{dataset.id}/delete/", follow=True)
    assert "Not deleted" in page.content.decode() and dataset.path.is_file()


def test_the_project_page_rounds_the_step_and_tells_same_named_uploads_apart(project, alice):
    first = make_dataset(project, alice, pixel_nm=200.00000000001705)
    second = make_dataset(project, alice)
    parsing = make_dataset(project, alice, status="parsing")
    parsing.shape = None
    parsing.save()
    html = web_client(alice).get(f"/projects/{project.id}/").content.decode()
    assert "200.00000000001705" not in html and ">200<" in html
    assert f"#{first.id}" in html and f"#{second.id}" in html  # both called scan.h5
    assert "None" not in html and "reading…" in html


@pytest.mark.django_db(transaction=True)  # the parse task closes and reopens the connection
def test_the_demo_is_named_after_what_it_holds_and_its_counts_agree(django_user_model):
    from django.core.management import call_command

    call_command("demo_setup")
    dataset = Dataset.objects.get()
    assert dataset.status == "ready", dataset.error
    assert sorted(dataset.elements) == ["Cr_K", "P_K", "S_K", "Si_K"]
    project = dataset.project
    assert "Fe aggregate" not in project.name
    assert all(el.split("_")[0] in project.name for el in dataset.elements)
    html = web_client(django_user_model.objects.get(username="demo")).get("/").content.decode()
    assert "<td>1</td><td>4</td>" in html  # one upload, four element maps, as the README says


def test_a_result_asked_for_without_a_format_comes_in_the_jobs_own(project, alice, tiny_model):
    tiff_job = make_finished_job(make_dataset(project, alice), tiny_model, alice,
                                 formats=("tiff", "png"))
    response = api_client(alice).get(f"/api/v1/jobs/{tiff_job.id}/result/")
    assert response.status_code == 200 and response["Content-Disposition"].endswith('-tiff.zip"')
    h5_job = make_finished_job(make_dataset(project, alice), tiny_model, alice,
                               formats=("h5", "tiff", "png"))
    response = api_client(alice).get(f"/api/v1/jobs/{h5_job.id}/result/")
    assert response.status_code == 200 and response["Content-Disposition"].endswith('.h5"')


def test_the_enhance_form_tells_the_shipped_models_apart_by_what_they_were_made_for(
        project, alice):
    from xrfweb.registry.models import EnhancementModel

    dataset = make_dataset(project, alice, pixel_nm=50.0)
    html = web_client(alice).get(f"/datasets/{dataset.id}/enhance/").content.decode()
    a, c = (EnhancementModel.objects.get(name=n) for n in ("protocol-a", "protocol-c"))
    assert a.made_for != c.made_for and "low dose" in c.made_for and "1000 counts" in a.made_for
    assert a.made_for in html and c.made_for in html
