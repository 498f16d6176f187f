"""Real browser journeys (Debian's Chromium via Playwright) against the live server and a real
Celery worker process: sign in, upload the HXN TIFF set, look at the maps, enhance with a tiny
approved model, watch the progress bar move, review before/after, draw a line profile, zoom,
download. Screenshots go to test-artifacts/ (git-ignored)."""
import os
import re
from pathlib import Path

import pytest

from enhancer.formats import read_map
from tests.conftest import PASSWORD, make_tiny_model
from tests.formats_fixtures import HXN_ELEMENTS, write_hxn_zip

# Playwright's sync API runs an event loop in this thread; Django's ORM calls made from the test
# (fixtures, asserts) must not be refused for it.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.django_db(transaction=True)
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SECONDS = 1000  # Playwright counts milliseconds


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    # bypass_csp: Playwright evaluates wait_for_function's string predicates with eval, which the
    # site's Content-Security-Policy forbids; test_security_browser.py checks pages with it on.
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True,
                                  bypass_csp=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def sign_in(page, base, username="alice"):
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button, main input[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def trace_values(page, selector, trace=0):
    """How many z values the Plotly trace in `selector` holds, and how many are finite."""
    return page.evaluate("""([sel, i]) => {
        const gd = document.querySelector(sel);
        const z = gd && gd.data && gd.data[i] && gd.data[i].z;
        if (!z) return [0, 0];
        let n = 0, finite = 0;
        for (const row of z) for (const v of row) { n++; if (Number.isFinite(v)) finite++; }
        return [n, finite];
    }""", [selector, trace])


def drag(page, selector, start, end, steps=8):
    """Press, move and release the mouse across a plot's drag layer; start/end as fractions."""
    box = page.locator(f"{selector} .nsewdrag").first.bounding_box()
    x = lambda f: box["x"] + f * box["width"]  # noqa: E731
    y = lambda f: box["y"] + f * box["height"]  # noqa: E731
    page.mouse.move(x(start[0]), y(start[1]))
    page.mouse.down()
    page.mouse.move(x(end[0]), y(end[1]), steps=steps)
    page.mouse.up()


def test_upload_enhance_and_review_a_tiff_set(page, live_server, celery_worker_process, alice,
                                             project, tmp_path):
    from django.conf import settings

    from xrfweb.celery import app
    from xrfweb.jobs.models import Job
    from xrfweb.review import data as review_data

    worker, base = celery_worker_process, live_server.url
    model = make_tiny_model("tiny-x2", pixel_nm=25.0, scale=2)
    ARTIFACTS.mkdir(exist_ok=True)
    upload = tmp_path / "hxn.zip"
    write_hxn_zip(upload)

    sign_in(page, base)
    page.goto(f"{base}/projects/{project.id}/")
    page.set_input_files("#upload input[type=file]", str(upload))
    page.fill("#upload input[name=pixel_nm]", "50")
    page.click("#upload button")
    page.wait_for_selector("#datasets td.status.ready", timeout=120 * SECONDS)

    # The dataset page: one heatmap per element, holding the whole 160 x 160 map.
    page.click("#datasets a:has-text('hxn.zip')")
    page.wait_for_function("document.querySelectorAll('#grid .js-plotly-plot').length === 4",
                           timeout=60 * SECONDS)
    assert trace_values(page, "#grid .js-plotly-plot") == [160 * 160, 160 * 160]
    titles = page.eval_on_selector_all("#grid .gtitle", "els => els.map(e => e.textContent)")
    assert titles == HXN_ELEMENTS
    page.select_option("select[data-setting=log]", "log")
    page.wait_for_function("document.querySelector('#grid .js-plotly-plot').data[0].customdata")
    page.select_option("select[data-setting=units]", "px")
    page.wait_for_function("document.querySelector('#grid .xtitle').textContent === 'x (pixels)'")
    page.screenshot(path=str(ARTIFACTS / "dataset-page.png"), full_page=True)

    # Enhance while the worker is held back, so the page shows the job queued, then moving.
    app.control.cancel_consumer(settings.GPU_QUEUE, destination=[worker.nodename], reply=True)
    try:
        page.click("a.button:has-text('Enhance')")
        page.fill("#id_probe_fwhm_nm", "80")  # the page asks for the probe: the file does not say
        page.click("#physics-form button")
        page.wait_for_selector("#physics-probe:has-text('80 nm')")
        page.check(f"input[name=model][value='{model.id}']")  # not a shipped model: tiny, fast
        page.click("button:has-text('Start enhancement')")
        page.wait_for_url(re.compile(r".*/jobs/\d+/$"))  # the job's own page, not the list
        job = Job.objects.latest("id")
        assert job.model_id == model.id and page.url == f"{base}/jobs/{job.id}/"
        page.wait_for_function("document.getElementById('status').textContent === 'queued'")
        page.evaluate("window.sameDocument = true")  # gone if the page reloads
        assert page.eval_on_selector("#progress", "p => p.value") == 0
    finally:
        app.control.add_consumer(settings.GPU_QUEUE, destination=[worker.nodename], reply=True)
    seen = []
    for _ in range(1800):  # up to 3 minutes, every 0.1 s
        state = page.evaluate("[document.getElementById('status').textContent,"
                              " document.getElementById('progress').value]")
        if not seen or seen[-1] != state:
            seen.append(state)
        if state[0] in ("succeeded", "failed", "cancelled"):
            break
        page.wait_for_timeout(100)
    assert seen[-1] == ["succeeded", 1], (seen, worker.log_tail())
    assert seen[0] == ["queued", 0] and len(seen) >= 3, seen  # queued, running..., succeeded
    assert page.evaluate("window.sameDocument") is True
    job.refresh_from_db()  # the worker prepared the review before it marked the job succeeded
    summary = review_data.job_folder(job) / "summary.json"
    assert summary.stat().st_mtime <= job.finished.timestamp(), worker.log_tail()

    # Before and after drawn with their data: 160 x 160 input, 320 x 320 result sent at 2 x 2.
    page.wait_for_function("document.querySelector('#after').data", timeout=120 * SECONDS)
    page.wait_for_function("document.querySelector('#difference').data")
    assert trace_values(page, "#before") == [160 * 160, 160 * 160]
    assert trace_values(page, "#after") == [160 * 160, 160 * 160]
    assert trace_values(page, "#difference")[0] == 160 * 160
    rows = page.eval_on_selector_all("#numbers tr", "trs => trs.map(t => t.cells[0].textContent)")
    assert rows[1:] == HXN_ELEMENTS

    # A line profile: draw on the enhanced map, both profiles appear.
    page.check("input[name=tool][value=line]")
    drag(page, "#after", (0.2, 0.3), (0.8, 0.6))
    page.wait_for_function("document.querySelector('#profile').data?.length === 2",
                           timeout=30 * SECONDS)
    lengths = page.evaluate("document.querySelector('#profile').data.map(t => t.y.length)")
    assert lengths[0] > 10 and lengths[1] > lengths[0]  # the fine grid samples more points
    assert page.evaluate("document.querySelector('#before').layout.shapes"
                         ".some(s => s.type === 'line' && s.name !== 'scale bar')")
    # A second, shorter line replaces the first (one line, one pair of profiles at a time).
    drag(page, "#after", (0.3, 0.7), (0.45, 0.8))  # away from the first line
    page.wait_for_function(f"document.querySelector('#profile').data[1].y.length < {lengths[1]}",
                           timeout=30 * SECONDS)
    lines = "s => s.filter(x => x.type === 'line' && x.name !== 'scale bar').length"
    page.wait_for_function(f"({lines})(document.querySelector('#after').layout.shapes) === 1")

    page.screenshot(path=str(ARTIFACTS / "job-page.png"), full_page=True)

    # Zoom on the enhanced map: the window comes at full resolution and "before" follows.
    page.check("input[name=tool][value=zoom]")
    drag(page, "#after", (0.3, 0.3), (0.5, 0.5))
    page.wait_for_function("""() => {
        const a = document.querySelector('#after'), b = document.querySelector('#before');
        const ar = a._fullLayout.xaxis.range, br = b._fullLayout.xaxis.range;
        return a.data[0].x.length < 100 && Math.abs(ar[0] - br[0]) < 1e-6 && Math.abs(ar[1] - br[1]) < 1e-6;
    }""", timeout=30 * SECONDS)
    page.screenshot(path=str(ARTIFACTS / "job-page-zoomed.png"), full_page=True)

    with page.expect_download() as info:
        page.click("#downloads a:has-text('TIFF')")
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    enhanced = read_map(saved)
    assert enhanced.shape == (4, 320, 320)


def test_model_and_comparison_pages_draw_their_plots(page, live_server, alice):
    from tests.test_review_models import BENCH, HISTORY, with_bundle_config

    model = make_tiny_model("tiny-model-page", pixel_nm=25.0, scale=2)
    with_bundle_config(model, training={"history": HISTORY}, benchmark=BENCH)
    base = live_server.url
    sign_in(page, base)
    page.goto(f"{base}/models/{model.id}/")
    page.wait_for_function("document.querySelectorAll('#example-maps .js-plotly-plot').length === 6"
                           " && document.querySelector('#frc').data", timeout=120 * SECONDS)
    assert trace_values(page, "#example-maps .js-plotly-plot") == [128 * 128, 128 * 128]
    assert page.evaluate("document.querySelector('#frc').data.length") == 5  # 4 methods + 1/7
    assert page.evaluate("document.querySelector('#quality').data[0].y") == [28.9, 29.6]
    bars = page.evaluate("document.querySelector('#bench-bars').data.map(t => [t.name, t.y])")
    assert bars == [["input", [24.1]], ["network", [30.2]]]
    assert "Protocol case B" in page.text_content("#benchmark")
    page.screenshot(path=str(ARTIFACTS / "model-page.png"), full_page=True)

    page.goto(f"{base}/models/compare/maps/?models={model.id}")
    page.wait_for_function("document.querySelectorAll('#compare-maps .js-plotly-plot').length === 5",
                           timeout=120 * SECONDS)
    methods = page.eval_on_selector_all("#compare-table tr td:first-child",
                                        "tds => tds.map(t => t.textContent)")
    assert methods == ["input (bicubic)", "Wiener (oracle)", "Richardson-Lucy (oracle)",
                       "tiny-model-page"]
    page.screenshot(path=str(ARTIFACTS / "compare-page.png"), full_page=True)
