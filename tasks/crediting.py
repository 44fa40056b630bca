"""Crediting a worker's active time under concurrency. The rule is ``tasks.worktime``'s (read it
first); this module makes it hold whatever requests of one worker run at the same time.
Read this before changing anything: pay's fair-pay floor is measured on what it credits.

1. **One serialisation point per worker.** Every credit of a worker's time (a heartbeat or a
   submission that reports active seconds) moves the worker's ``WorkerClock`` row to its next
   version, and is written only in the same statement or transaction that moves it from the
   version its computation read. So two credits of one worker never both pass on the same view.
2. **One snapshot per computation.** A credit reads the clock and the worker's claims since the
   clock's period start in one statement (``claiming.sql``: ``credit_view``). The credits it sees
   are therefore exactly those as of the version it read; if another credit committed since,
   the version moved, the write does nothing, and the credit is recomputed from a fresh read.
3. **Everything else may race.** A claim, release, expiry, or a heartbeat or submission that
   reports no time does not move the version: it only adds an uncredited claim or lets a claim's
   interval grow, which can only make the wall-clock time larger than the read said (the rule's
   argument, ``tasks.worktime``). So the claim path never touches the clock. A claim committed
   after a credit's read was stamped moments before it at most; the period start that credit
   writes stays ``SETTLED_AFTER`` behind, so later credits read that claim's neighbours too.
4. **One lock order.** Every path that takes both locks the clock row before the assignment row
   (the heartbeat takes the clock's lock first; ``submit_credited`` updates the clock before the
   assignment), so two credits cannot deadlock.

Optimistic by default (a submission costs one extra indexed read, ``credit_view``; the clock's
update is folded into the submit statement); a credit that loses the race
``OPTIMISTIC_ATTEMPTS`` times takes the clock row's lock, under which it cannot lose again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import F

from marketplace.errors import Conflict
from marketplace.sql import fetch_prepared, native, statement

from . import portable, signals, worktime
from .models import Assignment, WorkerClock

OPTIMISTIC_ATTEMPTS = 2
# How far back a credit keeps reading claims that have ended (``tasks.worktime``: ``settled``):
# far beyond the moments between a claim's timestamp and its commit, and clock skew between
# web processes, and short enough that a credit reads a handful of rows.
SETTLED_AFTER = timedelta(minutes=15)
# A new clock reads the worker's whole history once; its first credit moves the period start up.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

T = TypeVar("T")


def tolerance() -> float:
    """Seconds a report may exceed what can be credited before it is a fraud signal (the page's
    own measure can run a little ahead: it counts up to 30 s after the last input as active)."""
    return float(settings.WORKTIME_REPORT_TOLERANCE_SECONDS)


@dataclass(frozen=True)
class View:
    """A worker's clock and claims since its period start, as of one snapshot; times of claims
    in seconds from ``now`` (the instant the view was read for)."""

    worker_id: int
    version: int
    period_start: datetime
    now: datetime
    rows: list[worktime.Claim]


def _rows(worker_id: int, now: datetime) -> list[tuple]:
    if native():
        params = {"worker_id": worker_id, "now": now}
        return fetch_prepared(statement("tasks/claiming.sql", "credit_view"), params, many=True)
    return [
        (rel(r[0], now), *r[1:3], *(None if t is None else rel(t, now) for t in r[3:5]), *r[5:])
        for r in portable.credit_view(worker_id=worker_id)
    ]


def rel(at: datetime, now: datetime) -> float:
    """``at`` as seconds from ``now``: small numbers, exact to the microsecond (:func:`at_rel`
    maps them back to the very datetime)."""
    return (at - now).total_seconds()


def at_rel(seconds: float, now: datetime) -> datetime:
    """The datetime ``seconds`` from ``now``: the inverse of :func:`rel` (exact within decades:
    a float's 53 bits hold the microseconds)."""
    return now + timedelta(microseconds=round(seconds * 1_000_000))


def read(*, worker_id: int, now: datetime) -> View:
    """The worker's :class:`View` as of ``now``, creating their clock on first use."""
    rows = _rows(worker_id, now)
    if not rows:
        WorkerClock.objects.bulk_create(
            [WorkerClock(worker_id=worker_id, period_start=EPOCH)], ignore_conflicts=True
        )
        rows = _rows(worker_id, now)
    period_start, version = at_rel(rows[0][0], now), rows[0][1]
    claims = [
        worktime.Claim(r[2], r[3], r[4], float(r[5]), bool(r[6])) for r in rows if r[2] is not None
    ]
    return View(worker_id, int(version), period_start, now, claims)


def lock(*, worker_id: int) -> None:
    """Take the worker's clock row lock for the rest of the caller's transaction."""
    mine = WorkerClock.objects.select_for_update().filter(worker_id=worker_id)
    if not list(mine.values_list("pk", flat=True)):
        WorkerClock.objects.bulk_create(
            [WorkerClock(worker_id=worker_id, period_start=EPOCH)], ignore_conflicts=True
        )
        list(mine.values_list("pk", flat=True))


@dataclass(frozen=True)
class Decision:
    """A computed credit and the clock position it moves to."""

    credit: worktime.Credit
    period_start: datetime
    version: int


def decide(view: View, *, assignment: Assignment, now: datetime, reported: float) -> Decision:
    """Credit ``assignment`` (live at ``now``, the instant ``view`` was read for) with
    ``reported`` seconds on ``view``."""
    if view.now != now:
        raise ValueError("a view is read for the instant it is decided at")
    previous = float(assignment.active_seconds or 0.0)
    for claim in view.rows:
        if claim.key == assignment.pk:
            previous = claim.credited  # as of this view, not as the caller loaded it
    c = worktime.credit(
        view.rows,
        key=assignment.pk,
        start=rel(assignment.claimed_at, now),
        now=0.0,
        reported=reported,
        previous=previous,
        settled=-SETTLED_AFTER.total_seconds(),
    )
    # The period start is one of the claims' starts, the credited claim's or ``settled``: each
    # maps back to its exact datetime.
    return Decision(c, at_rel(c.period_start, now), view.version)


def credit(
    *,
    assignment: Assignment,
    now: datetime,
    reported: float,
    write: Callable[[Decision], tuple[T, bool]],
    locked: bool = False,
) -> tuple[T, worktime.Credit]:
    """Compute the credit of ``assignment`` and have ``write`` store it at the clock version it
    was computed on; ``write`` returns (its result, whether the clock was still at that version).

    ``locked``: the caller holds the clock's lock (:func:`lock`), so the first write cannot lose.
    """
    worker_id = assignment.worker_id
    if not locked:
        for _attempt in range(OPTIMISTIC_ATTEMPTS):
            decision = decide(
                read(worker_id=worker_id, now=now),
                assignment=assignment,
                now=now,
                reported=reported,
            )
            result, written = write(decision)
            if written:
                return result, decision.credit
    with transaction.atomic():
        if not locked:
            lock(worker_id=worker_id)
        decision = decide(
            read(worker_id=worker_id, now=now), assignment=assignment, now=now, reported=reported
        )
        result, written = write(decision)
    if not written:  # only if something ignores the clock's lock
        raise Conflict("Your active time could not be recorded; try again.")
    return result, decision.credit


def advance(*, worker_id: int, decision: Decision) -> bool:
    """Move the worker's clock past ``decision``'s version (the heartbeat's write; the submit
    statement does the same in SQL). False: another credit moved it first."""
    return bool(
        WorkerClock.objects.filter(worker_id=worker_id, version=decision.version).update(
            version=F("version") + 1, period_start=decision.period_start
        )
    )


def report(*, assignment: Assignment, credit_: worktime.Credit, at: datetime) -> bool:
    """Send the fraud signal when ``credit_`` left more reported time uncredited than the
    tolerance; True when sent. The uncredited time is never paid either way."""
    if credit_.excess <= tolerance():
        return False
    signals.time_overreported.send(sender=Assignment, assignment=assignment, credit=credit_, at=at)
    return True
