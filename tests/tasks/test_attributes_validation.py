"""Attributes per class and relations between objects: the job's schema and the payload's values
are checked field by field (pure modules: ``marketplace.label_schema``, ``tasks.attributes``)."""

from __future__ import annotations

import pytest

from marketplace import label_schema
from tasks.annotations import AnnotationContext, AnnotationInvalid, validate_payload

SCHEMA = {
    "car": [
        {"name": "occluded", "type": "bool"},
        {"name": "colour", "type": "choice", "values": ["red", "blue"]},
        {"name": "speed", "type": "number", "min": 0, "max": 200},
    ],
    "person": [{"name": "pose", "type": "choice", "values": ["standing", "sitting"]}],
}
PREDICATES = ["rides", "holds"]
BBOX = AnnotationContext(
    "bbox", ["car", "person"], 640, 360, 0, 40, frames=[0, 10, 20],
    label_attributes=SCHEMA, relation_predicates=PREDICATES,
)  # fmt: skip
POLY = AnnotationContext(
    "polygon", ["car", "person"], 640, 360, 0, 0, frames=[0],
    label_attributes=SCHEMA, relation_predicates=PREDICATES,
)  # fmt: skip
TRACK = AnnotationContext(
    "track", ["car", "person"], 640, 360, 100, 110,
    label_attributes=SCHEMA, relation_predicates=PREDICATES,
)  # fmt: skip
PLAIN = AnnotationContext("bbox", ["car"], 640, 360, 0, 0, frames=[0])


def _errors(payload, ctx) -> dict[str, list[str]]:
    with pytest.raises(AnnotationInvalid) as info:
        validate_payload(payload, ctx)
    return info.value.fields


def _box(frame=10, label="car", box=(1, 2, 30, 40), **attributes):
    item = {"frame": frame, "label": label, "box": list(box)}
    if attributes:
        item["attributes"] = attributes
    return item


# --- The job's schema -----------------------------------------------------------------------------


def test_a_well_formed_schema_has_no_problems():
    assert label_schema.attributes_errors(SCHEMA, ["car", "person"]) == []
    assert label_schema.predicates_errors(PREDICATES) == []
    assert label_schema.attributes_errors({}, ["car"]) == []


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ({"truck": [{"name": "a", "type": "bool"}]}, "not one of the job's classes"),
        ({"car": [{"name": "a", "type": "bool"}, {"name": "a", "type": "bool"}]}, "unique"),
        ({"car": [{"name": "colour", "type": "choice", "values": []}]}, "non-empty list"),
        ({"car": [{"name": "colour", "type": "choice"}]}, "non-empty list"),
        ({"car": [{"name": "c", "type": "choice", "values": ["a", "a"]}]}, "unique"),
        ({"car": [{"name": "c", "type": "choice", "values": ["a", ""]}]}, "non-empty text"),
        ({"car": [{"name": "s", "type": "number", "min": 5, "max": 5}]}, "min must be below"),
        ({"car": [{"name": "s", "type": "number", "min": "0"}]}, "min must be a number"),
        ({"car": [{"name": "s", "type": "date"}]}, "type must be one of"),
        ({"car": [{"name": "has space", "type": "bool"}]}, "the name must be"),
        ({"car": [{"name": "x" * 41, "type": "bool"}]}, "the name must be"),
        ({"car": [{"name": "a", "type": "bool", "values": ["x"]}]}, "unknown keys"),
        ({"car": [{"name": f"a{i}", "type": "bool"} for i in range(21)]}, "at most 20"),
        ({"car": [{"name": "c", "type": "choice", "values": ["v"] * 51}]}, "at most 50 values"),
        ({"car": {"name": "a"}}, "must be a list"),
        (["car"], "Must be an object"),
    ],
)
def test_a_bad_schema_is_refused_with_a_reason(schema, fragment):
    problems = label_schema.attributes_errors(schema, ["car", "person"])
    assert problems and fragment in " ".join(problems), problems


@pytest.mark.parametrize(
    ("predicates", "fragment"),
    [
        (["rides", "rides"], "unique"),
        ([""], "non-empty"),
        (["x" * 41], "at most 40"),
        ([f"p{i}" for i in range(51)], "at most 50"),
        ("rides", "Must be a list"),
    ],
)
def test_bad_predicates_are_refused(predicates, fragment):
    problems = label_schema.predicates_errors(predicates)
    assert problems and fragment in problems[0]


# --- Attributes on boxes and polygons -------------------------------------------------------------


def test_valid_attributes_are_kept_on_the_payload_and_the_stored_shape():
    result = validate_payload(
        {"boxes": [_box(occluded=True, colour="red", speed=12)]}, BBOX
    )  # fmt: skip
    attrs = {"occluded": True, "colour": "red", "speed": 12.0}
    assert result.payload["boxes"][0]["attributes"] == attrs
    assert result.frames["10"] == [
        {"label": "car", "box": [1.0, 2.0, 30.0, 40.0], "attributes": attrs}
    ]


