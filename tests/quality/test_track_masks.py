"""Masks on tracks: gold scoring on keyframe masks and consensus of the replicas' masks (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from quality import masks, scoring
from tasks import rle
from tasks.annotations import AnnotationContext, validate_payload

H, W = 40, 60
CTX = AnnotationContext("track", ["car"], W, H, 0, 10, track_masks=True)


def _square(x0, y0, side=10):
    m = np.zeros((H, W), bool)
    m[y0 : y0 + side, x0 : x0 + side] = True
    return m


def _frames(tid=1, *, mask0=None, mask10=None, x0=5):
    kf0 = {"frame": 0, "box": [x0, 5, x0 + 10, 15]}
    kf10 = {"frame": 10, "box": [x0 + 20, 5, x0 + 30, 15]}
    if mask0 is not None:
        kf0["mask"] = rle.encode(mask0)
    if mask10 is not None:
        kf10["mask"] = rle.encode(mask10)
    payload = {"tracks": [{"id": tid, "label": "car", "keyframes": [kf0, kf10]}]}
    return validate_payload(payload, CTX).frames


def _score(answer, submitted):
    return scoring.score_stored("track", answer, submitted, classes=["car"])


def test_perfect_masks_score_as_perfect_boxes():
    answer = _frames(mask0=_square(5, 5), mask10=_square(25, 5))
    s = _score(answer, _frames(tid=7, mask0=_square(5, 5), mask10=_square(25, 5)))
    assert s.metrics["keyframe_mask_iou"] == 1.0
    assert s.score == pytest.approx(1.0)


def test_keyframe_masks_are_compared_through_the_track_matching():
    answer = _frames(mask0=_square(5, 5), mask10=_square(25, 5))
    # Same boxes, the mask shifted by 1 px (IoU 90/110) on one keyframe, none on the other.
    half = _score(answer, _frames(tid=9, mask0=_square(6, 5)))
    assert half.metrics["keyframe_mask_iou"] == pytest.approx((9 / 11 + 0) / 2, abs=1e-4)
    w = scoring.TRACK_MASK_WEIGHT
    assert half.score == pytest.approx((1 - w) * 1.0 + w * (9 / 22), abs=1e-4)
    # A track that is not matched (boxes elsewhere) gets no mask credit at all.
    lost = _score(answer, _frames(tid=9, mask0=_square(30, 5), mask10=_square(50, 5), x0=30))
    assert lost.metrics["keyframe_mask_iou"] == 0.0


def test_no_mask_in_the_answer_adds_no_mask_term():
    s = _score(_frames(), _frames(mask0=_square(5, 5)))
    assert "keyframe_mask_iou" not in s.metrics and s.score == pytest.approx(1.0)


def _consensus_frames():
    # One consensus identity (0) present on every frame, as quality.tracks stores it.
    return {str(f): [{"track": 0, "label": "car", "box": [5, 5, 15, 15]}] for f in range(11)}


@pytest.mark.parametrize("method", masks.METHODS)
def test_consensus_fuses_the_replicas_masks_on_a_keyframe(method):
    truth = _square(5, 5)
    a, b, c = truth.copy(), truth.copy(), truth.copy()
    a[5:15, 15] = True  # one rater paints a column too many
    c[5:15, 5] = False  # one a column too few
    raters = [_frames(tid=t, mask0=m) for t, m in ((1, a), (2, b), (3, c))]
    assoc = {(0, 1): 0, (1, 2): 0, (2, 3): 0}
    out = masks.track_mask_consensus(raters, [1, 1, 1], assoc, _consensus_frames(), method=method)
    assert (rle.decode(out.frames["0"][0]["rle"]) == truth).all()
    assert "rle" not in out.frames["5"][0] and "rle" not in out.frames["10"][0]
    assert out.annotator_dice[1] == 1.0 > out.annotator_dice[0]
    assert 0.5 < out.frame_agreement[0] <= 1.0
    if method == "vote":  # the share of trust on the winning side, over the marked pixels
        assert out.frame_agreement[0] < 1.0


def test_a_mask_needs_a_weighted_majority_of_replicas():
    raters = [
        _frames(tid=1, mask0=_square(5, 5)),
        _frames(tid=2),
        _frames(tid=3),
    ]
    assoc = {(0, 1): 0, (1, 2): 0, (2, 3): 0}
    alone = masks.track_mask_consensus(raters, [1, 1, 1], assoc, _consensus_frames())
    assert "rle" not in alone.frames["0"][0]
    assert alone.annotator_dice == (None, None, None)
    trusted = masks.track_mask_consensus(raters, [5, 1, 1], assoc, _consensus_frames())
    assert (rle.decode(trusted.frames["0"][0]["rle"]) == _square(5, 5)).all()


def test_a_mask_joins_only_the_identity_its_track_was_associated_with():
    raters = [_frames(tid=1, mask0=_square(5, 5)), _frames(tid=2, mask0=_square(5, 5))]
    cons = {"0": [{"track": 0, "label": "car", "box": [5, 5, 15, 15]}]}
    out = masks.track_mask_consensus(raters, [1, 1], {(0, 1): 3, (1, 2): 3}, cons)
    assert "rle" not in out.frames["0"][0]


def test_stitched_tracks_carry_their_segments_keyframe_masks_the_earlier_segment_first():
    a, b = rle.encode(_square(5, 5)), rle.encode(_square(6, 5))
    seg0 = {"9": [{"track": 0, "label": "car", "box": [5, 5, 15, 15], "rle": a}]}
    seg1 = {
        "9": [{"track": 4, "label": "car", "box": [5, 5, 15, 15], "rle": b}],
        "12": [{"track": 4, "label": "car", "box": [5, 5, 15, 15], "rle": b}],
    }
    target = {
        key: [{"track": 2, "label": "car", "box": [5, 5, 15, 15]}] for key in ("9", "10", "12")
    }
    masks.carry_track_masks(target, [seg0, seg1], {(0, 0): 2, (1, 4): 2})
    assert target["9"][0]["rle"] == a  # the shared frame: the earlier segment's, as for boxes
    assert target["12"][0]["rle"] == b
    assert "rle" not in target["10"][0]
