"""Masks asked on tracks: each keyframe's mask adds a mask's work, under the fair-pay floor."""

from __future__ import annotations

import pytest

from payments import pricing

POLICY = pricing.PricingPolicyData()


def _track(**kw) -> pricing.TaskFeatures:
    return pricing.TaskFeatures("track", frames=15, objects=3, motion=0.02, clutter=0.2, **kw)


def test_keyframe_masks_add_a_mask_jobs_work_per_keyframe_and_object():
    plain = pricing.price_task(_track(), policy=POLICY)
    masked = pricing.price_task(_track(keyframe_masks=True), policy=POLICY)
    assert pricing.mask_work_units(_track(keyframe_masks=True)) == 15 * 3
    c = pricing.complexity(motion=0.02, clutter=0.2, policy=POLICY)
    added = 15 * 3 * POLICY.t_obj["mask"] * c
    assert masked.expected_seconds == pytest.approx(plain.expected_seconds + added)
    assert masked.price >= plain.price + round(15 * 3 * POLICY.base["mask"] * c) - 1
    # The floor holds on the time the masks add.
    assert masked.price >= pricing.floor_pay(
        seconds=masked.expected_seconds, hourly=POLICY.floor_hourly
    )


def test_more_keyframes_mean_more_masks_to_pay_for():
    few = pricing.price_task(
        pricing.TaskFeatures("track", frames=5, objects=2, keyframe_masks=True), policy=POLICY
    )
    many = pricing.price_task(
        pricing.TaskFeatures("track", frames=20, objects=2, keyframe_masks=True), policy=POLICY
    )
    assert many.price > few.price and many.expected_seconds > few.expected_seconds


def test_the_masks_edge_makes_painting_them_harder_not_the_boxes():
    small = pricing.price_task(_track(keyframe_masks=True, boundary=240.0), policy=POLICY)
    large = pricing.price_task(_track(keyframe_masks=True, boundary=960.0), policy=POLICY)
    assert large.expected_seconds > small.expected_seconds
    # The one complexity stored on the microtask is its boxes' (the edge is the masks' term).
    assert large.complexity == small.complexity == pricing.task_complexity(_track(), policy=POLICY)
    # No masks asked: a measured edge changes nothing.
    assert pricing.price_task(_track(boundary=960.0), policy=POLICY) == pricing.price_task(
        _track(), policy=POLICY
    )


def test_only_tracks_take_keyframe_masks():
    bbox = pricing.TaskFeatures("bbox", frames=10, objects=2, keyframe_masks=True)
    assert pricing.mask_work_units(bbox) == 0
    assert pricing.price_task(bbox, policy=POLICY) == pricing.price_task(
        pricing.TaskFeatures("bbox", frames=10, objects=2), policy=POLICY
    )
