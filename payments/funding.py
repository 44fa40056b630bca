"""Requester money: funding a job through a PaymentIntent, refunds of unspent escrow, bonuses,
and earnings leaving the hold period."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from marketplace.errors import Conflict, PermissionDenied, ValidationError
from marketplace.models import FINAL_JOB_STATUSES, Job, User

from . import pricing
from . import stripe_gateway as gateway
from .errors import InsufficientEscrow, StripeError, StripeRequestRefused
from .ledger import AccountKind
from .models import (
    EarningHold,
    Funding,
    FundingStatus,
    LedgerAccount,
    Refund,
    RefundStatus,
    TxKind,
)
from .selectors import active_policy, escrow_balance
from .services import (
    _job_accounts,
    _lock_account,
    audit_log_record,
    check_money_amount,
    escrow_fund,
    escrow_refund_unspent,
    job_quote,
    ledger_account,
    ledger_post,
)

logger = logging.getLogger(__name__)
STRIPE_MINIMUM_CHARGE = 50


def _now() -> datetime:
    return timezone.now()


def _owner_or_admin(job: Job, user: User) -> None:
    if not (user.is_platform_admin or job.requester_id == user.pk):
        raise PermissionDenied("Only the job's requester can do that.")


# --- funding ---------------------------------------------------------------------------------


@transaction.atomic
def funding_create(*, job: Job, requester: User, amount: int | None = None) -> Funding:
    """A PaymentIntent for what the job still needs (its quote's fund amount minus escrow).

    The job's escrow is credited only when Stripe says ``payment_intent.succeeded``.
    """
    _owner_or_admin(job, requester)
    if job.is_final:
        raise Conflict("A finished job cannot be funded.")
    quote = job_quote(job=job)
    if amount is None:
        amount = max(0, quote.fund_amount - escrow_balance(job=job).funded)
    check_money_amount(amount, allow_zero=True)
    if amount < STRIPE_MINIMUM_CHARGE:
        raise ValidationError(
            f"The job is already funded for its quote (needs {amount}, and Stripe charges at "
            f"least {STRIPE_MINIMUM_CHARGE})."
        )
    funding = Funding.objects.create(
        job=job,
        requester=job.requester,
        amount=amount,
        currency=job.currency,
        quote={k: v for k, v in quote.__dict__.items()},
    )
    intent = gateway.payment_intent_create(
        amount=amount,
        currency=job.currency,
        transfer_group=f"job:{job.pk}",
        metadata={"funding_id": str(funding.pk), "job_id": str(job.pk)},
        idempotency_key=f"funding:{funding.pk}",
        description=f"Crowdlabel job #{job.pk}: {job.title}"[:200],
    )
    funding.stripe_payment_intent_id = intent["id"]
    funding.client_secret = intent.get("client_secret") or ""
    funding.save(update_fields=["stripe_payment_intent_id", "client_secret", "updated_at"])
    audit_log_record(
        action="funding.created",
        actor=requester,
        amount=amount,
        currency=job.currency,
        obj=funding,
        payment_intent=intent["id"],
    )
    return funding


@transaction.atomic
def funding_succeeded(*, payment_intent: dict) -> Funding | None:
    """``payment_intent.succeeded``: credit the job's escrow once (keyed by the intent id)."""
    funding = _funding_for(payment_intent)
    if funding is None:
        return None
    received = int(payment_intent.get("amount_received") or payment_intent["amount"])
    escrow_fund(
        job=funding.job,
        amount=received,
        key=f"pi:{payment_intent['id']}",
        memo=f"PaymentIntent {payment_intent['id']} succeeded",
    )
    funding.status = FundingStatus.SUCCEEDED
    funding.save(update_fields=["status", "updated_at"])
    # Funding a live job publishes the work the new escrow covers, at the prices of the quote
    # this funding was made for (``funding_create`` re-quotes on measured work time first).
    from tasks.tasks import fill_job_slots

    job_id = funding.job_id
    transaction.on_commit(lambda: fill_job_slots.delay(job_id))
    return funding


@transaction.atomic
def funding_failed(*, payment_intent: dict, status: str = FundingStatus.FAILED) -> Funding | None:
    funding = _funding_for(payment_intent)
    if funding is None or funding.status == FundingStatus.SUCCEEDED:
        return funding  # a late failure never undoes a success (out-of-order delivery)
    funding.status = status
    funding.save(update_fields=["status", "updated_at"])
    return funding


def _funding_for(payment_intent: dict) -> Funding | None:
    qs = Funding.objects.select_for_update().select_related("job")
    funding = qs.filter(stripe_payment_intent_id=payment_intent["id"]).first()
    if funding is None:
        funding_id = (payment_intent.get("metadata") or {}).get("funding_id", "")
        if str(funding_id).isdigit():
            funding = qs.filter(pk=int(funding_id)).first()
            if funding is not None and not funding.stripe_payment_intent_id:
                funding.stripe_payment_intent_id = payment_intent["id"]
    return funding


# --- refunds ---------------------------------------------------------------------------------


@transaction.atomic
def job_refund_unspent(*, job: Job, actor: User, reason: str = "") -> list[Refund]:
    """Refund a finished job's unspent escrow through Stripe (across its fundings)."""
    _owner_or_admin(job, actor)
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.status not in FINAL_JOB_STATUSES:
        raise Conflict("Unspent escrow is refunded once the job is completed or cancelled.")
    escrow, _ = _job_accounts(job)
    escrow = _lock_account(escrow)
    left = escrow.balance
    refunds: list[Refund] = []
    for funding in (
        Funding.objects.select_for_update()
        .filter(job=job, status=FundingStatus.SUCCEEDED)
        .order_by("-id")
    ):
        if left <= 0:
            break
        refundable = funding.amount - funding.amount_refunded
        amount = min(refundable, left)
        if amount <= 0:
            continue
        refund = Refund.objects.create(
            job=job,
            funding=funding,
            amount=amount,
            currency=job.currency,
            reason=reason or "Unspent escrow",
        )
        escrow_refund_unspent(
            job=job, key=f"row:{refund.pk}", amount=amount, actor=actor, reason=refund.reason
        )
        Funding.objects.filter(pk=funding.pk).update(amount_refunded=F("amount_refunded") + amount)
        left -= amount
        refunds.append(refund)
        from .tasks import refund_submit_task

        transaction.on_commit(lambda pk=refund.pk: refund_submit_task.delay(pk))
    return refunds


def refund_submit(*, refund_id: int) -> Refund:
    """Ask Stripe for the refund (idempotent on ``refund:{id}``); settle if it succeeded."""
    with transaction.atomic():
        refund = (
            Refund.objects.select_for_update(skip_locked=True)
            .select_related("funding", "job")
            .filter(pk=refund_id, status=RefundStatus.PENDING)
            .first()
        )
        if refund is None:
            return Refund.objects.get(pk=refund_id)
        try:
            result = gateway.refund_create(
                payment_intent=refund.funding.stripe_payment_intent_id,
                amount=refund.amount,
                idempotency_key=f"refund:{refund.pk}",
                metadata={"refund_id": str(refund.pk), "job_id": str(refund.job_id)},
            )
        except StripeRequestRefused as exc:
            _refund_fail(refund, exc.message)
            return refund
        refund.stripe_refund_id = result["id"]
        refund.status = RefundStatus.SUBMITTED
        refund.save(update_fields=["stripe_refund_id", "status", "updated_at"])
        if result.get("status") == "succeeded":
            _refund_settle(refund)
        elif result.get("status") in ("failed", "canceled"):
            _refund_fail(refund, result.get("failure_reason") or "Stripe could not refund")
        return refund


def refund_update_from_stripe(*, refund_obj: dict) -> Refund | None:
    refund_id = (refund_obj.get("metadata") or {}).get("refund_id", "")
    with transaction.atomic():
        qs = Refund.objects.select_for_update().select_related("job")
        refund = (
            qs.filter(pk=int(refund_id)).first()
            if str(refund_id).isdigit()
            else qs.filter(stripe_refund_id=refund_obj["id"]).first()
        )
        if refund is None:
            return None
        if not refund.stripe_refund_id:
            refund.stripe_refund_id = refund_obj["id"]
            refund.save(update_fields=["stripe_refund_id", "updated_at"])
        if refund_obj.get("status") == "succeeded":
            _refund_settle(refund)
        elif refund_obj.get("status") in ("failed", "canceled"):
            _refund_fail(refund, refund_obj.get("failure_reason") or "Stripe could not refund")
        return refund


def _refund_settle(refund: Refund) -> None:
    if refund.status == RefundStatus.SUCCEEDED:
        return
    ledger_post(
        key=f"refund:row:{refund.pk}:settled",
        kind=TxKind.REFUND_SETTLED,
        currency=refund.currency,
        entries=[
            (ledger_account(kind=AccountKind.REFUNDS, currency=refund.currency), -refund.amount),
            (
                ledger_account(kind=AccountKind.STRIPE_CLEARING, currency=refund.currency),
                refund.amount,
            ),
        ],
        memo=f"Refund {refund.stripe_refund_id} succeeded",
        job=refund.job,
    )
    refund.status = RefundStatus.SUCCEEDED
    refund.save(update_fields=["status", "updated_at"])


def _refund_fail(refund: Refund, reason: str) -> None:
    if refund.status in (RefundStatus.FAILED, RefundStatus.SUCCEEDED):
        return
    escrow, _ = _job_accounts(refund.job)
    ledger_post(
        key=f"refund:row:{refund.pk}:failed",
        kind=TxKind.REFUND_FAILED,
        currency=refund.currency,
        entries=[
            (ledger_account(kind=AccountKind.REFUNDS, currency=refund.currency), -refund.amount),
            (escrow, refund.amount),
        ],
        memo=f"Refund failed: {reason}"[:500],
        job=refund.job,
    )
    Funding.objects.filter(pk=refund.funding_id).update(
        amount_refunded=F("amount_refunded") - refund.amount
    )
    refund.status = RefundStatus.FAILED
    refund.failure_reason = reason[:500]
    refund.save(update_fields=["status", "failure_reason", "updated_at"])
    audit_log_record(
        action="refund.failed",
        amount=refund.amount,
        currency=refund.currency,
        reason=reason,
        obj=refund,
    )


# --- bonuses ---------------------------------------------------------------------------------


@transaction.atomic
def bonus_grant(*, job: Job, worker: User, amount: int, reason: str, actor: User, key: str) -> int:
    """A bonus from the job's available escrow to a worker who worked on it (plus the fee)."""
    from tasks.models import Assignment

    _owner_or_admin(job, actor)
    if not reason.strip():
        raise ValidationError("Give the worker a reason for the bonus.")
    check_money_amount(amount)
    if not Assignment.objects.filter(microtask__job=job, worker=worker).exists():
        raise ValidationError("Bonuses go to workers who worked on this job.")
    policy = active_policy()
    pay, fee = pricing.bonus_split(amount=amount, policy=policy)
    escrow, _ = _job_accounts(job)
    escrow = _lock_account(escrow)
    full_key = f"bonus:{job.pk}:{key}"
    from .models import LedgerTransaction

    if LedgerTransaction.objects.filter(key=full_key).exists():
        return pay
    if escrow.balance < pay + fee:
        raise InsufficientEscrow(
            f"The bonus costs {pay + fee} with the platform fee; job #{job.pk} has "
            f"{escrow.balance} available."
        )
    tx, _ = ledger_post(
        key=full_key,
        kind=TxKind.BONUS,
        currency=job.currency,
        entries=[
            (escrow, -(pay + fee)),
            (
                ledger_account(
                    kind=AccountKind.WORKER_PENDING, currency=job.currency, worker=worker
                ),
                pay,
            ),
            (ledger_account(kind=AccountKind.PLATFORM_REVENUE, currency=job.currency), fee),
        ],
        memo=f"Bonus: {reason}"[:500],
        job=job,
        worker=worker,
        created_by=actor,
    )
    from django.conf import settings

    EarningHold.objects.create(
        transaction=tx,
        worker=worker,
        currency=job.currency,
        amount=pay,
        available_at=_now() + settings.EARNINGS_HOLD_PERIOD,
    )
    audit_log_record(
        action="bonus.granted",
        actor=actor,
        amount=pay,
        currency=job.currency,
        reason=reason,
        obj=job,
        worker=worker.pk,
        fee=fee,
    )
    return pay


# --- pending → available ---------------------------------------------------------------------


def earnings_release_due(*, now: datetime | None = None, batch: int = 500) -> int:
    """Move earnings whose hold period has passed from pending to available; returns count."""
    now = now or _now()
    released = 0
    while True:
        with transaction.atomic():
            holds = list(
                EarningHold.objects.select_for_update(skip_locked=True)
                .filter(released=False, available_at__lte=now)
                .order_by("id")[:batch]
            )
            if not holds:
                return released
            for hold in holds:
                worker = User(pk=hold.worker_id)
                pending = ledger_account(
                    kind=AccountKind.WORKER_PENDING, currency=hold.currency, worker=worker
                )
                available = ledger_account(
                    kind=AccountKind.WORKER_AVAILABLE, currency=hold.currency, worker=worker
                )
                # Never more than is pending (a reversal may have taken some back).
                pending = LedgerAccount.objects.select_for_update().get(pk=pending.pk)
                amount = min(hold.amount, pending.balance)
                if amount > 0:
                    ledger_post(
                        key=f"hold:{hold.pk}:release",
                        kind=TxKind.HOLD_RELEASE,
                        currency=hold.currency,
                        entries=[(pending, -amount), (available, amount)],
                        memo=f"Hold period over ({hold.transaction.key})",
                        worker=worker,
                    )
                hold.released = True
                hold.released_at = now
                hold.save(update_fields=["released", "released_at"])
                released += 1
        if len(holds) < batch:
            return released


def funding_refresh(*, funding: Funding) -> Funding:
    """Ask Stripe for the PaymentIntent's state (for the return page; webhooks do the rest)."""
    try:
        intent = gateway.payment_intent_retrieve(funding.stripe_payment_intent_id)
    except StripeError:
        return funding
    if intent.get("status") == "succeeded":
        funding_succeeded(payment_intent=intent)
        funding.refresh_from_db()
    return funding
