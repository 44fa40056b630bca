"""Model-assisted work on the live scoring path: what an accepted proposal weighs in consensus,
how each proposal source is measured per job, and each worker's record on proposals (with the
blind-accept flag it feeds). The rules are :mod:`quality.assist`'s (pure); this module reads and
writes the rows they need.

Read this before changing anything:

* **Source accuracy** is measured only against references the proposal could not have shaped:
  gold answers, and the consensus of a microtask that was not verify-and-correct and whose
  replicas took *nothing* from that source (an anchored consensus would flatter the model,
  ``quality.assist`` section 1). Each (proposal, kind) is compared once (``SourceComparison``'s
  unique constraint), so a redelivered scoring or a second worker on the same gold microtask
  does not count it twice.
* **A worker's record** (``VerifierStats``) moves once per submission: only while the
  submission is not yet processed, under its microtask's lock (:func:`quality.services.processing.
  submission_process` re-reads ``processed_at`` after taking it).
* **Lock order**: these writes come last in a scoring, after trust rows, assignments and the
  escrow account (the order ``processing`` documents): one worker's ``VerifierStats`` row, never
  two, so no scoring waits on another's row while holding one it wants.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Sum

from marketplace.models import AnnotationType, Job
from tasks.annotations import TOP_KEY, AnnotationInvalid, validate_payload
from tasks.claiming import annotation_context
from tasks.models import Assignment, MicroTask, Proposal, Submission
from tasks.proposal_sources import box_iou, polygon_bounds
from tasks.proposals import shown_proposals

from .. import assist, shapes
from ..boxes import Annotation, FrameBoxes
from ..models import GoldAnswer, GoldValidation, SourceComparison, VerifierStats
from ..selectors import source_accuracy_of
from .flags import fraud_flag_blind_accept

POLICY = assist.DEFAULT_POLICY
PROPOSABLE = (AnnotationType.BBOX, AnnotationType.TRACK, AnnotationType.POLYGON)


# --- shapes as consensus sees them ---------------------------------------------------------------


def frames_annotation(job: Job, frames: Mapping[str, Any]) -> Any:
    """Stored per-frame shapes as the job's consensus compares them: labels for classification,
    the polygons' extents for polygon work, boxes otherwise."""
    classes = list(job.label_classes)
    if job.annotation_type == AnnotationType.CLASSIFY:
        return shapes.to_labels(frames, classes)
    if job.annotation_type == AnnotationType.POLYGON:
        out = {}
        for f, polys in shapes.to_polygons(frames).items():
            boxes = [[p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()] for p in polys]
            out[f] = FrameBoxes.make(boxes)
        return out
    return shapes.to_annotation(frames, classes)


def proposal_annotation(microtask: MicroTask, proposal: Proposal) -> Annotation | None:
    """A stored proposal as per-frame boxes of ``microtask`` (None if it no longer validates)."""
    job = microtask.job
    try:
        v = validate_payload(
            {TOP_KEY[job.annotation_type]: proposal.shapes}, annotation_context(microtask)
        )
    except AnnotationInvalid:
        return None
    return frames_annotation(job, v.frames)


# --- source accuracy -----------------------------------------------------------------------------


def _compare(
    microtask: MicroTask, proposals: Sequence[Proposal], reference: Annotation, *, kind: str
) -> int:
    job = microtask.job
    n = 0
    for p in proposals:
        ann = proposal_annotation(microtask, p)
        if ann is None:
            continue
        confidence = assist.proposal_confidence(p.confidences or [p.confidence])
        c = assist.compare(
            ann, reference, kind=kind, confidence=confidence, iou_threshold=job.iou_threshold
        )
        try:
            with transaction.atomic():
                SourceComparison.objects.create(
                    job_id=job.pk,
                    microtask=microtask,
                    proposal=p,
                    source=p.source,
                    kind=kind,
                    hits=c.hits,
                    misses=c.misses,
                    confidence=confidence,
                )
        except IntegrityError:  # compared before (a redelivery, another worker's gold)
            continue
        n += 1
    return n


def sources_against_consensus(
    *, microtask: MicroTask, reference: Annotation, rows: Sequence[Assignment]
) -> int:
    """Measure the microtask's proposals against its consensus, for the sources none of the
    replicas took anything from, on full-annotation work only; returns comparisons made."""
    if microtask.job.annotation_type not in PROPOSABLE or microtask.assist_mode == "verify":
        return 0
    used = {
        item.get("source")
        for a in rows
        for item in (getattr(a, "submission", None) and a.submission.provenance) or []
    }
    proposals = [p for p in shown_proposals(microtask) if p.source not in used]
    return _compare(microtask, proposals, reference, kind=assist.CONSENSUS)


