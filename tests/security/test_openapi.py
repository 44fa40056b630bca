"""The OpenAPI schema states every error an operation can answer, in the API's one error shape.

``marketplace.api.schema.AutoSchema`` derives them from each view; these tests read the generated
schema as a client would. That the statuses and bodies are the ones really returned is
Schemathesis' part (``test_schemathesis``).
"""

from __future__ import annotations

import json

import pytest
from django.urls import path as url_path
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from marketplace.api.permissions import IsWorker

ERROR_REF = "#/components/schemas/Error"
WRITES = {"post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def openapi() -> dict:
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


def operations(openapi: dict):
    for path, item in openapi["paths"].items():
        for method, op in item.items():
            if method in WRITES | {"get"}:
                yield path, method, op


def test_the_error_component_is_the_shape_the_handler_renders(openapi):
    schemas = openapi["components"]["schemas"]
    assert schemas["Error"]["required"] == ["error"]
    detail = schemas["ErrorDetail"]
    assert set(detail["required"]) == {"code", "message"}
    assert set(detail["properties"]) == {"code", "message", "fields"}


def test_every_error_response_is_json_in_the_one_error_shape(openapi):
    wrong = []
    for path, method, op in operations(openapi):
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            content = response.get("content", {})
            if list(content) != ["application/json"] or (
                content["application/json"]["schema"] != {"$ref": ERROR_REF}
            ):
                wrong.append(f"{method.upper()} {path} {status}: {content}")
    assert wrong == []


def test_every_operation_states_the_errors_its_kind_can_return(openapi):
    missing = []
    for path, method, op in operations(openapi):
        statuses = set(op["responses"])
        authenticated = any(scheme for scheme in op.get("security", [{}]))
        expected = {"503"}  # the database connection dropped: retry (tests/faults)
        if authenticated:
            expected.add("401")
        if "{" in path:
            expected.add("404")
        if method in WRITES:
            expected.add("400")
            if authenticated:
                expected |= {"403", "409"}
        if not expected <= statuses:
            missing.append(f"{method.upper()} {path}: {sorted(expected - statuses)}")
    assert missing == []


def test_role_restricted_reads_state_403_and_open_reads_do_not(openapi):
    me = openapi["paths"]["/api/me/"]["get"]["responses"]
    assert "403" not in me  # any logged-in user may ask who they are
    for path in ("/api/work/jobs/", "/api/jobs/", "/api/quality/flags/"):
        assert "403" in openapi["paths"][path]["get"]["responses"], path


def test_the_public_writes_state_no_401(openapi):
    for path in ("/api/auth/signup/", "/api/auth/token/"):
        assert "401" not in openapi["paths"][path]["post"]["responses"], path
    # A wrong password is a 403.
    assert "403" in openapi["paths"]["/api/auth/token/"]["post"]["responses"]


def test_downloads_state_their_real_media_types(openapi):
    export = openapi["paths"]["/api/jobs/{job_id}/export/{fmt}/"]["get"]["responses"]["200"]
    assert set(export["content"]) == {"application/json", "application/zip", "application/xml"}
    for binary in ("application/zip", "application/xml"):
        assert export["content"][binary]["schema"] == {"type": "string", "format": "binary"}


def test_request_bodies_are_json_except_file_uploads(openapi):
    media = {
        f"{method.upper()} {path}": set(op["requestBody"]["content"])
        for path, method, op in operations(openapi)
        if "requestBody" in op
    }
    assert media.pop("POST /api/jobs/{job_id}/videos/") == {"multipart/form-data"}
    assert media.pop("POST /api/quality/jobs/{job_id}/gold-import/") == {
        "application/json",
        "multipart/form-data",
    }
    assert {m for types in media.values() for m in types} == {"application/json"}


def test_lists_with_filters_and_pages_state_their_400_and_404(openapi):
    jobs = openapi["paths"]["/api/jobs/"]["get"]["responses"]
    assert {"400", "404"} <= set(jobs)  # a filter value that does not parse; a page past the end


class _Note(serializers.Serializer):
    text = serializers.CharField()


class _ThrottledWrite(APIView):
    """A stand-in for a throttled view (login, claim, submit): its schema is built alone."""

    permission_classes = [IsWorker]
    throttle_classes = [UserRateThrottle]

    @extend_schema(request=_Note, responses=_Note)
    def post(self, request, pk: int):
        return Response({})


def test_a_throttled_view_states_429_and_the_rest_of_its_kind():
    generated = SchemaGenerator(
        patterns=[url_path("api/notes/<int:pk>/", _ThrottledWrite.as_view())]
    ).get_schema(request=None, public=True)
    responses = json.loads(OpenApiJsonRenderer().render(generated))["paths"]["/api/notes/{id}/"][
        "post"
    ]["responses"]
    assert set(responses) == {"200", "400", "401", "403", "404", "409", "413", "415", "429", "503"}


def test_the_funding_check_states_its_throttle(openapi):
    """Each check asks Stripe, so it is throttled (``funding_check``): its 429 is in the schema."""
    op = openapi["paths"]["/api/payments/jobs/{id}/fundings/{funding_id}/check/"]["post"]
    assert "Retry-After" in op["responses"]["429"]["description"]
