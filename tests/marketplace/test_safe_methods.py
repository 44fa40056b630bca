"""A GET changes nothing: every route of the URL configuration (the Django admin aside), fetched
with GET by an anonymous visitor, a worker, a requester and an admin over a world where each has
something to see, writes no row, schedules no task and calls no Stripe endpoint.

A link is enough to make a signed-in user's browser send a GET (an image tag on another site);
so only POST (with its CSRF token) may act. The route table below gives each route's path
arguments; a new route with arguments must be added to it, or this test fails.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from quality.models import FraudFlag, ReviewItem
from tasks import claiming
from tasks.models import MicroTask
from tests.factories import AdminFactory
from tests.payments import conftest as payments_fixtures
from tests.tasks.claim_fixtures import published_job, qualified_worker, store_frames

pytestmark = pytest.mark.django_db

stripe_server = payments_fixtures.stripe_server  # the local Stripe server, as in tests/payments

WRITES = ("insert", "update", "delete", "merge", "truncate", "copy")

# The one write a GET may make: a dataset download records what it carried (an access log, so a
# later rejection of that work goes to an admin). It changes nothing the requester or a worker
# can see or be paid; a forged cross-site GET carries no session cookie (SameSite=Lax).
GET_MAY_LOG = {
    ("api-job-export", "tasks_jobexport"),
    ("api-job-export", "tasks_exportedwork"),
}


def _route_names() -> set[str]:
    def walk(patterns):
        for p in patterns:
            if isinstance(p, URLResolver):
                if p.namespace != "admin":
                    yield from walk(p.url_patterns)
            elif isinstance(p, URLPattern) and p.name:
                yield p.name

    return set(walk(get_resolver().url_patterns))


@pytest.fixture
def world(monkeypatch):
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)  # no gold microtask claimed
    job = published_job(n=3, gold=1, overlap=1)
    stored = store_frames(job)
    worker = qualified_worker()
    done = claiming.assignment_claim(worker=worker, job_id=job.pk)
    frame = done.microtask.frame_start
    claiming.assignment_submit(
        worker=worker,
        assignment_id=done.pk,
        payload={"boxes": [{"frame": frame, "label": "car", "box": [1, 1, 40, 30]}]},
        active_seconds=30,
    )
    live = claiming.assignment_claim(worker=worker, job_id=job.pk)
    microtask = MicroTask.objects.filter(job=job, is_gold=False).first()
    gold = MicroTask.objects.filter(job=job, is_gold=True).first()
    review = ReviewItem.objects.create(microtask=microtask, job=job, reason="low agreement")
    flag = FraudFlag.objects.create(assignment=done, worker=worker, job=job, kind="too_fast")
    video = microtask.video
    return {
        "job": job,
        "requester": job.requester,
        "worker": worker,
        "admin": AdminFactory(),
        "done": done,
        "live": live,
        "microtask": microtask,
        "gold": gold,
        "review": review,
        "flag": flag,
        "video": video,
        "media": sorted(stored)[0],
    }


# Path arguments of each route that takes some, from the world above.
ROUTE_KWARGS = {
    "signup": lambda w: {"role": "worker"},
    "requester-job-detail": lambda w: {"pk": w["job"].pk},
    "job-detail": lambda w: {"pk": w["job"].pk},
    "job-cancel": lambda w: {"pk": w["job"].pk},
    "api-job-export": lambda w: {"job_id": w["job"].pk, "fmt": "coco"},
    "api-job-videos": lambda w: {"job_id": w["job"].pk},
    "api-job-video": lambda w: {"job_id": w["job"].pk, "pk": w["video"].pk},
    "job-process": lambda w: {"pk": w["job"].pk},
    "api-job-ingestion": lambda w: {"job_id": w["job"].pk},
    "api-job-microtasks": lambda w: {"job_id": w["job"].pk},
    "api-job-microtask": lambda w: {"job_id": w["job"].pk, "pk": w["microtask"].pk},
    "api-job-proposals": lambda w: {"job_id": w["job"].pk},
    "api-work-assignment": lambda w: {"pk": w["live"].pk},
    "api-work-heartbeat": lambda w: {"pk": w["live"].pk},
    "api-work-release": lambda w: {"pk": w["live"].pk},
    "api-work-submit": lambda w: {"pk": w["live"].pk},
    "api-work-propagate": lambda w: {"pk": w["live"].pk},
    "api-work-qualification": lambda w: {"annotation_type": "bbox"},
    "job-publish": lambda w: {"pk": w["job"].pk},
    "job-pause": lambda w: {"pk": w["job"].pk},
    "job-resume": lambda w: {"pk": w["job"].pk},
    "job-complete": lambda w: {"pk": w["job"].pk},
    "api-job-submissions": lambda w: {"pk": w["job"].pk},
    "api-submission-approve": lambda w: {"pk": w["done"].pk},
    "api-submission-reject": lambda w: {"pk": w["done"].pk},
    "api-quality-appeal-decide": lambda w: {"pk": 1},
    "api-dispute-decide": lambda w: {"pk": 1},
    "api-quality-gold-validate": lambda w: {"pk": w["gold"].pk},
    "api-quality-job-report": lambda w: {"job_id": w["job"].pk},
    "api-quality-gold-import": lambda w: {"job_id": w["job"].pk},
    "api-quality-job-policy": lambda w: {"job_id": w["job"].pk},
    "api-quality-gold-answer": lambda w: {"pk": w["gold"].pk},
    "api-quality-review": lambda w: {"pk": w["review"].pk},
    "api-quality-review-resolve": lambda w: {"pk": w["review"].pk},
    "api-quality-worker-report": lambda w: {"pk": w["worker"].pk},
    "api-quality-flag-resolve": lambda w: {"pk": w["flag"].pk},
    "payments-quote": lambda w: {"pk": w["job"].pk},
    "payments-escrow": lambda w: {"pk": w["job"].pk},
    "payments-fund": lambda w: {"pk": w["job"].pk},
    "payments-funding-check-api": lambda w: {"pk": w["job"].pk, "funding_id": 1},
    "payments-refund": lambda w: {"pk": w["job"].pk},
    "payments-bonus": lambda w: {"pk": w["job"].pk},
    "payments-admin-hold": lambda w: {"pk": w["worker"].pk},
    "payments-admin-reverse": lambda w: {"pk": 1},
    "requester-job-videos-upload": lambda w: {"pk": w["job"].pk},
    "requester-job-video-delete": lambda w: {"pk": w["job"].pk, "video_id": w["video"].pk},
    "requester-job-process": lambda w: {"pk": w["job"].pk},
    "requester-job-action": lambda w: {"pk": w["job"].pk, "action": "pause"},
    "requester-job-review-mode": lambda w: {"pk": w["job"].pk},
    "requester-job-submissions": lambda w: {"pk": w["job"].pk},
    "requester-job-submissions-review": lambda w: {"pk": w["job"].pk},
    "requester-frame": lambda w: {"pk": w["microtask"].pk, "index": 0},
    "quality-gold-draw": lambda w: {"job_id": w["job"].pk, "microtask_id": w["microtask"].pk},
    "work-annotate": lambda w: {"pk": w["live"].pk},
    "work-frame": lambda w: {"pk": w["live"].pk, "index": 0},
    "work-qualify": lambda w: {"annotation_type": "bbox"},
    "quality-appeal": lambda w: {"assignment_id": w["done"].pk},
    "quality-job-report": lambda w: {"job_id": w["job"].pk},
    "quality-gold-create": lambda w: {"job_id": w["job"].pk},
    "quality-gold-import": lambda w: {"job_id": w["job"].pk},
    "quality-review-detail": lambda w: {"pk": w["review"].pk},
    "quality-review-resolve": lambda w: {"pk": w["review"].pk},
    "payments-job-funding": lambda w: {"pk": w["job"].pk},
    "staff-appeal-decide": lambda w: {"pk": 1},
    "staff-dispute-decide": lambda w: {"pk": 1},
    "staff-flag-resolve": lambda w: {"pk": w["flag"].pk},
    "staff-payouts-release": lambda w: {"worker_id": w["worker"].pk},
    "payments-funding-check": lambda w: {"pk": w["job"].pk, "funding_id": 1},
    "payments-funding-cancel": lambda w: {"pk": w["job"].pk, "funding_id": 1},
    "requester-job-budget": lambda w: {"pk": w["job"].pk},
    "media": lambda w: {"path": w["media"]},
}

# Routes that answer no GET (405 to a user who may use them; 302 to login, 401, 403 to others).
POST_ONLY = {
    "logout",
    "api-signup",
    "api-token",
    "job-cancel",
    "job-process",
    "api-work-claim",
    "api-work-heartbeat",
    "api-work-release",
    "api-work-submit",
    "api-work-propagate",
    "job-publish",
    "job-pause",
    "job-resume",
    "job-complete",
    "api-submissions-review",
    "api-submission-approve",
    "api-submission-reject",
    "api-quality-appeals",
    "api-quality-appeal-decide",
    "api-dispute-decide",
    "api-quality-gold-validate",
    "api-quality-gold-import",
    "api-quality-gold-answer",
    "api-quality-job-policy",
    "api-quality-review-resolve",
    "api-quality-flag-resolve",
    "payments-quote",
    "payments-fund",
    "payments-funding-check-api",
    "payments-refund",
    "payments-bonus",
    "payments-admin-payout-run",
    "payments-admin-earnings-release",
    "payments-admin-hold",
    "payments-admin-reverse",
    "payments-admin-reconcile",
    "requester-job-videos-upload",
    "requester-job-video-delete",
    "requester-job-process",
    "requester-job-review-mode",
    "requester-job-submissions-review",
    "payments-funding-check",
    "payments-funding-cancel",
    "requester-job-budget",
    "work-claim",
    "quality-appeal",
    "quality-gold-create",
    "quality-gold-import",
    "quality-review-resolve",
    "stripe-webhook",
    "stripe-connect-webhook",
    "payments-connect-start",
    "staff-appeal-decide",
    "staff-dispute-decide",
    "staff-flag-resolve",
    "staff-payout-run",
    "staff-payouts-hold",
    "staff-payouts-release",
}


def test_no_get_writes_anything_or_calls_stripe(
    world, stripe_server, django_capture_on_commit_callbacks
):
    names = _route_names()
    clients = {"anonymous": Client()}
    for role in ("worker", "requester", "admin"):
        clients[role] = Client()
        clients[role].force_login(world[role])

    writes: list[tuple[str, str, str]] = []
    current = {"who": "", "path": "", "name": ""}

    def spy(execute, sql, params, many, context):
        words = sql.lstrip().split(None, 3)
        if words[0].lower() in WRITES:
            table = words[2].strip('"') if len(words) > 2 else ""
            if (current["name"], table) not in GET_MAY_LOG:
                writes.append((current["who"], current["path"], sql[:120]))
        return execute(sql, params, many, context)

    statuses: dict[str, dict[str, int]] = {}
    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        connection.execute_wrapper(spy),
    ):
        for name in sorted(names):
            if name in ROUTE_KWARGS:
                path = reverse(name, kwargs=ROUTE_KWARGS[name](world))
            else:
                path = reverse(name)  # fails for a new route with arguments: add it above
            for who, client in clients.items():
                current.update(who=who, path=path, name=name)
                statuses.setdefault(name, {})[who] = client.get(path).status_code

    assert writes == []
    assert callbacks == []
    assert stripe_server.request_log == []
    wrong = []
    for name, by_role in sorted(statuses.items()):
        signed_in = {by_role[r] for r in ("worker", "requester", "admin")}
        if name in POST_ONLY:
            # 405 to whoever may use it; the others are refused before the method is looked at.
            ok = 405 in signed_in and signed_in <= {403, 404, 405}
        else:
            # Somebody may read it: the route was really exercised, not refused to everyone.
            ok = 200 in by_role.values()
        if not ok or any(code >= 500 for code in by_role.values()):
            wrong.append((name, by_role))
    assert wrong == [], "\n".join(map(str, wrong))
