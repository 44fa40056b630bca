"""Render every API error as one JSON shape.

``{"error": {"code": "...", "message": "...", "fields": {...}}}`` with the status from the error.
DRF's own exceptions (validation, authentication, throttling) and Django's ``Http404`` /
``PermissionDenied`` are mapped into the same shape, so clients handle one format.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from marketplace.errors import ApplicationError, RateLimited
from marketplace.ratelimit import wait_phrase


def _flatten(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {k: _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_flatten(v) for v in detail]
    return str(detail)


def error_body(code: str, message: str, fields: dict | None = None, **extra: Any) -> dict:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    body.update(extra)
    return {"error": body}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ApplicationError):
        response = Response(error_body(exc.code, exc.message, **exc.extra), status=exc.status_code)
        if isinstance(exc, RateLimited):
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            fields = _flatten(detail)
            non_field = fields.pop("non_field_errors", None)
            message = "; ".join(non_field) if non_field else "Some fields are not valid."
            if not fields:
                fields = None
        else:
            fields = None
            message = "; ".join(_flatten(detail)) if isinstance(detail, list) else str(detail)
        response.data = error_body("invalid", message, fields)
    elif isinstance(exc, drf_exceptions.Throttled):
        # DRF has set Retry-After; the body says the same in words and in seconds.
        wait = int(exc.wait or 1)
        response.data = error_body(
            "throttled",
            f"Too many requests. Try again in {wait_phrase(wait)}.",
            retry_after=wait,
        )
    elif isinstance(exc, drf_exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "error"
        response.data = error_body(code, str(exc.detail))
    return response
