"""Every invariant of the design (``../shared/DESIGN.md``, *Invariants*) checked on the database's
final state: what a fault test calls last, whatever fault it injected.

One function, :func:`assert_invariants`, reads the state as it is (no knowledge of what the test
did) and fails with every violation it found: 1 (overlap, and issue #16's cap and no starved
replica), 2 and 3 (ledger and escrow), 4 (one transfer per payout, Stripe's side read from the
local Stripe server when given), 6 (events applied once), 8 (escrow credited as Stripe
confirmed), 9 (credited time within wall-clock time) and 10 as far as the state shows it (no
claim after a suspension). 7 (no 5xx) is checked on the responses the test passes in. 5 (gold
answers never reach a worker) is a property of responses, proved by ``tests/security`` and
``tests/quality``, not of stored state.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from marketplace.models import JobStatus
from payments.ledger import AccountKind
from payments.models import (
    Funding,
    FundingStatus,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Payout,
    StripeEvent,
    TxKind,
)
from tasks.models import (
    LIVE_OR_FINISHED,
    Assignment,
    AssignmentStatus,
    MicroTask,
    MicroTaskStatus,
    Slot,
)


def _overlap(problems: list[str]) -> None:
    """1. No microtask has more live or finished assignments (or slots) than its replica target,
    no target is above its job's ``overlap_max``, no worker holds two assignments of one."""
    over = (
        MicroTask.objects.filter(is_gold=False)
        .annotate(
            live=Count("assignments", filter=Q(assignments__status__in=LIVE_OR_FINISHED)),
        )
        .filter(live__gt=F("replica_target"))
        .values_list("pk", "live", "replica_target")
    )
    problems += [f"microtask {pk}: {n} assignments > target {t}" for pk, n, t in over]
    slots = (
        MicroTask.objects.filter(is_gold=False)
        .annotate(n=Count("slots"))
        .filter(n__gt=F("replica_target"))
        .values_list("pk", "n", "replica_target")
    )
    problems += [f"microtask {pk}: {n} slots > target {t}" for pk, n, t in slots]
    capped = MicroTask.objects.filter(is_gold=False, replica_target__gt=F("job__overlap_max"))
    problems += [
        f"microtask {pk}: target {t} > overlap_max {m}"
        for pk, t, m in capped.values_list("pk", "replica_target", "job__overlap_max")
    ]
    # Issue #16: a raised target gets its slot or goes to review; no work waits forever for a
    # replica nobody funds (a microtask with no slot at all is new work waiting for funding).
    starved = (
        MicroTask.objects.filter(
            is_gold=False,
            status=MicroTaskStatus.OPEN,
            job__status__in=(JobStatus.PUBLISHED, JobStatus.PAUSED),
        )
        .annotate(n=Count("slots"))
        .filter(n__gt=0, n__lt=F("replica_target"))
        .values_list("pk", "n", "replica_target")
    )
    problems += [f"microtask {pk}: open with {n} slots < target {t}" for pk, n, t in starved]
    twice = (
        Assignment.objects.values("microtask_id", "worker_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    problems += [f"worker holds two assignments of one microtask: {row}" for row in twice]
    shared = (
        Assignment.objects.filter(status__in=LIVE_OR_FINISHED, slot__isnull=False)
        .values("slot_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    problems += [f"slot held twice: {row}" for row in shared]
    dangling = Slot.objects.filter(assignment__isnull=False).exclude(
        assignment__status__in=LIVE_OR_FINISHED
    )
    problems += [f"slot {pk} points at an ended assignment" for pk in dangling.values_list("pk")]


def _ledger(problems: list[str]) -> None:
    """3. Every transaction balances to zero, every cached balance is the sum of its entries;
    2. no job's committed spend exceeds its escrow (no job or worker account below zero)."""
    unbalanced = (
        LedgerTransaction.objects.annotate(total=Sum("entries__amount"))
        .exclude(total=0)
        .values_list("key", "total")
    )
    problems += [f"transaction {k} sums to {t}" for k, t in unbalanced]
    empty = LedgerTransaction.objects.filter(entries__isnull=True).values_list("key", flat=True)
    problems += [f"transaction {k} has no entries" for k in empty]
    total = LedgerEntry.objects.aggregate(s=Sum("amount"))["s"] or 0
    if total:
        problems.append(f"the ledger's entries sum to {total}")
    sums = dict(
        LedgerEntry.objects.values_list("account_id")
        .annotate(s=Sum("amount"))
        .values_list("account_id", "s")
    )
    for acc in LedgerAccount.objects.all():
        entries = int(sums.get(acc.pk) or 0)
        if acc.kind in AccountKind.CACHED_KINDS and acc.balance != entries:
            problems.append(f"{acc}: cached balance {acc.balance} != entries {entries}")
        if acc.kind in AccountKind.NON_NEGATIVE and entries < 0:
            problems.append(f"{acc}: negative balance {entries}")


def _payouts(problems: list[str], stripe_server) -> None:
    """4. A payout creates at most one Stripe transfer; a transfer id belongs to one payout; the
    ledger moved each payout's money once."""
    dup = (
        Payout.objects.exclude(stripe_transfer_id="")
        .values("stripe_transfer_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    problems += [f"transfer shared by payouts: {row}" for row in dup]
    if stripe_server is not None:
        per_payout: dict[str, int] = defaultdict(int)
        with stripe_server.state.lock:
            transfers = list(stripe_server.state.transfers.values())
        for t in transfers:
            pid = (t.get("metadata") or {}).get("payout_id")
            if pid:
                per_payout[pid] += 1
        problems += [f"payout {p}: {n} Stripe transfers" for p, n in per_payout.items() if n > 1]
        known = {str(p) for p in Payout.objects.values_list("pk", flat=True)}
        problems += [f"transfer for unknown payout {p}" for p in per_payout if p not in known]
        for p in Payout.objects.exclude(stripe_transfer_id=""):
            if per_payout.get(str(p.pk), 0) != 1:
                problems.append(f"payout {p.pk} names a transfer Stripe does not have once")
    keys = (
        LedgerTransaction.objects.filter(payout__isnull=False, kind=TxKind.PAYOUT)
        .values("payout_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    problems += [f"payout moved twice in the ledger: {row}" for row in keys]


def _webhooks_and_funding(problems: list[str]) -> None:
    """6. An event is applied at most once (one row per Stripe id); 8. escrow is credited only
    for fundings Stripe confirmed, with their amount."""
    dup = StripeEvent.objects.values("stripe_event_id").annotate(n=Count("id")).filter(n__gt=1)
    problems += [f"event stored twice: {row}" for row in dup]
    credited = dict(
        LedgerEntry.objects.filter(
            transaction__kind=TxKind.FUND, account__kind=AccountKind.JOB_ESCROW
        )
        .values_list("transaction__job_id")
        .annotate(s=Sum("amount"))
        .values_list("transaction__job_id", "s")
    )
    stripe_funded = dict(
        Funding.objects.filter(status=FundingStatus.SUCCEEDED)
        .exclude(stripe_payment_intent_id="")
        .values_list("job_id")
        .annotate(s=Sum("amount"))
        .values_list("job_id", "s")
    )
    for job_id, amount in stripe_funded.items():
        if credited.get(job_id, 0) < amount:
            problems.append(f"job {job_id}: Stripe confirmed {amount}, credited less")


def _union_seconds(intervals: Iterable[tuple[datetime, datetime]]) -> float:
    total, end = 0.0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            total += (stop - start).total_seconds()
            end = stop
        elif stop > end:
            total += (stop - end).total_seconds()
            end = stop
    return total


def _worktime(problems: list[str]) -> None:
    """9. Active time credited to a worker never exceeds their wall-clock time in claims."""
    now = timezone.now()
    by_worker: dict[int, list] = defaultdict(list)
    credited: dict[int, float] = defaultdict(float)
    for worker_id, claimed, submitted, ended, seconds in Assignment.objects.values_list(
        "worker_id", "claimed_at", "submitted_at", "ended_at", "active_seconds"
    ):
        by_worker[worker_id].append((claimed, submitted or ended or now))
        credited[worker_id] += float(seconds or 0.0)
    for worker_id, intervals in by_worker.items():
        wall = _union_seconds(intervals)
        if credited[worker_id] > wall + 1e-3:
            problems.append(f"worker {worker_id}: {credited[worker_id]:.1f} s > {wall:.1f} s")


def _suspensions(problems: list[str]) -> None:
    """10 (as the state shows it): a worker suspended from a type holds no new live claim of it."""
    from quality.models import WorkerTrust

    for worker_id, annotation_type, updated in WorkerTrust.objects.filter(
        suspended=True
    ).values_list("worker_id", "annotation_type", "updated_at"):
        late = Assignment.objects.filter(
            worker_id=worker_id,
            status=AssignmentStatus.CLAIMED,
            microtask__job__annotation_type=annotation_type,
            claimed_at__gt=updated,
        )
        if late.exists():
            problems.append(f"suspended worker {worker_id} claimed {annotation_type} work")
    # 1 (issue #16): a suspension's extra replicas were added, not lost to a crash after it.
    for worker_id, annotation_type in WorkerTrust.objects.filter(replicas_owed=True).values_list(
        "worker_id", "annotation_type"
    ):
        problems.append(f"suspended worker {worker_id}: {annotation_type} replicas never added")


def invariant_problems(*, stripe_server=None, responses: Iterable = ()) -> list[str]:
    """Every violation found in the current state (empty when all invariants hold)."""
    problems: list[str] = []
    _overlap(problems)
    _ledger(problems)
    _payouts(problems, stripe_server)
    _webhooks_and_funding(problems)
    _worktime(problems)
    _suspensions(problems)
    for r in responses:  # 7. no input produces a 5xx (503 "retry" is a client instruction)
        status = getattr(r, "status_code", r)
        if status >= 500 and status != 503:
            problems.append(f"a request got {status}")
    return problems


def assert_invariants(*, stripe_server=None, responses: Iterable = ()) -> None:
    problems = invariant_problems(stripe_server=stripe_server, responses=responses)
    assert problems == [], "\n".join(problems)
