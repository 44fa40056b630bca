"""A request the database rolled back is a 503 "retry", on pages as in the API.

One home for every view, API and pages: a view that raised ``OperationalError`` or
``InterfaceError`` had its transaction rolled back by the server, so nothing half-done remains
and a retry is safe (every write is idempotent or re-checks its state). Two causes, each told as
it is:

- the connection dropped (PostgreSQL restarted, failed over, or the backend was terminated);
- the server stopped the statement (a statement timeout, a cancel);
- the transaction collided with a concurrent one: PostgreSQL broke a deadlock by aborting it
  (SQLSTATE 40P01, psycopg's ``DeadlockDetected``) or could not serialise it (40001,
  ``SerializationFailure``). The lock orders (``payments.posting``) are meant to rule these out,
  so each is logged as a warning to look into, but the client's answer is the same: retry.

The client is told to retry (503, ``Retry-After``), in the API's JSON error shape
(``marketplace.api.errors``) under ``/api/`` and ``/stripe/``, as a short page elsewhere; never
Django's 500 page, which would say "our bug". (The API's exception handler leaves these errors
alone, so they reach this middleware.)
"""

from __future__ import annotations

import html
import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from marketplace.api.errors import DATABASE_RETRY_AFTER, database_unavailable_body

logger = logging.getLogger(__name__)

CONNECTION_LOST = (
    "The service lost its database connection while handling this request; nothing was changed."
)
COLLIDED = (
    "This request collided with another change to the same data at the same moment and was "
    "rolled back; nothing was changed."
)
STOPPED = "The database stopped this request before it finished; nothing was changed."
# SQLSTATEs of a transaction the server aborted because of a concurrent one.
COLLISION_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
# A connection that failed (class 08) or a server going away (57P01-57P03: admin shutdown, crash
# shutdown, cannot connect now); a connection dropped mid-request often carries no SQLSTATE.
CONNECTION_SQLSTATE_PREFIXES = ("08", "57P")

PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Try again in a moment</title>"
    "<h1>Try again in a moment</h1><p>{what_happened} Reload the page in a moment.</p></html>"
)


def what_happened(exc: BaseException) -> str:
    """Why the database rolled the request back, in a sentence for the person who sent it."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate in COLLISION_SQLSTATES:
        return COLLIDED
    if isinstance(exc, InterfaceError) or not sqlstate:
        return CONNECTION_LOST
    if sqlstate.startswith(CONNECTION_SQLSTATE_PREFIXES):
        return CONNECTION_LOST
    return STOPPED  # e.g. a statement timeout (57014): the server cancelled it


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, OperationalError | InterfaceError):
            return None
        said = what_happened(exc)
        logger.warning(
            "database rolled back %s %s (%s): %s",
            request.method,
            request.path,
            {COLLIDED: "collision", CONNECTION_LOST: "connection"}.get(said, "stopped"),
            exc,
        )
        if request.path.startswith("/api/") or request.path.startswith("/stripe/"):
            response: HttpResponse = JsonResponse(database_unavailable_body(said), status=503)
        else:
            page = PAGE.format(what_happened=html.escape(said))
            response = HttpResponse(page, status=503, content_type="text/html; charset=utf-8")
        response["Retry-After"] = str(DATABASE_RETRY_AFTER)
        return response
