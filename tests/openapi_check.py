"""Check a real API answer against the generated OpenAPI schema: the component of the
operation's response for that status, as a JSON Schema validator sees it.

``assert_answers_schema(response, "get", "/api/quality/me/trust/")`` fails when the status is not
one the operation documents, or when the body does not match its schema: a missing required
field, a wrong type, a null where none is allowed, a value outside an enum, a malformed
date-time, or a key the component does not state. That last one is stricter than the schema
itself (DRF's serializers do not say ``additionalProperties: false``, since they ignore unknown
input), and it is the point: a view that answers a field its component does not state is a view
whose schema lies to its clients. Maps (``DictField``) say ``additionalProperties`` and keep it.

Schemathesis (``tests/security/test_schemathesis.py``) runs the same kind of check on what it
generates, as a worker and a requester; this one serves tests that reach a route in a state worth
checking (admin routes, a suspension, a job with seams), with the project's own fixtures.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import jsonschema
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

REF_PREFIX = "#/components/schemas/"


@functools.cache
def openapi() -> dict[str, Any]:
    """The schema ``/api/schema/`` serves, generated once per test process."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


def resolve(openapi: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$ref`` (and a lone ``allOf``, drf-spectacular's way of adding a
    description to a reference) followed to the component it names."""
    while True:
        if "$ref" in schema:
            schema = openapi["components"]["schemas"][schema["$ref"].removeprefix(REF_PREFIX)]
        elif len(schema.get("allOf", ())) == 1:
            schema = schema["allOf"][0]
        else:
            return schema


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 to JSON Schema: ``nullable`` becomes a union with null, and an object that
    lists its properties allows no others."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if out.pop("nullable", False):
        return {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def _components() -> dict[str, Any]:
    return _json_schema(openapi()["components"]["schemas"])


def response_schema(method: str, path: str, status: int) -> dict[str, Any]:
    """The JSON Schema of ``method path``'s ``status`` answer, its components alongside."""
    operation = openapi()["paths"][path][method.lower()]
    responses = operation["responses"]
    assert str(status) in responses, (
        f"{method.upper()} {path} answered {status}, which its schema does not document "
        f"({sorted(responses)})"
    )
    content = responses[str(status)].get("content", {})
    assert "application/json" in content, f"{method.upper()} {path} {status}: no JSON body"
    schema = _json_schema(copy.deepcopy(content["application/json"]["schema"]))
    return {**schema, "components": {"schemas": _components()}}


def assert_answers_schema(response, method: str, path: str) -> Any:
    """Validate ``response`` (Django's test client) against the schema of ``method path`` (the
    path as the schema writes it: ``/api/quality/review/{id}/``); returns the parsed body."""
    body = response.json()
    validator = jsonschema.Draft202012Validator(
        response_schema(method, path, response.status_code),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, f"{method.upper()} {path} {response.status_code}:\n" + "\n".join(
        f"  at {'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in errors[:20]
    )
    return body
