"""The access-control matrix: every route of the URLconf, as each of six roles, answers what the
table below says.

HOW TO ADD A ROUTE. ``test_every_route_is_in_the_table`` fails for a route of the URLconf that
``ROUTES`` does not name (and for a name that is no route any more). Add an entry keyed by the
route's pattern as the failure prints it, with a ``Probe``: the URL to ask (filled with the
fixture world's objects, ``tests/security/conftest.py``; add the object there if it is new), the
expected answer to ``GET`` for each role, and for every unsafe method the route has, the answer
for each role that must be refused, with a minimal body an attacker would send (``ACT`` for the
roles that may act: their request is not sent, as it would change things). Expectations are
written ``(anonymous, worker, other_worker, requester, other_requester, admin)``:

- a status code, or a tuple of acceptable ones;
- ``LOGIN`` / ``ADMIN_LOGIN``: a redirect to the login page (of the site / of the admin).

Every request is checked for its status, that nothing in the database changed (``GET`` and
``HEAD``, asked of every route and expected to answer alike, are safe; a refused write writes
nothing), and that no role receives a marker of data that is not theirs (``World.secrets``).
Routes of Django's admin (``admin/...``) are one entry: the admin is for staff and everyone else
is sent to its login.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.security.conftest import ROLES, World, changed_tables, db_fingerprint

LOGIN = "login"
ADMIN_LOGIN = "admin-login"
ACT = "act"  # the role may do this: not sent
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")

Expect = int | tuple[int, ...] | str

# The one write a read may make: a dataset download records what it carried (an access log, so
# that a later rejection of that work goes to an admin; see tests/marketplace/test_safe_methods).
GET_MAY_LOG = {"api/jobs/<int:job_id>/export/<str:fmt>/": {"tasks_jobexport", "tasks_exportedwork"}}
Row = tuple[Expect, Expect, Expect, Expect, Expect, Expect]


@dataclass(frozen=True)
class Probe:
    url: Callable[[World], str]
    get: Row
    unsafe: dict[str, Row] = field(default_factory=dict)
    # The body of the unsafe requests (JSON for /api/, a form elsewhere).
    body: Callable[[World], dict] = lambda w: {}


def same(expect: Expect) -> Row:
    return (expect,) * 6


# Shorthands for the common shapes: who may see a route, and what the others get.
PUBLIC = same(200)
NOT_GET = same(405)  # a write-only route of everyone (sign-up, token, webhooks)
# API
API_ANYONE = (401, 200, 200, 200, 200, 200)
API_WORKER = (401, 200, 200, 403, 403, 403)
API_WORKER_OWN = (401, 200, 404, 403, 403, 403)  # the worker's own object
API_REQUESTER = (401, 403, 403, 200, 200, 200)
API_REQUESTER_OWN = (401, 403, 403, 200, 404, 200)  # the requester's own object
API_ADMIN = (401, 403, 403, 403, 403, 200)
# API routes that only take writes: GET is refused before the method is looked at.
API_WORKER_WRITE = (401, 405, 405, 403, 403, 403)
API_REQUESTER_WRITE = (401, 403, 403, 405, 405, 405)
API_ADMIN_WRITE = (401, 403, 403, 403, 403, 405)
# Pages
PAGE_ANYONE = (LOGIN, 200, 200, 200, 200, 200)
PAGE_WORKER = (LOGIN, 200, 200, 404, 404, 404)
PAGE_WORKER_OWN = (LOGIN, 200, 404, 404, 404, 404)
PAGE_REQUESTER = (LOGIN, 404, 404, 200, 200, 200)
PAGE_REQUESTER_OWN = (LOGIN, 404, 404, 200, 404, 200)
PAGE_WRITE = (LOGIN, 405, 405, 405, 405, 405)  # @login_required @require_POST
# The refusals of a write, for roles that must not act.
REFUSE_WORKER_ONLY = (401, ACT, ACT, 403, 403, 403)
REFUSE_WORKER_OWN = (401, ACT, 404, 403, 403, 403)
REFUSE_REQUESTER_ONLY = (401, 403, 403, ACT, ACT, ACT)
REFUSE_REQUESTER_OWN = (401, 403, 403, ACT, 404, ACT)
REFUSE_ADMIN_ONLY = (401, 403, 403, 403, 403, ACT)
PAGE_REFUSE_WORKER_OWN = (LOGIN, ACT, 404, 404, 404, 404)
# Staff pages (/staff/...): a visitor is sent to log in, anyone else signed in gets 403.
PAGE_STAFF = (LOGIN, 403, 403, 403, 403, 200)
PAGE_STAFF_WRITE = (LOGIN, 403, 403, 403, 403, 405)
PAGE_REFUSE_STAFF_ONLY = (LOGIN, 403, 403, 403, 403, ACT)
PAGE_REFUSE_REQUESTER_OWN = (LOGIN, 404, 404, ACT, 404, ACT)


def job(w: World) -> int:
    return w.job.pk


ROUTES: dict[str, list[Probe]] = {
    # --- site -----------------------------------------------------------------------------
    "": [Probe(lambda w: "/", PUBLIC)],
    "healthz": [Probe(lambda w: "/healthz", PUBLIC)],
    "accounts/login/": [
        Probe(
            lambda w: "/accounts/login/",
            (200, 302, 302, 302, 302, 302),
            # An empty form: the form again for a visitor, home for whoever is logged in.
            {"POST": (200, 302, 302, 302, 302, 302), "PUT": (200, 302, 302, 302, 302, 302)},
        )
    ],
    # Logging out changes only the session.
    "accounts/logout/": [Probe(lambda w: "/accounts/logout/", NOT_GET, {"POST": same(ACT)})],
    "accounts/signup/<str:role>/": [
        Probe(lambda w: "/accounts/signup/worker/", PUBLIC, {"POST": same(200)}),
        Probe(lambda w: "/accounts/signup/admin/", same(404), {"POST": same(404)}),
    ],
    "requester/jobs/": [Probe(lambda w: "/requester/jobs/", PAGE_REQUESTER)],
    "requester/jobs/new/": [
        Probe(
            lambda w: "/requester/jobs/new/",
            PAGE_REQUESTER,
            # An empty form is shown again with its errors; nothing is created.
            {"POST": (LOGIN, 404, 404, 200, 200, 200)},
        )
    ],
    "requester/jobs/<int:pk>/": [
        Probe(lambda w: f"/requester/jobs/{job(w)}/", PAGE_REQUESTER_OWN),
    ],
    "requester/jobs/<int:pk>/videos/": [
        Probe(
            lambda w: f"/requester/jobs/{job(w)}/videos/",
            PAGE_WRITE,
            {"POST": PAGE_REFUSE_REQUESTER_OWN},
        )
    ],
    "requester/jobs/<int:pk>/videos/<int:video_id>/delete/": [
        Probe(
            lambda w: f"/requester/jobs/{job(w)}/videos/{w.video.pk}/delete/",
            PAGE_WRITE,
            {"POST": PAGE_REFUSE_REQUESTER_OWN},
        )
    ],
    "requester/jobs/<int:pk>/process/": [
        Probe(
            lambda w: f"/requester/jobs/{job(w)}/process/",
            PAGE_WRITE,
            {"POST": PAGE_REFUSE_REQUESTER_OWN},
        )
    ],
    "requester/jobs/<int:pk>/status/<str:action>/": [
        # GET: the confirmation page (changes nothing); POST: the transition, the owner's only.
        Probe(
            lambda w: f"/requester/jobs/{job(w)}/status/pause/",
            PAGE_REQUESTER_OWN,
            {"POST": PAGE_REFUSE_REQUESTER_OWN},
        ),
        Probe(
            lambda w: f"/requester/jobs/{job(w)}/status/explode/",
            (LOGIN, 404, 404, 404, 404, 404),
            {"POST": (LOGIN, 404, 404, 404, 404, 404)},
        ),
    ],
    "requester/jobs/<int:pk>/review-mode/": [
        Probe(
            lambda w: f"/requester/jobs/{job(w)}/review-mode/",
            PAGE_WRITE,
            {"POST": PAGE_REFUSE_REQUESTER_OWN},
            body=lambda w: {"mode": "review_first"},
        )
    ],
    "requester/jobs/<int:pk>/submissions/": [
        Probe(lambda w: f"/requester/jobs/{job(w)}/submissions/", PAGE_REQUESTER_OWN),
    ],
    "requester/jobs/<int:pk>/submissions/review/": [
        Probe(
            lambda w: f"/requester/jobs/{job(w)}/submissions/review/",
            PAGE_WRITE,
            {"POST": PAGE_REFUSE_REQUESTER_OWN},
            body=lambda w: {"approve": w.submitted.pk},
        )
    ],
    "requester/microtasks/<int:pk>/frames/<int:index>.jpg": [
        # A frame of the job's microtask: its requester and staff; everyone else the same 404
        # as for a frame that does not exist.
        Probe(
            lambda w: f"/requester/microtasks/{w.microtask.pk}/frames/0.jpg",
            (404, 404, 404, 200, 404, 200),
            {"POST": same(405)},
        ),
    ],
    "quality/jobs/<int:job_id>/gold/draw/<int:microtask_id>/": [
        Probe(
            lambda w: f"/quality/jobs/{job(w)}/gold/draw/{w.microtask.pk}/",
            PAGE_REQUESTER_OWN,
        ),
    ],
    "requester/jobs/<int:pk>/funding/": [
        Probe(
            lambda w: f"/requester/jobs/{job(w)}/funding/",
            PAGE_REQUESTER_OWN,
            {"POST": PAGE_REFUSE_REQUESTER_OWN},
        )
    ],
    "requester/jobs/<int:pk>/funding/<int:funding_id>/check/": [
        Probe(
            lambda w: f"/requester/jobs/{job(w)}/funding/{w.funding.pk}/check/",
            PAGE_WRITE,
            {"POST": PAGE_REFUSE_REQUESTER_OWN},
        )
    ],
    "requester/jobs/<int:pk>/funding/<int:funding_id>/cancel/": [
        Probe(
            lambda w: f"/requester/jobs/{job(w)}/funding/{w.funding.pk}/cancel/",
            PAGE_WRITE,
            {"POST": PAGE_REFUSE_REQUESTER_OWN},
        )
    ],
    "requester/jobs/<int:pk>/budget/": [
        Probe(
            lambda w: f"/requester/jobs/{job(w)}/budget/",
            PAGE_WRITE,
            {"POST": PAGE_REFUSE_REQUESTER_OWN},
            body=lambda w: {"budget": 10**9},
        )
    ],
    # --- worker pages ----------------------------------------------------------------------
    "work/": [Probe(lambda w: "/work/", PAGE_WORKER)],
    "work/claim/": [
        Probe(
            lambda w: "/work/claim/",
            PAGE_WRITE,
            {"POST": (LOGIN, ACT, ACT, 404, 404, 404)},
            body=lambda w: {"job": job(w)},
        )
    ],
    "work/assignments/<int:pk>/": [
        Probe(lambda w: f"/work/assignments/{w.claimed.pk}/", PAGE_WORKER_OWN),
    ],
    "work/assignments/<int:pk>/frames/<int:index>.jpg": [
        # The frame of the worker's claim: the worker and staff; everyone else the same 404 as
        # for a frame that does not exist.
        Probe(
            lambda w: f"/work/assignments/{w.claimed.pk}/frames/0.jpg",
            (404, 200, 404, 404, 404, 200),
            {"POST": same(405)},
        ),
    ],
    "work/mine/": [Probe(lambda w: "/work/mine/", PAGE_WORKER)],
    "work/qualify/<str:annotation_type>/": [
        Probe(lambda w: "/work/qualify/bbox/", PAGE_WORKER),
        Probe(lambda w: "/work/qualify/nonsense/", (LOGIN, 404, 404, 404, 404, 404)),
    ],
    "worker/earnings/": [Probe(lambda w: "/worker/earnings/", PAGE_WORKER)],
    "payments/connect/start/": [
        Probe(
            lambda w: "/payments/connect/start/",
            PAGE_WRITE,
            {"POST": (LOGIN, ACT, ACT, 404, 404, 404)},
        )
    ],
    "payments/connect/refresh/": [
        # Stripe sends the worker here by GET when a link expired; a GET only shows a page whose
        # button POSTs (with CSRF) to mint a new link.
        Probe(
            lambda w: "/payments/connect/refresh/",
            (LOGIN, 200, 200, 404, 404, 404),
            {"POST": (LOGIN, ACT, ACT, 404, 404, 404)},
        ),
        Probe(
            lambda w: "/payments/connect/refresh/?state=forged",
            same(400),
            {"POST": same(400)},
        ),
    ],
    "payments/connect/return/": [
        Probe(
            lambda w: "/payments/connect/return/",
            (LOGIN, 200, 200, 404, 404, 404),
            {"POST": (LOGIN, ACT, ACT, 404, 404, 404)},
        ),
        # An API client's link carries a state we signed; a made-up one is refused to everyone.
        Probe(
            lambda w: "/payments/connect/return/?state=forged",
            same(400),
            {"POST": same(400)},
        ),
    ],
    # --- quality pages ---------------------------------------------------------------------
    "quality/me/": [Probe(lambda w: "/quality/me/", PAGE_WORKER)],
    "quality/me/appeal/<int:assignment_id>/": [
        # Appealing someone else's rejection: the service refuses, the page says so (a redirect
        # with a message) and nothing is stored.
        Probe(
            lambda w: f"/quality/me/appeal/{w.rejected.pk}/",
            PAGE_WRITE,
            {"POST": (LOGIN, ACT, 302, 302, 302, 302)},
            body=lambda w: {"message": "it was mine"},
        )
    ],
    "quality/jobs/<int:job_id>/": [
        Probe(lambda w: f"/quality/jobs/{job(w)}/", PAGE_REQUESTER_OWN),
    ],
    "quality/jobs/<int:job_id>/gold/": [
        Probe(
            lambda w: f"/quality/jobs/{job(w)}/gold/",
            PAGE_WRITE,
            {"POST": (LOGIN, 302, 302, ACT, 302, ACT)},
            body=lambda w: {"microtask": w.microtask.pk, "payload": '{"boxes": []}'},
        )
    ],
    "quality/jobs/<int:job_id>/gold/import/": [
        Probe(
            lambda w: f"/quality/jobs/{job(w)}/gold/import/",
            PAGE_WRITE,
            {"POST": (LOGIN, 302, 302, ACT, 302, ACT)},
            body=lambda w: {"format": "coco"},
        )
    ],
    "quality/review/": [Probe(lambda w: "/quality/review/", PAGE_REQUESTER)],
    "quality/review/<int:pk>/": [
        Probe(lambda w: f"/quality/review/{w.review.pk}/", PAGE_REQUESTER_OWN),
    ],
    "quality/review/<int:pk>/resolve/": [
        Probe(
            lambda w: f"/quality/review/{w.review.pk}/resolve/",
            PAGE_WRITE,
            {"POST": PAGE_REFUSE_REQUESTER_OWN},
            body=lambda w: {"payload": '{"boxes": []}'},
        )
    ],
    # --- staff and Stripe ------------------------------------------------------------------
    "staff/": [Probe(lambda w: "/staff/", PAGE_STAFF)],
    "staff/appeals/<int:pk>/decide/": [
        Probe(
            lambda w: f"/staff/appeals/{w.appeal.pk}/decide/",
            PAGE_STAFF_WRITE,
            {"POST": PAGE_REFUSE_STAFF_ONLY},
            body=lambda w: {"decision": "uphold"},
        )
    ],
    "staff/disputes/<int:pk>/decide/": [
        Probe(
            lambda w: "/staff/disputes/999999/decide/",
            PAGE_STAFF_WRITE,
            {"POST": PAGE_REFUSE_STAFF_ONLY},
            body=lambda w: {"decision": "uphold"},
        )
    ],
    "staff/flags/<int:pk>/resolve/": [
        Probe(
            lambda w: f"/staff/flags/{w.flag.pk}/resolve/",
            PAGE_STAFF_WRITE,
            {"POST": PAGE_REFUSE_STAFF_ONLY},
            body=lambda w: {"decision": "dismiss"},
        )
    ],
    "staff/money/": [Probe(lambda w: "/staff/money/", PAGE_STAFF)],
    "staff/money/payout-run/": [
        Probe(
            lambda w: "/staff/money/payout-run/",
            PAGE_STAFF_WRITE,
            {"POST": PAGE_REFUSE_STAFF_ONLY},
            body=lambda w: {"confirm": "yes"},
        )
    ],
    "staff/money/holds/": [
        Probe(
            lambda w: "/staff/money/holds/",
            PAGE_STAFF_WRITE,
            {"POST": PAGE_REFUSE_STAFF_ONLY},
            body=lambda w: {"worker": w.worker.username, "reason": "held by an intruder"},
        )
    ],
    "staff/money/holds/<int:worker_id>/release/": [
        Probe(
            lambda w: f"/staff/money/holds/{w.worker.pk}/release/",
            PAGE_STAFF_WRITE,
            {"POST": PAGE_REFUSE_STAFF_ONLY},
        )
    ],
    "admin/": [
        Probe(lambda w: "/admin/", (ADMIN_LOGIN,) * 5 + (200,)),
        Probe(lambda w: "/admin/marketplace/job/", (ADMIN_LOGIN,) * 5 + (200,)),
        Probe(lambda w: f"/admin/marketplace/job/{job(w)}/change/", (ADMIN_LOGIN,) * 5 + (200,)),
        Probe(lambda w: "/admin/tasks/assignment/", (ADMIN_LOGIN,) * 5 + (200,)),
    ],
    # Anyone may post to the webhooks; an unsigned body is refused and stores nothing.
    "stripe/webhook/": [Probe(lambda w: "/stripe/webhook/", NOT_GET, {"POST": same(400)})],
    "stripe/webhook/connect/": [
        Probe(lambda w: "/stripe/webhook/connect/", NOT_GET, {"POST": same(400)})
    ],
    # A requester's uploads and frames: the requester and staff; qualification images: anyone.
    "^media/(?P<path>.*)$": [
        Probe(lambda w: f"/media/{w.frame_media}", (404, 404, 404, 200, 404, 200)),
        Probe(lambda w: f"/media/{w.upload_media}", (404, 404, 404, 200, 404, 200)),
        Probe(lambda w: f"/media/{w.public_media}", PUBLIC, {"POST": same(405)}),
    ],
    # --- API: accounts, schema -------------------------------------------------------------
    "api/": [Probe(lambda w: "/api/", API_ANYONE)],
    "api/<drf_format_suffix:format>": [Probe(lambda w: "/api/.json", API_ANYONE)],
    "api/schema/": [Probe(lambda w: "/api/schema/", PUBLIC)],
    "api/docs/": [Probe(lambda w: "/api/docs/", PUBLIC)],
    "api/auth/signup/": [Probe(lambda w: "/api/auth/signup/", NOT_GET, {"POST": same(400)})],
    "api/auth/token/": [Probe(lambda w: "/api/auth/token/", NOT_GET, {"POST": same(400)})],
    "api/me/": [Probe(lambda w: "/api/me/", API_ANYONE)],
    # --- API: jobs -------------------------------------------------------------------------
    "api/^jobs/$": [
        Probe(
            lambda w: "/api/jobs/",
            API_REQUESTER,
            # An empty job is refused by validation, so even the roles that may create get 400.
            {"POST": (401, 403, 403, 400, 400, 400)},
        )
    ],
    "api/^jobs\\.(?P<format>[a-z0-9]+)/?$": [
        Probe(lambda w: "/api/jobs.json", API_REQUESTER, {"POST": (401, 403, 403, 400, 400, 400)})
    ],
    "api/^jobs/(?P<pk>[^/.]+)/$": [
        Probe(
            lambda w: f"/api/jobs/{job(w)}/",
            API_REQUESTER_OWN,
            {"PUT": REFUSE_REQUESTER_OWN, "PATCH": REFUSE_REQUESTER_OWN},
            body=lambda w: {"title": "taken over", "priority": 100},
        )
    ],
    "api/^jobs/(?P<pk>[^/.]+)\\.(?P<format>[a-z0-9]+)/?$": [
        Probe(
            lambda w: f"/api/jobs/{job(w)}.json",
            API_REQUESTER_OWN,
            {"PUT": REFUSE_REQUESTER_OWN, "PATCH": REFUSE_REQUESTER_OWN},
            body=lambda w: {"title": "taken over", "priority": 100},
        ),
    ],
    "api/^jobs/(?P<pk>[^/.]+)/cancel/$": [
        Probe(
            lambda w: f"/api/jobs/{job(w)}/cancel/",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
        )
    ],
    "api/^jobs/(?P<pk>[^/.]+)/cancel\\.(?P<format>[a-z0-9]+)/?$": [
        Probe(
            lambda w: f"/api/jobs/{job(w)}/cancel.json",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
        )
    ],
    "api/^jobs/(?P<pk>[^/.]+)/publish/$": [
        Probe(
            lambda w: f"/api/jobs/{job(w)}/publish/",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
        )
    ],
    "api/^jobs/(?P<pk>[^/.]+)/publish\\.(?P<format>[a-z0-9]+)/?$": [
        Probe(
            lambda w: f"/api/jobs/{job(w)}/publish.json",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
        )
    ],
    "api/^jobs/(?P<pk>[^/.]+)/pause/$": [
        Probe(
            lambda w: f"/api/jobs/{job(w)}/pause/",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
        )
    ],
    "api/^jobs/(?P<pk>[^/.]+)/pause\\.(?P<format>[a-z0-9]+)/?$": [
        Probe(
            lambda w: f"/api/jobs/{job(w)}/pause.json",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
        )
    ],
    "api/^jobs/(?P<pk>[^/.]+)/resume/$": [
        Probe(
            lambda w: f"/api/jobs/{job(w)}/resume/",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
        )
    ],
    "api/^jobs/(?P<pk>[^/.]+)/resume\\.(?P<format>[a-z0-9]+)/?$": [
        Probe(
            lambda w: f"/api/jobs/{job(w)}/resume.json",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
        )
    ],
    "api/^jobs/(?P<pk>[^/.]+)/complete/$": [
        Probe(
            lambda w: f"/api/jobs/{job(w)}/complete/",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
        )
    ],
    "api/^jobs/(?P<pk>[^/.]+)/complete\\.(?P<format>[a-z0-9]+)/?$": [
        Probe(
            lambda w: f"/api/jobs/{job(w)}/complete.json",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
        )
    ],
    "api/jobs/<int:pk>/submissions/": [
        Probe(lambda w: f"/api/jobs/{job(w)}/submissions/", API_REQUESTER_OWN),
    ],
    "api/jobs/<int:job_id>/export/<str:fmt>/": [
        Probe(lambda w: f"/api/jobs/{job(w)}/export/coco/", API_REQUESTER_OWN),
    ],
    "api/jobs/<int:job_id>/videos/": [
        Probe(
            lambda w: f"/api/jobs/{job(w)}/videos/",
            API_REQUESTER_OWN,
            {"POST": REFUSE_REQUESTER_OWN},
        )
    ],
    "api/jobs/<int:job_id>/videos/<int:pk>/": [
        Probe(
            lambda w: f"/api/jobs/{job(w)}/videos/{w.video.pk}/",
            API_REQUESTER_OWN,
            {"DELETE": REFUSE_REQUESTER_OWN},
        )
    ],
    "api/^jobs/(?P<pk>[^/.]+)/process/$": [
        Probe(
            lambda w: f"/api/jobs/{job(w)}/process/",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
        )
    ],
    "api/^jobs/(?P<pk>[^/.]+)/process\\.(?P<format>[a-z0-9]+)/?$": [
        Probe(
            lambda w: f"/api/jobs/{job(w)}/process.json",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
        )
    ],
    "api/jobs/<int:job_id>/ingestion/": [
        Probe(lambda w: f"/api/jobs/{job(w)}/ingestion/", API_REQUESTER_OWN),
    ],
    "api/jobs/<int:job_id>/microtasks/": [
        Probe(lambda w: f"/api/jobs/{job(w)}/microtasks/", API_REQUESTER_OWN),
    ],
    "api/jobs/<int:job_id>/microtasks/<int:pk>/": [
        Probe(lambda w: f"/api/jobs/{job(w)}/microtasks/{w.microtask.pk}/", API_REQUESTER_OWN),
    ],
    "api/jobs/<int:job_id>/proposals/": [
        Probe(
            lambda w: f"/api/jobs/{job(w)}/proposals/",
            API_REQUESTER_OWN,
            {"PUT": REFUSE_REQUESTER_OWN},
            body=lambda w: {"sources": ["motion"]},
        ),
    ],
    # --- API: review -----------------------------------------------------------------------
    "api/submissions/review/": [
        Probe(
            lambda w: "/api/submissions/review/",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
            body=lambda w: {"action": "approve", "assignments": [w.submitted.pk]},
        )
    ],
    "api/submissions/<int:pk>/approve/": [
        Probe(
            lambda w: f"/api/submissions/{w.submitted.pk}/approve/",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
        )
    ],
    "api/submissions/<int:pk>/reject/": [
        Probe(
            lambda w: f"/api/submissions/{w.submitted.pk}/reject/",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
            body=lambda w: {"reason": "not good enough"},
        )
    ],
    # --- API: work -------------------------------------------------------------------------
    "api/work/jobs/": [Probe(lambda w: "/api/work/jobs/", API_WORKER)],
    "api/work/claim/": [
        Probe(
            lambda w: "/api/work/claim/",
            API_WORKER_WRITE,
            {"POST": REFUSE_WORKER_ONLY},
            body=lambda w: {"job": job(w)},
        )
    ],
    "api/work/assignments/": [Probe(lambda w: "/api/work/assignments/", API_WORKER)],
    "api/work/assignments/<int:pk>/": [
        Probe(lambda w: f"/api/work/assignments/{w.claimed.pk}/", API_WORKER_OWN),
    ],
    "api/work/assignments/<int:pk>/heartbeat/": [
        Probe(
            lambda w: f"/api/work/assignments/{w.claimed.pk}/heartbeat/",
            API_WORKER_WRITE,
            {"POST": REFUSE_WORKER_OWN},
            body=lambda w: {"active_seconds": 1},
        )
    ],
    "api/work/assignments/<int:pk>/release/": [
        Probe(
            lambda w: f"/api/work/assignments/{w.claimed.pk}/release/",
            API_WORKER_WRITE,
            {"POST": REFUSE_WORKER_OWN},
        )
    ],
    "api/work/assignments/<int:pk>/submit/": [
        Probe(
            lambda w: f"/api/work/assignments/{w.claimed.pk}/submit/",
            API_WORKER_WRITE,
            {"POST": REFUSE_WORKER_OWN},
            body=lambda w: {"payload": {"boxes": []}, "active_seconds": 1},
        )
    ],
    "api/work/assignments/<int:pk>/propagate/": [
        Probe(
            lambda w: f"/api/work/assignments/{w.claimed.pk}/propagate/",
            API_WORKER_WRITE,
            {"POST": REFUSE_WORKER_OWN},
            body=lambda w: {
                "track": {
                    "id": 1,
                    "label": "car",
                    "keyframes": [{"frame": 0, "box": [1, 1, 9, 9]}],
                },
                "from_frame": 0,
            },
        )
    ],
    "api/work/qualifications/": [Probe(lambda w: "/api/work/qualifications/", API_WORKER)],
    "api/work/qualifications/<str:annotation_type>/": [
        Probe(
            lambda w: "/api/work/qualifications/bbox/",
            API_WORKER,
            {"POST": REFUSE_WORKER_ONLY},
            body=lambda w: {"answers": {}},
        ),
        Probe(lambda w: "/api/work/qualifications/nonsense/", (401, 404, 404, 403, 403, 403)),
    ],
    # --- API: quality ----------------------------------------------------------------------
    "api/quality/me/trust/": [Probe(lambda w: "/api/quality/me/trust/", API_WORKER)],
    "api/quality/me/checks/": [Probe(lambda w: "/api/quality/me/checks/", API_WORKER)],
    "api/quality/appeals/": [
        Probe(
            lambda w: "/api/quality/appeals/",
            API_WORKER_WRITE,
            # Another worker appealing this worker's rejection: the same 404 as for none.
            {"POST": REFUSE_WORKER_OWN},
            body=lambda w: {"assignment": w.rejected.pk, "message": "it was mine"},
        )
    ],
    # Disputes (a requester rejecting exported work): requesters list theirs, admins decide.
    "api/disputes/": [Probe(lambda w: "/api/disputes/", API_REQUESTER)],
    "api/disputes/<int:pk>/decide/": [
        Probe(
            lambda w: "/api/disputes/999999/decide/",
            API_ADMIN_WRITE,
            {"POST": REFUSE_ADMIN_ONLY},
            body=lambda w: {"uphold": True},
        )
    ],
    "api/quality/gold/disputed/": [Probe(lambda w: "/api/quality/gold/disputed/", API_ADMIN)],
    "api/quality/microtasks/<int:pk>/gold/validate/": [
        Probe(
            lambda w: f"/api/quality/microtasks/{w.microtask.pk}/gold/validate/",
            API_ADMIN_WRITE,
            {"POST": REFUSE_ADMIN_ONLY},
            body=lambda w: {"valid": False},
        )
    ],
    "api/quality/appeals/<int:pk>/decide/": [
        Probe(
            lambda w: f"/api/quality/appeals/{w.appeal.pk}/decide/",
            API_ADMIN_WRITE,
            {"POST": REFUSE_ADMIN_ONLY},
            body=lambda w: {"uphold": True},
        )
    ],
    "api/quality/jobs/<int:job_id>/report/": [
        Probe(lambda w: f"/api/quality/jobs/{job(w)}/report/", API_REQUESTER_OWN),
    ],
    "api/quality/jobs/<int:job_id>/gold-import/": [
        Probe(
            lambda w: f"/api/quality/jobs/{job(w)}/gold-import/",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
            body=lambda w: {"format": "coco", "content": '{"images": [], "annotations": []}'},
        )
    ],
    "api/quality/jobs/<int:job_id>/policy/": [
        Probe(
            lambda w: f"/api/quality/jobs/{job(w)}/policy/",
            API_REQUESTER_WRITE,
            {"PATCH": REFUSE_REQUESTER_OWN},
            body=lambda w: {"auto_approve": True, "reject_below_ratio": 1.0},
        )
    ],
    "api/quality/microtasks/<int:pk>/gold/": [
        Probe(
            lambda w: f"/api/quality/microtasks/{w.microtask.pk}/gold/",
            API_REQUESTER_WRITE,
            {"PUT": REFUSE_REQUESTER_OWN},
            body=lambda w: {"payload": {"boxes": []}},
        )
    ],
    "api/quality/review/": [Probe(lambda w: "/api/quality/review/", API_REQUESTER)],
    "api/quality/review/<int:pk>/": [
        Probe(lambda w: f"/api/quality/review/{w.review.pk}/", API_REQUESTER_OWN),
    ],
    "api/quality/review/<int:pk>/resolve/": [
        Probe(
            lambda w: f"/api/quality/review/{w.review.pk}/resolve/",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
            body=lambda w: {"payload": {"boxes": []}},
        )
    ],
    "api/quality/workers/<int:pk>/report/": [
        Probe(lambda w: f"/api/quality/workers/{w.worker.pk}/report/", API_ADMIN),
    ],
    "api/quality/flags/": [Probe(lambda w: "/api/quality/flags/", API_ADMIN)],
    "api/quality/flags/<int:pk>/resolve/": [
        Probe(
            lambda w: f"/api/quality/flags/{w.flag.pk}/resolve/",
            API_ADMIN_WRITE,
            {"POST": REFUSE_ADMIN_ONLY},
            body=lambda w: {"confirmed": False},
        )
    ],
    # --- API: payments ---------------------------------------------------------------------
    "api/payments/jobs/<int:pk>/quote/": [
        Probe(
            lambda w: f"/api/payments/jobs/{job(w)}/quote/",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
        )
    ],
    "api/payments/jobs/<int:pk>/escrow/": [
        Probe(lambda w: f"/api/payments/jobs/{job(w)}/escrow/", API_REQUESTER_OWN),
    ],
    "api/payments/jobs/<int:pk>/fund/": [
        Probe(
            lambda w: f"/api/payments/jobs/{job(w)}/fund/",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
            body=lambda w: {"amount": 5000},
        )
    ],
    "api/payments/jobs/<int:pk>/fundings/<int:funding_id>/check/": [
        Probe(
            lambda w: f"/api/payments/jobs/{job(w)}/fundings/{w.funding.pk}/check/",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
        )
    ],
    "api/payments/jobs/<int:pk>/refund/": [
        Probe(
            lambda w: f"/api/payments/jobs/{job(w)}/refund/",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
        )
    ],
    "api/payments/jobs/<int:pk>/bonuses/": [
        Probe(
            lambda w: f"/api/payments/jobs/{job(w)}/bonuses/",
            API_REQUESTER_WRITE,
            {"POST": REFUSE_REQUESTER_OWN},
            body=lambda w: {"worker": w.worker.pk, "amount": 100, "reason": "x", "key": "k-1"},
        )
    ],
    "api/payments/earnings/": [Probe(lambda w: "/api/payments/earnings/", API_WORKER)],
    # Everyone has payouts to list: their own (none, for most).
    "api/payments/payouts/": [Probe(lambda w: "/api/payments/payouts/", API_ANYONE)],
    "api/payments/connect/": [
        Probe(lambda w: "/api/payments/connect/", API_WORKER, {"POST": REFUSE_WORKER_ONLY}),
    ],
    "api/payments/admin/payout-runs/": [
        Probe(
            lambda w: "/api/payments/admin/payout-runs/",
            API_ADMIN_WRITE,
            {"POST": REFUSE_ADMIN_ONLY},
        )
    ],
    "api/payments/admin/earnings/release/": [
        Probe(
            lambda w: "/api/payments/admin/earnings/release/",
            API_ADMIN_WRITE,
            {"POST": REFUSE_ADMIN_ONLY},
            body=lambda w: {"worker": w.worker.pk},
        )
    ],
    "api/payments/admin/workers/<int:pk>/hold/": [
        Probe(
            lambda w: f"/api/payments/admin/workers/{w.worker.pk}/hold/",
            API_ADMIN_WRITE,
            {"POST": REFUSE_ADMIN_ONLY, "DELETE": REFUSE_ADMIN_ONLY},
            body=lambda w: {"reason": "held by an intruder"},
        )
    ],
    "api/payments/admin/payouts/<int:pk>/reverse/": [
        Probe(
            lambda w: f"/api/payments/admin/payouts/{w.payout.pk}/reverse/",
            API_ADMIN_WRITE,
            {"POST": REFUSE_ADMIN_ONLY},
            body=lambda w: {"reason": "taken back"},
        )
    ],
    "api/payments/admin/reconcile/": [
        Probe(
            lambda w: "/api/payments/admin/reconcile/",
            API_ADMIN_WRITE,
            {"POST": REFUSE_ADMIN_ONLY},
        )
    ],
}

ADMIN_GROUP = "admin/"


# --- the URLconf ---------------------------------------------------------------------------


def _walk(patterns, prefix: str = ""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p


def urlconf_routes() -> dict[str, URLPattern | None]:
    """Every route of the URLconf by its pattern; Django admin's routes as one."""
    routes: dict[str, URLPattern | None] = {}
    for route, pattern in _walk(get_resolver().url_patterns):
        if route.startswith(ADMIN_GROUP):
            routes[ADMIN_GROUP] = None
        else:
            routes[route] = pattern
    return routes


