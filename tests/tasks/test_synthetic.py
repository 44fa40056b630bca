"""The synthetic-video generator: deterministic, and its truth matches what it draws."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.synthetic import make_scene, render_frame


def _scene(**kw):
    base = dict(seed=7, width=160, height=120, frames=80, n_objects=4, motion=3.0,
                classes=("car", "person"), shot_cuts=(40,))  # fmt: skip
    base.update(kw)
    return make_scene(**base)


def test_same_seed_same_video_and_truth():
    a, b = _scene(), _scene()
    for i in (0, 39, 40, 79):
        assert np.array_equal(render_frame(a, i), render_frame(b, i))
        assert a.boxes(i) == b.boxes(i)
    assert not np.array_equal(render_frame(a, 10), render_frame(_scene(seed=8), 10))


def test_frames_have_the_requested_shape():
    image = render_frame(_scene(width=64, height=48), 3)
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8


def test_truth_boxes_enclose_exactly_what_is_drawn():
    scene = _scene()
    for i in range(0, scene.frames, 3):
        image = render_frame(scene, i)
        for box in scene.boxes(i):
            track = next(t for t in scene.tracks if t.track_id == box.track_id)
            if box.outside:
                assert (box.w, box.h, box.visibility) == (0, 0, 0.0)
                continue
            assert box.x >= 0 and box.x + box.w <= scene.width
            assert box.y >= 0 and box.y + box.h <= scene.height
            region = image[box.y : box.y + box.h, box.x : box.x + box.w]
            painted = np.all(region == track.color, axis=2)
            if box.visibility == 1.0:
                # Fully visible: the object's colour touches all four sides of its box.
                assert painted[0].any() and painted[-1].any()
                assert painted[:, 0].any() and painted[:, -1].any()
            assert painted.any() == (box.visibility > 0)


def test_objects_enter_leave_and_occlude():
    scene = _scene(frames=120, shot_cuts=(), n_objects=6, seed=3)
    states = {t.track_id: [b.outside for b in (scene.boxes(i)[k] for i in range(120))]
              for k, t in enumerate(scene.tracks)}  # fmt: skip
    entered = any(s[i] and not s[i + 1] for s in states.values() for i in range(119))
    left = any(not s[i] and s[i + 1] for s in states.values() for i in range(119))
    occluded = any(b.occluded for i in range(120) for b in scene.boxes(i))
    assert entered and left and occluded


def test_every_shot_has_its_own_objects():
    scene = _scene(shot_cuts=(20, 50))
    assert scene.shots == ((0, 19), (20, 49), (50, 79))
    ids = [{b.track_id for b in scene.boxes(i)} for i in (0, 20, 50)]
    assert ids[0].isdisjoint(ids[1]) and ids[1].isdisjoint(ids[2])
    assert all(len(s) == 4 for s in ids)
    assert {b.cls for b in scene.boxes(0)} == {"car", "person"}


def test_no_motion_means_a_still_scene():
    scene = _scene(motion=0.0, shot_cuts=())
    assert np.array_equal(render_frame(scene, 0), render_frame(scene, 79))
    assert all(not b.outside for b in scene.boxes(50))


@pytest.mark.parametrize(
    "kw",
    [dict(width=4), dict(frames=0), dict(shot_cuts=(0,)), dict(shot_cuts=(50, 20)),
     dict(motion=-1.0), dict(classes=())],
)  # fmt: skip
def test_bad_parameters_are_refused(kw):
    with pytest.raises(ValueError):
        _scene(**kw)


def test_frame_numbers_outside_the_scene_are_refused():
    with pytest.raises(IndexError):
        _scene().boxes(80)
