"""The job page's review tools in Chromium (issue 18), on a real MAPS upload enhanced by a real
(tiny, perturbed) network with the worker's own writer: colour limits, before/after scaled
apart, I0 normalisation, histogram, rectangle ROI with CSV, line-profile CSV, blink, the fine-scan
suggestions and the resolution caveat; and the dataset page's linked zoom and RGB overlay."""
import csv
import io
import json
import re

import pytest

from tests.test_browser_review import SECONDS, browser, drag, page, sign_in  # noqa: F401
from tests.test_review_pages import finish_job, maps_dataset, perturbed_model  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
ELEMENTS = ["Fe", "Zn"]


@pytest.fixture
def job(maps_dataset, alice):  # noqa: F811
    return finish_job(maps_dataset[0], perturbed_model(), alice)


def zrange(page, selector):
    return page.evaluate("sel => { const t = document.querySelector(sel).data[0];"
                         " return [t.zmin, t.zmax]; }", selector)


def downloaded_text(page, click):
    with page.expect_download() as info:
        page.click(click)
    return open(info.value.path(), encoding="utf-8").read()


def test_the_job_page_tools(page, live_server, alice, job):
    sign_in(page, live_server.url)
    # A big suggestion box is added to the review, as a trust report on a smooth map gives one.
    def with_big_box(route):
        body = json.loads(route.fetch().text())
        if body["trust"].get("available"):
            body["trust"]["rois"] = [{"rank": 1, "x_um": 0.8, "y_um": 0.6, "width_um": 1.6,
                                      "height_um": 1.2, "score": 0.9, "cluster": 0}] + \
                body["trust"].get("rois", [])
        route.fulfill(json=body)
    page.route(re.compile(r".*/review\.json"), with_big_box)
    page.goto(f"{live_server.url}/jobs/{job.id}/")
    page.wait_for_function("document.querySelector('#after').data && document.querySelector('#histogram').data",
                           timeout=120 * SECONDS)

    # Before and after share one colour range; "scaled apart" gives each its own.
    shared_before, shared_after = zrange(page, "#before"), zrange(page, "#after")
    assert shared_before == shared_after
    page.check("input[data-setting=independent]")
    page.wait_for_function("(() => { const b = document.querySelector('#before').data[0],"
                           " a = document.querySelector('#after').data[0]; return b.zmax !== a.zmax; })()")
    page.uncheck("input[data-setting=independent]")

    # Percentile limits narrow the range; manual limits are taken as typed.
    page.select_option("select[data-setting=limits]", "percentile")
    page.wait_for_function(f"document.querySelector('#after').data?.[0]?.zmax < {shared_after[1]}")
    page.select_option("select[data-setting=limits]", "manual")
    page.fill("input[data-setting=vmin]", "2")
    page.fill("input[data-setting=vmax]", "7.5")
    page.press("input[data-setting=vmax]", "Enter")
    page.wait_for_function("document.querySelector('#before').data?.[0]?.zmax === 7.5")
    assert zrange(page, "#after") == [2, 7.5]
    lines = page.evaluate("document.querySelector('#histogram').layout.shapes.map(s => s.x0)")
    assert lines == [2, 7.5]  # the histogram marks the colour limits
    assert page.evaluate("document.querySelector('#histogram').data.map(t => t.type)") == ["histogram"] * 2
    page.select_option("select[data-setting=limits]", "auto")

    # I0 normalisation: the maps are divided by the chosen scaler (values ~1e4 smaller).
    page.select_option("#scaler", "US_IC")
    page.wait_for_function(f"document.querySelector('#after').data?.[0]?.zmax < {shared_after[1]} / 1000",
                           timeout=60 * SECONDS)
    assert "US_IC" in page.text_content("#map-status")
    page.select_option("#scaler", "")
    page.wait_for_function(f"document.querySelector('#after').data?.[0]?.zmax === {shared_after[1]}",
                           timeout=60 * SECONDS)
    page.wait_for_function("document.getElementById('map-status').textContent === ''")  # all drawn

    # A rectangle: every element's totals inside it, and a CSV of them.
    page.check("input[name=tool][value=box]")
    drag(page, "#after", (0.2, 0.2), (0.7, 0.8))
    page.wait_for_selector("#roi tr >> nth=2", timeout=30 * SECONDS)
    rows = page.eval_on_selector_all("#roi tr td:first-child", "tds => tds.map(t => t.textContent)")
    assert rows == ELEMENTS
    text = downloaded_text(page, "#roi-csv")
    table = list(csv.DictReader(io.StringIO(text.split("\n", 1)[1])))
    assert [r["element"] for r in table] == ELEMENTS and float(table[0]["total_before"]) > 0

    # A line profile, and its CSV.
    page.check("input[name=tool][value=line]")
    drag(page, "#after", (0.2, 0.3), (0.8, 0.6))
    page.wait_for_function("document.querySelector('#profile').data?.length === 2", timeout=30 * SECONDS)
    text = downloaded_text(page, "#profile-csv")
    sides = [line.split(",")[0] for line in text.strip().split("\n")[1:]]
    assert set(sides) == {"before", "after"} and sides.count("after") > sides.count("before")

    # Blink: the enhanced map's place shows the input in turn.
    page.check("#blink")
    page.wait_for_function("document.querySelector('#after .gtitle').textContent.includes('before (blink)')",
                           timeout=10 * SECONDS)
    page.uncheck("#blink")

    # Fine-scan suggestions: the box covering most of the map is left out, and the page says so;
    # columns are named in words and the score explained.
    trust = page.text_content("#trust-summary")
    assert "Consistency verdict" in trust  # every result carries its trust report
    assert "left out" in page.text_content("#rois-dropped")
    assert "Kind 0" not in trust and "Kind of feature" in trust
    assert "brightness" in page.get_attribute("#rois th[title*=rarity]", "title")
    # Single-image FRC is no headline: no resolution chart, a caveat beside the numbers.
    assert page.locator("#resolution-bars").count() == 0
    assert "not a measure of the enhancement" in page.text_content("#resolution-method")


