"""Jobs of any size: publishing and returning work cost the same number of queries whatever the
number of microtasks (streamed reads, batched writes), and stay correct across batches."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from payments import selectors as money
from tasks import claiming
from tasks.models import Slot
from tests.tasks.claim_fixtures import ready_job

pytestmark = pytest.mark.django_db


def _publish_queries(n: int) -> tuple[int, object]:
    job = ready_job(n=n, gold=2, overlap=3, price=40)
    with CaptureQueriesContext(connection) as ctx:
        claiming.job_publish(job=job, by=job.requester)
    return len(ctx.captured_queries), job


def test_publishing_costs_the_same_queries_for_10_or_300_microtasks():
    small, _ = _publish_queries(10)
    large, job = _publish_queries(300)
    assert small == large
    assert Slot.objects.filter(job=job, is_gold=False).count() == 900


def test_publishing_in_batches_creates_and_reserves_every_slot(monkeypatch):
    monkeypatch.setattr(claiming, "FILL_BATCH", 7)  # many batches of a small job
    job = ready_job(n=25, gold=3, overlap=3, price=40, gold_rate=0.1)
    fill = claiming.job_publish(job=job, by=job.requester)
    slots = Slot.objects.filter(job=job)
    assert (fill.regular_slots, slots.filter(is_gold=False).count()) == (75, 75)
    per_microtask = {}
    for mt, number in slots.filter(is_gold=False).values_list("microtask_id", "number"):
        per_microtask.setdefault(mt, []).append(number)
    assert len(per_microtask) == 25
    assert all(sorted(numbers) == [0, 1, 2] for numbers in per_microtask.values())
    assert slots.filter(is_gold=True).count() == fill.gold_slots > 0
    reserved = slots.aggregate(s=Sum("reserved_amount"))["s"]
    assert fill.reserved == reserved == money.escrow_balance(job=job).reserved


def test_publishing_beyond_the_budget_funds_whole_microtasks_in_order(monkeypatch):
    monkeypatch.setattr(claiming, "FILL_BATCH", 4)
    probe = ready_job(n=1, overlap=3, price=40)
    per_microtask = 3 * claiming.budget.reservation_pricer()(probe.microtasks.get())
    job = ready_job(n=20, overlap=3, price=40, budget=per_microtask * 9 + 1)
    fill = claiming.job_publish(job=job, by=job.requester)
    assert (fill.regular_slots, fill.uncovered_microtasks) == (27, 11)
    funded = set(Slot.objects.filter(job=job).values_list("microtask__index", flat=True))
    assert funded == set(range(9))


def test_returning_work_costs_the_same_queries_for_10_or_300_microtasks():
    counts = []
    for n in (10, 300):
        job = ready_job(n=n, overlap=3, price=40)
        claiming.job_publish(job=job, by=job.requester)
        with CaptureQueriesContext(connection) as ctx:
            released = claiming.job_return_work(job=job)
        counts.append(len(ctx.captured_queries))
        assert not Slot.objects.filter(job=job).exists()
        assert released > 0 and money.escrow_balance(job=job).reserved == 0
    assert counts[0] == counts[1]
