"""Sign-up and login through the API and the pages."""

import pytest

from marketplace.models import RequesterProfile, User, WorkerProfile

pytestmark = pytest.mark.django_db


def test_api_signup_creates_profile_and_token(api_client):
    r = api_client.post(
        "/api/auth/signup/",
        {"username": "ann", "password": "long-enough-1", "role": "worker", "country": "de"},
        format="json",
    )
    assert r.status_code == 201, r.json()
    user = User.objects.get(username="ann")
    assert WorkerProfile.objects.get(user=user).country == "DE"
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {r.json()['token']}")
    assert api_client.get("/api/me/").json()["role"] == "worker"


def test_api_signup_refuses_admin_role_and_duplicates(api_client):
    r = api_client.post(
        "/api/auth/signup/", {"username": "eve", "password": "long-enough-1", "role": "admin"}
    )
    assert r.status_code == 400 and "role" in r.json()["error"]["fields"]
    ok = {"username": "bob", "password": "long-enough-1", "role": "requester"}
    assert api_client.post("/api/auth/signup/", ok).status_code == 201
    dup = api_client.post("/api/auth/signup/", {**ok, "username": "BOB"})
    assert dup.status_code == 400
    assert User.objects.filter(username__iexact="bob").count() == 1


def test_token_login_with_wrong_password_is_403(api_client, requester):
    r = api_client.post("/api/auth/token/", {"username": requester.username, "password": "wrong"})
    assert r.status_code == 403
    good = api_client.post(
        "/api/auth/token/", {"username": requester.username, "password": "pass-word-123"}
    )
    assert good.status_code == 200 and good.json()["token"]


def test_signup_page_creates_requester_and_logs_in(client):
    r = client.post(
        "/accounts/signup/requester/",
        {
            "username": "rita",
            "password1": "Xy7-long-pass",
            "password2": "Xy7-long-pass",
            "organisation": "Rita Labs",
        },
    )
    assert r.status_code == 302
    assert RequesterProfile.objects.get(user__username="rita").organisation == "Rita Labs"
    assert client.get("/requester/jobs/").status_code == 200


def test_signup_page_for_unknown_role_is_404(client):
    assert client.get("/accounts/signup/admin/").status_code == 404


def test_requester_pages_hide_other_requesters_jobs(client, requester):
    from tests.factories import JobFactory

    mine, theirs = JobFactory(requester=requester), JobFactory()
    client.force_login(requester)
    assert client.get(f"/requester/jobs/{mine.pk}/").status_code == 200
    assert client.get(f"/requester/jobs/{theirs.pk}/").status_code == 404
    page = client.get("/requester/jobs/").content.decode()
    assert mine.title in page and theirs.title not in page
