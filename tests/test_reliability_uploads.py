"""The hostile-upload corpus (tests/reliability/corpus.py, 54 files) through the API and through
the page's upload form, parsed by a real worker process: each file gets a 4xx with a clear message
or is accepted and then `rejected` with a reason (or read, when only its name or content type
lies); never a 5xx; the web and the worker stay up; nothing partial is left on disk; no uploaded
pickle is ever unpickled."""
import hashlib

import pytest

from tests.conftest import api_client, start_worker, stop_worker, web_client
from tests.reliability.corpus import make_corpus, pickle_markers
from tests.reliability.helpers import MULTIPART, files_under, multipart, record
from xrfweb.paths import models_dir, tmp_dir, uploads_dir
from xrfweb.projects.models import Dataset, Project
from xrfweb.registry.models import EnhancementModel

pytestmark = pytest.mark.django_db(transaction=True)
MAX_UPLOAD_MB = 1  # small, so that the oversize cases stay small
VIAS = ("api", "form")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return folder, make_corpus(folder, MAX_UPLOAD_MB)


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """A worker of our own whose temporary files (the map reader's child) go to a folder we can
    inspect afterwards."""
    scratch = tmp_path_factory.mktemp("worker-tmp")
    with django_db_blocker.unblock():
        process = start_worker(env_extra={"TMPDIR": str(scratch)})
    process.scratch = scratch
    yield process
    stop_worker(process)


def send_map(user, project, case, via):
    body = multipart({"file": (case.filename, case.path.read_bytes(), case.content_type)})
    if via == "api":
        return api_client(user).post(f"/api/v1/projects/{project.id}/datasets/", body,
                                     content_type=MULTIPART)
    return web_client(user).post(f"/projects/{project.id}/upload/", body, content_type=MULTIPART)


def words_in(text: str, words) -> bool:
    return all(w.lower() in text.lower() for w in words)


def test_hostile_maps_through_the_api_and_the_form(corpus, worker, alice, settings):
    settings.XRFWEB_MAX_UPLOAD_MB = MAX_UPLOAD_MB
    folder, cases = corpus
    maps = [c for c in cases if c.target == "map"]
    assert len(maps) >= 30
    project = Project.objects.create(name="hostile", owner=alice)
    store_before = files_under(uploads_dir())
    sent = {}  # dataset id -> (case, via)

    for case in maps:
        for via in VIAS:
            response = send_map(alice, project, case, via)
            label = f"{case.name} via {via}"
            assert response.status_code < 500, label
            body = response.json()
            if case.expect == "refused":
                assert response.status_code == case.status, (label, body)
                assert words_in(body["error"], case.words), (label, body)
                record("upload", case.name, f"{response.status_code}: {body['error']}", via=via,
                       what=case.what, expect=case.expect)
            else:
                assert response.status_code == 201, (label, body)
                assert body["status"] == "uploaded"
                sent[body["id"]] = (case, via)

    def all_parsed():
        return not Dataset.objects.filter(status__in=["uploaded", "parsing"]).exists()

    worker.wait_for(all_parsed, 60 + 6 * len(sent), "every accepted upload to be parsed")

    for dataset in Dataset.objects.filter(id__in=sent):
        case, via = sent[dataset.id]
        label = f"{case.name} via {via}"
        assert dataset.status == case.expect, (label, dataset.error)
        if case.expect == "rejected":
            assert words_in(dataset.error, case.words), (label, dataset.error)
            # Told in the user's words: no traceback, no server path, not our generated name.
            for leak in ("Traceback", str(settings.DATA_DIR), dataset.stored_name):
                assert leak not in dataset.error, (label, dataset.error)
            reason = dataset.error.replace(str(folder), "<corpus>")
            record("upload", case.name, f"201, then rejected: {reason}", via=via,
                   what=case.what, expect=case.expect)
        else:
            if case.elements:
                assert dataset.elements == list(case.elements), (label, dataset.elements)
            # The name is a label only: no path in it, bounded.
            assert len(dataset.original_name) <= 255, label
            assert not set("/\\\x00") & set(dataset.original_name), label
            record("upload", case.name, f"201, then ready: {' x '.join(map(str, dataset.shape))} "
                   f"({', '.join(dataset.elements)}), label {dataset.original_name[:40]!r}",
                   via=via, what=case.what, expect=case.expect)
        # Stored whole, under a generated name in the store.
        assert dataset.path.parent == uploads_dir()
        assert hashlib.sha256(dataset.path.read_bytes()).digest() == \
            hashlib.sha256(case.path.read_bytes()).digest(), label

    # Nothing else on disk: every stored file is a dataset's, no temp file, no reader scratch.
    stored = {str(uploads_dir().name + "/" + d.stored_name) for d in Dataset.objects.all()}
    assert files_under(uploads_dir()) - store_before == stored
    assert files_under(tmp_dir()) == set()
    # (pymp-* is the running pool's own folder, not a leftover)
    assert {f for f in files_under(worker.scratch) if "/pymp-" not in f} == set()
    assert not any(m.exists() for m in pickle_markers(folder))
    # The web and the worker are still up.
    assert worker.process.poll() is None
    assert web_client(alice).get("/healthz").status_code == 200
    assert api_client(alice).get(f"/api/v1/projects/{project.id}/datasets/").status_code == 200


def send_model(user, case, via):
    files = {"weights": (case.filename, case.path.read_bytes(), "application/octet-stream"),
             "config": ("model.json", case.config.read_bytes(), "application/json")}
    if via == "api":
        return api_client(user).post("/api/v1/models/upload/",
                                     multipart(files, {"name": case.name}),
                                     content_type=MULTIPART)
    return web_client(user).post("/models/upload/", multipart(files, {"name": case.name}),
                                 content_type=MULTIPART)


def test_hostile_model_files_are_refused_and_nothing_is_unpickled(corpus, staff):
    folder, cases = corpus
    models = [c for c in cases if c.target == "model"]
    before = files_under(models_dir(), tmp_dir())
    for case in models:
        for via in VIAS:
            response = send_model(staff, case, via)
            assert response.status_code < 500, (case.name, via)
            if via == "api":
                assert response.status_code == case.status, (case.name, response.content)
                error = response.json()["error"]
            else:  # the page answers with the form again and the reason on it
                assert response.status_code == 200, case.name
                error = " ".join(str(m) for m in response.context["messages"])
                assert error.startswith("Not added:"), (case.name, error)
            assert words_in(error, case.words), (case.name, via, error)
            record("model upload", case.name, f"{response.status_code}: {error}", via=via,
                   what=case.what, expect=case.expect)
    assert not EnhancementModel.objects.filter(name__in=[c.name for c in models]).exists()
    assert files_under(models_dir(), tmp_dir()) == before
    assert not any(m.exists() for m in pickle_markers(folder))
