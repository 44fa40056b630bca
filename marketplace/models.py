"""Users and roles, requester and worker profiles, qualifications, and jobs."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q

from . import bounds, label_schema


class Role(models.TextChoices):
    REQUESTER = "requester", "Requester"
    WORKER = "worker", "Worker"
    ADMIN = "admin", "Admin"


class AnnotationType(models.TextChoices):
    BBOX = "bbox", "Bounding boxes"
    TRACK = "track", "Tracks with keyframes"
    CLASSIFY = "classify", "Classification"
    POLYGON = "polygon", "Polygons"
    EVENT = "event", "Actions and events over time"
    MASK = "mask", "Segmentation masks"


class ConsensusMethod(models.TextChoices):
    """How several workers' masks of a job are merged (``quality.masks``)."""

    VOTE = "vote", "Trust-weighted pixel vote"
    STAPLE = "staple", "STAPLE (expectation-maximisation over the workers)"


class User(AbstractUser):
    """A person using the marketplace; ``role`` says which of the three products they use."""

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.WORKER)

    @property
    def is_requester(self) -> bool:
        return self.role == Role.REQUESTER

    @property
    def is_worker(self) -> bool:
        return self.role == Role.WORKER

    @property
    def is_platform_admin(self) -> bool:
        return self.is_staff or self.role == Role.ADMIN


class RequesterProfile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="requester_profile"
    )
    organisation = models.CharField(max_length=200, blank=True)
    stripe_customer_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user.username} ({self.organisation or 'no organisation'})"


class WorkerStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"


class WorkerProfile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="worker_profile"
    )
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    status = models.CharField(
        max_length=16, choices=WorkerStatus.choices, default=WorkerStatus.ACTIVE
    )
    suspended_reason = models.CharField(max_length=300, blank=True)
    stripe_account_id = models.CharField(max_length=64, blank=True)
    payouts_enabled = models.BooleanField(default=False)
    payouts_held = models.BooleanField(default=False)
    payouts_held_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.user.username


class QualificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    SUSPENDED = "suspended", "Suspended"


class Qualification(models.Model):
    """A worker's standing for one annotation type; paid work needs ``passed``.

    ``suspended`` (quality suspended the worker from the type) carries its own terms: until
    ``suspended_until`` (then the worker may retake the test), or, when that is empty, until an
    admin lifts it. ``tasks.suspensions`` sets and reads them; the ``suspended_*`` fields keep
    describing the last suspension after it ended.
    """

    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="qualifications"
    )
    annotation_type = models.CharField(max_length=16, choices=AnnotationType.choices)
    status = models.CharField(
        max_length=16, choices=QualificationStatus.choices, default=QualificationStatus.PENDING
    )
    score = models.FloatField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspended_until = models.DateTimeField(
        null=True, blank=True, help_text="Empty while suspended: until an admin lifts it"
    )
    suspended_reason = models.CharField(max_length=300, blank=True)
    suspensions = models.PositiveIntegerField(
        default=0, help_text="How many times the worker was suspended from this type"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "annotation_type"], name="one_qualification_per_type"
            )
        ]

    def __str__(self) -> str:
        return f"{self.worker} {self.annotation_type}: {self.status}"


class JobStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PROCESSING = "processing", "Processing"
    READY = "ready", "Ready"
    PUBLISHED = "published", "Published"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


FINAL_JOB_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.CANCELLED, JobStatus.FAILED})


def default_auto_approve_delay() -> timedelta:
    return timedelta(days=3)


