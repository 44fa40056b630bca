"""Thin API views of quality: validate input, call one service or selector, serialize.

Worker-facing views serialize through explicit whitelists; no view reachable by a worker reads
``GoldAnswer`` or another worker's submission.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace import bounds
from marketplace.api.error_schema import ERROR
from marketplace.api.permissions import IsPlatformAdmin, IsRequester, IsWorker
from marketplace.api.schema import error_response
from marketplace.api.serializers import text
from marketplace.errors import NotFound
from marketplace.models import User
from marketplace.selectors import jobs_visible_to
from tasks.api.schemas import AnnotationPayloadField

from .. import selectors, services
from ..models import Appeal, FraudFlag, GoldAnswer, GoldValidation, ReviewItem
from . import schemas

GOLD_IMPORT_MAX_BYTES = 20 * 1024 * 1024


class QualityCheckSerializer(serializers.Serializer):
    """What a worker sees of a quality check: the outcome and where it was off, not the answer."""

    assignment = serializers.IntegerField(source="assignment_id")
    passed = serializers.BooleanField()
    score = serializers.FloatField()
    frames_off = serializers.ListField(child=serializers.IntegerField())
    created_at = serializers.DateTimeField()


class MyTrustView(APIView):
    """The worker's own trust per annotation type and what moved it (``trust``: platform-wide,
    it gates every job and sets the pay tier), and their standing with each requester they
    worked for (``standings``: moved by that requester's gold, reviews and rejections; low, it
    keeps them from that requester's jobs only)."""

    permission_classes = [IsWorker]

    @extend_schema(
        responses={
            200: schemas.MyTrustSerializer,
            403: OpenApiResponse(ERROR, description="Not a worker"),
        }
    )
    def get(self, request):
        return Response(
            {
                "trust": selectors.worker_trust_overview(worker=request.user),
                "standings": selectors.worker_standings(worker=request.user),
            }
        )


class MyChecksView(APIView):
    permission_classes = [IsWorker]

    @extend_schema(responses=QualityCheckSerializer(many=True))
    def get(self, request):
        rows = selectors.worker_quality_checks(worker=request.user)[:100]
        data = [
            {
                "assignment_id": r.assignment_id,
                "passed": r.passed,
                "score": round(r.score, 3),
                "frames_off": r.frames_off,
                "created_at": r.created_at,
            }
            for r in rows
        ]
        return Response(QualityCheckSerializer(data, many=True).data)


class AppealInput(serializers.Serializer):
    assignment = serializers.IntegerField(min_value=1, max_value=bounds.ID_MAX)
    message = text(max_length=services.APPEAL_MESSAGE_MAX_LENGTH)


class AppealSerializer(serializers.ModelSerializer):
    class Meta:
        model = Appeal
        fields = ["id", "assignment", "status", "message", "decision_note", "created_at"]


class AppealCreateView(APIView):
    permission_classes = [IsWorker]

    @extend_schema(
        request=AppealInput,
        # 404: the assignment is not one of yours
        responses={201: AppealSerializer, 404: error_response(404)},
    )
    def post(self, request):
        data = AppealInput(data=request.data)
        data.is_valid(raise_exception=True)
        appeal = services.appeal_create(
            worker=request.user,
            assignment_id=data.validated_data["assignment"],
            message=data.validated_data["message"],
        )
        return Response(AppealSerializer(appeal).data, status=status.HTTP_201_CREATED)


class AppealDecision(serializers.Serializer):
    uphold = serializers.BooleanField()
    note = serializers.CharField(max_length=500, required=False, allow_blank=True)


class AppealDecideView(APIView):
    permission_classes = [IsPlatformAdmin]

    @extend_schema(request=AppealDecision, responses=AppealSerializer)
    def post(self, request, pk: int):
        data = AppealDecision(data=request.data)
        data.is_valid(raise_exception=True)
        appeal = services.appeal_decide(
            appeal_id=pk,
            by=request.user,
            uphold=data.validated_data["uphold"],
            note=data.validated_data.get("note", ""),
        )
        return Response(AppealSerializer(appeal).data)


def _job_for(request, job_id: int):
    job = jobs_visible_to(request.user).filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such job.")
    return job


class JobReportView(APIView):
    permission_classes = [IsRequester]

    @extend_schema(responses=schemas.JobReportSerializer)
    def get(self, request, job_id: int):
        return Response(selectors.job_report(job=_job_for(request, job_id)))


class GoldAnswerInput(serializers.Serializer):
    payload = AnnotationPayloadField()


class GoldAnswerResult(serializers.Serializer):
    microtask = serializers.IntegerField()
    source = serializers.CharField()
    gold = serializers.BooleanField()
    validation = serializers.ChoiceField(
        choices=GoldValidation.choices,
        help_text=(
            "pending: counts on your jobs only until trusted workers' answers agree with it; "
            "validated: counts platform-wide (an admin's gold at once)"
        ),
    )


class GoldAnswerView(APIView):
    """Requesters and admins make a microtask gold by giving its known answer.

    A requester's answer counts on their own jobs at once, and towards workers' platform-wide
    trust only once validated (trusted workers agree with it, or an admin says so)."""

    permission_classes = [IsRequester]

    @extend_schema(
        request=GoldAnswerInput,
        responses={
            201: GoldAnswerResult,
            400: OpenApiResponse(ERROR, description="The answer does not fit the microtask"),
            403: OpenApiResponse(ERROR, description="Not a requester"),
            404: OpenApiResponse(ERROR, description="No such microtask of your jobs"),
            409: OpenApiResponse(
                ERROR, description="Already taken as ordinary work, or already scored against"
            ),
        },
    )
    def put(self, request, pk: int):
        data = GoldAnswerInput(data=request.data)
        data.is_valid(raise_exception=True)
        answer = services.gold_answer_set(
            microtask_id=pk, payload=data.validated_data["payload"], by=request.user
        )
        return Response(
            {
                "microtask": answer.microtask_id,
                "source": answer.source,
                "gold": True,
                "validation": answer.validation,
            },
            status=status.HTTP_201_CREATED,
        )


class GoldValidationInput(serializers.Serializer):
    valid = serializers.BooleanField(
        help_text="true: counts platform-wide; false: refused, counts nowhere and is retired"
    )
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class GoldValidationSerializer(serializers.ModelSerializer):
    class Meta:
        model = GoldAnswer
        fields = [
            "microtask",
            "source",
            "created_by",
            "validation",
            "validated_via",
            "validated_by",
            "validated_at",
            "validation_note",
        ]


class DisputedGoldView(APIView):
    """Requesters' gold answers that trusted workers disagree with, for an admin to decide."""

    permission_classes = [IsPlatformAdmin]

    @extend_schema(
        responses={
            200: GoldValidationSerializer(many=True),
            403: OpenApiResponse(ERROR, description="Not a platform admin"),
        }
    )
    def get(self, request):
        rows = selectors.gold_awaiting_admin()[:200]
        return Response(GoldValidationSerializer(rows, many=True).data)


class GoldValidateView(APIView):
    """An admin decides a gold answer: valid (it and every result against it count
    platform-wide) or refused (it counts nowhere, and its microtask is no longer served)."""

    permission_classes = [IsPlatformAdmin]

    @extend_schema(
        request=GoldValidationInput,
        responses={
            200: GoldValidationSerializer,
            400: OpenApiResponse(ERROR, description="Invalid input"),
            403: OpenApiResponse(ERROR, description="Not a platform admin"),
            404: OpenApiResponse(ERROR, description="No such gold microtask"),
        },
    )
    def post(self, request, pk: int):
        data = GoldValidationInput(data=request.data)
        data.is_valid(raise_exception=True)
        gold = services.gold_validate(
            microtask_id=pk,
            by=request.user,
            valid=data.validated_data["valid"],
            note=data.validated_data["note"],
        )
        return Response(GoldValidationSerializer(gold).data)


class GoldImportInput(serializers.Serializer):
    format = serializers.ChoiceField(choices=list(services.GOLD_IMPORT_FORMATS))
    content = serializers.CharField(
        required=False, allow_blank=True, max_length=GOLD_IMPORT_MAX_BYTES, trim_whitespace=False
    )
    file = serializers.FileField(required=False)
    microtasks = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=bounds.ID_MAX),
        required=False,
        max_length=bounds.IDS_PER_REQUEST_MAX,
    )
    default_label = serializers.CharField(
        required=False, allow_blank=True, max_length=bounds.LABEL_CLASS_NAME_MAX_LENGTH
    )


