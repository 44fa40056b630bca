"""Celery tasks of the tasks app: take ids, load rows, call a service.

All follow the project's retry convention (``marketplace.tasks_base.transient_task``).
"""

from __future__ import annotations

import logging

from marketplace.tasks_base import TRANSIENT, retry_countdown, transient_task

from . import claiming, ingestion_parts, ingestion_pipeline, proposals, reviewing

log = logging.getLogger(__name__)

# What ingestion retries: the convention's transient errors, and the media storage being briefly
# unreachable. Anything the file itself is to blame for is handled inside the service (the video
# is marked failed).
INGEST_TRANSIENT = (*TRANSIENT, ConnectionError, TimeoutError, OSError)
# Ingestion gives up sooner than the default: a requester is waiting for the video's status.
INGEST_MAX_RETRIES = 4


GAVE_UP = (
    "Ingestion kept failing on a storage or database error; an administrator has been "
    "notified. Try again later."
)
CRASHED = "Ingestion failed on an internal error; an administrator has been notified."


def _ingest(task, what: str, run, give_up) -> str:
    """Run ``run()``; retry transient errors with backoff, and when the retries run out or the
    error is not transient, ``give_up(reason)`` (the video is marked failed) and say so."""
    try:
        return run()
    except INGEST_TRANSIENT as exc:
        if task.request.retries >= task.max_retries:
            give_up(GAVE_UP)
            log.exception("giving up on %s", what)
            return "failed"
        raise task.retry(exc=exc, countdown=retry_countdown(task.request.retries)) from exc
    except Exception:
        log.exception("ingestion of %s crashed", what)
        give_up(CRASHED)
        return "failed"


# Retries by hand (``transient=()``): when it gives up, the video must be marked failed.
@transient_task("tasks.ingest_video", transient=(), max_retries=INGEST_MAX_RETRIES, bind=True)
def ingest_video(self, video_id: int) -> str:
    """Ingest one video (idempotent: a retry or a redelivery redoes it cleanly)."""

    def run() -> str:
        v = ingestion_pipeline.video_ingest(video_id=video_id)
        return v.status if v is not None else "missing"

    return _ingest(
        self,
        f"video {video_id}",
        run,
        lambda reason: ingestion_pipeline.video_mark_failed(video_id=video_id, reason=reason),
    )


# One part of a long video (``ingestion_parts.video_ingest_part``): retried alone, the same way.
@transient_task("tasks.ingest_video_part", transient=(), max_retries=INGEST_MAX_RETRIES, bind=True)
def ingest_video_part(self, part_id: int) -> str:
    """Decode one part of a long video; the last part to finish joins them (idempotent)."""
    worker = self.request.hostname or ""
    return _ingest(
        self,
        f"video part {part_id}",
        lambda: ingestion_parts.video_ingest_part(part_id=part_id, worker=worker),
        lambda reason: ingestion_parts.video_part_give_up(part_id=part_id, reason=reason),
    )


@transient_task("tasks.requeue_stalled_ingestions")
def requeue_stalled_ingestions() -> int:
    """Periodic: re-queue videos whose ingestion stopped reporting progress (worker died)."""
    return len(ingestion_pipeline.requeue_stalled())


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


@transient_task("tasks.fill_starved_slots")
def fill_starved_slots() -> int:
    """Periodic: fill the jobs where a raised replica target has no slot yet, and the funded
    jobs whose open work has none (their ``fill_job_slots`` message was lost: a broker restart,
    a crash after the commit), so the microtask gets its replica or goes to review, and new
    escrow publishes its work. Returns the regular slots created."""
    return sum(
        claiming.job_fill_slots_if_open(job_id=job_id)
        for job_id in claiming.jobs_with_starved_slots()
    )


@transient_task("tasks.compute_proposals", bind=True, ignore_result=True)
def compute_proposals(self, job_id: int) -> int:
    """Compute one batch of a job's missing proposals, then queue the next batch (idempotent: a
    microtask with a stored outcome per source is skipped; a source's failure is an outcome)."""
    result = proposals.job_proposals_compute_batch(job_id=job_id)
    if result.remaining:
        compute_proposals.delay(job_id)
    return result.computed
