"""The escrow API of docs/money-contract.md: reserve, release, pay, unpaid, balances."""

from __future__ import annotations

from datetime import timedelta

import pytest

from marketplace.errors import Conflict
from payments import escrow, pricing, work
from payments.errors import IdempotencyConflict, InsufficientEscrow, InvalidAmount
from payments.models import EarningHold, LedgerTransaction
from payments.selectors import (
    DEFAULT_TRUST,
    active_policy,
    escrow_balance,
    slot_reservation_for,
    worker_balances,
)
from tasks import paying
from tests.factories import MicroTaskFactory, WorkerFactory
from tests.payments.conftest import assert_ledger_consistent, fund, reserved_assignment


def assert_escrow_adds_up(job):
    b = escrow_balance(job=job)
    assert b.funded == b.available + b.reserved + b.paid + b.fees
    assert b.committed <= b.funded


def test_funding_credits_available_escrow(job):
    fund(job, 2_500)
    b = escrow_balance(job=job)
    assert (b.funded, b.available, b.reserved, b.paid, b.fees) == (2_500, 2_500, 0, 0, 0)


def test_reserve_moves_available_to_reserved(funded_job):
    escrow.escrow_reserve(job=funded_job, amount=1_200, key="publish:1")
    b = escrow_balance(job=funded_job)
    assert (b.available, b.reserved) == (8_800, 1_200)
    assert_escrow_adds_up(funded_job)


def test_reserve_is_idempotent_on_its_key(funded_job):
    escrow.escrow_reserve(job=funded_job, amount=1_200, key="publish:1")
    escrow.escrow_reserve(job=funded_job, amount=1_200, key="publish:1")
    assert escrow_balance(job=funded_job).reserved == 1_200


def test_reserve_same_key_other_amount_is_refused(funded_job):
    escrow.escrow_reserve(job=funded_job, amount=1_200, key="publish:1")
    with pytest.raises(IdempotencyConflict):
        escrow.escrow_reserve(job=funded_job, amount=1_300, key="publish:1")
    assert escrow_balance(job=funded_job).reserved == 1_200


def test_reserve_beyond_available_raises_and_changes_nothing(funded_job):
    with pytest.raises(InsufficientEscrow) as err:
        escrow.escrow_reserve(job=funded_job, amount=10_001, key="publish:big")
    assert err.value.status_code == 409
    assert "has $100.00 of available escrow; $100.01 is needed" in err.value.message
    b = escrow_balance(job=funded_job)
    assert (b.available, b.reserved) == (10_000, 0)
    assert not LedgerTransaction.objects.filter(key="reserve:publish:big").exists()


@pytest.mark.parametrize("amount", [0, -5, 1.5, True])
def test_reserve_rejects_amounts_that_are_not_positive_integers(funded_job, amount):
    with pytest.raises(InvalidAmount):
        escrow.escrow_reserve(job=funded_job, amount=amount, key="bad")
    assert escrow_balance(job=funded_job).reserved == 0


def test_release_returns_reservation_and_is_idempotent(funded_job):
    escrow.escrow_reserve(job=funded_job, amount=1_000, key="publish:1")
    escrow.escrow_release(job=funded_job, amount=400, key="cancel:1")
    escrow.escrow_release(job=funded_job, amount=400, key="cancel:1")
    b = escrow_balance(job=funded_job)
    assert (b.available, b.reserved) == (9_400, 600)


def test_release_more_than_reserved_is_refused(funded_job):
    escrow.escrow_reserve(job=funded_job, amount=100, key="publish:1")
    with pytest.raises(Conflict):
        escrow.escrow_release(job=funded_job, amount=101, key="cancel:1")
    assert escrow_balance(job=funded_job).reserved == 100


def test_slot_reservation_is_max_pay_plus_fee(db):
    policy = active_policy()
    top = pricing.bps_of(50, policy.max_multiplier_bps)
    assert pricing.slot_reservation(price=50, policy=policy) == top + pricing.bps_of(
        top, policy.platform_fee_bps
    )


def test_slot_reservation_for_uses_the_active_policy(db):
    mt = MicroTaskFactory(price=100)
    before = slot_reservation_for(microtask=mt)
    work.pricing_policy_create(platform_fee_bps=5_000, note="fee up")
    assert slot_reservation_for(microtask=mt) > before


