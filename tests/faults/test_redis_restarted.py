"""Fault: Redis (the Celery broker) restarts while a worker is scoring submissions.

A private ``redis-server`` (never the shared one) without persistence, as a cache-like broker
is often run: the restart loses every message it held. A real worker (prefork) and this test
both use it. Half the scoring tasks are sent, Redis is stopped and started again under the
worker's feet, the other half is sent after the restart. The worker reconnects by itself (same
process); messages the restart lost are caught up by the submission outbox's straggler sweep
(``quality.process_stragglers``, run by beat; here sent once the sweep's delay has passed). In
the end every submission is scored exactly once and every invariant holds.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.utils import timezone

from marketplace.celery import app
from quality.models import ConsensusResult
from quality.receivers import on_submission_stored
from quality.services.processing import STRAGGLER_AFTER
from quality.simulator import PRECISE
from tasks import claiming, signals
from tasks.models import Assignment, AssignmentStatus, MicroTask, MicroTaskStatus, Submission
from tests.faults.invariants import assert_invariants
from tests.quality.conftest import make_world
from tests.quality.test_services import claim_and_submit
from tests.tasks.claim_fixtures import qualified_worker

DEADLINE_SECONDS = 90
MICROTASKS = 8


def _poll(condition, what: str, *, seconds: float = DEADLINE_SECONDS):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_redis_restarted_during_a_run_of_scoring_tasks(
    private_redis, celery_worker_factory, monkeypatch
):
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)  # no gold
    world = make_world(n=MICROTASKS, overlap=2, overlap_max=3)
    crowd = [qualified_worker("bbox") for _ in range(2)]
    signals.submission_stored.disconnect(dispatch_uid="quality.on_submission_stored")
    try:
        for i in range(MICROTASKS):
            for k, w in enumerate(crowd):
                claim_and_submit(world, w, PRECISE, seed=10 * i + k)
    finally:
        signals.submission_stored.connect(
            on_submission_stored, dispatch_uid="quality.on_submission_stored"
        )
    ids = sorted(Submission.objects.values_list("pk", flat=True))
    assert len(ids) == 2 * MICROTASKS

    worker = celery_worker_factory(broker_url=private_redis.url)
    first, second = ids[: len(ids) // 2], ids[len(ids) // 2 :]
    for pk in first:
        app.send_task("quality.process_submission", args=(pk,))
    _poll(
        lambda: Submission.objects.filter(processed_at__isnull=False).exists(),
        "the first scoring",
    )
    private_redis.stop()  # every queued and unacknowledged message is gone with it
    private_redis.start()
    for pk in second:
        app.send_task("quality.process_submission", args=(pk,))
    _poll(
        lambda: not Submission.objects.filter(pk__in=second, processed_at__isnull=True).exists(),
        "the tasks sent after the restart",
    )
    # What the restart lost is waiting in the outbox; once the sweep's delay has passed (time
    # moves, nothing else), beat's sweep scores it.
    Submission.objects.filter(processed_at__isnull=True).update(
        created_at=timezone.now() - STRAGGLER_AFTER - timedelta(seconds=1)
    )
    app.send_task("quality.process_stragglers")
    _poll(
        lambda: not Submission.objects.filter(processed_at__isnull=True).exists(),
        "the straggler sweep",
    )
    assert worker.proc.poll() is None  # the same worker rode out the restart

    for mt in MicroTask.objects.filter(job=world.job, is_gold=False):
        assert mt.status == MicroTaskStatus.COMPLETE, mt
        assert ConsensusResult.objects.filter(microtask=mt, is_current=True).count() == 1
    assert set(Assignment.objects.values_list("status", flat=True)) == {AssignmentStatus.APPROVED}
    assert_invariants()
