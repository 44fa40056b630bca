"""Annotation payloads are checked against the job's schema field by field (pure module)."""

from __future__ import annotations

import pytest

from tasks.annotations import (
    AnnotationContext,
    AnnotationInvalid,
    polygon_self_intersects,
    validate_payload,
)

BBOX = AnnotationContext("bbox", ["car", "person"], 640, 360, 0, 40, frames=[0, 10, 20, 30, 40])
TRACK = AnnotationContext("track", ["car", "person"], 640, 360, 100, 130)
POLY = AnnotationContext("polygon", ["road"], 640, 360, 0, 0, frames=[0])
CLS = AnnotationContext("classify", ["day", "night"], 640, 360, 0, 20, frames=[0, 10, 20])


def _errors(payload, ctx) -> dict[str, list[str]]:
    with pytest.raises(AnnotationInvalid) as info:
        validate_payload(payload, ctx)
    return info.value.fields


def test_valid_boxes_normalise_to_floats_and_fill_every_frame():
    result = validate_payload({"boxes": [{"frame": 10, "label": "car", "box": [1, 2, 3, 4]}]}, BBOX)
    assert result.payload == {"boxes": [{"frame": 10, "label": "car", "box": [1.0, 2.0, 3.0, 4.0]}]}
    assert set(result.frames) == {"0", "10", "20", "30", "40"}
    assert result.frames["10"] == [{"label": "car", "box": [1.0, 2.0, 3.0, 4.0]}]


@pytest.mark.parametrize(
    ("item", "path", "fragment"),
    [
        ({"frame": 10, "label": "truck", "box": [1, 2, 3, 4]}, "boxes[0].label", "unknown class"),
        ({"frame": 11, "label": "car", "box": [1, 2, 3, 4]}, "boxes[0].frame", "not one of"),
        ({"frame": 10, "label": "car", "box": [600, 2, 641, 4]}, "boxes[0].box", "inside"),
        ({"frame": 10, "label": "car", "box": [-1, 2, 3, 4]}, "boxes[0].box", "inside"),
        ({"frame": 10, "label": "car", "box": [5, 2, 5, 4]}, "boxes[0].box", "positive"),
        ({"frame": 10, "label": "car", "box": [1, 2, 3]}, "boxes[0].box", "four numbers"),
        ({"frame": 10, "label": "car", "box": [1, 2, 3, "4"]}, "boxes[0].box", "four numbers"),
        ({"frame": "10", "label": "car", "box": [1, 2, 3, 4]}, "boxes[0].frame", "whole"),
        ({"frame": True, "label": "car", "box": [1, 2, 3, 4]}, "boxes[0].frame", "whole"),
    ],
)
def test_bad_box_fields_are_reported_at_their_path(item, path, fragment):
    fields = _errors({"boxes": [item]}, BBOX)
    assert path in fields and fragment in " ".join(fields[path])


@pytest.mark.parametrize("payload", [None, [], "boxes", {"tracks": []}, {"boxes": {}}])
def test_wrong_payload_shape_is_refused(payload):
    assert _errors(payload, BBOX)


def test_valid_track_is_interpolated_per_frame():
    payload = {
        "tracks": [
            {
                "id": 1,
                "label": "car",
                "keyframes": [
                    {"frame": 100, "box": [0, 0, 10, 10]},
                    {"frame": 110, "box": [100, 0, 110, 10], "outside": False},
                    {"frame": 120, "outside": True},
                ],
            }
        ]
    }
    result = validate_payload(payload, TRACK)
    assert len(result.frames) == 31
    assert result.frames["105"] == [{"track": 1, "label": "car", "box": [50.0, 0.0, 60.0, 10.0]}]
    assert result.frames["119"][0]["box"] == [100.0, 0.0, 110.0, 10.0]
    assert result.frames["120"] == [] and result.frames["130"] == []
    # The outside keyframe without a box is stored with its predecessor's box.
    assert result.payload["tracks"][0]["keyframes"][2] == {
        "frame": 120,
        "box": [100.0, 0.0, 110.0, 10.0],
        "outside": True,
    }


