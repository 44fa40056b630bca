"""Payout services: runs, exactly-once Stripe transfers, reconciliation, holds, clawbacks.

How a payout stays exactly-once (invariant 4) — read before changing anything here:

1. ``payout_create`` commits a Payout row *and* the ledger move available → in-transit in one
   database transaction; one open payout per worker is a unique constraint.
2. ``payout_submit`` (one payout) and ``payouts_submit_many`` (a run's batch: one read and one
   record statement per chunk, the HTTP calls on a small thread pool) read the row, create the
   transfer with the idempotency key ``payout:{id}:{attempt}`` and ``metadata.payout_id`` with
   no database transaction open across the call, then record it with an update that only
   moves a row still pending/queued with no transfer (racing submitters send the same key, so
   Stripe makes one transfer, and only one of them records it).
   After a timeout, a dropped connection, a 5xx or a 429 the *same* key is retried, so Stripe
   either replays the transfer it made or makes the first one. The attempt is bumped only
   after a definite refusal (a 4xx: the key's stored answer is that refusal, so a later try
   needs a new key) — never after a timeout, when a transfer may exist.
3. A crash at any point leaves the row ``pending``/``queued``: ``payouts_resume`` resubmits with
   the same key, and ``payouts_reconcile`` lists transfers on Stripe and adopts the one whose
   ``metadata.payout_id`` names the row.
4. The ledger settles in-transit → Stripe clearing once, under the key ``payout:{id}:paid``,
   when a transfer is confirmed (``transfer.created`` webhook or reconciliation); a definite
   failure returns the money to available under ``payout:{id}:failed``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from marketplace.bounds import supported_currencies
from marketplace.errors import Conflict, NotFound, ValidationError
from marketplace.models import User, WorkerProfile, WorkerStatus

from . import stripe_gateway as gateway
from .errors import (
    InvalidAmount,
    StripeError,
    StripeIdempotencyError,
    StripeRequestRefused,
)
from .ledger import AccountKind
from .models import (
    LedgerAccount,
    LedgerTransaction,
    Payout,
    PayoutRun,
    PayoutStatus,
    ReconciliationIssue,
    TxKind,
)
from .posting import audit_log_record, ledger_account, ledger_post

logger = logging.getLogger(__name__)

OPEN_STATUSES = (PayoutStatus.PENDING, PayoutStatus.QUEUED, PayoutStatus.SUBMITTED)


def _now() -> datetime:
    return timezone.now()


def _enqueue_submit(payout_id: int) -> None:
    from .tasks import payout_submit_task

    transaction.on_commit(lambda: payout_submit_task.delay(payout_id))


# --- creating payouts ------------------------------------------------------------------------


def _eligible_profile(worker_id: int) -> WorkerProfile | None:
    profile = WorkerProfile.objects.filter(user_id=worker_id).first()
    if (
        profile is None
        or not profile.payouts_enabled
        or profile.payouts_held
        or profile.status != WorkerStatus.ACTIVE
        or not profile.stripe_account_id
    ):
        return None
    return profile


@transaction.atomic
def payout_create(
    *,
    worker: User,
    currency: str | None = None,
    run: PayoutRun | None = None,
    actor: User | None = None,
    enqueue: bool = True,
) -> Payout | None:
    """A payout of the worker's whole available balance, if it is over the minimum and the
    worker can be paid; ``None`` otherwise. The ledger moves available → in-transit."""
    currency = currency or settings.PLATFORM_CURRENCY
    profile = _eligible_profile(worker.pk)
    if profile is None:
        return None
    available = ledger_account(kind=AccountKind.WORKER_AVAILABLE, currency=currency, worker=worker)
    available = LedgerAccount.objects.select_for_update().get(pk=available.pk)
    if available.balance < settings.PAYOUT_MINIMUM or available.balance <= 0:
        return None
    if Payout.objects.filter(worker=worker, currency=currency, status__in=OPEN_STATUSES).exists():
        return None
    amount = available.balance
    try:
        with transaction.atomic():
            payout = Payout.objects.create(
                run=run,
                worker=worker,
                amount=amount,
                currency=currency,
                destination=profile.stripe_account_id,
            )
    except IntegrityError:  # another run opened one concurrently
        return None
    in_transit = ledger_account(
        kind=AccountKind.WORKER_IN_TRANSIT, currency=currency, worker=worker
    )
    ledger_post(
        key=f"payout:{payout.pk}:start",
        kind=TxKind.PAYOUT,
        currency=currency,
        entries=[(available, -amount), (in_transit, amount)],
        memo=f"Payout #{payout.pk} to {profile.stripe_account_id}",
        worker=worker,
        payout=payout,
        created_by=actor,
    )
    if enqueue:
        _enqueue_submit(payout.pk)
    return payout


def payout_run_start(
    *,
    actor: User | None = None,
    currency: str | None = None,
    note: str = "",
    enqueue: bool = True,
    batch_size: int = 500,
) -> PayoutRun:
    """Open a payout for every worker with an available balance over the minimum.

    Payouts are created in batches, each batch one database transaction (a crash keeps the
    batches done; a rerun skips workers with an open payout).
    """
    currency = currency or settings.PLATFORM_CURRENCY
    run = PayoutRun.objects.create(triggered_by=actor, note=note[:300])
    audit_log_record(action="payout_run.started", actor=actor, reason=note, obj=run)
    worker_ids = list(
        LedgerAccount.objects.filter(
            kind=AccountKind.WORKER_AVAILABLE,
            currency=currency,
            balance__gte=max(1, settings.PAYOUT_MINIMUM),
            worker__worker_profile__payouts_enabled=True,
            worker__worker_profile__payouts_held=False,
            worker__worker_profile__status=WorkerStatus.ACTIVE,
        )
        .exclude(worker__worker_profile__stripe_account_id="")
        .order_by("worker_id")
        .values_list("worker_id", flat=True)
    )
    created = total = 0
    for i in range(0, len(worker_ids), batch_size):
        batch = _payouts_create_batch(
            worker_ids=worker_ids[i : i + batch_size],
            currency=currency,
            run=run,
            actor=actor,
            enqueue=enqueue,
        )
        created += len(batch)
        total += sum(p.amount for p in batch)
    PayoutRun.objects.filter(pk=run.pk).update(
        finished_at=_now(), payouts_created=created, total_amount=total
    )
    run.refresh_from_db()
    audit_log_record(
        action="payout_run.finished",
        actor=actor,
        amount=total,
        currency=currency,
        obj=run,
        payouts=created,
    )
    return run


def payout_currencies() -> list[str]:
    """Every currency a payout run pays: the supported ones, and any other in which a worker
    holds an available balance (a currency dropped from the list still gets its earnings paid
    out rather than stranded)."""
    held = (
        LedgerAccount.objects.filter(kind=AccountKind.WORKER_AVAILABLE, balance__gt=0)
        .values_list("currency", flat=True)
        .distinct()
    )
    return list(dict.fromkeys([*supported_currencies(), *sorted(held)]))


def payout_runs_start(
    *, actor: User | None = None, note: str = "", enqueue: bool = True
) -> dict[str, PayoutRun]:
    """A payout run in every currency workers can be paid in (``payout_currencies``)."""
    return {
        currency: payout_run_start(
            actor=actor, currency=currency, note=f"{note} ({currency})".strip(), enqueue=enqueue
        )
        for currency in payout_currencies()
    }


@transaction.atomic
def _payouts_create_batch(
    *,
    worker_ids: list[int],
    currency: str,
    run: PayoutRun,
    actor: User | None,
    enqueue: bool,
) -> list[Payout]:
    """``payout_create`` for many workers in a handful of statements."""
    from .posting import Posting, ledger_accounts_for_workers, ledger_post_many

    accounts = list(
        LedgerAccount.objects.select_for_update()
        .filter(
            kind=AccountKind.WORKER_AVAILABLE,
            currency=currency,
            worker_id__in=worker_ids,
            balance__gte=max(1, settings.PAYOUT_MINIMUM),
        )
        .order_by("pk")
    )
    destinations = dict(
        WorkerProfile.objects.filter(
            user_id__in=[a.worker_id for a in accounts],
            payouts_enabled=True,
            payouts_held=False,
            status=WorkerStatus.ACTIVE,
        )
        .exclude(stripe_account_id="")
        .values_list("user_id", "stripe_account_id")
    )
    busy = set(
        Payout.objects.filter(
            worker_id__in=list(destinations), currency=currency, status__in=OPEN_STATUSES
        ).values_list("worker_id", flat=True)
    )
    todo = [a for a in accounts if a.worker_id in destinations and a.worker_id not in busy]
    if not todo:
        return []
    created = Payout.objects.bulk_create(
        [
            Payout(
                run=run,
                worker_id=a.worker_id,
                amount=a.balance,
                currency=currency,
                destination=destinations[a.worker_id],
            )
            for a in todo
        ]
    )
    in_transit = ledger_accounts_for_workers(
        kind=AccountKind.WORKER_IN_TRANSIT,
        currency=currency,
        worker_ids=[a.worker_id for a in todo],
    )
    ledger_post_many(
        [
            Posting(
                key=f"payout:{p.pk}:start",
                kind=TxKind.PAYOUT,
                currency=currency,
                entries=((a, -p.amount), (in_transit[a.worker_id], p.amount)),
                memo=f"Payout #{p.pk} to {p.destination}",
                worker_id=a.worker_id,
                payout_id=p.pk,
            )
            for a, p in zip(todo, created, strict=True)
        ]
    )
    if enqueue:
        # One task submits the batch (``payouts_submit_many``: fewer round trips, a small
        # thread pool for the HTTP calls); a payout it could not settle gets its own retrying
        # ``payout_submit_task``, and ``payouts_resume`` covers a worker killed mid-batch.
        from .tasks import payouts_submit_batch_task

        ids = [p.pk for p in created]
        transaction.on_commit(lambda: payouts_submit_batch_task.delay(ids))
    return created


# --- submitting to Stripe --------------------------------------------------------------------


@dataclass(frozen=True)
class SubmitResult:
    payout_id: int
    status: str
    retry: bool = False  # a transient error: try again later with the same key
    error: str = ""


def _metadata(payout: Payout) -> dict[str, str]:
    # Must not change between attempts with one key (Stripe compares parameters).
    return {"payout_id": str(payout.pk), "worker_id": str(payout.worker_id)}


_SUBMIT_READ = """
    SELECT p.id, p.status, p.amount, p.currency, p.destination, p.attempt, p.worker_id,
           COALESCE(w.payouts_held, false)
    FROM payments_payout p
    LEFT JOIN marketplace_workerprofile w ON w.user_id = p.worker_id
    WHERE p.id = ANY(%s)
