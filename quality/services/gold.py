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

from marketplace import label_schema
from marketplace.errors import Conflict, NotFound, PermissionDenied, ValidationError
from marketplace.models import AnnotationType, Job, User
from marketplace.selectors import jobs_visible_to
from tasks import budget, rle
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


FORMATS = ("coco", "cvat", "mot", "activitynet")


def _refused(exc: gold_formats.GoldFormatError) -> GoldImportError:
    """The parser's complaint as a 400 with the place in the file as its field."""
    where = f"content.{exc.field}" if exc.field else "content"
    message = f"The file's {exc.field} {exc}." if exc.field else str(exc)
    return GoldImportError(message, extra={"fields": {where: [str(exc)]}})


def _frames_needed(mt: MicroTask, annotation_type: str):
    if annotation_type in ("track", "event") or not mt.frames:
        return range(mt.frame_start, mt.frame_end + 1)
    return [int(f) for f in mt.frames]


def _unknown_labels(labels: set[str], classes: list[str], what: str = "labels") -> None:
    unknown = sorted(labels - set(classes))
    if unknown:
        message = (
            f"The file has {what} this job does not know: {', '.join(unknown[:10])}. "
            f"The job's {what} are: {', '.join(classes)}."
        )
        raise GoldImportError(message, extra={"fields": {"content": [message]}})


def _set_answer(mt: MicroTask, payload: dict, *, by: User, fmt: str, frame: str) -> GoldAnswer:
    """``gold_answer_set`` with a payload error placed under ``content`` (what the file says on
    which microtask) rather than a payload path the requester never wrote."""
    try:
        return gold_answer_set(microtask_id=mt.pk, payload=payload, by=by, source=fmt)
    except ValidationError as exc:
        fields = {
            f"content.{frame}.{path}": msgs for path, msgs in exc.extra.get("fields", {}).items()
        } or {"content": [exc.message]}
        raise GoldImportError(
            f"The file's answer for microtask {mt.pk} is not valid: {exc.message}",
            extra={"fields": fields},
        ) from None


def _import_shapes(job: Job, fmt: str, text: str, qs, by: User) -> list[GoldAnswer]:
    """Masks (COCO RLE, CVAT ``<mask>``), and boxes or tracks with attributes and relations."""
    video = job.videos.order_by("pk").first()
    frame_size = (
        (video.frame_height or video.height or 0, video.frame_width or video.width or 0)
        if video is not None
        else (0, 0)
    )
    try:
        if fmt == "coco":
            parsed = gold_formats.parse_coco_shapes(text)
        else:  # CVAT's masks are in the source video's pixels
            source = (
                (video.height or frame_size[0], video.width or frame_size[1]) if video else (1, 1)
            )
            parsed = gold_formats.parse_cvat_shapes(text, size=source)
    except gold_formats.GoldFormatError as exc:
        raise _refused(exc) from None
    _unknown_labels(
        {sh["label"] for shs in parsed.frames.values() for sh in shs}, list(job.label_classes)
    )
    declared = label_schema.parse(job.label_attributes)
    for shs in parsed.frames.values():
        for sh in shs:
            attrs = sh.get("attributes") or {}
            for name in gold_formats.CVAT_SHAPE_ATTRIBUTES:
                if name in attrs and name not in declared.get(sh["label"], {}):
                    del attrs[name]
            if not attrs:
                sh.pop("attributes", None)
    if all(frame_size):
        for shs in parsed.frames.values():
            for sh in shs:
                if "rle" in sh:
                    sh["rle"] = rle.resize(sh["rle"], height=frame_size[0], width=frame_size[1])
    answers = []
    for mt in qs:
        needed = list(_frames_needed(mt, job.annotation_type))
        if not all(int(f) in parsed.frames for f in needed):
            continue
        if not mt.is_gold and mt.assignments.exists():
            continue
        try:
            payload = gold_formats.payload_from_shapes(
                parsed, needed, annotation_type=job.annotation_type
            )
        except gold_formats.GoldFormatError as exc:
            raise _refused(exc) from None
        answers.append(_set_answer(mt, payload, by=by, fmt=fmt, frame="answer"))
    return answers


def _video_entry(job: Job, entries: dict) -> dict:
    """Each of the job's videos with its entry of the ActivityNet file: by ``video-<id>`` (what
    the export writes), the uploaded file's name or its stem; one entry and one video match."""
    videos = list(job.videos.order_by("pk"))
    out = {}
    for v in videos:
        names = {f"video-{v.pk}", v.original_name, v.original_name.rsplit(".", 1)[0]}
        hit = next((n for n in entries if n in names), None)
        if hit is not None:
            out[v.pk] = (v, entries[hit])
    if not out and len(videos) == 1 and len(entries) == 1:
        out[videos[0].pk] = (videos[0], next(iter(entries.values())))
    if not out:
        message = (
            "The file names no video of this job; name them "
            + ", ".join(f"video-{v.pk}" for v in videos[:10])
            + " (or by their file names)."
        )
        raise GoldImportError(message, extra={"fields": {"content.database": [message]}})
    return out


