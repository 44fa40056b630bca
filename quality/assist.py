"""Model-assisted work: how far a proposal source is trusted, which microtasks become
verify-and-correct, how an accepted proposal counts in consensus, who accepts without looking,
and what verify-and-correct work costs. Pure: plain numbers and :mod:`quality.boxes` data in,
decisions with their reasons out.

Read this before changing anything: every rule here decides either how much human checking a
label gets or what a worker is paid for it.

**Inputs, as the proposal store and submissions record them.** A proposal is per microtask,
with per-shape confidences; a submission records per shape a provenance item
``{"proposal": id, "index": i, "source": str, "moved": 1 - IoU(submitted, proposed),
"unchanged": bool}`` (shapes drawn from scratch carry none). The functions below take those
items (or counts made from them), never rows.

**1. Source accuracy** (:func:`source_accuracy`). A proposal is compared with a reference: gold
(the answer the model never saw) or the consensus of *full-annotation* microtasks, where workers
did not see the proposal (verify-and-correct consensus is anchored on the proposal, so it would
flatter it, and is not used). Comparisons match shapes at the job's IoU threshold (:func:`compare`):
a hit is a proposed shape matched to a reference shape; a miss is a proposed shape that matched
nothing (a false alarm) or a reference shape nobody proposed (a missed object). Accuracy is
``hits / (hits + misses)``, and the estimate a Beta posterior

    Beta(α₀ + Σ wₖ·hitsₖ,  β₀ + Σ wₖ·missesₖ)

with gold weighing 1 and consensus 0.5 (the consensus can itself be wrong: the same weights as
worker trust, :data:`quality.trust.TrustParams.weights`). Routing asks its *lower* credible bound
(5 % quantile), so a source is trusted for what it has shown, not for what it may be. Shapes of
one microtask are not independent trials (a hard clip fails several at once); the bound is
therefore optimistic by roughly the number of shapes per microtask in its effective sample size,
which the audit stream below keeps measuring.

**2. Routing** (:func:`decide_route`). A microtask becomes verify-and-correct when (a) the source's
lower bound, measured on microtasks at least as confident, meets the requester's bar
(``Job.assist_accuracy_bar``), (b) the microtask's proposal confidence (its least confident
shape: one bad box spoils the microtask) reaches the policy's threshold, and (c) it is not drawn
for audit: a fixed fraction of confident microtasks stays on full annotation with the proposal
hidden, so the accuracy of the source *on the microtasks it is trusted with* keeps being measured
against independent consensus. The audit draw is a hash of the microtask's key, not a random
number: the same microtask gets the same answer on every call and every process. A
verify-and-correct microtask has ``verify_overlap`` replicas (default 1). Gold keeps being
served as the microtask it poses as would be: when that is verify-and-correct, with the model's
proposal shown and one right shape moved off its object (a planted error), so it checks the
worker's checking; the model is scored on every gold item against its own, unplanted proposal.

**3. Verify outcome** (:func:`decide_verify`). A verifier who corrects much of a proposal (share
of proposed shapes moved beyond a small tolerance, deleted, plus shapes added, over all shapes
involved: :func:`correction_share`) shows the model was wrong here: the microtask escalates to full
annotation at the job's ``overlap_min``. Otherwise the replicas' consensus, weighted as in 4,
decides: agreement settles the microtask, and what would otherwise add a replica escalates it to
full annotation instead (its verifiers' accepts did not carry enough evidence).

**4. Weight of an accepted proposal** (:func:`accept_discount`). A replica that accepts a
proposal unchanged is not an independent draw: if it were counted as one, "everyone clicked
accept" would look like perfect agreement. What an accept does tell is that a verifier who looked
found nothing to fix. Let ``q`` be the verifier's *check power*, the chance that they correct a
wrong proposal. Then, of a proposal that is right with probability ``p``,

    P(accept | right) ≈ 1,   P(accept | wrong) = 1 - q,

so an accept multiplies the odds that the proposal is right by ``1 / (1 - q)``: it is worth
``log(1 / (1 - q))`` in log-odds, whatever ``p`` is. A worker's weight in consensus is already
the log-odds of their trust (:func:`quality.trust.vote_weight`), so the accept counts as
``min(vote_weight(trust), log(1 / (1 - q)))`` — no more than the worker would weigh drawing it —
further capped by ``anchoring`` (0.75 by default: a verifier's "good enough" is looser than their
own drawing; a policy choice, not a measurement). The discount is that weight over
``vote_weight(trust)``.

``q`` is estimated from the worker's accept-vs-correct behaviour against the source's accuracy
(:func:`check_power`): an honest verifier corrects at least the wrong proposals, a share ``1 - p``
of what they see, so ``q ≈ corrections / (1 - p)``, capped at 1 (with ``1 - p`` lowered to the
crowd's pooled correction rate when that is lower: routed proposals are the confident ones). On
confident proposals errors are rare, so this takes hundreds of shapes to tell a checker from a
clicker; gold served for verification therefore carries a *planted* error (a proposal moved off
its object), which measures ``q`` directly within a few gold items and is preferred once there
is enough of it. A worker who never
corrects has ``q → 0`` and their accepts weigh nothing: a crowd of them cannot settle a microtask,
while a crowd of verifiers who demonstrably fix what is wrong can.

In consensus (:func:`quality.consensus.box_consensus`, ``independence``), a replica's discount
scales its weight as evidence, and a cluster is kept only when its evidence holds a strict
majority of *everyone's* trust: discounted accepts alone fall short.

**5. Blind accepts** (:func:`blind_accept_test`). An honest verifier leaves a proposal unchanged
at most about as often as the proposals are right. A worker whose unchanged-accept rate is far
above the source's measured accuracy (one-sided exact binomial test against the accuracy's upper
bound, or the peers' pooled accept rate when higher, plus a margin, with a minimum sample) is
flagged ``blind_accept`` (:mod:`quality.fraud`'s
vocabulary): evidence for an admin, not a verdict.

**6. Time and pay** (:func:`verify_seconds`, :func:`verify_price`). Verify-and-correct time is
estimated per job from measured work, starting from the unassisted estimate (so the first
verifiers are priced as if they drew) and moving to the mean of measured verify times as they
come: the mean, not the median, because the fair-pay floor is on total hours and a median
under-prices skewed work. The price is :func:`payments.pricing.price_task` scaled by the ratio of
the two times; the worker's pay is still topped up to the floor on *their* measured time by
:func:`payments.pricing.split_pay` — the one floor rule, not a second one.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from scipy.stats import beta as beta_dist
from scipy.stats import binom

from payments import pricing

from .boxes import Annotation
from .fraud import BLIND_ACCEPT, Signal
from .scoring import score_boxes
from .trust import AGREEMENT, DEFAULT_PARAMS, GOLD, vote_weight

CONSENSUS = AGREEMENT  # a comparison against consensus weighs like agreement evidence
# The weights worker trust gives the same two kinds of evidence (one home: quality.trust).
SOURCE_WEIGHTS: Mapping[str, float] = {
    GOLD: DEFAULT_PARAMS.weights[GOLD],
    CONSENSUS: DEFAULT_PARAMS.weights[AGREEMENT],
}


# --- 1. source accuracy ----------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One proposal against one reference: ``kind`` is ``gold`` or ``agreement`` (consensus)."""

    kind: str
    hits: int
    misses: int
    confidence: float = 1.0  # the microtask's proposal confidence (:func:`proposal_confidence`)


