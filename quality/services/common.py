"""What every quality service shares: the clock, a requester's view of a job, a payload checked
against its microtask, a job's quality policy, and queueing a slot fill after the commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from celery import current_app
from django.db import transaction
from django.utils import timezone

from marketplace.errors import NotFound, ValidationError
from marketplace.models import Job, User
from marketplace.selectors import jobs_visible_to
from tasks.annotations import AnnotationInvalid, ValidatedAnnotation, validate_payload
from tasks.claiming import annotation_context
from tasks.models import MicroTask

from ..models import JobQualityPolicy


def now() -> datetime:
    """The clock of every quality service (one seam, so tests can move time)."""
    return timezone.now()


def policy_for(job: Job) -> JobQualityPolicy:
    """The job's quality policy, or the defaults when the requester never set one."""
    try:
        return job.quality_policy
    except JobQualityPolicy.DoesNotExist:
        return JobQualityPolicy(job=job)


def visible_job(*, job_id: int, by: User) -> Job:
    job = jobs_visible_to(by).filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such job.")
    return job


def validate(microtask: MicroTask, payload: Any) -> ValidatedAnnotation:
    """``payload`` checked and normalised as an answer to ``microtask``, or ValidationError."""
    try:
        return validate_payload(payload, annotation_context(microtask))
    except AnnotationInvalid as exc:
        raise ValidationError(str(exc), extra={"fields": exc.fields}) from None


def fill_slots_later(job_id: int) -> None:
    """Once this transaction commits, create the replica slots dynamic overlap asked for.

    The task is looked up by name: ``quality.tasks`` calls these services, so they do not
    import it.
    """
    transaction.on_commit(lambda: current_app.tasks["tasks.fill_job_slots"].delay(job_id))
