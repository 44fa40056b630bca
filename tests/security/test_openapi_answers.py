"""Real answers of the routes whose bodies the views build as dicts, checked against the schema.

Each test reaches its route in the security suite's fixture world (a published job with
submitted, rejected and claimed work, a review item, a fraud flag, a funding and a payout) as the
role that may use it, and validates the body against the component the schema states for that
status (``tests/openapi_check.py``: a missing or extra field, a wrong type, a null where none is
allowed or a value outside an enum fails). Schemathesis checks the same for what it generates as
a worker and a requester; the admin routes and the states below (a suspension, a refund, a
reconciliation with work to do) are beyond its reach.
"""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from marketplace.lifecycle import job_transition
from marketplace.models import AnnotationType, JobStatus, QualificationStatus
from payments.models import Payout, PayoutRun, Refund, RefundStatus
from payments.selectors import escrow_balance
from tasks import suspensions
from tests.openapi_check import assert_answers_schema, response_schema
from tests.security.conftest import World


@pytest.fixture
def admin(world: World, client_for):
    return client_for(world.users["admin"])


@pytest.fixture
def requester(world: World, client_for):
    return client_for(world.requester)


@pytest.fixture
def worker(world: World, client_for):
    return client_for(world.worker)


# --- payments -----------------------------------------------------------------------------------


def test_a_payout_run_answers_its_task(world, admin):
    r = admin.post("/api/payments/admin/payout-runs/")
    body = assert_answers_schema(r, "post", "/api/payments/admin/payout-runs/")
    assert r.status_code == 202 and body["task"]
    assert PayoutRun.objects.filter(triggered_by=world.users["admin"], note="on demand (usd)")


def test_a_reconciliation_answers_what_it_did(world, admin, stripe_server):
    Payout.objects.create(worker=world.worker, amount=700, currency="usd", destination="acct_x")
    r = admin.post("/api/payments/admin/reconcile/")
    body = assert_answers_schema(r, "post", "/api/payments/admin/reconcile/")
    # The pending payout Stripe has no transfer for is sent again with its key.
    assert body == {"transfers_seen": 0, "confirmed": 0, "resubmitted": 1, "issues": 0}


def test_holding_and_releasing_payouts_answer_the_hold(world, admin):
    url = f"/api/payments/admin/workers/{world.worker.pk}/hold/"
    held = admin.post(url, {"reason": "checking"}, format="json")
    assert assert_answers_schema(held, "post", "/api/payments/admin/workers/{id}/hold/") == {
        "held": True
    }
    released = admin.delete(url)
    assert assert_answers_schema(released, "delete", "/api/payments/admin/workers/{id}/hold/") == {
        "held": False
    }
    world.worker.worker_profile.refresh_from_db()
    assert world.worker.worker_profile.payouts_held is False


def test_a_refund_answers_each_refund_made(world, requester):
    # Closed by the system (no person's authority), so nothing was refunded on the way.
    job_transition(job=world.job, to=JobStatus.COMPLETED)
    unspent = escrow_balance(job=world.job).available
    assert unspent > 0
    r = requester.post(f"/api/payments/jobs/{world.job.pk}/refund/")
    body = assert_answers_schema(r, "post", "/api/payments/jobs/{id}/refund/")
    assert r.status_code == 201
    (row,) = body["refunds"]
    refund = Refund.objects.get(pk=row["id"])
    assert (row["amount"], row["status"]) == (refund.amount, RefundStatus.PENDING)
    assert refund.amount == unspent


# --- quality ------------------------------------------------------------------------------------


def test_the_job_report_answers_its_component(world, requester):
    r = requester.get(f"/api/quality/jobs/{world.job.pk}/report/")
    body = assert_answers_schema(r, "get", "/api/quality/jobs/{job_id}/report/")
    assert body["flagged"] == {"total": 1, "by_kind": {"too_fast": 1}}
    assert (body["assist"], body["seams_flagged"], body["reviews_open"]) == (None, None, 1)


def test_my_trust_answers_its_component(world, worker):
    r = worker.get("/api/quality/me/trust/")
    body = assert_answers_schema(r, "get", "/api/quality/me/trust/")
    # The requester's rejection moved the worker's standing with that requester.
    (standing,) = body["standings"]
    assert standing["history"][0]["kind"] == "rejection"
    assert standing["jobs"] == [world.job.title]


def test_a_review_item_answers_its_component(world, requester):
    r = requester.get(f"/api/quality/review/{world.review.pk}/")
    body = assert_answers_schema(r, "get", "/api/quality/review/{id}/")
    (submission,) = body["submissions"]
    assert submission["assignment"] == world.submitted.pk
    assert any(shapes for shapes in submission["frames"].values())
    assert body["consensus"] is None  # one of three replicas: no consensus yet
    frames = body["manifest"]["frames"]
    assert frames and all(f["url"] == default_storage.url(f["image"]) for f in frames)


