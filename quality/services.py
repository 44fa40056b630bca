"""Writes of quality: gold, scoring, consensus, trust, dynamic overlap, review, appeals, fraud.

The claim path calls :func:`submission_received` when a submission is stored; the work runs in a
Celery task (:func:`submission_process`), one microtask at a time under its row lock, and is
idempotent: a redelivered task finds its results already there and changes nothing.

Whose evidence reaches platform-wide trust (``trust_record``) and whose only a worker's standing
with one requester (``standing_record``) is ``quality.standing``'s rule: the platform's and
admins' word at once, a requester's gold, review answers and rejections once validated.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from marketplace import bounds
from marketplace.errors import Conflict, NotFound, PermissionDenied, ValidationError
from marketplace.models import AnnotationType, Job, User
from marketplace.selectors import jobs_visible_to
from payments import posting as pay_posting
from payments.models import LedgerTransaction
from tasks import budget, suspensions
from tasks.annotations import AnnotationInvalid, validate_payload
from tasks.claiming import annotation_context
from tasks.models import (
    Assignment,
    AssignmentStatus,
    MicroTask,
    MicroTaskStatus,
    Slot,
    Submission,
)

from . import consensus as consensus_mod
from . import fraud, gold_formats, policy, scoring, shapes, standing, trust
from .boxes import FrameBoxes
from .models import (
    Appeal,
    AppealStatus,
    ConsensusDecision,
    ConsensusResult,
    FraudFlag,
    GoldAnswer,
    GoldResult,
    GoldSource,
    GoldValidatedVia,
    GoldValidation,
    JobQualityPolicy,
    RequesterStanding,
    ReviewItem,
    ReviewStatus,
    StandingEvidence,
    TrustEvidence,
    WorkerTrust,
)
from .tracks import track_consensus

logger = logging.getLogger(__name__)

REVIEW_ALGORITHM = "review-v1"
POLYGON_ALGORITHM = "polygons-medoid-v1"
EVIDENCE_WINDOW = 500  # newest evidence rows that count (older ones weigh ~nothing anyway)


def _now() -> datetime:
    return timezone.now()


class GoldImportError(ValidationError):
    """The known answers could not be imported."""

    code = "gold_import_invalid"


def _policy(job: Job) -> JobQualityPolicy:
    try:
        return job.quality_policy
    except JobQualityPolicy.DoesNotExist:
        return JobQualityPolicy(job=job)


def _visible_job(*, job_id: int, by: User) -> Job:
    job = jobs_visible_to(by).filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such job.")
    return job


def _validate(microtask: MicroTask, payload: Any):
    try:
        return validate_payload(payload, annotation_context(microtask))
    except AnnotationInvalid as exc:
        raise ValidationError(str(exc), extra={"fields": exc.fields}) from None


# --- Gold ----------------------------------------------------------------------------------------


@transaction.atomic
def gold_answer_set(
    *, microtask_id: int, payload: Any, by: User, source: str = GoldSource.ANNOTATED
) -> GoldAnswer:
    """Make ``microtask`` a gold microtask whose known answer is ``payload``.

    An admin's gold counts platform-wide at once; a requester's starts pending and counts on
    their jobs only until validated (``quality.standing``). An answer workers were already
    scored against cannot change: their results, and its validation, are about that answer.
    """
    mt = (
        MicroTask.objects.select_for_update()
        .filter(pk=microtask_id, job__in=jobs_visible_to(by))
        .select_related("job")
        .first()
    )
    if mt is None:
        raise NotFound("No such microtask.")
    if not mt.is_gold and mt.assignments.exists():
        raise Conflict(
            "Workers already took this microtask as ordinary work; choose one nobody has claimed."
        )
    if GoldResult.objects.filter(microtask=mt).exists():
        raise Conflict(
            "Workers were already scored against this gold answer, so it cannot change; make "
            "another microtask gold instead."
        )
    validated = _validate(mt, payload)
    if not mt.is_gold:
        # Gold is served from the job's gold pool; this microtask's own replica slots go, and
        # the budget reserved for them returns to the job.
        free = Slot.objects.filter(microtask=mt, assignment__isnull=True)
        amount = int(sum(free.values_list("reserved_amount", flat=True)))
        free.delete()
        budget.release(job=mt.job, amount=amount, key=f"gold:{mt.pk}:release-slots")
        mt.is_gold = True
        mt.replica_target = 1
        mt.save(update_fields=["is_gold", "replica_target"])
    by_admin = by.is_platform_admin
    answer, _ = GoldAnswer.objects.update_or_create(
        microtask=mt,
        defaults={
            "payload": validated.payload,
            "frames": validated.frames,
            "source": source,
            "created_by": by,
            "validation": GoldValidation.VALIDATED if by_admin else GoldValidation.PENDING,
            "validated_via": GoldValidatedVia.ADMIN if by_admin else "",
            "validated_by": by if by_admin else None,
            "validated_at": _now() if by_admin else None,
            "validation_note": "",
        },
    )
    return answer


def _payload_from_records(
    records: gold_formats.Parsed, microtask: MicroTask, annotation_type: str, classes: list[str]
) -> dict[str, Any]:
    frames = (
        list(range(microtask.frame_start, microtask.frame_end + 1))
        if annotation_type == "track" or not microtask.frames
        else [int(f) for f in microtask.frames]
    )
    index = {c: i for i, c in enumerate(classes)}
    ann: dict[int, FrameBoxes] = {}
    for f in frames:
        recs = records.get(f, [])
        ann[f] = FrameBoxes.make(
            [r[1] for r in recs],
            [index[r[0]] for r in recs],
            [r[2] if r[2] is not None else k for k, r in enumerate(recs)],
        )
    return shapes.annotation_to_payload(ann, classes, annotation_type=annotation_type)


@transaction.atomic
def gold_import(
    *,
    job_id: int,
    fmt: str,
    text: str,
    by: User,
    microtask_ids: Sequence[int] | None = None,
    default_label: str = "",
) -> list[GoldAnswer]:
    """Import known answers (COCO, CVAT video XML, MOT) as gold for the microtasks they cover.

    A microtask is covered when the file has every one of its frames. All or nothing.
    """
    job = _visible_job(job_id=job_id, by=by)
    if fmt not in gold_formats.PARSERS:
        raise GoldImportError(f"Unknown format {fmt!r}; use one of coco, cvat, mot.")
    if job.annotation_type not in (AnnotationType.BBOX, AnnotationType.TRACK):
        raise GoldImportError("Imported answers are boxes; this job is not a box or track job.")
    try:
        if fmt == "mot":
            records = gold_formats.parse_mot(
                text, default_label=default_label or (job.label_classes or [""])[0]
            )
        else:
            records = gold_formats.PARSERS[fmt](text)
    except gold_formats.GoldFormatError as exc:
        raise GoldImportError(str(exc)) from None
    classes = list(job.label_classes)
    unknown = sorted({r[0] for recs in records.values() for r in recs} - set(classes))
    if unknown:
        raise GoldImportError(
            f"The file has labels this job does not know: {', '.join(unknown[:10])}. "
            f"The job's classes are: {', '.join(classes)}."
        )
    qs = MicroTask.objects.filter(job=job).order_by("video_id", "index")
    if microtask_ids is not None:
        qs = qs.filter(pk__in=list(microtask_ids))
    answers = []
    for mt in qs:
        needed = (
            range(mt.frame_start, mt.frame_end + 1)
            if job.annotation_type == "track" or not mt.frames
            else mt.frames
        )
        if not all(int(f) in records for f in needed):
            continue
        if not mt.is_gold and mt.assignments.exists():
            continue
        payload = _payload_from_records(records, mt, job.annotation_type, classes)
        answers.append(gold_answer_set(microtask_id=mt.pk, payload=payload, by=by, source=fmt))
    if not answers:
        raise GoldImportError(
            "The file covers no microtask of this job completely (or they are already taken)."
        )
    return answers


Score = scoring.Score


def score_frames(*, job: Job, answer: dict, submitted: dict) -> Score:
    """Score stored per-frame shapes against an answer, by the job's annotation type and
    thresholds (what a gold submission gets; qualification tests use the same function)."""
    return scoring.score_stored(
        job.annotation_type,
        answer,
        submitted,
        classes=list(job.label_classes),
        iou_threshold=job.iou_threshold,
        pass_threshold=job.gold_pass_threshold,
    )


# --- Trust ---------------------------------------------------------------------------------------


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
    trust_row.save(update_fields=["suspended", "suspended_reason", "updated_at"])
    suspensions.qualification_suspend(
        worker=trust_row.worker,
        annotation_type=trust_row.annotation_type,
        reason=reason,
        score=trust_row.trust,
    )
    pending = MicroTask.objects.filter(
        assignments__worker=trust_row.worker,
        assignments__status=AssignmentStatus.SUBMITTED,
        is_gold=False,
        job__annotation_type=trust_row.annotation_type,
    ).distinct()
    ids = list(pending.values_list("pk", flat=True))
    if ids:
        MicroTask.objects.filter(pk__in=ids).update(
            replica_target=F("replica_target") + 1, status=MicroTaskStatus.OPEN
        )
        ConsensusResult.objects.filter(microtask_id__in=ids, is_current=True).update(
            is_current=False
        )
        for job_id in set(MicroTask.objects.filter(pk__in=ids).values_list("job_id", flat=True)):
            _fill_slots_later(job_id)
    logger.info("worker %s suspended from %s", trust_row.worker_id, trust_row.annotation_type)
    return trust_row


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
    return WorkerTrust.objects.filter(
        worker=worker, annotation_type=annotation_type, suspended=True
    ).update(suspended=False)


# --- Standing with a requester, and validation of a requester's word ---------------------------
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


def _void_standing_evidence(evidence: Sequence[StandingEvidence]) -> None:
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


def _checks(outcomes: Sequence[tuple[int, bool]], annotation_type: str) -> list[standing.Check]:
    """``(worker id, agrees)`` pairs as checks carrying each worker's platform status."""
    status = _platform_status([w for w, _ in outcomes], annotation_type)
    return [standing.Check(*status[w], agrees=agrees) for w, agrees in outcomes]


