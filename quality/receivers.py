"""What quality does with news from the claim path (``tasks.signals``); connected in ``apps``."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from tasks import signals

from . import services


@receiver(signals.time_overreported, dispatch_uid="quality.inflated_time")
def on_time_overreported(*, assignment, credit, at, **_: Any) -> None:
    services.fraud_flag_inflated_time(
        assignment=assignment,
        evidence={
            "reported_seconds": round(credit.reported, 1),
            "credited_seconds": round(credit.credited, 1),
            "claim_elapsed_seconds": round(credit.elapsed, 1),
            "wall_clock_seconds": round(credit.wall_clock, 1),
            "credited_to_parallel_claims_seconds": round(credit.others, 1),
            "at": at.isoformat(),
        },
    )


@receiver(signals.qualification_reinstated, dispatch_uid="quality.reinstated")
def on_qualification_reinstated(*, worker, annotation_type, **_: Any) -> None:
    services.worker_reinstate(worker=worker, annotation_type=annotation_type)


@receiver(signals.work_rejected, dispatch_uid="quality.on_work_rejected")
def on_work_rejected(sender: Any, *, assignment, by, confirmed: bool, **kwargs: Any) -> None:
    """A person rejected work: it moves the worker's standing with the requester, and their
    platform trust only when confirmed (``quality.standing``)."""
    services.rejection_record(assignment=assignment, by=by, confirmed=confirmed)


@receiver(signals.submission_stored, dispatch_uid="quality.on_submission_stored")
def on_submission_stored(*, submission, **_: Any) -> None:
    """A submission was stored: score it once it is committed (the outbox, ``processing``)."""
    services.submission_received(submission=submission)


@receiver(signals.proposals_stored, dispatch_uid="quality.on_proposals_stored")
def on_proposals_stored(*, job_id, **_: Any) -> None:
    """Proposals were stored: route the job's microtasks that have one (``routing``)."""
    services.job_route_later(job_id)


@receiver(signals.replicas_unfunded, dispatch_uid="quality.on_replicas_unfunded")
def on_replicas_unfunded(*, job, microtask_ids, **_: Any) -> None:
    """Raised replica targets the budget cannot fund: a person decides those microtasks."""
    services.microtasks_unfunded_to_review(job=job, microtask_ids=microtask_ids)
