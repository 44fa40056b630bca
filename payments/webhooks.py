"""Stripe webhook events: stored by id, applied at most once, on Celery, in any order.

``stripe_event_record`` verifies the signature on the raw body and stores the event before
anything else; ``stripe_event_process`` applies it inside one database transaction together with
its status change, so a crash leaves it unapplied and unmarked (and it is retried), never applied
twice. Handlers are written for out-of-order delivery: they read current state from Stripe where
an event body could be stale (accounts), or only move state forward (payments, payouts).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from marketplace.errors import ExternalServiceError

from . import stripe_gateway as gateway
from .errors import WebhookSignatureInvalid
from .models import EventStatus, FundingStatus, StripeEvent

logger = logging.getLogger(__name__)

ENDPOINT_SECRETS = {
    "platform": "STRIPE_WEBHOOK_SECRET",
    "connect": "STRIPE_CONNECT_WEBHOOK_SECRET",
}


def stripe_event_record(
    *, payload: bytes, signature: str, endpoint: str
) -> tuple[StripeEvent, bool]:
    """Verify and store an event; enqueue its processing. Returns ``(event, newly_stored)``.

    Raises ``WebhookSignatureInvalid`` (400) and stores nothing when the signature is wrong.
    """
    secret = getattr(settings, ENDPOINT_SECRETS[endpoint])
    if not secret:
        # An empty key is still a key: anyone can compute its HMAC. Accept nothing instead.
        raise WebhookSignatureInvalid("This webhook endpoint has no secret configured.")
    event = gateway.event_construct(payload=payload, signature=signature, secret=secret)
    with transaction.atomic():
        stored, created = StripeEvent.objects.get_or_create(
            stripe_event_id=event["id"],
            defaults={
                "type": event.get("type", ""),
                "endpoint": endpoint,
                "account": event.get("account") or "",
                "api_version": event.get("api_version") or "",
                "created": datetime.fromtimestamp(event["created"], tz=UTC)
                if event.get("created")
                else None,
                "payload": event,
            },
        )
        if created or stored.status in (EventStatus.RECEIVED, EventStatus.FAILED):
            from .tasks import stripe_event_process_task

            transaction.on_commit(lambda: stripe_event_process_task.delay(stored.pk))
    return stored, created


def stripe_event_process(*, event_pk: int) -> str:
    """Apply a stored event once; returns its final status. Transient failures re-raise."""
    with transaction.atomic():
        event = StripeEvent.objects.select_for_update().get(pk=event_pk)
        if event.status in (EventStatus.SUCCEEDED, EventStatus.IGNORED):
            return event.status
        handler = HANDLERS.get(event.type)
        event.attempts += 1
        if handler is None:
            event.status = EventStatus.IGNORED
            event.processed_at = timezone.now()
            event.save(update_fields=["status", "processed_at", "attempts"])
            return event.status
        obj = (event.payload.get("data") or {}).get("object") or {}
        try:
            with transaction.atomic():
                handler(obj, event)
        except ExternalServiceError as exc:
            event.status = EventStatus.FAILED
            event.error = f"{type(exc).__name__}: {exc.message}"[:5000]
            event.save(update_fields=["status", "error", "attempts"])
            transient = exc
        except Exception as exc:
            logger.exception("Stripe event %s failed", event.stripe_event_id)
            event.status = EventStatus.FAILED
            event.error = f"{type(exc).__name__}: {exc}"[:5000]
            event.save(update_fields=["status", "error", "attempts"])
            return event.status
        else:
            event.status = EventStatus.SUCCEEDED
            event.error = ""
            event.processed_at = timezone.now()
            event.save(update_fields=["status", "error", "processed_at", "attempts"])
            return event.status
    raise transient


# --- handlers --------------------------------------------------------------------------------


def _payment_intent_succeeded(obj: dict, event: StripeEvent) -> None:
    from .funding import funding_succeeded

    funding_succeeded(payment_intent=obj)


def _payment_intent_failed(obj: dict, event: StripeEvent) -> None:
    from .funding import funding_failed

    status = FundingStatus.CANCELED if event.type.endswith("canceled") else FundingStatus.FAILED
    funding_failed(payment_intent=obj, status=status)


def _account_updated(obj: dict, event: StripeEvent) -> None:
    from .connect import connected_account_sync

    # Events can arrive out of order: read the account's current state, not the snapshot.
    connected_account_sync(stripe_account_id=obj.get("id") or event.account)


def _transfer_event(obj: dict, event: StripeEvent) -> None:
    from .payouts import payout_confirm_transfer

    # The event body may be older than what we know; confirm from the current transfer.
    payout_confirm_transfer(transfer=gateway.transfer_retrieve(obj["id"]))


def _balance_available(obj: dict, event: StripeEvent) -> None:
    from .payouts import payouts_resume_queued

    payouts_resume_queued()


def _refund_event(obj: dict, event: StripeEvent) -> None:
    from .funding import refund_update_from_stripe

    refund_update_from_stripe(refund_obj=obj)


HANDLERS: dict[str, Callable[[dict, StripeEvent], None]] = {
    "payment_intent.succeeded": _payment_intent_succeeded,
    "payment_intent.payment_failed": _payment_intent_failed,
    "payment_intent.canceled": _payment_intent_failed,
    "account.updated": _account_updated,
    "transfer.created": _transfer_event,
    "transfer.updated": _transfer_event,
    "transfer.reversed": _transfer_event,
    "balance.available": _balance_available,
    "refund.created": _refund_event,
    "refund.updated": _refund_event,
    "refund.failed": _refund_event,
}
