"""The claim path through ``tasks.portable`` (the ORM statements the embedded SQLite mode uses).

The suite runs on PostgreSQL; here the native statements are switched off so the same services
go through the portable ones, and must behave the same. ``tests/marketplace/test_embedded.py``
runs them on SQLite itself.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from marketplace.errors import NothingAvailable
from tasks import claiming
from tasks.models import Assignment, AssignmentStatus, Slot, Submission
from tests.tasks.claim_fixtures import published_job, qualified_worker

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def portable_statements(monkeypatch):
    monkeypatch.setattr("tasks.work_selectors.native", lambda: False)
    monkeypatch.setattr("tasks.claiming.native", lambda: False)


def test_claims_fill_each_slot_once_and_never_twice_per_worker():
    job = published_job(n=2, overlap=2, gold_rate=0.0)
    workers = [qualified_worker() for _ in range(3)]
    claimed = []
    for w in workers:
        for _ in range(2):
            try:
                claimed.append(claiming.assignment_claim(worker=w))
            except NothingAvailable:
                break
    assert len(claimed) == 4  # 2 microtasks x 2 replicas
    pairs = {(a.microtask_id, a.worker_id) for a in claimed}
    assert len(pairs) == 4
    assert not Slot.objects.filter(job=job, assignment__isnull=True).exists()
    assert {a.microtask.job_id for a in claimed} == {job.pk}
    with pytest.raises(NothingAvailable):
        claiming.assignment_claim(worker=workers[2])


def test_submit_stores_and_expiry_frees_the_slot():
    published_job(n=1, overlap=2, gold_rate=0.0)
    first, second = qualified_worker(), qualified_worker()
    a = claiming.assignment_claim(worker=first)
    claiming.assignment_submit(worker=first, assignment_id=a.pk, payload={"boxes": []})
    assert Submission.objects.filter(assignment=a).exists()
    assert Assignment.objects.get(pk=a.pk).status in (
        AssignmentStatus.SUBMITTED,
        AssignmentStatus.APPROVED,
    )

    b = claiming.assignment_claim(worker=second)
    Assignment.objects.filter(pk=b.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    assert claiming.assignments_expire_overdue() == 1
    assert Assignment.objects.get(pk=b.pk).status == AssignmentStatus.EXPIRED
    assert Slot.objects.filter(assignment__isnull=True).count() == 1
    with pytest.raises(claiming.ClaimExpired):
        claiming.assignment_submit(worker=second, assignment_id=b.pk, payload={"boxes": []})


def test_the_claim_cap_and_credited_time_hold_through_the_portable_statements(
    settings, monkeypatch
):
    settings.CLAIM_MAX_CONCURRENT = 2
    published_job(n=4, overlap=1, gold_rate=0.0)
    worker = qualified_worker()
    t0 = timezone.now()
    monkeypatch.setattr(claiming, "_now", lambda: t0)
    a = claiming.assignment_claim(worker=worker)
    b = claiming.assignment_claim(worker=worker)
    assert {a.claim_seat, b.claim_seat} == {1, 2}
    with pytest.raises(claiming.ClaimLimitReached):
        claiming.assignment_claim(worker=worker)
    # Both claims report the whole minute they were held: only one minute is credited.
    monkeypatch.setattr(claiming, "_now", lambda: t0 + timedelta(seconds=60))
    claiming.assignment_heartbeat(worker=worker, assignment_id=a.pk, active_seconds=60)
    claiming.assignment_submit(
        worker=worker, assignment_id=b.pk, payload={"boxes": []}, active_seconds=60
    )
    credited = [Assignment.objects.get(pk=x.pk).active_seconds for x in (a, b)]
    assert credited == [60, 0]
    # The seat of the submitted claim is free again.
    assert claiming.assignment_claim(worker=worker).claim_seat == b.claim_seat
