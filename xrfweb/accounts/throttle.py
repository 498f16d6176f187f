"""Sign-in throttling: after MAX_FAILURES failed sign-ins for one user name from one address
within WINDOW_S, that pair is refused until the window has passed, even with the right password.

It sits in the authentication backend, so the sign-in page, the API token endpoint and the admin
sign-in are all covered; the first two also answer 429 with a message (views.py). Counts live in
Django's cache: per web process with the default local-memory cache (set CACHES to Redis to
share them between processes)."""
import hashlib

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver

MAX_FAILURES = 10
WINDOW_S = 15 * 60
MESSAGE = (f"Too many failed sign-ins for this user name from your address; try again in "
           f"{WINDOW_S // 60} minutes.")


def _key(username, request) -> str:
    who = f"{(username or '').strip().lower()}|{request.META.get('REMOTE_ADDR', '')}"
    return "signin-failures:" + hashlib.sha256(who.encode()).hexdigest()


def locked(username, request) -> bool:
    return request is not None and cache.get(_key(username, request), 0) >= MAX_FAILURES


class ThrottledModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get("username")
        if locked(username, request):
            raise PermissionDenied(MESSAGE)  # authenticate() stops here: no other backend asked
        return super().authenticate(request, username=username, password=password, **kwargs)


@receiver(user_login_failed)
def _count_failure(sender, credentials, request=None, **kwargs):
    if request is None:
        return
    key = _key(credentials.get("username"), request)
    if cache.add(key, 1, WINDOW_S):  # the window starts at the first failure
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, WINDOW_S)


@receiver(user_logged_in)
def _forget_failures(sender, request=None, user=None, **kwargs):
    if request is not None and user is not None:
        cache.delete(_key(user.get_username(), request))
