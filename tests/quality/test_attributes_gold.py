"""Gold that asks attributes, scored through the real claim path: the known answer's attribute
values and relations count in the gold score (attribute accuracy, relation F1), with the boxes
still dominating."""

from __future__ import annotations

import pytest

from quality import services
from quality.models import GoldResult
from tasks import claiming
from tests.factories import AdminFactory
from tests.quality.conftest import make_world
from tests.tasks.claim_fixtures import qualified_worker

pytestmark = pytest.mark.django_db(transaction=True)

ATTRIBUTES = {
    "car": [{"name": "colour", "type": "choice", "values": ["red", "blue"]}],
    "person": [{"name": "colour", "type": "choice", "values": ["red", "blue"]}],
}


def _with(payload: dict, colour: str, predicate: str) -> dict:
    boxes = [{**b, "attributes": {"colour": colour}} for b in payload["boxes"]]
    by_frame: dict[int, list[int]] = {}
    for i, b in enumerate(boxes):
        by_frame.setdefault(b["frame"], []).append(i)
    relations = [
        {"subject": ids[0], "predicate": predicate, "object": ids[1]}
        for ids in by_frame.values()
        if len(ids) >= 2
    ]
    return {"boxes": boxes, "relations": relations}


def test_gold_scores_attributes_and_relations(monkeypatch):
    monkeypatch.setattr(claiming._rng, "random", lambda: 0.0)  # gold first
    world = make_world(
        n=2,
        gold=2,
        gold_rate=0.5,
        gold_by="",
        label_attributes=ATTRIBUTES,
        relation_predicates=["near", "far"],
    )
    admin = AdminFactory()
    for gold_mt in world.gold():
        answer = _with(world.payload_for(gold_mt), "red", "near")
        assert answer["relations"], "the scene has two objects on a gold frame"
        services.gold_answer_set(microtask_id=gold_mt.pk, payload=answer, by=admin)

    scores = {}
    for colour, predicate in (("red", "near"), ("blue", "far")):
        worker = qualified_worker("bbox")
        a = claiming.assignment_claim(worker=worker, job_id=world.job.pk)
        assert a.microtask.is_gold
        payload = _with(world.payload_for(a.microtask), colour, predicate)
        claiming.assignment_submit(
            worker=worker, assignment_id=a.pk, payload=payload, active_seconds=60.0
        )
        scores[colour] = GoldResult.objects.get(assignment=a)
    right, wrong = scores["red"], scores["blue"]
    assert right.metrics["attribute_accuracy"] == 1.0 and right.metrics["relation_f1"] == 1.0
    assert right.score == pytest.approx(1.0)
    assert wrong.metrics["attribute_accuracy"] == 0.0 and wrong.metrics["relation_f1"] == 0.0
    assert wrong.metrics["f1"] == 1.0  # the boxes are right ...
    assert wrong.score == pytest.approx(0.7)  # ... and weigh 0.7 of the score
