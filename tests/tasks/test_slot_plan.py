"""The slot plan (pure): which microtasks an amount of escrow publishes. Publishing and the
funding page's budget coverage both use it, so these cases are the rule for both."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from tasks.slot_plan import plan_slots


def test_whole_microtasks_in_order_stopping_at_the_first_that_does_not_fit():
    plan = plan_slots(
        missing=[(100, 2), (100, 2), (50, 1), (100, 2)],
        available=450,
        gold_price=0,
        gold_rate=0.0,
        existing_regular=0,
        existing_gold=0,
    )
    # 200 + 200 + 50 use the 450 exactly; the fourth (200) does not fit.
    assert (plan.covered, plan.regular_slots, plan.gold_slots, plan.cost) == (3, 5, 0, 450)


def test_a_microtask_that_does_not_fit_stops_the_plan_even_if_later_ones_would():
    plan = plan_slots(
        missing=[(100, 1), (500, 1), (10, 1)],
        available=300,
        gold_price=0,
        gold_rate=0.0,
        existing_regular=0,
        existing_gold=0,
    )
    assert (plan.covered, plan.cost) == (1, 100)


def test_each_batch_brings_its_share_of_gold_slots():
    plan = plan_slots(
        missing=[(100, 3), (100, 3)],
        available=10_000,
        gold_price=40,
        gold_rate=0.25,  # one gold slot per three ordinary ones
        existing_regular=0,
        existing_gold=0,
    )
    assert (plan.covered, plan.regular_slots, plan.gold_slots) == (2, 6, 2)
    assert plan.cost == 600 + 2 * 40
    # The gold a batch needs counts against the money: here the second batch's gold does not fit.
    tight = plan_slots(
        missing=[(100, 3), (100, 3)],
        available=600 + 40,
        gold_price=40,
        gold_rate=0.25,
        existing_regular=0,
        existing_gold=0,
    )
    assert (tight.covered, tight.gold_slots, tight.cost) == (1, 1, 340)


@given(
    missing=st.lists(st.tuples(st.integers(1, 500), st.integers(1, 5)), max_size=30),
    available=st.integers(0, 20_000),
    gold_price=st.integers(0, 300),
    gold_rate=st.sampled_from([0.0, 0.1, 0.25, 0.5]),
)
def test_the_plan_never_costs_more_than_is_available(missing, available, gold_price, gold_rate):
    plan = plan_slots(
        missing=missing,
        available=available,
        gold_price=gold_price,
        gold_rate=gold_rate,
        existing_regular=0,
        existing_gold=0,
    )
    covered = missing[: plan.covered]
    assert plan.cost <= available
    assert plan.regular_slots == sum(n for _, n in covered)
    gold = math.ceil(plan.regular_slots * gold_rate / (1 - gold_rate)) if gold_rate else 0
    assert plan.gold_slots == gold
    assert plan.cost == sum(p * n for p, n in covered) + gold * gold_price
