"""Money for assignments: pay on approval, unpay on rejection, take back an upheld dispute's pay,
bonuses to workers who handed work in, and funding a job at its saved prices.

The amounts are payments' (``payments.work`` posts them, ``payments.escrow`` holds the job's
money); what an assignment is, how long it really took, whose trust prices it and who counts as
having worked on a job are this app's. Other apps reach these through ``tasks.budget``, the claim
path's one door to money. Each service locks the assignment row first, then (inside payments)
the job's escrow account: the same order everywhere, so two of them never deadlock.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Sum

from marketplace.errors import PermissionDenied, ValidationError
from marketplace.models import Job, User
from payments import funding as _funding
from payments import work as _work
from payments.errors import BonusNotAllowed, InvalidAmount
from payments.models import Funding
from payments.posting import audit_log_record, check_money_amount
from payments.selectors import (
    worker_trust,  # the trust seam quality installs
)

from .models import Assignment, AssignmentStatus
from .quoting import job_prices_save

# Statuses that mean the worker handed work in: a claim costs nothing to make, so "worked on
# this job" must mean work the requester has (or had) in hand.
BONUS_QUALIFYING_STATUSES = (
    AssignmentStatus.SUBMITTED,
    AssignmentStatus.APPROVED,
    AssignmentStatus.REJECTED,
)


def measured_seconds(assignment: Assignment, job: Job) -> float:
    """Measured active time, capped at the claim's time limit (no one works past the limit)."""
    seconds = float(assignment.active_seconds or 0.0)
    limit = job.claim_time_limit.total_seconds() if job.claim_time_limit else seconds
    return max(0.0, min(seconds, limit))


def _locked(assignment: Assignment, *related: str) -> Assignment:
    return (
        Assignment.objects.select_for_update(of=("self",))
        .select_related(*related)
        .get(pk=assignment.pk)
    )


@transaction.atomic
def assignment_pay(
    *, assignment: Assignment, credit: float = 1.0, trust: float | None = None
) -> int:
    """Pay an approved assignment from its reservation; returns the worker's pay.

    ``trust`` is the worker's trust for the job's type, which sets the pay multiplier; the
    caller (quality) passes it, else it is read once here. Idempotent per assignment.
    """
    if not 0.0 <= credit <= 1.0:
        raise InvalidAmount(f"Credit is a fraction between 0 and 1; got {credit}.")
    a = _locked(assignment, "microtask", "microtask__job", "worker")
    if _work.work_paid(assignment_id=a.pk):
        assignment.pay_amount = a.pay_amount
        return int(a.pay_amount or 0)
    job = a.microtask.job
    if trust is None:
        trust = worker_trust(worker=a.worker, annotation_type=job.annotation_type)
    paid = _work.work_pay(
        job=job,
        worker=a.worker,
        assignment_id=a.pk,
        reserved=int(a.reserved_amount or 0),
        price=int(a.microtask.price),
        trust=trust,
        credit=credit,
        seconds=measured_seconds(a, job),
    )
    Assignment.objects.filter(pk=a.pk).update(pay_amount=paid.pay)
    audit_log_record(
        action="assignment.paid",
        actor=User(pk=a.reviewed_by_id) if a.reviewed_by_id else None,  # None: auto-approved
        amount=paid.pay,
        currency=job.currency,
        reason=f"approved, credit {credit:g}",
        obj=a,
        transaction=paid.transaction.pk,
        fee=paid.fee,
        topup=paid.topup,
    )
    assignment.pay_amount = paid.pay
    return paid.pay


@transaction.atomic
def assignment_unpaid(*, assignment: Assignment) -> None:
    """A rejected assignment: its reservation goes back to the job's available escrow."""
    a = _locked(assignment, "microtask__job")
    job = a.microtask.job
    tx = _work.work_unpaid(
        job=job, worker=a.worker, assignment_id=a.pk, reserved=int(a.reserved_amount or 0)
    )
    if tx is None:  # unpaid before
        return
    Assignment.objects.filter(pk=a.pk).update(pay_amount=0)
    audit_log_record(
        action="assignment.unpaid",
        actor=User(pk=a.reviewed_by_id) if a.reviewed_by_id else None,
        amount=int(a.reserved_amount or 0),
        currency=job.currency,
        reason=a.rejection_reason or "rejected",
        obj=a,
        transaction=tx.pk,
    )
    assignment.pay_amount = 0


