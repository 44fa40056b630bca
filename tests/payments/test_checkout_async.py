"""Delayed (bank debit) Checkout payments: the session completes unpaid, then the bank answers.

A failed one (``checkout.session.async_payment_failed``) ends the funding ``failed`` at once, as
Stripe's own copies of the session and its PaymentIntent say (re-read over real HTTP through the
SDK from ``stripe_local``), never as the event body says; once, audited; the requester sees it.
"""

from __future__ import annotations

import copy

import pytest
from django.test import Client

from marketplace.money import format_money
from payments import funding, stripe_gateway
from payments.models import (
    AuditLog,
    EventStatus,
    FundingStatus,
    LedgerTransaction,
    PaymentAnomaly,
    StripeEvent,
    TxKind,
)
from payments.selectors import escrow_balance
from tasks import quoting
from tests.payments.conftest import (
    CARD_DECLINED,
    CARD_SUCCEEDS,
    assert_ledger_consistent,
    checkout_funding,
    events_of,
    pay_checkout,
    signed_post,
)
from tests.tasks.claim_fixtures import ready_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def job():
    job = ready_job(n=4, price=60, budget=0, gold_rate=0.0)
    job.budget = 10**7
    job.save(update_fields=["budget"])
    return job


@pytest.fixture
def post(client: Client, stripe_server, django_capture_on_commit_callbacks):
    """POST a (signed) event to the platform endpoint; its processing runs as after the commit."""

    def post(event: dict):
        with django_capture_on_commit_callbacks(execute=True):
            response = signed_post(client, stripe_server, event)
        assert response.status_code == 200, response.content
        return response

    return post


def _event(stripe_server, kind: str, f) -> dict:
    (event,) = events_of(stripe_server, kind, f.stripe_checkout_session_id)
    return event


def _the_bank_pays_after_all(stripe_server, post, f) -> None:
    """The bank answers yes and Stripe says so: the funding is credited its amount, once."""
    stripe_server.settle_async_payment(f.stripe_checkout_session_id, succeeded=True)
    post(_event(stripe_server, "checkout.session.async_payment_succeeded", f))
    f.refresh_from_db()
    assert f.status == FundingStatus.SUCCEEDED
    assert escrow_balance(job=f.job).funded == f.amount


def _failed_audits(f) -> int:
    return AuditLog.objects.filter(action="funding.failed", object_id=str(f.pk)).count()


# --- stripe_local: the test double can produce a delayed payment and its failure ---------------


def test_stripe_local_completes_a_bank_debit_unpaid_and_settles_it_later(stripe_server, job):
    f = checkout_funding(job, amount=1_200)
    cs = f.stripe_checkout_session_id
    stripe_server.pay_checkout_session_async(cs)
    session = stripe_gateway.checkout_session_retrieve(cs)  # over HTTP, through the SDK
    assert (session["status"], session["payment_status"]) == ("complete", "unpaid")
    intent = stripe_gateway.payment_intent_retrieve(session["payment_intent"])
    assert intent["status"] == "processing" and intent["amount_received"] == 0
    assert intent["metadata"]["funding_id"] == str(f.pk)
    assert _event(stripe_server, "checkout.session.completed", f)["data"]["object"][
        "payment_status"
    ] == ("unpaid")
    with pytest.raises(ValueError):
        stripe_server.pay_checkout_session_async(cs)  # a complete session takes no payment

    stripe_server.settle_async_payment(cs, succeeded=False)
    session = stripe_gateway.checkout_session_retrieve(cs)
    assert (session["status"], session["payment_status"]) == ("complete", "unpaid")
    intent = stripe_gateway.payment_intent_retrieve(session["payment_intent"])
    assert intent["status"] == "requires_payment_method"
    assert intent["last_payment_error"]["code"] == "insufficient_funds"
    assert events_of(stripe_server, "payment_intent.payment_failed", intent["id"])
    assert _event(stripe_server, "checkout.session.async_payment_failed", f)
    with pytest.raises(ValueError):
        stripe_server.settle_async_payment(cs, succeeded=True)  # the bank answered already

    other = checkout_funding(job, amount=800)
    stripe_server.pay_checkout_session_async(other.stripe_checkout_session_id)
    stripe_server.settle_async_payment(other.stripe_checkout_session_id, succeeded=True)
    session = stripe_gateway.checkout_session_retrieve(other.stripe_checkout_session_id)
    assert session["payment_status"] == "paid"
    intent = stripe_gateway.payment_intent_retrieve(session["payment_intent"])
    assert (intent["status"], intent["amount_received"]) == ("succeeded", 800)
    assert _event(stripe_server, "checkout.session.async_payment_succeeded", other)