class Job(models.Model):
    """A requester's labeling job: what to annotate, how, with how much quality and money."""

    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs"
    )
    title = models.CharField(max_length=200)
    instructions = models.TextField(blank=True)
    annotation_type = models.CharField(max_length=16, choices=AnnotationType.choices)
    label_classes = models.JSONField(default=list, help_text="List of class names")
    event_labels = models.JSONField(
        default=list,
        blank=True,
        help_text="A track job's event labels (actions of a track); an event job's are its classes",
    )
    label_attributes = models.JSONField(
        default=dict,
        blank=True,
        help_text="Attributes per class (``marketplace.label_schema``), e.g. "
        '{"car": [{"name": "occluded", "type": "bool"}]}',
    )
    relation_predicates = models.JSONField(
        default=list, blank=True, help_text='Predicates of relations, e.g. ["rides", "holds"]'
    )
    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.DRAFT, db_index=True
    )
    failure_reason = models.CharField(max_length=500, blank=True)

    # Quality
    overlap_min = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    overlap_max = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    gold_rate = models.FloatField(
        default=0.1, validators=[MinValueValidator(0.0), MaxValueValidator(0.5)]
    )
    iou_threshold = models.FloatField(
        default=0.5, validators=[MinValueValidator(0.05), MaxValueValidator(0.95)]
    )
    agreement_threshold = models.FloatField(
        default=0.7, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    gold_pass_threshold = models.FloatField(
        default=0.7, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    min_trust = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    expected_objects = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(500)]
    )
    # Model-assisted routing (``quality.assist.decide_route``): confident microtasks become
    # verify-and-correct once the proposal source's measured accuracy, at its lower credible
    # bound, reaches this bar. 1.0 never routes (the bound of a finite sample stays below 1).
    assist_accuracy_bar = models.FloatField(
        default=0.95,
        validators=[MinValueValidator(0.5), MaxValueValidator(1.0)],
        help_text="Lowest proven accuracy of a proposal source before confident microtasks "
        "become verify-and-correct work; 1 never routes",
    )
    consensus_method = models.CharField(
        max_length=8,
        choices=ConsensusMethod.choices,
        default=ConsensusMethod.VOTE,
        help_text="How workers' masks are merged (mask jobs, and track jobs with masks)",
    )
    # A track job may also ask for a segmentation mask on each visible keyframe
    # (``tasks.annotations``: "Masks on tracks"); no other type takes it.
    track_masks = models.BooleanField(
        default=False,
        help_text="Track jobs: each keyframe also carries a segmentation mask of its object",
    )

    # Work shape (how videos are split into microtasks)
    segment_frames = models.PositiveIntegerField(
        default=150, validators=[MinValueValidator(2), MaxValueValidator(10_000)]
    )
    overlap_frames = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(0), MaxValueValidator(9_999)]
    )
    keyframe_step = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(1_000)]
    )
    frame_step = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(10_000)]
    )
    frames_per_task = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(500)]
    )

    # Time (the settings in ``marketplace.bounds`` narrow these hard limits further)
    claim_time_limit = models.DurationField(
        default=timedelta(minutes=30),
        validators=[
            MinValueValidator(bounds.CLAIM_TIME_LIMIT_FLOOR),
            MaxValueValidator(bounds.CLAIM_TIME_LIMIT_CEILING),
        ],
    )
    auto_approve_delay = models.DurationField(
        default=default_auto_approve_delay,
        validators=[
            MinValueValidator(timedelta(0)),
            MaxValueValidator(bounds.AUTO_APPROVE_DELAY_CEILING),
        ],
    )
    deadline = models.DateTimeField(null=True, blank=True)
    priority = models.SmallIntegerField(
        default=0, validators=[MinValueValidator(0), MaxValueValidator(bounds.PRIORITY_LIMIT)]
    )

    # Money, in integer minor units of ``currency`` (fixed when the job is created)
    budget = models.BigIntegerField(validators=[MinValueValidator(0)])
    currency = models.CharField(
        max_length=3,
        default="usd",
        validators=[RegexValidator(r"^[a-z]{3}$", "Use a lower-case ISO 4217 currency code.")],
    )

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # Invariants of every row, whatever wrote it (the job service checks each first and
        # names the field; these are the backstop). NaN fails every range here in PostgreSQL.
        constraints = [
            models.CheckConstraint(
                condition=Q(overlap_min__lte=F("overlap_max")),
                name="job_overlap_min_lte_max",
                violation_error_message="The minimum overlap must not exceed the maximum.",
            ),
            models.CheckConstraint(
                condition=Q(overlap_min__gte=1, overlap_max__lte=10),
                name="job_overlap_range",
                violation_error_message="Overlap is between 1 and 10 replicas.",
            ),
            models.CheckConstraint(
                condition=Q(budget__gte=0),
                name="job_budget_non_negative",
                violation_error_message="The budget cannot be negative.",
            ),
            models.CheckConstraint(
                condition=Q(overlap_frames__lt=F("segment_frames")),
                name="job_overlap_frames_lt_segment",
                violation_error_message="Overlap frames must be fewer than segment frames.",
            ),
            models.CheckConstraint(
                condition=Q(priority__gte=0, priority__lte=bounds.PRIORITY_LIMIT),
                name="job_priority_range",
                violation_error_message=f"Priority is between 0 and {bounds.PRIORITY_LIMIT}.",
            ),
            models.CheckConstraint(
                condition=Q(
                    claim_time_limit__gte=bounds.CLAIM_TIME_LIMIT_FLOOR,
                    claim_time_limit__lte=bounds.CLAIM_TIME_LIMIT_CEILING,
                ),
                name="job_claim_time_limit_range",
                violation_error_message="The claim time limit is out of range.",
            ),
            models.CheckConstraint(
                condition=Q(
                    auto_approve_delay__gte=timedelta(0),
                    auto_approve_delay__lte=bounds.AUTO_APPROVE_DELAY_CEILING,
                ),
                name="job_auto_approve_delay_range",
                violation_error_message="The auto-approve delay is out of range.",
            ),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0, gold_rate__lte=0.5)
                & Q(iou_threshold__gte=0.05, iou_threshold__lte=0.95)
                & Q(agreement_threshold__gte=0, agreement_threshold__lte=1)
                & Q(gold_pass_threshold__gte=0, gold_pass_threshold__lte=1)
                & Q(min_trust__gte=0, min_trust__lte=1),
                name="job_rates_range",
                violation_error_message="A rate or threshold is out of range.",
            ),
            models.CheckConstraint(
                condition=Q(assist_accuracy_bar__gte=0.5, assist_accuracy_bar__lte=1.0),
                name="job_assist_accuracy_bar_range",
                violation_error_message="The assisted-routing accuracy bar is between 0.5 and 1.",
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[a-z]{3}$"),
                name="job_currency_code",
                violation_error_message="Use a lower-case ISO 4217 currency code.",
            ),
        ]
        indexes = [models.Index(fields=["requester", "status"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    @property
    def label_attributes_text(self) -> str:
        """The attributes per class, for people (the requester's job page)."""
        return label_schema.describe(self.label_attributes)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_JOB_STATUSES