def implemented_unsafe_methods(pattern: URLPattern) -> set[str]:
    """The unsafe methods a class-based view answers (function views say so in the table)."""
    callback = pattern.callback
    actions = getattr(callback, "actions", None)  # a DRF viewset's route: method -> action
    if actions is not None:
        return {m.upper() for m in actions} & set(UNSAFE)
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is None:
        return set()
    return {m for m in UNSAFE if hasattr(view_class, m.lower())}


def test_every_route_is_in_the_table():
    routes = urlconf_routes()
    missing = sorted(set(routes) - set(ROUTES))
    gone = sorted(set(ROUTES) - set(routes))
    assert missing == [], f"routes without expectations (add them to ROUTES): {missing}"
    assert gone == [], f"ROUTES names routes that no longer exist: {gone}"


def test_every_unsafe_method_of_a_route_is_in_the_table():
    untested = []
    for route, pattern in urlconf_routes().items():
        if pattern is None:
            continue
        tabled = {m for probe in ROUTES.get(route, []) for m in probe.unsafe}
        for method in sorted(implemented_unsafe_methods(pattern) - tabled):
            untested.append(f"{method} {route}")
    assert untested == [], f"unsafe methods without expectations: {untested}"


# --- asking ------------------------------------------------------------------------------


def _clients(world: World) -> dict[str, Client]:
    clients = {"anonymous": Client()}
    for role in ROLES[1:]:
        client = Client(HTTP_AUTHORIZATION=f"Token {world.token(role)}")
        client.force_login(world.users[role])
        clients[role] = client
    return clients


