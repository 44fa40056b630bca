"""Fraud flags: raised when a microtask's submissions are processed (copies, implausible speed)
and when the claim path reports inflated active time; judged by a platform admin. The signals
themselves are ``quality.fraud``'s (pure)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from marketplace.errors import NotFound, PermissionDenied
from marketplace.models import AnnotationType, User
from tasks.models import Assignment, AssignmentStatus, MicroTask

from .. import fraud, shapes
from ..models import FraudFlag


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
