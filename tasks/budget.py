"""The claim path's one door to money (docs/money-contract.md: budget is reserved per replica slot).

Every call the claim and review paths make about money goes through these functions, which
delegate to the payments escrow API (``payments.escrow`` / ``payments.selectors``) and to this
app's assignment-level money (``tasks.paying``, built on ``payments.work``): a slot exists only
once its reservation succeeded, so the hot claim path never touches money rows.
"""

from __future__ import annotations

from collections.abc import Callable

from marketplace.errors import Conflict
from marketplace.models import Job
from payments import escrow as _escrow
from payments import funding as _funding
from payments import posting as _posting
from payments import pricing as _pricing
from payments import selectors as _pay_selectors
from payments import work as _work
from payments.errors import InsufficientEscrow

from . import paying
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


def jobs_with_available_escrow(job_ids) -> set[int]:
    """Which of ``job_ids`` have available (funded, unreserved) escrow."""
    return _pay_selectors.jobs_with_available_escrow(job_ids)


def lock_pay_accounts(assignments) -> None:
    """Before paying or releasing several assignments in one transaction: lock their jobs'
    escrow and their workers' pending accounts in the ledger's global order, creating the
    missing ones first (no deadlock with another transaction paying the same workers in another
    order, new workers included)."""
    rows = [(a.microtask.job_id, a.worker_id) for a in assignments]
    _work.work_pay_lock(job_ids=[j for j, _ in rows], worker_ids=[w for _, w in rows])


def available(*, job: Job) -> int:
    """Funded escrow of ``job`` not yet reserved or spent, minor units."""
    return int(_pay_selectors.escrow_balance(job=job).available)


def reserve(*, job: Job, amount: int, key: str) -> None:
    """Move ``amount`` of the job's available escrow to reserved, or raise InsufficientBudget."""
    if amount <= 0:
        return
    try:
        _escrow.escrow_reserve(job=job, amount=amount, key=key)
    except InsufficientEscrow as exc:
        raise InsufficientBudget(exc.message) from exc


def release(*, job: Job, amount: int, key: str) -> None:
    """Return ``amount`` of reserved escrow to available (cancelled or unused slots)."""
    if amount > 0:
        _escrow.escrow_release(job=job, amount=amount, key=key)


def pay(*, assignment: Assignment, credit: float = 1.0, trust: float | None = None) -> int:
    """Approval: consume the assignment's reservation, credit the worker; returns the pay.

    ``trust`` (the worker's, for the job's type) sets the multiplier; quality passes the value
    it decided on, else it is read here."""
    return int(paying.assignment_pay(assignment=assignment, credit=credit, trust=trust))


def unpaid(*, assignment: Assignment) -> None:
    """Rejection: the assignment's reservation goes back to the job's available escrow."""
    paying.assignment_unpaid(assignment=assignment)


def pay_reversed(*, assignment: Assignment, reason: str, actor) -> int:
    """An admin upheld a rejection of approved (already paid) work: its pay goes back to the
    job's escrow, as if the work had been rejected in the first place; returns the pay taken."""
    taken = paying.assignment_pay_reverse(assignment=assignment, reason=reason, actor=actor)
    return int(taken)


def refund_unspent(*, job: Job, actor) -> int:
    """A closed job's unspent escrow goes back to the requester through Stripe (queued on
    commit); returns the amount refunded. Escrow still reserved for submitted work stays until
    that work is reviewed."""
    return sum(r.amount for r in _funding.job_refund_unspent(job=job, actor=actor))


def unpaid_reversed(*, assignment: Assignment, key: str, memo: str) -> None:
    """A rejection was wrong (an admin upheld the worker's appeal): undo its release of the
    reservation, so the work can be paid after all (``pay``). Idempotent per ``key``; nothing to
    undo when the rejection released nothing."""
    unpaid = _pay_selectors.assignment_unpaid_transaction(assignment_id=assignment.pk)
    if unpaid is not None:
        _posting.ledger_reverse(transaction_=unpaid, key=key, memo=memo)
