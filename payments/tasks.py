"""Celery tasks of the payments app: take ids, load rows, call a service.

All are idempotent (the services are keyed) and follow the project's retry convention
(``marketplace.tasks_base.transient_task``): Stripe's transient failures (timeouts, dropped
connections, 5xx, 429: ``StripeError``, an ``ExternalServiceError``) and database blips are
retried with exponential backoff and jitter.
"""

from __future__ import annotations

import logging

from marketplace.models import User
from marketplace.tasks_base import transient_task

from .errors import StripeError

logger = logging.getLogger(__name__)

# Tasks that talk to Stripe retry for longer than the default: with the 300 s cap, 12 retries
# ride out about an hour of Stripe trouble before a payout or refund needs a human.
STRIPE_MAX_RETRIES = 12


@transient_task("payments.payout_run")
def payout_run_task(actor_id: int | None = None, note: str = "") -> dict:
    """One payout run per currency workers hold earnings in (see ``payout_currencies``)."""
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


@transient_task("payments.payout_submit", max_retries=STRIPE_MAX_RETRIES)
def payout_submit_task(payout_id: int) -> str:
    from .transfers import payout_submit

    result = payout_submit(payout_id=payout_id)
    if result.retry:
        raise PayoutNotSettled(result.error)
    return result.status


@transient_task("payments.payouts_submit_batch")
def payouts_submit_batch_task(payout_ids: list[int]) -> dict[str, int]:
    """Submit a run's batch; payouts hit by a transient error retry one by one (same keys)."""
    from django.conf import settings

    from .transfers import payouts_submit_many

    results = payouts_submit_many(
        payout_ids=list(payout_ids), threads=settings.PAYOUT_SUBMIT_THREADS
    )
    statuses: dict[str, int] = {}
    for pk, result in results.items():
        statuses[result.status] = statuses.get(result.status, 0) + 1
        if result.retry:
            payout_submit_task.apply_async((pk,), countdown=2)
    return statuses


@transient_task("payments.payouts_reconcile", max_retries=STRIPE_MAX_RETRIES)
def payouts_reconcile_task() -> dict:
    from .reconciliation import payouts_reconcile

    return payouts_reconcile().__dict__


@transient_task("payments.payouts_resume")
def payouts_resume_task(older_than_seconds: int = 300) -> list[int]:
    from datetime import timedelta

    from .payouts import payouts_resume

    return payouts_resume(older_than=timedelta(seconds=older_than_seconds))


@transient_task("payments.earnings_release")
def earnings_release_task() -> int:
    from .funding import earnings_release_due

    return earnings_release_due()


@transient_task("payments.stripe_event_process", max_retries=STRIPE_MAX_RETRIES)
def stripe_event_process_task(event_pk: int) -> str:
    from .webhooks import stripe_event_process

    return stripe_event_process(event_pk=event_pk)


@transient_task("payments.refund_submit", max_retries=STRIPE_MAX_RETRIES)
def refund_submit_task(refund_id: int) -> str:
    from .funding import refund_submit

    return refund_submit(refund_id=refund_id).status