def _made_by_admin(gold: GoldAnswer) -> bool:
    return gold.created_by is not None and gold.created_by.is_platform_admin


def _gold_verdict(gold: GoldAnswer, job: Job) -> standing.Verdict:
    outcomes = list(
        GoldResult.objects.filter(microtask_id=gold.microtask_id).values_list("worker_id", "passed")
    )
    return standing.answer_verdict(_checks(outcomes, job.annotation_type))


def _gold_promote(gold: GoldAnswer, job: Job) -> int:
    """A gold answer became valid: every result scored against it counts platform-wide now
    (in worker order: trust rows are locked in that order everywhere). Returns how many."""
    results = list(
        GoldResult.objects.filter(microtask_id=gold.microtask_id)
        .select_related("assignment", "worker")
        .order_by("worker_id", "pk")
    )
    for r in results:
        trust_record(
            worker=r.worker,
            annotation_type=job.annotation_type,
            kind=trust.GOLD,
            score=r.score,
            assignment=r.assignment,
            note=f"quality check {'passed' if r.passed else 'failed'} (score {r.score:.2f})",
        )
    StandingEvidence.objects.filter(
        kind=trust.GOLD, assignment_id__in=[r.assignment_id for r in results]
    ).update(counts_platform_wide=True)
    # Failures an unvalidated answer could not reject on its own are decided now, as they would
    # have been had the answer been valid from the start.
    pol = _policy(job)
    n_frames = len(gold.frames or {}) or 1
    for r in results:
        if r.assignment.status != AssignmentStatus.SUBMITTED:
            continue
        decision = policy.decide_approval(
            gold_score=r.score,
            gold_pass_threshold=job.gold_pass_threshold,
            agreement=None,
            agreement_threshold=job.agreement_threshold,
            frames_passed_share=max(0.0, 1.0 - len(r.frames_off) / n_frames),
            partial_credit=pol.partial_credit,
            reject_below_ratio=pol.reject_below_ratio,
        )
        if decision.action == policy.ApprovalAction.REJECT:
            _apply_approval(r.assignment, decision, pol)
    return len(results)


