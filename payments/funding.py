"""Requester money: funding a job through a PaymentIntent, refunds of unspent escrow, and
earnings leaving the hold period. (Bonuses, which need to know who worked on a job, are
``tasks.paying.bonus_grant``, posted by ``payments.work.bonus_pay``.)"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from marketplace.errors import Conflict, PermissionDenied, ValidationError
from marketplace.lifecycle import lock_job
from marketplace.models import FINAL_JOB_STATUSES, Job, User
from marketplace.money import format_money

from . import pricing
from . import stripe_gateway as gateway
from .errors import StripeError, StripeRequestRefused
from .escrow import escrow_fund, escrow_refund_unspent, job_accounts
from .ledger import AccountKind
from .models import (
    FUNDING_AWAITING,
    AnomalyKind,
    EarningHold,
    Funding,
    FundingStatus,
    LedgerAccount,
    PaymentAnomaly,
    Refund,
    RefundStatus,
    StripeEvent,
    TxKind,
)
from .posting import (
    Posting,
    audit_log_record,
    check_money_amount,
    ledger_account,
    ledger_post,
    ledger_post_many,
    lock_account,
    lock_job_money,
    lock_money_of,
)
from .selectors import escrow_balance, funding_processing
from .signals import escrow_funded

logger = logging.getLogger(__name__)
STRIPE_MINIMUM_CHARGE = 50


def _now() -> datetime:
    return timezone.now()


def _owner_or_admin(job: Job, user: User) -> None:
    if not (user.is_platform_admin or job.requester_id == user.pk):
        raise PermissionDenied("Only the job's requester can do that.")


# --- funding ---------------------------------------------------------------------------------


def funding_check(*, job: Job, requester: User) -> None:
    """Refuse funding ``job`` to anyone but its requester (or an admin), and a finished job."""
    _owner_or_admin(job, requester)
    if job.is_final:
        raise Conflict("A finished job cannot be funded.")


class OverBudget(Conflict):
    """The payment would take the job's funding above its budget."""

    code = "over_budget"


class FundingProcessing(Conflict):
    """A bank payment of the job is processing at Stripe and already pays for what a new
    payment would ask for: paying now could pay the same need twice."""

    code = "funding_processing"


class FundingInProgress(Conflict):
    """Another payment of the job was opened while this one was being started."""

    code = "funding_in_progress"


@dataclass(frozen=True)
class FundingNeed:
    """What a job still needs paid in for its quote, and what its budget still lets in: the one
    home of both rules (:func:`funding_need`), read by the funding page, the API and
    :func:`funding_create` alike.

    A bank payment processing at Stripe is money in flight: not credited, not spendable, not in
    escrow (nothing of it moves until Stripe confirms it), but not asked for again either, so a
    requester never pays the same need twice while the bank answers. It leaves ``processing``
    when the bank answers: credited (then ``funded``), or refused (then it is needed again)."""

    funded: int  # credited to the job's escrow, net of refunds
    processing: int  # bank payments processing at Stripe: paid, not credited yet
    need: int  # the quote's fund amount minus what is funded or processing
    room: int  # the job's budget minus what is funded or processing

    @property
    def over_budget(self) -> bool:
        return self.need > self.room

    @property
    def budget_needed(self) -> int:
        """The budget that would fund the whole quote."""
        return self.funded + self.processing + self.need


def funding_need(*, job: Job, fund_amount: int) -> FundingNeed:
    """``job``'s money against a quote's ``fund_amount`` and against its budget: what is still
    needed and what the budget still lets in, both net of escrow funded and of bank payments
    processing (:class:`FundingNeed`)."""
    funded = escrow_balance(job=job).funded
    processing = funding_processing(job=job)
    paid_in = funded + processing
    return FundingNeed(
        funded=funded,
        processing=processing,
        need=max(0, fund_amount - paid_in),
        room=max(0, job.budget - paid_in),
    )


def _checkout_return_url(base: str, funding: Funding, outcome: str) -> str:
    glue = "&" if "?" in base else "?"
    return f"{base}{glue}funding={funding.pk}&checkout={outcome}"


def funding_create(
    *,
    job: Job,
    requester: User,
    quote: pricing.Quote,
    return_url: str,
    amount: int | None = None,
    fit_budget: bool = False,
) -> Funding:
    """A Stripe Checkout Session for what the job still needs for its ``quote``, or ``amount``;
    never above what the job's budget lets in (:class:`OverBudget`). ``fit_budget``: when the
    need is more than the budget lets in, pay what it lets in.

    Need and room count the bank payments processing at Stripe (:func:`funding_need`): while
    one is, a payment that would take more than the quote still needs beside it is refused
    (:class:`FundingProcessing`), so the same need is never paid twice; nothing is made at Stripe.

    The quote is the caller's (``tasks.paying.job_funding_create`` prices the microtasks and
    saves the prices first). Stripe's hosted page sends the requester back to ``return_url``
    (with ``?funding=<id>&checkout=return|cancel``). Earlier unpaid sessions of the job are
    settled first, each in a transaction of its own (expired at Stripe, credited if they were
    paid meanwhile, processing if a bank payment was made on them), so a requester never holds
    two payable sessions for the same work, and what Stripe said of them stays recorded whatever
    this payment comes to. The job's escrow is credited only when Stripe confirms the payment
    (``funding_confirm_checkout`` / ``funding_confirm``).
    """
    funding_check(job=job, requester=requester)
    for earlier in Funding.objects.filter(job=job, status=FundingStatus.CREATED).exclude(
        stripe_checkout_session_id=""
    ):
        funding_confirm_checkout(session_id=earlier.stripe_checkout_session_id, expire_open=True)
    return _funding_open(
        job=job,
        requester=requester,
        quote=quote,
        return_url=return_url,
        amount=amount,
        fit_budget=fit_budget,
    )


