"""Attacks on the bounds of writable fields, on currencies and on query parameters (issue #10).

Each attack is made as the attacker would make it, over HTTP with a real requester, worker or
admin client, and asserts that it fails with a 4xx in the one JSON error shape and that nothing
changed: the job row, ledger transactions and entries, balances, fundings and payouts.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.db import DataError, IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from marketplace import bounds
from marketplace.api.errors import exception_handler
from marketplace.models import Job, JobStatus
from payments import escrow, posting
from payments.errors import CurrencyNotPriced, InvalidAmount
from payments.ledger import AccountKind
from payments.models import Funding, LedgerAccount, LedgerEntry, LedgerTransaction, Payout
from payments.selectors import escrow_balance
from tasks import claiming, paying
from tasks.models import AssignmentStatus
from tests.factories import AssignmentFactory, JobFactory, MicroTaskFactory
from tests.payments import conftest as payments_conftest
from tests.payments.conftest import assert_ledger_consistent, fund, onboarded_worker
from tests.tasks.claim_fixtures import published_job, qualified_worker, qualify, store_frames

pytestmark = pytest.mark.django_db
# The local Stripe server of the payments tests, as a fixture of this module too.
stripe_server = payments_conftest.stripe_server


@pytest.fixture
def stripe(request):
    """The local Stripe test double (``tests/payments/conftest.py``), started for this test."""
    return request.getfixturevalue("stripe_server")


VALID = {
    "title": "Cars on the highway",
    "annotation_type": "bbox",
    "label_classes": ["car", "truck"],
    "budget": 50_000,
}


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def root_causes_fixed(request, caplog):
    """The exception handler turns a stray Django ValidationError or DataError into a 400 and
    logs it as a bug; in these tests none may reach it, so a 400 here is the service's own."""
    yield
    if request.node.name == "test_a_stray_django_validation_error_or_data_error_is_a_logged_400":
        return
    records = caplog.get_records("setup") + caplog.get_records("call")
    strays = [r.getMessage() for r in records if r.name == "marketplace.api.errors"]
    assert strays == []


def money_state() -> dict:
    """Everything money: a refused attack must leave all of it as it was."""
    return {
        "transactions": LedgerTransaction.objects.count(),
        "entries": LedgerEntry.objects.count(),
        "balances": dict(LedgerAccount.objects.values_list("pk", "balance")),
        "fundings": Funding.objects.count(),
        "payouts": Payout.objects.count(),
    }


def job_row(job: Job) -> dict:
    return Job.objects.filter(pk=job.pk).values().get()


