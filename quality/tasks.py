"""Celery tasks of quality: take ids, call a service; idempotent, with the project's retry
convention (``marketplace.tasks_base.transient_task``)."""

from __future__ import annotations

from marketplace.tasks_base import transient_task

from .services import (
    classification_jobs_aggregate,
    job_route,
    submission_process,
    submissions_process_stragglers,
    suspension_replicas_sweep,
    video_seams_refresh,
    video_seams_sweep,
)


@transient_task(
    "quality.process_submission",
    # Nobody reads its return value. With the Redis result backend, a task whose result is kept
    # also costs the submitting web request a pub/sub SUBSCRIBE to the result channel
    # (``RedisBackend.on_task_call``) on every submit, and the worker a result write; the
    # outcome is in the database (GoldResult, consensus rows) anyway.
    ignore_result=True,
)
def process_submission(submission_id: int) -> str:
    """Score a submission against gold, or run its microtask's consensus (idempotent)."""
    return submission_process(submission_id=submission_id)


@transient_task("quality.process_stragglers", ignore_result=True)
def process_stragglers() -> int:
    """Periodic: score submissions whose ``process_submission`` message was lost."""
    return submissions_process_stragglers()


@transient_task("quality.aggregate_classes")
def aggregate_classes() -> int:
    """Periodic: re-aggregate the labels of live classification jobs with Dawid-Skene."""
    return classification_jobs_aggregate()


@transient_task("quality.add_owed_replicas", ignore_result=True)
def add_owed_replicas() -> int:
    """Periodic: add the extra replicas of suspensions whose add was lost (a crash after the
    suspension's commit); their slots follow through ``tasks.fill_job_slots``."""
    return suspension_replicas_sweep()


@transient_task("quality.route_job", ignore_result=True)
def route_job(job_id: int) -> int:
    """Route a job's unrouted microtasks that have proposals (model-assisted routing)."""
    return job_route(job_id=job_id)


@transient_task("quality.refresh_video_seams", ignore_result=True)
def refresh_video_seams(video_id: int) -> int | None:
    """Count and store the flagged seams of a track video after its consensus changed."""
    return video_seams_refresh(video_id=video_id)


@transient_task("quality.sweep_video_seams", ignore_result=True)
def sweep_video_seams() -> int:
    """Periodic: store the flagged seams of track videos whose count is missing or stale."""
    return video_seams_sweep()