def sources_against_gold(*, microtask: MicroTask, answer_frames: Mapping[str, Any]) -> int:
    """Measure the gold microtask's proposals against its answer (the model never saw it)."""
    if microtask.job.annotation_type not in PROPOSABLE:
        return 0
    reference = frames_annotation(microtask.job, answer_frames)
    return _compare(microtask, shown_proposals(microtask), reference, kind=assist.GOLD)


# --- a worker's record on proposals --------------------------------------------------------------


def _record(stats: VerifierStats | None) -> assist.VerifierRecord:
    if stats is None:
        return assist.VerifierRecord()
    return assist.VerifierRecord(
        seen=stats.seen,
        corrected=stats.corrected,
        wrong_seen=stats.wrong_seen,
        wrong_fixed=stats.wrong_fixed,
    )


@dataclass(frozen=True)
class _Taken:
    """What one submission took from one source."""

    source: str
    items: list[dict]
    corrections: assist.Corrections


def _taken(sub: Submission, annotation_type: str) -> list[_Taken]:
    """Per source a submission took shapes from: its provenance items and corrections. Shapes
    drawn from scratch count as added to the source most taken from (the one the worker
    verified); the other sources' proposals count only for what was taken."""
    prov = [p for p in (sub.provenance or []) if isinstance(p, dict) and p.get("source")]
    if not prov:
        return []
    drawn = max(0, _submitted(sub, annotation_type) - len(prov))
    by_source: dict[str, list[dict]] = {}
    for p in prov:
        by_source.setdefault(p["source"], []).append(p)
    main = Counter(p["source"] for p in prov).most_common(1)[0][0]
    sizes = dict(
        Proposal.objects.filter(pk__in={p.get("proposal") for p in prov}).values_list(
            "pk", "shapes"
        )
    )
    out = []
    for source, its in sorted(by_source.items()):
        proposed = sum(len(sizes.get(pid) or []) for pid in {p.get("proposal") for p in its})
        c = assist.corrections(
            its,
            proposed=proposed,
            submitted=len(its) + (drawn if source == main else 0),
            tolerance=POLICY.moved_tolerance,
        )
        out.append(_Taken(source, its, c))
    return out


def _submitted(sub: Submission, annotation_type: str) -> int:
    items = (sub.payload or {}).get(TOP_KEY.get(annotation_type, ""), [])
    return len(items) if isinstance(items, list) else 0


def replica_independence(
    job: Job, rows: Sequence[Assignment], trusts: Mapping[int, float], prior: float
) -> list[float] | None:
    """Each replica's independence for consensus (``quality.assist.independence_of``): 1 for
    work drawn from scratch, less for proposals accepted, by the worker's record of checking.
    None when no replica took anything from a proposal (consensus as before)."""
    taken = [_taken(a.submission, job.annotation_type) for a in rows]
    if not any(taken):
        return None
    sources = {t.source for ts in taken for t in ts}
    stats = {
        (s.worker_id, s.source): s
        for s in VerifierStats.objects.filter(
            job=job, source__in=sources, worker_id__in=[a.worker_id for a in rows]
        )
    }
    accuracy = {s: source_accuracy_of(job_id=job.pk, source=s) for s in sources}
    crowd = {
        r["source"]: (r["c"] / r["s"] if r["s"] else None)
        for r in VerifierStats.objects.filter(job=job, source__in=sources)
        .values("source")
        .annotate(c=Sum("corrected"), s=Sum("seen"))
    }
    out = []
    for a, ts in zip(rows, taken, strict=True):
        if not ts:
            out.append(1.0)
            continue
        main = max(ts, key=lambda t: len(t.items))
        out.append(
            assist.independence_of(
                [i for t in ts for i in t.items],
                proposed=sum(t.corrections.proposed for t in ts),
                submitted=_submitted(a.submission, job.annotation_type),
                record=_record(stats.get((a.worker_id, main.source))),
                source=accuracy[main.source],
                trust=trusts.get(a.worker_id, prior),
                crowd_rate=crowd.get(main.source),
                policy=POLICY,
            )
        )
    return out


