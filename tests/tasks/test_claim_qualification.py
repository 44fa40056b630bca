"""Qualification tests gate paid work; scored against known answers like gold."""

from __future__ import annotations

import pytest

from marketplace.models import Qualification, QualificationStatus
from tasks import claiming
from tasks.models import QualificationAnswer, QualificationAttempt, QualificationItem
from tests.factories import WorkerFactory
from tests.tasks.claim_fixtures import manifest_for, published_job

pytestmark = pytest.mark.django_db

URL = "/api/work/qualifications/bbox/"


@pytest.fixture
def test_items():
    items = []
    for i, truth in enumerate(([[10, 10, 60, 60]], [[100, 100, 200, 150], [300, 50, 350, 120]])):
        item = QualificationItem.objects.create(
            annotation_type="bbox",
            position=i,
            label_classes=["car"],
            frame_start=0,
            frame_end=0,
            frames=[0],
            manifest=manifest_for([0]),
        )
        QualificationAnswer.objects.create(
            item=item,
            payload={"boxes": [{"frame": 0, "label": "car", "box": b} for b in truth]},
        )
        items.append((item, truth))
    return items


def _answers(items, shift: float):
    return {
        str(item.pk): {
            "boxes": [
                {"frame": 0, "label": "car", "box": [b[0] + shift, b[1], b[2] + shift, b[3]]}
                for b in truth
            ]
        }
        for item, truth in items
    }


def test_passing_the_test_unlocks_claiming(client_for, test_items, monkeypatch):
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)
    published_job(n=1)
    worker = WorkerFactory()
    client = client_for(worker)
    assert client.post("/api/work/claim/", {}, format="json").status_code == 404
    questions = client.get(URL).json()["questions"]
    assert [q["id"] for q in questions] == [i.pk for i, _ in test_items]
    r = client.post(URL, {"answers": _answers(test_items, shift=3)}, format="json")
    assert r.status_code == 200, r.content
    # Every box found, each 3 px off: scored like gold (F1 x mean IoU), so a bit under 1.
    expected = (47 / 53 + (97 / 103 + 47 / 53) / 2) / 2
    assert r.json()["status"] == "passed"
    assert r.json()["score"] == pytest.approx(expected, abs=1e-4)
    assert client.post("/api/work/claim/", {}, format="json").status_code == 201
    assert client.post(URL, {"answers": _answers(test_items, 0)}, format="json").status_code == 409


def test_poor_answers_fail_and_attempts_run_out(client_for, test_items):
    worker = WorkerFactory()
    client = client_for(worker)
    for _ in range(3):
        r = client.post(URL, {"answers": _answers(test_items, shift=40)}, format="json")
        assert r.json()["status"] == "failed" and r.json()["score"] < 0.7
    r = client.post(URL, {"answers": _answers(test_items, shift=0)}, format="json")
    assert r.status_code == 403
    q = Qualification.objects.get(worker=worker, annotation_type="bbox")
    assert (q.status, q.attempts) == (QualificationStatus.FAILED, 3)


def test_invalid_or_missing_answers_are_400_and_count_for_nothing(client_for, test_items):
    worker = WorkerFactory()
    client = client_for(worker)
    answers = _answers(test_items, 0)
    answers.pop(str(test_items[1][0].pk))
    answers[str(test_items[0][0].pk)]["boxes"][0]["box"] = [0, 0, 900, 10]
    r = client.post(URL, {"answers": answers}, format="json")
    assert r.status_code == 400
    fields = r.json()["error"]["fields"]
    assert f"{test_items[0][0].pk}.boxes[0].box" in fields and str(test_items[1][0].pk) in fields
    assert not QualificationAttempt.objects.exists()
    assert not Qualification.objects.filter(worker=worker, attempts__gt=0).exists()
