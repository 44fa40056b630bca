"""The ledger's writes: accounts, balanced postings, reversals and the audit log.

Every movement of money is one balanced ledger transaction posted under an idempotency key: a
retry with the same key is a no-op that returns the first result, a reuse of the key for a
different movement is an error. Be extremely careful changing a key's format: keys are how a
replayed webhook, a retried Celery task or a double-clicked button is recognised.

Locking — one global order, so two transactions never wait on each other in a cycle:

0. a service that changes the job itself (a transition, filling its slots, a refund of a
   closed job) locks the job's row first, ``FOR NO KEY UPDATE`` (see below);
1. the job's ``job_escrow`` account row (:func:`lock_job_money`, :func:`lock_account`), before
   any other money row: it serialises the money movements of one job. A service that finds its job
   through another row (a funding, a refund) reads that row unlocked, takes the job's money
   lock, then locks the row (``of=("self",)``: never the job's row with it).
2. then the rows of the money objects (fundings, refunds, payouts, holds), and worker accounts
   in id order;
3. cached balances are updated in account-id order by :func:`ledger_post` /
   :func:`ledger_post_many`; system accounts (Stripe clearing, platform revenue, refunds) are
   shared by every job and have no cached balance, so no posting ever locks them.

Creating an account is taking a lock: an INSERT that meets another transaction's uncommitted
row of the same key waits until that transaction ends. So an account is created at its own
place in the order, never after a later one was locked: a transaction touching the money of
several jobs or workers (bulk approvals, the earnings release, payout runs) calls
:func:`lock_money_of` first, which creates every missing account of each step (in key order, one
statement) before it locks that step's rows (in id order): job accounts, then worker accounts,
then system accounts (created last, never locked). A service moving one job's money creates and
locks its job's accounts first (``escrow.job_accounts`` then :func:`lock_account`), then at most
one worker's accounts, then system accounts — the same order.

A job's own row is never locked ``FOR UPDATE`` (``marketplace.lifecycle.lock_job`` takes
``FOR NO KEY UPDATE``): every posting about a job checks its foreign key to the job at commit
with a KEY SHARE lock, which ``FOR UPDATE`` blocks — the deadlock of issue #16 (a funding check
held its funding *and job* rows, then waited on the escrow row an approval held while the
approval's commit waited on the job row). What the movements mean (escrow, work pay) lives in
``payments.escrow`` and ``payments.work``; this module only knows accounts and legs.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from marketplace.bounds import money_amount_error
from marketplace.models import Job, User
from marketplace.sql import native

from .errors import IdempotencyConflict, InvalidAmount
from .ledger import AccountKind, Leg, legs
from .models import AuditLog, LedgerAccount, LedgerEntry, LedgerTransaction, Payout, TxKind

logger = logging.getLogger(__name__)


def now() -> datetime:
    """The clock seam of the money services (tests move time by patching it)."""
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


def lock_account(account: LedgerAccount) -> LedgerAccount:
    return LedgerAccount.objects.select_for_update().get(pk=account.pk)


def lock_job_money(job_id: int) -> LedgerAccount | None:
    """Take job ``job_id``'s money lock (its ``job_escrow`` row): the first lock of every
    transaction that moves the job's money (see the module's lock order). None when the job has
    no escrow account yet (no money of it ever moved; the first posting creates it)."""
    return (
        LedgerAccount.objects.select_for_update()
        .filter(kind=AccountKind.JOB_ESCROW, job_id=job_id)
        .first()
    )


def lock_money_of(
    *,
    job_ids: Iterable[int] = (),
    worker_ids: Iterable[int] = (),
    currencies: Iterable[str] = (),
    worker_kinds: Iterable[str] = (AccountKind.WORKER_PENDING,),
    system_kinds: Iterable[str] = (),
) -> None:
    """Create, then lock, in the global order, every account row a transaction moving money of
    several jobs and workers touches; call it before any other money lock of the transaction
    (a later call for some of the same accounts, as each ``work_pay`` makes, re-takes locks it
    holds).

    The order (the module's lock order, with account creation in it):

    1. the jobs' ``job_escrow`` and ``job_reserved`` accounts that do not exist yet are created
       (job id order), then the jobs' ``job_escrow`` rows are locked (id order);
    2. the workers' ``worker_kinds`` accounts (in the jobs' currencies and ``currencies``) that
       do not exist yet are created (worker id, kind, currency order), then all of them are
       locked (id order);
    3. the ``system_kinds`` accounts (platform revenue, Stripe clearing) are created if missing;
       they have no cached balance and are never locked.

    Creation is part of the order because creating a row is a lock: an INSERT that meets
    another transaction's uncommitted row of the same key waits for that transaction to end.
    Two bulk approvals paying two *new* workers in opposite orders each created one worker's
    account and then waited on the other's (a deadlock ``lock_money_of`` did not prevent while
    it locked only existing rows). Here a transaction creates every missing row of a step in
    one statement, in key order, before it takes any row lock of that step, so it waits on a
    creator only while it holds none of the rows that creator may still need. Each posting
    orders its own legs, but one that pays worker A then B beside one paying B then A (two
    jobs: different escrow locks) deadlocked on the shared worker rows; locked up front, the
    postings only re-take locks they hold."""
    jobs = dict(
        Job.objects.filter(pk__in=sorted(set(job_ids))).order_by("pk").values_list("pk", "currency")
    )
    money = sorted(set(currencies) | set(jobs.values()))
    workers = sorted(set(worker_ids))
    _create_missing(
        [
            LedgerAccount(kind=kind, currency=currency, job_id=job_id)
            for job_id, currency in sorted(jobs.items())
            for kind in (AccountKind.JOB_ESCROW, AccountKind.JOB_RESERVED)
        ]
    )
    _lock_rows(kind__in=[AccountKind.JOB_ESCROW], job_id__in=sorted(jobs))
    kinds = sorted(set(worker_kinds))
    _create_missing(
        [
            LedgerAccount(kind=kind, currency=currency, worker_id=worker_id)
            for worker_id in workers
            for kind in kinds
            for currency in money
        ]
    )
    _lock_rows(kind__in=kinds, currency__in=money, worker_id__in=workers)
    _create_missing(
        [
            LedgerAccount(kind=kind, currency=currency)
            for kind in sorted(set(system_kinds))
            for currency in money
        ]
    )


def _account_key(job_id: int | None, worker_id: int | None, kind: str, currency: str) -> tuple:
    return (job_id or 0, worker_id or 0, kind, currency)


def _create_missing(accounts: list[LedgerAccount]) -> None:
    """Insert those of ``accounts`` (all a job's, all a worker's or all the platform's) that do
    not exist yet, in one statement, in key order."""
    if not accounts:
        return
    jobs = {a.job_id for a in accounts if a.job_id}
    workers = {a.worker_id for a in accounts if a.worker_id}
    found = LedgerAccount.objects.filter(
        kind__in={a.kind for a in accounts}, currency__in={a.currency for a in accounts}
    )
    found = found.filter(job_id__in=jobs) if jobs else found.filter(job=None)
    found = found.filter(worker_id__in=workers) if workers else found.filter(worker=None)
    existing = {
        _account_key(*row) for row in found.values_list("job_id", "worker_id", "kind", "currency")
    }
    missing = sorted(
        (a for a in accounts if _account_key(a.job_id, a.worker_id, a.kind, a.currency)
         not in existing),
        key=lambda a: _account_key(a.job_id, a.worker_id, a.kind, a.currency),
    )  # fmt: skip
    if missing:
        # ON CONFLICT DO NOTHING: a row another transaction is creating is waited for, then kept.
        LedgerAccount.objects.bulk_create(missing, ignore_conflicts=True)


def _lock_rows(**filters) -> None:
    list(
        LedgerAccount.objects.select_for_update()
        .filter(**filters)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def check_money_amount(amount: int, *, allow_zero: bool = False, field: str = "amount") -> None:
    """Refuse anything but a whole, positive amount of minor units up to ``MONEY_AMOUNT_MAX``.

    The upper bound keeps every amount, and every sum of a few of them, inside a bigint column:
    an amount past it used to reach the database and come back as a 500.
    """
    problem = money_amount_error(amount, minimum=0 if allow_zero else 1)
    if problem:
        raise InvalidAmount(f"{problem} (got {amount!r})", extra={"fields": {field: [problem]}})


def existing_posting(key: str, expected: Sequence[Leg] | None = None) -> LedgerTransaction | None:
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
    assignment_id: int | None = None,
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
    existing = existing_posting(key, merged)
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
                assignment_id=assignment_id,
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
        existing = existing_posting(key, merged)
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
                if native():
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


def _payout_ref(payout_id: int | None) -> Payout | None:
    return None if payout_id is None else Payout(pk=payout_id)


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
        assignment_id=transaction_.assignment_id,
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
