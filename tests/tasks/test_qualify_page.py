"""The qualification page: its embedded data is the API's whitelisted questions, never the known
answers; it offers the test only while the worker may take it."""

from __future__ import annotations

import json
import re

import pytest

from marketplace.models import Qualification, QualificationStatus
from tasks.models import QualificationAnswer, QualificationItem
from tests.factories import WorkerFactory
from tests.tasks.claim_fixtures import manifest_for

pytestmark = pytest.mark.django_db

URL = "/work/qualify/bbox/"
SECRET = [123.375, 45.625, 234.875, 99.125]
QUESTION_KEYS = {
    "id",
    "instructions",
    "classes",
    "attributes",
    "predicates",
    "event_labels",
    "frame_start",
    "frame_end",
    "annotate_frames",
    "width",
    "height",
    "frames",
}


@pytest.fixture
def item():
    item = QualificationItem.objects.create(
        annotation_type="bbox",
        instructions="Box every car.",
        label_classes=["car"],
        frames=[0],
        manifest=manifest_for([0]),
    )
    QualificationAnswer.objects.create(
        item=item, payload={"boxes": [{"frame": 0, "label": "car", "box": SECRET}]}
    )
    return item


def _embedded(html: str):
    m = re.search(r'<script id="qualification-data" type="application/json">(.*?)</script>', html)
    return json.loads(m.group(1)) if m else None


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_the_embedded_questions_are_the_whitelist_and_carry_no_answer(client, item):
    client.force_login(WorkerFactory())
    html = client.get(URL).content.decode()
    data = _embedded(html)
    assert data is not None and 'id="canvas"' in html and "js/annotate/page.mjs" in html
    (question,) = data["questions"]
    assert set(question) == QUESTION_KEYS
    assert question["id"] == item.pk and question["classes"] == ["car"]
    assert question["frames"] == [
        {"frame": 0, "url": "/media/frames/test/000000.jpg", "timestamp": 0.0}
    ]
    assert data["submit_url"] == "/api/work/qualifications/bbox/"
    assert (data["attempts"], data["max_attempts"]) == (0, 3)
    assert not {"answer", "payload", "boxes", "box"} & _keys(data)
    for value in SECRET:
        assert str(value) not in html


@pytest.mark.parametrize(
    ("standing", "says"),
    [
        ({"status": QualificationStatus.PASSED, "score": 0.9, "attempts": 1}, "You passed"),
        (
            {"status": QualificationStatus.FAILED, "score": 0.2, "attempts": 3},
            "used all 3 attempts",
        ),
    ],
)
def test_no_workspace_once_passed_or_out_of_attempts(client, item, standing, says):
    worker = WorkerFactory()
    Qualification.objects.create(worker=worker, annotation_type="bbox", **standing)
    client.force_login(worker)
    html = client.get(URL).content.decode()
    assert says in html
    assert _embedded(html) is None and 'id="canvas"' not in html and "annotate/page.mjs" not in html
    for value in SECRET:
        assert str(value) not in html


def test_no_workspace_without_questions(client):
    client.force_login(WorkerFactory())
    html = client.get(URL).content.decode()
    assert "no test for this annotation type yet" in html
    assert _embedded(html) is None and 'id="canvas"' not in html


def test_a_failed_worker_with_attempts_left_gets_the_test_again(client, item):
    worker = WorkerFactory()
    Qualification.objects.create(
        worker=worker,
        annotation_type="bbox",
        status=QualificationStatus.FAILED,
        score=0.25,
        attempts=1,
    )
    client.force_login(worker)
    html = client.get(URL).content.decode()
    data = _embedded(html)
    assert data["attempts"] == 1 and [q["id"] for q in data["questions"]] == [item.pk]
    assert "Your last attempt scored 0.25" in html


def test_unknown_types_and_requesters_get_404(client, requester, item):
    client.force_login(WorkerFactory())
    assert client.get("/work/qualify/nonsense/").status_code == 404
    client.force_login(requester)
    assert client.get(URL).status_code == 404
