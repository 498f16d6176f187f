"""Issue 16 in a real browser (Debian's Chromium via Playwright, a live server and a real Celery
worker): upload a TIFF set that states no step, be asked for the step and probe on the enhance
page, state them, enhance with the model for any probe and step, and see the physics the job ran
with on its page."""
import os

import pytest

from tests.test_browser_review import ARTIFACTS, SECONDS, browser, page, sign_in  # noqa: F401
from tests.formats_fixtures import write_hxn_zip

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
pytestmark = pytest.mark.django_db(transaction=True)


def universal_model():
    """The shipped `universal` model where it is registered, else a tiny conditioned network of
    the same kind (random weights, the same conditions), so the journey runs before it ships."""
    from enhancer.bundle import load_bundle, save_bundle
    from enhancer.network import ResidualEnhancer
    from enhancer.universal import CONDITION_CHANNELS, conditions_config
    from xrfweb.paths import models_dir
    from xrfweb.registry.models import EnhancementModel

    shipped = EnhancementModel.objects.filter(name="universal", status="approved").first()
    if shipped:
        return shipped
    folder = save_bundle(models_dir() / "universal-tiny", ResidualEnhancer(1, 1, 4, CONDITION_CHANNELS),
                         {"name": "universal-tiny", "elements": "any", "conditions": conditions_config()})
    return EnhancementModel.objects.create(name="universal-tiny", status="approved", source="uploaded",
                                           folder="universal-tiny", config=load_bundle(folder).config)


def test_a_map_without_a_step_is_asked_for_its_physics_and_enhanced_with_them(
        page, live_server, celery_worker_process, alice, project, tmp_path):  # noqa: F811
    from xrfweb.jobs.models import Job

    base, model = live_server.url, universal_model()
    upload = tmp_path / "hxn.zip"
    write_hxn_zip(upload)
    sign_in(page, base)
    page.goto(f"{base}/projects/{project.id}/")
    page.set_input_files("#upload input[type=file]", str(upload))  # no step, no probe
    page.click("#upload button")
    page.wait_for_selector("#datasets td.status.ready", timeout=120 * SECONDS)
    row = page.locator("#datasets tr", has_text="hxn.zip")
    assert row.locator("td").nth(4).text_content() == "unknown"  # the step: never assumed
    assert row.locator("td").nth(5).text_content() == "unknown"  # the probe

    # The enhance page asks for both and will not start.
    page.click("a.button:has-text('Enhance')")
    assert page.text_content("#physics-step") == "unknown"
    assert "state them above" in " ".join(page.text_content("#physics-needed").split())
    assert page.is_disabled("button:has-text('Start enhancement')")
    assert page.is_disabled(f"input[name=model][value='{model.id}']")

    # Stated right there: 50 nm steps, an elliptical 40 x 60 nm probe (x along columns).
    page.fill("#id_pixel_nm", "50")
    page.fill("#id_probe_fwhm_nm", "40,60")
    page.click("#physics-form button")
    page.wait_for_selector("#physics-step:has-text('50 nm')")
    assert "40 × 60 nm" in page.text_content("#physics-probe")
    assert "counts at the peak" in page.text_content("#physics-dose")
    assert page.locator("#physics-needed").count() == 0
    fit_text = page.text_content(f"tr[data-model='{model.name}'] td.fit")
    assert fit_text.startswith("fits: scale 3"), fit_text  # the probe nearest 3 output pixels
    assert page.is_checked(f"input[name=model][value='{model.id}']")  # the best fitting, chosen
    page.screenshot(path=str(ARTIFACTS / "enhance-physics.png"), full_page=True)
    page.click("button:has-text('Start enhancement')")
    job = page.wait_for_url(lambda url: "/jobs/" in url) or Job.objects.latest("id")
    assert job.model_id == model.id
    assert page.url == f"{base}/jobs/{job.id}/"  # the job's own page (issue 18)
    page.wait_for_function("['succeeded', 'failed'].includes(document.getElementById('status').textContent)",
                           timeout=240 * SECONDS)
    assert page.text_content("#status") == "succeeded", celery_worker_process.log_tail()
    physics = " ".join(page.text_content("#job-physics").split())
    assert "scan step 50 nm" in physics and "probe FWHM 40 × 60 nm" in physics
    assert "scale 3 (output pixel 16.67 nm)" in physics and "counts at the peak (estimated from the data)" in physics
    # The universal model's fit to the data after the network, per element, beside the numbers.
    page.wait_for_selector("#numbers th:has-text('Data step')")
    cells = page.eval_on_selector_all("#numbers td.data-step", "tds => tds.map(t => t.textContent)")
    assert len(cells) == len(job.dataset.elements) and all("iteration" in c and "χ²" in c and "→" in c for c in cells), cells
    page.screenshot(path=str(ARTIFACTS / "job-physics.png"), full_page=True)
    job.refresh_from_db()
    assert job.params["scan_step_nm"] == [50.0, 50.0] and job.params["probe_fwhm_nm"] == [40.0, 60.0]
    assert job.params["scale"] == 3
