"""Worker presence: each worker keeps a short-lived key in Redis while it runs, so /healthz can
tell whether any worker is up with one fast Redis call, and only counts workers of this
installation (keys carry XRFWEB_QUEUE_PREFIX, like the queues)."""
import json
import threading

import redis
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings

BEAT_EVERY_S = 10
TTL_S = 30  # a worker silent this long is gone (killed, machine lost)
_stop = threading.Event()


def _key(nodename: str = "*") -> str:
    return f"{settings.XRFWEB_QUEUE_PREFIX}xrfweb:worker:{nodename}"


def client(timeout: float = 1.0) -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=timeout,
                                socket_connect_timeout=timeout)


def live_workers() -> list[dict]:
    r = client()
    keys = list(r.scan_iter(match=_key(), count=100))
    return [json.loads(v) for v in r.mget(keys) if v] if keys else []


@worker_ready.connect
def _start_beating(sender, **kwargs) -> None:
    nodename = sender.hostname
    queues = sorted(q.name for q in sender.app.amqp.queues.consume_from.values())
    value = json.dumps({"name": nodename, "queues": queues})

    def beat():
        r = client(timeout=5)
        while True:
            try:
                r.set(_key(nodename), value, ex=TTL_S)
            except redis.RedisError:
                pass  # Redis restarting: the worker reconnects; keep trying
            if _stop.wait(BEAT_EVERY_S):
                break
        try:
            r.delete(_key(nodename))
        except redis.RedisError:
            pass

    threading.Thread(target=beat, name="xrfweb-presence", daemon=True).start()


@worker_shutdown.connect
def _stop_beating(**kwargs) -> None:
    _stop.set()
