"""Users and roles, requester and worker profiles, qualifications, and jobs."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q


class Role(models.TextChoices):
    REQUESTER = "requester", "Requester"
    WORKER = "worker", "Worker"
    ADMIN = "admin", "Admin"


class AnnotationType(models.TextChoices):
    BBOX = "bbox", "Bounding boxes"
    TRACK = "track", "Tracks with keyframes"
    CLASSIFY = "classify", "Classification"
    POLYGON = "polygon", "Polygons"


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

    # Work shape (how videos are split into microtasks)
    segment_frames = models.PositiveIntegerField(
        default=150, validators=[MinValueValidator(2), MaxValueValidator(10_000)]
    )
    overlap_frames = models.PositiveIntegerField(default=10)
    keyframe_step = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(1_000)]
    )
    frame_step = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(10_000)]
    )
    frames_per_task = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(500)]
    )

    # Time
    claim_time_limit = models.DurationField(default=timedelta(minutes=30))
    auto_approve_delay = models.DurationField(default=default_auto_approve_delay)
    deadline = models.DateTimeField(null=True, blank=True)
    priority = models.SmallIntegerField(default=0)

    # Money, in integer minor units of ``currency``
    budget = models.BigIntegerField(validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, default="usd")

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(overlap_min__lte=F("overlap_max")), name="job_overlap_min_lte_max"
            ),
            models.CheckConstraint(condition=Q(budget__gte=0), name="job_budget_non_negative"),
            models.CheckConstraint(
                condition=Q(overlap_frames__lt=F("segment_frames")),
                name="job_overlap_frames_lt_segment",
            ),
        ]
        indexes = [models.Index(fields=["requester", "status"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_JOB_STATUSES
