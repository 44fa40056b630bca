"""The shared test vectors (tests/vectors/*.json) against the Python side: interpolation, payload
validation and the error-path format. ``tests/js/core.test.mjs`` runs the same files against the
page's module, so both implementations are held to the same cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from marketplace.errors import ValidationError
from tasks.annotations import (
    AnnotationContext,
    AnnotationInvalid,
    answer_path,
    error_path,
    validate_payload,
)
from tasks.drafts import clean_draft
from tasks.interpolation import interpolate, track_from_payload, tracks_to_frames

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def _load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


INTERPOLATION = _load("interpolation.json")
PAYLOADS = _load("payloads.json")
ERROR_PATHS = _load("error_paths.json")
DRAFTS = _load("drafts.json")


def _by_name(cases: list[dict]) -> list:
    return [pytest.param(c, id=c["name"]) for c in cases]


def _keyframe_arrays(keyframes: list[dict]):
    track = track_from_payload({"id": 1, "label": "x", "keyframes": keyframes})
    return track, (track.frames, track.boxes, track.outside)


@pytest.mark.parametrize("case", _by_name(INTERPOLATION["cases"]))
def test_interpolation_vector(case):
    track, arrays = _keyframe_arrays(case["keyframes"])
    boxes, present = interpolate(*arrays, np.array(case["frames"], dtype=np.int64))
    for i, frame in enumerate(case["frames"]):
        expected = case["boxes"][i]
        assert bool(present[i]) is (expected is not None), f"frame {frame}"
        if expected is not None:
            np.testing.assert_allclose(boxes[i], expected, rtol=0, atol=1e-9, err_msg=f"{frame}")
    # What the server stores per frame: rounded to 2 decimals, compared exactly.
    for frame, stored in zip(case["frames"], case["stored"], strict=True):
        shapes = tracks_to_frames([track], frame, frame)[str(frame)]
        assert [s["box"] for s in shapes] == ([stored] if stored is not None else []), frame


@pytest.mark.parametrize("case", _by_name(INTERPOLATION["refused"]))
def test_interpolation_refuses_vector(case):
    _, arrays = _keyframe_arrays(case["keyframes"])
    with pytest.raises(ValueError, match="strictly increasing"):
        interpolate(*arrays, np.array(case["frames"], dtype=np.int64))


def _context(kind: str) -> AnnotationContext:
    c = PAYLOADS["contexts"][kind]
    return AnnotationContext(
        c.get("type", kind),
        c["classes"],
        c["width"],
        c["height"],
        c["frame_start"],
        c["frame_end"],
        c["frames"],
        event_labels=c.get("event_labels", ()),
    )


@pytest.mark.parametrize("case", _by_name(PAYLOADS["cases"]))
def test_payload_vector(case):
    ctx = _context(case.get("context", case["type"]))
    if "errors" in case:
        assert "stored" not in case
        with pytest.raises(AnnotationInvalid) as info:
            validate_payload(case["payload"], ctx)
        fields = info.value.fields
        assert set(fields) == set(case["errors"])
        for path, fragment in case["errors"].items():
            assert fragment in " ".join(fields[path]), path
        # The page is told how to show every one of them.
        assert set(case["described"]) == set(case["errors"])
    else:
        result = validate_payload(case["payload"], ctx)
        assert result.payload == case["stored"]
        for frame, shapes in case["frames"].items():
            assert result.frames[frame] == shapes, frame


@pytest.mark.parametrize("case", ERROR_PATHS["paths"], ids=lambda c: c["path"])
def test_error_paths_are_built_in_the_declared_format(case):
    assert error_path(**case["parsed"]) == case["path"]


@pytest.mark.parametrize("case", ERROR_PATHS["answers"], ids=lambda c: c["path"])
def test_answer_paths_put_the_question_first(case):
    assert answer_path(case["question"], case["inner"]) == case["path"]


def test_a_name_path_has_no_keyframe_or_field():
    with pytest.raises(ValueError):
        error_path("boxes", field="box")


@pytest.mark.parametrize("case", _by_name(DRAFTS["shape"]))
def test_draft_shape_vector(case):
    if "field" not in case:
        assert clean_draft(case["draft"], annotation_type=case["type"]) == case["draft"]
        return
    with pytest.raises(ValidationError) as e:
        clean_draft(case["draft"], annotation_type=case["type"])
    assert list(e.value.extra["fields"]) == [case["field"]]


def test_a_draft_over_the_size_cap_is_refused_and_names_its_size():
    draft = {"saved_at": 1, "payload": {"boxes": [{"label": "x" * 200}]}}
    assert clean_draft(draft, annotation_type="bbox", max_bytes=250) == draft
    with pytest.raises(ValidationError) as e:
        clean_draft(draft, annotation_type="bbox", max_bytes=200)
    assert list(e.value.extra["fields"]) == ["draft"]
    assert "more than the 200" in e.value.message


EVENTS = json.loads((VECTORS / "events.json").read_text())


@pytest.mark.parametrize("case", _by_name(EVENTS["overlap"]))
def test_event_overlap_vector_is_the_servers_rule(case):
    rng = EVENTS["range"]
    ctx = AnnotationContext("event", ["crossing", "waving"], 640, 360, rng["first"], rng["last"])
    payload = {"events": [*case["events"], case["candidate"]]}
    last = len(case["events"])
    if case["clash"] < 0:
        assert validate_payload(payload, ctx).shape_count == last + 1
    else:
        with pytest.raises(AnnotationInvalid) as info:
            validate_payload(payload, ctx)
        assert list(info.value.fields) == [f"events[{last}].start"]
        assert f"overlaps event {case['clash']} " in info.value.fields[f"events[{last}].start"][0]


ATTRIBUTES = _load("attributes.json")


@pytest.mark.parametrize("case", _by_name(ATTRIBUTES["cases"]))
def test_attributes_vector(case):
    c = ATTRIBUTES["context"]
    ctx = AnnotationContext(
        case["type"], c["classes"], c["width"], c["height"], case["frame_start"],
        case["frame_end"], case["frames"], label_attributes=c["label_attributes"],
        relation_predicates=c["relation_predicates"],
    )  # fmt: skip
    result = validate_payload(case["payload"], ctx)
    assert result.payload == case["payload"]  # stored as sent: the page sends it normalised
    for tid, by_frame in case.get("at", {}).items():
        for frame, expected in by_frame.items():
            (shape,) = [s for s in result.frames[frame] if s["track"] == int(tid)]
            assert shape.get("attributes", {}) == expected, (tid, frame)