def _gold_revalidate(gold: GoldAnswer, job: Job) -> str:
    """After a new result on a requester's pending (or disputed) gold: what do trusted workers'
    answers say about it now? Validated, every result on it counts platform-wide."""
    if gold.validation not in (GoldValidation.PENDING, GoldValidation.DISPUTED):
        return gold.validation
    verdict = _gold_verdict(gold, job)
    if verdict == standing.Verdict.VALIDATED:
        gold.validation = GoldValidation.VALIDATED
        gold.validated_via = GoldValidatedVia.AGREEMENT
        gold.validated_at = _now()
        gold.save(update_fields=["validation", "validated_via", "validated_at"])
        _gold_promote(gold, job)
    elif verdict == standing.Verdict.DISPUTED and gold.validation != GoldValidation.DISPUTED:
        gold.validation = GoldValidation.DISPUTED
        gold.save(update_fields=["validation"])
        logger.warning(
            "gold answer of microtask %s is disputed by trusted workers", gold.microtask_id
        )
    return gold.validation


@transaction.atomic
def gold_validate(*, microtask_id: int, by: User, valid: bool, note: str = "") -> GoldAnswer:
    """An admin decides a gold answer. Valid: it counts platform-wide, with every result scored
    against it so far. Not valid (refused): it counts nowhere, its standing evidence is voided,
    and the microtask stops being served."""
    if not by.is_platform_admin:
        raise PermissionDenied("Only platform admins validate gold answers.")
    mt = MicroTask.objects.select_for_update().select_related("job").filter(pk=microtask_id).first()
    gold = GoldAnswer.objects.select_for_update().filter(microtask_id=microtask_id).first()
    if mt is None or gold is None:
        raise NotFound("No such gold microtask.")
    gold.validated_by = by
    gold.validated_at = _now()
    gold.validation_note = (note or "")[:300]
    if valid:
        gold.validation = GoldValidation.VALIDATED
        gold.validated_via = GoldValidatedVia.ADMIN
        gold.save()
        _gold_promote(gold, mt.job)
        return gold
    # Refusing a gold that already counted platform-wide leaves that trust evidence as history
    # (trust is not rewritten after the fact); from now on it counts nowhere.
    gold.validation = GoldValidation.REFUSED
    gold.validated_via = ""
    gold.save()
    _void_standing_evidence(
        list(
            StandingEvidence.objects.filter(
                kind=trust.GOLD,
                assignment_id__in=GoldResult.objects.filter(microtask=mt).values("assignment_id"),
            )
        )
    )
    # Gold microtasks stay open to be served; a refused one is closed, so nobody gets it again.
    mt.status = MicroTaskStatus.COMPLETE
    mt.save(update_fields=["status"])
    return gold


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
    others = _checks(
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


def _fill_slots_later(job_id: int) -> None:
    from .tasks import fill_slots

    transaction.on_commit(lambda: fill_slots.delay(job_id))


def job_fill_slots(*, job_id: int) -> int:
    """Create the replica slots dynamic overlap asked for (if the job still takes work)."""
    from tasks import claiming

    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.status not in ("published", "paused"):
        return 0
    return claiming.job_fill_slots(job=job).regular_slots


# --- The hook from the claim path -----------------------------------------------------------------


# A submission is its own outbox entry: it is stored with ``processed_at`` empty, the claim path
# queues its scoring once the row is committed, and :func:`submission_process` sets
# ``processed_at``. A message lost between the commit and the broker (a crash, Redis down) only
# delays the work: :func:`submissions_process_stragglers` (Celery beat) picks up what stayed
# unprocessed for longer than ``STRAGGLER_AFTER``.
STRAGGLER_AFTER = timedelta(minutes=2)


def submission_received(*, submission: Submission) -> None:
    """Called by the claim path when a submission is stored: score it once the data is committed.

    The submission is already committed when the message goes out, so a broker failure must not
    turn the worker's successful submit into an error: it is logged and the straggler sweep
    catches up.
    """
    from .tasks import process_submission

    submission_id = submission.pk

    def enqueue() -> None:
        try:
            # argsrepr given: Celery would otherwise build it with its slow saferepr every time.
            process_submission.apply_async(
                (submission_id,), argsrepr=f"({submission_id},)", kwargsrepr="{}"
            )
        except (KombuOperationalError, OSError) as exc:
            logger.warning(
                "quality: could not queue submission %s (%s); the straggler sweep will score it",
                submission_id,
                exc,
            )

    transaction.on_commit(enqueue)


@transaction.atomic
def submission_process(*, submission_id: int) -> str:
    """Score a gold submission, or run consensus once a microtask's replicas are in."""
    sub = (
        Submission.objects.select_related("assignment__microtask__job", "assignment__worker")
        .filter(pk=submission_id)
        .first()
    )
    if sub is None:
        return "missing"
    mt = (
        MicroTask.objects.select_for_update()
        .select_related("job")
        .get(pk=sub.assignment.microtask_id)
    )
    if mt.is_gold:
        outcome = _process_gold(sub, mt)
    else:
        outcome = _process_regular(mt)
        _flag_fraud(mt)
    Submission.objects.filter(pk=sub.pk, processed_at__isnull=True).update(processed_at=_now())
    return outcome


def submissions_process_stragglers(*, older_than: timedelta = STRAGGLER_AFTER, batch: int = 500):
    """Process submissions stored more than ``older_than`` ago whose scoring never ran (its
    message was lost). Each one in its own transaction; one failing does not stop the others.
    Returns how many were processed."""
    cutoff = _now() - older_than
    ids = list(
        Submission.objects.filter(processed_at__isnull=True, created_at__lt=cutoff)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:batch]
    )
    done = 0
    for submission_id in ids:
        try:
            submission_process(submission_id=submission_id)
        except Exception:  # logged; the next sweep tries again
            logger.exception("quality: processing straggler submission %s failed", submission_id)
        else:
            done += 1
    if ids:
        logger.warning("quality: processed %s of %s straggler submissions", done, len(ids))
    return done


