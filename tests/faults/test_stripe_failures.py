"""Fault: the Stripe server fails (5xx), times out and rate-limits (429) during payouts.

Stripe is the local double over real HTTP (``stripe_local``) with its fault switches: forced
answers for the next requests (with ``Retry-After`` / ``Stripe-Should-Retry`` headers) and
Stripe's own rate limit of 25 requests/s per endpoint. Each test ends with every invariant
checked, Stripe's transfers included: one per payout, whatever happened on the way.
"""

from __future__ import annotations

import time

import pytest

from payments import payouts, transfers
from payments.models import Payout, PayoutStatus
from tests.faults.invariants import assert_invariants
from tests.payments.conftest import onboarded_worker

pytestmark = pytest.mark.django_db(transaction=True)

STRIPE_LIMIT = 25  # requests per second per endpoint, Stripe's live-mode limit
TRANSFERS = "POST /v1/transfers"


def _max_per_second(times: list[float]) -> int:
    """The most requests in any sliding (half-open) second."""
    best, first = 0, 0
    for last, t in enumerate(times):
        while times[first] <= t - 1.0:
            first += 1
        best = max(best, last - first + 1)
    return best


def _transfer_times(server) -> list[float]:
    return [t for t, endpoint in server.request_times if endpoint == TRANSFERS]


def _submit_until_settled(payout_id: int, *, deadline_seconds: float = 30.0):
    """What the Celery retries do: submit again (same key) while the result says retry."""
    deadline = time.monotonic() + deadline_seconds
    results = []
    while True:
        results.append(transfers.payout_submit(payout_id=payout_id))
        if not results[-1].retry:
            return results
        assert time.monotonic() < deadline, results


def test_a_payout_run_stays_under_stripes_rate_limit(stripe_server, settings):
    stripe_server.faults.rate_limit_per_second = STRIPE_LIMIT
    settings.STRIPE_REQUESTS_PER_SECOND = 20.0
    settings.PAYOUT_SUBMIT_THREADS = 4
    workers = [onboarded_worker(stripe_server, available=1_000) for _ in range(40)]
    runs = payouts.payout_runs_start(note="rate limit")  # the batch runs on commit (eager)
    assert sum(run.payouts_created for run in runs.values()) == len(workers)

    assert stripe_server.faults.rate_limited == 0
    times = _transfer_times(stripe_server)
    assert len(times) == len(workers)
    assert _max_per_second(times) <= STRIPE_LIMIT
    for endpoint in {e for _, e in stripe_server.request_times}:
        per = [t for t, e in stripe_server.request_times if e == endpoint]
        assert _max_per_second(per) <= STRIPE_LIMIT, endpoint
    assert set(Payout.objects.values_list("status", flat=True)) == {PayoutStatus.SUBMITTED}
    assert_invariants(stripe_server=stripe_server)


def test_5xx_then_429_then_a_timeout_end_in_one_transfer(stripe_server, settings):
    worker = onboarded_worker(stripe_server, available=2_000)
    payout = payouts.payout_create(worker=worker, enqueue=False)
    faults = stripe_server.faults
    faults.match = TRANSFERS
    faults.retry_after = "1"
    faults.timeout_seconds = settings.STRIPE_TIMEOUT_SECONDS + 0.5
    faults.forced = ["500", "429", "timeout_after_commit", "500", "500"]

    results = _submit_until_settled(payout.pk)

    assert results[-1].status == PayoutStatus.SUBMITTED
    assert any(r.retry for r in results)  # the transient failures were retried, not fatal
    assert faults.forced == []
    assert len(stripe_server.transfers_for(payout.pk)) == 1
    # The 429 (the second request: the SDK re-sent the 500'd one) was honoured: the request
    # after it waited its Retry-After.
    times = _transfer_times(stripe_server)
    assert times[2] - times[1] >= 1.0
    payout.refresh_from_db()
    assert payout.attempt == 1  # never a new key: a transfer may have existed all along
    assert_invariants(stripe_server=stripe_server)


def test_a_429_that_says_do_not_retry_is_left_for_later(stripe_server):
    worker = onboarded_worker(stripe_server, available=2_000)
    payout = payouts.payout_create(worker=worker, enqueue=False)
    faults = stripe_server.faults
    faults.match = TRANSFERS
    faults.should_retry = "false"
    faults.forced = ["429"]

    first = transfers.payout_submit(payout_id=payout.pk)
    assert first.retry
    assert len(_transfer_times(stripe_server)) == 1  # not re-sent at once
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.PENDING
    assert "rate limited" in payout.last_error

    second = transfers.payout_submit(payout_id=payout.pk)
    assert second.status == PayoutStatus.SUBMITTED
    assert len(stripe_server.transfers_for(payout.pk)) == 1
    assert_invariants(stripe_server=stripe_server)