def _in_flight(position: FundingNeed, currency: str, amount: int | None) -> FundingProcessing:
    def m(value: int) -> str:
        return format_money(value, currency)

    if amount is not None:
        outcome = f"this payment of {m(amount)} would pay more than that"
    elif position.need < STRIPE_MINIMUM_CHARGE:
        outcome = "there is nothing more to pay now"
    else:
        outcome = "there is nothing more to pay now unless the budget is raised"
    return FundingProcessing(
        f"A bank payment of {m(position.processing)} is processing for this job (nothing is "
        "credited until Stripe confirms it, which can take a few business days). With it, the "
        f"quote still needs {m(position.need)} and the budget leaves {m(position.room)}: "
        f"{outcome}. If the bank refuses it, the job asks for that money again.",
        extra={
            "processing": position.processing,
            "need": position.need,
            "room": position.room,
            "amount": amount,
        },
    )


@transaction.atomic
def _funding_open(
    *,
    job: Job,
    requester: User,
    quote: pricing.Quote,
    return_url: str,
    amount: int | None,
    fit_budget: bool,
) -> Funding:
    """Check the amount against the job's need and budget, then make the row and its session
    (:func:`funding_create`, after the earlier sessions were settled).

    One payment is opened at a time per job, under the job's row lock: two requests at once (a
    double click, two tabs) would each see the need unpaid and open a payable session for it.
    The second one waits, then finds the session the first opened since its own settling of
    the earlier ones, and is refused (:class:`FundingInProgress`); nothing is made at Stripe.
    The need and budget are read after the lock, so a budget changed meanwhile counts."""
    job = lock_job(job.pk)
    if (
        Funding.objects.filter(job=job, status=FundingStatus.CREATED)
        .exclude(stripe_checkout_session_id="")
        .exists()
    ):
        raise FundingInProgress(
            "A payment for this job was started a moment ago. Finish it on Stripe's page, or "
            "cancel it on the job's funding page, before starting another."
        )
    position = funding_need(job=job, fund_amount=quote.fund_amount)
    asked = amount
    if amount is None:
        amount = min(position.need, position.room) if fit_budget else position.need
    check_money_amount(amount, allow_zero=True)
    if position.processing and (
        amount > position.need if asked is not None else amount < STRIPE_MINIMUM_CHARGE
    ):
        raise _in_flight(position, job.currency, asked)
    if amount < STRIPE_MINIMUM_CHARGE:
        raise ValidationError(
            f"The job is already funded for its quote (needs {amount}, and Stripe charges at "
            f"least {STRIPE_MINIMUM_CHARGE})."
        )
    if amount > position.room:
        pending = (
            f" (a bank payment of {format_money(position.processing, job.currency)} is "
            "processing and counts against it)"
            if position.processing
            else ""
        )
        raise OverBudget(
            f"The job's budget leaves {format_money(position.room, job.currency)} to fund"
            f"{pending}; this payment is {format_money(amount, job.currency)}. Fund what the "
            "budget covers, or raise the budget.",
            extra={
                "budget": job.budget,
                "funded": position.funded,
                "processing": position.processing,
                "room": position.room,
                "amount": amount,
            },
        )
    funding = Funding.objects.create(
        job=job,
        requester=job.requester,
        amount=amount,
        currency=job.currency,
        quote={k: v for k, v in quote.__dict__.items()},
    )
    metadata = {"funding_id": str(funding.pk), "job_id": str(job.pk)}
    session = gateway.checkout_session_create(
        amount=amount,
        currency=job.currency,
        name=f"Crowdlabel job #{job.pk}: {job.title}"[:200],
        success_url=_checkout_return_url(return_url, funding, "return"),
        cancel_url=_checkout_return_url(return_url, funding, "cancel"),
        metadata=metadata,
        client_reference_id=f"funding-{funding.pk}",
        transfer_group=f"job:{job.pk}",
        idempotency_key=f"funding:{funding.pk}:checkout",
        description=f"Crowdlabel job #{job.pk}: {job.title}"[:200],
    )
    # Recorded in the transaction that creates the row: a session id is never attached after
    # the fact (its PaymentIntent is, and only as Stripe's copy of this session names it).
    funding.stripe_checkout_session_id = session["id"]
    funding.checkout_url = session.get("url") or ""
    funding.save(update_fields=["stripe_checkout_session_id", "checkout_url", "updated_at"])
    audit_log_record(
        action="funding.created",
        actor=requester,
        amount=amount,
        currency=job.currency,
        obj=funding,
        checkout_session=session["id"],
    )
    return funding


