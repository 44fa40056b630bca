"""Writes of the marketplace domain: accounts and the job lifecycle."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone

from .errors import InvalidTransition, PermissionDenied, ValidationError
from .lifecycle import can_transition
from .models import Job, JobStatus, RequesterProfile, Role, User, WorkerProfile

# Fields a requester may change while a job is a draft (in the order the API shows them).
JOB_EDITABLE_FIELDS = (
    "title",
    "instructions",
    "annotation_type",
    "label_classes",
    "overlap_min",
    "overlap_max",
    "gold_rate",
    "iou_threshold",
    "agreement_threshold",
    "gold_pass_threshold",
    "min_trust",
    "expected_objects",
    "segment_frames",
    "overlap_frames",
    "keyframe_step",
    "frame_step",
    "frames_per_task",
    "claim_time_limit",
    "auto_approve_delay",
    "deadline",
    "priority",
    "budget",
    "currency",
)


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str,
    role: str,
    email: str = "",
    organisation: str = "",
    country: str = "",
) -> User:
    """Create a user of ``role`` with the matching profile.

    The password must pass ``AUTH_PASSWORD_VALIDATORS`` (length, common passwords, likeness to
    the username and email) whichever door the sign-up came through."""
    if role not in Role.values:
        raise ValidationError(f"Unknown role {role!r}.")
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError("That username is taken.", extra={"fields": {"username": ["taken"]}})
    try:
        validate_password(password, user=User(username=username, email=email, role=role))
    except DjangoValidationError as exc:
        raise ValidationError(
            "Choose a stronger password: " + " ".join(exc.messages),
            extra={"fields": {"password": list(exc.messages)}},
        ) from None
    user = User.objects.create_user(
        username=username,
        password=password,
        email=email,
        role=role,
        is_staff=role == Role.ADMIN,
        is_superuser=role == Role.ADMIN,
    )
    if role == Role.REQUESTER:
        RequesterProfile.objects.create(user=user, organisation=organisation)
    elif role == Role.WORKER:
        WorkerProfile.objects.create(user=user, country=country.upper())
    return user


def _validate_job_fields(fields: dict[str, Any]) -> None:
    classes = fields.get("label_classes")
    if classes is not None:
        if not isinstance(classes, list) or not all(isinstance(c, str) and c for c in classes):
            raise ValidationError(
                "Label classes must be a list of names.",
                extra={"fields": {"label_classes": ["must be a list of non-empty names"]}},
            )
        if len(set(classes)) != len(classes):
            raise ValidationError(
                "Label classes must be unique.",
                extra={"fields": {"label_classes": ["duplicate class names"]}},
            )


@transaction.atomic
def job_create(*, requester: User, **fields: Any) -> Job:
    """Create a draft job owned by ``requester``."""
    if not (requester.is_requester or requester.is_staff):
        raise PermissionDenied("Only requesters can create jobs.")
    unknown = set(fields).difference(JOB_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown job fields: {', '.join(sorted(unknown))}.")
    _validate_job_fields(fields)
    job = Job(requester=requester, **fields)
    job.full_clean()
    job.save()
    return job


@transaction.atomic
def job_update(*, job: Job, **fields: Any) -> Job:
    """Change a draft job's settings; anything past draft is frozen."""
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.status != JobStatus.DRAFT:
        raise InvalidTransition("Only a draft job can be edited.")
    unknown = set(fields).difference(JOB_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown job fields: {', '.join(sorted(unknown))}.")
    _validate_job_fields(fields)
    for name, value in fields.items():
        setattr(job, name, value)
    job.full_clean()
    job.save()
    return job


@transaction.atomic
def job_transition(*, job: Job, to: str, reason: str = "") -> Job:
    """Move ``job`` to status ``to`` if the state machine allows it (row-locked)."""
    job = Job.objects.select_for_update().get(pk=job.pk)
    if not can_transition(job.status, to):
        raise InvalidTransition(
            f"A {job.get_status_display().lower()} job cannot become {JobStatus(to).label.lower()}."
        )
    job.status = to
    now = timezone.now()
    update = ["status", "updated_at"]
    if to == JobStatus.PUBLISHED and job.published_at is None:
        job.published_at = now
        update.append("published_at")
    if to == JobStatus.COMPLETED:
        job.completed_at = now
        update.append("completed_at")
    if to == JobStatus.FAILED:
        job.failure_reason = reason[:500]
        update.append("failure_reason")
    job.save(update_fields=update)
    return job


@transaction.atomic
def job_cancel(*, job: Job, by: User) -> Job:
    """Cancel a job: open claims end, unclaimed work and its reserved budget are returned, and
    the unspent escrow is refunded through Stripe."""
    # tasks builds on marketplace, not the reverse
    from tasks.budget import refund_unspent
    from tasks.claiming import job_return_work

    if not (by.is_staff or job.requester_id == by.pk):
        raise PermissionDenied("You can only cancel your own jobs.")
    job = job_transition(job=job, to=JobStatus.CANCELLED)
    job_return_work(job=job)
    refund_unspent(job=job, actor=by)
    return job
