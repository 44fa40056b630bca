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


class SlotPlanner:
    """The plan, one microtask at a time (for a job read through a cursor): ``offer`` each
    microtask's ``(reservation per slot, slots missing)`` in claim order; it answers whether that
    microtask is funded, and after the first refusal refuses the rest. ``plan()`` is the result."""

    def __init__(
        self,
        *,
        available: int,
        gold_price: int,
        gold_rate: float,
        existing_regular: int,
        existing_gold: int,
    ) -> None:
        self.available, self.gold_price, self.gold_rate = available, gold_price, gold_rate
        self.existing_regular, self.existing_gold = existing_regular, existing_gold
        self.cost = self.regular = self.covered = 0
        self.full = False

    def _gold_needed(self, regular_total: int) -> int:
        if self.gold_rate <= 0:
            return 0
        needed = math.ceil(regular_total * self.gold_rate / (1.0 - self.gold_rate))
        return max(0, needed - self.existing_gold)

    def offer(self, per_slot: int, count: int) -> bool:
        if self.full:
            return False
        add = per_slot * count
        gold = self._gold_needed(self.existing_regular + self.regular + count) * self.gold_price
        if self.cost + add + gold > self.available:
            self.full = True
            return False
        self.cost += add
        self.regular += count
        self.covered += 1
        return True

    def plan(self) -> SlotPlan:
        n_gold = self._gold_needed(self.existing_regular + self.regular)
        return SlotPlan(self.covered, self.regular, n_gold, self.cost + n_gold * self.gold_price)


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
    planner = SlotPlanner(
        available=available,
        gold_price=gold_price,
        gold_rate=gold_rate,
        existing_regular=existing_regular,
        existing_gold=existing_gold,
    )
    for per_slot, count in missing:
        if not planner.offer(per_slot, count):
            break
    return planner.plan()
