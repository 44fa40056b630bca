"""Funding through Stripe Checkout, against the local Stripe server over real HTTP: the session
is created by the SDK, paid on the server's own test payment page (a real HTML form POSTed over
HTTP), and confirmed by the signed ``checkout.session.completed`` webhook or by the requester's
return to the funding page — each re-reading the session and its PaymentIntent from Stripe,
crediting exactly what Stripe confirms, once (invariant 8; invariant 6 for the events).
"""

from __future__ import annotations

import json
import re
import secrets
import time

import pytest
import requests
from django.conf import settings
from django.test import Client

from payments import funding, stripe_gateway
from payments.models import (
    AnomalyKind,
    EventStatus,
    Funding,
    FundingStatus,
    LedgerTransaction,
    PaymentAnomaly,
    StripeEvent,
    TxKind,
)
from payments.selectors import escrow_balance
from tasks import quoting
from tasks.models import MicroTask, Slot
from tests.factories import RequesterFactory
from tests.payments.conftest import (
    CARD_DECLINED,
    CARD_SUCCEEDS,
    assert_ledger_consistent,
    checkout_funding,
    events_of,
    pay_checkout,
)
from tests.tasks.claim_fixtures import ready_job

pytestmark = pytest.mark.django_db

PLATFORM = "/stripe/webhook/"
HUGE = 15_001_000


def budgeted(job, budget: int = 10**7):
    job.budget = budget
    job.save(update_fields=["budget"])
    return job


@pytest.fixture
def job():
    return budgeted(ready_job(n=4, price=60, budget=0, gold_rate=0.0))


@pytest.fixture
def post_event(client, django_capture_on_commit_callbacks):
    """POST ``event`` to the platform endpoint signed with its secret; processing (Celery,
    eager here) runs as after the commit."""

    def post(event: dict):
        body = json.dumps(event).encode()
        t = int(time.time())
        import hashlib
        import hmac

        mac = hmac.new(
            settings.STRIPE_WEBHOOK_SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256
        ).hexdigest()
        with django_capture_on_commit_callbacks(execute=True):
            return client.generic(
                "POST",
                PLATFORM,
                body,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=f"t={t},v1={mac}",
            )

    return post


def pay_on_page(funding_row: Funding, card: str) -> requests.Response:
    """What the payer's browser does on Stripe's hosted page: GET it, POST the card form."""
    page = requests.get(funding_row.checkout_url, timeout=5)
    assert page.status_code == 200 and 'name="card_number"' in page.text
    return requests.post(
        funding_row.checkout_url, data={"card_number": card}, allow_redirects=False, timeout=5
    )


def completed_event(stripe_server, funding_row: Funding) -> dict:
    (event,) = events_of(
        stripe_server, "checkout.session.completed", funding_row.stripe_checkout_session_id
    )
    return event


def credited(job) -> int:
    return escrow_balance(job=job).funded


# --- paying ----------------------------------------------------------------------------------


def test_paying_on_the_test_page_and_the_completed_webhook_credit_the_funding_once(
    stripe_server, job, post_event
):
    f = checkout_funding(job, amount=2_470)
    assert f.status == FundingStatus.CREATED and f.stripe_payment_intent_id == ""
    assert stripe_server.state.checkout_sessions[f.stripe_checkout_session_id]["metadata"] == {
        "funding_id": str(f.pk),
        "job_id": str(job.pk),
    }
    paid = pay_on_page(f, CARD_SUCCEEDS)
    assert paid.status_code == 303
    assert paid.headers["Location"].endswith(f"?funding={f.pk}&checkout=return")
    assert credited(job) == 0  # Stripe took it; we have not heard yet

    assert post_event(completed_event(stripe_server, f)).status_code == 200
    f.refresh_from_db()
    session = stripe_gateway.checkout_session_retrieve(f.stripe_checkout_session_id)
    assert (f.status, f.stripe_payment_intent_id) == (
        FundingStatus.SUCCEEDED,
        session["payment_intent"],
    )
    assert credited(job) == 2_470
    # The PaymentIntent's own event, and the requester's return, credit nothing more.
    (pi_event,) = events_of(stripe_server, "payment_intent.succeeded", f.stripe_payment_intent_id)
    assert post_event(pi_event).status_code == 200
    assert funding.funding_refresh(funding=f).status == FundingStatus.SUCCEEDED
    assert credited(job) == 2_470
    assert LedgerTransaction.objects.filter(kind=TxKind.FUND).count() == 1
    assert PaymentAnomaly.objects.count() == 0
    assert_ledger_consistent()