"""
# Records Stripe's answer for many payouts in one statement; only a payout that is still
# pending or queued, with no transfer yet, moves (the rows it returns are the ones it moved).
_SUBMIT_RECORD = """
    UPDATE payments_payout AS p
    SET status = 'submitted', stripe_transfer_id = v.transfer_id, submitted_at = %s,
        last_error = '', updated_at = %s
    FROM unnest(%s::bigint[], %s::text[]) AS v(id, transfer_id)
    WHERE p.id = v.id AND p.status IN ('pending', 'queued') AND p.stripe_transfer_id = ''
    RETURNING p.id
"""
_CONFIRM_MANY = """
    UPDATE payments_payout AS p
    SET status = 'paid', stripe_transfer_id = v.transfer_id, settled_at = %s, updated_at = %s,
        last_error = '', submitted_at = COALESCE(p.submitted_at, %s)
    FROM unnest(%s::bigint[], %s::text[]) AS v(id, transfer_id)
    WHERE p.id = v.id
"""


@dataclass(frozen=True)
class _Attempt:
    """What one Stripe call for one payout gave: a transfer or an error (never both)."""

    payout: Payout
    transfer: dict | None = None
    error: StripeError | StripeRequestRefused | None = None

    @property
    def clean(self) -> bool:
        # The transfer Stripe answered with is the one we asked for: recordable in bulk.
        t = self.transfer
        return (
            t is not None
            and t.get("amount") == self.payout.amount
            and t.get("destination") == self.payout.destination
        )


def _submit_read(payout_ids: list[int]) -> tuple[list[Payout], dict[int, SubmitResult]]:
    """One statement: the payouts to send to Stripe, and the answers for those not to send."""
    with connection.cursor() as cur:
        cur.execute(_SUBMIT_READ, [list(payout_ids)])
        rows = {r[0]: r for r in cur.fetchall()}
    todo: list[Payout] = []
    done: dict[int, SubmitResult] = {}
    for pk in payout_ids:
        row = rows.get(pk)
        if row is None:
            raise NotFound(f"Payout #{pk} does not exist.")
        _, status, amount, currency, destination, attempt, worker_id, held = row
        if status not in (PayoutStatus.PENDING, PayoutStatus.QUEUED):
            done[pk] = SubmitResult(pk, status)
        elif held:
            done[pk] = SubmitResult(pk, status, error="payouts held")
        else:
            todo.append(
                Payout(
                    pk=pk,
                    status=status,
                    amount=amount,
                    currency=currency,
                    destination=destination,
                    attempt=attempt,
                    worker_id=worker_id,
                )
            )
    return todo, done


def _transfer_call(payout: Payout) -> _Attempt:
    """The Stripe call alone (no database access: safe on a worker thread)."""
    try:
        transfer = gateway.transfer_create(
            amount=payout.amount,
            currency=payout.currency,
            destination=payout.destination,
            idempotency_key=payout.idempotency_key,
            metadata=_metadata(payout),
            transfer_group=f"payout:{payout.pk}",
            description=f"Crowdlabel payout #{payout.pk}",
        )
    except (StripeError, StripeRequestRefused) as exc:  # a refusal is not a StripeError
        return _Attempt(payout, error=exc)
    return _Attempt(payout, transfer=transfer)


def _submit_record(attempts: list[_Attempt]) -> set[int]:
    """Record clean transfers in one statement; the ids it moved to ``submitted``."""
    if not attempts:
        return set()
    now = _now()
    with connection.cursor() as cur:
        cur.execute(
            _SUBMIT_RECORD,
            [
                now,
                now,
                [a.payout.pk for a in attempts],
                [a.transfer["id"] for a in attempts],
            ],
        )
        return {r[0] for r in cur.fetchall()}


def _submit_finish(attempt: _Attempt) -> SubmitResult:
    """The careful path for one payout: an error, a mismatch, or someone else recorded it."""
    payout, status, exc = attempt.payout, attempt.payout.status, attempt.error
    if isinstance(exc, StripeIdempotencyError):
        # Our key was used with other parameters: a bug, never a reason to pay again.
        ReconciliationIssue.objects.create(
            payout_id=payout.pk, kind="idempotency_error", detail=exc.message
        )
        Payout.objects.filter(pk=payout.pk).update(last_error=exc.message[:500])
        return SubmitResult(payout.pk, status, error=exc.message)
    if isinstance(exc, StripeRequestRefused):
        return _refused_locked(payout.pk, attempt=payout.attempt, exc=exc)
    if exc is not None:  # timeout, dropped connection, 5xx, 429: same key later
        Payout.objects.filter(pk=payout.pk).update(last_error=exc.message[:500])
        return SubmitResult(payout.pk, status, retry=True, error=exc.message)
    with transaction.atomic():
        locked = Payout.objects.select_for_update().get(pk=payout.pk)
        _record_transfer(locked, attempt.transfer)
        return SubmitResult(payout.pk, locked.status)


def payout_submit(*, payout_id: int) -> SubmitResult:
    """Create the payout's transfer on Stripe (exactly once; see the module docstring).

    No database transaction is held open across the HTTP call: the read before it and the
    conditional update after it are one statement each. Two submitters racing on one payout
    send the same idempotency key, so Stripe makes one transfer; the update only moves a
    payout that is still pending or queued, so only one of them records it.
    """
    # The hot path is written as two plain statements (the ORM's query building costs more
    # than the database work here; see bench/payouts.py).
    todo, done = _submit_read([payout_id])
    if not todo:
        return done[payout_id]
    attempt = _transfer_call(todo[0])
    if attempt.clean and _submit_record([attempt]):
        return SubmitResult(payout_id, PayoutStatus.SUBMITTED)
    return _submit_finish(attempt)


def payouts_submit_many(
    *, payout_ids: list[int], threads: int = 4, chunk_size: int = 200
) -> dict[int, SubmitResult]:
    """``payout_submit`` for many payouts: the same exactly-once rules, fewer round trips.

    Per chunk of ``chunk_size`` payouts: one statement reads them, their transfers are created
    on Stripe by ``threads`` threads (HTTP only; each thread has its own Stripe client and
    touches no database), then one statement records every clean answer. As in
    ``payout_submit``, no transaction is open across the HTTP calls, each call carries the
    payout row's idempotency key, and only a payout still pending/queued with no transfer is
    moved. A crash between a chunk's calls and its record leaves those payouts pending, exactly
    like a crash after a single call: ``payouts_resume`` resends the same keys (Stripe replays
    the transfers) and reconciliation adopts them. Errors and anything unusual take the
    single-payout careful path on this thread.
    """
    from concurrent.futures import ThreadPoolExecutor

    results: dict[int, SubmitResult] = {}
    pool = ThreadPoolExecutor(max_workers=threads) if threads > 1 else None
    try:
        for i in range(0, len(payout_ids), chunk_size):
            todo, done = _submit_read(payout_ids[i : i + chunk_size])
            results.update(done)
            attempts = list(pool.map(_transfer_call, todo) if pool else map(_transfer_call, todo))
            recorded = _submit_record([a for a in attempts if a.clean])
            for a in attempts:
                pk = a.payout.pk
                if pk in recorded:
                    results[pk] = SubmitResult(pk, PayoutStatus.SUBMITTED)
                else:
                    results[pk] = _submit_finish(a)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return results


def _refused_locked(payout_id: int, *, attempt: int, exc: StripeRequestRefused) -> SubmitResult:
    with transaction.atomic():
        payout = Payout.objects.select_for_update().get(pk=payout_id)
        if (
            payout.status not in (PayoutStatus.PENDING, PayoutStatus.QUEUED)
            or payout.attempt != attempt
        ):
            return SubmitResult(payout_id, payout.status)  # another submitter handled it
        return _refused(payout, exc)


def _refused(payout: Payout, exc: StripeRequestRefused) -> SubmitResult:
    # A definite 4xx: the key's stored answer is this refusal, so any later try needs a new key.
    payout.attempt += 1
    payout.failure_code = exc.stripe_code[:64]
    if exc.stripe_code == "balance_insufficient":
        payout.status = PayoutStatus.QUEUED
        payout.last_error = exc.message[:500]
        payout.save(update_fields=["attempt", "status", "failure_code", "last_error", "updated_at"])
        return SubmitResult(payout.pk, payout.status, error=exc.message)
    _fail(payout, code=exc.stripe_code or "refused", reason=exc.message)
    return SubmitResult(payout.pk, payout.status, error=exc.message)


def _fail(payout: Payout, *, code: str, reason: str) -> None:
    """A failed payout: its money goes back to the worker's available balance."""
    payout.status = PayoutStatus.FAILED
    payout.failure_code = code[:64]
    payout.failure_reason = reason[:500]
    payout.settled_at = _now()
    payout.save()
    worker = User(pk=payout.worker_id)
    ledger_post(
        key=f"payout:{payout.pk}:failed",
        kind=TxKind.PAYOUT_FAILED,
        currency=payout.currency,
        entries=[
            (
                ledger_account(
                    kind=AccountKind.WORKER_IN_TRANSIT, currency=payout.currency, worker=worker
                ),
                -payout.amount,
            ),
            (
                ledger_account(
                    kind=AccountKind.WORKER_AVAILABLE, currency=payout.currency, worker=worker
                ),
                payout.amount,
            ),
        ],
        memo=f"Payout #{payout.pk} failed: {reason}"[:500],
        worker=worker,
        payout=payout,
    )
    audit_log_record(
        action="payout.failed",
        amount=payout.amount,
        currency=payout.currency,
        reason=reason,
        obj=payout,
        code=code,
    )


