"""A person's word on work: the review queue, and appeals of rejections.

A reviewer's answer settles a microtask dynamic overlap could not, and counts as gold for the
workers who answered it (:func:`review_resolve`). A worker appeals a rejection once; an admin
who upholds it undoes the rejection's release of the reservation and approves the work through
the one approve path (:func:`appeal_decide`). Disputes of exported work (a requester rejecting
what they already have) are decided in ``tasks.reviewing``, which announces the rejection with
``tasks.signals.work_rejected``; ``evidence.rejection_record`` hears it.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from marketplace.errors import Conflict, NotFound, PermissionDenied, ValidationError
from marketplace.models import User
from marketplace.selectors import jobs_visible_to
from tasks import budget, reviewing
from tasks.models import Assignment, AssignmentStatus, MicroTask, MicroTaskStatus

from .. import policy, standing, trust
from ..models import (
    Appeal,
    AppealStatus,
    ConsensusDecision,
    ConsensusResult,
    ReviewItem,
    ReviewStatus,
    StandingEvidence,
)
from . import approval
from .common import microtask_to_review, policy_for, validate
from .common import now as _now
from .evidence import (
    checks_of,
    rejection_record,
    standing_record,
    trust_record,
    void_standing_evidence,
)
from .gold import score_frames
from .seams import seams_changed

REVIEW_ALGORITHM = "review-v1"


@transaction.atomic
def microtasks_unfunded_to_review(*, job, microtask_ids: list[int]) -> int:
    """Microtasks of ``job`` whose raised replica target the budget cannot fund go to the review
    queue (still-open ones only, locked in id order); returns how many went."""
    rows = list(
        MicroTask.objects.select_for_update(of=("self",))
        .filter(job=job, pk__in=microtask_ids, status=MicroTaskStatus.OPEN)
        .order_by("pk")
    )
    for mt in rows:
        microtask_to_review(
            mt,
            reason=(
                f"the job's budget does not fund replica {mt.replica_target} of this microtask: "
                "sent to review"
            ),
        )
    return len(rows)


@transaction.atomic
def review_resolve(*, review_id: int, payload: Any, by: User) -> ReviewItem:
    """A reviewer's answer becomes the microtask's result and counts as gold: a requester's on
    their jobs (standing), and platform-wide once the trusted annotators agree with it; an
    admin's platform-wide at once."""
    item = (
        ReviewItem.objects.select_for_update()
        .filter(pk=review_id, job__in=jobs_visible_to(by))
        .select_related("microtask__job")
        .first()
    )
    if item is None:
        raise NotFound("No such review item.")
    if item.status != ReviewStatus.OPEN:
        raise Conflict("This microtask has already been reviewed.")
    mt = (
        MicroTask.objects.select_for_update(of=("self",))
        .select_related("job")
        .get(pk=item.microtask_id)
    )
    job = mt.job
    validated = validate(mt, payload)
    item.status = ReviewStatus.RESOLVED
    item.answer = validated.payload
    item.resolved_by = by
    item.resolved_at = _now()
    item.save(update_fields=["status", "answer", "resolved_by", "resolved_at"])
    ConsensusResult.objects.filter(microtask=mt, is_current=True).update(is_current=False)
    rows = list(
        Assignment.objects.filter(
            microtask=mt, status__in=(AssignmentStatus.SUBMITTED, AssignmentStatus.APPROVED)
        ).select_related("submission", "worker")
    )
    scores = {}
    pol = policy_for(job)
    scored = [
        (a, score_frames(job=job, answer=validated.frames, submitted=a.submission.frames))
        for a in sorted(rows, key=lambda a: a.worker_id)  # trust rows locked in worker order
    ]
    # An admin's answer counts platform-wide at once; a requester's once the microtask's trusted
    # annotators agree with it (quality.standing), and always on the requester's own jobs.
    source = standing.Source.ADMIN if by.is_platform_admin else standing.Source.REQUESTER
    agreed = (
        source == standing.Source.REQUESTER
        and standing.answer_verdict(
            checks_of(
                [(a.worker_id, s.score >= job.gold_pass_threshold) for a, s in scored],
                job.annotation_type,
            )
        )
        == standing.Verdict.VALIDATED
    )
    platform = standing.counts_platform_wide(source, validated=agreed)
    for a, s in scored:
        scores[str(a.pk)] = round(s.score, 4)
        note = f"a reviewer checked this work (score {s.score:.2f})"
        if source == standing.Source.REQUESTER:
            standing_record(
                worker=a.worker,
                job=job,
                kind=trust.REVIEW,
                score=s.score,
                assignment=a,
                counts_platform_wide=platform,
                note=note,
            )
        if platform:
            trust_record(
                worker=a.worker,
                annotation_type=job.annotation_type,
                kind=trust.REVIEW,
                score=s.score,
                assignment=a,
                note=note,
            )
    # Evidence first, then money (the scoring lock order, ``processing``): trust rows in worker
    # order, then the assignments in id order, then the job's escrow account in the approvals.
    approval.lock_in_order(rows)
    for a, s in scored:
        share = policy.frames_passed_share(
            frames_off=len(s.frames_off), frames_total=s.frames_total
        )
        approval.apply(a, approval.decide(job, pol, gold_score=s.score, frames_passed_share=share))
    ConsensusResult.objects.update_or_create(
        microtask=mt,
        algorithm=REVIEW_ALGORITHM,
        defaults={
            "frames": validated.frames,
            "agreement": 1.0,
            "annotator_agreement": scores,
            "replicas": len(rows),
            "decision": ConsensusDecision.REVIEWED,
            "is_current": True,
        },
    )
    seams_changed(job=job, microtasks=[mt])
    mt.status = MicroTaskStatus.COMPLETE
    mt.save(update_fields=["status"])
    return item


