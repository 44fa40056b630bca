"""Videos, microtasks, assignments (a worker's claim on a replica slot) and submissions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from marketplace.models import AnnotationType


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
                violation_error_message="This video was already uploaded to this job.",
            ),
        ]

    def __str__(self) -> str:
        return f"video #{self.pk} {self.original_name}"

    @property
    def frames_prefix(self) -> str:
        """Storage folder of this video's extracted frames (everything in it is ours)."""
        return f"frames/video-{self.pk}"


class VideoPart(models.Model):
    """One time range of a long video, decoded by its own Celery task (``tasks.ingestion_parts``).

    A part decodes frames ``decode_from`` .. ``decode_to`` starting at the keyframe
    ``decode_from`` (pts ``start_pts``), plans microtasks over ``decode_from`` .. ``plan_end - 1``
    and owns the frames from ``first_frame`` on (the ones before are the overlap shared with the
    previous part). Its result (segments, cuts, stats) waits here until every part of the same
    ingestion ``attempt`` is done; the last one to finish joins them into microtasks.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="parts")
    attempt = models.PositiveIntegerField(help_text="The video's ingestion attempt")
    index = models.PositiveIntegerField()
    start_pts = models.BigIntegerField()
    decode_from = models.PositiveIntegerField()
    first_frame = models.PositiveIntegerField()
    plan_end = models.PositiveIntegerField(help_text="First frame not planned by this part")
    decode_to = models.PositiveIntegerField(help_text="Last frame decoded (inclusive)")
    seam = models.PositiveIntegerField(null=True, blank=True, help_text="Next part's keyframe")
    total_frames = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    progress = models.FloatField(default=0.0)
    runs = models.PositiveIntegerField(default=0, help_text="Times this part was started")
    worker = models.CharField(max_length=200, blank=True, help_text="Celery worker of the last run")
    result = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["video_id", "attempt", "index"]
        constraints = [
            models.UniqueConstraint(
                fields=["video", "attempt", "index"], name="videopart_unique_index"
            ),
        ]

    def __str__(self) -> str:
        return f"video #{self.video_id} part {self.index} (attempt {self.attempt})"

    @property
    def frames(self) -> int:
        return self.plan_end - self.decode_from

    @property
    def file_suffix(self) -> str:
        """Frames this part writes are named ``<frame>-p<index>.jpg``: a retry of the part
        deletes exactly its own files, never a neighbour's."""
        return f"-p{self.index}"


class MicroTaskStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMPLETE = "complete", "Complete"
    REVIEW = "review", "In review"


