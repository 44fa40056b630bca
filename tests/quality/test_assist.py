"""Model-assisted rules (quality.assist), one test per rule, on plain data (issue #14)."""

from __future__ import annotations

import numpy as np
import pytest

from payments import pricing
from quality import assist
from quality.boxes import FrameBoxes
from quality.consensus import box_consensus
from quality.fraud import BLIND_ACCEPT
from quality.policy import OverlapAction, decide_overlap
from quality.tracks import track_consensus
from quality.trust import GOLD, vote_weight
from tests.quality._truth import moving_objects

CONS = assist.CONSENSUS


def _acc(*comparisons, **kw) -> assist.SourceAccuracy:
    return assist.source_accuracy(comparisons, **kw)


# --- source accuracy ------------------------------------------------------------------------------


def test_compare_counts_hits_false_alarms_and_missed_objects():
    ref = {0: FrameBoxes.make([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]])}
    prop = {0: FrameBoxes.make([[0, 0, 10, 11], [80, 80, 90, 90]])}  # one hit, one false alarm
    c = assist.compare(prop, ref, kind=GOLD, confidence=0.9)
    assert (c.hits, c.misses, c.kind, c.confidence) == (1, 3, GOLD, 0.9)  # 1 fp + 2 missed


def test_gold_weighs_twice_consensus():
    gold = _acc(assist.Comparison(GOLD, 90, 10))
    cons = _acc(assist.Comparison(CONS, 90, 10))
    assert gold.alpha - 1 == pytest.approx(90) and cons.alpha - 1 == pytest.approx(45)
    assert gold.mean == pytest.approx(cons.mean, abs=0.01)
    # Same rate, more weight: a tighter bound.
    assert gold.lower > cons.lower
    assert (gold.gold_shapes, cons.consensus_shapes) == (100, 100)


def test_lower_bound_rises_with_evidence_and_stays_below_the_mean():
    lows = [_acc(assist.Comparison(GOLD, 19 * n, n)).lower for n in (1, 5, 25)]
    assert lows[0] < lows[1] < lows[2] < 0.95
    est = _acc(assist.Comparison(GOLD, 95, 5))
    assert est.lower < est.mean < est.upper


def test_accuracy_is_measured_on_microtasks_at_least_as_confident():
    comps = [assist.Comparison(GOLD, 0, 10, confidence=0.3), assist.Comparison(GOLD, 10, 0, 0.9)]
    assert _acc(*comps).mean == pytest.approx(11 / 22)
    assert _acc(*comps, min_confidence=0.6).mean == pytest.approx(11 / 12)


def test_proposal_confidence_is_its_least_confident_shape_and_empty_is_zero():
    assert assist.proposal_confidence([0.9, 0.4, 0.8]) == 0.4
    assert assist.proposal_confidence([]) == 0.0


# --- routing --------------------------------------------------------------------------------------

GOOD = _acc(assist.Comparison(GOLD, 980, 20))
POLICY = assist.RoutePolicy(confidence_threshold=0.6, verify_overlap=1, audit_fraction=0.1)


def _route(**kw):
    args = {
        "source": GOOD,
        "bar": 0.9,
        "confidence": 0.9,
        "overlap_min": 3,
        "audit_key": ("job", 1),
        "policy": POLICY,
    }
    args.update(kw)
    return assist.decide_route(**args)


def test_no_source_or_source_below_the_bar_is_full_annotation():
    assert _route(source=None).route == assist.Route.FULL
    d = _route(bar=0.99)
    assert (d.route, d.replica_target) == (assist.Route.FULL, 3)
    assert "lower bound" in d.reason


def test_unconfident_microtask_stays_full():
    d = _route(confidence=0.5)
    assert d.route == assist.Route.FULL and not d.audit


def test_confident_microtask_of_a_good_source_is_verified_with_fewer_replicas():
    key = next(k for k in range(100) if assist.audit_draw(("job", k)) >= 0.1)
    d = _route(audit_key=("job", key))
    assert (d.route, d.replica_target, d.audit) == (assist.Route.VERIFY, 1, False)