class GoldImportOutput(serializers.Serializer):
    gold_microtasks = serializers.ListField(child=serializers.IntegerField())


class GoldImportView(APIView):
    permission_classes = [IsRequester]

    @extend_schema(request=GoldImportInput, responses={201: GoldImportOutput})
    def post(self, request, job_id: int):
        data = GoldImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        text = v.get("content") or ""
        if v.get("file") is not None:
            text = v["file"].read(GOLD_IMPORT_MAX_BYTES).decode("utf-8", errors="replace")
        answers = services.gold_import(
            job_id=job_id,
            fmt=v["format"],
            text=text,
            by=request.user,
            microtask_ids=v.get("microtasks"),
            default_label=v.get("default_label", ""),
        )
        return Response(
            {"gold_microtasks": [a.microtask_id for a in answers]}, status=status.HTTP_201_CREATED
        )


class PolicyInput(serializers.Serializer):
    partial_credit = serializers.BooleanField(required=False)
    auto_approve = serializers.BooleanField(required=False)
    auto_reject = serializers.BooleanField(required=False)
    reject_below_ratio = serializers.FloatField(required=False, min_value=0, max_value=1)
    min_confidence = serializers.FloatField(
        required=False, min_value=0, max_value=services.MIN_CONFIDENCE_MAX
    )


