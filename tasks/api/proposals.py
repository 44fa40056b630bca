"""A job's proposal sources (requester) — thin views over ``tasks.proposals``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.api.permissions import IsRequester
from marketplace.api.throttles import ProposalConfigThrottle

from .. import ml_backend, proposals
from ..models import ProposalConfig
from ..proposal_sources import SOURCE_LABELS, SOURCES


class ProposalConfigInput(serializers.Serializer):
    sources = serializers.ListField(
        child=serializers.ChoiceField(choices=SOURCES),
        max_length=len(SOURCES),
        allow_empty=True,
        help_text="Enabled proposal sources; [] turns proposals off",
    )
    backend_url = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=ml_backend.URL_MAX_LENGTH,
        trim_whitespace=True,
        help_text="Base URL of your Label Studio ML backend (http or https; its host must be one "
        "the platform allows); omit to keep, '' to clear",
    )
    backend_token = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=ml_backend.TOKEN_MAX_LENGTH,
        trim_whitespace=False,
        write_only=True,
        help_text="Sent to the backend as 'Authorization: Bearer <token>'; never shown again; "
        "omit to keep, '' to clear",
    )


class ProposalSourceSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()


class ProposalConfigSerializer(serializers.Serializer):
    sources = serializers.ListField(child=serializers.CharField())
    available_sources = ProposalSourceSerializer(many=True)
    backend_url = serializers.CharField()
    has_backend_token = serializers.BooleanField()
    summary = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField()),
        help_text="Per source, microtasks per proposal status (ok, failed, timeout, invalid)",
    )


def _out(config: ProposalConfig) -> dict:
    return {
        "sources": list(config.sources),
        "available_sources": [{"name": s, "label": SOURCE_LABELS[s]} for s in SOURCES],
        "backend_url": config.backend_url,
        "has_backend_token": bool(config.backend_token),
        "summary": proposals.proposal_summary(job_id=config.job_id),
    }


class JobProposalConfigView(APIView):
    """Your job's proposal sources (pre-annotations shown to workers as suggestions), the model
    backend they call, and how each source fared per microtask. PUT replaces the sources and
    queues computing what is missing; the token is never shown back."""

    permission_classes = [IsRequester]

    def get_throttles(self):
        return [ProposalConfigThrottle()] if self.request.method == "PUT" else []

    @extend_schema(responses={200: ProposalConfigSerializer})
    def get(self, request, job_id: int):
        config = proposals.proposal_config_get(job_id=job_id, by=request.user)
        return Response(_out(config))

    @extend_schema(request=ProposalConfigInput, responses={200: ProposalConfigSerializer})
    def put(self, request, job_id: int):
        data = ProposalConfigInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        config = proposals.proposal_config_set(
            job_id=job_id,
            by=request.user,
            sources=v["sources"],
            backend_url=v.get("backend_url"),
            backend_token=v.get("backend_token"),
        )
        return Response(_out(config))
