"""Writes of the payments domain: the ledger, escrow, pay, pricing and quotes.

Every movement of money is one balanced ledger transaction posted under an idempotency key: a
retry with the same key is a no-op that returns the first result, a reuse of the key for a
different movement is an error. Be extremely careful changing a key's format: keys are how a
replayed webhook, a retried Celery task or a double-clicked button is recognised.

Locking: every service that touches a job's escrow first locks that job's ``job_escrow`` account
row (``SELECT ... FOR UPDATE``), which serialises money movements per job; cached balances are
then updated in account-id order, so two transactions never wait on each other in a cycle.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from marketplace.errors import Conflict
from marketplace.models import Job, User
from tasks.models import Assignment, MicroTask

from . import pricing
from .errors import IdempotencyConflict, InsufficientEscrow, InvalidAmount
from .ledger import AccountKind, Leg, legs
from .models import (
    AuditLog,
    EarningHold,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    PricingPolicy,
    TxKind,
)
from .selectors import active_policy, worker_trust

logger = logging.getLogger(__name__)


def _now() -> datetime:
    """The clock seam for this module (tests move time by patching it)."""
    return timezone.now()


# --- ledger primitives -----------------------------------------------------------------------


def ledger_account(
    *, kind: str, currency: str, job: Job | None = None, worker: User | None = None
) -> LedgerAccount:
    """The account of ``kind`` for a job, a worker or the platform, created on first use."""
    if kind in AccountKind.JOB_KINDS and job is None:
        raise ValueError(f"{kind} accounts belong to a job")
    if kind in AccountKind.WORKER_KINDS and worker is None:
        raise ValueError(f"{kind} accounts belong to a worker")
    lookup = {
        "kind": kind,
        "currency": currency,
        "job_id": job.pk if kind in AccountKind.JOB_KINDS else None,
        "worker_id": worker.pk if kind in AccountKind.WORKER_KINDS else None,
    }
    account = LedgerAccount.objects.filter(**lookup).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            return LedgerAccount.objects.create(**lookup)
    except IntegrityError:  # created concurrently
        return LedgerAccount.objects.get(**lookup)


def _lock_account(account: LedgerAccount) -> LedgerAccount:
    return LedgerAccount.objects.select_for_update().get(pk=account.pk)


def _check_amount(amount: int, *, allow_zero: bool = False) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidAmount(f"Amounts are whole minor units (cents); got {amount!r}.")
    if amount < 0 or (amount == 0 and not allow_zero):
        raise InvalidAmount(f"The amount must be positive; got {amount}.")


def _existing(key: str, expected: Sequence[Leg] | None = None) -> LedgerTransaction | None:
    """The transaction already posted under ``key``; raise if it moved different money."""
    tx = LedgerTransaction.objects.filter(key=key).first()
    if tx is not None and expected is not None:
        posted = dict(tx.entries.values_list("account_id", "amount"))
        wanted = {leg.account.pk: leg.amount for leg in expected}
        if posted != wanted:
            raise IdempotencyConflict(
                f"The key {key!r} was already used for a different movement of money."
            )
    return tx


@transaction.atomic
def ledger_post(
    *,
    key: str,
    kind: str,
    currency: str,
    entries: Iterable[tuple[LedgerAccount, int]],
    memo: str = "",
    job: Job | None = None,
    worker: User | None = None,
    assignment: Assignment | None = None,
    payout=None,
    reverses: LedgerTransaction | None = None,
    created_by: User | None = None,
) -> tuple[LedgerTransaction, bool]:
    """Post one balanced transaction under ``key``; returns ``(transaction, created)``.

    Posting the same key again with the same entries returns the first transaction and
    ``created=False``; with different entries it raises :class:`IdempotencyConflict`.
    """
    merged = legs(*entries)
    for leg in merged:
        if leg.account.currency != currency:
            raise ValueError(f"account {leg.account} is not in {currency}")
    existing = _existing(key, merged)
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            tx = LedgerTransaction(
                key=key,
                kind=kind,
                currency=currency,
                memo=memo[:500],
                job=job,
                worker=worker,
                assignment=assignment,
                payout=payout,
                reverses=reverses,
                created_by=created_by,
            )
            tx.save()
            LedgerEntry.objects.bulk_create(
                [LedgerEntry(transaction=tx, account=leg.account, amount=leg.amount)
                 for leg in merged]
            )  # fmt: skip
            for leg in sorted(merged, key=lambda leg: leg.account.pk):
                if leg.account.kind in AccountKind.CACHED_KINDS:
                    LedgerAccount.objects.filter(pk=leg.account.pk).update(
                        balance=F("balance") + leg.amount
                    )
    except IntegrityError:
        # Either the key was posted concurrently (then it is a replay), or a non-negative
        # account would have gone below zero (a bug in the caller's checks: re-raise).
        existing = _existing(key, merged)
        if existing is None:
            raise
        return existing, False
    return tx, True


@dataclass(frozen=True)
class Posting:
    """One transaction for :func:`ledger_post_many` (ids instead of instances: bulk paths)."""

    key: str
    kind: str
    currency: str
    entries: tuple[tuple[LedgerAccount, int], ...]
    memo: str = ""
    job_id: int | None = None
    worker_id: int | None = None
    payout_id: int | None = None


@transaction.atomic
def ledger_post_many(postings: Sequence[Posting]) -> int:
    """Post many transactions in a few statements (payout runs); returns how many were new.

    Same rules as :func:`ledger_post`: balanced, idempotent by key (already-posted keys are
    skipped), cached balances updated. Accounts are locked in id order before the update.
    """
    if not postings:
        return 0
    checked = [(p, legs(*p.entries)) for p in postings]
    done = set(
        LedgerTransaction.objects.filter(key__in=[p.key for p in postings]).values_list(
            "key", flat=True
        )
    )
    todo = [(p, merged) for p, merged in checked if p.key not in done]
    if not todo:
        return 0
    try:
        with transaction.atomic():
            txs = LedgerTransaction.objects.bulk_create(
                [
                    LedgerTransaction(
                        key=p.key,
                        kind=p.kind,
                        currency=p.currency,
                        memo=p.memo[:500],
                        job_id=p.job_id,
                        worker_id=p.worker_id,
                        payout_id=p.payout_id,
                    )
                    for p, _ in todo
                ]
            )
            entries = []
            deltas: dict[int, int] = defaultdict(int)
            for tx, (_, merged) in zip(txs, todo, strict=True):
                for leg in merged:
                    entries.append(
                        LedgerEntry(transaction=tx, account=leg.account, amount=leg.amount)
                    )
                    if leg.account.kind in AccountKind.CACHED_KINDS:
                        deltas[leg.account.pk] += leg.amount
            LedgerEntry.objects.bulk_create(entries, batch_size=2_000)
            if deltas:
                ids = sorted(deltas)
                list(
                    LedgerAccount.objects.select_for_update()
                    .filter(pk__in=ids)
                    .order_by("pk")
                    .values_list("pk", flat=True)
                )
                if connection.vendor == "postgresql":
                    with connection.cursor() as cur:
                        cur.execute(
                            "UPDATE payments_ledgeraccount AS a SET balance = a.balance + v.d "
                            "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, d) "
                            "WHERE a.id = v.id",
                            [ids, [deltas[i] for i in ids]],
                        )
                else:  # the embedded SQLite mode: one statement per account
                    for i in ids:
                        LedgerAccount.objects.filter(pk=i).update(balance=F("balance") + deltas[i])
    except IntegrityError:
        # A key posted concurrently (or a bug): fall back to one-by-one posting, which
        # recognises replays and re-raises anything else.
        for p, _ in todo:
            ledger_post(
                key=p.key,
                kind=p.kind,
                currency=p.currency,
                entries=p.entries,
                memo=p.memo,
                worker=User(pk=p.worker_id) if p.worker_id else None,
                payout=_payout_ref(p.payout_id),
            )
    return len(todo)


def _payout_ref(payout_id: int | None):
    if payout_id is None:
        return None
    from .models import Payout

    return Payout(pk=payout_id)


def ledger_accounts_for_workers(
    *, kind: str, currency: str, worker_ids: Sequence[int]
) -> dict[int, LedgerAccount]:
    """The ``kind`` account of each worker, creating the missing ones in one statement."""
    if kind not in AccountKind.WORKER_KINDS:
        raise ValueError(f"{kind} is not a worker account kind")
    LedgerAccount.objects.bulk_create(
        [LedgerAccount(kind=kind, currency=currency, worker_id=w) for w in worker_ids],
        ignore_conflicts=True,
    )
    return {
        a.worker_id: a
        for a in LedgerAccount.objects.filter(
            kind=kind, currency=currency, job=None, worker_id__in=list(worker_ids)
        )
    }


@transaction.atomic
def ledger_reverse(
    *, transaction_: LedgerTransaction, key: str, memo: str, created_by: User | None = None
) -> LedgerTransaction:
    """Post the exact opposite of a transaction (the only way to correct the ledger)."""
    entries = [(e.account, -e.amount) for e in transaction_.entries.select_related("account")]
    tx, _ = ledger_post(
        key=key,
        kind=TxKind.REVERSAL,
        currency=transaction_.currency,
        entries=entries,
        memo=memo,
        job=transaction_.job,
        worker=transaction_.worker,
        assignment=transaction_.assignment,
        payout=transaction_.payout,
        reverses=transaction_,
        created_by=created_by,
    )
    return tx


def audit_log_record(
    *,
    action: str,
    actor: User | None = None,
    amount: int | None = None,
    currency: str = "",
    reason: str = "",
    obj=None,
    **detail,
) -> AuditLog:
    """Append an audit row (who, when, what, why) for a money action."""
    entry = AuditLog(
        actor=actor if (actor is not None and actor.is_authenticated) else None,
        action=action,
        amount=amount,
        currency=currency,
        reason=reason[:500],
        object_type=type(obj).__name__ if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        detail=detail,
    )
    entry.save()
    return entry


# --- escrow (the contract with the claim path: see docs/money-contract.md) ------------------


def _job_accounts(job: Job) -> tuple[LedgerAccount, LedgerAccount]:
    escrow = ledger_account(kind=AccountKind.JOB_ESCROW, currency=job.currency, job=job)
    reserved = ledger_account(kind=AccountKind.JOB_RESERVED, currency=job.currency, job=job)
    return escrow, reserved


@transaction.atomic
def escrow_fund(
    *, job: Job, amount: int, key: str, memo: str = "", actor: User | None = None
) -> LedgerTransaction:
    """Credit ``amount`` paid in through Stripe to the job's available escrow."""
    _check_amount(amount)
    escrow, _ = _job_accounts(job)
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
    _check_amount(amount)
    escrow, reserved = _job_accounts(job)
    entries = [(escrow, -amount), (reserved, amount)]
    full_key = f"reserve:{key}"
    if _existing(full_key, legs(*entries)) is not None:
        return
    escrow = _lock_account(escrow)
    # Re-check under the lock: a concurrent call with this key may have committed meanwhile.
    if _existing(full_key, legs(*entries)) is not None:
        return
    if escrow.balance < amount:
        raise InsufficientEscrow(
            f"Job #{job.pk} has {escrow.balance} {job.currency} of available escrow; "
            f"{amount} is needed. Fund the job or wait for reservations to be released."
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
    _check_amount(amount)
    escrow, reserved = _job_accounts(job)
    entries = [(reserved, -amount), (escrow, amount)]
    full_key = f"release:{key}"
    if _existing(full_key, legs(*entries)) is not None:
        return
    _lock_account(escrow)
    if _existing(full_key, legs(*entries)) is not None:
        return
    reserved = _lock_account(reserved)
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
    escrow, _ = _job_accounts(job)
    full_key = f"refund:{key}"
    done = LedgerTransaction.objects.filter(key=full_key).first()
    if done is not None:
        return -sum(done.entries.filter(account=escrow).values_list("amount", flat=True))
    escrow = _lock_account(escrow)
    if LedgerTransaction.objects.filter(key=full_key).exists():
        return escrow_refund_unspent(job=job, key=key, amount=amount)
    amount = escrow.balance if amount is None else amount
    if amount == 0:
        return 0
    _check_amount(amount)
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


def _measured_seconds(assignment: Assignment, job: Job) -> float:
    """Measured active time, capped at the claim's time limit (no one works past the limit)."""
    seconds = float(assignment.active_seconds or 0.0)
    limit = job.claim_time_limit.total_seconds() if job.claim_time_limit else seconds
    return max(0.0, min(seconds, limit))


@transaction.atomic
def assignment_pay(*, assignment: Assignment, credit: float = 1.0) -> int:
    """Pay an approved assignment from its reservation; returns the worker's pay.

    pay = price * trust multiplier * credit (rounded half up), topped up to the worker's
    fair-pay floor on the measured active time; the platform fee on the pay goes to revenue,
    the rest of the reservation back to the job's available escrow. Idempotent per assignment.
    """
    if not 0.0 <= credit <= 1.0:
        raise InvalidAmount(f"Credit is a fraction between 0 and 1; got {credit}.")
    a = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("microtask", "microtask__job", "worker")
        .get(pk=assignment.pk)
    )
    key = f"assignment:{a.pk}:pay"
    done = LedgerTransaction.objects.filter(key=key).first()
    if done is not None:
        assignment.pay_amount = a.pay_amount
        return int(a.pay_amount or 0)
    # A rejection whose "unpaid" was reversed (an upheld appeal) may be paid.
    if LedgerTransaction.objects.filter(
        key=f"assignment:{a.pk}:unpaid", reversed_by__isnull=True
    ).exists():
        raise Conflict(f"Assignment #{a.pk} was rejected (unpaid); it cannot be paid now.")
    job = a.microtask.job
    policy = active_policy()
    escrow, reserved_account = _job_accounts(job)
    escrow = _lock_account(escrow)
    reserved_account = _lock_account(reserved_account)
    r = int(a.reserved_amount or 0)
    if reserved_account.balance < r:
        raise Conflict(
            f"Job #{job.pk} holds {reserved_account.balance} reserved, less than assignment "
            f"#{a.pk}'s reservation of {r}; the reservation was already released."
        )
    trust = worker_trust(worker=a.worker, annotation_type=job.annotation_type)
    multiplier = pricing.multiplier_for(trust, policy=policy)
    price = int(a.microtask.price)
    if not pricing.base_cost_covered(
        reserved=r,
        escrow_available=escrow.balance,
        price=price,
        multiplier_bps=multiplier,
        credit=credit,
        policy=policy,
    ):
        raise InsufficientEscrow(
            f"Job #{job.pk}'s reservation and available escrow do not cover assignment "
            f"#{a.pk}'s pay; fund the job."
        )
    country = getattr(getattr(a.worker, "worker_profile", None), "country", "")
    seconds = _measured_seconds(a, job) * pricing.credit_bps(credit) / pricing.BPS
    minimum = pricing.floor_pay(seconds=seconds, hourly=policy.floor_for(country))
    split = pricing.split_pay(
        reserved=r,
        escrow_available=escrow.balance,
        price=price,
        multiplier_bps=multiplier,
        credit=credit,
        floor_minimum=minimum,
        policy=policy,
    )
    pending = ledger_account(
        kind=AccountKind.WORKER_PENDING, currency=job.currency, worker=a.worker
    )
    revenue = ledger_account(kind=AccountKind.PLATFORM_REVENUE, currency=job.currency)
    memo = (
        f"Assignment #{a.pk} approved: pay {split.pay} "
        f"(multiplier {multiplier / 10_000:g}, credit {credit:g})"
    )
    if split.topup:
        memo += f", fair-pay top-up {split.topup}"
    if split.subsidy:
        memo += f", platform-covered {split.subsidy}"
    tx, _ = ledger_post(
        key=key,
        kind=TxKind.PAY,
        currency=job.currency,
        entries=[
            (reserved_account, -r),
            (escrow, split.back_to_escrow - split.from_escrow),
            (pending, split.pay),
            (revenue, split.fee - split.subsidy),
        ],
        memo=memo,
        job=job,
        worker=a.worker,
        assignment=a,
    )
    if split.pay > 0:
        EarningHold.objects.create(
            transaction=tx,
            worker=a.worker,
            currency=job.currency,
            amount=split.pay,
            available_at=_now() + settings.EARNINGS_HOLD_PERIOD,
        )
    Assignment.objects.filter(pk=a.pk).update(pay_amount=split.pay)
    audit_log_record(
        action="assignment.paid",
        actor=User(pk=a.reviewed_by_id) if a.reviewed_by_id else None,  # None: auto-approved
        amount=split.pay,
        currency=job.currency,
        reason=f"approved, credit {credit:g}",
        obj=a,
        transaction=tx.pk,
        fee=split.fee,
        topup=split.topup,
    )
    assignment.pay_amount = split.pay
    return split.pay


