"""Measure the job review page in Chromium: bytes transferred and time to the first map drawn.

    .venv/bin/python scripts/measure_pages.py [--elements 10] [--size 1000] [--shots DIR]

Builds a throwaway site (temp data folder, SQLite): one user, a measured map of E elements at
size/2 x size/2 pixels (a cell phantom through the model's forward model), a small scale-2
model and a finished enhancement job whose result files and review the worker's code produced
(E x size x size). Serves it with `manage.py runserver` (what `make run` uses) and opens
/jobs/<id>/ in Debian's Chromium (Playwright) twice, each time in a fresh browser context
(empty HTTP cache):
  warm: the review was prepared by the worker (xrfweb.review.data.build_job_review), as for
        every job it finishes;
  cold: the review folder removed first, so this view reads the maps and builds it
        (a job finished before the worker prepared reviews).
Transferred bytes = the sum over every response of its headers and its body as sent (encoded).
First map = performance mark "xrf-first-map" (set by static/review/maps.js when the first
Plotly heatmap has been drawn), against navigation start. Not a test: numbers go in docs/pages.md.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PASSWORD = "measure-pages-password"


def build_site(elements: int, size: int, model_name: str = "") -> int:
    """The user, map, model and finished job; returns the job id. With model_name (a shipped
    bundle), the map is the real HXN set (demo/) enhanced by that model instead."""
    import numpy as np
    import torch
    from django.core.management import call_command
    from django.utils import timezone

    from enhancer.bundle import load_bundle, save_bundle
    from enhancer.degrade import Degradation
    from enhancer import pipeline
    from enhancer.formats import read_map
    from enhancer.network import ResidualEnhancer
    from enhancer.phantoms import phantom
    from xrfweb.jobs.models import Job
    from xrfweb.jobs.work import write_results
    from xrfweb.paths import models_dir, new_name, uploads_dir
    from xrfweb.projects.models import Dataset, Project
    from xrfweb.registry.models import EnhancementModel

    torch.set_num_threads(1)
    call_command("migrate", verbosity=0)
    from django.contrib.auth.models import User

    user = User.objects.create_user("measure", password=PASSWORD)
    project = Project.objects.create(name="Measure", owner=user)
    names = [f"E{i}" for i in range(elements)]
    degradation = Degradation(probe_fwhm_nm=80.0, pixel_nm=25.0, scale=2, counts=200.0)
    if model_name:
        hxn = read_map(REPO / "demo" / "hxn-fe-aggregate", pixel_nm=50.0)
        names, measured = hxn.elements, hxn.data
    else:
        measured = degradation.apply(phantom("cell", size, elements, seed=7), seed=7)
    stored = new_name(".npz")
    np.savez(uploads_dir() / stored, maps=measured, elements=np.array(names),
             pixel_size_nm=np.array([50.0, 50.0]))
    dataset = Dataset.objects.create(
        project=project, uploaded_by=user, stored_name=stored,
        original_name="hxn-fe-aggregate.npz" if model_name else "measure.npz",
        kind="npz", size_bytes=(uploads_dir() / stored).stat().st_size, status="ready",
        elements=names, shape=list(measured.shape), pixel_size_nm=[50.0, 50.0],
        source_format="npz")
    if model_name:
        folder = model_name
        model = EnhancementModel.objects.get(name=model_name)  # registered by migrate
    else:
        config = {"name": "measure-x2", "elements": "any", "pixel_nm": 25.0, "scale": 2,
                  "degradation": degradation.to_dict()}
        folder = save_bundle(models_dir() / "measure-x2", ResidualEnhancer(1, 1, 4), config)
        model = EnhancementModel.objects.create(
            name="measure-x2", status="approved", source="uploaded", folder="measure-x2",
            config=load_bundle(folder).config)
    job = Job.objects.create(kind="enhance", status="succeeded", progress=1.0, created_by=user,
                             project=project, dataset=dataset, model=model,
                             started=timezone.now(), finished=timezone.now())
    original = read_map(dataset.path)
    write_results(job, pipeline.run(original, load_bundle(folder), device="cpu"))
    from xrfweb.review.data import build_job_review

    build_job_review(job)  # as the worker does; the cold visit below starts from nothing again
    return job.id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clear_review_cache() -> None:
    import shutil

    from xrfweb.paths import data_dir

    shutil.rmtree(data_dir("review"))


def readme_shot(browser, base: str, path: str, out: Path) -> None:
    """The top of the job page with a line profile drawn on the enhanced map."""
    # bypass_csp: wait_for_function evaluates its string with eval, which the site's CSP forbids
    context = browser.new_context(viewport={"width": 1400, "height": 1650}, bypass_csp=True)
    page = context.new_page()
    sign_in(page, base)
    page.goto(f"{base}{path}")
    page.wait_for_function("document.querySelector('#after') && document.querySelector('#after').data")
    page.check("input[name=tool][value=line]")
    box = page.locator("#after .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + 0.25 * box["width"], box["y"] + 0.3 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.75 * box["width"], box["y"] + 0.62 * box["height"], steps=8)
    page.mouse.up()
    page.wait_for_function("document.querySelector('#profile').data?.length === 2")
    page.check("input[name=tool][value=zoom]")  # back to zoom
    page.locator("#profile").scroll_into_view_if_needed()
    page.evaluate("window.scrollTo(0, 0)")
    page.mouse.move(0, 0)
    page.screenshot(path=str(out), clip={"x": 0, "y": 0, "width": 1400, "height": 1650})
    context.close()


def sign_in(page, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", "measure")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button, main input[type=submit]")
    page.wait_for_load_state()


def visit(browser, base: str, path: str, shot: Path | None) -> dict:
    # bypass_csp: wait_for_function evaluates its string with eval, which the site's CSP forbids
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
    page = context.new_page()
    sign_in(page, base)
    responses = []
    page.on("requestfinished", lambda request: responses.append(request))
    page.goto(f"{base}{path}")
    page.wait_for_function("performance.getEntriesByName('xrf-first-map').length > 0",
                           timeout=120_000)
    first_ms = page.evaluate("performance.getEntriesByName('xrf-first-map')[0].startTime")
    timeline = page.evaluate("""performance.getEntriesByType('resource').map(
        (e) => [e.name.split('?')[0].split('/').pop(), Math.round(e.startTime), Math.round(e.responseEnd)])""")
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 5",
                           timeout=60_000)
    page.wait_for_load_state("networkidle")
    sizes = {}
    for request in responses:
        s = request.sizes()
        name = request.url.split("?")[0].rsplit("/", 1)[-1] or request.url
        sizes[name] = sizes.get(name, 0) + s["responseBodySize"] + s["responseHeadersSize"]
    if shot:
        page.screenshot(path=str(shot), full_page=True)
    context.close()
    return {"first_map_ms": round(first_ms), "bytes": sum(sizes.values()), "by_file": sizes,
            "timeline": timeline}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--elements", type=int, default=10)
    parser.add_argument("--size", type=int, default=1000, help="enhanced map side (pixels)")
    parser.add_argument("--shots", type=Path, help="save full-page screenshots here")
    parser.add_argument("--model", default="", help="a shipped model: enhance the real HXN set "
                        "with it instead (what docs/screenshot-job.png shows)")
    parser.add_argument("--readme-shot", type=Path, help="save the top of the job page, with a "
                        "line profile drawn, here")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="xrfweb-measure-"))
    env = dict(os.environ, XRFWEB_DATA_DIR=str(data_dir), DEBUG="1",
               DATABASE_URL=f"sqlite:///{data_dir / 'db.sqlite3'}",
               DJANGO_SETTINGS_MODULE="xrfweb.settings")
    os.environ.update(env)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    t0 = time.monotonic()
    job_id = build_site(args.elements, args.size, args.model)
    print(f"site built in {time.monotonic() - t0:.0f} s: job {job_id}", flush=True)

    port = free_port()
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}",
                               "--noreload"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        from playwright.sync_api import sync_playwright

        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        if args.shots:
            args.shots.mkdir(parents=True, exist_ok=True)
        results = {}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for label in ("warm", "cold"):
                if label == "cold":
                    clear_review_cache()  # as if the worker had not prepared the review
                shot = args.shots / f"measure-job-{label}.png" if args.shots else None
                results[label] = visit(browser, base, f"/jobs/{job_id}/", shot)
            if args.readme_shot:
                readme_shot(browser, base, f"/jobs/{job_id}/", args.readme_shot)
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    for label, r in results.items():
        print(f"{label}: first map drawn at {r['first_map_ms']} ms; "
              f"{r['bytes'] / 1e6:.2f} MB transferred")
        for name, n in sorted(r["by_file"].items(), key=lambda kv: -kv[1]):
            print(f"    {n / 1e6:8.3f} MB  {name}")
        print("    requested / received (ms): " + ", ".join(
            f"{name} {start}-{end}" for name, start, end in r["timeline"]))
    print(json.dumps({k: {"first_map_ms": v["first_map_ms"], "bytes": v["bytes"]}
                      for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
