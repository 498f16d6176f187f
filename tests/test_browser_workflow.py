"""Issue 18 in a real browser (Debian's Chromium via Playwright) against the live server: the
training page and the jobs list poll only while something runs and show errors; the project page
styles a refused upload and deletes with a confirmation; no page asks for a missing favicon;
the model curves' axes read right. Fixtures and helpers are test_browser_review's."""
import re

import pytest
from django.utils import timezone

from tests.conftest import make_dataset, make_finished_job, make_tiny_model
from tests.test_browser_review import SECONDS, browser, page, sign_in  # noqa: F401 (fixtures)
from xrfweb.jobs.models import Job
from xrfweb.projects.models import Dataset

pytestmark = pytest.mark.django_db(transaction=True)
DATE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$")


def count_requests(page, pattern):
    seen = []
    page.on("request", lambda r: seen.append(r.url) if re.search(pattern, r.url) else None)
    return seen


def test_the_training_page_draws_links_the_model_and_stops_polling(page, live_server, staff):
    model = make_tiny_model("freshly-trained", status="draft")
    job = Job.objects.create(kind="train", status="succeeded", progress=1.0, created_by=staff,
                             model=model, params={"name": "freshly-trained"},
                             started=timezone.now(), finished=timezone.now(),
                             curves=[{"step": s, "loss": 1 / s, "val_psnr": 20 + s}
                                     for s in (1, 2, 3)])
    sign_in(page, live_server.url, "staff")
    polls = count_requests(page, r"/jobs/\d+/status\.json")
    page.goto(f"{live_server.url}/models/training/{job.id}/")
    page.wait_for_function("document.querySelector('#curves').data?.length === 2")
    assert page.is_visible(f"#new-model a[href='/models/{model.id}/']")
    assert page.locator("#cancel").count() == 0 and page.locator("text=Cancel training").count() == 0
    page.wait_for_timeout(4000)
    assert len(polls) == 1, polls  # finished: asked once, then quiet
    dtick = page.evaluate("document.querySelector('#curves').layout.xaxis.dtick")
    assert dtick >= 1 and dtick == int(dtick)  # no tick at step 0.5


def test_a_running_job_is_polled_ever_more_slowly_and_errors_show(page, live_server, alice,
                                                                 project, tiny_model):
    dataset = make_dataset(project, alice)
    Job.objects.create(kind="enhance", status="running", created_by=alice, project=project,
                       dataset=dataset, model=tiny_model, started=timezone.now())
    sign_in(page, live_server.url)
    polls = count_requests(page, r"/jobs/status\.json")
    page.goto(f"{live_server.url}/jobs/")
    page.wait_for_timeout(7000)
    assert 2 <= len(polls) <= 5, polls  # nothing changed: 1 s, 1.5 s, 2.25 s, ... not every second
    cells = page.eval_on_selector_all("#jobs tbody tr:first-child td", "tds => tds.map(t => t.textContent.trim())")
    assert cells[2] == "scan.h5" and cells[3] == tiny_model.name and cells[4] == project.name
    assert DATE.match(cells[9]), cells
    page.route(re.compile(r".*/jobs/status\.json"), lambda route: route.fulfill(status=500, body="boom"))
    page.reload()
    page.wait_for_selector("#poll-error:not([hidden])", timeout=10 * SECONDS)
    assert "Could not refresh" in page.text_content("#poll-error")


def test_the_jobs_list_stops_polling_when_nothing_runs_and_uses_one_date_format(
        page, live_server, alice, project, tiny_model):
    job = make_finished_job(make_dataset(project, alice), tiny_model, alice)
    Job.objects.filter(id=job.id).update(started=timezone.now(), finished=timezone.now())
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/jobs/")
    served = page.text_content("#jobs tbody tr td:nth-child(10)").strip()
    polls = count_requests(page, r"/jobs/status\.json")
    page.reload()
    page.wait_for_timeout(3500)
    assert len(polls) == 1, polls
    shown = page.text_content("#jobs tbody tr td:nth-child(10)").strip()
    assert DATE.match(served) and shown == served  # the server's and the page's dates agree