@transaction.atomic
def assignment_unpaid(*, assignment: Assignment) -> None:
    """A rejected assignment: its reservation goes back to the job's available escrow."""
    a = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("microtask__job")
        .get(pk=assignment.pk)
    )
    key = f"assignment:{a.pk}:unpaid"
    if LedgerTransaction.objects.filter(key=key).exists():
        return
    if LedgerTransaction.objects.filter(key=f"assignment:{a.pk}:pay").exists():
        raise Conflict(f"Assignment #{a.pk} was already paid; reverse the payment instead.")
    job = a.microtask.job
    escrow, reserved_account = _job_accounts(job)
    _lock_account(escrow)
    r = int(a.reserved_amount or 0)
    reserved_account = _lock_account(reserved_account)
    if reserved_account.balance < r:
        raise Conflict(
            f"Job #{job.pk} holds {reserved_account.balance} reserved, less than assignment "
            f"#{a.pk}'s reservation of {r}."
        )
    tx, _ = ledger_post(
        key=key,
        kind=TxKind.UNPAID,
        currency=job.currency,
        entries=[(reserved_account, -r), (escrow, r)],
        memo=f"Assignment #{a.pk} rejected: reservation released",
        job=job,
        worker=a.worker,
        assignment=a,
    )
    Assignment.objects.filter(pk=a.pk).update(pay_amount=0)
    audit_log_record(
        action="assignment.unpaid",
        actor=User(pk=a.reviewed_by_id) if a.reviewed_by_id else None,
        amount=r,
        currency=job.currency,
        reason=a.rejection_reason or "rejected",
        obj=a,
        transaction=tx.pk,
    )
    assignment.pay_amount = 0