class JobPolicyView(APIView):
    permission_classes = [IsRequester]

    @extend_schema(request=PolicyInput, responses=PolicyInput)
    def patch(self, request, job_id: int):
        data = PolicyInput(data=request.data)
        data.is_valid(raise_exception=True)
        pol = services.job_quality_policy_update(
            job_id=job_id, by=request.user, **data.validated_data
        )
        return Response(PolicyInput(pol).data)


class ReviewItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReviewItem
        fields = ["id", "microtask", "job", "reason", "status", "created_at"]


class ReviewQueueView(APIView):
    permission_classes = [IsRequester]

    @extend_schema(responses=ReviewItemSerializer(many=True))
    def get(self, request):
        rows = selectors.review_queue_for(user=request.user)[:200]
        return Response(ReviewItemSerializer(rows, many=True).data)


class ReviewDetailView(APIView):
    permission_classes = [IsRequester]

    @extend_schema(responses=schemas.ReviewOverlaySerializer)
    def get(self, request, pk: int):
        item = get_object_or_404(
            ReviewItem.objects.filter(job__in=jobs_visible_to(request.user)), pk=pk
        )
        return Response(selectors.review_overlay(item=item))


class ReviewResolveView(APIView):
    permission_classes = [IsRequester]

    @extend_schema(request=GoldAnswerInput, responses=ReviewItemSerializer)
    def post(self, request, pk: int):
        data = GoldAnswerInput(data=request.data)
        data.is_valid(raise_exception=True)
        item = services.review_resolve(
            review_id=pk, payload=data.validated_data["payload"], by=request.user
        )
        return Response(ReviewItemSerializer(item).data)


class WorkerReportView(APIView):
    permission_classes = [IsPlatformAdmin]

    @extend_schema(responses=schemas.WorkerReportSerializer)
    def get(self, request, pk: int):
        worker = get_object_or_404(User, pk=pk)
        return Response(selectors.worker_report(worker=worker))


class FraudFlagSerializer(serializers.ModelSerializer):
    class Meta:
        model = FraudFlag
        fields = ["id", "assignment", "worker", "job", "kind", "evidence", "status", "created_at"]


class FlagListView(APIView):
    permission_classes = [IsPlatformAdmin]

    @extend_schema(responses=FraudFlagSerializer(many=True))
    def get(self, request):
        rows = FraudFlag.objects.filter(status="open").order_by("-created_at")[:200]
        return Response(FraudFlagSerializer(rows, many=True).data)


class FlagResolveInput(serializers.Serializer):
    confirmed = serializers.BooleanField()


class FlagResolveView(APIView):
    permission_classes = [IsPlatformAdmin]

    @extend_schema(request=FlagResolveInput, responses=FraudFlagSerializer)
    def post(self, request, pk: int):
        data = FlagResolveInput(data=request.data)
        data.is_valid(raise_exception=True)
        flag = services.fraud_flag_resolve(
            flag_id=pk, by=request.user, confirmed=data.validated_data["confirmed"]
        )
        return Response(FraudFlagSerializer(flag).data)