# --- the funding -----------------------------------------------------------------------------


def test_a_failed_bank_debit_ends_the_funding_failed_at_once_and_once(
    stripe_server, job, post, client_for
):
    f = checkout_funding(job, amount=2_000)
    stripe_server.pay_checkout_session_async(f.stripe_checkout_session_id)
    post(_event(stripe_server, "checkout.session.completed", f))
    f.refresh_from_db()
    assert f.status == FundingStatus.PROCESSING  # awaiting the bank
    assert f.stripe_payment_intent_id  # Stripe's session named it

    stripe_server.settle_async_payment(f.stripe_checkout_session_id, succeeded=False)
    failed = _event(stripe_server, "checkout.session.async_payment_failed", f)
    post(failed)
    f.refresh_from_db()
    assert f.status == FundingStatus.FAILED
    assert escrow_balance(job=job).funded == 0
    assert _failed_audits(f) == 1
    audit = AuditLog.objects.get(action="funding.failed", object_id=str(f.pk))
    assert audit.amount == 2_000 and "insufficient funds" in audit.reason

    # Replayed, and the PaymentIntent's own failure event: nothing more.
    post(copy.deepcopy(failed) | {"id": "evt_replayed"})
    (pi_failed,) = events_of(stripe_server, "payment_intent.payment_failed")
    post(pi_failed)
    f.refresh_from_db()
    assert f.status == FundingStatus.FAILED and _failed_audits(f) == 1
    # The requester sees it in the funding status (API and page).
    api = client_for(job.requester)
    check = api.post(f"/api/payments/jobs/{job.pk}/fundings/{f.pk}/check/")
    assert check.status_code == 200 and check.json()["status"] == "failed"
    page = Client()
    page.force_login(job.requester)
    text = page.get(f"/requester/jobs/{job.pk}/funding/?funding={f.pk}").content.decode()
    assert "did not go through: nothing was credited" in text
    assert LedgerTransaction.objects.filter(kind=TxKind.FUND).count() == 0
    assert PaymentAnomaly.objects.count() == 0
    assert_ledger_consistent()


def test_the_status_check_sees_the_failure_without_the_webhook(stripe_server, job, client_for):
    f = checkout_funding(job, amount=900)
    stripe_server.pay_checkout_session_async(f.stripe_checkout_session_id)
    api = client_for(job.requester)
    check = f"/api/payments/jobs/{job.pk}/fundings/{f.pk}/check/"
    assert api.post(check).json()["status"] == "processing"
    stripe_server.settle_async_payment(f.stripe_checkout_session_id, succeeded=False)
    assert api.post(check).json()["status"] == "failed"
    assert api.post(check).json()["status"] == "failed"
    assert _failed_audits(f) == 1


def test_a_failure_event_for_a_payment_still_processing_changes_nothing(stripe_server, job, post):
    """The event body is a claim: Stripe says the bank has not answered, so the funding waits."""
    f = checkout_funding(job, amount=1_000)
    stripe_server.pay_checkout_session_async(f.stripe_checkout_session_id)
    forged = copy.deepcopy(_event(stripe_server, "checkout.session.completed", f))
    forged.update(id="evt_forged_failure", type="checkout.session.async_payment_failed")
    post(forged)
    f.refresh_from_db()
    assert f.status == FundingStatus.PROCESSING and _failed_audits(f) == 0
    _the_bank_pays_after_all(stripe_server, post, f)


def test_a_failure_event_for_a_payment_stripe_says_succeeded_credits_it(stripe_server, job, post):
    f = checkout_funding(job, amount=1_300)
    stripe_server.pay_checkout_session_async(f.stripe_checkout_session_id)
    stripe_server.settle_async_payment(f.stripe_checkout_session_id, succeeded=True)
    forged = copy.deepcopy(_event(stripe_server, "checkout.session.async_payment_succeeded", f))
    forged.update(id="evt_forged_failure", type="checkout.session.async_payment_failed")
    forged["data"]["object"]["payment_status"] = "unpaid"
    post(forged)
    f.refresh_from_db()
    assert f.status == FundingStatus.SUCCEEDED and escrow_balance(job=job).funded == 1_300
    assert _failed_audits(f) == 0
    assert LedgerTransaction.objects.filter(kind=TxKind.FUND).count() == 1
    assert funding.funding_refresh(funding=f).status == FundingStatus.SUCCEEDED