@transaction.atomic
def assignment_pay_reverse(*, assignment: Assignment, reason: str, actor: User) -> int:
    """Take back an approved assignment's pay: an admin upheld a rejection of delivered work.

    The job ends where a rejection would have left it (``payments.work.work_pay_reverse``); only
    while the pay is in its hold period, else Conflict and nothing moves. Idempotent per
    assignment. Returns the pay taken back.
    """
    a = _locked(assignment, "microtask__job", "worker")
    pay, tx = _work.work_pay_reverse(
        job=a.microtask.job,
        worker=a.worker,
        assignment_id=a.pk,
        reserved=int(a.reserved_amount or 0),
        actor=actor,
    )
    if tx is None:  # taken back before
        return pay
    Assignment.objects.filter(pk=a.pk).update(pay_amount=0)
    audit_log_record(
        action="assignment.pay_reversed",
        actor=actor,
        amount=pay,
        currency=tx.currency,
        reason=reason,
        obj=a,
        transaction=tx.pk,
    )
    assignment.pay_amount = 0
    return pay


def _owner_or_admin(job: Job, user: User) -> None:
    if not (user.is_platform_admin or job.requester_id == user.pk):
        raise PermissionDenied("Only the job's requester can do that.")


@transaction.atomic
def bonus_grant(*, job: Job, worker: User, amount: int, reason: str, actor: User, key: str) -> int:
    """A bonus from the job's available escrow to a worker who submitted work on it (plus the
    platform fee); raises ``BonusNotAllowed`` (400) for anyone else."""
    _owner_or_admin(job, actor)
    if not reason.strip():
        raise ValidationError("Give the worker a reason for the bonus.")
    check_money_amount(amount)
    if not Assignment.objects.filter(
        microtask__job=job, worker=worker, status__in=BONUS_QUALIFYING_STATUSES
    ).exists():
        raise BonusNotAllowed(
            f"Worker #{worker.pk} has no submitted work on job #{job.pk}; bonuses go only to "
            "workers who submitted work on the job (a claim alone does not count)."
        )
    return _work.bonus_pay(
        job=job, worker=worker, amount=amount, reason=reason, actor=actor, key=key
    )


def job_funding_create(
    *,
    job: Job,
    requester: User,
    return_url: str,
    amount: int | None = None,
    fit_budget: bool = False,
) -> Funding:
    """Price the job's microtasks (saving the prices), then open a Stripe Checkout Session for
    what it still needs (``payments.funding.funding_create``), or ``amount``; refused before
    anything is priced for anyone but the job's requester, or for a finished job.

    ``fit_budget``: when the quote needs more than the job's budget leaves, pay what the budget
    leaves instead; publishing then makes claimable only the microtasks that covers
    (``tasks.quoting.budget_coverage`` says how many, by publishing's own rule).

    Not one transaction: saved prices are only the quote (as ``job_prices_save`` alone saves
    them), and what ``funding_create`` learns from Stripe about earlier payments of the job is
    committed even when it then refuses the new one."""
    _funding.funding_check(job=job, requester=requester)
    quote = job_prices_save(job=job)
    return _funding.funding_create(
        job=job,
        requester=requester,
        quote=quote,
        amount=amount,
        fit_budget=fit_budget,
        return_url=return_url,
    )


def worker_measured_work(*, worker: User, currency: str) -> tuple[int, float]:
    """The worker's paid work in ``currency``: total pay and the measured seconds it took, over
    assignments with both (the effective hourly rate's inputs; payments asks through its seam)."""
    agg = Assignment.objects.filter(
        worker=worker, pay_amount__gt=0, active_seconds__gt=0, microtask__job__currency=currency
    ).aggregate(pay=Sum("pay_amount"), seconds=Sum("active_seconds"))
    return int(agg["pay"] or 0), float(agg["seconds"] or 0.0)
