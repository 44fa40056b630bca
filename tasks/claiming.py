"""Writes of the claim path: publishing work, claiming it, leases, and submissions.

Exactness under concurrency rests on three things, in this order:

1. a claim takes a free ``Slot`` row with ``SELECT … FOR UPDATE SKIP LOCKED`` and fills it in the
   same statement (``claiming.sql``), so two claimers never take one slot and never wait on each
   other;
2. slots exist only up to a microtask's replica target (unique ``(microtask, number)``), so a
   microtask never has more live or finished assignments than its target;
3. database constraints as the backstop: one assignment per (microtask, worker), one live
   assignment per slot, and one live claim per claim seat of a worker (a worker has
   ``CLAIM_MAX_CONCURRENT`` seats, so concurrent claims of one worker cannot pass the cap).

Money is reserved per slot when slots are created (``tasks.budget``), never on the claim path.
Active time is credited by ``tasks.crediting`` (on heartbeats and submissions, never on claims).

Someone else's assignment is, to a worker, the same 404 as an assignment that does not exist, on
every route: a worker cannot tell other workers' assignment ids from unused ones.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Count, F, IntegerField, Sum, When
from django.utils import timezone
from psycopg.types.json import Jsonb

from marketplace.errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    NothingAvailable,
    PermissionDenied,
    ValidationError,
)
from marketplace.lifecycle import job_transition, lock_job
from marketplace.models import Job, JobStatus, User, WorkerProfile, WorkerStatus
from marketplace.sql import fetch_prepared, native, statement

from . import budget, crediting, portable, proposals, signals, suspensions, work_selectors
from .annotations import AnnotationContext, AnnotationInvalid, validate_payload
from .drafts import clean_draft
from .models import (
    Assignment,
    AssignmentStatus,
    AssistMode,
    MicroTask,
    MicroTaskStatus,
    Slot,
    Submission,
)
from .slot_plan import SlotPlanner

logger = logging.getLogger(__name__)

# Randomness seam: tests replace it to force or forbid gold.
_rng = random.SystemRandom()

CLAIM_RETRIES = 3
GOLD_DRAWS = 8


class ClaimExpired(Conflict):
    """This claim has expired; the microtask went back to the pool."""

    code = "claim_expired"


class AssignmentNotLive(Conflict):
    """This assignment is no longer open for work."""

    code = "assignment_not_live"


class ClaimLimitReached(Conflict):
    """You hold as many claims as you may at once; submit or release one first."""

    code = "claim_limit"


def _now() -> datetime:
    return timezone.now()


def _max_lease_factor() -> float:
    return float(settings.CLAIM_MAX_LEASE_FACTOR)


def max_concurrent_claims() -> int:
    """How many live claims a worker may hold at once (0: no cap, for benchmarks only)."""
    return int(settings.CLAIM_MAX_CONCURRENT)


# --- Publishing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotFill:
    """What one round of slot creation did."""

    regular_slots: int
    gold_slots: int
    reserved: int
    uncovered_microtasks: int


def _require_owner(job: Job, by: User) -> None:
    if not (by.is_staff or job.requester_id == by.pk):
        # Another requester's job does not exist for them.
        raise NotFound("No such job.")


FILL_BATCH = 5_000  # slots per INSERT, and microtasks per fetch, when a job's slots are made


def _fill_slots(job: Job) -> SlotFill:
    """Create the missing replica slots of ``job`` as far as its available budget covers them.

    Which slots the job's available escrow pays for is ``tasks.slot_plan``'s rule (whole
    microtasks in claim order, each batch with its share of gold-pool slots), the rule the
    funding page's budget coverage uses too. A raised target (dynamic overlap, a suspension) is
    work in progress whose other replicas are paid for already: it comes before new microtasks,
    and one the budget cannot cover goes to review (``signals.replicas_unfunded``) instead of
    waiting forever (issue #16). The caller holds the job's row lock.

    Streamed: a job of hundreds of thousands of microtasks is read in chunks through a
    server-side cursor and its slots written in batches, so memory and queries do not grow with
    the job (only the batches do, one INSERT per ``FILL_BATCH`` slots).
    """
    target = job.overlap_min
    # Verify-and-correct microtasks keep their lower target (``quality.services.routing``).
    MicroTask.objects.filter(job=job, is_gold=False, replica_target__lt=target).exclude(
        assist_mode=AssistMode.VERIFY
    ).update(replica_target=target)
    rows = (
        MicroTask.objects.filter(job=job, is_gold=False, status=MicroTaskStatus.OPEN)
        .annotate(n_slots=Count("slots"))
        .filter(n_slots__lt=F("replica_target"))
        .annotate(started=Case(When(n_slots__gt=0, then=1), default=0, output_field=IntegerField()))
        .only("id", "price", "priority", "replica_target")
        .order_by("-started", "-priority", "id")
        .iterator(chunk_size=FILL_BATCH)
    )
    existing_regular = Slot.objects.filter(job=job, is_gold=False).count()
    existing_gold = Slot.objects.filter(job=job, is_gold=True).count()
    price_of = budget.reservation_pricer()
    gold_prices = [
        price_of(m)
        for m in MicroTask.objects.filter(job=job, is_gold=True, status=MicroTaskStatus.OPEN).only(
            "id", "price"
        )
    ]
    gold_price = max(gold_prices, default=0)
    planner = SlotPlanner(
        available=budget.available(job=job),
        gold_price=gold_price,
        gold_rate=job.gold_rate if gold_prices else 0.0,
        existing_regular=existing_regular,
        existing_gold=existing_gold,
    )
    batch: list[Slot] = []
    created = uncovered = 0
    unfunded_raises: list[int] = []

    def flush() -> None:
        nonlocal batch, created
        if batch:
            Slot.objects.bulk_create(batch, batch_size=FILL_BATCH)
            created += len(batch)
            batch = []

    for mt in rows:
        per_slot = price_of(mt)
        if not planner.offer(per_slot, mt.replica_target - mt.n_slots):
            uncovered += 1
            if mt.n_slots:
                unfunded_raises.append(mt.pk)
            continue
        for number in range(mt.n_slots, mt.replica_target):
            batch.append(
                Slot(
                    job_id=job.pk,
                    microtask_id=mt.pk,
                    number=number,
                    priority=mt.priority,
                    reserved_amount=per_slot,
                )
            )
        if len(batch) >= FILL_BATCH:
            flush()
    plan = planner.plan()
    for k in range(plan.gold_slots):
        batch.append(
            Slot(
                job_id=job.pk,
                microtask=None,
                is_gold=True,
                number=existing_gold + k,
                reserved_amount=gold_price,
            )
        )
    flush()
    if created:
        # Same transaction (the caller holds the job's lock): the slots exist only if this
        # reservation succeeds, and the plan's cost stayed within what was available.
        before = existing_regular + existing_gold
        budget.reserve(
            job=job, amount=plan.cost, key=f"job:{job.pk}:slots:{before}:{before + created}"
        )
    if unfunded_raises:
        signals.replicas_unfunded.send(sender=Job, job=job, microtask_ids=unfunded_raises)
    return SlotFill(plan.regular_slots, plan.gold_slots, plan.cost, uncovered)


@transaction.atomic
def job_publish(*, job: Job, by: User) -> SlotFill:
    """Make a ready job's microtasks claimable, as far as its funded budget covers them."""
    _require_owner(job, by)
    job = lock_job(job.pk)
    if job.status != JobStatus.READY:
        raise InvalidTransition(
            f"Only a ready job can be published; this one is {job.get_status_display().lower()}."
        )
    if not MicroTask.objects.filter(job=job, is_gold=False).exists():
        raise InvalidTransition("This job has no microtasks yet; wait for its videos to be ready.")
    fill = _fill_slots(job)
    if not Slot.objects.filter(job=job, is_gold=False).exists():
        raise budget.InsufficientBudget(
            "The job's funded budget does not cover a single microtask; fund it first."
        )
    job_transition(job=job, to=JobStatus.PUBLISHED, by=by)
    return fill


@transaction.atomic
def job_fill_slots(*, job: Job) -> SlotFill:
    """Fund more of a published or paused job's work (after more escrow arrived)."""
    job = lock_job(job.pk)
    if job.status not in (JobStatus.PUBLISHED, JobStatus.PAUSED):
        raise InvalidTransition("Only a published or paused job takes more work.")
    return _fill_slots(job)


def job_fill_slots_if_open(*, job_id: int) -> int:
    """``job_fill_slots`` for a job that is still published or paused; returns regular slots
    created (0 for a job in any other status, e.g. not yet published or already closed)."""
    job = Job.objects.filter(pk=job_id, status__in=(JobStatus.PUBLISHED, JobStatus.PAUSED)).first()
    if job is None:
        return 0
    try:
        return job_fill_slots(job=job).regular_slots
    except InvalidTransition:  # closed meanwhile
        return 0


def jobs_with_starved_slots() -> list[int]:
    """Published or paused jobs with an open microtask whose raised replica target has fewer
    slots than it (``tasks.fill_starved_slots`` fills them, or sends them to review), and
    those with available escrow and an open microtask without any slot yet (escrow credited
    whose ``fill_job_slots`` message was lost: Redis down at the funding's commit)."""
    open_work = MicroTask.objects.filter(
        is_gold=False,
        status=MicroTaskStatus.OPEN,
        job__status__in=(JobStatus.PUBLISHED, JobStatus.PAUSED),
    ).annotate(n_slots=Count("slots"))
    starved = set(
        open_work.filter(n_slots__gt=0, n_slots__lt=F("replica_target"))
        .values_list("job_id", flat=True)
        .distinct()
    )
    unfilled = set(open_work.filter(n_slots=0).values_list("job_id", flat=True).distinct())
    return sorted(starved | budget.jobs_with_available_escrow(unfilled - starved))


@transaction.atomic
def job_pause(*, job: Job, by: User) -> Job:
    """Stop new claims; claims in progress may still be submitted."""
    _require_owner(job, by)
    return job_transition(job=job, to=JobStatus.PAUSED, by=by)


@transaction.atomic
def job_resume(*, job: Job, by: User) -> Job:
    """Make a paused job claimable again (work newly covered by escrow is funded by
    ``tasks.receivers`` on the transition). Only a paused job resumes: a ready one is published
    (``job_publish`` funds its slots first)."""
    _require_owner(job, by)
    job = lock_job(job.pk)
    if job.status != JobStatus.PAUSED:
        raise InvalidTransition(
            f"Only a paused job can be resumed; this one is {job.get_status_display().lower()}."
        )
    return job_transition(job=job, to=JobStatus.PUBLISHED, by=by)


@transaction.atomic
def job_complete(*, job: Job, by: User) -> Job:
    """Close a published or paused job: open claims end, unused slots' reservations go back, the
    unspent escrow is refunded (``tasks.receivers``, on the transition)."""
    _require_owner(job, by)
    return job_transition(job=job, to=JobStatus.COMPLETED, by=by)


@transaction.atomic
def job_return_work(*, job: Job) -> int:
    """Return a closed job's unclaimed work: end open claims, drop free slots, release escrow.

    Submitted work stays for review (its reservation pays it). Returns the amount released.
    """
    now = _now()
    # Lock every slot of the job: claims in flight finish first, later ones find nothing. One
    # row comes back, whatever the job's size (the locks are taken by the inner query).
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM (SELECT 1 FROM tasks_slot WHERE job_id = %s FOR UPDATE) locked",
            [job.pk],
        )
    claimed = Assignment.objects.filter(microtask__job=job, status=AssignmentStatus.CLAIMED)
    claimed_ids = list(claimed.values_list("id", flat=True))
    Assignment.objects.filter(id__in=claimed_ids).update(
        status=AssignmentStatus.RELEASED, ended_at=now
    )
    Slot.objects.filter(assignment_id__in=claimed_ids).update(assignment=None)
    free = Slot.objects.filter(job=job, assignment__isnull=True)
    total = int(free.aggregate(s=Sum("reserved_amount"))["s"] or 0)
    # Two statements whatever the job's size (``delete()`` would load every slot to cascade):
    # the ended assignments that still name a free slot let go of it, then the slots go.
    Assignment.objects.filter(slot__in=free).update(slot=None)
    with connection.cursor() as cur:
        cur.execute("DELETE FROM tasks_slot WHERE job_id = %s AND assignment_id IS NULL", [job.pk])
        n = cur.rowcount
    budget.release(job=job, amount=total, key=f"job:{job.pk}:return-work")
    logger.info("job %s: returned %s slots, released %s", job.pk, n, total)
    return total