# --- Appeals -------------------------------------------------------------------------------------


APPEAL_MESSAGE_MAX_LENGTH = 2_000


@transaction.atomic
def appeal_create(*, worker: User, assignment_id: int, message: str) -> Appeal:
    """A worker appeals a rejection of their own work, once."""
    assignment = (
        Assignment.objects.select_for_update().filter(pk=assignment_id, worker=worker).first()
    )
    if assignment is None:
        raise NotFound("No such submission of yours.")
    if assignment.status != AssignmentStatus.REJECTED:
        raise Conflict("Only rejected work can be appealed.")
    if Appeal.objects.filter(assignment=assignment).exists():
        raise Conflict("You can appeal a rejection once; this one has been appealed already.")
    if assignment.reviewed_by_id is not None and assignment.reviewed_by.is_platform_admin:
        raise Conflict("An administrator made this decision; it cannot be appealed.")
    message = (message or "").strip()
    if not message:
        raise ValidationError(
            "Say why the rejection is wrong.", extra={"fields": {"message": ["required"]}}
        )
    if len(message) > APPEAL_MESSAGE_MAX_LENGTH:
        raise ValidationError(
            f"Keep the appeal under {APPEAL_MESSAGE_MAX_LENGTH} characters.",
            extra={"fields": {"message": [f"at most {APPEAL_MESSAGE_MAX_LENGTH} characters"]}},
        )
    return Appeal.objects.create(assignment=assignment, worker=worker, message=message)


@transaction.atomic
def appeal_decide(*, appeal_id: int, by: User, uphold: bool, note: str = "") -> Appeal:
    """An admin decides an appeal; upheld, the work is approved and paid."""
    if not by.is_platform_admin:
        raise PermissionDenied("Only platform admins decide appeals.")
    appeal = Appeal.objects.select_for_update().filter(pk=appeal_id).first()
    if appeal is None:
        raise NotFound("No such appeal.")
    if appeal.status != AppealStatus.PENDING:
        raise Conflict("This appeal has been decided already.")
    assignment = (
        Assignment.objects.select_for_update()
        .select_related("microtask__job")
        .get(pk=appeal.assignment_id)
    )
    if uphold:
        if assignment.status != AssignmentStatus.REJECTED:
            raise Conflict("The work is no longer rejected.")
        # Undo the rejection's release of the reservation, so the work can be paid after all.
        budget.unpaid_reversed(
            assignment=assignment,
            key=f"appeal:{appeal.pk}:reverse-unpaid",
            memo=f"Appeal upheld: assignment #{assignment.pk} is paid after all",
        )
        assignment.rejection_reason = ""
        assignment.save(update_fields=["rejection_reason"])
        reviewing.approve(assignment=assignment, by=by, credit=1.0)
        # The rejection was wrong: it stops counting against the worker's standing.
        void_standing_evidence(
            list(StandingEvidence.objects.filter(kind=trust.REJECTION, assignment=assignment))
        )
    elif assignment.reviewed_by_id is not None:
        # An admin looked at a person's rejection and let it stand: it is confirmed, and counts
        # platform-wide (an automatic rejection counts through its gold result instead).
        rejection_record(assignment=assignment, by=by, confirmed=True)
    appeal.status = AppealStatus.UPHELD if uphold else AppealStatus.DENIED
    appeal.decided_by = by
    appeal.decided_at = _now()
    appeal.decision_note = note[:500]
    appeal.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    return appeal
