"""Benchmark part (issue #14, ``bench/assist``): model-assisted routing against unassisted work.

Three arms on the same simulated job — the same generated clips (``tasks.synthetic``), the same
crowd (precise, sloppy, lazy, biased workers and a spammer), the same seed, the same gold:

1. **unassisted**: every microtask annotated from scratch at overlap 3 (dynamic overlap to 5,
   review beyond), gold at 10 %.
2. **good model** (shape accuracy 0.95): the source's accuracy is measured against gold and the
   independent consensus of full-annotation microtasks; once its lower bound meets the
   requester's bar (0.9), confident microtasks become verify-and-correct with one replica,
   escalating to full overlap when the verifier corrects much or their accepts carry too little
   evidence; 10 % of confident microtasks stay on full annotation as an audit.
3. **bad model** (accuracy 0.3): the same rules.

And a second crowd, where two of ten workers are *clickers* (they draw like precise workers, so
pass gold drawn from scratch, but accept every proposal without looking): unassisted against the
good model, to show what blind accepts cost and whether they reach the labels.

Everything is the project's own code: ``quality.simulator.simulate_assisted_run`` drives
``quality.assist``, ``quality.consensus``, ``quality.policy``, ``quality.trust``, and prices every
paid item (regular replicas, gold, reviews) with ``payments.pricing`` (``price_task``,
``calibration_factor``, ``split_pay`` with the fair-pay floor on the item's measured time).
Costs are integer minor units: pay plus platform fee, what the requester is charged.

Goals (issue #14): with the good model, cost per accepted microtask ≤ 0.6x unassisted at a mean
result IoU against the truth no lower than unassisted's minus 0.01; with the bad model, cost no
higher and IoU no lower than unassisted; and in every arm, every paid item's effective hourly pay
on measured time at or above the floor.

Pure computation, no database or services; single-threaded. The machine is shared with other
work while this runs: the timings are wall clock on a loaded machine (the figures themselves do
not depend on them).

The routing part of ``bench/assist`` (``make bench-assist``, ``bench/results/assist.json``).
Alone: ``python bench/_assist_routing.py [--quick]`` prints its JSON line and writes nothing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from payments.pricing import PricingPolicyData  # noqa: E402
from quality.assist import RoutePolicy  # noqa: E402
from quality.simulator import (  # noqa: E402
    BIASED,
    CLICKER,
    LAZY,
    PRECISE,
    SLOPPY,
    SPAMMER,
    clip_truths,
    simulate_assisted_run,
)

CROWD = {PRECISE: 4, SLOPPY: 2, LAZY: 2, BIASED: 1, SPAMMER: 1}
CLICKER_CROWD = {PRECISE: 3, SLOPPY: 2, LAZY: 2, BIASED: 1, SPAMMER: 1, CLICKER: 2}
FRAME = (640, 360)
BAR = 0.9
GOOD, BAD = 0.95, 0.3
ARMS = (
    ("unassisted", CROWD, None),
    ("good_model", CROWD, GOOD),
    ("bad_model", CROWD, BAD),
    ("clickers_unassisted", CLICKER_CROWD, None),
    ("clickers_good_model", CLICKER_CROWD, GOOD),
)


def _arm_figures(runs: list) -> dict:
    accepted = sum(r.accepted for r in runs)
    cost = sum(r.cost for r in runs)
    pay = sum(r.pay for r in runs)
    seconds = sum(r.paid_seconds for r in runs)
    ious = [x for r in runs for x in r.task_iou]
    hourly = [r.min_hourly for r in runs if r.min_hourly is not None]
    src = [r.source for r in runs if r.source is not None]
    routed = sum(r.routed for r in runs)
    return {
        "accepted_microtasks": accepted,
        "cost_minor_units": cost,
        "cost_per_accepted": round(cost / accepted, 2),
        "mean_iou": round(sum(ious) / len(ious), 4),
        "paid_replicas": sum(r.replicas for r in runs),
        "gold_items": sum(r.gold_items for r in runs),
        "reviewed": sum(r.reviewed for r in runs),
        "routed_verify": routed,
        "routed_share": round(routed / accepted, 3),
        "escalated": sum(r.escalated for r in runs),
        "audits": sum(r.audits for r in runs),
        "floor_topups": sum(r.topups for r in runs),
        "worker_pay": pay,
        "paid_hours": round(seconds / 3600, 2),
        "effective_hourly": round(pay * 3600 / seconds) if seconds else None,
        "min_item_hourly": min(hourly) if hourly else None,
        "blind_accept_flags": sorted({w for r in runs for w in r.flags}),
        "suspended_per_seed": [r.suspended for r in runs],
        "source_accuracy_mean": [round(s.mean, 3) for s in src],
        "source_accuracy_lower": [round(s.lower, 3) for s in src],
        "verify_time_ratio_estimate": [
            round(r.verify_ratio, 3) for r in runs if r.verify_ratio is not None
        ],
        "verify_time_ratio_measured": [
            round(r.measured_verify_ratio, 3) for r in runs if r.measured_verify_ratio is not None
        ],
        "per_seed_cost_per_accepted": [round(r.cost_per_accepted, 2) for r in runs],
        "per_seed_mean_iou": [round(r.mean_iou, 4) for r in runs],
    }


def run(quick: bool = False) -> dict:
    n_tasks, seeds = (120, (1,)) if quick else (400, (1, 2, 3))
    policy = PricingPolicyData()
    route = RoutePolicy()
    started = time.perf_counter()
    arms: dict[str, list] = {name: [] for name, _, _ in ARMS}
    for seed in seeds:
        truths = clip_truths(n_tasks, seed=seed)
        gold = clip_truths(80, seed=seed + 1000)
        for name, crowd, accuracy in ARMS:
            arms[name].append(
                simulate_assisted_run(
                    crowd_counts=crowd,
                    truths=truths,
                    gold_truths=gold,
                    frame_size=FRAME,
                    model_accuracy=accuracy,
                    bar=BAR,
                    route_policy=route,
                    pricing_policy=policy,
                    overlap_min=3,
                    overlap_max=5,
                    gold_rate=0.1,
                    seed=seed,
                    arm=name,
                )
            )
    figures = {name: _arm_figures(runs) for name, runs in arms.items()}
    base = figures["unassisted"]
    good = figures["good_model"]
    bad = figures["bad_model"]
    good_ratio = good["cost_per_accepted"] / base["cost_per_accepted"]
    bad_ratio = bad["cost_per_accepted"] / base["cost_per_accepted"]
    clickers = figures["clickers_good_model"]
    clickers_base = figures["clickers_unassisted"]
    floor = policy.floor_hourly
    min_hourly = min(f["min_item_hourly"] for f in figures.values())
    goals = {
        "good_model_cost_ratio": {
            "value": round(good_ratio, 3),
            "goal": "≤ 0.6 (cost per accepted microtask vs unassisted)",
            "met": good_ratio <= 0.6,
        },
        "good_model_iou_delta": {
            "value": round(good["mean_iou"] - base["mean_iou"], 4),
            "goal": "≥ -0.01 (mean IoU vs unassisted)",
            "met": good["mean_iou"] >= base["mean_iou"] - 0.01,
        },
        "bad_model_cost_ratio": {
            "value": round(bad_ratio, 3),
            "goal": "≤ 1.0",
            "met": bad["cost_per_accepted"] <= base["cost_per_accepted"],
        },
        "bad_model_iou_delta": {
            "value": round(bad["mean_iou"] - base["mean_iou"], 4),
            "goal": "≥ 0",
            "met": bad["mean_iou"] >= base["mean_iou"],
        },
        "clickers_good_model_iou_delta": {
            "value": round(clickers["mean_iou"] - clickers_base["mean_iou"], 4),
            "goal": "≥ -0.01 (20 % of the crowd accepts without looking)",
            "met": clickers["mean_iou"] >= clickers_base["mean_iou"] - 0.01,
        },
        "clickers_good_model_cost_ratio": {
            "value": round(clickers["cost_per_accepted"] / clickers_base["cost_per_accepted"], 3),
            "goal": "≤ 1.0 (blind accepts escalate; they must not make assistance dearer)",
            "met": clickers["cost_per_accepted"] <= clickers_base["cost_per_accepted"],
        },
        "min_effective_hourly_every_arm": {
            "value": min_hourly,
            "goal": f"≥ {floor} (the fair-pay floor, minor units per hour, on measured time)",
            "met": min_hourly >= floor,
        },
    }
    return {
        "goals": goals,
        "figures": {
            **figures,
            "setup": {
                "microtasks_per_seed": n_tasks,
                "seeds": list(seeds),
                "crowd": CROWD,
                "clicker_crowd": CLICKER_CROWD,
                "frames_per_microtask": 5,
                "objects_per_clip": 4,
                "good_model_accuracy": GOOD,
                "bad_model_accuracy": BAD,
                "requester_bar": BAR,
                "route_policy": route.__dict__,
                "floor_hourly": floor,
                "platform_fee_bps": policy.platform_fee_bps,
                "wall_seconds": round(time.perf_counter() - started, 1),
                "note": "pure simulation; wall time measured on a machine shared with other work",
            },
        },
    }


if __name__ == "__main__":
    from bench._common import report

    quick = "--quick" in sys.argv[1:]
    report("assist_routing", run(quick=quick), write=False)