# --- Claiming ------------------------------------------------------------------------------------


def _check_worker(worker: User) -> None:
    if not worker.is_authenticated or not worker.is_worker:
        raise PermissionDenied("Only workers can claim work.")


def _check_not_suspended(worker: User) -> None:
    profile = WorkerProfile.objects.filter(user=worker).only("status", "suspended_reason").first()
    if profile is not None and profile.status == WorkerStatus.SUSPENDED:
        raise PermissionDenied(
            "Your account is suspended"
            + (f": {profile.suspended_reason}" if profile.suspended_reason else ".")
        )


def assignment_claim(*, worker: User, job_id: int | None = None) -> Assignment:
    """Give ``worker`` the next microtask they may do, or raise NothingAvailable.

    Jobs are tried in claim order (job priority, then deadline, then age); within a job, slots by
    microtask priority then age. With probability ``gold_rate`` a gold microtask is tried first.

    Not wrapped in ``transaction.atomic`` on purpose: each claim attempt is one SQL statement,
    atomic by itself, and an outer transaction would only add round trips and hold the slot lock
    longer. Called inside a caller's transaction it joins that one.

    Refused with a 409 ``claim_limit`` when the worker already holds ``CLAIM_MAX_CONCURRENT``
    live claims (their own overdue claims are expired first), and with a 403 ``suspended`` when
    a suspension from the type of work is why there is nothing (``tasks.suspensions``).
    """
    _check_worker(worker)
    assignment = _claim_once(worker=worker, job_id=job_id)
    if assignment is None and _at_claim_limit(worker=worker, expire_overdue=True):
        # Overdue claims of theirs that the sweep had not reached yet were freed: try again.
        assignment = _claim_once(worker=worker, job_id=job_id)
    if assignment is not None:
        return assignment
    # Nothing claimed: the rare path, so spend the extra queries on saying why.
    if _at_claim_limit(worker=worker, expire_overdue=False):
        _raise_claim_limit(worker=worker)
    _raise_nothing(worker=worker, job_id=job_id, any_jobs=None)
    raise AssertionError("unreachable")


