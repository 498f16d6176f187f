"""Fixtures shared by every test file: session isolation, personas, clients, a live worker.

Import helpers from here (`from tests.conftest import ...` is not needed: fixtures are global).
"""
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery staple"
TEST_REDIS_DB = os.environ.get("XRFWEB_TEST_REDIS_DB", "13")


def pytest_configure(config):
    """Give this session its own data folder, Redis db and queue names, before Django reads its
    settings, so that parallel runs (and a `make run` on the same machine) never share work."""
    if _xdist_controller(config):
        # pytest -n N: this process only hands tests to its N worker processes, each of which
        # isolates itself here (its own pid, so its own data folder, queues and database); they
        # start from this process's environment, which must not name the settings yet.
        return
    if "django.conf" in sys.modules:
        from django.conf import settings

        if settings.configured:
            raise pytest.UsageError(
                "run pytest without DJANGO_SETTINGS_MODULE set: tests/conftest.py sets it "
                "after isolating the session"
            )
    tag = f"test{os.getpid()}"
    os.environ["XRFWEB_DATA_DIR"] = tempfile.mkdtemp(prefix=f"xrfweb-{tag}-")
    os.environ["XRFWEB_QUEUE_PREFIX"] = f"{tag}-"
    redis_base = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0]
    os.environ["REDIS_URL"] = f"{redis_base}/{TEST_REDIS_DB}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "xrfweb.settings"
    # DEBUG defaults to off (production-safe); the tests run the development settings, with one
    # key that the live server, workers and web processes they start all share.
    os.environ["DEBUG"] = "1"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))

    from django.conf import settings

    db = settings.DATABASES["default"]  # loads the settings now, with the values above
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast personas
    if db["ENGINE"].endswith("sqlite3"):
        # A file, not memory: the worker process must open the same test database.
        db["TEST"] = {"NAME": str(Path(os.environ["XRFWEB_DATA_DIR"]) / "test-db.sqlite3")}
    else:
        db.setdefault("TEST", {})["NAME"] = f"test_{db['NAME']}_{tag}"


def _xdist_controller(config) -> bool:
    """True in the main process of a `pytest -n N` run (pytest-xdist), which runs no test."""
    return not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", None)) \
        and getattr(config.option, "dist", "no") != "no"


