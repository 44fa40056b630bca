"""Which replica slots an amount of escrow pays for (pure: no Django).

One rule for two callers: publishing (``tasks.claiming._fill_slots`` creates the slots this plan
names) and the funding page (``tasks.quoting.budget_coverage`` tells the requester how much of
the work a payment will publish). Microtasks are funded whole (all their missing replicas or
none), in claim order, and stop at the first one that does not fit, so the covered microtasks
are always the first ``covered`` of the list; every funded batch of ordinary slots brings its
share of gold-pool slots (``gold_rate`` of all the job's slots).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SlotPlan:
    covered: int  # microtasks funded: the first ``covered`` of the list
    regular_slots: int
    gold_slots: int
    cost: int  # minor units reserved for all of them


def plan_slots(
    *,
    missing: Sequence[tuple[int, int]],
    available: int,
    gold_price: int,
    gold_rate: float,
    existing_regular: int,
    existing_gold: int,
) -> SlotPlan:
    """``missing``: per microtask in claim order, ``(reservation per slot, slots missing)``."""

    def gold_needed(regular_total: int) -> int:
        if gold_rate <= 0:
            return 0
        return max(0, math.ceil(regular_total * gold_rate / (1.0 - gold_rate)) - existing_gold)

    cost = regular = covered = 0
    for per_slot, count in missing:
        add = per_slot * count
        gold = gold_needed(existing_regular + regular + count) * gold_price
        if cost + add + gold > available:
            break
        cost += add
        regular += count
        covered += 1
    n_gold = gold_needed(existing_regular + regular)
    return SlotPlan(covered, regular, n_gold, cost + n_gold * gold_price)
