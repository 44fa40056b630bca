"""A request the database rolled back is a 503 "retry" that says why (``marketplace.unavailable``).

The dropped connection has its own fault test (``tests/faults/test_postgres_backend_terminated``:
"lost its database connection"). Here the other causes, each raised by the real server in the
middle of a real approval's transaction (just before its ledger entries are written): a real
deadlock with a second connection, a serialization failure, a statement timeout. Each answer is
a 503 with ``Retry-After`` that names its own cause, nothing was changed, and the retry succeeds.
"""

from __future__ import annotations

import re
import threading

import psycopg
import pytest
from django.db import close_old_connections, connection

from marketplace import unavailable
from payments.work import work_paid
from tasks import claiming
from tasks.models import Assignment, AssignmentStatus
from tests.factories import UserFactory
from tests.locking import DEADLINE_SECONDS, wait_for_a_lock_waiter
from tests.tasks.claim_fixtures import published_job, qualified_worker

pytestmark = pytest.mark.django_db(transaction=True)

LEDGER_ENTRIES = re.compile(r'insert\s+into\s+"payments_ledgerentry"', re.IGNORECASE)
LOCK_USER = "SELECT id FROM marketplace_user WHERE id = %s FOR UPDATE"


class Before:
    """Run ``fault(execute, context)`` on the request's connection right before its first
    statement that writes ledger entries (inside the approval's transaction)."""

    def __init__(self, fault):
        self.fault = fault
        self.fired = False

    def __call__(self, execute, sql, params, many, context):
        if not self.fired and LEDGER_ENTRIES.search(sql):
            self.fired = True
            assert not context["connection"].get_autocommit()
            self.fault(execute, context)
        return execute(sql, params, many, context)


def a_real_deadlock():
    """The request locks user row A; a second connection locks B, then waits for A; the request
    then asks for B. PostgreSQL finds the cycle and aborts the request's transaction (the other
    connection's ``deadlock_timeout`` is long, so the request's check runs first)."""
    rows = UserFactory().pk, UserFactory().pk  # committed: the other connection sees them
    return lambda execute, context: _deadlock(execute, context, *rows)


def _deadlock(execute, context, row_a: int, row_b: int) -> None:
    execute(LOCK_USER, [row_a], False, context)
    s = connection.settings_dict
    side_has_b = threading.Event()
    errors: list[BaseException] = []

    def side() -> None:
        try:
            with psycopg.connect(
                dbname=s["NAME"], user=s["USER"], host=s["HOST"] or "127.0.0.1", port=s["PORT"]
            ) as other:
                other.execute("SET deadlock_timeout = '30s'")
                other.execute(LOCK_USER, [row_b])
                side_has_b.set()
                other.execute(LOCK_USER, [row_a])  # waits until the request is rolled back
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            side_has_b.set()

    thread = threading.Thread(target=side)
    thread.start()
    try:
        assert side_has_b.wait(DEADLINE_SECONDS)
        assert wait_for_a_lock_waiter()
        execute(LOCK_USER, [row_b], False, context)  # the cycle: this raises
    finally:
        thread.join(DEADLINE_SECONDS)
        assert errors == []


def a_serialization_failure():
    return _serialization_failure


def _serialization_failure(execute, context) -> None:
    execute(
        "DO $$ BEGIN RAISE EXCEPTION 'could not serialize access due to concurrent update' "
        "USING ERRCODE = 'serialization_failure'; END $$",
        None,
        False,
        context,
    )


def a_statement_timeout():
    return _statement_timeout


def _statement_timeout(execute, context) -> None:
    execute("SET LOCAL statement_timeout = '20ms'", None, False, context)
    execute("SELECT pg_sleep(2)", None, False, context)


def _submitted_work():
    job = published_job(n=1, price=60, budget=10_000, gold_rate=0.0)
    w = qualified_worker()
    a = claiming.assignment_claim(worker=w, job_id=job.pk)
    claiming.assignment_submit(worker=w, assignment_id=a.pk, payload={"boxes": []})
    return job, a


def _post(client, path: str, fault, **kwargs):
    injected = Before(fault)
    with connection.execute_wrapper(injected):
        response = client.post(path, **kwargs)
    assert injected.fired, f"the fault was never injected on {path}"
    close_old_connections()  # what the server does at the end of every request
    return response


def _nothing_changed(a) -> None:
    assert Assignment.objects.get(pk=a.pk).status == AssignmentStatus.SUBMITTED
    assert not work_paid(assignment_id=a.pk)


CAUSES = [
    pytest.param(a_real_deadlock, unavailable.COLLIDED, id="deadlock"),
    pytest.param(a_serialization_failure, unavailable.COLLIDED, id="serialization-failure"),
    pytest.param(a_statement_timeout, unavailable.STOPPED, id="statement-timeout"),
]


@pytest.mark.parametrize(("fault", "said"), CAUSES)
def test_the_api_says_why_the_database_rolled_the_request_back(client_for, fault, said):
    job, a = _submitted_work()
    client = client_for(job.requester)
    path = f"/api/submissions/{a.pk}/approve/"

    r = _post(client, path, fault(), format="json")

    assert r.status_code == 503, r.content
    assert r["Content-Type"].startswith("application/json")
    assert int(r["Retry-After"]) >= 1
    error = r.json()["error"]
    assert error["code"] == "unavailable"
    assert error["message"] == f"{said} Retry in a moment."
    assert "connection" not in error["message"]
    _nothing_changed(a)
    r = client.post(path, format="json")  # the retry
    assert r.status_code == 200, r.content
    assert work_paid(assignment_id=a.pk)


@pytest.mark.parametrize(("fault", "said"), CAUSES)
def test_a_page_says_why_the_database_rolled_the_request_back(client, fault, said):
    job, a = _submitted_work()
    client.force_login(job.requester)
    path = f"/requester/jobs/{job.pk}/submissions/review/"

    r = _post(client, path, fault(), data={"approve": a.pk})

    assert r.status_code == 503
    assert r["Content-Type"].startswith("text/html")
    assert int(r["Retry-After"]) >= 1
    page = r.content.decode()
    assert said in page
    assert unavailable.CONNECTION_LOST not in page
    _nothing_changed(a)
