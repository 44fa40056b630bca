"""Worker trust: a Beta posterior on quality evidence, with older evidence weighing less. Pure.

Every piece of evidence is an outcome in [0, 1] — a gold score (F1 for boxes, the track score,
accuracy for classes), a reviewer's verdict (counts like gold), a person's rejection (a 0 that
counts like gold), or agreement with consensus — with
a weight by kind (agreement is weaker evidence than gold: the consensus itself can be wrong) and
an exponential decay by age (half-life :attr:`TrustParams.half_life_days`). The posterior is

    Beta(α₀ + Σ wᵢ·dᵢ·sᵢ,  β₀ + Σ wᵢ·dᵢ·(1 - sᵢ))

and trust is its mean. The prior (α₀, β₀) makes a new worker start at a "standard" trust that
a few gold failures pull down fast: a spammer scoring 0 on gold falls below the suspension
threshold after three gold microtasks.

Which evidence reaches a worker's platform-wide trust, and which only their standing with one
requester, is decided in :mod:`quality.standing`; the model here serves both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

GOLD = "gold"
REVIEW = "review"
AGREEMENT = "agreement"
REJECTION = "rejection"
KINDS = (GOLD, REVIEW, AGREEMENT, REJECTION)  # of trust evidence (``TrustEvidence.kind``)


@dataclass(frozen=True)
class TrustParams:
    prior_alpha: float = 3.0
    prior_beta: float = 1.0
    half_life_days: float = 30.0
    weights: dict[str, float] = field(
        default_factory=lambda: {GOLD: 1.0, REVIEW: 1.0, REJECTION: 1.0, AGREEMENT: 0.5}
    )
    suspend_below: float = 0.5
    # Evidence (in weight units: a gold counts 1, an agreement 0.5) needed before suspending.
    min_evidence_to_suspend: float = 3.0


DEFAULT_PARAMS = TrustParams()


@dataclass(frozen=True)
class Evidence:
    kind: str
    score: float
    at: datetime


@dataclass(frozen=True)
class TrustEstimate:
    trust: float
    alpha: float
    beta: float
    gold_count: int
    evidence_weight: float  # decayed
    evidence_count: float  # not decayed: how much has been seen at all

    @property
    def tier(self) -> str:
        return trust_tier(self.trust)


def _decay(age_days: float, half_life: float) -> float:
    return 0.5 ** (max(age_days, 0.0) / half_life)


def trust_estimate(
    evidence: Sequence[Evidence], *, now: datetime, params: TrustParams = DEFAULT_PARAMS
) -> TrustEstimate:
    """The posterior mean trust of ``evidence`` as of ``now``."""
    a = params.prior_alpha
    b = params.prior_beta
    gold = 0
    total = 0.0
    count = 0.0
    for ev in evidence:
        count += params.weights.get(ev.kind, 0.0)
        w = params.weights.get(ev.kind, 0.0) * _decay(
            (now - ev.at).total_seconds() / 86400.0, params.half_life_days
        )
        s = min(max(float(ev.score), 0.0), 1.0)
        a += w * s
        b += w * (1.0 - s)
        total += w
        if ev.kind in (GOLD, REVIEW):
            gold += 1
    return TrustEstimate(a / (a + b), a, b, gold, total, count)


def should_suspend(estimate: TrustEstimate, params: TrustParams = DEFAULT_PARAMS) -> bool:
    """Below the threshold, with enough evidence that it is not bad luck."""
    return (
        estimate.trust < params.suspend_below
        and estimate.evidence_count >= params.min_evidence_to_suspend
    )


# Tiers, lowest first: (name, lower bound). They name the bands a worker sees; the pay
# multiplier per band is payments' (its pricing policy's trust tiers read ``worker_trust``).
TIERS: tuple[tuple[str, float], ...] = (
    ("suspended", 0.0),
    ("probation", 0.5),
    ("standard", 0.7),
    ("trusted", 0.85),
    ("expert", 0.95),
)


def trust_tier(trust: float) -> str:
    name = TIERS[0][0]
    for tier, lower in TIERS:
        if trust >= lower:
            name = tier
    return name


@dataclass(frozen=True)
class TrustStep:
    evidence: Evidence
    trust_before: float
    trust_after: float

    @property
    def delta(self) -> float:
        return self.trust_after - self.trust_before


def trust_history(
    evidence: Sequence[Evidence], *, params: TrustParams = DEFAULT_PARAMS
) -> list[TrustStep]:
    """What moved trust: replay the evidence in time order, trust before and after each step."""
    ordered = sorted(evidence, key=lambda e: e.at)
    steps: list[TrustStep] = []
    before = params.prior_alpha / (params.prior_alpha + params.prior_beta)
    for i, ev in enumerate(ordered):
        after = trust_estimate(ordered[: i + 1], now=ev.at, params=params).trust
        steps.append(TrustStep(ev, before, after))
        before = after
    return steps


def vote_weight(trust: float, *, floor: float = 1e-3) -> float:
    """A worker's weight in consensus: the log-odds of their trust.

    For independent voters of accuracy p, the weighted majority with weights log(p / (1 - p)) is
    the most likely answer (Nitzan & Paroush, 1982): a trusted worker outweighs several doubtful
    ones, and a worker at 0.5 (a coin) weighs nothing.
    """
    t = min(max(float(trust), 1e-6), 1 - 1e-6)
    return max(float(np.log(t / (1 - t))), floor)