# --- a lone payment_intent.payment_failed ----------------------------------------------------
# Stripe does not promise the session's own event, nor any order: the PaymentIntent's failure
# alone settles a Checkout funding, from Stripe's copies of the session and the PaymentIntent.


def _pi_failed(stripe_server, f) -> dict:
    session = stripe_gateway.checkout_session_retrieve(f.stripe_checkout_session_id)
    (event,) = events_of(stripe_server, "payment_intent.payment_failed", session["payment_intent"])
    return event


@pytest.mark.parametrize("completion_seen", [False, True], ids=["alone", "after-completed"])
def test_a_lone_payment_intent_failure_ends_a_failed_bank_debit_failed_once(
    stripe_server, job, post, completion_seen
):
    f = checkout_funding(job, amount=1_700)
    stripe_server.pay_checkout_session_async(f.stripe_checkout_session_id)
    if completion_seen:
        post(_event(stripe_server, "checkout.session.completed", f))
    stripe_server.settle_async_payment(f.stripe_checkout_session_id, succeeded=False)
    failed = _pi_failed(stripe_server, f)
    post(failed)
    f.refresh_from_db()
    assert f.status == FundingStatus.FAILED
    assert f.stripe_payment_intent_id == failed["data"]["object"]["id"]  # Stripe's session names it
    assert _failed_audits(f) == 1
    audit = AuditLog.objects.get(action="funding.failed", object_id=str(f.pk))
    assert audit.amount == 1_700 and "insufficient funds" in audit.reason
    assert StripeEvent.objects.get(stripe_event_id=failed["id"]).status == EventStatus.SUCCEEDED

    # Delivered again (same id), resent under another id, then the session's own event: nothing.
    post(failed)
    post(copy.deepcopy(failed) | {"id": "evt_pi_failed_again"})
    post(_event(stripe_server, "checkout.session.async_payment_failed", f))
    f.refresh_from_db()
    assert f.status == FundingStatus.FAILED and _failed_audits(f) == 1
    assert escrow_balance(job=job).funded == 0
    assert LedgerTransaction.objects.filter(kind=TxKind.FUND).count() == 0
    assert PaymentAnomaly.objects.count() == 0
    assert_ledger_consistent()


def test_a_card_declined_on_an_open_session_leaves_the_funding_payable(stripe_server, job, post):
    """The payer is still on Stripe's page and may try another card: the funding waits."""
    f = checkout_funding(job, amount=1_100)
    pay_checkout(stripe_server, f, CARD_DECLINED)
    failed = _pi_failed(stripe_server, f)
    post(failed)
    f.refresh_from_db()
    assert f.status == FundingStatus.CREATED and _failed_audits(f) == 0
    assert StripeEvent.objects.get(stripe_event_id=failed["id"]).status == EventStatus.SUCCEEDED
    assert stripe_gateway.checkout_session_retrieve(f.stripe_checkout_session_id)["status"] == (
        "open"
    )
    # Another card on the same page: credited once, by the PaymentIntent's own success.
    intent = pay_checkout(stripe_server, f, CARD_SUCCEEDS)
    (succeeded,) = events_of(stripe_server, "payment_intent.succeeded", intent["id"])
    post(succeeded)
    post(copy.deepcopy(failed) | {"id": "evt_late_decline"})  # a late decline undoes nothing
    f.refresh_from_db()
    assert f.status == FundingStatus.SUCCEEDED and escrow_balance(job=job).funded == 1_100
    assert _failed_audits(f) == 0 and PaymentAnomaly.objects.count() == 0


