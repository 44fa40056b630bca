"""Everyone lands on their dashboard after logging in (a safe ``next`` wins), and every page of
the site is reachable by following links from a role's landing page: a crawler starts there,
follows every same-site ``<a href>`` (GET only, as a person clicking), and must reach every named
page route that answers that role with a page."""

from __future__ import annotations

import re
from collections import deque
from urllib.parse import urldefrag, urlsplit

import pytest
from django.test import Client
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.exceptions import Resolver404

from tests.e2e.browser import PASSWORD
from tests.factories import AdminFactory, RequesterFactory, WorkerFactory
from tests.marketplace.test_safe_methods import POST_ONLY
from tests.security.conftest import World, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(monkeypatch) -> World:
    """The security suite's world: one of everything, owned by "worker" and "requester"."""
    from tasks import claiming

    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)  # no gold claimed
    return build_world()


LANDING = {"worker": "/work/", "requester": "/requester/jobs/", "admin": "/staff/"}

# Named routes that are not pages a person navigates to, whoever they are.
NOT_PAGES = {
    "healthz",  # a probe for load balancers
    "media",  # files (frames, uploads), shown inside pages
    "work-frame",  # a frame image of a claim
    "requester-frame",  # a frame image of a requester's microtask (previews, review)
    "logout",  # a POST from the header's button
    "schema",  # the OpenAPI document (JSON/YAML), read by the Swagger UI page
}
# Pages a role reaches in other ways than a link, each for a stated reason.
NOT_LINKED = {
    # The visitors' sign-up page: a signed-in user has an account (the login page sends them on).
    ("worker", "signup"),
    ("requester", "signup"),
    ("admin", "signup"),
    # Stripe's onboarding sends the worker back to these two; nobody clicks to them.
    ("worker", "payments-connect-refresh"),
    ("worker", "payments-connect-return"),
    # The board links a type's test only while the worker has it to take (this one passed).
    ("worker", "work-qualify"),
}


def kwargs_for(world: World) -> dict[str, dict]:
    """Path arguments of the page routes that take some."""
    return {
        "signup": {"role": "worker"},
        "requester-job-detail": {"pk": world.job.pk},
        "payments-job-funding": {"pk": world.job.pk},
        "quality-job-report": {"job_id": world.job.pk},
        "quality-review-detail": {"pk": world.review.pk},
        "work-annotate": {"pk": world.claimed.pk},
        "work-qualify": {"annotation_type": "bbox"},
        "requester-job-submissions": {"pk": world.job.pk},
        "requester-job-action": {"pk": world.job.pk, "action": "pause"},
        "quality-gold-draw": {"job_id": world.job.pk, "microtask_id": world.microtask.pk},
    }


def page_routes() -> set[str]:
    """Named routes outside the Django admin and the JSON API (the Swagger UI page is one)."""

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                if p.namespace != "admin":
                    yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and p.name:
                yield prefix + str(p.pattern), p.name

    return {
        name
        for route, name in walk(get_resolver().url_patterns)
        if (not route.startswith("api/") or name == "swagger-ui") and name not in NOT_PAGES
    }


def is_page(response) -> bool:
    return response.status_code == 200 and response["Content-Type"].startswith("text/html")


def pages_for(client: Client, world: World) -> set[str]:
    """The page routes that answer this client with a page."""
    kwargs = kwargs_for(world)
    found = set()
    for name in sorted(page_routes()):
        try:
            path = reverse(name, kwargs=kwargs.get(name))
        except NoReverseMatch:
            assert name in POST_ONLY, f"give {name!r} its path arguments in kwargs_for"
            continue
        if is_page(client.get(path)):
            found.add(name)
    return found


HREF = re.compile(r'<a\s[^>]*href="([^"]+)"')


def crawl(client: Client, start: str, limit: int = 400) -> set[str]:
    """The names of the routes reached by following links from ``start``."""
    seen_urls = {start}
    queue = deque([start])
    reached = set()
    while queue and len(seen_urls) < limit:
        url = queue.popleft()
        response = client.get(url)
        if not is_page(response):
            continue
        reached.add(resolve(urlsplit(url).path).url_name)
        for href in HREF.findall(response.content.decode()):
            href = urldefrag(href.replace("&amp;", "&"))[0]
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or not href.startswith("/"):
                continue  # another site (there should be none), or not a path
            path = parts.path
            if path.startswith(("/admin/", "/media/")) or (
                path.startswith("/api/") and path != "/api/docs/"
            ):
                continue  # the Django admin, files, JSON and dataset downloads
            try:
                resolve(path)
            except Resolver404:
                raise AssertionError(f"{url} links to {href}, which is no page") from None
            if href not in seen_urls:
                seen_urls.add(href)
                queue.append(href)
    return reached


@pytest.mark.parametrize("role", ["worker", "requester", "admin", "anonymous"])
def test_every_page_of_a_role_is_reachable_by_links_from_its_landing_page(world, role):
    client = Client()
    if role != "anonymous":
        client.force_login(world.users[role])
    start = LANDING.get(role, "/")
    assert is_page(client.get(start))
    expected = {n for n in pages_for(client, world) if (role, n) not in NOT_LINKED}
    assert len(expected) >= 3
    unreachable = expected - crawl(client, start)
    assert unreachable == set(), f"{role} cannot reach by links: {sorted(unreachable)}"


@pytest.mark.parametrize(
    ("factory", "landing"),
    [(WorkerFactory, "/work/"), (RequesterFactory, "/requester/jobs/"), (AdminFactory, "/staff/")],
)
def test_everyone_lands_on_their_dashboard_after_login(factory, landing):
    user = factory()
    client = Client()
    r = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert r.status_code == 302 and r["Location"] == landing
    # Logged in already, the login page sends them there too, and the home page links it.
    assert client.get("/accounts/login/")["Location"] == landing
    assert (
        f'<a class="button" href="{landing}">Go to your dashboard</a>'
        in client.get("/").content.decode()
    )


def test_a_safe_next_wins_and_an_unsafe_one_is_ignored():
    worker = WorkerFactory()
    for next_url, expected in [
        ("/quality/me/", "/quality/me/"),
        ("https://evil.example/steal", "/work/"),
        ("//evil.example/", "/work/"),
    ]:
        r = Client().post(
            "/accounts/login/",
            {"username": worker.username, "password": PASSWORD, "next": next_url},
        )
        assert r.status_code == 302 and r["Location"] == expected, next_url


def test_a_new_worker_lands_on_the_board_after_signing_up():
    r = Client().post(
        "/accounts/signup/worker/",
        {"username": "newbie", "password1": "a-long-pass-9", "password2": "a-long-pass-9"},
    )
    assert r.status_code == 302 and r["Location"] == "/work/", r.content[:500]
