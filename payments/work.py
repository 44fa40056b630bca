"""Work pay at the level of amounts: what an approval, a rejection, an upheld dispute and a bonus
post, and the versions of the pricing policy that sets those amounts.

The tasks app owns assignments and calls these (``tasks.paying``, behind ``tasks.budget``) with
the amounts it knows: the slot's reservation, the microtask's price, the measured time, and the
worker's trust (read by the caller: payments does not read quality). Payments owns the ledger
keys (``assignment:<id>:pay`` / ``:unpaid`` / ``:pay-reversed``), so whether an assignment was
paid is answered here and nowhere else. Each posting is idempotent on its key.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from marketplace.bounds import supported_currencies
from marketplace.errors import Conflict, ValidationError
from marketplace.models import Job, User

from . import pricing
from .errors import InsufficientEscrow, InvalidAmount
from .escrow import job_accounts
from .ledger import AccountKind
from .models import EarningHold, LedgerTransaction, PricingPolicy, TxKind
from .posting import (
    audit_log_record,
    ledger_account,
    ledger_post,
    lock_account,
    lock_money_of,
    now,
)
from .selectors import active_policy


def pay_key(assignment_id: int) -> str:
    return f"assignment:{assignment_id}:pay"


def unpaid_key(assignment_id: int) -> str:
    return f"assignment:{assignment_id}:unpaid"


def pay_reversed_key(assignment_id: int) -> str:
    return f"assignment:{assignment_id}:pay-reversed"


def work_paid(*, assignment_id: int) -> bool:
    """Whether the assignment's approval pay was posted."""
    return LedgerTransaction.objects.filter(key=pay_key(assignment_id)).exists()


def work_pay_lock(*, job_ids, worker_ids) -> None:
    """Create and lock, in the ledger's global order (``posting.lock_money_of``), every account
    paying work of these jobs to these workers touches: the jobs' escrow, the workers' pending
    accounts, the platform's revenue. A transaction paying several assignments calls it once,
    first; ``work_pay`` and ``bonus_pay`` call it for their own job and worker (a no-op re-lock
    when the caller did)."""
    lock_money_of(
        job_ids=job_ids, worker_ids=worker_ids, system_kinds=(AccountKind.PLATFORM_REVENUE,)
    )


@dataclass(frozen=True)
class WorkPay:
    """What an approval posted: the worker's pay (top-up included), its parts, the transaction."""

    pay: int
    fee: int
    topup: int
    transaction: LedgerTransaction