def test_a_payment_failed_event_for_a_payment_stripe_says_is_processing_changes_nothing(
    stripe_server, job, post
):
    """The body says the bank refused; Stripe says it has not answered: the funding waits."""
    f = checkout_funding(job, amount=1_250)
    stripe_server.pay_checkout_session_async(f.stripe_checkout_session_id)
    session = stripe_gateway.checkout_session_retrieve(f.stripe_checkout_session_id)
    intent = stripe_gateway.payment_intent_retrieve(session["payment_intent"])
    forged_pi = dict(intent) | {
        "status": "requires_payment_method",
        "last_payment_error": {"code": "insufficient_funds", "message": "forged"},
    }
    forged = copy.deepcopy(_event(stripe_server, "checkout.session.completed", f))
    forged.update(id="evt_forged_pi_failed", type="payment_intent.payment_failed")
    forged["data"]["object"] = forged_pi
    post(forged)
    f.refresh_from_db()
    assert f.status == FundingStatus.PROCESSING and _failed_audits(f) == 0
    _the_bank_pays_after_all(stripe_server, post, f)


# --- the funding page while the bank answers -------------------------------------------------


def _page(c: Client, job, f) -> str:
    r = c.get(f"/requester/jobs/{job.pk}/funding/?funding={f.pk}")
    assert r.status_code == 200
    return r.content.decode()


def _says_processing(text: str) -> bool:
    return (
        "bank payment of <strong>$" in text
        and "is processing" in text
        and "can take a few business days" in text
        and "nothing is credited to this job's escrow until Stripe confirms" in text
    )


def test_the_funding_page_says_a_bank_payment_is_processing_and_offers_no_payment_page(
    stripe_server, job, post, client_for
):
    c = Client()
    c.force_login(job.requester)
    assert c.post(f"/requester/jobs/{job.pk}/funding/", {"fund": "quote"}).status_code == 303
    (f,) = job.fundings.all()
    stripe_server.pay_checkout_session_async(f.stripe_checkout_session_id)
    # Back from Checkout: the page cannot know yet (its GET asks Stripe nothing); its check asks.
    back = _page(c, job, f)
    assert "Continue to payment" in back and not _says_processing(back)
    checked = c.post(f"/requester/jobs/{job.pk}/funding/{f.pk}/check/", follow=True)
    text = checked.content.decode()
    f.refresh_from_db()
    assert f.status == FundingStatus.PROCESSING
    assert _says_processing(text)
    assert "Continue to payment" not in text and f.checkout_url not in text
    assert 'id="cancel-payment"' not in text  # a complete session cannot be taken back
    assert 'id="check-payment"' in text  # asking Stripe again is still possible
    assert "Bank payment processing (not credited yet)" in text  # the payments list
    assert escrow_balance(job=job).funded == 0
    # Cancelling it anyway (a stale page) is refused plainly and changes nothing.
    refused = c.post(f"/requester/jobs/{job.pk}/funding/{f.pk}/cancel/", follow=True)
    assert "already processing at Stripe and cannot be cancelled" in refused.content.decode()
    f.refresh_from_db()
    assert f.status == FundingStatus.PROCESSING
    assert stripe_gateway.checkout_session_retrieve(f.stripe_checkout_session_id)["status"] == (
        "complete"
    )
    assert (
        client_for(job.requester)
        .post(f"/api/payments/jobs/{job.pk}/fundings/{f.pk}/check/")
        .json()["status"]
        == "processing"
    )

    # The bank pays: the webhook credits it, and the page says so.
    stripe_server.settle_async_payment(f.stripe_checkout_session_id, succeeded=True)
    post(_event(stripe_server, "checkout.session.async_payment_succeeded", f))
    text = _page(c, job, f)
    assert "Payment received" in text and not _says_processing(text)
    assert escrow_balance(job=job).funded == f.amount


def test_the_completed_webhook_alone_marks_the_payment_processing_on_the_page(
    stripe_server, job, post
):
    f = checkout_funding(job, amount=1_900)
    c = Client()
    c.force_login(job.requester)
    assert not _says_processing(_page(c, job, f))
    stripe_server.pay_checkout_session_async(f.stripe_checkout_session_id)
    post(_event(stripe_server, "checkout.session.completed", f))
    f.refresh_from_db()
    assert f.status == FundingStatus.PROCESSING
    text = _page(c, job, f)
    assert _says_processing(text) and "Continue to payment" not in text
    # The bank refuses: the page says it did not go through, and offers nothing to continue.
    stripe_server.settle_async_payment(f.stripe_checkout_session_id, succeeded=False)
    post(_event(stripe_server, "checkout.session.async_payment_failed", f))
    text = _page(c, job, f)
    assert "did not go through: nothing was credited" in text
    assert not _says_processing(text) and "Continue to payment" not in text


