"""The worker and requester API of the claim path, and what a worker can never see."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from payments.selectors import escrow_balance
from tasks import claiming
from tasks.models import (
    Assignment,
    AssignmentStatus,
    MicroTask,
    QualificationAnswer,
    QualificationItem,
    Slot,
    Submission,
)
from tests.factories import WorkerFactory
from tests.openapi_check import assert_answers_schema
from tests.tasks.claim_fixtures import manifest_for, published_job, qualified_worker, ready_job

pytestmark = pytest.mark.django_db

CLAIM = "/api/work/claim/"


def submit_url(pk: int) -> str:
    return f"/api/work/assignments/{pk}/submit/"


@pytest.fixture
def no_gold(monkeypatch):
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)


def test_claim_returns_manifest_schema_time_limit_and_pay(client_for, no_gold):
    job = published_job(n=2, price=75, instructions="Box every car.")
    client = client_for(qualified_worker())
    r = client.post(CLAIM, {}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["job"] == {
        "id": job.pk,
        "title": job.title,
        "instructions": "Box every car.",
        "annotation_type": "bbox",
        "classes": ["car", "person"],
        "event_labels": [],
        "attributes": {},
        "predicates": [],
        "track_masks": False,
    }
    assert [f["frame"] for f in body["task"]["frames"]] == [0, 1, 2, 3, 4]
    assert body["task"]["frames"][1]["url"] == f"/work/assignments/{body['id']}/frames/1.jpg"
    assert (body["task"]["width"], body["task"]["height"]) == (640, 360)
    assert body["time_limit_seconds"] == 1800
    assert body["pay"] == {"amount": 75, "currency": "usd"}
    assert body["deadline"] and body["status"] == "claimed"


def test_claim_with_nothing_available_is_404_with_a_reason(client_for):
    client = client_for(WorkerFactory())
    r = client.post(CLAIM, {}, format="json")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "nothing_available"


def test_requesters_cannot_use_the_worker_api(requester_client):
    assert requester_client.post(CLAIM, {}, format="json").status_code == 403


def test_submit_then_my_work_shows_status(client_for, no_gold):
    published_job(n=1)
    worker = qualified_worker()
    client = client_for(worker)
    a = client.post(CLAIM, {}, format="json").json()
    payload = {"boxes": [{"frame": 2, "label": "car", "box": [10, 10, 50, 40]}]}
    r = client.post(submit_url(a["id"]), {"payload": payload, "active_seconds": 4.5}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "submitted"
    assert r.json()["submission"]["payload"] == {
        "boxes": [{"frame": 2, "label": "car", "box": [10.0, 10.0, 50.0, 40.0]}]
    }
    mine = client.get("/api/work/assignments/").json()["results"]
    assert [(m["id"], m["status"]) for m in mine] == [(a["id"], "submitted")]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"payload": {"boxes": [{"frame": 2, "label": "car", "box": [600, 0, 700, 10]}]}},
            "boxes[0].box",
        ),
        (
            {"payload": {"boxes": [{"frame": 2, "label": "bus", "box": [1, 1, 9, 9]}]}},
            "boxes[0].label",
        ),
        (
            {"payload": {"boxes": [{"frame": 99, "label": "car", "box": [1, 1, 9, 9]}]}},
            "boxes[0].frame",
        ),
        ({"payload": {"boxes": []}, "active_seconds": -1}, "active_seconds"),
        ({"payload": "not an object"}, "payload"),
    ],
)
def test_bad_payloads_are_400_with_field_errors_and_store_nothing(client_for, no_gold, body, field):
    published_job(n=1)
    client = client_for(qualified_worker())
    a = client.post(CLAIM, {}, format="json").json()
    r = client.post(submit_url(a["id"]), body, format="json")
    assert r.status_code == 400, r.content
    assert field in r.json()["error"]["fields"]
    assert not Submission.objects.exists()
    assert Assignment.objects.get(pk=a["id"]).status == AssignmentStatus.CLAIMED


def test_malformed_json_is_400_and_stores_nothing(client_for, no_gold):
    published_job(n=1)
    client = client_for(qualified_worker())
    a = client.post(CLAIM, {}, format="json").json()
    r = client.generic(
        "POST", submit_url(a["id"]), '{"payload": {"boxes": [', content_type="application/json"
    )
    assert r.status_code == 400
    assert r.json()["error"]["message"]
    assert not Submission.objects.exists()


def test_someone_elses_assignment_is_the_same_404_as_none_and_stores_nothing(client_for, no_gold):
    published_job(n=1)
    owner, other = client_for(qualified_worker()), client_for(qualified_worker())
    a = owner.post(CLAIM, {}, format="json").json()
    missing = a["id"] + 10_000
    for path in ("submit/", "release/", "heartbeat/", ""):
        body = {"payload": {"boxes": []}} if path == "submit/" else {}
        method = other.get if not path else other.post
        theirs = method(f"/api/work/assignments/{a['id']}/{path}", body, format="json")
        none = method(f"/api/work/assignments/{missing}/{path}", body, format="json")
        # A worker cannot tell another worker's assignment ids from unknown ones.
        assert (theirs.status_code, theirs.json()) == (404, none.json()), path
    assert not Submission.objects.exists()
    assert Assignment.objects.get(pk=a["id"]).status == AssignmentStatus.CLAIMED


def test_expired_and_double_submissions_are_409(client_for, no_gold):
    published_job(n=2)
    client = client_for(qualified_worker())
    a = client.post(CLAIM, {}, format="json").json()
    Assignment.objects.filter(pk=a["id"]).update(deadline=timezone.now() - timedelta(minutes=1))
    r = client.post(submit_url(a["id"]), {"payload": {"boxes": []}}, format="json")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "claim_expired"
    assert "expired" in r.json()["error"]["message"]
    b = client.post(CLAIM, {}, format="json").json()
    assert (
        client.post(submit_url(b["id"]), {"payload": {"boxes": []}}, format="json").status_code
        == 200
    )
    r = client.post(submit_url(b["id"]), {"payload": {"boxes": []}}, format="json")
    assert r.status_code == 409
    assert Submission.objects.count() == 1


def test_heartbeat_and_release(client_for, no_gold):
    published_job(n=1)
    client = client_for(qualified_worker())
    a = client.post(CLAIM, {}, format="json").json()
    r = client.post(
        f"/api/work/assignments/{a['id']}/heartbeat/", {"active_seconds": 3}, format="json"
    )
    assert r.status_code == 200 and r.json()["deadline"] >= a["deadline"]
    r = client.post(f"/api/work/assignments/{a['id']}/release/")
    assert r.json()["status"] == "released"
    assert (
        client.post(f"/api/work/assignments/{a['id']}/heartbeat/", {}, format="json").status_code
        == 409
    )


def _all_text(client, paths) -> str:
    return "\n".join(json.dumps(client.get(p).json()) for p in paths)


def test_gold_answers_and_other_workers_work_never_reach_a_worker(
    client_for, monkeypatch, settings
):
    """Invariant 5, checked on every serialized worker response."""
    settings.CLAIM_MAX_CONCURRENT = 4  # the worker holds four claims at once
    monkeypatch.setattr(claiming._rng, "random", lambda: 0.0)  # gold first
    job = published_job(n=3, gold=1, overlap=2, gold_rate=0.3)
    secret_box = [123.25, 45.5, 234.75, 99.125]
    item = QualificationItem.objects.create(
        annotation_type="bbox",
        label_classes=["car"],
        frame_start=0,
        frame_end=0,
        frames=[0],
        manifest=manifest_for([0]),
    )
    QualificationAnswer.objects.create(
        item=item, payload={"boxes": [{"frame": 0, "label": "car", "box": secret_box}]}
    )
    # Another worker submits a distinctive box on the first microtask.
    other = qualified_worker()
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)
    theirs = claiming.assignment_claim(worker=other)
    other_box = [11.125, 22.375, 33.625, 44.875]
    claiming.assignment_submit(
        worker=other,
        assignment_id=theirs.pk,
        payload={
            "boxes": [{"frame": theirs.microtask.frames[0], "label": "car", "box": other_box}]
        },
    )
    me = qualified_worker()
    client = client_for(me)
    monkeypatch.setattr(claiming._rng, "random", lambda: 0.0)
    views = [client.post(CLAIM, {}, format="json").json() for _ in range(4)]
    gold = MicroTask.objects.get(job=job, is_gold=True)
    mine = Assignment.objects.filter(worker=me)
    assert gold.pk in set(mine.values_list("microtask_id", flat=True))
    # A gold claim and an ordinary one expose exactly the same fields.
    shapes = {json.dumps(sorted(v)) + json.dumps(sorted(v["task"])) for v in views}
    assert len(shapes) == 1
    paths = [
        "/api/work/jobs/",
        "/api/work/assignments/",
        "/api/work/qualifications/",
        "/api/work/qualifications/bbox/",
        *[f"/api/work/assignments/{v['id']}/" for v in views],
    ]
    text = json.dumps(views, default=str) + _all_text(client, paths)
    for secret in [*secret_box, *other_box]:
        assert str(secret) not in text
    for word in ("is_gold", "gold", "replica", "answer", other.username):
        assert word not in text.lower()
    assert item.pk in [
        q["id"] for q in client.get("/api/work/qualifications/bbox/").json()["questions"]
    ]


def test_job_board_lists_open_work_and_qualification(client_for):
    job = published_job(n=4, price=80)
    ready_job(n=2)  # not published: not on the board
    client = client_for(qualified_worker())
    rows = assert_answers_schema(client.get("/api/work/jobs/"), "get", "/api/work/jobs/")["results"]
    assert [(r["id"], r["open_tasks"], r["pay"]["amount"], r["qualified"]) for r in rows] == [
        (job.pk, 12, 80, True)
    ]
    assert rows[0]["estimated_seconds"] > 0


def test_requester_publishes_pauses_and_resumes_own_job_only(
    requester_client, other_requester_client
):
    job = ready_job(n=2, requester=requester_client.user)
    assert other_requester_client.post(f"/api/jobs/{job.pk}/publish/").status_code == 404
    r = requester_client.post(f"/api/jobs/{job.pk}/publish/")
    assert r.status_code == 200, r.content
    assert r.json()["job"]["status"] == "published" and r.json()["slots"] == 6
    assert requester_client.post(f"/api/jobs/{job.pk}/publish/").status_code == 409
    assert requester_client.post(f"/api/jobs/{job.pk}/pause/").json()["status"] == "paused"
    assert requester_client.post(f"/api/jobs/{job.pk}/resume/").json()["status"] == "published"
    assert other_requester_client.post(f"/api/jobs/{job.pk}/pause/").status_code == 404
    reserved = escrow_balance(job=job).reserved
    assert reserved > 0
    r = requester_client.post(f"/api/jobs/{job.pk}/complete/")
    assert r.json()["status"] == "completed"
    assert escrow_balance(job=job).reserved == 0 and not Slot.objects.filter(job=job).exists()
