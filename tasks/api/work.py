"""Worker API: job board, claim next, leases, submit, my work, the qualification list (a test's
questions and scoring are ``quality.api.qualification``).

Every response is built by ``tasks.work_selectors`` whitelists (``worker_view_of`` and friends),
never by a model serializer, so nothing a worker must not see can slip in with a new field.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace import bounds
from marketplace.api.error_schema import ErrorSerializer
from marketplace.api.pagination import KeysetPagination
from marketplace.api.permissions import IsWorker
from marketplace.api.schema import SecondsField
from marketplace.api.throttles import THROTTLED, ClaimThrottle, PropagateThrottle, SubmitThrottle
from marketplace.errors import NotFound
from marketplace.models import AnnotationType, Qualification, QualificationStatus

from .. import claiming, propagating, proposals, qualifying, suspensions, work_selectors
from ..drafts import DRAFT_MAX_BYTES, SAVED_AT_MAX
from ..models import Assignment, AssignmentStatus
from . import schemas
from .auth import CachedTokenAuthentication
from .schemas import AnnotationPayloadField, TrackField

# Ids are PostgreSQL bigints: a larger number reached the claim statement's SQL as a 500.


class ClaimInput(serializers.Serializer):
    job = serializers.IntegerField(
        required=False, min_value=1, max_value=bounds.ID_MAX, help_text="Claim from this job"
    )


@extend_schema_field(
    {
        "type": "object",
        "properties": {
            "saved_at": {"type": "integer", "minimum": 0, "maximum": SAVED_AT_MAX},
            "payload": {"type": "object", "additionalProperties": True},
        },
        "required": ["saved_at", "payload"],
        "additionalProperties": False,
    }
)
class DraftField(serializers.JSONField):
    """Work in progress (``tasks.drafts``): checked for shape and size by the service."""


class LeaseInput(serializers.Serializer):
    active_seconds = SecondsField(required=False, help_text="Seconds of active work")
    draft = DraftField(
        required=False,
        help_text="Work in progress to keep with the claim: {saved_at (ms since the epoch, the "
        f"page's clock), payload (the annotation so far)}}, at most {DRAFT_MAX_BYTES} bytes; "
        "never a submission",
    )


class SubmitInput(serializers.Serializer):
    payload = AnnotationPayloadField(help_text="The annotation, in the job type's format")
    active_seconds = SecondsField(required=False)


WORKER_AUTH = [CachedTokenAuthentication, SessionAuthentication]


def worker_errors(**by_status: str) -> dict[int, OpenApiResponse]:
    """Schema entries for error statuses: ``worker_errors(e404="...")``; 401 and 403 (not signed
    in, not a worker) come with every worker route (``quality.api.qualification``'s too)."""
    out = {
        401: OpenApiResponse(ErrorSerializer, description="Not signed in"),
        403: OpenApiResponse(ErrorSerializer, description="Not a worker"),
    }
    for key, text in by_status.items():
        status_code = int(key[1:])
        if status_code == 403:
            text = f"Not a worker, or {text}"
        out[status_code] = OpenApiResponse(ErrorSerializer, description=text)
    return out


NOT_YOURS = "No such assignment of yours (another worker's is the same 404 as a missing one)"


def _valid(serializer_class, request) -> dict:
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return data.validated_data


# The claim -> submit loop is the hot path: building a DRF serializer (it deep-copies its declared
# fields on every instantiation) cost more than the rest of the view. These accept exactly what
# ``ClaimInput`` / ``SubmitInput`` accept without building one (a parsed JSON body always passes
# JSONField) and hand anything else to the serializer, so errors read exactly as before.


def _valid_claim(request) -> dict:
    data = request.data
    if type(data) is dict and "job" not in data:
        return {}
    return _valid(ClaimInput, request)


def _valid_submit(request) -> dict:
    data = request.data
    if type(data) is dict and data.get("payload") is not None:
        out = {"payload": data["payload"]}
        if "active_seconds" not in data:
            return out
        if data["active_seconds"] is not None:  # null is the serializer's error to report
            out["active_seconds"] = data["active_seconds"]
            return out
    return _valid(SubmitInput, request)


class JobBoardView(APIView):
    """Published jobs with open work, their pay and estimated time."""

    permission_classes = [IsWorker]
    authentication_classes = WORKER_AUTH

    @extend_schema(responses=schemas.JobBoardSerializer)
    def get(self, request):
        entries = work_selectors.job_board(worker=request.user)
        return Response(
            {
                "results": [
                    {
                        "id": e.job.pk,
                        "title": e.job.title,
                        "annotation_type": e.job.annotation_type,
                        "instructions": e.job.instructions,
                        "open_tasks": e.open_tasks,
                        "open_tasks_capped": e.open_tasks > work_selectors.BOARD_COUNT_CAP,
                        "pay": {"amount": e.pay, "currency": e.job.currency},
                        "estimated_seconds": e.estimated_seconds,
                        "qualified": e.qualified,
                        "time_limit_seconds": int(e.job.claim_time_limit.total_seconds()),
                    }
                    for e in entries
                ]
            }
        )


class ClaimView(APIView):
    """Claim the next microtask you may do (optionally from one job)."""

    permission_classes = [IsWorker]
    authentication_classes = WORKER_AUTH
    throttle_classes = [ClaimThrottle]  # per worker, THROTTLE_RATES["claim"]

    @extend_schema(
        request=ClaimInput,
        responses={
            201: schemas.AssignmentSerializer,
            **worker_errors(
                e400="Invalid input",
                e403="your account, or your qualification for the type of work, is suspended "
                "(code `suspended`: the message and `suspended_until` say until when)",
                e404="Nothing you may claim right now (the message says why)",
                e409="You hold as many claims as you may at once (code `claim_limit`)",
            ),
            429: THROTTLED,
        },
    )
    def post(self, request):
        data = _valid_claim(request)
        assignment = claiming.assignment_claim(worker=request.user, job_id=data.get("job"))
        return Response(work_selectors.worker_view_of(assignment), status=status.HTTP_201_CREATED)


class StatusQuery(serializers.Serializer):
    """``?status=``: one assignment status (anything else is a 400, never a raw query value)."""

    status = serializers.ChoiceField(choices=AssignmentStatus.choices, required=False)


def status_filter(request) -> str | None:
    query = StatusQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data.get("status")


class MyWorkPagination(KeysetPagination):
    """A busy worker holds thousands of assignments and claims more while paging: a keyset
    cursor, so a walk sees each exactly once (page numbers would shift under new claims)."""

    key_field = "claimed_at"
    page_size = 50
    max_page_size = 200


class MyWorkView(ListAPIView):
    """Your assignments, newest first (by claim time, then id), a page at a time (``next``),
    with status, pay and any rejection reason."""

    permission_classes = [IsWorker]
    authentication_classes = WORKER_AUTH
    pagination_class = MyWorkPagination

    @extend_schema(
        operation_id="work_assignments_list",
        parameters=[StatusQuery],
        responses={
            200: schemas.MyWorkRowSerializer(many=True),
            **worker_errors(e400="A status, page_size or cursor that is not one this list takes"),
        },
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no worker
            return Assignment.objects.none()
        rows = work_selectors.my_work(worker=self.request.user)
        wanted = status_filter(self.request)
        return rows.filter(status=wanted) if wanted else rows

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([work_selectors.my_work_row(a) for a in page])


class AssignmentView(APIView):
    """One of your assignments: frames, schema, time limit, pay, your submission."""

    permission_classes = [IsWorker]
    authentication_classes = WORKER_AUTH

    @extend_schema(
        responses={200: schemas.AssignmentDetailSerializer, **worker_errors(e404=NOT_YOURS)}
    )
    def get(self, request, pk: int):
        try:
            assignment = work_selectors.assignment_for_worker(worker=request.user, assignment_id=pk)
        except Assignment.DoesNotExist:
            raise NotFound("No such assignment.") from None
        return Response(proposals.assignment_view(assignment))


class HeartbeatView(APIView):
    """Keep your claim alive: extends the deadline within the job's bound, and keeps the page's
    draft (work in progress, never a submission) when one is sent."""

    permission_classes = [IsWorker]
    authentication_classes = WORKER_AUTH

    @extend_schema(
        request=LeaseInput,
        responses={
            200: schemas.LeaseSerializer,
            **worker_errors(
                e400="active_seconds is not a non-negative number, or the draft is not "
                "{saved_at, payload} of the job's annotation type or is too large",
                e404=NOT_YOURS,
                e409="The claim expired or is no longer live (a submitted claim takes no draft)",
            ),
        },
    )
    def post(self, request, pk: int):
        data = _valid(LeaseInput, request)
        a = claiming.assignment_heartbeat(
            worker=request.user,
            assignment_id=pk,
            active_seconds=data.get("active_seconds"),
            draft=data.get("draft"),
        )
        return Response({"id": a.pk, "status": a.status, "deadline": a.deadline})


class ReleaseView(APIView):
    """Give the microtask back to the pool."""

    permission_classes = [IsWorker]
    authentication_classes = WORKER_AUTH

    @extend_schema(
        request=None,
        responses={
            200: schemas.ReleasedSerializer,
            **worker_errors(e404=NOT_YOURS, e409="The claim expired or is no longer live"),
        },
    )
    def post(self, request, pk: int):
        a = claiming.assignment_release(worker=request.user, assignment_id=pk)
        return Response({"id": a.pk, "status": a.status})


class SubmitView(APIView):
    """Submit the annotation; it is checked against the job's schema field by field."""

    permission_classes = [IsWorker]
    authentication_classes = WORKER_AUTH
    throttle_classes = [SubmitThrottle]  # per worker, THROTTLE_RATES["submit"]

    @extend_schema(
        request=SubmitInput,
        responses={
            200: schemas.AssignmentSerializer,
            **worker_errors(
                e400="The annotation does not fit the job's schema (field by field), or "
                "active_seconds is not a non-negative number",
                e404=NOT_YOURS,
                e409="The claim expired, or was already submitted or released",
            ),
            429: THROTTLED,
        },
    )
    def post(self, request, pk: int):
        data = _valid_submit(request)
        assignment = claiming.assignment_submit(
            worker=request.user,
            assignment_id=pk,
            payload=data["payload"],
            active_seconds=data.get("active_seconds"),
        )
        return Response(work_selectors.worker_view_of(assignment))


class QualificationListView(APIView):
    """Your standing for each annotation type."""

    permission_classes = [IsWorker]
    authentication_classes = WORKER_AUTH

    @extend_schema(
        operation_id="work_qualifications_list", responses=schemas.WorkerQualificationsSerializer
    )
    def get(self, request):
        mine = {q.annotation_type: q for q in Qualification.objects.filter(worker=request.user)}
        results = []
        for value, label in AnnotationType.choices:
            q = mine.get(value)
            suspended = q is not None and q.status == QualificationStatus.SUSPENDED
            results.append(
                {
                    "annotation_type": value,
                    "label": label,
                    "status": q.status if q else schemas.NOT_TAKEN,
                    "score": q.score if q else None,
                    "attempts": q.attempts if q else 0,
                    "questions": len(qualifying.qualification_items(annotation_type=value)),
                    "suspension": {
                        "until": q.suspended_until,
                        "may_retake": not suspensions.is_suspended(q),
                        "message": suspensions.message(q),
                    }
                    if suspended
                    else None,
                }
            )
        return Response({"results": results})


class PropagateInput(serializers.Serializer):
    track = TrackField(
        help_text="The track being edited, as in a submission's ``tracks`` (checked the same way)"
    )
    from_frame = serializers.IntegerField(
        min_value=0, max_value=bounds.ID_MAX, help_text="The keyframe to propagate from"
    )
    to_frame = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=bounds.ID_MAX,
        help_text="forward: the last frame to propagate to (default: the microtask's last, at "
        "most TRACKER_MAX_FRAMES on); between: the next keyframe (the default)",
    )
    mode = serializers.ChoiceField(choices=propagating.MODES, default=propagating.FORWARD)


class ProposedFrameSerializer(serializers.Serializer):
    frame = serializers.IntegerField()
    box = serializers.ListField(child=serializers.FloatField(), min_length=4, max_length=4)
    confidence = serializers.FloatField(min_value=0, max_value=1)
    lost = serializers.BooleanField()


class ProposalSerializer(serializers.Serializer):
    frames = ProposedFrameSerializer(many=True)
    truncated = serializers.BooleanField(
        help_text="The latency budget ran out before the last frame"
    )
    lost_at = serializers.IntegerField(
        allow_null=True, help_text="The first frame where the tracker lost the object"
    )
    elapsed_ms = serializers.IntegerField()
    from_frame = serializers.IntegerField()
    to_frame = serializers.IntegerField()
    mode = serializers.ChoiceField(choices=propagating.MODES)


class PropagateView(APIView):
    """Tracker proposals for a track of your live claim: boxes carried from a keyframe through
    the frames (``forward``), or between it and the next keyframe (``between``). Nothing is
    stored; the page shows them for you to accept or correct."""

    permission_classes = [IsWorker]
    authentication_classes = WORKER_AUTH
    throttle_classes = [PropagateThrottle]  # per worker, THROTTLE_RATES["propagate"]

    @extend_schema(
        request=PropagateInput,
        responses={
            200: ProposalSerializer,
            **worker_errors(
                e400="The track does not fit the job's schema (field by field), from_frame is "
                "not one of its keyframes, or to_frame is outside the microtask",
                e404=NOT_YOURS,
                e409="The claim is not live, the job is not a track job, or the video's frames "
                "cannot be decoded (code `video_unreadable`)",
            ),
            429: THROTTLED,
        },
    )
    def post(self, request, pk: int):
        data = _valid(PropagateInput, request)
        proposal = propagating.assignment_propagate(
            worker=request.user,
            assignment_id=pk,
            track=data["track"],
            from_frame=data["from_frame"],
            to_frame=data.get("to_frame"),
            mode=data["mode"],
        )
        return Response(
            {
                "frames": proposal.frames,
                "truncated": proposal.truncated,
                "lost_at": proposal.lost_at,
                "elapsed_ms": proposal.elapsed_ms,
                "from_frame": proposal.from_frame,
                "to_frame": proposal.to_frame,
                "mode": proposal.mode,
            }
        )