def _record_transfer(payout: Payout, transfer: dict, *, confirmed: bool = False) -> None:
    """Attach Stripe's transfer to the (locked) payout; settle the ledger when confirmed."""
    tr_id = transfer["id"]
    if payout.stripe_transfer_id and payout.stripe_transfer_id != tr_id:
        ReconciliationIssue.objects.get_or_create(
            payout=payout,
            stripe_transfer_id=tr_id,
            kind="duplicate_transfer",
            defaults={"detail": f"Payout already has {payout.stripe_transfer_id}; saw {tr_id}."},
        )
        return
    if transfer.get("amount") != payout.amount or transfer.get("destination") != payout.destination:
        ReconciliationIssue.objects.get_or_create(
            payout=payout,
            stripe_transfer_id=tr_id,
            kind="amount_mismatch",
            defaults={
                "detail": f"Transfer {tr_id} is {transfer.get('amount')} to "
                f"{transfer.get('destination')}; payout is {payout.amount} to "
                f"{payout.destination}."
            },
        )
    if payout.status == PayoutStatus.FAILED:
        ReconciliationIssue.objects.get_or_create(
            payout=payout,
            stripe_transfer_id=tr_id,
            kind="transfer_for_failed_payout",
            defaults={"detail": f"Payout #{payout.pk} is failed but transfer {tr_id} exists."},
        )
        return
    fields = ["updated_at"]
    if not payout.stripe_transfer_id:
        payout.stripe_transfer_id = tr_id
        payout.submitted_at = payout.submitted_at or _now()
        payout.last_error = ""
        fields += ["stripe_transfer_id", "submitted_at", "last_error"]
    if payout.status in (PayoutStatus.PENDING, PayoutStatus.QUEUED):
        payout.status = PayoutStatus.SUBMITTED
        fields.append("status")
    if confirmed and payout.status == PayoutStatus.SUBMITTED:
        payout.status = PayoutStatus.PAID
        payout.settled_at = _now()
        fields += ["status", "settled_at"]
        _settle_paid(payout)
    payout.save(update_fields=sorted(set(fields)))


