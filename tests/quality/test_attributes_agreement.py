"""Attribute and relation agreement feed a worker's agreement (trust, approval, overlap), on
PostgreSQL through the claim path: with small weights beside the shapes (``quality.policy``), so
a worker who draws the right boxes with the wrong attributes agrees less, and a disagreement on
attributes alone can add a replica."""

from __future__ import annotations

import pytest

from quality import policy
from quality.models import ConsensusDecision, ConsensusResult, TrustEvidence
from tasks import claiming
from tasks.models import Assignment, MicroTask

pytestmark = pytest.mark.django_db(transaction=True)

ATTRIBUTES = {
    "car": [{"name": "colour", "type": "choice", "values": ["red", "blue"]}],
    "person": [{"name": "colour", "type": "choice", "values": ["red", "blue"]}],
}


def _said(world, mt, colour: str | None, predicate: str | None = None) -> dict:
    """The true boxes of the microtask, every one with ``colour``, and on each frame its first
    box ``predicate`` its second (when there are two)."""
    payload = world.payload_for(mt)
    relations = []
    by_frame: dict[int, list[int]] = {}
    for i, box in enumerate(payload["boxes"]):
        if colour is not None:
            box["attributes"] = {"colour": colour}
        by_frame.setdefault(box["frame"], []).append(i)
    if predicate is not None:
        for idx in by_frame.values():
            if len(idx) >= 2:
                relations.append({"subject": idx[0], "predicate": predicate, "object": idx[1]})
        payload["relations"] = relations
    return payload


def _submit_all(world, crowd, payloads):
    assignments = []
    for w, make in zip(crowd, payloads, strict=True):
        a = claiming.assignment_claim(worker=w, job_id=world.job.pk)
        claiming.assignment_submit(worker=w, assignment_id=a.pk, payload=make(a.microtask))
        assignments.append(a)
    return assignments


def test_right_boxes_with_wrong_attributes_agree_less_and_earn_less_trust(
    world_factory, workers, no_gold
):
    world = world_factory(
        n=1, overlap=3, label_attributes=ATTRIBUTES, agreement_threshold=0.85, n_objects=3
    )
    crowd = workers(3)
    colours = ["red", "red", "blue"]
    a = _submit_all(world, crowd, [lambda mt, c=c: _said(world, mt, c) for c in colours])
    result = ConsensusResult.objects.get(microtask=a[0].microtask_id, is_current=True)
    assert result.decision == ConsensusDecision.ACCEPT
    parts = result.agreement_parts
    shapes = parts["annotators"]["shapes"]
    attrs = parts["annotators"]["attributes"]
    assert "relations" not in parts["annotators"]  # the job asks for none
    assert parts["weights"] == {"shapes": 0.8, "attributes": 0.2, "relations": 0.0}
    # Same boxes for all three: the shapes agree fully; the colour is red by majority.
    assert all(v == pytest.approx(1.0) for v in shapes.values())
    assert attrs[str(a[0].pk)] == 1.0 and attrs[str(a[1].pk)] == 1.0
    assert attrs[str(a[2].pk)] == 0.0
    per = result.annotator_agreement
    assert per[str(a[0].pk)] == pytest.approx(1.0)
    assert per[str(a[2].pk)] == pytest.approx(0.8)
    # The microtask's agreement is blended the same way: shapes 1, attributes ~2/3 weighted.
    assert result.agreement == pytest.approx(
        policy.blend_agreement(1.0, attributes=parts["overall"]["attributes"]), abs=1e-4
    )
    assert result.agreement < 1.0
    colours_kept = {
        s["attributes"]["colour"] for shapes_ in result.frames.values() for s in shapes_
    }
    assert colours_kept == {"red"}
    # Trust takes the blended agreement as its evidence.
    evidence = {e.assignment_id: e.score for e in TrustEvidence.objects.filter(kind="agreement")}
    assert evidence[a[0].pk] == pytest.approx(1.0)
    assert evidence[a[2].pk] == pytest.approx(0.8)
    trust_right = crowd[0].trust_scores.get(annotation_type="bbox").trust
    trust_wrong = crowd[2].trust_scores.get(annotation_type="bbox").trust
    assert trust_wrong < trust_right
    # Approval asks each worker's own agreement: 0.8 is under the job's 0.85.
    status = {x.pk: x.status for x in Assignment.objects.filter(microtask=a[0].microtask_id)}
    assert status[a[0].pk] == status[a[1].pk] == "approved"
    assert status[a[2].pk] == "submitted"