@pytest.mark.parametrize(
    ("keyframes", "path", "fragment"),
    [
        (
            [{"frame": 110, "box": [0, 0, 5, 5]}, {"frame": 105, "box": [0, 0, 5, 5]}],
            "tracks[0].keyframes[1].frame",
            "increasing",
        ),
        (
            [{"frame": 110, "box": [0, 0, 5, 5]}, {"frame": 110, "box": [0, 0, 5, 5]}],
            "tracks[0].keyframes[1].frame",
            "increasing",
        ),
        ([{"frame": 99, "box": [0, 0, 5, 5]}], "tracks[0].keyframes[0].frame", "outside this"),
        ([{"frame": 131, "box": [0, 0, 5, 5]}], "tracks[0].keyframes[0].frame", "outside this"),
        (
            [{"frame": 101, "box": [0, 0, 5, 5], "outside": True}],
            "tracks[0].keyframes[0].outside",
            "cannot start",
        ),
        (
            [{"frame": 101, "box": [0, 0, 5, 5], "outside": "no"}],
            "tracks[0].keyframes[0].outside",
            "true or false",
        ),
        ([], "tracks[0].keyframes", "non-empty"),
    ],
)
def test_malformed_tracks_are_refused(keyframes, path, fragment):
    fields = _errors({"tracks": [{"id": 1, "label": "car", "keyframes": keyframes}]}, TRACK)
    assert path in fields and fragment in " ".join(fields[path])


def test_duplicate_track_ids_are_refused():
    kf = [{"frame": 100, "box": [0, 0, 5, 5]}]
    fields = _errors({"tracks": [{"id": 1, "label": "car", "keyframes": kf}] * 2}, TRACK)
    assert "used twice" in fields["tracks[1].id"][0]


def test_polygons_need_three_points_inside_without_crossing():
    ok = {"polygons": [{"frame": 0, "label": "road", "points": [[0, 0], [10, 0], [10, 10]]}]}
    assert validate_payload(ok, POLY).frames["0"][0]["label"] == "road"
    bowtie = [[0, 0], [10, 10], [10, 0], [0, 10]]
    for points, fragment in [
        ([[0, 0], [1, 1]], "at least 3"),
        (bowtie, "cross"),
        ([[0, 0], [5, 5], [10, 10]], "no area"),
        ([[0, 0], [700, 0], [10, 10]], "inside"),
    ]:
        fields = _errors({"polygons": [{"frame": 0, "label": "road", "points": points}]}, POLY)
        assert fragment in fields["polygons[0].points"][0], points


def test_self_intersection_detects_crossing_and_accepts_convex_and_concave():
    assert polygon_self_intersects([[0, 0], [10, 10], [10, 0], [0, 10]]) is True
    assert polygon_self_intersects([[0, 0], [10, 0], [10, 10], [5, 3], [0, 10]]) is False


def test_classification_needs_every_frame_exactly_once():
    ok = {"labels": [{"frame": f, "label": "day"} for f in (0, 10, 20)]}
    assert validate_payload(ok, CLS).frames["20"] == [{"label": "day"}]
    missing = _errors({"labels": [{"frame": 0, "label": "day"}]}, CLS)
    assert "missing: 10, 20" in missing["labels"][0]
    twice = _errors({"labels": [{"frame": 0, "label": "day"}, {"frame": 0, "label": "night"}]}, CLS)
    assert "twice" in twice["labels[1].frame"][0]


# --- events ----------------------------------------------------------------------------------

EVENT = AnnotationContext("event", ["crossing", "waving"], 640, 360, 100, 299, frames=[100, 150])
TRACK_EVENTS = AnnotationContext(
    "track", ["car", "person"], 640, 360, 100, 130, event_labels=["crossing"]
)
ONE_TRACK = [{"id": 3, "label": "person", "keyframes": [{"frame": 100, "box": [0, 0, 9, 9]}]}]


def test_events_cover_the_whole_range_whatever_the_sampled_frames():
    result = validate_payload({"events": [{"label": "crossing", "start": 101, "end": 299}]}, EVENT)
    assert result.shape_count == 1
    assert set(result.frames) == {str(f) for f in range(100, 300)}
    assert result.frames["101"] == [{"label": "crossing", "event": 0}]
    assert result.frames["100"] == []


