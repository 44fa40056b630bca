"""The job lifecycle: the state machine and every transition of a job's status.

Read this before changing anything. A job's status changes here and nowhere else
(``job_transition``, row-locked), so the state machine below is the whole truth about which
status may follow which. What a transition means to the apps above marketplace — open claims
ending and unclaimed work returned (tasks), unspent escrow refunded (payments, through tasks'
budget), newly covered work made claimable on resume — is not done here: ``job_transition``
sends ``marketplace.signals.job_transitioned`` inside its transaction, and ``tasks.receivers``
does it, so its writes commit or roll back with the status change. Marketplace never imports
those apps.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .errors import InvalidTransition, PermissionDenied
from .models import FINAL_JOB_STATUSES, Job, JobStatus, User
from .signals import job_transitioned

_FORWARD: dict[str, frozenset[str]] = {
    JobStatus.DRAFT: frozenset({JobStatus.PROCESSING}),
    JobStatus.PROCESSING: frozenset({JobStatus.READY}),
    JobStatus.READY: frozenset({JobStatus.PUBLISHED}),
    JobStatus.PUBLISHED: frozenset({JobStatus.PAUSED, JobStatus.COMPLETED}),
    JobStatus.PAUSED: frozenset({JobStatus.PUBLISHED, JobStatus.COMPLETED}),
}


def allowed_next(status: str) -> frozenset[str]:
    """Statuses a job in ``status`` may move to; cancelled and failed from any non-final one."""
    if status in FINAL_JOB_STATUSES:
        return frozenset()
    return _FORWARD.get(status, frozenset()) | {JobStatus.CANCELLED, JobStatus.FAILED}


def can_transition(current: str, new: str) -> bool:
    return new in allowed_next(current)


def lock_job(job_id: int) -> Job:
    """Lock a job's row for a change of its fields (status, budget, settings): the one way to.

    ``FOR NO KEY UPDATE``, never ``FOR UPDATE``: every row that references the job (a ledger
    transaction, a slot, an assignment) takes a KEY SHARE lock on it when its foreign key is
    checked, at commit. ``FOR UPDATE`` conflicts with that, so a transaction holding the job
    row and waiting for the job's escrow account deadlocked with one holding the escrow and
    committing a posting (issue #16). ``FOR NO KEY UPDATE`` still serialises changes of the job.
    """
    return Job.objects.select_for_update(no_key=True).get(pk=job_id)


@transaction.atomic
def job_transition(*, job: Job, to: str, reason: str = "", by: User | None = None) -> Job:
    """Move ``job`` to status ``to`` if the state machine allows it (row-locked), then tell the
    apps above (``job_transitioned``; ``by`` is who asked, None for the system)."""
    job = lock_job(job.pk)
    if not can_transition(job.status, to):
        raise InvalidTransition(
            f"A {job.get_status_display().lower()} job cannot become {JobStatus(to).label.lower()}."
        )
    previous = job.status
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
    job_transitioned.send(sender=Job, job=job, previous=previous, by=by)
    return job


@transaction.atomic
def job_cancel(*, job: Job, by: User) -> Job:
    """Cancel a job: open claims end, unclaimed work and its reserved budget are returned, and
    the unspent escrow is refunded through Stripe (``tasks.receivers``)."""
    if not (by.is_staff or job.requester_id == by.pk):
        raise PermissionDenied("You can only cancel your own jobs.")
    return job_transition(job=job, to=JobStatus.CANCELLED, by=by)
