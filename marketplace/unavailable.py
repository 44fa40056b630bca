"""A dropped database connection is a 503 "retry", on pages as in the API.

One home for every view, API and pages: a view that raised ``OperationalError`` or
``InterfaceError`` (PostgreSQL restarted, failed over, or the backend was terminated) had its
transaction rolled back by the server, so nothing half-done remains and a retry is safe (every
write is idempotent or re-checks its state). The client is told to retry (503, ``Retry-After``),
in the API's JSON error shape (``marketplace.api.errors``) under ``/api/`` and ``/stripe/``, as
a short page elsewhere; never Django's 500 page, which would say "our bug". (The API's exception
handler leaves these errors alone, so they reach this middleware.)
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from marketplace.api.errors import DATABASE_RETRY_AFTER, database_unavailable_body

logger = logging.getLogger(__name__)

PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Try again in a moment</title>"
    "<h1>Try again in a moment</h1><p>The service lost its database connection while handling "
    "this request; nothing was changed. Reload the page in a moment.</p></html>"
)


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, OperationalError | InterfaceError):
            return None
        logger.warning("database unavailable during %s %s: %s", request.method, request.path, exc)
        if request.path.startswith("/api/") or request.path.startswith("/stripe/"):
            response: HttpResponse = JsonResponse(database_unavailable_body(), status=503)
        else:
            response = HttpResponse(PAGE, status=503, content_type="text/html; charset=utf-8")
        response["Retry-After"] = str(DATABASE_RETRY_AFTER)
        return response
