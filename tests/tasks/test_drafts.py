"""The draft sent with the heartbeat (tasks.drafts): kept with a live claim for the worker's own
page, bounded, refused for anyone else's claim and for a finished one, never a submission."""

from __future__ import annotations

import pytest

from tasks import claiming
from tasks.drafts import DRAFT_MAX_BYTES
from tasks.models import Assignment, AssignmentStatus, Submission
from tests.tasks.claim_fixtures import published_job, qualified_worker

pytestmark = pytest.mark.django_db

CLAIM = "/api/work/claim/"
BOX = {"frame": 0, "label": "car", "box": [10, 10, 50, 50]}


def heartbeat(client, pk: int, body: dict):
    return client.post(f"/api/work/assignments/{pk}/heartbeat/", body, format="json")


@pytest.fixture
def claimed(client_for, monkeypatch):
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)  # no gold
    published_job(n=2)
    client = client_for(qualified_worker())
    return client, client.post(CLAIM, {}, format="json").json()


def test_a_draft_is_kept_with_the_claim_and_given_back_to_its_worker_only(claimed):
    client, a = claimed
    draft = {"saved_at": 1764556800123, "payload": {"boxes": [BOX]}}
    r = heartbeat(client, a["id"], {"active_seconds": 2, "draft": draft})
    assert r.status_code == 200
    assert Assignment.objects.get(pk=a["id"]).draft == draft
    assert client.get(f"/api/work/assignments/{a['id']}/").json()["draft"] == draft
    # A later heartbeat without a draft keeps the one there; a newer draft replaces it.
    assert heartbeat(client, a["id"], {}).status_code == 200
    assert Assignment.objects.get(pk=a["id"]).draft == draft
    newer = {"saved_at": 1764556900000, "payload": {"boxes": []}}
    assert heartbeat(client, a["id"], {"draft": newer}).status_code == 200
    assert Assignment.objects.get(pk=a["id"]).draft == newer
    # Never a submission.
    assert not Submission.objects.exists()
    assert Assignment.objects.get(pk=a["id"]).status == AssignmentStatus.CLAIMED


@pytest.mark.parametrize(
    "draft, field",
    [
        ({"saved_at": 1, "payload": {"tracks": []}}, "draft.payload.tracks"),
        ({"saved_at": -5, "payload": {}}, "draft.saved_at"),
        ({"payload": {"boxes": []}}, "draft.saved_at"),
        ({"saved_at": 1, "payload": {"boxes": []}, "extra": 1}, "draft.extra"),
        ("boxes", "draft"),
        (
            {"saved_at": 1, "payload": {"boxes": [{"label": "x" * DRAFT_MAX_BYTES}]}},
            "draft",
        ),
    ],
    ids=["other type", "negative time", "no time", "extra field", "a string", "too large"],
)
def test_a_bad_draft_is_a_400_naming_the_field_and_changes_nothing(claimed, draft, field):
    client, a = claimed
    before = Assignment.objects.get(pk=a["id"])
    r = heartbeat(client, a["id"], {"active_seconds": 30, "draft": draft})
    assert r.status_code == 400, r.content[:300]
    assert field in r.json()["error"]["fields"]
    after = Assignment.objects.get(pk=a["id"])
    # Not even the deadline moved or the time was credited: the heartbeat as a whole failed.
    assert (after.draft, after.deadline, after.heartbeat_at, after.active_seconds) == (
        None,
        before.deadline,
        before.heartbeat_at,
        before.active_seconds,
    )


def test_another_workers_claim_takes_no_draft_and_answers_the_unknown_id_404(claimed, client_for):
    _, a = claimed
    other = client_for(qualified_worker())
    draft = {"saved_at": 1, "payload": {"boxes": [BOX]}}
    theirs = heartbeat(other, a["id"], {"draft": draft})
    none = heartbeat(other, a["id"] + 10_000, {"draft": draft})
    assert (theirs.status_code, theirs.json()) == (404, none.json())
    assert Assignment.objects.get(pk=a["id"]).draft is None


def test_a_submitted_claim_refuses_drafts_and_no_longer_shows_one(claimed):
    client, a = claimed
    draft = {"saved_at": 1, "payload": {"boxes": [BOX]}}
    assert heartbeat(client, a["id"], {"draft": draft}).status_code == 200
    r = client.post(
        f"/api/work/assignments/{a['id']}/submit/", {"payload": {"boxes": [BOX]}}, format="json"
    )
    assert r.status_code == 200
    assert r.json()["draft"] is None  # the submission is what counts now
    later = {"saved_at": 2, "payload": {"boxes": []}}
    r = heartbeat(client, a["id"], {"draft": later})
    assert r.status_code == 409
    assert Assignment.objects.get(pk=a["id"]).draft == draft  # untouched
    assert client.get(f"/api/work/assignments/{a['id']}/").json()["draft"] is None
    assert Submission.objects.get().payload["boxes"][0]["box"] == BOX["box"]
