"""What the tasks app does with news from the apps below it: a job's status changed
(``marketplace.signals``), escrow was funded (``payments.signals``). Connected in ``apps``; runs
inside the sender's transaction, so its writes commit with the change."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import receiver
from kombu.exceptions import OperationalError as KombuOperationalError

from marketplace.models import Job, JobStatus
from marketplace.signals import job_transitioned
from payments import signals as payment_signals

from . import budget, claiming, proposals
from .tasks import compute_proposals, fill_job_slots

logger = logging.getLogger(__name__)


@receiver(job_transitioned, dispatch_uid="tasks.on_job_transitioned")
def on_job_transitioned(*, job: Job, previous: str, by: Any, **_: Any) -> None:
    if job.status in (JobStatus.CANCELLED, JobStatus.COMPLETED) and by is not None:
        # Closed by a person (``job_cancel``, ``claiming.job_complete``; a refund is made on
        # someone's authority, so the system's own transitions carry no ``by`` and close
        # nothing here): open claims end and unclaimed work goes back (releasing its reservations),
        # then what is left in escrow is refunded — in that order, so the refund sees the
        # released money. A job that never published has no work and nothing reserved.
        claiming.job_return_work(job=job)
        budget.refund_unspent(job=job, actor=by)
    elif job.status == JobStatus.PUBLISHED and previous == JobStatus.PAUSED:
        # Resumed: escrow that arrived while paused covers more work. (On first publication
        # ``claiming.job_publish`` fills the slots itself, before the transition: a job whose
        # budget covers no work must not publish.)
        claiming.job_fill_slots(job=job)
    ready = job.status in (JobStatus.READY, JobStatus.PUBLISHED)
    if ready and proposals.job_wants_proposals(job.pk):
        # Its microtasks exist (ingested) or are about to be claimed: propose for those missing.
        transaction.on_commit(lambda: compute_proposals.delay(job.pk))


@receiver(payment_signals.escrow_funded, dispatch_uid="tasks.fill_slots_on_funding")
def on_escrow_funded(sender, *, job_id: int, **kwargs) -> None:
    """Publish the work the new escrow covers, once the credit has committed.

    The credit is committed before the message goes out, so a broker failure must not fail the
    caller (a funding check would answer 503, a webhook be retried, for money already
    credited): it is logged, and ``tasks.fill_starved_slots`` (Celery beat) fills the slots of
    a funded job whose open work has none.
    """

    def enqueue() -> None:
        try:
            fill_job_slots.delay(job_id)
        except (KombuOperationalError, OSError) as exc:
            logger.warning(
                "tasks: could not queue the slot fill of funded job %s (%s); the starved-slot "
                "sweep will fill it",
                job_id,
                exc,
            )

    transaction.on_commit(enqueue)