def assert_refused(response, *, field: str | None = None, status: int = 400) -> dict:
    """A 4xx in the one JSON shape, naming ``field`` when given."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] and error["message"], error
    if field is not None:
        assert field in error.get("fields", {}), error
    return error


def draft(requester_client, **changes) -> Job:
    response = requester_client.post("/api/jobs/", {**VALID, **changes}, format="json")
    assert response.status_code == 201, response.content
    return Job.objects.get(pk=response.json()["id"])


# --- priority --------------------------------------------------------------------------------


def test_requester_cannot_jump_the_global_queue_with_priority_32767(requester_client):
    before = Job.objects.count()
    for priority in (32767, 11, -1, 2**63, "high"):
        assert_refused(
            requester_client.post("/api/jobs/", {**VALID, "priority": priority}, format="json"),
            field="priority",
        )
    assert Job.objects.count() == before
    job = draft(requester_client, priority=10)
    row = job_row(job)
    assert_refused(
        requester_client.patch(f"/api/jobs/{job.pk}/", {"priority": 32767}, format="json"),
        field="priority",
    )
    assert job_row(job) == row


def test_admin_may_raise_priority_above_a_requester_but_not_past_the_platform_cap(
    requester_client, admin_client_api, settings
):
    job = draft(requester_client)
    raised = admin_client_api.patch(f"/api/jobs/{job.pk}/", {"priority": 50}, format="json")
    assert raised.status_code == 200, raised.content
    assert Job.objects.get(pk=job.pk).priority == 50
    # The requester can still edit the rest of a job an admin prioritised...
    renamed = requester_client.patch(f"/api/jobs/{job.pk}/", {"title": "Renamed"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["priority"] == 50
    # ...but cannot set a priority above their own range, not even the one the admin set.
    for priority in (49, 50):
        assert_refused(
            requester_client.patch(f"/api/jobs/{job.pk}/", {"priority": priority}, format="json"),
            field="priority",
        )
    assert Job.objects.get(pk=job.pk).priority == 50
    assert_refused(
        admin_client_api.patch(
            f"/api/jobs/{job.pk}/", {"priority": settings.JOB_PRIORITY_MAX_ADMIN + 1}, format="json"
        ),
        field="priority",
    )
    assert Job.objects.get(pk=job.pk).priority == 50


# --- claim time limit ------------------------------------------------------------------------


def test_claim_time_limit_of_a_million_days_is_refused_and_claiming_keeps_working(
    requester_client, client_for
):
    job = draft(requester_client)
    row = job_row(job)
    for limit in (86_400 * 10**6, "1000000 00:00:00", "P1000000D", 59, 8 * 3600 + 1, "soon"):
        assert_refused(
            requester_client.patch(
                f"/api/jobs/{job.pk}/", {"claim_time_limit": limit}, format="json"
            ),
            field="claim_time_limit",
        )
    assert job_row(job) == row
    # The longest allowed limit works end to end: a worker's "claim next" is a 201.
    ok = requester_client.patch(
        f"/api/jobs/{job.pk}/", {"claim_time_limit": 8 * 3600}, format="json"
    )
    assert ok.status_code == 200 and ok.json()["claim_time_limit"] == 8 * 3600
    live = published_job(n=2, overlap=1, claim_time_limit=timedelta(hours=8))
    store_frames(live)
    worker = qualified_worker()
    claimed = client_for(worker).post("/api/work/claim/", {}, format="json")
    assert claimed.status_code == 201, claimed.content
    assert (
        claimed.json()["deadline"] <= (timezone.now() + timedelta(hours=8, minutes=1)).isoformat()
    )
    # And no code path can store the million days the attack wanted: the database refuses it.
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.filter(pk=live.pk).update(claim_time_limit=timedelta(days=10**6))
    assert client_for(worker).post("/api/work/claim/", {}, format="json").status_code in (
        201,
        404,
    )


def test_old_duration_strings_are_still_understood_within_bounds(requester_client):
    job = draft(requester_client, claim_time_limit="00:45:00", auto_approve_delay="P2D")
    assert job.claim_time_limit == timedelta(minutes=45)
    assert job.auto_approve_delay == timedelta(days=2)
    assert_refused(
        requester_client.patch(
            f"/api/jobs/{job.pk}/", {"auto_approve_delay": "P365D"}, format="json"
        ),
        field="auto_approve_delay",
    )


# --- deadlines -------------------------------------------------------------------------------


def test_deadlines_in_the_past_or_absurdly_far_are_refused_on_create_and_change(
    requester_client,
):
    now = timezone.now()
    before = Job.objects.count()
    for deadline in (
        (now - timedelta(minutes=1)).isoformat(),
        "1970-01-01T00:00:00Z",
        (now + timedelta(days=bounds.deadline_horizon().days + 1)).isoformat(),
        "9999-12-31T23:59:59-23:59",
        "not a date",
    ):
        assert_refused(
            requester_client.post("/api/jobs/", {**VALID, "deadline": deadline}, format="json"),
            field="deadline",
        )
    assert Job.objects.count() == before
    job = draft(requester_client, deadline=(now + timedelta(days=7)).isoformat())
    row = job_row(job)
    assert_refused(
        requester_client.patch(
            f"/api/jobs/{job.pk}/",
            {"deadline": (now - timedelta(days=1)).isoformat()},
            format="json",
        ),
        field="deadline",
    )
    assert job_row(job) == row


def test_an_unchanged_deadline_that_has_since_passed_does_not_block_other_edits(
    requester_client, requester
):
    job = JobFactory(requester=requester, deadline=timezone.now() - timedelta(hours=1))
    body = requester_client.get(f"/api/jobs/{job.pk}/").json()
    put = requester_client.patch(
        f"/api/jobs/{job.pk}/",
        {"title": "Still a draft", "deadline": body["deadline"]},
        format="json",
    )
    assert put.status_code == 200, put.content


# --- budgets and money amounts ---------------------------------------------------------------


@pytest.mark.parametrize("budget", [2**63, 10**30, -1, "1e400", 1.5, True])
def test_huge_or_malformed_budgets_are_400_not_500(requester_client, budget):
    job = draft(requester_client)
    row, money = job_row(job), money_state()
    assert_refused(
        requester_client.post("/api/jobs/", {**VALID, "budget": budget}, format="json"),
        field="budget",
    )
    assert_refused(
        requester_client.patch(f"/api/jobs/{job.pk}/", {"budget": budget}, format="json"),
        field="budget",
    )
    assert Job.objects.count() == 1 and job_row(job) == row and money_state() == money


def test_the_money_maximum_is_a_setting(requester_client, settings):
    settings.MONEY_AMOUNT_MAX = 1_000
    assert_refused(
        requester_client.post("/api/jobs/", {**VALID, "budget": 1_001}, format="json"),
        field="budget",
    )
    assert draft(requester_client, budget=1_000).budget == 1_000


def nothing_at_stripe(stripe) -> bool:
    """No Checkout Session and no PaymentIntent was made: nothing can be paid."""
    return stripe.state.checkout_sessions == stripe.state.payment_intents == {}


@pytest.mark.parametrize("amount", [-5, 0, 49, 2**63, 10**30, "lots"])
def test_funding_amounts_out_of_range_charge_nothing(requester_client, requester, stripe, amount):
    job = JobFactory(requester=requester)
    MicroTaskFactory.create_batch(2, video__job=job, job=job, price=0)
    money = money_state()
    assert_refused(
        requester_client.post(
            f"/api/payments/jobs/{job.pk}/fund/", {"amount": amount}, format="json"
        ),
        field="amount",
    )
    assert money_state() == money and nothing_at_stripe(stripe)


def test_the_funding_service_itself_refuses_amounts_past_the_maximum(requester, stripe):
    job = JobFactory(requester=requester)
    MicroTaskFactory.create_batch(2, video__job=job, job=job, price=0)
    money = money_state()
    for amount in (10**30, 2**63, -1):
        with pytest.raises(InvalidAmount):
            paying.job_funding_create(
                job=job, requester=requester, amount=amount, return_url="http://testserver/"
            )
    assert money_state() == money and nothing_at_stripe(stripe)


@pytest.mark.parametrize("amount", [-5, 0, 2**63, 10**30, 12.5])
def test_bonus_amounts_out_of_range_move_no_money(requester_client, requester, amount):
    job = JobFactory(requester=requester)
    fund(job, 10_000)
    done = AssignmentFactory(microtask__video__job=job, status=AssignmentStatus.SUBMITTED)
    money = money_state()
    assert_refused(
        requester_client.post(
            f"/api/payments/jobs/{job.pk}/bonuses/",
            {"worker": done.worker_id, "amount": amount, "reason": "great work", "key": "b1"},
            format="json",
        ),
        field="amount",
    )
    assert money_state() == money
    with pytest.raises(InvalidAmount):
        paying.bonus_grant(
            job=job, worker=done.worker, amount=10**30, reason="x", actor=requester, key="b2"
        )
    assert money_state() == money and escrow_balance(job=job).available == 10_000


@pytest.mark.parametrize("amount", [0, -1, 2**63, 10**30])
def test_admin_clawback_amounts_are_bounded(admin_client_api, stripe, amount):
    worker = onboarded_worker(stripe, available=2_000)
    from payments import payouts

    payout = payouts.payout_create(worker=worker, enqueue=False)
    money = money_state()
    assert_refused(
        admin_client_api.post(
            f"/api/payments/admin/payouts/{payout.pk}/reverse/",
            {"reason": "fraud", "amount": amount},
            format="json",
        ),
        field="amount",
    )
    assert money_state() == money


def test_ledger_services_refuse_amounts_past_the_maximum(requester):
    job = JobFactory(requester=requester)
    money = money_state()
    for amount in (bounds.money_amount_max() + 1, 2**63, 10**30):
        with pytest.raises(InvalidAmount):
            escrow.escrow_fund(job=job, amount=amount, key=f"big-{amount}")
    assert money_state() == money


# --- currency --------------------------------------------------------------------------------


@pytest.mark.parametrize("currency", ["vnd", "xxx", "jpy", "us", "", "dollars", 7])
def test_jobs_in_unsupported_currencies_are_refused(requester_client, currency):
    assert_refused(
        requester_client.post("/api/jobs/", {**VALID, "currency": currency}, format="json"),
        field="currency",
    )
    assert Job.objects.count() == 0


def test_currency_is_fixed_at_creation(requester_client, settings):
    settings.SUPPORTED_CURRENCIES = ["usd", "eur"]
    job = draft(requester_client, currency="USD")
    assert job.currency == "usd"
    row = job_row(job)
    error = assert_refused(
        requester_client.patch(f"/api/jobs/{job.pk}/", {"currency": "eur"}, format="json"),
        field="currency",
    )
    assert "fixed" in error["fields"]["currency"][0]
    assert job_row(job) == row
    # Sending the same currency back (a full round-trip of the job) is no change.
    same = requester_client.patch(f"/api/jobs/{job.pk}/", {"currency": "usd"}, format="json")
    assert same.status_code == 200


def test_a_247_cent_quote_can_never_be_funded_with_247_dong(
    requester_client, requester, client, stripe, settings
):
    """The finding: the quote was in USD, funding charged the job's currency. A job whose
    currency is not the pricing policy's cannot be quoted, funded or credited at all."""
    settings.SUPPORTED_CURRENCIES = ["usd", "vnd"]  # vnd allowed for jobs, but not priced
    job = draft(requester_client, currency="vnd")
    MicroTaskFactory.create_batch(2, video__job=job, job=job, price=0)
    money = money_state()
    error = assert_refused(requester_client.post(f"/api/payments/jobs/{job.pk}/quote/"), status=409)
    assert error["code"] == "currency_not_priced"
    assert_refused(
        requester_client.post(f"/api/payments/jobs/{job.pk}/fund/", {}, format="json"), status=409
    )
    with pytest.raises(CurrencyNotPriced):
        escrow.escrow_fund(job=job, amount=247, key="dong")
    assert money_state() == money and nothing_at_stripe(stripe)
    client.force_login(requester)
    page = client.get(f"/requester/jobs/{job.pk}/funding/")
    assert page.status_code == 200 and "pricing on this platform is in USD" in page.content.decode()
    refused = client.post(f"/requester/jobs/{job.pk}/funding/", {"fund": "quote"}, follow=True)
    assert "pricing on this platform is in USD" in refused.content.decode()
    assert money_state() == money and nothing_at_stripe(stripe)


