"""Request body parsers with bounds: size, nesting, and text PostgreSQL can store.

DRF reads a JSON or form body straight from the request stream, so Django's
``DATA_UPLOAD_MAX_MEMORY_SIZE`` never applies to it. These parsers refuse, as a 4xx in the one
error shape, what used to be a 500:

- a body larger than ``API_BODY_MAX_BYTES`` (413), read no further than that;
- JSON nested so deeply that Python's parser hits its recursion limit;
- text with NUL characters or unpaired UTF-16 surrogates (``"\\ud800"``): PostgreSQL cannot
  store either, and a surrogate cannot even be rendered back in an error message.
"""

from __future__ import annotations

import io
import re
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import FormParser, JSONParser

# Cheap pre-checks on the raw bytes; only a body that matches is walked after parsing.
_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


def _read_bounded(stream: Any, parser_context: dict | None) -> bytes:
    limit = int(settings.API_BODY_MAX_BYTES)
    request = (parser_context or {}).get("request")
    declared = int((request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0)
    if declared > limit:
        raise BodyTooLarge(f"The request body is {declared} bytes; the limit is {limit}.")
    body = stream.read(limit + 1) if stream is not None else b""
    if len(body) > limit:
        raise BodyTooLarge(f"The request body is over the limit of {limit} bytes.")
    return body


def _bad_text(value: Any) -> bool:
    """Whether any string in ``value`` (keys included) holds a NUL or an unpaired surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item or any("\ud800" <= ch <= "\udfff" for ch in item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        body = _read_bounded(stream, parser_context)
        try:
            data = super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        if _SUSPECT.search(body) and _bad_text(data):
            raise ParseError("Text must not contain NUL characters or unpaired surrogates.")
        return data


class BoundedFormParser(FormParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        body = _read_bounded(stream, parser_context)
        data = super().parse(io.BytesIO(body), media_type, parser_context)
        if _bad_text([[key, *values] for key, values in data.lists()]):
            raise ParseError("Text must not contain NUL characters or unpaired surrogates.")
        return data
