"""Payments have a Celery queue of their own (``CELERY_TASK_ROUTES``): ``bench/load`` saw a payout
run wait behind 687 scoring tasks in the one queue there was.

A real worker over the real Redis broker, started the way development and the suite start one
(no ``-Q``: it consumes every queue of ``CELERY_TASK_QUEUES``). The default queue holds a backlog
of scoring messages; a payout run sent after them goes to the payments queue and moves the money
(its transfer on the local Stripe server) while most of that backlog still waits.
"""

from __future__ import annotations

import contextlib
import time

import pytest
from celery import current_app
from django.conf import settings

from payments.models import Payout, PayoutStatus
from payments.tasks import payout_run_task
from quality.tasks import process_submission
from tests.conftest import celery_workers
from tests.payments.conftest import onboarded_worker

pytestmark = pytest.mark.django_db(transaction=True)

BACKLOG = 2_000


def _queue_lengths() -> dict[str, int]:
    with current_app.connection_for_read() as conn:
        client = conn.default_channel.client
        return {q.name: client.llen(q.name) for q in current_app.conf.task_queues}


def _purge() -> None:
    with current_app.connection_for_write() as conn:
        for q in current_app.conf.task_queues:
            conn.default_channel.queue_purge(q.name)


@pytest.fixture
def queues():
    previous = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = False
    _purge()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            _purge()
        current_app.conf.task_always_eager = previous


def test_a_payout_run_is_routed_to_the_payments_queue_and_runs_while_scoring_is_backlogged(
    queues, stripe_server
):
    worker = onboarded_worker(stripe_server, available=1_000)
    # The scoring backlog: process_submission messages (for a submission that does not exist, so
    # each is a quick "missing"), sent through one producer as the web processes send them.
    scoring = process_submission
    with current_app.producer_or_acquire() as producer:
        for _ in range(BACKLOG):
            scoring.apply_async((0,), producer=producer)
    run = payout_run_task.apply_async(kwargs={"note": "queue test"})
    assert _queue_lengths() == {"celery": BACKLOG, settings.PAYMENTS_QUEUE: 1}

    with celery_workers(1, STRIPE_API_BASE=stripe_server.api_base):
        outcome = run.get(timeout=60)
        assert outcome["payouts"] == 1
        deadline = time.monotonic() + 60
        while Payout.objects.filter(status=PayoutStatus.PENDING).exists():
            assert time.monotonic() < deadline, "the payout's transfer was not submitted"
            time.sleep(0.05)
        waiting = _queue_lengths()["celery"]

    payout = Payout.objects.get(worker=worker)
    assert payout.status == PayoutStatus.SUBMITTED
    assert len(stripe_server.transfers_for(payout.pk)) == 1
    # The money moved while most of the scoring backlog was still queued (one queue: after all
    # of it).
    assert waiting > BACKLOG // 2, waiting