def _claim_once(*, worker: User, job_id: int | None) -> Assignment | None:
    # One statement (``claiming.sql``: ``claim_next``) picks the job and the slot and
    # makes the assignment, so a claim is one round trip (it used to be two: candidate jobs, then
    # the claim). Gold draws for the first GOLD_DRAWS candidate jobs in claim order are made here
    # so they keep going through the ``_rng`` seam; a claim almost always lands in one of those,
    # and drawing (and binding) one per possible candidate job cost more than the rest of the
    # Python on this path. Later jobs draw in the statement. On SQLite ``claim_and_load`` runs
    # ``tasks.portable.claim_next`` instead, with the same parameters.
    draw = _rng.random
    now = _now()
    params = {
        "worker_id": worker.pk,
        "job_id": job_id,
        "now": now,
        "prior_trust": work_selectors.prior_trust(),
        "limit": work_selectors.MAX_CANDIDATE_JOBS,
        "draws": [draw() for _ in range(GOLD_DRAWS)],
        "max_claims": max_concurrent_claims(),
    }
    for _attempt in range(CLAIM_RETRIES):
        assignment, picked = work_selectors.claim_and_load("claim_next", params)
        if assignment is not None:
            return assignment
        if not picked:
            break
        # This worker claimed the same microtask, or took the same claim seat, in a concurrent
        # request (the insert met a unique constraint and did nothing); the retry sees that
        # claim and skips the microtask, or takes another seat if one is left.
    return None


