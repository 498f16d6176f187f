"""A measured probe attached to a dataset (issue 17, item 6): staff upload a knife-edge or
ptychographic probe file; the enhancer's own reader checks it; the dataset's probe FWHM becomes
its summary, and jobs use it as the PSF (the end-to-end run is in test_chain_measured_probe.py)."""
import io
import zipfile

import h5py
import numpy as np
import pytest
import tifffile

from enhancer.probe import fwhm_of, zone_plate_probe
from tests.conftest import api_client, make_dataset, web_client
from tests.test_browser_review import SECONDS, browser, page, sign_in  # noqa: F401
from xrfweb.jobs.models import Job
from xrfweb.paths import probes_dir
from xrfweb.projects.models import Project


def npy_bytes(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array))
    return buf.getvalue()


def named(content: bytes, name: str):
    f = io.BytesIO(content)
    f.name = name
    return f


def zp_amplitude():
    """A zone plate's focus (200 nm FWHM, 10 nm pixels) as a ptychographic complex amplitude."""
    return np.sqrt(zone_plate_probe(200, 10)).astype(np.complex64)


def attach(client, dataset_id, content, name="zp.npy", pixel_nm="10", **extra):
    return client.post(f"/api/v1/datasets/{dataset_id}/probe/",
                       {"file": named(content, name), "pixel_nm": pixel_nm, **extra}, format="multipart")


def stored_probes() -> set:
    return {p.name for p in probes_dir().iterdir()}


@pytest.mark.django_db
def test_staff_attach_and_detach_others_are_refused(project, alice, bob, charlie, staff,
                                                    django_capture_on_commit_callbacks):
    """Staff (owner or collaborator) attach; the owner and a collaborator who are not staff get
    403, a stranger 404; the detail shows the probe to all who see the dataset."""
    d = make_dataset(project, alice)
    own = make_dataset(Project.objects.create(name="staff's", owner=staff), staff)
    project.collaborators.add(staff)
    content = npy_bytes(zp_amplitude())
    for user, code in ((alice, 403), (bob, 403), (charlie, 404)):
        assert attach(api_client(user), d.id, content).status_code == code
        assert api_client(user).delete(f"/api/v1/datasets/{d.id}/probe/").status_code == code
    assert attach(api_client(alice), d.id, content).json()["error"] == "Only staff can attach a measured probe."
    before = stored_probes()
    for dataset in (d, own):
        response = attach(api_client(staff), dataset.id, content, name="../../etc/zp.npy")
        assert response.status_code == 201, response.content
    body = api_client(alice).get(f"/api/v1/datasets/{d.id}/").json()
    expected = [round(v, 1) for v in fwhm_of(zone_plate_probe(200, 10), 10)]
    assert body["measured_probe"] == {"name": "zp.npy", "pixel_nm": 10.0, "fwhm_nm": expected,
                                      "dataset_path": None}
    assert abs(expected[0] / 200 - 1) < 0.05 and body["probe_fwhm_nm"] == expected
    d.refresh_from_db()
    assert d.measured_probe_path.parent == probes_dir() and d.measured_probe_path.suffix == ".npy"
    assert "zp" not in d.measured_probe["file"] and len(stored_probes() - before) == 2
    own.refresh_from_db()
    assert own.measured_probe_path.exists()
    with django_capture_on_commit_callbacks(execute=True):  # the files go once the rows have
        assert api_client(staff).delete(f"/api/v1/datasets/{own.id}/").status_code == 204
    assert not own.measured_probe_path.exists()  # the dataset's probe goes with it
    response = api_client(staff).delete(f"/api/v1/datasets/{d.id}/probe/")
    assert response.status_code == 200 and response.json()["measured_probe"] is None
    assert response.json()["probe_fwhm_nm"] is None  # unknown again, not the probe's FWHM
    assert not d.measured_probe_path.exists()
    assert api_client(staff).delete(f"/api/v1/datasets/{d.id}/probe/").status_code == 400