def _process_gold(sub: Submission, mt: MicroTask) -> str:
    assignment = sub.assignment
    if GoldResult.objects.filter(assignment=assignment).exists():
        return "already scored"
    gold = GoldAnswer.objects.select_for_update().filter(microtask=mt).first()
    if gold is None:
        return "no gold answer"
    job = mt.job
    s = score_frames(job=job, answer=gold.frames, submitted=sub.frames)
    passed = s.score >= job.gold_pass_threshold
    GoldResult.objects.create(
        assignment=assignment,
        microtask=mt,
        worker=assignment.worker,
        annotation_type=job.annotation_type,
        score=s.score,
        passed=passed,
        metrics=s.metrics,
        frames_off=s.frames_off,
    )
    if gold.validation == GoldValidation.REFUSED:
        # An admin found this answer wrong: it says nothing about the worker, and decides
        # nothing (the work waits for the requester's review or the auto-approval delay).
        return "gold refused"
    note = f"quality check {'passed' if passed else 'failed'} (score {s.score:.2f})"
    # A requester's gold moves the worker's standing with that requester, and platform-wide
    # trust only once the answer is validated; an admin's gold is the platform's word alone
    # (quality.standing).
    if not _made_by_admin(gold):
        standing_record(
            worker=assignment.worker,
            job=job,
            kind=trust.GOLD,
            score=s.score,
            assignment=assignment,
            counts_platform_wide=gold.counts_platform_wide,
            note=note,
        )
    if gold.counts_platform_wide:
        trust_record(
            worker=assignment.worker,
            annotation_type=job.annotation_type,
            kind=trust.GOLD,
            score=s.score,
            assignment=assignment,
            note=note,
        )
    elif _gold_revalidate(gold, job) == GoldValidation.DISPUTED:
        # Trusted workers say the answer is wrong: it decides no one's pay until an admin rules.
        return "gold disputed"
    pol = _policy(job)
    share = 1.0 - len(s.frames_off) / s.frames_total if s.frames_total else 0.0
    decision = policy.decide_approval(
        gold_score=s.score,
        gold_pass_threshold=job.gold_pass_threshold,
        agreement=None,
        agreement_threshold=job.agreement_threshold,
        frames_passed_share=share,
        partial_credit=pol.partial_credit,
        reject_below_ratio=pol.reject_below_ratio,
    )
    if decision.action == policy.ApprovalAction.REJECT and not gold.counts_platform_wide:
        # Nobody vouched for this answer yet: it may approve work, never reject it on its own
        # (a wrong answer would unpay honest workers). The requester may still reject by hand.
        return "gold failed (unvalidated: left for review)"
    _apply_approval(assignment, decision, pol)
    return "gold passed" if passed else "gold failed"


