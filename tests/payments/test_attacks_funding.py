"""Attacks on where money enters, written as the attacker would make them: over HTTP, against the
webhook endpoints and the API. Each asserts the attack fails and that no ledger entry, balance,
escrow or payout changed (or, where Stripe really took money, that exactly that was credited).

Invariant 6: a Stripe webhook event is applied at most once, and only with a valid signature.
Invariant 8: escrow is credited only with the amount and currency Stripe confirms for the funding
row (production's refusal of missing or shipped secrets: tests/marketplace/test_stripe_secrets.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from marketplace.settings.stripe_secrets import SHIPPED
from payments import funding, stripe_gateway
from payments.models import (
    AnomalyKind,
    AuditLog,
    ConnectedAccount,
    EventStatus,
    Funding,
    FundingStatus,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    PaymentAnomaly,
    Payout,
    Refund,
    RefundStatus,
    StripeEvent,
    TxKind,
)
from payments.selectors import escrow_balance, worker_balances
from tests.factories import AdminFactory, WorkerFactory
from tests.payments.conftest import (
    CARD_DECLINED,
    assert_ledger_consistent,
    onboarded_worker,
    pay_checkout,
)
from tests.tasks.claim_fixtures import published_job, qualify, ready_job

pytestmark = pytest.mark.django_db

PLATFORM = "/stripe/webhook/"
CONNECT = "/stripe/webhook/connect/"
HUGE = 15_001_000  # what the issue's forged event claimed


# --- the attacker's tools --------------------------------------------------------------------


def attacker_sign(body: bytes, secret: str) -> str:
    """Stripe's signature scheme, computed by whoever holds (or guesses) ``secret``."""
    t = int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def forged_event(type_: str, obj: dict, *, account: str | None = None) -> dict:
    event = {
        "id": f"evt_forged_{secrets.token_hex(8)}",
        "object": "event",
        "type": type_,
        "created": int(time.time()),
        "api_version": stripe_gateway.STRIPE_API_VERSION,
        "livemode": False,
        "data": {"object": obj},
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
    }
    if account:
        event["account"] = account
    return event


@pytest.fixture
def post_event(client, django_capture_on_commit_callbacks):
    """POST an event to a webhook endpoint, signed with ``secret`` (the endpoint's own by
    default), and let its processing (Celery, eager here) run as it does after the commit."""

    def post(event: dict, *, path: str = PLATFORM, secret: str | None = None):
        if secret is None:
            secret = (
                settings.STRIPE_CONNECT_WEBHOOK_SECRET
                if path == CONNECT
                else settings.STRIPE_WEBHOOK_SECRET
            )
        body = json.dumps(event).encode()
        with django_capture_on_commit_callbacks(execute=True):
            return client.generic(
                "POST",
                path,
                body,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=attacker_sign(body, secret),
            )

    return post


def money_snapshot(stripe_server) -> dict:
    """Everything an attack on funding could change: ledger, balances, payouts, transfers."""
    return {
        "transactions": sorted(LedgerTransaction.objects.values_list("key", flat=True)),
        "accounts": {
            a.pk: (
                a.balance,
                LedgerEntry.objects.filter(account=a).aggregate(s=Sum("amount"))["s"] or 0,
            )
            for a in LedgerAccount.objects.all()
        },
        "payouts": list(Payout.objects.values_list("pk", "amount", "status")),
        "transfers": sorted(stripe_server.state.transfers),
        "refunds_at_stripe": sorted(stripe_server.state.refunds),
    }


def succeeded_event(stripe_server, pi_id: str) -> dict:
    return [
        e
        for e in stripe_server.state.events.values()
        if e["type"] == "payment_intent.succeeded" and e["data"]["object"]["id"] == pi_id
    ][-1]


def fund_via_api(client_for, job, amount: int) -> Funding:
    r = client_for(job.requester).post(
        f"/api/payments/jobs/{job.pk}/fund/", {"amount": amount}, format="json"
    )
    assert r.status_code == 201, r.content
    return Funding.objects.get(pk=r.json()["funding"])


def budgeted_ready_job():
    """A ready job with nothing funded yet and a budget that allows the fundings below."""
    job = ready_job(n=4, price=60, budget=0)
    job.budget = 10**6
    job.save(update_fields=["budget"])
    return job


