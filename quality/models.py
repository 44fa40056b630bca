"""Quality state: gold answers and results, consensus, worker trust, fraud flags, review, appeals.

Gold answers live in their own table, apart from ``tasks.MicroTask``: nothing that serializes a
microtask for a worker can reach them by following a field.

Trust has two scopes (rules in ``quality.standing``): ``WorkerTrust`` is platform-wide and moves
only on the platform's word or on validated requester evidence; ``RequesterStanding`` is a
worker's standing with one requester, moved by everything that requester's jobs say about them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from marketplace.models import AnnotationType


class GoldSource(models.TextChoices):
    ANNOTATED = "annotated", "Annotated in the page"
    COCO = "coco", "COCO import"
    CVAT = "cvat", "CVAT video XML import"
    MOT = "mot", "MOT import"
    ACTIVITYNET = "activitynet", "ActivityNet (events) import"
    REVIEW = "review", "A reviewer's answer"


class GoldValidation(models.TextChoices):
    PENDING = "pending", "Counts on its requester's jobs only, until validated"
    VALIDATED = "validated", "Counts platform-wide"
    DISPUTED = "disputed", "Trusted workers disagree with it: an admin decides"
    REFUSED = "refused", "An admin found it wrong: it counts nowhere"


class GoldValidatedVia(models.TextChoices):
    ADMIN = "admin", "Made or validated by an admin"
    AGREEMENT = "agreement", "Trusted workers' answers agree with it"


class GoldAnswer(models.Model):
    """The known answer of a gold microtask. Never serialized to a worker.

    A requester's gold starts ``pending``: results scored against it move the workers' standing
    with that requester only, until it is validated (``quality.standing``).
    """

    microtask = models.OneToOneField(
        "tasks.MicroTask", on_delete=models.CASCADE, related_name="gold_answer"
    )
    payload = models.JSONField(help_text="As a submission payload")
    frames = models.JSONField(help_text="Per-frame shapes (tracks interpolated)")
    source = models.CharField(
        max_length=16, choices=GoldSource.choices, default=GoldSource.ANNOTATED
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Pending by default: a gold answer nobody vouched for moves no platform-wide trust.
    validation = models.CharField(
        max_length=16, choices=GoldValidation.choices, default=GoldValidation.PENDING
    )
    validated_via = models.CharField(max_length=16, choices=GoldValidatedVia.choices, blank=True)
    validated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    validated_at = models.DateTimeField(null=True, blank=True)
    validation_note = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"gold answer of microtask {self.microtask_id}"

    @property
    def counts_platform_wide(self) -> bool:
        return self.validation == GoldValidation.VALIDATED


class GoldResult(models.Model):
    """A submission on a gold microtask, scored against the answer."""

    assignment = models.OneToOneField(
        "tasks.Assignment", on_delete=models.CASCADE, related_name="gold_result"
    )
    microtask = models.ForeignKey("tasks.MicroTask", on_delete=models.CASCADE, related_name="+")
    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="gold_results"
    )
    annotation_type = models.CharField(max_length=16, choices=AnnotationType.choices)
    score = models.FloatField()
    passed = models.BooleanField()
    metrics = models.JSONField(default=dict)
    frames_off = models.JSONField(default=list, help_text="Frames that failed the check")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["worker", "annotation_type", "created_at"])]

    def __str__(self) -> str:
        return f"gold result {self.score:.2f} for assignment {self.assignment_id}"


class ConsensusDecision(models.TextChoices):
    ACCEPT = "accept", "Accepted"
    ADD_REPLICA = "add_replica", "Replica added"
    REVIEW = "review", "Sent to review"
    REVIEWED = "reviewed", "Decided by a reviewer"


class ConsensusResult(models.Model):
    """The aggregated answer of a microtask by one algorithm (version included in its name)."""

    microtask = models.ForeignKey(
        "tasks.MicroTask", on_delete=models.CASCADE, related_name="consensus_results"
    )
    algorithm = models.CharField(max_length=40)
    frames = models.JSONField(help_text="Per-frame shapes, as a submission's")
    agreement = models.FloatField()
    agreement_parts = models.JSONField(
        default=dict,
        blank=True,
        help_text="On a job with attributes or relations, what ``agreement`` and "
        "``annotator_agreement`` blend: {weights, overall: {shapes, attributes, relations}, "
        "annotators: {part: {assignment id: agreement}}} (quality.policy.blend_agreement)",
    )
    frame_agreement = models.JSONField(default=dict)
    annotator_agreement = models.JSONField(default=dict, help_text="assignment id -> agreement")
    replicas = models.PositiveSmallIntegerField(default=0)
    decision = models.CharField(max_length=16, choices=ConsensusDecision.choices)
    is_current = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["microtask", "algorithm"], name="consensus_one_per_algorithm"
            ),
            models.UniqueConstraint(
                fields=["microtask"],
                condition=Q(is_current=True),
                name="consensus_one_current",
                violation_error_message="This microtask already has a current consensus result.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.algorithm} of microtask {self.microtask_id}: {self.agreement:.2f}"


class VideoSeams(models.Model):
    """How many seams of a track video's stitched consensus are flagged, as of ``stamp``.

    A cache of ``quality.selectors.video_seams_flagged`` (which stitches every segment of the
    video): written when a microtask's consensus changes (``services.seams``), read by the job
    report. ``stamp`` (``selectors.video_consensus_stamps``) sums up the video's current
    consensus rows; a row whose stamp is not the video's current one is stale and not trusted.
    """

    video = models.OneToOneField(
        "tasks.Video", on_delete=models.CASCADE, primary_key=True, related_name="quality_seams"
    )
    flagged = models.PositiveIntegerField(default=0)
    stamp = models.CharField(max_length=120, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"video {self.video_id}: {self.flagged} seams flagged"


class WorkerTrust(models.Model):
    """A worker's trust for one annotation type (see ``quality.trust``)."""

    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trust_scores"
    )
    annotation_type = models.CharField(max_length=16, choices=AnnotationType.choices)
    trust = models.FloatField(default=0.75)
    tier = models.CharField(max_length=16, default="standard")
    gold_count = models.PositiveIntegerField(default=0)
    suspended = models.BooleanField(default=False)
    suspended_reason = models.CharField(max_length=300, blank=True)
    # The suspension's extra replicas are owed: set in the suspension's transaction, cleared in
    # the one that adds them (``services.suspension_replicas_add``), so a crash in between
    # leaves a row the sweep (``quality.add_owed_replicas``) finds.
    replicas_owed = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "annotation_type"], name="one_trust_per_worker_type"
            )
        ]

    def __str__(self) -> str:
        return f"{self.worker} {self.annotation_type}: {self.trust:.2f}"


