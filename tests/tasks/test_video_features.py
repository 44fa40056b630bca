"""Pure ingestion computation: splitting plans, shot detection, complexity features."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments import pricing
from tasks import features
from tasks.features import FramePlanner, TrackPlanner, plan_frame_groups, plan_track_segments
from tasks.synthetic import make_scene, render_frame


def _spans(segments):
    return [(s.frame_start, s.frame_end) for s in segments]


def test_track_segments_overlap_and_stop_at_the_end():
    segs = plan_track_segments(50, [], segment_frames=20, overlap_frames=5, keyframe_step=10)
    assert _spans(segs) == [(0, 19), (15, 34), (30, 49)]
    assert [s.frames for s in segs] == [(0, 10, 19), (15, 25, 34), (30, 40, 49)]


def test_track_segments_without_overlap_tile_the_video():
    segs = plan_track_segments(45, [], segment_frames=15, overlap_frames=0, keyframe_step=7)
    assert _spans(segs) == [(0, 14), (15, 29), (30, 44)]


def test_a_shot_cut_ends_a_segment_and_nothing_overlaps_across_it():
    segs = plan_track_segments(60, [20], segment_frames=20, overlap_frames=4, keyframe_step=5)
    # 0..19 is a full segment that ends exactly at the cut: no speculative tail segment.
    assert _spans(segs) == [(0, 19), (20, 39), (36, 55), (52, 59)]
    assert [s.shot for s in segs] == [0, 1, 1, 1]
    assert features.shared_frames(segs[0], segs[1]) == 0
    assert features.shared_frames(segs[1], segs[2]) == 4


def test_one_frame_shots_and_a_video_shorter_than_a_segment():
    segs = plan_track_segments(5, [1, 2], segment_frames=10, overlap_frames=3, keyframe_step=2)
    assert _spans(segs) == [(0, 0), (1, 1), (2, 4)]
    assert [s.frames for s in segs] == [(0,), (1,), (2, 4)]


def test_frame_groups_sample_every_step():
    segs = plan_frame_groups(25, frame_step=3, frames_per_task=4)
    assert [s.frames for s in segs] == [(0, 3, 6, 9), (12, 15, 18, 21), (24,)]
    assert plan_frame_groups(1, frame_step=30, frames_per_task=10)[0].frames == (0,)


def test_planners_refuse_bad_settings_and_out_of_order_frames():
    with pytest.raises(ValueError):
        TrackPlanner(segment_frames=10, overlap_frames=10, keyframe_step=1)
    with pytest.raises(ValueError):
        FramePlanner(frame_step=0, frames_per_task=1)
    planner = TrackPlanner(segment_frames=10, overlap_frames=2, keyframe_step=1)
    planner.push(0, False)
    with pytest.raises(ValueError):
        planner.push(2, False)


@settings(max_examples=150, deadline=None)
@given(
    frame_count=st.integers(1, 400),
    cuts=st.sets(st.integers(1, 399), max_size=6),
    segment=st.integers(2, 60),
    overlap_fraction=st.floats(0, 0.9),
    step=st.integers(1, 12),
)
def test_streaming_track_planner_keeps_its_contract(frame_count, cuts, segment, overlap_fraction,
                                                    step):  # fmt: skip
    """Every keyframe is available when its segment finishes, holding back only one frame."""
    overlap = min(segment - 1, int(segment * overlap_fraction))
    cuts = sorted(c for c in cuts if c < frame_count)
    planner = TrackPlanner(segment_frames=segment, overlap_frames=overlap, keyframe_step=step)
    kept: set[int] = set()
    pending: set[int] = set()
    segments = []
    max_pending = 0
    for i in range(frame_count):
        for seg in planner.push(i, i in cuts):
            assert all(f in kept or f in pending or f in (i, i - 1) for f in seg.frames)
            segments.append(seg)
        if planner.needs(i):
            kept.add(i)
        elif planner.maybe(i):
            pending.add(i)
        pending = {f for f in pending if f >= planner.horizon}
        max_pending = max(max_pending, len(pending))
    for seg in planner.finish():
        assert all(f in kept or f in pending or f == frame_count - 1 for f in seg.frames)
        segments.append(seg)
    # Frames held aside lie within one segment of the horizon: bounded by the job's segment
    # length, never by the video's length.
    assert max_pending <= segment

    shots = list(zip([0, *cuts], [*(c - 1 for c in cuts), frame_count - 1], strict=True))
    covered = set()
    for k, seg in enumerate(segments):
        a, b = shots[seg.shot]
        assert a <= seg.frame_start <= seg.frame_end <= b  # never across a cut
        assert seg.frame_end - seg.frame_start + 1 <= segment
        assert seg.frames == features.keyframes(seg.frame_start, seg.frame_end, step)
        covered.update(range(seg.frame_start, seg.frame_end + 1))
        if k and segments[k - 1].shot == seg.shot:
            assert features.shared_frames(segments[k - 1], seg) == overlap
            assert segments[k - 1].frame_end - segments[k - 1].frame_start + 1 == segment
    assert covered == set(range(frame_count))
    # Only frames some segment shows were ever stored for sure.
    assert kept <= {f for s in segments for f in s.frames}


def _gray(image: np.ndarray, width: int = 96) -> np.ndarray:
    step = max(1, image.shape[1] // width)
    return image[::step, ::step].mean(axis=2).astype(np.uint8)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_shot_detector_finds_exactly_the_generated_cuts(seed):
    scene = make_scene(seed=seed, width=192, height=108, frames=120, n_objects=4, motion=4.0,
                       shot_cuts=(30, 61, 90))  # fmt: skip
    found = features.detect_shots(_gray(render_frame(scene, i)) for i in range(scene.frames))
    assert found == [30, 61, 90]


def test_motion_and_clutter_grow_with_the_scene():
    still = make_scene(seed=5, width=160, height=120, frames=10, n_objects=2, motion=0.0, clutter=0)
    busy = make_scene(seed=5, width=160, height=120, frames=10, n_objects=8, motion=6.0, clutter=30)

    def measure(scene):
        det = features.ShotDetector()
        motions, clutters = [], []
        for i in range(scene.frames):
            g = _gray(render_frame(scene, i))
            motions.append(det.push(g)[1])
            clutters.append(features.edge_density(g))
        return float(np.mean(motions[1:])), float(np.mean(clutters))

    m0, c0 = measure(still)
    m1, c1 = measure(busy)
    assert m0 == 0.0 and m1 > 0.005
    assert c1 > c0 > 0.0
    assert _complexity(m1, c1) > _complexity(m0, c0) >= 1.0


def _complexity(motion: float, clutter: float) -> float:
    return pricing.complexity(motion=motion, clutter=clutter, policy=pricing.PricingPolicyData())


def test_complexity_is_clamped():
    assert _complexity(0.0, 0.0) == 1.0
    assert _complexity(1.0, 1.0) == 3.0
    assert _complexity(-1.0, 0.0) == 0.75
    assert _complexity(0.02, 0.1) == pytest.approx(1 + 25 * 0.02 + 2 * 0.1)


def test_edge_density_and_difference_on_known_images():
    flat = np.full((20, 20), 100, np.uint8)
    assert features.edge_density(flat) == 0.0
    stripes = np.tile((np.arange(20) // 2 % 2 * 255).astype(np.uint8), (20, 1))
    assert features.edge_density(stripes) == 1.0
    assert features.frame_difference(flat, flat + 51) == pytest.approx(0.2)
    hist = features.histogram(flat)
    assert hist.sum() == pytest.approx(1.0) and hist[100 >> 3] == 1.0


def test_mask_content_measures_count_area_and_boundary_per_object():
    import numpy as np

    from tasks import rle
    from tasks.features import mask_content

    square = np.zeros((20, 30), bool)
    square[2:12, 5:15] = True  # 10 x 10: 100 px, 40 edges
    strip = np.zeros((20, 30), bool)
    strip[15:16, 0:30] = True  # 1 x 30 along the border: 30 px, 62 edges
    frames = {
        "0": [{"label": "a", "rle": rle.encode(square)}],
        "5": [{"label": "b", "rle": rle.encode(strip)}],
        "9": [],
    }
    content = mask_content(frames)
    assert content.count == 2
    assert content.area_per_object == 65.0
    assert content.boundary_per_object == (40 + 62) / 2
    assert content.objects_per_frame == 2 / 3
    assert mask_content({"0": []}).count == 0
