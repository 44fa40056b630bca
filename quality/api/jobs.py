"""``/api/jobs/``: a requester's jobs, with how their work is reviewed.

The job's own fields, bounds and lifecycle are marketplace's (``marketplace.api.views.JobViewSet``,
``marketplace.api.serializers.JobSerializer``); the review mode is quality's (a job's quality
policy), which marketplace cannot import. So the route is mounted here, the top layer, as the
new-job page is (``quality.requester_views``): ``review_mode`` is accepted on create (and on
update) and returned with every job, through the same services the page and the quality policy
API use (``job_create_with_review_mode``, ``job_update_with_review_mode``).
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from marketplace.api.serializers import JobSerializer
from marketplace.api.views import JobViewSet

from .. import services

REVIEW_MODE_HELP = (
    "How the job's work is settled: `auto` (the default), consensus and gold approve and reject "
    "as soon as work is scored; `review_first`, every submission waits for you and approves "
    "itself after `auto_approve_delay`. Reads `custom` when the quality policy API set "
    "`auto_approve` / `auto_reject` one by one."
)


class ReviewModeField(serializers.ChoiceField):
    """The job's review mode: one of ``REVIEW_MODES`` in, the policy's mode out (``custom`` too).

    It reads the whole job (``source="*"``), since the mode is not a column of it."""

    def __init__(self, **kwargs):
        super().__init__(choices=list(services.REVIEW_MODES), source="*", **kwargs)

    def to_internal_value(self, data) -> dict[str, str]:
        return {"review_mode": super().to_internal_value(data)}

    def to_representation(self, job) -> str:
        return services.job_review_mode(job)


class ReviewModeFieldSchema(OpenApiSerializerFieldExtension):
    """A request takes the modes one may choose; a response may also read ``custom``."""

    target_class = ReviewModeField

    def map_serializer_field(self, auto_schema, direction):
        modes = list(services.REVIEW_MODES)
        if direction == "response":
            modes.append("custom")
        return {"type": "string", "enum": modes}


# Its own component: the lifecycle routes (tasks.api) answer marketplace's "Job", without the mode.
@extend_schema_serializer(component_name="JobWithReviewMode")
class JobWithReviewSerializer(JobSerializer):
    review_mode = ReviewModeField(required=False, help_text=REVIEW_MODE_HELP)

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "review_mode"]


class JobWithReviewViewSet(JobViewSet):
    __doc__ = JobViewSet.__doc__
    serializer_class = JobWithReviewSerializer

    def get_queryset(self):
        return super().get_queryset().select_related("quality_policy")

    def perform_create(self, serializer: JobWithReviewSerializer) -> None:
        fields = dict(serializer.validated_data)
        serializer.instance = services.job_create_with_review_mode(
            requester=self.request.user,
            mode=fields.pop("review_mode", services.REVIEW_AUTO),
            field="review_mode",
            **fields,
        )

    def perform_update(self, serializer: JobWithReviewSerializer) -> None:
        fields = dict(serializer.validated_data)
        serializer.instance = services.job_update_with_review_mode(
            job=serializer.instance,
            by=self.request.user,
            mode=fields.pop("review_mode", None),
            field="review_mode",
            **fields,
        )
