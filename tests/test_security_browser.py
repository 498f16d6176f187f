"""Security in the pages (issue 21), in Debian's Chromium against the live server (and a real
worker where a job must run): the Content-Security-Policy runs no inline script, strings from a
model bundle and element names from an upload are shown as text, never as markup."""
import csv
import io
import json
import time

import pytest

from tests.conftest import make_tiny_model
from tests.reliability.corpus import MARKUP_NAMES, XSS, markup_in_every_string
from tests.reliability.helpers import record
from tests.test_browser_job_review import downloaded_text
from tests.test_browser_review import SECONDS, browser, drag, page, sign_in  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
# XSS runs only if markup became live: a page that shows it as text never sets window.__xss.
LINK = MARKUP_NAMES[0]
FORMULA = '=HYPERLINK("https://evil.example/","Fe, Zn")'
WATCH_CSP = ("window.__csp = []; document.addEventListener('securitypolicyviolation', "
             "(e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")


def violations(page):
    return page.evaluate("window.__csp")


@pytest.fixture
def csp_page(browser):  # noqa: F811  (a fixture)
    """A page with the site's CSP in force (the `page` fixture bypasses it for Playwright)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.add_init_script(WATCH_CSP)
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def wait_js(page, expression, timeout=60):
    """Poll a JavaScript expression from here (wait_for_function's predicates need eval)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.2)


def test_pages_run_no_inline_script_under_the_csp(csp_page, live_server, staff):
    from django.test import Client

    from tests.conftest import make_finished_job
    from tests.reliability import work
    from tests.test_review_models import BENCH, HISTORY, with_bundle_config
    from xrfweb.jobs.models import Job
    from xrfweb.projects.models import Project

    model = make_tiny_model("csp-model", pixel_nm=25.0, scale=2)
    with_bundle_config(model, training={"history": HISTORY}, benchmark=BENCH)
    project = Project.objects.create(name="csp", owner=staff)
    dataset = work.ready_dataset(project, staff)
    queued = Job.objects.create(kind="enhance", created_by=staff, project=project,
                                dataset=dataset, model=model)
    finished = make_finished_job(dataset, model, staff)  # its page prefetches the review
    training = Job.objects.create(kind="train", created_by=staff, params={"name": "csp"})
    header = Client().get("/accounts/login/")["Content-Security-Policy"]
    policy = dict(d.strip().split(" ", 1) for d in header.split(";") if d.strip())
    assert policy["script-src"] == "'self'" and "unsafe" not in policy["script-src"], header
    assert "object-src" in policy and "base-uri" in policy

    page = csp_page
    base = live_server.url
    sign_in(page, base, "staff")
    for path in ["/", f"/projects/{project.id}/", f"/datasets/{dataset.id}/", "/jobs/",
                 f"/jobs/{queued.id}/", f"/jobs/{finished.id}/", "/models/",
                 f"/models/{model.id}/", f"/models/compare/?models={model.id}",
                 f"/models/training/{training.id}/", "/models/upload/", "/admin/",
                 "/api/docs/"]:
        page.goto(base + path)
        page.wait_for_load_state("load")
        page.wait_for_timeout(500)  # the page's own requests and drawing
        assert violations(page) == [], (path, violations(page))
    assert page.locator(".swagger-ui").count() == 1  # the API docs still start (no inline script)

    page.goto(f"{base}/models/{model.id}/")  # the page still starts, from app.js
    wait_js(page, "document.querySelector('#quality').data")
    # A missed escape: markup put into the page does not run.
    page.evaluate(f"document.body.insertAdjacentHTML('beforeend', {json.dumps(XSS)})")
    wait_js(page, "window.__csp.length > 0", 10)
    assert page.evaluate("window.__xss") is None
    assert any("script-src" in v for v in violations(page)), violations(page)
    record("browser", "every page type in Chromium, then an injected <img onerror>",
           f"Content-Security-Policy: {header}; no violation while the pages start; the "
           "injected handler is blocked")


def test_model_page_shows_bundle_strings_as_text(page, live_server, alice):  # noqa: F811
    from tests.test_review_models import BENCH, HISTORY, with_bundle_config

    model = make_tiny_model("tiny-hostile-strings", pixel_nm=25.0, scale=2)
    with_bundle_config(model, training={"history": HISTORY},
                       benchmark=markup_in_every_string({**BENCH, "machine": "a laptop"}))
    typed = make_tiny_model("tiny-hostile-number", pixel_nm=25.0, scale=2)
    bad = json.loads(json.dumps(BENCH))
    bad["protocol"]["scale"] = XSS  # the reported hole: a number field holding markup
    with_bundle_config(typed, benchmark=bad)

    base = live_server.url
    sign_in(page, base)
    page.goto(f"{base}/models/{model.id}/")
    page.wait_for_function("document.querySelector('#bench-bars').data", timeout=60 * SECONDS)
    assert page.evaluate("window.__xss") is None
    assert page.locator("#benchmark img, #benchmark a, #bench-bars a").count() == 0
    shown = page.text_content("#benchmark")
    assert XSS + "B" in shown and XSS + "held-out phantoms" in shown and XSS + "a laptop" in shown
    legend = page.eval_on_selector_all("#bench-bars .legendtext", "els => els.map(e => e.textContent)")
    assert XSS + "input" in legend, legend

    page.goto(f"{base}/models/{typed.id}/")
    page.wait_for_function("document.querySelector('#training-status').textContent.includes("
                           "'benchmark.protocol.scale')", timeout=60 * SECONDS)
    assert page.evaluate("window.__xss") is None
    record("browser", "model.json with markup in every string field, and in benchmark.protocol.scale",
           "strings shown as text in the table, legend and ticks; the number field holding markup "
           f"is refused on load: \"{page.text_content('#training-status').strip()[:120]}\"")


def test_element_names_with_markup_stay_text_in_the_plots(page, live_server,  # noqa: F811
                                                          celery_worker_process, alice, project):

    import numpy as np

    from tests.conftest import web_client
    from tests.reliability.helpers import MULTIPART, multipart
    from xrfweb.jobs import services
    from xrfweb.jobs.models import Job
    from xrfweb.projects.models import Dataset

    names = (LINK, "<b style='color:red'>Zn</b>", FORMULA)
    buf = io.BytesIO()
    np.savez(buf, maps=np.random.default_rng(0).random((3, 24, 32)).astype(np.float32),
             elements=np.array(names), pixel_size_nm=np.array([50.0, 50.0]))
    response = web_client(alice).post(
        f"/projects/{project.id}/upload/",
        multipart({"file": (f"{XSS}.npz", buf.getvalue(), "application/octet-stream")}),
        content_type=MULTIPART)
    assert response.status_code == 201, response.content
    dataset_id = response.json()["id"]
    celery_worker_process.wait_for(
        lambda: Dataset.objects.get(id=dataset_id).status in ("ready", "rejected"), 120, "parsing")
    dataset = Dataset.objects.get(id=dataset_id)
    assert dataset.status == "ready" and tuple(dataset.elements) == names, dataset.error
    model = make_tiny_model("tiny-names", pixel_nm=25.0, scale=2)
    job = services.start_enhancement(alice, dataset, model)
    celery_worker_process.wait_for(
        lambda: Job.objects.get(id=job.id).status in ("succeeded", "failed"), 180, "the job")
    assert Job.objects.get(id=job.id).status == "succeeded", Job.objects.get(id=job.id).error

    base = live_server.url
    sign_in(page, base)
    page.goto(f"{base}/jobs/{job.id}/")
    page.wait_for_function("document.querySelector('#totals-bars').data"
                           " && document.querySelector('#after').data", timeout=120 * SECONDS)
    assert page.locator("svg a, svg b, #numbers a, #numbers b, img").count() == 0
    ticks = page.eval_on_selector_all("#totals-bars .xtick text", "els => els.map(e => e.textContent)")
    assert ticks == list(names), ticks
    title = page.text_content("#after .gtitle")
    assert title.startswith(LINK), title
    assert page.evaluate("window.__xss") is None

    # The page's own CSVs (rectangle totals, line profile): quoted cells, no formula.
    page.wait_for_function("document.getElementById('map-status').textContent === ''")
    page.check("input[name=tool][value=box]")
    drag(page, "#after", (0.2, 0.2), (0.7, 0.8))
    page.wait_for_selector("#roi tr >> nth=3", timeout=30 * SECONDS)
    rows = list(csv.reader(io.StringIO(downloaded_text(page, "#roi-csv"), newline="")))
    cells = [row[0] for row in rows[2:]]
    assert [c.lstrip("'") for c in cells] == list(names) and all(len(r) == 5 for r in rows[1:])
    assert not any(c.startswith(("=", "+", "-", "@")) for row in rows for c in row[:1]), rows
    page.select_option("#element", FORMULA)
    page.wait_for_function("document.getElementById('map-status').textContent === ''")
    page.check("input[name=tool][value=line]")
    drag(page, "#after", (0.2, 0.3), (0.8, 0.6))
    page.wait_for_function("document.querySelector('#profile').data?.length === 2",
                           timeout=30 * SECONDS)
    rows = list(csv.reader(io.StringIO(downloaded_text(page, "#profile-csv"), newline="")))
    assert len(rows[0]) == 4 and rows[0][3].startswith("'" + FORMULA), rows[0]
    assert all(len(r) == 4 for r in rows)
    record("browser", "element names with <a href> and <b style> markup and an =HYPERLINK formula, "
           "file name with <img onerror>", "tick labels, map titles and the totals table show the "
           "markup as text: no link, no style, no handler; the rectangle and profile CSVs quote "
           "every name and lead the formula with '")


def test_the_comparison_page_waits_for_a_place_then_draws(page, live_server, alice):  # noqa: F811
    """Heavy work is bounded (review/limits.py): while the site's place is taken the page is
    told 429 with Retry-After and asks again, then draws once the place is free."""
    from django.core.cache import cache

    model = make_tiny_model("tiny-wait", pixel_nm=25.0, scale=2)
    answers = []
    page.on("response", lambda r: answers.append(r.status) if "maps.json" in r.url else None)
    cache.add("heavy-work:place:0", 1, 120)  # another request is computing
    try:
        sign_in(page, live_server.url)
        page.goto(f"{live_server.url}/models/compare/maps/?models={model.id}")
        page.wait_for_function("document.querySelector('#compare-status') !== null")
        page.wait_for_timeout(4000)  # at least one wait of Retry-After
        assert answers and set(answers) == {429}, answers
        assert page.locator("#compare-maps .js-plotly-plot").count() == 0
    finally:
        cache.delete("heavy-work:place:0")
    page.wait_for_function("document.querySelectorAll('#compare-maps .js-plotly-plot').length === 5",
                           timeout=120 * SECONDS)
    assert answers[-1] == 200 and "Not compared" not in page.text_content("#compare-status")
    record("browser", "the comparison page opened while the site's place for heavy work was taken",
           f"answers {answers[:3]}... then 200: the page asked again after Retry-After and drew "
           "the maps once the place was free")
