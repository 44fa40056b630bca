"""Writes of the marketplace domain: accounts and jobs' settings (their status changes in
``marketplace.lifecycle``)."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone

from . import bounds, label_schema
from .errors import InvalidTransition, PermissionDenied, ValidationError
from .lifecycle import lock_job
from .models import (
    AnnotationType,
    ConsensusMethod,
    Job,
    JobStatus,
    RequesterProfile,
    Role,
    User,
    WorkerProfile,
)

# Fields a requester may change while a job is a draft (in the order the API shows them).
JOB_EDITABLE_FIELDS = (
    "title",
    "instructions",
    "annotation_type",
    "label_classes",
    "event_labels",
    "label_attributes",
    "relation_predicates",
    "overlap_min",
    "overlap_max",
    "gold_rate",
    "iou_threshold",
    "agreement_threshold",
    "gold_pass_threshold",
    "min_trust",
    "expected_objects",
    "assist_accuracy_bar",
    "consensus_method",
    "track_masks",
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


FieldErrors = dict[str, list[str]]


def _text_error(value: Any, *, max_length: int, required: bool) -> str | None:
    if not isinstance(value, str):
        return "Must be text."
    if "\x00" in value:
        return "Must not contain NUL characters."
    if required and not value.strip():
        return "This field may not be blank."
    if len(value) > max_length:
        return f"Ensure this field has no more than {max_length} characters."
    return None


def _label_classes_error(classes: Any, annotation_type: str) -> str | None:
    if not isinstance(classes, list):
        return "Must be a list of class names."
    for name in classes:
        problem = _text_error(name, max_length=bounds.LABEL_CLASS_NAME_MAX_LENGTH, required=True)
        if problem:
            return f"Class name {str(name)[:40]!r}: {problem[0].lower()}{problem[1:]}"
    if len(set(classes)) != len(classes):
        return "Class names must be unique."
    if len(classes) > bounds.LABEL_CLASSES_MAX:
        return f"Name at most {bounds.LABEL_CLASSES_MAX} classes."
    if annotation_type == AnnotationType.CLASSIFY and len(classes) < 2:
        return "Classification needs at least two classes."
    if not classes:
        return "Name at least one class."
    return None


def _event_labels_error(labels: Any, annotation_type: str) -> str | None:
    """A track job may name event labels (actions of its tracks); no other job takes them (an
    event job's labels are its classes)."""
    if labels in (None, []):
        return None
    if annotation_type != AnnotationType.TRACK:
        return "Only a track job takes event labels; an event job's labels are its classes."
    problem = _label_classes_error(labels, annotation_type)
    return problem.replace("class", "event label") if problem else None


def _range_error(value: Any, lo: Any, hi: Any, *, kind: type) -> str | None:
    if kind is int and not bounds.is_whole_number(value):
        return "A whole number is required."
    if kind is timedelta and not isinstance(value, timedelta):
        return "A duration is required."
    if not lo <= value <= hi:
        if kind is timedelta:
            return f"Must be between {_duration_text(lo)} and {_duration_text(hi)}."
        return f"Must be between {lo} and {hi}."
    return None


def _duration_text(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _job_policy_errors(
    job: Job, *, actor: User, changed: set[str], current: Job | None
) -> FieldErrors:
    """The platform's bounds (``marketplace.bounds``) on the fields being written.

    Only fields that change are held to the policy, so a job an admin raised above a
    requester's priority, or one written under older settings, can still have its title edited.
    """
    errors: FieldErrors = {}

    def check(field: str, problem: str | None) -> None:
        if field in changed and problem:
            errors.setdefault(field, []).append(problem)

    check("title", _text_error(job.title, max_length=bounds.TITLE_MAX_LENGTH, required=True))
    check(
        "instructions",
        _text_error(job.instructions, max_length=bounds.INSTRUCTIONS_MAX_LENGTH, required=False),
    )
    check("priority", _range_error(job.priority, 0, bounds.priority_max(actor), kind=int))
    check(
        "claim_time_limit",
        _range_error(job.claim_time_limit, *bounds.claim_time_limit_range(), kind=timedelta),
    )
    check(
        "auto_approve_delay",
        _range_error(job.auto_approve_delay, *bounds.auto_approve_delay_range(), kind=timedelta),
    )
    check("budget", bounds.money_amount_error(job.budget))
    if job.consensus_method not in ConsensusMethod.values:
        check("consensus_method", f"Use one of: {', '.join(ConsensusMethod.values)}.")
    for name in (
        "gold_rate",
        "iou_threshold",
        "agreement_threshold",
        "gold_pass_threshold",
        "min_trust",
        "assist_accuracy_bar",
    ):
        if not bounds.is_real_number(getattr(job, name)):
            check(name, "A finite number is required.")
    if current is None:
        supported = bounds.supported_currencies()
        if job.currency not in supported:
            check("currency", f"Use one of the supported currencies: {', '.join(supported)}.")
    elif job.currency != current.currency:
        check("currency", "The currency is fixed when the job is created.")
    if (
        "deadline" in changed
        and job.deadline is not None
        and (current is None or job.deadline != current.deadline)
    ):
        now = timezone.now()
        if not isinstance(job.deadline, datetime) or timezone.is_naive(job.deadline):
            check("deadline", "A date and time with a time zone is required.")
        elif job.deadline <= now:
            check("deadline", "The deadline must be in the future.")
        elif job.deadline > now + bounds.deadline_horizon():
            check("deadline", f"The deadline must be within {bounds.deadline_horizon().days} days.")
    return errors


def _job_shape_errors(job: Job) -> FieldErrors:
    """Rules between fields, checked on every write (they hold for the whole row)."""
    errors: FieldErrors = {}
    problem = _label_classes_error(job.label_classes, job.annotation_type)
    if problem:
        errors["label_classes"] = [problem]
    elif job.annotation_type not in label_schema.KINDS and (
        job.label_attributes or job.relation_predicates
    ):
        # Only objects (boxes, polygons, tracks) carry attributes and take part in relations.
        kinds = ", ".join(sorted(label_schema.KINDS))
        if job.label_attributes:
            errors["label_attributes"] = [f"Only {kinds} jobs take attributes."]
        if job.relation_predicates:
            errors["relation_predicates"] = [f"Only {kinds} jobs take relations."]
    else:
        attributes = label_schema.attributes_errors(job.label_attributes, job.label_classes)
        if attributes:
            errors["label_attributes"] = attributes
    predicates = label_schema.predicates_errors(job.relation_predicates)
    if predicates:
        errors.setdefault("relation_predicates", []).extend(predicates)
    problem = _event_labels_error(job.event_labels, job.annotation_type)
    if problem:
        errors["event_labels"] = [problem]
    if not isinstance(job.track_masks, bool):
        errors["track_masks"] = ["Must be true or false."]
    elif job.track_masks and job.annotation_type != AnnotationType.TRACK:
        errors["track_masks"] = ["Only a track job asks for masks on its keyframes."]
    whole = bounds.is_whole_number
    if whole(job.overlap_min) and whole(job.overlap_max) and job.overlap_min > job.overlap_max:
        errors["overlap_min"] = ["Must not exceed overlap_max."]
    if (
        whole(job.overlap_frames)
        and whole(job.segment_frames)
        and job.overlap_frames >= job.segment_frames
    ):
        errors["overlap_frames"] = ["Must be smaller than segment_frames."]
    return errors


def _raise_field_errors(errors: FieldErrors, message: str = "") -> None:
    if errors:
        names = ", ".join(sorted(errors))
        raise ValidationError(
            message or f"Some fields are not valid: {names}.", extra={"fields": errors}
        )


def _job_validate(job: Job, *, actor: User, changed: set[str], current: Job | None) -> None:
    """Every rule a job must meet, as the project's ``ValidationError`` with field errors.

    The one home of job validation: pages and the API both reach it through ``job_create`` and
    ``job_update``. The model's own validators (hard ranges, choices, lengths) and its check
    constraints run last, through ``full_clean``, converted so that Django's ``ValidationError``
    never escapes a service.
    """
    errors = _job_policy_errors(job, actor=actor, changed=changed, current=current)
    for field, problems in _job_shape_errors(job).items():
        errors.setdefault(field, []).extend(problems)
    _raise_field_errors(errors)
    try:
        job.full_clean()
    except DjangoValidationError as exc:
        found = exc.message_dict
        general = found.pop(NON_FIELD_ERRORS, [])
        _raise_field_errors(found, "; ".join(general))
        raise ValidationError("; ".join(general) or "The job is not valid.") from None


def _unknown_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields).difference(JOB_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(
            f"Unknown job fields: {', '.join(sorted(unknown))}.",
            extra={"fields": {name: ["Unknown field."] for name in sorted(unknown)}},
        )


@transaction.atomic
def job_create(*, requester: User, **fields: Any) -> Job:
    """Create a draft job owned by ``requester``, within the platform's bounds."""
    if not (requester.is_requester or requester.is_staff):
        raise PermissionDenied("Only requesters can create jobs.")
    _unknown_fields(fields)
    fields.setdefault("currency", settings.PLATFORM_CURRENCY.lower())
    job = Job(requester=requester, **fields)
    _job_validate(job, actor=requester, changed=set(JOB_EDITABLE_FIELDS), current=None)
    job.save()
    return job


@transaction.atomic
def job_update(*, job: Job, by: User | None = None, **fields: Any) -> Job:
    """Change a draft job's settings; anything past draft is frozen, the currency always is.

    ``by`` is who edits (the requester by default): an admin may set a higher priority.
    """
    job = lock_job(job.pk)
    if job.status != JobStatus.DRAFT:
        raise InvalidTransition("Only a draft job can be edited.")
    _unknown_fields(fields)
    current = copy.copy(job)
    for name, value in fields.items():
        setattr(job, name, value)
    changed = {name for name in fields if getattr(current, name) != getattr(job, name)}
    _job_validate(job, actor=by or job.requester, changed=changed, current=current)
    job.save()
    return job


@transaction.atomic
def job_budget_raise(*, job: Job, by: User, budget: Any) -> Job:
    """Raise the budget of a job that is not finished (the funding page's "raise the budget").

    Unlike the other settings a budget may grow after the draft (a quote above it is the usual
    reason), never shrink: funding already paid in under it stays within it.
    """
    job = lock_job(job.pk)
    if not (by.is_staff or job.requester_id == by.pk):
        raise PermissionDenied("Only the job's requester can change its budget.")
    if job.is_final:
        raise InvalidTransition("A finished job's budget cannot change.")
    problem = bounds.money_amount_error(budget)
    if problem is None and budget < job.budget:
        problem = f"The budget can only be raised (it is {job.budget} now)."
    if problem is not None:
        _raise_field_errors({"budget": [problem]})
    job.budget = budget
    job.save(update_fields=["budget", "updated_at"])
    return job
