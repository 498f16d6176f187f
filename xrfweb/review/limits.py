"""Heavy work inside a web request is bounded: a first comparison of models (Richardson-Lucy and
network inference), a model's example, and a dataset's first read (up to 4 GB, in a child
process) run one at a time per user, and at most XRFWEB_HEAVY_REQUESTS at once across the site,
so that a few requests cannot hold every web worker. Past that the request answers 429 with
Retry-After, and the page asks again (static/review/maps.js getJSON). Results are kept on disk:
only the first view of each computes, and a kept result is served without waiting.

The counts live in the shared cache (Redis), so every web process sees them; a place is
returned when the work ends, or after LEASE_S if its process died."""
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import cache

LEASE_S = 15 * 60
RETRY_AFTER_S = 3


class Busy(Exception):
    """No place for heavy work now: 429, try again in RETRY_AFTER_S."""


@contextmanager
def heavy(user):
    mine = f"heavy-work:user:{user.pk}"
    if not cache.add(mine, 1, LEASE_S):
        raise Busy("you have another comparison or first view being computed; this one starts "
                   "when it is done")
    place = None
    try:
        for i in range(settings.XRFWEB_HEAVY_REQUESTS):
            if cache.add(f"heavy-work:place:{i}", 1, LEASE_S):
                place = i
                break
        if place is None:
            raise Busy("the server is computing other views; this one starts in a moment")
        yield
    finally:
        if place is not None:
            cache.delete(f"heavy-work:place:{place}")
        cache.delete(mine)