def test_the_payment_intent_event_arriving_first_is_matched_through_stripes_session(
    stripe_server, job, post_event
):
    """``payment_intent.succeeded`` often comes before ``checkout.session.completed``: the
    PaymentIntent is attached to the funding because Stripe's copy of the recorded session
    names it, not because its metadata says so."""
    f = checkout_funding(job, amount=990)
    pi = pay_checkout(stripe_server, f)
    (pi_event,) = events_of(stripe_server, "payment_intent.succeeded", pi["id"])
    assert post_event(pi_event).status_code == 200
    f.refresh_from_db()
    assert (f.status, f.stripe_payment_intent_id) == (FundingStatus.SUCCEEDED, pi["id"])
    assert post_event(completed_event(stripe_server, f)).status_code == 200
    assert credited(job) == 990
    assert StripeEvent.objects.filter(status=EventStatus.SUCCEEDED).count() == 2


def test_returning_from_checkout_confirms_the_payment_without_the_webhook(
    stripe_server, job, client
):
    client.force_login(job.requester)
    r = client.post(f"/requester/jobs/{job.pk}/funding/", {"fund": "quote"})
    (f,) = Funding.objects.filter(job=job)
    assert r.status_code == 303 and r["Location"] == f.checkout_url
    back = pay_on_page(f, CARD_SUCCEEDS).headers["Location"]
    assert back.startswith(f"http://testserver/requester/jobs/{job.pk}/funding/?")
    # The page the payer lands on asks Stripe through a POST, sent by its script.
    asked = len(stripe_server.request_log)
    page = client.get(back.removeprefix("http://testserver")).content.decode()
    assert 'data-auto-check="1"' in page and "js/funding_return.js" in page
    assert credited(job) == 0 and len(stripe_server.request_log) == asked  # the GET asks nothing
    checked = client.post(f"/requester/jobs/{job.pk}/funding/{f.pk}/check/", follow=True)
    text = checked.content.decode()
    f.refresh_from_db()
    assert f.status == FundingStatus.SUCCEEDED and credited(job) == f.amount
    amount = f"${f.amount / 100:,.2f}"
    assert "Payment received" in text and amount in text
    assert re.search(r'id="escrow-funded">\$[\d,.]+<', text).group(0).endswith(f"{amount}<")
    client.post(f"/requester/jobs/{job.pk}/funding/{f.pk}/check/")  # again: nothing more
    assert LedgerTransaction.objects.filter(kind=TxKind.FUND).count() == 1


def test_a_declined_card_credits_nothing_and_the_session_can_still_be_paid(
    stripe_server, job, post_event
):
    f = checkout_funding(job, amount=1_500)
    declined = pay_on_page(f, CARD_DECLINED)
    assert declined.status_code == 402 and "Your card was declined" in declined.text
    (failed,) = events_of(stripe_server, "payment_intent.payment_failed")
    assert post_event(failed).status_code == 200
    f = funding.funding_refresh(funding=f)
    assert f.status == FundingStatus.CREATED and credited(job) == 0
    assert events_of(stripe_server, "checkout.session.completed") == []
    # Another card on the same page: the same PaymentIntent, now paid.
    assert pay_on_page(f, CARD_SUCCEEDS).status_code == 303
    assert post_event(completed_event(stripe_server, f)).status_code == 200
    f.refresh_from_db()
    assert (
        f.status == FundingStatus.SUCCEEDED
        and f.stripe_payment_intent_id == failed["data"]["object"]["id"]
    )
    assert credited(job) == 1_500


def test_an_expired_session_credits_nothing_and_the_page_says_so(
    stripe_server, job, post_event, client
):
    f = checkout_funding(job, amount=700)
    stripe_server.expire_checkout_session(f.stripe_checkout_session_id)
    (expired,) = events_of(stripe_server, "checkout.session.expired")
    assert post_event(expired).status_code == 200
    f.refresh_from_db()
    assert f.status == FundingStatus.EXPIRED and credited(job) == 0
    assert "This payment page has expired; nothing" in pay_on_page_refused(f)
    client.force_login(job.requester)
    page = client.get(f"/requester/jobs/{job.pk}/funding/?funding={f.pk}").content.decode()
    assert "expired or was cancelled: nothing was charged" in page


def pay_on_page_refused(f: Funding) -> str:
    r = requests.post(f.checkout_url, data={"card_number": CARD_SUCCEEDS}, timeout=5)
    assert r.status_code == 402
    return r.text


