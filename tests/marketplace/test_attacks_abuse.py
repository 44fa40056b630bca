"""Attacks on the abuse limits, over HTTP, as an attacker would make them: password guessing on the
login page and the token endpoint, sign-up floods, weak passwords, claim and submit floods, and a
state change smuggled into a GET. Each asserts the attack fails and that nothing changed that
should not have.

They run on the real Redis cache with the real rates and lockout numbers
(``marketplace.settings.base``), not the test settings' raised rates; the cache is emptied
before every test (``tests/conftest.py``). Time moves through ``marketplace.ratelimit._now``.
"""

from __future__ import annotations

import math
import re
import time

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from marketplace import ratelimit
from marketplace.models import User
from marketplace.settings import base as base_settings
from payments.models import ConnectedAccount, LedgerEntry, LedgerTransaction
from tasks.models import Assignment, Submission
from tests.factories import RequesterFactory, WorkerFactory
from tests.payments import conftest as payments_fixtures
from tests.tasks.claim_fixtures import published_job, qualified_worker

pytestmark = pytest.mark.django_db

stripe_server = payments_fixtures.stripe_server  # the local Stripe server, as in tests/payments

PASSWORD = "pass-word-123"  # the factories' password
TOKEN = "/api/auth/token/"
LOGIN = "/accounts/login/"
SIGNUP_API = "/api/auth/signup/"


@pytest.fixture
def real_limits(settings):
    """The rates and lockout numbers a deployment runs with, on the real Redis cache."""
    assert isinstance(caches["default"], RedisCache)
    settings.THROTTLE_RATES = dict(base_settings.THROTTLE_RATES)
    for name in (
        "LOGIN_FAILURE_LIMIT_ACCOUNT",
        "LOGIN_FAILURE_LIMIT_IP",
        "LOGIN_FAILURE_WINDOW",
        "LOGIN_LOCKOUT_SECONDS",
    ):
        setattr(settings, name, getattr(base_settings, name))
    return settings


@pytest.fixture
def clock(monkeypatch):
    """The limits' clock, started at the beginning of an hour (so no counting window ends in the
    middle of a test unless the test moves it there)."""

    class Clock:
        now = math.floor(time.time() / 3600) * 3600 + 1.0

        def advance(self, seconds: float) -> None:
            self.now += seconds

    c = Clock()
    monkeypatch.setattr(ratelimit, "_now", lambda: c.now)
    return c


def rate(scope: str) -> tuple[int, int]:
    parsed = ratelimit.parse_rate(base_settings.THROTTLE_RATES[scope])
    assert parsed is not None
    return parsed


def _masked(message: str) -> str:
    """A lockout message without its clock time, to compare two of them."""
    return re.sub(r"\d\d:\d\d UTC", "HH:MM UTC", message)


def _assert_throttled(response, *, max_wait: int) -> dict:
    assert response.status_code == 429, response.content
    wait = int(response["Retry-After"])
    assert 1 <= wait <= max_wait
    error = response.json()["error"]
    assert error["code"] == "throttled"
    assert error["retry_after"] == wait
    return error


# --- Guessing passwords -------------------------------------------------------------------------


