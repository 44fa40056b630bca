"""``GET /api/work/assignments/``: a worker's own assignments, newest first, a keyset page at a
time, every one reachable exactly once even while the worker claims more."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

from tasks.models import Assignment, AssignmentStatus
from tests.factories import AssignmentFactory, MicroTaskFactory, WorkerFactory

pytestmark = pytest.mark.django_db

URL = "/api/work/assignments/"


def _assignments(worker, n: int, *, at=None, status=AssignmentStatus.SUBMITTED) -> list[int]:
    """``n`` assignments of ``worker``; with ``at`` all claimed at the same instant (ties)."""
    task = MicroTaskFactory()
    now = timezone.now()
    rows = [
        Assignment(
            microtask=MicroTaskFactory(video=task.video, job=task.job) if i else task,
            worker=worker,
            status=status,
            claimed_at=at or now - timedelta(seconds=n - i),
            deadline=now + timedelta(minutes=30),
        )
        for i in range(n)
    ]
    return [a.pk for a in Assignment.objects.bulk_create(rows)]


def _walk(client, url: str, **params) -> tuple[list[int], int]:
    seen, pages = [], 0
    response = client.get(url, params)
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"next", "previous", "results"}
        seen += [row["id"] for row in body["results"]]
        pages += 1
        if body["next"] is None:
            return seen, pages
        response = client.get(body["next"])


def test_a_worker_walks_every_page_and_sees_each_assignment_once_newest_first(client_for):
    worker = WorkerFactory()
    mine = _assignments(worker, 23)
    _assignments(WorkerFactory(), 5)  # another worker's never appear
    seen, pages = _walk(client_for(worker), URL, page_size=5)
    assert pages == 5
    assert seen == mine[::-1]  # newest claim first


def test_ties_in_claim_time_are_broken_by_id_with_no_row_lost_or_repeated(client_for):
    worker = WorkerFactory()
    mine = _assignments(worker, 12, at=timezone.now())
    seen, _ = _walk(client_for(worker), URL, page_size=5)
    assert seen == sorted(mine, reverse=True)


def test_new_claims_while_walking_shift_nothing(client_for):
    worker = WorkerFactory()
    client = client_for(worker)
    old = _assignments(worker, 10)
    first = client.get(URL, {"page_size": 4}).json()
    AssignmentFactory(worker=worker)  # claimed now: the head of the list, not page two's
    seen = [row["id"] for row in first["results"]]
    rest, _ = _walk(client, first["next"])
    assert seen + rest == old[::-1]


def test_previous_links_lead_back_over_the_same_pages(client_for):
    worker = WorkerFactory()
    client = client_for(worker)
    mine = _assignments(worker, 9)
    pages = [client.get(URL, {"page_size": 4}).json()]
    while pages[-1]["next"]:
        pages.append(client.get(pages[-1]["next"]).json())
    assert pages[0]["previous"] is None
    back = client.get(pages[-1]["previous"]).json()
    assert back["results"] == pages[-2]["results"]
    back = client.get(back["previous"]).json()
    assert back["results"] == pages[0]["results"] and back["previous"] is None
    assert [r["id"] for p in pages for r in p["results"]] == mine[::-1]


def test_the_status_filter_holds_across_pages(client_for):
    worker = WorkerFactory()
    approved = _assignments(worker, 7, status=AssignmentStatus.APPROVED)
    _assignments(worker, 6, status=AssignmentStatus.SUBMITTED)
    seen, pages = _walk(client_for(worker), URL, status="approved", page_size=3)
    assert seen == approved[::-1] and pages == 3


def test_the_page_size_is_bounded_and_bad_cursors_are_400_naming_the_parameter(client_for):
    client = client_for(WorkerFactory())
    for size in ("0", "201", "x", "-1"):
        response = client.get(URL, {"page_size": size})
        assert response.status_code == 400, size
        assert "page_size" in response.json()["error"]["fields"]
    assert client.get(URL, {"page_size": 200}).status_code == 200
    junk = base64.urlsafe_b64encode(b'["n","not a time",1]').decode()
    for cursor in ("%%%", "bm9wZQ==", junk, "A" * 300):
        response = client.get(URL, {"cursor": cursor})
        assert response.status_code == 400, cursor
        assert "cursor" in response.json()["error"]["fields"]


def test_the_default_page_is_bounded(client_for):
    worker = WorkerFactory()
    _assignments(worker, 60)
    body = client_for(worker).get(URL).json()
    assert len(body["results"]) == 50 and body["next"]


def test_the_schema_describes_the_page_and_every_status():
    openapi = json.loads(
        OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True))
    )
    op = openapi["paths"][URL]["get"]
    assert {"200", "400", "401", "403"} <= set(op["responses"])
    page = op["responses"]["200"]["content"]["application/json"]["schema"]
    ref = page["$ref"].rsplit("/", 1)[-1]
    component = openapi["components"]["schemas"][ref]
    assert set(component["properties"]) == {"next", "previous", "results"}
    params = {p["name"]: p["schema"] for p in op["parameters"]}
    assert params["page_size"]["maximum"] == 200 and "cursor" in params and "status" in params
