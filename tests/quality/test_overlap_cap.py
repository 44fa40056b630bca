"""Replica targets stay within ``overlap_max``; a raised target is funded or reviewed (#16).

The end-to-end run found targets of 6 on microtasks whose ``overlap_max`` is 5 (a suspension
added a replica without a cap, and dynamic overlap compared the cap with the target minus the
suspended worker's replica), and microtasks left open with a target of 4 but 3 slots (the extra
replica could not be funded, so the work waited for a person nobody told).
"""

from __future__ import annotations

import pytest

from quality import services
from quality.models import ConsensusDecision, ConsensusResult, ReviewItem, WorkerTrust
from quality.simulator import PRECISE, SPAMMER
from tasks import budget, claiming
from tasks.models import MicroTask, MicroTaskStatus, Slot
from tests.faults.invariants import assert_invariants
from tests.quality.test_services import claim_and_submit

pytestmark = pytest.mark.django_db(transaction=True)


def _suspend(worker) -> None:
    for k in range(3):
        services.trust_record(
            worker=worker, annotation_type="bbox", kind="gold", score=0.0, note=f"gold {k}"
        )
    assert WorkerTrust.objects.get(worker=worker, annotation_type="bbox").suspended


def test_disagreement_after_a_suspension_at_the_cap_goes_to_review(world_factory, workers, no_gold):
    world = world_factory(n=1, overlap=2, overlap_max=3)
    bad, good, sloppy = workers(3)
    a = claim_and_submit(world, bad, PRECISE, seed=1)
    _suspend(bad)  # its replica is replaced: target 3, the cap
    mt = MicroTask.objects.get(pk=a.microtask_id)
    assert mt.replica_target == 3
    claim_and_submit(world, good, PRECISE, seed=2)
    claim_and_submit(world, sloppy, SPAMMER, seed=3)
    mt.refresh_from_db()
    # The two counted replicas disagree, and the target is at the cap: a person decides.
    assert mt.replica_target == 3
    assert mt.status == MicroTaskStatus.REVIEW
    assert ReviewItem.objects.filter(microtask=mt, status="open").exists()
    current = ConsensusResult.objects.get(microtask=mt, is_current=True)
    assert current.decision == ConsensusDecision.REVIEW
    assert_invariants()


def test_a_suspension_at_the_cap_sends_the_work_to_review_instead_of_a_replica(
    world_factory, workers, no_gold
):
    world = world_factory(n=1, overlap=3, overlap_max=3)
    (bad,) = workers(1)
    a = claim_and_submit(world, bad, PRECISE, seed=1)
    _suspend(bad)
    mt = MicroTask.objects.get(pk=a.microtask_id)
    assert mt.replica_target == 3
    assert mt.status == MicroTaskStatus.REVIEW
    item = ReviewItem.objects.get(microtask=mt, status="open")
    assert "maximum of 3 replicas" in item.reason
    assert Slot.objects.filter(microtask=mt).count() == 3
    assert_invariants()


def test_a_raised_target_the_budget_cannot_fund_goes_to_review(world_factory, workers, no_gold):
    world = world_factory(n=2, overlap=2, overlap_max=4)
    job = world.job
    # Everything the job has left is spent elsewhere: no money for an extra replica.
    left = budget.available(job=job)
    budget.reserve(job=job, amount=left, key=f"test-spent-{job.pk}")
    good, sloppy = workers(2)
    a = claim_and_submit(world, good, PRECISE, seed=1)
    claim_and_submit(world, sloppy, SPAMMER, seed=2)
    mt = MicroTask.objects.get(pk=a.microtask_id)
    assert ConsensusResult.objects.get(microtask=mt).decision == ConsensusDecision.ADD_REPLICA
    assert mt.replica_target == 3
    assert Slot.objects.filter(microtask=mt).count() == 2
    # Not left open waiting for a slot nobody will fund: in review.
    assert mt.status == MicroTaskStatus.REVIEW
    assert "budget" in ReviewItem.objects.get(microtask=mt, status="open").reason
    # The other microtask, untouched, is still open with all its slots.
    other = MicroTask.objects.exclude(pk=mt.pk).get(job=job, is_gold=False)
    assert other.status == MicroTaskStatus.OPEN
    assert Slot.objects.filter(microtask=other).count() == 2
    assert_invariants()


def test_a_raised_target_is_funded_before_new_work(world_factory, workers, no_gold):
    world = world_factory(n=2, overlap=2, overlap_max=4, publish=False)
    job = world.job
    claiming.job_publish(job=job, by=job.requester)
    new, raised = world.regular()
    # The first microtask (first in claim order) lost its slots, as if not funded at publish,
    # and the job has money for exactly one replica more.
    freed = sum(Slot.objects.filter(microtask=new).values_list("reserved_amount", flat=True))
    Slot.objects.filter(microtask=new).delete()
    budget.release(job=job, amount=freed, key=f"test-free-{job.pk}")
    per_slot = budget.slot_reservation(microtask=raised)
    budget.reserve(job=job, amount=budget.available(job=job) - per_slot, key=f"test-spent-{job.pk}")
    MicroTask.objects.filter(pk=raised.pk).update(replica_target=3)
    fill = claiming.job_fill_slots(job=job)
    assert fill.regular_slots == 1
    assert Slot.objects.filter(microtask=raised).count() == 3
    assert MicroTask.objects.get(pk=raised.pk).status == MicroTaskStatus.OPEN
    # The new microtask waits for funding (it holds nobody's work): not sent to review.
    assert MicroTask.objects.get(pk=new.pk).status == MicroTaskStatus.OPEN
    assert_invariants()


def test_the_sweep_fills_a_raised_target_whose_fill_message_was_lost(world_factory, no_gold):
    from tasks.tasks import fill_starved_slots
    from tests.faults.invariants import invariant_problems

    world = world_factory(n=2, overlap=2, overlap_max=4)
    funded, starved = world.regular()
    # Targets raised, their fill messages lost: one job's money covers one replica more.
    MicroTask.objects.filter(pk__in=[funded.pk, starved.pk]).update(replica_target=3)
    per_slot = budget.slot_reservation(microtask=funded)
    job = world.job
    budget.reserve(job=job, amount=budget.available(job=job) - per_slot, key=f"test-spent-{job.pk}")
    assert len(invariant_problems()) == 2  # both wait for a slot nobody will create

    assert fill_starved_slots() == 1
    assert Slot.objects.filter(microtask=funded).count() == 3
    assert MicroTask.objects.get(pk=starved.pk).status == MicroTaskStatus.REVIEW
    assert fill_starved_slots() == 0
    assert_invariants()
