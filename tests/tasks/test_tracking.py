"""Tracker proposals (``tasks.tracking``) on generated clips with known truth and non-linear
motion (``tasks.synthetic.make_path_scene``): turns, speed changes, occlusion, leaving."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from quality.boxes import iou_matrix
from tasks import synthetic, tracking
from tasks.interpolation import interpolate


def grey(scene: synthetic.Scene, i: int) -> np.ndarray:
    rgb = synthetic.render_frame(scene, i).astype(np.float32)
    return (rgb @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)


def frames(scene: synthetic.Scene, first: int = 0, last: int | None = None):
    last = scene.frames - 1 if last is None else last
    return [(i, grey(scene, i)) for i in range(first, last + 1)]


def truth(scene: synthetic.Scene, i: int, track_id: int = 0) -> tracking.Box | None:
    box = next(b for b in scene.boxes(i) if b.track_id == track_id)
    return None if box.outside else (box.x, box.y, box.x + box.w, box.y + box.h)


def iou(a, b) -> float:
    return float(iou_matrix(np.array([a], float), np.array([b], float))[0, 0])


def test_path_scenes_turn_change_speed_and_hide_the_object():
    scene = synthetic.make_path_scene(seed=3, frames=120, speed=3.0)
    steps = np.array([scene.position(scene.tracks[0], i) for i in range(scene.frames)], float)
    moves = np.diff(steps, axis=0)
    speeds = np.linalg.norm(moves, axis=1)
    headings = np.unwrap(np.arctan2(moves[:, 1], moves[:, 0])[speeds > 0.5])
    assert speeds.max() > 2.5 * max(np.percentile(speeds, 10), 0.5)  # speed changes
    assert np.ptp(headings) > 0.5  # it turns (more than ~30 degrees)
    middle = scene.frames // 2
    target = next(b for b in scene.boxes(middle) if b.track_id == 0)
    assert target.visibility < 0.7  # the bar hides part of it around the middle
    # Deterministic, and a plain scene is unchanged by the new fields.
    again = synthetic.make_path_scene(seed=3, frames=120, speed=3.0)
    assert np.array_equal(synthetic.render_frame(scene, 17), synthetic.render_frame(again, 17))
    assert synthetic.make_scene(seed=1, width=64, height=48, frames=5, n_objects=2, motion=1.0)


def test_forward_follows_a_turning_object_that_changes_speed():
    scene = synthetic.make_path_scene(seed=1, width=320, height=240, frames=90, occlusion=False)
    path = tracking.track(frames(scene), truth(scene, 0))
    assert [s.frame for s in path.steps] == list(range(1, 90))
    assert not any(s.lost for s in path.steps)
    ious = [iou(s.box, truth(scene, s.frame)) for s in path.steps]
    assert np.mean(ious) > 0.85 and min(ious) > 0.6
    # Against the straight line a worker would get from the first and last keyframes alone:
    linear, _ = interpolate(
        np.array([0, 89]),
        np.array([truth(scene, 0), truth(scene, 89)]),
        np.zeros(2, bool),
        np.arange(1, 90),
    )
    assert np.mean(ious) > np.mean([iou(b, truth(scene, i + 1)) for i, b in enumerate(linear)])


@pytest.mark.parametrize("seed", [0, 2, 4, 6, 8])
def test_occlusion_is_marked_lost_and_tracking_stops_there(seed):
    scene = synthetic.make_path_scene(seed=seed, width=320, height=240, frames=120)
    path = tracking.track(frames(scene), truth(scene, 0))
    last = path.steps[-1]
    assert last.lost
    assert all(not s.lost for s in path.steps[:-1])
    # It is lost by the time the bar has passed, never after, and until then it stays on the
    # object (it does not follow the bar or drift off before saying so).
    middle = scene.frames // 2
    hidden = [f for f in range(middle - 15, middle + 15) if _visibility(scene, f) < 0.5]
    assert hidden and last.frame <= max(hidden)
    assert all(iou(s.box, truth(scene, s.frame)) > 0.7 for s in path.steps[:-1])


def _visibility(scene, f: int) -> float:
    return next(b for b in scene.boxes(f) if b.track_id == 0).visibility


def test_an_object_leaving_the_picture_is_lost_before_it_is_gone():
    scene = synthetic.make_path_scene(
        seed=5, width=320, height=240, frames=120, occlusion=False, leave_at=60
    )
    gone = next(i for i in range(60, 120) if truth(scene, i) is None)
    path = tracking.track(frames(scene), truth(scene, 0))
    last = path.steps[-1]
    assert last.lost
    assert 60 <= last.frame <= gone
    assert tracking.inside_fraction(last.box, 320, 240) < 0.5 or last.confidence < 0.5


def test_between_meets_both_keyframes_and_beats_a_straight_line():
    scene = synthetic.make_path_scene(seed=7, width=320, height=240, frames=80, occlusion=False)
    a, b = 10, 70
    box_a, box_b = truth(scene, a), truth(scene, b)
    path = tracking.between(frames(scene, a, b), box_a, box_b)
    assert [s.frame for s in path.steps] == list(range(a + 1, b))
    # Next to each keyframe the path is on the object.
    assert iou(path.steps[0].box, truth(scene, a + 1)) > 0.85
    assert iou(path.steps[-1].box, truth(scene, b - 1)) > 0.85
    ious = [iou(s.box, truth(scene, s.frame)) for s in path.steps]
    linear, _ = interpolate(
        np.array([a, b]), np.array([box_a, box_b]), np.zeros(2, bool), np.arange(a + 1, b)
    )
    straight = [iou(box, truth(scene, a + 1 + k)) for k, box in enumerate(linear)]
    assert np.mean(ious) > 0.85
    assert np.mean(ious) > np.mean(straight) + 0.05


def _steps(frames_, boxes, confidence=0.9, lost=False):
    return [
        tracking.Step(f, tuple(b), confidence, lost) for f, b in zip(frames_, boxes, strict=True)
    ]


def test_blend_bends_a_drifting_path_to_meet_the_keyframe_it_drifted_from():
    a, b = 0, 10
    box_a, box_b = (0.0, 0.0, 10.0, 10.0), (100.0, 0.0, 110.0, 10.0)
    ts = range(1, 10)
    true = [np.array([10.0 * t, 0, 10.0 * t + 10, 10]) for t in ts]
    # The forward path drifts (+2 px a frame); the backward path is exact.
    fw = _steps(ts, [p + np.array([2.0 * t, 0, 2.0 * t, 0]) for t, p in zip(ts, true, strict=True)])
    bw = _steps(ts, true)
    out = tracking.blend(a, box_a, b, box_b, fw, bw)
    errors = [abs(s.box[0] - p[0]) for s, p in zip(out, true, strict=True)]
    # Error = drift x forward weight: (2t) (b - t) / (b - a), zero at both ends' limits.
    expected = [2.0 * t * (b - t) / (b - a) for t in ts]
    assert np.allclose(errors, expected)
    assert not any(s.lost for s in out)
    # Where both agree with the truth, the blend is the truth.
    exact = tracking.blend(a, box_a, b, box_b, bw, bw)
    assert all(np.allclose(s.box, p) for s, p in zip(exact, true, strict=True))


def test_blend_fills_frames_neither_pass_trusts_with_a_straight_line_marked_lost():
    a, b = 0, 10
    box_a, box_b = (0.0, 0.0, 10.0, 10.0), (100.0, 0.0, 110.0, 10.0)
    fw = _steps(range(1, 4), [(10.0 * t, 0, 10.0 * t + 10, 10) for t in range(1, 4)])
    fw.append(tracking.Step(4, (0.0, 0.0, 1.0, 1.0), 0.1, True))  # lost at 4
    bw = _steps(range(9, 6, -1), [(10.0 * t, 0, 10.0 * t + 10, 10) for t in range(9, 6, -1)])
    out = {s.frame: s for s in tracking.blend(a, box_a, b, box_b, fw, bw)}
    assert [t for t, s in out.items() if s.lost] == [4, 5, 6]
    for t in (4, 5, 6):  # between the trusted 3 and 7
        assert out[t].box[0] == pytest.approx(10.0 * t) and out[t].confidence == 0.0
    with pytest.raises(ValueError):
        tracking.blend(5, box_a, 5, box_b, [], [])


def test_the_time_budget_stops_tracking_and_says_so():
    scene = synthetic.make_path_scene(seed=1, width=160, height=120, frames=40, occlusion=False)
    ticks = itertools.count()
    path = tracking.track(frames(scene), truth(scene, 0), deadline=10, clock=lambda: next(ticks))
    assert path.truncated and 0 < len(path.steps) < 39
    whole = tracking.track(frames(scene), truth(scene, 0))
    assert not whole.truncated and len(whole.steps) == 39


def test_propagate_across_seam_carries_each_consensus_box_into_the_next_microtask():
    scene = synthetic.make_scene(
        seed=3, width=320, height=240, frames=60, n_objects=4, motion=2.0, clutter=4
    )
    seam = 20
    boxes = {b.track_id: truth(scene, seam, b.track_id) for b in scene.boxes(seam)}
    # Objects clear of the others at the seam (in grey, a neighbour of the same shade that
    # overlaps the box is a look-alike the template cannot tell apart).
    seeds = {
        tid: (seam, box)
        for tid, box in boxes.items()
        if box is not None
        and all(other is None or iou(box, other) == 0 for t, other in boxes.items() if t != tid)
    }
    assert len(seeds) == 4
    paths = tracking.propagate_across_seam(frames(scene, seam, 45), seeds)
    assert set(paths) == set(seeds)
    for tid, path in paths.items():
        assert path.steps and path.steps[0].frame == seam + 1
        good = [s for s in path.steps if not s.lost]
        ious = [iou(s.box, truth(scene, s.frame, tid)) for s in good if truth(scene, s.frame, tid)]
        assert ious and np.mean(ious) > 0.9, (tid, ious)


def test_a_box_without_area_is_refused():
    with pytest.raises(ValueError):
        tracking.BoxTracker(np.zeros((10, 10), np.uint8), (5.0, 5.0, 5.0, 8.0))


@pytest.mark.parametrize("grow", [1.8, 0.6])
def test_an_object_coming_closer_or_going_away_keeps_a_box_of_its_size(grow):
    scene = synthetic.make_path_scene(
        seed=1, width=640, height=360, frames=90, speed=2.0, occlusion=False, grow=grow
    )
    first, last = truth(scene, 0), truth(scene, 89)
    assert (last[2] - last[0]) / (first[2] - first[0]) == pytest.approx(grow, abs=0.05)
    fr = frames(scene)

    def mean_iou(params):
        steps = tracking.track(fr, first, params=params).steps
        return np.mean([iou(s.box, truth(scene, s.frame)) for s in steps if not s.lost])

    followed = mean_iou(tracking.Params())
    assert followed > 0.85
    assert followed > mean_iou(tracking.Params(scale_step=0.0)) + 0.2  # position only: not enough
