"""Decision rules: dynamic overlap and approval. Pure functions of numbers; no Django.

:func:`decide_approval` is the one approval decision: every path that approves or rejects work
automatically (consensus, gold, a reviewer's answer, gold validated later) asks it, and executes
what it says through the tasks app's one approve and one reject path (``tasks.reviewing``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class OverlapAction(StrEnum):
    WAIT = "wait"  # replicas still missing
    ACCEPT = "accept"  # agreement reached: the consensus is the result
    ADD_REPLICA = "add_replica"  # disagreement, room for one more annotator
    REVIEW = "review"  # disagreement at the maximum overlap: a person decides


@dataclass(frozen=True)
class OverlapDecision:
    action: OverlapAction
    replica_target: int
    reason: str


def decide_overlap(
    *,
    submitted: int,
    replica_target: int,
    overlap_max: int,
    agreement: float | None,
    agreement_threshold: float,
    confidence: float | None = None,
    min_confidence: float = 0.0,
) -> OverlapDecision:
    """What to do with a microtask given how many replicas are in and how much they agree.

    ``confidence`` is the summed vote weight (log-odds of trust) of the annotators who agree
    with the consensus; requiring ``min_confidence`` makes this a sequential test: two trusted
    workers who agree settle a microtask, two unknown ones need a third.
    """
    if submitted < replica_target or agreement is None:
        return OverlapDecision(
            OverlapAction.WAIT,
            replica_target,
            f"{submitted} of {replica_target} replicas submitted",
        )
    if agreement >= agreement_threshold and (confidence is None or confidence >= min_confidence):
        return OverlapDecision(
            OverlapAction.ACCEPT,
            replica_target,
            f"agreement {agreement:.2f} ≥ {agreement_threshold:.2f}",
        )
    why = (
        f"agreement {agreement:.2f} < {agreement_threshold:.2f}"
        if agreement < agreement_threshold
        else f"confidence {confidence:.2f} < {min_confidence:.2f}"
    )
    if replica_target < overlap_max:
        return OverlapDecision(
            OverlapAction.ADD_REPLICA, replica_target + 1, f"{why}: one more replica"
        )
    return OverlapDecision(
        OverlapAction.REVIEW,
        replica_target,
        f"{why} at the maximum of {overlap_max} replicas: sent to review",
    )


#: What a worker's agreement on attributes and on relations weighs beside their shapes' (the rest
#: of the weight), on a job that asks for them. Small on purpose: an object drawn right and
#: described wrong agrees less, but the shapes still decide most of it, so a worker who misses
#: the objects cannot make up for it with attributes (and relations hang on those objects).
ATTRIBUTE_WEIGHT = 0.2
RELATION_WEIGHT = 0.1


def extras_weights(*, attributes: bool, relations: bool) -> tuple[float, float, float]:
    """(shapes, attributes, relations) weights of a worker's agreement: a part the job does not
    ask for weighs nothing and its weight stays with the shapes."""
    wa = ATTRIBUTE_WEIGHT if attributes else 0.0
    wr = RELATION_WEIGHT if relations else 0.0
    return 1.0 - wa - wr, wa, wr


def blend_agreement(
    shapes: float,
    *,
    attributes: float | None = None,
    relations: float | None = None,
) -> float:
    """A worker's (or a microtask's) agreement from its shapes', attributes' and relations'
    agreements, each in [0, 1]; ``None`` is a part the job does not ask for."""
    ws, wa, wr = extras_weights(attributes=attributes is not None, relations=relations is not None)
    return ws * shapes + wa * (attributes or 0.0) + wr * (relations or 0.0)


def weighted_mean(values: Sequence[float], weights: Sequence[float]) -> float:
    """The mean of ``values`` weighted by ``weights`` (floored at 1e-3 so that every annotator
    counts a little); 1.0 when there is nothing to average."""
    ws = [max(float(w), 1e-3) for w in weights]
    total = sum(ws)
    return sum(v * w for v, w in zip(values, ws, strict=True)) / total if total else 1.0


class ApprovalAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    PENDING = "pending"  # the requester decides, or it auto-approves after the delay


@dataclass(frozen=True)
class ApprovalDecision:
    action: ApprovalAction
    credit: float
    reason: str
    #: What the evidence called for when a rule held it back (the action is then PENDING): the
    #: job's policy switched automatic approval or rejection off, or the gold answer that would
    #: reject the work is not vouched for yet.
    withheld: ApprovalAction | None = None


def decide_approval(
    *,
    gold_score: float | None,
    gold_pass_threshold: float,
    agreement: float | None,
    agreement_threshold: float,
    frames_passed_share: float | None = None,
    partial_credit: bool = False,
    reject_below_ratio: float = 0.5,
    auto_approve: bool = True,
    auto_reject: bool = True,
    gold_vouched: bool = True,
) -> ApprovalDecision:
    """The approval decision, the one every path takes (consensus, gold, review, validation).

    Auto-approve what passes gold or agrees with consensus; auto-reject what fails gold badly.
    "Badly" is below ``reject_below_ratio`` x the pass threshold. In between, with partial credit
    on, the work is approved and paid for the share of its frames that passed; otherwise it waits
    for the requester (or the auto-approval delay).

    The job's policy may switch automatic approval (``auto_approve``) or rejection
    (``auto_reject``) off, and a gold answer nobody vouched for yet (``gold_vouched`` false: a
    requester's, not validated) may approve work but never reject it on its own, since a wrong
    answer would unpay honest workers. What such a rule held back is the decision's ``withheld``.
    """
    verdict = _verdict(
        gold_score=gold_score,
        gold_pass_threshold=gold_pass_threshold,
        agreement=agreement,
        agreement_threshold=agreement_threshold,
        frames_passed_share=frames_passed_share,
        partial_credit=partial_credit,
        reject_below_ratio=reject_below_ratio,
    )
    if verdict.action == ApprovalAction.REJECT and not gold_vouched:
        why = "the answer it failed is not validated yet: left for the requester's review"
    elif verdict.action == ApprovalAction.REJECT and not auto_reject:
        why = "automatic rejection is off: awaiting the requester's review"
    elif verdict.action == ApprovalAction.APPROVE and not auto_approve:
        why = "automatic approval is off: awaiting the requester's review"
    else:
        return verdict
    return ApprovalDecision(ApprovalAction.PENDING, 1.0, why, withheld=verdict.action)


def _verdict(
    *,
    gold_score: float | None,
    gold_pass_threshold: float,
    agreement: float | None,
    agreement_threshold: float,
    frames_passed_share: float | None,
    partial_credit: bool,
    reject_below_ratio: float,
) -> ApprovalDecision:
    """What the evidence alone says (before the policy's switches)."""
    if gold_score is not None:
        if gold_score >= gold_pass_threshold:
            return ApprovalDecision(ApprovalAction.APPROVE, 1.0, "passed the quality check")
        if gold_score < reject_below_ratio * gold_pass_threshold:
            return ApprovalDecision(
                ApprovalAction.REJECT,
                0.0,
                f"failed the quality check: score {gold_score:.2f}, "
                f"{gold_pass_threshold:.2f} needed",
            )
    elif agreement is not None and agreement >= agreement_threshold:
        return ApprovalDecision(ApprovalAction.APPROVE, 1.0, "agrees with the other annotators")
    if partial_credit and frames_passed_share is not None and frames_passed_share > 0:
        share = min(max(frames_passed_share, 0.0), 1.0)
        return ApprovalDecision(
            ApprovalAction.APPROVE, share, f"partial credit: {share:.0%} of frames passed"
        )
    return ApprovalDecision(ApprovalAction.PENDING, 1.0, "awaiting the requester's review")


def frames_passed_share(*, frames_off: int, frames_total: int) -> float:
    """The share of a scored submission's frames that passed (0 when nothing was scored)."""
    return max(0.0, 1.0 - frames_off / frames_total) if frames_total else 0.0


def replicas_saved(*, microtasks: int, replicas_used: int, fixed_overlap: int) -> int:
    """Replicas a fixed overlap would have used minus those used (negative when it cost more)."""
    return microtasks * fixed_overlap - replicas_used
