"""What the access matrix and Schemathesis found, one test each, asked as a client would."""

from __future__ import annotations

import pytest

from payments.models import AuditLog, ConnectedAccount
from tasks.models import MicroTask
from tests.factories import JobFactory, MicroTaskFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "created_after",
    [
        "0221-02-16T01:26:59-20:40",  # an offset PostgreSQL refuses (it allows up to ±15:59)
        "2024-01-01T00:00:00+23:59",
    ],
)
def test_a_job_filter_with_any_utc_offset_python_accepts_is_answered(
    requester_client, created_after
):
    JobFactory(requester=requester_client.user)
    r = requester_client.get("/api/jobs/", {"created_after": created_after})
    assert r.status_code == 200, r.content


def test_a_job_filter_date_that_utc_cannot_hold_is_clamped_not_a_500(requester_client):
    """Year 1 at +05:00 lies before UTC's first instant: the bound means "from the beginning of
    time", so it is clamped there (the schema's date-time format allows it, so it is no 400)."""
    JobFactory(requester=requester_client.user)
    r = requester_client.get("/api/jobs/", {"created_before": "0001-01-01T00:00:00+05:00"})
    assert r.status_code == 200 and r.json()["count"] == 0
    r = requester_client.get("/api/jobs/", {"created_after": "0001-01-01T00:00:00+05:00"})
    assert r.status_code == 200 and r.json()["count"] == 1


def test_cancel_through_the_format_suffix_route_cancels(requester_client):
    job = JobFactory(requester=requester_client.user)
    r = requester_client.post(f"/api/jobs/{job.pk}/cancel.json")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


@pytest.mark.parametrize("path", ["/api/jobs/abc/", "/api/no-such-thing/", "/api/jobs/1/x/"])
def test_an_api_path_no_route_matches_is_the_api_s_json_404(requester_client, path):
    r = requester_client.get(path)
    assert r.status_code == 404
    assert r["Content-Type"] == "application/json"
    assert r.json()["error"]["code"] == "not_found"


def test_a_page_path_no_route_matches_stays_an_html_404(client):
    r = client.get("/no-such-page/")
    assert r.status_code == 404 and r["Content-Type"].startswith("text/html")


def test_viewing_the_funding_page_does_not_reprice_the_job(client, requester, stripe_server):
    job = JobFactory(requester=requester)
    MicroTaskFactory.create_batch(2, video__job=job, job=job, price=0)
    client.force_login(requester)
    page = client.get(f"/requester/jobs/{job.pk}/funding/")
    assert page.status_code == 200 and "Quote to fund" in page.content.decode()
    assert set(MicroTask.objects.filter(job=job).values_list("price", flat=True)) == {0}
    # Funding (a POST) prices the microtasks it charges for.
    client.post(f"/requester/jobs/{job.pk}/funding/")
    assert 0 not in set(MicroTask.objects.filter(job=job).values_list("price", flat=True))


def test_the_connect_refresh_get_creates_no_account(client, worker, stripe_server):
    accounts_at_stripe = len(stripe_server.state.accounts)
    client.force_login(worker)
    r = client.get("/payments/connect/refresh/")
    assert r.status_code == 200  # a page whose button POSTs (with CSRF) to mint a new link
    assert not ConnectedAccount.objects.exists() and not AuditLog.objects.exists()
    assert len(stripe_server.state.accounts) == accounts_at_stripe


def test_claiming_from_a_job_id_beyond_bigint_is_a_400(client_for, world):
    r = client_for(world.worker).post("/api/work/claim/", {"job": 2**70}, format="json")
    assert r.status_code == 400 and "job" in r.json()["error"]["fields"]


def test_a_job_budget_beyond_bigint_is_a_400(requester_client):
    job = {
        "title": "t",
        "instructions": "i",
        "annotation_type": "bbox",
        "label_classes": ["car"],
        "budget": 2**63,
        "currency": "usd",
    }
    r = requester_client.post("/api/jobs/", job, format="json")
    assert r.status_code == 400 and "budget" in r.json()["error"]["fields"]


def test_a_funding_amount_beyond_bigint_is_a_400(client_for, world, stripe_server):
    r = client_for(world.requester).post(
        f"/api/payments/jobs/{world.job.pk}/fund/", {"amount": 10**20}, format="json"
    )
    assert r.status_code == 400 and "amount" in r.json()["error"]["fields"]


def test_a_form_with_too_many_fields_is_the_api_s_json_400(requester_client):
    """Django refuses more than DATA_UPLOAD_MAX_NUMBER_FIELDS fields while DRF parses the body;
    the client must get the API's error shape, not Django's HTML page (found by Schemathesis)."""
    job = JobFactory(requester=requester_client.user)
    body = "&".join(["microtasks=1"] * 1500 + ["format=coco"])
    r = requester_client.post(
        f"/api/quality/jobs/{job.pk}/gold-import/",
        body,
        content_type="application/x-www-form-urlencoded",
    )
    assert r.status_code == 400 and r["Content-Type"] == "application/json"
    assert r.json()["error"]["code"] == "invalid"