# --- confirming a funding: the event claims, Stripe confirms ----------------------------------
#
# Read this before changing anything below: this is where money enters the ledger. An event
# body is only a claim, made by whoever holds the webhook secret. What is credited is a Funding
# row's own amount, in its own currency, once (ledger key ``fund:pi:<id>`` and the row's status),
# and only after Stripe itself, re-read over the API with our secret key, says that the row's own
# PaymentIntent succeeded having received exactly that amount in that currency. Anything else is
# stored as a PaymentAnomaly (plus an audit-log entry) for an admin and credits nothing. What
# ties Stripe's objects to a row is recorded in the transaction that creates the row, so a row
# without it was never committed: its Checkout Session (``funding_create``; rows made before
# Checkout recorded a PaymentIntent of their own). The session's PaymentIntent, which Stripe
# creates only when the requester pays, is attached to the row only when Stripe's own copy of that
# recorded session names it (``_attach_from_checkout``, ``funding_confirm_checkout``), never on an
# event's or a metadata's word; every check below then runs on the PaymentIntent.
# (Invariant 8; ``tests/payments/test_attacks_funding.py`` and ``test_checkout.py`` attack each
# rule.)


@dataclass(frozen=True)
class StripeCheck:
    """What checking one Stripe object did: the row it concerned, whether money moved, and the
    anomalies it recorded instead of moving money."""

    row: Funding | Refund | None
    moved: bool = False
    anomalies: tuple[PaymentAnomaly, ...] = ()

    @property
    def flagged(self) -> bool:
        return bool(self.anomalies)


def _summary(obj: dict | None) -> dict | None:
    """The fields of a Stripe object (or an event's copy) that the checks compare."""
    if not isinstance(obj, dict):
        return None
    keys = (
        "id",
        "status",
        "amount",
        "amount_received",
        "amount_total",
        "payment_status",
        "currency",
        "payment_intent",
        "metadata",
    )
    return {k: obj.get(k) for k in keys if k in obj}


def _anomaly(
    *,
    kind: str,
    message: str,
    stripe_object_id: str,
    event: StripeEvent | None = None,
    funding: Funding | None = None,
    refund: Refund | None = None,
    **detail,
) -> PaymentAnomaly:
    anomaly = PaymentAnomaly.objects.create(
        kind=kind,
        funding=funding,
        refund=refund,
        stripe_event=event,
        stripe_object_id=stripe_object_id[:100],
        detail={"message": message, **detail},
    )
    logger.warning("Payment anomaly %s on %s: %s", kind, stripe_object_id, message)
    audit_log_record(
        action="payment.anomaly",
        reason=message,
        obj=anomaly,
        kind=kind,
        stripe_object=stripe_object_id[:100],
        stripe_event=event.stripe_event_id if event is not None else "",
        funding=funding.pk if funding is not None else None,
        refund=refund.pk if refund is not None else None,
    )
    return anomaly


def _refuse(
    funding: Funding,
    problems: list[tuple[str, str]],
    *,
    paid: bool,
    flag: Callable[[str, str], PaymentAnomaly],
) -> StripeCheck:
    """Record each ``(kind, message)`` as an anomaly and credit nothing. When Stripe says this
    very funding was paid yet disagrees with it, it can never be credited as it stands: the row
    says so too (``flagged``)."""
    anomalies = tuple(flag(kind, message) for kind, message in problems)
    if paid and funding.status != FundingStatus.SUCCEEDED:
        funding.status = FundingStatus.FLAGGED
        funding.save(update_fields=["status", "updated_at"])
    return StripeCheck(row=funding, anomalies=anomalies)


def _intent_from_stripe(payment_intent_id: str) -> dict | None:
    """Stripe's own copy of a PaymentIntent, or None when Stripe has no such PaymentIntent.

    Transient failures raise (the event is retried); so does any other refusal."""
    if not payment_intent_id:
        return None
    try:
        return gateway.payment_intent_retrieve(payment_intent_id)
    except StripeRequestRefused as exc:
        if exc.http_status == 404 or exc.stripe_code == "resource_missing":
            return None
        raise


def _session_from_stripe(session_id: str) -> dict | None:
    """Stripe's own copy of a Checkout Session, or None when Stripe has no such session."""
    if not session_id:
        return None
    try:
        return gateway.checkout_session_retrieve(session_id)
    except StripeRequestRefused as exc:
        if exc.http_status == 404 or exc.stripe_code == "resource_missing":
            return None
        raise


def _session_intent_id(session: dict) -> str:
    pi = session.get("payment_intent")
    return str((pi.get("id") if isinstance(pi, dict) else pi) or "")


def _lock_money_of(rows) -> None:
    """Take the money lock of the job of ``rows`` (fundings or refunds, read unlocked), before
    locking the row itself: ``payments.posting``'s lock order, escrow first."""
    job_id = rows.values_list("job_id", flat=True).first()
    if job_id is not None:
        lock_job_money(job_id)