def _settle_paid(payout: Payout) -> None:
    worker = User(pk=payout.worker_id)
    ledger_post(
        key=f"payout:{payout.pk}:paid",
        kind=TxKind.PAYOUT_PAID,
        currency=payout.currency,
        entries=[
            (
                ledger_account(
                    kind=AccountKind.WORKER_IN_TRANSIT, currency=payout.currency, worker=worker
                ),
                -payout.amount,
            ),
            (
                ledger_account(kind=AccountKind.STRIPE_CLEARING, currency=payout.currency),
                payout.amount,
            ),
        ],
        memo=f"Payout #{payout.pk} transferred ({payout.stripe_transfer_id})",
        worker=worker,
        payout=payout,
    )


@transaction.atomic
def payout_confirm_transfer(*, transfer: dict) -> Payout | None:
    """A transfer Stripe confirmed (webhook or listing): settle the payout it names."""
    payout_id = (transfer.get("metadata") or {}).get("payout_id")
    qs = Payout.objects.select_for_update()
    payout = (
        qs.filter(pk=int(payout_id)).first()
        if payout_id and str(payout_id).isdigit()
        else qs.filter(stripe_transfer_id=transfer["id"]).first()
    )
    if payout is None:
        return None
    _record_transfer(payout, transfer, confirmed=True)
    _sync_reversal(payout, transfer)
    return payout


