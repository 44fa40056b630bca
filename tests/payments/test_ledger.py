"""The double-entry ledger: balanced, append-only, idempotent, balances = sum of entries."""

from __future__ import annotations

import pytest

from payments import ledger, posting
from payments.errors import IdempotencyConflict
from payments.ledger import AccountKind, Leg, UnbalancedTransaction
from payments.models import LedgerEntry, LedgerTransaction
from payments.selectors import account_balance, entries_sum
from tasks import paying
from tests.payments.conftest import assert_ledger_consistent


def test_legs_refuse_an_unbalanced_transaction():
    with pytest.raises(UnbalancedTransaction):
        ledger.legs(("a", 100), ("b", -99))


def test_legs_refuse_float_amounts():
    with pytest.raises(TypeError):
        ledger.legs(("a", 1.5), ("b", -1.5))


def test_legs_merge_accounts_and_drop_zeros():
    merged = ledger.legs(("a", 100), ("b", -60), ("a", -40), ("c", 0))
    assert merged == [Leg("a", 60), Leg("b", -60)]


def test_reversal_undoes_entries():
    entries = ledger.legs(("a", 100), ("b", -100))
    assert ledger.reversal(entries) == [Leg("a", -100), Leg("b", 100)]


def test_posting_updates_cached_balances_and_sums_to_zero(job):
    escrow = posting.ledger_account(kind=AccountKind.JOB_ESCROW, currency="usd", job=job)
    clearing = posting.ledger_account(kind=AccountKind.STRIPE_CLEARING, currency="usd")
    _, created = posting.ledger_post(
        key="k1", kind="fund", currency="usd", entries=[(clearing, -700), (escrow, 700)], job=job
    )
    assert created is True
    escrow.refresh_from_db()
    assert escrow.balance == 700 == entries_sum(escrow)
    assert account_balance(clearing) == -700
    assert_ledger_consistent()


def test_same_key_twice_posts_once(job):
    escrow = posting.ledger_account(kind=AccountKind.JOB_ESCROW, currency="usd", job=job)
    clearing = posting.ledger_account(kind=AccountKind.STRIPE_CLEARING, currency="usd")
    first, _ = posting.ledger_post(
        key="k2", kind="fund", currency="usd", entries=[(clearing, -5), (escrow, 5)]
    )
    again, created = posting.ledger_post(
        key="k2", kind="fund", currency="usd", entries=[(clearing, -5), (escrow, 5)]
    )
    assert created is False and again.pk == first.pk
    escrow.refresh_from_db()
    assert escrow.balance == 5
    assert LedgerTransaction.objects.filter(key="k2").count() == 1


def test_same_key_for_different_money_is_refused(job):
    escrow = posting.ledger_account(kind=AccountKind.JOB_ESCROW, currency="usd", job=job)
    clearing = posting.ledger_account(kind=AccountKind.STRIPE_CLEARING, currency="usd")
    posting.ledger_post(
        key="k3", kind="fund", currency="usd", entries=[(clearing, -5), (escrow, 5)]
    )
    with pytest.raises(IdempotencyConflict):
        posting.ledger_post(
            key="k3", kind="fund", currency="usd", entries=[(clearing, -6), (escrow, 6)]
        )
    escrow.refresh_from_db()
    assert escrow.balance == 5


def test_ledger_rows_are_append_only(job):
    escrow = posting.ledger_account(kind=AccountKind.JOB_ESCROW, currency="usd", job=job)
    clearing = posting.ledger_account(kind=AccountKind.STRIPE_CLEARING, currency="usd")
    tx, _ = posting.ledger_post(
        key="k4", kind="fund", currency="usd", entries=[(clearing, -5), (escrow, 5)]
    )
    entry = LedgerEntry.objects.filter(transaction=tx).first()
    entry.amount = 500
    with pytest.raises(RuntimeError):
        entry.save()
    with pytest.raises(RuntimeError):
        tx.delete()
    assert LedgerEntry.objects.get(pk=entry.pk).amount in (5, -5)


def test_a_correction_is_a_reversing_transaction(job):
    escrow = posting.ledger_account(kind=AccountKind.JOB_ESCROW, currency="usd", job=job)
    clearing = posting.ledger_account(kind=AccountKind.STRIPE_CLEARING, currency="usd")
    tx, _ = posting.ledger_post(
        key="k5", kind="fund", currency="usd", entries=[(clearing, -80), (escrow, 80)]
    )
    reversal = posting.ledger_reverse(transaction_=tx, key="k5:reversal", memo="wrong job")
    assert reversal.reverses_id == tx.pk
    escrow.refresh_from_db()
    assert escrow.balance == 0
    assert LedgerEntry.objects.filter(transaction=tx).count() == 2  # the original stays
    assert_ledger_consistent()


def test_non_negative_accounts_cannot_go_below_zero(job):
    escrow = posting.ledger_account(kind=AccountKind.JOB_ESCROW, currency="usd", job=job)
    clearing = posting.ledger_account(kind=AccountKind.STRIPE_CLEARING, currency="usd")
    from django.db import IntegrityError

    with pytest.raises(IntegrityError):
        posting.ledger_post(
            key="k6", kind="fund", currency="usd", entries=[(clearing, 10), (escrow, -10)]
        )
    assert not LedgerTransaction.objects.filter(key="k6").exists()


def test_admin_ledger_account_page_drills_down_to_the_work(client, admin_user, job):
    from tests.payments.conftest import fund, reserved_assignment

    fund(job, 5_000)
    a = reserved_assignment(job)
    paying.assignment_pay(assignment=a)
    account = posting.ledger_account(
        kind=AccountKind.WORKER_PENDING, currency="usd", worker=a.worker
    )
    client.force_login(admin_user)
    page = client.get(f"/admin/payments/ledgeraccount/{account.pk}/change/")
    assert page.status_code == 200
    assert f"assignment #{a.pk}" in page.content.decode()
    assert client.get("/admin/payments/ledgertransaction/").status_code == 200