def test_a_job_row_left_in_an_unsupported_currency_cannot_be_funded(
    requester_client, requester, stripe
):
    job = JobFactory(requester=requester, currency="vnd")  # written before the bounds existed
    MicroTaskFactory.create_batch(2, video__job=job, job=job, price=0)
    money = money_state()
    assert_refused(
        requester_client.post(f"/api/payments/jobs/{job.pk}/fund/", {}, format="json"), status=409
    )
    assert money_state() == money and nothing_at_stripe(stripe)


def test_the_quote_carries_the_job_currency(requester_client, requester):
    job = JobFactory(requester=requester)
    MicroTaskFactory.create_batch(2, video__job=job, job=job, price=0)
    quote = requester_client.post(f"/api/payments/jobs/{job.pk}/quote/").json()
    assert quote["currency"] == job.currency == "usd"


def test_payout_runs_pay_every_currency_workers_hold(
    stripe, settings, django_capture_on_commit_callbacks
):
    from payments.tasks import payout_run_task

    settings.SUPPORTED_CURRENCIES = ["usd", "eur"]
    usd_worker = onboarded_worker(stripe, available=1_000)
    eur_worker = onboarded_worker(stripe)
    for currency, worker in (("eur", eur_worker), ("gbp", eur_worker)):  # gbp: no longer listed
        revenue = posting.ledger_account(kind=AccountKind.PLATFORM_REVENUE, currency=currency)
        available = posting.ledger_account(
            kind=AccountKind.WORKER_AVAILABLE, currency=currency, worker=worker
        )
        posting.ledger_post(
            key=f"earn-{currency}",
            kind="hold_release",
            currency=currency,
            entries=[(revenue, -2_000), (available, 2_000)],
            worker=worker,
        )
    with django_capture_on_commit_callbacks(execute=True):
        result = payout_run_task.apply().get()
    assert set(result["runs"]) == {"usd", "eur", "gbp"}
    paid = set(Payout.objects.values_list("worker_id", "currency", "amount"))
    assert paid == {(usd_worker.pk, "usd", 1_000), (eur_worker.pk, "eur", 2_000),
                    (eur_worker.pk, "gbp", 2_000)}  # fmt: skip
    assert_ledger_consistent()


