"""Approval of work by quality's evidence: the one decision, carried out through the one door.

:func:`decide` asks ``quality.policy.decide_approval`` (the one approval decision, pure) with the
job's thresholds and its quality policy; :func:`apply` carries it out through the tasks app's
one approve path and one reject path (``tasks.reviewing.approve`` / ``reject``), which move the
money through ``tasks.budget``. Consensus, gold, a reviewer's answer and gold validated later
all come through here; a requester's own review, the auto-approval delay, disputes and appeals
take the same two paths from their own services.
"""

from __future__ import annotations

from marketplace.models import Job
from tasks import budget, reviewing
from tasks.models import Assignment, AssignmentStatus

from .. import policy
from ..models import JobQualityPolicy


def decide(
    job: Job,
    pol: JobQualityPolicy,
    *,
    gold_score: float | None = None,
    agreement: float | None = None,
    frames_passed_share: float | None = None,
    gold_vouched: bool = True,
) -> policy.ApprovalDecision:
    """What the evidence on one submission decides under ``job``'s rules and policy ``pol``."""
    return policy.decide_approval(
        gold_score=gold_score,
        gold_pass_threshold=job.gold_pass_threshold,
        agreement=agreement,
        agreement_threshold=job.agreement_threshold,
        frames_passed_share=frames_passed_share,
        partial_credit=pol.partial_credit,
        reject_below_ratio=pol.reject_below_ratio,
        auto_approve=pol.auto_approve,
        auto_reject=pol.auto_reject,
        gold_vouched=gold_vouched,
    )


def lock_in_order(assignments: list[Assignment]) -> None:
    """Lock ``assignments`` in id order before deciding several of them: the scoring lock order
    (``processing``) takes every assignment row before the approvals take the job's escrow
    account, so a requester approving one of them meanwhile cannot wait on us in a cycle."""
    list(
        Assignment.objects.select_for_update(of=("self",))
        .filter(pk__in=[a.pk for a in assignments])
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    # Then the money rows their pay updates, in the ledger's global order: approving worker A
    # then B here while another job's approvals pay B then A must not wait in a cycle.
    budget.lock_pay_accounts(assignments)


def apply(assignment: Assignment, decision: policy.ApprovalDecision) -> None:
    """Approve or reject ``assignment`` as decided, if it still awaits review (under its row
    lock; work a person or an earlier decision settled is left as it is)."""
    if decision.action == policy.ApprovalAction.PENDING:
        return
    assignment = Assignment.objects.select_for_update().get(pk=assignment.pk)
    if assignment.status != AssignmentStatus.SUBMITTED:
        return
    if decision.action == policy.ApprovalAction.APPROVE:
        reviewing.approve(assignment=assignment, by=None, credit=decision.credit)
    else:
        reason = decision.reason[0].upper() + decision.reason[1:] + "."
        reviewing.reject(assignment=assignment, by=None, reason=reason)
