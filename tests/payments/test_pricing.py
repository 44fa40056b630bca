"""The pure pricing module: complexity, price, floor, tiers, quotes, explicit rounding."""

from __future__ import annotations

from fractions import Fraction

import pytest

from payments import pricing
from payments.pricing import PricingPolicyData, TaskFeatures

POLICY = PricingPolicyData()


@pytest.mark.parametrize(
    ("value", "expected"),
    [(Fraction(1, 2), 1), (Fraction(3, 2), 2), (Fraction(-1, 2), -1), (2.4999, 2), (7, 7)],
)
def test_round_half_up(value, expected):
    assert pricing.round_half_up(value) == expected


def test_complexity_is_clamped():
    assert pricing.complexity(motion=0, clutter=0, policy=POLICY) == 1.0
    assert pricing.complexity(motion=1e6, clutter=0, policy=POLICY) == POLICY.complexity_max
    assert pricing.complexity(motion=-1e6, clutter=0, policy=POLICY) == POLICY.complexity_min


def test_price_grows_with_frames_objects_and_complexity():
    small = pricing.price_task(TaskFeatures("bbox", 10, 2), policy=POLICY).price
    more_frames = pricing.price_task(TaskFeatures("bbox", 20, 2), policy=POLICY).price
    more_objects = pricing.price_task(TaskFeatures("bbox", 10, 4), policy=POLICY).price
    harder = pricing.price_task(TaskFeatures("bbox", 10, 2, motion=40), policy=POLICY).price
    assert small < more_frames and small < more_objects and small < harder


def test_price_never_below_the_floor_on_expected_time():
    for kind in POLICY.base:
        for frames in (1, 10, 100):
            p = pricing.price_task(TaskFeatures(kind, frames, 3, clutter=0.3), policy=POLICY)
            assert Fraction(p.price) * 3600 / Fraction(p.expected_seconds) >= POLICY.floor_hourly


def test_floor_binds_when_the_rate_is_low():
    cheap = PricingPolicyData(base={"bbox": 0.01}, t0={"bbox": 20.0}, t_obj={"bbox": 4.0})
    p = pricing.price_task(TaskFeatures("bbox", 10, 3), policy=cheap)
    assert p.floor_bound is True
    assert p.price == pricing.floor_pay(seconds=p.expected_seconds, hourly=cheap.floor_hourly)


def test_unknown_annotation_type_is_refused():
    with pytest.raises(ValueError):
        pricing.price_task(TaskFeatures("video-caption", 1, 1), policy=POLICY)


def test_country_floor_only_raises():
    policy = PricingPolicyData(floor_hourly=1_000, country_floors={"GB": 1_500, "IN": 200})
    assert policy.floor_for("gb") == 1_500
    assert policy.floor_for("IN") == 1_000
    assert policy.floor_for("") == 1_000


@pytest.mark.parametrize(
    ("trust", "bps"), [(0.0, 8_000), (0.49, 8_000), (0.5, 10_000), (0.85, 11_000), (1.0, 12_000)]
)
def test_trust_tiers(trust, bps):
    assert pricing.multiplier_for(trust, policy=POLICY) == bps


def test_calibration_needs_enough_samples_and_uses_the_median():
    assert pricing.calibration_factor([(20, 10)] * 4) == 1.0
    assert pricing.calibration_factor([(20, 10)] * 3 + [(10, 10)] * 2 + [(1000, 10)]) == 2.0


def test_quote_adds_up():
    q = pricing.quote(
        prices=[100, 200, 300],
        expected_seconds=[60, 60, 60],
        overlap_min=3,
        overlap_max=5,
        gold_rate=0.1,
        policy=POLICY,
    )
    assert q.work == pricing.round_half_up(Fraction(600) * Fraction("3.2"))
    assert q.gold_overhead == pricing.round_half_up(q.work * Fraction(1, 9))
    assert q.platform_fee == pricing.fee_on(q.work + q.gold_overhead, policy=POLICY)
    assert q.total == q.work + q.gold_overhead + q.platform_fee
    assert q.fund_amount == q.total + q.headroom
    # Funding the quote covers a reservation for every expected replica slot.
    slots = sum(pricing.slot_reservation(price=p, policy=POLICY) for p in (100, 200, 300))
    assert q.fund_amount >= slots * 3


def test_split_when_reservation_covers_everything():
    s = pricing.split_pay(
        reserved=130, escrow_available=0, price=100, multiplier_bps=10_000, credit=1.0,
        floor_minimum=0, policy=POLICY,
    )  # fmt: skip
    assert (s.pay, s.fee, s.back_to_escrow, s.from_escrow, s.subsidy) == (100, 20, 10, 0, 0)