def test_guessing_on_the_token_endpoint_locks_the_account_until_the_lockout_ends(
    real_limits, clock
):
    victim = RequesterFactory()
    attacker = APIClient()
    limit = real_limits.LOGIN_FAILURE_LIMIT_ACCOUNT
    lockout = real_limits.LOGIN_LOCKOUT_SECONDS

    for i in range(limit - 1):
        r = attacker.post(TOKEN, {"username": victim.username, "password": f"guess-{i}"})
        assert r.status_code == 403, r.content
        assert r.json()["error"]["message"] == "Wrong username or password."
    r = attacker.post(TOKEN, {"username": victim.username, "password": "guess-last"})
    error = _assert_throttled(r, max_wait=lockout)
    assert int(r["Retry-After"]) == lockout
    assert "Too many failed sign-in attempts" in error["message"]
    assert "15 minutes" in error["message"] and "UTC" in error["message"]

    # The right password is refused while locked, from anywhere (the account is locked, not only
    # the guessing IP), and mints no token.
    elsewhere = APIClient(REMOTE_ADDR="203.0.113.9")
    for client in (attacker, elsewhere):
        r = client.post(TOKEN, {"username": victim.username, "password": PASSWORD})
        assert r.status_code == 429
    clock.advance(lockout - 5)
    r = elsewhere.post(TOKEN, {"username": victim.username, "password": PASSWORD})
    _assert_throttled(r, max_wait=5)
    assert not Token.objects.filter(user=victim).exists()

    clock.advance(10)  # the lockout is over
    r = elsewhere.post(TOKEN, {"username": victim.username, "password": PASSWORD})
    assert r.status_code == 200, r.content
    assert r.json()["token"] == Token.objects.get(user=victim).key


def test_an_unknown_username_reads_exactly_like_a_wrong_password(real_limits, clock):
    known = RequesterFactory()
    limit = real_limits.LOGIN_FAILURE_LIMIT_ACCOUNT
    answers = {}
    for name, ip in ((known.username, "198.51.100.1"), ("no-such-person", "198.51.100.2")):
        client = APIClient(REMOTE_ADDR=ip)
        answers[name] = [
            client.post(TOKEN, {"username": name, "password": f"guess-{i}"})
            for i in range(limit + 1)
        ]
    known_answers, unknown_answers = answers[known.username], answers["no-such-person"]
    assert [r.status_code for r in known_answers] == [r.status_code for r in unknown_answers]
    assert [r.status_code for r in known_answers] == [403] * (limit - 1) + [429, 429]
    for a, b in zip(known_answers, unknown_answers, strict=True):
        assert _masked(a.json()["error"]["message"]) == _masked(b.json()["error"]["message"])
        assert a.get("Retry-After") == b.get("Retry-After")
    assert not User.objects.filter(username="no-such-person").exists()


def test_success_resets_the_accounts_failure_count(real_limits, clock):
    user = RequesterFactory()
    client = APIClient()
    limit = real_limits.LOGIN_FAILURE_LIMIT_ACCOUNT
    for _ in range(2):
        for i in range(limit - 1):
            bad = client.post(TOKEN, {"username": user.username, "password": f"typo-{i}"})
            assert bad.status_code == 403
        ok = client.post(TOKEN, {"username": user.username, "password": PASSWORD})
        assert ok.status_code == 200  # 2 x (limit - 1) failures in one window, never locked
        clock.advance(61)  # keep under the per-IP login rate


def test_guessing_on_the_login_page_locks_it_too_and_logs_nobody_in(real_limits, clock):
    victim = WorkerFactory()
    attacker = Client()
    limit = real_limits.LOGIN_FAILURE_LIMIT_ACCOUNT
    for i in range(limit - 1):
        r = attacker.post(LOGIN, {"username": victim.username, "password": f"guess-{i}"})
        assert r.status_code == 200
        assert "Please enter a correct username and password" in r.content.decode()
    r = attacker.post(LOGIN, {"username": victim.username, "password": "guess-last"})
    assert r.status_code == 429
    assert int(r["Retry-After"]) == real_limits.LOGIN_LOCKOUT_SECONDS
    assert "Too many failed sign-in attempts. Try again in 15 minutes" in r.content.decode()

    r = attacker.post(LOGIN, {"username": victim.username, "password": PASSWORD})
    assert r.status_code == 429
    assert "_auth_user_id" not in attacker.session
    victim.refresh_from_db()
    assert victim.last_login is None
    # The token endpoint shares the lock (same account).
    api = APIClient().post(TOKEN, {"username": victim.username, "password": PASSWORD})
    assert api.status_code == 429

    clock.advance(real_limits.LOGIN_LOCKOUT_SECONDS + 1)
    r = attacker.post(LOGIN, {"username": victim.username, "password": PASSWORD})
    assert r.status_code == 302
    assert attacker.session["_auth_user_id"] == str(victim.pk)
    victim.refresh_from_db()
    assert victim.last_login is not None


