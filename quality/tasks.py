"""Celery tasks of quality: take ids, call a service; idempotent, acks late, retried on blips."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from .services import (
    job_classes_aggregate,
    job_fill_slots,
    submission_process,
    submissions_process_stragglers,
)

TRANSIENT = (OperationalError, InterfaceError)


@shared_task(
    name="quality.process_submission",
    acks_late=True,
    # Nobody reads its return value. With the Redis result backend, a task whose result is kept
    # also costs the submitting web request a pub/sub SUBSCRIBE to the result channel
    # (``RedisBackend.on_task_call``) on every submit, and the worker a result write; the
    # outcome is in the database (GoldResult, consensus rows) anyway.
    ignore_result=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=6,
)
def process_submission(submission_id: int) -> str:
    """Score a submission against gold, or run its microtask's consensus (idempotent)."""
    return submission_process(submission_id=submission_id)


@shared_task(name="quality.process_stragglers", acks_late=True, ignore_result=True)
def process_stragglers() -> int:
    """Periodic: score submissions whose ``process_submission`` message was lost."""
    return submissions_process_stragglers()


@shared_task(
    name="quality.fill_slots",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    max_retries=6,
)
def fill_slots(job_id: int) -> int:
    """Create the replica slots dynamic overlap asked for (idempotent: only missing ones)."""
    return job_fill_slots(job_id=job_id)


@shared_task(
    name="quality.aggregate_classes", acks_late=True, autoretry_for=TRANSIENT, max_retries=3
)
def aggregate_classes() -> int:
    """Periodic: re-aggregate the labels of published classification jobs with Dawid-Skene."""
    from marketplace.models import AnnotationType, Job, JobStatus

    total = 0
    for job_id in Job.objects.filter(
        annotation_type=AnnotationType.CLASSIFY,
        status__in=(JobStatus.PUBLISHED, JobStatus.PAUSED, JobStatus.COMPLETED),
    ).values_list("pk", flat=True):
        total += job_classes_aggregate(job_id=job_id)
    return total
