"""Settings come from the environment and fail loudly on bad values; production passes
Django's deployment checks; Celery is configured for long GPU jobs."""
import os
import secrets
import subprocess
import sys

import pytest

from tests.conftest import REPO


def run_manage(*args, **env_changes):
    # (DJANGO_ALLOW_ASYNC_UNSAFE: set by the browser tests when collected; --deploy refuses it)
    env = {k: v for k, v in os.environ.items()
           if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(env_changes)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_check_is_clean_in_development():
    result = run_manage("check", DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_the_defaults_are_production_safe():
    """Nothing set: DEBUG is off, so start-up demands a SECRET_KEY (there is no fixed one)."""
    result = run_manage("check")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
    show = ("from django.conf import settings; "
            "print(settings.DEBUG, settings.SESSION_COOKIE_SECURE, settings.SECRET_KEY)")
    first = run_manage("shell", "--no-imports", "-c", show, SECRET_KEY="k" * 60, ALLOWED_HOSTS="xrf.example.org")
    assert first.stdout.split() == ["False", "True", "k" * 60], first.stderr
    # Development without a key: a random one per process, never a value written in the code.
    keys = [run_manage("shell", "--no-imports", "-c", show, DEBUG="1").stdout.split() for _ in range(2)]
    assert keys[0][0] == "True" and keys[0][2] != keys[1][2], keys


def test_production_settings_pass_the_deployment_checklist():
    key = secrets.token_urlsafe(60)[:60]
    result = run_manage("check", "--deploy", "--fail-level", "WARNING",
                        DEBUG="0", SECRET_KEY=key, ALLOWED_HOSTS="xrf.example.org")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("env, message", [
    ({"DEBUG": "0", "ALLOWED_HOSTS": "xrf.example.org"}, "SECRET_KEY must be set"),
    ({"DEBUG": "maybe"}, "DEBUG='maybe'"),
    ({"DEBUG": "0", "SECRET_KEY": "x" * 60}, "ALLOWED_HOSTS must be set"),
    ({"XRFWEB_MAX_UPLOAD_MB": "lots"}, "XRFWEB_MAX_UPLOAD_MB='lots'"),
    ({"XRFWEB_MAX_UPLOAD_MB": "0"}, "must be at least 1"),
    ({"REDIS_URL": "localhost:6379"}, "REDIS_URL="),
    ({"XRFWEB_API_RATE": "lots"}, "XRFWEB_API_RATE='lots'"),
    ({"XRFWEB_MAX_ACTIVE_JOBS": "0"}, "must be at least 1"),
    ({"DATABASE_URL": "nosuchdb://x/y"}, "DATABASE_URL"),
])
def test_bad_environment_values_stop_start_up_with_a_message(env, message):
    result = run_manage("check", **{"DEBUG": "1", **env})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_celery_is_set_up_for_long_gpu_jobs():
    from django.conf import settings

    from xrfweb.celery import app

    conf = app.conf
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_acks_late is True and conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit is None and conf.task_soft_time_limit is None
    # A message must not be handed to a second worker while the first may still run it.
    longest_job_s = settings.XRFWEB_JOB_MAX_HOURS * 3600
    assert conf.broker_transport_options["visibility_timeout"] > longest_job_s + 600
    routes = conf.task_routes
    assert routes["jobs.enhance_dataset"]["queue"] == settings.GPU_QUEUE
    assert routes["jobs.train_model"]["queue"] == settings.GPU_QUEUE
    assert routes["projects.parse_dataset"]["queue"] == settings.DEFAULT_QUEUE
    assert settings.GPU_QUEUE.endswith("gpu") and settings.DEFAULT_QUEUE.endswith("default")


def test_loading_the_tasks_never_imports_torch():
    """The prefork parent imports the task modules; CUDA must stay untouched there."""
    code = ("import django; django.setup(); import xrfweb.jobs.tasks, xrfweb.projects.tasks, sys; "
            "print('torch' in sys.modules)")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="xrfweb.settings")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_pool_children_import_the_science_before_a_job_and_the_parent_never_does():
    """A soft time limit landing mid-import poisoned a pool child (scipy.ndimage half-imported,
    every later job failed); the child now imports enhancer as it starts, outside any job."""
    script = (
        "import sys\n"
        "import xrfweb.celery as c\n"
        "assert 'torch' not in sys.modules and 'scipy.ndimage' not in sys.modules, 'parent imported'\n"
        "from celery.signals import worker_process_init\n"
        "worker_process_init.send(sender=None)\n"
        "assert {'torch', 'scipy.ndimage', 'h5py', 'enhancer.enhance', 'enhancer.train'} <= set(sys.modules)\n"
        "print(c.app.conf.worker_proc_alive_timeout)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.strip()) >= 30  # room for those imports on a slow machine
