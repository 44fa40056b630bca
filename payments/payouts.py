"""Payouts: creating them (one per worker and currency, in runs) and resuming open ones.

The rest of a payout's life has its own module: its exactly-once Stripe transfer in
``payments.transfers``, reconciliation with Stripe's list of transfers in
``payments.reconciliation``, holds and clawbacks in ``payments.clawbacks``.

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

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from marketplace.bounds import supported_currencies
from marketplace.models import User, WorkerProfile, WorkerStatus

from .ledger import AccountKind
from .models import (
    LedgerAccount,
    Payout,
    PayoutRun,
    PayoutStatus,
    TxKind,
)
from .posting import audit_log_record, ledger_account, ledger_post, lock_money_of

OPEN_STATUSES = (PayoutStatus.PENDING, PayoutStatus.QUEUED, PayoutStatus.SUBMITTED)
# The worker accounts a payout's start moves money between (available -> in transit).
PAYOUT_KINDS = (AccountKind.WORKER_AVAILABLE, AccountKind.WORKER_IN_TRANSIT)


def _now() -> datetime:
    return timezone.now()


def payout_submit_enqueue(payout_id: int) -> None:
    from .tasks import payout_submit_task

    transaction.on_commit(lambda: payout_submit_task.delay(payout_id))


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
    # The worker's available and in-transit accounts, created and locked in the global order.
    lock_money_of(worker_ids=[worker.pk], currencies=[currency], worker_kinds=PAYOUT_KINDS)
    available = ledger_account(kind=AccountKind.WORKER_AVAILABLE, currency=currency, worker=worker)
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
        payout_submit_enqueue(payout.pk)
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
    from .posting import Posting, ledger_post_many

    # Every account the batch moves, created and locked in the global order up front
    # (``posting.lock_money_of``): the available rows used to be locked first and the
    # in-transit rows created and locked after them, outside that order.
    lock_money_of(worker_ids=worker_ids, currencies=[currency], worker_kinds=PAYOUT_KINDS)
    accounts = list(
        LedgerAccount.objects.filter(
            kind=AccountKind.WORKER_AVAILABLE,
            currency=currency,
            worker_id__in=worker_ids,
            balance__gte=max(1, settings.PAYOUT_MINIMUM),
        ).order_by("pk")
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
    in_transit = {
        a.worker_id: a
        for a in LedgerAccount.objects.filter(
            kind=AccountKind.WORKER_IN_TRANSIT,
            currency=currency,
            worker_id__in=[a.worker_id for a in todo],
        )
    }
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


def payouts_resume_queued() -> list[int]:
    """After ``balance.available``: try queued payouts again (each with its bumped key)."""
    ids = list(Payout.objects.filter(status=PayoutStatus.QUEUED).values_list("pk", flat=True))
    for pk in ids:
        payout_submit_enqueue(pk)
    return ids
