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
from django.db.models import Exists, OuterRef

from marketplace.models import (
    Job,
    JobStatus,
    Qualification,
    QualificationStatus,
    WorkerProfile,
    WorkerStatus,
)

from .models import Assignment, AssignmentStatus, MicroTask, MicroTaskStatus, Slot, Submission


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


@transaction.atomic
def claim(
    sql_name: str, *, job_id: int, worker_id: int, now: datetime, deadline: datetime
) -> tuple[Assignment | None, bool]:
    """``claim_regular`` / ``claim_gold``: (the new assignment or None, whether a slot was free)."""
    if not Job.objects.filter(pk=job_id, status=JobStatus.PUBLISHED).exists():
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
            )
    except IntegrityError:
        return None, True  # this worker won a concurrent claim of the same microtask
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
def expire_overdue(*, now: datetime, batch: int) -> tuple[int, int]:
    """``expire_overdue``: (claims expired, slots freed)."""
    ids = list(
        Assignment.objects.select_for_update()
        .filter(status=AssignmentStatus.CLAIMED, deadline__lt=now)
        .order_by("deadline")
        .values_list("pk", flat=True)[:batch]
    )
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