def test_the_dataset_page_zooms_every_element_together_and_overlays_three(page, live_server,
                                                                          alice, maps_dataset):  # noqa: F811
    dataset = maps_dataset[0]
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/datasets/{dataset.id}/")
    page.wait_for_function("document.querySelectorAll('#grid .js-plotly-plot').length === 2",
                           timeout=60 * SECONDS)
    drag(page, "#grid .map:first-child", (0.2, 0.2), (0.5, 0.5))
    page.wait_for_function("""() => {
        const [a, b] = document.querySelectorAll('#grid .js-plotly-plot');
        const ar = a._fullLayout.xaxis.range, br = b._fullLayout.xaxis.range;
        return !a._fullLayout.xaxis.autorange && Math.abs(ar[0] - br[0]) < 1e-6 && Math.abs(ar[1] - br[1]) < 1e-6;
    }""", timeout=30 * SECONDS)

    page.select_option("[data-rgb=red]", "Fe")
    page.select_option("[data-rgb=green]", "Zn")
    page.select_option("[data-rgb=blue]", "Fe")
    page.click("#rgb-show")
    page.wait_for_function("document.querySelector('#rgb').data?.[0].type === 'image'", timeout=30 * SECONDS)
    pixel = page.evaluate("document.querySelector('#rgb').data[0].z[5][5]")
    assert len(pixel) == 3 and pixel[0] == pixel[2]  # red and blue are both Fe
    assert "red Fe" in page.text_content("#rgb .gtitle")


def test_the_job_page_validates_against_a_fine_scan_and_shows_it_when_done(page, live_server, alice, job,
                                                                          held_messages):
    """The form starts it; the page waits for the worker (here: the row changed by the test, the
    task held back) and shows the numbers and the fine scan's resolution as the headline."""
    from tests.conftest import make_dataset

    fine = make_dataset(job.project, alice, name="fine <scan>.h5", pixel_nm=12.5)
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/jobs/{job.id}/")
    page.wait_for_selector("#validate-form", state="visible", timeout=60 * SECONDS)
    assert page.inner_text("#validate-form select") == "fine <scan>.h5 (12.50 nm)"
    page.click("#validate-form button")
    page.wait_for_selector("#validation-running", timeout=30 * SECONDS)
    job.refresh_from_db()
    assert job.validation["status"] == "running" and job.validation["fine_dataset"] == fine.id
    assert held_messages == [("jobs.validate_job", (job.id,))]
    numbers = {"input": 20.0, "enhanced": 24.5, "rl": 23.0}
    job.validation = {"status": "done", "fine_dataset": fine.id, "fine_dataset_name": fine.original_name,
                      "psnr_db": numbers, "ssim": {"input": 0.5, "enhanced": 0.7, "rl": 0.6},
                      "frc_nm": {"input": 61.0, "enhanced": 38.0}, "offset_px": [4, 6], "overlap_px": [20, 30],
                      "correlation": 0.91, "pixel_nm": 25.0, "elements": ["Fe", "Zn"], "rl_probe": None}
    job.save()
    page.wait_for_selector("#validated-resolution", state="visible", timeout=60 * SECONDS)
    assert "38 nm enhanced" in page.inner_text("#validated-resolution")
    assert "fine <scan>.h5" in page.inner_text("#validated-resolution")
    assert "24.50" in page.inner_text("#validation-numbers")
    page.wait_for_function("document.getElementById('resolution-method').textContent.includes('38')",
                           timeout=60 * SECONDS)
    # The fine scan's overlap is boxed on the fine grid's maps and, scaled, on the input's.
    page.wait_for_function("document.querySelector('#after').layout?.shapes?.some(s => s.name === 'mark')"
                           " && document.querySelector('#before').layout?.shapes?.some(s => s.name === 'mark')",
                           timeout=120 * SECONDS)
    page.select_option("select[data-setting=units]", "px")
    page.wait_for_function("document.querySelector('#after').layout.xaxis.title.text.includes('pixels')")
    marks = page.evaluate("['#after', '#before'].map(sel => document.querySelector(sel).layout.shapes"
                          ".filter(s => s.name === 'mark').map(s => [s.x0, s.y0, s.x1, s.y1])[0])")
    assert marks[0] == [5.5, 3.5, 35.5, 23.5]  # rows 4..24, columns 6..36 of the fine grid
    assert marks[1] == [2.5, 1.5, 17.5, 11.5]  # the same edges on the input grid (scale 2)