def _annotations(job: Job, subs: list[Submission]):
    classes = list(job.label_classes)
    if job.annotation_type == AnnotationType.CLASSIFY:
        return [shapes.to_labels(s.frames, classes) for s in subs]
    if job.annotation_type == AnnotationType.POLYGON:
        # Agreement on the polygons' extents; the result is the most agreed-with polygon set.
        out = []
        for s in subs:
            ann = {}
            for f, polys in shapes.to_polygons(s.frames).items():
                boxes = [
                    [p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()] for p in polys
                ]
                ann[f] = FrameBoxes.make(boxes)
            out.append(ann)
        return out
    return [shapes.to_annotation(s.frames, classes) for s in subs]


def run_consensus(job: Job, subs: list[Submission], weights: list[float]):
    """(algorithm, stored frames, agreement, per-annotator agreement, per-frame agreement)."""
    anns = _annotations(job, subs)
    classes = list(job.label_classes)
    thr = job.iou_threshold
    if job.annotation_type == AnnotationType.CLASSIFY:
        c = consensus_mod.class_consensus(anns, weights)
        return c.algorithm, shapes.from_labels(c.labels, classes), c, {}
    if job.annotation_type == AnnotationType.TRACK:
        c = track_consensus(anns, weights, iou_threshold=thr)
        return (
            c.algorithm,
            shapes.from_annotation(c.frames, classes, tracks=True),
            c,
            c.frame_agreement,
        )
    c = consensus_mod.box_consensus(anns, weights, iou_threshold=thr)
    if job.annotation_type == AnnotationType.POLYGON:
        best = int(np.argmax(c.annotator_agreement))
        return POLYGON_ALGORITHM, subs[best].frames, c, c.frame_agreement
    return c.algorithm, shapes.from_annotation(c.frames, classes), c, c.frame_agreement


