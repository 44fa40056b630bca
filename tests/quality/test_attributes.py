"""Consensus of attributes (Dawid-Skene per attribute, weighted median for numbers) and relations
(trust-weighted vote over triplets) on the consensus objects; gold scoring of both."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from quality import scoring
from quality.attributes import aggregate_extras, weighted_median
from quality.consensus import box_consensus
from quality.shapes import from_annotation, to_annotation
from quality.tracks import track_consensus
from tasks.annotations import AnnotationContext, validate_payload

SCHEMA = {
    "car": [
        {"name": "occluded", "type": "bool"},
        {"name": "colour", "type": "choice", "values": ["red", "blue", "white"]},
        {"name": "speed", "type": "number", "min": 0, "max": 200},
    ]
}
CLASSES = ["car", "person"]
BBOX = AnnotationContext(
    "bbox", CLASSES, 640, 360, 0, 0, frames=[0],
    label_attributes=SCHEMA, relation_predicates=["rides", "holds"],
)  # fmt: skip
TRACK = AnnotationContext(
    "track", CLASSES, 640, 360, 0, 9,
    label_attributes=SCHEMA, relation_predicates=["rides", "holds"],
)  # fmt: skip
CAR = [100, 100, 200, 160]
PERSON = [120, 60, 150, 130]


def _frames(payload, ctx=BBOX):
    return validate_payload(payload, ctx).frames


def _bbox_consensus(subs, weights):
    anns = [to_annotation(s, CLASSES) for s in subs]
    c = box_consensus(anns, weights)
    return from_annotation(c.frames, CLASSES)


def _jitter(box, d):
    return [v + d for v in box]


def test_weighted_median_takes_the_weight_not_the_count():
    assert weighted_median(np.array([10.0, 20.0, 90.0]), np.array([1.0, 1.0, 1.0])) == 20.0
    assert weighted_median(np.array([10.0, 20.0, 90.0]), np.array([0.1, 0.1, 5.0])) == 90.0


def test_attributes_by_vote_and_median_and_relations_by_majority_of_triplets():
    said = [
        ("red", True, 50, "rides"),
        ("red", True, 60, "rides"),
        ("blue", False, 190, "holds"),
    ]
    subs = []
    for k, (colour, occluded, speed, predicate) in enumerate(said):
        subs.append(
            _frames(
                {
                    "boxes": [
                        {"frame": 0, "label": "person", "box": _jitter(PERSON, k)},
                        {
                            "frame": 0,
                            "label": "car",
                            "box": _jitter(CAR, -k),
                            "attributes": {"colour": colour, "occluded": occluded, "speed": speed},
                        },
                    ],
                    "relations": [{"subject": 0, "predicate": predicate, "object": 1}],
                }
            )
        )
    weights = [1.0, 1.0, 1.0]
    consensus = _bbox_consensus(subs, weights)
    before = copy.deepcopy(consensus)
    out = aggregate_extras(
        "bbox", subs, consensus, weights, classes=CLASSES, label_attributes=SCHEMA
    )
    shapes = out.frames["0"]
    car = next(s for s in shapes if s["label"] == "car")
    person_index = next(j for j, s in enumerate(shapes) if s["label"] == "person")
    car_index = 1 - person_index
    assert car["attributes"] == {"colour": "red", "occluded": True, "speed": 60.0}
    assert shapes[person_index]["relations"] == [{"predicate": "rides", "object": car_index}]
    assert out.relations_kept == 1
    # The dissenter agreed with nothing; a speed of 50 is within 5% of the range of 60.
    np.testing.assert_allclose(out.attribute_agreement, [1.0, 1.0, 0.0])
    np.testing.assert_allclose(out.relation_agreement, [1.0, 1.0, 0.0])
    assert consensus == before  # the input is not changed


def test_trust_decides_between_disagreeing_annotators():
    subs = [
        _frames({"boxes": [{"frame": 0, "label": "car", "box": CAR, "attributes": {"colour": c}}]})
        for c in ("white", "blue", "blue")
    ]
    weights = [5.0, 1.0, 1.0]
    out = aggregate_extras(
        "bbox", subs, _bbox_consensus(subs, weights), weights, classes=CLASSES,
        label_attributes=SCHEMA,
    )  # fmt: skip
    assert out.frames["0"][0]["attributes"] == {"colour": "white"}


def test_a_relation_only_a_minority_asserts_is_dropped():
    subs = []
    for k in range(3):
        rel = [{"subject": 0, "predicate": "rides", "object": 1}] if k == 0 else []
        subs.append(
            _frames(
                {
                    "boxes": [
                        {"frame": 0, "label": "person", "box": PERSON},
                        {"frame": 0, "label": "car", "box": CAR},
                    ],
                    "relations": rel,
                }
            )
        )
    out = aggregate_extras("bbox", subs, _bbox_consensus(subs, None), classes=CLASSES)
    assert all("relations" not in s for s in out.frames["0"])
    assert out.relations_kept == 0


def test_many_objects_use_dawid_skene_and_see_through_a_spammer():
    rng = np.random.default_rng(3)
    colours = ["red", "blue", "white"]
    n = 30
    boxes = [
        [10 + 20 * (i % 15), 10 + 150 * (i // 15), 25 + 20 * (i % 15), 60 + 150 * (i // 15)]
        for i in range(n)
    ]
    truth = [colours[i % 3] for i in range(n)]
    subs = []
    for k in range(5):
        items = []
        for i in range(n):
            colour = truth[i] if k < 3 else colours[int(rng.integers(3))]
            items.append(
                {"frame": 0, "label": "car", "box": boxes[i], "attributes": {"colour": colour}}
            )
        subs.append(_frames({"boxes": items}))
    out = aggregate_extras(
        "bbox", subs, _bbox_consensus(subs, None), classes=CLASSES, label_attributes=SCHEMA
    )
    got = {tuple(s["box"]): s["attributes"]["colour"] for s in out.frames["0"]}
    assert [got[tuple(float(v) for v in b)] for b in boxes] == truth
    assert out.attribute_agreement[:3].tolist() == [1.0, 1.0, 1.0]
    assert out.attribute_agreement[3:].max() < 0.7


def test_tracks_aggregate_per_frame_through_the_identity_association():
    subs = []
    for k, change in enumerate((True, True, False)):
        kf_car = [
            {"frame": 0, "box": CAR, "attributes": {"occluded": False}},
            {"frame": 5, "box": CAR, "attributes": {"occluded": change}},
        ]
        subs.append(
            _frames(
                {
                    "tracks": [
                        {
                            "id": 10 + k,
                            "label": "car",
                            "keyframes": kf_car,
                            "attributes": {"colour": "red"},
                        },
                        {
                            "id": 20 + k,
                            "label": "person",
                            "keyframes": [{"frame": 0, "box": PERSON}],
                        },
                    ],
                    "relations": [{"subject": 20 + k, "predicate": "rides", "object": 10 + k}],
                },
                TRACK,
            )
        )
    anns = [to_annotation(s, CLASSES) for s in subs]
    c = track_consensus(anns, None)
    consensus = from_annotation(c.frames, CLASSES, tracks=True)
    out = aggregate_extras(
        "track", subs, consensus, classes=CLASSES, label_attributes=SCHEMA,
        association=c.association,
    )  # fmt: skip
    for f in range(10):
        car = next(s for s in out.frames[str(f)] if s["label"] == "car")
        person = next(s for s in out.frames[str(f)] if s["label"] == "person")
        assert car["attributes"] == {"colour": "red", "occluded": f >= 5}, f
        car_index = out.frames[str(f)].index(car)
        assert person["relations"] == [{"predicate": "rides", "object": car_index}]


# --- Gold scoring ---------------------------------------------------------------------------


def _scene(colour="red", speed=50, predicate="rides", car_box=CAR):
    return _frames(
        {
            "boxes": [
                {"frame": 0, "label": "person", "box": PERSON},
                {
                    "frame": 0,
                    "label": "car",
                    "box": car_box,
                    "attributes": {"colour": colour, "speed": speed, "occluded": False},
                },
            ],
            "relations": [{"subject": 0, "predicate": predicate, "object": 1}] if predicate else [],
        }
    )


def _score(answer, submitted, **kw):
    return scoring.score_stored(
        "bbox", answer, submitted, classes=CLASSES, attributes=SCHEMA, relations=True, **kw
    )


def test_a_perfect_answer_scores_full_marks_on_attributes_and_relations():
    s = _score(_scene(), _scene())
    assert s.metrics["attribute_accuracy"] == 1.0 and s.metrics["relation_f1"] == 1.0
    assert s.score == pytest.approx(1.0)


def test_numbers_count_within_tolerance_and_wrong_values_lower_the_score():
    assert _score(_scene(), _scene(speed=58)).metrics["attribute_accuracy"] == 1.0  # 5% of 200
    wrong = _score(_scene(), _scene(colour="blue", speed=90))
    assert wrong.metrics["attribute_accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    assert wrong.score == pytest.approx(0.7 * 1.0 + 0.2 * (1 / 3) + 0.1 * 1.0)


def test_relations_are_scored_by_f1_of_triplets():
    assert _score(_scene(), _scene(predicate="holds")).metrics["relation_f1"] == 0.0
    assert _score(_scene(), _scene(predicate=None)).metrics["relation_f1"] == 0.0
    assert _score(_scene(predicate=None), _scene(predicate=None)).metrics["relation_f1"] == 1.0


def test_boxes_still_dominate_the_score():
    # Perfect attributes and relations on a badly drawn car cannot beat a good box with wrong
    # attributes.
    loose = _score(_scene(), _scene(car_box=[100, 100, 260, 200]))
    wrong_attrs = _score(_scene(), _scene(colour="blue", speed=190, predicate="holds"))
    assert wrong_attrs.score > loose.score
    assert wrong_attrs.score >= 0.7


def test_a_job_without_attributes_scores_as_before():
    plain = scoring.score_stored("bbox", _scene(), _scene(colour="blue"), classes=CLASSES)
    assert "attribute_accuracy" not in plain.metrics and "relation_f1" in plain.metrics
    boxes_only = {
        "0": [{k: v for k, v in s.items() if k == "label" or k == "box"} for s in _scene()["0"]]
    }
    before = scoring.score_stored("bbox", boxes_only, boxes_only, classes=CLASSES)
    assert set(before.metrics) == {"precision", "recall", "f1", "mean_iou"}


def test_stitched_tracks_keep_their_attributes_and_relations_across_a_seam():
    from quality.attributes import carry_track_extras
    from quality.tracks import stitch_tracks

    def segment(frames, car_id, person_id, colour):
        out = {}
        for f in frames:
            out[str(f)] = [
                {"track": person_id, "label": "person", "box": PERSON,
                 "relations": [{"predicate": "rides", "object": 1}]},
                {"track": car_id, "label": "car", "box": CAR, "attributes": {"colour": colour}},
            ]  # fmt: skip
        return out

    left = segment(range(0, 6), 0, 1, "red")
    right = segment(range(4, 10), 7, 3, "blue")  # other local ids; frames 4-5 shared
    stitched = stitch_tracks([to_annotation(left, CLASSES), to_annotation(right, CLASSES)])
    frames = from_annotation(stitched.frames, CLASSES, tracks=True)
    carry_track_extras(frames, [left, right], stitched.identity)
    assert len({s["track"] for f in frames.values() for s in f}) == 2  # merged at the seam
    for f in range(10):
        shapes = frames[str(f)]
        car = next(s for s in shapes if s["label"] == "car")
        person = next(s for s in shapes if s["label"] == "person")
        # The left segment speaks for the shared frames, as its boxes do.
        assert car["attributes"] == {"colour": "red" if f <= 5 else "blue"}, f
        assert person["relations"] == [{"predicate": "rides", "object": shapes.index(car)}]


def test_polygon_attributes_and_relations_are_matched_by_mask_iou():
    poly_ctx = AnnotationContext(
        "polygon", CLASSES, 640, 360, 0, 0, frames=[0],
        label_attributes=SCHEMA, relation_predicates=["rides", "holds"],
    )  # fmt: skip

    def square(x, y, s):
        return [[x, y], [x + s, y], [x + s, y + s], [x, y + s]]

    subs = []
    for k, colour in enumerate(("blue", "red", "red")):
        subs.append(
            _frames(
                {
                    "polygons": [
                        {"frame": 0, "label": "car", "points": square(100 + k, 100, 80),
                         "attributes": {"colour": colour}},
                        {"frame": 0, "label": "person", "points": square(300, 100 + k, 40)},
                    ],
                    "relations": [{"subject": 1, "predicate": "holds", "object": 0}],
                },
                poly_ctx,
            )
        )  # fmt: skip
    # The polygon consensus is one annotator's set (here the first, who said blue).
    out = aggregate_extras("polygon", subs, subs[0], classes=CLASSES, label_attributes=SCHEMA)
    car, person = out.frames["0"]
    assert car["attributes"] == {"colour": "red"}
    assert person["relations"] == [{"predicate": "holds", "object": 0}]
    assert out.attribute_agreement.tolist() == [0.0, 1.0, 1.0]
