"""Requester API of the claim path: publish/pause/resume a job, review its submissions."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.api.permissions import IsRequester
from marketplace.api.schema import error_response
from marketplace.api.serializers import JobSerializer
from marketplace.selectors import jobs_visible_to

from .. import claiming, reviewing, work_selectors
from ..models import AssignmentStatus


def _job(request, pk: int):
    return get_object_or_404(jobs_visible_to(request.user), pk=pk)


class PublishView(APIView):
    """Publish a ready job: its microtasks become claimable as far as its budget covers them."""

    permission_classes = [IsRequester]

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request, pk: int):
        job = _job(request, pk)
        fill = claiming.job_publish(job=job, by=request.user)
        job.refresh_from_db()
        return Response(
            {
                "job": JobSerializer(job).data,
                "slots": fill.regular_slots,
                "gold_slots": fill.gold_slots,
                "reserved": fill.reserved,
                "uncovered_microtasks": fill.uncovered_microtasks,
            }
        )


class PauseView(APIView):
    """Stop new claims on a published job."""

    permission_classes = [IsRequester]

    @extend_schema(request=None, responses=JobSerializer)
    def post(self, request, pk: int):
        job = claiming.job_pause(job=_job(request, pk), by=request.user)
        return Response(JobSerializer(job).data)


class ResumeView(APIView):
    """Make a paused job claimable again."""

    permission_classes = [IsRequester]

    @extend_schema(request=None, responses=JobSerializer)
    def post(self, request, pk: int):
        job = claiming.job_resume(job=_job(request, pk), by=request.user)
        return Response(JobSerializer(job).data)


class CompleteView(APIView):
    """Close a job: no more claims; unused reservations go back to the job's escrow."""

    permission_classes = [IsRequester]

    @extend_schema(request=None, responses=JobSerializer)
    def post(self, request, pk: int):
        job = claiming.job_complete(job=_job(request, pk), by=request.user)
        return Response(JobSerializer(job).data)


def _submission_row(a) -> dict:
    sub = getattr(a, "submission", None)
    return {
        "id": a.pk,
        "worker": a.worker.username,
        "microtask": a.microtask_id,
        "frame_start": a.microtask.frame_start,
        "frame_end": a.microtask.frame_end,
        "status": a.status,
        "claimed_at": a.claimed_at,
        "submitted_at": a.submitted_at,
        "work_seconds": a.work_seconds,
        "active_seconds": a.active_seconds,
        "reviewed_at": a.reviewed_at,
        "auto_approve_at": a.auto_approve_at,
        "pay_amount": a.pay_amount,
        "rejection_reason": a.rejection_reason,
        "payload": sub.payload if sub else None,
    }


class JobSubmissionsView(APIView):
    """A job's submissions (filter with ``?status=submitted`` for the review queue)."""

    permission_classes = [IsRequester]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, pk: int):
        job = _job(request, pk)
        wanted = request.query_params.get("status") or None
        if wanted and wanted not in AssignmentStatus.values:
            wanted = None
        rows = work_selectors.submissions_for_review(job=job, status=wanted)[:1000]
        return Response({"results": [_submission_row(a) for a in rows]})


@extend_schema_field(
    {"type": "string", "minLength": 1, "maxLength": reviewing.MAX_REASON, "pattern": r"\S"}
)
class ReasonField(serializers.CharField):
    """The reason a worker reads: ``reviewing`` refuses a blank or overlong one with its own
    message; the schema states the same rule."""


class RejectInput(serializers.Serializer):
    reason = ReasonField(trim_whitespace=False)


class BulkInput(serializers.Serializer):
    action = serializers.ChoiceField(choices=["approve", "reject"])
    assignments = serializers.ListField(child=serializers.IntegerField(min_value=1))
    reason = serializers.CharField(allow_blank=True, required=False, default="")


class ApproveView(APIView):
    """Approve a submission: the worker is paid."""

    permission_classes = [IsRequester]

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request, pk: int):
        a = reviewing.assignment_approve(assignment_id=pk, by=request.user)
        return Response({"id": a.pk, "status": a.status, "pay_amount": a.pay_amount})


class RejectView(APIView):
    """Reject a submission with a reason the worker sees."""

    permission_classes = [IsRequester]

    @extend_schema(request=RejectInput, responses=OpenApiTypes.OBJECT)
    def post(self, request, pk: int):
        data = RejectInput(data=request.data)
        data.is_valid(raise_exception=True)
        a = reviewing.assignment_reject(
            assignment_id=pk, by=request.user, reason=data.validated_data["reason"]
        )
        return Response({"id": a.pk, "status": a.status, "reason": a.rejection_reason})


class BulkReviewView(APIView):
    """Approve or reject many submissions at once (all or none)."""

    permission_classes = [IsRequester]

    @extend_schema(
        request=BulkInput,
        # 404: a listed submission is not on one of your jobs
        responses={200: OpenApiTypes.OBJECT, 404: error_response(404)},
    )
    def post(self, request):
        data = BulkInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        rows = reviewing.assignments_review_bulk(
            by=request.user, action=v["action"], assignment_ids=v["assignments"], reason=v["reason"]
        )
        return Response({"results": [{"id": a.pk, "status": a.status} for a in rows]})