def compare(
    proposal: Annotation,
    reference: Annotation,
    *,
    kind: str,
    confidence: float = 1.0,
    iou_threshold: float = 0.5,
) -> Comparison:
    """Hits and misses of ``proposal`` against ``reference`` on the reference's frames."""
    s = score_boxes(reference, proposal, iou_threshold=iou_threshold)
    return Comparison(kind, int(s.tp), int(s.fp + s.fn), float(confidence))


def proposal_confidence(confidences: Iterable[float]) -> float:
    """A microtask's confidence: its least confident shape; 0 for a proposal with no shape (an
    empty proposal claims "nothing here", which the model cannot be confident of)."""
    values = [float(c) for c in confidences]
    if not values:
        return 0.0
    return max(0.0, min(1.0, min(values)))


@dataclass(frozen=True)
class SourceAccuracy:
    alpha: float
    beta: float
    mean: float
    lower: float  # credible lower bound (``1 - credibility`` quantile)
    upper: float  # credible upper bound
    gold_shapes: int
    consensus_shapes: int


def source_accuracy(
    comparisons: Iterable[Comparison],
    *,
    min_confidence: float = 0.0,
    prior: tuple[float, float] = (1.0, 1.0),
    weights: Mapping[str, float] = SOURCE_WEIGHTS,
    credibility: float = 0.95,
) -> SourceAccuracy:
    """The Beta posterior of the source's shape accuracy on microtasks at least
    ``min_confidence`` confident (see the module docstring, 1)."""
    a, b = prior
    gold = cons = 0
    for c in comparisons:
        if c.confidence < min_confidence:
            continue
        w = float(weights.get(c.kind, 0.0))
        a += w * max(0, c.hits)
        b += w * max(0, c.misses)
        if c.kind == GOLD:
            gold += c.hits + c.misses
        elif c.kind == CONSENSUS:
            cons += c.hits + c.misses
    tail = 1.0 - credibility
    return SourceAccuracy(
        alpha=a,
        beta=b,
        mean=a / (a + b),
        lower=float(beta_dist.ppf(tail, a, b)),
        upper=float(beta_dist.ppf(credibility, a, b)),
        gold_shapes=gold,
        consensus_shapes=cons,
    )