def test_audit_keeps_the_set_fraction_of_confident_microtasks_full_and_is_deterministic():
    decisions = [_route(audit_key=("job", k)) for k in range(4000)]
    audited = [d for d in decisions if d.audit]
    assert all(d.route == assist.Route.FULL and d.replica_target == 3 for d in audited)
    assert 0.08 < len(audited) / len(decisions) < 0.12
    assert [_route(audit_key=("job", k)).audit for k in range(50)] == [
        d.audit for d in decisions[:50]
    ]


# --- verify outcome -------------------------------------------------------------------------------


def _prov(*moved):
    return [{"proposal": 7, "index": i, "source": "m", "moved": m, "unchanged": m == 0} for i, m in
            enumerate(moved)]  # fmt: skip


def test_corrections_from_provenance():
    # 5 proposed: 2 unchanged, 1 nudged within tolerance, 1 moved, 1 deleted; 2 drawn new.
    c = assist.corrections(_prov(0, 0, 0.05, 0.6), proposed=5, submitted=6)
    assert (c.accepted, c.moved, c.deleted, c.added) == (3, 1, 1, 2)
    assert c.share == pytest.approx((1 + 1 + 2) / 7)
    assert assist.correction_share([], proposed=0, submitted=0) == 0.0


def test_a_verifier_who_corrects_a_lot_escalates_to_full_overlap():
    heavy = assist.decide_verify(shares=[0.5], replica_target=1, overlap_min=3, policy=POLICY)
    assert (heavy.action, heavy.replica_target) == (assist.VerifyAction.ESCALATE, 3)
    light = assist.decide_verify(shares=[0.1], replica_target=1, overlap_min=3, policy=POLICY)
    assert (light.action, light.replica_target) == (assist.VerifyAction.CONSENSUS, 1)


# --- the weight of an accept ----------------------------------------------------------------------


def test_check_power_from_planted_gold_errors():
    clicker = assist.VerifierRecord(wrong_seen=10, wrong_fixed=0)
    checker = assist.VerifierRecord(wrong_seen=10, wrong_fixed=10)
    assert assist.check_power(clicker, source_accuracy=0.95) < 0.15
    assert assist.check_power(checker, source_accuracy=0.95) > 0.95


def test_check_power_from_corrections_needs_a_few_expected_errors():
    new = assist.check_power(assist.VerifierRecord(), source_accuracy=0.9)
    assert new == pytest.approx(0.8)  # presumed to look
    # Corrected 10 % of 500 shapes of a 90 %-accurate source: checks everything.
    honest = assist.VerifierRecord(seen=500, corrected=50)
    assert assist.check_power(honest, source_accuracy=0.9) > 0.95
    never = assist.VerifierRecord(seen=500, corrected=0)
    assert assist.check_power(never, source_accuracy=0.9) < 0.05
    # The crowd corrects only 1 %: a worker at 1 % is no clicker, whatever the source's 10 % says.
    peerlike = assist.VerifierRecord(seen=500, corrected=5)
    assert assist.check_power(peerlike, source_accuracy=0.9) < 0.2
    assert assist.check_power(peerlike, source_accuracy=0.9, crowd_rate=0.01) > 0.9


def test_accept_discount_is_the_evidence_of_a_check_capped_by_drawing_and_anchoring():
    assert assist.accept_discount(power=0.0, trust=0.9) == 0.0
    d = [assist.accept_discount(power=q, trust=0.9, anchoring=1.0) for q in (0.2, 0.5, 0.8)]
    assert d[0] < d[1] < d[2]
    assert d[1] == pytest.approx(np.log(2) / vote_weight(0.9))
    assert assist.accept_discount(power=1.0, trust=0.9) == 0.75
    assert assist.accept_discount(power=0.999, trust=0.6, anchoring=1.0) == 1.0


def test_replica_independence_mixes_own_shapes_and_discounted_accepts():
    c = assist.corrections(_prov(0, 0, 0.5), proposed=3, submitted=4)  # 2 accepted, 1 moved, 1 new
    assert assist.replica_independence(c, discount=0.1) == pytest.approx((2 + 2 * 0.1) / 4)
    empty = assist.corrections([], proposed=2, submitted=0)
    assert assist.replica_independence(empty, discount=0.0) == 1.0


