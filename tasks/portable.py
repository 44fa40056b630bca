"""The SQLite twin of the claim path's statements: ``claiming.sql`` rewritten with the ORM.

PostgreSQL runs the claim path as single prepared statements (``claiming.sql``: data-modifying
CTEs, ``FOR UPDATE SKIP LOCKED``), which SQLite cannot parse. The embedded ``make run`` database
is SQLite (``marketplace.runtime``), where writers are serialised by the database lock anyway, so
these plain ORM versions inside one transaction keep the same guarantees there. Each function is
named after the statement it stands for, takes the same parameters and returns what it returns;
``marketplace.sql.native()`` picks one or the other, nowhere else.

Read this before changing anything: a rule changed in ``claiming.sql`` must be changed here in
the same commit, and the other way round. ``claim_next`` is the one that matters — who may claim
what, in which order (job priority desc, deadline asc with jobs *without* a deadline last,
published_at, id), the qualification, suspension, min trust and requester-standing conditions,
the concurrent-claim seat cap and the gold draw. ``tests/tasks/test_claim_paths.py`` runs the
same claim scenarios through both: ``claim_next`` on PostgreSQL in-process, this module on a real
SQLite database in a subprocess (SQLite sorts NULL first where PostgreSQL sorts it last, which is
how the two once drifted apart unseen).
"""

from __future__ import annotations

import random
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


def _claimable_jobs(*, worker_id: int, job_id: int | None):
    """The published jobs ``worker_id`` may claim from, before the trust bar: ``claim_next``'s
    ``cand`` conditions (type qualification passed, not suspended, requester standing)."""
    if WorkerProfile.objects.filter(user_id=worker_id, status=WorkerStatus.SUSPENDED).exists():
        return Job.objects.none()
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
    # The claim order, exactly claim_next's. NULLS LAST spelled out: PostgreSQL sorts NULL last
    # in ascending order by default, SQLite first, so ``"deadline"`` alone would put jobs without
    # a deadline ahead of every dated job here and behind them there.
    return jobs.order_by("-priority", F("deadline").asc(nulls_last=True), "published_at", "id")


def candidate_jobs(*, worker_id: int, job_id: int | None, limit: int) -> list[tuple]:
    """Rows of ``candidate_jobs``: (id, gold_rate, min_trust, annotation_type, claim_time_limit)."""
    jobs = _claimable_jobs(worker_id=worker_id, job_id=job_id)[:limit]
    return list(
        jobs.values_list("id", "gold_rate", "min_trust", "annotation_type", "claim_time_limit")
    )


def _trust_of(*, worker_id: int) -> dict[str, float]:
    """The worker's trust per annotation type, clamped to [0, 1] as claim_next clamps it (a type
    without a row gets the prior, applied by the caller). Quality's model, looked up by name."""
    trust = apps.get_model("quality", "WorkerTrust")
    rows = trust.objects.filter(worker_id=worker_id).values_list("annotation_type", "trust")
    return {t: min(max(value, 0.0), 1.0) for t, value in rows}


def claim_seat(*, worker_id: int, max_claims: int) -> int | None:
    """The worker's lowest free claim seat within ``max_claims`` (the ``seat`` of claim_next);
    None at the cap, or when there is no cap (``max_claims`` <= 0)."""
    if max_claims <= 0:
        return None
    held = set(
        Assignment.objects.filter(
            worker_id=worker_id, status=AssignmentStatus.CLAIMED, claim_seat__isnull=False
        ).values_list("claim_seat", flat=True)
    )
    return next((n for n in range(1, max_claims + 1) if n not in held), None)


