"""Processing of stored submissions: the outbox, gold scoring, consensus and dynamic overlap.

The claim path announces each stored submission (``tasks.signals.submission_stored``; quality's
receiver calls :func:`submission_received`). The work runs in a Celery task
(:func:`submission_process`), one microtask at a time under its row lock, and is idempotent: a
redelivered task finds its results already there and changes nothing. A gold submission is
scored against its known answer; a regular one waits for its replicas, then their consensus
decides the result, whether another replica is needed (dynamic overlap) or a person reviews it,
and each worker's approval (``approval``).
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

import numpy as np
from celery import current_app
from django.db import transaction
from kombu.exceptions import OperationalError as KombuOperationalError

from marketplace import label_schema
from marketplace.models import AnnotationType, Job
from tasks.features import mask_content
from tasks.models import (
    Assignment,
    AssignmentStatus,
    AssistMode,
    MicroTask,
    MicroTaskStatus,
    Submission,
)
from tasks.proposals import seam_ready

from .. import assist, masks, policy, shapes, trust
from .. import attributes as attributes_mod
from .. import consensus as consensus_mod
from .. import events as events_mod
from ..models import (
    ConsensusDecision,
    ConsensusResult,
    GoldAnswer,
    GoldResult,
    GoldValidation,
    WorkerTrust,
)
from ..tracks import track_consensus
from . import approval, assisting, routing
from .common import fill_slots_later, microtask_to_review, policy_for
from .common import now as _now
from .evidence import standing_record, trust_record
from .flags import flag_fraud
from .gold import gold_revalidate, made_by_admin, score_frames
from .seams import seams_changed

logger = logging.getLogger(__name__)

POLYGON_ALGORITHM = "polygons-medoid-v1"


# --- The outbox -----------------------------------------------------------------------------------
# A submission is its own outbox entry: it is stored with ``processed_at`` empty, its scoring is
# queued once the row is committed (:func:`submission_received`), and :func:`submission_process`
# sets ``processed_at``. A message lost between the commit and the broker (a crash, Redis down) only
# delays the work: :func:`submissions_process_stragglers` (Celery beat) picks up what stayed
# unprocessed for longer than ``STRAGGLER_AFTER``.
STRAGGLER_AFTER = timedelta(minutes=2)


def submission_received(*, submission: Submission) -> None:
    """A submission was stored (the claim path's ``submission_stored``): score it once the data is
    committed.

    The submission is already committed when the message goes out, so a broker failure must not
    turn the worker's successful submit into an error: it is logged and the straggler sweep
    catches up.
    """
    submission_id = submission.pk

    def enqueue() -> None:
        try:
            # Looked up by name: ``quality.tasks`` calls these services, so they do not import
            # it. argsrepr given: Celery would otherwise build it with its slow saferepr.
            current_app.tasks["quality.process_submission"].apply_async(
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
    # The microtask's row only (``of=("self",)``), never the job's: a FOR UPDATE on the job row
    # waits for every ledger posting of the job (their foreign key takes KEY SHARE on it), and a
    # posting waits for the scoring that holds the job's escrow account: two scorings of one
    # job deadlocked on the job row (issue #16).
    mt = (
        MicroTask.objects.select_for_update(of=("self",))
        .select_related("job")
        .get(pk=sub.assignment.microtask_id)
    )
    # Read again under the microtask's lock: a concurrent delivery of the same message may have
    # processed it while this one waited (the worker's record on proposals moves once).
    first_time = Submission.objects.filter(pk=sub.pk, processed_at__isnull=True).exists()
    if mt.is_gold:
        outcome = _process_gold(sub, mt)
    else:
        outcome = _process_regular(mt)
        flag_fraud(mt)
    if first_time:
        # Last in the lock order (module docstring of ``assisting``).
        assisting.verifier_stats_record(submission=sub)
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


# --- Gold submissions ---------------------------------------------------------------------------


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
    # Gold checks the model too: its proposal here against the answer it never saw.
    if assisting.sources_against_gold(microtask=mt, answer_frames=gold.frames):
        routing.job_route_later(job.pk)
    note = f"quality check {'passed' if passed else 'failed'} (score {s.score:.2f})"
    # A requester's gold moves the worker's standing with that requester, and platform-wide
    # trust only once the answer is validated; an admin's gold is the platform's word alone
    # (quality.standing).
    if not made_by_admin(gold):
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
    elif gold_revalidate(gold, job) == GoldValidation.DISPUTED:
        # Trusted workers say the answer is wrong: it decides no one's pay until an admin rules.
        return "gold disputed"
    decision = approval.decide(
        job,
        policy_for(job),
        gold_score=s.score,
        frames_passed_share=policy.frames_passed_share(
            frames_off=len(s.frames_off), frames_total=s.frames_total
        ),
        # Nobody vouched for an unvalidated answer yet: it may approve work, never reject it on
        # its own (a wrong answer would unpay honest workers). The requester may still reject.
        gold_vouched=gold.counts_platform_wide,
    )
    if decision.withheld == policy.ApprovalAction.REJECT and not gold.counts_platform_wide:
        return "gold failed (unvalidated: left for review)"
    approval.apply(assignment, decision)
    return "gold passed" if passed else "gold failed"


# --- Consensus and dynamic overlap --------------------------------------------------------------


def _event_consensus(subs: list[Submission], weights: list[float], *, tiou_threshold: float):
    """Events: trust-weighted vote over time on the microtask's range (``quality.events``)."""
    frames = [int(f) for s in subs for f in s.frames] or [0]
    start, end = min(frames), max(frames)
    c = events_mod.event_consensus(
        [events_mod.from_frames(s.frames) for s in subs],
        weights,
        frame_start=start,
        frame_end=end,
        tiou_threshold=tiou_threshold,
    )
    return c.algorithm, events_mod.to_frames(c.events, start, end), c, c.frame_agreement


def _with_track_events(
    frames: dict, subs: list[Submission], weights: list[float], c, *, tiou_threshold: float
):
    """The consensus tracks' events (``quality.events.track_event_consensus``) added to their
    per-frame shapes as ``{"label", "event", "track"}`` (no box: box readers skip them), and the
    consensus with each annotator's agreement the mean of their tracks' and their events': a
    disagreement on the events adds a replica as one on the boxes does."""
    if not frames:
        return frames, c
    numbers = [int(f) for f in frames]
    start, end = min(numbers), max(numbers)
    kept = {int(s["track"]) for shs in frames.values() for s in shs if "track" in s}
    events, per = events_mod.track_event_consensus(
        [events_mod.events_from_payload((s.payload or {}).get("events", [])) for s in subs],
        weights,
        c.association,
        kept,
        frame_start=start,
        frame_end=end,
        tiou_threshold=tiou_threshold,
    )
    for f, shs in events_mod.to_frames(events, start, end).items():
        if f in frames:
            frames[f] = [*frames[f], *shs]
    blended = (np.asarray(c.annotator_agreement, dtype=np.float64) + per) / 2
    w = np.clip(np.asarray(weights, dtype=np.float64), 1e-3, None)
    return frames, dataclasses.replace(
        c,
        annotator_agreement=blended,
        agreement=float(np.average(blended, weights=w)) if len(blended) else c.agreement,
    )


def _with_track_masks(
    frames: dict, subs: list[Submission], weights: list[float], c, *, method: str
):
    """The replicas' keyframe masks fused onto the consensus tracks by the job's consensus
    method (``quality.masks.track_mask_consensus``), and each annotator's agreement the mean of
    their tracks' and their masks' (Dice with the fused masks, where they gave one): a
    disagreement on the masks adds a replica as one on the boxes does."""
    m = masks.track_mask_consensus(
        [s.frames for s in subs], weights, c.association, frames, method=method
    )
    box = np.asarray(c.annotator_agreement, dtype=np.float64)
    blended = np.array(
        [b if d is None else (b + d) / 2 for b, d in zip(box, m.annotator_dice, strict=True)]
    )
    w = np.clip(np.asarray(weights, dtype=np.float64), 1e-3, None)
    return m.frames, dataclasses.replace(
        c,
        annotator_agreement=blended,
        agreement=float(np.average(blended, weights=w)) if len(blended) else c.agreement,
    )


def _annotations(job: Job, subs: list[Submission]):
    # Polygons: agreement on their extents; the result is the most agreed-with polygon set.
    return [assisting.frames_annotation(job, s.frames) for s in subs]


def run_consensus(
    job: Job,
    subs: list[Submission],
    weights: list[float],
    *,
    independence: list[float] | None = None,
):
    """(algorithm, stored frames, agreement, per-annotator agreement, per-frame agreement).

    ``independence`` per replica discounts accepted proposals (``quality.assist``, section 4);
    classification and events take no proposals."""
    if job.annotation_type == AnnotationType.EVENT:
        return _event_consensus(subs, weights, tiou_threshold=job.iou_threshold)
    if job.annotation_type == AnnotationType.MASK:
        m = masks.mask_consensus(
            [s.frames for s in subs],
            weights,
            method=job.consensus_method,
            iou_threshold=job.iou_threshold,
        )
        return m.algorithm, m.frames, m, m.frame_agreement
    anns = _annotations(job, subs)
    classes = list(job.label_classes)
    thr = job.iou_threshold
    if job.annotation_type == AnnotationType.CLASSIFY:
        c = consensus_mod.class_consensus(anns, weights)
        return c.algorithm, shapes.from_labels(c.labels, classes), c, {}
    if job.annotation_type == AnnotationType.TRACK:
        c = track_consensus(anns, weights, iou_threshold=thr, independence=independence)
        frames = shapes.from_annotation(c.frames, classes, tracks=True)
        if job.event_labels:
            frames, c = _with_track_events(frames, subs, weights, c, tiou_threshold=thr)
        if job.track_masks:
            frames, c = _with_track_masks(frames, subs, weights, c, method=job.consensus_method)
        return c.algorithm, frames, c, c.frame_agreement
    c = consensus_mod.box_consensus(anns, weights, iou_threshold=thr, independence=independence)
    if job.annotation_type == AnnotationType.POLYGON:
        best = int(np.argmax(c.annotator_agreement))
        return POLYGON_ALGORITHM, subs[best].frames, c, c.frame_agreement
    return c.algorithm, shapes.from_annotation(c.frames, classes), c, c.frame_agreement


def with_attributes_and_relations(
    job: Job, subs: list[Submission], frames: dict, c, weights: list[float]
) -> tuple[dict, attributes_mod.ExtrasOutcome | None]:
    """The consensus frames with the annotators' attributes and relations aggregated onto the
    kept objects (``quality.attributes``), and the aggregation (each annotator's agreement on
    attributes and relations), for a job that asks for them; else the frames and ``None``."""
    if job.annotation_type not in label_schema.KINDS or not (
        job.label_attributes or job.relation_predicates
    ):
        return frames, None
    out = attributes_mod.aggregate_extras(
        job.annotation_type,
        [s.frames for s in subs],
        frames,
        weights,
        classes=list(job.label_classes),
        label_attributes=job.label_attributes,
        iou_threshold=job.iou_threshold,
        association=getattr(c, "association", None)
        if job.annotation_type == AnnotationType.TRACK
        else None,
    )
    return out.frames, out


@dataclasses.dataclass(frozen=True)
class _Agreement:
    """A microtask's agreement and each annotator's, shapes blended with attributes and
    relations (``policy.blend_agreement``), and what is stored of the parts."""

    overall: float
    per: np.ndarray
    parts: dict


def _agreement(job: Job, c, extras, rows: list[Assignment], weights: list[float]) -> _Agreement:
    """Shapes' agreement alone when the job asks for no attributes or relations; otherwise each
    annotator's shapes', attributes' and relations' agreements blended with small weights for
    the last two, so that a worker who draws the right boxes with the wrong attributes agrees
    less (trust, approval) and a disagreement on attributes can add a replica (overlap)."""
    shape_per = np.asarray(c.annotator_agreement, dtype=np.float64)
    if extras is None:
        return _Agreement(float(c.agreement), shape_per, {})
    attrs = extras.attribute_agreement if job.label_attributes else None
    rels = extras.relation_agreement if job.relation_predicates else None
    per = np.array(
        [
            policy.blend_agreement(
                float(shape_per[k]),
                attributes=None if attrs is None else float(attrs[k]),
                relations=None if rels is None else float(rels[k]),
            )
            for k in range(len(rows))
        ]
    )
    means = {
        "shapes": float(c.agreement),
        "attributes": None if attrs is None else policy.weighted_mean(attrs, weights),
        "relations": None if rels is None else policy.weighted_mean(rels, weights),
    }
    overall = policy.blend_agreement(
        means["shapes"], attributes=means["attributes"], relations=means["relations"]
    )
    ws, wa, wr = policy.extras_weights(attributes=attrs is not None, relations=rels is not None)
    annotators = {"shapes": shape_per, "attributes": attrs, "relations": rels}
    parts = {
        "weights": {"shapes": ws, "attributes": wa, "relations": wr},
        "overall": {k: round(v, 4) for k, v in means.items() if v is not None},
        "annotators": {
            k: {str(a.pk): round(float(x), 4) for a, x in zip(rows, v, strict=True)}
            for k, v in annotators.items()
            if v is not None
        },
    }
    return _Agreement(overall, per, parts)


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
    # An accepted proposal is not independent agreement (``quality.assist``, section 4).
    independence = assisting.replica_independence(job, rows, trusts, prior)
    algorithm, frames, c, frame_agreement = run_consensus(
        job, [a.submission for a in rows], weights, independence=independence
    )
    frames, extras = with_attributes_and_relations(
        job, [a.submission for a in rows], frames, c, weights
    )
    agreed = _agreement(job, c, extras, rows, weights)
    evidence = np.asarray(weights) * (1.0 if independence is None else np.asarray(independence))
    per = agreed.per
    pol = policy_for(job)
    # The cap is on the microtask's replica target, discounted replicas included: a suspended
    # worker's replica counts against ``overlap_max`` as it counts in the target (a target of 6
    # on a job whose maximum is 5 was the bug, issue #16).
    discounted = mt.replica_target - needed
    decision = policy.decide_overlap(
        submitted=len(rows),
        replica_target=needed,
        overlap_max=job.overlap_max - discounted,
        agreement=agreed.overall,
        agreement_threshold=job.agreement_threshold,
        confidence=float(evidence[per >= job.agreement_threshold].sum()),
        min_confidence=pol.min_confidence,
    )
    escalate = None
    if mt.assist_mode == AssistMode.VERIFY:
        # Verify-and-correct: a verifier who corrected much, or verifiers whose discounted
        # accepts do not settle it, send the microtask back to full annotation
        # (``quality.assist``, section 3), never to another verify replica.
        vd = assist.decide_verify(
            shares=assisting.verify_shares(job, rows),
            replica_target=mt.replica_target,
            overlap_min=job.overlap_min,
            policy=assisting.POLICY,
        )
        if vd.action == assist.VerifyAction.ESCALATE:
            escalate = vd.reason
        elif decision.action != policy.OverlapAction.ACCEPT:
            escalate = decision.reason
    ConsensusResult.objects.filter(microtask=mt, is_current=True).exclude(
        algorithm=algorithm
    ).update(is_current=False)
    ConsensusResult.objects.update_or_create(
        microtask=mt,
        algorithm=algorithm,
        defaults={
            "frames": frames,
            "agreement": agreed.overall,
            "agreement_parts": agreed.parts,
            "frame_agreement": {str(k): round(float(v), 4) for k, v in frame_agreement.items()},
            "annotator_agreement": {
                str(a.pk): round(float(x), 4) for a, x in zip(rows, per, strict=True)
            },
            "replicas": len(rows),
            "decision": ConsensusDecision.ADD_REPLICA
            if escalate
            else {
                policy.OverlapAction.ACCEPT: ConsensusDecision.ACCEPT,
                policy.OverlapAction.ADD_REPLICA: ConsensusDecision.ADD_REPLICA,
                policy.OverlapAction.REVIEW: ConsensusDecision.REVIEW,
            }[decision.action],
            "is_current": True,
        },
    )
    seams_changed(job=job, microtasks=[mt])
    if escalate:
        if not routing.microtask_escalate(mt, replicas=len(rows), reason=escalate):
            microtask_to_review(mt, reason=f"{escalate}; the escrow cannot fund full annotation")
            return "sent to review"
        fill_slots_later(job.pk)
        return "escalated to full annotation"
    if decision.action == policy.OverlapAction.ADD_REPLICA:
        mt.replica_target += 1
        mt.save(update_fields=["replica_target"])
        fill_slots_later(job.pk)
        return "replica added"
    if decision.action == policy.OverlapAction.REVIEW:
        microtask_to_review(mt, reason=decision.reason)
        return "sent to review"
    mt.status = MicroTaskStatus.COMPLETE
    mt.save(update_fields=["status"])
    if job.annotation_type == AnnotationType.MASK:
        # What the content asks of a painter (objects per frame, edge and area per object), for
        # pricing's calibration on measured work (``tasks.quoting``): the estimate refined.
        content = mask_content(frames)
        mt.content_boundary = content.boundary_per_object
        mt.content_area = content.area_per_object
        mt.expected_objects = min(500, max(1, round(content.objects_per_frame)))
        mt.save(update_fields=["content_boundary", "content_area", "expected_objects"])
    elif job.annotation_type == AnnotationType.TRACK and job.track_masks:
        # The edge per object of the consensus keyframe masks: what painting them asks, for
        # pricing the masks of the job's later microtasks (``payments.pricing.price_task``).
        content = mask_content(frames)
        if content.count:
            mt.content_boundary = content.boundary_per_object
            mt.content_area = content.area_per_object
            mt.save(update_fields=["content_boundary", "content_area"])
    # The next microtask's seam proposal may have waited for this consensus.
    seam_ready(microtask=mt)
    # Independent consensus measures the proposal sources nobody here took from.
    reference = getattr(c, "frames", None)
    if isinstance(reference, dict) and assisting.sources_against_consensus(
        microtask=mt, reference=reference, rows=rows
    ):
        routing.job_route_later(job.pk)
    if len(rows) < 2:
        # One annotator agrees with nobody: their answer is the result, but it says nothing
        # about their trust, and approval is the requester's (or the auto-approval delay's).
        return "accepted (single replica)"
    frame_share = None
    if frame_agreement:
        frame_share = float(
            np.mean([v >= job.agreement_threshold for v in frame_agreement.values()])
        )
    # Lock order (the same in every scoring path): the microtask, trust rows in worker order, then
    # the assignments in id order, then (inside the approvals) the job's escrow account. Trust is
    # recorded for every annotator before any money moves: interleaving the two made a scoring
    # that held the escrow account wait for a trust row another scoring of the same job held
    # while it waited for the escrow account (a deadlock is an OperationalError: the task would
    # retry, idempotently, but it should not happen).
    ordered = sorted(zip(rows, per, strict=True), key=lambda p: p[0].worker_id)
    for a, agreement in ordered:
        trust_record(
            worker=a.worker,
            annotation_type=job.annotation_type,
            kind=trust.AGREEMENT,
            score=float(agreement),
            assignment=a,
            note=f"agreement with the other annotators {agreement:.2f}",
        )
    approval.lock_in_order(rows)
    for a, agreement in ordered:
        approval.apply(
            a,
            approval.decide(job, pol, agreement=float(agreement), frames_passed_share=frame_share),
        )
    return "accepted"


# --- Replica slots dynamic overlap asked for -----------------------------------------------------