# --- pricing and quotes ----------------------------------------------------------------------


def _annotated_frames(mt: MicroTask, annotation_type: str) -> int:
    n = len(mt.frames or []) or (mt.frame_end - mt.frame_start + 1)
    if annotation_type == "track" and not mt.frames:
        n = math.ceil(n / max(1, mt.keyframe_step))
    return max(1, n)


def _features(mt: MicroTask, job: Job) -> pricing.TaskFeatures:
    return pricing.TaskFeatures(
        annotation_type=job.annotation_type,
        frames=_annotated_frames(mt, job.annotation_type),
        objects=mt.expected_objects or job.expected_objects,
        motion=mt.motion,
        clutter=mt.clutter,
    )


def measured_time_factors(
    *, annotation_type: str, policy: pricing.PricingPolicyData, limit: int = 5_000
) -> dict[float, float]:
    """Median measured/estimated work time per complexity bucket, from recent approved work."""
    rows = (
        Assignment.objects.filter(
            microtask__job__annotation_type=annotation_type,
            pay_amount__gt=0,
            active_seconds__gt=0,
        )
        .select_related("microtask", "microtask__job")
        .order_by("-id")[:limit]
    )
    samples: dict[float, list[tuple[float, float]]] = defaultdict(list)
    for a in rows:
        est = pricing.price_task(_features(a.microtask, a.microtask.job), policy=policy)
        samples[pricing.complexity_bucket(est.complexity)].append(
            (float(a.active_seconds), est.expected_seconds)
        )
    return {b: pricing.calibration_factor(s) for b, s in samples.items()}


