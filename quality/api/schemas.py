"""The OpenAPI components of quality's reports: a worker's own trust and standings, a job's
quality report, a review item's overlay and an admin's report on a worker.

These serializers describe; they do not build responses. The bodies are the selectors' own
dicts (``quality.selectors``: ``worker_trust_overview``, ``worker_standings``, ``job_report``,
``review_overlay``, ``worker_report``), which the pages read too; the schema states their shape,
and the tests check real answers against it (``tests/openapi_check.py``), so a selector and its
component cannot drift apart unnoticed.
"""

from __future__ import annotations

from rest_framework import serializers

from marketplace.models import AnnotationType
from tasks.api.schemas import frame_shapes
from tasks.models import AssignmentStatus

from .. import standing as standing_mod
from .. import trust as trust_mod
from ..models import FlagStatus

# --- a worker's trust and standings -----------------------------------------------------------


class TrustEvidenceRowSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=trust_mod.KINDS)
    note = serializers.CharField(allow_blank=True)
    assignment = serializers.IntegerField(allow_null=True)
    change = serializers.FloatField(help_text="What this evidence moved the trust by")
    trust_after = serializers.FloatField()


class TrustOverviewSerializer(serializers.Serializer):
    """A worker's platform-wide trust in one annotation type, and what moved it (newest first)."""

    annotation_type = serializers.ChoiceField(choices=AnnotationType.choices)
    trust = serializers.FloatField(min_value=0, max_value=1)
    tier = serializers.ChoiceField(
        choices=[name for name, _ in trust_mod.TIERS], help_text="Sets the pay multiplier"
    )
    suspended = serializers.BooleanField()
    suspended_reason = serializers.CharField(allow_blank=True)
    history = TrustEvidenceRowSerializer(many=True)


class StandingEvidenceRowSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=standing_mod.REQUESTER_KINDS)
    note = serializers.CharField(allow_blank=True)
    assignment = serializers.IntegerField(allow_null=True)
    change = serializers.FloatField(help_text="What this evidence moved the standing by")
    counts_platform_wide = serializers.BooleanField(help_text="Also counts towards your trust")
    void = serializers.BooleanField(help_text="An admin found the requester's word wrong")


class StandingOverviewSerializer(serializers.Serializer):
    """A worker's standing with one requester in one type; the requester is named by the jobs
    the worker did for them."""

    annotation_type = serializers.ChoiceField(choices=AnnotationType.choices)
    standing = serializers.FloatField(min_value=0, max_value=1)
    excluded = serializers.BooleanField(help_text="Kept from this requester's jobs of the type")
    excluded_reason = serializers.CharField(allow_blank=True)
    jobs = serializers.ListField(child=serializers.CharField(), help_text="Their titles")
    history = StandingEvidenceRowSerializer(many=True)


class MyTrustSerializer(serializers.Serializer):
    trust = TrustOverviewSerializer(many=True)
    standings = StandingOverviewSerializer(many=True)


# --- a job's quality report -------------------------------------------------------------------


class AssistSourceSerializer(serializers.Serializer):
    source = serializers.CharField()
    mean = serializers.FloatField(help_text="Measured accuracy")
    lower = serializers.FloatField(help_text="Its credible lower bound")
    gold_shapes = serializers.IntegerField()
    consensus_shapes = serializers.IntegerField()
    proven = serializers.BooleanField(help_text="The lower bound meets the job's bar")
    proposals = serializers.IntegerField()


class JobAssistReportSerializer(serializers.Serializer):
    """What model assistance did on the job (``quality.selectors.job_assist_report``)."""

    bar = serializers.FloatField(help_text="The accuracy a source must prove")
    sources = AssistSourceSerializer(many=True)
    verify = serializers.IntegerField(help_text="Microtasks routed to verify-and-correct")
    escalated = serializers.IntegerField(help_text="Sent back to full annotation")
    saved = serializers.IntegerField(help_text="Escrow the routing released (minor units)")
    verify_hourly = serializers.IntegerField(
        allow_null=True, help_text="Pay of verify work per hour of measured time (minor units)"
    )
    floor_hourly = serializers.IntegerField(help_text="The fair-pay floor per hour")


