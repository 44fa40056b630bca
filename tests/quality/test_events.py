"""Events over time (quality.events): temporal IoU, matching, scores and consensus."""

import numpy as np
import pytest

from quality.events import (
    Event,
    event_consensus,
    from_frames,
    match_events,
    merge_runs,
    runs,
    score_events,
    tiou,
    tiou_matrix,
    to_frames,
)
from quality.simulator import PRECISE, SLOPPY, SPAMMER, annotate_events, random_events


def test_tiou_counts_inclusive_frames():
    assert tiou((0, 9), (0, 9)) == 1.0
    assert tiou((0, 9), (5, 14)) == pytest.approx(5 / 15)
    assert tiou((0, 9), (10, 19)) == 0.0  # touching but sharing no frame
    assert tiou((5, 5), (5, 5)) == 1.0  # one frame long
    m = tiou_matrix(np.array([[0, 9], [20, 29]]), np.array([[5, 14], [20, 29], [40, 41]]))
    assert m.shape == (2, 3)
    assert m[0, 0] == pytest.approx(5 / 15) and m[1, 1] == 1.0 and m[0, 2] == 0.0


def test_matching_is_per_label_and_one_to_one():
    gold = [Event("cross", 0, 99), Event("wave", 0, 99)]
    pred = [Event("wave", 5, 99), Event("cross", 10, 99), Event("cross", 0, 95)]
    rows, cols, _ious = match_events(gold, pred, threshold=0.5)
    pairs = dict(zip(rows.tolist(), cols.tolist(), strict=True))
    # Hungarian: "cross" gold takes the better of its two candidates; labels never cross.
    assert pairs == {0: 2, 1: 0}
    s = score_events(gold, pred)
    assert (s.tp, s.fp, s.fn) == (2, 1, 0)
    assert s.spurious == (1,) and s.missed == ()
    assert s.precision == pytest.approx(2 / 3) and s.recall == 1.0


def test_a_wrong_label_or_a_loose_edge_costs_score():
    gold = [Event("cross", 100, 199)]
    assert score_events(gold, gold).score == 1.0
    assert score_events(gold, [Event("wave", 100, 199)]).f1 == 0.0
    loose = score_events(gold, [Event("cross", 80, 199)])
    assert loose.f1 == 1.0 and loose.score == pytest.approx(100 / 120)
    assert score_events(gold, [Event("cross", 180, 260)]).tp == 0  # below tIoU 0.5
    assert score_events([], []).score == 1.0
    assert score_events(gold, []).score == 0.0


def test_runs_and_gap_merging():
    mask = np.array([0, 1, 1, 0, 1, 0, 0, 0, 1, 1, 1], dtype=bool)
    assert runs(mask, origin=100) == [(101, 102), (104, 104), (108, 110)]
    assert merge_runs([(1, 2), (4, 4), (8, 10)], max_gap=1) == [(1, 4), (8, 10)]
    assert merge_runs([(1, 2), (4, 4), (8, 10)], min_length=2) == [(1, 2), (8, 10)]


def test_consensus_edges_follow_the_weighted_median_and_spam_drops_out():
    a = [Event("cross", 100, 200)]
    b = [Event("cross", 104, 204)]
    spam = [Event("cross", 0, 50), Event("wave", 10, 20)]
    c = event_consensus([a, b, spam], [1, 1, 1], frame_start=0, frame_end=299)
    # 2 of 3 cover frames 104..200: the vote keeps exactly those; the spammer's alone fall out.
    assert c.events == [Event("cross", 104, 200)]
    assert c.annotator_agreement[2] == 0.0
    assert c.annotator_agreement[0] > 0.9 and c.annotator_agreement[1] > 0.9
    assert c.frame_agreement[150] == pytest.approx(2 / 3)
    assert c.frame_agreement[250] == 1.0


def test_trust_weights_decide_between_disagreeing_workers():
    trusted = [Event("cross", 10, 40)]
    two_spammers = [[Event("cross", 60, 90)], [Event("cross", 60, 90)]]
    equal = event_consensus([trusted, *two_spammers], [1, 1, 1], frame_start=0, frame_end=99)
    assert equal.events == [Event("cross", 60, 90)]
    weighted = event_consensus(
        [trusted, *two_spammers], [0.9, 0.2, 0.2], frame_start=0, frame_end=99
    )
    assert weighted.events == [Event("cross", 10, 40)]
    assert weighted.agreement > equal.agreement


def test_consensus_keeps_two_events_of_a_label_apart_and_merges_small_gaps():
    one = [Event("cross", 10, 20), Event("cross", 23, 40)]
    c = event_consensus([one, one], frame_start=0, frame_end=50)
    assert c.events == [Event("cross", 10, 20), Event("cross", 23, 40)]
    merged = event_consensus([one, one], frame_start=0, frame_end=50, max_gap=2)
    assert merged.events == [Event("cross", 10, 40)]
    short = event_consensus([[Event("x", 5, 6)]] * 2, frame_start=0, frame_end=50, min_length=3)
    assert short.events == []


def test_events_on_tracks_are_voted_per_track():
    a = [Event("cross", 0, 9, track=1), Event("cross", 0, 9, track=2)]
    b = [Event("cross", 0, 9, track=1)]
    c = event_consensus([a, b, b], frame_start=0, frame_end=9)
    assert c.events == [Event("cross", 0, 9, track=1)]


def test_stored_frames_round_trip_keeps_adjacent_events_apart():
    events = [Event("cross", 3, 5), Event("cross", 6, 8), Event("wave", 0, 9, track=4)]
    frames = to_frames(events, 0, 9)
    assert sorted(frames) == sorted(str(f) for f in range(10))
    assert frames["4"] == [
        {"label": "cross", "event": 0},
        {"label": "wave", "event": 2, "track": 4},
    ]
    assert from_frames(frames) == events


