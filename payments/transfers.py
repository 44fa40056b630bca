"""A payout's Stripe transfer, exactly once: submitting it (one payout or a run's batch),
recording Stripe's answer, failing it back to the worker, and confirming it.

The rules of invariant 4 are in ``payments.payouts``'s docstring: read them before changing
anything here. The hot statements are in ``payments/payouts.sql``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from marketplace.errors import NotFound
from marketplace.models import User, WorkerProfile
from marketplace.sql import native, statement

from . import stripe_gateway as gateway
from .errors import (
    StripeError,
    StripeIdempotencyError,
    StripeRequestRefused,
)
from .ledger import AccountKind
from .models import (
    LedgerTransaction,
    Payout,
    PayoutStatus,
    ReconciliationIssue,
    TxKind,
)
from .posting import audit_log_record, ledger_account, ledger_post

SQL = "payments/payouts.sql"


@dataclass(frozen=True)
class SubmitResult:
    payout_id: int
    status: str
    retry: bool = False  # a transient error: try again later with the same key
    error: str = ""


def _metadata(payout: Payout) -> dict[str, str]:
    # Must not change between attempts with one key (Stripe compares parameters).
    return {"payout_id": str(payout.pk), "worker_id": str(payout.worker_id)}


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


def _submit_read_rows(payout_ids: list[int]) -> list[tuple]:
    """(id, status, amount, currency, destination, attempt, worker_id, held) per payout: one
    statement (``payouts.sql``), or its ORM twin on the embedded SQLite of ``make run``."""
    if not native():
        return list(
            Payout.objects.filter(pk__in=payout_ids).values_list(
                "pk",
                "status",
                "amount",
                "currency",
                "destination",
                "attempt",
                "worker_id",
                Coalesce("worker__worker_profile__payouts_held", False),
            )
        )
    with connection.cursor() as cur:
        cur.execute(statement(SQL, "submit_read"), [list(payout_ids)])
        return cur.fetchall()


def _submit_read(payout_ids: list[int]) -> tuple[list[Payout], dict[int, SubmitResult]]:
    """One statement: the payouts to send to Stripe, and the answers for those not to send."""
    rows = {r[0]: r for r in _submit_read_rows(payout_ids)}
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
    now = timezone.now()
    if not native():  # the embedded SQLite of ``make run``: the same conditional update per row
        return {
            a.payout.pk
            for a in attempts
            if Payout.objects.filter(
                pk=a.payout.pk,
                status__in=(PayoutStatus.PENDING, PayoutStatus.QUEUED),
                stripe_transfer_id="",
            ).update(
                status=PayoutStatus.SUBMITTED,
                stripe_transfer_id=a.transfer["id"],
                submitted_at=now,
                last_error="",
                updated_at=now,
            )
        }
    with connection.cursor() as cur:
        cur.execute(
            statement(SQL, "submit_record"),
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
        record_transfer(locked, attempt.transfer)
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
    payout.settled_at = timezone.now()
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


def record_transfer(payout: Payout, transfer: dict, *, confirmed: bool = False) -> None:
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
        payout.submitted_at = payout.submitted_at or timezone.now()
        payout.last_error = ""
        fields += ["stripe_transfer_id", "submitted_at", "last_error"]
    if payout.status in (PayoutStatus.PENDING, PayoutStatus.QUEUED):
        payout.status = PayoutStatus.SUBMITTED
        fields.append("status")
    if confirmed and payout.status == PayoutStatus.SUBMITTED:
        payout.status = PayoutStatus.PAID
        payout.settled_at = timezone.now()
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
    record_transfer(payout, transfer, confirmed=True)
    reversal_sync(payout, transfer)
    return payout


def reversal_sync(payout: Payout, transfer: dict) -> None:
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