def _attach_from_checkout(payment_intent_id: str, intent: dict | None) -> Funding | None:
    """The funding a Checkout PaymentIntent belongs to, before its session's completion was
    seen: the PaymentIntent's metadata names a funding whose recorded Checkout Session, re-read
    from Stripe, names this very PaymentIntent. Then it is recorded on the row (locked)."""
    named = str(((intent or {}).get("metadata") or {}).get("funding_id", ""))
    if not named.isdigit():
        return None
    _lock_money_of(Funding.objects.filter(pk=int(named)))
    funding = (
        Funding.objects.select_for_update(of=("self",))
        .select_related("job")
        .filter(pk=int(named))
        .exclude(stripe_checkout_session_id="")
        .first()
    )
    if funding is None or funding.stripe_payment_intent_id not in ("", payment_intent_id):
        return None
    if not funding.stripe_payment_intent_id:
        session = _session_from_stripe(funding.stripe_checkout_session_id)
        if (
            session is None
            or _session_intent_id(session) != payment_intent_id
            or str((session.get("metadata") or {}).get("funding_id", "")) != str(funding.pk)
        ):
            return None
        funding.stripe_payment_intent_id = payment_intent_id
        funding.save(update_fields=["stripe_payment_intent_id", "updated_at"])
    return funding


@transaction.atomic
def funding_confirm(
    *, payment_intent_id: str, event: StripeEvent | None = None, claimed: dict | None = None
) -> StripeCheck:
    """Credit the job's escrow with the funding's amount once Stripe confirms its PaymentIntent.

    ``claimed`` is what a ``payment_intent.succeeded`` event said; without it (the return page
    asking Stripe) a PaymentIntent that has not succeeded yet is simply not paid yet, with it that
    is an anomaly: the event contradicts Stripe.
    """
    intent = _intent_from_stripe(payment_intent_id)
    if payment_intent_id:
        _lock_money_of(Funding.objects.filter(stripe_payment_intent_id=payment_intent_id))
    funding = (
        Funding.objects.select_for_update(of=("self",))
        .select_related("job")
        .filter(stripe_payment_intent_id=payment_intent_id)
        .first()
        if payment_intent_id
        else None
    )
    if funding is None and intent is not None:
        funding = _attach_from_checkout(payment_intent_id, intent)
    said = {"stripe_said": _summary(intent), "event_said": _summary(claimed)}

    def flag(kind: str, message: str, about: Funding | None = funding) -> PaymentAnomaly:
        return _anomaly(
            kind=kind,
            message=message,
            stripe_object_id=payment_intent_id,
            event=event,
            funding=about,
            **said,
        )

    if intent is None or funding is None:
        # Not a PaymentIntent we created for a funding. Its metadata may name a funding (someone
        # else's, typically): shown to the admin, never credited, and that funding is untouched.
        source = intent if intent is not None else claimed
        named = str(((source or {}).get("metadata") or {}).get("funding_id", ""))
        pointed = Funding.objects.filter(pk=int(named)).first() if named.isdigit() else None
        if intent is None:
            kind = AnomalyKind.UNKNOWN_PAYMENT_INTENT
            message = f"Stripe has no PaymentIntent {payment_intent_id!r}."
        elif pointed is not None:
            kind = AnomalyKind.PAYMENT_INTENT_MISMATCH
            message = (
                f"PaymentIntent {payment_intent_id} names funding #{pointed.pk}, which was "
                f"made with PaymentIntent {pointed.stripe_payment_intent_id or '(none)'}."
            )
        else:
            kind = AnomalyKind.UNKNOWN_PAYMENT_INTENT
            message = f"No funding was made with PaymentIntent {payment_intent_id}."
        return StripeCheck(row=funding, anomalies=(flag(kind, message, funding or pointed),))

    problems: list[tuple[str, str]] = []
    named = str((intent.get("metadata") or {}).get("funding_id", ""))
    if named and named != str(funding.pk):
        problems.append(
            (
                AnomalyKind.PAYMENT_INTENT_MISMATCH,
                f"Stripe's PaymentIntent {payment_intent_id} names funding #{named}, "
                f"not #{funding.pk} that recorded it.",
            )
        )
    succeeded = intent.get("status") == "succeeded"
    if not succeeded:
        if claimed is not None:
            problems.append(
                (
                    AnomalyKind.NOT_SUCCEEDED,
                    f"The event says PaymentIntent {payment_intent_id} succeeded; Stripe says "
                    f"{intent.get('status')!r}.",
                )
            )
        if not problems:
            return StripeCheck(row=funding)  # not paid yet: nothing to do, nothing wrong
    else:
        received = intent.get("amount_received")
        if received != funding.amount:
            problems.append(
                (
                    AnomalyKind.AMOUNT_MISMATCH,
                    f"Stripe received {received} on PaymentIntent {payment_intent_id}; "
                    f"funding #{funding.pk} is for {funding.amount}.",
                )
            )
        currency = str(intent.get("currency") or "").lower()
        if currency != funding.currency.lower() or funding.currency != funding.job.currency:
            problems.append(
                (
                    AnomalyKind.CURRENCY_MISMATCH,
                    f"PaymentIntent {payment_intent_id} is in {currency!r}; funding "
                    f"#{funding.pk} is in {funding.currency!r} for a job in "
                    f"{funding.job.currency!r}.",
                )
            )
    if problems:
        return _refuse(funding, problems, paid=succeeded, flag=flag)

    moved = False
    if funding.status != FundingStatus.SUCCEEDED:
        escrow_fund(
            job=funding.job,
            amount=funding.amount,
            key=f"pi:{payment_intent_id}",
            memo=f"PaymentIntent {payment_intent_id} succeeded (confirmed with Stripe)",
        )
        funding.status = FundingStatus.SUCCEEDED
        funding.save(update_fields=["status", "updated_at"])
        moved = True
        # Funding a live job publishes the work the new escrow covers, at the prices of the
        # quote this funding was made for (``funding_create`` re-quotes on measured work time):
        # the tasks app fills the slots on this news (payments does not import it).
        escrow_funded.send(sender=Funding, job_id=funding.job_id, funding=funding)
    anomalies: tuple[PaymentAnomaly, ...] = ()
    if claimed is not None and any(
        claimed.get(k) != intent.get(k) for k in ("status", "amount_received", "currency")
    ):
        # Stripe never sends this: a signed event that lies means the webhook secret leaked.
        anomalies = (
            flag(
                AnomalyKind.EVENT_DISAGREES,
                f"A signed event about PaymentIntent {payment_intent_id} differs from Stripe's "
                "copy; only Stripe's was used. Rotate the webhook secret.",
            ),
        )
    return StripeCheck(row=funding, moved=moved, anomalies=anomalies)