@pytest.mark.django_db
def test_a_bad_probe_file_is_refused_in_words_and_nothing_is_kept(project, alice, staff, monkeypatch, tmp_path):
    from xrfweb.projects import probes

    d = make_dataset(project, alice)
    api = api_client(staff)
    assert attach(api, d.id, npy_bytes(zp_amplitude()), name="good.npy").status_code == 201
    d.refresh_from_db()
    good = dict(d.measured_probe)
    with h5py.File(tmp_path / "two.h5", "w") as f:
        f["a"], f["b"] = np.ones((8, 8)), zone_plate_probe(200, 10)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("p.npy", npy_bytes(np.ones((8, 8))))
    tif = io.BytesIO()
    tifffile.imwrite(tif, np.zeros((2, 16, 16), np.float32))
    nan = np.ones((16, 16))
    nan[3, 3] = np.nan
    flat = np.ones((16, 16))
    h5 = (tmp_path / "two.h5").read_bytes()
    cases = [
        (npy_bytes(np.ones((4, 16, 16))), "cube.npy", {}, "one 2-D array"),
        (npy_bytes(np.zeros((16, 16))), "zero.npy", {}, "all zero"),
        (npy_bytes(nan), "nan.npy", {}, "NaN"),
        (npy_bytes(flat), "flat.npy", {}, "does not fall to half its peak"),
        (tif.getvalue(), "stack.tif", {}, "one 2-D array"),
        (zipped.getvalue(), "probe.zip", {}, "not a probe file"),
        (b"position,value\n1,2\n", "edge.csv", {}, "not a probe file"),
        (h5, "two.h5", {}, "name one"),
        (h5, "two.h5", {"dataset_path": "/entry/probe"}, "no dataset '/entry/probe'"),
        (npy_bytes(zp_amplitude()), "zp.npy", {"dataset_path": "/p"}, "not HDF5"),
        (npy_bytes(zp_amplitude()), "zp.npy", {"pixel_nm": ""}, "pixel size"),
        (npy_bytes(zp_amplitude()), "zp.npy", {"pixel_nm": "-3"}, "positive"),
        (npy_bytes(zp_amplitude()), "zp.npy", {"pixel_nm": "nan"}, "positive"),
    ]
    before = stored_probes()
    for content, name, extra, words in cases:
        response = attach(api, d.id, content, name=name, **{"pixel_nm": "10", **extra})
        assert response.status_code == 400, (name, response.content)
        error = response.json()["error"]
        assert words in error, (name, error)
        assert d.measured_probe["file"] not in error and "Traceback" not in error
    monkeypatch.setattr(probes, "PROBE_MAX_PIXELS", 100)
    response = attach(api, d.id, npy_bytes(zp_amplitude()), name="big.npy")
    assert response.status_code == 400 and "at most 100 pixels" in response.json()["error"]
    monkeypatch.setattr(probes, "PROBE_MAX_MB", 0.001)
    response = attach(api, d.id, npy_bytes(zp_amplitude()), name="big.npy")
    assert response.status_code == 400 and "at most 0.001 MB" in response.json()["error"]
    assert stored_probes() == before  # nothing half-kept
    d.refresh_from_db()
    assert d.measured_probe == good and list(d.probe_fwhm_nm) == good["fwhm_nm"]  # the old one stays
    monkeypatch.undo()
    two = api_client(staff).post(f"/api/v1/datasets/{d.id}/probe/", {
        "file": named(h5, "two.h5"), "pixel_nm": "10", "dataset_path": "/b"}, format="multipart")
    assert two.status_code == 201, two.content
    assert two.json()["measured_probe"]["dataset_path"] == "/b" and not (probes_dir() / good["file"]).exists()


