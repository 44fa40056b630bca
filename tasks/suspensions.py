"""A worker's suspension from one annotation type, and its terms (DESIGN invariant 10).

Quality suspends a worker from a type when their trust falls below its bar
(``quality.services.worker_suspend_from_type``, which calls :func:`qualification_suspend`). The
suspension lives on the worker's ``Qualification`` for the type (status ``suspended``), the row
every claim path already requires to be ``passed``, so no claim statement can hand out that
type's work while it lasts. It carries its own terms:

- **a cooldown**: ``suspended_until`` = suspension + ``QUALIFICATION_SUSPENSION_COOLDOWN_DAYS``.
  Until then the worker can neither retake the test nor claim; from then on they may retake it,
  with a fresh set of ``QUALIFICATION_MAX_ATTEMPTS`` (their earlier attempts stay on record as
  ``QualificationAttempt`` rows), and passing it ends the suspension;
- **until an admin lifts it** (``suspended_until`` empty): from the worker's
  ``QUALIFICATION_SUSPENSION_ADMIN_AFTER``-th suspension from the type on (the second, by
  default), or for every suspension when the cooldown is set to 0 days. Only an admin ends it
  (admin action *Lift suspension* on worker trust, ``quality.services.worker_suspension_lift``).

Ending a suspension erases nothing: the worker's trust starts from where it was, with all its
evidence (which ages as trust evidence always does, ``quality.trust``), so the next evidence that
leaves it below the bar suspends them again, on harder terms; the ``suspended_*`` fields and the
count of suspensions keep describing the past one. The worker is told why and until when: the
API refuses with a 403 ``suspended`` (``annotation_type`` and ``suspended_until`` beside the
message), and the worker pages show the same message.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from marketplace.errors import NotFound, PermissionDenied
from marketplace.models import (
    AnnotationType,
    Job,
    JobStatus,
    Qualification,
    QualificationStatus,
    User,
)


class Suspended(PermissionDenied):
    """You are suspended from this kind of work."""

    code = "suspended"


def now() -> datetime:
    """The clock of suspensions (a seam: tests move it past a cooldown)."""
    return timezone.now()


def cooldown() -> timedelta | None:
    """How long a suspension lasts before the worker may retake the test (None: until an admin
    lifts it)."""
    days = float(settings.QUALIFICATION_SUSPENSION_COOLDOWN_DAYS)
    return timedelta(days=days) if days > 0 else None


def admin_after() -> int:
    """From this many suspensions from a type on, a suspension lasts until an admin lifts it
    (0: never by count)."""
    return int(settings.QUALIFICATION_SUSPENSION_ADMIN_AFTER)


def terms(*, suspensions: int, at: datetime) -> datetime | None:
    """When the ``suspensions``-th suspension from a type ends (None: when an admin lifts it)."""
    length = cooldown()
    escalate = admin_after()
    if length is None or (escalate > 0 and suspensions >= escalate):
        return None
    return at + length


def is_suspended(q: Qualification | None, *, at: datetime | None = None) -> bool:
    """Whether the terms of ``q``'s suspension still hold (no retake, no claims)."""
    return (
        q is not None
        and q.status == QualificationStatus.SUSPENDED
        and (q.suspended_until is None or q.suspended_until > (at or now()))
    )


def _label(annotation_type: str) -> str:
    try:
        return AnnotationType(annotation_type).label.lower()
    except ValueError:
        return annotation_type


def _when(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def message(q: Qualification, *, at: datetime | None = None) -> str:
    """What a suspended worker is told: why, and until when."""
    at = at or now()
    kind = _label(q.annotation_type)
    why = f": {q.suspended_reason}" if q.suspended_reason else "."
    if not why.endswith("."):
        why += "."
    if q.suspended_until is None:
        return (
            f"You are suspended from {kind} work{why} The suspension lasts until an "
            "administrator lifts it; until then you cannot retake the qualification test or "
            "claim this work."
        )
    if q.suspended_until > at:
        return (
            f"You are suspended from {kind} work{why} You can retake the qualification test "
            f"from {_when(q.suspended_until)}; until you pass it you cannot claim this work."
        )
    return (
        f"Your suspension from {kind} work ended on {_when(q.suspended_until)}; pass the "
        "qualification test again to claim this work."
    )


def refusal(q: Qualification, *, at: datetime | None = None) -> Suspended:
    """The error that refuses a suspended worker, with the terms beside the message."""
    return Suspended(
        message(q, at=at),
        extra={
            "annotation_type": q.annotation_type,
            "suspended_until": q.suspended_until.isoformat() if q.suspended_until else None,
        },
    )


def check_claim(*, worker: User, job_id: int | None) -> None:
    """Raise :class:`Suspended` when a suspension is why ``worker`` found nothing to claim: the
    job asked for (or, without one, some published work) is of a type they are suspended from.

    The claim statements already refuse the type (its qualification is not ``passed``); this is
    the rare path that says so.
    """
    suspended = Qualification.objects.filter(worker=worker, status=QualificationStatus.SUSPENDED)
    published = Job.objects.filter(status=JobStatus.PUBLISHED)
    if job_id is not None:
        published = published.filter(pk=job_id)
    q = (
        suspended.filter(annotation_type__in=published.values("annotation_type"))
        .order_by("annotation_type")
        .first()
    )
    if q is not None:
        raise refusal(q)


@transaction.atomic
def qualification_suspend(
    *, worker: User, annotation_type: str, reason: str, score: float | None = None
) -> Qualification:
    """Suspend ``worker`` from ``annotation_type`` on the terms its count of suspensions gives.

    An active suspension is not renewed or lengthened by a second call (quality suspends once per
    fall below the bar). The test's attempts start afresh for the retake the terms allow.
    """
    at = now()
    q, _ = Qualification.objects.select_for_update().get_or_create(
        worker=worker, annotation_type=annotation_type
    )
    if is_suspended(q, at=at):
        return q
    q.suspensions += 1
    q.status = QualificationStatus.SUSPENDED
    q.suspended_at = at
    q.suspended_until = terms(suspensions=q.suspensions, at=at)
    q.suspended_reason = reason[:300]
    q.attempts = 0
    if score is not None:
        q.score = score
    q.save()
    return q


@transaction.atomic
def qualification_lift_suspension(*, worker: User, annotation_type: str, by: User) -> Qualification:
    """An admin ends a suspension: the worker may claim the type's work again at once."""
    if not by.is_platform_admin:
        raise PermissionDenied("Only platform admins lift suspensions.")
    q = (
        Qualification.objects.select_for_update()
        .filter(worker=worker, annotation_type=annotation_type)
        .first()
    )
    if q is None or q.status != QualificationStatus.SUSPENDED:
        raise NotFound("This worker is not suspended from that type of work.")
    q.status = QualificationStatus.PASSED
    q.save(update_fields=["status", "updated_at"])
    return q
