"""Celery tasks of the payments app: take ids, load rows, call a service.

All are idempotent (the services are keyed) and ``acks_late``; Stripe's transient failures
(timeouts, dropped connections, 5xx, 429) are retried with exponential backoff.
"""

from __future__ import annotations

import logging

from celery import shared_task

from .errors import StripeError

logger = logging.getLogger(__name__)

RETRY = {
    "acks_late": True,
    "autoretry_for": (StripeError,),
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 12,
}


@shared_task(name="payments.payout_run", acks_late=True)
def payout_run_task(actor_id: int | None = None, note: str = "") -> dict:
    """One payout run per currency workers hold earnings in (see ``payout_currencies``)."""
    from marketplace.models import User

    from .payouts import payout_runs_start

    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    runs = payout_runs_start(actor=actor, note=note or "scheduled")
    return {
        "runs": {currency: run.pk for currency, run in runs.items()},
        "payouts": sum(run.payouts_created for run in runs.values()),
        "totals": {currency: run.total_amount for currency, run in runs.items()},
    }


class PayoutNotSettled(StripeError):
    """The payout's transfer could not be created yet; it is retried with the same key."""


@shared_task(name="payments.payout_submit", **RETRY)
def payout_submit_task(payout_id: int) -> str:
    from .payouts import payout_submit

    result = payout_submit(payout_id=payout_id)
    if result.retry:
        raise PayoutNotSettled(result.error)
    return result.status


@shared_task(name="payments.payouts_submit_batch", acks_late=True)
def payouts_submit_batch_task(payout_ids: list[int]) -> dict[str, int]:
    """Submit a run's batch; payouts hit by a transient error retry one by one (same keys)."""
    from django.conf import settings

    from .payouts import payouts_submit_many

    results = payouts_submit_many(
        payout_ids=list(payout_ids), threads=settings.PAYOUT_SUBMIT_THREADS
    )
    statuses: dict[str, int] = {}
    for pk, result in results.items():
        statuses[result.status] = statuses.get(result.status, 0) + 1
        if result.retry:
            payout_submit_task.apply_async((pk,), countdown=2)
    return statuses


@shared_task(name="payments.payouts_reconcile", **RETRY)
def payouts_reconcile_task() -> dict:
    from .payouts import payouts_reconcile

    return payouts_reconcile().__dict__


@shared_task(name="payments.payouts_resume", acks_late=True)
def payouts_resume_task(older_than_seconds: int = 300) -> list[int]:
    from datetime import timedelta

    from .payouts import payouts_resume

    return payouts_resume(older_than=timedelta(seconds=older_than_seconds))


@shared_task(name="payments.earnings_release", acks_late=True)
def earnings_release_task() -> int:
    from .funding import earnings_release_due

    return earnings_release_due()


@shared_task(name="payments.stripe_event_process", **RETRY)
def stripe_event_process_task(event_pk: int) -> str:
    from .webhooks import stripe_event_process

    return stripe_event_process(event_pk=event_pk)


@shared_task(name="payments.refund_submit", **RETRY)
def refund_submit_task(refund_id: int) -> str:
    from .funding import refund_submit

    return refund_submit(refund_id=refund_id).status
