"""Invariant 2 under real concurrency: threads reserving and paying never overspend a job."""

from __future__ import annotations

import random
import threading

import pytest
from django.db import connection

from payments import escrow
from payments.errors import InsufficientEscrow
from payments.selectors import escrow_balance, slot_reservation_for
from tasks import paying
from tests.factories import AssignmentFactory, JobFactory, MicroTaskFactory, WorkerFactory
from tests.payments.conftest import assert_ledger_consistent, fund


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_reserving_and_paying_never_exceeds_funded_escrow():
    job = JobFactory()
    threads_n, per_thread = 8, 6
    microtasks = [MicroTaskFactory(video__job=job, job=job, price=80) for _ in range(threads_n)]
    workers = [WorkerFactory() for _ in range(threads_n * per_thread)]
    slot = slot_reservation_for(microtask=microtasks[0])
    # Enough for about half the attempts, so reservations and fair-pay top-ups (which draw on
    # available escrow) compete for the last cents.
    funded = slot * (threads_n * per_thread) // 2 + slot // 3
    fund(job, funded)
    barrier = threading.Barrier(threads_n)
    outcomes: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(t: int) -> None:
        rng = random.Random(t)
        try:
            barrier.wait()
            for i in range(per_thread):
                worker = workers[t * per_thread + i]
                try:
                    escrow.escrow_reserve(job=job, amount=slot, key=f"t{t}:slot{i}")
                except InsufficientEscrow:
                    with lock:
                        outcomes.append("refused")
                    continue
                a = AssignmentFactory(
                    microtask=microtasks[t],
                    worker=worker,
                    reserved_amount=slot,
                    active_seconds=rng.choice([5, 60, 900]),
                )
                if rng.random() < 0.75:
                    paying.assignment_pay(assignment=a, credit=rng.choice([1.0, 0.5]))
                    with lock:
                        outcomes.append("paid")
                else:
                    paying.assignment_unpaid(assignment=a)
                    with lock:
                        outcomes.append("unpaid")
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(t,)) for t in range(threads_n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert errors == []
    assert len(outcomes) == threads_n * per_thread
    assert "refused" in outcomes and "paid" in outcomes
    b = escrow_balance(job=job)
    assert b.funded == funded
    assert b.available >= 0 and b.reserved == 0
    assert b.reserved + b.paid + b.fees <= b.funded
    assert b.funded == b.available + b.reserved + b.paid + b.fees
    assert_ledger_consistent()
