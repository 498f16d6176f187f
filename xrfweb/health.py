"""GET /healthz: is the database, Redis and at least one worker answering?"""
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from xrfweb import workers


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as e:
        return f"database unreachable: {type(e).__name__}"


def check_redis() -> str:
    try:
        workers.client().ping()
        return "ok"
    except Exception as e:
        return f"redis unreachable: {type(e).__name__}"  # no URL: it may hold a password


def check_worker() -> str:
    try:
        running = workers.live_workers()
    except Exception as e:
        return f"cannot list workers: {type(e).__name__}"
    queues = {q for w in running for q in w["queues"]}
    missing = [q for q in (settings.GPU_QUEUE, settings.DEFAULT_QUEUE) if q not in queues]
    if not running:
        return "no worker is running"
    return f"no worker takes the {' or '.join(missing)} queue" if missing else "ok"


@never_cache
def healthz(request):
    status = {"database": check_database(), "redis": check_redis()}
    status["worker"] = check_worker() if status["redis"] == "ok" else "not checked: redis is down"
    healthy = all(value == "ok" for value in status.values())
    return JsonResponse(status, status=200 if healthy else 503)
