"""The payments API and pages: scoping by role and owner, quotes, funding, earnings, admin."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from payments import funding, work
from payments.models import AuditLog, EarningHold
from payments.selectors import worker_earnings
from tasks import paying
from tests.factories import JobFactory, MicroTaskFactory
from tests.openapi_check import assert_answers_schema
from tests.payments.conftest import fund, onboarded_worker, reserved_assignment

pytestmark = pytest.mark.django_db


def test_quote_api_prices_the_job(requester_client, requester):
    job = JobFactory(requester=requester)
    MicroTaskFactory.create_batch(3, video__job=job, job=job, price=0)
    r = requester_client.post(f"/api/payments/jobs/{job.pk}/quote/")
    assert r.status_code == 200
    body = r.json()
    assert body["microtasks"] == 3
    assert body["total"] == body["work"] + body["gold_overhead"] + body["platform_fee"]
    assert all(p > 0 for p in job.microtasks.values_list("price", flat=True))


def test_other_requesters_job_is_404(other_requester_client, requester):
    job = JobFactory(requester=requester)
    for path in ("quote/", "fund/", "refund/"):
        assert other_requester_client.post(f"/api/payments/jobs/{job.pk}/{path}").status_code == 404
    assert other_requester_client.get(f"/api/payments/jobs/{job.pk}/escrow/").status_code == 404


def test_workers_cannot_use_requester_money_endpoints(worker_client, requester):
    job = JobFactory(requester=requester)
    assert worker_client.post(f"/api/payments/jobs/{job.pk}/quote/").status_code == 403


def test_fund_api_answers_with_the_checkout_session_to_pay(
    requester_client, requester, stripe_server
):
    job = JobFactory(requester=requester)
    MicroTaskFactory.create_batch(2, video__job=job, job=job, price=0)
    r = requester_client.post(f"/api/payments/jobs/{job.pk}/fund/", {}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    session = stripe_server.state.checkout_sessions[body["checkout_session"]]
    assert session["amount_total"] == body["amount"] == body["quote"]["fund_amount"]
    assert (body["currency"], session["currency"]) == ("usd", "usd")
    assert (body["status"], body["payment_intent"]) == ("created", "")
    assert body["checkout_url"] == session["url"] and session["status"] == "open"
    assert body["return_url"] == f"http://testserver/requester/jobs/{job.pk}/funding/"
    assert session["success_url"].startswith(body["return_url"])
    assert session["metadata"] == {"funding_id": str(body["funding"]), "job_id": str(job.pk)}
    # The PaymentIntent Stripe makes when the payer pays carries the job's transfer group.
    stripe_server.pay_checkout_session(body["checkout_session"])
    pi = stripe_server.state.payment_intents[session["payment_intent"]]
    assert pi["transfer_group"] == f"job:{job.pk}" and pi["metadata"] == session["metadata"]
    assert requester_client.get(f"/api/payments/jobs/{job.pk}/escrow/").json()["funded"] == 0


def test_bonus_goes_from_escrow_to_the_worker(requester_client, requester):
    job = JobFactory(requester=requester)
    fund(job, 10_000)
    a = reserved_assignment(job)
    a.status = "submitted"  # bonuses go to workers who handed work in
    a.save(update_fields=["status"])
    body = {"worker": a.worker_id, "amount": 300, "reason": "great boxes", "key": "b1"}
    r = requester_client.post(f"/api/payments/jobs/{job.pk}/bonuses/", body, format="json")
    assert r.status_code == 201
    requester_client.post(f"/api/payments/jobs/{job.pk}/bonuses/", body, format="json")
    assert worker_earnings(worker=a.worker).pending == 300
    assert AuditLog.objects.filter(action="bonus.granted").count() == 1


def test_earnings_api_and_hold_release(worker_client, worker, job):
    fund(job, 10_000)
    a = reserved_assignment(job, worker=worker, active_seconds=120)
    pay = paying.assignment_pay(assignment=a)
    body = worker_client.get("/api/payments/earnings/").json()
    assert body["pending"] == pay and body["available"] == 0
    assert body["effective_hourly"] == round(pay * 3600 / 120)
    assert funding.earnings_release_due() == 0  # still in the hold period
    later = timezone.now() + timedelta(days=4)
    assert funding.earnings_release_due(now=later) == 1
    assert funding.earnings_release_due(now=later) == 0
    body = worker_client.get("/api/payments/earnings/").json()
    assert body["pending"] == 0 and body["available"] == pay
    assert EarningHold.objects.get(worker=worker).released is True


def test_earnings_page_shows_balances(client, worker, job):
    fund(job, 10_000)
    a = reserved_assignment(job, worker=worker)
    pay = paying.assignment_pay(assignment=a)
    client.force_login(worker)
    page = client.get("/worker/earnings/")
    assert page.status_code == 200
    assert f"{pay}" in page.content.decode()


def test_connect_onboarding_link_and_return(client, worker, stripe_server):
    client.force_login(worker)
    start = client.post("/payments/connect/start/")
    assert start.status_code == 302 and "/_onboard/" in start["Location"]
    # Back without finishing (Stripe's GET shows a page; its button POSTs): not onboarded.
    assert client.get("/payments/connect/return/").status_code == 200
    r = client.post("/payments/connect/return/", follow=True)
    assert "still needs information" in r.content.decode()
    worker.worker_profile.refresh_from_db()
    assert worker.worker_profile.payouts_enabled is False
    # The refresh URL's button mints a new link.
    assert client.get("/payments/connect/refresh/").status_code == 200
    r2 = client.post("/payments/connect/refresh/")
    assert r2.status_code == 302 and r2["Location"] != start["Location"]
    stripe_server.complete_onboarding(worker.connected_account.stripe_account_id)
    r = client.post("/payments/connect/return/", follow=True)
    assert "ready" in r.content.decode()
    worker.worker_profile.refresh_from_db()
    assert worker.worker_profile.payouts_enabled is True


def test_connected_account_has_only_the_transfers_capability(worker, stripe_server):
    from payments import connect

    acct = connect.connected_account_ensure(worker=worker)
    again = connect.connected_account_ensure(worker=worker)
    assert acct.pk == again.pk
    stripe_acct = stripe_server.state.accounts[acct.stripe_account_id]
    assert stripe_acct["type"] == "express"
    assert set(stripe_acct["capabilities"]) == {"transfers"}


def test_admin_hold_and_reverse_api(
    admin_client_api, stripe_server, django_capture_on_commit_callbacks
):
    from payments import payouts
    from payments.models import Payout

    worker = onboarded_worker(stripe_server, available=2_000)
    hold = "/api/payments/admin/workers/{id}/hold/"
    r = admin_client_api.post(
        f"/api/payments/admin/workers/{worker.pk}/hold/", {"reason": "review"}
    )
    assert r.status_code == 200 and assert_answers_schema(r, "post", hold) == {"held": True}
    worker.worker_profile.refresh_from_db()
    assert worker.worker_profile.payouts_held
    r = admin_client_api.delete(f"/api/payments/admin/workers/{worker.pk}/hold/")
    assert r.status_code == 200 and assert_answers_schema(r, "delete", hold) == {"held": False}
    with django_capture_on_commit_callbacks(execute=True):
        payouts.payout_run_start()
    payout = Payout.objects.get(worker=worker)
    r = admin_client_api.post(
        f"/api/payments/admin/payouts/{payout.pk}/reverse/", {"reason": "fraud", "amount": 100}
    )
    assert r.status_code == 200 and r.json()["amount_reversed"] == 100
    r = admin_client_api.post("/api/payments/admin/reconcile/")
    assert r.status_code == 200
    # Stripe lists the payout's transfer; nothing is wrong with it.
    assert assert_answers_schema(r, "post", "/api/payments/admin/reconcile/") == {
        "transfers_seen": 1,
        "confirmed": 0,
        "resubmitted": 0,
        "issues": 0,
    }


def test_non_admins_cannot_use_admin_money_endpoints(worker_client, worker):
    assert (
        worker_client.post(
            f"/api/payments/admin/workers/{worker.pk}/hold/", {"reason": "x"}
        ).status_code
        == 403
    )
    assert worker_client.post("/api/payments/admin/payout-runs/").status_code == 403


def test_money_page_for_staff_only(client, admin_user, worker):
    assert client.get("/staff/money/").status_code == 302  # to the login page
    client.force_login(worker)
    assert client.get("/staff/money/").status_code == 403
    client.force_login(admin_user)
    assert client.get("/staff/money/").status_code == 200


def test_pricing_policy_edit_in_admin_creates_a_new_version(client, admin_user):
    from payments.models import PricingPolicy

    work.pricing_policy_create(note="v1")
    client.force_login(admin_user)
    v1 = PricingPolicy.objects.get(version=1)
    page = client.get(f"/admin/payments/pricingpolicy/{v1.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {k: form[k].value() for k in form.fields}
    data.update(floor_hourly=1_500, note="raise floor")
    for k, v in list(data.items()):
        if isinstance(v, (dict, list)):
            import json

            data[k] = json.dumps(v)
        elif v is None:
            data[k] = ""
    r = client.post(f"/admin/payments/pricingpolicy/{v1.pk}/change/", data)
    assert r.status_code == 302, r.content.decode()[:2000]
    assert PricingPolicy.objects.get(version=1).floor_hourly == v1.floor_hourly
    assert PricingPolicy.objects.get(version=2).floor_hourly == 1_500


def test_admin_actions_resubmit_and_reconcile(
    client, admin_user, stripe_server, django_capture_on_commit_callbacks
):
    from payments import payouts
    from payments.models import Payout, PayoutStatus

    worker = onboarded_worker(stripe_server, available=2_000)
    payout = payouts.payout_create(worker=worker, enqueue=False)
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(
            "/admin/payments/payout/",
            {"action": "resubmit", "_selected_action": [payout.pk]},
        )
    assert r.status_code == 302
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.SUBMITTED
    client.post("/admin/payments/payout/", {"action": "reconcile", "_selected_action": [payout.pk]})
    assert Payout.objects.get(pk=payout.pk).status == PayoutStatus.PAID
    assert AuditLog.objects.filter(action="payout.resubmitted", actor=admin_user).exists()


def test_job_funding_page_shows_quote_and_escrow(client, requester, other_requester, stripe_server):
    job = JobFactory(requester=requester)
    MicroTaskFactory.create_batch(2, video__job=job, job=job, price=0)
    client.force_login(other_requester)
    assert client.get(f"/requester/jobs/{job.pk}/funding/").status_code == 404
    client.force_login(requester)
    page = client.get(f"/requester/jobs/{job.pk}/funding/")
    assert page.status_code == 200 and "Quote to fund" in page.content.decode()
    assert (
        f"/requester/jobs/{job.pk}/funding/"
        in client.get(f"/requester/jobs/{job.pk}/").content.decode()
    )
    r = client.post(f"/requester/jobs/{job.pk}/funding/", {"fund": "quote"})
    (session,) = stripe_server.state.checkout_sessions.values()
    assert r.status_code == 303 and r["Location"] == session["url"]


def test_holding_a_worker_made_outside_sign_up_makes_their_profile(admin_client_api):
    """A worker account made in the admin site or a shell has no profile yet: a hold is still
    recorded (it made a 500 before), and released."""
    from marketplace.models import Role, User, WorkerProfile

    bare = User.objects.create_user(username="bare-worker", password="x" * 12, role=Role.WORKER)
    assert not WorkerProfile.objects.filter(user=bare).exists()
    hold = f"/api/payments/admin/workers/{bare.pk}/hold/"
    r = admin_client_api.post(hold, {"reason": "review"})
    assert r.status_code == 200 and r.json() == {"held": True}
    assert WorkerProfile.objects.get(user=bare).payouts_held_reason == "review"
    assert admin_client_api.delete(hold).json() == {"held": False}
    assert AuditLog.objects.filter(action__in=["payouts.held", "payouts.released"]).count() == 2
