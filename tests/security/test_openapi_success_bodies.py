"""Every 2xx answer but a 204 states the fields of its body in the schema (a serializer, not an
empty object), so API clients can be generated from ``/api/schema/`` and Schemathesis and
``tests/openapi_check.py`` can check the bodies. A view that builds a dict describes it with a
serializer used for the schema (``tasks/api/schemas.py``, ``quality/api/schemas.py``)."""

from __future__ import annotations

import pytest

from tests.openapi_check import openapi as generated_openapi
from tests.openapi_check import resolve

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def openapi() -> dict:
    return generated_openapi()


def operations(openapi: dict):
    for path, item in openapi["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def _untyped(openapi: dict, schema: dict) -> bool:
    """Whether a response schema tells a client nothing of the body: an object without
    properties (``{"type": "object", "additionalProperties": {}}``), an empty schema, or a list
    of those. A map with typed values and a binary download are typed."""
    schema = resolve(openapi, schema)
    if any(key in schema for key in ("oneOf", "anyOf", "allOf", "enum")):
        return False
    kind = schema.get("type")
    if kind == "array":
        return _untyped(openapi, schema.get("items", {}))
    if kind not in (None, "object"):
        return False
    values = schema.get("additionalProperties", True)
    return not schema.get("properties") and (values is True or values == {})


def _untyped_successes(openapi: dict) -> set[tuple[str, str]]:
    found = set()
    for path, method, op in operations(openapi):
        for status, response in op["responses"].items():
            if not status.startswith("2") or status == "204":
                continue
            content = response.get("content")
            if not content or any(_untyped(openapi, c.get("schema", {})) for c in content.values()):
                found.add((method, path))
    return found


def test_every_success_states_the_shape_of_its_body(openapi):
    """A 2xx answer's schema names its fields (a serializer), so clients are generated from it
    and Schemathesis checks the bodies; only 204 has no body."""
    untyped = _untyped_successes(openapi)
    assert sorted(f"{method.upper()} {path}" for method, path in untyped) == []


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "additionalProperties": {}},
        {},
        {"type": "array", "items": {"type": "object"}},
        {"type": "object", "properties": {}},
    ],
)
def test_the_untyped_check_sees_a_body_with_no_fields(openapi, schema):
    assert _untyped(openapi, schema)


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/components/schemas/Error"},
        {"type": "object", "additionalProperties": {"type": "integer"}},
        {"type": "string", "format": "binary"},
        {"type": "array", "items": {"$ref": "#/components/schemas/Error"}},
    ],
)
def test_the_untyped_check_passes_a_typed_body(openapi, schema):
    assert not _untyped(openapi, schema)
