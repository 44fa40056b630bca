"""Celery tasks of the tasks app: take ids, load rows, call a service.

All follow the project's retry convention (``marketplace.tasks_base.transient_task``).
"""

from __future__ import annotations

import logging

from marketplace.tasks_base import TRANSIENT, retry_countdown, transient_task

from . import claiming, ingestion, reviewing

log = logging.getLogger(__name__)

# What ingestion retries: the convention's transient errors, and the media storage being briefly
# unreachable. Anything the file itself is to blame for is handled inside the service (the video
# is marked failed).
INGEST_TRANSIENT = (*TRANSIENT, ConnectionError, TimeoutError, OSError)
# Ingestion gives up sooner than the default: a requester is waiting for the video's status.
INGEST_MAX_RETRIES = 4


# Retries by hand (``transient=()``): when it gives up, the video must be marked failed.
@transient_task("tasks.ingest_video", transient=(), max_retries=INGEST_MAX_RETRIES, bind=True)
def ingest_video(self, video_id: int) -> str:
    """Ingest one video (idempotent: a retry or a redelivery redoes it cleanly)."""
    try:
        v = ingestion.video_ingest(video_id=video_id)
    except INGEST_TRANSIENT as exc:
        if self.request.retries >= self.max_retries:
            ingestion.video_mark_failed(
                video_id=video_id,
                reason="Ingestion kept failing on a storage or database error; "
                "an administrator has been notified. Try again later.",
            )
            log.exception("giving up on video %s", video_id)
            return "failed"
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries)) from exc
    except Exception:
        log.exception("ingestion of video %s crashed", video_id)
        ingestion.video_mark_failed(
            video_id=video_id,
            reason="Ingestion failed on an internal error; an administrator has been notified.",
        )
        return "failed"
    return v.status if v is not None else "missing"


# One part of a long video (``ingestion.video_ingest_part``): retried alone, the same way.
@transient_task("tasks.ingest_video_part", transient=(), max_retries=INGEST_MAX_RETRIES, bind=True)
def ingest_video_part(self, part_id: int) -> str:
    """Decode one part of a long video; the last part to finish joins them (idempotent)."""
    try:
        return ingestion.video_ingest_part(part_id=part_id, worker=self.request.hostname or "")
    except INGEST_TRANSIENT as exc:
        if self.request.retries >= self.max_retries:
            ingestion.video_part_give_up(
                part_id=part_id,
                reason="Ingestion kept failing on a storage or database error; "
                "an administrator has been notified. Try again later.",
            )
            log.exception("giving up on video part %s", part_id)
            return "failed"
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries)) from exc
    except Exception:
        log.exception("ingestion of video part %s crashed", part_id)
        ingestion.video_part_give_up(
            part_id=part_id,
            reason="Ingestion failed on an internal error; an administrator has been notified.",
        )
        return "failed"


@transient_task("tasks.requeue_stalled_ingestions")
def requeue_stalled_ingestions() -> int:
    """Periodic: re-queue videos whose ingestion stopped reporting progress (worker died)."""
    return len(ingestion.requeue_stalled())


@transient_task("tasks.expire_overdue_claims")
def expire_overdue_claims() -> int:
    """Expire claims past their deadline and return their slots to the pool (idempotent)."""
    return claiming.assignments_expire_overdue()


@transient_task("tasks.auto_approve_due_submissions")
def auto_approve_due_submissions(batch: int = 500) -> int:
    """Approve submissions whose review delay has passed, batch after batch (idempotent)."""
    total = 0
    while True:
        n = reviewing.assignments_auto_approve_due(batch=batch)
        total += n
        if n < batch:
            return total


@transient_task("tasks.fill_job_slots")
def fill_job_slots(job_id: int) -> int:
    """Make the work a published or paused job's escrow covers claimable: after more escrow
    arrived (payments), or after dynamic overlap raised replica targets (quality). The one
    fill-slots task; idempotent (only missing slots are created); jobs in any other status are
    left alone."""
    return claiming.job_fill_slots_if_open(job_id=job_id)