def test_the_project_page_refuses_in_red_and_deletes_after_asking(page, live_server, alice,
                                                                  project, tmp_path):
    dataset = make_dataset(project, alice, name="keep-or-delete.h5")
    bad = tmp_path / "notes.txt"
    bad.write_text("not a map")
    errors404 = []
    page.on("response", lambda r: errors404.append(r.url) if r.status == 404 else None)
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/projects/{project.id}/")
    page.set_input_files("#upload input[type=file]", str(bad))
    page.click("#upload button")
    page.wait_for_selector("#upload-status.error", timeout=30 * SECONDS)
    assert "Refused" in page.text_content("#upload-status")
    assert page.is_hidden("#upload-progress")

    page.once("dialog", lambda d: d.dismiss())  # "no": nothing happens
    page.click(f"tr[data-id='{dataset.id}'] button:has-text('Delete')")
    page.wait_for_timeout(500)
    assert Dataset.objects.filter(id=dataset.id).exists()
    questions = []
    page.once("dialog", lambda d: (questions.append(d.message), d.accept()))
    page.click(f"tr[data-id='{dataset.id}'] button:has-text('Delete')")
    page.wait_for_selector("text=Deleted keep-or-delete.h5")
    assert "keep-or-delete.h5" in questions[0] and "cannot be undone" in questions[0]
    assert not Dataset.objects.filter(id=dataset.id).exists() and not dataset.path.exists()
    assert not errors404, errors404  # the favicon among them


def test_the_model_curves_read_right(page, live_server, alice):
    from tests.test_review_models import BENCH, HISTORY, with_bundle_config

    model = make_tiny_model("curves-model", pixel_nm=25.0, scale=2)
    with_bundle_config(model, training={"history": HISTORY}, benchmark=BENCH)
    errors404 = []
    page.on("response", lambda r: errors404.append(r.url) if r.status == 404 else None)
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/models/{model.id}/")
    page.wait_for_function("document.querySelector('#quality').layout", timeout=60 * SECONDS)
    layout = page.evaluate("""(() => { const l = document.querySelector('#quality')._fullLayout;
        return {dtick: l.xaxis.dtick, ssimTop: l.yaxis2.range[1], legendY: l.legend.y}; })()""")
    assert layout["dtick"] >= 1 and layout["ssimTop"] <= 1.0 and layout["legendY"] >= 1, layout

    # The compare page's right axis: a few labels, not a pile; model names on one line.
    Job.objects.create(kind="train", status="succeeded", created_by=alice, model=model,
                       params={"name": model.name},
                       curves=[{"step": s, "loss": 1 / s, "val_psnr": 20 + s / 7} for s in range(1, 300)])
    page.goto(f"{live_server.url}/models/compare/?ids={model.id}")
    page.wait_for_function("document.querySelector('#curves')._fullLayout?.yaxis2")
    overlaps = page.evaluate("""(() => {
        const r = [...document.querySelectorAll('#curves .y2tick text')].map(t => t.getBoundingClientRect())
            .sort((a, b) => a.top - b.top);
        return r.length > 1 ? r.slice(1).filter((b, i) => b.top < r[i].bottom).length : -1; })()""")
    assert overlaps == 0  # labels exist, and none sits on another
    assert page.evaluate("getComputedStyle(document.querySelector('th.nowrap')).whiteSpace") == "nowrap"
    assert not errors404, errors404


def test_the_enhance_form_keeps_its_boxes_narrow_and_names_on_one_line(page, live_server, alice,
                                                                        project, tiny_model):
    make_dataset(project, alice)
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/datasets/{Dataset.objects.get().id}/enhance/")
    width = page.evaluate("document.querySelector('input[name=ensemble]').getBoundingClientRect().width")
    assert width < 250, width  # the ensemble box no longer spans the page
    assert page.evaluate("getComputedStyle(document.querySelector('#enhance-form td.nowrap')).whiteSpace") == "nowrap"


def test_staff_approve_with_a_stated_reason_and_retire_after_confirming(page, live_server, staff):
    from tests.test_approval import WORSE

    model = make_tiny_model("needs-a-reason", status="draft")
    model.benchmark = WORSE
    model.save()
    sign_in(page, live_server.url, "staff")
    page.goto(f"{live_server.url}/models/{model.id}/")
    assert "-1.50 dB" in page.text_content("#benchmark-verdict")
    asked, answer = [], {"yes": True}
    page.on("dialog", lambda d: (asked.append(d.message), d.accept() if answer["yes"] else d.dismiss()))
    page.click("#approve-form button")  # no reason: refused, and the page says why
    page.wait_for_selector("text=loses to its own input")
    model.refresh_from_db()
    assert model.status == "draft" and asked[0].startswith("Approve needs-a-reason?")
    page.fill("#approve-form textarea[name=reason]", "better on our test grid scans")
    page.click("#approve-form button")
    page.wait_for_selector("text=is now approved")
    model.refresh_from_db()
    assert model.status == "approved" and model.approval_reason == "better on our test grid scans"
    assert "better on our test grid scans" in page.text_content("main")

    answer["yes"] = False  # "no" to retiring: nothing changes
    page.click("button:has-text('Retire')")
    page.wait_for_timeout(500)
    model.refresh_from_db()
    assert model.status == "approved" and asked[-1].startswith("Retire needs-a-reason?")
    answer["yes"] = True
    page.click("button:has-text('Retire')")
    page.wait_for_selector("text=is now retired")
    model.refresh_from_db()
    assert model.status == "retired"
