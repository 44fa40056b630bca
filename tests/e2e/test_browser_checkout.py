"""Paying a job through Stripe Checkout in a real browser, against the local Stripe server: the
requester clicks Fund on the job's funding page, lands on the server's test payment page, pays
with 4242 4242 4242 4242 and comes back to the funding page, which shows the amount credited
(confirmed by the page's own check, with no webhook yet; Stripe's signed events arriving later
credit nothing more). A declined
card shows the card's error on the payment page; coming back and cancelling leaves nothing
charged and the page says so. No Content-Security-Policy violation on our pages."""

from __future__ import annotations

import os

import pytest
from django.conf import settings

from payments.models import (
    EventStatus,
    Funding,
    FundingStatus,
    LedgerTransaction,
    StripeEvent,
    TxKind,
)
from payments.selectors import escrow_balance
from tests.e2e.browser import ARGS, CHROMIUM, login, pay, to_payment_page, webhooks_to_us
from tests.tasks.claim_fixtures import ready_job


def _job():
    job = ready_job(n=3, overlap=1, price=60, budget=0, gold_rate=0.0)
    job.budget = 10**7
    job.save(update_fields=["budget"])
    return job


def _to_payment_page(pw, violations: list, live_server, stripe_local, job):
    """The requester signs in, clicks Fund on the job's funding page and lands on the local
    server's payment page; returns the browser and the page."""
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    login(page, live_server.url, job.requester.username)
    to_payment_page(page, live_server.url, job.pk, stripe_local.api_base)
    return browser, page


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_requester_pays_a_job_through_checkout_and_sees_it_funded(live_server, stripe_local):
    from playwright.sync_api import sync_playwright

    job = _job()
    funding_url = f"{live_server.url}/requester/jobs/{job.pk}/funding/"
    violations: list[str] = []
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the ORM is not used while the browser runs
    with sync_playwright() as pw:
        browser, page = _to_payment_page(pw, violations, live_server, stripe_local, job)
        shown = page.locator("#amount").inner_text()
        outcome = pay(page, funding_url)
        funded = page.locator("#escrow-funded").inner_text()
        browser.close()

    f = Funding.objects.get(job=job)
    assert f.status == FundingStatus.SUCCEEDED
    assert escrow_balance(job=job).funded == f.amount
    amount = f"${f.amount / 100:,.2f}"
    assert shown == f"{f.amount / 100:,.2f} USD"
    assert amount in outcome and funded == amount
    # No webhook was sent: the page's own check (its script POSTing on arrival) credited it.
    assert StripeEvent.objects.count() == 0
    # Stripe's signed events arriving late credit nothing more.
    webhooks_to_us(stripe_local, live_server)
    for type_ in ("checkout.session.completed", "payment_intent.succeeded"):
        (event,) = [e for e in stripe_local.state.events.values() if e["type"] == type_]
        assert stripe_local.deliver(event) == [200]
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {EventStatus.SUCCEEDED}
    assert LedgerTransaction.objects.filter(kind=TxKind.FUND).count() == 1
    assert escrow_balance(job=job).funded == f.amount
    assert violations == []


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_declined_card_shows_its_error_and_a_cancelled_payment_charges_nothing(
    live_server, stripe_local
):
    from playwright.sync_api import sync_playwright

    job = _job()
    webhooks_to_us(stripe_local, live_server)  # the failure event reaches us, and changes nothing
    funding_url = f"{live_server.url}/requester/jobs/{job.pk}/funding/"
    violations: list[str] = []
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the ORM is not used while the browser runs
    with sync_playwright() as pw:
        browser, page = _to_payment_page(pw, violations, live_server, stripe_local, job)
        page.fill("#card_number", "4000 0000 0000 0002")
        page.click("#pay")
        page.wait_for_selector(".error[role=alert]")
        declined = page.locator(".error[role=alert]").inner_text()
        assert page.url.startswith(stripe_local.api_base)  # still on the payment page
        page.click("#cancel")
        page.wait_for_url(f"{funding_url}?funding=*&checkout=cancel")
        left = page.locator("#funding-outcome").inner_text()
        page.click("#cancel-payment")
        page.wait_for_selector("#funding-outcome:has-text('expired or was cancelled')")
        cancelled = page.locator("#funding-outcome").inner_text()
        browser.close()

    assert declined == "Your card was declined. Try another card."
    assert "You left the payment page: nothing was charged" in left
    assert "expired or was cancelled: nothing was charged and nothing credited" in cancelled
    f = Funding.objects.get(job=job)
    assert f.status == FundingStatus.EXPIRED
    assert stripe_local.state.checkout_sessions[f.stripe_checkout_session_id]["status"] == (
        "expired"
    )
    assert escrow_balance(job=job).funded == 0
    assert violations == []
    assert stripe_local.api_base == settings.STRIPE_API_BASE
