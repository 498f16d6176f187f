"""The README's API recipe (scripts/api_recipe.sh) run as written, against the live server and a
real worker: token, upload with step and probe, parsing, job, polling, download."""
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from enhancer.formats import read_map
from tests.conftest import PASSWORD, make_tiny_model

pytestmark = pytest.mark.django_db(transaction=True)
REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "demo" / "hxn-fe-aggregate"


def test_the_readme_shows_the_recipe():
    readme = (REPO / "README.md").read_text()
    assert "scripts/api_recipe.sh" in readme and "--fail" in (REPO / "scripts/api_recipe.sh").read_text()


def test_the_api_recipe_enhances_a_tiff_set_end_to_end(live_server, celery_worker_process, alice,
                                                        project, tmp_path):
    model = make_tiny_model("recipe-x2", pixel_nm=25.0, scale=2)  # a 50 nm step, enhanced 2x
    upload = tmp_path / "my-scan.zip"
    with zipfile.ZipFile(upload, "w") as z:
        for tiff in sorted(DEMO.glob("*.tiff")):
            z.write(tiff, tiff.name)
    # No model named: the script tries the approved ones (the shipped models, made for a 200 nm
    # probe, are refused by the fit rule) until one fits.
    env = dict(os.environ, XRFWEB_URL=live_server.url, XRFWEB_USER="alice",
               XRFWEB_PASSWORD=PASSWORD, XRFWEB_PROJECT=str(project.id))
    env.pop("XRFWEB_MODEL", None)
    done = subprocess.run([str(REPO / "scripts" / "api_recipe.sh"), str(upload), "50", "80"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr + celery_worker_process.log_tail()
    saved = tmp_path / done.stdout.strip().splitlines()[-1]
    assert f"started with model {model.id}" in done.stderr, done.stderr
    assert saved.name.endswith("-tiff.zip")  # a TIFF set's job answers in its own format
    enhanced = read_map(saved)
    assert enhanced.shape == (4, 320, 320)


def test_a_failed_download_stops_the_recipe_with_the_reason(live_server, alice, project, tmp_path):
    env = dict(os.environ, XRFWEB_URL=live_server.url, XRFWEB_USER="alice",
               XRFWEB_PASSWORD=PASSWORD, XRFWEB_PROJECT=str(project.id), XRFWEB_MODEL="1")
    bad = tmp_path / "notes.txt"
    bad.write_text("not a map")
    done = subprocess.run([str(REPO / "scripts" / "api_recipe.sh"), str(bad), "50", "80"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "HTTP 400" in done.stderr and "not a file xrfweb reads" in done.stderr
    assert list(tmp_path.iterdir()) == [bad]  # nothing saved