def _import_events(job: Job, text: str, qs, by: User) -> list[GoldAnswer]:
    """An event job's answers from ActivityNet: each microtask gets the events that overlap its
    range, cut to it (an event across two microtasks is in both, as workers see it).

    A track job with event labels: the events (with their ``track_id``) join the tracks of the
    gold answers already there (imported from COCO, CVAT or MOT, or drawn), each on the tracks
    of its microtask; a microtask without a gold answer is left alone."""
    on_tracks = job.annotation_type == AnnotationType.TRACK
    try:
        entries = gold_formats.parse_activitynet(text)
    except gold_formats.GoldFormatError as exc:
        raise _refused(exc) from None
    labels = list(job.event_labels if on_tracks else job.label_classes)
    _unknown_labels(
        {e[0] for v in entries.values() for e in v.events},
        labels,
        "event labels" if on_tracks else "labels",
    )
    matched = _video_entry(job, entries)
    answers = []
    for mt in qs:
        if mt.video_id not in matched:
            continue
        video, entry = matched[mt.video_id]
        if not mt.is_gold and mt.assignments.exists():
            continue
        events = gold_formats.events_in_frames(entry, fps=video.fps or 25.0)
        mine = [
            {**e, "start": max(e["start"], mt.frame_start), "end": min(e["end"], mt.frame_end)}
            for e in events
            if e["start"] <= mt.frame_end and e["end"] >= mt.frame_start
        ]
        if not on_tracks:
            for e in mine:
                e.pop("track", None)
            payload = {"events": mine}
        else:
            gold = GoldAnswer.objects.filter(microtask=mt).first()
            if gold is None:
                continue
            payload = {k: v for k, v in (gold.payload or {}).items() if k != "events"}
            ids = {t.get("id") for t in payload.get("tracks", [])}
            payload["events"] = [e for e in mine if e.get("track") in ids]
        answers.append(_set_answer(mt, payload, by=by, fmt="activitynet", frame="events"))
    return answers


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
    """Import known answers as gold for the microtasks they cover: boxes and tracks from COCO,
    CVAT video XML or MOT (with their attributes and relations from COCO and CVAT when the job
    asks for them), masks from COCO (RLE) or CVAT (``<mask>``), events from ActivityNet.

    A microtask is covered when the file has every one of its frames (an event job's microtask
    by the file naming its video). All or nothing: a bad file, or a bad answer for one
    microtask, imports nothing (a 400 whose fields say where).
    """
    job = visible_job(job_id=job_id, by=by)
    if fmt not in FORMATS:
        raise GoldImportError(
            f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.",
            extra={"fields": {"format": [f"must be one of {', '.join(FORMATS)}"]}},
        )
    kind = job.annotation_type
    accepted = {
        AnnotationType.BBOX: ("coco", "cvat", "mot"),
        AnnotationType.TRACK: (
            "coco",
            "cvat",
            "mot",
            *(("activitynet",) if job.event_labels else ()),
        ),
        AnnotationType.MASK: ("coco", "cvat"),
        AnnotationType.EVENT: ("activitynet",),
    }.get(kind, ())
    if fmt not in accepted:
        message = f"A {kind} job's answers cannot be imported from {fmt}" + (
            f"; use {', '.join(accepted)}." if accepted else "; annotate them instead."
        )
        raise GoldImportError(message, extra={"fields": {"format": [message]}})
    qs = MicroTask.objects.filter(job=job).order_by("video_id", "index")
    if microtask_ids is not None:
        qs = qs.filter(pk__in=list(microtask_ids))
    if fmt == "activitynet":
        answers = _import_events(job, text, qs, by)
    elif kind == AnnotationType.MASK or (
        fmt != "mot" and (job.label_attributes or job.relation_predicates)
    ):
        answers = _import_shapes(job, fmt, text, qs, by)
    else:
        answers = _import_boxes(job, fmt, text, qs, by, default_label=default_label)
    if not answers:
        message = "The file covers no microtask of this job completely (or they are already taken)."
        raise GoldImportError(message, extra={"fields": {"content": [message]}})
    return answers


def _import_boxes(job: Job, fmt: str, text: str, qs, by: User, *, default_label: str):
    try:
        if fmt == "mot":
            records = gold_formats.parse_mot(
                text, default_label=default_label or (job.label_classes or [""])[0]
            )
        else:
            records = gold_formats.PARSERS[fmt](text)
    except gold_formats.GoldFormatError as exc:
        raise _refused(exc) from None
    classes = list(job.label_classes)
    _unknown_labels({r[0] for recs in records.values() for r in recs}, classes)
    answers = []
    for mt in qs:
        needed = _frames_needed(mt, job.annotation_type)
        if not all(int(f) in records for f in needed):
            continue
        if not mt.is_gold and mt.assignments.exists():
            continue
        payload = _payload_from_records(records, mt, job.annotation_type, classes)
        answers.append(_set_answer(mt, payload, by=by, fmt=fmt, frame="answer"))
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