@pytest.mark.django_db
def test_the_probe_cannot_be_restated_or_swapped_under_a_waiting_job(project, alice, staff, tiny_model):
    d = make_dataset(project, alice)
    api = api_client(staff)
    assert attach(api, d.id, npy_bytes(zp_amplitude())).status_code == 201
    own = api.get(f"/api/v1/datasets/{d.id}/").json()["probe_fwhm_nm"]
    response = api_client(alice).patch(f"/api/v1/datasets/{d.id}/", {"probe_fwhm_nm": "150"}, format="json")
    assert response.status_code == 400 and "detach it first" in response.json()["error"]
    same = f"{own[0]},{own[1]}"  # what the page's form sends back with a new step: accepted
    response = api_client(alice).patch(f"/api/v1/datasets/{d.id}/", {"pixel_nm": "40", "probe_fwhm_nm": same},
                                       format="json")
    assert response.status_code == 200 and response.json()["probe_fwhm_nm"] == own
    job = Job.objects.create(kind="enhance", status="queued", created_by=alice, project=project,
                             dataset=d, model=tiny_model)
    for response in (attach(api, d.id, npy_bytes(zp_amplitude())),
                     api.delete(f"/api/v1/datasets/{d.id}/probe/")):
        assert response.status_code == 409 and f"job {job.id}" in response.json()["error"]
    job.status = "succeeded"
    job.save()
    response = api.delete(f"/api/v1/datasets/{d.id}/probe/?probe_fwhm_nm=150,160")
    assert response.status_code == 200 and response.json()["probe_fwhm_nm"] == [150, 160]


@pytest.mark.django_db
def test_the_dataset_page_attaches_and_detaches_for_staff_only(project, alice, charlie, staff):
    d = make_dataset(project, alice)
    url = f"/datasets/{d.id}/measured-probe/"
    content = npy_bytes(zp_amplitude())
    assert 'id="measured-probe-form"' not in web_client(alice).get(f"/datasets/{d.id}/").content.decode()
    assert web_client(alice).post(url, {"file": named(content, "zp.npy"), "pixel_nm": "10"}).status_code == 403
    assert web_client(charlie).post(url, {"file": named(content, "zp.npy"), "pixel_nm": "10"}).status_code == 404
    web = web_client(staff)
    assert 'id="measured-probe-form"' in web.get(f"/datasets/{d.id}/").content.decode()
    response = web.post(url, {"file": named(content, "zp.npy"), "pixel_nm": "10"})
    assert response.status_code == 302 and response["Location"].endswith("#measured-probe")
    page = web_client(alice).get(f"/datasets/{d.id}/").content.decode()
    assert "Measured probe: <b>zp.npy</b>" in page and "the measured probe zp.npy" in page
    page = web.get(f"/datasets/{d.id}/").content.decode()
    assert "Detach it" in page and "readonly" in page
    web.post(url, {"file": named(npy_bytes(np.zeros((8, 8))), "z.npy"), "pixel_nm": "10"})
    assert "Not attached: z.npy: the probe is all zero" in web.get(f"/datasets/{d.id}/").content.decode()
    assert web.post(url, {"action": "detach"}).status_code == 302
    d.refresh_from_db()
    assert d.measured_probe is None and d.probe_fwhm_nm is None


@pytest.mark.django_db(transaction=True)
def test_staff_attach_and_detach_in_the_browser(page, live_server, alice, staff, tmp_path):  # noqa: F811
    d = make_dataset(Project.objects.create(name="p", owner=alice), alice)
    np.save(tmp_path / "zp.npy", zp_amplitude())
    sign_in(page, live_server.url, "staff")
    page.goto(f"{live_server.url}/datasets/{d.id}/")
    page.set_input_files("#measured-probe-form input[name=file]", str(tmp_path / "zp.npy"))
    page.fill("#measured-probe-form input[name=pixel_nm]", "10")
    page.click("#measured-probe-form button")
    page.wait_for_selector("#measured-probe-name:has-text('zp.npy')", timeout=30 * SECONDS)
    assert "the measured probe zp.npy" in page.inner_text("#physics-probe")
    assert page.get_attribute("#id_probe_fwhm_nm", "readonly") is not None
    page.click("#measured-probe-detach button")
    page.wait_for_selector("#physics-probe:text-is('unknown')", timeout=30 * SECONDS)
    d.refresh_from_db()
    assert d.measured_probe is None
