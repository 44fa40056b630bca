"""Admins release held earnings now through the API, so a payout run right after approval pays."""

from __future__ import annotations

import pytest

from payments import payouts
from payments.models import AuditLog, EarningHold, Payout
from payments.selectors import worker_earnings
from tasks import paying
from tests.factories import WorkerFactory
from tests.payments.conftest import fund, onboarded_worker, reserved_assignment

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