def test_the_worker_report_answers_its_component(world, admin):
    r = admin.get(f"/api/quality/workers/{world.worker.pk}/report/")
    body = assert_answers_schema(r, "get", "/api/quality/workers/{id}/report/")
    assert body["assignments"] == {"claimed": 1, "submitted": 1, "rejected": 1}
    assert [f["id"] for f in body["flags"]] == [world.flag.pk]
    assert body["standings"][0]["requester"] == world.requester.pk


# --- tasks --------------------------------------------------------------------------------------


def test_an_approval_answers_its_component(world, requester):
    r = requester.post(f"/api/submissions/{world.submitted.pk}/approve/")
    body = assert_answers_schema(r, "post", "/api/submissions/{id}/approve/")
    world.submitted.refresh_from_db()
    assert body == {"id": world.submitted.pk, "status": "approved", "pay_amount": 50}
    assert world.submitted.pay_amount == 50


def test_the_job_board_answers_its_component(world, worker):
    r = worker.get("/api/work/jobs/")
    (row,) = assert_answers_schema(r, "get", "/api/work/jobs/")["results"]
    assert (row["id"], row["qualified"], row["open_tasks_capped"]) == (world.job.pk, True, False)


def test_the_qualifications_answer_their_component_suspended_or_not(world, worker, settings):
    suspensions.qualification_suspend(
        worker=world.worker, annotation_type=AnnotationType.POLYGON, reason="boxes off"
    )
    settings.QUALIFICATION_SUSPENSION_COOLDOWN_DAYS = 0  # until an admin lifts it
    suspensions.qualification_suspend(
        worker=world.worker, annotation_type=AnnotationType.TRACK, reason="lost tracks"
    )
    r = worker.get("/api/work/qualifications/")
    rows = {
        q["annotation_type"]: q
        for q in assert_answers_schema(r, "get", "/api/work/qualifications/")["results"]
    }
    assert set(rows) == set(AnnotationType.values)
    assert (rows["bbox"]["status"], rows["bbox"]["suspension"]) == (
        QualificationStatus.PASSED,
        None,
    )
    assert (rows["event"]["status"], rows["event"]["score"]) == ("not_taken", None)
    cooling = rows["polygon"]["suspension"]
    assert rows["polygon"]["status"] == QualificationStatus.SUSPENDED and cooling["until"]
    assert cooling["may_retake"] is False and "boxes off" in cooling["message"]
    assert rows["track"]["suspension"]["until"] is None


# --- the check itself ---------------------------------------------------------------------------


class _Answer:
    def __init__(self, status_code: int, body):
        self.status_code, self._body = status_code, body

    def json(self):
        return self._body


RECONCILED = {"transfers_seen": 2, "confirmed": 1, "resubmitted": 0, "issues": 1}


@pytest.mark.parametrize(
    "body",
    [
        {k: v for k, v in RECONCILED.items() if k != "issues"},  # a field missing
        {**RECONCILED, "extra": 1},  # a field the schema does not state
        {**RECONCILED, "issues": "1"},  # a wrong type
        {**RECONCILED, "issues": None},  # null where none is allowed
    ],
)
def test_the_check_fails_on_a_body_its_schema_does_not_state(db, body):
    assert_answers_schema(_Answer(200, RECONCILED), "post", "/api/payments/admin/reconcile/")
    with pytest.raises(AssertionError):
        assert_answers_schema(_Answer(200, body), "post", "/api/payments/admin/reconcile/")


def test_the_check_fails_on_enums_nulls_and_dates(db):
    path = "/api/work/qualifications/"
    row = {
        "annotation_type": "bbox",
        "label": "Bounding boxes",
        "status": "suspended",
        "score": None,
        "attempts": 0,
        "questions": 3,
        "suspension": {"until": None, "may_retake": False, "message": "Suspended."},
    }
    assert_answers_schema(_Answer(200, {"results": [row]}), "get", path)
    for wrong in (
        {**row, "status": "banned"},
        {**row, "suspension": {**row["suspension"], "until": "next week"}},
        {**row, "attempts": None},
    ):
        with pytest.raises(AssertionError):
            assert_answers_schema(_Answer(200, {"results": [wrong]}), "get", path)


def test_the_check_fails_on_a_status_the_operation_does_not_document(db):
    with pytest.raises(AssertionError, match="does not document"):
        response_schema("post", "/api/payments/admin/reconcile/", 201)