class JobGoldSummarySerializer(serializers.Serializer):
    results = serializers.IntegerField()
    mean_score = serializers.FloatField(allow_null=True)
    pass_rate = serializers.FloatField(allow_null=True)


class AgreementBinSerializer(serializers.Serializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        return {  # "from" is a Python keyword: not a class attribute
            "from": serializers.FloatField(),
            "to": serializers.FloatField(),
            "microtasks": serializers.IntegerField(),
        }


class JobAgreementSerializer(serializers.Serializer):
    mean = serializers.FloatField(allow_null=True)
    histogram = AgreementBinSerializer(many=True, help_text="Ten bins of 0.1")


class JobMicroTaskCountsSerializer(serializers.Serializer):
    open = serializers.IntegerField()
    complete = serializers.IntegerField()
    review = serializers.IntegerField()


class JobReplicasSerializer(serializers.Serializer):
    used = serializers.IntegerField()
    settled_microtasks = serializers.IntegerField()
    per_settled_microtask = serializers.FloatField(allow_null=True)
    saved_vs_fixed_max_overlap = serializers.IntegerField()


class FlaggedSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_kind = serializers.DictField(child=serializers.IntegerField())


class JobReportSerializer(serializers.Serializer):
    """Accuracy on gold, agreement, replicas used and saved, flagged work
    (``quality.selectors.job_report``)."""

    job = serializers.IntegerField()
    assist = JobAssistReportSerializer(allow_null=True, help_text="Null without proposals")
    gold = JobGoldSummarySerializer()
    agreement = JobAgreementSerializer()
    microtasks = JobMicroTaskCountsSerializer(help_text="Regular (not gold) microtasks by status")
    replicas = JobReplicasSerializer()
    flagged = FlaggedSerializer()
    seams_flagged = serializers.IntegerField(
        allow_null=True, help_text="Track jobs: seams between segments with issues"
    )
    reviews_open = serializers.IntegerField()


# --- a review item ------------------------------------------------------------------------------


class ReviewSubmissionSerializer(serializers.Serializer):
    assignment = serializers.IntegerField()
    worker = serializers.CharField(help_text="The worker's username")
    frames = frame_shapes()
    agreement = serializers.FloatField(
        allow_null=True, help_text="With the current consensus (null without one)"
    )


class ReviewOverlaySerializer(serializers.Serializer):
    """What a reviewer sees: the microtask's frames and every submission's shapes."""

    microtask = serializers.IntegerField()
    manifest = serializers.DictField(
        help_text="The microtask's frames and sizes, as ingestion wrote them; each frame also has "
        "the ``url`` its image is served at"
    )
    reason = serializers.CharField(help_text="Why the microtask is in review")
    submissions = ReviewSubmissionSerializer(many=True)
    consensus = frame_shapes(
        allow_null=True, help_text="The current consensus's shapes per frame (null: none yet)"
    )


# --- an admin's report on a worker --------------------------------------------------------------


class WorkerStandingRowSerializer(serializers.Serializer):
    requester = serializers.IntegerField()
    annotation_type = serializers.ChoiceField(choices=AnnotationType.choices)
    standing = serializers.FloatField(min_value=0, max_value=1)
    excluded = serializers.BooleanField()


class WorkerGoldSummarySerializer(serializers.Serializer):
    results = serializers.IntegerField()
    mean_score = serializers.FloatField(allow_null=True)
    passed = serializers.IntegerField()


class WorkerFlagRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.ChoiceField(choices=FlagStatus.choices)
    assignment_id = serializers.IntegerField()


class WorkerReportSerializer(serializers.Serializer):
    """An admin's view of one worker (``quality.selectors.worker_report``)."""

    worker = serializers.IntegerField()
    username = serializers.CharField()
    trust = TrustOverviewSerializer(many=True)
    standings = WorkerStandingRowSerializer(many=True)
    gold = WorkerGoldSummarySerializer()
    assignments = serializers.DictField(
        child=serializers.IntegerField(),
        help_text=f"Assignment status ({', '.join(AssignmentStatus.values)}) -> how many",
    )
    flags = WorkerFlagRowSerializer(many=True)
