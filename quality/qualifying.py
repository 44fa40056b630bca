"""Qualification tests, quality's side: scoring a worker's answers and passing or failing them,
and turning a gold microtask into a question.

A question is scored exactly like a paid gold submission: by ``quality.scoring.score_stored``,
the function ``quality.services.score_frames`` applies to gold (boxes: F1 x mean IoU of the
boxes matched at IoU ≥ ``QUALIFICATION_IOU_THRESHOLD``; tracks: that and IDF1; polygons: the same
on mask IoU; classification: accuracy). A worker passes with a mean score over the questions
≥ ``QUALIFICATION_PASS_SCORE`` and has ``QUALIFICATION_MAX_ATTEMPTS``. The questions, their
models and the test's terms are tasks' (``tasks.qualifying``, ``tasks.qualification_bank``); this
module is here, above tasks, because it scores with quality's gold scoring and reads gold answers.

A worker suspended from the type cannot retake the test until the suspension's terms allow it
(``tasks.suspensions``); passing it then ends the suspension and tells quality
(``signals.qualification_reinstated``), which keeps the worker's trust where it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from marketplace.errors import Conflict, NotFound, PermissionDenied, ValidationError
from marketplace.models import AnnotationType, Qualification, QualificationStatus, User
from tasks import qualification_bank, signals, suspensions
from tasks.annotations import AnnotationInvalid, answer_path, validate_payload
from tasks.models import MicroTask, QualificationAttempt, QualificationItem
from tasks.qualifying import (
    iou_threshold,
    item_context,
    max_attempts,
    pass_score,
    qualification_items,
)

from .models import GoldAnswer
from .scoring import score_stored


def item_score(item: QualificationItem, frames: dict[str, list[dict]]) -> float:
    """Score of per-frame shapes ``frames`` (a validated answer's) on ``item``, in [0, 1]: the
    gold scoring of ``quality`` with the qualification thresholds."""
    truth = validate_payload(item.answer.payload, item_context(item))
    return score_stored(
        item.annotation_type,
        truth.frames,
        frames,
        classes=list(item.label_classes),
        iou_threshold=iou_threshold(),
        pass_threshold=pass_score(),
        attributes=item.label_attributes,
        relations=bool(item.relation_predicates),
    ).score


@dataclass(frozen=True)
class QualificationResult:
    qualification: Qualification
    attempt: QualificationAttempt


@transaction.atomic
def qualification_submit(
    *, worker: User, annotation_type: str, responses: dict[str, Any]
) -> QualificationResult:
    """Score ``responses`` (``{"<item id>": payload}``) and pass or fail the worker."""
    if not worker.is_worker:
        raise PermissionDenied("Only workers take qualification tests.")
    if annotation_type not in AnnotationType.values:
        raise ValidationError(f"Unknown annotation type {annotation_type!r}.")
    qual, _ = Qualification.objects.select_for_update().get_or_create(
        worker=worker, annotation_type=annotation_type
    )
    if qual.status == QualificationStatus.PASSED:
        raise Conflict("You already passed this qualification.")
    if suspensions.is_suspended(qual):
        raise suspensions.refusal(qual)
    ends_suspension = qual.status == QualificationStatus.SUSPENDED or qual.suspensions > 0
    attempts_allowed = max_attempts()
    if qual.attempts >= attempts_allowed:
        raise PermissionDenied(
            f"You have used all {attempts_allowed} attempts at this qualification."
        )
    items = qualification_items(annotation_type=annotation_type)
    if not items:
        raise Conflict("There is no qualification test for this annotation type yet.")
    if not isinstance(responses, dict):
        raise ValidationError("answers must be an object keyed by question id.")
    fields: dict[str, list[str]] = {}
    validated = {}
    for item in items:
        payload = responses.get(str(item.pk))
        if payload is None:
            fields[answer_path(item.pk)] = ["answer this question"]
            continue
        try:
            validated[item.pk] = validate_payload(payload, item_context(item))
        except AnnotationInvalid as exc:
            for path, messages in exc.fields.items():
                fields[answer_path(item.pk, path)] = messages
    if fields:
        raise ValidationError("Some answers are not valid.", extra={"fields": fields})

    needed = pass_score()
    scores = [item_score(item, validated[item.pk].frames) for item in items]
    score = sum(scores) / len(scores)
    passed = score >= needed
    attempt = QualificationAttempt.objects.create(
        worker=worker,
        annotation_type=annotation_type,
        responses={str(k): v.payload for k, v in validated.items()},
        score=score,
        passed=passed,
    )
    qual.attempts += 1
    qual.score = score
    if passed:
        qual.status = QualificationStatus.PASSED
    elif qual.status != QualificationStatus.SUSPENDED:
        # A failed retake after a suspension's cooldown leaves it suspended (ended terms,
        # the same message): only a pass ends it.
        qual.status = QualificationStatus.FAILED
    qual.save(update_fields=["attempts", "score", "status", "updated_at"])
    if passed and ends_suspension:
        signals.qualification_reinstated.send(
            sender=Qualification, worker=worker, annotation_type=annotation_type
        )
    return QualificationResult(qual, attempt)


def qualification_item_from_gold(*, microtask_id: int) -> QualificationItem:
    """A qualification question made of a gold microtask and its known answer
    (``tasks.qualification_bank.qualification_item_from_microtask`` copies it).

    The microtask stays gold: every worker taking the test sees these pictures, so an admin may
    want to retire it from the job's gold afterwards.
    """
    mt = MicroTask.objects.select_related("job", "video").filter(pk=microtask_id).first()
    if mt is None:
        raise NotFound("No such microtask.")
    gold = GoldAnswer.objects.filter(microtask=mt).first()
    if not mt.is_gold or gold is None:
        raise Conflict(f"Microtask #{mt.pk} is not gold with a known answer.")
    return qualification_bank.qualification_item_from_microtask(mt=mt, answer=gold.payload)
