"""Connect onboarding for workers who use the API with a token: the link's return and refresh
pages work in a browser without our session cookie, through a signed state that names the
worker's own account and nothing else (``payments.connect.onboarding_state``)."""

from __future__ import annotations

import urllib.parse

import pytest
from django.core import signing
from django.test import Client

from payments import connect
from payments.models import ConnectedAccount
from tests.factories import WorkerFactory

pytestmark = pytest.mark.django_db


def _return_url(link: str) -> str:
    """The return URL we gave Stripe (the local server carries it in its onboarding link)."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
    return query["return_url"][0]


def _path(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _api_link(client_for, worker) -> str:
    r = client_for(worker).post("/api/payments/connect/")
    assert r.status_code == 201, r.content
    return r.json()["url"]


def test_a_token_client_comes_back_without_a_session(client_for, worker, stripe_server):
    before = client_for(worker).get("/api/payments/connect/").json()
    assert before == {"connected": False, "payouts_enabled": False}
    link = _api_link(client_for, worker)
    back = _path(_return_url(link))
    assert back.startswith("/payments/connect/return/?state=")
    browser = Client()  # no session: the worker used the API with a token

    page = browser.get(back)
    assert page.status_code == 200
    assert "Check my payout account" in page.content.decode()
    synced = len(stripe_server.request_log)

    assert len(stripe_server.request_log) == synced  # a GET asks Stripe nothing
    r = browser.post(back)
    assert r.status_code == 200
    assert "Stripe still needs information" in r.content.decode()
    assert "/payments/connect/refresh/?state=" in r.content.decode()  # continue onboarding
    worker.worker_profile.refresh_from_db()
    assert worker.worker_profile.payouts_enabled is False

    stripe_server.complete_onboarding(worker.connected_account.stripe_account_id)
    r = browser.post(back)
    assert "Your payout account is ready" in r.content.decode()
    worker.worker_profile.refresh_from_db()
    assert worker.worker_profile.payouts_enabled is True
    status = client_for(worker).get("/api/payments/connect/").json()
    assert status["connected"] is True and status["payouts_enabled"] is True


def test_the_refresh_page_mints_a_new_link_for_the_signed_account(
    client_for, worker, stripe_server
):
    link = _api_link(client_for, worker)
    refresh = _path(_return_url(link)).replace("/return/", "/refresh/")
    browser = Client()
    assert browser.get(refresh).status_code == 200
    r = browser.post(refresh)
    assert r.status_code == 302 and "/_onboard/" in r["Location"]
    assert r["Location"] != link
    account = worker.connected_account.stripe_account_id
    assert f"/_onboard/{account}/" in r["Location"]
    assert "state=" in _return_url(r["Location"])


@pytest.mark.parametrize(
    "state",
    [
        "nonsense",
        "",
        "x" * 5_000,
        signing.dumps({"worker": 1, "account": "acct_x"}, salt="another-salt"),
    ],
)
def test_a_forged_state_is_refused_and_asks_nothing_of_stripe(
    client_for, worker, stripe_server, state
):
    _api_link(client_for, worker)
    before = len(stripe_server.request_log)
    for path in ("/payments/connect/return/", "/payments/connect/refresh/"):
        for method in (Client().get, Client().post):
            r = method(f"{path}?{urllib.parse.urlencode({'state': state})}")
            assert r.status_code == 400
            assert "This link" in r.content.decode()
    assert len(stripe_server.request_log) == before


def test_a_state_cannot_be_pointed_at_another_workers_account(client_for, worker, stripe_server):
    other = WorkerFactory()
    _api_link(client_for, worker)
    _api_link(client_for, other)
    mine = ConnectedAccount.objects.get(worker=worker)
    theirs = ConnectedAccount.objects.get(worker=other)
    # My worker id with their account (or the reverse) is no account we signed for.
    for forged in (
        {"worker": worker.pk, "account": theirs.stripe_account_id},
        {"worker": other.pk, "account": mine.stripe_account_id},
    ):
        tampered = signing.dumps(forged, salt="payments.connect.onboarding-state.x")
        r = Client().post(f"/payments/connect/return/?state={tampered}")
        assert r.status_code == 400
    # A real state of another worker, opened while signed in as me, is refused too.
    browser = Client()
    browser.force_login(worker)
    r = browser.post(f"/payments/connect/return/?state={connect.onboarding_state(theirs)}")
    assert r.status_code == 400 and "another account" in r.content.decode()


def test_an_expired_state_is_refused(client_for, worker, stripe_server, settings):
    back = _path(_return_url(_api_link(client_for, worker)))
    settings.CONNECT_STATE_MAX_AGE_SECONDS = -1
    r = Client().post(back)
    assert r.status_code == 400 and "expired" in r.content.decode()


def test_the_signed_in_pages_work_as_before(client, worker, stripe_server):
    client.force_login(worker)
    start = client.post("/payments/connect/start/")
    assert start.status_code == 302
    assert "state=" not in _return_url(start["Location"])  # the session says who
    assert client.get("/payments/connect/return/").status_code == 200
    assert Client().get("/payments/connect/return/").status_code == 302  # to the login page