def _live_claims(worker: User):
    return Assignment.objects.filter(worker=worker, status=AssignmentStatus.CLAIMED)


def _at_claim_limit(*, worker: User, expire_overdue: bool) -> bool:
    """Whether ``worker`` holds their cap of live claims; with ``expire_overdue``, whether some
    of those were overdue and have just been expired (so a claim may now succeed)."""
    cap = max_concurrent_claims()
    if cap <= 0 or _live_claims(worker).count() < cap:
        return False
    if not expire_overdue:
        return True
    return assignments_expire_overdue(worker_id=worker.pk) > 0


def _raise_claim_limit(*, worker: User) -> None:
    ids = list(_live_claims(worker).order_by("claimed_at", "pk").values_list("pk", flat=True))
    cap = max_concurrent_claims()
    raise ClaimLimitReached(
        f"You already hold {len(ids)} claims, the most you may hold at once ({cap}). Submit or "
        "release one of them before claiming more: " + ", ".join(f"#{pk}" for pk in ids[:20]) + ".",
        extra={"assignments": ids[:20], "max_concurrent_claims": cap},
    )


def _raise_nothing(*, worker: User, job_id: int | None, any_jobs: bool | None) -> None:
    if any_jobs is None:
        any_jobs = bool(work_selectors.claimable_jobs_for(worker=worker, job_id=job_id))
    if not any_jobs:
        _check_not_suspended(worker)
        suspensions.check_claim(worker=worker, job_id=job_id)
        if job_id is not None:
            raise NothingAvailable(
                "That job has no work you can claim: it is not published, or you are not "
                "qualified for it yet."
            )
        raise NothingAvailable(work_selectors.why_no_work(worker=worker))
    raise NothingAvailable(
        "There is no work available for you right now; every open microtask is taken or done "
        "by you. Check back soon."
    )


