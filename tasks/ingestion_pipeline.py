"""Processing a job and the ingest pipeline of one video: probe, decode once, split, commit.

Writes follow the project's service conventions (keyword-only, typed, transactional where the
database is concerned). ``job_process`` moves a draft job to processing and queues one
``tasks.ingest_video`` per video; ``requeue_stalled`` queues again what a dead worker left. The
pipeline itself, ``video_ingest``, is long-running and not one transaction: it marks the video,
decodes it once while writing JPEGs to storage (``ingestion_frames``), and creates the
microtasks and marks the video ready in one final transaction. A long video is handed to
``ingestion_parts`` instead, after the probe. Everything an attempt writes is under
``frames/video-<id>/`` and is deleted when an attempt starts or fails, so a retry after a
failure or a crash leaves no duplicates and no orphans.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.files.storage import Storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from marketplace.errors import ApplicationError, ValidationError
from marketplace.lifecycle import job_transition
from marketplace.models import Job, JobStatus, User

from . import video
from .ingestion_common import (
    Stage,
    _delete_prefix,
    _fail,
    _job_for,
    _limits,
    _open_source,
    _Progress,
    _require_draft,
    _set_stage,
    _storage,
    job_ingestion_refresh,
)
from .ingestion_frames import (
    _create_microtasks,
    _decode_and_split,
    _mark_ready,
    _Result,
    _segment_features,
)
from .ingestion_parts import _plan_parts, _start_parts
from .models import MicroTask, Video, VideoPart, VideoStatus

# --- Starting a job's processing -----------------------------------------------------------------


@transaction.atomic
def job_process(*, job: Job, by: User | None) -> Job:
    """Move a draft job to processing and queue the ingestion of each of its videos."""
    from .tasks import ingest_video

    job = _job_for(job=job, by=by)
    _require_draft(job)
    ids = list(job.videos.values_list("pk", flat=True))
    if not ids:
        raise ValidationError("Upload at least one video before processing the job.")
    job = job_transition(job=job, to=JobStatus.PROCESSING)
    Video.objects.filter(pk__in=ids).update(
        status=VideoStatus.UPLOADED, stage=Stage.QUEUED, progress=0.0, updated_at=timezone.now()
    )
    for pk in ids:
        transaction.on_commit(lambda pk=pk: ingest_video.delay(pk))
    return job


def requeue_stalled(*, now=None) -> list[int]:
    """Queue again the ingestion of videos whose worker stopped reporting progress."""
    from .tasks import ingest_video, ingest_video_part

    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.VIDEO_INGEST_STALL_SECONDS)
    ids = list(
        Video.objects.filter(
            job__status=JobStatus.PROCESSING,
            status__in=[VideoStatus.UPLOADED, VideoStatus.PROCESSING],
            updated_at__lt=cutoff,
        ).values_list("pk", flat=True)
    )
    for pk in ids:
        Video.objects.filter(pk=pk).update(updated_at=now)
        # A video in parts re-queues its unfinished parts only (each is idempotent).
        parts = list(
            VideoPart.objects.filter(video_id=pk, attempt=F("video__attempts"))
            .exclude(status=VideoPart.Status.DONE)
            .values_list("pk", flat=True)
        )
        if parts:
            for part in parts:
                ingest_video_part.delay(part)
        else:
            ingest_video.delay(pk)
    return ids


# --- The pipeline --------------------------------------------------------------------------------


def _begin(video_id: int) -> tuple[Video, int] | None:
    """Mark an attempt as started, or return None when there is nothing to do."""
    with transaction.atomic():
        v = Video.objects.select_for_update().select_related("job").filter(pk=video_id).first()
        if v is None or v.status == VideoStatus.READY:
            return None  # deleted, or a duplicate delivery of a finished task
        if v.job.status != JobStatus.PROCESSING:
            return None  # cancelled or failed meanwhile
        # Whatever a previous attempt committed is dropped; it is redone from the file.
        MicroTask.objects.filter(video=v).delete()
        VideoPart.objects.filter(video=v).delete()
        v.status = VideoStatus.PROCESSING
        v.stage = Stage.PROBE
        v.progress = 0.0
        v.failure_reason = ""
        v.attempts += 1
        v.ingest_started_at = timezone.now()
        v.save()
        return v, v.attempts


def video_mark_failed(*, video_id: int, reason: str) -> None:
    """Give up on a video (e.g. after the task's retries ran out), cleaning what it left."""
    _fail(video_id, None, reason)


def video_ingest(*, video_id: int) -> Video | None:
    """Probe, decode once, split into microtasks, extract frames and measure complexity.

    Idempotent: a finished video is left alone; any other state is (re)done from scratch after
    deleting what a previous attempt left. A ``video.VideoError`` (the file's fault) marks the
    video failed with its message; any other error propagates after cleaning up, so the Celery
    task can retry it.
    """
    started = _begin(video_id)
    if started is None:
        return Video.objects.filter(pk=video_id).first()
    v, attempt = started
    storage = _storage()
    _delete_prefix(storage, v.frames_prefix)
    try:
        _run_pipeline(v, attempt, storage)
    except video.VideoError as exc:
        _fail(video_id, attempt, str(exc))
    except ApplicationError as exc:
        _fail(video_id, attempt, exc.message)
    except Exception:
        # Not the file's fault (storage or database trouble): clean up, let the task retry.
        _delete_prefix(storage, v.frames_prefix)
        raise
    return Video.objects.get(pk=video_id)


def _run_pipeline(v: Video, attempt: int, storage: Storage) -> None:
    job = v.job
    limits = _limits()
    if not storage.exists(v.file.name):
        raise video.VideoError("The video file is missing from media storage; upload it again.")
    source, handle = _open_source(storage, v.file.name)
    try:
        info = video.probe(source, limits=limits)
        if handle is not None:
            handle.seek(0)
        Video.objects.filter(pk=v.pk).update(
            container=info.container[:64],
            codec=info.codec[:64],
            width=info.width,
            height=info.height,
            fps=info.fps,
            duration=info.duration,
            rotation=info.rotation,
            stage=Stage.DECODE,
            updated_at=timezone.now(),
        )
        expected = info.frame_count or (
            round(info.duration * info.fps) if info.duration and info.fps else None
        )
        parts = _plan_parts(job, info, source)
        if handle is not None:
            handle.seek(0)
        if len(parts) > 1:
            _start_parts(v, attempt, parts)
            return
        stats = video.DecodeStats()
        decoded = video.decode(
            source, analysis_width=settings.VIDEO_ANALYSIS_WIDTH, stats=stats, limits=_limits()
        )
        result = _decode_and_split(v, job, info, decoded, stats, storage, _Progress(v.pk, expected))
    finally:
        if handle is not None:
            handle.close()
    _set_stage(v.pk, Stage.SAVE, 97.0)
    _commit(v, job, attempt, info, result)


def _commit(v: Video, job: Job, attempt: int, info: video.ProbeResult, result: _Result) -> None:
    with transaction.atomic():
        locked = Video.objects.select_for_update().get(pk=v.pk)
        if locked.attempts != attempt or locked.status != VideoStatus.PROCESSING:
            raise RuntimeError(f"video #{v.pk}: attempt {attempt} was superseded")
        locked.refresh_from_db()
        planned = [
            (seg, result.images, *_segment_features(job, seg, result.feats))
            for seg in result.segments
        ]
        _create_microtasks(locked, job, planned, result.size)
        stats = result.stats
        _mark_ready(
            locked,
            info_fps=info.fps,
            frames=stats.frames,
            vfr=stats.variable_frame_rate,
            last_time=stats.last_time,
            damage=stats.damage,
            cuts=result.cuts,
            size=result.size,
        )
    job_ingestion_refresh(job_id=job.pk)
