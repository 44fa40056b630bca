"""Invariant 1 under real concurrency on PostgreSQL: many claimers exhaust a job with overlap 3
while others release and abandon claims and an expirer returns overdue ones to the pool."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from marketplace.errors import NothingAvailable
from tasks import claiming
from tasks.models import LIVE_OR_FINISHED, Assignment, AssignmentStatus, MicroTask, Slot
from tests.tasks.claim_fixtures import published_job, qualified_worker

FINISHED = (AssignmentStatus.SUBMITTED, AssignmentStatus.APPROVED, AssignmentStatus.REJECTED)
CLAIMERS = 36
MICROTASKS = 80
OVERLAP = 3


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_fill_every_slot_exactly_once_with_releases_and_expiries():
    job = published_job(n=MICROTASKS, overlap=OVERLAP, gold_rate=0.0)
    workers = [qualified_worker() for _ in range(CLAIMERS)]
    n_slots = Slot.objects.filter(job=job).count()
    assert n_slots == MICROTASKS * OVERLAP

    errors: list[BaseException] = []
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    stop = threading.Event()
    start = threading.Barrier(CLAIMERS + 1)

    def done() -> bool:
        return (
            not Slot.objects.filter(job=job, assignment__isnull=True).exists()
            and not Assignment.objects.filter(status=AssignmentStatus.CLAIMED).exists()
        )

    def claimer(worker, seed: int) -> None:
        rng = random.Random(seed)
        try:
            start.wait()
            while not stop.is_set():
                try:
                    a = claiming.assignment_claim(worker=worker)
                except NothingAvailable:
                    if done():
                        return
                    time.sleep(0.01)
                    continue
                roll = rng.random()
                if roll < 0.12:
                    claiming.assignment_release(worker=worker, assignment_id=a.pk)
                    kind = "released"
                elif roll < 0.22:
                    # Abandon: time passes beyond the deadline; the expirer takes it back.
                    Assignment.objects.filter(pk=a.pk).update(
                        deadline=timezone.now() - timedelta(seconds=1)
                    )
                    kind = "abandoned"
                else:
                    claiming.assignment_submit(
                        worker=worker, assignment_id=a.pk, payload={"boxes": []}
                    )
                    kind = "submitted"
                with lock:
                    outcomes[kind] += 1
        except BaseException as exc:  # surfaced by the assertion below
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    def expirer() -> None:
        try:
            start.wait()
            while not stop.is_set():
                n = claiming.assignments_expire_overdue(batch=7)
                with lock:
                    outcomes["expired"] += n
                time.sleep(0.005)
        except BaseException as exc:
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer, args=(w, i)) for i, w in enumerate(workers)]
    exp = threading.Thread(target=expirer)
    for t in [*threads, exp]:
        t.start()
    deadline = time.monotonic() + 240
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    stop.set()
    exp.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "claimers did not finish (deadlock?)"
    assert errors == []

    # Every slot filled exactly once, by finished work (submitted, or already approved or
    # rejected by quality's consensus) that points back at it. Dynamic overlap may have added
    # replicas (and slots) on the way; they are held to the same rule.
    slots = list(Slot.objects.filter(job=job).select_related("assignment"))
    assert len(slots) >= n_slots
    assert all(s.assignment is not None for s in slots)
    assert all(s.assignment.status in FINISHED for s in slots)
    assert all(s.assignment.slot_id == s.pk for s in slots)
    assert len({s.assignment_id for s in slots}) == len(slots)
    per_mt = (
        MicroTask.objects.filter(job=job)
        .annotate(live=Count("assignments", filter=Q(assignments__status__in=LIVE_OR_FINISHED)))
        .values_list("live", "replica_target")
    )
    assert all(live == target >= OVERLAP for live, target in per_mt)
    pairs = Assignment.objects.values("microtask", "worker").annotate(n=Count("id"))
    assert max(p["n"] for p in pairs) == 1
    # Bookkeeping adds up, and the mix really happened.
    by_status = Counter(Assignment.objects.values_list("status", flat=True))
    assert sum(by_status[s] for s in FINISHED) == len(slots) == outcomes["submitted"]
    assert by_status[AssignmentStatus.RELEASED] == outcomes["released"] > 0
    assert by_status[AssignmentStatus.EXPIRED] == outcomes["abandoned"] == outcomes["expired"] > 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_one_worker_claiming_from_many_tabs_at_once_never_holds_a_microtask_twice(settings):
    """The same worker racing themselves: each claim gets a different microtask or nothing."""
    settings.CLAIM_MAX_CONCURRENT = 10  # above the six microtasks: the cap is not what stops them
    job = published_job(n=6, overlap=3, gold_rate=0.0)
    worker = qualified_worker()
    got: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def tab() -> None:
        try:
            start.wait()
            for _ in range(3):
                try:
                    a = claiming.assignment_claim(worker=worker)
                except NothingAvailable:
                    return
                with lock:
                    got.append(a.microtask_id)
        except BaseException as exc:
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=tab) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(got) == sorted(set(got)) and len(got) == 6
    assert Assignment.objects.filter(microtask__job=job, worker=worker).count() == 6