def test_a_shape_without_attributes_is_stored_as_before():
    result = validate_payload({"boxes": [_box()]}, BBOX)
    assert result.frames["10"] == [{"label": "car", "box": [1.0, 2.0, 30.0, 40.0]}]
    assert "relations" not in result.payload


@pytest.mark.parametrize(
    ("attributes", "path", "fragment"),
    [
        ({"wheels": 4}, "boxes[0].attributes.wheels", "unknown attribute"),
        ({"pose": "standing"}, "boxes[0].attributes.pose", "unknown attribute"),
        ({"no such thing": 1}, "boxes[0].attributes", "unknown attribute"),
        ({"occluded": "yes"}, "boxes[0].attributes.occluded", "true or false"),
        ({"occluded": 1}, "boxes[0].attributes.occluded", "true or false"),
        ({"colour": "green"}, "boxes[0].attributes.colour", "one of: red, blue"),
        ({"speed": 201}, "boxes[0].attributes.speed", "at most 200"),
        ({"speed": -1}, "boxes[0].attributes.speed", "at least 0"),
        ({"speed": "fast"}, "boxes[0].attributes.speed", "a number"),
        ({"speed": True}, "boxes[0].attributes.speed", "a number"),
    ],
)
def test_bad_attribute_values_are_reported_at_their_path(attributes, path, fragment):
    fields = _errors({"boxes": [{**_box(), "attributes": attributes}]}, BBOX)
    assert path in fields and fragment in " ".join(fields[path]), fields


def test_attributes_must_be_an_object():
    fields = _errors({"boxes": [{**_box(), "attributes": ["occluded"]}]}, BBOX)
    assert "must be an object" in fields["boxes[0].attributes"][0]


def test_a_wrong_class_is_reported_once_not_once_per_attribute():
    fields = _errors({"boxes": [_box(label="truck", colour="red")]}, BBOX)
    assert list(fields) == ["boxes[0].label"]


def test_a_job_without_attributes_refuses_any():
    fields = _errors({"boxes": [{**_box(frame=0), "attributes": {"occluded": True}}]}, PLAIN)
    assert "it has: none" in fields["boxes[0].attributes.occluded"][0]


def test_polygon_attributes_are_checked_and_stored():
    poly = {"frame": 0, "label": "person", "points": [[0, 0], [10, 0], [10, 10]]}
    ok = validate_payload({"polygons": [{**poly, "attributes": {"pose": "sitting"}}]}, POLY)
    assert ok.frames["0"][0]["attributes"] == {"pose": "sitting"}
    fields = _errors({"polygons": [{**poly, "attributes": {"pose": "lying"}}]}, POLY)
    assert "polygons[0].attributes.pose" in fields


# --- Relations between boxes ----------------------------------------------------------------------


def test_relations_sit_on_their_subject_pointing_at_the_object_in_the_same_frame():
    payload = {
        "boxes": [
            _box(frame=0, label="car"),
            _box(frame=10, label="person", box=(50, 50, 60, 80)),
            _box(frame=10, label="car", box=(40, 60, 90, 100)),
        ],
        "relations": [{"subject": 1, "predicate": "rides", "object": 2}],
    }
    result = validate_payload(payload, BBOX)
    assert result.payload["relations"] == payload["relations"]
    person, car = result.frames["10"]
    assert person["relations"] == [{"predicate": "rides", "object": 1}]  # index in frame 10
    assert "relations" not in car and "relations" not in result.frames["0"][0]


def _rel_errors(relations, boxes=None):
    boxes = boxes or [_box(frame=10), _box(frame=10, label="person"), _box(frame=20)]
    return _errors({"boxes": boxes, "relations": relations}, BBOX)


@pytest.mark.parametrize(
    ("relation", "path", "fragment"),
    [
        ({"subject": 1, "predicate": "drives", "object": 0}, "relations[0].predicate", "unknown"),
        ({"subject": 1, "predicate": "rides", "object": 1}, "relations[0].object", "itself"),
        ({"subject": 1, "predicate": "rides", "object": 7}, "relations[0].object", "no object 7"),
        ({"subject": -1, "predicate": "rides", "object": 0}, "relations[0].subject", "whole"),
        ({"subject": "1", "predicate": "rides", "object": 0}, "relations[0].subject", "whole"),
        (
            {"subject": 1, "predicate": "rides", "object": 2},
            "relations[0].object",
            "subject's frame",
        ),
        ({"subject": 1, "predicate": "rides", "object": 0, "why": 1}, "relations[0]", "unexpected"),
        ("rides", "relations[0]", "must be an object"),
    ],
)
def test_bad_relations_are_reported_at_their_path(relation, path, fragment):
    fields = _rel_errors([relation])
    assert path in fields and fragment in " ".join(fields[path]), fields


def test_a_repeated_relation_is_refused():
    rel = {"subject": 1, "predicate": "rides", "object": 0}
    assert "twice" in _rel_errors([rel, rel])["relations[1]"][0]


