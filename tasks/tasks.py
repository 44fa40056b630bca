"""Celery tasks of the tasks app: take ids, load rows, call a service."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from . import claiming, reviewing


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