def test_assignment_pay_splits_reservation_into_pay_fee_and_remainder(funded_job):
    a = reserved_assignment(funded_job, price=50, active_seconds=1)
    before = escrow_balance(job=funded_job)
    pay = paying.assignment_pay(assignment=a)
    policy = active_policy()
    expected = pricing.task_pay(
        price=50,
        multiplier_bps=pricing.multiplier_for(DEFAULT_TRUST, policy=policy),
        credit=1.0,
    )
    assert pay == expected == a.pay_amount
    b = escrow_balance(job=funded_job)
    assert b.paid == pay
    assert b.fees == pricing.fee_on(pay, policy=policy)
    assert b.reserved == before.reserved - a.reserved_amount
    assert b.available == before.available + a.reserved_amount - pay - b.fees
    assert worker_balances(worker=a.worker)["pending"] == pay
    assert_escrow_adds_up(funded_job)
    assert_ledger_consistent()


def test_assignment_pay_is_idempotent(funded_job):
    a = reserved_assignment(funded_job)
    first = paying.assignment_pay(assignment=a)
    second = paying.assignment_pay(assignment=a)
    assert first == second
    assert escrow_balance(job=funded_job).paid == first
    assert EarningHold.objects.filter(worker=a.worker).count() == 1


def test_partial_credit_pays_proportionally(funded_job):
    a = reserved_assignment(funded_job, price=100, active_seconds=1)
    pay = paying.assignment_pay(assignment=a, credit=0.5)
    assert pay == pricing.round_half_up(
        100 * pricing.multiplier_for(DEFAULT_TRUST, policy=active_policy()) / 20_000
    )


def test_pay_follows_the_trust_tier(funded_job, monkeypatch):
    monkeypatch.setattr(paying, "worker_trust", lambda **kw: 0.99)
    a = reserved_assignment(funded_job, price=100, active_seconds=1)
    assert paying.assignment_pay(assignment=a) == pricing.bps_of(
        100, active_policy().max_multiplier_bps
    )


def test_measured_time_is_capped_at_the_claim_time_limit(funded_job):
    a = reserved_assignment(funded_job, price=50, active_seconds=10 * 3_600)
    assert paying.assignment_pay(assignment=a) == active_policy().floor_hourly // 2


def test_fair_pay_top_up_on_measured_time(funded_job):
    # 50 cents for 10 minutes is far below the floor: the worker is topped up to it.
    a = reserved_assignment(funded_job, price=50, active_seconds=600)
    pay = paying.assignment_pay(assignment=a)
    policy = active_policy()
    assert pay == pricing.floor_pay(seconds=600, hourly=policy.floor_for("US"))
    assert pay * 3600 / 600 >= policy.floor_hourly
    assert_escrow_adds_up(funded_job)
    assert_ledger_consistent()


def test_country_floor_raises_the_top_up(funded_job):
    work.pricing_policy_create(country_floors={"GB": 2_400})
    worker = WorkerFactory(profile__country="GB")
    a = reserved_assignment(funded_job, worker=worker, price=50, active_seconds=600)
    assert paying.assignment_pay(assignment=a) == 400


def test_top_up_beyond_escrow_is_covered_by_the_platform_not_the_job(job):
    fund(job, 100)
    mt_assignment = reserved_assignment(job, price=50, active_seconds=1_800)
    b0 = escrow_balance(job=job)
    pay = paying.assignment_pay(assignment=mt_assignment)
    assert pay == active_policy().floor_hourly // 2  # 30 minutes at the floor
    b = escrow_balance(job=job)
    assert b.available == 0 and b.reserved == 0
    assert b.paid + b.fees == b0.funded  # the job paid exactly its escrow, no more
    assert_ledger_consistent()


def test_unpaid_returns_the_reservation(funded_job):
    a = reserved_assignment(funded_job)
    paying.assignment_unpaid(assignment=a)
    paying.assignment_unpaid(assignment=a)
    b = escrow_balance(job=funded_job)
    assert (b.available, b.reserved, b.paid, b.fees) == (10_000, 0, 0, 0)


def test_cannot_pay_a_rejected_assignment_or_reject_a_paid_one(funded_job):
    rejected = reserved_assignment(funded_job)
    paying.assignment_unpaid(assignment=rejected)
    with pytest.raises(Conflict):
        paying.assignment_pay(assignment=rejected)
    paid = reserved_assignment(funded_job)
    paying.assignment_pay(assignment=paid)
    with pytest.raises(Conflict):
        paying.assignment_unpaid(assignment=paid)
    assert_escrow_adds_up(funded_job)


def test_pending_earnings_are_held(funded_job):
    a = reserved_assignment(funded_job)
    paying.assignment_pay(assignment=a)
    hold = EarningHold.objects.get(worker=a.worker)
    assert hold.available_at - hold.transaction.created_at > timedelta(days=2)
