"""A job's quality policy: what the requester may switch (partial credit, automatic approval and
rejection, the reject ratio, the confidence dynamic overlap asks for), within bounds."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from marketplace import bounds
from marketplace.errors import ValidationError
from marketplace.models import Job, User
from marketplace.services import job_create, job_update

from ..models import JobQualityPolicy
from .common import policy_for, visible_job

# The summed vote weight (log-odds of trust) agreeing workers must reach; a few trusted workers
# give single digits, so anything past this could never be reached and would stall every job.
MIN_CONFIDENCE_MAX = 100.0

POLICY_FIELDS = frozenset(
    {"partial_credit", "auto_approve", "auto_reject", "reject_below_ratio", "min_confidence"}
)


@transaction.atomic
def job_quality_policy_update(*, job_id: int, by: User, **fields: Any) -> JobQualityPolicy:
    """Change the job's quality policy (its requester or an admin); out-of-range values refused."""
    job = visible_job(job_id=job_id, by=by)
    unknown = set(fields) - POLICY_FIELDS
    if unknown:
        raise ValidationError(f"Unknown policy fields: {', '.join(sorted(unknown))}.")
    pol, _ = JobQualityPolicy.objects.select_for_update().get_or_create(job=job)
    for k, v in fields.items():
        setattr(pol, k, v)
    ranges = {"reject_below_ratio": (0.0, 1.0), "min_confidence": (0.0, MIN_CONFIDENCE_MAX)}
    for name, (lo, hi) in ranges.items():
        value = getattr(pol, name)
        if not (bounds.is_real_number(value) and lo <= value <= hi):
            raise ValidationError(
                f"{name} must be a number between {lo:g} and {hi:g}.",
                extra={"fields": {name: [f"between {lo:g} and {hi:g}"]}},
            )
    pol.save()
    return pol


# The requester's choice, as on MTurk: consensus (and gold) settle work at once, or the requester
# reviews first and unreviewed work approves itself after the job's ``auto_approve_delay``.
REVIEW_AUTO = "auto"
REVIEW_FIRST = "review_first"
REVIEW_MODES = {
    REVIEW_AUTO: {"auto_approve": True, "auto_reject": True},
    REVIEW_FIRST: {"auto_approve": False, "auto_reject": False},
}


def review_mode(pol: JobQualityPolicy) -> str:
    """The policy's review mode, or "custom" when its switches were set one by one (API)."""
    for mode, switches in REVIEW_MODES.items():
        if all(getattr(pol, k) == v for k, v in switches.items()):
            return mode
    return "custom"


def job_review_mode(job: Job) -> str:
    """The job's review mode (``auto`` when the requester never set a policy)."""
    return review_mode(policy_for(job))


def _review_switches(mode: str, *, field: str = "mode") -> dict[str, bool]:
    if mode not in REVIEW_MODES:
        raise ValidationError(
            f"Choose a review mode: {', '.join(REVIEW_MODES)}.",
            extra={"fields": {field: ["unknown mode"]}},
        )
    return REVIEW_MODES[mode]


def job_review_mode_set(*, job_id: int, by: User, mode: str) -> JobQualityPolicy:
    """Accept consensus automatically, or hold every submission for the requester's review."""
    return job_quality_policy_update(job_id=job_id, by=by, **_review_switches(mode))


@transaction.atomic
def job_create_with_review_mode(
    *, requester: User, mode: str = REVIEW_AUTO, field: str = "mode", **fields: Any
) -> Job:
    """A draft job (``marketplace.services.job_create``, its bounds and checks) with the review
    mode the requester chose (the new-job page, ``POST /api/jobs/``): both saved, or neither.
    ``field`` names the mode in an error (the page's and the API's field is ``review_mode``)."""
    # An unknown mode is refused before anything is created.
    switches = _review_switches(mode, field=field)
    job = job_create(requester=requester, **fields)
    job_quality_policy_update(job_id=job.pk, by=requester, **switches)
    return job


@transaction.atomic
def job_update_with_review_mode(
    *, job: Job, by: User, mode: str | None = None, field: str = "mode", **fields: Any
) -> Job:
    """``marketplace.services.job_update`` (a draft's fields) and, when given, the review mode
    (``job_review_mode_set``): both saved, or neither. The mode alone may change at any status,
    as on the dashboard; a job's fields only while it is a draft."""
    switches = _review_switches(mode, field=field) if mode is not None else None
    if fields or switches is None:
        job = job_update(job=job, by=by, **fields)
    if switches is not None:
        # The job answered carries the policy just saved: the caller's instance may hold the
        # one read with it (a view's ``select_related``), and the mode alone leaves it as given.
        job.quality_policy = job_quality_policy_update(job_id=job.pk, by=by, **switches)
    return job