def test_cancelling_an_unpaid_payment_expires_it_at_stripe(stripe_server, job, client):
    f = checkout_funding(job, amount=700)
    client.force_login(job.requester)
    r = client.post(f"/requester/jobs/{job.pk}/funding/{f.pk}/cancel/")
    assert r.status_code == 302
    f.refresh_from_db()
    assert f.status == FundingStatus.EXPIRED
    assert (
        stripe_server.state.checkout_sessions[f.stripe_checkout_session_id]["status"] == "expired"
    )
    pay_on_page_refused(f)
    assert credited(job) == 0


def test_a_new_payment_expires_the_open_one_and_credits_one_paid_meanwhile(stripe_server, job):
    first = checkout_funding(job, amount=600)
    second = checkout_funding(job, amount=600)
    first.refresh_from_db()
    assert first.status == FundingStatus.EXPIRED
    assert stripe_server.state.checkout_sessions[first.stripe_checkout_session_id]["status"] == (
        "expired"
    )
    # Paid at Stripe, no webhook yet: opening another payment credits it instead of losing it.
    pay_checkout(stripe_server, second)
    checkout_funding(job, amount=600)
    second.refresh_from_db()
    assert second.status == FundingStatus.SUCCEEDED and credited(job) == 600


@pytest.mark.django_db(transaction=True)
def test_two_payments_started_at_once_open_one_payable_session(stripe_server, job, monkeypatch):
    """A double click: two requests start a payment of the same job at the same moment. The
    second waits for the job's lock while the first opens its session at Stripe, then finds that
    session and is refused (409): one payable session, never two for the same need."""
    import threading

    from tests.locking import run_threads, wait_for_a_lock_waiter

    real_create = stripe_gateway.checkout_session_create
    first_inside = threading.Event()

    def create_while_the_other_arrives(**kwargs):
        if not first_inside.is_set():
            first_inside.set()
            assert wait_for_a_lock_waiter(), "the second request did not wait for the first"
        return real_create(**kwargs)

    monkeypatch.setattr(stripe_gateway, "checkout_session_create", create_while_the_other_arrives)

    def second():
        assert first_inside.wait(10)
        checkout_funding(job, amount=600)

    errors = run_threads(lambda: checkout_funding(job, amount=600), second)
    assert [type(e) for e in errors] == [funding.FundingInProgress], errors
    (opened,) = Funding.objects.filter(job=job)
    assert opened.status == FundingStatus.CREATED and opened.amount == 600
    sessions = list(stripe_server.state.checkout_sessions.values())
    assert [s["id"] for s in sessions if s["status"] == "open"] == [
        opened.stripe_checkout_session_id
    ]
    # Nothing blocks the next payment once that one is settled.
    assert checkout_funding(job, amount=600).status == FundingStatus.CREATED
    opened.refresh_from_db()
    assert opened.status == FundingStatus.EXPIRED


# --- events that lie, or are replayed ---------------------------------------------------------


def test_a_replayed_completed_event_is_applied_once(stripe_server, job, post_event):
    f = checkout_funding(job, amount=1_234)
    pay_checkout(stripe_server, f)
    event = completed_event(stripe_server, f)
    responses = [post_event(event) for _ in range(3)]
    assert [r.json()["duplicate"] for r in responses] == [False, True, True]
    twin = {**event, "id": f"evt_twin_{secrets.token_hex(4)}"}
    assert post_event(twin).status_code == 200
    assert credited(job) == 1_234
    assert LedgerTransaction.objects.filter(kind=TxKind.FUND).count() == 1
    assert_ledger_consistent()


def test_a_forged_amount_in_the_event_credits_what_stripe_says(stripe_server, job, post_event):
    f = checkout_funding(job, amount=247)
    pay_checkout(stripe_server, f)
    event = completed_event(stripe_server, f)
    obj = {**event["data"]["object"], "amount_total": HUGE, "amount_subtotal": HUGE}
    forged = {**event, "id": f"evt_forged_{secrets.token_hex(4)}", "data": {"object": obj}}
    assert post_event(forged).status_code == 200
    assert credited(job) == 247
    (anomaly,) = PaymentAnomaly.objects.all()
    assert (anomaly.kind, anomaly.funding_id) == (AnomalyKind.EVENT_DISAGREES, f.pk)
    assert anomaly.detail["event_said"]["amount_total"] == HUGE
    assert anomaly.detail["stripe_said"]["amount_total"] == 247
    assert StripeEvent.objects.get().status == EventStatus.FLAGGED


