"""``/api/jobs/``: a requester's jobs, with how their work is reviewed.

The job's own fields, bounds and lifecycle are marketplace's (``marketplace.api.views.JobViewSet``,
``marketplace.api.serializers.JobSerializer``); the review mode is quality's (a job's quality
policy), which marketplace cannot import. So the route is mounted here, the top layer, as the
new-job page is (``quality.requester_views``): ``review_mode`` is accepted on create (and on
update) and returned with every job, through the same services the page and the quality policy
API use (``job_create_with_review_mode``, ``job_update_with_review_mode``).

Every answer of the API that is a job is this viewset's, so each carries ``review_mode`` (one
component, ``JobWithReviewMode``): besides marketplace's ``cancel``, the lifecycle steps that are
the tasks app's are actions here too (``process``: ingestion; ``publish``, ``pause``, ``resume``,
``complete``: the claim path), each calling the tasks service that owns the step; tasks cannot
import quality, so it does not serve a job itself.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from marketplace.api.serializers import JobSerializer
from marketplace.api.views import JobViewSet
from tasks import claiming, ingestion_pipeline

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


@extend_schema_serializer(component_name="JobWithReviewMode")
class JobWithReviewSerializer(JobSerializer):
    review_mode = ReviewModeField(required=False, help_text=REVIEW_MODE_HELP)

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "review_mode"]


@extend_schema_serializer(component_name="JobPublished")
class JobPublishedSerializer(serializers.Serializer):
    """A published job and the replica slots publishing opened (``tasks.claiming.SlotFill``)."""

    job = JobWithReviewSerializer()
    slots = serializers.IntegerField(help_text="Replica slots opened: claimable work")
    gold_slots = serializers.IntegerField(help_text="Of which gold (known-answer) slots")
    reserved = serializers.IntegerField(help_text="Escrow reserved for the slots (minor units)")
    uncovered_microtasks = serializers.IntegerField(
        help_text="Microtasks the funded escrow does not cover yet: they open as it is funded"
    )


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

    # --- lifecycle steps owned by the tasks app (the job answered with its review mode) -------

    @extend_schema(request=None, responses={202: JobWithReviewSerializer})
    @action(detail=True, methods=["post"])
    def process(self, request, pk=None, format=None):
        """Start processing a draft job: draft → processing, one ingestion per video."""
        job = ingestion_pipeline.job_process(job=self.get_object(), by=request.user)
        return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=JobPublishedSerializer)
    @action(detail=True, methods=["post"])
    def publish(self, request, pk=None, format=None):
        """Publish a ready job: its microtasks become claimable as far as its escrow covers
        them."""
        job = self.get_object()
        fill = claiming.job_publish(job=job, by=request.user)
        job.refresh_from_db()
        body = {
            "job": job,
            "slots": fill.regular_slots,
            "gold_slots": fill.gold_slots,
            "reserved": fill.reserved,
            "uncovered_microtasks": fill.uncovered_microtasks,
        }
        return Response(JobPublishedSerializer(body, context=self.get_serializer_context()).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None, format=None):
        """Stop new claims on a published job."""
        job = claiming.job_pause(job=self.get_object(), by=request.user)
        return Response(self.get_serializer(job).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None, format=None):
        """Make a paused job claimable again."""
        job = claiming.job_resume(job=self.get_object(), by=request.user)
        return Response(self.get_serializer(job).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None, format=None):
        """Close a job: no more claims; unused reservations go back to the job's escrow."""
        job = claiming.job_complete(job=self.get_object(), by=request.user)
        return Response(self.get_serializer(job).data)