# --- no paying twice while the bank answers ------------------------------------------------
# A bank payment processing is money in flight: not credited, not spendable, not in escrow, yet
# neither the quote's need nor the budget's room asks for it again (``funding_need``); a new
# payment that, with it, would go past either is refused before anything is made at Stripe. If
# the bank refuses it, the need is asked for again.


def _fund_url(job) -> str:
    return f"/api/payments/jobs/{job.pk}/fund/"


def _processing(stripe_server, post, f):
    stripe_server.pay_checkout_session_async(f.stripe_checkout_session_id)
    post(_event(stripe_server, "checkout.session.completed", f))
    f.refresh_from_db()
    assert f.status == FundingStatus.PROCESSING
    return f


def _sessions(stripe_server) -> int:
    with stripe_server.state.lock:
        return len(stripe_server.state.checkout_sessions)


def _processing_row(text: str, amount: int) -> bool:
    return f'<td id="funding-processing">{format_money(amount, "usd")}' in text


def test_a_bank_payment_processing_the_whole_need_is_not_asked_for_again_until_it_fails(
    stripe_server, job, post, client_for
):
    need = quoting.job_quote(job=job).fund_amount
    page = f"/requester/jobs/{job.pk}/funding/"
    c = Client()
    c.force_login(job.requester)
    assert f'id="fund-quote">Fund {format_money(need, "usd")} with Stripe' in (
        c.get(page).content.decode()
    )
    assert c.post(page, {"fund": "quote"}).status_code == 303
    (f,) = job.fundings.all()
    assert f.amount == need
    _processing(stripe_server, post, f)

    options = quoting.funding_options(job=job)
    assert (options.funded, options.processing, options.need, options.room) == (
        0,
        need,
        0,
        job.budget - need,
    )
    text = c.get(page).content.decode()
    assert _processing_row(text, need)
    assert 'id="fund-quote"' not in text and "with Stripe" not in text
    assert 'id="funding-state">A bank payment' in text and "nothing more to pay" in text

    api = client_for(job.requester)
    made = _sessions(stripe_server)
    for body in ({}, {"fit_budget": True}, {"amount": 500}):
        r = api.post(_fund_url(job), body, format="json")
        assert r.status_code == 409, (body, r.content)
        error = r.json()["error"]
        assert error["code"] == "funding_processing"
        assert f"A bank payment of {format_money(need, 'usd')} is processing" in error["message"]
    refused = c.post(page, {"fund": "quote"}, follow=True).content.decode()
    assert f"A bank payment of {format_money(need, 'usd')} is processing" in refused
    assert _sessions(stripe_server) == made and job.fundings.count() == 1
    assert escrow_balance(job=job).funded == 0  # in flight, not credited

    # The bank refuses: the whole need is asked for again, on the page and through the API.
    stripe_server.settle_async_payment(f.stripe_checkout_session_id, succeeded=False)
    post(_event(stripe_server, "checkout.session.async_payment_failed", f))
    options = quoting.funding_options(job=job)
    assert (options.processing, options.need, options.room) == (0, need, job.budget)
    text = c.get(page).content.decode()
    assert f'id="fund-quote">Fund {format_money(need, "usd")} with Stripe' in text
    assert 'id="funding-processing"' not in text
    r = api.post(_fund_url(job), {}, format="json")
    assert r.status_code == 201, r.content
    assert (r.json()["amount"], r.json()["status"]) == (need, "created")
    assert _sessions(stripe_server) == made + 1


