"""Track-event work is priced: a track job with event labels costs more than the same tracks
without them, by the marking of the events expected on its tracks, and never under the
fair-pay floor on the expected seconds (``tasks.quoting`` → ``payments.pricing``)."""

from __future__ import annotations

import pytest

from payments import pricing
from tasks.quoting import EVENTS_PER_TRACK, microtask_prices, task_features
from tests.factories import JobFactory, MicroTaskFactory, VideoFactory

pytestmark = pytest.mark.django_db


def _job(**fields):
    job = JobFactory(
        annotation_type="track", label_classes=["car", "person"], expected_objects=3, **fields
    )
    video = VideoFactory(job=job)
    MicroTaskFactory(
        video=video, index=0, frame_start=0, frame_end=29, frames=[], expected_objects=3
    )
    return job


def test_event_labels_on_a_track_job_raise_its_price_by_the_marking():
    plain = _job()
    marked = _job(event_labels=["crossing", "waving"])
    assert task_features(plain.microtasks.get(), plain).track_events == 0.0
    features = task_features(marked.microtasks.get(), marked)
    assert features.track_events == EVENTS_PER_TRACK * 3  # one per tracked object
    (p_plain,), policy = microtask_prices(job=plain)
    (p_marked,) = microtask_prices(job=marked)[0]
    added = p_marked.price.expected_seconds - p_plain.price.expected_seconds
    c = p_plain.price.complexity
    assert added == pytest.approx(
        features.track_events * pricing.EVENT_MARK_FRAMES * policy.t_obj["event"] * c
    )
    assert p_marked.price.price > p_plain.price.price
    floor = pricing.floor_pay(seconds=p_marked.price.expected_seconds, hourly=policy.floor_hourly)
    assert p_marked.price.price >= floor


@pytest.mark.parametrize("kind", ["bbox", "event", "classify"])
def test_track_events_price_nothing_on_other_types(kind):
    policy = pricing.PricingPolicyData()
    base = pricing.TaskFeatures(annotation_type=kind, frames=10, objects=3)
    with_events = pricing.TaskFeatures(annotation_type=kind, frames=10, objects=3, track_events=5)
    assert pricing.price_task(base, policy=policy) == pricing.price_task(with_events, policy=policy)


def test_track_event_pay_holds_the_floor_under_any_policy_rates():
    # Per-object rates near zero: the floor on the expected seconds (marking included) decides.
    policy = pricing.PricingPolicyData(
        base={"track": 0.0001, "event": 0.0001, "bbox": 1, "classify": 1, "polygon": 1, "mask": 1}
    )
    f = pricing.TaskFeatures(annotation_type="track", frames=10, objects=2, track_events=4)
    price = pricing.price_task(f, policy=policy)
    assert price.floor_bound is True
    assert price.price == pricing.floor_pay(
        seconds=price.expected_seconds, hourly=policy.floor_hourly
    )
    without = pricing.price_task(
        pricing.TaskFeatures(annotation_type="track", frames=10, objects=2), policy=policy
    )
    assert price.expected_seconds - without.expected_seconds == pytest.approx(
        4 * pricing.EVENT_MARK_FRAMES * policy.t_obj["event"] * price.complexity
    )
