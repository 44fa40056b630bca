"""Payout runs, exactly-once transfers under faults, reconciliation, holds and clawbacks."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from marketplace.errors import Conflict
from payments import clawbacks, payouts, reconciliation, transfers
from payments.ledger import AccountKind
from payments.models import AuditLog, LedgerAccount, Payout, PayoutStatus, ReconciliationIssue
from payments.selectors import worker_balances
from tests.factories import WorkerFactory
from tests.payments.conftest import assert_ledger_consistent, credit_available, onboarded_worker

pytestmark = pytest.mark.django_db


def _run(captured):
    with captured(execute=True):
        return payouts.payout_run_start(note="test")


def test_run_pays_each_eligible_worker_once(stripe_server, django_capture_on_commit_callbacks):
    paid = [onboarded_worker(stripe_server, available=1_000 + i) for i in range(3)]
    poor = onboarded_worker(stripe_server, available=django_settings.PAYOUT_MINIMUM - 1)
    not_onboarded = WorkerFactory()
    credit_available(not_onboarded, 5_000)
    run = _run(django_capture_on_commit_callbacks)
    assert run.payouts_created == 3
    assert run.total_amount == sum(1_000 + i for i in range(3))
    for i, worker in enumerate(paid):
        payout = Payout.objects.get(worker=worker)
        assert payout.status == PayoutStatus.SUBMITTED
        transfers = stripe_server.transfers_for(payout.pk)
        assert len(transfers) == 1 and transfers[0]["amount"] == 1_000 + i
        assert transfers[0]["destination"] == payout.destination
        assert worker_balances(worker=worker) == {
            "pending": 0,
            "available": 0,
            "in_transit": 1_000 + i,
        }
    assert not Payout.objects.filter(worker__in=[poor, not_onboarded]).exists()
    assert_ledger_consistent()


def test_second_run_does_not_pay_again(stripe_server, django_capture_on_commit_callbacks):
    worker = onboarded_worker(stripe_server, available=2_000)
    _run(django_capture_on_commit_callbacks)
    second = _run(django_capture_on_commit_callbacks)
    assert second.payouts_created == 0
    assert len(stripe_server.transfers_for(Payout.objects.get(worker=worker).pk)) == 1


def test_reconciliation_confirms_and_settles_the_ledger(
    stripe_server, django_capture_on_commit_callbacks
):
    worker = onboarded_worker(stripe_server, available=2_000)
    _run(django_capture_on_commit_callbacks)
    report = reconciliation.payouts_reconcile()
    payout = Payout.objects.get(worker=worker)
    assert payout.status == PayoutStatus.PAID and report.confirmed == 1
    assert worker_balances(worker=worker)["in_transit"] == 0
    assert_ledger_consistent()


def test_timeout_after_commit_then_retry_with_same_key_pays_once(stripe_server, settings):
    settings.STRIPE_TIMEOUT_SECONDS = 0.5
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    stripe_server.faults.timeout_seconds = 1.0
    worker = onboarded_worker(stripe_server, available=1_500)
    payout = payouts.payout_create(worker=worker, enqueue=False)
    stripe_server.faults.forced = ["timeout_after_commit"]
    first = transfers.payout_submit(payout_id=payout.pk)
    assert first.retry is True
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.PENDING and payout.attempt == 1
    second = transfers.payout_submit(payout_id=payout.pk)
    assert second.status == PayoutStatus.SUBMITTED
    assert len(stripe_server.transfers_for(payout.pk)) == 1


def test_crash_after_transfer_is_recovered_by_reconciliation(
    stripe_server, django_capture_on_commit_callbacks
):
    """The transfer exists at Stripe but we never recorded it (as after a SIGKILL)."""
    from payments import stripe_gateway as gateway

    worker = onboarded_worker(stripe_server, available=1_500)
    payout = payouts.payout_create(worker=worker, enqueue=False)
    gateway.transfer_create(
        amount=payout.amount,
        currency=payout.currency,
        destination=payout.destination,
        idempotency_key=payout.idempotency_key,
        metadata=transfers._metadata(payout),
        transfer_group=f"payout:{payout.pk}",
        description=f"Crowdlabel payout #{payout.pk}",
    )
    with django_capture_on_commit_callbacks(execute=True):
        reconciliation.payouts_reconcile()
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.PAID
    assert len(stripe_server.transfers_for(payout.pk)) == 1
    assert_ledger_consistent()


def test_definite_refusal_fails_the_payout_and_returns_the_money(stripe_server):
    worker = onboarded_worker(stripe_server, available=1_500)
    payout = payouts.payout_create(worker=worker, enqueue=False)
    stripe_server.restrict_account(payout.destination)
    result = transfers.payout_submit(payout_id=payout.pk)
    payout.refresh_from_db()
    assert result.status == PayoutStatus.FAILED
    assert payout.failure_code == "insufficient_capabilities_for_transfer"
    assert payout.attempt == 2 and "transfers capability" in payout.failure_reason
    assert worker_balances(worker=worker)["available"] == 1_500
    assert AuditLog.objects.filter(action="payout.failed", object_id=str(payout.pk)).exists()
    assert_ledger_consistent()


def test_balance_insufficient_queues_until_balance_available(
    stripe_server, django_capture_on_commit_callbacks
):
    worker = onboarded_worker(stripe_server, available=1_500)
    stripe_server.state.available = 100
    payout = payouts.payout_create(worker=worker, enqueue=False)
    transfers.payout_submit(payout_id=payout.pk)
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.QUEUED and payout.attempt == 2
    stripe_server.state.pending = 10_000
    stripe_server.make_pending_available()
    with django_capture_on_commit_callbacks(execute=True):
        payouts.payouts_resume_queued()
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.SUBMITTED
    (transfer,) = stripe_server.transfers_for(payout.pk)
    assert transfer["amount"] == 1_500


def test_held_worker_gets_no_payout(stripe_server, admin_user, django_capture_on_commit_callbacks):
    worker = onboarded_worker(stripe_server, available=1_500)
    clawbacks.worker_payouts_hold(worker=worker, reason="fraud review", actor=admin_user)
    assert _run(django_capture_on_commit_callbacks).payouts_created == 0
    clawbacks.worker_payouts_release(worker=worker, actor=admin_user)
    assert _run(django_capture_on_commit_callbacks).payouts_created == 1
    assert AuditLog.objects.filter(action="payouts.held", actor=admin_user).exists()


def test_reversal_claws_back_with_a_reversing_transaction(
    stripe_server, admin_user, django_capture_on_commit_callbacks
):
    worker = onboarded_worker(stripe_server, available=2_000)
    _run(django_capture_on_commit_callbacks)
    payout = Payout.objects.get(worker=worker)
    reconciliation.payouts_reconcile()
    clawbacks.payout_reverse(payout=payout, amount=500, reason="duplicate work", actor=admin_user)
    payout.refresh_from_db()
    assert payout.amount_reversed == 500
    (transfer,) = stripe_server.transfers_for(payout.pk)
    assert transfer["amount_reversed"] == 500
    assert worker_balances(worker=worker)["available"] == 500
    worker.worker_profile.refresh_from_db()
    assert worker.worker_profile.payouts_held is True
    # The transfer.reversed webhook arriving later changes nothing more.
    transfers.payout_confirm_transfer(transfer=transfer)
    assert worker_balances(worker=worker)["available"] == 500
    with pytest.raises(Exception):  # noqa: B017 - more than remains
        clawbacks.payout_reverse(payout=payout, amount=2_000, reason="x", actor=admin_user)
    assert_ledger_consistent()


def test_cannot_reverse_an_unsent_payout(stripe_server, admin_user):
    worker = onboarded_worker(stripe_server, available=2_000)
    payout = payouts.payout_create(worker=worker, enqueue=False)
    with pytest.raises(Conflict):
        clawbacks.payout_reverse(payout=payout, reason="oops", actor=admin_user)


def test_reconciliation_flags_a_transfer_for_a_failed_payout(stripe_server):
    from payments import stripe_gateway as gateway

    worker = onboarded_worker(stripe_server, available=1_500)
    payout = payouts.payout_create(worker=worker, enqueue=False)
    transfers._fail(payout, code="test", reason="test")
    gateway.transfer_create(
        amount=payout.amount,
        currency="usd",
        destination=payout.destination,
        idempotency_key="stray",
        metadata=transfers._metadata(payout),
    )
    reconciliation.payouts_reconcile()
    assert ReconciliationIssue.objects.filter(
        payout=payout, kind="transfer_for_failed_payout"
    ).exists()
    assert (
        LedgerAccount.objects.get(kind=AccountKind.WORKER_AVAILABLE, worker=worker).balance == 1_500
    )


def test_submit_many_pays_each_payout_once_with_threads(stripe_server):
    from payments import stripe_gateway as gateway

    workers = [onboarded_worker(stripe_server, available=1_000 + i) for i in range(7)]
    created = [payouts.payout_create(worker=w, enqueue=False) for w in workers]
    # One payout's transfer was made before a crash, never recorded: the same key replays it.
    crashed = created[0]
    made = gateway.transfer_create(
        amount=crashed.amount,
        currency=crashed.currency,
        destination=crashed.destination,
        idempotency_key=crashed.idempotency_key,
        metadata=transfers._metadata(crashed),
        transfer_group=f"payout:{crashed.pk}",
        description=f"Crowdlabel payout #{crashed.pk}",
    )
    # One is already submitted by a single submitter; one account cannot receive transfers.
    transfers.payout_submit(payout_id=created[1].pk)
    stripe_server.restrict_account(created[2].destination)
    ids = [p.pk for p in created]

    results = transfers.payouts_submit_many(payout_ids=ids, threads=3, chunk_size=4)

    assert set(results) == set(ids)
    assert results[created[2].pk].status == PayoutStatus.FAILED
    assert worker_balances(worker=workers[2])["available"] == 1_002
    for p in created[:2] + created[3:]:
        p.refresh_from_db()
        assert results[p.pk].status == PayoutStatus.SUBMITTED == p.status
        (transfer,) = stripe_server.transfers_for(p.pk)
        assert p.stripe_transfer_id == transfer["id"] and transfer["amount"] == p.amount
    assert Payout.objects.get(pk=crashed.pk).stripe_transfer_id == made["id"]

    again = transfers.payouts_submit_many(payout_ids=ids, threads=3)
    assert {r.status for pk, r in again.items() if pk != created[2].pk} == {PayoutStatus.SUBMITTED}
    assert all(len(stripe_server.transfers_for(pk)) == 1 for pk in ids if pk != created[2].pk)
    assert_ledger_consistent()


def test_submit_many_keeps_a_timed_out_payout_pending_for_the_same_key(stripe_server, settings):
    settings.STRIPE_TIMEOUT_SECONDS = 0.5
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    stripe_server.faults.timeout_seconds = 1.0
    workers = [onboarded_worker(stripe_server, available=1_200 + i) for i in range(3)]
    created = [payouts.payout_create(worker=w, enqueue=False) for w in workers]
    stripe_server.faults.forced = ["timeout_after_commit"]
    first = transfers.payouts_submit_many(payout_ids=[p.pk for p in created], threads=1)
    retried = [pk for pk, r in first.items() if r.retry]
    assert len(retried) == 1
    pending = Payout.objects.get(pk=retried[0])
    assert pending.status == PayoutStatus.PENDING and pending.attempt == 1
    second = transfers.payouts_submit_many(payout_ids=retried, threads=1)
    assert second[retried[0]].status == PayoutStatus.SUBMITTED
    assert all(len(stripe_server.transfers_for(p.pk)) == 1 for p in created)
