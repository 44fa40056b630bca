"""Requester API of the claim path: a job's submissions and their review. (Publishing, pausing,
resuming and completing a job are actions of ``quality.api.jobs.JobWithReviewViewSet``, which
answers the job with its review mode, quality's to know.)"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace import bounds
from marketplace.api.error_schema import ERROR
from marketplace.api.pagination import DefaultPagination
from marketplace.api.permissions import IsPlatformAdmin, IsRequester
from marketplace.api.schema import error_response
from marketplace.api.serializers import text
from marketplace.selectors import jobs_visible_to

from .. import reviewing, work_selectors
from ..models import Assignment, AssignmentStatus, RejectionDispute
from .schemas import SubmissionRowSerializer
from .work import StatusQuery, status_filter


def _job(request, pk: int):
    return get_object_or_404(jobs_visible_to(request.user), pk=pk)


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


class SubmissionPagination(DefaultPagination):
    """A job has as many submissions as its microtasks times their replicas, tens of thousands
    for a long video: pages of at most 500, every one reachable (``?page=``, ``next``)."""

    page_size = 100
    max_page_size = 500


class JobSubmissionsView(ListAPIView):
    """A job's submissions, oldest first, a page at a time (filter with ``?status=submitted``
    for the review queue)."""

    permission_classes = [IsRequester]
    pagination_class = SubmissionPagination
    serializer_class = SubmissionRowSerializer

    @extend_schema(
        parameters=[StatusQuery],
        responses={200: SubmissionRowSerializer(many=True), 400: error_response(400)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no job
            return Assignment.objects.none()
        job = _job(self.request, self.kwargs["pk"])
        return work_selectors.submissions_for_review(job=job, status=status_filter(self.request))

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([_submission_row(a) for a in page])


@extend_schema_field(
    {"type": "string", "minLength": 1, "maxLength": reviewing.MAX_REASON, "pattern": r"\S"}
)
class ReasonField(serializers.CharField):
    """The reason a worker reads: ``reviewing`` refuses a blank or overlong one with its own
    message; the schema states the same rule."""


class RejectInput(serializers.Serializer):
    reason = text(
        max_length=reviewing.MAX_REASON, help_text="Why the work is rejected; the worker sees it."
    )


class BulkInput(serializers.Serializer):
    action = serializers.ChoiceField(choices=["approve", "reject"])
    assignments = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=bounds.ID_MAX),
        min_length=1,
        max_length=reviewing.MAX_BULK,
    )
    reason = serializers.CharField(
        allow_blank=True,
        required=False,
        default="",
        max_length=reviewing.MAX_REASON,
        help_text="Required to reject.",
    )


class ApproveResult(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=AssignmentStatus.choices, help_text='"approved"')
    pay_amount = serializers.IntegerField(help_text="What the worker was paid (minor units)")


class ApproveView(APIView):
    """Approve a submission: the worker is paid."""

    permission_classes = [IsRequester]

    @extend_schema(request=None, responses=ApproveResult)
    def post(self, request, pk: int):
        a = reviewing.assignment_approve(assignment_id=pk, by=request.user)
        return Response(ApproveResult(a).data)


class DisputeSerializer(serializers.ModelSerializer):
    class Meta:
        model = RejectionDispute
        fields = [
            "id",
            "assignment",
            "job",
            "reason",
            "status",
            "decision_note",
            "created_at",
            "decided_at",
        ]


class RejectResult(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField(help_text='"rejected", or "approved" while an admin decides')
    reason = serializers.CharField()
    dispute = DisputeSerializer(required=False, help_text="Present when an admin decides")
    message = serializers.CharField(required=False)


class BulkRow(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    dispute = serializers.IntegerField(required=False)


class BulkResult(serializers.Serializer):
    results = BulkRow(many=True)
    disputes = serializers.IntegerField(help_text="Rejections sent to an admin")
    message = serializers.CharField(required=False)


_REVIEW_ERRORS = {
    400: OpenApiResponse(ERROR, description="No reason given, or invalid input"),
    403: OpenApiResponse(ERROR, description="Not a requester"),
    404: OpenApiResponse(ERROR, description="No such submission of your jobs"),
    409: OpenApiResponse(
        ERROR,
        description=(
            "Not awaiting review: already reviewed (approved work can be rejected only when "
            "you exported its labels), or already in a dispute"
        ),
    ),
}


class RejectView(APIView):
    """Reject a submission with a reason the worker sees.

    Work whose labels you already exported is not rejected: a dispute goes to an admin (202),
    the work stays approved and the worker keeps the pay unless the admin upholds it.
    """

    permission_classes = [IsRequester]

    @extend_schema(
        request=RejectInput,
        responses={
            200: OpenApiResponse(RejectResult, description="Rejected; the worker is not paid"),
            202: OpenApiResponse(
                RejectResult,
                description=(
                    "You exported this work's labels: a dispute is open for an admin; the work "
                    "stays approved and paid until the admin decides"
                ),
            ),
            **_REVIEW_ERRORS,
        },
    )
    def post(self, request, pk: int):
        data = RejectInput(data=request.data)
        data.is_valid(raise_exception=True)
        outcome = reviewing.assignment_reject(
            assignment_id=pk, by=request.user, reason=data.validated_data["reason"]
        )
        if outcome.disputed:
            (dispute,) = outcome.disputed
            body = {
                "id": dispute.assignment_id,
                "status": AssignmentStatus.APPROVED,
                "reason": dispute.reason,
                "dispute": DisputeSerializer(dispute).data,
                "message": outcome.message,
            }
            return Response(body, status=status.HTTP_202_ACCEPTED)
        (a,) = outcome.done
        return Response({"id": a.pk, "status": a.status, "reason": a.rejection_reason})


class BulkReviewView(APIView):
    """Approve or reject many submissions at once (all or none).

    Rejections of work whose labels you exported become disputes for an admin (202).
    """

    permission_classes = [IsRequester]

    @extend_schema(
        request=BulkInput,
        responses={
            200: OpenApiResponse(BulkResult, description="All approved, or all rejected"),
            202: OpenApiResponse(
                BulkResult,
                description=(
                    "Some rejections went to an admin as disputes (exported work): those stay "
                    "approved and paid until the admin decides; the others are rejected"
                ),
            ),
            **_REVIEW_ERRORS,
        },
    )
    def post(self, request):
        data = BulkInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        outcome = reviewing.assignments_review_bulk(
            by=request.user, action=v["action"], assignment_ids=v["assignments"], reason=v["reason"]
        )
        rows = [{"id": a.pk, "status": a.status} for a in outcome.done]
        rows += [
            {"id": d.assignment_id, "status": AssignmentStatus.APPROVED, "dispute": d.pk}
            for d in outcome.disputed
        ]
        rows.sort(key=lambda r: r["id"])
        body = {"results": rows, "disputes": len(outcome.disputed)}
        if outcome.disputed:
            body["message"] = outcome.message
            return Response(body, status=status.HTTP_202_ACCEPTED)
        return Response(body)


class DisputeListView(APIView):
    """Disputes over rejected exported work: all pending ones for an admin (``?all=1`` for
    decided ones too), every one of your jobs' for a requester."""

    permission_classes = [IsRequester]

    @extend_schema(
        responses={
            200: DisputeSerializer(many=True),
            403: OpenApiResponse(ERROR, description="Not a requester or admin"),
        }
    )
    def get(self, request):
        pending_only = request.user.is_platform_admin and not request.query_params.get("all")
        rows = work_selectors.disputes_visible_to(user=request.user, pending_only=pending_only)
        return Response(DisputeSerializer(rows[:500], many=True).data)


class DisputeDecision(serializers.Serializer):
    uphold = serializers.BooleanField()
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class DisputeDecideView(APIView):
    """An admin decides a dispute: upheld, the pay is taken back and the work rejected;
    dismissed, the work stays approved and paid."""

    permission_classes = [IsPlatformAdmin]

    @extend_schema(
        request=DisputeDecision,
        responses={
            200: DisputeSerializer,
            400: OpenApiResponse(ERROR, description="Invalid input"),
            403: OpenApiResponse(ERROR, description="Not a platform admin"),
            404: OpenApiResponse(ERROR, description="No such dispute"),
            409: OpenApiResponse(
                ERROR,
                description=(
                    "Decided already, the work is no longer approved, or its pay has left the "
                    "hold period (then it is a payout reversal)"
                ),
            ),
        },
    )
    def post(self, request, pk: int):
        data = DisputeDecision(data=request.data)
        data.is_valid(raise_exception=True)
        dispute = reviewing.dispute_decide(
            dispute_id=pk,
            by=request.user,
            uphold=data.validated_data["uphold"],
            note=data.validated_data["note"],
        )
        return Response(DisputeSerializer(dispute).data)