def unpaid_funding(stripe_server, client_for, job, amount: int) -> Funding:
    """A Checkout funding whose payer tried a declined card: Stripe's PaymentIntent for the
    session exists, unpaid, and the return page's check recorded it (as Stripe's session
    names it)."""
    f = fund_via_api(client_for, job, amount)
    pay_checkout(stripe_server, f, CARD_DECLINED)
    f = funding.funding_refresh(funding=f)
    assert f.stripe_payment_intent_id and f.status == FundingStatus.CREATED
    return f


@pytest.fixture
def small_funding(stripe_server, client_for):
    """The attacker's own job with a small funding whose PaymentIntent was never paid."""
    return unpaid_funding(stripe_server, client_for, budgeted_ready_job(), 247)


# --- signatures (invariant 6) ----------------------------------------------------------------


@pytest.mark.parametrize(
    "secret", [*sorted(SHIPPED - {settings.STRIPE_WEBHOOK_SECRET}), "whsec_wrong", ""]
)
def test_an_event_signed_with_a_shipped_or_wrong_secret_is_refused(
    secret, stripe_server, small_funding, post_event
):
    stripe_server.succeed_payment_intent(small_funding.stripe_payment_intent_id)
    event = succeeded_event(stripe_server, small_funding.stripe_payment_intent_id)
    before = money_snapshot(stripe_server)
    r = post_event(event, secret=secret)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_signature"
    assert StripeEvent.objects.count() == 0  # not even stored
    assert money_snapshot(stripe_server) == before
    assert escrow_balance(job=small_funding.job).funded == 0


def test_an_endpoint_without_a_secret_accepts_nothing(
    settings, stripe_server, small_funding, post_event
):
    """An empty key is still an HMAC key anyone can use: no secret must mean no events."""
    settings.STRIPE_WEBHOOK_SECRET = ""
    stripe_server.succeed_payment_intent(small_funding.stripe_payment_intent_id)
    event = succeeded_event(stripe_server, small_funding.stripe_payment_intent_id)
    before = money_snapshot(stripe_server)
    assert post_event(event, secret="").status_code == 400
    assert StripeEvent.objects.count() == 0
    assert money_snapshot(stripe_server) == before


