"""Writes of review: a requester approves or rejects submitted work, one by one or in bulk, and
unreviewed work approves itself after the job's delay. Money moves through ``tasks.budget``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from marketplace.errors import Conflict, NotFound, ValidationError
from marketplace.models import User
from marketplace.selectors import jobs_visible_to

from . import budget
from .models import Assignment, AssignmentStatus

MAX_REASON = 500
MAX_BULK = 1_000


def _now() -> datetime:
    return timezone.now()


def _lock_for_review(*, by: User | None, ids: Sequence[int]) -> list[Assignment]:
    """Lock the submitted assignments ``ids`` that ``by`` may review, in id order (no deadlocks).

    Any id that is not visible to ``by`` is reported as not found; any that is not awaiting review
    is a conflict. Either way nothing changes.
    """
    unique = sorted(set(ids))
    qs = Assignment.objects.select_for_update(of=("self",)).select_related("microtask__job")
    if by is not None:
        qs = qs.filter(microtask__job__in=jobs_visible_to(by))
    rows = list(qs.filter(pk__in=unique).order_by("pk"))
    missing = sorted(set(unique) - {a.pk for a in rows})
    if missing:
        raise NotFound(f"No such submission: {', '.join(map(str, missing[:20]))}.")
    not_pending = [a for a in rows if a.status != AssignmentStatus.SUBMITTED]
    if not_pending:
        shown = ", ".join(f"#{a.pk} is {a.get_status_display().lower()}" for a in not_pending[:10])
        raise Conflict(f"Only submitted work awaiting review can be reviewed ({shown}).")
    return rows


def _approve(assignment: Assignment, *, by: User | None, now: datetime) -> Assignment:
    assignment.status = AssignmentStatus.APPROVED
    assignment.reviewed_at = now
    assignment.reviewed_by = by
    assignment.save(update_fields=["status", "reviewed_at", "reviewed_by"])
    budget.pay(assignment=assignment)
    return assignment


def _clean_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(
            "Say why the work is rejected; the worker sees the reason.",
            extra={"fields": {"reason": ["a reason is required"]}},
        )
    if len(reason) > MAX_REASON:
        raise ValidationError(
            f"Keep the reason under {MAX_REASON} characters.",
            extra={"fields": {"reason": [f"at most {MAX_REASON} characters"]}},
        )
    return reason


def _reject(assignment: Assignment, *, by: User, reason: str, now: datetime) -> Assignment:
    assignment.status = AssignmentStatus.REJECTED
    assignment.reviewed_at = now
    assignment.reviewed_by = by
    assignment.rejection_reason = reason
    assignment.pay_amount = 0
    assignment.save(
        update_fields=["status", "reviewed_at", "reviewed_by", "rejection_reason", "pay_amount"]
    )
    budget.unpaid(assignment=assignment)
    return assignment


@transaction.atomic
def assignment_approve(*, assignment_id: int, by: User) -> Assignment:
    """Accept submitted work: the worker is paid from the assignment's reservation."""
    (assignment,) = _lock_for_review(by=by, ids=[assignment_id])
    return _approve(assignment, by=by, now=_now())


@transaction.atomic
def assignment_reject(*, assignment_id: int, by: User, reason: str) -> Assignment:
    """Refuse submitted work with a reason the worker sees; its reservation returns to the job."""
    reason = _clean_reason(reason)
    (assignment,) = _lock_for_review(by=by, ids=[assignment_id])
    return _reject(assignment, by=by, reason=reason, now=_now())


@transaction.atomic
def assignments_review_bulk(
    *, by: User, action: str, assignment_ids: Sequence[int], reason: str = ""
) -> list[Assignment]:
    """Approve or reject many submissions at once: all of them, or (on any error) none."""
    if action not in ("approve", "reject"):
        raise ValidationError(
            'action must be "approve" or "reject".', extra={"fields": {"action": ["unknown"]}}
        )
    if not assignment_ids:
        raise ValidationError(
            "Choose at least one submission.", extra={"fields": {"assignments": ["empty"]}}
        )
    if len(assignment_ids) > MAX_BULK:
        raise ValidationError(f"Review at most {MAX_BULK} submissions at once.")
    if action == "reject":
        reason = _clean_reason(reason)
    rows = _lock_for_review(by=by, ids=assignment_ids)
    now = _now()
    if action == "approve":
        return [_approve(a, by=by, now=now) for a in rows]
    return [_reject(a, by=by, reason=reason, now=now) for a in rows]


@transaction.atomic
def assignments_auto_approve_due(*, batch: int = 500) -> int:
    """Approve submissions whose review delay has passed; returns how many (one batch)."""
    now = _now()
    rows = list(
        Assignment.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(status=AssignmentStatus.SUBMITTED, auto_approve_at__lte=now)
        .select_related("microtask")
        .order_by("auto_approve_at", "pk")[:batch]
    )
    for assignment in rows:
        _approve(assignment, by=None, now=now)
    return len(rows)
