"""The shared cache: Redis (REDIS_URL), so that every web process counts the same sign-in
failures (django-axes) and API requests (DRF throttles).

It fails open: while Redis is down a read finds nothing and a write is dropped, so signing in and
the API keep working (their counters pause, and the log says so) as the jobs do (they wait in the
database for Redis to come back)."""
import logging

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


def _fail_open(name, fallback):
    def method(self, *args, **kwargs):
        try:
            return getattr(RedisCache, name)(self, *args, **kwargs)
        except RedisError as e:
            log.warning("cache %s skipped, Redis unreachable: %s", name, e)
            return fallback(*args, **kwargs)
    return method


class SharedCache(RedisCache):
    get = _fail_open("get", lambda key, default=None, version=None: default)
    get_many = _fail_open("get_many", lambda *a, **k: {})
    has_key = _fail_open("has_key", lambda *a, **k: False)
    set = _fail_open("set", lambda *a, **k: None)
    set_many = _fail_open("set_many", lambda *a, **k: [])
    add = _fail_open("add", lambda *a, **k: True)
    incr = _fail_open("incr", lambda key, delta=1, version=None: delta)
    touch = _fail_open("touch", lambda *a, **k: False)
    delete = _fail_open("delete", lambda *a, **k: False)
    delete_many = _fail_open("delete_many", lambda *a, **k: None)
