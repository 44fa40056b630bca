from __future__ import annotations

from rest_framework import serializers

from marketplace.models import AnnotationType, Job
from marketplace.services import JOB_EDITABLE_FIELDS


class JobSerializer(serializers.ModelSerializer):
    annotation_type = serializers.ChoiceField(choices=AnnotationType.choices)
    label_classes = serializers.ListField(
        child=serializers.CharField(max_length=100), allow_empty=True, required=False
    )
    # Within PostgreSQL's bigint: beyond it, the model's own check raised Django's ValidationError
    # (a 500).
    budget = serializers.IntegerField(
        min_value=0, max_value=2**63 - 1, help_text="Minor units (cents)"
    )
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

    def validate_currency(self, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise serializers.ValidationError("Use a three-letter ISO currency code.")
        return value.lower()

    def validate_label_classes(self, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Class names must be unique.")
        return value

    def validate(self, attrs: dict) -> dict:
        instance = self.instance
        lo = attrs.get("overlap_min", getattr(instance, "overlap_min", 3))
        hi = attrs.get("overlap_max", getattr(instance, "overlap_max", 5))
        if lo > hi:
            raise serializers.ValidationError({"overlap_min": ["Must not exceed overlap_max."]})
        seg = attrs.get("segment_frames", getattr(instance, "segment_frames", 150))
        ov = attrs.get("overlap_frames", getattr(instance, "overlap_frames", 10))
        if ov >= seg:
            raise serializers.ValidationError(
                {"overlap_frames": ["Must be smaller than segment_frames."]}
            )
        kind = attrs.get("annotation_type", getattr(instance, "annotation_type", None))
        classes = attrs.get("label_classes", getattr(instance, "label_classes", []))
        if kind and kind != AnnotationType.CLASSIFY and not classes:
            raise serializers.ValidationError({"label_classes": ["Name at least one class."]})
        if kind == AnnotationType.CLASSIFY and len(classes) < 2:
            raise serializers.ValidationError(
                {"label_classes": ["Classification needs at least two classes."]}
            )
        return attrs
