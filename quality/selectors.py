"""Reads of quality, scoped to who asks. Nothing here returns a gold answer to a worker."""

from __future__ import annotations

import itertools
import json
import zlib
from collections.abc import Collection
from datetime import date
from typing import Any

import numpy as np
from django.db.models import (
    Avg,
    BigIntegerField,
    Count,
    F,
    FloatField,
    Func,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Floor, Least, Trunc

from marketplace.models import Job, User
from marketplace.selectors import jobs_visible_to
from payments import pricing
from payments.selectors import active_policy
from tasks.ingestion_selectors import manifest_with_urls
from tasks.models import (
    Assignment,
    AssignmentStatus,
    AssistMode,
    MicroTask,
    MicroTaskStatus,
    Proposal,
    ProposalConfig,
    Video,
)

from . import assist, masks
from . import events as events_mod
from . import trust as trust_mod
from .attributes import carry_track_extras
from .models import (
    Appeal,
    AppealStatus,
    ConsensusResult,
    FlagStatus,
    FraudFlag,
    GoldAnswer,
    GoldResult,
    GoldValidation,
    RequesterStanding,
    ReviewItem,
    ReviewStatus,
    SourceComparison,
    StandingEvidence,
    TrustEvidence,
    WorkerTrust,
)
from .shapes import from_annotation, to_annotation
from .tracks import stitch_tracks

PRIOR_TRUST = trust_mod.DEFAULT_PARAMS.prior_alpha / (
    trust_mod.DEFAULT_PARAMS.prior_alpha + trust_mod.DEFAULT_PARAMS.prior_beta
)


def worker_trust(*, worker: User, annotation_type: str) -> float:
    """Trust in [0, 1] of ``worker`` for ``annotation_type``; a new worker gets the prior.

    The one reader of a worker's trust. Payments (the pay multiplier) and tasks (``min_trust``)
    sit below quality and get it through the trust seam ``payments.selectors.worker_trust``,
    which ``QualityConfig.ready`` points here; the claim statement (``tasks/claiming.sql``)
    joins ``quality_workertrust`` itself, the one declared exception, with the same prior.
    """
    value = (
        WorkerTrust.objects.filter(worker=worker, annotation_type=annotation_type)
        .values_list("trust", flat=True)
        .first()
    )
    return float(PRIOR_TRUST if value is None else min(max(value, 0.0), 1.0))


def worker_trust_overview(*, worker: User, evidence: int = 20) -> list[dict[str, Any]]:
    """A worker's own trust per type and what moved it (newest first)."""
    out = []
    for row in WorkerTrust.objects.filter(worker=worker).order_by("annotation_type"):
        out.append(
            {
                "annotation_type": row.annotation_type,
                "trust": round(row.trust, 3),
                "tier": row.tier,
                "suspended": row.suspended,
                "suspended_reason": row.suspended_reason,
                "history": [
                    {
                        "at": e.at,
                        "kind": e.kind,
                        "note": e.note,
                        "assignment": e.assignment_id,
                        "change": round(e.trust_after - e.trust_before, 3),
                        "trust_after": round(e.trust_after, 3),
                    }
                    for e in TrustEvidence.objects.filter(trust=row)[:evidence]
                ],
            }
        )
    return out


def worker_standings(*, worker: User, evidence: int = 20) -> list[dict[str, Any]]:
    """A worker's own standing with each requester they worked for (per type), and what moved
    it; a requester is named by the jobs the worker did for them, never by id. Evidence that
    also counts platform-wide says so."""
    out = []
    for row in RequesterStanding.objects.filter(worker=worker).order_by("annotation_type", "pk"):
        history = list(
            StandingEvidence.objects.filter(standing=row)
            .select_related("assignment__microtask__job")
            .order_by("-at", "-id")[:evidence]
        )
        out.append(
            {
                "annotation_type": row.annotation_type,
                "standing": round(row.standing, 3),
                "excluded": row.excluded,
                "excluded_reason": row.excluded_reason,
                "jobs": sorted(
                    {e.assignment.microtask.job.title for e in history if e.assignment_id}
                ),
                "history": [
                    {
                        "at": e.at,
                        "kind": e.kind,
                        "note": e.note,
                        "assignment": e.assignment_id,
                        "change": round(e.standing_after - e.standing_before, 3),
                        "counts_platform_wide": e.counts_platform_wide,
                        "void": e.void,
                    }
                    for e in history
                ],
            }
        )
    return out


def worker_quality_checks(*, worker: User) -> QuerySet[GoldResult]:
    """The worker's own quality-check results: passed or not, and which frames were off."""
    return GoldResult.objects.filter(worker=worker).order_by("-created_at")


def worker_rejections(*, worker: User) -> QuerySet[Assignment]:
    """The worker's own rejected work, with the reason and any appeal."""
    return (
        Assignment.objects.filter(worker=worker, status=AssignmentStatus.REJECTED)
        .select_related("appeal")
        .order_by("-reviewed_at", "-pk")
    )


def gold_awaiting_admin() -> QuerySet[GoldAnswer]:
    """Requesters' gold answers that trusted workers disagree with: an admin decides them."""
    return (
        GoldAnswer.objects.filter(validation=GoldValidation.DISPUTED)
        .select_related("microtask__job", "created_by")
        .order_by("created_at", "pk")
    )


def review_queue_for(*, user: User) -> QuerySet[ReviewItem]:
    return (
        ReviewItem.objects.filter(job__in=jobs_visible_to(user), status=ReviewStatus.OPEN)
        .select_related("microtask", "job")
        .order_by("created_at")
    )


def review_overlay(*, item: ReviewItem) -> dict[str, Any]:
    """Everything a reviewer sees: the frames and every submission's shapes, overlaid."""
    subs = (
        Assignment.objects.filter(microtask=item.microtask, submission__isnull=False)
        .select_related("submission", "worker")
        .order_by("pk")
    )
    current = current_consensus(microtask_ids=[item.microtask_id]).get(item.microtask_id)
    return {
        "microtask": item.microtask_id,
        # Each frame with the URL it is served at, as the requester's microtask API gives it.
        "manifest": manifest_with_urls(item.microtask.manifest),
        "reason": item.reason,
        "submissions": [
            {
                "assignment": a.pk,
                "worker": a.worker.username,
                "frames": a.submission.frames,
                "agreement": replica_agreement(current, a.pk),
            }
            for a in subs
        ],
        "consensus": current["frames"] if current else None,
    }


AGREEMENT_BINS = np.linspace(0.0, 1.0, 11)


def job_report(*, job: Job) -> dict[str, Any]:
    """Accuracy on gold, agreement distribution, replicas used and saved, flagged work."""
    gold = GoldResult.objects.filter(microtask__job=job).aggregate(
        n=Count("id"), mean=Avg("score"), passed=Count("id", filter=Q(passed=True))
    )
    # One SQL aggregate, whatever the job's size: the mean and np.histogram's bins (each
    # [lo, hi), the last one [lo, hi]).
    edges = [float(e) for e in AGREEMENT_BINS]
    bins = {
        f"bin{k}": Count(
            "id",
            filter=Q(agreement__gte=lo)
            & (Q(agreement__lte=hi) if k == len(edges) - 2 else Q(agreement__lt=hi)),
        )
        for k, (lo, hi) in enumerate(itertools.pairwise(edges))
    }
    spread = ConsensusResult.objects.filter(microtask__job=job, is_current=True).aggregate(
        mean=Avg("agreement"), **bins
    )
    hist = [spread[f"bin{k}"] for k in range(len(edges) - 1)]
    regular = Assignment.objects.filter(microtask__job=job, microtask__is_gold=False)
    used = regular.filter(
        status__in=(
            AssignmentStatus.SUBMITTED,
            AssignmentStatus.APPROVED,
            AssignmentStatus.REJECTED,
        )
    )
    settled = job.microtasks.filter(is_gold=False, status=MicroTaskStatus.COMPLETE)
    settled_replicas = used.filter(microtask__in=settled).count()
    n_settled = settled.count()
    statuses = dict(
        job.microtasks.filter(is_gold=False)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    flags = dict(
        FraudFlag.objects.filter(job=job)
        .values_list("kind")
        .annotate(n=Count("id"))
        .values_list("kind", "n")
    )
    return {
        "job": job.pk,
        # Model assistance (None without proposals): ``job_assist_report``.
        "assist": job_assist_report(job=job),
        "gold": {
            "results": gold["n"],
            "mean_score": round(gold["mean"], 4) if gold["mean"] is not None else None,
            "pass_rate": round(gold["passed"] / gold["n"], 4) if gold["n"] else None,
        },
        "agreement": {
            "mean": round(float(spread["mean"]), 4) if spread["mean"] is not None else None,
            "histogram": [
                {"from": round(float(lo), 1), "to": round(float(hi), 1), "microtasks": int(n)}
                for lo, hi, n in zip(AGREEMENT_BINS[:-1], AGREEMENT_BINS[1:], hist, strict=True)
            ],
        },
        "microtasks": {
            "open": statuses.get(MicroTaskStatus.OPEN, 0),
            "complete": statuses.get(MicroTaskStatus.COMPLETE, 0),
            "review": statuses.get(MicroTaskStatus.REVIEW, 0),
        },
        "replicas": {
            "used": used.count(),
            "settled_microtasks": n_settled,
            "per_settled_microtask": round(settled_replicas / n_settled, 3) if n_settled else None,
            # Against a fixed overlap at the job's maximum, which dynamic overlap may reach.
            "saved_vs_fixed_max_overlap": n_settled * job.overlap_max - settled_replicas,
        },
        "flagged": {"total": sum(flags.values()), "by_kind": flags},
        "seams_flagged": _seams_flagged(job),
        "reviews_open": ReviewItem.objects.filter(job=job, status=ReviewStatus.OPEN).count(),
    }


def _seams_flagged(job: Job) -> int | None:
    """The job's flagged seams: each video's cached count (``VideoSeams``, written when its
    consensus changes) when its stamp is the video's current one, else counted now. One query
    for a job whose caches are fresh, however many videos it has; nothing is written (a GET)."""
    if job.annotation_type != "track":
        return None
    total = 0
    stale: list[int] = []
    for pk, stamp, cached_stamp, cached in video_consensus_stamps(
        videos=Video.objects.filter(job=job), job=job
    ):
        if stamp is None:
            continue  # no current consensus: no seam
        if cached_stamp == stamp:
            total += cached
        else:
            stale.append(pk)
    for video in Video.objects.filter(pk__in=stale).order_by("pk"):
        video.job = job
        total += video_seams_flagged(video)
    return total


class _Micros(Func):
    """A timestamp as whole microseconds since the epoch (PostgreSQL)."""

    template = "(EXTRACT(EPOCH FROM %(expressions)s) * 1000000)::bigint"
    output_field = BigIntegerField()


def video_consensus_stamps(
    *, videos: QuerySet[Video], job: Job
) -> list[tuple[int, str | None, str | None, int | None]]:
    """For each of ``videos`` (of ``job``): (id, the stamp of its current consensus or None
    without any, its ``VideoSeams`` row's stamp and count or None). One query.

    The stamp sums up the current consensus rows of the video's regular microtasks (how many,
    their ids, their last writes to the microsecond) and the job's settings stitching reads: a
    new, replaced, withdrawn or rewritten consensus changes it, so a cached count whose stamp
    differs is stale.
    """
    rows = "microtasks__consensus_results"
    current = Q(microtasks__is_gold=False, **{f"{rows}__is_current": True})
    settings_key = zlib.crc32(
        json.dumps([job.iou_threshold, list(job.label_classes), job.track_masks]).encode()
    )
    out = []
    for row in (
        videos.annotate(
            n=Count(f"{rows}__id", filter=current),
            ids=Sum(f"{rows}__id", filter=current),
            us=Sum(_Micros(f"{rows}__updated_at"), filter=current),
        )
        .values_list("pk", "n", "ids", "us", "quality_seams__stamp", "quality_seams__flagged")
        .order_by("pk")
    ):
        pk, n, ids, us, cached_stamp, cached = row
        stamp = f"{n}:{int(ids)}:{int(us)}:{settings_key:x}" if n else None
        out.append((pk, stamp, cached_stamp, cached))
    return out


def video_seams_flagged(video: Video) -> int:
    """How many seams of ``video``'s stitched consensus have issues (stitches every segment)."""
    return sum(1 for seam in video_tracks(video=video)["seams"] if seam["issues"])


def worker_report(*, worker: User) -> dict[str, Any]:
    """Admin view of one worker: trust per type, gold record, flags, review outcomes."""
    gold = GoldResult.objects.filter(worker=worker).aggregate(
        n=Count("id"), mean=Avg("score"), passed=Count("id", filter=Q(passed=True))
    )
    statuses = dict(
        Assignment.objects.filter(worker=worker)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return {
        "worker": worker.pk,
        "username": worker.username,
        "trust": worker_trust_overview(worker=worker, evidence=10),
        "standings": [
            {
                "requester": r.requester_id,
                "annotation_type": r.annotation_type,
                "standing": round(r.standing, 3),
                "excluded": r.excluded,
            }
            for r in RequesterStanding.objects.filter(worker=worker).order_by("requester_id")
        ],
        "gold": {
            "results": gold["n"],
            "mean_score": round(gold["mean"], 4) if gold["mean"] is not None else None,
            "passed": gold["passed"],
        },
        "assignments": statuses,
        "flags": list(
            FraudFlag.objects.filter(worker=worker).values("id", "kind", "status", "assignment_id")
        ),
    }


def video_tracks(*, video, microtask_ids: Collection[int] | None = None) -> dict[str, Any]:
    """A track job's consensus for a whole video: segments stitched across their seams.

    Each segment (microtask) contributes its current consensus; consecutive segments are joined
    on their shared frames (``quality.tracks.stitch_seam``). A seam that does not match cleanly is
    reported, and its tracks are left apart rather than merged. With ``microtask_ids``, only
    those segments (an export's: the ones resting on approved work) are used.
    """
    job = video.job
    classes = list(job.label_classes)
    segments = []
    segment_events: list[list[events_mod.Event]] = []
    stored = []  # each segment's stored frames (their attributes and relations)
    used = []
    # Each segment's current consensus in segment order, in one query (not one per segment:
    # a two-hour video has hundreds).
    results = ConsensusResult.objects.filter(
        microtask__video=video, microtask__is_gold=False, is_current=True
    ).order_by("microtask__index", "pk")
    if microtask_ids is not None:
        results = results.filter(microtask_id__in=list(microtask_ids))
    seen: set[int] = set()
    for microtask_id, result_frames in results.values_list("microtask_id", "frames").iterator():
        if microtask_id in seen:  # one current result per microtask; never two segments
            continue
        seen.add(microtask_id)
        segments.append(to_annotation(result_frames, classes))
        segment_events.append(events_mod.from_frames(result_frames))
        stored.append(result_frames)
        used.append(microtask_id)
    stitched = stitch_tracks(segments, iou_threshold=job.iou_threshold)
    frames = from_annotation(stitched.frames, classes, tracks=True)
    carry_track_extras(frames, stored, stitched.identity)
    if job.track_masks:
        masks.carry_track_masks(frames, stored, stitched.identity)
    # The tracks' events (jobs with event labels) on the stitched, video-wide track ids.
    events = events_mod.join_events(
        [
            events_mod.Event(e.label, e.start, e.end, stitched.identity[(k, e.track)])
            for k, seg in enumerate(segment_events)
            for e in seg
            if (k, e.track) in stitched.identity
        ]
    )
    return {
        "video": video.pk,
        "microtasks": used,
        "frames": frames,
        "events": events_mod.events_to_payload(events),
        "seams": [
            {
                "left": used[k],
                "right": used[k + 1],
                "overlap_frames": list(seam.overlap_frames),
                "merged": {str(r): int(lft) for r, lft in seam.mapping.items()},
                "issues": list(seam.issues),
            }
            for k, seam in enumerate(stitched.seams)
        ],
    }


def current_consensus(*, microtask_ids: Collection[int]) -> dict[int, dict[str, Any]]:
    """The current consensus of each of ``microtask_ids`` that has one: its per-frame shapes
    and each replica's agreement with it (quality's own score of a replica against the
    consensus, ``ConsensusResult.annotator_agreement``: assignment id -> agreement). One query."""
    rows = ConsensusResult.objects.filter(
        microtask_id__in=list(microtask_ids), is_current=True
    ).values_list("microtask_id", "frames", "annotator_agreement")
    return {m: {"frames": frames or {}, "agreement": per or {}} for m, frames, per in rows}


def replica_agreement(consensus: dict[str, Any] | None, assignment_id: int) -> float | None:
    """``assignment_id``'s agreement with ``consensus`` (one of :func:`current_consensus`)."""
    value = (consensus or {}).get("agreement", {}).get(str(assignment_id))
    return float(value) if isinstance(value, int | float) else None


def gold_answer_of(*, microtask: MicroTask) -> Any:
    """The known answer of ``microtask`` (None when it has none), for its requester or an admin:
    the caller has checked who asks (a gold answer never reaches a worker)."""
    return GoldAnswer.objects.filter(microtask=microtask).values_list("payload", flat=True).first()


def gold_candidates(*, job: Job, limit: int = 20) -> list[MicroTask]:
    """Microtasks of ``job`` whose gold answer its requester may still draw: gold ones nobody was
    scored against yet, then ordinary ones nobody claimed (``services.gold_answer_set``'s rule
    refuses the rest and says why)."""
    scored = GoldResult.objects.filter(microtask__job=job).values("microtask_id")
    base = MicroTask.objects.filter(job=job).exclude(pk__in=scored).order_by("video_id", "index")
    gold = list(base.filter(is_gold=True)[:limit])
    unclaimed = base.filter(is_gold=False, assignments__isnull=True)
    return gold + list(unclaimed[: max(limit - len(gold), 0)])


# --- the staff quality dashboard -----------------------------------------------------------------
# Aggregates in SQL (one GROUP BY each), never a Python loop over every row.

TRUST_BUCKETS = 10


def trust_histogram(*, buckets: int = TRUST_BUCKETS) -> list[tuple[str, int]]:
    """How many (worker, annotation type) trust rows fall in each of ``buckets`` equal ranges
    of [0, 1] (1.0 counts in the last), every range listed."""
    rows = dict(
        WorkerTrust.objects.annotate(
            bucket=Least(
                Floor(F("trust") * Value(float(buckets))),
                Value(float(buckets - 1)),
                output_field=FloatField(),
            )
        )
        .values_list("bucket")
        .annotate(n=Count("id"))
        .values_list("bucket", "n")
    )
    return [
        (f"{i / buckets:.1f}-{(i + 1) / buckets:.1f}", int(rows.get(float(i), 0)))
        for i in range(buckets)
    ]


def gold_pass_rate_by_period(*, period: str, since) -> dict[date, tuple[float, int]]:
    """Per period (its first day): the share of gold checks passed, and how many there were."""
    rows = (
        GoldResult.objects.filter(created_at__gte=since)
        .annotate(p=Trunc("created_at", period))
        .values("p")
        .annotate(n=Count("id"), passed=Count("id", filter=Q(passed=True)))
        .values_list("p", "n", "passed")
    )
    return {p.date(): (passed / n, n) for p, n, passed in rows if n}


def agreement_by_period(*, period: str, since) -> dict[date, tuple[float, int]]:
    """Per period: the mean agreement of the current consensus results made in it, and how many."""
    rows = (
        ConsensusResult.objects.filter(is_current=True, created_at__gte=since)
        .annotate(p=Trunc("created_at", period))
        .values("p")
        .annotate(mean=Avg("agreement"), n=Count("id"))
        .values_list("p", "mean", "n")
    )
    return {p.date(): (float(mean), n) for p, mean, n in rows if n}


def open_fraud_flags(*, limit: int = 100) -> QuerySet[FraudFlag]:
    """Open fraud flags with their evidence, newest first."""
    return (
        FraudFlag.objects.filter(status=FlagStatus.OPEN)
        .select_related("worker", "job")
        .order_by("-created_at", "-pk")[:limit]
    )


def review_backlog() -> dict[str, Any]:
    """Open review items: how many, and when the oldest arrived."""
    return ReviewItem.objects.filter(status=ReviewStatus.OPEN).aggregate(
        count=Count("id"), oldest=Min("created_at")
    )


def appeals_pending() -> QuerySet[Appeal]:
    return (
        Appeal.objects.filter(status=AppealStatus.PENDING)
        .select_related("worker", "assignment__microtask__job")
        .order_by("created_at", "pk")
    )


def suspended_trust(*, limit: int = 100) -> QuerySet[WorkerTrust]:
    """Workers suspended from an annotation type for quality, with the reason."""
    return (
        WorkerTrust.objects.filter(suspended=True)
        .select_related("worker")
        .order_by("-updated_at", "-pk")[:limit]
    )


def consensus_frames_of(*, microtask_id: int) -> dict | None:
    """The current consensus shapes of a settled (complete) microtask, or None."""
    row = (
        ConsensusResult.objects.filter(
            microtask_id=microtask_id,
            is_current=True,
            microtask__status=MicroTaskStatus.COMPLETE,
        )
        .values_list("frames", flat=True)
        .first()
    )
    return row


def source_accuracy_of(
    *, job_id: int, source: str, min_confidence: float = 0.0
) -> assist.SourceAccuracy:
    """The Beta posterior of ``source``'s accuracy on the job, over microtasks at least
    ``min_confidence`` confident."""
    rows = (
        SourceComparison.objects.filter(
            job_id=job_id, source=source, confidence__gte=min_confidence
        )
        .values("kind")
        .annotate(h=Sum("hits"), m=Sum("misses"))
    )
    return assist.source_accuracy(
        [assist.Comparison(r["kind"], int(r["h"] or 0), int(r["m"] or 0)) for r in rows]
    )


def job_assist_report(*, job: Job) -> dict[str, Any] | None:
    """What model assistance did on ``job`` (the requester's dashboard): per proposal source its
    measured accuracy (mean and credible lower bound, on what evidence), the microtasks routed to
    verify-and-correct and sent back, the escrow routing released, and the pay of verify work
    per hour of measured time against the fair-pay floor. None for a job without proposals.
    Reads only."""
    config = ProposalConfig.objects.filter(job=job).first()
    measured = set(
        SourceComparison.objects.filter(job=job).values_list("source", flat=True).distinct()
    )
    if (config is None or not config.sources) and not measured:
        return None
    sources = []
    for source in sorted(set(config.sources if config else []) | measured):
        acc = source_accuracy_of(job_id=job.pk, source=source)
        sources.append(
            {
                "source": source,
                "mean": acc.mean,
                "lower": acc.lower,
                "gold_shapes": acc.gold_shapes,
                "consensus_shapes": acc.consensus_shapes,
                "proven": acc.lower >= job.assist_accuracy_bar,
                "proposals": Proposal.objects.filter(
                    microtask__job=job, source=source, status="ok"
                ).count(),
            }
        )
    regular = MicroTask.objects.filter(job=job, is_gold=False)
    verify = regular.filter(assist_mode=AssistMode.VERIFY)
    paid = Assignment.objects.filter(
        microtask__in=verify, status=AssignmentStatus.APPROVED, active_seconds__gt=0
    ).aggregate(pay=Sum("pay_amount"), seconds=Sum("active_seconds"))
    hourly = pricing.effective_hourly(pay=int(paid["pay"] or 0), seconds=paid["seconds"] or 0)
    return {
        "bar": job.assist_accuracy_bar,
        "sources": sources,
        "verify": verify.count(),
        "escalated": regular.filter(assist_reason__startswith="escalated").count(),
        "saved": int(verify.aggregate(s=Sum("assist_saved"))["s"] or 0),
        "verify_hourly": hourly,
        "floor_hourly": active_policy().floor_hourly,
    }
