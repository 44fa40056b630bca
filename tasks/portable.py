"""The claim path's statements for databases other than PostgreSQL, written with the ORM.

PostgreSQL runs the hot path as single prepared statements (``claiming.sql``: data-modifying CTEs,
``FOR UPDATE SKIP LOCKED``), which SQLite cannot parse. The embedded ``make run`` database is
SQLite, where writers are serialised by the database lock anyway, so these plain ORM versions
inside one transaction keep the same guarantees there: they return exactly what the named
statements return, and ``tests/tasks/test_portable.py`` runs the claim path through them.
Production and the test suite's concurrency checks use the PostgreSQL statements.
"""

from __future__ import annotations

from datetime import datetime

from django.apps import apps
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.db.models.functions import Coalesce

from marketplace.models import (
    Job,
    JobStatus,
    Qualification,
    QualificationStatus,
    WorkerProfile,
    WorkerStatus,
)

from .models import (
    Assignment,
    AssignmentStatus,
    MicroTask,
    MicroTaskStatus,
    Slot,
    Submission,
    WorkerClock,
)


def candidate_jobs(*, worker_id: int, job_id: int | None, limit: int) -> list[tuple]:
    """Rows of ``candidate_jobs``: (id, gold_rate, min_trust, annotation_type, claim_time_limit)."""
    if WorkerProfile.objects.filter(user_id=worker_id, status=WorkerStatus.SUSPENDED).exists():
        return []
    passed = Qualification.objects.filter(
        worker_id=worker_id, status=QualificationStatus.PASSED
    ).values("annotation_type")
    jobs = Job.objects.filter(status=JobStatus.PUBLISHED, annotation_type__in=passed)
    # Requester standing, as in claim_next: not the jobs of a requester whose own evidence put
    # this worker below the bar. The model is quality's, looked up by name like the SQL's table.
    standing = apps.get_model("quality", "RequesterStanding")
    jobs = jobs.exclude(
        Exists(
            standing.objects.filter(
                worker_id=worker_id,
                requester_id=OuterRef("requester_id"),
                annotation_type=OuterRef("annotation_type"),
                excluded=True,
            )
        )
    )
    if job_id is not None:
        jobs = jobs.filter(pk=job_id)
    jobs = jobs.order_by("-priority", "deadline", "published_at", "id")[:limit]
    return list(
        jobs.values_list("id", "gold_rate", "min_trust", "annotation_type", "claim_time_limit")
    )


def _held_by(worker_id: int):
    return Assignment.objects.filter(microtask_id=OuterRef("microtask_id"), worker_id=worker_id)


def claim_seat(*, worker_id: int, max_claims: int) -> int | None:
    """The worker's lowest free claim seat within ``max_claims`` (the ``seat`` of the claim
    statements); None at the cap, or when there is no cap (``max_claims`` <= 0)."""
    if max_claims <= 0:
        return None
    held = set(
        Assignment.objects.filter(
            worker_id=worker_id, status=AssignmentStatus.CLAIMED, claim_seat__isnull=False
        ).values_list("claim_seat", flat=True)
    )
    return next((n for n in range(1, max_claims + 1) if n not in held), None)


@transaction.atomic
def claim(
    sql_name: str,
    *,
    job_id: int,
    worker_id: int,
    now: datetime,
    deadline: datetime,
    max_claims: int,
) -> tuple[Assignment | None, bool]:
    """``claim_regular`` / ``claim_gold``: (the new assignment or None, whether a slot was free)."""
    if not Job.objects.filter(pk=job_id, status=JobStatus.PUBLISHED).exists():
        return None, False
    seat = claim_seat(worker_id=worker_id, max_claims=max_claims)
    if max_claims > 0 and seat is None:
        return None, False
    free = Slot.objects.select_for_update().filter(job_id=job_id, assignment__isnull=True)
    if sql_name == "claim_gold":
        microtask = (
            MicroTask.objects.filter(job_id=job_id, is_gold=True, status=MicroTaskStatus.OPEN)
            .exclude(
                Exists(Assignment.objects.filter(microtask=OuterRef("pk"), worker_id=worker_id))
            )
            .order_by("?")
            .first()
        )
        slot = free.filter(is_gold=True).order_by("-priority", "number").first()
        if microtask is None or slot is None:
            return None, False
        microtask_id = microtask.pk
    else:
        slot = (
            free.filter(is_gold=False, microtask__status=MicroTaskStatus.OPEN)
            .exclude(Exists(_held_by(worker_id)))
            .order_by("-priority", "microtask_id", "number")
            .first()
        )
        if slot is None:
            return None, False
        microtask_id = slot.microtask_id
    try:
        with transaction.atomic():
            assignment = Assignment.objects.create(
                microtask_id=microtask_id,
                worker_id=worker_id,
                slot=slot,
                status=AssignmentStatus.CLAIMED,
                claimed_at=now,
                deadline=deadline,
                reserved_amount=slot.reserved_amount,
                claim_seat=seat,
            )
    except IntegrityError:
        # This worker won a concurrent claim of the same microtask, or of the same claim seat.
        return None, True
    Slot.objects.filter(pk=slot.pk).update(assignment=assignment)
    return (
        Assignment.objects.select_related("microtask__video", "microtask__job").get(
            pk=assignment.pk
        ),
        True,
    )


