"""The one error shape (``marketplace.api.errors``) as a schema, for ``extend_schema`` responses.

One component: the serializer lives in ``marketplace.api.schema`` (the AutoSchema that adds the
error responses every view can return); routes that describe a status in their own words use it
through these names.
"""

from __future__ import annotations

from .schema import ErrorSerializer

ERROR = ErrorSerializer

__all__ = ["ERROR", "ErrorSerializer"]
