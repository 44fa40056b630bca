"""Webhooks: verified on the raw body, stored by id, applied at most once, in any order."""

from __future__ import annotations

import copy

import pytest

from payments import funding, payouts, transfers
from payments.models import (
    ConnectedAccount,
    EventStatus,
    Funding,
    FundingStatus,
    PayoutStatus,
    StripeEvent,
)
from payments.selectors import escrow_balance, worker_balances
from tests.factories import MicroTaskFactory, WorkerFactory
from tests.payments.conftest import checkout_funding, onboarded_worker, pay_checkout, signed_post

pytestmark = pytest.mark.django_db


@pytest.fixture
def funded_intent(stripe_server, job):
    MicroTaskFactory(video__job=job, job=job)
    f = checkout_funding(job)
    pi = pay_checkout(stripe_server, f)
    event = [
        e for e in stripe_server.state.events.values() if e["type"] == "payment_intent.succeeded"
    ][-1]
    return f, pi, event


def test_bad_signature_is_refused_and_changes_nothing(client, stripe_server, funded_intent):
    f, _, event = funded_intent
    response = signed_post(client, stripe_server, event, secret="whsec_wrong")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert StripeEvent.objects.count() == 0
    assert escrow_balance(job=f.job).funded == 0


def test_tampered_body_is_refused(client, stripe_server, funded_intent, settings):
    import json

    f, _, event = funded_intent
    body = json.dumps(event).encode()
    signature = stripe_server.sign(body, settings.STRIPE_WEBHOOK_SECRET)
    forged = body.replace(b'"amount_received": ', b'"amount_received": 9')
    response = client.generic(
        "POST", "/stripe/webhook/", forged, content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature,
    )  # fmt: skip
    assert response.status_code == 400
    assert escrow_balance(job=f.job).funded == 0


def test_payment_succeeded_credits_escrow_once(
    client, stripe_server, funded_intent, django_capture_on_commit_callbacks
):
    f, pi, event = funded_intent
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert signed_post(client, stripe_server, event).status_code == 200
    assert StripeEvent.objects.filter(stripe_event_id=event["id"]).count() == 1
    stored = StripeEvent.objects.get(stripe_event_id=event["id"])
    assert stored.status == EventStatus.SUCCEEDED
    assert escrow_balance(job=f.job).funded == pi["amount"]
    f.refresh_from_db()
    assert f.status == FundingStatus.SUCCEEDED


def test_same_payment_under_a_new_event_id_still_credits_once(
    client, stripe_server, funded_intent, django_capture_on_commit_callbacks
):
    f, pi, event = funded_intent
    twin = copy.deepcopy(event)
    twin["id"] = "evt_twin"
    with django_capture_on_commit_callbacks(execute=True):
        signed_post(client, stripe_server, event)
        signed_post(client, stripe_server, twin)
    assert StripeEvent.objects.count() == 2
    assert escrow_balance(job=f.job).funded == pi["amount"]


def test_failure_arriving_after_success_does_not_undo_it(
    client, stripe_server, funded_intent, django_capture_on_commit_callbacks
):
    f, pi, event = funded_intent
    failed = stripe_server.emit(
        "payment_intent.payment_failed", {**pi, "status": "requires_payment_method"}
    )
    with django_capture_on_commit_callbacks(execute=True):
        signed_post(client, stripe_server, event)
        signed_post(client, stripe_server, failed)
    f.refresh_from_db()
    assert f.status == FundingStatus.SUCCEEDED
    assert escrow_balance(job=f.job).funded == pi["amount"]


def test_unknown_event_types_are_acknowledged(
    client, stripe_server, django_capture_on_commit_callbacks
):
    event = stripe_server.emit("customer.created", {"id": "cus_1", "object": "customer"})
    with django_capture_on_commit_callbacks(execute=True):
        assert signed_post(client, stripe_server, event).status_code == 200
    assert StripeEvent.objects.get(stripe_event_id=event["id"]).status == EventStatus.IGNORED


def test_account_updates_out_of_order_end_in_stripes_state(
    client, stripe_server, django_capture_on_commit_callbacks
):
    from payments import connect

    worker = WorkerFactory()
    account = connect.connected_account_ensure(worker=worker)
    acct_id = account.stripe_account_id
    enabled = stripe_server.complete_onboarding(acct_id)
    restricted = stripe_server.restrict_account(acct_id)
    stripe_server.complete_onboarding(acct_id)  # the newest state: enabled
    events = [e for e in stripe_server.state.events.values() if e["type"] == "account.updated"]
    assert enabled and restricted and len(events) == 3
    with django_capture_on_commit_callbacks(execute=True):
        for event in reversed(events):  # newest first: the worst order
            r = signed_post(client, stripe_server, event, path="/stripe/webhook/connect/")
            assert r.status_code == 200
    account = ConnectedAccount.objects.get(worker=worker)
    assert account.payouts_enabled and account.transfers_active
    worker.worker_profile.refresh_from_db()
    assert worker.worker_profile.payouts_enabled is True


def test_connect_events_need_the_connect_secret(client, stripe_server, settings):
    event = stripe_server.emit("account.updated", {"id": "acct_x"}, account="acct_x")
    r = signed_post(
        client,
        stripe_server,
        event,
        path="/stripe/webhook/connect/",
        secret=settings.STRIPE_WEBHOOK_SECRET,
    )
    assert r.status_code == 400


