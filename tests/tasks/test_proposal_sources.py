"""The pure rules of proposals: shapes from detections, references, provenance measured here."""

from __future__ import annotations

import pytest

from tasks.proposal_sources import (
    Detection,
    ProposalRequest,
    StoredProposal,
    box_iou,
    check_refs,
    detections_to_outcome,
    finish,
    link_tracks,
    provenance_of,
)


def _request(kind="bbox", frames=(0, 10, 20)) -> ProposalRequest:
    return ProposalRequest(
        microtask_id=1,
        annotation_type=kind,
        classes=("car", "person"),
        width=100,
        height=80,
        frame_start=0,
        frame_end=20,
        frames=frames,
        keyframe_step=10,
    )


def test_detections_become_boxes_clipped_to_the_frame_with_their_confidence():
    out = detections_to_outcome(
        [
            Detection(0, (-5, 10, 30, 40), 0.8, "car"),
            Detection(10, (90, 70, 130, 100), 0.4, "person"),
            Detection(20, (200, 200, 210, 210), 0.9, "car"),  # wholly outside: dropped
            Detection(20, (1, 1, 10, 10), 0.9, "truck"),  # not a class of the job: dropped
        ],
        _request(),
    )
    assert out.status == "ok"
    assert out.shapes == [
        {"frame": 0, "label": "car", "box": [0.0, 10.0, 30.0, 40.0]},
        {"frame": 10, "label": "person", "box": [90.0, 70.0, 100.0, 80.0]},
    ]
    assert out.confidences == [0.8, 0.4]
    assert out.confidence == pytest.approx(0.6)


def test_polygon_jobs_get_rectangles():
    out = detections_to_outcome([Detection(10, (10, 10, 30, 20), 0.5, "car")], _request("polygon"))
    assert out.shapes == [
        {"frame": 10, "label": "car", "points": [[10, 10], [30, 10], [30, 20], [10, 20]]}
    ]


def test_track_jobs_link_detections_and_end_a_lost_track_outside():
    dets = [
        Detection(0, (10, 10, 30, 30), 0.9, "car"),
        Detection(10, (14, 10, 34, 30), 0.7, "car"),
        Detection(0, (60, 40, 80, 60), 0.5, "person"),
    ]
    out = detections_to_outcome(dets, _request("track"))
    assert out.status == "ok"
    car, person = out.shapes
    assert [k["frame"] for k in car["keyframes"]] == [0, 10, 20]
    assert car["keyframes"][-1]["outside"] is True
    assert [k["frame"] for k in person["keyframes"]] == [0, 10]
    assert person["keyframes"][1]["outside"] is True
    assert out.confidences == [pytest.approx(0.8), 0.5]


def test_linking_never_joins_different_labels_or_far_boxes():
    tracks = link_tracks(
        [
            Detection(0, (0, 0, 10, 10), 1, "car"),
            Detection(1, (0, 0, 10, 10), 1, "person"),
            Detection(2, (50, 50, 60, 60), 1, "car"),
        ],
        [0, 1, 2],
    )
    assert len(tracks) == 3


def test_a_source_answer_outside_the_schema_is_invalid_not_stored_half():
    out = finish([{"frame": 3, "label": "car", "box": [0, 0, 5, 5]}], [0.5], _request())
    assert out.status == "invalid" and out.shapes == []
    assert "frame 3" in out.error
    out = finish([{"frame": 0, "label": "car", "box": [0, 0, 5, 5]}], [1.5], _request())
    assert out.status == "invalid"


PROPOSED = StoredProposal(
    id=7,
    source="motion",
    shapes=[
        {"frame": 0, "label": "car", "box": [10.0, 10.0, 50.0, 50.0]},
        {"frame": 10, "label": "person", "box": [0.0, 0.0, 20.0, 20.0]},
    ],
)