def test_relations_must_be_a_list_and_are_bounded():
    assert "must be a list" in _rel_errors({"a": 1})["relations"][0]
    many = [{"subject": 1, "predicate": "rides", "object": 0}] * 5001
    assert "at most 5000" in _rel_errors(many)["relations"][0]


def test_a_job_without_predicates_takes_no_relations():
    fields = _errors(
        {
            "boxes": [_box(frame=0), _box(frame=0, box=(100, 100, 120, 120))],
            "relations": [{"subject": 0, "predicate": "rides", "object": 1}],
        },
        PLAIN,
    )
    assert "takes no relations" in fields["relations[0].predicate"][0]


def test_classification_payloads_take_no_relations_key():
    ctx = AnnotationContext("classify", ["day", "night"], 64, 36, 0, 0, frames=[0])
    fields = _errors({"labels": [{"frame": 0, "label": "day"}], "relations": []}, ctx)
    assert "relations" in fields


# --- Tracks: static attributes, changes at keyframes, relations by track id ----------------------


def _track(tid, label, *keyframes, **attributes):
    t = {"id": tid, "label": label, "keyframes": list(keyframes)}
    if attributes:
        t["attributes"] = attributes
    return t


def test_track_attributes_change_at_keyframes_and_carry_forward_to_every_frame():
    payload = {
        "tracks": [
            _track(
                7,
                "car",
                {"frame": 100, "box": [0, 0, 10, 10], "attributes": {"speed": 10}},
                {"frame": 104, "box": [40, 0, 50, 10], "attributes": {"occluded": True}},
                {
                    "frame": 108,
                    "box": [80, 0, 90, 10],
                    "attributes": {"speed": 30, "occluded": False},
                },
                colour="red",
                occluded=False,
            ),
            _track(
                9, "person", {"frame": 102, "box": [5, 5, 9, 20]}, {"frame": 106, "outside": True}
            ),
        ],
        "relations": [{"subject": 9, "predicate": "rides", "object": 7}],
    }
    result = validate_payload(payload, TRACK)
    attrs = {f: result.frames[str(f)][0]["attributes"] for f in range(100, 111)}
    assert attrs[100] == {"colour": "red", "occluded": False, "speed": 10.0}
    assert attrs[103] == {"colour": "red", "occluded": False, "speed": 10.0}
    assert attrs[104] == attrs[107] == {"colour": "red", "occluded": True, "speed": 10.0}
    assert attrs[108] == attrs[110] == {"colour": "red", "occluded": False, "speed": 30.0}
    # The relation is on the person's shape, on the frames where both tracks are present.
    with_relation = [
        f for f in range(100, 111) for s in result.frames[str(f)] if s.get("relations")
    ]
    assert with_relation == [102, 103, 104, 105]
    person = next(s for s in result.frames["103"] if s["track"] == 9)
    car_index = next(j for j, s in enumerate(result.frames["103"]) if s["track"] == 7)
    assert person["relations"] == [{"predicate": "rides", "object": car_index}]
    assert result.payload["tracks"][0]["attributes"] == {"colour": "red", "occluded": False}
    assert result.payload["tracks"][0]["keyframes"][1]["attributes"] == {"occluded": True}


@pytest.mark.parametrize(
    ("track", "path"),
    [
        (
            _track(1, "car", {"frame": 100, "box": [0, 0, 5, 5]}, colour="pink"),
            "tracks[0].attributes.colour",
        ),
        (
            _track(1, "car", {"frame": 100, "box": [0, 0, 5, 5], "attributes": {"speed": 500}}),
            "tracks[0].keyframes[0].attributes.speed",
        ),
        (
            _track(
                1, "person", {"frame": 100, "box": [0, 0, 5, 5], "attributes": {"colour": "red"}}
            ),
            "tracks[0].keyframes[0].attributes.colour",
        ),
    ],
)
def test_bad_track_attributes_are_reported_at_their_path(track, path):
    assert path in _errors({"tracks": [track]}, TRACK)


def test_track_relations_name_existing_track_ids():
    tracks = [_track(1, "car", {"frame": 100, "box": [0, 0, 5, 5]})]
    fields = _errors(
        {"tracks": tracks, "relations": [{"subject": 1, "predicate": "holds", "object": 2}]}, TRACK
    )
    assert "no object 2 (a track id)" in fields["relations[0].object"][0]


@pytest.mark.parametrize("huge", [10**400, -(10**400)])
def test_an_integer_too_large_for_a_float_is_a_field_error_not_a_crash(huge):
    fields = _errors({"boxes": [_box(box=(huge, 2, 30, 40))]}, BBOX)
    assert "four numbers" in fields["boxes[0].box"][0]
    fields = _errors({"boxes": [_box(speed=huge)]}, BBOX)
    assert "a number" in fields["boxes[0].attributes.speed"][0]
    spec = {"car": [{"name": "s", "type": "number", "min": huge}]}
    assert "min must be a number" in label_schema.attributes_errors(spec, ["car"])[0]
