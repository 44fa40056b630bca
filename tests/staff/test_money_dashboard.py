"""The staff money dashboard (/staff/money/): staff only; every figure equals the ledger's (read
here through the per-account selectors, the dashboard through its SQL aggregates); the payout-run
button pays through the real flow (Celery task → payout run → Stripe transfer on the local
server), only once confirmed; holds are placed and released in the page."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import timezone

from marketplace import charts
from marketplace.models import Job, User, WorkerProfile
from marketplace.money import format_money
from payments.funding import earnings_release_due
from payments.ledger import AccountKind
from payments.models import AuditLog, EarningHold, Payout, PayoutStatus
from payments.selectors import escrow_balance, system_balance, worker_balances
from tests.factories import AdminFactory, RequesterFactory, WorkerFactory
from tests.payments.conftest import assert_ledger_consistent, onboarded_worker, stripe_server
from tests.staff.seed import seed_dashboards

pytestmark = pytest.mark.django_db(transaction=True)

__all__ = ["stripe_server"]  # the fixture, imported for this module


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def figures(html: str, currency: str = "usd") -> dict[str, str]:
    row = re.search(rf'<tr data-currency="{currency}">(.*?)</tr>', html, re.S).group(1)
    return dict(re.findall(r'data-figure="(\w+)">([^<]*)</td>', row))


def test_only_staff_open_the_dashboard_and_its_forms():
    r = Client().get("/staff/money/")
    assert r.status_code == 302 and r["Location"] == "/accounts/login/?next=/staff/money/"
    worker = WorkerFactory()
    for user in (worker, RequesterFactory()):
        client = as_user(user)
        assert client.get("/staff/money/").status_code == 403
        assert client.post("/staff/money/payout-run/", {"confirm": "yes"}).status_code == 403
        assert (
            client.post("/staff/money/holds/", {"worker": worker.username, "reason": "x"})
        ).status_code == 403
        assert client.post(f"/staff/money/holds/{worker.pk}/release/").status_code == 403
    assert not WorkerProfile.objects.filter(payouts_held=True).exists()
    assert not AuditLog.objects.exists()


def test_every_figure_equals_the_ledger(monkeypatch):
    seeded = seed_dashboards(monkeypatch)
    # The first approval's earnings leave the hold period (the hourly task's service), the
    # later ones stay on hold: money in every place.
    first = EarningHold.objects.order_by("available_at").first()
    assert earnings_release_due(now=first.available_at) >= 1
    html = as_user(seeded.admin).get("/staff/money/").content.decode()
    jobs = [escrow_balance(job=job) for job in Job.objects.all()]
    workers = [worker_balances(worker=w) for w in User.objects.filter(role="worker")]
    expected = {
        "escrow_available": sum(b.available for b in jobs),
        "escrow_reserved": sum(b.reserved for b in jobs),
        "worker_pending": sum(b["pending"] for b in workers),
        "payable": sum(b["available"] for b in workers),
        "in_transit": sum(b["in_transit"] for b in workers),
        "revenue": system_balance(kind=AccountKind.PLATFORM_REVENUE, currency="usd"),
        "refunds_owed": system_balance(kind=AccountKind.REFUNDS, currency="usd"),
    }
    # Something in each place the seed put money: the check compares real numbers.
    assert expected["escrow_available"] > 0 and expected["escrow_reserved"] > 0
    assert expected["worker_pending"] > 0 and expected["revenue"] > 0
    assert expected["payable"] > 0
    assert figures(html) == {k: format_money(v, "usd") for k, v in expected.items()}
    # Revenue over time: today's point is the revenue booked today (all of it, here).
    today = charts.period_label(timezone.now().date(), "day")
    assert f"revenue: {today} {format_money(expected['revenue'], 'usd')}" in html
    for chart in ("chart-balances-usd", "chart-revenue-usd", "chart-payouts"):
        assert f'id="{chart}"' in html


def test_the_payout_run_button_pays_through_stripe_once_confirmed(stripe_server):
    admin = as_user(AdminFactory())
    worker = onboarded_worker(stripe_server, available=2_000)
    page = admin.post("/staff/money/payout-run/", {}, follow=True).content.decode()
    assert "Tick the box" in page
    assert not Payout.objects.exists()
    assert not [line for line, _ in stripe_server.request_log if "/v1/transfers" in line]

    r = admin.post("/staff/money/payout-run/", {"confirm": "yes"}, follow=True)
    assert "Payout run done: 1 payouts ($20.00)" in r.content.decode()
    payout = Payout.objects.get(worker=worker)
    assert payout.status == PayoutStatus.SUBMITTED and payout.amount == 2_000
    (transfer,) = stripe_server.transfers_for(payout.pk)
    assert transfer["amount"] == 2_000 and transfer["destination"] == payout.destination
    assert worker_balances(worker=worker) == {"pending": 0, "available": 0, "in_transit": 2_000}
    assert AuditLog.objects.filter(action="payout_run.started", actor__isnull=False).exists()
    html = r.content.decode()
    assert '<tr data-status="submitted"><td>Submitted (transfer created)</td><td>USD</td>' in html
    assert "$20.00" in html

    # Run again: nothing more to pay, no second transfer.
    admin.post("/staff/money/payout-run/", {"confirm": "yes"})
    assert len(stripe_server.transfers_for(payout.pk)) == 1
    assert Payout.objects.count() == 1
    assert_ledger_consistent()


def test_hold_and_release_in_the_page(stripe_server):
    admin = as_user(AdminFactory())
    worker = onboarded_worker(stripe_server, available=2_000)
    for bad in ({"worker": "nobody", "reason": "x"}, {"worker": worker.username, "reason": ""}):
        page = admin.post("/staff/money/holds/", bad, follow=True).content.decode()
        assert 'class="flash error"' in page
    assert not WorkerProfile.objects.get(user=worker).payouts_held

    admin.post("/staff/money/holds/", {"worker": worker.username, "reason": "chargeback risk"})
    assert WorkerProfile.objects.get(user=worker).payouts_held
    html = admin.get("/staff/money/").content.decode()
    assert "chargeback risk" in html and f"/staff/money/holds/{worker.pk}/release/" in html
    admin.post("/staff/money/payout-run/", {"confirm": "yes"})
    assert not Payout.objects.exists()  # held: the run skips the worker

    admin.post(f"/staff/money/holds/{worker.pk}/release/")
    assert not WorkerProfile.objects.get(user=worker).payouts_held
    admin.post("/staff/money/payout-run/", {"confirm": "yes"})
    assert Payout.objects.get(worker=worker).status == PayoutStatus.SUBMITTED


def test_the_dashboard_reads_in_a_fixed_number_of_queries(
    stripe_server, django_assert_max_num_queries
):
    """SQL aggregates: more workers, payouts and holds add no query."""
    admin = as_user(AdminFactory())
    onboarded_worker(stripe_server, available=2_000)
    admin.post("/staff/money/payout-run/", {"confirm": "yes"})
    with django_assert_max_num_queries(25) as first:
        admin.get("/staff/money/")
    queries = len(first.captured_queries)  # read now: each request resets Django's query log
    for _ in range(4):
        onboarded_worker(stripe_server, available=3_000)
    admin.post("/staff/money/payout-run/", {"confirm": "yes"})
    with django_assert_max_num_queries(queries):
        admin.get("/staff/money/")
    assert Payout.objects.count() == 5
