"""Celery tasks of the tasks app: take ids, load rows, call a service."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import claiming, ingestion, reviewing

log = logging.getLogger(__name__)

# Errors worth retrying: the database or the media storage was briefly unreachable. Anything the
# file itself is to blame for is handled inside the service (the video is marked failed).
TRANSIENT = (OperationalError, InterfaceError, ConnectionError, TimeoutError, OSError)
MAX_RETRIES = 4


@shared_task(
    bind=True,
    name="tasks.ingest_video",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
)
def ingest_video(self, video_id: int) -> str:
    """Ingest one video (idempotent: a retry or a redelivery redoes it cleanly)."""
    try:
        v = ingestion.video_ingest(video_id=video_id)
    except TRANSIENT as exc:
        if self.request.retries >= MAX_RETRIES:
            ingestion.video_mark_failed(
                video_id=video_id,
                reason="Ingestion kept failing on a storage or database error; "
                "an administrator has been notified. Try again later.",
            )
            log.exception("giving up on video %s", video_id)
            return "failed"
        raise self.retry(exc=exc, countdown=min(600, 10 * 2**self.request.retries)) from exc
    except Exception:
        log.exception("ingestion of video %s crashed", video_id)
        ingestion.video_mark_failed(
            video_id=video_id,
            reason="Ingestion failed on an internal error; an administrator has been notified.",
        )
        return "failed"
    return v.status if v is not None else "missing"


@shared_task(name="tasks.requeue_stalled_ingestions", acks_late=True)
def requeue_stalled_ingestions() -> int:
    """Periodic: re-queue videos whose ingestion stopped reporting progress (worker died)."""
    return len(ingestion.requeue_stalled())


@shared_task(
    name="tasks.expire_overdue_claims",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def expire_overdue_claims() -> int:
    """Expire claims past their deadline and return their slots to the pool (idempotent)."""
    return claiming.assignments_expire_overdue()


@shared_task(
    name="tasks.auto_approve_due_submissions",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def auto_approve_due_submissions(batch: int = 500) -> int:
    """Approve submissions whose review delay has passed, batch after batch (idempotent)."""
    total = 0
    while True:
        n = reviewing.assignments_auto_approve_due(batch=batch)
        total += n
        if n < batch:
            return total


@shared_task(
    name="tasks.fill_job_slots",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=6,
)
def fill_job_slots(job_id: int) -> int:
    """More escrow arrived for a published or paused job: make the work it covers claimable
    (idempotent: only missing slots are created). Jobs in any other status are left alone."""
    return claiming.job_fill_slots_if_open(job_id=job_id)
