"""The crowd simulator's model-assisted parts: the simulated model, verifiers, and whole runs with
and without routing on the same job (issue #14)."""

from __future__ import annotations

import numpy as np
import pytest

from payments.pricing import PricingPolicyData
from quality import assist
from quality.boxes import iou_matrix
from quality.scoring import score_boxes
from quality.simulator import (
    BIASED,
    CLICKER,
    FALSE_ALARM_ID,
    LAZY,
    PRECISE,
    SLOPPY,
    SPAMMER,
    SimulatedModel,
    SimulatedWorker,
    clip_truths,
    plant_error,
    simulate_assisted_run,
    verify,
)

FRAME = (640, 360)
TRUTHS = clip_truths(60, seed=11)


def _proposals(accuracy: float, seed: int = 0):
    model = SimulatedModel(accuracy, seed=seed)
    return [model.propose(t, frame_size=FRAME) for t in TRUTHS]


def test_model_accuracy_is_what_was_set():
    for accuracy in (0.3, 0.95):
        comps = [
            assist.compare(p.annotation, t, kind="gold")
            for p, t in zip(_proposals(accuracy), TRUTHS, strict=True)
        ]
        hits = sum(c.hits for c in comps)
        total = sum(c.hits + c.misses for c in comps)
        # Misses and false alarms both count against it, so it sits a little under the setting.
        assert accuracy - 0.12 < hits / total <= accuracy + 0.03


def test_wrong_proposals_are_less_confident_on_average_but_not_always():
    right, wrong = [], []
    for p, t in zip(_proposals(0.6, seed=3), TRUTHS, strict=True):
        tb = t[0]
        pb = p.annotation[0]
        iou = iou_matrix(pb.boxes, tb.boxes)
        for j, tid in enumerate(pb.ids.tolist()):
            same = np.flatnonzero(tb.ids == tid)
            ok = tid < FALSE_ALARM_ID and len(same) and iou[j, same[0]] >= 0.5
            (right if ok else wrong).append(p.confidence[tid])
    assert np.mean(wrong) < np.mean(right) - 0.2
    # Not always: some wrong proposals pass a 0.6 confidence gate, some right ones do not.
    assert any(c >= 0.6 for c in wrong) and any(c < 0.6 for c in right)


def test_a_spammer_accepts_everything_unchanged_and_fast():
    prop = _proposals(0.6)[0]
    rng = np.random.default_rng(0)
    v = verify(TRUTHS[0], prop, profile=SPAMMER, rng=rng, frame_size=FRAME)
    assert len(v.provenance) == v.proposed == v.submitted
    assert all(p["unchanged"] for p in v.provenance)
    drawn = SimulatedWorker("p", PRECISE, seed=1)
    assert v.seconds < 0.1 * drawn.seconds(drawn.annotate(TRUTHS[0], frame_size=FRAME))


def test_a_careful_verifier_fixes_wrong_proposals_faster_than_drawing():
    props = _proposals(0.6, seed=5)
    rng = np.random.default_rng(1)
    worker = SimulatedWorker("p", PRECISE, seed=2)
    before, after, verify_s, draw_s = [], [], [], []
    for p, t in zip(props[:30], TRUTHS[:30], strict=True):
        v = verify(t, p, profile=PRECISE, rng=rng, frame_size=FRAME)
        before.append(score_boxes(t, p.annotation).score)
        after.append(score_boxes(t, v.annotation).score)
        verify_s.append(v.seconds)
        draw_s.append(worker.seconds(worker.annotate(t, frame_size=FRAME)))
    assert np.mean(after) > np.mean(before) + 0.2
    assert np.mean(after) > 0.85
    assert np.mean(verify_s) < np.mean(draw_s)


def test_correction_time_grows_with_how_wrong_the_proposal_is():
    good = _proposals(0.95, seed=2)
    bad = _proposals(0.3, seed=2)
    rng = np.random.default_rng(4)

    def mean_seconds(props):
        return np.mean(
            [
                verify(t, p, profile=PRECISE, rng=rng, frame_size=FRAME).seconds
                for p, t in zip(props, TRUTHS, strict=True)
            ]
        )

    assert mean_seconds(bad) > 1.5 * mean_seconds(good)


