"""Reconciliation: list the transfers Stripe made and bring our payouts in line with them (a
payout whose answer was lost is confirmed, a lost submission resent with its key, anything
that cannot be explained becomes a ``ReconciliationIssue`` for an admin)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from marketplace.sql import native, statement

from . import stripe_gateway as gateway
from .ledger import AccountKind
from .models import (
    Payout,
    PayoutStatus,
    ReconciliationIssue,
    TxKind,
)
from .payouts import OPEN_STATUSES, payout_submit_enqueue
from .posting import ledger_account
from .transfers import record_transfer, reversal_sync


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
    since = timezone.now() - lookback
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
            payout_submit_enqueue(payout.pk)
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
            record_transfer(payout, oldest, confirmed=True)
        reversal_sync(payout, oldest)
        confirmed += int(payout.status == PayoutStatus.PAID and was != PayoutStatus.PAID)
    if fast:
        _confirm_many(fast)
    return confirmed + len(fast)


def _confirm_many(pairs: list[tuple[Payout, dict]]) -> None:
    """Mark plain confirmed payouts paid and settle their ledger, in a few statements."""
    from .posting import Posting, ledger_accounts_for_workers, ledger_post_many

    now = timezone.now()
    by_currency: dict[str, list[Payout]] = defaultdict(list)
    for payout, transfer in pairs:
        payout.stripe_transfer_id = transfer["id"]
        payout.submitted_at = payout.submitted_at or now
        payout.settled_at = now
        payout.status = PayoutStatus.PAID
        payout.last_error = ""
        payout.updated_at = now
        by_currency[payout.currency].append(payout)
    if native():
        with connection.cursor() as cur:
            cur.execute(
                statement("payments/payouts.sql", "confirm_many"),
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
