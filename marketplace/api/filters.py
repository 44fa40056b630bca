from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from marketplace.models import AnnotationType, Job, JobStatus


class UTCIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, turned into UTC before it reaches the database.

    Python accepts UTC offsets up to ±23:59 but PostgreSQL only up to ±15:59, so an offset such
    as ``-20:40`` passed through as written was a ``DataError`` (a 500); in UTC it is a plain
    instant. One that UTC cannot hold (year 1 with a positive offset) is a 400.
    """

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("Date and time out of range.", code="invalid") from None


class UTCIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField


class JobFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=JobStatus.choices)
    annotation_type = django_filters.ChoiceFilter(choices=AnnotationType.choices)
    created_after = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Job
        fields = ["status", "annotation_type", "created_after", "created_before"]