def _process_regular(mt: MicroTask) -> str:
    job = mt.job
    if mt.status != MicroTaskStatus.OPEN:
        return f"microtask is {mt.status}"
    suspended = set(
        WorkerTrust.objects.filter(annotation_type=job.annotation_type, suspended=True).values_list(
            "worker_id", flat=True
        )
    )
    done = [
        a
        for a in Assignment.objects.filter(
            microtask=mt, status__in=(AssignmentStatus.SUBMITTED, AssignmentStatus.APPROVED)
        )
        .select_related("submission", "worker")
        .order_by("submitted_at", "pk")
        if hasattr(a, "submission")
    ]
    rows = [a for a in done if a.worker_id not in suspended]
    # Work of a suspended worker does not count; their suspension added a replica in its place.
    needed = mt.replica_target - (len(done) - len(rows))
    if len(rows) < needed:
        return "waiting for replicas"
    trusts = {
        t.worker_id: t.trust
        for t in WorkerTrust.objects.filter(
            annotation_type=job.annotation_type, worker_id__in=[a.worker_id for a in rows]
        )
    }
    prior = trust.trust_estimate([], now=_now()).trust
    weights = [trust.vote_weight(trusts.get(a.worker_id, prior)) for a in rows]
    algorithm, frames, c, frame_agreement = run_consensus(
        job, [a.submission for a in rows], weights
    )
    per = np.asarray(c.annotator_agreement, dtype=np.float64)
    pol = _policy(job)
    decision = policy.decide_overlap(
        submitted=len(rows),
        replica_target=needed,
        overlap_max=job.overlap_max,
        agreement=float(c.agreement),
        agreement_threshold=job.agreement_threshold,
        confidence=float(np.asarray(weights)[per >= job.agreement_threshold].sum()),
        min_confidence=pol.min_confidence,
    )
    ConsensusResult.objects.filter(microtask=mt, is_current=True).exclude(
        algorithm=algorithm
    ).update(is_current=False)
    ConsensusResult.objects.update_or_create(
        microtask=mt,
        algorithm=algorithm,
        defaults={
            "frames": frames,
            "agreement": float(c.agreement),
            "frame_agreement": {str(k): round(float(v), 4) for k, v in frame_agreement.items()},
            "annotator_agreement": {
                str(a.pk): round(float(x), 4) for a, x in zip(rows, per, strict=True)
            },
            "replicas": len(rows),
            "decision": {
                policy.OverlapAction.ACCEPT: ConsensusDecision.ACCEPT,
                policy.OverlapAction.ADD_REPLICA: ConsensusDecision.ADD_REPLICA,
                policy.OverlapAction.REVIEW: ConsensusDecision.REVIEW,
            }[decision.action],
            "is_current": True,
        },
    )
    if decision.action == policy.OverlapAction.ADD_REPLICA:
        mt.replica_target += 1
        mt.save(update_fields=["replica_target"])
        _fill_slots_later(job.pk)
        return "replica added"
    if decision.action == policy.OverlapAction.REVIEW:
        mt.status = MicroTaskStatus.REVIEW
        mt.save(update_fields=["status"])
        ReviewItem.objects.get_or_create(
            microtask=mt, status=ReviewStatus.OPEN, defaults={"job": job, "reason": decision.reason}
        )
        return "sent to review"
    mt.status = MicroTaskStatus.COMPLETE
    mt.save(update_fields=["status"])
    if len(rows) < 2:
        # One annotator agrees with nobody: their answer is the result, but it says nothing
        # about their trust, and approval is the requester's (or the auto-approval delay's).
        return "accepted (single replica)"
    frame_share = None
    if frame_agreement:
        frame_share = float(
            np.mean([v >= job.agreement_threshold for v in frame_agreement.values()])
        )
    # Trust rows are locked in worker order, so concurrent microtasks cannot deadlock on them
    # (a deadlock that still happens is an OperationalError: the task retries, idempotently).
    for a, agreement in sorted(zip(rows, per, strict=True), key=lambda p: p[0].worker_id):
        trust_record(
            worker=a.worker,
            annotation_type=job.annotation_type,
            kind=trust.AGREEMENT,
            score=float(agreement),
            assignment=a,
            note=f"agreement with the other annotators {agreement:.2f}",
        )
        _apply_approval(
            a,
            policy.decide_approval(
                gold_score=None,
                gold_pass_threshold=job.gold_pass_threshold,
                agreement=float(agreement),
                agreement_threshold=job.agreement_threshold,
                frames_passed_share=frame_share,
                partial_credit=pol.partial_credit,
                reject_below_ratio=pol.reject_below_ratio,
            ),
            pol,
        )
    return "accepted"


def _approve(assignment: Assignment, *, credit: float, by: User | None = None) -> None:
    assignment.status = AssignmentStatus.APPROVED
    assignment.reviewed_at = _now()
    assignment.reviewed_by = by
    assignment.save(update_fields=["status", "reviewed_at", "reviewed_by"])
    budget.pay(assignment=assignment, credit=credit)


def _reject(assignment: Assignment, *, reason: str, by: User | None = None) -> None:
    assignment.status = AssignmentStatus.REJECTED
    assignment.reviewed_at = _now()
    assignment.reviewed_by = by
    assignment.rejection_reason = reason[:500]
    assignment.pay_amount = 0
    assignment.save(
        update_fields=["status", "reviewed_at", "reviewed_by", "rejection_reason", "pay_amount"]
    )
    budget.unpaid(assignment=assignment)


