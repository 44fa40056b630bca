"""Query filters of the job list, and a date-time filter that cannot overflow.

A date-time filter value is converted to UTC here, in Python: ``9999-12-31T23:59:59-23:59`` lies
past the last representable instant once in UTC, and sent as-is it made PostgreSQL raise a
``DataError`` (a 500). An instant beyond either end is clamped to that end, which is what such a
bound means for a filter ("everything after the beginning of time"), so any value the schema's
``date-time`` format allows is accepted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django_filters.fields import IsoDateTimeField

from marketplace.models import AnnotationType, Job, JobStatus

_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


class UtcIsoDateTimeField(IsoDateTimeField):
    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None or parsed.tzinfo is None:
            return parsed
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            return _LATEST if parsed.year > 1 else _EARLIEST


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """``IsoDateTimeFilter`` whose value is a UTC instant within Python's and PostgreSQL's range."""

    field_class = UtcIsoDateTimeField


class JobFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=JobStatus.choices)
    annotation_type = django_filters.ChoiceFilter(choices=AnnotationType.choices)
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Job
        fields = ["status", "annotation_type", "created_after", "created_before"]