def test_a_bank_payment_processing_part_leaves_the_rest_within_what_the_budget_leaves(
    stripe_server, post, client_for
):
    job = ready_job(n=6, overlap=2, price=80, budget=0, gold_rate=0.0)
    need = quoting.job_quote(job=job).fund_amount
    budget, part = need // 2, need // 4
    job.budget = budget
    job.save(update_fields=["budget"])
    f = _processing(stripe_server, post, checkout_funding(job, amount=part))

    options = quoting.funding_options(job=job)
    assert (options.funded, options.processing, options.need, options.room) == (
        0,
        part,
        need - part,
        budget - part,
    )
    assert options.over_budget and options.budget_needed == need
    assert options.coverage.amount == budget - part
    c = Client()
    c.force_login(job.requester)
    text = c.get(f"/requester/jobs/{job.pk}/funding/").content.decode()
    assert _processing_row(text, part)
    assert f"your budget leaves {format_money(budget - part, 'usd')}" in text
    assert f'id="fund-budget">Fund {format_money(budget - part, "usd")}' in text
    assert f'value="{need}" required' in text  # the raise that funds the whole quote

    api = client_for(job.requester)
    made = _sessions(stripe_server)
    r = api.post(_fund_url(job), {}, format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "over_budget"
    message = r.json()["error"]["message"]
    assert f"The job's budget leaves {format_money(budget - part, 'usd')} to fund" in message
    assert f"a bank payment of {format_money(part, 'usd')} is processing" in message
    r = api.post(_fund_url(job), {"amount": budget - part + 1}, format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "over_budget"
    r = api.post(_fund_url(job), {"amount": need - part + 1}, format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "funding_processing"
    assert _sessions(stripe_server) == made

    r = api.post(_fund_url(job), {"fit_budget": True}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["amount"] == budget - part
    # Both go through: the budget is funded, never more.
    second = job.fundings.get(pk=r.json()["funding"])
    pay_checkout(stripe_server, second)
    post(_event(stripe_server, "checkout.session.completed", second))
    stripe_server.settle_async_payment(f.stripe_checkout_session_id, succeeded=True)
    post(_event(stripe_server, "checkout.session.async_payment_succeeded", f))
    assert escrow_balance(job=job).funded == budget
    options = quoting.funding_options(job=job)
    assert (options.processing, options.room) == (0, 0)
    assert_ledger_consistent()


def test_paying_again_finds_the_earlier_payment_processing_and_refuses(
    stripe_server, job, client_for
):
    """The completion's webhook has not come: the new payment asks Stripe about the earlier
    session first, finds the bank payment processing, records it, and asks for nothing."""
    f = checkout_funding(job)
    stripe_server.pay_checkout_session_async(f.stripe_checkout_session_id)
    r = client_for(job.requester).post(_fund_url(job), {}, format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "funding_processing"
    f.refresh_from_db()
    assert f.status == FundingStatus.PROCESSING  # what Stripe said stays recorded
    assert _sessions(stripe_server) == 1 and job.fundings.count() == 1


# --- no dead payment page in the API -------------------------------------------------------
# ``checkout_url`` is where to send the payer; once the funding no longer awaits payment (a bank
# payment processing, paid, failed, expired) Stripe's session takes no payment, and the API
# answers null instead of a page that cannot be paid.


def test_the_api_gives_the_payment_page_only_while_the_funding_awaits_payment(
    stripe_server, job, client_for
):
    api = client_for(job.requester)
    body = api.post(_fund_url(job), {"amount": 1_300}, format="json").json()
    url = stripe_gateway.checkout_session_retrieve(body["checkout_session"])["url"]
    assert (body["status"], body["checkout_url"]) == ("created", url) and url
    check = f"/api/payments/jobs/{job.pk}/fundings/{body['funding']}/check/"
    assert api.post(check).json()["checkout_url"] == url  # not paid yet: still the way to pay

    stripe_server.pay_checkout_session_async(body["checkout_session"])
    answer = api.post(check).json()
    assert (answer["status"], answer["checkout_url"]) == ("processing", None)
    assert answer["checkout_session"] == body["checkout_session"]  # the rest is unchanged
    stripe_server.settle_async_payment(body["checkout_session"], succeeded=True)
    answer = api.post(check).json()
    assert (answer["status"], answer["checkout_url"]) == ("succeeded", None)
    assert escrow_balance(job=job).funded == 1_300


@pytest.mark.parametrize("end", ["failed", "expired"])
def test_a_funding_that_ended_unpaid_gives_no_payment_page(stripe_server, job, client_for, end):
    f = checkout_funding(job, amount=900)
    assert f.checkout_url
    if end == "failed":
        stripe_server.pay_checkout_session_async(f.stripe_checkout_session_id)
        stripe_server.settle_async_payment(f.stripe_checkout_session_id, succeeded=False)
    else:
        funding.funding_cancel(funding=f, by=job.requester)
    answer = (
        client_for(job.requester).post(f"/api/payments/jobs/{job.pk}/fundings/{f.pk}/check/").json()
    )
    assert (answer["status"], answer["checkout_url"]) == (end, None)
