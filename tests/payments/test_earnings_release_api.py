"""Admins release held earnings now through the API, so a payout run right after approval pays."""

from __future__ import annotations

import pytest

from payments import payouts
from payments.models import AuditLog, EarningHold, Payout
from payments.selectors import worker_earnings
from tasks import paying
from tests.factories import WorkerFactory
from tests.payments.conftest import (
    assert_ledger_consistent,
    fund,
    onboarded_worker,
    reserved_assignment,
)

pytestmark = pytest.mark.django_db

URL = "/api/payments/admin/earnings/release/"


def _earn(job, worker) -> int:
    return paying.assignment_pay(assignment=reserved_assignment(job, worker=worker))


def test_release_one_worker_then_nothing_twice(admin_client_api, admin_user, job):
    fund(job, 10_000)
    one, two = WorkerFactory(), WorkerFactory()
    pay_one = _earn(job, one)
    _earn(job, two)

    r = admin_client_api.post(URL, {"worker": one.pk}, format="json")
    assert r.status_code == 200, r.content
    assert r.json() == {"released": 1}
    assert worker_earnings(worker=one).available == pay_one
    assert worker_earnings(worker=one).pending == 0
    assert worker_earnings(worker=two).available == 0  # another worker's hold stays
    assert EarningHold.objects.get(worker=two).released is False

    again = admin_client_api.post(URL, {"worker": one.pk}, format="json")
    assert again.json() == {"released": 0}  # idempotent
    assert worker_earnings(worker=one).available == pay_one

    audit = AuditLog.objects.filter(action="earnings.released_early").order_by("id")
    assert [(a.actor_id, a.detail["released"], a.detail["scope"]) for a in audit] == [
        (admin_user.pk, 1, f"worker:{one.pk}"),
        (admin_user.pk, 0, f"worker:{one.pk}"),
    ]


def test_release_everyone(admin_client_api, job):
    fund(job, 10_000)
    workers = [WorkerFactory() for _ in range(3)]
    for w in workers:
        _earn(job, w)
    r = admin_client_api.post(URL, {}, format="json")
    assert r.json() == {"released": 3}
    assert not EarningHold.objects.filter(released=False).exists()
    assert AuditLog.objects.get(action="earnings.released_early").detail["scope"] == "all"


def test_a_payout_run_right_after_release_pays(
    admin_client_api, job, stripe_server, settings, django_capture_on_commit_callbacks
):
    settings.PAYOUT_MINIMUM = 1
    fund(job, 10_000)
    worker = onboarded_worker(stripe_server)
    pay = sum(_earn(job, worker) for _ in range(3))
    runs = payouts.payout_runs_start(note="before", enqueue=False)
    assert sum(run.payouts_created for run in runs.values()) == 0  # all still held

    assert admin_client_api.post(URL, {"worker": worker.pk}, format="json").json() == {
        "released": 3
    }
    payouts.payout_runs_start(note="after", enqueue=False)
    assert Payout.objects.get(worker=worker).amount == pay


@pytest.mark.parametrize(
    "body", [{"worker": 0}, {"worker": "x"}, {"worker": 2**70}, {"worker": None}]
)
def test_bad_worker_field_is_400_and_releases_nothing(admin_client_api, job, body):
    fund(job, 10_000)
    _earn(job, WorkerFactory())
    r = admin_client_api.post(URL, body, format="json")
    assert r.status_code == 400
    assert r.json()["error"]["fields"]["worker"]
    assert EarningHold.objects.filter(released=False).count() == 1
    assert not AuditLog.objects.filter(action="earnings.released_early").exists()


def test_unknown_worker_or_a_non_worker_is_404(admin_client_api, requester, job):
    fund(job, 10_000)
    _earn(job, WorkerFactory())
    for pk in (requester.pk, 10**9):
        r = admin_client_api.post(URL, {"worker": pk}, format="json")
        assert r.status_code == 404
    assert EarningHold.objects.filter(released=False).count() == 1


def test_workers_and_requesters_cannot_release(worker_client, requester_client, job, worker):
    fund(job, 10_000)
    _earn(job, worker)
    for client in (worker_client, requester_client):
        assert client.post(URL, {"worker": worker.pk}, format="json").status_code == 403
    assert worker_earnings(worker=worker).available == 0


def _release_queries(n_workers: int, job) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from payments import funding

    workers = [WorkerFactory() for _ in range(n_workers)]
    for w in workers:
        _earn(job, w)
        _earn(job, w)
    with CaptureQueriesContext(connection) as queries:
        assert funding.earnings_release_due(early=True) == 2 * n_workers
    return len(queries)


def test_a_release_costs_the_same_statements_for_2_or_40_holds_and_balances(job):
    """A release posts its holds in one batch (issue #16): holding the workers' pending
    accounts for a statement per hold kept approvals waiting for seconds under load."""
    fund(job, 100_000)
    few = _release_queries(1, job)
    many = _release_queries(20, job)
    assert many == few
    assert worker_earnings_pending_total() == 0
    assert_ledger_consistent()


def worker_earnings_pending_total() -> int:
    from django.db.models import Sum

    from payments.ledger import AccountKind
    from payments.models import LedgerAccount

    return (
        LedgerAccount.objects.filter(kind=AccountKind.WORKER_PENDING).aggregate(s=Sum("balance"))[
            "s"
        ]
        or 0
    )


def test_a_release_never_moves_more_than_is_pending(job):
    """A reversal took part of a worker's pending earnings back: releasing both holds moves only
    what is left, and every hold ends released once."""
    from payments import funding
    from payments.ledger import AccountKind
    from payments.models import LedgerAccount, TxKind

    fund(job, 10_000)
    worker = WorkerFactory()
    first, second = _earn(job, worker), _earn(job, worker)
    pending = LedgerAccount.objects.get(kind=AccountKind.WORKER_PENDING, worker=worker)
    from payments.posting import ledger_account, ledger_post

    ledger_post(
        key="test:clawback",
        kind=TxKind.REVERSAL,
        currency=pending.currency,
        entries=[
            (pending, -(second + 1)),
            (ledger_account(kind=AccountKind.JOB_ESCROW, currency=pending.currency, job=job),
             second + 1),
        ],
    )  # fmt: skip
    assert funding.earnings_release_due(early=True) == 2
    assert worker_earnings(worker=worker).available == first - 1
    assert worker_earnings(worker=worker).pending == 0
    assert not EarningHold.objects.filter(released=False).exists()
    assert funding.earnings_release_due(early=True) == 0