# --- the job service is the one home of job rules --------------------------------------------


def test_classification_needs_two_classes_on_the_page_and_the_api(requester_client, client):
    assert_refused(
        requester_client.post(
            "/api/jobs/",
            {**VALID, "annotation_type": "classify", "label_classes": ["cat"]},
            format="json",
        ),
        field="label_classes",
    )
    client.force_login(requester_client.user)
    page = client.post(
        "/requester/jobs/new/",
        {
            "title": "Pets",
            "annotation_type": "classify",
            "label_classes": "cat",
            "overlap_min": 2,
            "overlap_max": 3,
            "gold_rate": 0.1,
            "expected_objects": 1,
            "budget": 1_000,
            "currency": "usd",
        },
    )
    assert page.status_code == 200
    assert "at least two classes" in page.content.decode()
    assert Job.objects.count() == 0


def test_the_job_page_shows_field_errors_never_constraint_names(client, requester):
    client.force_login(requester)
    page = client.post(
        "/requester/jobs/new/",
        {
            "title": "Cars",
            "annotation_type": "bbox",
            "label_classes": "car, car",
            "overlap_min": 5,
            "overlap_max": 2,
            "gold_rate": 0.1,
            "expected_objects": 1,
            "budget": 2**63,
            "currency": "usd",
            "deadline": "2001-01-01 00:00",
        },
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "job_" not in html and "Constraint" not in html
    form = page.context["form"]
    assert "budget" in form.errors
    assert Job.objects.count() == 0
    # With the budget fixed, the service's own field errors land on their fields.
    page = client.post(
        "/requester/jobs/new/",
        {
            "title": "Cars",
            "annotation_type": "bbox",
            "label_classes": "car, car",
            "overlap_min": 5,
            "overlap_max": 2,
            "gold_rate": 0.1,
            "expected_objects": 1,
            "budget": 1_000,
            "currency": "usd",
            "deadline": "2001-01-01 00:00",
        },
    )
    form = page.context["form"]
    assert {"label_classes", "overlap_min", "deadline"} <= set(form.errors), form.errors
    assert "job_" not in page.content.decode()
    assert Job.objects.count() == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"label_classes": ["x" * 101]}, "label_classes"),
        (
            {"label_classes": [f"c{i}" for i in range(bounds.LABEL_CLASSES_MAX + 1)]},
            "label_classes",
        ),
        ({"label_classes": ["   "]}, "label_classes"),
        ({"title": "   "}, "title"),
        ({"title": "t" * 201}, "title"),
        ({"instructions": "i" * (bounds.INSTRUCTIONS_MAX_LENGTH + 1)}, "instructions"),
        ({"gold_rate": 0.51}, "gold_rate"),
        ({"gold_rate": "NaN"}, "gold_rate"),
        ({"iou_threshold": 0.99}, "iou_threshold"),
        ({"overlap_max": 11}, "overlap_max"),
        ({"segment_frames": 100_000}, "segment_frames"),
        ({"frames_per_task": 0}, "frames_per_task"),
        ({"expected_objects": 10**6}, "expected_objects"),
        ({"auto_approve_delay": -1}, "auto_approve_delay"),
    ],
)
def test_every_job_field_has_a_range(requester_client, change, field):
    assert_refused(
        requester_client.post("/api/jobs/", {**VALID, **change}, format="json"), field=field
    )
    assert Job.objects.count() == 0


