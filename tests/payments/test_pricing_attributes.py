"""Attributes asked and relations expected are priced through the one pricing function, under
the fair-pay floor (pure)."""

from __future__ import annotations

import pytest

from marketplace import label_schema
from payments.pricing import PricingPolicyData, TaskFeatures, floor_pay, price_task

POLICY = PricingPolicyData()


def _price(**kw):
    base = {"annotation_type": "bbox", "frames": 10, "objects": 4, "motion": 0.02, "clutter": 0.2}
    return price_task(TaskFeatures(**{**base, **kw}), policy=POLICY)


def test_attributes_and_relations_add_time_and_pay():
    plain = _price()
    asked = _price(attributes=3)
    related = _price(attributes=3, relations=2)
    assert plain.expected_seconds < asked.expected_seconds < related.expected_seconds
    assert asked.expected_seconds - plain.expected_seconds == pytest.approx(10 * 4 * 3 * 1.5)
    assert related.expected_seconds - asked.expected_seconds == pytest.approx(10 * 2 * 4.0)
    assert plain.price < asked.price < related.price
    # Not multiplied by the frame's complexity: a value given is a value given.
    busy = _price(attributes=3, motion=0.08)
    calm = _price(attributes=3, motion=0.0)
    assert (busy.expected_seconds - _price(motion=0.08).expected_seconds) == pytest.approx(
        calm.expected_seconds - _price(motion=0.0).expected_seconds
    )


@pytest.mark.parametrize("kind", ["bbox", "polygon", "track"])
@pytest.mark.parametrize("attributes", [0, 1, 5, 20])
@pytest.mark.parametrize("relations", [0.0, 0.5, 10.0])
def test_the_price_never_falls_below_the_fair_pay_floor(kind, attributes, relations):
    p = _price(annotation_type=kind, attributes=attributes, relations=relations)
    assert p.price >= floor_pay(seconds=p.expected_seconds, hourly=POLICY.floor_hourly)
    cheap = PricingPolicyData(base={kind: 0.01}, base_attribute=0.0, base_relation=0.0)
    q = price_task(
        TaskFeatures(kind, 10, 4, attributes=attributes, relations=relations), policy=cheap
    )
    assert q.price >= floor_pay(seconds=q.expected_seconds, hourly=cheap.floor_hourly)
    assert q.floor_bound


def test_attributes_asked_per_object_average_over_the_classes():
    schema = label_schema.parse(
        {"car": [{"name": "a", "type": "bool"}, {"name": "b", "type": "bool"}], "person": []}
    )
    assert label_schema.asked_per_object(schema, ["car", "person"]) == 1.0
    assert label_schema.asked_per_object({}, ["car"]) == 0.0
