"""GET /healthz: 200 only when the database, Redis and a worker all answer."""
import pytest
from django.test import Client


@pytest.mark.django_db(transaction=True)
def test_it_is_healthy_with_a_real_worker(celery_worker_process):
    response = Client().get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json() == {"database": "ok", "redis": "ok", "worker": "ok"}


@pytest.mark.django_db
def test_it_says_when_no_worker_runs(settings):
    settings.XRFWEB_QUEUE_PREFIX = "nobody-listens-here-"  # workers of another installation
    settings.GPU_QUEUE, settings.DEFAULT_QUEUE = "nobody-gpu", "nobody-default"
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["worker"] == "no worker is running"
    assert response.json()["database"] == "ok"


@pytest.mark.django_db
def test_it_says_when_redis_is_down(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["redis"].startswith("redis unreachable")
    assert body["worker"] == "not checked: redis is down"
    assert "127.0.0.1:1" not in body["redis"]  # no URL (and no password) in the answer
