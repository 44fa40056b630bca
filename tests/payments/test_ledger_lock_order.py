"""The lock order of a job's money (found by ``bench/load``: a 503 on a funding's check).

Paying a worker (``work_pay``), reserving or releasing a slot lock the job's ``job_escrow``
account row, post, and at commit take a KEY SHARE lock on the job's row (the ledger
transaction's foreign key: Django's foreign keys are checked at commit). The funding check
(``funding_refresh`` -> ``funding_confirm_checkout`` -> ``funding_confirm``) locked the funding
*with its job* (``select_for_update().select_related("job")`` is ``FOR UPDATE`` on both rows),
then updated the escrow row: job row, then escrow — the payer's commit waited on the job row
the check held, the check waited on the escrow row the payer held, and PostgreSQL killed one
with "deadlock detected" while it updated ``payments_ledgeraccount``.

The global order is now: a job's ``job_escrow`` row first (``posting.lock_job_money``), and job
rows are locked ``FOR NO KEY UPDATE`` (which a foreign key's KEY SHARE never waits on).
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from payments import escrow
from payments import funding as funding_services
from payments.ledger import AccountKind
from payments.models import FundingStatus
from payments.posting import ledger_account
from payments.selectors import escrow_balance
from payments.work import work_paid
from tasks import budget, claiming, paying, reviewing
from tasks.models import Assignment, AssignmentStatus, Slot
from tests.factories import WorkerFactory
from tests.payments.conftest import (
    assert_ledger_consistent,
    checkout_funding,
    pay_checkout,
    reserved_assignment,
)
from tests.tasks.claim_fixtures import published_job

pytestmark = pytest.mark.django_db(transaction=True)

DEADLINE_SECONDS = 10


def _someone_waits_on_a_lock() -> bool:
    """Whether another backend of this test database waits for a lock (``pg_locks`` is live;
    ``pg_stat_activity``, which names the database, is re-read: a transaction otherwise sees it
    as of its first read; other databases on the server are other people's)."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute(
            "SELECT count(*) FROM pg_locks AS l JOIN pg_stat_activity AS s ON s.pid = l.pid "
            "WHERE NOT l.granted AND l.pid <> pg_backend_pid() "
            "AND s.datname = current_database()"
        )
        return cur.fetchone()[0] > 0


def _wait_for_a_lock_waiter() -> bool:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if _someone_waits_on_a_lock():
            return True
        time.sleep(0.02)
    return False


def test_a_funding_check_while_a_worker_of_the_job_is_paid_does_not_deadlock(stripe_server):
    job = published_job(n=2, price=60, budget=20_000)
    job.budget = 10**6  # room for the funding below
    job.save(update_fields=["budget"])
    a = reserved_assignment(job, price=60, active_seconds=60)
    f = checkout_funding(job, amount=2_000)
    pay_checkout(stripe_server, f)  # Stripe took the money; the check below credits it
    before = escrow_balance(job=job).funded

    payer_holds_escrow = threading.Event()
    errors: list[BaseException] = []
    waited: list[bool] = []

    def payer() -> None:
        # An approval paying the worker: the job's escrow row is locked and updated; the
        # transaction commits only once the funding check is waiting on that row.
        try:
            with transaction.atomic():
                paying.assignment_pay(assignment=a, credit=1.0)
                payer_holds_escrow.set()
                waited.append(_wait_for_a_lock_waiter())
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            payer_holds_escrow.set()
            connection.close()

    def requester() -> None:
        try:
            assert payer_holds_escrow.wait(DEADLINE_SECONDS)
            funding_services.funding_refresh(funding=f)  # what the check endpoint does
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=payer), threading.Thread(target=requester)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE_SECONDS * 3)
    assert not any(t.is_alive() for t in threads)
    assert waited == [True]  # the two really met on a lock
    assert errors == []
    f.refresh_from_db()
    assert f.status == FundingStatus.SUCCEEDED
    assert escrow_balance(job=job).funded == before + 2_000
    assert work_paid(assignment_id=a.pk)
    assert_ledger_consistent()