def test_transfer_events_out_of_order_settle_the_payout_once(
    client, stripe_server, admin_user, django_capture_on_commit_callbacks
):
    worker = onboarded_worker(stripe_server, available=3_000)
    payout = payouts.payout_create(worker=worker, enqueue=False)
    transfers.payout_submit(payout_id=payout.pk)
    (transfer,) = stripe_server.transfers_for(payout.pk)
    from payments import stripe_gateway as gateway

    gateway.transfer_reverse(
        transfer_id=transfer["id"], amount=1_000, idempotency_key="dash", metadata={}
    )
    events = {
        e["type"]: e
        for e in stripe_server.state.events.values()
        if e["type"].startswith("transfer.")
    }
    with django_capture_on_commit_callbacks(execute=True):
        signed_post(client, stripe_server, events["transfer.reversed"])
        signed_post(client, stripe_server, events["transfer.created"])
        signed_post(client, stripe_server, events["transfer.reversed"])
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.PAID
    assert payout.amount_reversed == 1_000
    assert worker_balances(worker=worker) == {"pending": 0, "available": 1_000, "in_transit": 0}


def test_handler_errors_are_stored_on_the_event(
    client, stripe_server, monkeypatch, django_capture_on_commit_callbacks
):
    from payments import webhooks

    def boom(obj, event):
        raise RuntimeError("handler exploded")

    monkeypatch.setitem(webhooks.HANDLERS["platform"], "balance.available", boom)
    event = stripe_server.emit("balance.available", {"object": "balance"})
    with django_capture_on_commit_callbacks(execute=True):
        assert signed_post(client, stripe_server, event).status_code == 200
    stored = StripeEvent.objects.get(stripe_event_id=event["id"])
    assert stored.status == EventStatus.FAILED and "handler exploded" in stored.error


def test_funding_and_refund_through_stripe(
    client, stripe_server, funded_intent, requester_client, django_capture_on_commit_callbacks
):
    from marketplace.lifecycle import job_transition
    from payments.models import Refund, RefundStatus

    f, pi, event = funded_intent
    with django_capture_on_commit_callbacks(execute=True):
        signed_post(client, stripe_server, event)
    job = job_transition(job=f.job, to="cancelled")
    with django_capture_on_commit_callbacks(execute=True):
        refunds = funding.job_refund_unspent(job=job, actor=job.requester)
    (refund,) = refunds
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED and refund.amount == pi["amount"]
    b = escrow_balance(job=job)
    assert b.available == 0 and b.refunded == pi["amount"] and b.funded == 0
    assert [r["amount"] for r in stripe_server.state.refunds.values()] == [pi["amount"]]
    # The refund.created webhook later changes nothing.
    refund_event = [
        e for e in stripe_server.state.events.values() if e["type"] == "refund.created"
    ][-1]
    with django_capture_on_commit_callbacks(execute=True):
        signed_post(client, stripe_server, refund_event)
    assert escrow_balance(job=job).refunded == pi["amount"]
    assert Refund.objects.count() == 1
    assert Funding.objects.get(pk=f.pk).amount_refunded == pi["amount"]


def test_cancelling_a_funded_job_refunds_its_unspent_escrow_through_stripe(
    client, stripe_server, funded_intent, django_capture_on_commit_callbacks
):
    from marketplace.lifecycle import job_cancel
    from payments.models import Refund, RefundStatus

    f, pi, event = funded_intent
    with django_capture_on_commit_callbacks(execute=True):
        signed_post(client, stripe_server, event)
    with django_capture_on_commit_callbacks(execute=True):
        job = job_cancel(job=f.job, by=f.job.requester)
    assert job.status == "cancelled"
    (refund,) = Refund.objects.filter(job=job)
    assert (refund.status, refund.amount) == (RefundStatus.SUCCEEDED, pi["amount"])
    assert escrow_balance(job=job).available == 0
    assert [r["amount"] for r in stripe_server.state.refunds.values()] == [pi["amount"]]


def test_funding_a_published_job_publishes_the_work_it_now_covers(
    client, stripe_server, django_capture_on_commit_callbacks
):
    from payments.escrow import escrow_fund
    from payments.selectors import slot_reservation_for
    from tasks import claiming
    from tasks.models import Slot
    from tests.tasks.claim_fixtures import ready_job

    job = ready_job(n=4, overlap=1, price=100, budget=0, gold_rate=0.0)
    job.budget = 10**6
    job.save(update_fields=["budget"])
    slot_cost = slot_reservation_for(microtask=job.microtasks.first())
    escrow_fund(job=job, amount=slot_cost, key="seed")  # covers one microtask
    claiming.job_publish(job=job, by=job.requester)
    assert Slot.objects.filter(job=job).count() == 1

    f = checkout_funding(job, amount=slot_cost * 3)
    pay_checkout(stripe_server, f)
    event = [
        e for e in stripe_server.state.events.values() if e["type"] == "payment_intent.succeeded"
    ][-1]
    with django_capture_on_commit_callbacks(execute=True):
        signed_post(client, stripe_server, event)
    assert Slot.objects.filter(job=job).count() == 4
