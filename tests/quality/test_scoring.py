import numpy as np
import pytest

from quality.boxes import FrameBoxes, iou_matrix
from quality.scoring import (
    mask_iou_matrix,
    score_boxes,
    score_classes,
    score_polygons,
    score_tracks,
)
from tests.quality._truth import moving_objects


def fb(boxes, labels=None, ids=None):
    return FrameBoxes.make(boxes, labels, ids)


def test_iou_matrix_of_known_boxes():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    assert iou_matrix(a, b) == pytest.approx(np.array([[1.0, 50 / 150, 0.0]]))


def test_perfect_boxes_score_one():
    truth = moving_objects(n_frames=5)
    s = score_boxes(truth, truth)
    assert (s.precision, s.recall, s.f1) == (1.0, 1.0, 1.0)
    assert s.mean_iou == pytest.approx(1.0)
    assert s.frames_off(0.99) == []


def test_a_box_off_below_the_threshold_is_a_miss_and_a_false_alarm_on_that_frame():
    gold = {0: fb([[0, 0, 10, 10]]), 1: fb([[0, 0, 10, 10]])}
    pred = {0: fb([[0, 0, 10, 10]]), 1: fb([[6, 0, 16, 10]])}  # IoU 4/16 on frame 1
    s = score_boxes(gold, pred, iou_threshold=0.5)
    assert (s.tp, s.fp, s.fn) == (1, 1, 1)
    assert s.f1 == pytest.approx(0.5)
    assert s.frames_off(0.99) == [1]


def test_hungarian_matching_finds_the_pairing_greedy_would_miss():
    # Greedy by best IoU pairs gold 0 with pred 0 (IoU 0.67) and leaves gold 1 below the
    # threshold; the optimal pairing matches both.
    gold = {0: fb([[0, 0, 10, 10], [4, 0, 14, 10]])}
    pred = {0: fb([[2, 0, 12, 10], [-1, 0, 9, 10]])}
    s = score_boxes(gold, pred, iou_threshold=0.5)
    assert s.tp == 2


def test_classes_must_agree_for_a_match():
    gold = {0: fb([[0, 0, 10, 10]], labels=[0])}
    assert score_boxes(gold, {0: fb([[0, 0, 10, 10]], labels=[1])}).tp == 0
    assert score_boxes(gold, {0: fb([[0, 0, 10, 10]], labels=[0])}).tp == 1


def test_missing_prediction_frame_counts_as_empty():
    gold = {0: fb([[0, 0, 10, 10]]), 1: fb([])}
    s = score_boxes(gold, {})
    assert (s.tp, s.fn, s.fp) == (0, 1, 0)
    assert s.frames_off(0.5) == [0]


def test_tracks_with_swapped_identity_lose_idf1_and_count_switches():
    # Objects 0 and 2 bounce inside the frame (odd ones cross it), so both are always there.
    truth = moving_objects(n_objects=3, n_frames=10, seed=3)
    truth = {f: fb.take(fb.ids != 1) for f, fb in truth.items()}
    swapped = {}
    for f, boxes in truth.items():
        ids = boxes.ids.copy()
        if f >= 5:
            ids = np.where(ids == 0, 2, 0)
        swapped[f] = FrameBoxes(boxes.boxes, boxes.labels, ids)
    perfect = score_tracks(truth, truth)
    assert perfect.id_switches == 0
    assert perfect.idf1 == pytest.approx(1.0)
    s = score_tracks(truth, swapped)
    assert s.boxes.f1 == pytest.approx(1.0)
    assert s.id_switches == 2
    assert s.idf1 == pytest.approx(0.5)
    assert s.score < perfect.score


def test_classes_accuracy_and_frames_off():
    s = score_classes({0: 1, 1: 2, 2: 0}, {0: 1, 1: 0})
    assert s.accuracy == pytest.approx(1 / 3)
    assert s.frames_off() == [1, 2]


def test_polygon_mask_iou():
    square = np.array([[0, 0], [100, 0], [100, 100], [0, 100]])
    half = np.array([[50, 0], [150, 0], [150, 100], [50, 100]])
    iou = mask_iou_matrix([square], [square, half])
    assert iou[0, 0] == pytest.approx(1.0)
    assert iou[0, 1] == pytest.approx(1 / 3, abs=0.02)
    s = score_polygons({0: [square]}, {0: [half]}, iou_threshold=0.3)
    assert s.tp == 1
    assert s.mean_iou == pytest.approx(1 / 3, abs=0.02)