@transaction.atomic
def work_pay(
    *,
    job: Job,
    worker: User,
    assignment_id: int,
    reserved: int,
    price: int,
    trust: float,
    credit: float,
    seconds: float,
) -> WorkPay:
    """Pay approved work from its reservation (the caller checked it was not paid yet).

    pay = price * trust multiplier * credit (rounded half up), topped up to the worker's
    fair-pay floor on ``seconds`` of measured active time times the credit; the platform fee on
    the pay goes to revenue, the rest of the reservation back to the job's available escrow.
    """
    if not 0.0 <= credit <= 1.0:
        raise InvalidAmount(f"Credit is a fraction between 0 and 1; got {credit}.")
    # A rejection whose "unpaid" was reversed (an upheld appeal) may be paid.
    if LedgerTransaction.objects.filter(
        key=unpaid_key(assignment_id), reversed_by__isnull=True
    ).exists():
        raise Conflict(f"Assignment #{assignment_id} was rejected (unpaid); it cannot be paid now.")
    policy = active_policy()
    work_pay_lock(job_ids=[job.pk], worker_ids=[worker.pk])  # escrow locked: read it fresh
    escrow, reserved_account = job_accounts(job)
    reserved_account = lock_account(reserved_account)
    if reserved_account.balance < reserved:
        raise Conflict(
            f"Job #{job.pk} holds {reserved_account.balance} reserved, less than assignment "
            f"#{assignment_id}'s reservation of {reserved}; the reservation was already released."
        )
    multiplier = pricing.multiplier_for(min(1.0, max(0.0, float(trust))), policy=policy)
    if not pricing.base_cost_covered(
        reserved=reserved,
        escrow_available=escrow.balance,
        price=price,
        multiplier_bps=multiplier,
        credit=credit,
        policy=policy,
    ):
        raise InsufficientEscrow(
            f"Job #{job.pk}'s reservation and available escrow do not cover assignment "
            f"#{assignment_id}'s pay; fund the job."
        )
    country = getattr(getattr(worker, "worker_profile", None), "country", "")
    credited_seconds = seconds * pricing.credit_bps(credit) / pricing.BPS
    minimum = pricing.floor_pay(seconds=credited_seconds, hourly=policy.floor_for(country))
    split = pricing.split_pay(
        reserved=reserved,
        escrow_available=escrow.balance,
        price=price,
        multiplier_bps=multiplier,
        credit=credit,
        floor_minimum=minimum,
        policy=policy,
    )
    pending = ledger_account(kind=AccountKind.WORKER_PENDING, currency=job.currency, worker=worker)
    revenue = ledger_account(kind=AccountKind.PLATFORM_REVENUE, currency=job.currency)
    memo = (
        f"Assignment #{assignment_id} approved: pay {split.pay} "
        f"(multiplier {multiplier / 10_000:g}, credit {credit:g})"
    )
    if split.topup:
        memo += f", fair-pay top-up {split.topup}"
    if split.subsidy:
        memo += f", platform-covered {split.subsidy}"
    tx, _ = ledger_post(
        key=pay_key(assignment_id),
        kind=TxKind.PAY,
        currency=job.currency,
        entries=[
            (reserved_account, -reserved),
            (escrow, split.back_to_escrow - split.from_escrow),
            (pending, split.pay),
            (revenue, split.fee - split.subsidy),
        ],
        memo=memo,
        job=job,
        worker=worker,
        assignment_id=assignment_id,
    )
    if split.pay > 0:
        EarningHold.objects.create(
            transaction=tx,
            worker=worker,
            currency=job.currency,
            amount=split.pay,
            available_at=now() + settings.EARNINGS_HOLD_PERIOD,
        )
    return WorkPay(pay=split.pay, fee=split.fee, topup=split.topup, transaction=tx)


@transaction.atomic
def work_unpaid(
    *, job: Job, worker: User, assignment_id: int, reserved: int
) -> LedgerTransaction | None:
    """Rejected work: its reservation goes back to the job's available escrow. Returns the
    posting, or None when it was posted before (nothing moves twice)."""
    key = unpaid_key(assignment_id)
    if LedgerTransaction.objects.filter(key=key).exists():
        return None
    if work_paid(assignment_id=assignment_id):
        raise Conflict(
            f"Assignment #{assignment_id} was already paid; reverse the payment instead."
        )
    escrow, reserved_account = job_accounts(job)
    lock_account(escrow)
    reserved_account = lock_account(reserved_account)
    if reserved_account.balance < reserved:
        raise Conflict(
            f"Job #{job.pk} holds {reserved_account.balance} reserved, less than assignment "
            f"#{assignment_id}'s reservation of {reserved}."
        )
    tx, _ = ledger_post(
        key=key,
        kind=TxKind.UNPAID,
        currency=job.currency,
        entries=[(reserved_account, -reserved), (escrow, reserved)],
        memo=f"Assignment #{assignment_id} rejected: reservation released",
        job=job,
        worker=worker,
        assignment_id=assignment_id,
    )
    return tx


