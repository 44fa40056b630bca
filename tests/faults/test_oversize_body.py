"""A 10 MB submission body (over ``DATA_UPLOAD_MAX_MEMORY_SIZE``) gets the API's JSON error, 413
in the one error shape (``marketplace/api/schema.py``), through the test client and through
gunicorn; the assignment is unchanged (issue #16's end-to-end finding)."""

from __future__ import annotations

import json

import pytest
import requests
from django.conf import settings
from rest_framework.authtoken.models import Token

from tasks import claiming
from tasks.models import Assignment, AssignmentStatus
from tests.faults.invariants import assert_invariants
from tests.tasks.claim_fixtures import published_job, qualified_worker

TEN_MB = 10 * 1024 * 1024


def _claim():
    job = published_job(n=1, overlap=1, gold_rate=0.0)
    worker = qualified_worker()
    return worker, claiming.assignment_claim(worker=worker, job_id=job.pk)


def _body() -> bytes:
    body = json.dumps({"payload": {"boxes": [], "pad": "x" * TEN_MB}}).encode()
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return body


def _assert_json_413(status: int, content_type: str, data: bytes) -> None:
    assert status == 413
    assert content_type.startswith("application/json")
    error = json.loads(data)["error"]
    assert error["code"] == "too_large"
    assert error["message"]


@pytest.mark.django_db
def test_a_10_mb_submission_is_a_json_413_through_the_test_client(client_for):
    worker, a = _claim()
    response = client_for(worker).generic(
        "POST",
        f"/api/work/assignments/{a.pk}/submit/",
        _body(),
        content_type="application/json",
    )
    _assert_json_413(response.status_code, response["Content-Type"], response.content)
    assert Assignment.objects.get(pk=a.pk).status == AssignmentStatus.CLAIMED
    assert_invariants(responses=[response])


def test_a_10_mb_submission_is_a_json_413_through_gunicorn(gunicorn_server):
    worker, a = _claim()
    token, _ = Token.objects.get_or_create(user=worker)
    response = requests.post(
        f"{gunicorn_server}/api/work/assignments/{a.pk}/submit/",
        data=_body(),
        headers={"Authorization": f"Token {token.key}", "Content-Type": "application/json"},
        timeout=60,
    )
    _assert_json_413(response.status_code, response.headers["Content-Type"], response.content)
    assert Assignment.objects.get(pk=a.pk).status == AssignmentStatus.CLAIMED
    # The same through a form body, which Django's own parsing reads.
    form = requests.post(
        f"{gunicorn_server}/api/work/assignments/{a.pk}/submit/",
        data={"payload": "x" * TEN_MB},
        headers={"Authorization": f"Token {token.key}"},
        timeout=60,
    )
    _assert_json_413(form.status_code, form.headers["Content-Type"], form.content)
    assert_invariants(responses=[response, form])