def test_one_ip_guessing_many_accounts_is_rate_limited_then_locked(real_limits, clock):
    bystander = RequesterFactory()
    attacker = APIClient(REMOTE_ADDR="192.0.2.50")
    per_minute, period = rate("login")
    ip_limit = real_limits.LOGIN_FAILURE_LIMIT_IP
    tried = 0
    # As fast as it can: the login rate stops it within a minute (each guess a new account, so
    # no account lock explains it).
    for i in range(per_minute):
        r = attacker.post(TOKEN, {"username": f"target-{i}", "password": "123456"})
        assert r.status_code == 403
        tried += 1
    r = attacker.post(TOKEN, {"username": "target-x", "password": "123456"})
    _assert_throttled(r, max_wait=period)
    # Slowed to the rate, it still reaches the per-IP failure limit within the window: the IP is
    # locked, and even a right password from it is refused; another IP is not.
    while tried < ip_limit:
        clock.advance(period)
        for _ in range(min(per_minute, ip_limit - tried)):
            r = attacker.post(TOKEN, {"username": f"target-{tried}", "password": "123456"})
            tried += 1
    assert r.status_code == 429 and "failed sign-in" in r.json()["error"]["message"]
    clock.advance(period)
    r = attacker.post(TOKEN, {"username": bystander.username, "password": PASSWORD})
    assert r.status_code == 429
    assert not Token.objects.filter(user=bystander).exists()
    ok = APIClient(REMOTE_ADDR="192.0.2.51").post(
        TOKEN, {"username": bystander.username, "password": PASSWORD}
    )
    assert ok.status_code == 200


def test_the_login_page_and_the_token_endpoint_share_one_rate_per_ip(real_limits, clock):
    per_minute, period = rate("login")
    page, api = Client(REMOTE_ADDR="192.0.2.60"), APIClient(REMOTE_ADDR="192.0.2.60")
    for i in range(per_minute):
        client, url = (page, LOGIN) if i % 2 else (api, TOKEN)
        assert client.post(url, {"username": f"u{i}", "password": "x"}).status_code in (200, 403)
    r = page.post(LOGIN, {"username": "u-next", "password": "x"})
    assert r.status_code == 429 and 1 <= int(r["Retry-After"]) <= period
    assert "Too many sign-in attempts from your network" in r.content.decode()
    _assert_throttled(api.post(TOKEN, {"username": "u-next", "password": "x"}), max_wait=period)


# --- Sign-up ------------------------------------------------------------------------------------


def test_a_sign_up_flood_from_one_ip_is_refused(real_limits, clock):
    allowed, period = rate("signup")
    bot = APIClient(REMOTE_ADDR="192.0.2.70")
    for i in range(allowed):
        body = {"username": f"bot{i}", "password": f"Xy7-long-pass-{i}", "role": "worker"}
        assert bot.post(SIGNUP_API, body, format="json").status_code == 201
    before = User.objects.count()
    body = {"username": "bot-extra", "password": "Xy7-long-pass-x", "role": "worker"}
    _assert_throttled(bot.post(SIGNUP_API, body, format="json"), max_wait=period)
    # The sign-up page counts with the API.
    page = Client(REMOTE_ADDR="192.0.2.70")
    r = page.post(
        "/accounts/signup/worker/",
        {"username": "bot-page", "password1": "Xy7-long-pass", "password2": "Xy7-long-pass"},
    )
    assert r.status_code == 429 and int(r["Retry-After"]) >= 1
    assert "Too many sign-ups from your network" in r.content.decode()
    assert User.objects.count() == before
    assert not User.objects.filter(username__in=["bot-extra", "bot-page"]).exists()
    # Someone else is not affected.
    other = APIClient(REMOTE_ADDR="192.0.2.71")
    body = {"username": "human", "password": "Xy7-long-pass-h", "role": "worker"}
    assert other.post(SIGNUP_API, body, format="json").status_code == 201