@transaction.atomic
def funding_failed(*, payment_intent_id: str, event: StripeEvent | None = None) -> StripeCheck:
    """A PaymentIntent's failure or cancellation event: the funding follows Stripe's copies,
    never the body (which only names the PaymentIntent).

    A Checkout funding is settled as Stripe's session says, by the one settle path of sessions
    (:func:`funding_confirm_checkout`, which re-reads the session and its PaymentIntent): a
    delayed (bank) payment that failed on a complete session ends the funding ``failed`` at once;
    a card declined on a still-open session leaves it awaiting payment, since the payer may try
    another card on Stripe's page. The PaymentIntent may fail before the session's completion
    was seen (Stripe promises no order, nor the session's own event): it is then attached to the
    funding whose recorded session Stripe says it belongs to (``_attach_from_checkout``). A
    funding with a PaymentIntent of its own (made before Checkout) follows that PaymentIntent.
    Only a funding still awaiting payment (or processing) changes: a late failure never undoes
    a success, and a second failure event changes nothing.
    """
    funding = (
        Funding.objects.filter(stripe_payment_intent_id=payment_intent_id).first()
        if payment_intent_id
        else None
    )
    if funding is None and payment_intent_id:
        intent = _intent_from_stripe(payment_intent_id)
        funding = _attach_from_checkout(payment_intent_id, intent) if intent else None
    if funding is None or funding.status not in FUNDING_AWAITING:
        return StripeCheck(row=funding)
    if funding.stripe_checkout_session_id:
        return funding_confirm_checkout(session_id=funding.stripe_checkout_session_id, event=event)
    funding = Funding.objects.select_for_update(of=("self",)).get(pk=funding.pk)
    if funding.status != FundingStatus.CREATED:
        return StripeCheck(row=funding)
    intent = _intent_from_stripe(payment_intent_id)
    status = (intent or {}).get("status")
    if status == "canceled":
        funding.status = FundingStatus.CANCELED
    elif status == "requires_payment_method" and (intent or {}).get("last_payment_error"):
        funding.status = FundingStatus.FAILED
    else:
        return StripeCheck(row=funding)
    funding.save(update_fields=["status", "updated_at"])
    return StripeCheck(row=funding)


# --- refunds ---------------------------------------------------------------------------------


@transaction.atomic
def job_refund_unspent(*, job: Job, actor: User, reason: str = "") -> list[Refund]:
    """Refund a finished job's unspent escrow through Stripe (across its fundings)."""
    _owner_or_admin(job, actor)
    job = lock_job(job.pk)
    if job.status not in FINAL_JOB_STATUSES:
        raise Conflict("Unspent escrow is refunded once the job is completed or cancelled.")
    escrow, _ = job_accounts(job)
    escrow = lock_account(escrow)
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