class TrustEvidence(models.Model):
    """One piece of evidence that moved a worker's trust, and by how much."""

    trust = models.ForeignKey(WorkerTrust, on_delete=models.CASCADE, related_name="evidence")
    kind = models.CharField(max_length=16)  # gold | agreement | review
    score = models.FloatField()
    assignment = models.ForeignKey(
        "tasks.Assignment", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)
    trust_before = models.FloatField()
    trust_after = models.FloatField()
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["trust", "kind", "assignment"],
                condition=Q(assignment__isnull=False),
                name="trust_evidence_once_per_assignment",
                violation_error_message="This work already counts toward the worker's trust.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.score:.2f} ({self.trust_before:.2f}→{self.trust_after:.2f})"


class RequesterStanding(models.Model):
    """A worker's standing with one requester for one annotation type.

    Moved by what that requester says about the worker — results against their gold, their
    review verdicts, their rejections — validated or not; below the suspension bar it keeps the
    worker from that requester's jobs of the type (``excluded``, read by the claim statement),
    and from nothing else.
    """

    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="requester_standings"
    )
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    annotation_type = models.CharField(max_length=16, choices=AnnotationType.choices)
    standing = models.FloatField(default=0.75)
    evidence_count = models.FloatField(default=0.0)
    excluded = models.BooleanField(default=False)
    excluded_reason = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "requester", "annotation_type"],
                name="one_standing_per_worker_requester_type",
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.worker} with requester {self.requester_id} {self.annotation_type}: "
            f"{self.standing:.2f}"
        )


class StandingEvidence(models.Model):
    """One piece of requester-scoped evidence, and whether it also counts platform-wide."""

    standing = models.ForeignKey(
        RequesterStanding, on_delete=models.CASCADE, related_name="evidence"
    )
    kind = models.CharField(max_length=16)  # gold | review | rejection
    score = models.FloatField()
    assignment = models.ForeignKey(
        "tasks.Assignment", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)
    counts_platform_wide = models.BooleanField(
        default=False, help_text="Validated: also recorded in the worker's platform trust"
    )
    void = models.BooleanField(
        default=False, help_text="An admin found the requester's answer or rejection wrong"
    )
    standing_before = models.FloatField()
    standing_after = models.FloatField()
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["standing", "kind", "assignment"],
                condition=Q(assignment__isnull=False),
                name="standing_evidence_once_per_assignment",
                violation_error_message="This work already counts toward the worker's standing.",
            )
        ]

    def __str__(self) -> str:
        change = f"{self.standing_before:.2f}→{self.standing_after:.2f}"
        return f"{self.kind} {self.score:.2f} ({change})"


class FlagStatus(models.TextChoices):
    OPEN = "open", "Open"
    CONFIRMED = "confirmed", "Confirmed"
    DISMISSED = "dismissed", "Dismissed"