def test_a_completed_event_for_an_unpaid_session_credits_nothing(stripe_server, job, post_event):
    f = checkout_funding(job, amount=800)
    session = stripe_gateway.checkout_session_retrieve(f.stripe_checkout_session_id)
    forged = {
        "id": f"evt_forged_{secrets.token_hex(4)}",
        "object": "event",
        "type": "checkout.session.completed",
        "created": int(time.time()),
        "data": {"object": {**session, "status": "complete", "payment_status": "paid"}},
    }
    assert post_event(forged).status_code == 200
    f.refresh_from_db()
    assert f.status == FundingStatus.CREATED and credited(job) == 0  # still payable for real
    (anomaly,) = PaymentAnomaly.objects.all()
    assert anomaly.kind == AnomalyKind.NOT_SUCCEEDED


def test_stripe_holding_another_amount_than_the_funding_credits_nothing(
    stripe_server, job, post_event
):
    f = checkout_funding(job, amount=900)
    stripe_server.state.checkout_sessions[f.stripe_checkout_session_id]["amount_total"] = 200
    pay_checkout(stripe_server, f)
    assert post_event(completed_event(stripe_server, f)).status_code == 200
    f.refresh_from_db()
    assert f.status == FundingStatus.FLAGGED and credited(job) == 0
    assert {a.kind for a in PaymentAnomaly.objects.all()} == {AnomalyKind.AMOUNT_MISMATCH}


def test_a_session_naming_another_jobs_funding_credits_neither(stripe_server, job, post_event):
    """The attacker pays a small session of their own making whose metadata (and its
    PaymentIntent's) names the victim's large unpaid funding."""
    victim_job = budgeted(ready_job(n=4, price=60, budget=0, gold_rate=0.0))
    victim = checkout_funding(victim_job, amount=90_000)
    named = {"funding_id": str(victim.pk), "job_id": str(victim_job.pk)}
    session = stripe_gateway.checkout_session_create(
        amount=247,
        currency="usd",
        name="attack",
        success_url="http://evil.test/ok",
        cancel_url="http://evil.test/no",
        metadata=named,
        client_reference_id=f"funding-{victim.pk}",
        transfer_group=f"job:{job.pk}",
        idempotency_key=f"attacker-{secrets.token_hex(4)}",
    )
    stripe_server.pay_checkout_session(session["id"])
    paid = stripe_gateway.checkout_session_retrieve(session["id"])
    (completed,) = events_of(stripe_server, "checkout.session.completed", session["id"])
    (pi_event,) = events_of(stripe_server, "payment_intent.succeeded", paid["payment_intent"])
    for event in (completed, pi_event):
        assert post_event(event).status_code == 200
    assert credited(victim_job) == 0 and credited(job) == 0
    victim.refresh_from_db()
    assert (victim.status, victim.stripe_payment_intent_id) == (FundingStatus.CREATED, "")
    kinds = sorted(a.kind for a in PaymentAnomaly.objects.all())
    assert kinds == [AnomalyKind.CHECKOUT_SESSION_MISMATCH, AnomalyKind.PAYMENT_INTENT_MISMATCH]
    assert set(PaymentAnomaly.objects.values_list("funding_id", flat=True)) == {victim.pk}
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {EventStatus.FLAGGED}


def test_an_event_for_a_session_stripe_does_not_know_is_flagged(stripe_server, job, post_event):
    f = checkout_funding(job, amount=800)
    obj = {
        "id": "cs_test_forged",
        "object": "checkout.session",
        "amount_total": 800,
        "currency": "usd",
        "payment_status": "paid",
        "status": "complete",
        "metadata": {"funding_id": str(f.pk)},
    }
    event = {"id": "evt_forged_cs", "type": "checkout.session.completed", "data": {"object": obj}}
    assert post_event({**event, "object": "event", "created": int(time.time())}).status_code == 200
    assert credited(job) == 0
    (anomaly,) = PaymentAnomaly.objects.all()
    assert (anomaly.kind, anomaly.funding_id) == (AnomalyKind.UNKNOWN_CHECKOUT_SESSION, f.pk)


# --- the budget ------------------------------------------------------------------------------


