"""When a job will be finished, from how fast its work has been coming in. Pure: no Django.

The rule (shown on the requester's job page, tested in ``tests/tasks/test_forecast.py``):

- the unit of work is one replica of a microtask: a job has ``target`` of them (the sum of its
  ordinary microtasks' replica targets) and ``done`` of them in (submitted or approved work,
  a microtask settled by consensus or review counting whole);
- the rate is the replicas submitted within the last :data:`WINDOW` (or since the job was
  published, when that is more recent), divided by that span;
- the finish is ``now + remaining / rate``;
- no estimate (``None``) while fewer than :data:`MIN_SAMPLES` replicas came in within the window,
  or the span is under :data:`MIN_SPAN`: a rate from one or two submissions, or from a minute of
  work, would swing wildly. A job with nothing remaining is finished now.

The window is recent on purpose: a job's pace changes (a paused week, a surge of workers), and
what matters to a requester is how long the rest takes at today's pace.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

WINDOW = timedelta(hours=24)
MIN_SPAN = timedelta(minutes=10)
MIN_SAMPLES = 3


@dataclass(frozen=True)
class Forecast:
    """An estimate (``finish`` None: not enough recent work to tell, said in ``why``)."""

    finish: datetime | None
    per_hour: float
    remaining: int
    why: str


def window_start(*, now: datetime, published_at: datetime | None) -> datetime:
    """Where the rate's window begins: :data:`WINDOW` ago, or at publishing if later."""
    start = now - WINDOW
    return max(start, published_at) if published_at is not None else start


def estimate_finish(
    *, remaining: int, completed_recently: int, since: datetime, now: datetime
) -> Forecast:
    """The finish of ``remaining`` replicas at the pace of ``completed_recently`` of them since
    ``since`` (see the module for the rule)."""
    remaining = max(int(remaining), 0)
    span = now - since
    per_hour = completed_recently / (span.total_seconds() / 3600) if span > timedelta(0) else 0.0
    if remaining == 0:
        return Forecast(now, per_hour, 0, "all work is in")
    if completed_recently < MIN_SAMPLES or span < MIN_SPAN:
        return Forecast(
            None,
            per_hour,
            remaining,
            f"too little recent work to estimate (at least {MIN_SAMPLES} submissions over "
            f"{int(MIN_SPAN.total_seconds() // 60)} minutes are needed)",
        )
    seconds = remaining / completed_recently * span.total_seconds()
    return Forecast(
        now + timedelta(seconds=seconds),
        per_hour,
        remaining,
        f"at {per_hour:.1f} submissions an hour (the last {_hours(span)})",
    )


def _hours(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:.1f} hours" if hours < 10 else f"{hours:.0f} hours"