def _apply_approval(
    assignment: Assignment, decision: policy.ApprovalDecision, pol: JobQualityPolicy
) -> None:
    assignment = Assignment.objects.select_for_update().get(pk=assignment.pk)
    if assignment.status != AssignmentStatus.SUBMITTED:
        return
    if decision.action == policy.ApprovalAction.APPROVE and pol.auto_approve:
        _approve(assignment, credit=decision.credit)
    elif decision.action == policy.ApprovalAction.REJECT and pol.auto_reject:
        _reject(assignment, reason=decision.reason[0].upper() + decision.reason[1:] + ".")


# --- Fraud ---------------------------------------------------------------------------------------


def _flag_fraud(mt: MicroTask) -> int:
    job = mt.job
    rows = list(
        Assignment.objects.filter(
            microtask=mt,
            status__in=(
                AssignmentStatus.SUBMITTED,
                AssignmentStatus.APPROVED,
                AssignmentStatus.REJECTED,
            ),
        ).select_related("submission")
    )
    if len(rows) < 2 or job.annotation_type == AnnotationType.CLASSIFY:
        return 0
    classes = list(job.label_classes)
    views = []
    for a in rows:
        sub = getattr(a, "submission", None)
        if sub is None:
            continue
        seconds = a.active_seconds if a.active_seconds is not None else a.work_seconds
        views.append(
            fraud.SubmissionView(
                key=a.pk,
                worker=a.worker_id,
                annotation=shapes.to_annotation(sub.frames, classes),
                seconds=seconds,
                order=a.submitted_at.timestamp() if a.submitted_at else 0.0,
            )
        )
    n = 0
    for sig in fraud.fraud_signals(views):
        _, created = FraudFlag.objects.get_or_create(
            assignment_id=sig.key,
            kind=sig.kind,
            defaults={"worker_id": sig.worker, "job": job, "evidence": sig.evidence},
        )
        n += created
    return n


def fraud_flag_inflated_time(*, assignment: Assignment, evidence: dict[str, Any]) -> FraudFlag:
    """Record that a worker reported more active time on ``assignment`` than can be credited
    (one flag per assignment; a later report updates its evidence while it is open)."""
    flag, created = FraudFlag.objects.get_or_create(
        assignment=assignment,
        kind=fraud.INFLATED_TIME,
        defaults={
            "worker_id": assignment.worker_id,
            "job_id": assignment.microtask.job_id,
            "evidence": evidence,
        },
    )
    if not created and flag.status == "open":
        flag.evidence = evidence
        flag.save(update_fields=["evidence"])
    return flag


@transaction.atomic
def fraud_flag_resolve(*, flag_id: int, by: User, confirmed: bool) -> FraudFlag:
    if not by.is_platform_admin:
        raise PermissionDenied("Only platform admins judge fraud flags.")
    flag = FraudFlag.objects.select_for_update().filter(pk=flag_id).first()
    if flag is None:
        raise NotFound("No such flag.")
    flag.status = "confirmed" if confirmed else "dismissed"
    flag.resolved_by = by
    flag.save(update_fields=["status", "resolved_by"])
    return flag


