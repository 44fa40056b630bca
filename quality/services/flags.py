"""Fraud flags: raised when a microtask's submissions are processed (copies, implausible speed),
when the claim path reports inflated active time, and when a worker's record on model proposals
says they accept without looking; judged by a platform admin. The signals themselves are
``quality.fraud``'s and ``quality.assist``'s (pure)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from marketplace.errors import NotFound, PermissionDenied
from marketplace.models import AnnotationType, User
from tasks.models import Assignment, AssignmentStatus, MicroTask

from .. import assist, fraud, shapes
from ..models import FlagStatus, FraudFlag


def flag_fraud(mt: MicroTask) -> int:
    """Flag what the submissions of ``mt`` give away (shapes, not class labels); returns how
    many flags are new."""
    job = mt.job
    rows = list(
        Assignment.objects.filter(
            microtask=mt,
            status__in=(
                AssignmentStatus.SUBMITTED,
                AssignmentStatus.APPROVED,
                AssignmentStatus.REJECTED,
            ),
        ).select_related("submission")
    )
    if len(rows) < 2 or job.annotation_type == AnnotationType.CLASSIFY:
        return 0
    classes = list(job.label_classes)
    views = []
    for a in rows:
        sub = getattr(a, "submission", None)
        if sub is None:
            continue
        seconds = a.active_seconds if a.active_seconds is not None else a.work_seconds
        views.append(
            fraud.SubmissionView(
                key=a.pk,
                worker=a.worker_id,
                annotation=shapes.to_annotation(sub.frames, classes),
                seconds=seconds,
                order=a.submitted_at.timestamp() if a.submitted_at else 0.0,
            )
        )
    n = 0
    for sig in fraud.fraud_signals(views):
        _, created = FraudFlag.objects.get_or_create(
            assignment_id=sig.key,
            kind=sig.kind,
            defaults={"worker_id": sig.worker, "job": job, "evidence": sig.evidence},
        )
        n += created
    return n


def fraud_flag_inflated_time(*, assignment: Assignment, evidence: dict[str, Any]) -> FraudFlag:
    """Record that a worker reported more active time on ``assignment`` than can be credited
    (one flag per assignment; a later report updates its evidence while it is open)."""
    flag, created = FraudFlag.objects.get_or_create(
        assignment=assignment,
        kind=fraud.INFLATED_TIME,
        defaults={
            "worker_id": assignment.worker_id,
            "job_id": assignment.microtask.job_id,
            "evidence": evidence,
        },
    )
    if not created and flag.status == "open":
        flag.evidence = evidence
        flag.save(update_fields=["evidence"])
    return flag


@transaction.atomic
def fraud_flag_blind_accept(*, assignment: Assignment, test: assist.AcceptTest) -> FraudFlag | None:
    """Record a ``blind_accept`` flag on ``assignment`` (the work that tipped the test) when
    :func:`quality.assist.blind_accept_test` over the worker's record says so; None otherwise.

    One open flag per worker and job: a later tipping assignment while one is open updates that
    flag's evidence instead of piling up flags for the same behaviour.
    """
    sig = test.signal(key=assignment.pk, worker=assignment.worker_id)
    if sig is None:
        return None
    job_id = assignment.microtask.job_id
    open_flag = (
        FraudFlag.objects.select_for_update()
        .filter(worker_id=sig.worker, job_id=job_id, kind=sig.kind, status=FlagStatus.OPEN)
        .first()
    )
    if open_flag is not None:
        open_flag.evidence = sig.evidence
        open_flag.save(update_fields=["evidence"])
        return open_flag
    flag, _ = FraudFlag.objects.get_or_create(
        assignment=assignment,
        kind=sig.kind,
        defaults={"worker_id": sig.worker, "job_id": job_id, "evidence": sig.evidence},
    )
    return flag


@transaction.atomic
def fraud_flag_resolve(*, flag_id: int, by: User, confirmed: bool) -> FraudFlag:
    """An admin confirms or dismisses a flag."""
    if not by.is_platform_admin:
        raise PermissionDenied("Only platform admins judge fraud flags.")
    flag = FraudFlag.objects.select_for_update().filter(pk=flag_id).first()
    if flag is None:
        raise NotFound("No such flag.")
    flag.status = "confirmed" if confirmed else "dismissed"
    flag.resolved_by = by
    flag.save(update_fields=["status", "resolved_by"])
    return flag
