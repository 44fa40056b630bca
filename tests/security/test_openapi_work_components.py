"""The schema types the work loop: the claim, submit and assignment answers, the requester's
submission rows and the annotation payload of every kind are components with properties (not
bare objects), so clients can be generated from ``/api/schema/`` and Schemathesis checks every
answer against them (``test_schemathesis``)."""

from __future__ import annotations

import json

import pytest

from tasks.annotations import TOP_KEY
from tests.openapi_check import REF_PREFIX as PREFIX
from tests.openapi_check import openapi as generated_openapi
from tests.openapi_check import resolve as _resolve


@pytest.fixture(scope="module")
def openapi() -> dict:
    return generated_openapi()


def _answer(openapi: dict, method: str, path: str, status: str) -> dict:
    response = openapi["paths"][path][method]["responses"][status]
    return _resolve(openapi, response["content"]["application/json"]["schema"])


@pytest.mark.parametrize(
    ("method", "path", "status", "component"),
    [
        ("post", "/api/work/claim/", "201", "Assignment"),
        ("post", "/api/work/assignments/{id}/submit/", "200", "Assignment"),
        # The read of an assignment adds the microtask's proposals (tasks.proposals).
        ("get", "/api/work/assignments/{id}/", "200", "AssignmentDetail"),
    ],
)
def test_claim_submit_and_assignment_answer_the_assignment_component(
    openapi, method, path, status, component
):
    assignment = _answer(openapi, method, path, status)
    assert assignment == openapi["components"]["schemas"][component]
    base = openapi["components"]["schemas"]["Assignment"]
    assert base["properties"].items() <= assignment["properties"].items()
    assert {"id", "status", "job", "task", "deadline", "pay", "submission"} <= set(
        assignment["required"]
    )
    task = _resolve(openapi, assignment["properties"]["task"])
    frame = _resolve(openapi, task["properties"]["frames"]["items"])
    assert set(frame["properties"]) == {"frame", "url", "timestamp"}
    submission = _resolve(openapi, assignment["properties"]["submission"])
    assert _resolve(openapi, submission["properties"]["payload"]) == _resolve(
        openapi, {"$ref": PREFIX + "AnnotationPayload"}
    )
    statuses = _resolve(openapi, assignment["properties"]["status"])["enum"]
    assert {"claimed", "submitted", "approved", "rejected", "expired", "released"} <= set(statuses)


def test_the_annotation_payload_is_one_of_the_formats(openapi):
    payload = openapi["components"]["schemas"]["AnnotationPayload"]
    kinds = [_resolve(openapi, ref) for ref in payload["oneOf"]]
    # Each format is told apart by its one required list key (tasks.annotations.TOP_KEY).
    assert sorted(k["required"] for k in kinds) == sorted([key] for key in TOP_KEY.values())
    items = {
        k["required"][0]: _resolve(openapi, k["properties"][k["required"][0]]["items"])
        for k in kinds
    }
    assert set(items["boxes"]["required"]) == {"frame", "label", "box"}
    assert items["boxes"]["properties"]["box"]["minItems"] == 4
    assert set(items["polygons"]["required"]) == {"frame", "label", "points"}
    assert items["polygons"]["properties"]["points"]["minItems"] == 3
    assert set(items["labels"]["required"]) == {"frame", "label"}
    assert set(items["masks"]["required"]) == {"frame", "label"}  # and "rle" or "points"
    rle_schema = _resolve(openapi, items["masks"]["properties"]["rle"])
    assert set(rle_schema["required"]) == {"size", "counts"}
    track = items["tracks"]
    assert set(track["required"]) == {"id", "label", "keyframes"}
    keyframe = _resolve(openapi, track["properties"]["keyframes"]["items"])
    assert set(keyframe["properties"]) == {"frame", "box", "outside", "mask", "attributes"}
    assert keyframe["required"] == ["frame"]  # an "outside" keyframe may leave out its box
    # Attributes (optional) on every object and keyframe, relations (optional) beside objects.
    for shape in (items["boxes"], items["polygons"], track):
        assert "attributes" in shape["properties"] and "attributes" not in shape["required"]
    # Only the object kinds (boxes, polygons, tracks) take relations; events and masks do not.
    for kind in kinds:
        if kind["required"][0] in ("boxes", "polygons", "tracks"):  # objects: label_schema.KINDS
            relation = _resolve(openapi, kind["properties"]["relations"]["items"])
            assert set(relation["required"]) == {"subject", "predicate", "object"}
        else:
            assert "relations" not in kind["properties"]


