"""Worker presence: each worker keeps a short-lived key in Redis while it runs, so /healthz can
tell whether any worker is up with one fast Redis call, and only counts workers of this
installation (keys carry XRFWEB_QUEUE_PREFIX, like the queues).

The same beat notices when Redis lost its queues (a key without expiry is gone: restarted
without persistence, flushed) or was out of reach, and then sends the waiting rows again
(xrfweb.queueing.resend_waiting), so queued jobs and uploads run once Redis is back."""
import json
import logging
import threading

import redis
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)

BEAT_EVERY_S = 10
TTL_S = 30  # a worker silent this long is gone (killed, machine lost)
_stop = threading.Event()


def _key(nodename: str = "*") -> str:
    return f"{settings.XRFWEB_QUEUE_PREFIX}xrfweb:worker:{nodename}"


def _sentinel() -> str:
    return f"{settings.XRFWEB_QUEUE_PREFIX}xrfweb:queues-kept"


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
        from xrfweb.queueing import resend_waiting

        r = client(timeout=5)
        resend = False
        while True:
            try:
                r.set(_key(nodename), value, ex=TTL_S)
                if r.set(_sentinel(), "1", nx=True):  # it was gone: Redis lost its queues
                    resend = True
                if resend:
                    resend_waiting()
                    resend = False
            except redis.RedisError:
                resend = True  # out of reach (restarting?): what was sent meanwhile may be lost
            except Exception:  # e.g. the database is down: try again at the next beat
                log.exception("could not send the waiting work again")
            finally:
                connection.close()  # this thread's own; never hold one across beats
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
