"""The local Stripe double behaves like Stripe where we rely on it (real SDK, real HTTP)."""

from __future__ import annotations

import json

import pytest

from payments import stripe_gateway as gateway
from payments.errors import (
    StripeError,
    StripeIdempotencyError,
    StripeRateLimited,
    StripeRequestRefused,
    StripeTimeout,
)
from stripe_local import decode_form
from stripe_local.server import FIXTURES


def _account(server):
    acct = gateway.account_create(
        email="w@example.test", country="US", worker_id=1, idempotency_key="a1"
    )
    server.complete_onboarding(acct["id"])
    return acct["id"]


def test_form_decoding_handles_stripe_brackets():
    assert decode_form("a[b][c]=1&l[0]=x&l[1]=y&n=2") == {
        "a": {"b": {"c": "1"}},
        "l": ["x", "y"],
        "n": "2",
    }


def test_objects_have_the_published_shape(stripe_server):
    acct = _account(stripe_server)
    tr = gateway.transfer_create(
        amount=700,
        currency="usd",
        destination=acct,
        idempotency_key="t1",
        metadata={"payout_id": "9"},
    )
    assert set(FIXTURES["transfer"]) <= set(tr)
    assert tr["object"] == "transfer" and tr["metadata"] == {"payout_id": "9"}
    assert set(FIXTURES["account"]) <= set(gateway.account_retrieve(acct))
    assert set(FIXTURES["balance"]) <= set(gateway.balance_retrieve())


def test_same_key_same_params_replays_the_stored_response(stripe_server):
    acct = _account(stripe_server)
    kwargs = dict(amount=700, currency="usd", destination=acct, metadata={"payout_id": "1"})
    first = gateway.transfer_create(idempotency_key="payout:1:1", **kwargs)
    second = gateway.transfer_create(idempotency_key="payout:1:1", **kwargs)
    assert first["id"] == second["id"]
    assert len(stripe_server.transfers_for(1)) == 1


def test_same_key_other_params_is_an_idempotency_error(stripe_server):
    acct = _account(stripe_server)
    gateway.transfer_create(
        amount=700,
        currency="usd",
        destination=acct,
        idempotency_key="k",
        metadata={"payout_id": "1"},
    )
    with pytest.raises(StripeIdempotencyError):
        gateway.transfer_create(
            amount=701,
            currency="usd",
            destination=acct,
            idempotency_key="k",
            metadata={"payout_id": "1"},
        )
    assert len(stripe_server.transfers_for(1)) == 1


def test_timeout_after_commit_leaves_the_transfer_and_the_key_recovers_it(stripe_server, settings):
    acct = _account(stripe_server)
    settings.STRIPE_TIMEOUT_SECONDS = 0.5
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    stripe_server.faults.forced = ["timeout_after_commit"]
    stripe_server.faults.timeout_seconds = 1.0
    kwargs = dict(amount=300, currency="usd", destination=acct, metadata={"payout_id": "5"})
    with pytest.raises(StripeTimeout):
        gateway.transfer_create(idempotency_key="payout:5:1", **kwargs)
    assert len(stripe_server.transfers_for(5)) == 1  # committed despite the timeout
    again = gateway.transfer_create(idempotency_key="payout:5:1", **kwargs)
    assert [t["id"] for t in stripe_server.transfers_for(5)] == [again["id"]]


@pytest.mark.parametrize(
    ("fault", "error"),
    [("500", StripeError), ("429", StripeRateLimited), ("drop_before", StripeTimeout)],
)
def test_faults_become_our_errors_and_commit_nothing(stripe_server, settings, fault, error):
    acct = _account(stripe_server)
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    settings.STRIPE_RATE_LIMIT_RETRIES = 0  # a 429 is re-sent otherwise (tests/faults)
    stripe_server.faults.forced = [fault]
    with pytest.raises(error):
        gateway.transfer_create(
            amount=300,
            currency="usd",
            destination=acct,
            idempotency_key="f",
            metadata={"payout_id": "6"},
        )
    assert stripe_server.transfers_for(6) == []


def test_sdk_network_retries_reuse_the_key(stripe_server, settings):
    acct = _account(stripe_server)
    settings.STRIPE_MAX_NETWORK_RETRIES = 2
    stripe_server.faults.forced = ["drop_after_commit", "500"]
    tr = gateway.transfer_create(
        amount=300,
        currency="usd",
        destination=acct,
        idempotency_key="r",
        metadata={"payout_id": "7"},
    )
    assert [t["id"] for t in stripe_server.transfers_for(7)] == [tr["id"]]


def test_balance_insufficient_is_a_definite_refusal(stripe_server):
    acct = _account(stripe_server)
    stripe_server.state.available = 100
    with pytest.raises(StripeRequestRefused) as err:
        gateway.transfer_create(
            amount=300, currency="usd", destination=acct, idempotency_key="b", metadata={}
        )
    assert err.value.stripe_code == "balance_insufficient"


def test_transfers_list_paginates(stripe_server):
    acct = _account(stripe_server)
    for i in range(7):
        gateway.transfer_create(
            amount=10,
            currency="usd",
            destination=acct,
            idempotency_key=f"p{i}",
            metadata={"i": str(i)},
        )
    listed = list(gateway.transfers_list(page_size=3))
    assert len(listed) == 7 == len({t["id"] for t in listed})


def test_webhooks_are_signed_like_stripe(stripe_server, settings):
    event = stripe_server.emit("balance.available", {"object": "balance"})
    body = json.dumps(event).encode()
    parsed = gateway.event_construct(
        payload=body, signature=stripe_server.sign(body, "whsec_x"), secret="whsec_x"
    )
    assert parsed["id"] == event["id"]


def test_handling_time_counts_overlapping_requests_once(stripe_server, settings):
    """Benchmarks subtract ``busy_union_seconds``: concurrent handling must not count twice."""
    import threading
    import time

    settings.STRIPE_TIMEOUT_SECONDS = 5
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    stripe_server.faults.timeout_seconds = 0.6
    stripe_server.faults.forced = ["timeout_after_commit", "timeout_after_commit"]
    dest = _account(stripe_server)
    union0, sum0 = stripe_server.busy_union_seconds, stripe_server.busy_seconds

    def stalled(i: int) -> None:
        with pytest.raises(StripeTimeout):
            gateway.transfer_create(
                amount=100 + i,
                currency="usd",
                destination=dest,
                idempotency_key=f"overlap-{i}",
                metadata={},
            )

    threads = [threading.Thread(target=stalled, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # The client sees the dropped connection just before the server's handler books its time.
    deadline = time.monotonic() + 5
    while stripe_server._in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    union = stripe_server.busy_union_seconds - union0
    total = stripe_server.busy_seconds - sum0
    assert total >= 1.2  # two stalls of 0.6 s, summed
    assert 0.6 <= union < 1.0  # ... which overlapped: counted once