def test_a_replayed_event_is_applied_once(stripe_server, small_funding, post_event):
    pi = stripe_server.succeed_payment_intent(small_funding.stripe_payment_intent_id)
    event = succeeded_event(stripe_server, pi["id"])
    responses = [post_event(event) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [r.json()["duplicate"] for r in responses] == [False, True, True]
    stored = StripeEvent.objects.get()
    assert (stored.status, stored.attempts) == (EventStatus.SUCCEEDED, 1)
    after_replays = money_snapshot(stripe_server)
    # The same payment under a fresh event id (what an attacker holding the secret could mint).
    twin = {**event, "id": f"evt_twin_{secrets.token_hex(4)}"}
    assert post_event(twin).status_code == 200
    assert money_snapshot(stripe_server) == after_replays
    assert escrow_balance(job=small_funding.job).funded == 247
    assert LedgerTransaction.objects.filter(kind=TxKind.FUND).count() == 1
    assert_ledger_consistent()


# --- forged and mismatched payment events (invariant 8) --------------------------------------


def test_a_huge_amount_in_a_signed_event_credits_only_the_funding_amount(
    stripe_server, small_funding, post_event
):
    """Stripe really took 247: exactly 247 is credited, whatever the event body says."""
    pi = stripe_server.succeed_payment_intent(small_funding.stripe_payment_intent_id)
    forged = forged_event(
        "payment_intent.succeeded", {**pi, "amount": HUGE, "amount_received": HUGE}
    )
    assert post_event(forged).status_code == 200
    assert escrow_balance(job=small_funding.job).funded == 247
    (fund_tx,) = LedgerTransaction.objects.filter(kind=TxKind.FUND)
    assert fund_tx.entries.filter(amount__gt=0).get().amount == 247
    small_funding.refresh_from_db()
    assert small_funding.status == FundingStatus.SUCCEEDED
    # The lie itself is flagged: a signed event that lies means the webhook secret leaked.
    (anomaly,) = PaymentAnomaly.objects.all()
    assert anomaly.kind == AnomalyKind.EVENT_DISAGREES and anomaly.funding == small_funding
    assert anomaly.detail["event_said"]["amount_received"] == HUGE
    assert anomaly.detail["stripe_said"]["amount_received"] == 247
    assert StripeEvent.objects.get().status == EventStatus.FLAGGED
    assert_ledger_consistent()


def test_a_payment_stripe_has_not_taken_credits_nothing(stripe_server, small_funding, post_event):
    """The event says succeeded; Stripe says ``requires_payment_method``."""
    pi_id = small_funding.stripe_payment_intent_id
    assert stripe_server.state.payment_intents[pi_id]["status"] == "requires_payment_method"
    before = money_snapshot(stripe_server)
    real = stripe_gateway.payment_intent_retrieve(pi_id)
    forged = forged_event(
        "payment_intent.succeeded",
        {**real, "status": "succeeded", "amount_received": HUGE, "amount": HUGE},
    )
    assert post_event(forged).status_code == 200
    assert money_snapshot(stripe_server) == before
    assert escrow_balance(job=small_funding.job).funded == 0
    small_funding.refresh_from_db()
    assert small_funding.status == FundingStatus.CREATED  # it can still be paid for real
    (anomaly,) = PaymentAnomaly.objects.all()
    assert (anomaly.kind, anomaly.funding) == (AnomalyKind.NOT_SUCCEEDED, small_funding)
    assert StripeEvent.objects.get().status == EventStatus.FLAGGED
    assert AuditLog.objects.filter(action="payment.anomaly", object_id=str(anomaly.pk)).exists()
    # Paid for real later, the honest event credits exactly the funding.
    stripe_server.succeed_payment_intent(pi_id)
    assert post_event(succeeded_event(stripe_server, pi_id)).status_code == 200
    assert escrow_balance(job=small_funding.job).funded == 247


@pytest.mark.parametrize("stripe_knows_it", [False, True], ids=["forged-id", "real-foreign-pi"])
def test_a_new_payment_intent_pointing_at_someone_elses_funding_credits_nothing(
    stripe_knows_it, stripe_server, client_for, small_funding, post_event
):
    victim_job = budgeted_ready_job()
    victim = fund_via_api(client_for, victim_job, 90_000)
    if stripe_knows_it:
        # A small PaymentIntent that really succeeded, made outside our funding flow, whose
        # metadata names the victim's (large, unpaid) funding.
        pi = stripe_gateway.payment_intent_create(
            amount=247,
            currency="usd",
            transfer_group=f"job:{small_funding.job_id}",
            metadata={"funding_id": str(victim.pk), "job_id": str(victim_job.pk)},
            idempotency_key=f"attacker-{secrets.token_hex(4)}",
        )
        obj = stripe_server.succeed_payment_intent(pi["id"])
        obj = {**obj, "amount_received": 90_000, "amount": 90_000}
    else:
        obj = {
            "id": f"pi_forged{secrets.token_hex(8)}",
            "object": "payment_intent",
            "amount": 90_000,
            "amount_received": 90_000,
            "currency": "usd",
            "status": "succeeded",
            "metadata": {"funding_id": str(victim.pk)},
        }
    before = money_snapshot(stripe_server)
    assert post_event(forged_event("payment_intent.succeeded", obj)).status_code == 200
    assert money_snapshot(stripe_server) == before
    assert escrow_balance(job=victim_job).funded == 0
    assert escrow_balance(job=small_funding.job).funded == 0
    victim.refresh_from_db()
    assert victim.status == FundingStatus.CREATED  # the victim's funding is left as it was
    assert victim.stripe_payment_intent_id != obj["id"]
    (anomaly,) = PaymentAnomaly.objects.all()
    expected = (
        AnomalyKind.PAYMENT_INTENT_MISMATCH
        if stripe_knows_it
        else AnomalyKind.UNKNOWN_PAYMENT_INTENT
    )
    assert (anomaly.kind, anomaly.funding, anomaly.stripe_object_id) == (
        expected,
        victim,
        obj["id"],
    )


@pytest.mark.parametrize(
    ("field", "stripe_value", "kind"),
    [
        ("currency", "jpy", AnomalyKind.CURRENCY_MISMATCH),
        ("amount", 200, AnomalyKind.AMOUNT_MISMATCH),
    ],
)
def test_stripe_disagreeing_with_the_funding_row_credits_nothing(
    field, stripe_value, kind, stripe_server, small_funding, post_event
):
    """Stripe's PaymentIntent is in another currency (or took another amount) than the funding
    row: the honest, Stripe-sent event credits nothing and flags the funding."""
    pi_id = small_funding.stripe_payment_intent_id
    stripe_server.state.payment_intents[pi_id][field] = stripe_value
    stripe_server.succeed_payment_intent(pi_id)
    before = money_snapshot(stripe_server)
    assert post_event(succeeded_event(stripe_server, pi_id)).status_code == 200
    assert money_snapshot(stripe_server) == before
    assert escrow_balance(job=small_funding.job).funded == 0
    small_funding.refresh_from_db()
    assert small_funding.status == FundingStatus.FLAGGED
    assert [a.kind for a in PaymentAnomaly.objects.all()] == [kind]
    # Asking again (the return page, a redelivery) never credits it either.
    funding.funding_refresh(funding=small_funding)
    assert money_snapshot(stripe_server) == before


@pytest.mark.parametrize(
    "type_",
    [
        "payment_intent.succeeded",
        "charge.succeeded",
        "checkout.session.completed",
        "refund.updated",
    ],
)
def test_a_platform_event_sent_to_the_connect_endpoint_is_ignored(
    type_, stripe_server, small_funding, post_event
):
    pi = stripe_server.succeed_payment_intent(small_funding.stripe_payment_intent_id)
    event = forged_event(type_, pi, account="acct_attacker")
    before = money_snapshot(stripe_server)
    assert post_event(event, path=CONNECT).status_code == 200
    assert StripeEvent.objects.get().status == EventStatus.IGNORED
    assert money_snapshot(stripe_server) == before
    assert escrow_balance(job=small_funding.job).funded == 0


def test_an_account_update_sent_to_the_platform_endpoint_is_ignored(stripe_server, post_event):
    from payments import connect

    worker = WorkerFactory()
    account = connect.connected_account_ensure(worker=worker)
    snapshot = stripe_server.complete_onboarding(account.stripe_account_id)
    event = forged_event("account.updated", snapshot)  # no ``account``: as if the platform's
    assert post_event(event).status_code == 200
    assert StripeEvent.objects.get().status == EventStatus.IGNORED
    assert ConnectedAccount.objects.get(pk=account.pk).payouts_enabled is False


def test_a_forged_cancellation_does_not_change_a_funding(stripe_server, small_funding, post_event):
    real = stripe_gateway.payment_intent_retrieve(small_funding.stripe_payment_intent_id)
    event = forged_event("payment_intent.canceled", {**real, "status": "canceled"})
    assert post_event(event).status_code == 200
    small_funding.refresh_from_db()
    assert small_funding.status == FundingStatus.CREATED  # Stripe says it is still payable


def test_the_return_page_check_credits_only_what_stripe_confirms(stripe_server, small_funding):
    funding.funding_refresh(funding=small_funding)  # not paid yet: nothing, and nothing wrong
    assert escrow_balance(job=small_funding.job).funded == 0
    assert PaymentAnomaly.objects.count() == 0
    stripe_server.succeed_payment_intent(small_funding.stripe_payment_intent_id)
    for _ in range(2):
        assert funding.funding_refresh(funding=small_funding).status == FundingStatus.SUCCEEDED
    assert escrow_balance(job=small_funding.job).funded == 247
    assert LedgerTransaction.objects.filter(kind=TxKind.FUND).count() == 1


# --- refunds: Stripe's copy decides ----------------------------------------------------------


def refund_through_stripe(stripe_server, small_funding, post_event) -> Refund:
    """The small funding paid, its job cancelled and its escrow refunded through Stripe."""
    from marketplace.lifecycle import job_transition

    pi_id = small_funding.stripe_payment_intent_id
    stripe_server.succeed_payment_intent(pi_id)
    post_event(succeeded_event(stripe_server, pi_id))
    job = job_transition(job=small_funding.job, to="cancelled")
    (refund,) = funding.job_refund_unspent(job=job, actor=job.requester)
    funding.refund_submit(refund_id=refund.pk)
    refund.refresh_from_db()
    return refund


@pytest.fixture
def refunded(stripe_server, small_funding, post_event):
    refund = refund_through_stripe(stripe_server, small_funding, post_event)
    assert refund.status == RefundStatus.SUCCEEDED
    return refund


@pytest.mark.parametrize("at_stripe", ["succeeded", "pending"])
def test_a_forged_refund_failure_does_not_put_refunded_money_back_in_escrow(
    at_stripe, stripe_server, small_funding, post_event
):
    """Stripe refunded it (or is refunding it); a signed ``refund.failed`` saying otherwise
    would hand the requester the money twice (refunded, and spendable in escrow again)."""
    stripe_server.refund_status = at_stripe
    refund = refund_through_stripe(stripe_server, small_funding, post_event)
    status_before = refund.status
    assert status_before == (
        RefundStatus.SUCCEEDED if at_stripe == "succeeded" else RefundStatus.SUBMITTED
    )
    real = stripe_gateway.refund_retrieve(refund.stripe_refund_id)
    before = money_snapshot(stripe_server)
    forged = forged_event(
        "refund.failed", {**real, "status": "failed", "failure_reason": "lost_or_stolen_card"}
    )
    assert post_event(forged).status_code == 200
    assert money_snapshot(stripe_server) == before
    refund.refresh_from_db()
    assert refund.status == status_before
    assert escrow_balance(job=refund.job).available == 0
    if at_stripe == "pending":  # Stripe's own word settles it, once
        stripe_server.settle_refund(refund.stripe_refund_id)
        updated = [e for e in stripe_server.state.events.values() if e["type"] == "refund.updated"]
        assert post_event(updated[-1]).status_code == 200
        refund.refresh_from_db()
        assert refund.status == RefundStatus.SUCCEEDED
        assert escrow_balance(job=refund.job).available == 0
    assert_ledger_consistent()


def test_a_refund_stripe_holds_differently_from_ours_moves_nothing(
    stripe_server, small_funding, post_event
):
    stripe_server.refund_status = "pending"
    refund = refund_through_stripe(stripe_server, small_funding, post_event)
    assert refund.status == RefundStatus.SUBMITTED
    stripe_server.state.refunds[refund.stripe_refund_id]["amount"] = refund.amount - 100
    stripe_server.settle_refund(refund.stripe_refund_id)
    event = [e for e in stripe_server.state.events.values() if e["type"] == "refund.updated"][-1]
    before = money_snapshot(stripe_server)
    assert post_event(event).status_code == 200
    assert money_snapshot(stripe_server) == before
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUBMITTED
    (anomaly,) = PaymentAnomaly.objects.all()
    assert (anomaly.kind, anomaly.refund) == (AnomalyKind.REFUND_MISMATCH, refund)
    assert StripeEvent.objects.get(stripe_event_id=event["id"]).status == EventStatus.FLAGGED


def test_a_refund_event_for_a_refund_that_is_not_ours_is_flagged(
    stripe_server, refunded, post_event
):
    before = money_snapshot(stripe_server)
    obj = {"id": "re_forged", "object": "refund", "status": "failed", "amount": 247}
    obj["metadata"] = {"refund_id": str(refunded.pk)}
    assert post_event(forged_event("refund.failed", obj)).status_code == 200
    assert money_snapshot(stripe_server) == before
    assert Refund.objects.get(pk=refunded.pk).status == RefundStatus.SUCCEEDED
    (anomaly,) = PaymentAnomaly.objects.all()
    assert (anomaly.kind, anomaly.stripe_object_id) == (AnomalyKind.UNKNOWN_REFUND, "re_forged")


# --- bonuses ---------------------------------------------------------------------------------


def test_a_bonus_to_a_worker_who_only_claimed_is_refused(client_for, stripe_server):
    job = published_job(n=2, overlap=1, price=80, budget=50_000, gold_rate=0.0)
    worker = qualify(WorkerFactory())
    worker_api = client_for(worker)
    claim = worker_api.post("/api/work/claim/", {}, format="json")
    assert claim.status_code == 201, claim.content
    requester_api = client_for(job.requester)
    bonus = {"worker": worker.pk, "amount": 5_000, "reason": "thanks", "key": "b-1"}
    before = money_snapshot(stripe_server)
    r = requester_api.post(f"/api/payments/jobs/{job.pk}/bonuses/", bonus, format="json")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bonus_not_allowed"
    assert "submitted work" in r.json()["error"]["message"]
    assert money_snapshot(stripe_server) == before
    assert worker_balances(worker=worker)["pending"] == 0
    # The control: once the worker has handed work in, the same bonus is allowed.
    submitted = worker_api.post(
        f"/api/work/assignments/{claim.json()['id']}/submit/",
        {"payload": {"boxes": []}, "active_seconds": 30},
        format="json",
    )
    assert submitted.status_code == 200, submitted.content
    r = requester_api.post(f"/api/payments/jobs/{job.pk}/bonuses/", bonus, format="json")
    assert r.status_code == 201, r.content
    assert worker_balances(worker=worker)["pending"] >= r.json()["bonus"] > 0


# --- the issue's chain -----------------------------------------------------------------------


def test_the_issues_chain_stops_at_the_forged_event(
    stripe_server, client_for, post_event, django_capture_on_commit_callbacks
):
    """Tiny funding → forged event → huge escrow → bonus → payout. With the shipped secret the
    event is refused; even with the real secret (leaked) nothing is credited, so the bonus and
    the payout that follow have nothing to move."""
    job = budgeted_ready_job()
    attacker = client_for(job.requester)
    accomplice = onboarded_worker(stripe_server)  # a worker the attacker controls
    qualify(accomplice)
    start = money_snapshot(stripe_server)

    # 1. A $2.47 funding that is never paid.
    tiny = unpaid_funding(stripe_server, client_for, job, 247)
    real = stripe_gateway.payment_intent_retrieve(tiny.stripe_payment_intent_id)
    forged = forged_event(
        "payment_intent.succeeded",
        {**real, "status": "succeeded", "amount": HUGE, "amount_received": HUGE},
    )
    # 2a. Signed with the secret the repository used to ship: refused, not even stored.
    assert post_event(forged, secret="whsec_local").status_code == 400
    assert StripeEvent.objects.count() == 0
    # 2b. Signed with the real secret: stored, checked with Stripe, flagged, credits nothing.
    assert post_event(forged).status_code == 200
    assert escrow_balance(job=job).funded == 0
    assert StripeEvent.objects.get().status == EventStatus.FLAGGED

    # 3. The bonus to the accomplice: there is no escrow, and no submitted work.
    bonus = {"worker": accomplice.pk, "amount": HUGE - 1_000, "reason": "x", "key": "k"}
    r = attacker.post(f"/api/payments/jobs/{job.pk}/bonuses/", bonus, format="json")
    assert r.status_code in (400, 409)

    # 4. Time passes and the payout run comes: nothing to pay the accomplice.
    funding.earnings_release_due(now=timezone.now() + timedelta(days=30))
    admin_api = client_for(AdminFactory())
    with django_capture_on_commit_callbacks(execute=True):
        assert admin_api.post("/api/payments/admin/payout-runs/").status_code == 202
    assert money_snapshot(stripe_server) == start
    assert Payout.objects.filter(worker=accomplice).count() == 0
    assert stripe_server.state.transfers == {}
    assert worker_balances(worker=accomplice) == {"pending": 0, "available": 0, "in_transit": 0}

    # The admin sees it: the anomaly on the staff money page and in the admin with its filter.
    browser = Client()
    browser.force_login(AdminFactory())
    page = browser.get("/staff/money/").content.decode()
    assert "Payment anomalies" in page and tiny.stripe_payment_intent_id in page
    listing = browser.get(
        "/admin/payments/paymentanomaly/",
        {"resolved__exact": "0", "kind__exact": AnomalyKind.NOT_SUCCEEDED},
    )
    assert listing.status_code == 200 and tiny.stripe_payment_intent_id in listing.content.decode()
    assert (
        "flagged"
        in browser.get(
            "/admin/payments/stripeevent/", {"status__exact": "flagged"}
        ).content.decode()
    )
    assert_ledger_consistent()