@pytest.mark.parametrize(
    ("username", "email", "password", "says"),
    [
        ("shorty", "", "k9!zq", "too short"),
        ("commoner", "", "password123", "too common"),
        ("marianne", "", "marianne1", "too similar"),
        ("eve", "evelyn.cartwright@example.test", "evelyncartwright", "too similar"),
    ],
)
def test_a_weak_password_at_api_sign_up_is_400_with_field_errors(
    real_limits, username, email, password, says
):
    body = {"username": username, "email": email, "password": password, "role": "requester"}
    r = APIClient().post(SIGNUP_API, body, format="json")
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert error["code"] == "invalid"
    assert any(says in m for m in error["fields"]["password"]), error
    assert not User.objects.filter(username=username).exists()
    assert not Token.objects.exists()


def test_a_weak_password_at_page_sign_up_is_refused(real_limits):
    r = Client().post(
        "/accounts/signup/requester/",
        {"username": "paula", "password1": "password123", "password2": "password123"},
    )
    assert r.status_code == 200
    assert "too common" in r.content.decode()
    assert not User.objects.filter(username="paula").exists()


# --- Claim and submit floods --------------------------------------------------------------------


def _ledger_state() -> tuple[int, int]:
    return LedgerTransaction.objects.count(), LedgerEntry.objects.count()


def test_a_claim_flood_is_throttled_per_worker(real_limits, clock, client_for, monkeypatch):
    from tasks import claiming

    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)  # no gold in the way
    published_job(n=2, overlap=1)
    worker = qualified_worker()
    bot = client_for(worker)
    allowed, period = rate("claim")
    statuses = [bot.post("/api/work/claim/", {}, format="json").status_code for _ in range(allowed)]
    assert 429 not in statuses and statuses.count(201) >= 1
    held, ledger = Assignment.objects.filter(worker=worker).count(), _ledger_state()

    r = bot.post("/api/work/claim/", {}, format="json")
    _assert_throttled(r, max_wait=period)
    assert Assignment.objects.filter(worker=worker).count() == held
    assert _ledger_state() == ledger
    # The claim page counts with the API.
    page = Client()
    page.force_login(worker)
    r = page.post("/work/claim/")
    assert r.status_code == 429 and int(r["Retry-After"]) >= 1
    assert "claiming too fast" in r.content.decode()
    assert Assignment.objects.filter(worker=worker).count() == held
    # Another worker is not affected, and the flooder may claim again in the next window.
    assert client_for(qualified_worker()).post("/api/work/claim/", {}).status_code in (201, 404)
    clock.advance(period)
    assert bot.post("/api/work/claim/", {}, format="json").status_code != 429


def test_a_submit_flood_is_throttled_per_worker(real_limits, clock, client_for, monkeypatch):
    from tasks import claiming

    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)
    published_job(n=1, overlap=1)
    worker = qualified_worker()
    bot = client_for(worker)
    claimed = bot.post("/api/work/claim/", {}, format="json").json()
    frame = claimed["task"]["annotate_frames"][0]
    url = f"/api/work/assignments/{claimed['id']}/submit/"
    allowed, period = rate("submit")
    first = {"payload": {"boxes": [{"frame": frame, "label": "car", "box": [1, 1, 40, 30]}]}}
    assert bot.post(url, first, format="json").status_code == 200
    submission = Submission.objects.get(assignment_id=claimed["id"])
    ledger = _ledger_state()
    # Resubmitting different answers as fast as possible: refused (409) until the rate, then 429.
    other = {"payload": {"boxes": [{"frame": frame, "label": "person", "box": [2, 2, 9, 9]}]}}
    for _ in range(allowed - 1):
        assert bot.post(url, other, format="json").status_code != 429
    _assert_throttled(bot.post(url, other, format="json"), max_wait=period)
    submission.refresh_from_db()
    assert submission.payload["boxes"][0]["label"] == "car"
    assert Submission.objects.filter(assignment__worker=worker).count() == 1
    assert _ledger_state() == ledger