# --- 2. routing ------------------------------------------------------------------------------


class Route(StrEnum):
    FULL = "full"  # annotate from scratch, proposal hidden
    VERIFY = "verify"  # verify-and-correct the proposal


@dataclass(frozen=True)
class RoutePolicy:
    confidence_threshold: float = 0.6
    verify_overlap: int = 1
    audit_fraction: float = 0.1
    escalate_above: float = 0.3  # correction share beyond which a verify microtask escalates
    moved_tolerance: float = 0.1  # 1 - IoU under which a moved shape counts as accepted
    anchoring: float = 0.75  # the most an unchanged accept weighs, relative to drawing


DEFAULT_POLICY = RoutePolicy()


@dataclass(frozen=True)
class RouteDecision:
    route: Route
    replica_target: int
    audit: bool
    reason: str


def audit_draw(key: object) -> float:
    """A uniform number in [0, 1) fixed by ``key`` (e.g. ``(job_id, microtask_id)``)."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def decide_route(
    *,
    source: SourceAccuracy | None,
    bar: float,
    confidence: float,
    overlap_min: int,
    audit_key: object,
    policy: RoutePolicy = DEFAULT_POLICY,
) -> RouteDecision:
    """Full annotation or verify-and-correct for one microtask (module docstring, 2).

    ``source`` is :func:`source_accuracy` at ``min_confidence=policy.confidence_threshold``
    (None: no proposal source on this job).
    """
    full = overlap_min
    if source is None:
        return RouteDecision(Route.FULL, full, False, "no proposal source")
    if source.lower < bar:
        return RouteDecision(
            Route.FULL,
            full,
            False,
            f"source accuracy lower bound {source.lower:.3f} < the bar {bar:.3f}",
        )
    if confidence < policy.confidence_threshold:
        return RouteDecision(
            Route.FULL,
            full,
            False,
            f"proposal confidence {confidence:.2f} < {policy.confidence_threshold:.2f}",
        )
    if audit_draw(audit_key) < policy.audit_fraction:
        return RouteDecision(
            Route.FULL, full, True, f"audit: one of {policy.audit_fraction:.0%} kept on full work"
        )
    return RouteDecision(
        Route.VERIFY,
        min(policy.verify_overlap, full),
        False,
        f"source lower bound {source.lower:.3f} ≥ {bar:.3f}, confidence {confidence:.2f}",
    )


# --- 3. verify outcome -----------------------------------------------------------------------


@dataclass(frozen=True)
class Corrections:
    proposed: int
    accepted: int  # unchanged or moved within tolerance
    moved: int  # moved beyond tolerance
    deleted: int
    added: int

    @property
    def share(self) -> float:
        involved = self.proposed + self.added
        if involved == 0:
            return 0.0
        return (self.moved + self.deleted + self.added) / involved

    @property
    def unchanged_share(self) -> float:
        """Of the shapes submitted, the share that are accepted proposals."""
        submitted = self.accepted + self.moved + self.added
        return self.accepted / submitted if submitted else 0.0


def corrections(
    provenance: Sequence[Mapping], *, proposed: int, submitted: int, tolerance: float = 0.1
) -> Corrections:
    """What a verifier did with a proposal of ``proposed`` shapes, from the provenance items of
    their ``submitted`` shapes (shapes without an item were drawn from scratch)."""
    kept = len(provenance)
    accepted = sum(
        1 for p in provenance if p.get("unchanged") or float(p.get("moved", 1.0)) <= tolerance
    )
    return Corrections(
        proposed=proposed,
        accepted=accepted,
        moved=kept - accepted,
        deleted=max(0, proposed - kept),
        added=max(0, submitted - kept),
    )


def correction_share(
    provenance: Sequence[Mapping], *, proposed: int, submitted: int, tolerance: float = 0.1
) -> float:
    return corrections(
        provenance, proposed=proposed, submitted=submitted, tolerance=tolerance
    ).share


class VerifyAction(StrEnum):
    CONSENSUS = "consensus"  # settle by the (weighted) consensus of the verify replicas
    ESCALATE = "escalate"  # the model was wrong here: full annotation at overlap_min


@dataclass(frozen=True)
class VerifyDecision:
    action: VerifyAction
    replica_target: int
    reason: str


def decide_verify(
    *,
    shares: Sequence[float],
    replica_target: int,
    overlap_min: int,
    policy: RoutePolicy = DEFAULT_POLICY,
) -> VerifyDecision:
    """After a verify replica: escalate when any verifier corrected more than the policy allows."""
    worst = max(shares, default=0.0)
    if worst > policy.escalate_above:
        return VerifyDecision(
            VerifyAction.ESCALATE,
            max(overlap_min, replica_target),
            f"a verifier corrected {worst:.0%} of the proposal (> {policy.escalate_above:.0%})",
        )
    return VerifyDecision(
        VerifyAction.CONSENSUS, replica_target, f"corrections at most {worst:.0%}"
    )


# --- 4. the weight of an accept ----------------------------------------------------------------


@dataclass(frozen=True)
class VerifierRecord:
    """A worker's behaviour on proposals (this source): counts of proposed shapes."""

    # Regular work, counted as the source's accuracy is (hits over hits and misses): shapes
    # proposed plus shapes the verifier added (the model's misses), and of those, moved beyond
    # tolerance, deleted or added.
    seen: int = 0
    corrected: int = 0
    # Gold: proposed shapes known wrong (planted or the model's own errors), and of them fixed.
    wrong_seen: int = 0
    wrong_fixed: int = 0


