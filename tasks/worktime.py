"""Credited work time: the active time credited to a worker across all their claims never exceeds
their wall-clock time, the measure of the union of their claim intervals (DESIGN invariant 9).
Pure: times are seconds on any common clock.

Read this before changing anything: pay's fair-pay floor is measured on what this credits.

**The rule.** A worker's claims are intervals ``[claimed, ended]`` on one timeline. Overlapping
intervals form *busy periods*; a busy period has no gaps, so its wall-clock time is its length,
and the union of all claims is the sum of the busy periods' lengths. Whenever a claim's active
time is credited (a heartbeat or the submission reports it), the claim is credited

    max(previous, min(reported, own elapsed, busy period - credited to the period's other claims))

where the busy period is the one the claim is in, up to now (the claim is live, so it ends now).
So every busy period holds at most its own length in credits, and the total at most the union.

**Why it stays true between credits.** Intervals only grow (a live claim's end moves forward;
it then ends at submission, release or expiry, never earlier than it was last seen), and a new
claim starts with nothing credited. Growing intervals can merge busy periods but never split
one, and a merged period is at least as long as the periods it joined; so a state that keeps the
rule keeps it until the next credit, which re-checks its own period. This also makes it safe to
compute a credit from a slightly old read of the *intervals* (they only looked shorter); a stale
read of the *credits* is what ``tasks.crediting`` refuses.

**Conservative ends.** A claim that is still live (not the one being credited) counts as ending
when it was last seen working (its claim time or last heartbeat), not "now": a worker gets
nothing for a claim merely held open. An expired claim ends at its deadline at the latest.

**Period start.** A credit reads only the worker's claims since their clock's period start, a
handful of rows rather than a history. The period start may move past a claim only once that
claim can never matter again: it has ended, and so has its whole busy period, before ``settled``
(a margin before now). A claim whose row a credit could not yet see (its statement had not
committed) started at most a few moments ago, after ``settled``: such a claim can overlap none
of the claims left behind, so no busy period a later credit computes is missing a part.
:attr:`Credit.period_start` is therefore the earliest of ``settled``, the start of every live
claim and the start of the first busy period that ends after ``settled``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple


class Claim(NamedTuple):
    """One of the worker's claims as a credit sees it (a named tuple: a credit reads hundreds)."""

    key: int
    start: float
    end: float  # conservative end (see the module docstring)
    credited: float
    live: bool  # still claimed: its end may still grow and it may be credited again


@dataclass(frozen=True)
class Credit:
    """The outcome of crediting one claim."""

    credited: float  # the claim's new credited active time
    reported: float
    elapsed: float  # the claim's own age
    wall_clock: float  # length of its busy period up to now
    others: float  # credited to the other claims of that busy period
    period_start: float  # the worker clock's new period start

    @property
    def limit(self) -> float:
        """The most this claim could be credited now."""
        return max(0.0, min(self.elapsed, self.wall_clock - self.others))

    @property
    def excess(self) -> float:
        """Reported time that could not be credited."""
        return max(0.0, self.reported - self.credited)


def _span_start(span: tuple[float, float, float | None]) -> float:
    return span[0]


def busy_periods(spans: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """The union of ``(start, end)`` spans as disjoint ``(start, end)`` periods, in time order."""
    out: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        end = max(start, end)
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def union_seconds(spans: Iterable[tuple[float, float]]) -> float:
    """Measure of the union of ``spans``."""
    return sum(end - start for start, end in busy_periods(spans))


def credit(
    claims: Iterable[Claim],
    *,
    key: int,
    start: float,
    now: float,
    reported: float,
    previous: float = 0.0,
    settled: float | None = None,
) -> Credit:
    """Credit claim ``key`` (started at ``start``, live at ``now``) with ``reported`` seconds,
    given the worker's ``claims`` since their clock's period start (``key`` among them or not;
    its row there is ignored: it ends now and ``previous`` is what it holds). ``settled``: the
    time before which nothing new can appear (default ``now``; see the module docstring)."""
    start = min(start, now)
    settled = now if settled is None else min(settled, now)
    elapsed = now - start
    # One pass over the claims, one sort, one sweep: a credit reads hundreds of claims on every
    # submission. Each span as (start, end, credited); the credited claim's own has no credit.
    spans: list[tuple[float, float, float | None]] = [(start, now, None)]
    earliest_live = settled
    for c in claims:
        if c.key == key:
            continue
        s = c.start if c.start < now else now
        e = c.end if c.end > c.start else c.start
        spans.append((s, e if e < now else now, c.credited))
        if c.live and c.start < earliest_live:
            earliest_live = c.start
    spans.sort(key=_span_start)
    # Busy periods in time order (as :func:`busy_periods`); the credited claim ends now, after
    # every other, so its period is the last one. A claim that started inside that period
    # belongs to it; one that started before it ended before it (else it would start earlier).
    recent: float | None = None  # start of the first period that ends after ``settled``
    p_start, p_end, p_credit = spans[0][0], spans[0][1], 0.0
    for s, e, cr in spans:
        if s > p_end:
            if recent is None and p_end >= settled:
                recent = p_start
            p_start, p_end, p_credit = s, e, 0.0
        elif e > p_end:
            p_end = e
        if cr is not None and cr > 0.0:
            p_credit += cr
    if recent is None:
        recent = p_start
    others_credit = p_credit
    wall = p_end - p_start
    limit = max(0.0, min(elapsed, wall - others_credit))
    credited = max(max(0.0, previous), min(max(0.0, reported), limit))
    period_start = min(settled, recent, earliest_live)
    return Credit(
        credited=credited,
        reported=max(0.0, reported),
        elapsed=elapsed,
        wall_clock=wall,
        others=others_credit,
        period_start=period_start,
    )
