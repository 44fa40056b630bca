"""Page-number pagination with stated bounds, and a keyset cursor for lists that grow at the head.

``page`` is 1..PAGE_MAX and ``page_size`` 1..``max_page_size``; the schema says so, anything else
is a 400 naming the parameter (DRF silently used the default page size for a bad ``page_size``
and answered 404 for a page past the end). A page past the end is an empty page (200), since the
client cannot know where the end is before asking.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from django.core.paginator import Page
from django.db.models import Q
from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from marketplace import bounds

PAGE_MAX = 2**31 - 1


def _bounded_int(request, name: str, *, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise ValidationError({name: [f"A whole number between 1 and {maximum} is required."]})
    value = int(text)
    if not 1 <= value <= maximum:
        raise ValidationError({name: [f"A whole number between 1 and {maximum} is required."]})
    return value


class DefaultPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request) -> int:
        return _bounded_int(
            request, self.page_size_query_param, default=self.page_size, maximum=self.max_page_size
        )

    def paginate_queryset(self, queryset, request, view=None) -> list | None:
        self.request = request
        page_size = self.get_page_size(request)
        paginator = self.django_paginator_class(queryset, page_size)
        if request.query_params.get(self.page_query_param) in self.last_page_strings:
            number = paginator.num_pages
        else:
            number = _bounded_int(request, self.page_query_param, default=1, maximum=PAGE_MAX)
        if number > paginator.num_pages:
            self.page = Page([], number, paginator)
            return []
        self.page = paginator.page(number)
        if paginator.num_pages > 1 and self.template is not None:
            self.display_page_controls = True
        return list(self.page)

    def get_previous_link(self) -> str | None:
        paginator = self.page.paginator
        if self.page.number > paginator.num_pages:  # past the end: back to the last page
            if paginator.count == 0:
                return None
            url = self.request.build_absolute_uri()
            return replace_query_param(url, self.page_query_param, paginator.num_pages)
        return super().get_previous_link()

    def get_schema_operation_parameters(self, view) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": PAGE_MAX}
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": self.max_page_size,
                }
        return parameters


class KeysetPagination(BasePagination):
    """Newest-first pages over ``(key_field, id)``, each page a ``cursor`` past the last row seen.

    Page numbers suit a list that holds still (a job's submissions); a list whose owner adds to
    its head while walking it (a worker claiming while paging through their own work) would shift
    every later page by the rows added, showing some twice. A keyset cursor, "rows strictly
    older than (key, id)", is untouched by new rows, so a walk sees every row that existed when it
    began exactly once; ``id`` breaks ties in ``key_field``, with no offset to drift (DRF's
    ``CursorPagination`` keys on one field and counts ties by an offset).

    The queryset must be ordered ``(-key_field, -id)``, the cursor is opaque to clients, and a
    cursor that does not decode is a 400 naming ``cursor`` (never a 404 or a 500).
    """

    key_field: str = "created_at"
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    cursor_query_param = "cursor"

    def paginate_queryset(self, queryset, request, view=None) -> list:
        self.request = request
        size = _bounded_int(
            request, self.page_size_query_param, default=self.page_size, maximum=self.max_page_size
        )
        cursor = self._decode(request.query_params.get(self.cursor_query_param))
        key = self.key_field
        self.next_after = self.previous_before = None
        if cursor is None or cursor[0] == "n":
            if cursor is not None:
                _, at, pk = cursor
                queryset = queryset.filter(Q(**{f"{key}__lt": at}) | Q(**{key: at, "id__lt": pk}))
            rows = list(queryset.order_by(f"-{key}", "-id")[: size + 1])
            has_more, rows = len(rows) > size, rows[:size]
            if rows and has_more:
                self.next_after = rows[-1]
            if rows and cursor is not None:
                self.previous_before = rows[0]
        else:
            _, at, pk = cursor
            queryset = queryset.filter(Q(**{f"{key}__gt": at}) | Q(**{key: at, "id__gt": pk}))
            rows = list(queryset.order_by(key, "id")[: size + 1])
            has_more, rows = len(rows) > size, rows[:size][::-1]
            if rows:
                self.next_after = rows[-1]
                if has_more:
                    self.previous_before = rows[0]
        return rows

    def _encode(self, direction: str, row) -> str:
        at = getattr(row, self.key_field).isoformat()
        token = json.dumps([direction, at, row.pk], separators=(",", ":")).encode()
        cursor = base64.urlsafe_b64encode(token).decode("ascii")
        return replace_query_param(
            self.request.build_absolute_uri(), self.cursor_query_param, cursor
        )

    def _decode(self, raw: str | None) -> tuple[str, datetime, int] | None:
        if raw is None or raw == "":
            return None
        try:
            if len(raw) > 200:
                raise ValueError
            direction, at, pk = json.loads(base64.urlsafe_b64decode(raw.encode("ascii")))
            when = parse_datetime(at) if isinstance(at, str) else None
            if (
                direction not in ("n", "p")
                or when is None
                or when.tzinfo is None
                or type(pk) is not int
                or not 1 <= pk <= bounds.ID_MAX
            ):
                raise ValueError
        except (ValueError, TypeError, UnicodeError, binascii.Error):
            raise ValidationError(
                {self.cursor_query_param: ["Not a cursor this list gave out; start without one."]}
            ) from None
        return direction, when, pk

    def get_paginated_response(self, data) -> Response:
        return Response(
            {
                "next": self._encode("n", self.next_after) if self.next_after else None,
                "previous": self._encode("p", self.previous_before)
                if self.previous_before
                else None,
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {
                "next": {**link, "description": "The next (older) page; null on the last"},
                "previous": {**link, "description": "The page before; null on the first"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "The cursor of a ``next`` or ``previous`` link (opaque)",
                "schema": {"type": "string", "maxLength": 200},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page (default {self.page_size})",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]
