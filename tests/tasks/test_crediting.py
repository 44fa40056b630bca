"""``tasks.crediting``'s read of a worker's claims: times as seconds from the instant credited,
exact to the microsecond on both paths (PostgreSQL's statement and the portable one)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tasks import claiming, crediting, portable
from tasks.models import Assignment
from tests.tasks.claim_fixtures import published_job, qualified_worker

pytestmark = pytest.mark.django_db


def test_the_view_gives_claim_times_in_exact_seconds_from_now(monkeypatch):
    published_job(n=3)
    w = qualified_worker()
    ids = [claiming.assignment_claim(worker=w).pk for _ in range(3)]
    # Awkward microseconds, up to days back: a float of seconds must still map back exactly.
    now = Assignment.objects.get(pk=ids[0]).claimed_at + timedelta(microseconds=7)
    for k, pk in enumerate(ids):
        Assignment.objects.filter(pk=pk).update(
            claimed_at=now - timedelta(days=k * 3, seconds=k * 7, microseconds=123_457 * k + 1),
            heartbeat_at=now - timedelta(microseconds=999_999 - k),
        )
    crediting.read(worker_id=w.pk, now=now)  # creates the clock
    view = crediting.read(worker_id=w.pk, now=now)
    expected = {}
    for a in Assignment.objects.filter(pk__in=ids):
        start = crediting.rel(a.claimed_at, now)
        end = crediting.rel(max(a.claimed_at, a.heartbeat_at), now)
        expected[a.pk] = (start, end)
        assert crediting.at_rel(start, now) == a.claimed_at
    assert {r[0]: (r[1], r[2]) for r in view.rows} == expected
    # The portable path (SQLite) reads the same view.
    monkeypatch.setattr(crediting, "native", lambda: False)
    portable_view = crediting.read(worker_id=w.pk, now=now)
    assert sorted(portable_view.rows) == sorted(view.rows)
    assert portable.credit_view(worker_id=w.pk)  # the portable statement saw the claims too


def test_a_credit_decided_on_a_view_read_for_another_instant_is_refused():
    published_job(n=1)
    w = qualified_worker()
    a = claiming.assignment_claim(worker=w)
    view = crediting.read(worker_id=w.pk, now=a.claimed_at)
    with pytest.raises(ValueError):
        crediting.decide(view, assignment=a, now=a.claimed_at + timedelta(seconds=1), reported=1)