def test_the_job_service_refuses_bad_values_from_any_caller(requester):
    from marketplace import services as job_services
    from marketplace.errors import ValidationError

    for fields in (
        {"priority": 32767},
        {"claim_time_limit": timedelta(days=10**6)},
        {"gold_rate": float("nan")},
        {"budget": 10**30},
        {"currency": "vnd"},
        {"deadline": timezone.now() - timedelta(days=1)},
    ):
        with pytest.raises(ValidationError) as refused:
            job_services.job_create(requester=requester, **{**VALID, **fields})
        assert set(fields) <= set(refused.value.extra["fields"])
    assert Job.objects.count() == 0


def test_the_database_refuses_out_of_range_job_rows(requester):
    job = JobFactory(requester=requester)
    for change in (
        {"priority": 32767},
        {"claim_time_limit": timedelta(days=10**6)},
        {"claim_time_limit": timedelta(0)},
        {"gold_rate": float("nan")},
        {"currency": "USD"},
        {"overlap_max": 50},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            Job.objects.filter(pk=job.pk).update(**change)


# --- the schema states what the service accepts ----------------------------------------------


def _job_request_schema() -> dict:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return schema["components"]["schemas"]["JobWithReviewModeRequest"]["properties"]


# Fields whose extreme value needs a partner so the rules between fields still hold.
PARTNERS = {
    "overlap_min": lambda v: {"overlap_max": max(v, 1)},
    "overlap_max": lambda v: {"overlap_min": min(v, 1)},
    "overlap_frames": lambda v: {"segment_frames": min(max(v + 1, 2), 10_000)},
    "segment_frames": lambda v: {"overlap_frames": min(v - 1, 10)},
}


def test_schema_bounds_are_exactly_what_the_job_service_accepts(requester_client, settings):
    properties = _job_request_schema()
    assert properties["priority"]["maximum"] == settings.JOB_PRIORITY_MAX_REQUESTER
    assert properties["claim_time_limit"]["maximum"] == 8 * 3600
    assert properties["budget"]["maximum"] == settings.MONEY_AMOUNT_MAX
    checked = 0
    for name, spec in properties.items():
        if spec.get("type") not in ("integer", "number"):
            continue
        step = 1 if spec["type"] == "integer" else 0.001
        for edge, outside in ((spec["minimum"], spec["minimum"] - step),
                              (spec["maximum"], spec["maximum"] + step)):  # fmt: skip
            partner = PARTNERS.get(name, lambda v: {})(edge)
            accepted = requester_client.post(
                "/api/jobs/", {**VALID, **partner, name: edge}, format="json"
            )
            assert accepted.status_code == 201, (name, edge, accepted.content)
            refused = requester_client.post(
                "/api/jobs/", {**VALID, **partner, name: outside}, format="json"
            )
            assert_refused(refused, field=name)
            checked += 1
    assert checked >= 2 * 15
    enum = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"][
        "CurrencyEnum"
    ]["enum"]
    assert enum == list(bounds.supported_currencies())


