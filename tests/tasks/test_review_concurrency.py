"""A requester's approval while Celery scores the same microtask (found by ``bench/load``).

Scoring locks the microtask, then its assignments (quality's decision approves or rejects them
through ``tasks.reviewing``). A requester's approval locked the assignment only; its commit then
took a KEY SHARE lock on the microtask (the ledger posting's foreign key, checked at commit), so
the two waited on each other: PostgreSQL killed one with "deadlock detected" (the requester got a
503). Review now locks the microtasks first, in the same order as scoring: one waits, none fails.
"""

from __future__ import annotations

import threading

import pytest
from django.db import transaction

from tasks import claiming, reviewing
from tasks.models import Assignment, AssignmentStatus, MicroTask
from tests.faults.invariants import assert_invariants
from tests.locking import DEADLINE_SECONDS, run_threads, wait_for_a_lock_waiter
from tests.tasks.claim_fixtures import published_job, qualified_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_approval_during_scoring_of_its_microtask_does_not_deadlock(monkeypatch):
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)  # no gold
    job = published_job(n=1, price=60, budget=10_000, gold_rate=0.0)
    w = qualified_worker()
    a = claiming.assignment_claim(worker=w, job_id=job.pk)
    claiming.assignment_submit(worker=w, assignment_id=a.pk, payload={"boxes": []})
    assert Assignment.objects.get(pk=a.pk).status == AssignmentStatus.SUBMITTED

    scoring_holds_microtask = threading.Event()

    def scoring() -> None:
        # What ``quality.services.processing.submission_process`` does: the microtask's row
        # first, then (deciding) its assignments, in id order, through ``tasks.reviewing``.
        with transaction.atomic():
            MicroTask.objects.select_for_update(of=("self",)).get(pk=a.microtask_id)
            scoring_holds_microtask.set()
            assert wait_for_a_lock_waiter()  # the other one really waits on us
            reviewing._lock_for_review(by=None, ids=[a.pk])

    def requester() -> None:
        assert scoring_holds_microtask.wait(DEADLINE_SECONDS)
        reviewing.assignment_approve(assignment_id=a.pk, by=job.requester)

    errors = run_threads(scoring, requester)
    assert errors == []
    assert Assignment.objects.get(pk=a.pk).status == AssignmentStatus.APPROVED
    assert_invariants()


def test_the_auto_approval_sweep_skips_a_microtask_being_scored_instead_of_deadlocking(
    monkeypatch,
):
    """The sweep took the assignment's lock first, then the microtask's at commit: the same
    deadlock with scoring. It now takes microtasks first and skips one scoring holds."""
    from datetime import timedelta

    from django.utils import timezone

    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)  # no gold
    job = published_job(n=1, price=60, budget=10_000, gold_rate=0.0)
    w = qualified_worker()
    a = claiming.assignment_claim(worker=w, job_id=job.pk)
    claiming.assignment_submit(worker=w, assignment_id=a.pk, payload={"boxes": []})
    Assignment.objects.filter(pk=a.pk).update(auto_approve_at=timezone.now() - timedelta(1))

    scoring_holds_microtask = threading.Event()
    sweep_done = threading.Event()
    swept: list[int] = []

    def scoring() -> None:
        with transaction.atomic():
            MicroTask.objects.select_for_update(of=("self",)).get(pk=a.microtask_id)
            scoring_holds_microtask.set()
            assert sweep_done.wait(DEADLINE_SECONDS)
            reviewing._lock_for_review(by=None, ids=[a.pk])

    def sweep() -> None:
        try:
            assert scoring_holds_microtask.wait(DEADLINE_SECONDS)
            swept.append(reviewing.assignments_auto_approve_due())
        finally:
            sweep_done.set()

    errors = run_threads(scoring, sweep)
    assert errors == []
    assert swept == [0]  # skipped while scoring held the microtask, nothing waited
    assert Assignment.objects.get(pk=a.pk).status == AssignmentStatus.SUBMITTED
    assert reviewing.assignments_auto_approve_due() == 1  # the next sweep approves it
    assert Assignment.objects.get(pk=a.pk).status == AssignmentStatus.APPROVED
    assert_invariants()


def test_an_admin_upholding_a_dispute_during_scoring_of_its_microtask_does_not_deadlock(
    monkeypatch,
):
    """``dispute_decide`` locked the disputed assignment first and took the microtask's KEY SHARE
    lock only at commit (the pay reversal's ledger rows): the same cycle with a scoring that holds
    the microtask and then locks its assignments (approved ones included: consensus counts
    them). It now takes the microtask first, as review and scoring do."""
    from tasks.models import DisputeStatus, RejectionDispute
    from tests.factories import AdminFactory

    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)  # no gold
    job = published_job(n=1, price=60, budget=10_000, gold_rate=0.0)
    w = qualified_worker()
    a = claiming.assignment_claim(worker=w, job_id=job.pk)
    claiming.assignment_submit(worker=w, assignment_id=a.pk, payload={"boxes": []})
    reviewing.assignment_approve(assignment_id=a.pk, by=job.requester)
    # What ``reviewing._reject_or_dispute`` opens for approved work the requester exported.
    dispute = RejectionDispute.objects.create(
        assignment_id=a.pk, job_id=job.pk, raised_by=job.requester, reason="Boxes were off"
    )
    admin = AdminFactory()

    scoring_holds_microtask = threading.Event()

    def scoring() -> None:
        # ``submission_process``: the microtask's row, then its done assignments in id order
        # (``approval.lock_in_order``), once the admin's transaction is under way and waiting.
        with transaction.atomic():
            MicroTask.objects.select_for_update(of=("self",)).get(pk=a.microtask_id)
            scoring_holds_microtask.set()
            assert wait_for_a_lock_waiter()  # the other one really waits on us
            list(
                Assignment.objects.select_for_update(of=("self",))
                .filter(pk=a.pk)
                .values_list("pk", flat=True)
            )

    def admin_decides() -> None:
        assert scoring_holds_microtask.wait(DEADLINE_SECONDS)
        reviewing.dispute_decide(dispute_id=dispute.pk, by=admin, uphold=True, note="agreed")

    errors = run_threads(scoring, admin_decides)
    assert errors == []
    a.refresh_from_db()
    assert (a.status, a.pay_amount) == (AssignmentStatus.REJECTED, 0)
    assert RejectionDispute.objects.get(pk=dispute.pk).status == DisputeStatus.UPHELD
    assert_invariants()
