"""One error hierarchy for the whole project.

Services raise these; ``marketplace.api.errors.exception_handler`` renders every one as the same
JSON shape with an HTTP status taken from the class, and pages show ``message`` to the user.
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """Something went wrong."""

    status_code = 400
    code = "error"

    def __init__(self, message: str | None = None, *, extra: dict[str, Any] | None = None):
        self.message = message or (self.__doc__ or "").strip()
        self.extra = extra or {}
        super().__init__(self.message)


class ValidationError(ApplicationError):
    """The request is not valid."""

    code = "invalid"


class PermissionDenied(ApplicationError):
    """You are not allowed to do that."""

    status_code = 403
    code = "permission_denied"


class NotFound(ApplicationError):
    """Not found."""

    status_code = 404
    code = "not_found"


class Conflict(ApplicationError):
    """The object is not in a state that allows this."""

    status_code = 409
    code = "conflict"


class InvalidTransition(Conflict):
    """That change of status is not allowed."""

    code = "invalid_transition"


class NothingAvailable(ApplicationError):
    """There is no work available for you right now."""

    status_code = 404
    code = "nothing_available"


class ExternalServiceError(ApplicationError):
    """An external service failed; the operation can be retried."""

    status_code = 502
    code = "external_service_error"


class RateLimited(ApplicationError):
    """Too many requests; try again later."""

    status_code = 429
    code = "throttled"

    def __init__(self, message: str | None = None, *, retry_after: int):
        super().__init__(message, extra={"retry_after": retry_after})
        self.retry_after = retry_after
