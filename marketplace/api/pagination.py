"""Page-number pagination with stated bounds.

``page`` is 1..PAGE_MAX and ``page_size`` 1..``max_page_size``; the schema says so, anything else
is a 400 naming the parameter (DRF silently used the default page size for a bad ``page_size``
and answered 404 for a page past the end). A page past the end is an empty page (200), since the
client cannot know where the end is before asking.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import Page
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.utils.urls import replace_query_param

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
