"""The staff quality dashboard (/staff/): staff only; its charts and lists show what the quality
tables hold; appeals, disputes and fraud flags are decided in the page through the one service
each (the page decision has the same effect as the API's)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from marketplace import charts
from quality import services as quality_services
from quality.models import Appeal, AppealStatus, FraudFlag, GoldResult, WorkerTrust
from tasks.models import Assignment, AssignmentStatus, DisputeStatus, RejectionDispute
from tests.factories import RequesterFactory, WorkerFactory
from tests.staff.seed import seed_dashboards

pytestmark = pytest.mark.django_db(transaction=True)

QUERIES = 25  # session, user, messages, and one per figure or list


@pytest.fixture
def seeded(monkeypatch):
    return seed_dashboards(monkeypatch)


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_only_staff_open_the_dashboard_and_its_forms():
    anonymous = Client()
    r = anonymous.get("/staff/")
    assert r.status_code == 302 and r["Location"] == "/accounts/login/?next=/staff/"
    for user in (WorkerFactory(), RequesterFactory()):
        assert as_user(user).get("/staff/").status_code == 403
        for path in ("/staff/appeals/1/decide/", "/staff/disputes/1/decide/"):
            assert as_user(user).post(path, {"decision": "uphold"}).status_code == 403
        assert (
            as_user(user).post("/staff/flags/1/resolve/", {"decision": "confirm"}).status_code
            == 403
        )
    assert anonymous.post("/staff/appeals/1/decide/", {"decision": "uphold"}).status_code == 302


def test_dashboard_shows_the_quality_tables(seeded):
    html = as_user(seeded.admin).get("/staff/").content.decode()
    # The trust histogram counts every trust row, in the words of its description.
    rows = WorkerTrust.objects.count()
    assert rows >= 4
    assert f"{rows} trust records" in html
    assert 'id="chart-trust"' in html and "<title" in html
    # Gold pass rate of today: the share of today's gold checks that passed.
    results = GoldResult.objects.all()
    rate = sum(r.passed for r in results) / len(results)
    today = charts.period_label(timezone.now().date(), "day")
    assert f"gold pass rate: {today} {rate * 100:.0f}%" in html
    assert f"consensus agreement: {today} " in html
    # Backlog, appeal, dispute, flag with its evidence.
    assert '<strong class="backlog-count">1</strong>' in html
    assert f"/staff/appeals/{seeded.appeal.pk}/decide/" in html and "I drew every car." in html
    assert f"/staff/disputes/{seeded.dispute.pk}/decide/" in html and "boxes too loose" in html
    assert f"/staff/flags/{seeded.flag.pk}/resolve/" in html
    assert "reported_seconds" in html and "900" in html
    # Each worker links to their record.
    assert f"/admin/marketplace/user/{seeded.flag.worker_id}/change/" in html


def test_weekly_charts_and_a_bad_period_falls_back_to_days(seeded):
    admin = as_user(seeded.admin)
    week = charts.period_label(charts.period_start(timezone.now().date(), "week"), "week")
    assert f"gold pass rate: {week} " in admin.get("/staff/?period=week").content.decode()
    assert "per day" in admin.get("/staff/?period=<script>").content.decode()


def test_an_appeal_upheld_in_the_page_approves_and_pays_the_work(seeded):
    admin = as_user(seeded.admin)
    r = admin.post(
        f"/staff/appeals/{seeded.appeal.pk}/decide/", {"decision": "uphold", "note": "fair"}
    )
    assert r.status_code == 302 and r["Location"].endswith("/staff/#appeals")
    appeal = Appeal.objects.get(pk=seeded.appeal.pk)
    assert appeal.status == AppealStatus.UPHELD and appeal.decision_note == "fair"
    work = Assignment.objects.get(pk=appeal.assignment_id)
    assert work.status == AssignmentStatus.APPROVED and work.pay_amount > 0
    # Decided once: a second decision is refused with the service's reason, nothing changes.
    page = admin.post(
        f"/staff/appeals/{seeded.appeal.pk}/decide/", {"decision": "deny"}, follow=True
    ).content.decode()
    assert "decided already" in page
    assert Appeal.objects.get(pk=seeded.appeal.pk).status == AppealStatus.UPHELD


def test_a_dispute_upheld_in_the_page_takes_the_pay_back(seeded):
    admin = as_user(seeded.admin)
    admin.post(f"/staff/disputes/{seeded.dispute.pk}/decide/", {"decision": "uphold"})
    dispute = RejectionDispute.objects.get(pk=seeded.dispute.pk)
    assert dispute.status == DisputeStatus.UPHELD
    work = Assignment.objects.get(pk=dispute.assignment_id)
    assert work.status == AssignmentStatus.REJECTED
    assert work.rejection_reason == "boxes too loose"


def test_bad_decisions_change_nothing(seeded):
    admin = as_user(seeded.admin)
    for data in ({"decision": "maybe"}, {}, {"decision": "uphold", "note": "x" * 501}):
        page = admin.post(
            f"/staff/disputes/{seeded.dispute.pk}/decide/", data, follow=True
        ).content.decode()
        assert 'class="flash error"' in page
    assert RejectionDispute.objects.get(pk=seeded.dispute.pk).status == DisputeStatus.PENDING
    page = admin.post("/staff/appeals/999999/decide/", {"decision": "deny"}, follow=True)
    assert "No such appeal." in page.content.decode()
    assert Appeal.objects.get(pk=seeded.appeal.pk).status == AppealStatus.PENDING


def test_a_flag_is_confirmed_in_the_page(seeded):
    as_user(seeded.admin).post(f"/staff/flags/{seeded.flag.pk}/resolve/", {"decision": "confirm"})
    flag = FraudFlag.objects.get(pk=seeded.flag.pk)
    assert flag.status == "confirmed" and flag.resolved_by == seeded.admin


def test_the_dashboard_reads_in_a_fixed_number_of_queries(seeded, django_assert_max_num_queries):
    """Aggregates and joined lists: more workers, flags and appeals add no query."""
    admin = as_user(seeded.admin)
    with django_assert_max_num_queries(QUERIES) as first:
        admin.get("/staff/")
    queries = len(first.captured_queries)  # read now: each request resets Django's query log
    for i in range(5):
        quality_services.fraud_flag_inflated_time(
            assignment=seeded.approved[1], evidence={"reported_seconds": 900 + i}
        )
        WorkerTrust.objects.create(worker=WorkerFactory(), annotation_type="bbox", trust=i / 5)
    with django_assert_max_num_queries(queries):
        admin.get("/staff/")