def test_every_request_that_carries_an_annotation_uses_the_payload_component(openapi):
    def uses_payload(schema: dict, depth: int = 0) -> bool:
        text = json.dumps(schema)
        if PREFIX + "AnnotationPayload" in text:
            return True
        if depth > 3:
            return False
        refs = [part.split('"')[0] for part in text.split(PREFIX)[1:]]
        return any(uses_payload(openapi["components"]["schemas"][r], depth + 1) for r in refs)

    for method, path in [
        ("post", "/api/work/assignments/{id}/submit/"),
        ("post", "/api/work/qualifications/{annotation_type}/"),
        ("put", "/api/quality/microtasks/{id}/gold/"),
    ]:
        body = openapi["paths"][path][method]["requestBody"]["content"]["application/json"]
        assert uses_payload(body["schema"]), (method, path)
    assert "additionalProperties" not in json.dumps(
        openapi["components"]["schemas"]["AnnotationPayload"]
    )


def test_the_submissions_list_is_a_page_of_typed_rows(openapi):
    page = _answer(openapi, "get", "/api/jobs/{id}/submissions/", "200")
    assert {"count", "next", "previous", "results"} <= set(page["properties"])
    row = _resolve(openapi, page["properties"]["results"]["items"])
    assert {"id", "worker", "status", "payload", "pay_amount"} <= set(row["properties"])
    params = {
        p["name"]: p["schema"]
        for p in openapi["paths"]["/api/jobs/{id}/submissions/"]["get"]["parameters"]
    }
    assert params["page_size"]["maximum"] == 500
    assert "status" in params


def test_the_qualification_test_and_its_result_are_typed(openapi):
    path = "/api/work/qualifications/{annotation_type}/"
    test = _answer(openapi, "get", path, "200")
    question = _resolve(openapi, test["properties"]["questions"]["items"])
    assert {"id", "classes", "frames", "width", "height"} <= set(question["properties"])
    result = _answer(openapi, "post", path, "200")
    assert set(result["properties"]) == {"annotation_type", "status", "score", "attempts"}


def test_the_propagate_route_states_every_status_and_its_proposal(openapi):
    op = openapi["paths"]["/api/work/assignments/{id}/propagate/"]["post"]
    assert {"200", "400", "401", "403", "404", "409", "429"} <= set(op["responses"])
    proposal = _resolve(openapi, op["responses"]["200"]["content"]["application/json"]["schema"])
    assert {"frames", "truncated", "lost_at", "elapsed_ms"} <= set(proposal["properties"])
    body = op["requestBody"]["content"]["application/json"]["schema"]
    body = _resolve(openapi, body)
    assert {"track", "from_frame", "to_frame", "mode"} <= set(body["properties"])
    assert set(body["required"]) == {"track", "from_frame"}


def test_assignment_detail_states_the_proposals_and_their_shape_references(openapi):
    detail = openapi["components"]["schemas"]["AssignmentDetail"]
    assert "proposals" in detail["required"]
    proposal = _resolve(openapi, detail["properties"]["proposals"]["items"])
    assert {"id", "source", "confidence", "key", "shapes"} <= set(proposal["required"])
    shape = _resolve(openapi, proposal["properties"]["shapes"]["items"])
    assert {"ref", "confidence", "label"} <= set(shape["required"])