# --- consensus with accepted proposals ------------------------------------------------------------

BOXES = [[10, 10, 60, 60], [100, 40, 160, 120], [200, 10, 260, 80]]


def _same(n: int, shift: float = 0.0) -> list[dict[int, FrameBoxes]]:
    rng = np.random.default_rng(0)
    return [
        {f: FrameBoxes.make(np.asarray(BOXES) + shift + rng.normal(0, 1, (3, 4))) for f in (0, 1)}
        for _ in range(n)
    ]


def _settles(anns, independence, trust=0.8):
    w = [vote_weight(trust)] * len(anns)
    c = box_consensus(anns, w, independence=independence)
    d = decide_overlap(
        submitted=len(anns),
        replica_target=len(anns),
        overlap_max=5,
        agreement=c.agreement,
        agreement_threshold=0.7,
    )
    return c, d.action


def test_everyone_clicking_accept_does_not_reach_agreement_by_itself():
    proposal = _same(1)[0]
    crowd = [proposal] * 3  # three replicas, all the proposal unchanged
    # Accept-only workers with no demonstrated checking (q = 0.1): a discount of ~0.08.
    d = assist.accept_discount(power=0.1, trust=0.8)
    c, action = _settles(crowd, [d] * 3)
    assert c.agreement < 0.7 and action == OverlapAction.ADD_REPLICA
    assert all(len(fb) == 0 for fb in c.frames.values())


def test_independent_agreement_still_reaches_agreement():
    c, action = _settles(_same(3), [1.0] * 3)
    assert c.agreement > 0.9 and action == OverlapAction.ACCEPT
    assert all(len(fb) == 3 for fb in c.frames.values())


def test_accepts_of_verifiers_who_demonstrably_check_do_count():
    d = assist.accept_discount(power=0.95, trust=0.8)
    _, action = _settles([_same(1)[0]] * 3, [d] * 3)
    assert action == OverlapAction.ACCEPT


def test_one_independent_replica_and_two_blind_accepts_do_not_settle_a_wrong_proposal():
    wrong = _same(2, shift=40.0)
    right = _same(1)
    _, action = _settles([wrong[0], wrong[1], right[0]], [0.08, 0.08, 1.0])
    assert action == OverlapAction.ADD_REPLICA  # the two accepts cannot outvote the one drawing


def test_full_independence_is_exactly_the_old_consensus():
    anns = _same(3) + _same(1, shift=3.0)
    w = [1.2, 0.7, 2.0, 1.0]
    old = box_consensus(anns, w)
    new = box_consensus(anns, w, independence=[1, 1, 1, 1])
    assert old.agreement == new.agreement
    for f in old.frames:
        assert np.array_equal(old.frames[f].boxes, new.frames[f].boxes)


# --- blind accepts --------------------------------------------------------------------------------

MEDIOCRE = _acc(assist.Comparison(GOLD, 700, 300))  # ~70 % accurate


def test_a_worker_accepting_far_more_than_the_proposals_are_right_is_flagged():
    t = assist.blind_accept_test(accepted_unchanged=98, proposed=100, source=MEDIOCRE)
    assert t.flagged and t.p_value < 1e-3
    sig = t.signal(key=5, worker=9)
    assert (sig.kind, sig.key, sig.worker) == (BLIND_ACCEPT, 5, 9)
    assert sig.evidence["accepted_unchanged"] == 98 and sig.evidence["proposed_shapes"] == 100


def test_an_honest_verifier_is_not_flagged():
    t = assist.blind_accept_test(accepted_unchanged=70, proposed=100, source=MEDIOCRE)
    assert not t.flagged and t.signal(key=1, worker=1) is None


def test_too_few_shapes_is_no_decision():
    t = assist.blind_accept_test(accepted_unchanged=30, proposed=30, source=MEDIOCRE)
    assert not t.flagged and t.p_value is None


def test_peers_accepting_as_much_protect_an_honest_verifier_of_good_proposals():
    # The source looks ~95 % against a noisy consensus, but routed proposals are ~99 % right.
    src = _acc(assist.Comparison(CONS, 1900, 100))
    alone = assist.blind_accept_test(accepted_unchanged=995, proposed=1000, source=src)
    peers = assist.blind_accept_test(
        accepted_unchanged=995, proposed=1000, source=src, peer_rate=0.99
    )
    assert alone.flagged and not peers.flagged


