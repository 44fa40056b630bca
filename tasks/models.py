"""Videos, microtasks, assignments (a worker's claim on a replica slot) and submissions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class VideoStatus(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded"
    PROCESSING = "processing", "Processing"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


def video_upload_to(instance: Video, filename: str) -> str:
    return f"videos/job-{instance.job_id}/{filename}"


class Video(models.Model):
    job = models.ForeignKey("marketplace.Job", on_delete=models.CASCADE, related_name="videos")
    file = models.FileField(upload_to=video_upload_to, max_length=500)
    original_name = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField(default=0)
    checksum = models.CharField(max_length=64, blank=True, db_index=True, help_text="SHA-256")
    status = models.CharField(
        max_length=16, choices=VideoStatus.choices, default=VideoStatus.UPLOADED, db_index=True
    )
    stage = models.CharField(max_length=32, blank=True)
    progress = models.FloatField(default=0.0, help_text="0..100 within the pipeline")
    failure_reason = models.CharField(max_length=500, blank=True)

    # Probe results
    container = models.CharField(max_length=64, blank=True)
    codec = models.CharField(max_length=64, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    fps = models.FloatField(null=True, blank=True)
    frame_count = models.PositiveIntegerField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True, help_text="seconds")
    rotation = models.SmallIntegerField(default=0)
    variable_frame_rate = models.BooleanField(default=False)
    shot_boundaries = models.JSONField(default=list, blank=True)

    # Ingestion bookkeeping
    attempts = models.PositiveIntegerField(default=0, help_text="Ingestion runs started")
    bad_packets = models.PositiveIntegerField(
        default=0, help_text="Damaged packets or decoder errors met while decoding"
    )
    frame_width = models.PositiveIntegerField(null=True, blank=True, help_text="Extracted JPEGs")
    frame_height = models.PositiveIntegerField(null=True, blank=True)
    ingest_started_at = models.DateTimeField(null=True, blank=True)
    ingested_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # A re-upload of the same file to the same job is recognised and refused.
            models.UniqueConstraint(
                fields=["job", "checksum"],
                condition=~Q(checksum=""),
                name="video_unique_checksum_per_job",
            ),
        ]

    def __str__(self) -> str:
        return f"video #{self.pk} {self.original_name}"

    @property
    def frames_prefix(self) -> str:
        """Storage folder of this video's extracted frames (everything in it is ours)."""
        return f"frames/video-{self.pk}"


class MicroTaskStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMPLETE = "complete", "Complete"
    REVIEW = "review", "In review"


class MicroTask(models.Model):
    """A unit of work a worker finishes in minutes: a frame range or a set of sampled frames."""

    job = models.ForeignKey("marketplace.Job", on_delete=models.CASCADE, related_name="microtasks")
    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="microtasks")
    index = models.PositiveIntegerField(help_text="Order within the video")
    frame_start = models.PositiveIntegerField()
    frame_end = models.PositiveIntegerField(help_text="Inclusive")
    frames = models.JSONField(default=list, help_text="Frame numbers the worker annotates")
    keyframe_step = models.PositiveIntegerField(default=1)
    manifest = models.JSONField(default=dict, blank=True)

    # Complexity, measured from the pixels at ingestion
    motion = models.FloatField(default=0.0)
    clutter = models.FloatField(default=0.0)
    complexity = models.FloatField(default=1.0)
    expected_objects = models.PositiveSmallIntegerField(default=1)

    price = models.BigIntegerField(default=0, help_text="Base pay per replica, minor units")
    is_gold = models.BooleanField(default=False)
    replica_target = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(
        max_length=16, choices=MicroTaskStatus.choices, default=MicroTaskStatus.OPEN
    )
    priority = models.SmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["video_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["video", "index"], name="microtask_unique_index"),
            models.CheckConstraint(
                condition=Q(frame_end__gte=F("frame_start")), name="microtask_frames_ordered"
            ),
        ]
        indexes = [models.Index(fields=["job", "status"])]

    def __str__(self) -> str:
        return f"microtask #{self.pk} ({self.frame_start}-{self.frame_end})"


class AssignmentStatus(models.TextChoices):
    CLAIMED = "claimed", "Claimed"
    SUBMITTED = "submitted", "Submitted"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    RELEASED = "released", "Released"


LIVE_OR_FINISHED = (
    AssignmentStatus.CLAIMED,
    AssignmentStatus.SUBMITTED,
    AssignmentStatus.APPROVED,
    AssignmentStatus.REJECTED,
)


class Assignment(models.Model):
    """A worker's claim on one replica of a microtask, and what became of it."""

    microtask = models.ForeignKey(MicroTask, on_delete=models.CASCADE, related_name="assignments")
    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments"
    )
    status = models.CharField(
        max_length=16,
        choices=AssignmentStatus.choices,
        default=AssignmentStatus.CLAIMED,
        db_index=True,
    )
    claimed_at = models.DateTimeField()
    deadline = models.DateTimeField(db_index=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    active_seconds = models.FloatField(null=True, blank=True)
    reserved_amount = models.BigIntegerField(default=0)
    pay_amount = models.BigIntegerField(null=True, blank=True)
    rejection_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            # A worker never holds two assignments of one microtask (invariant 1).
            models.UniqueConstraint(
                fields=["microtask", "worker"], name="assignment_one_per_worker_microtask"
            ),
        ]
        indexes = [models.Index(fields=["worker", "status"])]

    def __str__(self) -> str:
        return f"assignment #{self.pk} {self.worker_id}@{self.microtask_id} {self.status}"


class Submission(models.Model):
    """The annotation a worker submitted for an assignment, as sent and as per-frame shapes."""

    assignment = models.OneToOneField(
        Assignment, on_delete=models.CASCADE, related_name="submission"
    )
    payload = models.JSONField(help_text="As submitted (keyframes for tracks)")
    frames = models.JSONField(default=dict, help_text="Per-frame shapes after interpolation")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"submission for {self.assignment_id}"
