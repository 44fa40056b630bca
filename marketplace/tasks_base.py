"""The one retry convention of every Celery task in the project: ``transient_task``.

Every task takes ids, loads rows and calls an idempotent service (keyed ledger postings, payouts
keyed by Stripe idempotency keys, "only missing slots" fills, state checks before each
transition), so running one twice is harmless. That is what makes this convention safe:

- ``acks_late`` and ``reject_on_worker_lost``: the broker keeps a message until its task has
  finished, so a worker killed mid-task means the task runs again, never that it is lost;
- ``autoretry_for`` the project's transient errors (``TRANSIENT``: an external service —
  Stripe, storage — failing in a way worth retrying, or the database briefly unreachable), and
  nothing else: a rule refusing the work (any other ``ApplicationError``) fails at once;
- exponential backoff with full jitter (``2 * 2**n`` seconds, capped at
  ``TASK_RETRY_BACKOFF_MAX``), so a recovering service is not hit by every retry at once;
- at most ``TASK_MAX_RETRIES`` retries unless a task says why it needs more.

A task that must do something when it gives up (``tasks.ingest_video`` marks the video failed)
catches the transient errors itself and retries with ``retry_countdown``, the same schedule.

Lowest layer: this knows only Django, Celery and ``marketplace.errors``; any app's ``tasks.py``
may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import InterfaceError, OperationalError

from .errors import ExternalServiceError

# What is worth retrying: another service failing for a while (``ExternalServiceError``, e.g.
# ``payments.errors.StripeError``), or the database connection dropping.
TRANSIENT: tuple[type[BaseException], ...] = (
    ExternalServiceError,
    OperationalError,
    InterfaceError,
)

RETRY_BACKOFF_FACTOR = 2


def retry_countdown(retries: int) -> int:
    """Seconds before retry number ``retries + 1``: Celery's own ``retry_backoff`` schedule with
    full jitter, for tasks that call ``self.retry`` themselves."""
    return get_exponential_backoff_interval(
        factor=RETRY_BACKOFF_FACTOR,
        retries=retries,
        maximum=settings.TASK_RETRY_BACKOFF_MAX,
        full_jitter=True,
    )


def transient_task(
    name: str,
    *,
    transient: tuple[type[BaseException], ...] = TRANSIENT,
    max_retries: int | None = None,
    **options: Any,
) -> Callable[[Callable[..., Any]], Any]:
    """``shared_task`` with the project's retry convention (see the module docstring).

    ``transient`` adds to or narrows what is retried (``()`` for a task that retries by hand);
    ``max_retries`` overrides ``TASK_MAX_RETRIES`` for a task whose failures outlast it (say
    why where it is used); other ``options`` go to Celery unchanged (``bind``,
    ``ignore_result``...).
    """
    return shared_task(
        name=name,
        acks_late=True,
        reject_on_worker_lost=True,
        autoretry_for=transient,
        retry_backoff=RETRY_BACKOFF_FACTOR,
        retry_backoff_max=settings.TASK_RETRY_BACKOFF_MAX,
        retry_jitter=True,
        max_retries=settings.TASK_MAX_RETRIES if max_retries is None else max_retries,
        **options,
    )