@pytest.mark.parametrize(
    ("colours", "decision"),
    [
        (["red", "red"], ConsensusDecision.ACCEPT),
        (["red", "blue"], ConsensusDecision.ADD_REPLICA),
    ],
)
def test_a_disagreement_on_attributes_alone_adds_a_replica(
    world_factory, workers, no_gold, colours, decision
):
    world = world_factory(
        n=1, overlap=2, overlap_max=3, label_attributes=ATTRIBUTES, agreement_threshold=0.95
    )
    a = _submit_all(world, workers(2), [lambda mt, c=c: _said(world, mt, c) for c in colours])
    result = ConsensusResult.objects.get(microtask=a[0].microtask_id, is_current=True)
    assert result.agreement_parts["overall"]["shapes"] == pytest.approx(1.0)
    assert result.decision == decision
    target = MicroTask.objects.get(pk=a[0].microtask_id).replica_target
    assert target == (3 if decision == ConsensusDecision.ADD_REPLICA else 2)


def test_without_attributes_or_relations_the_agreement_is_the_shapes_alone(
    world_factory, workers, no_gold
):
    world = world_factory(n=1, overlap=2, overlap_max=3, agreement_threshold=0.95)
    a = _submit_all(world, workers(2), [lambda mt: _said(world, mt, None)] * 2)
    result = ConsensusResult.objects.get(microtask=a[0].microtask_id, is_current=True)
    assert result.agreement_parts == {}
    assert result.agreement == pytest.approx(1.0)
    assert result.decision == ConsensusDecision.ACCEPT


def test_wrong_relations_lower_a_workers_agreement_and_can_send_the_microtask_to_review(
    world_factory, workers, no_gold
):
    world = world_factory(
        n=1,
        overlap=3,
        relation_predicates=["rides", "holds"],
        agreement_threshold=0.98,
        overlap_max=3,
        n_objects=3,
    )
    predicates = ["rides", "rides", "holds"]
    a = _submit_all(
        world, workers(3), [lambda mt, p=p: _said(world, mt, None, p) for p in predicates]
    )
    result = ConsensusResult.objects.get(microtask=a[0].microtask_id, is_current=True)
    parts = result.agreement_parts
    assert parts["weights"] == {"shapes": 0.9, "attributes": 0.0, "relations": 0.1}
    rel = parts["annotators"]["relations"]
    assert rel[str(a[0].pk)] == 1.0 and rel[str(a[2].pk)] == 0.0
    per = result.annotator_agreement
    assert per[str(a[2].pk)] == pytest.approx(0.9)
    # Shapes agree fully; the relations' disagreement alone takes the microtask under the
    # threshold, at the maximum overlap: a person reviews it.
    assert result.agreement < 0.98
    assert result.decision == ConsensusDecision.REVIEW


def test_leaving_the_attributes_out_agrees_no_better_than_giving_them_wrong(
    world_factory, workers, no_gold
):
    world = world_factory(
        n=1, overlap=3, label_attributes=ATTRIBUTES, agreement_threshold=0.5, n_objects=3
    )
    colours = ["red", "red", None]
    a = _submit_all(world, workers(3), [lambda mt, c=c: _said(world, mt, c) for c in colours])
    result = ConsensusResult.objects.get(microtask=a[0].microtask_id, is_current=True)
    attrs = result.agreement_parts["annotators"]["attributes"]
    assert attrs[str(a[0].pk)] == 1.0
    assert attrs[str(a[2].pk)] == 0.0
    assert result.annotator_agreement[str(a[2].pk)] == pytest.approx(0.8)
