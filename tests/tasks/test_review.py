"""Requester review: approve, reject with a reason, bulk (all or none), auto-approval."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks import budget, claiming
from tasks.models import Assignment, AssignmentStatus
from tasks.tasks import auto_approve_due_submissions
from tests.openapi_check import assert_answers_schema
from tests.tasks.claim_fixtures import published_job, qualified_worker

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_gold(monkeypatch):
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)


def _submitted(job, n: int) -> list[Assignment]:
    out = []
    for _ in range(n):
        w = qualified_worker()
        a = claiming.assignment_claim(worker=w, job_id=job.pk)
        out.append(claiming.assignment_submit(worker=w, assignment_id=a.pk, payload={"boxes": []}))
    return out


def test_approve_pays_and_reject_needs_a_reason_the_worker_sees(client_for):
    job = published_job(n=2, price=60, budget=10_000, gold_rate=0.0)
    owner = client_for(job.requester)
    a, b = _submitted(job, 2)
    r = owner.post(f"/api/submissions/{a.pk}/approve/")
    assert r.status_code == 200 and r.json() == {"id": a.pk, "status": "approved", "pay_amount": 60}
    assert_answers_schema(r, "post", "/api/submissions/{id}/approve/")
    r = owner.post(f"/api/submissions/{b.pk}/reject/", {"reason": "  "}, format="json")
    assert r.status_code == 400 and "reason" in r.json()["error"]["fields"]
    assert Assignment.objects.get(pk=b.pk).status == AssignmentStatus.SUBMITTED
    before = budget.available(job=job)
    r = owner.post(f"/api/submissions/{b.pk}/reject/", {"reason": "Boxes missing"}, format="json")
    assert r.json()["status"] == "rejected"
    # The rejected assignment's reservation went back to the job's available escrow.
    assert b.reserved_amount > 0
    assert budget.available(job=job) == before + b.reserved_amount
    worker_view = client_for(b.worker).get("/api/work/assignments/").json()["results"][0]
    assert (worker_view["status"], worker_view["rejection_reason"]) == ("rejected", "Boxes missing")
    # Reviewed work cannot be reviewed again.
    assert owner.post(f"/api/submissions/{a.pk}/approve/").status_code == 409
    # Both money actions are in the audit log: who, what, how much, why.
    from payments.models import AuditLog

    log = {
        row.action: row
        for row in AuditLog.objects.filter(object_type="Assignment", object_id__in=[a.pk, b.pk])
    }
    assert (log["assignment.paid"].actor_id, log["assignment.paid"].amount) == (
        job.requester_id,
        60,
    )
    unpaid = log["assignment.unpaid"]
    assert (unpaid.actor_id, unpaid.amount, unpaid.reason) == (
        job.requester_id,
        b.reserved_amount,
        "Boxes missing",
    )


def test_other_requesters_cannot_see_or_review(client_for, other_requester_client):
    job = published_job(n=1)
    (a,) = _submitted(job, 1)
    assert other_requester_client.post(f"/api/submissions/{a.pk}/approve/").status_code == 404
    assert other_requester_client.get(f"/api/jobs/{job.pk}/submissions/").status_code == 404
    assert client_for(a.worker).post(f"/api/submissions/{a.pk}/approve/").status_code == 403
    assert Assignment.objects.get(pk=a.pk).status == AssignmentStatus.SUBMITTED


def test_bulk_review_is_all_or_nothing(client_for):
    job = published_job(n=3, gold_rate=0.0)
    owner = client_for(job.requester)
    subs = _submitted(job, 4)
    claimed = claiming.assignment_claim(worker=qualified_worker(), job_id=job.pk)
    ids = [a.pk for a in subs]
    r = owner.post(
        "/api/submissions/review/",
        {"action": "approve", "assignments": [*ids, claimed.pk]},
        format="json",
    )
    assert r.status_code == 409
    assert set(Assignment.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        "submitted"
    }
    r = owner.post(
        "/api/submissions/review/",
        {"action": "reject", "assignments": ids[:2], "reason": "Wrong class"},
        format="json",
    )
    assert [x["status"] for x in r.json()["results"]] == ["rejected", "rejected"]
    r = owner.post(
        "/api/submissions/review/", {"action": "approve", "assignments": ids[2:]}, format="json"
    )
    assert [x["status"] for x in r.json()["results"]] == ["approved", "approved"]
    listed = owner.get(f"/api/jobs/{job.pk}/submissions/?status=rejected").json()["results"]
    assert {x["id"] for x in listed} == set(ids[:2])
    assert all(x["rejection_reason"] == "Wrong class" for x in listed)


def test_auto_approve_after_the_jobs_delay():
    job = published_job(n=2, auto_approve_delay=timedelta(hours=1), gold_rate=0.0)
    due, fresh = _submitted(job, 2)
    Assignment.objects.filter(pk=due.pk).update(
        auto_approve_at=timezone.now() - timedelta(seconds=1)
    )
    assert auto_approve_due_submissions.delay().get() == 1
    due.refresh_from_db()
    fresh.refresh_from_db()
    assert due.status == AssignmentStatus.APPROVED and due.reviewed_by is None
    assert due.pay_amount == due.microtask.price
    assert fresh.status == AssignmentStatus.SUBMITTED
    assert auto_approve_due_submissions.delay().get() == 0