# --- recovery and reconciliation -------------------------------------------------------------


def payouts_resume(*, older_than: timedelta = timedelta(seconds=0)) -> list[int]:
    """Resubmit open payouts nobody is working on (after a crash), with their same keys."""
    cutoff = _now() - older_than
    ids = list(
        Payout.objects.filter(
            status__in=(PayoutStatus.PENDING, PayoutStatus.QUEUED), updated_at__lte=cutoff
        ).values_list("pk", flat=True)
    )
    from .tasks import payout_submit_task

    for pk in ids:
        payout_submit_task.delay(pk)
    return ids


@dataclass
class ReconcileReport:
    transfers_seen: int = 0
    confirmed: int = 0
    resubmitted: int = 0
    issues: int = 0


def payouts_reconcile(*, lookback: timedelta = timedelta(days=3)) -> ReconcileReport:
    """List transfers on Stripe and bring our payouts in line with them.

    * an open payout whose transfer exists → confirmed (paid), whatever happened to the
      response;
    * a pending payout with no transfer → resubmitted (same key);
    * two transfers for one payout, a transfer for a failed payout, a submitted or paid payout
      with no transfer → a :class:`ReconciliationIssue` for an admin.
    """
    report = ReconcileReport()
    oldest_open = Payout.objects.filter(status__in=OPEN_STATUSES).order_by("created_at").first()
    since = _now() - lookback
    if oldest_open is not None and oldest_open.created_at < since:
        since = oldest_open.created_at
    since_ts = int(since.timestamp()) - 60
    by_payout: dict[int, list[dict]] = defaultdict(list)
    for transfer in gateway.transfers_list(created_gte=since_ts):
        report.transfers_seen += 1
        payout_id = (transfer.get("metadata") or {}).get("payout_id", "")
        if str(payout_id).isdigit():
            by_payout[int(payout_id)].append(transfer)
    for payout_id, transfers in by_payout.items():
        if len(transfers) > 1:
            report.issues += 1
            ReconciliationIssue.objects.get_or_create(
                payout_id=payout_id if Payout.objects.filter(pk=payout_id).exists() else None,
                kind="duplicate_transfer",
                stripe_transfer_id=transfers[0]["id"],
                defaults={"detail": f"{len(transfers)} transfers name payout #{payout_id}."},
            )
    ids = sorted(by_payout)
    for i in range(0, len(ids), 500):
        report.confirmed += _reconcile_chunk(ids[i : i + 500], by_payout)
    # Open payouts Stripe has no transfer for.
    for payout in Payout.objects.filter(status__in=OPEN_STATUSES, created_at__gte=since):
        if payout.pk in by_payout:
            continue
        if payout.status == PayoutStatus.SUBMITTED:
            report.issues += 1
            ReconciliationIssue.objects.get_or_create(
                payout=payout,
                kind="missing_transfer",
                defaults={"detail": f"Payout #{payout.pk} says submitted; Stripe has no transfer."},
            )
        elif payout.status == PayoutStatus.PENDING:
            report.resubmitted += 1
            _enqueue_submit(payout.pk)
    paid_missing = Payout.objects.filter(
        status=PayoutStatus.PAID, settled_at__gte=since, created_at__gte=since
    ).exclude(pk__in=list(by_payout))
    for payout in paid_missing:
        report.issues += 1
        ReconciliationIssue.objects.get_or_create(
            payout=payout,
            kind="missing_transfer",
            defaults={"detail": f"Payout #{payout.pk} is paid; Stripe lists no transfer."},
        )
    return report