def test_a_lazy_verifier_leaves_some_wrong_proposals():
    props = _proposals(0.5, seed=8)
    rng = np.random.default_rng(9)
    precise = np.mean(
        [
            score_boxes(t, verify(t, p, profile=PRECISE, rng=rng, frame_size=FRAME).annotation).f1
            for p, t in zip(props, TRUTHS, strict=True)
        ]
    )
    lazy = np.mean(
        [
            score_boxes(t, verify(t, p, profile=LAZY, rng=rng, frame_size=FRAME).annotation).f1
            for p, t in zip(props, TRUTHS, strict=True)
        ]
    )
    assert lazy < precise - 0.05


def test_planted_error_moves_one_right_track_off_its_object():
    prop = _proposals(0.95, seed=1)[0]
    shown = plant_error(prop, TRUTHS[0], rng=np.random.default_rng(0), frame_size=FRAME)
    assert score_boxes(TRUTHS[0], shown.annotation).tp < score_boxes(TRUTHS[0], prop.annotation).tp


# --- whole runs: the same job, crowd and seed, three arms -----------------------------------------

CROWD = {PRECISE: 4, SLOPPY: 2, LAZY: 2, BIASED: 1, SPAMMER: 1}
JOB = clip_truths(150, seed=21)
GOLD = clip_truths(60, seed=22)


def _run(accuracy, crowd=CROWD):
    return simulate_assisted_run(
        crowd_counts=crowd,
        truths=JOB,
        gold_truths=GOLD,
        frame_size=FRAME,
        model_accuracy=accuracy,
        bar=0.9,
        seed=4,
    )


@pytest.fixture(scope="module")
def arms():
    return {"none": _run(None), "good": _run(0.95), "bad": _run(0.3)}


def test_a_bad_model_never_earns_routing_and_changes_nothing(arms):
    none, bad = arms["none"], arms["bad"]
    assert bad.routed == 0 and bad.source.lower < 0.5
    assert bad.cost == none.cost and bad.task_iou == none.task_iou


def test_a_good_model_routes_confident_work_cheaper_at_no_loss_of_accuracy(arms):
    none, good = arms["none"], arms["good"]
    assert good.routed > 0.3 * good.accepted and good.audits > 0
    assert good.cost_per_accepted < 0.75 * none.cost_per_accepted
    assert good.mean_iou >= none.mean_iou - 0.01
    assert good.source.lower >= 0.9
    # Verify time is estimated from what was measured, well under drawing.
    assert good.verify_ratio == pytest.approx(good.measured_verify_ratio, abs=0.1)
    assert good.measured_verify_ratio < 0.6


def test_pay_never_falls_below_the_floor_on_measured_time_in_any_arm(arms):
    floor = PricingPolicyData().floor_hourly
    for run in arms.values():
        assert run.min_hourly >= floor
        assert run.hourly >= floor


def test_without_the_accept_discount_blind_accepts_would_settle_verify_work():
    """The rule matters in the run: with anchoring 0 every unchanged accept weighs nothing, and a
    verify microtask whose verifier accepted everything escalates."""
    strict = simulate_assisted_run(
        crowd_counts=CROWD,
        truths=JOB[:80],
        gold_truths=GOLD,
        frame_size=FRAME,
        model_accuracy=0.95,
        route_policy=assist.RoutePolicy(anchoring=0.0),
        seed=4,
    )
    normal = simulate_assisted_run(
        crowd_counts=CROWD,
        truths=JOB[:80],
        gold_truths=GOLD,
        frame_size=FRAME,
        model_accuracy=0.95,
        seed=4,
    )
    assert strict.routed > 0
    assert strict.escalated > normal.escalated


def test_clickers_who_accept_without_looking_escalate_and_do_not_reach_the_labels(arms):
    crowd = {PRECISE: 3, SLOPPY: 2, LAZY: 2, BIASED: 1, SPAMMER: 1, CLICKER: 2}
    base, assisted = _run(None, crowd), _run(0.95, crowd)
    assert assisted.mean_iou >= base.mean_iou - 0.01
    # Their accepts carry little evidence once planted gold errors measured them: escalations.
    assert assisted.escalated > arms["good"].escalated
    assert assisted.cost_per_accepted < base.cost_per_accepted
