"""The OpenAPI schema tells the truth about errors, in one place.

Every API error is rendered by ``marketplace.api.errors.exception_handler`` as one JSON shape,
``{"error": {"code", "message", "fields"?}}``. Rather than each view listing the statuses it can
fail with (and forgetting some), :class:`AutoSchema` derives them from what the view *is*:

=====  ==========================================================================================
 400   any write (a body or a service's own ``ValidationError``); a list with a ``django-filter``
       filterset (a filter value that does not parse)
 401   the view needs a logged-in user (DRF answers 401 with ``WWW-Authenticate`` to anonymous
       callers because token authentication comes first)
 403   a role permission (``IsRequester``, ``IsWorker``, ``IsPlatformAdmin``); any write that
       session authentication may refuse for a missing CSRF token
 404   an object in the path; a paginated list (a page past the end)
 409   any write by a logged-in user (services refuse a change the state does not allow:
       ``Conflict``); the public writes (sign-up, token) have no state to conflict with
 413   a write with a body (larger than ``API_BODY_MAX_BYTES``, or than Django's
       ``DATA_UPLOAD_MAX_MEMORY_SIZE`` where a body is read as a form)
 415   a write with a body (a ``Content-Type`` no parser of the view accepts)
 429   the view has throttles
 503   every operation: the database connection dropped mid-request (nothing changed; retry
       after ``Retry-After``)
=====  ==========================================================================================

A view declares the rest itself, with ``extend_schema(responses={502: error_response(502)})``,
where it returns something special: a ``502`` where it calls Stripe, a ``404`` for an object
named in the body, ``400`` on a ``GET`` that validates its path, and the
real media types of file downloads. Statuses a view declares win over the derived ones.
``405`` (a method the path does not have) and ``406`` (an ``Accept`` the API cannot serve) are
HTTP's answers on every route and are not repeated on each operation.
"""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import force_instance
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

ERROR_DESCRIPTIONS = {
    400: "The request is not valid; `error.fields` says which fields and why.",
    401: "Authentication is required (`Authorization: Token <key>`).",
    403: "You are not allowed to do this.",
    404: "Not found, or not yours (the two are not told apart).",
    409: "The object is not in a state that allows this.",
    413: "The request body (or the upload) is larger than this server accepts.",
    415: "The request's Content-Type is not accepted here.",
    429: "Too many requests; retry after the time in `Retry-After`.",
    502: "Stripe failed or refused; the operation can be retried.",
    503: "The database was briefly unavailable; nothing changed. Retry after `Retry-After`.",
}


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable reason, e.g. `not_found`")
    message = serializers.CharField(help_text="What went wrong, for a person to act on")
    fields = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        help_text="Per-field messages of a validation error: field name -> list of messages",
    )


class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API (``marketplace.api.errors``)."""

    error = ErrorDetailSerializer()


# --- Fields whose check lives in a service: the schema states the shape the service accepts ----
# (The annotation payload's is ``tasks.api.schemas.AnnotationPayloadField``: its formats are the
# tasks app's.)
# (At run time they are DRF's JSONField: the value reaches the service as sent, which checks it
# and answers with its own, more precise, error.)


@extend_schema_field({"type": "number", "minimum": 0})
class SecondsField(serializers.JSONField):
    """A duration in seconds: a number, not negative."""


def error_response(status: int) -> OpenApiResponse:
    """The error response for ``status``; views use it in ``extend_schema(responses=...)``."""
    return OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS.get(status, ""))


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema plus the error responses each view can return."""

    def error_statuses(self) -> set[int]:
        view, method = self.view, self.method
        statuses: set[int] = set()
        permissions = view.get_permissions()
        public = all(type(p) is AllowAny for p in permissions)
        if not public:
            statuses.add(401)
            if any(not isinstance(p, (AllowAny, IsAuthenticated)) for p in permissions):
                statuses.add(403)
        if method in UNSAFE_METHODS:
            statuses.add(400)
            if not public:
                statuses.add(409)
                if any(isinstance(a, SessionAuthentication) for a in view.get_authenticators()):
                    statuses.add(403)
            if method != "DELETE" and self.get_request_serializer() is not None:
                statuses.update((413, 415))
        if "{" in self.path:
            statuses.add(404)
        if method == "GET" and self._is_list_view():
            if self._get_paginator() is not None:
                statuses.add(404)
            if self._has_filterset():
                statuses.add(400)
        if view.get_throttles():
            statuses.add(429)
        statuses.add(503)  # the database connection dropped (marketplace.api.errors)
        return statuses

    def _has_filterset(self) -> bool:
        view = self.view
        backends = getattr(view, "filter_backends", None) or []
        if not any(issubclass(b, DjangoFilterBackend) for b in backends):
            return False
        return bool(
            getattr(view, "filterset_class", None) or getattr(view, "filterset_fields", None)
        )

    def map_parsers(self) -> list[str]:
        """Request media types: JSON, and multipart only where a file is uploaded.

        DRF's default parsers also take form-encoded and multipart bodies everywhere, but those
        cannot carry the nested objects and lists most bodies have (an empty list, an annotation
        object), so documenting them would promise what the API cannot do; they keep working
        for the simple bodies where they happen to fit.
        """
        media_types = super().map_parsers()
        keep = {"application/json"}
        if self._uploads_file():
            keep.add("multipart/form-data")
        return [m for m in media_types if m in keep] or media_types

    def _uploads_file(self) -> bool:
        serializer = force_instance(self.get_request_serializer())
        if not isinstance(serializer, serializers.Serializer):
            return False
        return any(
            isinstance(f, serializers.FileField)
            or isinstance(getattr(f, "child", None), serializers.FileField)
            for f in serializer.fields.values()
        )

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for status in sorted(self.error_statuses()):
            code = str(status)
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    error_response(status), code, ["application/json"], direction
                )
        return dict(sorted(responses.items()))
