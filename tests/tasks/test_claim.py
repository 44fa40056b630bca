"""Publishing and claiming: order, qualification, gold, funding, leases and expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from marketplace import lifecycle
from marketplace.errors import InvalidTransition, NotFound, NothingAvailable, PermissionDenied
from marketplace.models import JobStatus, WorkerStatus
from payments.selectors import escrow_balance
from tasks import budget, claiming
from tasks.models import Assignment, AssignmentStatus, MicroTask, Slot, Submission
from tasks.tasks import expire_overdue_claims
from tests.factories import WorkerFactory
from tests.tasks.claim_fixtures import published_job, qualified_worker, ready_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_gold(monkeypatch):
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)


@pytest.fixture
def always_gold(monkeypatch):
    monkeypatch.setattr(claiming._rng, "random", lambda: 0.0)


def test_publish_creates_overlap_slots_per_microtask_and_gold_pool():
    job = ready_job(n=9, gold=2, overlap=3, gold_rate=0.1)
    fill = claiming.job_publish(job=job, by=job.requester)
    job.refresh_from_db()
    assert job.status == JobStatus.PUBLISHED
    assert fill.regular_slots == 27 and fill.uncovered_microtasks == 0
    assert fill.gold_slots == 3  # ceil(27 x 0.1 / 0.9)
    for mt in MicroTask.objects.filter(job=job, is_gold=False):
        assert sorted(mt.slots.values_list("number", flat=True)) == [0, 1, 2]
    assert Slot.objects.filter(job=job, is_gold=True, microtask__isnull=True).count() == 3


def test_publish_funds_only_what_the_escrow_covers_in_priority_order():
    probe = ready_job(n=1, price=50, budget=0)
    per_slot = budget.slot_reservation(microtask=probe.microtasks.get())
    assert per_slot >= 50  # the highest pay a replica can cost, plus the fee on it
    # Escrow for three whole microtasks (3 replicas each) and a bit: three of five are funded.
    job = ready_job(n=5, overlap=3, price=50, budget=9 * per_slot + 7, gold_rate=0.0)
    MicroTask.objects.filter(job=job, index=4).update(priority=5)
    fill = claiming.job_publish(job=job, by=job.requester)
    assert (fill.regular_slots, fill.uncovered_microtasks) == (9, 2)
    assert fill.reserved == 9 * per_slot
    funded = set(Slot.objects.filter(job=job).values_list("microtask__index", flat=True))
    assert funded == {4, 0, 1}
    assert budget.available(job=job) == 7
    escrow = escrow_balance(job=job)
    assert escrow.reserved == 9 * per_slot and escrow.committed <= escrow.funded


def test_publish_without_escrow_for_one_microtask_is_refused_and_changes_nothing():
    job = ready_job(n=2, overlap=3, price=50, budget=100)
    with pytest.raises(budget.InsufficientBudget):
        claiming.job_publish(job=job, by=job.requester)
    job.refresh_from_db()
    assert job.status == JobStatus.READY and not Slot.objects.filter(job=job).exists()
    assert escrow_balance(job=job).reserved == 0


def test_only_the_owner_publishes_and_only_a_ready_job(requester):
    job = ready_job(n=1)
    with pytest.raises(NotFound):
        claiming.job_publish(job=job, by=requester)
    claiming.job_publish(job=job, by=job.requester)
    with pytest.raises(InvalidTransition):
        claiming.job_publish(job=job, by=job.requester)


def test_claim_takes_microtasks_by_priority_then_age(no_gold):
    job = published_job(n=3, overlap=1)
    MicroTask.objects.filter(job=job, index=2).update(priority=9)
    Slot.objects.filter(job=job, microtask__index=2).update(priority=9)
    w = qualified_worker()
    got = [claiming.assignment_claim(worker=w).microtask.index for _ in range(3)]
    assert got == [2, 0, 1]


def test_claim_prefers_higher_priority_job_then_earlier_deadline(no_gold):
    later = published_job(n=1, overlap=1, deadline=timezone.now() + timedelta(days=9))
    sooner = published_job(n=1, overlap=1, deadline=timezone.now() + timedelta(days=1))
    urgent = published_job(n=1, overlap=1, priority=5)
    w = qualified_worker()
    got = [claiming.assignment_claim(worker=w).microtask.job_id for _ in range(3)]
    assert got == [urgent.pk, sooner.pk, later.pk]


def test_worker_never_gets_the_same_microtask_twice_even_after_release(no_gold):
    job = published_job(n=2, overlap=3)
    w = qualified_worker()
    first = claiming.assignment_claim(worker=w)
    claiming.assignment_release(worker=w, assignment_id=first.pk)
    second = claiming.assignment_claim(worker=w)
    assert second.microtask_id != first.microtask_id
    with pytest.raises(NothingAvailable):
        claiming.assignment_claim(worker=w)
    assert Slot.objects.filter(job=job, assignment__isnull=True).count() == 5


def test_unqualified_worker_is_told_to_qualify_and_gets_nothing():
    published_job(n=2)
    w = WorkerFactory()
    with pytest.raises(NothingAvailable, match="qualification"):
        claiming.assignment_claim(worker=w)
    assert not Assignment.objects.exists()


def test_min_trust_gates_claiming(no_gold):
    published_job(n=2, min_trust=0.9)
    w = qualified_worker()
    with pytest.raises(NothingAvailable):
        claiming.assignment_claim(worker=w)


def test_suspended_workers_and_requesters_cannot_claim(requester):
    published_job(n=2)
    w = qualified_worker()
    w.worker_profile.status = WorkerStatus.SUSPENDED
    w.worker_profile.save()
    with pytest.raises(PermissionDenied, match="suspended"):
        claiming.assignment_claim(worker=w)
    with pytest.raises(PermissionDenied):
        claiming.assignment_claim(worker=requester)


def test_paused_and_cancelled_jobs_are_not_claimable(no_gold):
    job = published_job(n=3, overlap=1)
    w = qualified_worker()
    held = claiming.assignment_claim(worker=w)
    claiming.job_pause(job=job, by=job.requester)
    with pytest.raises(NothingAvailable):
        claiming.assignment_claim(worker=w)
    claiming.job_resume(job=job, by=job.requester)
    assert claiming.assignment_claim(worker=w).microtask.job_id == job.pk
    lifecycle.job_cancel(job=job, by=job.requester)
    with pytest.raises(NothingAvailable):
        claiming.assignment_claim(worker=w)
    held.refresh_from_db()
    assert held.status == AssignmentStatus.RELEASED
    assert not Slot.objects.filter(job=job, assignment__isnull=True).exists()


def test_cancel_returns_free_slots_escrow_but_keeps_submitted_work(no_gold):
    job = published_job(n=3, overlap=1, price=50, budget=1_000, gold_rate=0.0)
    per_slot = Slot.objects.filter(job=job).first().reserved_amount
    w = qualified_worker()
    a = claiming.assignment_claim(worker=w)
    claiming.assignment_submit(
        worker=w, assignment_id=a.pk, payload={"boxes": []}, active_seconds=1
    )
    held = claiming.assignment_claim(worker=w)
    assert budget.available(job=job) == 1_000 - 3 * per_slot
    lifecycle.job_cancel(job=job, by=job.requester)
    # The free slot and the open claim's slot are released; the submitted one stays reserved.
    assert budget.available(job=job) == 1_000 - per_slot
    assert escrow_balance(job=job).reserved == per_slot
    a.refresh_from_db()
    held.refresh_from_db()
    assert a.status == AssignmentStatus.SUBMITTED and held.status == AssignmentStatus.RELEASED
    assert list(Slot.objects.filter(job=job).values_list("assignment", flat=True)) == [a.pk]


def test_gold_is_mixed_in_and_never_repeated_to_a_worker(always_gold, settings):
    settings.CLAIM_MAX_CONCURRENT = 8  # one worker holds all eight claims
    job = published_job(n=6, gold=2, overlap=1, gold_rate=0.5)
    w = qualified_worker()
    got = [claiming.assignment_claim(worker=w).microtask for _ in range(8)]
    golds = [m.pk for m in got if m.is_gold]
    assert len(golds) == 2 and len(set(golds)) == 2  # both golds, each once; then regular work
    assert {m.pk for m in got} == set(
        MicroTask.objects.filter(job=job).values_list("pk", flat=True)
    )


def test_gold_microtasks_stay_open_for_every_worker(always_gold):
    job = published_job(n=40, gold=1, overlap=1, gold_rate=0.2)
    gold = MicroTask.objects.get(job=job, is_gold=True)
    workers = [qualified_worker() for _ in range(4)]
    for w in workers:
        a = claiming.assignment_claim(worker=w)
        assert a.microtask_id == gold.pk
        claiming.assignment_submit(worker=w, assignment_id=a.pk, payload={"boxes": []})
    assert gold.assignments.count() == 4


def test_heartbeat_extends_within_the_bound(no_gold, monkeypatch):
    published_job(n=1, claim_time_limit=timedelta(minutes=10))
    w = qualified_worker()
    a = claiming.assignment_claim(worker=w)
    t0 = a.claimed_at
    for minutes in (8, 16, 24, 29):
        monkeypatch.setattr(claiming, "_now", lambda m=minutes: t0 + timedelta(minutes=m))
        a = claiming.assignment_heartbeat(worker=w, assignment_id=a.pk, active_seconds=60.0)
    # 3 x the 10-minute limit from the claim, however often the page beats.
    assert a.deadline == t0 + timedelta(minutes=30)
    assert a.active_seconds == 60.0


def test_expiry_frees_slots_and_late_submission_is_refused_with_a_clear_message(no_gold):
    job = published_job(n=1, overlap=1)
    w = qualified_worker()
    a = claiming.assignment_claim(worker=w)
    Assignment.objects.filter(pk=a.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    with pytest.raises(claiming.ClaimExpired, match=r"expired at .* went back to the pool"):
        claiming.assignment_submit(worker=w, assignment_id=a.pk, payload={"boxes": []})
    assert expire_overdue_claims.delay().get() == 1
    a.refresh_from_db()
    assert a.status == AssignmentStatus.EXPIRED
    assert Slot.objects.get(job=job).assignment_id is None
    with pytest.raises(claiming.ClaimExpired):
        claiming.assignment_submit(worker=w, assignment_id=a.pk, payload={"boxes": []})
    assert not Submission.objects.filter(assignment=a).exists()
    other = qualified_worker()
    assert claiming.assignment_claim(worker=other).microtask_id == a.microtask_id
    assert expire_overdue_claims.delay().get() == 0  # idempotent


def test_submission_records_times_and_interpolated_frames(no_gold):
    published_job(n=1, annotation_type="track", frames_per_task=11)
    w = qualified_worker("track")
    a = claiming.assignment_claim(worker=w)
    payload = {
        "tracks": [
            {
                "id": 1,
                "label": "car",
                "keyframes": [
                    {"frame": 0, "box": [0, 0, 10, 10]},
                    {"frame": 10, "box": [20, 0, 30, 10]},
                ],
            }
        ]
    }
    a = claiming.assignment_submit(
        worker=w, assignment_id=a.pk, payload=payload, active_seconds=10**6
    )
    a.refresh_from_db()
    assert a.status == AssignmentStatus.SUBMITTED
    assert 0 <= a.active_seconds <= a.work_seconds  # capped at the claim's wall time
    assert a.auto_approve_at == a.submitted_at + timedelta(days=3)
    assert a.submission.frames["5"] == [
        {"track": 1, "label": "car", "box": [10.0, 0.0, 20.0, 10.0]}
    ]


def test_min_trust_uses_quality_trust_or_the_prior_and_falls_through_to_the_next_job(no_gold):
    """One claim statement picks the job: a job the worker's trust does not reach is skipped
    for the next one in claim order; no WorkerTrust row means quality's prior."""
    from quality.models import WorkerTrust
    from quality.selectors import PRIOR_TRUST

    strict = published_job(n=2, overlap=1, priority=10, min_trust=PRIOR_TRUST + 0.05)
    lenient = published_job(n=2, overlap=1, priority=0, min_trust=PRIOR_TRUST - 0.05)
    newcomer = qualified_worker()
    trusted = qualified_worker()
    WorkerTrust.objects.create(worker=trusted, annotation_type="bbox", trust=0.99)
    distrusted = qualified_worker()
    WorkerTrust.objects.create(worker=distrusted, annotation_type="bbox", trust=0.1)
    assert claiming.assignment_claim(worker=trusted).microtask.job_id == strict.pk
    assert claiming.assignment_claim(worker=newcomer).microtask.job_id == lenient.pk
    with pytest.raises(NothingAvailable):
        claiming.assignment_claim(worker=distrusted)


def test_claim_order_across_jobs_and_only_the_chosen_job_is_touched(no_gold):
    first = published_job(n=1, overlap=1, priority=5)
    second = published_job(n=2, overlap=1, priority=1)
    a, b = qualified_worker(), qualified_worker()
    got = claiming.assignment_claim(worker=a)
    assert got.microtask.job_id == first.pk
    assert got.deadline == got.claimed_at + first.claim_time_limit
    # The first job is full: the next claim falls through to the second one.
    assert claiming.assignment_claim(worker=b).microtask.job_id == second.pk
    assert claiming.assignment_claim(worker=a, job_id=second.pk).microtask.job_id == second.pk
    with pytest.raises(NothingAvailable, match="That job"):
        claiming.assignment_claim(worker=a, job_id=first.pk + second.pk + 1000)


def test_gold_draw_applies_per_job_in_one_statement(always_gold):
    job = published_job(n=3, gold=1, overlap=1, gold_rate=0.3)
    w = qualified_worker()
    first = claiming.assignment_claim(worker=w)
    assert first.microtask.is_gold and first.microtask.job_id == job.pk
    # The worker holds the only gold microtask: gold-first falls back to ordinary work.
    assert not claiming.assignment_claim(worker=w).microtask.is_gold