@transaction.atomic
def _reconcile_chunk(ids: list[int], by_payout: dict[int, list[dict]]) -> int:
    """Confirm the payouts of ``ids`` from their listed transfers; returns how many got paid."""
    rows = list(
        Payout.objects.select_for_update(skip_locked=True).filter(pk__in=ids).order_by("pk")
    )
    fast: list[tuple[Payout, dict]] = []
    confirmed = 0
    for payout in rows:
        transfers = by_payout[payout.pk]
        oldest = transfers[-1]  # the list is newest first
        if (
            payout.status in OPEN_STATUSES
            and len(transfers) == 1
            and payout.stripe_transfer_id in ("", oldest["id"])
            and oldest.get("amount") == payout.amount
            and oldest.get("destination") == payout.destination
            and not oldest.get("amount_reversed")
        ):
            fast.append((payout, oldest))
            continue
        # Anything unusual goes one by one through the careful path.
        was = payout.status
        if payout.status in OPEN_STATUSES or payout.status == PayoutStatus.FAILED:
            _record_transfer(payout, oldest, confirmed=True)
        _sync_reversal(payout, oldest)
        confirmed += int(payout.status == PayoutStatus.PAID and was != PayoutStatus.PAID)
    if fast:
        _confirm_many(fast)
    return confirmed + len(fast)


