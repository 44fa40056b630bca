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
from django.db import transaction

from marketplace.models import WorkerProfile
from payments import escrow, payouts
from payments import funding as funding_services
from payments.ledger import AccountKind
from payments.models import EarningHold, FundingStatus, LedgerAccount, Payout
from payments.posting import ledger_account
from payments.selectors import escrow_balance
from payments.work import pay_key, work_paid
from tasks import budget, claiming, paying, reviewing
from tasks.models import Assignment, AssignmentStatus, Slot
from tests.factories import WorkerFactory
from tests.locking import (
    DEADLINE_SECONDS,
    run_threads,
    someone_waits_on_a_lock,
    wait_for_a_lock_waiter,
)
from tests.payments.conftest import (
    assert_ledger_consistent,
    checkout_funding,
    credit_available,
    pay_checkout,
    reserved_assignment,
)
from tests.tasks.claim_fixtures import published_job

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_funding_check_while_a_worker_of_the_job_is_paid_does_not_deadlock(stripe_server):
    job = published_job(n=2, price=60, budget=20_000)
    job.budget = 10**6  # room for the funding below
    job.save(update_fields=["budget"])
    a = reserved_assignment(job, price=60, active_seconds=60)
    f = checkout_funding(job, amount=2_000)
    pay_checkout(stripe_server, f)  # Stripe took the money; the check below credits it
    before = escrow_balance(job=job).funded

    payer_holds_escrow = threading.Event()
    waited: list[bool] = []

    def payer() -> None:
        # An approval paying the worker: the job's escrow row is locked and updated; the
        # transaction commits only once the funding check is waiting on that row.
        try:
            with transaction.atomic():
                paying.assignment_pay(assignment=a, credit=1.0)
                payer_holds_escrow.set()
                waited.append(wait_for_a_lock_waiter())
        finally:
            payer_holds_escrow.set()

    def requester() -> None:
        assert payer_holds_escrow.wait(DEADLINE_SECONDS)
        funding_services.funding_refresh(funding=f)  # what the check endpoint does

    errors = run_threads(payer, requester)
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
    waited: list[bool] = []
    filled: list[int] = []

    def payer() -> None:
        try:
            with transaction.atomic():
                paying.assignment_pay(assignment=a, credit=1.0)
                payer_holds_escrow.set()
                waited.append(wait_for_a_lock_waiter())
        finally:
            payer_holds_escrow.set()

    def filler() -> None:
        assert payer_holds_escrow.wait(DEADLINE_SECONDS)
        filled.append(claiming.job_fill_slots_if_open(job_id=job.pk))  # the Celery task

    errors = run_threads(payer, filler)
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


@pytest.mark.parametrize(
    "platform",
    ["workers-paid-before", "new-workers", "new-platform"],
)
def test_two_bulk_approvals_paying_the_same_workers_in_opposite_orders_do_not_deadlock(
    monkeypatch, platform
):
    """Approvals of job A paying worker 1 then 2, beside approvals of job B paying 2 then 1.

    Each posting orders its own legs, but a transaction paying several workers took their
    (shared, cross-job) pending accounts one posting at a time: the two deadlocked on the worker
    rows (their escrow locks differ). ``lock_money_of`` then locked them up front, but only the
    ones that existed: paying workers never paid before, each approval created its first
    worker's account inside its transaction, and its second payment's INSERT waited on the
    other's uncommitted one (on a new platform, likewise the revenue account) — the same cycle.
    Every account is now created up front, in key order, before any is locked."""
    w1, w2 = WorkerFactory(), WorkerFactory()
    job_a = published_job(n=1, price=60, overlap=1, budget=5_000)
    job_b = published_job(n=1, price=60, overlap=1, budget=5_000)
    currency = job_a.currency
    if platform == "workers-paid-before":
        for w in (w1, w2):
            ledger_account(kind=AccountKind.WORKER_PENDING, currency=currency, worker=w)
    if platform != "new-platform":
        ledger_account(kind=AccountKind.PLATFORM_REVENUE, currency=currency)
    a1, a2 = _submitted(job_a, w1), _submitted(job_a, w2)  # job A pays w1, then w2
    b1, b2 = _submitted(job_b, w2), _submitted(job_b, w1)  # job B pays w2, then w1
    accounts = LedgerAccount.objects.filter(currency=currency)
    assert accounts.filter(kind=AccountKind.WORKER_PENDING, worker__in=[w1, w2]).count() == (
        2 if platform == "workers-paid-before" else 0
    )
    assert accounts.filter(kind=AccountKind.PLATFORM_REVENUE).count() == (
        0 if platform == "new-platform" else 1
    )

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
                if someone_waits_on_a_lock():
                    break
                time.sleep(0.02)
        out = real_pay(assignment=assignment, **kwargs)
        first_paid[job_id].set()
        return out

    monkeypatch.setattr(budget, "pay", pay)
    start = threading.Barrier(2, timeout=DEADLINE_SECONDS)  # the two begin together

    def review(job, ids):
        def approve() -> None:
            try:
                start.wait()
                reviewing.assignments_review_bulk(
                    by=job.requester, action="approve", assignment_ids=ids
                )
            finally:
                first_paid[job.pk].set()

        return approve

    errors = run_threads(review(job_a, [a1.pk, a2.pk]), review(job_b, [b1.pk, b2.pk]))
    assert errors == []
    assert all(work_paid(assignment_id=x.pk) for x in (a1, a2, b1, b2))
    for w in (w1, w2):  # one account each, holding both payments of its worker
        pending = accounts.get(kind=AccountKind.WORKER_PENDING, worker=w)
        paid = Assignment.objects.filter(pk__in=[a1.pk, a2.pk, b1.pk, b2.pk], worker=w)
        assert pending.balance == sum(paid.values_list("pay_amount", flat=True))
    assert accounts.filter(kind=AccountKind.PLATFORM_REVENUE).count() == 1
    assert_ledger_consistent()


