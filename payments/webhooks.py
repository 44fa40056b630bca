"""Stripe webhook events: stored by id, applied at most once, on Celery, in any order.

``stripe_event_record`` verifies the signature on the raw body and stores the event before
anything else; ``stripe_event_process`` applies it inside one database transaction together with
its status change, so a crash leaves it unapplied and unmarked (and it is retried), never applied
twice. Handlers are written for out-of-order delivery and for forged bodies: every handler that
can move money or state re-reads the object from Stripe over the API and acts on Stripe's copy
(payments, refunds, transfers, accounts), and only moves state forward.

Handlers are registered per endpoint: the platform endpoint handles the platform account's own
objects (payments, refunds, transfers, balance); the Connect endpoint only connected accounts'
updates. An event of another type, or of a type that belongs to the other endpoint, is stored as
``ignored``: a payment event signed with the Connect secret never credits anything.
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
from .models import EventStatus, StripeEvent

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
        if event.status in (EventStatus.SUCCEEDED, EventStatus.IGNORED, EventStatus.FLAGGED):
            return event.status
        handler = HANDLERS.get(event.endpoint, {}).get(event.type)
        event.attempts += 1
        if handler is None:
            event.status = EventStatus.IGNORED
            event.processed_at = timezone.now()
            event.save(update_fields=["status", "processed_at", "attempts"])
            return event.status
        obj = (event.payload.get("data") or {}).get("object") or {}
        try:
            with transaction.atomic():
                outcome = handler(obj, event)
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
            # A handler that found Stripe disagreeing with us recorded anomalies, moved nothing
            # it should not have, and says so: the event is kept visible to admins as flagged.
            event.status = (
                EventStatus.FLAGGED if outcome == EventStatus.FLAGGED else EventStatus.SUCCEEDED
            )
            event.error = ""
            event.processed_at = timezone.now()
            event.save(update_fields=["status", "error", "processed_at", "attempts"])
            return event.status
    raise transient


# --- handlers --------------------------------------------------------------------------------
# Each takes the event's object (a claim) and the stored event; returns FLAGGED when what
# Stripe said did not match our rows (anomalies were recorded), None otherwise.

Handler = Callable[[dict, StripeEvent], str | None]


def _flagged(check) -> str | None:
    return EventStatus.FLAGGED if check.flagged else None


def _payment_intent_succeeded(obj: dict, event: StripeEvent) -> str | None:
    from .funding import funding_confirm

    # The body's amount, currency, status and metadata are not trusted: Stripe's copy decides.
    return _flagged(
        funding_confirm(payment_intent_id=str(obj.get("id") or ""), event=event, claimed=obj)
    )


def _payment_intent_failed(obj: dict, event: StripeEvent) -> str | None:
    from .funding import funding_failed

    # failed or canceled: the body only names the PaymentIntent; Stripe's copies of it (and of
    # its Checkout Session) decide whether the funding failed or still awaits payment.
    return _flagged(funding_failed(payment_intent_id=str(obj.get("id") or ""), event=event))


def _checkout_session_event(obj: dict, event: StripeEvent) -> str | None:
    from .funding import funding_confirm_checkout

    # completed, async payment succeeded or failed, expired: the body only names the session;
    # Stripe's copy of it (and of its PaymentIntent) decides what, if anything, is credited.
    return _flagged(
        funding_confirm_checkout(session_id=str(obj.get("id") or ""), event=event, claimed=obj)
    )


def _account_updated(obj: dict, event: StripeEvent) -> None:
    from .connect import connected_account_sync

    # Events can arrive out of order: read the account's current state, not the snapshot.
    connected_account_sync(stripe_account_id=obj.get("id") or event.account)


def _transfer_event(obj: dict, event: StripeEvent) -> None:
    from .transfers import payout_confirm_transfer

    # The event body may be older than what we know; confirm from the current transfer.
    payout_confirm_transfer(transfer=gateway.transfer_retrieve(obj["id"]))


def _balance_available(obj: dict, event: StripeEvent) -> None:
    from .payouts import payouts_resume_queued

    payouts_resume_queued()


def _refund_event(obj: dict, event: StripeEvent) -> str | None:
    from .funding import refund_update_from_stripe

    return _flagged(
        refund_update_from_stripe(
            stripe_refund_id=str(obj.get("id") or ""), event=event, claimed=obj
        )
    )


HANDLERS: dict[str, dict[str, Handler]] = {
    # The platform account's own objects. payment_intent.*, refund.*, charge.* and checkout.*
    # are platform-only: a connected account (Express, transfers only) takes no payments.
    "platform": {
        "payment_intent.succeeded": _payment_intent_succeeded,
        "payment_intent.payment_failed": _payment_intent_failed,
        "payment_intent.canceled": _payment_intent_failed,
        "checkout.session.completed": _checkout_session_event,
        "checkout.session.async_payment_succeeded": _checkout_session_event,
        "checkout.session.async_payment_failed": _checkout_session_event,
        "checkout.session.expired": _checkout_session_event,
        "transfer.created": _transfer_event,
        "transfer.updated": _transfer_event,
        "transfer.reversed": _transfer_event,
        "balance.available": _balance_available,
        "refund.created": _refund_event,
        "refund.updated": _refund_event,
        "refund.failed": _refund_event,
    },
    # Connected accounts' events. account.updated on the platform endpoint would be about the
    # platform's own account, which we do not track: ignored there.
    "connect": {
        "account.updated": _account_updated,
    },
}
