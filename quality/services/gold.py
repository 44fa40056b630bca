"""Gold: known answers set by hand or imported (COCO, CVAT, MOT), scoring against them, and the
validation of a requester's gold.

An admin's gold counts platform-wide at once. A requester's starts pending: it moves workers'
standing with that requester only, may approve work but never reject it on its own, and becomes
valid when the trusted workers who answered it agree with it (or an admin says so), at which
point every result scored against it counts platform-wide (``gold_promote``). Trusted workers
who disagree make it disputed, for an admin to decide (``gold_validate``). The rules are
``quality.standing``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.db import transaction

from marketplace.errors import Conflict, NotFound, PermissionDenied, ValidationError
from marketplace.models import AnnotationType, Job, User
from marketplace.selectors import jobs_visible_to
from tasks import budget
from tasks.models import AssignmentStatus, MicroTask, MicroTaskStatus, Slot

from .. import gold_formats, policy, scoring, shapes, standing, trust
from ..boxes import FrameBoxes
from ..models import (
    GoldAnswer,
    GoldResult,
    GoldSource,
    GoldValidatedVia,
    GoldValidation,
    StandingEvidence,
)
from . import approval
from .common import now as _now
from .common import policy_for, validate, visible_job
from .evidence import checks_of, trust_record, void_standing_evidence

logger = logging.getLogger(__name__)


class GoldImportError(ValidationError):
    """The known answers could not be imported."""

    code = "gold_import_invalid"


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
    validated = validate(mt, payload)
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
    job = visible_job(job_id=job_id, by=by)
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
        attributes=job.label_attributes,
        relations=bool(job.relation_predicates),
    )


# --- Validation of a requester's gold ------------------------------------------------------


def made_by_admin(gold: GoldAnswer) -> bool:
    return gold.created_by is not None and gold.created_by.is_platform_admin


def _gold_verdict(gold: GoldAnswer, job: Job) -> standing.Verdict:
    outcomes = list(
        GoldResult.objects.filter(microtask_id=gold.microtask_id).values_list("worker_id", "passed")
    )
    return standing.answer_verdict(checks_of(outcomes, job.annotation_type))


def gold_promote(gold: GoldAnswer, job: Job) -> int:
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
    pol = policy_for(job)
    n_frames = len(gold.frames or {}) or 1
    for r in results:
        if r.assignment.status != AssignmentStatus.SUBMITTED:
            continue
        decision = approval.decide(
            job,
            pol,
            gold_score=r.score,
            frames_passed_share=policy.frames_passed_share(
                frames_off=len(r.frames_off), frames_total=n_frames
            ),
        )
        # Work it passed was approved when it was scored; only rejections were held back.
        if decision.action == policy.ApprovalAction.REJECT:
            approval.apply(r.assignment, decision)
    return len(results)


def gold_revalidate(gold: GoldAnswer, job: Job) -> str:
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
        gold_promote(gold, job)
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
        gold_promote(gold, mt.job)
        return gold
    # Refusing a gold that already counted platform-wide leaves that trust evidence as history
    # (trust is not rewritten after the fact); from now on it counts nowhere.
    gold.validation = GoldValidation.REFUSED
    gold.validated_via = ""
    gold.save()
    void_standing_evidence(
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