class AssistMode(models.TextChoices):
    FULL = "full", "Full annotation"
    VERIFY = "verify", "Verify and correct a proposal"


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
    content_boundary = models.FloatField(
        default=0.0,
        help_text="Masks: mean boundary pixels per object, from gold or consensus (0: not yet)",
    )
    content_area = models.FloatField(
        default=0.0,
        help_text="Masks: mean pixels per object, from gold or consensus (0: not yet)",
    )

    price = models.BigIntegerField(default=0, help_text="Base pay per replica, minor units")
    is_gold = models.BooleanField(default=False)
    replica_target = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(
        max_length=16, choices=MicroTaskStatus.choices, default=MicroTaskStatus.OPEN
    )
    priority = models.SmallIntegerField(default=0)
    # Model-assisted routing (``quality.assist.decide_route``): "" until routed; ``verify`` is
    # verify-and-correct work at fewer replicas, ``full`` stays (or went back to) annotation.
    assist_mode = models.CharField(
        max_length=8, choices=AssistMode.choices, default="", blank=True, db_default=""
    )
    assist_reason = models.CharField(max_length=200, blank=True, default="", db_default="")
    assist_saved = models.BigIntegerField(
        default=0,
        db_default=0,
        help_text="Escrow routing released (minor units); 0 again once escalated",
    )
    assist_full_price = models.BigIntegerField(
        default=0, db_default=0, help_text="The price before verify routing lowered it"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["video_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["video", "index"], name="microtask_unique_index"),
            models.CheckConstraint(
                condition=Q(frame_end__gte=F("frame_start")),
                name="microtask_frames_ordered",
                violation_error_message="The first frame must not come after the last frame.",
            ),
        ]
        indexes = [
            models.Index(fields=["job", "status"]),
            # The claim path picks an unseen gold microtask of a job without scanning the job's
            # (possibly millions of) ordinary microtasks.
            models.Index(fields=["job"], condition=Q(is_gold=True), name="microtask_gold_by_job"),
        ]

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
# Statuses whose assignment no longer holds its slot.
ENDED_UNFINISHED = (AssignmentStatus.EXPIRED, AssignmentStatus.RELEASED)


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
    slot = models.ForeignKey(
        "tasks.Slot",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assignments",
        help_text="The replica slot this claim took (gold claims take a slot of the job's pool)",
    )
    claimed_at = models.DateTimeField()
    deadline = models.DateTimeField(db_index=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    draft = models.JSONField(
        null=True,
        blank=True,
        help_text="Work in progress sent with the heartbeat ({saved_at, payload}, tasks.drafts); "
        "shown only to the worker while the claim is live, never a submission",
    )
    ended_at = models.DateTimeField(null=True, blank=True, help_text="Released or expired at")
    submitted_at = models.DateTimeField(null=True, blank=True)
    auto_approve_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty when approved automatically",
    )
    active_seconds = models.FloatField(
        null=True,
        blank=True,
        help_text="Active time credited (never more than the worker's wall-clock time allows; "
        "see tasks.worktime); pay is measured on it",
    )
    claim_seat = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Which of the worker's CLAIM_MAX_CONCURRENT claim seats this claim holds",
    )
    reserved_amount = models.BigIntegerField(default=0)
    pay_amount = models.BigIntegerField(null=True, blank=True)
    rejection_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            # A worker never holds two assignments of one microtask (invariant 1).
            models.UniqueConstraint(
                fields=["microtask", "worker"], name="assignment_one_per_worker_microtask"
            ),
            # A slot is held by at most one live or finished assignment (invariant 1, backstop).
            models.UniqueConstraint(
                fields=["slot"],
                condition=Q(status__in=LIVE_OR_FINISHED),
                name="assignment_one_live_per_slot",
                violation_error_message="This replica of the microtask is already taken.",
            ),
            models.CheckConstraint(
                condition=Q(active_seconds__isnull=True) | Q(active_seconds__gte=0),
                name="assignment_active_seconds_non_negative",
                violation_error_message="Active time cannot be negative.",
            ),
            # A worker holds at most CLAIM_MAX_CONCURRENT live claims: a claim takes one of the
            # worker's numbered seats, and two live claims never share one, so concurrent claims
            # by the same worker cannot pass the cap (the loser's insert does nothing).
            models.UniqueConstraint(
                fields=["worker", "claim_seat"],
                condition=Q(status=AssignmentStatus.CLAIMED),
                name="assignment_one_live_claim_per_seat",
                violation_error_message="The worker holds as many claims as allowed.",
            ),
        ]
        indexes = [
            models.Index(fields=["worker", "status"]),
            # Crediting active time reads a worker's claims since their current busy period
            # began (tasks.crediting); this keeps that read to those few rows.
            models.Index(fields=["worker", "claimed_at"], name="assignment_worker_claimed_at"),
            models.Index(
                fields=["deadline"],
                condition=Q(status=AssignmentStatus.CLAIMED),
                name="assignment_claimed_deadline",
            ),
            models.Index(
                fields=["auto_approve_at"],
                condition=Q(status=AssignmentStatus.SUBMITTED),
                name="assignment_auto_approve_due",
            ),
        ]

    def __str__(self) -> str:
        return f"assignment #{self.pk} {self.worker_id}@{self.microtask_id} {self.status}"

    @property
    def work_seconds(self) -> float | None:
        """Wall time from claim to submission."""
        if self.submitted_at is None:
            return None
        return (self.submitted_at - self.claimed_at).total_seconds()


class WorkerClock(models.Model):
    """One row per worker that serialises the crediting of their active time (``tasks.crediting``).

    ``version`` changes with every credit, so a credit computed from a stale read is refused and
    recomputed; ``period_start`` bounds what a credit has to read: every claim of the worker that
    started before it has ended and lies in an earlier busy period.
    """

    worker = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    period_start = models.DateTimeField()
    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"clock of worker {self.worker_id} (v{self.version})"


class Submission(models.Model):
    """The annotation a worker submitted for an assignment, as sent and as per-frame shapes."""

    assignment = models.OneToOneField(
        Assignment, on_delete=models.CASCADE, related_name="submission"
    )
    payload = models.JSONField(help_text="As submitted (keyframes for tracks)")
    frames = models.JSONField(default=dict, help_text="Per-frame shapes after interpolation")
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When quality scored it (gold) or took it into its microtask's consensus",
    )
    provenance = models.JSONField(
        default=list,
        db_default=[],
        blank=True,
        help_text="Items that came from a proposal and how far they were moved, measured by the "
        "server (tasks.proposal_sources.provenance_of): [{path, proposal, index, source, moved, "
        "unchanged, label_changed}]",
    )

    class Meta:
        indexes = [
            # The sweep for submissions whose scoring message was lost (quality's outbox).
            models.Index(
                fields=["created_at"],
                condition=Q(processed_at__isnull=True),
                name="submission_unprocessed",
            ),
        ]

    def __str__(self) -> str:
        return f"submission for {self.assignment_id}"