def verify_shares(job: Job, rows: Sequence[Assignment]) -> list[float]:
    """Per verify replica, the share of the proposal it corrected (``quality.assist.
    corrections``); a replica that took nothing from it redrew everything (1)."""
    out = []
    for a in rows:
        ts = _taken(a.submission, job.annotation_type)
        out.append(max(t.corrections.share for t in ts) if ts else 1.0)
    return out


def _extent(shape: Mapping[str, Any]) -> list[float] | None:
    if shape.get("box"):
        return [float(v) for v in shape["box"]]
    if shape.get("points"):
        return polygon_bounds(shape["points"])
    return None


def _gold_errors(submission: Submission, taken: Sequence[_Taken]) -> dict[str, tuple[int, int]]:
    """On a gold microtask, per source: (proposed shapes the answer shows wrong, of them the ones
    the worker fixed: deleted, or moved beyond tolerance). The model's own errors on gold measure
    a worker's check power directly (``quality.assist.check_power``). Per-frame shapes only
    (boxes, polygons); tracks are not counted."""
    mt = submission.assignment.microtask
    job = mt.job
    if not mt.is_gold or job.annotation_type not in (AnnotationType.BBOX, AnnotationType.POLYGON):
        return {}
    gold = GoldAnswer.objects.filter(microtask=mt).exclude(validation=GoldValidation.REFUSED)
    answer = gold.values_list("frames", flat=True).first()
    if answer is None:
        return {}
    truth: dict[int, list[list[float]]] = {}
    for f, items in answer.items():
        truth[int(f)] = [b for b in (_extent(s) for s in items) if b is not None]
    out = {}
    for t in taken:
        kept = {(i.get("proposal"), i.get("index")): i for i in t.items}
        wrong = fixed = 0
        for p in Proposal.objects.filter(pk__in={pid for pid, _ in kept}):
            for index, shape in enumerate(p.shapes):
                box = _extent(shape)
                if box is None or "frame" not in shape:
                    continue
                if any(
                    box_iou(box, g) >= job.iou_threshold for g in truth.get(int(shape["frame"]), [])
                ):
                    continue
                wrong += 1
                item = kept.get((p.pk, index))
                fixed += item is None or (
                    not item.get("unchanged")
                    and float(item.get("moved", 1.0)) > POLICY.moved_tolerance
                )
        out[t.source] = (wrong, fixed)
    return out


def verifier_stats_record(*, submission: Submission) -> list[VerifierStats]:
    """Add one submission to its worker's record on each source it took shapes from, then run
    the blind-accept test on that record (a flag for an admin when it tips). Call once per
    submission (the caller checks it is not processed yet, under the microtask's lock)."""
    a = submission.assignment
    job = a.microtask.job
    out = []
    taken = _taken(submission, job.annotation_type)
    errors = _gold_errors(submission, taken)
    for t in taken:
        c = t.corrections
        wrong, fixed = errors.get(t.source, (0, 0))
        unchanged = sum(1 for i in t.items if i.get("unchanged"))
        VerifierStats.objects.get_or_create(worker_id=a.worker_id, job=job, source=t.source)
        VerifierStats.objects.filter(worker_id=a.worker_id, job=job, source=t.source).update(
            seen=F("seen") + c.proposed + c.added,
            corrected=F("corrected") + c.moved + c.deleted + c.added,
            proposed=F("proposed") + c.proposed,
            accepted_unchanged=F("accepted_unchanged") + min(unchanged, c.proposed),
            wrong_seen=F("wrong_seen") + wrong,
            wrong_fixed=F("wrong_fixed") + fixed,
        )
        stats = VerifierStats.objects.get(worker_id=a.worker_id, job=job, source=t.source)
        out.append(stats)
        peers = VerifierStats.objects.filter(job=job, source=t.source).exclude(
            worker_id=a.worker_id
        )
        pooled = peers.aggregate(k=Sum("accepted_unchanged"), n=Sum("proposed"))
        peer_rate = pooled["k"] / pooled["n"] if pooled["n"] else None
        test = assist.blind_accept_test(
            accepted_unchanged=stats.accepted_unchanged,
            proposed=stats.proposed,
            source=source_accuracy_of(job_id=job.pk, source=t.source),
            peer_rate=peer_rate,
        )
        fraud_flag_blind_accept(assignment=a, test=test)
    return out