def check_power(
    record: VerifierRecord,
    *,
    source_accuracy: float,
    crowd_rate: float | None = None,
    prior_power: float = 0.8,
    prior_errors: float = 3.0,
    min_wrong: int = 5,
) -> float:
    """The chance the worker corrects a wrong proposal (module docstring, 4).

    Directly from gold once it has shown the worker ``min_wrong`` wrong proposals (gold served
    for verification carries a planted error, so this comes fast). Before that, from their
    correction rate over the error rate they should have met: the source's (``1 -
    source_accuracy``), or the crowd's pooled correction rate on regular work when lower — the
    proposals routed to verification are the confident, more accurate ones, and a source measured
    against a noisy consensus looks worse than it is. The prior is worth ``prior_errors``
    *expected errors* at ``prior_power`` (so ``prior_errors / err`` shapes): a rate says nothing
    until the worker has met a few wrong proposals, and a new verifier is presumed to look until
    their record or gold says otherwise.
    """
    if record.wrong_seen >= min_wrong:
        return (record.wrong_fixed + prior_power * 2) / (record.wrong_seen + 2)
    err = min(max(1.0 - float(source_accuracy), 1e-3), 1.0)
    if crowd_rate is not None:
        err = min(err, max(float(crowd_rate), 1e-3))
    strength = prior_errors / err
    rate = (record.corrected + strength * prior_power * err) / (record.seen + strength)
    return min(1.0, rate / err)


def accept_discount(*, power: float, trust: float, anchoring: float = 0.75) -> float:
    """An unchanged accept's weight as a share of the worker's drawing weight, in [0, anchoring]."""
    q = min(max(float(power), 0.0), 1.0 - 1e-9)
    full = vote_weight(trust)
    evidence = -math.log1p(-q)
    return max(0.0, min(anchoring, evidence / full))


def replica_independence(c: Corrections, *, discount: float) -> float:
    """A replica's independence in [0, 1]: its own shapes count 1, its unchanged accepts
    ``discount`` (a replica with no shapes is its own judgment: 1)."""
    submitted = c.accepted + c.moved + c.added
    if submitted == 0:
        return 1.0
    return (c.moved + c.added + c.accepted * discount) / submitted