@transaction.atomic
def work_pay_reverse(
    *, job: Job, worker: User, assignment_id: int, reserved: int, actor: User
) -> tuple[int, LedgerTransaction | None]:
    """Take back approved work's pay while it is still in its hold period.

    One balanced transaction (kind ``reversal``, ``reverses`` the pay): the exact opposite of the
    pay posting (the worker's pending pay, the platform fee, the escrow share) together with the
    release of the reservation that posting consumed, so the job ends where a rejection would
    have left it. Pay that reached the worker's available balance or a payout is a clawback
    (``clawbacks.payout_reverse``), an admin's separate decision: this raises Conflict without
    moving anything. Returns (the pay taken back, the posting or None if it was posted before).
    """
    done = LedgerTransaction.objects.filter(key=pay_reversed_key(assignment_id)).first()
    pay_tx = LedgerTransaction.objects.filter(key=pay_key(assignment_id)).first()
    if pay_tx is None:
        raise Conflict(f"Assignment #{assignment_id} was never paid; there is no pay to take back.")
    entries = list(pay_tx.entries.select_related("account"))
    pending = next((e for e in entries if e.account.kind == AccountKind.WORKER_PENDING), None)
    pay = pending.amount if pending is not None else 0
    if done is not None:
        return pay, None
    escrow, reserved_account = job_accounts(job)
    lock_account(escrow)  # serialises money movements of this job, as every escrow service
    hold = EarningHold.objects.select_for_update().filter(transaction=pay_tx).first()
    if pending is not None:
        balance = lock_account(pending.account).balance
        if (hold is not None and hold.released) or balance < pay:
            raise Conflict(
                f"Assignment #{assignment_id}'s pay of {pay} has left the worker's pending "
                "balance (the hold period is over); taking it back now is a payout reversal, "
                "not a rejection."
            )
    tx, _ = ledger_post(
        key=pay_reversed_key(assignment_id),
        kind=TxKind.REVERSAL,
        currency=pay_tx.currency,
        entries=[
            *((e.account, -e.amount) for e in entries),
            (reserved_account, -reserved),
            (escrow, reserved),
        ],
        memo=f"Assignment #{assignment_id} rejected after approval (admin): pay taken back",
        job=job,
        worker=worker,
        assignment_id=assignment_id,
        reverses=pay_tx,
        created_by=actor,
    )
    if hold is not None:
        # The held amount is gone from pending: the release job must not move it (it would take
        # the worker's other pending earnings out of their hold early).
        hold.released = True
        hold.released_at = now()
        hold.save(update_fields=["released", "released_at"])
    return pay, tx


@transaction.atomic
def bonus_pay(*, job: Job, worker: User, amount: int, reason: str, actor: User, key: str) -> int:
    """Post a bonus of ``amount`` from the job's available escrow to the worker (plus the
    platform fee); idempotent on ``key``. Who may receive one is the caller's rule
    (``tasks.paying.bonus_grant``)."""
    policy = active_policy()
    pay, fee = pricing.bonus_split(amount=amount, policy=policy)
    work_pay_lock(job_ids=[job.pk], worker_ids=[worker.pk])  # escrow locked: read it fresh
    escrow, _ = job_accounts(job)
    full_key = f"bonus:{job.pk}:{key}"
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
    EarningHold.objects.create(
        transaction=tx,
        worker=worker,
        currency=job.currency,
        amount=pay,
        available_at=now() + settings.EARNINGS_HOLD_PERIOD,
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


# --- pricing policy versions -----------------------------------------------------------------


@transaction.atomic
def pricing_policy_create(*, actor: User | None = None, note: str = "", **fields) -> PricingPolicy:
    """Save a new pricing policy version (the newest is active); old versions stay as they were."""
    base = active_policy()
    values = {
        "currency": base.currency,
        "base": dict(base.base),
        "t0": dict(base.t0),
        "t_obj": dict(base.t_obj),
        "motion_coef": base.motion_coef,
        "clutter_coef": base.clutter_coef,
        "complexity_min": base.complexity_min,
        "complexity_max": base.complexity_max,
        "floor_hourly": base.floor_hourly,
        "country_floors": dict(base.country_floors),
        "platform_fee_bps": base.platform_fee_bps,
        "tiers": [
            {"min_trust": t.min_trust, "multiplier_bps": t.multiplier_bps, "name": t.name}
            for t in base.tiers
        ],
        "extra_replica_rate": base.extra_replica_rate,
    }
    unknown = set(fields) - set(values)
    if unknown:
        raise InvalidAmount(f"Unknown pricing policy fields: {', '.join(sorted(unknown))}.")
    values.update(fields)
    if values["currency"] not in supported_currencies():
        raise ValidationError(
            "Pricing policies are written in a supported currency.",
            extra={"fields": {"currency": [f"Use one of: {', '.join(supported_currencies())}."]}},
        )
    # Lock the table's newest row so two admins saving at once get distinct versions.
    last = PricingPolicy.objects.select_for_update().order_by("-version").first()
    policy = PricingPolicy(
        version=(last.version + 1) if last else 1, note=note, created_by=actor, **values
    )
    policy.save()
    audit_log_record(action="pricing.policy_created", actor=actor, reason=note, obj=policy)
    return policy
