"""Serializers of the marketplace API.

Every writable field states its range (``marketplace.bounds``) so the OpenAPI schema shows it
(minimum/maximum, maxLength, enum) and DRF refuses what is outside it. The job service checks the
same bounds, and the rules between fields, for pages and API alike; a value the schema allows is
accepted unless a rule between fields or a date in the past refuses it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils.dateparse import parse_duration
from rest_framework import serializers

from marketplace import bounds, label_schema
from marketplace.models import AnnotationType, Job
from marketplace.services import JOB_EDITABLE_FIELDS


class DurationSecondsField(serializers.IntegerField):
    """A duration as whole seconds: an integer whose range the schema can state.

    For clients of the earlier format a Django duration string (``"00:30:00"``, ``"P1D"``) is
    accepted too and held to the same range.
    """

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, str) and not data.strip().lstrip("+-").isdigit():
            if len(data) > 64:
                self.fail("invalid")
            try:
                parsed = parse_duration(data)
            except (OverflowError, ValueError):
                parsed = None
            if parsed is None:
                self.fail("invalid")
            return int(parsed.total_seconds())
        return super().to_internal_value(data)

    def run_validation(self, data: Any = serializers.empty) -> Any:
        value = super().run_validation(data)
        return value if value is None else timedelta(seconds=value)

    def to_representation(self, value: timedelta) -> int:
        return int(value.total_seconds())


class CurrencyField(serializers.ChoiceField):
    """One of the supported currencies (lower-case ISO 4217; upper case is accepted)."""

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, str) and len(data) <= 8:
            data = data.strip().lower()
        return super().to_internal_value(data)


def text(*, max_length: int, **kwargs: Any) -> serializers.RegexField:
    """Required text of at most ``max_length`` characters with something besides whitespace.

    DRF trims whitespace and then refuses a blank value; the pattern says so in the schema, so a
    string of spaces is not "schema-valid" there and refused here.
    """
    return serializers.RegexField(r"\S", max_length=max_length, **kwargs)


def _seconds(value: timedelta) -> int:
    return int(value.total_seconds())


class JobSerializer(serializers.ModelSerializer):
    annotation_type = serializers.ChoiceField(choices=AnnotationType.choices)
    requester = serializers.CharField(source="requester.username", read_only=True)

    class Meta:
        model = Job
        fields = [
            "id",
            "requester",
            "status",
            "failure_reason",
            *JOB_EDITABLE_FIELDS,
            "created_at",
            "updated_at",
            "published_at",
            "completed_at",
        ]
        read_only_fields = [
            "id",
            "requester",
            "status",
            "failure_reason",
            "created_at",
            "updated_at",
            "published_at",
            "completed_at",
        ]

    def get_fields(self) -> dict[str, serializers.Field]:
        # Built per instance, not at import: the bounds are settings, and an admin may set a
        # higher priority than a requester (the schema, built without a user, shows the latter).
        fields = super().get_fields()
        request = self.context.get("request")
        user = getattr(request, "user", None)
        claim_lo, claim_hi = bounds.claim_time_limit_range()
        approve_lo, approve_hi = bounds.auto_approve_delay_range()
        fields.update(
            title=text(max_length=bounds.TITLE_MAX_LENGTH),
            instructions=serializers.CharField(
                max_length=bounds.INSTRUCTIONS_MAX_LENGTH, allow_blank=True, required=False
            ),
            label_classes=serializers.ListField(
                child=text(max_length=bounds.LABEL_CLASS_NAME_MAX_LENGTH),
                min_length=1,
                max_length=bounds.LABEL_CLASSES_MAX,
                help_text="Unique class names; classification needs at least two.",
            ),
            event_labels=serializers.ListField(
                child=text(max_length=bounds.LABEL_CLASS_NAME_MAX_LENGTH),
                max_length=bounds.LABEL_CLASSES_MAX,
                required=False,
                help_text="A track job's event labels (actions of its tracks, e.g. crossing).",
            ),
            label_attributes=serializers.DictField(
                child=serializers.ListField(
                    child=serializers.DictField(),
                    max_length=label_schema.ATTRIBUTES_PER_CLASS_MAX,
                ),
                required=False,
                help_text=(
                    "Attributes per class, for bbox, polygon and track jobs: "
                    '{"car": [{"name": "occluded", "type": "bool"}, {"name": "colour", '
                    '"type": "choice", "values": ["red", "blue"]}, {"name": "speed", '
                    '"type": "number", "min": 0, "max": 200}]}. Names are identifiers, '
                    "unique per class; every class must be one of label_classes."
                ),
            ),
            relation_predicates=serializers.ListField(
                child=text(max_length=label_schema.PREDICATE_MAX_LENGTH),
                max_length=label_schema.PREDICATES_MAX,
                required=False,
                help_text='Unique predicates relations may use, e.g. ["rides", "holds"].',
            ),
            priority=serializers.IntegerField(
                min_value=0,
                max_value=bounds.priority_max(user),
                required=False,
                help_text="Higher is claimed first, within what the platform allows you.",
            ),
            claim_time_limit=DurationSecondsField(
                min_value=_seconds(claim_lo),
                max_value=_seconds(claim_hi),
                required=False,
                help_text="Seconds a worker has to finish one claimed microtask.",
            ),
            auto_approve_delay=DurationSecondsField(
                min_value=_seconds(approve_lo),
                max_value=_seconds(approve_hi),
                required=False,
                help_text="Seconds after which unreviewed work approves itself.",
            ),
            deadline=serializers.DateTimeField(
                allow_null=True,
                required=False,
                help_text=f"In the future, within {bounds.deadline_horizon().days} days.",
            ),
            budget=serializers.IntegerField(
                min_value=0, max_value=bounds.money_amount_max(), help_text="Minor units (cents)"
            ),
            currency=CurrencyField(
                choices=bounds.supported_currencies(),
                required=False,
                help_text="Fixed when the job is created; the platform currency by default.",
            ),
        )
        return fields