class FraudFlag(models.Model):
    """A fraud signal on one submission, with its evidence, for an admin to judge."""

    assignment = models.ForeignKey(
        "tasks.Assignment", on_delete=models.CASCADE, related_name="fraud_flags"
    )
    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="fraud_flags"
    )
    job = models.ForeignKey("marketplace.Job", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16)  # too_fast | empty | identical | blind_accept | ...
    evidence = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=FlagStatus.choices, default=FlagStatus.OPEN)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["assignment", "kind"], name="one_flag_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.kind} flag on assignment {self.assignment_id}"


class ReviewStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class ReviewItem(models.Model):
    """A microtask whose replicas did not agree: a person decides the answer."""

    microtask = models.ForeignKey(
        "tasks.MicroTask", on_delete=models.CASCADE, related_name="review_items"
    )
    job = models.ForeignKey("marketplace.Job", on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=300)
    status = models.CharField(
        max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.OPEN
    )
    answer = models.JSONField(null=True, blank=True, help_text="The reviewer's payload")
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["microtask"],
                condition=Q(status="open"),
                name="one_open_review",
                violation_error_message="This microtask is already waiting for review.",
            )
        ]

    def __str__(self) -> str:
        return f"review of microtask {self.microtask_id} ({self.status})"


class AppealStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    UPHELD = "upheld", "Upheld (work approved)"
    DENIED = "denied", "Denied"


class Appeal(models.Model):
    """A worker's one appeal against a rejection; an admin decides."""

    assignment = models.OneToOneField(
        "tasks.Assignment", on_delete=models.CASCADE, related_name="appeal"
    )
    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="appeals"
    )
    message = models.TextField(max_length=2000)
    status = models.CharField(
        max_length=16, choices=AppealStatus.choices, default=AppealStatus.PENDING
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decision_note = models.CharField(max_length=500, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"appeal on assignment {self.assignment_id} ({self.status})"


class JobQualityPolicy(models.Model):
    """Per-job quality rules beyond the job's own thresholds."""

    job = models.OneToOneField(
        "marketplace.Job", on_delete=models.CASCADE, related_name="quality_policy"
    )
    partial_credit = models.BooleanField(
        default=False, help_text="Pay for the share of frames that passed"
    )
    auto_approve = models.BooleanField(
        default=True, help_text="Approve work that agrees with consensus or passes gold"
    )
    auto_reject = models.BooleanField(default=True, help_text="Reject work that fails gold badly")
    reject_below_ratio = models.FloatField(
        default=0.5, help_text="Fails badly: score below this share of the pass threshold"
    )
    min_confidence = models.FloatField(
        default=0.0, help_text="Summed vote weight of agreeing workers to settle a microtask"
    )

    def __str__(self) -> str:
        return f"quality policy of job {self.job_id}"


class SourceComparison(models.Model):
    """One proposal measured against a reference (``quality.assist.compare``): the consensus of a
    full-annotation microtask nobody took the proposal into, or a gold answer.

    Append-only and one row per (proposal, kind): a redelivered scoring, or a second worker on the
    same gold microtask, does not count the same comparison twice. A source's accuracy on a job
    is the sum over its rows (``quality.selectors.source_accuracy_of``).
    """

    job = models.ForeignKey("marketplace.Job", on_delete=models.CASCADE, related_name="+")
    microtask = models.ForeignKey("tasks.MicroTask", on_delete=models.CASCADE, related_name="+")
    proposal = models.ForeignKey("tasks.Proposal", on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=16)
    kind = models.CharField(max_length=16)  # quality.assist.GOLD | quality.assist.CONSENSUS
    hits = models.PositiveIntegerField()
    misses = models.PositiveIntegerField()
    confidence = models.FloatField(help_text="The microtask's proposal confidence")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["proposal", "kind"], name="source_comparison_once")
        ]
        indexes = [models.Index(fields=["job", "source"])]

    def __str__(self) -> str:
        return f"{self.source} vs {self.kind} on microtask {self.microtask_id}"


class VerifierStats(models.Model):
    """A worker's record on one job's proposals of one source (``quality.assist.VerifierRecord``
    plus the counts of the blind-accept test), updated once per submission it scores."""

    worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    job = models.ForeignKey("marketplace.Job", on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=16)
    seen = models.PositiveIntegerField(default=0)
    corrected = models.PositiveIntegerField(default=0)
    wrong_seen = models.PositiveIntegerField(default=0)
    wrong_fixed = models.PositiveIntegerField(default=0)
    proposed = models.PositiveIntegerField(default=0, help_text="Proposed shapes shown")
    accepted_unchanged = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "job", "source"], name="verifier_stats_one_per_source"
            )
        ]

    def __str__(self) -> str:
        return f"worker {self.worker_id} on {self.source} proposals of job {self.job_id}"
