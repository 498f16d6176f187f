"""Sign-in lockouts, by django-axes (settings: AXES_*): failed sign-ins are counted per address
(so that many user names tried from one address are slowed: password spraying) and per user
name and address together; past the limit the address (or that pair) is refused until the
cool-off has passed, even with the right password. Counts live in the shared cache (Redis).

It covers every authenticate() call: the sign-in page, the API token endpoint and the admin's
sign-in. The first two answer 429 with the reason (views.py); everything else gets locked_out()."""
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.http import JsonResponse


def message() -> str:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return (f"Too many failed sign-ins from your address; try again in {minutes} minutes.")


def locked(request, username) -> bool:
    return not AxesProxyHandler.is_allowed(request, {"username": username or ""})


def locked_out(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the answer to a locked sign-in that axes stopped itself."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": message()}, status=429)
    from django.contrib.auth.forms import AuthenticationForm
    from django.shortcuts import render

    return render(request, "registration/login.html",
                  {"form": AuthenticationForm(request), "locked": message()}, status=429)


def client_address(request) -> str:
    """AXES_CLIENT_IP_CALLABLE: the client's address. Behind XRFWEB_PROXIES trusted proxies
    (the TLS proxy of the Docker set-up), the address the nearest of them saw, from
    X-Forwarded-For; otherwise REMOTE_ADDR (a client could write any X-Forwarded-For)."""
    proxies = settings.XRFWEB_PROXIES
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
                 if a.strip()]
    if proxies and len(forwarded) >= proxies:
        return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")