def test_filling_a_jobs_slots_while_a_worker_of_the_job_is_paid_does_not_deadlock():
    """The same cycle from the Celery side: ``fill_job_slots`` locked the job's row (``FOR
    UPDATE``) and then waited for its escrow row, held by an approval whose commit needed a KEY
    SHARE lock on that job row. Job rows are now locked ``FOR NO KEY UPDATE``."""
    job = published_job(n=4, price=60, overlap=1, budget=200)
    slots = Slot.objects.filter(job=job).count()
    escrow.escrow_fund(job=job, amount=5_000, key=f"more:{job.pk}")  # covers the rest
    a = reserved_assignment(job, price=60, active_seconds=60)

    payer_holds_escrow = threading.Event()
    errors: list[BaseException] = []
    waited: list[bool] = []
    filled: list[int] = []

    def payer() -> None:
        try:
            with transaction.atomic():
                paying.assignment_pay(assignment=a, credit=1.0)
                payer_holds_escrow.set()
                waited.append(_wait_for_a_lock_waiter())
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            payer_holds_escrow.set()
            connection.close()

    def filler() -> None:
        try:
            assert payer_holds_escrow.wait(DEADLINE_SECONDS)
            filled.append(claiming.job_fill_slots_if_open(job_id=job.pk))  # the Celery task
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=payer), threading.Thread(target=filler)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE_SECONDS * 3)
    assert not any(t.is_alive() for t in threads)
    assert waited == [True]
    assert errors == []
    assert filled and filled[0] > 0
    assert Slot.objects.filter(job=job).count() == slots + filled[0]
    assert work_paid(assignment_id=a.pk)
    assert_ledger_consistent()


def _submitted(job, worker):
    a = reserved_assignment(job, worker=worker, price=60, active_seconds=60)
    Assignment.objects.filter(pk=a.pk).update(status=AssignmentStatus.SUBMITTED)
    return a


def test_two_bulk_approvals_paying_the_same_workers_in_opposite_orders_do_not_deadlock(
    monkeypatch,
):
    """Each posting orders its own legs, but a transaction paying several workers took their
    (shared, cross-job) pending accounts one posting at a time: approvals of job A paying worker
    1 then 2, beside approvals of job B paying 2 then 1, deadlocked on the worker rows (their
    escrow locks differ). The rows are now locked up front in the global order."""
    w1, w2 = WorkerFactory(), WorkerFactory()
    job_a = published_job(n=1, price=60, overlap=1, budget=5_000)
    job_b = published_job(n=1, price=60, overlap=1, budget=5_000)
    # A live platform: the workers were paid before, fees were taken before.
    for w in (w1, w2):
        ledger_account(kind=AccountKind.WORKER_PENDING, currency=job_a.currency, worker=w)
    ledger_account(kind=AccountKind.PLATFORM_REVENUE, currency=job_a.currency)
    a1, a2 = _submitted(job_a, w1), _submitted(job_a, w2)  # job A pays w1, then w2
    b1, b2 = _submitted(job_b, w2), _submitted(job_b, w1)  # job B pays w2, then w1

    first_paid = {job_a.pk: threading.Event(), job_b.pk: threading.Event()}
    other = {job_a.pk: job_b.pk, job_b.pk: job_a.pk}
    real_pay = budget.pay
    calls: dict[int, int] = {}

    def pay(*, assignment, **kwargs):
        # Between its two payments each approval waits until the other one paid its first
        # worker (the opposite order), or is waiting on a lock (the fixed order keeps it out).
        job_id = assignment.microtask.job_id
        calls[job_id] = calls.get(job_id, 0) + 1
        if calls[job_id] == 2:
            deadline = time.monotonic() + DEADLINE_SECONDS
            while time.monotonic() < deadline and not first_paid[other[job_id]].is_set():
                if _someone_waits_on_a_lock():
                    break
                time.sleep(0.02)
        out = real_pay(assignment=assignment, **kwargs)
        first_paid[job_id].set()
        return out

    monkeypatch.setattr(budget, "pay", pay)
    errors: list[BaseException] = []

    def review(job, ids) -> None:
        try:
            reviewing.assignments_review_bulk(
                by=job.requester, action="approve", assignment_ids=ids
            )
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            first_paid[job.pk].set()
            connection.close()

    threads = [
        threading.Thread(target=review, args=(job_a, [a1.pk, a2.pk])),
        threading.Thread(target=review, args=(job_b, [b1.pk, b2.pk])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE_SECONDS * 3)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert all(work_paid(assignment_id=x.pk) for x in (a1, a2, b1, b2))
    assert_ledger_consistent()
