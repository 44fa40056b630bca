"""Fault: the PostgreSQL backend serving a request is terminated (``pg_terminate_backend``) in
the middle of a claim, of a submit and of a ledger posting.

The backend is killed from a second connection just before a chosen statement of the request's
transaction runs (``connection.execute_wrapper``; the claim path's prepared statements honour it
too), after earlier statements of the same transaction (a lock, a write) already ran. Each time:
the transaction is rolled back by the server (no half state), the API client is told to retry
(503, ``Retry-After``, the JSON error shape), the retry succeeds once, and every invariant holds.
"""

from __future__ import annotations

import re
import time

import psycopg
import pytest
from django.db import close_old_connections, connection

from payments.models import LedgerTransaction
from payments.work import pay_key
from tasks.models import Assignment, AssignmentStatus, Submission
from tests.faults.invariants import assert_invariants
from tests.tasks.claim_fixtures import published_job, qualified_worker

pytestmark = pytest.mark.django_db(transaction=True)

DEADLINE_SECONDS = 10


def _terminate(pid: int) -> None:
    """Terminate backend ``pid`` from another connection and wait until it is gone."""
    s = connection.settings_dict
    with psycopg.connect(
        dbname=s["NAME"],
        user=s["USER"],
        host=s["HOST"] or "127.0.0.1",
        port=s["PORT"] or 5432,
        autocommit=True,
    ) as side:
        assert side.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
        deadline = time.monotonic() + DEADLINE_SECONDS
        while side.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, f"backend {pid} is still there"
            time.sleep(0.01)


class KillBefore:
    """Kill this connection's backend right before the first statement matching ``pattern``,
    checking that its transaction already ran ``after`` statements (so it dies mid-transaction;
    ``after=0`` for a statement that is a transaction by itself)."""

    def __init__(self, pattern: str, *, after: int = 1):
        self.pattern = re.compile(pattern, re.IGNORECASE | re.DOTALL)
        self.after = after
        self.seen = 0
        self.fired: str | None = None

    def __call__(self, execute, sql, params, many, context):
        if self.fired is None and self.pattern.search(sql):
            assert self.seen >= self.after, f"only {self.seen} statements before {sql[:80]}"
            self.fired = sql
            _terminate(context["connection"].connection.info.backend_pid)
        elif self.fired is None and not context["connection"].get_autocommit():
            self.seen += 1
        return execute(sql, params, many, context)


def _request(client, method: str, path: str, killer: KillBefore | None = None, **kwargs):
    if killer is None:
        return getattr(client, method)(path, format="json", **kwargs)
    with connection.execute_wrapper(killer):
        response = getattr(client, method)(path, format="json", **kwargs)
    assert killer.fired, f"the fault was never injected on {path}"
    # What the server does at the end of every request (request_finished): drop the connection
    # that broke. (Django's test client skips that signal handler.)
    close_old_connections()
    return response


def _assert_told_to_retry(response) -> None:
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("application/json")
    assert int(response["Retry-After"]) >= 1
    error = response.json()["error"]
    assert error["code"] == "unavailable"
    assert "lost its database connection" in error["message"]  # the cause, as it is
    assert "Retry" in error["message"]


def test_backend_terminated_mid_claim_mid_submit_and_mid_posting(client_for):
    job = published_job(n=2, overlap=1, gold_rate=0.0)
    worker = qualified_worker()
    wc = client_for(worker)
    rc = client_for(job.requester)
    responses = []

    # --- a claim: killed at the claim statement (one statement: the claim is atomic by itself) --
    killer = KillBefore(r"insert\s+into\s+tasks_assignment", after=0)
    r = _request(wc, "post", "/api/work/claim/", killer, data={"job": job.pk})
    responses.append(r)
    _assert_told_to_retry(r)
    assert not Assignment.objects.exists()
    r = _request(wc, "post", "/api/work/claim/", data={"job": job.pk})
    responses.append(r)
    assert r.status_code == 201, r.content
    assignment_id = r.json()["id"]
    assert Assignment.objects.count() == 1

    # --- a submit: killed at the insert of the submission, after the clock row was locked -----
    body = {"payload": {"boxes": []}, "active_seconds": 0.5}
    submit = f"/api/work/assignments/{assignment_id}/submit/"
    r = _request(wc, "post", submit, KillBefore(r"insert\s+into\s+tasks_submission"), data=body)
    responses.append(r)
    _assert_told_to_retry(r)
    a = Assignment.objects.get(pk=assignment_id)
    assert a.status == AssignmentStatus.CLAIMED
    assert a.active_seconds in (None, 0)
    assert not Submission.objects.exists()
    r = _request(wc, "post", submit, data=body)
    responses.append(r)
    assert r.status_code == 200, r.content
    assert Submission.objects.filter(assignment_id=assignment_id).count() == 1
    assert Assignment.objects.get(pk=assignment_id).status == AssignmentStatus.SUBMITTED

    # --- a ledger posting: the approval killed between its transaction row and its entries ----
    approve = f"/api/submissions/{assignment_id}/approve/"
    killer = KillBefore(r'insert\s+into\s+"payments_ledgerentry"')
    r = _request(rc, "post", approve, killer)
    responses.append(r)
    _assert_told_to_retry(r)
    assert Assignment.objects.get(pk=assignment_id).status == AssignmentStatus.SUBMITTED
    assert not LedgerTransaction.objects.filter(key=pay_key(assignment_id)).exists()
    r = _request(rc, "post", approve)
    responses.append(r)
    assert r.status_code == 200, r.content
    assert LedgerTransaction.objects.filter(key=pay_key(assignment_id)).count() == 1
    assert Assignment.objects.get(pk=assignment_id).status == AssignmentStatus.APPROVED

    assert_invariants(responses=responses)


def test_backend_terminated_during_a_page_is_a_503_page_not_a_500(client):
    job = published_job(n=1, overlap=1, gold_rate=0.0)
    worker = qualified_worker()
    client.force_login(worker)
    killer = KillBefore(r"tasks_assignment", after=0)
    with connection.execute_wrapper(killer):
        response = client.get("/work/")
    assert killer.fired
    close_old_connections()
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert int(response["Retry-After"]) >= 1
    assert b"Try again in a moment" in response.content
    assert b"lost its database connection" in response.content
    # The claim page's POST (a write) likewise, and it claimed nothing.
    killer = KillBefore(r"insert\s+into\s+tasks_assignment", after=0)
    with connection.execute_wrapper(killer):
        response = client.post("/work/claim/", {"job": job.pk})
    close_old_connections()
    assert killer.fired
    assert response.status_code == 503
    assert not Assignment.objects.exists()
    assert_invariants(responses=[response])