def test_event_work_adds_length_and_events_instead_of_multiplying():
    # 60 frames watched, 3 events: 60 + 3 * EVENT_MARK_FRAMES units, not 60 * 3.
    f = TaskFeatures("event", 60, 3)
    assert pricing.work_units(f) == 60 + 3 * pricing.EVENT_MARK_FRAMES
    p = pricing.price_task(f, policy=POLICY)
    assert p.expected_seconds == pytest.approx(
        POLICY.t0["event"] + pricing.work_units(f) * POLICY.t_obj["event"]
    )
    # More events and a longer microtask both cost more; no events still pays for watching.
    more_events = pricing.price_task(TaskFeatures("event", 60, 6), policy=POLICY)
    longer = pricing.price_task(TaskFeatures("event", 120, 3), policy=POLICY)
    none = pricing.price_task(TaskFeatures("event", 60, 0), policy=POLICY)
    assert none.price < p.price < more_events.price and p.price < longer.price
    assert pricing.work_units(TaskFeatures("event", 60, 0)) == 60


@pytest.mark.parametrize("events", [0, 1, 5, 40])
@pytest.mark.parametrize("motion", [0.0, 0.05, 1.0])
def test_event_price_never_below_the_floor_on_expected_and_measured_time(events, motion):
    f = TaskFeatures("event", 30, events, motion=motion, clutter=0.3)
    for factor in (1.0, 2.5):  # measured work took 2.5x the model's guess
        p = pricing.price_task(f, policy=POLICY, time_factor=factor)
        assert p.price >= pricing.floor_pay(seconds=p.expected_seconds, hourly=POLICY.floor_hourly)
    c = pricing.complexity(motion=motion, clutter=0.3, policy=POLICY)
    assert p.complexity == c  # the one complexity function


def test_mask_complexity_grows_with_the_boundary_to_paint_and_ignores_it_when_unknown():
    plain = pricing.complexity(motion=0, clutter=0, policy=POLICY)
    assert pricing.complexity(motion=0, clutter=0, policy=POLICY, boundary=0.0) == plain
    ref = POLICY.boundary_ref
    assert pricing.complexity(motion=0, clutter=0, policy=POLICY, boundary=ref) == plain
    twice = pricing.complexity(motion=0, clutter=0, policy=POLICY, boundary=2 * ref)
    assert twice == pytest.approx(plain + POLICY.boundary_coef)
    assert pricing.complexity(motion=0, clutter=0, policy=POLICY, boundary=ref / 2) < plain
    ragged = TaskFeatures("mask", 10, 3, boundary=8 * ref)
    smooth = TaskFeatures("mask", 10, 3, boundary=ref / 2)
    hi, lo = (pricing.price_task(f, policy=POLICY) for f in (ragged, smooth))
    assert hi.price > lo.price and hi.expected_seconds > lo.expected_seconds
    for p in (hi, lo):  # under the fair-pay floor either way
        assert Fraction(p.price) * 3600 / Fraction(p.expected_seconds) >= POLICY.floor_hourly


def test_a_saved_policy_without_mask_coefficients_prices_masks_with_the_defaults():
    from payments.models import PricingPolicy
    from payments.selectors import policy_data

    saved = PricingPolicy(
        version=3,
        base={"bbox": 1.0},
        t0={"bbox": 20.0},
        t_obj={"bbox": 4.0},
        floor_hourly=1500,
        platform_fee_bps=2000,
        tiers=[{"min_trust": 0.0, "multiplier_bps": 10000}],
    )
    data = policy_data(saved)
    assert data.base["bbox"] == 1.0 and data.base["mask"] == POLICY.base["mask"]
    assert pricing.price_task(TaskFeatures("mask", 5, 2), policy=data).price > 0


def test_mask_complexity_grows_with_the_area_to_cover_far_less_than_with_the_edge():
    plain = pricing.complexity(motion=0, clutter=0, policy=POLICY)
    ref = POLICY.area_ref
    assert pricing.complexity(motion=0, clutter=0, policy=POLICY, area=0.0) == plain
    assert pricing.complexity(motion=0, clutter=0, policy=POLICY, area=ref) == plain
    twice = pricing.complexity(motion=0, clutter=0, policy=POLICY, area=2 * ref)
    assert twice == pytest.approx(plain + POLICY.area_coef)
    assert 0 < POLICY.area_coef < POLICY.boundary_coef  # the edge is what takes the time
    big = TaskFeatures("mask", 10, 3, boundary=POLICY.boundary_ref, area=16 * ref)
    small = TaskFeatures("mask", 10, 3, boundary=POLICY.boundary_ref, area=ref / 4)
    hi, lo = (pricing.price_task(f, policy=POLICY) for f in (big, small))
    assert hi.price > lo.price and hi.expected_seconds > lo.expected_seconds
    for p in (hi, lo):  # under the fair-pay floor either way
        assert Fraction(p.price) * 3600 / Fraction(p.expected_seconds) >= POLICY.floor_hourly
    # A box job's complexity ignores a mask area it was never asked to paint.
    box = TaskFeatures("bbox", 10, 3, area=16 * ref)
    assert pricing.task_complexity(box, policy=POLICY) == pricing.task_complexity(
        TaskFeatures("bbox", 10, 3), policy=POLICY
    )
