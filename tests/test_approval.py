"""Issue 18, defect 4: a model is approved only past the benchmark for its own condition (run by a
real worker), or by staff stating a reason, which is recorded; the compare table puts models
side by side only on the cases they were both measured on."""
import pytest

from tests.conftest import api_client, make_tiny_model, web_client
from xrfweb.registry.models import EnhancementModel

WORSE = {"status": "done", "verdict": "worse", "cases": ["A"], "set": "held-out phantoms",
         "gain_input_db": -1.5, "gain_rl_db": -3.0,
         "summary": {"A": {"input": {"psnr": 25.0}, "rl_oracle": {"psnr": 26.5},
                           "network": {"psnr": 23.5}}}}
BETTER = {**WORSE, "verdict": "better", "gain_input_db": 4.0, "gain_rl_db": 2.5,
          "summary": {"A": {"input": {"psnr": 25.0}, "rl_oracle": {"psnr": 26.5},
                            "network": {"psnr": 29.0}}}}


@pytest.mark.django_db
def test_approval_needs_a_passing_benchmark_or_a_recorded_reason(staff):
    model = make_tiny_model("loser", status="draft")
    api = api_client(staff)
    response = api.post(f"/api/v1/models/{model.id}/status/", {"status": "approved"}, format="json")
    assert response.status_code == 400 and "has not been run" in response.json()["error"]
    model.benchmark = WORSE
    model.save()
    response = api.post(f"/api/v1/models/{model.id}/status/", {"status": "approved"}, format="json")
    assert response.status_code == 400 and "loses to its own input by 1.50 dB" in response.json()["error"]
    model.refresh_from_db()
    assert model.status == "draft"
    response = api.post(f"/api/v1/models/{model.id}/status/",
                        {"status": "approved", "reason": "sharper on the beamline's test grid"},
                        format="json")
    assert response.status_code == 200, response.content
    model.refresh_from_db()
    assert model.status == "approved" and model.approved_by == staff and model.approved_at
    assert model.approval_reason == "sharper on the beamline's test grid"
    page = web_client(staff).get(f"/models/{model.id}/").content.decode()
    assert "sharper on the beamline" in page and "-1.50 dB" in page


@pytest.mark.django_db
def test_a_model_that_beats_its_input_is_approved_without_a_reason(staff):
    model = make_tiny_model("winner", status="draft")
    model.benchmark = BETTER
    model.save()
    assert api_client(staff).post(f"/api/v1/models/{model.id}/status/", {"status": "approved"},
                                  format="json").status_code == 200
    model.refresh_from_db()
    assert model.status == "approved" and model.approval_reason == ""


@pytest.mark.django_db
def test_the_compare_table_compares_models_on_the_same_cases(staff):
    a = make_tiny_model("on-a", status="draft")
    b = make_tiny_model("on-a-too", status="draft")
    c = make_tiny_model("never-run", status="draft")
    a.benchmark, b.benchmark = WORSE, BETTER
    a.save()
    b.save()
    html = web_client(staff).get(f"/models/compare/?ids={a.id}&ids={b.id}&ids={c.id}").content.decode()
    assert "Case A: gain over the input (dB)" in html
    assert "<td>-1.50</td><td>4.00</td><td>–</td>" in html
    assert "Validation PSNR" not in html


@pytest.mark.django_db(transaction=True)
def test_the_benchmark_runs_on_the_worker_and_refuses_a_model_no_better_than_its_input(
        celery_worker_process, staff):
    # Made for case A (50 nm step, 200 nm probe, same grid): an untrained network.
    model = make_tiny_model("untrained-a", status="draft", pixel_nm=50.0, scale=1,
                            probe_fwhm_nm=200.0)
    page = web_client(staff)
    assert page.post(f"/models/{model.id}/benchmark/").status_code == 302
    model.refresh_from_db()
    assert model.benchmark["status"] in ("queued", "running", "done")  # the request did not run it
    celery_worker_process.wait_for(
        lambda: EnhancementModel.objects.get(id=model.id).benchmark.get("status") in ("done", "failed"),
        600, "the approval benchmark")
    model.refresh_from_db()
    b = model.benchmark
    assert b["status"] == "done" and b["cases"] == ["A"], b
    assert b["gain_input_db"] <= 0 and b["verdict"] == "worse"
    assert set(b["summary"]["A"]) >= {"input", "rl_oracle", "network"}
    page.post(f"/models/{model.id}/status/", {"status": "approved"})
    model.refresh_from_db()
    assert model.status == "draft"
