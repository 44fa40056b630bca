"""Writes of review: a requester approves or rejects submitted work, one by one or in bulk, and
unreviewed work approves itself after the job's delay. Money moves through ``tasks.budget``.

:func:`approve` and :func:`reject` are the one approve path and the one reject path of the whole
code base: requester review, bulk review, auto-approval, disputes here, and quality's automatic
decisions and upheld appeals (quality sits above tasks and calls them) all go through them, so
work changes state and money moves in one place, in one order.

A requester cannot take back work they already have. Exports carry approved work only
(``tasks.exporting``) and record which submissions they carried (``ExportedWork``); rejecting such
work does not unpay anyone: it opens a :class:`~tasks.models.RejectionDispute` for an admin, the
work stays approved and paid, and the requester is told so (the API answers 202). An admin who
upholds the dispute takes the pay back (``budget.pay_reversed``) and the work becomes rejected;
one who dismisses it leaves everything as it was. Approved work that was never exported cannot
be rejected at all (409), as before.

Every rejection a person makes is announced with ``signals.work_rejected`` (inside the same
transaction); quality decides what it does to the worker's standing and trust.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from marketplace.errors import Conflict, NotFound, PermissionDenied, ValidationError
from marketplace.models import User
from marketplace.selectors import jobs_visible_to

from . import budget, signals
from .models import (
    Assignment,
    AssignmentStatus,
    DisputeStatus,
    ExportedWork,
    MicroTask,
    RejectionDispute,
)

MAX_REASON = 500
MAX_BULK = 1_000


def _now() -> datetime:
    return timezone.now()


def _lock_microtasks_first(*, by: User | None, ids: Sequence[int]) -> None:
    """Lock the microtasks of the assignments ``ids`` (those ``by`` may review), in id order,
    before their assignments: the order scoring takes them in (``quality.services.processing``
    locks a microtask, then decides its assignments here). A review that locked an assignment
    first took the microtask's KEY SHARE lock only at commit (the ledger posting's foreign key)
    and deadlocked with a scoring of the same microtask (found by ``bench/load``)."""
    assignments = Assignment.objects.filter(pk__in=sorted(set(ids)))
    if by is not None:
        assignments = assignments.filter(microtask__job__in=jobs_visible_to(by))
    list(
        MicroTask.objects.select_for_update(of=("self",))
        .filter(pk__in=assignments.values("microtask_id"))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _lock_for_review(*, by: User | None, ids: Sequence[int]) -> list[Assignment]:
    """Lock the submitted assignments ``ids`` that ``by`` may review, in id order (no deadlocks).

    Any id that is not visible to ``by`` is reported as not found; any that is not awaiting review
    is a conflict. Either way nothing changes.
    """
    _lock_microtasks_first(by=by, ids=ids)
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
    if len(rows) > 1:
        budget.lock_pay_accounts(rows)
    return rows


def approve(
    *, assignment: Assignment, by: User | None, credit: float = 1.0, now: datetime | None = None
) -> Assignment:
    """The one approve path: ``assignment`` becomes approved and is paid ``credit`` of its pay
    through the one door to money (``budget.pay``).

    Every approval takes it: a requester's (one by one or in bulk), the auto-approval delay's,
    quality's automatic decision (``by`` None) and an admin's upheld appeal. The caller holds
    the assignment's row lock and has checked that the work awaits review.
    """
    assignment.status = AssignmentStatus.APPROVED
    assignment.reviewed_at = now or _now()
    assignment.reviewed_by = by
    assignment.save(update_fields=["status", "reviewed_at", "reviewed_by"])
    budget.pay(assignment=assignment, credit=credit)
    return assignment


def _clean_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(
            "Say why the work is rejected; the worker sees the reason.",
            extra={"fields": {"reason": ["a reason is required"]}},
        )
    if "\x00" in reason:  # PostgreSQL text cannot hold it; a page form can send it
        raise ValidationError(
            "The reason contains a NUL character; remove it.",
            extra={"fields": {"reason": ["no NUL characters"]}},
        )
    if len(reason) > MAX_REASON:
        raise ValidationError(
            f"Keep the reason under {MAX_REASON} characters.",
            extra={"fields": {"reason": [f"at most {MAX_REASON} characters"]}},
        )
    return reason


def _mark_rejected(assignment: Assignment, *, by: User | None, reason: str, now: datetime) -> None:
    assignment.status = AssignmentStatus.REJECTED
    assignment.reviewed_at = now
    assignment.reviewed_by = by
    assignment.rejection_reason = reason
    assignment.pay_amount = 0
    assignment.save(
        update_fields=["status", "reviewed_at", "reviewed_by", "rejection_reason", "pay_amount"]
    )


def reject(
    *,
    assignment: Assignment,
    by: User | None,
    reason: str,
    now: datetime | None = None,
    confirmed: bool = False,
) -> Assignment:
    """The one reject path: ``assignment`` becomes rejected with ``reason`` (the worker sees it)
    and unpaid through the one door to money.

    Work awaiting review releases its reservation to the job (``budget.unpaid``). Approved,
    paid work (an admin upheld a dispute of exported work) has its pay taken back first
    (``budget.pay_reversed``): when it can no longer be, the Conflict leaves the work and the
    ledger exactly as they were. The caller holds the row lock and checked the state.

    A person's rejection (``by`` given) is announced with ``signals.work_rejected`` inside this
    transaction (``confirmed``: an admin upheld the requester's word); an automatic one
    (quality's failed gold, ``by`` None) counts through its gold result instead.
    """
    reason = reason[:MAX_REASON]
    now = now or _now()
    if assignment.status == AssignmentStatus.APPROVED:
        # Money first, so a refusal to take the pay back changes nothing.
        budget.pay_reversed(assignment=assignment, reason=reason, actor=by)
        _mark_rejected(assignment, by=by, reason=reason, now=now)
    else:
        # The ledger's audit row names who rejected and why: mark the work first.
        _mark_rejected(assignment, by=by, reason=reason, now=now)
        budget.unpaid(assignment=assignment)
    if by is not None:
        signals.work_rejected.send(
            sender=Assignment, assignment=assignment, by=by, confirmed=confirmed
        )
    return assignment


@dataclass(frozen=True)
class ReviewOutcome:
    """What a review did: work approved or rejected at once (``done``), and work whose labels
    the requester already exported, sent to an admin instead of rejected (still approved, paid)."""

    done: list[Assignment]
    disputed: list[RejectionDispute]

    @property
    def message(self) -> str:
        if not self.disputed:
            return ""
        ids = ", ".join(f"#{d.assignment_id}" for d in self.disputed[:20])
        return (
            f"You already exported the labels of {ids}, so rejecting that work is an admin's "
            "decision: a dispute is open for each, and the worker keeps the pay unless an admin "
            "upholds it."
        )


def _lock_for_rejection(
    *, by: User, ids: Sequence[int]
) -> tuple[list[Assignment], list[Assignment]]:
    """Lock ``ids`` for a rejection: (submitted work to reject, exported work to dispute).

    All or nothing, like ``_lock_for_review``: an id not visible to ``by`` is not found; approved
    work that was never exported, work in any other state, and work already disputed are
    conflicts.
    """
    _lock_microtasks_first(by=by, ids=ids)
    unique = sorted(set(ids))
    qs = Assignment.objects.select_for_update(of=("self",)).select_related("microtask__job")
    qs = qs.filter(microtask__job__in=jobs_visible_to(by))
    rows = list(qs.filter(pk__in=unique).order_by("pk"))
    missing = sorted(set(unique) - {a.pk for a in rows})
    if missing:
        raise NotFound(f"No such submission: {', '.join(map(str, missing[:20]))}.")
    approved = [a.pk for a in rows if a.status == AssignmentStatus.APPROVED]
    exported = set(
        ExportedWork.objects.filter(assignment_id__in=approved).values_list(
            "assignment_id", flat=True
        )
    )
    wrong = [
        a
        for a in rows
        if a.status != AssignmentStatus.SUBMITTED
        and not (a.status == AssignmentStatus.APPROVED and a.pk in exported)
    ]
    if wrong:
        shown = ", ".join(f"#{a.pk} is {a.get_status_display().lower()}" for a in wrong[:10])
        raise Conflict(
            "Only submitted work awaiting review can be rejected, or approved work whose labels "
            f"you exported (an admin decides that) ({shown})."
        )
    earlier = dict(
        RejectionDispute.objects.filter(assignment_id__in=exported).values_list(
            "assignment_id", "status"
        )
    )
    if earlier:
        # Pending: an admin is on it. Dismissed: an admin decided the work stands, and asking
        # again would only queue the same question (upheld work is rejected, caught above).
        shown = ", ".join(f"#{a} ({st})" for a, st in sorted(earlier.items())[:10])
        raise Conflict(f"An admin is deciding, or has decided, a rejection of {shown}.")
    return (
        [a for a in rows if a.status == AssignmentStatus.SUBMITTED],
        [a for a in rows if a.status == AssignmentStatus.APPROVED],
    )


def _dispute(assignment: Assignment, *, by: User, reason: str) -> RejectionDispute:
    return RejectionDispute.objects.create(
        assignment=assignment, job_id=assignment.microtask.job_id, raised_by=by, reason=reason
    )


def _reject_or_dispute(*, by: User, ids: Sequence[int], reason: str) -> ReviewOutcome:
    to_reject, to_dispute = _lock_for_rejection(by=by, ids=ids)
    now = _now()
    return ReviewOutcome(
        done=[reject(assignment=a, by=by, reason=reason, now=now) for a in to_reject],
        disputed=[_dispute(a, by=by, reason=reason) for a in to_dispute],
    )


@transaction.atomic
def assignment_approve(*, assignment_id: int, by: User) -> Assignment:
    """Accept submitted work: the worker is paid from the assignment's reservation."""
    (assignment,) = _lock_for_review(by=by, ids=[assignment_id])
    return approve(assignment=assignment, by=by, now=_now())


@transaction.atomic
def assignment_reject(*, assignment_id: int, by: User, reason: str) -> ReviewOutcome:
    """Refuse submitted work with a reason the worker sees; its reservation returns to the job.

    Approved work whose labels were exported is not rejected but disputed (see the module)."""
    reason = _clean_reason(reason)
    return _reject_or_dispute(by=by, ids=[assignment_id], reason=reason)


@transaction.atomic
def assignments_review_bulk(
    *, by: User, action: str, assignment_ids: Sequence[int], reason: str = ""
) -> ReviewOutcome:
    """Approve or reject many submissions at once: all of them, or (on any error) none.

    A bulk rejection disputes exported work instead of rejecting it, as a single one does."""
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
        return _reject_or_dispute(by=by, ids=assignment_ids, reason=_clean_reason(reason))
    rows = _lock_for_review(by=by, ids=assignment_ids)
    now = _now()
    return ReviewOutcome(done=[approve(assignment=a, by=by, now=now) for a in rows], disputed=[])


@transaction.atomic
def assignments_auto_approve_due(*, batch: int = 500) -> int:
    """Approve submissions whose review delay has passed; returns how many (one batch)."""
    now = _now()
    due = Assignment.objects.filter(status=AssignmentStatus.SUBMITTED, auto_approve_at__lte=now)
    picked = list(due.order_by("auto_approve_at", "pk").values_list("pk", "microtask_id")[:batch])
    # Microtasks first, as scoring and ``_lock_for_review`` take them; one being scored right
    # now is skipped (the next sweep approves its work, if scoring left it submitted).
    free = set(
        MicroTask.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(pk__in={mt for _, mt in picked})
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    rows = list(
        due.select_for_update(skip_locked=True, of=("self",))
        .filter(pk__in=[pk for pk, mt in picked if mt in free])
        .select_related("microtask")
        .order_by("auto_approve_at", "pk")
    )
    budget.lock_pay_accounts(rows)  # jobs' escrow, then workers' accounts: the global order
    for assignment in rows:
        approve(assignment=assignment, by=None, now=now)
    return len(rows)


# --- Disputes: a requester's rejection of work they already exported --------------------------


@transaction.atomic
def dispute_decide(*, dispute_id: int, by: User, uphold: bool, note: str = "") -> RejectionDispute:
    """An admin decides a dispute. Upheld: the pay is taken back and the work is rejected with
    the requester's reason (the rejection then counts as confirmed, platform-wide). Dismissed:
    the work stays approved and paid."""
    if not by.is_platform_admin:
        raise PermissionDenied("Only platform admins decide disputes.")
    dispute = RejectionDispute.objects.select_for_update().filter(pk=dispute_id).first()
    if dispute is None:
        raise NotFound("No such dispute.")
    if dispute.status != DisputeStatus.PENDING:
        raise Conflict("This dispute has been decided already.")
    # The microtask before the assignment, as every review path and scoring take them: locked
    # the other way round, the pay reversal's ledger rows took the microtask's KEY SHARE lock at
    # commit and deadlocked with a scoring of the same microtask.
    _lock_microtasks_first(by=None, ids=[dispute.assignment_id])
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("microtask__job", "worker")
        .get(pk=dispute.assignment_id)
    )
    now = _now()
    if uphold:
        if assignment.status != AssignmentStatus.APPROVED:
            raise Conflict(f"Assignment #{assignment.pk} is no longer approved.")
        # Money first (``reject``): if the pay can no longer be taken back (it left the hold
        # period), the Conflict leaves the work, the dispute and the ledger exactly as they were.
        reject(assignment=assignment, by=by, reason=dispute.reason, now=now, confirmed=True)
    dispute.status = DisputeStatus.UPHELD if uphold else DisputeStatus.DISMISSED
    dispute.decided_by = by
    dispute.decided_at = now
    dispute.decision_note = (note or "")[:500]
    dispute.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    return dispute