# --- Claiming: replica slots, qualification tests ------------------------------------------------


class Slot(models.Model):
    """One replica of a microtask that a worker can claim, with the budget reserved for it.

    Slots are created at publish (``overlap_min`` per microtask, as far as escrow covers them) and
    when dynamic overlap adds a replica, so a slot exists only once its reservation succeeded and
    the claim path never touches money rows. A slot is *free* while ``assignment`` is empty;
    expiry and release empty it again; approval and rejection consume the reservation and keep
    the slot filled.

    Gold slots (``is_gold``) are the job's pool of budget for gold claims: gold microtasks stay
    open and every worker may get each once, so a gold slot has no microtask of its own; the claim
    picks an unseen gold microtask and records it on the assignment.
    """

    job = models.ForeignKey("marketplace.Job", on_delete=models.CASCADE, related_name="slots")
    microtask = models.ForeignKey(
        MicroTask, on_delete=models.CASCADE, null=True, blank=True, related_name="slots"
    )
    number = models.PositiveIntegerField(help_text="Replica number within the microtask (or pool)")
    is_gold = models.BooleanField(default=False)
    priority = models.SmallIntegerField(default=0, help_text="Copied from the microtask")
    assignment = models.OneToOneField(
        Assignment, on_delete=models.SET_NULL, null=True, blank=True, related_name="held_slot"
    )
    reserved_amount = models.BigIntegerField(help_text="Budget reserved, minor units")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["microtask", "number"],
                condition=Q(microtask__isnull=False),
                name="slot_unique_replica",
                violation_error_message="This microtask already has a replica with that number.",
            ),
            models.UniqueConstraint(
                fields=["job", "number"],
                condition=Q(is_gold=True),
                name="slot_unique_gold_number",
                violation_error_message="This job already has a gold slot with that number.",
            ),
            models.CheckConstraint(
                condition=Q(is_gold=True, microtask__isnull=True)
                | Q(is_gold=False, microtask__isnull=False),
                name="slot_gold_has_no_microtask",
                violation_error_message="Only a gold slot has no microtask.",
            ),
            models.CheckConstraint(
                condition=Q(reserved_amount__gte=0),
                name="slot_reserved_non_negative",
                violation_error_message="A reserved amount cannot be negative.",
            ),
        ]
        indexes = [
            # The claim query walks this index from its head; it holds free slots only, so its
            # size is the open work, and a claim reads a handful of entries whatever the job size.
            models.Index(
                fields=["job", "is_gold", "-priority", "microtask", "number"],
                condition=Q(assignment__isnull=True),
                name="slot_free_claim_order",
            ),
        ]

    def __str__(self) -> str:
        what = "gold pool" if self.is_gold else f"microtask {self.microtask_id}"
        return f"slot #{self.pk} ({what} #{self.number})"


class QualificationItem(models.Model):
    """One question of the qualification test for an annotation type: a gold-like microtask.

    Its known answer lives in ``QualificationAnswer``, which no worker-facing serializer reads.
    """

    annotation_type = models.CharField(max_length=16, choices=AnnotationType.choices)
    position = models.PositiveSmallIntegerField(default=0)
    instructions = models.TextField(blank=True)
    label_classes = models.JSONField(default=list)
    # Asked like a job's (``marketplace.label_schema``); copied from the job of a gold microtask.
    label_attributes = models.JSONField(default=dict, blank=True)
    relation_predicates = models.JSONField(default=list, blank=True)
    event_labels = models.JSONField(
        default=list, blank=True, help_text="A track question's event labels (events on tracks)"
    )
    frame_start = models.PositiveIntegerField(default=0)
    frame_end = models.PositiveIntegerField(default=0)
    frames = models.JSONField(default=list, help_text="Frame numbers to annotate")
    manifest = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["annotation_type", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(frame_end__gte=F("frame_start")),
                name="qualitem_frames_ordered",
                violation_error_message="The first frame must not come after the last frame.",
            ),
        ]

    def __str__(self) -> str:
        return f"qualification {self.annotation_type} #{self.position}"


class QualificationAnswer(models.Model):
    """The known answer to a qualification question. Never serialized to a worker."""

    item = models.OneToOneField(QualificationItem, on_delete=models.CASCADE, related_name="answer")
    payload = models.JSONField(help_text="In the submission format of the annotation type")

    def __str__(self) -> str:
        return f"answer to {self.item}"


class QualificationAttempt(models.Model):
    """A worker's answers to one qualification test and how they scored."""

    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="qualification_attempts"
    )
    annotation_type = models.CharField(max_length=16, choices=AnnotationType.choices)
    responses = models.JSONField(default=dict)
    score = models.FloatField()
    passed = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["worker", "annotation_type"])]

    def __str__(self) -> str:
        return f"{self.worker_id} {self.annotation_type} {self.score:.2f}"


