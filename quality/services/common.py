"""What every quality service shares: the clock, a requester's view of a job, a payload checked
against its microtask, a job's quality policy, queueing a slot fill after the commit, and
sending a microtask to the review queue."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import current_app
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from marketplace.errors import NotFound, ValidationError
from marketplace.models import Job, User
from marketplace.selectors import jobs_visible_to
from tasks.annotations import AnnotationInvalid, ValidatedAnnotation, validate_payload
from tasks.claiming import annotation_context
from tasks.models import MicroTask, MicroTaskStatus

from ..models import JobQualityPolicy, ReviewItem, ReviewStatus

logger = logging.getLogger(__name__)


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

    The raised target is committed before the message goes out, so a broker failure must not
    fail the caller (a scoring task would retry work it has done, a request would answer 503
    for a change it made): it is logged, and ``tasks.fill_starved_slots`` (Celery beat) fills
    the slot or sends the microtask to review. The task is looked up by name: ``quality.tasks``
    calls these services, so they do not import it.
    """

    def enqueue() -> None:
        try:
            current_app.tasks["tasks.fill_job_slots"].delay(job_id)
        except (KombuOperationalError, OSError) as exc:
            logger.warning(
                "quality: could not queue the slot fill of job %s (%s); the starved-slot sweep "
                "will fill it",
                job_id,
                exc,
            )

    transaction.on_commit(enqueue)


def microtask_to_review(mt: MicroTask, *, reason: str) -> ReviewItem:
    """Send ``mt`` (whose row the caller holds locked) to the review queue: a person decides it.

    Where automatic work stops: disagreement at the maximum overlap, a replica the cap or the
    job's budget refuses (issue #16: no microtask waits forever for a replica it cannot get).
    """
    if mt.status != MicroTaskStatus.REVIEW:
        mt.status = MicroTaskStatus.REVIEW
        mt.save(update_fields=["status"])
    item, _ = ReviewItem.objects.get_or_create(
        microtask=mt,
        status=ReviewStatus.OPEN,
        defaults={"job_id": mt.job_id, "reason": reason[:300]},
    )
    return item
