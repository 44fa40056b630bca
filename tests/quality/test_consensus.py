import numpy as np
import pytest

from quality.boxes import FrameBoxes
from quality.consensus import box_consensus, class_consensus, fuse_frame
from quality.scoring import score_boxes
from quality.simulator import PRECISE, SLOPPY, SPAMMER, SimulatedWorker
from tests.quality._truth import FRAME_SIZE, moving_objects


def test_three_precise_annotators_reproduce_the_truth():
    truth = moving_objects(n_frames=10, seed=1)
    anns = [
        SimulatedWorker(f"w{i}", PRECISE, seed=i).annotate(
            truth, frame_size=FRAME_SIZE, n_classes=2
        )
        for i in range(3)
    ]
    c = box_consensus(anns)
    s = score_boxes(truth, c.frames)
    assert s.f1 == pytest.approx(1.0)
    assert s.mean_iou > 0.95
    assert c.agreement > 0.95


def test_spammer_boxes_are_dropped_and_the_spammer_disagrees():
    truth = moving_objects(n_frames=10, seed=2)
    anns = [
        SimulatedWorker("a", PRECISE, seed=1).annotate(truth, frame_size=FRAME_SIZE),
        SimulatedWorker("b", SLOPPY, seed=2).annotate(truth, frame_size=FRAME_SIZE),
        SimulatedWorker("c", SPAMMER, seed=3).annotate(truth, frame_size=FRAME_SIZE),
    ]
    c = box_consensus(anns)
    s = score_boxes(truth, c.frames)
    assert s.precision == pytest.approx(1.0)
    assert s.recall > 0.95
    assert c.annotator_agreement[2] < 0.3 < 0.9 < c.annotator_agreement[0]


def test_trust_decides_between_disagreeing_annotators():
    good = FrameBoxes.make([[0, 0, 10, 10]])
    bad = FrameBoxes.make([[50, 50, 60, 60]])
    # Two low-trust annotators against one trusted one: the trusted one's box has the majority.
    fc = fuse_frame([good, bad, bad], [0.95, 0.2, 0.2])
    assert fc.boxes.boxes.tolist() == [[0, 0, 10, 10]]
    fc = fuse_frame([good, bad, bad], [0.5, 0.5, 0.5])
    assert fc.boxes.boxes.tolist() == [[50, 50, 60, 60]]


def test_fused_coordinates_are_trust_weighted():
    a = FrameBoxes.make([[0, 0, 10, 10]], labels=[0])
    b = FrameBoxes.make([[2, 0, 12, 10]], labels=[1])
    fc = fuse_frame([a, b], [3.0, 1.0])
    assert fc.boxes.boxes[0] == pytest.approx([0.5, 0, 10.5, 10])
    assert fc.boxes.labels.tolist() == [0]
    assert fc.support.tolist() == [1.0]


def test_a_tie_between_two_annotators_keeps_nothing_and_lowers_agreement():
    a = {0: FrameBoxes.make([[0, 0, 10, 10]])}
    b = {0: FrameBoxes.make([[50, 50, 60, 60]])}
    c = box_consensus([a, b])
    assert len(c.frames[0]) == 0
    assert c.agreement == 0.0


def test_class_consensus_weighted_vote():
    c = class_consensus([{0: 1, 1: 2}, {0: 1, 1: 0}, {0: 2, 1: 0}], [1, 1, 1])
    assert c.labels == {0: 1, 1: 0}
    assert c.annotator_agreement == pytest.approx(np.array([0.5, 1.0, 0.5]))
    c = class_consensus([{0: 1}, {0: 2}, {0: 2}], [5, 1, 1])
    assert c.labels == {0: 1}