def independence_of(
    provenance: Sequence[Mapping],
    *,
    proposed: int,
    submitted: int,
    record: VerifierRecord,
    source: SourceAccuracy,
    trust: float,
    crowd_rate: float | None = None,
    policy: RoutePolicy = DEFAULT_POLICY,
) -> float:
    """A verify replica's ``independence`` for :func:`quality.consensus.box_consensus`, from its
    provenance items and its worker's record on this source (the one call scoring needs).

    The crowd's correction rate lowers the error a verifier should meet no further than the
    source's credible upper bound allows (``1 - source.upper``): a crowd of clickers corrects
    nothing, and would otherwise make each of them look like a checker of a perfect source."""
    if crowd_rate is not None:
        crowd_rate = max(float(crowd_rate), 1.0 - source.upper)
    power = check_power(record, source_accuracy=source.mean, crowd_rate=crowd_rate)
    discount = accept_discount(power=power, trust=trust, anchoring=policy.anchoring)
    c = corrections(
        provenance, proposed=proposed, submitted=submitted, tolerance=policy.moved_tolerance
    )
    return replica_independence(c, discount=discount)


# --- 5. blind accepts --------------------------------------------------------------------------


@dataclass(frozen=True)
class AcceptTest:
    flagged: bool
    n: int
    accepted: int
    rate: float
    expected_at_most: float
    p_value: float | None
    reason: str
    evidence: dict = field(default_factory=dict)

    def signal(self, *, key: int, worker: int) -> Signal | None:
        """The fraud signal to record (None when not flagged)."""
        return Signal(key, worker, BLIND_ACCEPT, self.evidence) if self.flagged else None


def blind_accept_test(
    *,
    accepted_unchanged: int,
    proposed: int,
    source: SourceAccuracy,
    peer_rate: float | None = None,
    min_sample: int = 50,
    alpha: float = 1e-3,
    margin: float = 0.02,
) -> AcceptTest:
    """One-sided exact binomial test: is the worker's unchanged-accept rate above what honest
    checking of these proposals allows?

    The most an honest verifier should accept unchanged is the proposals' accuracy: the source's
    upper bound, or the pooled unchanged-accept rate of the worker's peers on the same source when
    higher (the routed proposals are the confident ones, more accurate than the source overall,
    and a source measured against a noisy consensus looks worse than it is; without this an
    honest verifier of very good proposals is flagged), plus ``margin``. When that reaches 1 the
    rate cannot tell a clicker from a checker, and planted gold errors must
    (:func:`check_power`).
    """
    n = max(0, int(proposed))
    k = min(max(0, int(accepted_unchanged)), n)
    rate = k / n if n else 0.0
    p0 = min(1.0, max(source.upper, float(peer_rate or 0.0)) + margin)
    evidence = {
        "accepted_unchanged": k,
        "proposed_shapes": n,
        "accept_rate": round(rate, 4),
        "source_accuracy": round(source.mean, 4),
        "expected_at_most": round(p0, 4),
    }
    if n < min_sample:
        return AcceptTest(
            False, n, k, rate, p0, None, f"{n} shapes < {min_sample} needed", evidence
        )
    if p0 >= 1.0:
        return AcceptTest(
            False, n, k, rate, p0, 1.0, "the source is too accurate to tell", evidence
        )
    p_value = float(binom.sf(k - 1, n, p0))
    evidence["p_value"] = float(f"{p_value:.3g}")
    flagged = p_value < alpha
    reason = f"accepted {k}/{n} unchanged ({rate:.1%}) against at most {p0:.1%}: p = {p_value:.2g}"
    return AcceptTest(flagged, n, k, rate, p0, p_value, reason, evidence)


# --- 6. time and pay ---------------------------------------------------------------------------


def verify_seconds(
    measured: Sequence[float], *, unassisted_seconds: float, prior_weight: float = 5.0
) -> float:
    """Expected seconds of a verify-and-correct replica: the mean of measured verify times with
    ``prior_weight`` pseudo-observations at the unassisted time (module docstring, 6).

    ``measured`` should be the credited active time of verify work by workers in good standing:
    a blind acceptor's seconds would price honest checking below its time (the floor still pays
    the honest worker, but at the job's or the platform's expense).
    """
    values = [float(m) for m in measured if m is not None and m > 0 and math.isfinite(m)]
    return (prior_weight * unassisted_seconds + sum(values)) / (prior_weight + len(values))


def verify_price(
    features: pricing.TaskFeatures,
    *,
    policy: pricing.PricingPolicyData,
    seconds: float,
    calibration: float = 1.0,
) -> pricing.TaskPrice:
    """The price of one verify-and-correct replica expected to take ``seconds``: the job's
    unassisted price (at its ``calibration``) scaled by verify time over unassisted time."""
    full = pricing.price_task(features, policy=policy, time_factor=calibration)
    ratio = max(float(seconds), 0.0) / max(full.expected_seconds, 1e-9)
    return pricing.price_task(
        features, policy=policy, time_factor=calibration * ratio, rate_factor=ratio
    )