def test_references_must_name_a_shape_of_this_microtasks_proposals():
    payload = {
        "boxes": [
            {"frame": 0, "label": "car", "box": [1, 1, 2, 2], "from_proposal": "7:0"},
            {"frame": 0, "label": "car", "box": [1, 1, 2, 2], "from_proposal": "8:0"},
            {"frame": 0, "label": "car", "box": [1, 1, 2, 2], "from_proposal": "7:2"},
            {"frame": 0, "label": "car", "box": [1, 1, 2, 2], "from_proposal": 7},
            {"frame": 0, "label": "car", "box": [1, 1, 2, 2], "from_proposal": "7:0"},
        ]
    }
    errors = check_refs(payload, "bbox", [PROPOSED])
    assert sorted(errors) == [
        "boxes[1].from_proposal",
        "boxes[2].from_proposal",
        "boxes[3].from_proposal",
        "boxes[4].from_proposal",
    ]
    assert "already used by boxes[0]" in errors["boxes[4].from_proposal"][0]


def test_provenance_measures_movement_itself_whatever_the_client_claims():
    raw = {
        "boxes": [
            {"frame": 0, "label": "car", "box": [10, 10, 50, 50], "from_proposal": "7:0"},
            {
                "frame": 10,
                "label": "car",
                "box": [10, 0, 30, 20],
                "from_proposal": "7:1",
                "unchanged": True,  # a client's claim: ignored
                "moved": 0,
            },
            {"frame": 10, "label": "car", "box": [50, 50, 60, 60]},
        ]
    }
    normalised = [
        {"frame": 0, "label": "car", "box": [10.0, 10.0, 50.0, 50.0]},
        {"frame": 10, "label": "car", "box": [10.0, 0.0, 30.0, 20.0]},
        {"frame": 10, "label": "car", "box": [50.0, 50.0, 60.0, 60.0]},
    ]
    prov = provenance_of(
        raw, normalised, annotation_type="bbox", proposals=[PROPOSED], frame_start=0, frame_end=20
    )
    assert prov[0] == {
        "path": "boxes[0]",
        "proposal": 7,
        "index": 0,
        "source": "motion",
        "moved": 0.0,
        "unchanged": True,
        "label_changed": False,
    }
    expected = round(1 - box_iou([10, 0, 30, 20], [0, 0, 20, 20]), 4)
    assert prov[1]["moved"] == expected == pytest.approx(2 / 3, abs=1e-4)
    assert prov[1]["unchanged"] is False and prov[1]["label_changed"] is True
    assert len(prov) == 2


def test_track_provenance_compares_every_frame():
    proposed = StoredProposal(
        id=3,
        source="ml_backend",
        shapes=[
            {
                "id": 0,
                "label": "car",
                "keyframes": [
                    {"frame": 0, "box": [0.0, 0.0, 10.0, 10.0], "outside": False},
                    {"frame": 10, "box": [10.0, 0.0, 20.0, 10.0], "outside": False},
                ],
            }
        ],
    )
    same = {
        "id": 5,
        "label": "car",
        "keyframes": [
            {"frame": 0, "box": [0.0, 0.0, 10.0, 10.0], "outside": False},
            {"frame": 10, "box": [10.0, 0.0, 20.0, 10.0], "outside": False},
        ],
    }
    prov = provenance_of(
        {"tracks": [{**same, "from_proposal": "3:0"}]},
        [same],
        annotation_type="track",
        proposals=[proposed],
        frame_start=0,
        frame_end=10,
    )
    assert prov[0]["moved"] == 0.0 and prov[0]["unchanged"] is True
    bent = {**same, "keyframes": [*same["keyframes"][:1], {**same["keyframes"][1], "frame": 5}]}
    prov = provenance_of(
        {"tracks": [{**bent, "from_proposal": "3:0"}]},
        [bent],
        annotation_type="track",
        proposals=[proposed],
        frame_start=0,
        frame_end=10,
    )
    assert prov[0]["unchanged"] is False and 0 < prov[0]["moved"] < 1
