"""Schemathesis against the generated OpenAPI schema, in-process, as a worker and as a requester.

Every operation of ``/api/schema/`` is one test per role (``test_api[POST /api/jobs/][worker]``):
Schemathesis generates requests from the schema (its coverage phase: boundary and missing
values, undeclared methods; then fuzzing: schema-valid and schema-violating data), sends them
through Django's WSGI handler on the test's PostgreSQL transaction with the role's API token,
and checks each response:

- ``not_a_server_error``: no 5xx, whatever the input;
- ``status_code_conformance``, ``content_type_conformance``, ``response_schema_conformance``,
  ``response_headers_conformance``: the status, media type and body are what the schema says;
- ``positive_data_acceptance``: a request the schema calls valid is not refused with a 400 (the
  statuses that are no judgement of the data, 401/403/404/409/429, are allowed);
- ``unsupported_method`` and ``allow_header_conformance``: a method the path does not have is a
  405 with an ``Allow`` header that matches the schema.

``negative_data_rejection`` (schema-violating data must be refused) is off: DRF ignores what it
does not know (an unknown query parameter, a ``page_size`` that is not a number falls back to the
default), which is the behaviour we want, not a bug. Schema-violating requests are still sent,
so they must not cause a 5xx or an undocumented status.

Path ids are half the time the fixture world's real objects (the role's own job, assignment,
...), so the requests reach the services behind the 404, not only the 404.

``SCHEMATHESIS_MAX_EXAMPLES`` (default 5) bounds the fuzzing examples per operation and role.
``SCHEMATHESIS_COVERAGE_SAMPLE`` (default 4) runs 1 in N of the coverage phase's cases. The
generation is derandomized, so CI runs (nearly) the same cases every time (Schemathesis also
learns from the server's answers, which carry the run's ids); ``SCHEMATHESIS_RANDOM=1``
explores new ones. The number of cases run is printed in the terminal summary.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable

import hypothesis
import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck
from schemathesis.specs.openapi import checks as openapi_checks

from tests.security.conftest import SCHEMATHESIS_CASES, World

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "5"))
# The coverage phase derives dozens of cases per operation from the schema (every field missing,
# of the wrong type, at its bounds; every undeclared method), thousands in all: 1 in N of them
# run (chosen by a hash of the case, so the same ones every run); 1 runs all, 0 none.
COVERAGE_SAMPLE = int(os.environ.get("SCHEMATHESIS_COVERAGE_SAMPLE", "4"))
RANDOM = os.environ.get("SCHEMATHESIS_RANDOM") == "1"

CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.positive_data_acceptance,
    openapi_checks.unsupported_method,
    openapi_checks.allow_header_conformance,
]

# Where a schema-valid request may still be refused with a 400, and why. Each is a rule JSON
# Schema cannot state; everything else must accept what the schema calls valid.
STATE_DEPENDENT_400 = [
    # A job's cross-field rules (overlap_min <= overlap_max, overlap_frames < segment_frames,
    # classes by annotation type) and fields the schema states only as strings: a three-letter
    # currency code, durations in DRF's "[DD] [HH:[MM:]]ss[.uuuuuu]" format.
    ("POST", "/api/jobs/"),
    ("PUT", "/api/jobs/{id}/"),
    ("PATCH", "/api/jobs/{id}/"),
    # A username that is already taken.
    ("POST", "/api/auth/signup/"),
    # An annotation is checked against its job's type, classes and frames (or the question's).
    ("POST", "/api/work/assignments/{id}/submit/"),
    ("POST", "/api/work/qualifications/{annotation_type}/"),
    ("POST", "/api/quality/review/{id}/resolve/"),
    ("PUT", "/api/quality/microtasks/{id}/gold/"),
    # The content of an imported file (COCO, CVAT, MOT) and whether it matches the job's videos.
    ("POST", "/api/quality/jobs/{job_id}/gold-import/"),
    # A reason is required when the action is "reject", not when it is "approve".
    ("POST", "/api/submissions/review/"),
    # A job funded for its quote already is refused with a 400 (a state, which would read better
    # as a 409 Conflict; payments.funding decides).
    ("POST", "/api/payments/jobs/{id}/fund/"),
    # A page's cursor is a token the list gave out (a ``next``/``previous`` link); any other
    # string of the schema's length is refused (marketplace.api.pagination.KeysetPagination).
    ("GET", "/api/work/assignments/"),
]
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]


def _raw_schema() -> dict:
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


def _config() -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "phases": {"coverage": {"enabled": COVERAGE_SAMPLE > 0}},
            "generation": {
                "max-examples": MAX_EXAMPLES,
                # The role's token is sent with every request; no made-up Authorization header.
                "with-security-parameters": False,
                # DRF refuses a NUL character in every text field (PostgreSQL cannot store one);
                # JSON Schema could only say so with a pattern on every string.
                "allow-x00": False,
            },
            "operations": [
                {
                    # One operation by its exact label; method and path filters would be OR-ed.
                    "include-name": f"{method} {path}",
                    "checks": {
                        "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "400"]}
                    },
                }
                for method, path in STATE_DEPENDENT_400
            ],
        }
    )


schema = schemathesis.openapi.from_dict(_raw_schema(), config=_config())
schema.app = WSGIHandler()

# Which world object fills a path: by path prefix, the parameter name -> its id.
_REAL_IDS: list[tuple[str, Callable[[World], dict]]] = [
    ("/api/jobs/{job_id}/videos/", lambda w: {"job_id": w.job.pk, "id": w.video.pk}),
    ("/api/jobs/{job_id}/microtasks/", lambda w: {"job_id": w.job.pk, "id": w.microtask.pk}),
    ("/api/jobs/{job_id}/", lambda w: {"job_id": w.job.pk}),
    ("/api/jobs/{id}/", lambda w: {"id": w.job.pk}),
    ("/api/payments/jobs/{id}/fundings/", lambda w: {"id": w.job.pk, "funding_id": w.funding.pk}),
    ("/api/payments/jobs/{id}/", lambda w: {"id": w.job.pk}),
    ("/api/payments/admin/workers/{id}/", lambda w: {"id": w.worker.pk}),
    ("/api/payments/admin/payouts/{id}/", lambda w: {"id": w.payout.pk}),
    ("/api/quality/jobs/{job_id}/", lambda w: {"job_id": w.job.pk}),
    ("/api/quality/microtasks/{id}/", lambda w: {"id": w.microtask.pk}),
    ("/api/quality/appeals/{id}/", lambda w: {"id": w.appeal.pk}),
    ("/api/quality/review/{id}/", lambda w: {"id": w.review.pk}),
    ("/api/quality/workers/{id}/", lambda w: {"id": w.worker.pk}),
    ("/api/quality/flags/{id}/", lambda w: {"id": w.flag.pk}),
    ("/api/submissions/{id}/", lambda w: {"id": w.submitted.pk}),
    ("/api/work/assignments/{id}/", lambda w: {"id": w.claimed.pk}),
    ("/api/work/qualifications/{annotation_type}/", lambda w: {"annotation_type": "bbox"}),
]


def _identity(case) -> bytes:
    return repr(
        (case.method, case.path_parameters, case.query, case.body, case.media_type, case.headers)
    ).encode()


def _sampled_out(case) -> bool:
    """Whether this coverage-phase case is left out of the sample (see COVERAGE_SAMPLE)."""
    if case.meta is None or case.meta.phase.name.value != "coverage" or COVERAGE_SAMPLE <= 1:
        return False
    return zlib.crc32(_identity(case)) % COVERAGE_SAMPLE != 0


def _fits(generated, real) -> bool:
    """Whether ``real`` may stand in for a generated path value without changing its validity."""
    if isinstance(real, int):
        return type(generated) is int or (isinstance(generated, str) and generated.isdigit())
    return isinstance(generated, str)


def _use_real_ids(case, world: World) -> None:
    """For about half the cases, put the world's own objects in the path (where the generated
    values are well-formed, so a schema-violating case stays one); the rest probe made-up ids.
    Which half is a function of the case, so a failing case replays the same."""
    if zlib.crc32(_identity(case)) % 2:
        return
    path = case.operation.path
    real = next((fill(world) for prefix, fill in _REAL_IDS if path.startswith(prefix)), None)
    params = case.path_parameters
    if real and all(_fits(params.get(k), v) for k, v in real.items()):
        params.update({k: str(v) if isinstance(params[k], str) else v for k, v in real.items()})


@pytest.fixture
def in_process():
    """Requests go through the WSGI handler on this test's transaction: the handler must not
    close the connection at the end of a request (Django's test client does the same)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.mark.parametrize("role", ["worker", "requester"])
@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    # One fixture world per test serves every generated case; state they leave is part of the
    # test (a cancelled job answers 409 to the next case, which the schema documents).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api(case, role, world, stripe_server, in_process):
    if _sampled_out(case):
        return
    _use_real_ids(case, world)
    case.call_and_validate(headers={"Authorization": f"Token {world.token(role)}"}, checks=CHECKS)
    SCHEMATHESIS_CASES[(role, case.operation.label)] += 1
