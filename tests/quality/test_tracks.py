import numpy as np

from quality.boxes import FrameBoxes
from quality.scoring import score_tracks
from quality.simulator import PRECISE, SLOPPY, SPAMMER, SimulatedWorker
from quality.tracks import stitch_seam, stitch_tracks, track_consensus
from tests.quality._truth import FRAME_SIZE, moving_objects


def _relabel(ann, mapping, frames):
    return {
        f: FrameBoxes(ann[f].boxes, ann[f].labels, np.array([mapping[int(i)] for i in ann[f].ids]))
        for f in frames
    }


def test_track_consensus_keeps_identity_with_a_spammer_in_the_crowd():
    truth = moving_objects(n_objects=4, n_frames=20, seed=5)
    anns = [
        SimulatedWorker("a", PRECISE, seed=1).annotate(truth, frame_size=FRAME_SIZE),
        SimulatedWorker("b", SLOPPY, seed=2).annotate(truth, frame_size=FRAME_SIZE),
        SimulatedWorker("c", SPAMMER, seed=3).annotate(truth, frame_size=FRAME_SIZE),
    ]
    # Annotators number their tracks as they like.
    anns[1] = _relabel(anns[1], {0: 7, 1: 3, 2: 9, 3: 1}, anns[1])
    c = track_consensus(anns)
    s = score_tracks(truth, c.frames)
    assert s.id_switches == 0
    assert s.idf1 > 0.95
    assert c.annotator_agreement[2] < 0.2 < 0.8 < c.annotator_agreement[0]


def test_an_identity_switch_lowers_the_switchers_agreement():
    truth = moving_objects(n_objects=3, n_frames=20, seed=6)
    anns = [
        SimulatedWorker(str(i), PRECISE, seed=i).annotate(truth, frame_size=FRAME_SIZE)
        for i in range(3)
    ]
    # Annotator 2 swaps the ids of objects 0 and 2 (both always in the picture) halfway.
    swap = {0: 2, 2: 0}
    anns[2] = {
        f: FrameBoxes(
            fb.boxes,
            fb.labels,
            fb.ids if f < 10 else np.array([swap.get(int(i), i) for i in fb.ids]),
        )
        for f, fb in anns[2].items()
    }
    c = track_consensus(anns)
    assert c.annotator_agreement[2] < 0.8 < c.annotator_agreement[0]
    assert score_tracks(truth, c.frames).id_switches == 0


def test_stitched_tracks_keep_their_identity_across_seams():
    truth = moving_objects(n_objects=5, n_frames=50, seed=8)
    # Three segments of 20 frames sharing 5 frames, each with its own local track ids.
    spans = [range(0, 20), range(15, 35), range(30, 50)]
    rng = np.random.default_rng(0)
    segments = []
    for span in spans:
        local = {int(i): int(j) for i, j in zip(range(5), rng.permutation(5) + 10, strict=True)}
        seg_truth = {f: truth[f] for f in span}
        ann = SimulatedWorker("p", PRECISE, seed=span.start).annotate(
            seg_truth, frame_size=FRAME_SIZE
        )
        segments.append(_relabel(ann, local, span))
    stitched = stitch_tracks(segments)
    assert not any(seam.flagged for seam in stitched.seams)
    s = score_tracks(truth, stitched.frames)
    assert s.id_switches == 0
    assert s.idf1 > 0.99
    assert len({int(i) for fb in stitched.frames.values() for i in fb.ids}) == 5


def test_a_bad_seam_is_flagged_and_not_merged():
    truth = moving_objects(n_objects=2, n_frames=30, seed=4)
    left = {f: truth[f] for f in range(0, 20)}
    right = {}
    for f in range(15, 30):
        fb = truth[f]
        boxes = fb.boxes.copy()
        boxes[0] += [90, 0, 90, 0]  # track 0 jumps sideways on the right of the seam
        right[f] = FrameBoxes(boxes, fb.labels, fb.ids)
    seam = stitch_seam(left, right)
    assert seam.flagged
    assert 0 not in seam.mapping
    stitched = stitch_tracks([left, right])
    assert len({int(i) for fb in stitched.frames.values() for i in fb.ids}) == 3


def test_crossing_objects_on_the_seam_are_ambiguous():
    box = np.array([[100, 100, 150, 150], [102, 100, 152, 150]], dtype=float)
    left = {f: FrameBoxes.make(box, ids=[0, 1]) for f in range(10)}
    right = {f: FrameBoxes.make(box[::-1], ids=[5, 6]) for f in range(5, 15)}
    seam = stitch_seam(left, right)
    assert seam.flagged
    assert seam.mapping == {}
