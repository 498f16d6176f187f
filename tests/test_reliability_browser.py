"""A few hostile files through the real upload form in Debian's Chromium (Playwright), against
the live server and a real worker: the page says why a file is refused, and shows the reason a
stored file was rejected; an oversize file is stopped before it is sent."""
import pytest

from tests.reliability.corpus import make_corpus
from tests.reliability.helpers import record
from tests.test_browser_review import SECONDS, browser, page, sign_in  # noqa: F401  (fixtures)
from xrfweb.projects.models import Dataset, Project

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return {c.name: c for c in make_corpus(tmp_path_factory.mktemp("corpus"), 1)}


def choose_and_send(page, path):
    page.set_input_files("#upload input[type=file]", str(path))
    page.click("#upload button[type=submit]")


def test_hostile_files_through_the_browser_form(page, live_server,  # noqa: F811  (a fixture)
                                                celery_worker_process, alice, corpus, settings):
    settings.XRFWEB_MAX_UPLOAD_MB = 1
    project = Project.objects.create(name="browser", owner=alice)
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/projects/{project.id}/")
    status = page.locator("#upload-status")

    # Refused by the server: the reason is shown next to the form.
    choose_and_send(page, corpus["svg_named.h5"].path)
    # the status shows progress ("100 % of 0.0 MB") until the server's answer replaces it
    page.wait_for_function("(t => t.length > 0 && !t.includes('% of'))"
                           "(document.querySelector('#upload-status').textContent)", timeout=30 * SECONDS)
    assert "not a file xrfweb reads" in status.text_content()
    refused = status.text_content()

    # Oversize: the page stops it before sending a byte.
    choose_and_send(page, corpus["oversize_declared.h5"].path)
    page.wait_for_function("document.querySelector('#upload-status').textContent"
                           ".includes('upload limit')", timeout=10 * SECONDS)
    assert not Dataset.objects.exists()

    # Stored, then rejected by the parser: the table shows the reason once parsed.
    choose_and_send(page, corpus["external_link.h5"].path)
    page.wait_for_selector("#datasets td.status.rejected", timeout=120 * SECONDS)
    cell = page.locator("#datasets td.status.rejected").first.text_content()
    assert "external link" in cell
    record("browser", "svg_named.h5, oversize_declared.h5, external_link.h5 chosen in Chromium",
           f"page said \"{refused.strip()}\"; oversize stopped before sending; the table shows "
           f"\"{' '.join(cell.split())[:120]}\"")
