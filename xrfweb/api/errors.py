"""Every API error is JSON with a message: {"error": "...", "fields": {...} for bad input}."""
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from enhancer import UserError


def _words(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_words(v)}" if k not in ("detail", "non_field_errors") else
                         _words(v) for k, v in detail.items())
    if isinstance(detail, list):
        return " ".join(_words(d) for d in detail)
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, UserError):  # the user's mistake, worded by whoever found it
        return Response({"error": str(exc)},
                        status=getattr(exc, "http_status", status.HTTP_400_BAD_REQUEST))
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django's 500 handling and the log take it
    data = response.data
    body = {"error": _words(data)}
    if isinstance(data, dict) and not set(data) <= {"detail"}:
        body["fields"] = data
    response.data = body
    return response
