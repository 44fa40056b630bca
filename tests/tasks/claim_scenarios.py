"""Claim scenarios run through both claim paths (``tests/tasks/test_claim_paths.py``).

Each ``scenario_*`` function builds its own data, claims through ``tasks.claiming`` and asserts;
it knows nothing of the database underneath. On PostgreSQL the claim is ``claiming.sql``'s
``claim_next``; on SQLite it is ``tasks.portable.claim_next``. ``main()`` (the program ``RUN``,
with ``DATABASE_URL`` pointing at an empty SQLite file) migrates that database, runs every
scenario (each rolled back) and prints one JSON object: scenario name -> null (passed) or the
failure's traceback.
"""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
from collections.abc import Callable, Iterator
from datetime import timedelta

from django.apps import apps
from django.test import override_settings
from django.utils import timezone

from marketplace.errors import NothingAvailable, PermissionDenied
from marketplace.models import Job, WorkerProfile, WorkerStatus
from tasks import claiming
from tasks.models import Assignment, AssignmentStatus, Slot, Submission
from tests.tasks.claim_fixtures import published_job, qualified_worker


class _Draws:
    """A stand-in for ``claiming._rng`` that always draws ``value``."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


@contextlib.contextmanager
def gold_draws(value: float) -> Iterator[None]:
    saved = claiming._rng
    claiming._rng = _Draws(value)
    try:
        yield
    finally:
        claiming._rng = saved


def _job(n: int = 1, **fields) -> Job:
    """A published job with ``n`` microtasks of one replica, then ``fields`` written over it
    (priority, deadline, published_at...) as they would be at claim time."""
    job = published_job(n=n, overlap=1, gold_rate=0.0)
    if fields:
        Job.objects.filter(pk=job.pk).update(**fields)
    return job


def _claimed_jobs(worker, count: int) -> list[int]:
    return [claiming.assignment_claim(worker=worker).microtask.job_id for _ in range(count)]


# --- Order -----------------------------------------------------------------------------------


def scenario_claim_order_puts_jobs_without_a_deadline_last() -> None:
    """Job priority desc, then deadline asc with no deadline last, then published_at, then id."""
    now = timezone.now()
    undated_old = _job(deadline=None, published_at=now - timedelta(hours=3))
    late = _job(deadline=now + timedelta(days=2), published_at=now - timedelta(hours=2))
    soon = _job(deadline=now + timedelta(days=1), published_at=now - timedelta(hours=1))
    urgent_undated = _job(priority=5, deadline=None, published_at=now)
    undated_new = _job(deadline=None, published_at=now - timedelta(minutes=1))
    same_as_new = _job(deadline=None, published_at=now - timedelta(minutes=1))
    worker = qualified_worker()
    expected = [urgent_undated, soon, late, undated_old, undated_new, same_as_new]
    with override_settings(CLAIM_MAX_CONCURRENT=0), gold_draws(0.99):
        got = _claimed_jobs(worker, len(expected))
    assert got == [j.pk for j in expected], (got, [j.pk for j in expected])


def scenario_within_a_job_slots_go_by_microtask_then_replica() -> None:
    job = published_job(n=2, overlap=2, gold_rate=0.0)
    workers = [qualified_worker() for _ in range(3)]
    claimed = []
    with override_settings(CLAIM_MAX_CONCURRENT=0), gold_draws(0.99):
        for w in workers:
            for _ in range(2):
                try:
                    claimed.append(claiming.assignment_claim(worker=w))
                except NothingAvailable:
                    break
        assert len(claimed) == 4  # 2 microtasks x 2 replicas, each slot filled once
        assert len({(a.microtask_id, a.worker_id) for a in claimed}) == 4
        assert [a.microtask.index for a in claimed] == [0, 1, 0, 1]
        assert not Slot.objects.filter(job=job, assignment__isnull=True).exists()
        try:
            claiming.assignment_claim(worker=workers[2])
        except NothingAvailable:
            pass
        else:
            raise AssertionError("a third worker claimed from a full job")


# --- Who may claim ---------------------------------------------------------------------------


def scenario_only_types_whose_qualification_was_passed() -> None:
    track = published_job(n=1, overlap=1, gold_rate=0.0, annotation_type="track")
    bbox = _job(priority=0)
    Job.objects.filter(pk=track.pk).update(priority=9)  # first in order, but not for this worker
    worker = qualified_worker("bbox")
    with gold_draws(0.99):
        assert claiming.assignment_claim(worker=worker).microtask.job_id == bbox.pk
        try:
            claiming.assignment_claim(worker=worker)
        except NothingAvailable:
            pass
        else:
            raise AssertionError("claimed a type never qualified for")


def scenario_a_suspended_worker_claims_nothing() -> None:
    _job()
    worker = qualified_worker()
    WorkerProfile.objects.filter(user=worker).update(status=WorkerStatus.SUSPENDED)
    try:
        claiming.assignment_claim(worker=worker)
    except PermissionDenied:
        pass
    else:
        raise AssertionError("a suspended worker claimed")
    assert not Assignment.objects.filter(worker=worker).exists()


def scenario_min_trust_skips_jobs_above_the_workers_trust() -> None:
    trust = apps.get_model("quality", "WorkerTrust")
    picky = _job(priority=3, min_trust=0.9)
    open_job = _job(n=3, priority=1, min_trust=0.0)
    low, high, new = qualified_worker(), qualified_worker(), qualified_worker()
    trust.objects.create(worker=low, annotation_type="bbox", trust=0.6)
    # Stored above 1 is read clamped to 1, on both paths.
    trust.objects.create(worker=high, annotation_type="bbox", trust=1.4)
    with gold_draws(0.99):
        assert claiming.assignment_claim(worker=low).microtask.job_id == open_job.pk
        assert claiming.assignment_claim(worker=high).microtask.job_id == picky.pk
        # No trust row: the prior (below 0.9) applies.
        assert claiming.assignment_claim(worker=new).microtask.job_id == open_job.pk


def scenario_requester_standing_excludes_that_requesters_jobs_only() -> None:
    standing = apps.get_model("quality", "RequesterStanding")
    shunned = _job(priority=5)
    other = _job(priority=1)
    worker = qualified_worker()
    standing.objects.create(
        worker=worker, requester=shunned.requester, annotation_type="bbox", excluded=True
    )
    with gold_draws(0.99):
        assert claiming.assignment_claim(worker=worker).microtask.job_id == other.pk
        try:
            claiming.assignment_claim(worker=worker, job_id=shunned.pk)
        except NothingAvailable:
            pass
        else:
            raise AssertionError("claimed from a requester whose standing excludes the worker")


# --- The seat cap ----------------------------------------------------------------------------


def scenario_the_claim_cap_and_credited_time() -> None:
    published_job(n=4, overlap=1, gold_rate=0.0)
    worker = qualified_worker()
    t0 = timezone.now()
    saved_now = claiming._now
    try:
        with override_settings(CLAIM_MAX_CONCURRENT=2), gold_draws(0.99):
            claiming._now = lambda: t0
            a = claiming.assignment_claim(worker=worker)
            b = claiming.assignment_claim(worker=worker)
            assert {a.claim_seat, b.claim_seat} == {1, 2}
            try:
                claiming.assignment_claim(worker=worker)
            except claiming.ClaimLimitReached:
                pass
            else:
                raise AssertionError("claimed past the cap")
            # Both claims report the whole minute they were held: only one minute is credited.
            claiming._now = lambda: t0 + timedelta(seconds=60)
            claiming.assignment_heartbeat(worker=worker, assignment_id=a.pk, active_seconds=60)
            claiming.assignment_submit(
                worker=worker, assignment_id=b.pk, payload={"boxes": []}, active_seconds=60
            )
            credited = [Assignment.objects.get(pk=x.pk).active_seconds for x in (a, b)]
            assert credited == [60, 0], credited
            # The seat of the submitted claim is free again.
            assert claiming.assignment_claim(worker=worker).claim_seat == b.claim_seat
    finally:
        claiming._now = saved_now


# --- Gold ------------------------------------------------------------------------------------


def scenario_the_gold_draw_picks_gold_or_regular_work() -> None:
    job = published_job(n=2, gold=1, overlap=1, gold_rate=0.5)
    first, second = qualified_worker(), qualified_worker()
    with gold_draws(0.0):  # below gold_rate: gold first
        gold = claiming.assignment_claim(worker=first)
    with gold_draws(0.99):  # above gold_rate: regular work
        regular = claiming.assignment_claim(worker=second)
    assert gold.microtask.is_gold and gold.slot.is_gold
    assert not regular.microtask.is_gold
    # A worker who already did the gold microtask gets regular work even when the draw says gold.
    with gold_draws(0.0):
        again = claiming.assignment_claim(worker=first)
    assert not again.microtask.is_gold
    assert {gold.microtask.job_id, regular.microtask.job_id, again.microtask.job_id} == {job.pk}


# --- After the claim -------------------------------------------------------------------------


def scenario_submit_stores_and_expiry_frees_the_slot() -> None:
    published_job(n=1, overlap=2, gold_rate=0.0)
    first, second = qualified_worker(), qualified_worker()
    with gold_draws(0.99):
        a = claiming.assignment_claim(worker=first)
        claiming.assignment_submit(worker=first, assignment_id=a.pk, payload={"boxes": []})
        assert Submission.objects.filter(assignment=a).exists()
        assert Assignment.objects.get(pk=a.pk).status in (
            AssignmentStatus.SUBMITTED,
            AssignmentStatus.APPROVED,
        )
        b = claiming.assignment_claim(worker=second)
    Assignment.objects.filter(pk=b.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    assert claiming.assignments_expire_overdue() == 1
    assert Assignment.objects.get(pk=b.pk).status == AssignmentStatus.EXPIRED
    assert Slot.objects.filter(assignment__isnull=True).count() == 1
    try:
        claiming.assignment_submit(worker=second, assignment_id=b.pk, payload={"boxes": []})
    except claiming.ClaimExpired:
        pass
    else:
        raise AssertionError("submitted to an expired claim")


# The subprocess's program: Django must be set up before this module's model imports.
RUN = (
    "import django; django.setup(); from tests.tasks import claim_scenarios; claim_scenarios.main()"
)

SCENARIOS: dict[str, Callable[[], None]] = {
    name: fn for name, fn in sorted(globals().items()) if name.startswith("scenario_")
}


class _Rollback(Exception):
    pass


def run_all() -> dict[str, str | None]:
    """Every scenario in its own transaction, rolled back: name -> None or the traceback."""
    from django.db import transaction

    results: dict[str, str | None] = {}
    for name, fn in SCENARIOS.items():
        try:
            with transaction.atomic():
                fn()
                raise _Rollback
        except _Rollback:
            results[name] = None
        except Exception:
            results[name] = traceback.format_exc()
    return results


def main() -> None:
    """Migrate the (SQLite) database ``DATABASE_URL`` names, run every scenario, print JSON."""
    from django.core.management import call_command
    from django.db import connection

    assert connection.vendor == "sqlite", connection.vendor
    call_command("migrate", verbosity=0, interactive=False)
    # The suite's fast hasher: the scenarios make many users.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        sys.stdout.write(json.dumps(run_all()))