@transaction.atomic
def job_quote(*, job: Job, persist: bool = True) -> pricing.Quote:
    """Price every microtask of ``job`` (sets ``MicroTask.price``) and return the job's quote.

    ``persist=False`` computes the same quote without storing the prices (for a page view).

    Expected time is calibrated on measured work where enough exists, so the fair-pay floor
    holds on real time: a re-quote after work has been measured includes the difference.
    """
    policy = active_policy()
    factors = measured_time_factors(annotation_type=job.annotation_type, policy=policy)
    microtasks = list(MicroTask.objects.filter(job=job).order_by("pk"))
    prices: list[int] = []
    seconds: list[float] = []
    changed: list[MicroTask] = []
    for mt in microtasks:
        features = _features(mt, job)
        c = pricing.complexity(motion=mt.motion, clutter=mt.clutter, policy=policy)
        factor = max(1.0, factors.get(pricing.complexity_bucket(c), 1.0))
        priced = pricing.price_task(features, policy=policy, time_factor=factor)
        if mt.price != priced.price:
            mt.price = priced.price
            changed.append(mt)
        if not mt.is_gold:
            prices.append(priced.price)
            seconds.append(priced.expected_seconds)
    if changed and persist:
        MicroTask.objects.bulk_update(changed, ["price"])
    return pricing.quote(
        prices=prices,
        expected_seconds=seconds,
        overlap_min=job.overlap_min,
        overlap_max=job.overlap_max,
        gold_rate=job.gold_rate,
        policy=policy,
    )


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
    # Lock the table's newest row so two admins saving at once get distinct versions.
    last = PricingPolicy.objects.select_for_update().order_by("-version").first()
    policy = PricingPolicy(
        version=(last.version + 1) if last else 1, note=note, created_by=actor, **values
    )
    policy.save()
    audit_log_record(action="pricing.policy_created", actor=actor, reason=note, obj=policy)
    return policy
