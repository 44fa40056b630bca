"""Invariant 4 end to end: a payout run over many workers, the Celery worker SIGKILLed and
restarted while the local Stripe server injects ~10% faults (timeouts after commit included):
every payout ends with exactly one transfer, no one is paid twice or left unpaid, and the ledger
balances to zero."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
from django.db.models import Sum

from payments.ledger import AccountKind
from payments.models import LedgerAccount, LedgerEntry, Payout, PayoutStatus
from tests.conftest import ROOT, subprocess_env
from tests.payments.conftest import assert_ledger_consistent, onboarded_worker


def _start_worker(stripe_base: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "marketplace", "worker",
            "--pool=threads", "--concurrency=4", "--loglevel=WARNING",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ],
        cwd=ROOT,
        env=subprocess_env(
            STRIPE_API_BASE=stripe_base,
            STRIPE_TIMEOUT_SECONDS="1.0",
            STRIPE_MAX_NETWORK_RETRIES="1",
            LOG_LEVEL="WARNING",
        ),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


def _wait_ready(app, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited with {proc.returncode}")
        try:
            if app.control.ping(timeout=0.5):
                return
        except Exception:
            pass
    raise RuntimeError("celery worker did not answer a ping within 30 s")


def _kill(proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_payout_run_is_exactly_once_through_sigkill_and_faults(stripe_server, settings):
    from marketplace.celery import app
    from payments.tasks import payout_run_task, payouts_reconcile_task, payouts_resume_task

    rng = random.Random(2026)
    workers = {}
    for _ in range(40):
        amount = rng.randint(settings.PAYOUT_MINIMUM, 20_000)
        workers[onboarded_worker(stripe_server, available=amount).pk] = amount
    # Faults only from now on: ~10% of transfer requests, plus a few forced at the start.
    stripe_server.faults.rate = 0.10
    stripe_server.faults.seed = 7
    stripe_server.faults.timeout_seconds = 1.5
    stripe_server.faults.forced = ["timeout_after_commit", "drop_after_commit", "500", "429"]
    stripe_server.faults.__post_init__()

    previous_eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    app.control.purge()
    proc = _start_worker(stripe_server.api_base)
    killed_at = None
    try:
        _wait_ready(app, proc)
        payout_run_task.delay(None, "exactly-once test")
        # Kill the worker mid-run: once some but not all transfers exist.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            made = len(stripe_server.state.transfers)
            if made >= 8:
                break
            time.sleep(0.05)
        killed_at = len(stripe_server.state.transfers)
        _kill(proc)
        assert 0 < killed_at < len(workers), "the kill must land in the middle of the run"
        proc = _start_worker(stripe_server.api_base)
        _wait_ready(app, proc)
        # What beat and an admin re-run do: run again (skips open payouts), resume, reconcile.
        payout_run_task.delay(None, "re-run after crash")
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            payouts_resume_task.delay(0)
            payouts_reconcile_task.delay()
            time.sleep(2.0)
            settled = Payout.objects.filter(status=PayoutStatus.PAID).count()
            if (
                settled == len(workers)
                and not Payout.objects.exclude(status=PayoutStatus.PAID).exists()
            ):
                break
    finally:
        _kill(proc)
        app.control.purge()
        app.conf.task_always_eager = previous_eager

    injected = stripe_server.faults.injected
    assert injected.get("timeout_after_commit", 0) >= 1 and sum(injected.values()) >= 4
    payouts = list(Payout.objects.all())
    assert {p.status for p in payouts} == {PayoutStatus.PAID}
    # One payout per worker, for exactly their balance; exactly one transfer per payout.
    assert sorted(p.worker_id for p in payouts) == sorted(workers)
    for p in payouts:
        assert p.amount == workers[p.worker_id]
        transfers = stripe_server.transfers_for(p.pk)
        assert len(transfers) == 1, (p.pk, transfers)
        assert transfers[0]["id"] == p.stripe_transfer_id
        assert transfers[0]["amount"] == p.amount
    assert len(stripe_server.state.transfers) == len(workers)
    # Per destination too: nobody received two transfers.
    destinations = [t["destination"] for t in stripe_server.state.transfers.values()]
    assert len(destinations) == len(set(destinations))
    # The ledger balances to zero; nothing stuck in transit or left available.
    assert (LedgerEntry.objects.aggregate(s=Sum("amount"))["s"] or 0) == 0
    for kind in (AccountKind.WORKER_AVAILABLE, AccountKind.WORKER_IN_TRANSIT):
        assert (LedgerAccount.objects.filter(kind=kind).aggregate(s=Sum("balance"))["s"] or 0) == 0
    assert_ledger_consistent()
    assert settings.PAYOUT_MINIMUM > 0
