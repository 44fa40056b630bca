"""The flagged seams of track videos, kept per video so the job report does not restitch them.

A track job's report counts the seams whose stitching has issues (``selectors.job_report``).
Counting them stitches every segment of a video (``selectors.video_tracks``), so it is done when
a video's consensus changes, not when a page is viewed: each service that writes or withdraws
the current consensus of a track microtask calls :func:`seams_changed`, and after the commit
``quality.refresh_video_seams`` stores the count with the consensus stamp it was counted at
(``models.VideoSeams``). The report trusts a stored count only while its stamp is the video's
current one and counts a stale video itself, so it is right whichever path changed the
consensus; :func:`video_seams_sweep` (Celery beat) stores what is missing or stale, e.g. the
videos of jobs settled before these counts were kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from celery import current_app
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from kombu.exceptions import OperationalError as KombuOperationalError

from marketplace.models import FINAL_JOB_STATUSES, AnnotationType, Job, JobStatus
from tasks.models import MicroTask, Video

from ..models import VideoSeams
from ..selectors import video_consensus_stamps, video_seams_flagged

logger = logging.getLogger(__name__)

SWEEP_VIDEOS = 200  # videos restitched per sweep at most
COALESCE_SECONDS = 20  # changes of one video within this window share one count


def video_seams_refresh(*, video_id: int) -> int | None:
    """Count and store the flagged seams of a track job's video; None for any other video.

    Under the lock of the video's ``VideoSeams`` row, the stamp is read before the seams are
    counted: a consensus committed in between makes the stored stamp stale (counted again
    later), never a stale count look fresh; and of two refreshes the later one counts last.
    """
    video = Video.objects.select_related("job").filter(pk=video_id).first()
    if video is None or video.job.annotation_type != AnnotationType.TRACK:
        return None
    with transaction.atomic():
        VideoSeams.objects.get_or_create(video=video)
        row = VideoSeams.objects.select_for_update().get(video=video)
        [(_, stamp, _, _)] = video_consensus_stamps(
            videos=Video.objects.filter(pk=video.pk), job=video.job
        )
        row.stamp = stamp or ""
        row.flagged = video_seams_flagged(video) if stamp else 0
        row.save()
    return row.flagged


def seams_changed(*, job: Job, microtasks: Iterable[MicroTask]) -> None:
    """After this transaction commits, refresh the seams of the videos of ``microtasks`` (whose
    current consensus was written or withdrawn), if ``job`` is a track job.

    A broker failure does not fail the caller: the report counts a stale video itself and the
    sweep stores it. The task is looked up by name: ``quality.tasks`` calls these services.
    """
    if job.annotation_type != AnnotationType.TRACK:
        return
    for video_id in sorted({mt.video_id for mt in microtasks if not mt.is_gold}):

        def enqueue(video_id: int = video_id) -> None:
            # Coalesced: the first change of a video in a window schedules one count at the
            # window's end; the changes after it (committed before that count reads the stamp:
            # a task never runs before its ETA) ride along. So a long video whose segments
            # settle one after another is restitched once per window, not once per segment.
            # (Eager mode, the embedded default, counts at once: nothing to coalesce.)
            eager = current_app.conf.task_always_eager
            window = COALESCE_SECONDS
            if not eager and not cache.add(f"quality:seams:{video_id}", 1, timeout=window):
                return
            try:
                current_app.tasks["quality.refresh_video_seams"].apply_async(
                    (video_id,), countdown=0 if eager else window
                )
            except (KombuOperationalError, OSError) as exc:
                logger.warning(
                    "quality: could not queue the seam count of video %s (%s); the sweep will",
                    video_id,
                    exc,
                )

        transaction.on_commit(enqueue)


def video_seams_sweep(*, limit: int = SWEEP_VIDEOS) -> int:
    """Store the flagged seams of track videos whose stored count is missing or stale.

    Looks at the track jobs that can still change and at settled ones with a video not yet
    counted (installs from before these counts); restitches at most ``limit`` videos. Returns
    how many it refreshed.
    """
    jobs = (
        Job.objects.filter(annotation_type=AnnotationType.TRACK)
        .exclude(status__in=(JobStatus.DRAFT, JobStatus.PROCESSING))
        .filter(~Q(status__in=FINAL_JOB_STATUSES) | Q(videos__quality_seams__isnull=True))
        .order_by("pk")
        .distinct()
    )
    done = 0
    for job in jobs.iterator():
        for pk, stamp, cached_stamp, _ in video_consensus_stamps(
            videos=Video.objects.filter(job=job), job=job
        ):
            if cached_stamp is not None and cached_stamp == (stamp or ""):
                continue
            if done >= limit:
                return done
            video_seams_refresh(video_id=pk)
            done += 1
    return done
