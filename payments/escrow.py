"""A job's escrow: funded, reserved for replica slots, released, refunded when unspent.

The contract with the claim path is ``docs/money-contract.md`` (budget is reserved per replica
slot, so a slot exists only once its reservation succeeded: invariant 2). Each service is one
balanced ledger posting (``payments.posting``) under an idempotency key, made after locking the
job's ``job_escrow`` account (which serialises the job's money movements).
"""

from __future__ import annotations

from django.db import transaction

from marketplace.bounds import supported_currencies
from marketplace.errors import Conflict
from marketplace.models import Job, User
from marketplace.money import format_money

from . import pricing
from .errors import CurrencyNotPriced, InsufficientEscrow
from .ledger import AccountKind, legs
from .models import LedgerAccount, LedgerTransaction, TxKind
from .posting import (
    audit_log_record,
    check_money_amount,
    existing_posting,
    ledger_account,
    ledger_post,
    lock_account,
)
from .selectors import active_policy


def job_accounts(job: Job) -> tuple[LedgerAccount, LedgerAccount]:
    """The job's (available escrow, reserved escrow) accounts, created on first use."""
    escrow = ledger_account(kind=AccountKind.JOB_ESCROW, currency=job.currency, job=job)
    reserved = ledger_account(kind=AccountKind.JOB_RESERVED, currency=job.currency, job=job)
    return escrow, reserved


@transaction.atomic
def escrow_fund(
    *, job: Job, amount: int, key: str, memo: str = "", actor: User | None = None
) -> LedgerTransaction:
    """Credit ``amount`` paid in through Stripe to the job's available escrow."""
    check_money_amount(amount)
    check_job_currency(job=job)
    escrow, _ = job_accounts(job)
    lock_account(escrow)  # the job's money lock first (``payments.posting``'s lock order)
    clearing = ledger_account(kind=AccountKind.STRIPE_CLEARING, currency=job.currency)
    tx, created = ledger_post(
        key=f"fund:{key}",
        kind=TxKind.FUND,
        currency=job.currency,
        entries=[(clearing, -amount), (escrow, amount)],
        memo=memo or f"Escrow funded for job #{job.pk}",
        job=job,
        created_by=actor,
    )
    if created:
        audit_log_record(
            action="escrow.funded",
            actor=actor,
            amount=amount,
            currency=job.currency,
            obj=job,
            key=key,
        )
    return tx


@transaction.atomic
def escrow_reserve(*, job: Job, amount: int, key: str) -> None:
    """Move ``amount`` from the job's available escrow to reserved; idempotent on ``key``.

    Raises :class:`InsufficientEscrow` (and moves nothing) when available escrow is short.
    """
    check_money_amount(amount)
    escrow, reserved = job_accounts(job)
    entries = [(escrow, -amount), (reserved, amount)]
    full_key = f"reserve:{key}"
    if existing_posting(full_key, legs(*entries)) is not None:
        return
    escrow = lock_account(escrow)
    # Re-check under the lock: a concurrent call with this key may have committed meanwhile.
    if existing_posting(full_key, legs(*entries)) is not None:
        return
    if escrow.balance < amount:
        raise InsufficientEscrow(
            f"Job #{job.pk} has {format_money(escrow.balance, job.currency)} of available escrow; "
            f"{format_money(amount, job.currency)} is needed. Fund the job or wait for "
            "reservations to be released."
        )
    ledger_post(
        key=full_key,
        kind=TxKind.RESERVE,
        currency=job.currency,
        entries=entries,
        memo=f"Reserved for replica slots ({key})",
        job=job,
    )


@transaction.atomic
def escrow_release(*, job: Job, amount: int, key: str) -> None:
    """Move ``amount`` from the job's reserved escrow back to available; idempotent on ``key``."""
    check_money_amount(amount)
    escrow, reserved = job_accounts(job)
    entries = [(reserved, -amount), (escrow, amount)]
    full_key = f"release:{key}"
    if existing_posting(full_key, legs(*entries)) is not None:
        return
    lock_account(escrow)
    if existing_posting(full_key, legs(*entries)) is not None:
        return
    reserved = lock_account(reserved)
    if reserved.balance < amount:
        raise Conflict(
            f"Job #{job.pk} has only {reserved.balance} reserved; cannot release {amount}."
        )
    ledger_post(
        key=full_key,
        kind=TxKind.RELEASE,
        currency=job.currency,
        entries=entries,
        memo=f"Reservation released ({key})",
        job=job,
    )


@transaction.atomic
def escrow_refund_unspent(
    *, job: Job, key: str, amount: int | None = None, actor: User | None = None, reason: str = ""
) -> int:
    """Move unspent available escrow (all of it by default) to refunds owed to the requester.

    Stripe's refund is made afterwards (``payments.funding``); when it fails the money comes
    back to the job's escrow. Returns the amount moved (0 when nothing was available).
    """
    escrow, _ = job_accounts(job)
    full_key = f"refund:{key}"
    done = LedgerTransaction.objects.filter(key=full_key).first()
    if done is not None:
        return -sum(done.entries.filter(account=escrow).values_list("amount", flat=True))
    escrow = lock_account(escrow)
    if LedgerTransaction.objects.filter(key=full_key).exists():
        return escrow_refund_unspent(job=job, key=key, amount=amount)
    amount = escrow.balance if amount is None else amount
    if amount == 0:
        return 0
    check_money_amount(amount)
    if amount > escrow.balance:
        raise InsufficientEscrow(
            f"Job #{job.pk} has {escrow.balance} available in escrow; cannot refund {amount}."
        )
    refunds = ledger_account(kind=AccountKind.REFUNDS, currency=job.currency)
    ledger_post(
        key=full_key,
        kind=TxKind.REFUND,
        currency=job.currency,
        entries=[(escrow, -amount), (refunds, amount)],
        memo=reason or f"Unspent escrow of job #{job.pk} refunded",
        job=job,
        created_by=actor,
    )
    audit_log_record(
        action="escrow.refunded",
        actor=actor,
        amount=amount,
        currency=job.currency,
        reason=reason,
        obj=job,
    )
    return amount


def check_job_currency(*, job: Job, policy: pricing.PricingPolicyData | None = None) -> None:
    """Refuse money work on a job whose currency is unsupported or not the pricing policy's."""
    policy = policy or active_policy()
    if job.currency not in supported_currencies() or job.currency != policy.currency:
        raise CurrencyNotPriced(
            f"Job #{job.pk} is in {job.currency.upper()}, but pricing on this platform is in "
            f"{policy.currency.upper()}; create the job in a supported currency "
            f"({', '.join(c.upper() for c in supported_currencies())})."
        )