# --- time and pay ---------------------------------------------------------------------------------


def test_verify_time_starts_at_unassisted_and_moves_to_the_measured_mean():
    assert assist.verify_seconds([], unassisted_seconds=100.0) == 100.0
    few = assist.verify_seconds([30.0] * 5, unassisted_seconds=100.0)
    many = assist.verify_seconds([30.0] * 500, unassisted_seconds=100.0)
    assert few == pytest.approx(65.0)
    assert 30.0 < many < 31.0
    # Garbage times are ignored.
    assert assist.verify_seconds([float("nan"), -1.0, 0.0], unassisted_seconds=80.0) == 80.0


FEATURES = pricing.TaskFeatures("bbox", frames=5, objects=4, motion=0.02, clutter=0.2)
POLICY_PRICE = pricing.PricingPolicyData()


def test_verify_price_scales_with_time_and_keeps_the_floor_on_its_seconds():
    full = pricing.price_task(FEATURES, policy=POLICY_PRICE)
    same = assist.verify_price(FEATURES, policy=POLICY_PRICE, seconds=full.expected_seconds)
    assert same.price == full.price
    third = assist.verify_price(FEATURES, policy=POLICY_PRICE, seconds=full.expected_seconds / 3)
    assert third.price < full.price
    assert third.expected_seconds == pytest.approx(full.expected_seconds / 3)
    floor = pricing.floor_pay(seconds=third.expected_seconds, hourly=POLICY_PRICE.floor_hourly)
    assert third.price >= floor


def test_a_slow_verifier_is_topped_up_to_the_floor_on_measured_time():
    price = assist.verify_price(FEATURES, policy=POLICY_PRICE, seconds=20.0).price
    measured = 300.0  # far slower than priced
    split = pricing.split_pay(
        reserved=10_000,
        escrow_available=0,
        price=price,
        multiplier_bps=8_000,
        credit=1.0,
        floor_minimum=pricing.floor_pay(seconds=measured, hourly=POLICY_PRICE.floor_hourly),
        policy=POLICY_PRICE,
    )
    assert split.topup > 0
    assert pricing.effective_hourly(pay=split.pay, seconds=measured) >= POLICY_PRICE.floor_hourly


def test_rate_factor_defaults_to_the_old_price():
    a = pricing.price_task(FEATURES, policy=POLICY_PRICE)
    b = pricing.price_task(FEATURES, policy=POLICY_PRICE, rate_factor=1.0)
    assert a == b


def test_independence_of_a_replica_composes_the_rules():
    src = _acc(assist.Comparison(GOLD, 900, 100))
    clicker = assist.VerifierRecord(wrong_seen=10, wrong_fixed=0)
    checker = assist.VerifierRecord(wrong_seen=10, wrong_fixed=10)
    prov = _prov(0, 0, 0, 0)
    low = assist.independence_of(
        prov, proposed=4, submitted=4, record=clicker, source=src, trust=0.8
    )
    high = assist.independence_of(
        prov, proposed=4, submitted=4, record=checker, source=src, trust=0.8
    )
    assert low < 0.2 < 0.7 < high <= 0.75
    drawn = assist.independence_of(
        [], proposed=4, submitted=4, record=clicker, source=src, trust=0.8
    )
    assert drawn == 1.0  # nothing taken from the proposal: all its own


# --- track consensus with accepted proposals (a tracker's) ----------------------------------------


def test_tracks_accepted_from_a_proposal_do_not_settle_alone_but_drawn_ones_do():
    truth = moving_objects(n_objects=3, n_frames=10, seed=3)
    w = [vote_weight(0.8)] * 3
    blind = track_consensus([truth] * 3, w, independence=[0.08] * 3)
    drawn = track_consensus([truth] * 3, w, independence=[1.0] * 3)
    plain = track_consensus([truth] * 3, w)
    assert blind.agreement < 0.7 and all(len(fb) == 0 for fb in blind.frames.values())
    assert drawn.agreement > 0.99 and drawn.agreement == plain.agreement