def _gold_slot(*, job_id: int, worker_id: int) -> tuple[int, Slot] | None:
    """claim_next's gold branch for one job: a random open gold microtask the worker never held,
    and the job's first free gold slot."""
    microtask = (
        MicroTask.objects.filter(job_id=job_id, is_gold=True, status=MicroTaskStatus.OPEN)
        .exclude(Exists(Assignment.objects.filter(microtask=OuterRef("pk"), worker_id=worker_id)))
        .order_by("?")
        .first()
    )
    if microtask is None:
        return None
    slot = (
        Slot.objects.select_for_update()
        .filter(job_id=job_id, is_gold=True, assignment__isnull=True)
        .order_by("-priority", "number")
        .first()
    )
    return None if slot is None else (microtask.pk, slot)


def _regular_slot(*, job_id: int, worker_id: int) -> tuple[int, Slot] | None:
    """claim_next's regular branch for one job: the first free replica slot, by microtask
    priority then age, of an open microtask the worker never held."""
    held = Assignment.objects.filter(microtask_id=OuterRef("microtask_id"), worker_id=worker_id)
    slot = (
        Slot.objects.select_for_update()
        .filter(
            job_id=job_id,
            is_gold=False,
            assignment__isnull=True,
            microtask__status=MicroTaskStatus.OPEN,
        )
        .exclude(Exists(held))
        .order_by("-priority", "microtask_id", "number")
        .first()
    )
    return None if slot is None else (slot.microtask_id, slot)


@transaction.atomic
def claim_next(
    *,
    worker_id: int,
    job_id: int | None,
    now: datetime,
    prior_trust: float,
    limit: int,
    draws: list[float],
    max_claims: int,
) -> tuple[Assignment | None, bool]:
    """``claim_next``, step by step: (the new assignment, fully loaded, or None; whether a slot
    was picked). Same parameters, same conditions, same order, same result.

    Read ``claim_next`` in ``claiming.sql`` before changing anything here: the two are one rule
    written twice (SQL for PostgreSQL, ORM for SQLite), and ``tests/tasks/test_claim_paths.py``
    runs the same claim scenarios through both, this one on a real SQLite database.
    """
    seat = claim_seat(worker_id=worker_id, max_claims=max_claims)
    if max_claims > 0 and seat is None:
        return None, False
    trust = _trust_of(worker_id=worker_id)
    jobs = _claimable_jobs(worker_id=worker_id, job_id=job_id).values_list(
        "id", "gold_rate", "min_trust", "annotation_type", "claim_time_limit"
    )
    ordinal = 0
    for pk, gold_rate, min_trust, annotation_type, time_limit in jobs:
        if min_trust > 0 and trust.get(annotation_type, prior_trust) < min_trust:
            continue
        ordinal += 1
        if ordinal > limit:
            break
        # The k-th candidate job's gold draw is draws[k] (1-based in the SQL), else a fresh one.
        draw = draws[ordinal - 1] if ordinal <= len(draws) else random.random()
        picked = None
        if draw < gold_rate:
            picked = _gold_slot(job_id=pk, worker_id=worker_id)
        if picked is None:
            picked = _regular_slot(job_id=pk, worker_id=worker_id)
        if picked is None:
            continue
        microtask_id, slot = picked
        try:
            with transaction.atomic():
                assignment = Assignment.objects.create(
                    microtask_id=microtask_id,
                    worker_id=worker_id,
                    slot=slot,
                    status=AssignmentStatus.CLAIMED,
                    claimed_at=now,
                    deadline=now + time_limit,
                    reserved_amount=slot.reserved_amount,
                    claim_seat=seat,
                )
        except IntegrityError:
            # claim_next's ON CONFLICT DO NOTHING: this worker won a concurrent claim of the
            # same microtask, or of the same claim seat; the caller retries.
            return None, True
        Slot.objects.filter(pk=slot.pk).update(assignment=assignment)
        loaded = Assignment.objects.select_related("microtask__video", "microtask__job")
        return loaded.get(pk=assignment.pk), True
    return None, False


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
    provenance: list | None = None,
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
    return Submission.objects.create(
        assignment_id=assignment_id, payload=payload, frames=frames, provenance=provenance or []
    ).pk


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
