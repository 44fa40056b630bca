"""A platform with something on every part of the staff dashboards, built through the real
services: consensus over agreeing replicas (approved, paid into the hold period: escrow,
reservations, pending earnings, platform revenue), gold passed and failed, a rejected worker's
appeal, a requester's dispute of exported work, a fraud flag, a review item, and (with the local
Stripe server) a worker with payable earnings.

Needs ``transaction=True`` tests (the submit hook runs quality on commit) and the claim RNG fixed
by the caller per phase, which :func:`seed_dashboards` does itself."""

from __future__ import annotations

from dataclasses import dataclass

from marketplace.models import User
from quality import services as quality_services
from quality.exporting import job_export
from quality.models import Appeal, FraudFlag, ReviewItem
from quality.simulator import PRECISE, SPAMMER, SimulatedWorker
from tasks import claiming, reviewing
from tasks.models import Assignment, AssignmentStatus, RejectionDispute
from tests.factories import AdminFactory
from tests.quality.conftest import FRAME_SIZE, World, make_world
from tests.tasks.claim_fixtures import qualified_worker


@dataclass
class Seeded:
    admin: User
    consensus: World
    gold: World
    crowd: list[User]
    appeal: Appeal
    dispute: RejectionDispute
    flag: FraudFlag
    review: ReviewItem
    approved: list[Assignment]


def _submit(world: World, worker: User, profile=PRECISE, seed: int = 0, seconds: float = 60.0):
    a = claiming.assignment_claim(worker=worker, job_id=world.job.pk)
    annotation = SimulatedWorker("w", profile, seed=seed).annotate(
        world.truth_for(a.microtask), frame_size=FRAME_SIZE, n_classes=len(world.classes)
    )
    claiming.assignment_submit(
        worker=worker,
        assignment_id=a.pk,
        payload=world.payload_for(a.microtask, annotation),
        active_seconds=seconds,
    )
    a.refresh_from_db()
    return a


def seed_dashboards(monkeypatch) -> Seeded:
    admin = AdminFactory(username="staff-admin")
    crowd = [qualified_worker("bbox") for _ in range(3)]

    # Consensus: three agreeing replicas of one microtask, approved and paid.
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)  # no gold
    consensus = make_world(n=1, overlap=3, title="Street cars")
    approved = [_submit(consensus, w, seed=i) for i, w in enumerate(crowd)]
    assert all(
        Assignment.objects.get(pk=a.pk).status == AssignmentStatus.APPROVED for a in approved
    )

    # The requester exported the labels, then rejects one approved submission: a dispute.
    job_export(job=consensus.job, fmt="coco", by=consensus.job.requester)
    outcome = reviewing.assignment_reject(
        assignment_id=approved[0].pk, by=consensus.job.requester, reason="boxes too loose"
    )
    (dispute,) = outcome.disputed

    # Gold: one worker passes a check, a spammer fails one, is rejected and appeals.
    monkeypatch.setattr(claiming._rng, "random", lambda: 0.0)  # gold first
    gold = make_world(n=2, gold=2, gold_rate=0.5, title="Highway gold")
    _submit(gold, crowd[1], PRECISE, seed=5)
    spammer = qualified_worker("bbox")
    failed = _submit(gold, spammer, SPAMMER, seed=6)
    assert failed.status == AssignmentStatus.REJECTED
    appeal = quality_services.appeal_create(
        worker=spammer, assignment_id=failed.pk, message="I drew every car."
    )

    flag = quality_services.fraud_flag_inflated_time(
        assignment=approved[2], evidence={"reported_seconds": 900, "wall_clock_seconds": 60}
    )
    review = ReviewItem.objects.create(
        microtask=gold.regular()[0], job=gold.job, reason="low agreement at the maximum overlap"
    )
    return Seeded(
        admin=admin,
        consensus=consensus,
        gold=gold,
        crowd=[*crowd, spammer],
        appeal=appeal,
        dispute=dispute,
        flag=flag,
        review=review,
        approved=approved,
    )
