"""Quotes price every microtask; fair pay holds on measured (simulated) work time."""

from __future__ import annotations

import random

from payments import escrow, pricing, work
from payments.selectors import active_policy, escrow_balance, slot_reservation_for
from tasks import paying, quoting
from tests.factories import AssignmentFactory, MicroTaskFactory, WorkerFactory
from tests.payments.conftest import assert_ledger_consistent, fund, reserved_assignment


def _microtasks(job, n=6, gold=1):
    rng = random.Random(3)
    for i in range(n + gold):
        MicroTaskFactory(
            video__job=job,
            job=job,
            price=0,
            motion=rng.uniform(0, 30),
            clutter=rng.uniform(0, 0.4),
            expected_objects=rng.randint(1, 6),
            is_gold=i >= n,
        )


def test_job_quote_prices_every_microtask_and_adds_up(job):
    _microtasks(job)
    q = quoting.job_prices_save(job=job)
    prices = list(job.microtasks.filter(is_gold=False).values_list("price", flat=True))
    assert all(p > 0 for p in job.microtasks.values_list("price", flat=True))
    assert q.microtasks == len(prices) == 6
    assert q.total == q.work + q.gold_overhead + q.platform_fee
    assert q.work == pricing.round_half_up(sum(prices) * pricing.Fraction(q.replicas))
    assert q.policy_version == active_policy().version


def test_funding_the_quote_covers_every_expected_slot(job):
    _microtasks(job, gold=0)
    q = quoting.job_prices_save(job=job)
    fund(job, q.fund_amount)
    for mt in job.microtasks.all():
        for replica in range(job.overlap_min):
            escrow.escrow_reserve(
                job=job, amount=slot_reservation_for(microtask=mt), key=f"{mt.pk}:{replica}"
            )
    assert escrow_balance(job=job).available >= 0


def test_requote_includes_measured_time(job):
    for objects in (2, 3, 4, 2, 3, 4, 2, 3):  # one complexity bucket, enough samples
        MicroTaskFactory(video__job=job, job=job, motion=10, clutter=0.1, expected_objects=objects)
    first = quoting.job_prices_save(job=job)
    fund(job, first.fund_amount * 3)
    policy = active_policy()
    # Work takes three times the model's estimate: once measured, the re-quote rises.
    microtasks = list(job.microtasks.all())
    for mt in microtasks:
        est = pricing.price_task(quoting.task_features(mt, job), policy=policy).expected_seconds
        slot = slot_reservation_for(microtask=mt)
        escrow.escrow_reserve(job=job, amount=slot, key=f"slot:{mt.pk}")
        a = AssignmentFactory(
            microtask=mt, reserved_amount=slot, active_seconds=min(3 * est, 1_700)
        )
        paying.assignment_pay(assignment=a)
    second = quoting.job_prices_save(job=job)
    assert second.microtasks == first.microtasks
    assert second.total > first.total
    assert second.expected_hours > first.expected_hours


def test_fair_pay_floor_holds_on_simulated_work_times(job):
    """Every accepted submission's pay over its measured time is at or above its floor."""
    work.pricing_policy_create(country_floors={"GB": 1_600, "AU": 2_000})
    policy = active_policy()
    fund(job, 5_000_000)
    rng = random.Random(11)
    countries = ["US", "GB", "AU", "IN", ""]
    checked = 0
    for i in range(60):
        worker = WorkerFactory(profile__country=countries[i % len(countries)])
        # Log-normal work times around two minutes, with slow outliers.
        seconds = min(rng.lognormvariate(4.8, 0.8), job.claim_time_limit.total_seconds())
        price = rng.randint(5, 120)
        a = reserved_assignment(job, worker=worker, price=price, active_seconds=seconds)
        credit = rng.choice([1.0, 1.0, 1.0, 0.6])
        pay = paying.assignment_pay(assignment=a, credit=credit)
        floor = policy.floor_for(worker.worker_profile.country)
        assert pay * 3600 >= floor * seconds * credit - 1e-6, (pay, seconds, floor)
        checked += 1
    assert checked == 60
    b = escrow_balance(job=job)
    assert b.funded == b.available + b.reserved + b.paid + b.fees
    assert_ledger_consistent()