def _confirm_many(pairs: list[tuple[Payout, dict]]) -> None:
    """Mark plain confirmed payouts paid and settle their ledger, in a few statements."""
    from .posting import Posting, ledger_accounts_for_workers, ledger_post_many

    now = _now()
    by_currency: dict[str, list[Payout]] = defaultdict(list)
    for payout, transfer in pairs:
        payout.stripe_transfer_id = transfer["id"]
        payout.submitted_at = payout.submitted_at or now
        payout.settled_at = now
        payout.status = PayoutStatus.PAID
        payout.last_error = ""
        payout.updated_at = now
        by_currency[payout.currency].append(payout)
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(
                _CONFIRM_MANY,
                [now, now, now, [p.pk for p, _ in pairs], [t["id"] for _, t in pairs]],
            )
    else:  # the embedded SQLite mode
        for p, _ in pairs:
            Payout.objects.filter(pk=p.pk).update(
                status=p.status,
                stripe_transfer_id=p.stripe_transfer_id,
                settled_at=now,
                submitted_at=p.submitted_at,
                last_error="",
                updated_at=now,
            )
    for currency, payouts in by_currency.items():
        in_transit = ledger_accounts_for_workers(
            kind=AccountKind.WORKER_IN_TRANSIT,
            currency=currency,
            worker_ids=[p.worker_id for p in payouts],
        )
        clearing = ledger_account(kind=AccountKind.STRIPE_CLEARING, currency=currency)
        ledger_post_many(
            [
                Posting(
                    key=f"payout:{p.pk}:paid",
                    kind=TxKind.PAYOUT_PAID,
                    currency=currency,
                    entries=((in_transit[p.worker_id], -p.amount), (clearing, p.amount)),
                    memo=f"Payout #{p.pk} transferred ({p.stripe_transfer_id})",
                    worker_id=p.worker_id,
                    payout_id=p.pk,
                )
                for p in payouts
            ]
        )


def payouts_resume_queued() -> list[int]:
    """After ``balance.available``: try queued payouts again (each with its bumped key)."""
    ids = list(Payout.objects.filter(status=PayoutStatus.QUEUED).values_list("pk", flat=True))
    for pk in ids:
        _enqueue_submit(pk)
    return ids


# --- holds and clawbacks ---------------------------------------------------------------------


