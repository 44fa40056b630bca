"""What every step of a video's ingestion shares: stages, storage, limits, failure, the job.

Owns the ``Stage`` names a video goes through, the media storage helpers (which storage, deleting
a file or a video's frames folder quietly, opening a stored video as a path or a stream), the
probe limits from settings, locking a job its requester may manage and requiring it to be a
draft, throttled progress writes, failing an attempt (deleting everything it wrote), and the
job's own transition once no video is left to ingest (``job_ingestion_refresh``). The steps
themselves live in ``ingestion_uploads`` (files in), ``ingestion_pipeline`` (one video, whole),
``ingestion_parts`` (a long video, in parallel parts) and ``ingestion_frames`` (the decoding and
microtask writing both of those share).
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.files.storage import Storage, default_storage
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from marketplace.errors import Conflict, NotFound
from marketplace.lifecycle import job_transition
from marketplace.models import Job, JobStatus, User
from marketplace.selectors import jobs_visible_to

from . import video
from .models import MicroTask, Video, VideoPart, VideoStatus

log = logging.getLogger(__name__)


class Stage:
    QUEUED = "queued"
    PROBE = "probe"
    DECODE = "decode"
    SAVE = "save"
    DONE = "done"
    FAILED = "failed"


# --- Storage and limits --------------------------------------------------------------------------


def _storage() -> Storage:
    return default_storage


def _delete_quietly(storage: Storage, name: str) -> None:
    try:
        storage.delete(name)
    except Exception:  # a missing file is what we wanted
        log.warning("could not delete %s", name, exc_info=True)


def _delete_prefix(storage: Storage, prefix: str) -> int:
    """Delete every file under ``prefix`` (one folder level: frames are flat)."""
    try:
        _, files = storage.listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for name in files:
        storage.delete(f"{prefix}/{name}")
    return len(files)


def _open_source(storage: Storage, name: str):
    try:
        return storage.path(name), None
    except NotImplementedError:  # remote storage: stream it through a file object
        handle = storage.open(name, "rb")
        return handle, handle


def _limits() -> video.Limits:
    return video.Limits(
        min_side=settings.VIDEO_MIN_SIDE,
        max_side=settings.VIDEO_MAX_SIDE,
        max_pixels=settings.VIDEO_MAX_SIDE * settings.VIDEO_MAX_SIDE * 9 // 16,
        max_duration=float(settings.VIDEO_MAX_DURATION_SECONDS),
    )


# --- The job -------------------------------------------------------------------------------------


def _job_for(*, job: Job, by: User | None) -> Job:
    """The job, locked, if ``by`` may manage it (404 otherwise, never 403)."""
    qs = Job.objects.all() if by is None else jobs_visible_to(by)
    locked = qs.select_for_update(no_key=True).filter(pk=job.pk).first()
    if locked is None:
        raise NotFound("No such job.")
    return locked


def _require_draft(job: Job) -> None:
    if job.status != JobStatus.DRAFT:
        raise Conflict(
            f"Videos can only be added or removed while the job is a draft; this job is "
            f"{job.get_status_display().lower()}."
        )


@transaction.atomic
def job_ingestion_refresh(*, job_id: int) -> Job:
    """When no video of a processing job is left to ingest: ready if any succeeded, else failed."""
    job = Job.objects.select_for_update(no_key=True).get(pk=job_id)
    if job.status != JobStatus.PROCESSING:
        return job
    counts = dict(
        job.videos.values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    if counts.get(VideoStatus.UPLOADED) or counts.get(VideoStatus.PROCESSING):
        return job
    if counts.get(VideoStatus.READY):
        return job_transition(job=job, to=JobStatus.READY)
    reasons = [
        f"video #{pk} “{name}”: {reason}"
        for pk, name, reason in job.videos.values_list("pk", "original_name", "failure_reason")
    ]
    return job_transition(
        job=job, to=JobStatus.FAILED, reason="No video could be ingested. " + "; ".join(reasons)
    )


# --- Progress and failure ------------------------------------------------------------------------


def _set_stage(pk: int, stage: str, progress: float) -> None:
    Video.objects.filter(pk=pk).update(
        stage=stage, progress=round(progress, 1), updated_at=timezone.now()
    )


class _Progress:
    """Throttled progress writes (at most every ``interval`` seconds)."""

    interval = 0.5

    def __init__(self, pk: int, expected_frames: int | None):
        self.pk = pk
        self.expected = expected_frames
        self.last = 0.0

    def frame(self, i: int) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        if self.expected:
            _set_stage(self.pk, Stage.DECODE, min(95.0, 95.0 * (i + 1) / self.expected))
        else:
            _set_stage(self.pk, Stage.DECODE, 50.0)


def _fail(video_id: int, attempt: int | None, reason: str) -> None:
    storage = _storage()
    with transaction.atomic():
        v = Video.objects.select_for_update().filter(pk=video_id).first()
        if v is None or v.status == VideoStatus.READY:
            return
        if attempt is not None and v.attempts != attempt:
            return  # a newer attempt owns the video
        MicroTask.objects.filter(video=v).delete()
        VideoPart.objects.filter(video=v).delete()
        v.status = VideoStatus.FAILED
        v.stage = Stage.FAILED
        v.failure_reason = reason[:500]
        v.save()
        job_id = v.job_id
        prefix = v.frames_prefix
    _delete_prefix(storage, prefix)
    job_ingestion_refresh(job_id=job_id)