def quote_job(*, budget_share: float):
    """A ready job, unfunded, whose budget is ``budget_share`` of its quote's fund amount."""
    job = ready_job(n=6, overlap=2, price=80, budget=0, gold_rate=0.0)
    need = quoting.job_quote(job=job).fund_amount
    return budgeted(job, int(need * budget_share)), need


def test_a_quote_over_the_budget_is_refused_and_the_budget_funds_what_it_covers(
    stripe_server, client_for, post_event
):
    from tasks import claiming

    job, need = quote_job(budget_share=0.5)
    api = client_for(job.requester)
    r = api.post(f"/api/payments/jobs/{job.pk}/fund/", {}, format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "over_budget"
    room = f"${job.budget / 100:,.2f}"
    assert f"The job's budget leaves {room} to fund" in r.json()["error"]["message"]
    assert stripe_server.state.checkout_sessions == {}
    options = quoting.funding_options(job=job)
    assert options.over_budget and options.room == job.budget and options.need == need
    covered = options.coverage.covered
    assert 0 < covered < options.coverage.waiting == 6

    r = api.post(f"/api/payments/jobs/{job.pk}/fund/", {"fit_budget": True}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["amount"] == job.budget
    f = Funding.objects.get(pk=r.json()["funding"])
    pay_checkout(stripe_server, f)
    post_event(completed_event(stripe_server, f))
    assert credited(job) == job.budget
    claiming.job_publish(job=job, by=job.requester)
    # Exactly the microtasks the page promised, the first in claim order, are published.
    published = MicroTask.objects.filter(job=job, slots__isnull=False).distinct()
    first = MicroTask.objects.filter(job=job).order_by("-priority", "id")[:covered]
    assert {m.pk for m in published} == {m.pk for m in first}
    assert Slot.objects.filter(job=job).count() == covered * 2
    # The budget is spent: any further funding is over it.
    r = api.post(f"/api/payments/jobs/{job.pk}/fund/", {"amount": 100}, format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "over_budget"


def test_the_funding_page_offers_the_budget_or_a_raise_when_the_quote_is_over_it(
    stripe_server, client
):
    job, need = quote_job(budget_share=0.5)
    client.force_login(job.requester)
    url = f"/requester/jobs/{job.pk}/funding/"
    page = client.get(url).content.decode()
    coverage = quoting.funding_options(job=job).coverage
    assert "The quote is over your budget" in page
    assert f"publish {coverage.covered} of 6 microtasks" in page
    assert 'id="fund-budget"' in page and 'id="raise-budget"' in page
    assert 'id="fund-quote"' not in page
    # Lowering is refused, nothing changes; raising to the quote offers the whole quote.
    refused = client.post(f"/requester/jobs/{job.pk}/budget/", {"budget": 1}, follow=True)
    assert "can only be raised" in refused.content.decode()
    job.refresh_from_db()
    assert job.budget == need // 2
    client.post(f"/requester/jobs/{job.pk}/budget/", {"budget": need})
    job.refresh_from_db()
    assert job.budget == need
    page = client.get(url).content.decode()
    assert 'id="fund-quote"' in page and "over your budget" not in page
    r = client.post(url, {"fund": "budget"})
    (f,) = Funding.objects.filter(job=job)
    assert r.status_code == 303 and f.amount == need


def test_only_the_jobs_requester_raises_its_budget(stripe_server, client, other_requester):
    job, _ = quote_job(budget_share=0.5)
    before = job.budget
    client.force_login(other_requester)
    assert client.post(f"/requester/jobs/{job.pk}/budget/", {"budget": 10**6}).status_code == 404
    job.refresh_from_db()
    assert job.budget == before


def test_a_budget_raise_is_bounded(stripe_server, client, settings):
    job, _ = quote_job(budget_share=0.5)
    before = job.budget
    client.force_login(job.requester)
    for bad in ("-5", "lots", "", str(10**30), str(settings.MONEY_AMOUNT_MAX + 1)):
        r = client.post(f"/requester/jobs/{job.pk}/budget/", {"budget": bad}, follow=True)
        assert r.status_code == 200 and "Budget raised" not in r.content.decode()
    job.refresh_from_db()
    assert job.budget == before


def test_the_test_payment_page_is_self_contained(stripe_server, job):
    f = checkout_funding(job, amount=1_000)
    page = requests.get(f.checkout_url, timeout=5)
    assert page.headers["Content-Type"].startswith("text/html")
    assert "$10.00" not in page.text and "10.00 USD" in page.text
    hosts = set(re.findall(r'(?:src|href|action)="(https?://[^"/]+)', page.text))
    assert hosts <= {"http://testserver"}  # only the link back to our own page
    assert "<script" not in page.text


def test_a_page_that_is_not_the_requesters_own_payment_is_404(
    stripe_server, job, client, other_requester
):
    f = checkout_funding(job, amount=1_000)
    client.force_login(other_requester)
    for action in ("check", "cancel"):
        assert client.post(f"/requester/jobs/{job.pk}/funding/{f.pk}/{action}/").status_code == 404
    f.refresh_from_db()
    assert f.status == FundingStatus.CREATED
    owner = Client()
    owner.force_login(job.requester)
    other_job = budgeted(ready_job(n=1, price=60, budget=0))
    other_job.requester = job.requester
    other_job.save(update_fields=["requester"])
    # A funding id of another job, under this job's path: 404 too.
    assert owner.post(f"/requester/jobs/{other_job.pk}/funding/{f.pk}/check/").status_code == 404


def test_a_funding_made_before_checkout_is_still_confirmed_from_its_payment_intent(
    stripe_server, job, client_for
):
    """Rows from before Checkout recorded a PaymentIntent of their own: the return check and
    its webhook still confirm them through it."""
    row = Funding.objects.create(job=job, requester=job.requester, amount=610, currency="usd")
    pi = stripe_gateway.payment_intent_create(
        amount=610,
        currency="usd",
        transfer_group=f"job:{job.pk}",
        metadata={"funding_id": str(row.pk), "job_id": str(job.pk)},
        idempotency_key=f"funding:{row.pk}",
    )
    row.stripe_payment_intent_id = pi["id"]
    row.save(update_fields=["stripe_payment_intent_id"])
    assert funding.funding_refresh(funding=row).status == FundingStatus.CREATED
    stripe_server.succeed_payment_intent(pi["id"])
    assert funding.funding_refresh(funding=row).status == FundingStatus.SUCCEEDED
    assert credited(job) == 610
    r = client_for(job.requester).post(f"/api/payments/jobs/{job.pk}/fundings/{row.pk}/check/")
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["checkout_url"], r.json()["quote"]) == (
        "succeeded",
        None,
        None,
    )


def test_stripe_out_of_reach_is_said_plainly_and_charges_nothing(
    stripe_server, job, client, settings
):
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        settings.STRIPE_API_BASE = f"http://127.0.0.1:{probe.getsockname()[1]}"
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    client.force_login(job.requester)
    page = client.post(f"/requester/jobs/{job.pk}/funding/", {"fund": "quote"}, follow=True)
    text = page.content.decode()
    assert page.status_code == 200 and "Stripe did not answer in time" in text
    assert "127.0.0.1" not in text and "Connection" not in text
    assert Funding.objects.filter(job=job).count() == 0  # the row went with the transaction


def test_an_api_client_confirms_its_payment_after_checkout(stripe_server, job, client_for):
    api = client_for(job.requester)
    r = api.post(f"/api/payments/jobs/{job.pk}/fund/", {"amount": 1_800}, format="json")
    body = r.json()
    check = f"/api/payments/jobs/{job.pk}/fundings/{body['funding']}/check/"
    assert api.post(check).json()["status"] == "created"  # not paid yet
    stripe_server.pay_checkout_session(body["checkout_session"])
    for _ in range(2):
        r = api.post(check)
        assert r.status_code == 200 and r.json()["status"] == "succeeded"
    assert r.json()["payment_intent"].startswith("pi_") and credited(job) == 1_800
    # Someone else's funding (or a funding of another job) is a 404.
    other = client_for(RequesterFactory())
    assert other.post(check).status_code == 404
    other_job = budgeted(ready_job(n=1, price=60, budget=0))
    other_job.requester = job.requester
    other_job.save(update_fields=["requester"])
    wrong = f"/api/payments/jobs/{other_job.pk}/fundings/{body['funding']}/check/"
    assert api.post(wrong).status_code == 404
    assert LedgerTransaction.objects.filter(kind=TxKind.FUND).count() == 1


def test_a_settled_funding_is_answered_without_asking_stripe(stripe_server, job):
    f = checkout_funding(job, amount=700)
    pay_checkout(stripe_server, f)
    assert funding.funding_refresh(funding=f).status == FundingStatus.SUCCEEDED
    asked = len(stripe_server.request_log)
    for _ in range(3):
        assert funding.funding_refresh(funding=f).status == FundingStatus.SUCCEEDED
    assert len(stripe_server.request_log) == asked