def refund_update_from_stripe(
    *, stripe_refund_id: str, event: StripeEvent | None = None, claimed: dict | None = None
) -> StripeCheck:
    """A refund event: settle or fail our refund as Stripe's own copy says, never the body.

    The refund is re-read from Stripe; ours is found by its recorded id, or (when we crashed
    before recording it) by the ``refund_id`` we put in Stripe's metadata. A refund Stripe does
    not know, that is not ours, or whose PaymentIntent, amount or currency differ from ours is an
    anomaly: nothing moves (a forged ``failed`` would otherwise put refunded money back in escrow).
    """
    try:
        stripe_refund = gateway.refund_retrieve(stripe_refund_id) if stripe_refund_id else None
    except StripeRequestRefused as exc:
        if not (exc.http_status == 404 or exc.stripe_code == "resource_missing"):
            raise
        stripe_refund = None
    with transaction.atomic():
        if stripe_refund_id:  # a failed refund brings money back to the escrow: its lock first
            _lock_money_of(Refund.objects.filter(stripe_refund_id=stripe_refund_id))
        qs = Refund.objects.select_for_update(of=("self",)).select_related("job", "funding")
        refund = qs.filter(stripe_refund_id=stripe_refund_id).first() if stripe_refund_id else None
        named = str(((stripe_refund or {}).get("metadata") or {}).get("refund_id", ""))
        if refund is None and named.isdigit():
            # Not ``stripe_refund_id=""`` in the query: ``refund_submit`` may be recording the id
            # right now, and the lock waits for it; a different recorded id is checked below.
            _lock_money_of(Refund.objects.filter(pk=int(named)))
            refund = qs.filter(pk=int(named)).first()

        def flag(kind: str, message: str) -> StripeCheck:
            anomaly = _anomaly(
                kind=kind,
                message=message,
                stripe_object_id=stripe_refund_id,
                event=event,
                refund=refund,
                funding=refund.funding if refund is not None else None,
                stripe_said=_summary(stripe_refund),
                event_said=_summary(claimed),
            )
            return StripeCheck(row=refund, anomalies=(anomaly,))

        if stripe_refund is None or refund is None:
            return flag(
                AnomalyKind.UNKNOWN_REFUND,
                f"Refund {stripe_refund_id!r} is unknown to "
                + ("Stripe." if stripe_refund is None else "us."),
            )
        if (
            refund.stripe_refund_id not in ("", stripe_refund_id)
            or stripe_refund.get("payment_intent") != refund.funding.stripe_payment_intent_id
            or stripe_refund.get("amount") != refund.amount
            or str(stripe_refund.get("currency") or "").lower() != refund.currency.lower()
        ):
            return flag(
                AnomalyKind.REFUND_MISMATCH,
                f"Stripe's refund {stripe_refund_id} ({stripe_refund.get('amount')} "
                f"{stripe_refund.get('currency')} on {stripe_refund.get('payment_intent')}) is "
                f"not our refund #{refund.pk} ({refund.amount} {refund.currency} on "
                f"{refund.funding.stripe_payment_intent_id}).",
            )
        if not refund.stripe_refund_id:
            refund.stripe_refund_id = stripe_refund_id
            refund.save(update_fields=["stripe_refund_id", "updated_at"])
        before = refund.status
        if stripe_refund.get("status") == "succeeded":
            _refund_settle(refund)
        elif stripe_refund.get("status") in ("failed", "canceled"):
            _refund_fail(refund, stripe_refund.get("failure_reason") or "Stripe could not refund")
        return StripeCheck(row=refund, moved=refund.status != before)


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
    escrow, _ = job_accounts(refund.job)
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


# --- pending → available ---------------------------------------------------------------------


def earnings_release_due(
    *,
    now: datetime | None = None,
    batch: int = 500,
    worker: User | None = None,
    early: bool = False,
) -> int:
    """Move earnings whose hold period has passed from pending to available; returns count.

    ``early`` releases every unreleased hold whatever its date (an admin's decision, through
    ``earnings_release_now``); ``worker`` limits the release to one worker's holds. A hold is
    released once (``released`` under a row lock, the ledger key per hold), so a second call, or
    a call racing the hourly task, releases nothing twice.

    In batches of ``batch`` holds, each in one transaction and a fixed number of statements
    (``_release_holds``): an admin's release of thousands of holds used to post them one by one,
    holding the workers' pending accounts for seconds while approvals waited on them.
    """
    now = now or _now()
    due = EarningHold.objects.filter(released=False)
    if not early:
        due = due.filter(available_at__lte=now)
    if worker is not None:
        due = due.filter(worker=worker)
    released = 0
    while True:
        with transaction.atomic():
            holds = list(due.select_for_update(skip_locked=True).order_by("id")[:batch])
            if not holds:
                return released
            _release_holds(holds, now=now)
            released += len(holds)
        if len(holds) < batch:
            return released


def _release_holds(holds: list[EarningHold], *, now: datetime) -> None:
    """Release ``holds`` (locked by the caller): one posting each, keyed per hold, never more
    than is pending (a reversal may have taken some back).

    The batch's worker accounts are created and locked up front in the global order
    (``posting.lock_money_of``): taken hold by hold they were locked in hold order, and a
    release of worker B's then A's earnings deadlocked with an approval paying A then B, or
    with a payout run locking A's and B's available accounts. The pending balances are read
    once under those locks and the postings go in together (``ledger_post_many``): posted one
    by one, an admin's release of thousands of holds kept the accounts locked for seconds.
    """
    postings = []
    for currency in sorted({hold.currency for hold in holds}):
        mine = [hold for hold in holds if hold.currency == currency]
        workers = sorted({hold.worker_id for hold in mine})
        lock_money_of(
            worker_ids=workers,
            currencies=[currency],
            worker_kinds=(AccountKind.WORKER_PENDING, AccountKind.WORKER_AVAILABLE),
        )
        accounts = {
            (a.kind, a.worker_id): a
            for a in LedgerAccount.objects.filter(
                kind__in=(AccountKind.WORKER_PENDING, AccountKind.WORKER_AVAILABLE),
                currency=currency,
                job=None,
                worker_id__in=workers,
            )
        }
        left = {w: accounts[(AccountKind.WORKER_PENDING, w)].balance for w in workers}
        memos = dict(
            EarningHold.objects.filter(pk__in=[hold.pk for hold in mine]).values_list(
                "pk", "transaction__key"
            )
        )
        for hold in mine:
            amount = min(hold.amount, left[hold.worker_id])
            if amount <= 0:
                continue
            left[hold.worker_id] -= amount
            postings.append(
                Posting(
                    key=f"hold:{hold.pk}:release",
                    kind=TxKind.HOLD_RELEASE,
                    currency=currency,
                    entries=(
                        (accounts[(AccountKind.WORKER_PENDING, hold.worker_id)], -amount),
                        (accounts[(AccountKind.WORKER_AVAILABLE, hold.worker_id)], amount),
                    ),
                    memo=f"Hold period over ({memos[hold.pk]})",
                    worker_id=hold.worker_id,
                )
            )
    ledger_post_many(postings)
    EarningHold.objects.filter(pk__in=[hold.pk for hold in holds]).update(
        released=True, released_at=now
    )


