"""Evidence about workers: platform-wide trust, standing with one requester, and what follows.

Trust (``trust_record``) is the platform's view of a worker per annotation type; standing
(``standing_record``) is one requester's. Whose evidence reaches which is ``quality.standing``'s
rule: the platform's and admins' word at once, a requester's gold, review answers and
rejections once validated. Trust that falls below the bar suspends the worker from the type
(``worker_suspend_from_type``, on ``tasks.suspensions``' terms) and asks for an extra replica of
their unapproved work; a requester's rejection is recorded by ``rejection_record``, which
``tasks.signals.work_rejected`` triggers.

Lock order, so concurrent scoring cannot deadlock: a microtask row, then standing rows, then
trust rows in worker order. Every caller that records evidence for several workers sorts them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.db import transaction
from django.db.models import F

from marketplace.models import Job, User
from tasks import suspensions
from tasks.models import Assignment, AssignmentStatus, MicroTask, MicroTaskStatus

from .. import standing, trust
from ..models import (
    ConsensusDecision,
    ConsensusResult,
    GoldAnswer,
    GoldResult,
    RequesterStanding,
    StandingEvidence,
    TrustEvidence,
    WorkerTrust,
)
from .common import fill_slots_later, microtask_to_review
from .common import now as _now
from .seams import seams_changed

logger = logging.getLogger(__name__)

EVIDENCE_WINDOW = 500  # newest evidence rows that count (older ones weigh ~nothing anyway)


# --- Platform-wide trust -----------------------------------------------------------------------


def _trust_row(worker: User, annotation_type: str) -> WorkerTrust:
    row, _ = WorkerTrust.objects.get_or_create(worker=worker, annotation_type=annotation_type)
    return WorkerTrust.objects.select_for_update().get(pk=row.pk)


@transaction.atomic
def trust_record(
    *,
    worker: User,
    annotation_type: str,
    kind: str,
    score: float,
    assignment: Assignment | None = None,
    note: str = "",
) -> WorkerTrust:
    """Add one piece of evidence to a worker's trust; suspend from the type when it falls low.

    Idempotent per (kind, assignment).
    """
    row = _trust_row(worker, annotation_type)
    if (
        assignment is not None
        and TrustEvidence.objects.filter(trust=row, kind=kind, assignment=assignment).exists()
    ):
        return row
    now = _now()
    past = [
        trust.Evidence(e.kind, e.score, e.at)
        for e in TrustEvidence.objects.filter(trust=row).order_by("-at", "-id")[:EVIDENCE_WINDOW]
    ]
    before = trust.trust_estimate(past, now=now)
    after = trust.trust_estimate([*past, trust.Evidence(kind, score, now)], now=now)
    TrustEvidence.objects.create(
        trust=row,
        kind=kind,
        score=float(score),
        assignment=assignment,
        note=note[:300],
        trust_before=before.trust,
        trust_after=after.trust,
        at=now,
    )
    row.trust = after.trust
    row.tier = after.tier
    row.gold_count = after.gold_count
    row.save(update_fields=["trust", "tier", "gold_count", "updated_at"])
    if not row.suspended and trust.should_suspend(after):
        worker_suspend_from_type(
            trust_row=row,
            reason=f"Quality below the bar for {annotation_type} work (trust {after.trust:.2f}).",
        )
    return row


@transaction.atomic
def worker_suspend_from_type(*, trust_row: WorkerTrust, reason: str) -> WorkerTrust:
    """Stop a worker from claiming a type and get an extra replica of their unapproved work.

    The suspension's terms (a cooldown, or until an admin lifts it) are ``tasks.suspensions``':
    neither a retake of the test nor any claim gets the worker that work back before they allow.
    """
    trust_row.suspended = True
    trust_row.suspended_reason = reason[:300]
    trust_row.replicas_owed = True
    trust_row.save(update_fields=["suspended", "suspended_reason", "replicas_owed", "updated_at"])
    suspensions.qualification_suspend(
        worker=trust_row.worker,
        annotation_type=trust_row.annotation_type,
        reason=reason,
        score=trust_row.trust,
    )
    # The extra replicas are asked for after this transaction commits, in a transaction of their
    # own: the suspension happens inside a scoring that holds its microtask's row and the
    # worker's trust row, and the worker's other microtasks may be in scorings that hold their
    # row and wait for that trust row (a deadlock, issue #16). The debt is written down here
    # (``replicas_owed``): a crash before the add leaves it for ``suspension_replicas_sweep``.
    worker_id, annotation_type = trust_row.worker_id, trust_row.annotation_type
    transaction.on_commit(
        lambda: suspension_replicas_add(worker_id=worker_id, annotation_type=annotation_type),
        robust=True,
    )
    logger.info("worker %s suspended from %s", trust_row.worker_id, trust_row.annotation_type)
    return trust_row


@transaction.atomic
def suspension_replicas_add(*, worker_id: int, annotation_type: str) -> int:
    """A worker was suspended from a type: each microtask holding their unapproved work of that
    type is (re)opened with one more replica in its place, up to its job's ``overlap_max``; one
    already at the cap, or already in review, is left to the review queue. Returns how many
    microtasks got a replica.

    Microtask rows are locked in id order and each one is re-read under its lock, then the
    worker's trust row (the scoring lock order): the replicas are added only while that row
    still owes them (``replicas_owed``), and the same transaction clears it, so the add runs
    once whether the suspension's on-commit call or the sweep gets there first."""
    pending = MicroTask.objects.filter(
        assignments__worker_id=worker_id,
        assignments__status=AssignmentStatus.SUBMITTED,
        is_gold=False,
        job__annotation_type=annotation_type,
    )
    ids = list(pending.values_list("pk", flat=True).distinct())
    locked = list(
        MicroTask.objects.select_for_update(of=("self",))
        .filter(pk__in=ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    owed = list(
        WorkerTrust.objects.select_for_update()
        .filter(worker_id=worker_id, annotation_type=annotation_type, replicas_owed=True)
        .values_list("pk", flat=True)
    )
    if not owed:
        return 0  # added already (or the suspension was never committed)
    # ``update``, not ``save``: ``updated_at`` stays the suspension's time.
    WorkerTrust.objects.filter(pk__in=owed).update(replicas_owed=False)
    # Read again under the locks: a scoring that held one of them may have settled the work.
    still = set(pending.filter(pk__in=locked).values_list("pk", flat=True))
    rows = list(MicroTask.objects.select_related("job").filter(pk__in=still).order_by("pk"))
    raised = []
    for mt in rows:
        if mt.replica_target >= mt.job.overlap_max:
            microtask_to_review(
                mt,
                reason=(
                    f"an annotator was suspended and the microtask is at the maximum of "
                    f"{mt.job.overlap_max} replicas: sent to review"
                ),
            )
            continue
        if mt.status == MicroTaskStatus.REVIEW:
            continue  # a person decides it already
        raised.append(mt.pk)
    if raised:
        MicroTask.objects.filter(pk__in=raised).update(
            replica_target=F("replica_target") + 1, status=MicroTaskStatus.OPEN
        )
        ConsensusResult.objects.filter(microtask_id__in=raised, is_current=True).update(
            is_current=False
        )
        for mt in rows:
            if mt.pk in raised:
                seams_changed(job=mt.job, microtasks=[mt])
        for job_id in {mt.job_id for mt in rows if mt.pk in raised}:
            fill_slots_later(job_id)
    return len(raised)


def suspension_replicas_sweep() -> int:
    """Add the replicas of suspensions whose own add never ran (a crash, a worker lost between
    the suspension's commit and the add); each in its own transaction, one failing does not
    stop the others. Returns how many microtasks got a replica."""
    owed = list(
        WorkerTrust.objects.filter(replicas_owed=True)
        .order_by("pk")
        .values_list("worker_id", "annotation_type")
    )
    added = 0
    for worker_id, annotation_type in owed:
        try:
            added += suspension_replicas_add(worker_id=worker_id, annotation_type=annotation_type)
        except Exception:  # logged; the next sweep tries again
            logger.exception(
                "quality: adding the replicas owed for worker %s (%s) failed",
                worker_id,
                annotation_type,
            )
    if owed:
        logger.warning("quality: added %s replicas owed by %s suspensions", added, len(owed))
    return added


@transaction.atomic
def worker_suspension_lift(*, trust_row: WorkerTrust, by: User) -> WorkerTrust:
    """An admin lifts a suspension from a type: the worker may claim its work again at once.

    Trust and its evidence stay as they were (the next evidence that leaves trust below the bar
    suspends again, on the terms of a repeat suspension).
    """
    suspensions.qualification_lift_suspension(
        worker=trust_row.worker, annotation_type=trust_row.annotation_type, by=by
    )
    worker_reinstate(worker=trust_row.worker, annotation_type=trust_row.annotation_type)
    trust_row.refresh_from_db()
    return trust_row


def worker_reinstate(*, worker: User, annotation_type: str) -> int:
    """A suspension from a type ended (a retake passed after its cooldown, or an admin lifted it):
    the worker's work of that type counts again. Their trust is not reset."""
    # Replicas still owed are owed no more: the work they would replace counts again.
    return WorkerTrust.objects.filter(
        worker=worker, annotation_type=annotation_type, suspended=True
    ).update(suspended=False, replicas_owed=False)


# --- Standing with a requester -----------------------------------------------------------------
# The rules are ``quality.standing``'s; these services store them. Lock order, so concurrent
# scoring cannot deadlock: a microtask row, then standing rows, then trust rows in worker order.


def _standing_row(worker_id: int, requester_id: int, annotation_type: str) -> RequesterStanding:
    row, _ = RequesterStanding.objects.get_or_create(
        worker_id=worker_id, requester_id=requester_id, annotation_type=annotation_type
    )
    return RequesterStanding.objects.select_for_update().get(pk=row.pk)


def _standing_estimate(row: RequesterStanding, extra: Sequence[trust.Evidence] = ()):
    past = [
        trust.Evidence(e.kind, e.score, e.at)
        for e in StandingEvidence.objects.filter(standing=row, void=False).order_by("-at", "-id")[
            :EVIDENCE_WINDOW
        ]
    ]
    return trust.trust_estimate([*past, *extra], now=_now())


def _standing_save(row: RequesterStanding, estimate: trust.TrustEstimate) -> None:
    row.standing = estimate.trust
    row.evidence_count = estimate.evidence_count
    row.excluded = standing.excluded_by_standing(estimate)
    row.excluded_reason = (
        f"Quality on this requester's {row.annotation_type} jobs is below the bar "
        f"(standing {estimate.trust:.2f})."
        if row.excluded
        else ""
    )
    row.save(
        update_fields=["standing", "evidence_count", "excluded", "excluded_reason", "updated_at"]
    )


@transaction.atomic
def standing_record(
    *,
    worker: User,
    job: Job,
    kind: str,
    score: float,
    assignment: Assignment | None = None,
    counts_platform_wide: bool = False,
    note: str = "",
) -> RequesterStanding:
    """Add one piece of evidence from ``job``'s requester to the worker's standing with them.

    Idempotent per (kind, assignment); recording it again may only mark it as also counting
    platform-wide (once validated), never count it twice.
    """
    row = _standing_row(worker.pk, job.requester_id, job.annotation_type)
    if assignment is not None:
        existing = StandingEvidence.objects.filter(
            standing=row, kind=kind, assignment=assignment
        ).first()
        if existing is not None:
            if counts_platform_wide and not existing.counts_platform_wide:
                existing.counts_platform_wide = True
                existing.save(update_fields=["counts_platform_wide"])
            return row
    now = _now()
    before = row.standing
    after = _standing_estimate(row, [trust.Evidence(kind, score, now)])
    StandingEvidence.objects.create(
        standing=row,
        kind=kind,
        score=float(score),
        assignment=assignment,
        note=note[:300],
        counts_platform_wide=counts_platform_wide,
        standing_before=before,
        standing_after=after.trust,
        at=now,
    )
    _standing_save(row, after)
    return row


def void_standing_evidence(evidence: Sequence[StandingEvidence]) -> None:
    """An admin found the requester's word wrong: the evidence stops counting, standings are
    computed again (an exclusion it caused is lifted)."""
    ids = [e.pk for e in evidence]
    if not ids:
        return
    StandingEvidence.objects.filter(pk__in=ids).update(void=True)
    for row_id in sorted({e.standing_id for e in evidence}):
        row = RequesterStanding.objects.select_for_update().get(pk=row_id)
        _standing_save(row, _standing_estimate(row))


def _platform_status(worker_ids: Sequence[int], annotation_type: str) -> dict[int, tuple]:
    """worker id -> (platform trust, suspended) for the validation rules; the prior for none."""
    prior = trust.trust_estimate([], now=_now()).trust
    out = {w: (prior, False) for w in worker_ids}
    for w, t, suspended in WorkerTrust.objects.filter(
        worker_id__in=list(worker_ids), annotation_type=annotation_type
    ).values_list("worker_id", "trust", "suspended"):
        out[w] = (float(t), bool(suspended))
    return out


def checks_of(outcomes: Sequence[tuple[int, bool]], annotation_type: str) -> list[standing.Check]:
    """``(worker id, agrees)`` pairs as checks carrying each worker's platform status."""
    status = _platform_status([w for w, _ in outcomes], annotation_type)
    return [standing.Check(*status[w], agrees=agrees) for w, agrees in outcomes]


# --- A person's rejection ----------------------------------------------------------------------


def _rejection_confirmed(assignment: Assignment) -> bool:
    """Does the evidence already agree with a requester's rejection (``quality.standing``)?"""
    mt = assignment.microtask
    job = mt.job
    if mt.is_gold:
        gold = GoldAnswer.objects.filter(microtask=mt).first()
        result = GoldResult.objects.filter(assignment=assignment).first()
        return bool(
            gold is not None
            and gold.counts_platform_wide
            and result is not None
            and not result.passed
        )
    # Any consensus the replicas produced (accepted, or sent on for another replica or review:
    # the per-annotator agreement is measured either way); a reviewer's result is not consensus.
    current = (
        ConsensusResult.objects.filter(microtask=mt, is_current=True)
        .exclude(decision=ConsensusDecision.REVIEWED)
        .first()
    )
    if current is None:
        return False
    agreement = {int(k): float(v) for k, v in (current.annotator_agreement or {}).items()}
    mine = agreement.pop(assignment.pk, None)
    workers = dict(Assignment.objects.filter(pk__in=list(agreement)).values_list("pk", "worker_id"))
    others = checks_of(
        [(workers[k], v >= job.agreement_threshold) for k, v in agreement.items() if k in workers],
        job.annotation_type,
    )
    return standing.rejection_confirmed(
        rejected_agreement=mine, agreement_threshold=job.agreement_threshold, others=others
    )


@transaction.atomic
def rejection_record(*, assignment: Assignment, by: User | None, confirmed: bool) -> bool:
    """A person rejected ``assignment``. The requester's rejection counts against the worker's
    standing with them, and platform-wide when an admin confirmed it (``confirmed``: a dispute
    upheld, an appeal denied) or the evidence agrees with it; an admin's own rejection is the
    platform's word alone. Returns whether it counted platform-wide. Idempotent."""
    a = Assignment.objects.select_related("microtask__job", "worker").get(pk=assignment.pk)
    job = a.microtask.job
    by_admin = by is not None and by.is_platform_admin
    requesters_word = confirmed or not by_admin
    source = standing.Source.ADMIN if by_admin else standing.Source.REQUESTER
    platform = standing.counts_platform_wide(
        source, validated=source == standing.Source.REQUESTER and _rejection_confirmed(a)
    )
    if not requesters_word:
        note = "rejected by an admin"
    elif confirmed:
        note = "rejected by the requester, confirmed by an admin"
    else:
        note = "rejected by the requester" + (
            " (agrees with the trusted workers' consensus)" if platform else ""
        )
    if requesters_word:
        standing_record(
            worker=a.worker,
            job=job,
            kind=trust.REJECTION,
            score=0.0,
            assignment=a,
            counts_platform_wide=platform,
            note=note,
        )
    if platform:
        trust_record(
            worker=a.worker,
            annotation_type=job.annotation_type,
            kind=trust.REJECTION,
            score=0.0,
            assignment=a,
            note=note,
        )
    return platform