def _send(client: Client, method: str, url: str, body: dict):
    if method in ("GET", "HEAD"):
        return client.generic(method, url)
    if url.startswith("/api/"):
        return client.generic(method, url, json.dumps(body), content_type="application/json")
    return client.generic(
        method, url, urlencode(body), content_type="application/x-www-form-urlencoded"
    )


def _matches(expect: Expect, response) -> bool:
    if expect == LOGIN:
        return response.status_code == 302 and response["Location"].startswith(
            resolve_url(settings.LOGIN_URL)
        )
    if expect == ADMIN_LOGIN:
        return response.status_code == 302 and response["Location"].startswith("/admin/login/")
    if isinstance(expect, tuple):
        return response.status_code in expect
    return response.status_code == expect


def _body_text(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8", errors="replace")
    return response.content.decode("utf-8", errors="replace")


def _location(response) -> str:
    return f" -> {response['Location']}" if response.has_header("Location") else ""


@pytest.mark.django_db
def test_every_route_answers_every_role_as_the_table_says(world: World, stripe_server):
    clients = _clients(world)
    before = db_fingerprint()
    problems: list[str] = []
    asked = 0
    for route, probes in ROUTES.items():
        for probe in probes:
            url = probe.url(world)
            # HEAD is GET without the body: it must be answered the same.
            for method, row in [("GET", probe.get), ("HEAD", probe.get), *probe.unsafe.items()]:
                for role, expect in zip(ROLES, row, strict=True):
                    if expect == ACT:
                        continue
                    response = _send(clients[role], method, url, probe.body(world))
                    asked += 1
                    where = f"{method} {url} ({route}) as {role}"
                    if not _matches(expect, response):
                        problems.append(
                            f"{where}: {response.status_code}{_location(response)}, "
                            f"expected {expect}"
                        )
                    body = _body_text(response)
                    leaked = [s for s in world.secrets.get(role, []) if s in body]
                    if leaked:
                        problems.append(f"{where}: leaked {leaked}")
                    after = db_fingerprint()
                    if after != before:
                        logged = set(changed_tables(before, after)) <= GET_MAY_LOG.get(route, set())
                        if not (logged and method in ("GET", "HEAD")):
                            problems.append(f"{where}: changed {changed_tables(before, after)}")
                        before = after
    assert asked > 500  # the table was walked, not skipped
    assert problems == [], "\n".join(["", *problems])
