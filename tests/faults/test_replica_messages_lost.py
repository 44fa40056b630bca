"""Fault: the work that gives a microtask its extra replica is lost on the way (issue #16: "a
raised target always gets its slot (funded) or goes to review; no microtask waits forever").

Two places it can be lost, each repaired by a Celery beat sweep (``CELERY_BEAT_SCHEDULE``):

- a suspension commits, and the process dies before its extra replicas are added (they are added
  after the commit, in a transaction of their own, to avoid a deadlock with scoring): the
  suspension writes the debt down (``WorkerTrust.replicas_owed``) and ``quality.add_owed_replicas``
  pays it;
- Redis is down when a raised target's ``fill_job_slots`` message is sent after the commit: the
  send is logged, not raised (the target is committed; failing the caller would only make a
  scoring retry or a request fail for work already done), and ``tasks.fill_starved_slots`` fills
  the slot.
"""

from __future__ import annotations

import logging

import pytest
from celery import current_app
from django.conf import settings as django_settings

from quality import services
from quality.models import ConsensusDecision, ConsensusResult, WorkerTrust
from quality.services import evidence
from quality.simulator import PRECISE, SPAMMER
from tasks.models import MicroTask, MicroTaskStatus, Slot, Submission
from tests.faults.conftest import _drop_connections, free_port
from tests.faults.invariants import assert_invariants, invariant_problems
from tests.quality.conftest import make_world, qualified_worker
from tests.quality.test_services import claim_and_submit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_gold(monkeypatch):
    from tasks import claiming

    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)


def _run_beat_sweep(name: str) -> int:
    """Run the periodic task the beat schedule names ``name``, as beat would."""
    entry = django_settings.CELERY_BEAT_SCHEDULE[name]
    return current_app.tasks[entry["task"]].apply().get()


def _suspend(worker) -> None:
    for k in range(3):
        services.trust_record(
            worker=worker, annotation_type="bbox", kind="gold", score=0.0, note=f"gold {k}"
        )
    assert WorkerTrust.objects.get(worker=worker, annotation_type="bbox").suspended


def test_a_crash_between_a_suspension_and_its_extra_replica_is_repaired_by_the_sweep(
    monkeypatch, caplog
):
    world = make_world(n=1, overlap=2, overlap_max=4)
    bad, first, second = (qualified_worker("bbox") for _ in range(3))
    a = claim_and_submit(world, bad, PRECISE, seed=1)
    mt = MicroTask.objects.get(pk=a.microtask_id)
    assert (mt.replica_target, Slot.objects.filter(microtask=mt).count()) == (2, 2)

    def killed(**kwargs):
        raise RuntimeError("worker killed after the suspension's commit")

    # The suspension commits; what runs after the commit dies (an on-commit callback that
    # raises is what a process killed at that moment leaves: the commit, and nothing after it).
    monkeypatch.setattr(evidence, "suspension_replicas_add", killed)
    with caplog.at_level(logging.ERROR):
        _suspend(bad)
    monkeypatch.undo()
    mt.refresh_from_db()
    assert mt.replica_target == 2  # the suspended worker's replica was not replaced
    assert any("replicas never added" in p for p in invariant_problems())

    assert _run_beat_sweep("add-owed-replicas") == 1
    mt.refresh_from_db()
    assert mt.replica_target == 3
    assert Slot.objects.filter(microtask=mt).count() == 3  # funded (fill_job_slots, eager)
    assert _run_beat_sweep("add-owed-replicas") == 0  # paid once, not twice

    # Two honest replicas besides the suspended worker's: consensus of two, not of one.
    claim_and_submit(world, first, PRECISE, seed=2)
    mt.refresh_from_db()
    assert mt.status == MicroTaskStatus.OPEN  # waiting for the replaced replica
    claim_and_submit(world, second, PRECISE, seed=3)
    result = ConsensusResult.objects.get(microtask=mt, is_current=True)
    assert (result.replicas, result.decision) == (2, ConsensusDecision.ACCEPT)
    assert_invariants()


@pytest.fixture
def redis_down():
    """Celery's producer pointed at a port nothing listens on (broker and result backend: Redis
    is down), not eager; put back afterwards."""
    app = current_app
    previous = (app.conf.task_always_eager, app.conf.broker_url, app.conf.result_backend)
    dead = f"redis://127.0.0.1:{free_port()}/0"

    def down() -> None:
        _drop_connections(app)
        app.conf.task_always_eager = False
        app.conf.broker_url = app.conf.result_backend = dead

    def up() -> None:
        _drop_connections(app)
        app.conf.task_always_eager, app.conf.broker_url, app.conf.result_backend = previous

    try:
        yield down, up
    finally:
        up()


def test_redis_down_when_a_replica_fill_is_queued_fails_nothing_and_the_sweep_fills_it(
    redis_down, caplog
):
    world = make_world(n=1, overlap=2, overlap_max=4)
    good, sloppy = (qualified_worker("bbox") for _ in range(2))
    down, up = redis_down
    down()
    # The submissions are stored (their scoring message is lost too: the straggler sweep's job).
    claim_and_submit(world, good, PRECISE, seed=1)
    last = claim_and_submit(world, sloppy, SPAMMER, seed=2)
    sub = Submission.objects.get(assignment=last)
    # The scoring decides on another replica, commits, and the fill message finds no Redis.
    with caplog.at_level(logging.WARNING):
        assert services.submission_process(submission_id=sub.pk) == "replica added"
    assert "could not queue the slot fill" in caplog.text
    mt = MicroTask.objects.get(pk=last.microtask_id)
    assert mt.replica_target == 3
    assert ConsensusResult.objects.get(microtask=mt, is_current=True).decision == (
        ConsensusDecision.ADD_REPLICA
    )
    assert Slot.objects.filter(microtask=mt).count() == 2
    assert invariant_problems() == [f"microtask {mt.pk}: open with 2 slots < target 3"]

    # Redis back: the sweep fills the slot (funded), the microtask gets its replica.
    up()
    assert _run_beat_sweep("fill-starved-slots") == 1
    assert Slot.objects.filter(microtask=mt).count() == 3
    assert MicroTask.objects.get(pk=mt.pk).status == MicroTaskStatus.OPEN
    assert_invariants()