@pytest.mark.parametrize(
    ("item", "path", "fragment"),
    [
        ({"label": "crossing", "start": 99, "end": 120}, "events[0].start", "outside"),
        ({"label": "crossing", "start": 120, "end": 300}, "events[0].end", "outside"),
        ({"label": "crossing", "start": 121, "end": 120}, "events[0].end", "before the start"),
        ({"label": "crossing", "start": 1.5, "end": 120}, "events[0].start", "whole frame"),
        ({"label": "crossing", "start": True, "end": 120}, "events[0].start", "whole frame"),
        ({"label": "crossing", "end": 120}, "events[0].start", "whole frame"),
        ({"label": "car", "start": 100, "end": 120}, "events[0].label", "unknown event label"),
        ({"label": "crossing", "start": 100, "end": 120, "track": 1}, "events[0].track", "not"),
        ("crossing", "events[0]", "must be an object"),
    ],
)
def test_bad_events_are_refused_field_by_field(item, path, fragment):
    errors = _errors({"events": [item]}, EVENT)
    assert path in errors, errors
    assert fragment in " ".join(errors[path])


def test_events_of_one_label_may_not_overlap_but_may_touch_or_differ():
    ok = validate_payload(
        {
            "events": [
                {"label": "crossing", "start": 100, "end": 150},
                {"label": "crossing", "start": 151, "end": 160},
                {"label": "waving", "start": 120, "end": 155},
            ]
        },
        EVENT,
    )
    assert ok.shape_count == 3 and ok.frames["151"] == [
        {"label": "crossing", "event": 1},
        {"label": "waving", "event": 2},
    ]
    errors = _errors(
        {
            "events": [
                {"label": "crossing", "start": 100, "end": 150},
                {"label": "crossing", "start": 150, "end": 160},
            ]
        },
        EVENT,
    )
    assert list(errors) == ["events[1].start"]
    assert "overlaps event 0" in errors["events[1].start"][0]


def test_too_many_events_and_stray_keys_are_refused():
    many = [{"label": "crossing", "start": 100 + i % 200, "end": 100 + i % 200} for i in range(501)]
    assert "at most 500" in _errors({"events": many}, EVENT)["events"][0]
    assert "unexpected field" in _errors({"events": [], "tracks": []}, EVENT)["tracks"][0]
    assert "must be a list" in _errors({"events": {}}, EVENT)["events"][0]


def test_track_events_name_a_track_of_the_payload_and_the_jobs_event_labels():
    ok = validate_payload(
        {
            "tracks": ONE_TRACK,
            "events": [{"label": "crossing", "start": 101, "end": 110, "track": 3}],
        },
        TRACK_EVENTS,
    )
    assert ok.payload["events"] == [{"label": "crossing", "start": 101, "end": 110, "track": 3}]
    assert ok.shape_count == 2  # one keyframe, one event
    errors = _errors(
        {
            "tracks": ONE_TRACK,
            "events": [
                {"label": "crossing", "start": 101, "end": 110},
                {"label": "person", "start": 101, "end": 110, "track": 3},
                {"label": "crossing", "start": 101, "end": 131, "track": 3},
            ],
        },
        TRACK_EVENTS,
    )
    assert set(errors) == {"events[0].track", "events[1].label", "events[2].end"}
    # Same track, same label, shared frames: the later one is pointed at.
    errors = _errors(
        {
            "tracks": [*ONE_TRACK, {**ONE_TRACK[0], "id": 4}],
            "events": [
                {"label": "crossing", "start": 101, "end": 110, "track": 3},
                {"label": "crossing", "start": 105, "end": 112, "track": 4},
                {"label": "crossing", "start": 110, "end": 112, "track": 3},
            ],
        },
        TRACK_EVENTS,
    )
    assert list(errors) == ["events[2].start"]


def test_a_track_job_without_event_labels_takes_no_events():
    payload = {"tracks": ONE_TRACK, "events": [{"label": "crossing", "start": 101, "end": 110}]}
    assert "unexpected field" in _errors(payload, TRACK)["events"][0]
    assert validate_payload({"tracks": ONE_TRACK}, TRACK_EVENTS).payload == {
        "tracks": [
            {
                "id": 3,
                "label": "person",
                "keyframes": [{"frame": 100, "box": [0.0, 0.0, 9.0, 9.0], "outside": False}],
            }
        ]
    }
