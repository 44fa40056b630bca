"""Thin API views of quality: validate input, call one service or selector, serialize.

Worker-facing views serialize through explicit whitelists; no view reachable by a worker reads
``GoldAnswer`` or another worker's submission.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.api.permissions import IsPlatformAdmin, IsRequester, IsWorker
from marketplace.api.schema import AnnotationPayloadField, error_response
from marketplace.errors import NotFound
from marketplace.models import User
from marketplace.selectors import jobs_visible_to

from .. import selectors, services
from ..models import Appeal, FraudFlag, ReviewItem


class QualityCheckSerializer(serializers.Serializer):
    """What a worker sees of a quality check: the outcome and where it was off, not the answer."""

    assignment = serializers.IntegerField(source="assignment_id")
    passed = serializers.BooleanField()
    score = serializers.FloatField()
    frames_off = serializers.ListField(child=serializers.IntegerField())
    created_at = serializers.DateTimeField()


class MyTrustView(APIView):
    """The worker's own trust per annotation type and what moved it."""

    permission_classes = [IsWorker]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response({"trust": selectors.worker_trust_overview(worker=request.user)})


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
    assignment = serializers.IntegerField()
    message = serializers.CharField(max_length=2000)


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

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, job_id: int):
        return Response(selectors.job_report(job=_job_for(request, job_id)))


class GoldAnswerInput(serializers.Serializer):
    payload = AnnotationPayloadField()


class GoldAnswerOutput(serializers.Serializer):
    microtask = serializers.IntegerField()
    source = serializers.CharField()
    gold = serializers.BooleanField()


class GoldAnswerView(APIView):
    """Requesters and admins make a microtask gold by giving its known answer."""

    permission_classes = [IsRequester]

    @extend_schema(request=GoldAnswerInput, responses={201: GoldAnswerOutput})
    def put(self, request, pk: int):
        data = GoldAnswerInput(data=request.data)
        data.is_valid(raise_exception=True)
        answer = services.gold_answer_set(
            microtask_id=pk, payload=data.validated_data["payload"], by=request.user
        )
        return Response(
            {"microtask": answer.microtask_id, "source": answer.source, "gold": True},
            status=status.HTTP_201_CREATED,
        )


class GoldImportInput(serializers.Serializer):
    format = serializers.ChoiceField(choices=["coco", "cvat", "mot"])
    content = serializers.CharField(required=False, allow_blank=True)
    file = serializers.FileField(required=False)
    microtasks = serializers.ListField(child=serializers.IntegerField(), required=False)
    default_label = serializers.CharField(required=False, allow_blank=True)


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
            text = v["file"].read(20 * 1024 * 1024).decode("utf-8", errors="replace")
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
    min_confidence = serializers.FloatField(required=False, min_value=0)


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

    @extend_schema(responses=OpenApiTypes.OBJECT)
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

    @extend_schema(responses=OpenApiTypes.OBJECT)
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