def _not_yours() -> NotFound:
    # The same answer as for an id that does not exist: no way to tell the two apart.
    return NotFound("No such assignment.")


def _lock_own(*, worker: User, assignment_id: int) -> Assignment:
    try:
        assignment = work_selectors.load_assignment(assignment_id=assignment_id, for_update=True)
    except Assignment.DoesNotExist:
        raise _not_yours() from None
    if assignment.worker_id != worker.pk:
        raise _not_yours()
    return assignment


def not_yours() -> NotFound:
    """The 404 for someone else's assignment (the same as for one that does not exist)."""
    return _not_yours()


def require_live(assignment: Assignment, action: str) -> None:
    """Refuse ``action`` (409) unless the claim is live now (claimed, before its deadline)."""
    _require_live(assignment, _now(), action)


def _require_live(assignment: Assignment, now: datetime, action: str) -> None:
    if assignment.status == AssignmentStatus.EXPIRED or (
        assignment.status == AssignmentStatus.CLAIMED and assignment.deadline < now
    ):
        raise ClaimExpired(
            f"You cannot {action}: this claim expired at "
            f"{assignment.deadline:%Y-%m-%d %H:%M:%S} UTC and the microtask went back to the "
            "pool. Claim new work."
        )
    if assignment.status != AssignmentStatus.CLAIMED:
        raise AssignmentNotLive(
            f"You cannot {action}: this assignment is already "
            f"{assignment.get_status_display().lower()}."
        )


