"""Helpers for the payments tests: funded jobs, reserved assignments, ledger invariants."""

from __future__ import annotations

import itertools

import pytest
from django.db.models import Sum

from payments import services
from payments.ledger import AccountKind
from payments.models import LedgerAccount, LedgerEntry, LedgerTransaction
from payments.selectors import slot_reservation_for
from tests.factories import AssignmentFactory, JobFactory, MicroTaskFactory

_keys = itertools.count()


def fund(job, amount: int) -> None:
    services.escrow_fund(job=job, amount=amount, key=f"test-fund-{job.pk}-{next(_keys)}")


def reserved_assignment(job, *, worker=None, price: int = 50, active_seconds: float | None = 60):
    """An assignment of ``job`` whose replica slot reserved its amount from escrow."""
    mt = MicroTaskFactory(video__job=job, job=job, price=price)
    amount = slot_reservation_for(microtask=mt)
    services.escrow_reserve(job=job, amount=amount, key=f"slot-{mt.pk}-{next(_keys)}")
    extra = {"worker": worker} if worker is not None else {}
    return AssignmentFactory(
        microtask=mt, reserved_amount=amount, active_seconds=active_seconds, **extra
    )


def assert_ledger_consistent() -> None:
    """Invariant 3: every transaction balances, cached balances equal the sum of entries."""
    unbalanced = (
        LedgerTransaction.objects.annotate(total=Sum("entries__amount"))
        .exclude(total=0)
        .exclude(total=None)
    )
    assert list(unbalanced.values_list("key", "total")) == []
    assert (LedgerEntry.objects.aggregate(s=Sum("amount"))["s"] or 0) == 0
    for account in LedgerAccount.objects.filter(kind__in=AccountKind.CACHED_KINDS):
        total = LedgerEntry.objects.filter(account=account).aggregate(s=Sum("amount"))["s"] or 0
        assert account.balance == total, account
        assert account.balance >= 0, account


@pytest.fixture
def job(db):
    return JobFactory(budget=100_000)


@pytest.fixture
def funded_job(job):
    fund(job, 10_000)
    return job