# --- Funding check floods -----------------------------------------------------------------------


def test_a_funding_check_flood_is_throttled_before_it_reaches_stripe(
    real_limits, clock, client_for, stripe_server
):
    """Each check of a Checkout payment asks Stripe: a requester hammering the check (the API and
    the page count together) is refused past the rate, and Stripe hears nothing more."""
    from tests.payments.conftest import checkout_funding
    from tests.tasks.claim_fixtures import ready_job

    job = ready_job(n=2, price=60, budget=0, gold_rate=0.0)
    job.budget = 10**7
    job.save(update_fields=["budget"])
    f = checkout_funding(job)  # unpaid: every check asks Stripe for the session
    bot = client_for(job.requester)
    api = f"/api/payments/jobs/{job.pk}/fundings/{f.pk}/check/"
    page_url = f"/requester/jobs/{job.pk}/funding/{f.pk}/check/"
    page = Client()
    page.force_login(job.requester)
    allowed, period = rate("funding_check")
    asked = len(stripe_server.request_log)
    assert page.post(page_url).status_code == 302  # the page's check counts with the API's
    assert all(bot.post(api).status_code == 200 for _ in range(allowed - 1))
    assert len(stripe_server.request_log) >= asked + allowed  # each check asked Stripe
    asked = len(stripe_server.request_log)

    _assert_throttled(bot.post(api), max_wait=period)
    r = page.post(page_url)
    assert r.status_code == 429 and 1 <= int(r["Retry-After"]) <= period
    body = r.content.decode()
    assert "checking payments too often" in body
    assert 'id="check-payment"' in body and 'data-auto-check="0"' in body  # no loop
    assert len(stripe_server.request_log) == asked  # nothing reached Stripe past the limit
    f.refresh_from_db()
    assert f.status == "created"
    # Another requester is not affected; the flooder may check again in the next window.
    other = ready_job(n=1, price=60, budget=0, gold_rate=0.0)
    other.budget = 10**7
    other.save(update_fields=["budget"])
    g = checkout_funding(other)
    other_api = f"/api/payments/jobs/{other.pk}/fundings/{g.pk}/check/"
    assert client_for(other.requester).post(other_api).status_code == 200
    clock.advance(period)
    assert bot.post(api).status_code == 200


# --- State changes only on POST -----------------------------------------------------------------


def test_get_on_the_connect_refresh_route_changes_nothing(client, stripe_server):
    worker = WorkerFactory()
    client.force_login(worker)
    r = client.get("/payments/connect/refresh/")
    assert r.status_code == 200
    page = r.content.decode()
    assert 'method="post"' in page and "csrfmiddlewaretoken" in page
    assert not ConnectedAccount.objects.filter(worker=worker).exists()
    assert stripe_server.request_log == []

    # A forged cross-site POST (no CSRF token) is refused and changes nothing either.
    forged = Client(enforce_csrf_checks=True)
    forged.force_login(worker)
    assert forged.post("/payments/connect/refresh/").status_code == 403
    assert not ConnectedAccount.objects.filter(worker=worker).exists()
    assert stripe_server.request_log == []

    # The button (a POST with the token) mints the link.
    r = client.post("/payments/connect/refresh/")
    assert r.status_code == 302 and "/_onboard/" in r["Location"]
    account = ConnectedAccount.objects.get(worker=worker)
    calls = len(stripe_server.request_log)

    # Stripe's redirect back (GET) reads only: no call to Stripe, our copy untouched.
    synced = account.synced_at
    stripe_server.complete_onboarding(account.stripe_account_id)
    assert client.get("/payments/connect/return/").status_code == 200
    assert client.get("/payments/connect/refresh/").status_code == 200
    assert len(stripe_server.request_log) == calls
    account.refresh_from_db()
    assert account.synced_at == synced and account.payouts_enabled is False
