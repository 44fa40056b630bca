"""Render every API error as one JSON shape.

``{"error": {"code": "...", "message": "...", "fields": {...}}}`` with the status from the error.
DRF's own exceptions (validation, authentication, throttling) and Django's ``Http404`` /
``PermissionDenied`` are mapped into the same shape, so clients handle one format.

A Django ``ValidationError`` or a database ``DataError`` reaching this handler is a bug: services
validate first and raise the project's own errors. The client still gets a 400 in the same shape
(the input was what the database refused), and the bug is logged with its traceback so it gets
fixed at its root. An ``IntegrityError`` is a 409 with the constraint's message
(``marketplace.constraints``), never the constraint's name or the SQL.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from marketplace.constraints import integrity_message
from marketplace.errors import ApplicationError, RateLimited
from marketplace.ratelimit import wait_phrase

logger = logging.getLogger(__name__)


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


def _stray_error_response(exc: Exception, context: dict) -> Response:
    view = context.get("view")
    logger.error(
        "BUG: %s escaped a service in %s; validate in the service and raise "
        "marketplace.errors.ValidationError instead",
        type(exc).__name__,
        type(view).__name__ if view is not None else "?",
        exc_info=exc,
    )
    if isinstance(exc, DjangoValidationError) and hasattr(exc, "error_dict"):
        found = {k: [str(m) for m in v] for k, v in exc.message_dict.items()}
        general = found.pop(NON_FIELD_ERRORS, [])
        message = "; ".join(general) or "Some fields are not valid."
        return Response(error_body("invalid", message, found or None), status=400)
    if isinstance(exc, DjangoValidationError):
        return Response(error_body("invalid", "; ".join(exc.messages)), status=400)
    # A DataError's text names columns and SQL; the client gets a plain sentence.
    return Response(error_body("invalid", "A value is out of the range allowed."), status=400)


# Seconds a client waits before retrying after the database dropped its request.
DATABASE_RETRY_AFTER = 1


def database_unavailable_body(what_happened: str) -> dict:
    """The 503 of a request the database rolled back (``marketplace.unavailable`` says why)."""
    return error_body("unavailable", f"{what_happened} Retry in a moment.")


def exception_handler(exc: Exception, context: dict) -> Response | None:
    # A dropped database connection (OperationalError, InterfaceError) is left to Django:
    # ``marketplace.unavailable`` answers it for the API and the pages alike (503, Retry-After).
    if isinstance(exc, ApplicationError):
        response = Response(error_body(exc.code, exc.message, **exc.extra), status=exc.status_code)
        if isinstance(exc, RateLimited):
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, DjangoValidationError | DataError):
        return _stray_error_response(exc, context)
    if isinstance(exc, IntegrityError):
        # A constraint refused the write (a race a service did not foresee, or a bug): a 409
        # with the constraint's message, never its name or the SQL.
        logger.error("BUG: IntegrityError escaped a service", exc_info=exc)
        return Response(error_body("conflict", integrity_message(exc)), status=409)
    # Django refuses a body while DRF parses it (too many form fields, too large): the client gets
    # the API's JSON error, not Django's HTML 400 page.
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("too_large", "The request body is too large."), status=413)
    if isinstance(exc, SuspiciousOperation):
        return Response(error_body("invalid", f"The request was refused: {exc}"), status=400)
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
