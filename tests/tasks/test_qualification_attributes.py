"""Qualification questions that ask attributes and relations: the seeded bbox test's last
question, and a question copied from a gold microtask of a job that asks them."""

from __future__ import annotations

import copy

import pytest

from quality import qualifying as quality_qualifying
from quality import services as quality
from tasks import qualification_bank as bank
from tasks.annotations import validate_payload
from tasks.models import MicroTask, QualificationItem
from tasks.qualifying import item_context
from tests.factories import AdminFactory, WorkerFactory
from tests.tasks.claim_fixtures import ready_job, store_frames

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _asking():
    bank.seed_qualifications(types=["bbox"])
    return QualificationItem.objects.select_related("answer").get(
        annotation_type="bbox", label_attributes__has_key="car"
    )


def test_the_seeded_bbox_test_has_a_question_asking_side_and_relations(media, client_for):
    item = _asking()
    assert item.relation_predicates == ["left_of", "right_of"]
    assert "side" in item.instructions and "left_of" in item.instructions
    answer = item.answer.payload
    assert all(b["attributes"]["side"] in ("left", "right") for b in answer["boxes"])
    assert len(answer["relations"]) == 2
    assert quality_qualifying.item_score(item, _frames(item, answer)) == pytest.approx(1.0)
    # The worker sees what to give (never the answer).
    questions = client_for(WorkerFactory()).get("/api/work/qualifications/bbox/").json()
    shown = next(q for q in questions["questions"] if q["id"] == item.pk)
    assert shown["attributes"] == bank.SIDE_ATTRIBUTES
    assert shown["predicates"] == bank.SIDE_PREDICATES


def _frames(item, payload):
    return validate_payload(payload, item_context(item)).frames


def test_wrong_sides_and_relations_cost_marks_but_boxes_dominate(media):
    item = _asking()
    wrong = copy.deepcopy(item.answer.payload)
    for b in wrong["boxes"]:
        b["attributes"]["side"] = "left" if b["attributes"]["side"] == "right" else "right"
    for r in wrong["relations"]:
        r["predicate"] = "left_of" if r["predicate"] == "right_of" else "right_of"
    score = quality_qualifying.item_score(item, _frames(item, wrong))
    assert score == pytest.approx(0.7)  # boxes perfect (0.7), attributes 0/4, relations 0/2
    no_extras = copy.deepcopy(item.answer.payload)
    for b in no_extras["boxes"]:
        b.pop("attributes")
    no_extras.pop("relations")
    assert quality_qualifying.item_score(item, _frames(item, no_extras)) == pytest.approx(0.7)


def test_a_gold_microtask_of_a_job_asking_attributes_becomes_such_a_question(media):
    attributes = {"car": [{"name": "parked", "type": "bool"}]}
    job = ready_job(n=1, gold=1, label_attributes=attributes, relation_predicates=["tows"])
    store_frames(job)
    mt = MicroTask.objects.get(job=job, is_gold=True)
    frame = mt.frames[0]
    payload = {
        "boxes": [
            {
                "frame": frame,
                "label": "car",
                "box": [10, 10, 90, 60],
                "attributes": {"parked": True},
            },
            {
                "frame": frame,
                "label": "car",
                "box": [100, 10, 190, 60],
                "attributes": {"parked": False},
            },
        ],
        "relations": [{"subject": 1, "predicate": "tows", "object": 0}],
    }
    admin = AdminFactory()
    quality.gold_answer_set(microtask_id=mt.pk, payload=payload, by=admin)
    item = quality_qualifying.qualification_item_from_gold(microtask_id=mt.pk)
    assert item.label_attributes == attributes and item.relation_predicates == ["tows"]
    assert item.answer.payload["relations"] == payload["relations"]
    assert quality_qualifying.item_score(item, _frames(item, payload)) == pytest.approx(1.0)