# --- Exports and disputes --------------------------------------------------------------------


class JobExport(models.Model):
    """One download of a job's dataset: who took it, when, in which format, and how much.

    Which submissions' labels it carried is in :class:`ExportedWork`, so the platform knows what
    a requester already has (``tasks.reviewing`` sends a later rejection of it to an admin).
    """

    job = models.ForeignKey("marketplace.Job", on_delete=models.CASCADE, related_name="exports")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    format = models.CharField(max_length=16)
    microtasks = models.PositiveIntegerField(help_text="Results delivered")
    withheld = models.PositiveIntegerField(
        help_text="Results not delivered: they rest on work not approved (yet)"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.format} export of job {self.job_id} ({self.microtasks} microtasks)"


class ExportedWork(models.Model):
    """An approved submission whose labels went into an export (the first export that had them)."""

    assignment = models.OneToOneField(
        Assignment, on_delete=models.CASCADE, primary_key=True, related_name="export_record"
    )
    first_export = models.ForeignKey(JobExport, on_delete=models.CASCADE, related_name="work")

    def __str__(self) -> str:
        return f"assignment {self.assignment_id} exported in {self.first_export_id}"


class DisputeStatus(models.TextChoices):
    PENDING = "pending", "Waiting for an admin"
    UPHELD = "upheld", "Upheld: the work is rejected and its pay taken back"
    DISMISSED = "dismissed", "Dismissed: the work stays approved and paid"


class RejectionDispute(models.Model):
    """A requester's rejection of work whose labels they already exported: an admin decides.

    Until then the work stays approved and the worker keeps their pay.
    """

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="disputes")
    job = models.ForeignKey("marketplace.Job", on_delete=models.CASCADE, related_name="+")
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    reason = models.CharField(max_length=500)
    status = models.CharField(
        max_length=16, choices=DisputeStatus.choices, default=DisputeStatus.PENDING
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decision_note = models.CharField(max_length=500, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["assignment"],
                condition=Q(status="pending"),
                name="one_pending_dispute_per_assignment",
                violation_error_message="This work already has a dispute waiting for a decision.",
            )
        ]

    def __str__(self) -> str:
        return f"dispute over assignment {self.assignment_id} ({self.status})"


# --- Proposals (pre-annotations) -----------------------------------------------------------------


class ProposalStatus(models.TextChoices):
    OK = "ok", "Proposed"
    FAILED = "failed", "The source failed"
    TIMEOUT = "timeout", "The source did not answer in time"
    INVALID = "invalid", "The source answered something unusable"


class ProposalSourceName(models.TextChoices):
    MOTION = "motion", "Moving regions"
    PEOPLE = "people", "People (HOG detector)"
    SEAM = "seam", "Previous microtask's consensus across the seam"
    ML_BACKEND = "ml_backend", "Your model (Label Studio ML backend)"


class ProposalConfig(models.Model):
    """Which proposal sources a job uses, and where its own model is served (``tasks.proposals``).

    ``backend_token`` is sent to the backend and never shown again (the API says only whether
    one is set); it is stored as given, like the other credentials of the database.
    """

    job = models.OneToOneField(
        "marketplace.Job",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="proposal_config",
    )
    sources = models.JSONField(default=list, help_text="Enabled sources (ProposalSourceName)")
    backend_url = models.CharField(max_length=500, blank=True)
    backend_token = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"proposals of job {self.job_id}: {', '.join(self.sources) or 'none'}"


class Proposal(models.Model):
    """What one source proposed for one microtask, or why it proposed nothing.

    ``shapes`` are payload items of the job's type (``tasks.proposal_sources`` states the
    contract), ``confidences`` one per shape. Only ``ok`` rows reach a worker; the others record
    the failure, and the microtask is plain annotation.
    """

    microtask = models.ForeignKey(MicroTask, on_delete=models.CASCADE, related_name="proposals")
    source = models.CharField(max_length=16, choices=ProposalSourceName.choices)
    model_version = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=ProposalStatus.choices)
    shapes = models.JSONField(default=list, blank=True)
    confidences = models.JSONField(default=list, blank=True)
    confidence = models.FloatField(default=0.0)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["microtask_id", "source"]
        constraints = [
            models.UniqueConstraint(fields=["microtask", "source"], name="proposal_one_per_source"),
            models.CheckConstraint(
                condition=Q(confidence__gte=0, confidence__lte=1),
                name="proposal_confidence_range",
                violation_error_message="A confidence is between 0 and 1.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source} proposal for microtask {self.microtask_id} ({self.status})"
