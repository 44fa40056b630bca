"""The claim path's one door to money (docs/money-contract.md: budget is reserved per replica slot).

Every call the tasks app makes about money goes through these functions, which delegate to the
payments escrow API (``payments.services`` / ``payments.selectors``): a slot exists only once its
reservation succeeded, so the hot claim path never touches money rows.
"""

from __future__ import annotations

from collections.abc import Callable

from marketplace.errors import Conflict
from marketplace.models import Job
from payments import pricing as _pricing
from payments import selectors as _pay_selectors
from payments import services as _pay_services
from payments.errors import InsufficientEscrow

from .models import Assignment, MicroTask


class InsufficientBudget(Conflict):
    """The job's funded escrow does not cover this work; fund the job first."""

    code = "insufficient_budget"


def reservation_pricer() -> Callable[[MicroTask], int]:
    """``microtask -> minor units one replica slot reserves`` under the active pricing policy.

    Reads the policy once, so pricing thousands of slots at publish costs one query.
    """
    policy = _pay_selectors.active_policy()
    return lambda microtask: int(_pricing.slot_reservation(price=microtask.price, policy=policy))


def slot_reservation(*, microtask: MicroTask) -> int:
    """Minor units to reserve for one replica of ``microtask`` (its highest possible cost)."""
    return int(_pay_selectors.slot_reservation_for(microtask=microtask))


def available(*, job: Job) -> int:
    """Funded escrow of ``job`` not yet reserved or spent, minor units."""
    return int(_pay_selectors.escrow_balance(job=job).available)


def reserve(*, job: Job, amount: int, key: str) -> None:
    """Move ``amount`` of the job's available escrow to reserved, or raise InsufficientBudget."""
    if amount <= 0:
        return
    try:
        _pay_services.escrow_reserve(job=job, amount=amount, key=key)
    except InsufficientEscrow as exc:
        raise InsufficientBudget(exc.message) from exc


def release(*, job: Job, amount: int, key: str) -> None:
    """Return ``amount`` of reserved escrow to available (cancelled or unused slots)."""
    if amount > 0:
        _pay_services.escrow_release(job=job, amount=amount, key=key)


def pay(*, assignment: Assignment, credit: float = 1.0) -> int:
    """Approval: consume the assignment's reservation, credit the worker; returns the pay."""
    return int(_pay_services.assignment_pay(assignment=assignment, credit=credit))


def unpaid(*, assignment: Assignment) -> None:
    """Rejection: the assignment's reservation goes back to the job's available escrow."""
    _pay_services.assignment_unpaid(assignment=assignment)


def pay_reversed(*, assignment: Assignment, reason: str, actor) -> int:
    """An admin upheld a rejection of approved (already paid) work: its pay goes back to the
    job's escrow, as if the work had been rejected in the first place; returns the pay taken."""
    taken = _pay_services.assignment_pay_reverse(assignment=assignment, reason=reason, actor=actor)
    return int(taken)


def refund_unspent(*, job: Job, actor) -> int:
    """A closed job's unspent escrow goes back to the requester through Stripe (queued on
    commit); returns the amount refunded. Escrow still reserved for submitted work stays until
    that work is reviewed."""
    from payments import funding  # imports the Stripe gateway; only needed when a job closes

    return sum(r.amount for r in funding.job_refund_unspent(job=job, actor=actor))


def unpaid_reversed(*, assignment: Assignment, key: str, memo: str) -> None:
    """A rejection was wrong (an admin upheld the worker's appeal): undo its release of the
    reservation, so the work can be paid after all (``pay``). Idempotent per ``key``; nothing to
    undo when the rejection released nothing."""
    unpaid = _pay_selectors.assignment_unpaid_transaction(assignment_id=assignment.pk)
    if unpaid is not None:
        _pay_services.ledger_reverse(transaction_=unpaid, key=key, memo=memo)