# --- query parameters and bodies -------------------------------------------------------------

GARBAGE = [
    "",
    "abc",
    "-1",
    "0",
    "99999999999999999999999",
    "1e309",
    "NaN",
    "\x00",
    "a\x00b",
    "2024-13-45",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "' OR 1=1 --",
    "a" * 5000,
    "[]",
    "-created_at,,id,-",
    "1,2,3",
    "last",
    "é́\u202e",
]
COMMON_PARAMS = ["page", "page_size", "ordering", "status", "id", "job", "limit", "offset"]


class _Rollback(Exception):
    pass


def _get_isolated(client, path: str, params: dict):
    """GET in a savepoint that is rolled back, so one request cannot affect the next."""
    response = None
    try:
        with transaction.atomic():
            response = client.get(path, params)
            raise _Rollback
    except _Rollback:
        pass
    return response


def _get_routes() -> list[tuple[str, list[str]]]:
    """Every GET operation in the API schema, with its declared query parameters."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    routes = []
    for path, operations in schema["paths"].items():
        if "get" not in operations:
            continue
        declared = [
            p["name"] for p in operations["get"].get("parameters", []) if p["in"] == "query"
        ]
        routes.append((path, declared))
    return routes


def test_every_list_endpoint_survives_garbage_query_parameters(
    requester_client, worker_client, admin_client_api, requester, worker
):
    job = published_job(n=2, overlap=1)
    Job.objects.filter(pk=job.pk).update(requester=requester)
    store_frames(job)
    qualify(worker)
    routes = _get_routes()
    assert len(routes) >= 20  # the schema really was read
    values = {"{id}": job.pk, "{pk}": job.pk, "{job_id}": job.pk}
    values.update({"{annotation_type}": "bbox", "{fmt}": "coco"})
    server_errors = []
    requests = 0
    for client in (requester_client, worker_client, admin_client_api):
        client.raise_request_exception = False
        for template, declared in routes:
            path = template
            for key, value in values.items():
                path = path.replace(key, str(value))
            params = list(dict.fromkeys([*declared, *COMMON_PARAMS]))
            for junk in GARBAGE:
                # All parameters at once, then each declared one alone (so no check hides behind
                # another's 400).
                trials = [dict.fromkeys(params, junk)] + [{p: junk} for p in declared]
                for query in trials:
                    response = _get_isolated(client, path, query)
                    requests += 1
                    if response.status_code >= 500:
                        server_errors.append((client.user.role, path, query, response.status_code))
                    elif response.status_code >= 400 and response["Content-Type"].startswith(
                        "application/json"
                    ):
                        assert set(response.json()) == {"error"}, (path, query)
    assert server_errors == []
    assert requests > 1_000


def test_date_filters_past_either_end_of_time_are_clamped_not_500(requester_client, requester):
    JobFactory(requester=requester)
    late = requester_client.get("/api/jobs/", {"created_after": "9999-12-31T23:59:59-23:59"})
    assert late.status_code == 200 and late.json()["count"] == 0
    early = requester_client.get("/api/jobs/", {"created_after": "0001-01-01T00:00:00+23:59"})
    assert early.status_code == 200 and early.json()["count"] == 1


def test_pagination_bounds(requester_client, requester):
    JobFactory.create_batch(3, requester=requester)
    for params, field in (({"page": 0}, "page"), ({"page_size": 0}, "page_size"),
                          ({"page_size": 501}, "page_size"), ({"page": "x"}, "page")):  # fmt: skip
        assert_refused(requester_client.get("/api/jobs/", params), field=field)
    past = requester_client.get("/api/jobs/", {"page": 99, "page_size": 2})
    assert past.status_code == 200
    assert past.json()["results"] == [] and past.json()["count"] == 3
    assert "page=2" in past.json()["previous"]


def test_worker_status_filters_refuse_values_outside_the_enum(worker_client):
    assert_refused(
        worker_client.get("/api/work/assignments/", {"status": "a\x00b"}), field="status"
    )
    assert worker_client.get("/api/work/assignments/", {"status": "claimed"}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        '{"title": ' + "[" * 50_000 + "]" * 50_000 + "}",
        json.dumps({**VALID, "title": "\ud800"}),
        json.dumps({**VALID, "label_classes": ["a\u0000b"]}),
        json.dumps({**VALID, "currency": "\udfff"}),
    ],
    ids=["deeply-nested", "lone-surrogate", "nul-in-list", "surrogate-in-choice"],
)
def test_hostile_json_bodies_are_400_not_500(requester_client, body):
    assert_refused(requester_client.post("/api/jobs/", body, content_type="application/json"))
    assert Job.objects.count() == 0


def test_claiming_from_a_job_id_past_bigint_is_400(worker_client):
    for job_id in (2**63, 10**30):
        assert_refused(worker_client.post("/api/work/claim/", {"job": job_id}, format="json"),
                       field="job")  # fmt: skip


def test_oversized_bodies_are_refused_before_parsing(requester_client, settings):
    settings.API_BODY_MAX_BYTES = 1_000
    response = requester_client.post(
        "/api/jobs/", {**VALID, "instructions": "x" * 2_000}, format="json"
    )
    assert_refused(response, status=413)
    assert Job.objects.count() == 0


# --- the one exception handler ---------------------------------------------------------------


def test_a_stray_django_validation_error_or_data_error_is_a_logged_400(caplog):
    from django.core.exceptions import ValidationError as DjangoValidationError

    with caplog.at_level(logging.ERROR, logger="marketplace.api.errors"):
        response = exception_handler(DjangoValidationError({"budget": ["too big"]}), {})
        assert response.status_code == 400
        assert response.data == {
            "error": {
                "code": "invalid",
                "message": "Some fields are not valid.",
                "fields": {"budget": ["too big"]},
            }
        }
        response = exception_handler(DataError("value out of range for type bigint"), {})
        assert response.status_code == 400
        assert "bigint" not in json.dumps(response.data)
    assert sum("BUG" in r.getMessage() for r in caplog.records) == 2


def test_job_status_survives_an_attack_on_a_non_draft_job(requester_client, requester):
    job = JobFactory(requester=requester, status=JobStatus.PUBLISHED)
    row = job_row(job)
    response = requester_client.patch(
        f"/api/jobs/{job.pk}/", {"priority": 32767, "budget": 2**63}, format="json"
    )
    assert response.status_code == 400  # the bounds are checked before the state
    assert job_row(job) == row


FORM_GARBAGE = [
    "",
    "-1",
    "99999999999999999999999",
    "\x00",
    "a\x00b",
    "[" * 50_000,
    '{"boxes": [{"frame": 0, "box": [1, 2, 3, 4], "label": "car\\u0000"}]}',
    "9" * 5_000,
    "9999-12-31T23:59:59-23:59",
    "1e400",
    "NaN",
]


def test_every_page_form_survives_garbage(client, requester, worker):
    """The pages' forms, posted with garbage in each field: never a 5xx, no money moved."""
    job = published_job(n=2, overlap=1)
    Job.objects.filter(pk=job.pk).update(requester=requester)
    store_frames(job)
    qualify(worker)
    claimed = claiming.assignment_claim(worker=worker, job_id=job.pk)
    claiming.assignment_submit(
        worker=worker,
        assignment_id=claimed.pk,
        payload={
            "boxes": [{"frame": claimed.microtask.frame_start, "label": "car", "box": [1, 1, 9, 9]}]
        },
        active_seconds=5,
    )
    forms = {
        requester: [
            ("/requester/jobs/new/", ["title", "label_classes", "budget", "overlap_min",
                                      "gold_rate", "deadline", "currency", "expected_objects"]),
            (f"/quality/jobs/{job.pk}/gold/", ["microtask", "payload"]),
            ("/quality/review/1/resolve/", ["assignment", "payload"]),
            (f"/requester/jobs/{job.pk}/funding/", ["amount"]),
            (f"/requester/jobs/{job.pk}/review-mode/", ["mode"]),
            (f"/requester/jobs/{job.pk}/submissions/review/",
             ["bulk", "assignments", "reason", "page", "status", "approve", "reject"]),
            (f"/requester/jobs/{job.pk}/status/pause/", ["mode"]),
        ],
        worker: [("/work/claim/", ["job"]), ("/quality/me/appeal/1/", ["message"])],
    }  # fmt: skip
    base = {
        "title": "t",
        "label_classes": "car",
        "budget": "100",
        "overlap_min": "1",
        "overlap_max": "3",
        "gold_rate": "0.1",
        "currency": "usd",
        "annotation_type": "bbox",
        "expected_objects": "1",
        "microtask": "1",
        "payload": "{}",
        "message": "m",
        "mode": "review_first",
        "bulk": "reject",
        "assignments": str(claimed.pk),
        "reason": "r",
    }
    jobs, money = Job.objects.count(), money_state()
    client.raise_request_exception = False
    server_errors = []
    for user, routes in forms.items():
        client.force_login(user)
        for path, fields in routes:
            for field in fields:
                for junk in FORM_GARBAGE:
                    response = None
                    try:
                        with transaction.atomic():
                            response = client.post(path, {**base, field: junk})
                            raise _Rollback
                    except _Rollback:
                        pass
                    if response.status_code >= 500:
                        server_errors.append((path, field, junk[:20]))
    assert server_errors == []
    assert Job.objects.count() == jobs and money_state() == money


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MONEY_AMOUNT_MAX", 2**63),
        ("SUPPORTED_CURRENCIES", ["usd", "US Dollar"]),
        ("JOB_PRIORITY_MAX_REQUESTER", 32767),
        ("CLAIM_TIME_LIMIT_MAX", timedelta(days=10**6)),
        ("AUTO_APPROVE_DELAY_MAX", timedelta(days=400)),
    ],
)
def test_settings_wider_than_the_database_allows_refuse_to_start(settings, name, value):
    from marketplace.checks import bounds_fit_hard_limits

    assert bounds_fit_hard_limits() == []
    setattr(settings, name, value)
    assert len(bounds_fit_hard_limits()) == 1
