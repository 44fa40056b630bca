"""The claim path's one door to money (see MONEY_CONTRACT: budget is reserved per replica slot).

Every call the tasks app makes about money goes through these functions, so that pointing the
claim path at the payments ledger is a change to this module only. They delegate to
``payments.services`` / ``payments.selectors`` when that API is installed; until then an
*interim* accounting on the job's own ``budget`` field stands in, labelled as such:

* available budget = ``job.budget`` - reservations held by the job's slots (a rejected
  assignment's reservation counts as returned);
* pay for an approved assignment = the microtask's ``price`` (no trust multiplier, no fee).
"""

from __future__ import annotations

from django.db.models import Q, Sum

from marketplace.errors import Conflict
from marketplace.models import Job

from .models import Assignment, AssignmentStatus, MicroTask, Slot

try:  # the payments escrow API (MONEY_CONTRACT.md)
    from payments import selectors as _pay_selectors
    from payments import services as _pay_services
    from payments.errors import InsufficientEscrow as _InsufficientEscrow

    PAYMENTS = all(
        hasattr(_pay_services, name)
        for name in ("escrow_reserve", "escrow_release", "assignment_pay", "assignment_unpaid")
    ) and all(hasattr(_pay_selectors, name) for name in ("escrow_balance", "slot_reservation_for"))
except ImportError:  # pragma: no cover - depends on which branches are merged
    PAYMENTS = False


class InsufficientBudget(Conflict):
    """The job's funded budget does not cover this work."""

    code = "insufficient_budget"


def slot_reservation(*, microtask: MicroTask) -> int:
    """Minor units to reserve for one replica of ``microtask`` (its highest possible cost)."""
    if PAYMENTS:
        return int(_pay_selectors.slot_reservation_for(microtask=microtask))
    return int(microtask.price)


def available(*, job: Job) -> int:
    """Funded budget of ``job`` not yet reserved or spent, minor units."""
    if PAYMENTS:
        return int(_pay_selectors.escrow_balance(job=job).available)
    held = (
        Slot.objects.filter(job=job)
        .exclude(Q(assignment__status=AssignmentStatus.REJECTED))
        .aggregate(total=Sum("reserved_amount"))["total"]
    )
    return int(job.budget) - int(held or 0)


def reserve(*, job: Job, amount: int, key: str) -> None:
    """Move ``amount`` of the job's available budget to reserved, or raise InsufficientBudget."""
    if amount <= 0:
        return
    if PAYMENTS:
        try:
            _pay_services.escrow_reserve(job=job, amount=amount, key=key)
        except _InsufficientEscrow as exc:
            raise InsufficientBudget(exc.message) from exc
        return
    if available(job=job) < amount:
        raise InsufficientBudget("The job's budget does not cover this work; add funds first.")


def release(*, job: Job, amount: int, key: str) -> None:
    """Return ``amount`` of reserved budget to available (cancelled or unused slots)."""
    if amount <= 0:
        return
    if PAYMENTS:
        _pay_services.escrow_release(job=job, amount=amount, key=key)


def pay(*, assignment: Assignment) -> int:
    """Approval: consume the assignment's reservation, credit the worker; returns the pay."""
    if PAYMENTS:
        return int(_pay_services.assignment_pay(assignment=assignment))
    amount = int(assignment.microtask.price)
    Assignment.objects.filter(pk=assignment.pk).update(pay_amount=amount)
    assignment.pay_amount = amount
    return amount


def unpaid(*, assignment: Assignment) -> None:
    """Rejection: the assignment's reservation goes back to the job's available budget."""
    if PAYMENTS:
        _pay_services.assignment_unpaid(assignment=assignment)