@transaction.atomic
def worker_payouts_hold(*, worker: User, reason: str, actor: User) -> WorkerProfile:
    """Stop payouts to a worker (no new payouts; open ones wait) until released."""
    if not reason.strip():
        raise ValidationError(
            "Say why payouts are held.", extra={"fields": {"reason": ["required"]}}
        )
    profile = WorkerProfile.objects.select_for_update().get(user=worker)
    profile.payouts_held = True
    profile.payouts_held_reason = reason[:300]
    profile.save(update_fields=["payouts_held", "payouts_held_reason"])
    audit_log_record(action="payouts.held", actor=actor, reason=reason, obj=profile)
    return profile


@transaction.atomic
def worker_payouts_release(*, worker: User, actor: User, reason: str = "") -> WorkerProfile:
    profile = WorkerProfile.objects.select_for_update().get(user=worker)
    profile.payouts_held = False
    profile.payouts_held_reason = ""
    profile.save(update_fields=["payouts_held", "payouts_held_reason"])
    audit_log_record(action="payouts.released", actor=actor, reason=reason, obj=profile)
    for pk in Payout.objects.filter(worker=worker, status=PayoutStatus.PENDING).values_list(
        "pk", flat=True
    ):
        _enqueue_submit(pk)
    return profile


def _sync_reversal(payout: Payout, transfer: dict) -> None:
    """Bring the ledger in line with the transfer's ``amount_reversed`` (a clawback)."""
    reversed_total = int(transfer.get("amount_reversed") or 0)
    if reversed_total <= payout.amount_reversed:
        return
    delta = reversed_total - payout.amount_reversed
    worker = User(pk=payout.worker_id)
    # The money came back from the worker's connected account to the platform: a reversing
    # transaction of the settlement, returning it to the worker's available balance, with
    # their payouts held so an admin decides what happens to it.
    ledger_post(
        key=f"payout:{payout.pk}:reversed-to:{reversed_total}",
        kind=TxKind.CLAWBACK,
        currency=payout.currency,
        entries=[
            (ledger_account(kind=AccountKind.STRIPE_CLEARING, currency=payout.currency), -delta),
            (
                ledger_account(
                    kind=AccountKind.WORKER_AVAILABLE, currency=payout.currency, worker=worker
                ),
                delta,
            ),
        ],
        memo=f"Transfer {payout.stripe_transfer_id} reversed by {delta}",
        worker=worker,
        payout=payout,
        reverses=LedgerTransaction.objects.filter(key=f"payout:{payout.pk}:paid").first(),
    )
    payout.amount_reversed = reversed_total
    if reversed_total >= payout.amount:
        payout.status = PayoutStatus.REVERSED
    payout.save(update_fields=["amount_reversed", "status", "updated_at"])
    WorkerProfile.objects.filter(user_id=payout.worker_id, payouts_held=False).update(
        payouts_held=True, payouts_held_reason=f"Transfer of payout #{payout.pk} reversed"
    )


@transaction.atomic
def payout_reverse(
    *, payout: Payout, reason: str, actor: User, amount: int | None = None
) -> Payout:
    """Claw back (part of) a paid payout's transfer; the ledger records a reversing move."""
    payout = Payout.objects.select_for_update().get(pk=payout.pk)
    if (
        payout.status not in (PayoutStatus.SUBMITTED, PayoutStatus.PAID)
        or not payout.stripe_transfer_id
    ):
        raise Conflict(f"Payout #{payout.pk} has no transfer to reverse (it is {payout.status}).")
    remaining = payout.amount - payout.amount_reversed
    amount = remaining if amount is None else amount
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= remaining:
        raise InvalidAmount(f"You can reverse between 1 and {remaining} of payout #{payout.pk}.")
    if not reason.strip():
        raise ValidationError("Say why the transfer is reversed.")
    if payout.status == PayoutStatus.SUBMITTED:
        _record_transfer(
            payout, gateway.transfer_retrieve(payout.stripe_transfer_id), confirmed=True
        )
    gateway.transfer_reverse(
        transfer_id=payout.stripe_transfer_id,
        amount=amount,
        idempotency_key=f"payout:{payout.pk}:reversal:{payout.amount_reversed}:{amount}",
        metadata={"payout_id": str(payout.pk), "reason": reason[:200]},
    )
    audit_log_record(
        action="payout.reversed",
        actor=actor,
        amount=amount,
        currency=payout.currency,
        reason=reason,
        obj=payout,
    )
    _sync_reversal(payout, {"amount_reversed": payout.amount_reversed + amount})
    return payout
