from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from quality import policy
from quality.boxes import FrameBoxes
from quality.fraud import EMPTY, IDENTICAL, TOO_FAST, SubmissionView, fraud_signals
from quality.policy import (
    ApprovalAction,
    OverlapAction,
    decide_approval,
    decide_overlap,
    replicas_saved,
)
from quality.trust import (
    AGREEMENT,
    GOLD,
    Evidence,
    should_suspend,
    trust_estimate,
    trust_history,
    trust_tier,
    vote_weight,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_new_worker_starts_at_standard_trust():
    est = trust_estimate([], now=NOW)
    assert est.trust == pytest.approx(0.75)
    assert trust_tier(est.trust) == "standard"
    assert not should_suspend(est)


def test_gold_failures_suspend_after_enough_evidence():
    ev = [Evidence(GOLD, 0.0, NOW - timedelta(hours=i)) for i in range(2)]
    assert not should_suspend(trust_estimate(ev, now=NOW))  # two could be bad luck
    ev.append(Evidence(GOLD, 0.0, NOW))
    est = trust_estimate(ev, now=NOW)
    assert est.trust < 0.5
    assert should_suspend(est)


def test_older_evidence_weighs_less():
    old_bad = [Evidence(GOLD, 0.0, NOW - timedelta(days=120))] * 3
    new_good = [Evidence(GOLD, 1.0, NOW)] * 3
    assert trust_estimate(old_bad + new_good, now=NOW).trust > 0.8
    new_bad = [Evidence(GOLD, 0.0, NOW)] * 3
    old_good = [Evidence(GOLD, 1.0, NOW - timedelta(days=120))] * 3
    assert trust_estimate(old_good + new_bad, now=NOW).trust < 0.5


def test_agreement_counts_less_than_gold():
    gold = trust_estimate([Evidence(GOLD, 0.0, NOW)], now=NOW).trust
    agree = trust_estimate([Evidence(AGREEMENT, 0.0, NOW)], now=NOW).trust
    assert gold < agree < 0.75


def test_trust_history_explains_each_move():
    steps = trust_history([Evidence(GOLD, 1.0, NOW), Evidence(GOLD, 0.0, NOW + timedelta(1))])
    assert steps[0].delta > 0 > steps[1].delta


def test_vote_weight_is_log_odds():
    assert vote_weight(0.5) == pytest.approx(1e-3)
    assert vote_weight(0.9) == pytest.approx(np.log(9))


def _sub(key, worker, boxes, seconds=None, order=0.0):
    return SubmissionView(
        key, worker, {0: FrameBoxes.make(boxes), 1: FrameBoxes.make(boxes)}, seconds, order
    )


def test_fraud_too_fast_empty_and_identical():
    box = [[0, 0, 10, 10]]
    subs = [
        _sub(1, 11, box, 100, 1),
        _sub(2, 12, [[1, 0, 11, 10]], 120, 2),
        _sub(3, 13, [], 20, 3),
        _sub(4, 14, box, 10, 4),
    ]
    signals = {(s.key, s.kind): s for s in fraud_signals(subs)}
    assert set(signals) == {(3, TOO_FAST), (4, TOO_FAST), (3, EMPTY), (4, IDENTICAL)}
    assert signals[(4, IDENTICAL)].evidence["identical_to_submission"] == 1
    assert signals[(3, EMPTY)].evidence["empty_frames"] == [0, 1]


def test_two_empty_submissions_of_an_empty_scene_are_not_fraud():
    subs = [_sub(1, 1, [], 50), _sub(2, 2, [], 55), _sub(3, 3, [], 60)]
    assert fraud_signals(subs) == []


def test_dynamic_overlap_decisions():
    kw = dict(overlap_max=4, agreement_threshold=0.8)
    assert (
        decide_overlap(submitted=1, replica_target=2, agreement=None, **kw).action
        == OverlapAction.WAIT
    )
    assert (
        decide_overlap(submitted=2, replica_target=2, agreement=0.9, **kw).action
        == OverlapAction.ACCEPT
    )
    d = decide_overlap(submitted=2, replica_target=2, agreement=0.5, **kw)
    assert (d.action, d.replica_target) == (OverlapAction.ADD_REPLICA, 3)
    assert (
        decide_overlap(submitted=4, replica_target=4, agreement=0.5, **kw).action
        == OverlapAction.REVIEW
    )
    d = decide_overlap(
        submitted=2, replica_target=2, agreement=0.9, confidence=1.0, min_confidence=3.0, **kw
    )
    assert d.action == OverlapAction.ADD_REPLICA
    assert replicas_saved(microtasks=10, replicas_used=24, fixed_overlap=3) == 6


def test_approval_policy():
    kw = dict(gold_pass_threshold=0.7, agreement_threshold=0.8)
    assert decide_approval(gold_score=0.9, agreement=None, **kw).action == ApprovalAction.APPROVE
    d = decide_approval(gold_score=0.1, agreement=None, **kw)
    assert d.action == ApprovalAction.REJECT and "0.10" in d.reason
    assert decide_approval(gold_score=0.5, agreement=None, **kw).action == ApprovalAction.PENDING
    d = decide_approval(
        gold_score=0.5, agreement=None, frames_passed_share=0.6, partial_credit=True, **kw
    )
    assert (d.action, d.credit) == (ApprovalAction.APPROVE, 0.6)
    assert decide_approval(gold_score=None, agreement=0.9, **kw).action == ApprovalAction.APPROVE
    assert decide_approval(gold_score=None, agreement=0.3, **kw).action == ApprovalAction.PENDING


def test_approval_decision_applies_the_policy_switches_and_unvouched_gold_never_rejects():
    kw = dict(gold_pass_threshold=0.7, agreement_threshold=0.8)
    d = decide_approval(gold_score=0.9, agreement=None, auto_approve=False, **kw)
    assert (d.action, d.withheld) == (ApprovalAction.PENDING, ApprovalAction.APPROVE)
    d = decide_approval(gold_score=None, agreement=0.9, auto_approve=False, **kw)
    assert (d.action, d.withheld) == (ApprovalAction.PENDING, ApprovalAction.APPROVE)
    d = decide_approval(gold_score=0.1, agreement=None, auto_reject=False, **kw)
    assert (d.action, d.withheld) == (ApprovalAction.PENDING, ApprovalAction.REJECT)
    d = decide_approval(gold_score=0.1, agreement=None, gold_vouched=False, **kw)
    assert (d.action, d.withheld) == (ApprovalAction.PENDING, ApprovalAction.REJECT)
    assert "not validated" in d.reason
    # An answer nobody vouched for may still approve, and a switch that is on holds nothing back.
    d = decide_approval(gold_score=0.9, agreement=None, gold_vouched=False, **kw)
    assert (d.action, d.withheld) == (ApprovalAction.APPROVE, None)
    d = decide_approval(gold_score=0.1, agreement=None, auto_approve=False, **kw)
    assert (d.action, d.withheld) == (ApprovalAction.REJECT, None)
    d = decide_approval(
        gold_score=0.5, agreement=None, frames_passed_share=0.5, partial_credit=True, **kw
    )
    assert (d.action, d.credit, d.withheld) == (ApprovalAction.APPROVE, 0.5, None)


def test_attributes_and_relations_weigh_little_beside_the_shapes():
    assert policy.blend_agreement(0.7) == 0.7  # a job without attributes or relations
    assert policy.blend_agreement(1.0, attributes=0.0) == pytest.approx(0.8)
    assert policy.blend_agreement(1.0, relations=0.0) == pytest.approx(0.9)
    assert policy.blend_agreement(1.0, attributes=0.0, relations=0.0) == pytest.approx(0.7)
    # Perfect attributes cannot make up for missed shapes.
    assert policy.blend_agreement(0.0, attributes=1.0, relations=1.0) == pytest.approx(0.3)
    assert sum(policy.extras_weights(attributes=True, relations=True)) == pytest.approx(1.0)
    assert policy.weighted_mean([1.0, 0.0], [3.0, 1.0]) == pytest.approx(0.75)
    assert policy.weighted_mean([1.0, 0.0], [0.0, 0.0]) == pytest.approx(0.5)