def load_assignment(*, assignment_id: int, for_update: bool = False) -> Assignment:
    qs = Assignment.objects.select_related("microtask__video", "microtask__job", "submission")
    if for_update:
        qs = qs.select_for_update(of=("self",))
    return qs.get(pk=assignment_id)


@transaction.atomic
def expire_overdue(*, now: datetime, batch: int, worker_id: int | None = None) -> tuple[int, int]:
    """``expire_overdue``: (claims expired, slots freed)."""
    overdue = Assignment.objects.select_for_update().filter(
        status=AssignmentStatus.CLAIMED, deadline__lt=now
    )
    if worker_id is not None:
        overdue = overdue.filter(worker_id=worker_id)
    ids = list(overdue.order_by("deadline").values_list("pk", flat=True)[:batch])
    expired = Assignment.objects.filter(pk__in=ids).update(
        status=AssignmentStatus.EXPIRED, ended_at=now
    )
    freed = Slot.objects.filter(assignment_id__in=ids).update(assignment=None)
    return expired, freed


@transaction.atomic
def submit(
    *,
    now: datetime,
    auto_approve_at: datetime,
    active_seconds: float | None,
    assignment_id: int,
    worker_id: int,
    payload: dict,
    frames: dict,
) -> int | None:
    """``submit``: the new submission's id, or None when the claim is no longer live."""
    changes = {
        "status": AssignmentStatus.SUBMITTED,
        "submitted_at": now,
        "auto_approve_at": auto_approve_at,
    }
    if active_seconds is not None:
        changes["active_seconds"] = active_seconds
    updated = Assignment.objects.filter(
        pk=assignment_id, worker_id=worker_id, status=AssignmentStatus.CLAIMED, deadline__gte=now
    ).update(**changes)
    if not updated:
        return None
    return Submission.objects.create(assignment_id=assignment_id, payload=payload, frames=frames).pk


def credit_view(*, worker_id: int) -> list[tuple]:
    """``credit_view``: the worker's clock and claims since its period start, one row per claim
    (one row of NULL claim columns for a clock without claims, none without a clock)."""
    clock = WorkerClock.objects.filter(worker_id=worker_id).first()
    if clock is None:
        return []
    rows = []
    claims = Assignment.objects.filter(worker_id=worker_id, claimed_at__gte=clock.period_start)
    for a in claims.annotate(credited=Coalesce("active_seconds", 0.0)):
        if a.status == AssignmentStatus.CLAIMED:
            end = max(a.claimed_at, a.heartbeat_at or a.claimed_at)
        elif a.status == AssignmentStatus.RELEASED:
            end = a.ended_at
        elif a.status == AssignmentStatus.EXPIRED:
            end = min(a.ended_at, a.deadline) if a.ended_at else None
        else:
            end = a.submitted_at
        live = a.status == AssignmentStatus.CLAIMED
        rows.append(
            (
                clock.period_start,
                clock.version,
                a.pk,
                a.claimed_at,
                end or a.claimed_at,
                a.credited,
                live,
            )
        )
    return rows or [(clock.period_start, clock.version, None, None, None, None, None)]


@transaction.atomic
def submit_credited(
    *,
    clock_version: int,
    period_start: datetime,
    worker_id: int,
    **submit_params,
) -> tuple[int | None, bool]:
    """``submit_credited``: (the new submission's id or None, whether the clock was still at
    ``clock_version``)."""
    moved = WorkerClock.objects.filter(worker_id=worker_id, version=clock_version).update(
        version=F("version") + 1, period_start=period_start
    )
    if not moved:
        return None, False
    return submit(worker_id=worker_id, **submit_params), True