def _payable(worker) -> None:
    """The worker can be paid out (a connected account; no Stripe call: runs don't enqueue)."""
    WorkerProfile.objects.filter(user=worker).update(
        payouts_enabled=True, stripe_account_id=f"acct_test{worker.pk}"
    )


def test_earnings_release_and_a_payout_run_beside_bulk_approvals_do_not_deadlock(monkeypatch):
    """The payout side: the hourly release moves each hold's pay pending -> available, and the
    run moves available -> in transit, while approvals credit the same workers' pending accounts.

    The release took each hold's accounts in hold order (worker 2's hold, then worker 1's), the
    approvals take pending accounts in id order (worker 1, then 2) and the run locked available
    accounts in id order (worker 1, then 2): the release, holding worker 2's rows, then waited
    for worker 1's, which the approval and the run held while they waited on worker 2's. Both
    the release and the run now create and lock all their accounts up front, in the one order
    (``posting.lock_money_of``)."""
    w1, w2 = WorkerFactory(), WorkerFactory()
    assert w1.pk < w2.pk
    for w in (w1, w2):
        _payable(w)
    earlier = published_job(n=1, price=60, overlap=1, budget=5_000)
    for w in (w1, w2):  # worker 1's accounts first in the global (id) order
        for kind in (AccountKind.WORKER_PENDING, AccountKind.WORKER_AVAILABLE):
            ledger_account(kind=kind, currency=earlier.currency, worker=w)
    # Earlier work: worker 2's hold first, so the release meets worker 2 before worker 1.
    held = [_submitted(earlier, w2), _submitted(earlier, w1)]
    reviewing.assignments_review_bulk(
        by=earlier.requester, action="approve", assignment_ids=[a.pk for a in held]
    )
    for w in (w1, w2):  # earnings released before: the run has something to pay either way
        credit_available(w, 5_000)
    pending = dict(
        LedgerAccount.objects.filter(kind=AccountKind.WORKER_PENDING).values_list("worker_id", "pk")
    )
    assert pending[w1.pk] < pending[w2.pk]  # worker 1's account comes first in the global order
    job = published_job(n=1, price=60, overlap=1, budget=5_000)
    new = [_submitted(job, w1), _submitted(job, w2)]

    released_first = threading.Event()
    real_post = funding_services.ledger_post_many
    posted: list[str] = []

    def post(postings):
        out = real_post(postings)
        posted.extend(p.key for p in postings)
        # The batch's holds posted, its accounts still locked: the others run into them.
        released_first.set()
        waited.append(wait_for_a_lock_waiter())
        return out

    monkeypatch.setattr(funding_services, "ledger_post_many", post)
    start = threading.Barrier(3, timeout=DEADLINE_SECONDS)  # the three begin together
    waited: list[bool] = []
    runs: list = []

    def together(fn):
        def body() -> None:
            try:
                start.wait()
                fn()
            finally:
                released_first.set()

        return body

    def release() -> None:
        funding_services.earnings_release_due(early=True)

    def approve() -> None:
        assert released_first.wait(DEADLINE_SECONDS)
        reviewing.assignments_review_bulk(
            by=job.requester, action="approve", assignment_ids=[a.pk for a in new]
        )

    def payout_run() -> None:
        assert released_first.wait(DEADLINE_SECONDS)
        runs.append(payouts.payout_run_start(enqueue=False))

    errors = run_threads(*(together(f) for f in (release, approve, payout_run)))
    assert errors == []
    assert waited == [True]  # the approval or the run really met the release on a lock
    assert len(posted) == 2
    assert (
        not EarningHold.objects.filter(worker__in=[w1, w2], released=False)
        .exclude(transaction__key__in=[pay_key(a.pk) for a in new])
        .exists()
    )
    assert all(work_paid(assignment_id=a.pk) for a in new)
    assert runs and runs[0].payouts_created == 2
    assert Payout.objects.filter(worker__in=[w1, w2]).count() == 2
    assert_ledger_consistent()
