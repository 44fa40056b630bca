"""A job's quote prices the attributes it asks and the relations it takes (``tasks.quoting``,
the one place a microtask is priced)."""

from __future__ import annotations

import pytest

from tasks.quoting import microtask_prices, task_features
from tests.factories import JobFactory, MicroTaskFactory, VideoFactory

pytestmark = pytest.mark.django_db

ATTRIBUTES = {
    "car": [
        {"name": "occluded", "type": "bool"},
        {"name": "colour", "type": "choice", "values": ["red", "blue"]},
    ]
}


def _job(**fields):
    job = JobFactory(
        annotation_type="bbox", label_classes=["car", "person"], expected_objects=4, **fields
    )
    video = VideoFactory(job=job)
    MicroTaskFactory(
        video=video, index=0, frame_start=0, frame_end=9, frames=[0, 5], expected_objects=4
    )
    return job


def test_attributes_and_relations_raise_the_price_of_the_same_work():
    plain = _job()
    asked = _job(label_attributes=ATTRIBUTES)
    related = _job(label_attributes=ATTRIBUTES, relation_predicates=["rides"])
    mt = asked.microtasks.get()
    features = task_features(mt, asked)
    assert features.attributes == 1.0  # two attributes on car, none on person
    assert task_features(related.microtasks.get(), related).relations == 2.0  # 4 objects / 2
    prices = [microtask_prices(job=j)[0][0].price for j in (plain, asked, related)]
    assert prices[0].expected_seconds < prices[1].expected_seconds < prices[2].expected_seconds
    assert prices[0].price < prices[1].price < prices[2].price