# --- Review queue --------------------------------------------------------------------------------


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
    mt = MicroTask.objects.select_for_update().select_related("job").get(pk=item.microtask_id)
    job = mt.job
    validated = _validate(mt, payload)
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
    pol = _policy(job)
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
            _checks(
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
        share = 1.0 - len(s.frames_off) / s.frames_total if s.frames_total else 0.0
        _apply_approval(
            a,
            policy.decide_approval(
                gold_score=s.score,
                gold_pass_threshold=job.gold_pass_threshold,
                agreement=None,
                agreement_threshold=job.agreement_threshold,
                frames_passed_share=share,
                partial_credit=pol.partial_credit,
                reject_below_ratio=pol.reject_below_ratio,
            ),
            pol,
        )
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
        _restore_reservation(assignment, key=f"appeal:{appeal.pk}")
        assignment.rejection_reason = ""
        assignment.save(update_fields=["rejection_reason"])
        _approve(assignment, credit=1.0, by=by)
        # The rejection was wrong: it stops counting against the worker's standing.
        _void_standing_evidence(
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


def _restore_reservation(assignment: Assignment, *, key: str) -> None:
    """Undo a rejection's release of the reservation, so the work can be paid after all."""
    unpaid = LedgerTransaction.objects.filter(key=f"assignment:{assignment.pk}:unpaid").first()
    if unpaid is not None:
        pay_posting.ledger_reverse(
            transaction_=unpaid,
            key=f"{key}:reverse-unpaid",
            memo=f"Appeal upheld: assignment #{assignment.pk} is paid after all",
        )


# --- Job-wide class aggregation (Dawid-Skene) ---------------------------------------------------


@transaction.atomic
def job_classes_aggregate(*, job_id: int) -> int:
    """Re-aggregate every classification label of a job with Dawid-Skene (majority vote when
    there are too few labels) and make it the current result of the settled microtasks.

    Per-microtask weighted votes decide overlap as replicas arrive; with the whole job's labels,
    Dawid-Skene learns each worker's confusions and corrects what a vote gets wrong. Returns the
    number of microtasks whose result it wrote.
    """
    from . import dawid_skene

    job = Job.objects.get(pk=job_id)
    if job.annotation_type != AnnotationType.CLASSIFY:
        return 0
    classes = list(job.label_classes)
    suspended = set(
        WorkerTrust.objects.filter(annotation_type=job.annotation_type, suspended=True).values_list(
            "worker_id", flat=True
        )
    )
    rows = (
        Assignment.objects.filter(
            microtask__job=job,
            microtask__is_gold=False,
            status__in=(AssignmentStatus.SUBMITTED, AssignmentStatus.APPROVED),
        )
        .exclude(worker_id__in=suspended)
        .select_related("submission")
        .order_by("pk")
    )
    item_index: dict[tuple[int, int], int] = {}
    worker_index: dict[int, int] = {}
    t: list[int] = []
    w: list[int] = []
    lab: list[int] = []
    owner: list[int] = []
    mt_of: dict[int, int] = {}
    for a in rows:
        sub = getattr(a, "submission", None)
        if sub is None:
            continue
        mt_of[a.pk] = a.microtask_id
        for frame, label in shapes.to_labels(sub.frames, classes).items():
            if label < 0:
                continue
            t.append(item_index.setdefault((a.microtask_id, frame), len(item_index)))
            w.append(worker_index.setdefault(a.worker_id, len(worker_index)))
            lab.append(label)
            owner.append(a.pk)
    if not t:
        return 0
    agg = dawid_skene.aggregate(np.array(t), np.array(w), np.array(lab), n_classes=len(classes))
    tt, ll, oo = np.array(t), np.array(lab), np.array(owner)
    hit = agg.labels[tt] == ll
    per_assignment = {int(k): round(float(hit[oo == k].mean()), 4) for k in np.unique(oo)}
    by_mt: dict[int, dict[int, int]] = {}
    conf: dict[int, list[float]] = {}
    for (mt_id, frame), idx in item_index.items():
        by_mt.setdefault(mt_id, {})[frame] = int(agg.labels[idx])
        conf.setdefault(mt_id, []).append(float(agg.confidence[idx]))
    settled = set(
        MicroTask.objects.filter(pk__in=list(by_mt), status=MicroTaskStatus.COMPLETE).values_list(
            "pk", flat=True
        )
    )
    written = 0
    for mt_id, labels in by_mt.items():
        if mt_id not in settled:
            continue
        mine = {k: v for k, v in per_assignment.items() if mt_of.get(k) == mt_id}
        ConsensusResult.objects.filter(microtask_id=mt_id, is_current=True).exclude(
            algorithm=agg.algorithm
        ).update(is_current=False)
        ConsensusResult.objects.update_or_create(
            microtask_id=mt_id,
            algorithm=agg.algorithm,
            defaults={
                "frames": shapes.from_labels(labels, classes),
                "agreement": float(np.mean(conf[mt_id])),
                "annotator_agreement": {str(k): v for k, v in mine.items()},
                "replicas": len(mine),
                "decision": ConsensusDecision.ACCEPT,
                "is_current": True,
            },
        )
        written += 1
    return written


# --- Policy --------------------------------------------------------------------------------------

# The summed vote weight (log-odds of trust) agreeing workers must reach; a few trusted workers
# give single digits, so anything past this could never be reached and would stall every job.
MIN_CONFIDENCE_MAX = 100.0

POLICY_FIELDS = frozenset(
    {"partial_credit", "auto_approve", "auto_reject", "reject_below_ratio", "min_confidence"}
)


@transaction.atomic
def job_quality_policy_update(*, job_id: int, by: User, **fields: Any) -> JobQualityPolicy:
    job = _visible_job(job_id=job_id, by=by)
    unknown = set(fields) - POLICY_FIELDS
    if unknown:
        raise ValidationError(f"Unknown policy fields: {', '.join(sorted(unknown))}.")
    pol, _ = JobQualityPolicy.objects.select_for_update().get_or_create(job=job)
    for k, v in fields.items():
        setattr(pol, k, v)
    ranges = {"reject_below_ratio": (0.0, 1.0), "min_confidence": (0.0, MIN_CONFIDENCE_MAX)}
    for name, (lo, hi) in ranges.items():
        value = getattr(pol, name)
        if not (bounds.is_real_number(value) and lo <= value <= hi):
            raise ValidationError(
                f"{name} must be a number between {lo:g} and {hi:g}.",
                extra={"fields": {name: [f"between {lo:g} and {hi:g}"]}},
            )
    pol.save()
    return pol
