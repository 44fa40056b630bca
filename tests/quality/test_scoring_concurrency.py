"""Scoring under real concurrency on PostgreSQL (issue #16's end-to-end findings).

Two ``submission_process`` of one job on two threads, each in its own database connection,
with the interleaving that deadlocked in the end-to-end run forced by a pause point: the first
scoring suspends a worker (a failed gold check) while the second scores a microtask holding
that worker's work. Before the fix the first held the job row (``select_for_update`` with
``select_related("job")``) and the second waited for it while holding its microtask, which the
suspension's extra replica then updated: a deadlock. After it neither waits on the other in a
cycle, and the result is the one a serial run gives.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from quality import services
from quality.models import GoldResult, WorkerTrust
from quality.receivers import on_submission_stored
from quality.services import evidence
from quality.simulator import PRECISE, SPAMMER
from tasks import signals
from tasks.models import Assignment, AssignmentStatus, MicroTask, MicroTaskStatus
from tests.faults.invariants import assert_invariants
from tests.locking import someone_waits_on_a_lock
from tests.quality.test_services import claim_and_submit

pytestmark = pytest.mark.django_db(transaction=True)

DEADLINE_SECONDS = 15


def test_two_scorings_of_one_job_with_a_suspension_do_not_deadlock(
    world_factory, workers, monkeypatch
):
    world = world_factory(n=2, gold=1, overlap=2, overlap_max=5, gold_rate=0.5)
    bad, honest = workers(2)
    # Store the submissions without scoring them: the two scorings run below, concurrently.
    signals.submission_stored.disconnect(dispatch_uid="quality.on_submission_stored")
    try:
        from tasks import claiming

        monkeypatch.setattr(claiming._rng, "random", lambda: 0.0)  # gold first
        gold_work = claim_and_submit(world, bad, SPAMMER, seed=2)
        assert MicroTask.objects.get(pk=gold_work.microtask_id).is_gold
        monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)  # no gold
        bad_regular = claim_and_submit(world, bad, PRECISE, seed=3)
        honest_regular = claim_and_submit(world, honest, PRECISE, seed=4)
    finally:
        signals.submission_stored.connect(
            on_submission_stored, dispatch_uid="quality.on_submission_stored"
        )
    assert bad_regular.microtask_id == honest_regular.microtask_id
    # Two gold failures already: the third (the scoring below) suspends the worker.
    for k in range(2):
        services.trust_record(
            worker=bad, annotation_type="bbox", kind="gold", score=0.0, note=f"gold {k}"
        )
    assert not WorkerTrust.objects.get(worker=bad, annotation_type="bbox").suspended

    first_paused = threading.Event()
    second_done = threading.Event()
    suspend = evidence.worker_suspend_from_type

    def paused_suspend(**kwargs):
        # The first scoring holds its microtask and the worker's trust row here; let the second
        # one run into whatever it has to wait for before the suspension goes on.
        first_paused.set()
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline and not second_done.is_set():
            if someone_waits_on_a_lock():
                break
            time.sleep(0.02)
        return suspend(**kwargs)

    monkeypatch.setattr(evidence, "worker_suspend_from_type", paused_suspend)
    errors: list[BaseException] = []
    outcomes: dict[str, str] = {}

    def run(name: str, submission_id: int, after: threading.Event | None) -> None:
        try:
            if after is not None:
                assert after.wait(DEADLINE_SECONDS), "the first scoring never reached its pause"
            outcomes[name] = services.submission_process(submission_id=submission_id)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            if name == "second":
                second_done.set()
            connection.close()

    threads = [
        threading.Thread(target=run, args=("first", gold_work.submission.pk, None)),
        threading.Thread(target=run, args=("second", honest_regular.submission.pk, first_paused)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE_SECONDS * 3)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert outcomes == {"first": "gold failed", "second": "accepted"}

    # The result a serial run gives: the bad worker failed gold and is suspended; the agreed
    # microtask is complete and both of its replicas approved (the suspension came after their
    # consensus was decided); nothing else was opened or reopened.
    assert WorkerTrust.objects.get(worker=bad, annotation_type="bbox").suspended
    assert not GoldResult.objects.get(assignment=gold_work).passed
    assert Assignment.objects.get(pk=gold_work.pk).status == AssignmentStatus.REJECTED
    mt = MicroTask.objects.get(pk=honest_regular.microtask_id)
    assert mt.status == MicroTaskStatus.COMPLETE
    assert mt.replica_target == 2
    for a in (bad_regular, honest_regular):
        assert Assignment.objects.get(pk=a.pk).status == AssignmentStatus.APPROVED
    assert_invariants()
