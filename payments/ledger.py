"""The double-entry ledger's rules (pure: no Django).

Sign convention: an entry's ``amount`` is what it adds to its account's balance; the entries of a
transaction sum to zero, so the sum of every account's balance is always zero. Accounts that hold
money *inside* the platform (a job's escrow, a worker's earnings, platform revenue) are positive;
``stripe_clearing`` mirrors money outside (it goes negative when a requester pays in and back up
when a transfer or refund leaves), so "the ledger balances to zero" is literal.

The database side (``payments.posting.ledger_post``) stores the legs this module produced.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass


class AccountKind:
    """Kinds of ledger account, and whether each is per job, per worker or platform-wide."""

    JOB_ESCROW = "job_escrow"  # a job's funded, unreserved money ("available")
    JOB_RESERVED = "job_reserved"  # a job's money reserved by replica slots
    WORKER_PENDING = "worker_pending"  # earned, in the hold period
    WORKER_AVAILABLE = "worker_available"  # earned, payable
    WORKER_IN_TRANSIT = "worker_in_transit"  # in a payout whose transfer is not settled
    PLATFORM_REVENUE = "platform_revenue"
    STRIPE_CLEARING = "stripe_clearing"  # the world outside: money in and out through Stripe
    REFUNDS = "refunds"  # refunds owed to requesters, until Stripe confirms them

    JOB_KINDS = frozenset({JOB_ESCROW, JOB_RESERVED})
    WORKER_KINDS = frozenset({WORKER_PENDING, WORKER_AVAILABLE, WORKER_IN_TRANSIT})
    SYSTEM_KINDS = frozenset({PLATFORM_REVENUE, STRIPE_CLEARING, REFUNDS})
    # Balances kept on the account row (updated in the posting's transaction) for fast reads.
    # System accounts are touched by every approval and payout; caching them would put one hot
    # row lock on every money movement in the platform, so their balance is summed on read.
    CACHED_KINDS = JOB_KINDS | WORKER_KINDS
    # Accounts that must never go below zero.
    NON_NEGATIVE = JOB_KINDS | WORKER_KINDS | frozenset({REFUNDS})

    CHOICES = (
        (JOB_ESCROW, "Job escrow (available)"),
        (JOB_RESERVED, "Job escrow (reserved)"),
        (WORKER_PENDING, "Worker pending"),
        (WORKER_AVAILABLE, "Worker available"),
        (WORKER_IN_TRANSIT, "Worker in transit"),
        (PLATFORM_REVENUE, "Platform revenue"),
        (STRIPE_CLEARING, "Stripe clearing"),
        (REFUNDS, "Refunds"),
    )


class UnbalancedTransaction(ValueError):
    """A ledger transaction's entries must sum to zero."""


@dataclass(frozen=True)
class Leg:
    """One entry to be posted: ``amount`` minor units onto ``account`` (any hashable key)."""

    account: Hashable
    amount: int


def legs(*pairs: tuple[Hashable, int]) -> list[Leg]:
    """Validated, merged legs: one per account, zero amounts dropped, balanced, all ints."""
    merged: OrderedDict[Hashable, int] = OrderedDict()
    for account, amount in pairs:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise TypeError(f"ledger amounts are integer minor units, got {amount!r}")
        merged[account] = merged.get(account, 0) + amount
    out = [Leg(a, v) for a, v in merged.items() if v != 0]
    check_balanced(out)
    return out


def check_balanced(entries: Iterable[Leg]) -> None:
    total = sum(e.amount for e in entries)
    if total != 0:
        raise UnbalancedTransaction(f"entries sum to {total}, not 0")


def reversal(entries: Iterable[Leg]) -> list[Leg]:
    """The legs that undo ``entries`` (corrections are reversing transactions, never edits)."""
    return legs(*((e.account, -e.amount) for e in entries))
