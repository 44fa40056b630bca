"""A submission is its own outbox entry: scoring that never got queued (broker down, a crash
between commit and publish) is picked up by the straggler sweep, and a submit never fails
because the broker did."""

from datetime import timedelta

import pytest
from kombu.exceptions import OperationalError

from quality import services, tasks
from quality.models import ConsensusResult, GoldResult
from quality.simulator import SPAMMER
from tasks.models import Submission
from tests.quality.test_services import claim_and_submit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker_down(monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.process_submission, "apply_async", refuse)


def test_processing_marks_the_submission(world_factory, workers, gold_first):
    world = world_factory(n=1, gold=1, gold_rate=0.5)
    (w,) = workers(1)
    a = claim_and_submit(world, w, SPAMMER, seed=3)
    sub = Submission.objects.get(assignment=a)
    assert GoldResult.objects.filter(assignment=a).exists()
    assert sub.processed_at is not None
    # Nothing is left for the sweep.
    assert services.submissions_process_stragglers(older_than=timedelta(0)) == 0


def test_a_submission_whose_message_was_lost_is_scored_by_the_sweep(
    world_factory, workers, gold_first, broker_down
):
    world = world_factory(n=1, gold=1, gold_rate=0.5)
    (w,) = workers(1)
    a = claim_and_submit(world, w, SPAMMER, seed=3)  # the submit itself succeeds
    assert a.status == "submitted"
    sub = Submission.objects.get(assignment=a)
    assert sub.processed_at is None
    assert not GoldResult.objects.filter(assignment=a).exists()

    # Too recent for the sweep: its message may still be on its way.
    assert services.submissions_process_stragglers() == 0
    Submission.objects.filter(pk=sub.pk).update(
        created_at=sub.created_at - services.STRAGGLER_AFTER - timedelta(seconds=1)
    )
    assert tasks.process_stragglers.delay().get() == 1

    result = GoldResult.objects.get(assignment=a)
    assert not result.passed
    a.refresh_from_db()
    assert a.status == "rejected"
    sub.refresh_from_db()
    assert sub.processed_at is not None
    assert services.submissions_process_stragglers(older_than=timedelta(0)) == 0


def test_consensus_waits_for_every_replica_even_when_one_message_was_lost(
    world_factory, workers, no_gold, monkeypatch
):
    world = world_factory(n=1, overlap=3)
    crowd = workers(3)
    claim_and_submit(world, crowd[0], seed=0)
    claim_and_submit(world, crowd[1], seed=1)

    def refuse(*args, **kwargs):
        raise OperationalError("Connection refused.")

    with monkeypatch.context() as m:
        m.setattr(tasks.process_submission, "apply_async", refuse)
        last = claim_and_submit(world, crowd[2], seed=2)
    mt = last.microtask
    assert not ConsensusResult.objects.filter(microtask=mt).exists()

    assert services.submissions_process_stragglers(older_than=timedelta(0)) == 1
    assert ConsensusResult.objects.filter(microtask=mt, is_current=True).exists()
    assert not Submission.objects.filter(
        assignment__microtask=mt, processed_at__isnull=True
    ).exists()
