"""The seeded track test's last question asks events on the tracks (for track jobs that name
event labels), and a gold microtask of such a job becomes a question with its event labels."""

from __future__ import annotations

import copy

import pytest

from quality import qualifying as quality_qualifying
from tasks import qualification_bank as bank
from tasks.annotations import validate_payload
from tasks.models import MicroTask, QualificationItem
from tasks.qualifying import item_context
from tests.factories import WorkerFactory
from tests.tasks.claim_fixtures import ready_job, store_frames

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _frames(item, payload):
    return validate_payload(payload, item_context(item)).frames


def _asking():
    bank.seed_qualifications(types=["track"])
    items = QualificationItem.objects.filter(annotation_type="track").select_related("answer")
    asking = [i for i in items if i.event_labels]
    assert len(asking) == 1 and len(items) == bank.QUESTIONS
    return asking[0]


def test_the_seeded_track_test_asks_events_on_the_tracks(media, client_for):
    item = _asking()
    assert item.event_labels == [bank.EDGE_EVENT]
    assert bank.EDGE_EVENT in item.instructions
    answer = item.answer.payload
    ids = {t["id"] for t in answer["tracks"]}
    assert answer["events"] and all(e["track"] in ids for e in answer["events"])
    assert quality_qualifying.item_score(item, _frames(item, answer)) == pytest.approx(1.0)
    # The worker sees the labels to mark (never the answer).
    questions = client_for(WorkerFactory()).get("/api/work/qualifications/track/").json()
    shown = next(q for q in questions["questions"] if q["id"] == item.pk)
    assert shown["event_labels"] == [bank.EDGE_EVENT]
    assert not {"events", "tracks", "answer", "payload"} & set(shown)


def test_right_tracks_without_the_events_fail_the_question(media):
    item = _asking()
    no_events = copy.deepcopy(item.answer.payload)
    no_events.pop("events")
    assert quality_qualifying.item_score(item, _frames(item, no_events)) == pytest.approx(0.0)
    # Events on the whole of each track (not where the edge cuts it) miss the shorter stretch.
    whole = copy.deepcopy(item.answer.payload)
    whole["events"] = []
    for t in whole["tracks"]:
        shown = [k["frame"] for k in t["keyframes"] if not k.get("outside")]
        whole["events"].append(
            {"label": bank.EDGE_EVENT, "start": min(shown), "end": max(shown), "track": t["id"]}
        )
    assert quality_qualifying.item_score(item, _frames(item, whole)) < 1.0


def test_a_gold_microtask_of_a_track_job_with_events_becomes_such_a_question(media):
    job = ready_job(n=1, gold=1, annotation_type="track", event_labels=["crossing"])
    store_frames(job)
    mt = MicroTask.objects.select_related("job", "video").get(job=job, is_gold=True)
    lo, hi = mt.frame_start, mt.frame_end
    payload = {
        "tracks": [
            {
                "id": 1,
                "label": "car",
                "keyframes": [
                    {"frame": lo, "box": [10, 10, 60, 60]},
                    {"frame": hi, "box": [20, 10, 70, 60]},
                ],
            }
        ],
        "events": [{"label": "crossing", "start": lo, "end": hi, "track": 1}],
    }
    item = bank.qualification_item_from_microtask(mt=mt, answer=payload)
    assert item.event_labels == ["crossing"]
    assert item.answer.payload["events"] == payload["events"]
