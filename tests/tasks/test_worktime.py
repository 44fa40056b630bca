"""The crediting rule of ``tasks.worktime`` (invariant 9), as pure computation: whatever a worker
claims, reports and ends, in any order, the active time credited across all their claims never
exceeds the union of their claim intervals; honest work is credited in full."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks import worktime
from tasks.worktime import Claim


def test_busy_periods_merge_overlapping_and_touching_spans():
    assert worktime.busy_periods([(5, 7), (0, 2), (1, 3), (3, 4), (9, 9)]) == [
        (0, 4),
        (5, 7),
        (9, 9),
    ]
    assert worktime.union_seconds([(0, 10), (2, 5), (20, 25)]) == 15


def test_one_claim_is_credited_what_it_reports_up_to_its_age():
    c = worktime.credit([], key=1, start=100, now=160, reported=45)
    assert (c.credited, c.excess, c.limit) == (45, 0, 60)
    c = worktime.credit([], key=1, start=100, now=160, reported=600)
    assert (c.credited, c.excess) == (60, 540)


def test_parallel_claims_share_one_wall_clock():
    """The finding: four claims held over the same 217 s, each reporting 216 s."""
    claims: list[Claim] = []
    total = 0.0
    for key in range(4):
        c = worktime.credit(claims, key=key, start=0, now=217, reported=216)
        claims.append(Claim(key, 0, 217, c.credited, live=False))
        total += c.credited
    assert total <= 217
    assert [round(c.credited) for c in claims] == [216, 1, 0, 0]


def test_a_live_claim_counts_only_until_it_was_last_seen():
    # Claim 1 held open since 0 and never worked on; claim 2 from 100 to 160.
    idle = Claim(1, start=0, end=0, credited=0, live=True)
    c = worktime.credit([idle], key=2, start=100, now=160, reported=500)
    assert c.wall_clock == 60
    assert c.credited == 60
    # The idle claim keeps the period start from moving past it: it may still be credited.
    assert c.period_start == 0


def test_the_period_start_moves_past_finished_periods():
    done = Claim(1, start=0, end=50, credited=40, live=False)
    c = worktime.credit([done], key=2, start=100, now=130, reported=30)
    assert (c.credited, c.others, c.period_start) == (30, 0, 100)


def test_a_lower_report_never_takes_back_credit():
    c = worktime.credit([], key=1, start=0, now=100, reported=10, previous=80)
    assert c.credited == 80
    assert c.excess == 0


def test_honest_sequential_work_on_parallel_claims_is_credited_in_full():
    """Two claims taken together, worked one after the other, each reporting its own share."""
    first = worktime.credit([], key=1, start=0, now=100, reported=95)
    a = Claim(1, 0, 100, first.credited, live=False)
    second = worktime.credit([a], key=2, start=1, now=200, reported=98)
    assert (first.credited, second.credited) == (95, 98)
    assert first.excess == second.excess == 0


def test_the_period_start_waits_for_claims_still_on_their_way():
    """A claim stamped at 100 whose row appears after a credit at 101 read the worker's claims:
    that credit must not move the period start past 100, or the late claim's own credits would
    read too little."""
    c = worktime.credit([], key=2, start=100.5, now=101, reported=0.5, settled=101 - 900)
    assert c.period_start <= 100
    # Settled long ago: the period start moves up to the margin, no further.
    old = Claim(1, start=0, end=10, credited=10, live=False)
    c = worktime.credit([old], key=2, start=5000, now=5100, reported=60, settled=5100 - 900)
    assert c.period_start == 4200


# --- property: the invariant under any sequence of events -------------------------------------

LATE = 5.0  # longest a claim's row may appear after its timestamp, in this model
SETTLED_AFTER = 50.0  # crediting's margin (tasks.crediting.SETTLED_AFTER), longer than LATE

events = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.floats(0, 400) | st.floats(0, 3)),
        st.tuples(st.just("claim"), st.just(0)),
        # A claim whose row appears only now, stamped up to LATE seconds ago (its statement
        # committed after credits that could not see it).
        st.tuples(st.just("late_claim"), st.floats(0, LATE)),
        st.tuples(
            st.just("credit"),
            st.integers(0, 20),
            st.floats(0, 10_000),
            st.booleans(),
        ),
        st.tuples(st.just("end"), st.integers(0, 20)),
    ),
    max_size=60,
)


@settings(max_examples=600, deadline=None)
@given(events)
def test_credited_never_exceeds_the_union_of_claim_intervals(script):
    t = 0.0
    period_start = 0.0
    rows: dict[int, dict] = {}

    def live_keys() -> list[int]:
        return sorted(k for k, r in rows.items() if r["end"] is None)

    for event in script:
        kind = event[0]
        if kind == "advance":
            t += event[1]
        elif kind in ("claim", "late_claim"):
            start = t if kind == "claim" else max(0.0, t - event[1])
            rows[len(rows)] = {"start": start, "end": None, "seen": start, "credited": 0.0}
        elif kind in ("credit", "end"):
            live = live_keys()
            if not live:
                continue
            key = live[event[1] % len(live)]
            row = rows[key]
            if kind == "credit":
                # Only what the worker's clock lets a credit read: claims since the period start.
                seen = [
                    Claim(
                        k,
                        r["start"],
                        r["seen"] if r["end"] is None else r["end"],
                        r["credited"],
                        r["end"] is None,
                    )
                    for k, r in rows.items()
                    if r["start"] >= period_start
                ]
                assert key in {c.key for c in seen}, "a live claim fell before the period start"
                c = worktime.credit(
                    seen,
                    key=key,
                    start=row["start"],
                    now=t,
                    reported=event[2],
                    previous=row["credited"],
                    settled=t - SETTLED_AFTER,
                )
                row["credited"] = c.credited
                row["seen"] = t
                period_start = c.period_start
                assert c.credited <= t - row["start"] + 1e-9
                if event[3]:
                    row["end"] = t
            else:
                row["end"] = t
        wall = worktime.union_seconds(
            (r["start"], t if r["end"] is None else r["end"]) for r in rows.values()
        )
        assert sum(r["credited"] for r in rows.values()) <= wall + 1e-6


def _reference_credit(claims, *, key, start, now, reported, previous, settled):
    """The rule as the module docstring states it, written plainly (the one-sweep
    implementation must agree with it, up to the order in which credits are summed)."""
    start = min(start, now)
    settled = min(settled, now)
    others = [c for c in claims if c.key != key]
    spans = [(min(c.start, now), min(max(c.end, c.start), now)) for c in others]
    periods = worktime.busy_periods([*spans, (start, now)])
    period = periods[-1]
    members = [c for c, (s, _e) in zip(others, spans, strict=True) if s >= period[0]]
    others_credit = sum(max(0.0, c.credited) for c in members)
    wall = period[1] - period[0]
    limit = max(0.0, min(now - start, wall - others_credit))
    credited = max(max(0.0, previous), min(max(0.0, reported), limit))
    recent = next(p for p, end in periods if end >= settled)
    period_start = min([settled, recent, *(c.start for c in others if c.live)])
    return credited, wall, others_credit, period_start


times = st.floats(-1_000, 1_000, allow_nan=False).map(lambda x: round(x, 3))
claim_rows = st.lists(
    st.tuples(st.integers(0, 12), times, times, st.floats(-5, 500), st.booleans()), max_size=25
)


@settings(max_examples=800, deadline=None)
@given(claim_rows, st.integers(0, 12), times, times, st.floats(0, 900), st.floats(0, 50), times)
def test_the_one_sweep_credit_agrees_with_the_rule_written_plainly(
    rows, key, start, now, reported, previous, settled
):
    claims = [Claim(*r) for r in rows]
    c = worktime.credit(
        claims,
        key=key,
        start=start,
        now=now,
        reported=reported,
        previous=previous,
        settled=settled,
    )
    expected = _reference_credit(
        claims,
        key=key,
        start=start,
        now=now,
        reported=reported,
        previous=previous,
        settled=settled,
    )
    assert (c.wall_clock, c.period_start) == (expected[1], expected[3])
    assert (c.credited, c.others) == pytest.approx((expected[0], expected[2]), rel=1e-12, abs=1e-9)
