"""Helpers for the payments tests: funded jobs, reserved assignments, ledger invariants."""

from __future__ import annotations

import itertools

import pytest
from django.db.models import Sum

from payments import escrow, posting
from payments.ledger import AccountKind
from payments.models import LedgerAccount, LedgerEntry, LedgerTransaction
from payments.selectors import slot_reservation_for
from tests.factories import AssignmentFactory, JobFactory, MicroTaskFactory

_keys = itertools.count()


def fund(job, amount: int) -> None:
    escrow.escrow_fund(job=job, amount=amount, key=f"test-fund-{job.pk}-{next(_keys)}")


def reserved_assignment(job, *, worker=None, price: int = 50, active_seconds: float | None = 60):
    """An assignment of ``job`` whose replica slot reserved its amount from escrow."""
    mt = MicroTaskFactory(video__job=job, job=job, price=price)
    amount = slot_reservation_for(microtask=mt)
    escrow.escrow_reserve(job=job, amount=amount, key=f"slot-{mt.pk}-{next(_keys)}")
    extra = {"worker": worker} if worker is not None else {}
    return AssignmentFactory(
        microtask=mt, reserved_amount=amount, active_seconds=active_seconds, **extra
    )


def assert_ledger_consistent() -> None:
    """Invariant 3: every transaction balances, cached balances equal the sum of entries."""
    unbalanced = (
        LedgerTransaction.objects.annotate(total=Sum("entries__amount"))
        .exclude(total=0)
        .exclude(total=None)
    )
    assert list(unbalanced.values_list("key", "total")) == []
    assert (LedgerEntry.objects.aggregate(s=Sum("amount"))["s"] or 0) == 0
    for account in LedgerAccount.objects.filter(kind__in=AccountKind.CACHED_KINDS):
        total = LedgerEntry.objects.filter(account=account).aggregate(s=Sum("amount"))["s"] or 0
        assert account.balance == total, account
        assert account.balance >= 0, account


@pytest.fixture
def job(db):
    return JobFactory(budget=100_000)


@pytest.fixture
def funded_job(job):
    fund(job, 10_000)
    return job


# --- the local Stripe server -----------------------------------------------------------------


@pytest.fixture
def stripe_server(settings):
    """The local Stripe test double on a free loopback port, with the SDK pointed at it."""
    from stripe_local import LocalStripe

    server = LocalStripe(
        api_key=settings.STRIPE_SECRET_KEY, auto_deliver=False, initial_available=10_000_000
    ).start()
    settings.STRIPE_API_BASE = server.api_base
    settings.STRIPE_TIMEOUT_SECONDS = 2.0
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    try:
        yield server
    finally:
        server.stop()


def onboarded_worker(stripe_server, *, available: int = 0, country: str = "US"):
    """A worker with a connected account that can receive transfers, and ``available`` money."""
    from payments import connect
    from payments.models import TxKind
    from tests.factories import WorkerFactory

    worker = WorkerFactory(profile__country=country)
    account = connect.connected_account_ensure(worker=worker)
    stripe_server.complete_onboarding(account.stripe_account_id)
    connect.connected_account_sync(stripe_account_id=account.stripe_account_id)
    if available:
        credit_available(worker, available, kind=TxKind.HOLD_RELEASE)
    return worker


def credit_available(worker, amount: int, *, kind: str = "hold_release") -> None:
    """Give a worker available earnings, as if approved work had left its hold period."""
    clearing = posting.ledger_account(kind=AccountKind.PLATFORM_REVENUE, currency="usd")
    available = posting.ledger_account(
        kind=AccountKind.WORKER_AVAILABLE, currency="usd", worker=worker
    )
    posting.ledger_post(
        key=f"test-earn-{worker.pk}-{next(_keys)}",
        kind=kind,
        currency="usd",
        entries=[(clearing, -amount), (available, amount)],
        worker=worker,
    )


def signed_post(client, server, event: dict, *, path: str = "/stripe/webhook/", secret=None):
    import json

    from django.conf import settings

    body = json.dumps(event).encode()
    secret = secret or (
        settings.STRIPE_CONNECT_WEBHOOK_SECRET
        if path.endswith("connect/")
        else settings.STRIPE_WEBHOOK_SECRET
    )
    return client.generic(
        "POST",
        path,
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=server.sign(body, secret),
    )


# --- Stripe Checkout -------------------------------------------------------------------------

RETURN_URL = "http://testserver/requester/jobs/funding/"  # where Checkout sends the payer back
CARD_SUCCEEDS = "4242 4242 4242 4242"
CARD_DECLINED = "4000 0000 0000 0002"


def checkout_funding(job, *, amount=None, fit_budget=False):
    """A funding of ``job`` by its requester: a Checkout Session at Stripe, unpaid."""
    from tasks import paying

    return paying.job_funding_create(
        job=job,
        requester=job.requester,
        return_url=RETURN_URL,
        amount=amount,
        fit_budget=fit_budget,
    )


def pay_checkout(stripe_server, funding, card: str = CARD_SUCCEEDS) -> dict:
    """The payer submits ``card`` on the session's test payment page; returns Stripe's
    PaymentIntent for the session as it stands after (succeeded, or declined and unpaid)."""
    import copy

    stripe_server.pay_checkout_session(funding.stripe_checkout_session_id, card)
    with stripe_server.state.lock:
        session = stripe_server.state.checkout_sessions[funding.stripe_checkout_session_id]
        return copy.deepcopy(stripe_server.state.payment_intents[session["payment_intent"]])


def events_of(stripe_server, type_: str, object_id: str | None = None) -> list[dict]:
    with stripe_server.state.lock:
        return [
            e
            for e in stripe_server.state.events.values()
            if e["type"] == type_ and object_id in (None, e["data"]["object"]["id"])
        ]
