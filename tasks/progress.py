"""Reads of a job's progress for its requester's dashboard: per job, per video and per
microtask, counted in the database (a job of a million microtasks is never loaded), the spend
against budget and escrow, and an estimated finish (the rule is ``tasks.forecast``'s).

Progress is counted in replicas, the unit a job pays for: an ordinary microtask's share is its
submitted or approved replicas over its replica target, capped at the target; a microtask settled
by consensus or sent to review (all its replicas are in) counts whole. Gold microtasks are the
platform's check on workers, not the requester's work, and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Case, Count, F, IntegerField, Min, OuterRef, Q, Subquery, Sum, When
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from marketplace.models import Job
from payments import selectors as pay_selectors

from . import forecast
from .models import Assignment, AssignmentStatus, MicroTask, MicroTaskStatus, Video

# Work that counts towards a microtask's replicas (rejected work is replaced by another claim).
DONE = (AssignmentStatus.SUBMITTED, AssignmentStatus.APPROVED)
SETTLED = (MicroTaskStatus.COMPLETE, MicroTaskStatus.REVIEW)
# The requester's view of a microtask's frame ``index`` (``tasks.frame_views.requester_frame``).
REQUESTER_FRAME_URL = "/requester/microtasks/{microtask}/frames/{index}.jpg"


def _percent(done: int, target: int) -> float:
    return round(100.0 * done / target, 1) if target else 0.0


@dataclass(frozen=True)
class Share:
    done: int
    target: int

    @property
    def percent(self) -> float:
        return _percent(self.done, self.target)


@dataclass(frozen=True)
class VideoProgress:
    video: Video
    microtasks: int
    settled: int
    replicas: Share
    preview_url: str  # the first frame of its first microtask ("" before it was split)


@dataclass(frozen=True)
class JobProgress:
    replicas: Share
    microtasks: int
    settled: int
    videos: list[VideoProgress]
    forecast: forecast.Forecast


def _done_replicas() -> Coalesce:
    """A microtask's submitted or approved replicas (a correlated count, one row per microtask)."""
    counted = (
        Assignment.objects.filter(microtask=OuterRef("pk"), status__in=DONE)
        .order_by()
        .values("microtask")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def _credited() -> Case:
    """Replicas a microtask counts towards its job's progress (see the module)."""
    return Case(
        When(status__in=SETTLED, then=F("replica_target")),
        default=Least(_done_replicas(), F("replica_target")),
        output_field=IntegerField(),
    )


def _regular(job: Job):
    return MicroTask.objects.filter(job=job, is_gold=False)


def job_progress(*, job: Job, now: datetime | None = None) -> JobProgress:
    """The job's progress per video and in total, and its estimated finish."""
    now = now or timezone.now()
    per_video = {
        row["video_id"]: row
        for row in _regular(job)
        .order_by()
        .values("video_id")
        .annotate(
            n=Count("id"),
            settled=Count("id", filter=Q(status__in=SETTLED)),
            target=Sum("replica_target"),
            done=Sum(_credited()),
            first=Min("id"),
        )
    }
    videos = []
    for v in Video.objects.filter(job=job).order_by("id"):
        row = per_video.get(v.pk, {})
        first = row.get("first")
        videos.append(
            VideoProgress(
                video=v,
                microtasks=row.get("n", 0),
                settled=row.get("settled", 0),
                replicas=Share(int(row.get("done") or 0), int(row.get("target") or 0)),
                preview_url=REQUESTER_FRAME_URL.format(microtask=first, index=0) if first else "",
            )
        )
    done = sum(v.replicas.done for v in videos)
    target = sum(v.replicas.target for v in videos)
    since = forecast.window_start(now=now, published_at=job.published_at)
    recent = Assignment.objects.filter(
        microtask__job=job, microtask__is_gold=False, submitted_at__gte=since, submitted_at__lte=now
    ).count()
    return JobProgress(
        replicas=Share(done, target),
        microtasks=sum(v.microtasks for v in videos),
        settled=sum(v.settled for v in videos),
        videos=videos,
        forecast=forecast.estimate_finish(
            remaining=target - done, completed_recently=recent, since=since, now=now
        ),
    )


def microtask_progress(*, job: Job):
    """The job's ordinary microtasks with their counted replicas (``done``), in video order; a
    queryset, so a page of it is one query."""
    return (
        _regular(job)
        .annotate(done=_credited())
        .order_by("video_id", "index")
        .only(
            "id",
            "video_id",
            "index",
            "frame_start",
            "frame_end",
            "status",
            "replica_target",
            "complexity",
        )
    )


def microtask_percent(m: MicroTask) -> float:
    """A row of :func:`microtask_progress` in percent."""
    return _percent(m.done, m.replica_target)


@dataclass(frozen=True)
class Spend:
    """A job's money against its budget: what is spent (paid and fees), committed (spent plus
    reserved for work in progress) and funded (escrow, net of refunds)."""

    budget: int
    escrow: pay_selectors.EscrowBalance

    @property
    def spent(self) -> int:
        return self.escrow.paid + self.escrow.fees

    @property
    def committed(self) -> int:
        return self.escrow.committed

    @property
    def spent_percent_of_budget(self) -> float:
        return _percent(self.spent, self.budget)

    @property
    def committed_percent_of_escrow(self) -> float:
        return _percent(self.committed, self.escrow.funded)


def job_spend(*, job: Job) -> Spend:
    return Spend(budget=job.budget, escrow=pay_selectors.escrow_balance(job=job))