def earnings_release_now(*, actor: User, worker: User | None = None) -> int:
    """An admin releases earnings out of the hold period now (one worker's, or everyone's).

    Without it only the hourly task releases holds, so a payout run right after approval pays
    nothing. Idempotent: a second call finds nothing left to release and answers 0. Audited
    with the count, whoever it concerned."""
    if not actor.is_platform_admin:
        raise PermissionDenied("Only an admin can release earnings early.")
    released = earnings_release_due(worker=worker, early=True)
    audit_log_record(
        action="earnings.released_early",
        actor=actor,
        obj=worker,
        released=released,
        scope=f"worker:{worker.pk}" if worker is not None else "all",
    )
    return released


def funding_refresh(*, funding: Funding) -> Funding:
    """Ask Stripe for the funding's state (the requester came back from Checkout, or asked;
    webhooks do the rest). The same checks as the webhooks': only Stripe's confirmation of this
    funding credits it, once, however often it is asked. Only a funding still awaiting payment
    (or processing) asks Stripe: a settled one (credited, expired, flagged...) is answered from
    our row."""
    if funding.status not in FUNDING_AWAITING:
        return funding
    try:
        if funding.stripe_checkout_session_id:
            funding_confirm_checkout(session_id=funding.stripe_checkout_session_id)
        elif funding.stripe_payment_intent_id:
            funding_confirm(payment_intent_id=funding.stripe_payment_intent_id)
    except (StripeError, StripeRequestRefused):
        return funding
    funding.refresh_from_db()
    return funding


def funding_cancel(*, funding: Funding, by: User) -> Funding:
    """The requester gives up an unpaid Checkout payment: the session is expired at Stripe (no
    one can pay it any more) and the funding ends ``expired``; one Stripe already took is
    credited instead. A bank payment already processing cannot be taken back: the session is
    complete, and only the bank's answer ends it."""
    _owner_or_admin(funding.job, by)
    if not funding.stripe_checkout_session_id:
        raise Conflict("Only a Checkout payment can be cancelled here.")
    if funding.status == FundingStatus.PROCESSING:
        raise Conflict(
            "This bank payment is already processing at Stripe and cannot be cancelled; "
            "nothing is credited unless Stripe confirms it."
        )
    if funding.status == FundingStatus.CREATED:
        funding_confirm_checkout(session_id=funding.stripe_checkout_session_id, expire_open=True)
        funding.refresh_from_db()
    return funding


# --- Checkout Sessions: the session decides whether, the PaymentIntent how much ---------------