def pytest_unconfigure(config):
    data_dir = os.environ.get("XRFWEB_DATA_DIR", "")
    if "xrfweb-test" in data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL naming the database this process is connected to (the test one)."""
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


def clear_cache() -> None:
    """Forget this session's cache keys (sign-in failures, API throttle counts) in the shared
    Redis cache; never cache.clear(), which would empty the whole Redis database (other test
    sessions' queues)."""
    import redis
    from django.conf import settings

    cache = settings.CACHES["default"]
    try:
        client = redis.Redis.from_url(cache["LOCATION"], socket_connect_timeout=2)
        keys = list(client.scan_iter(match=f"{cache['KEY_PREFIX']}:*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass  # no Redis: nothing counted either


@pytest.fixture(autouse=True)
def fresh_counts():
    """Each test starts with no sign-in failures and no API requests counted."""
    clear_cache()
    yield


# --- personas: alice owns a project, bob collaborates on it, charlie has no access, staff ---

@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.org", PASSWORD)


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", "bob@example.org", PASSWORD)


@pytest.fixture
def charlie(django_user_model):
    return django_user_model.objects.create_user("charlie", "charlie@example.org", PASSWORD)


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(
        "staff", "staff@example.org", PASSWORD, is_staff=True
    )


@pytest.fixture
def project(alice, bob):
    """Alice's beamtime, shared with bob."""
    from xrfweb.projects.models import Project

    p = Project.objects.create(name="Beamtime 2026-1", owner=alice)
    p.collaborators.add(bob)
    return p


def web_client(user):
    """A Django test client signed in as user (pages)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def api_client(user):
    """A DRF client that authenticates like a script would: Authorization: Token <key>."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


# --- data the tests upload ---

def make_tiny_model(name="tiny", status="approved", pixel_nm=25.0, scale=2, probe_fwhm_nm=80.0,
                    elements="any"):
    """A registered model with a 1-block, 4-filter network: real weights, no training time."""
    from enhancer.bundle import load_bundle, save_bundle
    from enhancer.degrade import Degradation
    from enhancer.network import ResidualEnhancer
    from xrfweb.paths import models_dir
    from xrfweb.registry.models import EnhancementModel

    channels = 1 if elements == "any" else len(elements)
    degradation = Degradation(probe_fwhm_nm=probe_fwhm_nm, pixel_nm=pixel_nm, scale=scale)
    config = {"name": name, "elements": elements, "pixel_nm": pixel_nm, "scale": scale,
              "degradation": degradation.to_dict()}
    folder = save_bundle(models_dir() / name, ResidualEnhancer(channels, 1, 4), config)
    config = load_bundle(folder).config
    return EnhancementModel.objects.create(
        name=name, status=status, source=EnhancementModel.Source.UPLOADED, folder=name,
        config=config,
    )


@pytest.fixture
def tiny_model(db):
    return make_tiny_model()


# --- a real Celery worker process against the real Redis and the test database ---

class WorkerProcess:
    def __init__(self, process: subprocess.Popen, nodename: str, log_path: Path):
        self.process, self.nodename, self.log_path = process, nodename, log_path

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_for(self, predicate, timeout: float = 60, what: str = "condition"):
        """Poll predicate() until it returns something truthy; fail with the worker's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.process.poll() is not None:
                pytest.fail(f"worker exited ({self.process.returncode}):\n{self.log_tail()}")
            time.sleep(0.2)
        pytest.fail(f"timed out after {timeout} s waiting for {what}; worker log:\n{self.log_tail()}")

    def wait_idle(self, timeout: float = 120) -> None:
        """Until the worker runs and holds no task: a test's teardown empties the database, and
        a task still inside a transaction deadlocks with that (PostgreSQL kills one side)."""
        from xrfweb.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                inspect = app.control.inspect(destination=[self.nodename], timeout=1)
                busy = [(inspect.active() or {}).get(self.nodename), (inspect.reserved() or {}).get(self.nodename)]
            except Exception:  # noqa: BLE001 - Redis stopped by a fault test: nothing to wait for
                return
            if busy[0] is None or not any(busy):  # no answer (held back by the test), or idle
                return
            time.sleep(0.2)


def start_worker(env_extra: dict | None = None, concurrency: int = 1,
                 nodename: str | None = None, queues: list[str] | None = None) -> WorkerProcess:
    """`celery -A xrfweb worker` on this session's queues (or the given ones), using the test
    database."""
    from django.conf import settings
    from django.db import connection

    from xrfweb.celery import app

    nodename = nodename or f"{settings.XRFWEB_QUEUE_PREFIX}{time.monotonic_ns()}@localhost"
    log_path = Path(settings.DATA_DIR) / f"worker-{time.monotonic_ns()}.log"
    env = dict(os.environ, DATABASE_URL=database_url(connection.settings_dict), **(env_extra or {}))
    cmd = [
        sys.executable, "-m", "celery", "-A", "xrfweb", "worker",
        "-Q", ",".join(queues or [settings.GPU_QUEUE, settings.DEFAULT_QUEUE]), "-n", nodename,
        "-c", str(concurrency), "--without-gossip", "--without-mingle", "-l", "INFO",
    ]
    with open(log_path, "wb") as log:
        # Its own process group, so that stopping it also stops its pool children.
        process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    worker = WorkerProcess(process, nodename, log_path)
    worker.wait_for(
        lambda: app.control.ping(destination=[nodename], timeout=0.5), 90, "the worker to answer"
    )
    return worker


def stop_worker(worker: WorkerProcess, sig=signal.SIGTERM) -> None:
    """SIGTERM: warm shutdown. SIGKILL: the worker and its children die on the spot."""
    try:
        os.killpg(worker.process.pid, sig)
        worker.process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait()
    except ProcessLookupError:
        pass


SESSION_WORKER: list[WorkerProcess] = []  # the one below, once started


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """One worker for the session. Tests using it need @pytest.mark.django_db(transaction=True):
    the worker sees only committed rows. Once started it takes every task any later test sends;
    a test that plays the worker itself uses held_messages."""
    with django_db_blocker.unblock():
        worker = start_worker()
    SESSION_WORKER.append(worker)
    yield worker
    SESSION_WORKER.clear()
    stop_worker(worker)  # before the test database is dropped: it holds connections to it


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item, nextitem):
    """Before a transactional test's database is emptied, let the session's worker finish what
    the test sent it (tryfirst: this runs before the fixtures are torn down)."""
    marker = item.get_closest_marker("django_db")
    if SESSION_WORKER and marker and marker.kwargs.get("transaction"):
        SESSION_WORKER[0].wait_idle()


@pytest.fixture
def held_messages(monkeypatch):
    """The tasks the code sends, kept in this list instead of reaching Redis: for a test that
    changes the rows as a worker would (the session's worker, if started, would race it)."""
    from celery.app.task import Task

    sent = []
    monkeypatch.setattr(Task, "apply_async",
                        lambda task, args=None, kwargs=None, **options: sent.append((task.name, tuple(args or ()))))
    return sent


# --- rows the web tests build directly (no worker involved) ---

def make_dataset(project, user, *, status="ready", content=b"\x89HDF\r\n\x1a\n" + bytes(100),
                 name="scan.h5", elements=("Fe", "Zn"), shape=(2, 8, 8), pixel_nm=50.0):
    """A stored upload as the parser leaves it (status ready by default)."""
    from xrfweb.paths import new_name, uploads_dir
    from xrfweb.projects.models import Dataset

    stored = new_name(".h5")
    (uploads_dir() / stored).write_bytes(content)
    return Dataset.objects.create(
        project=project, uploaded_by=user, original_name=name, stored_name=stored, kind="hdf5",
        size_bytes=len(content), status=status, elements=list(elements), shape=list(shape),
        pixel_size_nm=[pixel_nm, pixel_nm], source_format="maps-v10",
    )


def make_finished_job(dataset, model, user, formats=("tiff", "png")):
    """A succeeded enhancement whose result folder holds the given download files."""
    from xrfweb.jobs.models import Job
    from xrfweb.jobs.results import FORMATS

    job = Job.objects.create(kind="enhance", status="succeeded", progress=1.0, created_by=user,
                             project=dataset.project, dataset=dataset, model=model)
    shutil.rmtree(job.result_dir, ignore_errors=True)  # ids repeat after a test's rollback
    job.result_dir.mkdir(parents=True)
    for fmt in formats:
        (job.result_dir / FORMATS[fmt][0]).write_bytes(f"{fmt} result".encode())
    return job
