"""Property tests: splitting, multipliers, partial credit, fees and refunds never create or lose
a cent (hypothesis), in the pure arithmetic and through the real ledger."""

from __future__ import annotations

import itertools

from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments import escrow, pricing
from payments.errors import InsufficientEscrow
from payments.pricing import PricingPolicyData, TrustTier
from payments.selectors import escrow_balance
from tasks import paying
from tests.factories import AssignmentFactory, JobFactory, MicroTaskFactory
from tests.payments.conftest import assert_ledger_consistent

policies = st.builds(
    PricingPolicyData,
    platform_fee_bps=st.integers(0, 5_000),
    floor_hourly=st.integers(0, 5_000),
    tiers=st.lists(
        st.builds(TrustTier, st.floats(0, 1), st.integers(0, 20_000)), min_size=1, max_size=4
    ).map(tuple),
)
credits = st.one_of(st.just(1.0), st.just(0.0), st.floats(0, 1))


@given(
    price=st.integers(0, 1_000_000),
    policy=policies,
    trust=st.floats(0, 1),
    credit=credits,
    floor_minimum=st.integers(0, 100_000),
    escrow=st.integers(0, 10_000_000),
)
def test_split_pay_conserves_every_cent(price, policy, trust, credit, floor_minimum, escrow):
    reserved = pricing.slot_reservation(price=price, policy=policy)
    multiplier = pricing.multiplier_for(trust, policy=policy)
    s = pricing.split_pay(
        reserved=reserved,
        escrow_available=escrow,
        price=price,
        multiplier_bps=multiplier,
        credit=credit,
        floor_minimum=floor_minimum,
        policy=policy,
    )
    # Everything taken from the job (reservation + extra) ends up somewhere, exactly.
    assert reserved + s.from_escrow + s.subsidy == s.pay + s.fee + s.back_to_escrow
    assert min(s.pay, s.fee, s.back_to_escrow, s.from_escrow, s.subsidy, s.topup) >= 0
    assert s.from_escrow <= escrow
    if s.topup == 0:
        # Without a fair-pay top-up the reservation always suffices (it is the max pay + fee).
        assert s.from_escrow == 0 and s.subsidy == 0
    if pricing.credit_bps(credit) > 0:  # credit below half a basis point rounds to none
        assert s.pay >= floor_minimum


@given(amount=st.integers(0, 10**12), bps=st.integers(0, 100_000))
def test_bps_rounding_is_within_half_a_cent(amount, bps):
    exact = amount * bps / 10_000
    assert abs(pricing.bps_of(amount, bps) - exact) <= 0.5 + 1e-6 * exact


@given(
    prices=st.lists(st.integers(1, 10_000), min_size=1, max_size=30),
    overlap=st.integers(1, 5),
    gold=st.sampled_from([0.0, 0.05, 0.1, 0.3]),
)
def test_quote_parts_sum_to_total(prices, overlap, gold):
    q = pricing.quote(
        prices=prices,
        expected_seconds=[30.0] * len(prices),
        overlap_min=overlap,
        overlap_max=overlap + 2,
        gold_rate=gold,
        policy=PricingPolicyData(),
    )
    assert q.total == q.work + q.gold_overhead + q.platform_fee
    assert q.fund_amount == q.total + q.headroom >= q.total


_keys = itertools.count()

operation = st.one_of(
    st.tuples(st.just("fund"), st.integers(1, 5_000)),
    st.tuples(
        st.just("slot"),
        st.integers(1, 400),
        st.sampled_from(["pay", "unpaid", "release"]),
        credits,
        st.sampled_from([None, 1.0, 120.0, 1_500.0]),
    ),
    st.tuples(st.just("refund"), st.integers(1, 3_000)),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operation, min_size=1, max_size=12))
def test_ledger_never_creates_or_loses_money(db, ops):
    """Any sequence of funding, reserving, paying, rejecting, releasing and refunding keeps
    funded == available + reserved + paid + fees, and the whole ledger sums to zero."""
    with transaction.atomic():
        sid = transaction.savepoint()
        job = JobFactory()
        funded = 0
        refunded = 0
        for op in ops:
            n = next(_keys)
            if op[0] == "fund":
                escrow.escrow_fund(job=job, amount=op[1], key=f"p{n}")
                funded += op[1]
            elif op[0] == "refund":
                available = escrow_balance(job=job).available
                amount = min(op[1], available)
                if amount:
                    escrow.escrow_refund_unspent(job=job, amount=amount, key=f"r{n}")
                    refunded += amount
            else:
                _, price, outcome, credit, seconds = op
                mt = MicroTaskFactory(video__job=job, job=job, price=price)
                from payments.selectors import slot_reservation_for

                slot = slot_reservation_for(microtask=mt)
                try:
                    escrow.escrow_reserve(job=job, amount=slot, key=f"s{n}")
                except InsufficientEscrow:
                    continue
                if outcome == "release":
                    escrow.escrow_release(job=job, amount=slot, key=f"s{n}")
                    continue
                a = AssignmentFactory(microtask=mt, reserved_amount=slot, active_seconds=seconds)
                if outcome == "pay":
                    paying.assignment_pay(assignment=a, credit=credit)
                else:
                    paying.assignment_unpaid(assignment=a)
            b = escrow_balance(job=job)
            assert b.funded == funded - refunded
            assert b.funded == b.available + b.reserved + b.paid + b.fees
            assert b.available >= 0 and b.reserved >= 0
        assert_ledger_consistent()
        transaction.savepoint_rollback(sid)