@transaction.atomic
def funding_confirm_checkout(
    *,
    session_id: str,
    event: StripeEvent | None = None,
    claimed: dict | None = None,
    expire_open: bool = False,
) -> StripeCheck:
    """Settle the funding made with Checkout Session ``session_id`` as Stripe's copy says.

    ``checkout.session.completed`` / ``async_payment_succeeded`` / ``async_payment_failed`` /
    ``expired`` events, a Checkout PaymentIntent's failure (:func:`funding_failed`) and the
    return page all come here; ``claimed`` is the event's body
    (compared, never used). The session must be the one recorded on a funding and name it in its
    metadata, for that funding's amount and currency. Paid: its PaymentIntent is attached to the
    row (as Stripe's session names it) and credited through :func:`funding_confirm`, the one
    door, which checks the PaymentIntent again and credits once. Expired unpaid: the funding
    ends ``expired``, nothing credited. Complete unpaid (a delayed payment such as a bank debit):
    ``processing`` while Stripe's PaymentIntent is processing, ``failed`` once it says the
    payment failed. ``expire_open`` expires a still-open session at Stripe first (the requester
    cancelled it, or is starting a new payment).
    """
    session = _session_from_stripe(session_id)
    if session_id:
        _lock_money_of(Funding.objects.filter(stripe_checkout_session_id=session_id))
    funding = (
        Funding.objects.select_for_update(of=("self",))
        .select_related("job")
        .filter(stripe_checkout_session_id=session_id)
        .first()
        if session_id
        else None
    )

    def flag(kind: str, message: str, about: Funding | None = funding) -> PaymentAnomaly:
        return _anomaly(
            kind=kind,
            message=message,
            stripe_object_id=session_id,
            event=event,
            funding=about,
            stripe_said=_summary(session),
            event_said=_summary(claimed),
        )

    if session is None or funding is None:
        source = session if session is not None else claimed
        named = str(((source or {}).get("metadata") or {}).get("funding_id", ""))
        pointed = Funding.objects.filter(pk=int(named)).first() if named.isdigit() else None
        if session is not None and pointed is not None:
            kind = AnomalyKind.CHECKOUT_SESSION_MISMATCH
            message = (
                f"Checkout Session {session_id} names funding #{pointed.pk}, which was made "
                f"with session {pointed.stripe_checkout_session_id or '(none)'}."
            )
        else:
            kind = AnomalyKind.UNKNOWN_CHECKOUT_SESSION
            who = "Stripe" if session is None else "No funding of ours"
            message = f"{who} has no Checkout Session {session_id!r}."
        return StripeCheck(row=funding, anomalies=(flag(kind, message, funding or pointed),))

    paid = session.get("payment_status") == "paid"
    problems: list[tuple[str, str]] = []
    named = str((session.get("metadata") or {}).get("funding_id", ""))
    if named != str(funding.pk):
        problems.append(
            (
                AnomalyKind.CHECKOUT_SESSION_MISMATCH,
                f"Stripe's Checkout Session {session_id} names funding #{named or '(none)'}, "
                f"not #{funding.pk} that recorded it.",
            )
        )
    if session.get("amount_total") != funding.amount:
        problems.append(
            (
                AnomalyKind.AMOUNT_MISMATCH,
                f"Checkout Session {session_id} is for {session.get('amount_total')}; funding "
                f"#{funding.pk} is for {funding.amount}.",
            )
        )
    if str(session.get("currency") or "").lower() != funding.currency.lower():
        problems.append(
            (
                AnomalyKind.CURRENCY_MISMATCH,
                f"Checkout Session {session_id} is in {session.get('currency')!r}; funding "
                f"#{funding.pk} is in {funding.currency!r}.",
            )
        )
    pi_id = _session_intent_id(session)
    if pi_id and funding.stripe_payment_intent_id not in ("", pi_id):
        problems.append(
            (
                AnomalyKind.PAYMENT_INTENT_MISMATCH,
                f"Checkout Session {session_id} was paid with PaymentIntent {pi_id}; funding "
                f"#{funding.pk} recorded {funding.stripe_payment_intent_id}.",
            )
        )
    if claimed is not None and claimed.get("payment_status") == "paid" and not paid:
        problems.append(
            (
                AnomalyKind.NOT_SUCCEEDED,
                f"The event says Checkout Session {session_id} was paid; Stripe says "
                f"{session.get('payment_status')!r} ({session.get('status')!r}).",
            )
        )
    if problems:
        return _refuse(funding, problems, paid=paid, flag=flag)

    if pi_id and not funding.stripe_payment_intent_id:
        funding.stripe_payment_intent_id = pi_id
        funding.save(update_fields=["stripe_payment_intent_id", "updated_at"])
    if session.get("status") == "open" and expire_open:
        # Refused when no longer open (paid or expired meanwhile): Stripe's copy says which.
        with contextlib.suppress(StripeRequestRefused):
            gateway.checkout_session_expire(session_id)
        return _checkout_after_expire(session_id, event)
    if not paid:
        if session.get("status") == "expired" and funding.status == FundingStatus.CREATED:
            funding.status = FundingStatus.EXPIRED
            funding.save(update_fields=["status", "updated_at"])
            audit_log_record(
                action="funding.expired",
                amount=funding.amount,
                currency=funding.currency,
                obj=funding,
                checkout_session=session_id,
            )
        elif session.get("status") == "complete" and funding.status in FUNDING_AWAITING:
            _checkout_delayed(funding, session_id=session_id, payment_intent_id=pi_id)
        return StripeCheck(row=funding)
    check = funding_confirm(payment_intent_id=pi_id, event=event)
    extra: tuple[PaymentAnomaly, ...] = ()
    if claimed is not None and any(
        claimed.get(k) != session.get(k) for k in ("amount_total", "currency")
    ):
        # Stripe never sends this: a signed event that lies means the webhook secret leaked.
        extra = (
            flag(
                AnomalyKind.EVENT_DISAGREES,
                f"A signed event about Checkout Session {session_id} differs from Stripe's "
                "copy; only Stripe's was used. Rotate the webhook secret.",
            ),
        )
    return StripeCheck(row=check.row, moved=check.moved, anomalies=check.anomalies + extra)


def _checkout_delayed(funding: Funding, *, session_id: str, payment_intent_id: str) -> None:
    """A session completed unpaid: a delayed payment (a bank debit) that is still processing, or
    that failed. Stripe's PaymentIntent says which. Processing: the funding says so (the page
    offers no payment page any more, the session being finished), and waits for the bank. Failed:
    the funding ends ``failed`` at once, since a complete session can never be paid again (the
    requester starts a new payment). Its PaymentIntent is the one Stripe's session names, re-read
    here: no event body decides."""
    intent = _intent_from_stripe(payment_intent_id)
    status = (intent or {}).get("status")
    failed = status == "canceled" or (
        status == "requires_payment_method" and bool((intent or {}).get("last_payment_error"))
    )
    if not failed:
        if status == "processing" and funding.status == FundingStatus.CREATED:
            funding.status = FundingStatus.PROCESSING
            funding.save(update_fields=["status", "updated_at"])
        return  # the bank has not answered yet
    error = (intent or {}).get("last_payment_error") or {}
    funding.status = FundingStatus.FAILED
    funding.save(update_fields=["status", "updated_at"])
    audit_log_record(
        action="funding.failed",
        reason=str(error.get("message") or status)[:500],
        amount=funding.amount,
        currency=funding.currency,
        obj=funding,
        checkout_session=session_id,
        payment_intent=payment_intent_id,
        code=str(error.get("code") or ""),
    )


def _checkout_after_expire(session_id: str, event: StripeEvent | None) -> StripeCheck:
    """After asking Stripe to expire a session: settle from Stripe's copy, whatever it says."""
    return funding_confirm_checkout(session_id=session_id, event=event)