@pytest.mark.parametrize("seed", range(5))
def test_consensus_of_a_simulated_crowd_beats_its_sloppy_members(seed):
    rng = np.random.default_rng(seed)
    labels = ["cross", "wave", "fall"]
    truth = random_events(frame_start=0, frame_end=599, labels=labels, n=6, rng=rng)
    anns = [
        annotate_events(truth, profile=p, rng=rng, frame_start=0, frame_end=599, labels=labels)
        for p in (PRECISE, SLOPPY, SLOPPY, SPAMMER)
    ]
    c = event_consensus(anns, [0.9, 0.7, 0.7, 0.1], frame_start=0, frame_end=599, min_length=3)
    ours = score_events(truth, c.events).f1
    assert ours >= 0.8
    assert c.annotator_agreement[3] < c.annotator_agreement[0]


def test_gold_scoring_of_stored_events_points_at_the_frames_off():
    from quality.scoring import score_stored

    answer = to_frames([Event("cross", 10, 29), Event("wave", 40, 49)], 0, 59)
    good = to_frames([Event("wave", 41, 49), Event("cross", 10, 29)], 0, 59)
    s = score_stored("event", answer, good, classes=["cross", "wave"], iou_threshold=0.5)
    assert s.metrics["f1"] == 1.0 and s.score == pytest.approx((1 + 0.9) / 2)
    assert s.frames_off == [40] and s.frames_total == 60
    late = to_frames([Event("cross", 25, 45)], 0, 59)
    bad = score_stored("event", answer, late, classes=["cross", "wave"], iou_threshold=0.5)
    assert bad.metrics["recall"] == 0.0 and bad.score == 0.0
    assert 10 in bad.frames_off and 30 in bad.frames_off and 5 not in bad.frames_off


def test_track_events_follow_the_consensus_identity_of_their_track():
    from quality.events import track_event_consensus

    # Three annotators number the same object 5, 7 and 1; the third also marks a stray track 2.
    association = {(0, 5): 0, (1, 7): 0, (2, 1): 0, (2, 2): 1}
    anns = [
        [Event("crossing", 10, 20, track=5)],
        [Event("crossing", 11, 21, track=7)],
        [Event("crossing", 10, 20, track=1), Event("crossing", 0, 30, track=2)],
    ]
    events, per = track_event_consensus(anns, None, association, {0}, frame_start=0, frame_end=30)
    assert events == [Event("crossing", 10, 20, track=0)]  # identity 1 was not kept
    # The third annotator's stray event counts against them.
    assert per[0] == 1.0 and per[2] < per[1] < 1.0
    # An event on a track the annotator never drew (no association) counts for nothing.
    events, per = track_event_consensus(
        [[Event("crossing", 0, 5, track=9)]] * 3,
        None,
        association,
        {0},
        frame_start=0,
        frame_end=30,
    )
    assert events == [] and list(per) == [0.0, 0.0, 0.0]


def test_join_events_merges_what_two_segments_saw_of_one_event():
    from quality.events import join_events

    events = [
        Event("cross", 15, 29, track=0),  # left segment, to its end
        Event("cross", 25, 40, track=0),  # right segment, from the shared frames on
        Event("cross", 41, 45, track=0),  # touching: the same event cut at a boundary
        Event("cross", 50, 55, track=0),  # a gap: another event
        Event("cross", 20, 30, track=1),  # another track
        Event("wave", 20, 30, track=0),  # another label
    ]
    assert join_events(events) == [
        Event("cross", 15, 45, track=0),
        Event("cross", 20, 30, track=1),
        Event("wave", 20, 30, track=0),
        Event("cross", 50, 55, track=0),
    ]


def test_gold_scoring_of_a_track_job_with_events_follows_the_matched_tracks():
    from quality.scoring import score_stored
    from tasks.annotations import AnnotationContext, validate_payload

    ctx = AnnotationContext("track", ["person"], 640, 360, 0, 29, event_labels=["crossing"])

    def frames(tid, events):
        track = {
            "id": tid,
            "label": "person",
            "keyframes": [
                {"frame": 0, "box": [10, 10, 60, 90]},
                {"frame": 29, "box": [90, 10, 140, 90]},
            ],
        }
        other = {
            "id": tid + 1,
            "label": "person",
            "keyframes": [{"frame": 0, "box": [300, 200, 350, 280]}],
        }
        payload = {"tracks": [track, other], "events": [{**e, "track": tid} for e in events]}
        return validate_payload(payload, ctx).frames

    answer = frames(3, [{"label": "crossing", "start": 5, "end": 14}])
    kw = {"classes": ["person"], "iou_threshold": 0.5}
    # The same tracks numbered 8 and 9: the event on track 8 is the event on gold track 3.
    same = score_stored(
        "track", answer, frames(8, [{"label": "crossing", "start": 5, "end": 14}]), **kw
    )
    assert same.metrics["event_f1"] == 1.0 and same.score == pytest.approx(1.0)
    # Right tracks, no event: the events' score (0) sinks the whole.
    missing = score_stored("track", answer, frames(8, []), **kw)
    assert missing.metrics["event_f1"] == 0.0 and missing.score == 0.0
    # The event on the other track (8 + 1 matches gold's 4): it does not count.
    wrong = frames(8, [])
    for f in range(5, 15):
        wrong[str(f)].append({"label": "crossing", "event": 0, "track": 9})
    assert score_stored("track", answer, wrong, **kw).metrics["event_f1"] == 0.0
    # A track job without events scores as before.
    plain = score_stored("track", frames(3, []), frames(8, []), **kw)
    assert "event_f1" not in plain.metrics and plain.score == pytest.approx(1.0)