def _clean_active_seconds(value: Any) -> float | None:
    """A reported number of active seconds, checked for shape only: how much of it can be
    credited is ``tasks.crediting``'s decision."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(
            "active_seconds must be a number of seconds.",
            extra={"fields": {"active_seconds": ["must be a number"]}},
        )
    if value < 0:
        raise ValidationError(
            "active_seconds cannot be negative.",
            extra={"fields": {"active_seconds": ["cannot be negative"]}},
        )
    return float(value)


@transaction.atomic
def assignment_heartbeat(
    *,
    worker: User,
    assignment_id: int,
    active_seconds: float | None = None,
    draft: Any = None,
) -> Assignment:
    """Extend the claim's deadline by the job's time limit from now, within the lease bound,
    credit the active time it reports (``tasks.crediting``) and keep the page's ``draft`` (work
    in progress, ``tasks.drafts``; never a submission) when it sends one."""
    reported = _clean_active_seconds(active_seconds)
    if reported is not None:
        # The worker's clock before the assignment row: the one lock order of every credit.
        crediting.lock(worker_id=worker.pk)
    assignment = _lock_own(worker=worker, assignment_id=assignment_id)
    now = _now()
    _require_live(assignment, now, "extend it")
    job = assignment.microtask.job
    limit = job.claim_time_limit
    bound = assignment.claimed_at + timedelta(seconds=limit.total_seconds() * _max_lease_factor())
    assignment.deadline = max(assignment.deadline, min(now + limit, bound))
    assignment.heartbeat_at = now
    fields = ["deadline", "heartbeat_at"]
    if draft is not None:
        assignment.draft = clean_draft(draft, annotation_type=job.annotation_type)
        fields.append("draft")
    if reported is None:
        assignment.save(update_fields=fields)
        return assignment

    def write(decision: crediting.Decision) -> tuple[Assignment, bool]:
        assignment.active_seconds = decision.credit.credited
        assignment.save(update_fields=[*fields, "active_seconds"])
        return assignment, crediting.advance(worker_id=worker.pk, decision=decision)

    _, credit = crediting.credit(
        assignment=assignment, now=now, reported=reported, write=write, locked=True
    )
    crediting.report(assignment=assignment, credit_=credit, at=now)
    return assignment


@transaction.atomic
def assignment_release(*, worker: User, assignment_id: int) -> Assignment:
    """Give the claim back; the slot is free again at once (the worker cannot re-claim it)."""
    assignment = _lock_own(worker=worker, assignment_id=assignment_id)
    now = _now()
    _require_live(assignment, now, "release it")
    assignment.status = AssignmentStatus.RELEASED
    assignment.ended_at = now
    assignment.save(update_fields=["status", "ended_at"])
    Slot.objects.filter(assignment=assignment).update(assignment=None)
    return assignment


@transaction.atomic
def assignments_expire_overdue(*, batch: int = 1_000, worker_id: int | None = None) -> int:
    """Expire claims past their deadline (all workers', or ``worker_id``'s) and free their
    slots; returns how many expired."""
    total = 0
    now = _now()
    while True:
        if native():
            with connection.cursor() as cur:
                cur.execute(
                    statement("tasks/claiming.sql", "expire_overdue"),
                    {"now": now, "batch": batch, "worker_id": worker_id},
                )
                expired, _freed = cur.fetchone()
        else:
            expired, _freed = portable.expire_overdue(now=now, batch=batch, worker_id=worker_id)
        total += expired
        if expired < batch:
            return total


def annotation_context(microtask: MicroTask) -> AnnotationContext:
    """The schema a payload for ``microtask`` is checked against."""
    job = microtask.job
    width, height = work_selectors.frame_size(microtask)
    return AnnotationContext(
        annotation_type=job.annotation_type,
        classes=list(job.label_classes),
        width=width,
        height=height,
        frame_start=microtask.frame_start,
        frame_end=microtask.frame_end,
        frames=list(microtask.frames or []),
        event_labels=list(job.event_labels or []),
        label_attributes=dict(job.label_attributes or {}),
        relation_predicates=list(job.relation_predicates or []),
        track_masks=bool(job.track_masks),
    )


def assignment_submit(
    *,
    worker: User,
    assignment_id: int,
    payload: Any,
    active_seconds: float | None = None,
) -> Assignment:
    """Validate ``payload`` against the job's schema and store it with its per-frame shapes.

    Refused (nothing stored) for someone else's assignment (404, as for one that does not
    exist), an expired claim (409), an assignment already submitted (409), or a payload that does
    not fit (400, field by field).

    Optimistic rather than locked: the payload is validated without holding a lock, then one
    statement (``claiming.sql``: ``submit``) flips the assignment to submitted and stores the
    submission only if the claim is still live; if it is not, the reload says why. So it needs
    no ``transaction.atomic`` (one statement is atomic) and joins a caller's transaction if any.
    Reported active time is credited as ``tasks.crediting`` allows (``submit_credited``: the same
    statement, moving the worker's clock); what cannot be credited is not paid, and beyond a
    tolerance it is a fraud signal.
    """
    try:
        assignment = work_selectors.load_assignment(assignment_id=assignment_id)
    except Assignment.DoesNotExist:
        raise _not_yours() from None
    if assignment.worker_id != worker.pk:
        raise _not_yours()
    now = _now()
    _require_live(assignment, now, "submit")
    microtask = assignment.microtask
    try:
        result = validate_payload(payload, annotation_context(microtask))
    except AnnotationInvalid as exc:
        raise ValidationError(str(exc), extra={"fields": exc.fields}) from None
    # Which items came from a proposal and how far they were moved: measured here, from the
    # stored proposals (a reference to anything else is a field error, nothing stored).
    provenance = proposals.submission_provenance(microtask=microtask, raw=payload, result=result)
    reported = _clean_active_seconds(active_seconds)
    auto_approve_at = now + microtask.job.auto_approve_delay
    params = {
        "now": now,
        "auto_approve_at": auto_approve_at,
        "assignment_id": assignment.pk,
        "worker_id": worker.pk,
    }
    credit = None
    if reported is None:
        if native():
            (submission_id,) = fetch_prepared(
                statement("tasks/claiming.sql", "submit"),
                {
                    **params,
                    "active_seconds": None,
                    "payload": Jsonb(result.payload),
                    "frames": Jsonb(result.frames),
                    "provenance": Jsonb(provenance),
                },
            )
        else:
            submission_id = portable.submit(
                **params,
                active_seconds=None,
                payload=result.payload,
                frames=result.frames,
                provenance=provenance,
            )
    else:

        def write(decision: crediting.Decision) -> tuple[int | None, bool]:
            credited = {
                **params,
                "active_seconds": decision.credit.credited,
                "clock_version": decision.version,
                "period_start": decision.period_start,
            }
            if native():
                row = fetch_prepared(
                    statement("tasks/claiming.sql", "submit_credited"),
                    {
                        **credited,
                        "payload": Jsonb(result.payload),
                        "frames": Jsonb(result.frames),
                        "provenance": Jsonb(provenance),
                    },
                )
            else:
                row = portable.submit_credited(
                    **credited, payload=result.payload, frames=result.frames, provenance=provenance
                )
            return row[0], bool(row[1])

        submission_id, credit = crediting.credit(
            assignment=assignment, now=now, reported=reported, write=write
        )
    if submission_id is None:
        # The claim changed between the read and the write: report its state now.
        _require_live(work_selectors.load_assignment(assignment_id=assignment.pk), _now(), "submit")
        raise AssignmentNotLive("You cannot submit: this claim changed meanwhile; reload.")
    assignment.status = AssignmentStatus.SUBMITTED
    assignment.submitted_at = now
    assignment.auto_approve_at = auto_approve_at
    if credit is not None:
        assignment.active_seconds = credit.credited
        crediting.report(assignment=assignment, credit_=credit, at=now)
    submission = Submission(
        id=submission_id,
        assignment=assignment,
        payload=result.payload,
        frames=result.frames,
        provenance=provenance,
        created_at=now,
    )
    submission._state.adding = False
    assignment._state.fields_cache["submission"] = submission
    # Quality scores it on Celery once it is committed.
    signals.submission_stored.send(sender=Submission, submission=submission)
    return assignment
