"""Keyframe interpolation: linear between visible keyframes, respecting ``outside``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.interpolation import (
    Track,
    interpolate,
    interpolate_track,
    track_from_payload,
    tracks_to_frames,
)


def _track(*keys):
    frames = np.array([k[0] for k in keys])
    boxes = np.array([k[1] for k in keys], dtype=float)
    outside = np.array([k[2] if len(k) > 2 else False for k in keys])
    return Track(frames, boxes, outside)


def test_linear_between_two_visible_keyframes():
    t = _track((0, [0, 0, 10, 10]), (10, [100, 50, 120, 70]))
    boxes, present = interpolate_track(t, 0, 10)
    assert present.all()
    np.testing.assert_allclose(boxes[5], [50, 25, 65, 40])
    np.testing.assert_allclose(boxes[0], [0, 0, 10, 10])
    np.testing.assert_allclose(boxes[10], [100, 50, 120, 70])


def test_absent_before_first_keyframe_and_held_after_last():
    t = _track((3, [1, 1, 5, 5]))
    boxes, present = interpolate_track(t, 0, 6)
    assert present.tolist() == [False, False, False, True, True, True, True]
    assert np.isnan(boxes[:3]).all()
    np.testing.assert_allclose(boxes[6], [1, 1, 5, 5])


def test_outside_keyframe_hides_object_and_box_does_not_drift_towards_it():
    t = _track((0, [0, 0, 10, 10]), (4, [80, 80, 90, 90], True), (8, [20, 20, 30, 30]))
    boxes, present = interpolate_track(t, 0, 9)
    assert present.tolist() == [True] * 4 + [False] * 4 + [True] * 2
    # Frames 1..3 hold the box of frame 0: no drift towards where the object left.
    np.testing.assert_allclose(boxes[3], [0, 0, 10, 10])
    np.testing.assert_allclose(boxes[9], [20, 20, 30, 30])


def test_unordered_keyframes_are_refused():
    with pytest.raises(ValueError, match="increasing"):
        interpolate(np.array([5, 3]), np.zeros((2, 4)), np.array([False, False]), np.arange(6))


def test_tracks_to_frames_lists_every_frame_and_labels_shapes():
    payload = {
        "id": 7,
        "label": "car",
        "keyframes": [
            {"frame": 2, "box": [0, 0, 10, 10], "outside": False},
            {"frame": 4, "box": [10, 0, 20, 10], "outside": False},
        ],
    }
    frames = tracks_to_frames([track_from_payload(payload)], 0, 5)
    assert list(frames) == ["0", "1", "2", "3", "4", "5"]
    assert frames["1"] == []
    assert frames["3"] == [{"track": 7, "label": "car", "box": [5.0, 0.0, 15.0, 10.0]}]
    assert frames["5"][0]["box"] == [10.0, 0.0, 20.0, 10.0]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 200), min_size=1, max_size=8, unique=True).map(sorted),
    st.data(),
)
def test_interpolated_boxes_stay_within_their_keyframes_hull(key_frames, data):
    k = len(key_frames)
    boxes = np.array(
        data.draw(
            st.lists(st.tuples(*[st.floats(0, 1000, allow_nan=False)] * 4), min_size=k, max_size=k)
        )
    )
    outside = np.array(data.draw(st.lists(st.booleans(), min_size=k, max_size=k)))
    q = np.arange(0, 220)
    out, present = interpolate(np.array(key_frames), boxes, outside, q)
    # Present exactly when the last keyframe at or before the frame exists and is visible.
    for idx, f in enumerate(q):
        last = [i for i, kf in enumerate(key_frames) if kf <= f]
        assert present[idx] == (bool(last) and not outside[last[-1]])
        if present[idx]:
            i = last[-1]
            lo = np.minimum(boxes[i], boxes[min(i + 1, k - 1)]) - 1e-9
            hi = np.maximum(boxes[i], boxes[min(i + 1, k - 1)]) + 1e-9
            assert np.all(out[idx] >= lo) and np.all(out[idx] <= hi)
        else:
            assert np.isnan(out[idx]).all()
