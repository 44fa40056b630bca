"""Services of video ingestion: upload, register, start processing, and the ingest pipeline.

Writes follow the project's service conventions (keyword-only, typed, transactional where the
database is concerned). The pipeline itself, ``video_ingest``, is long-running and not one
transaction: it marks the video, decodes it once while writing JPEGs to storage, and creates the
microtasks and marks the video ready in one final transaction. Everything an attempt writes is
under ``frames/video-<id>/`` and is deleted when an attempt starts or fails, so a retry after a
failure or a crash leaves no duplicates and no orphans.

Bad uploads are refused before anything is stored: empty files, files over
``VIDEO_UPLOAD_MAX_BYTES``, files whose first bytes are no known video container (the file name
is never trusted), re-uploads of the same bytes to the same job (refused with 409, naming the
existing video), uploads to a job that is not a draft (409) or not the caller's (404). Files that
look like a video but are not usable (truncated, audio only, absurd size, too damaged) fail
during ingestion: the video becomes ``failed`` with a reason, and nothing of it survives.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import math
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, default_storage
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from marketplace.errors import ApplicationError, Conflict, NotFound, ValidationError
from marketplace.lifecycle import job_transition
from marketplace.models import AnnotationType, Job, JobStatus, User
from marketplace.selectors import jobs_visible_to
from payments import pricing
from payments.selectors import active_policy

from . import features, video
from .annotations import SEGMENT_TYPES
from .models import MicroTask, Video, VideoPart, VideoStatus

log = logging.getLogger(__name__)


class UploadTooLarge(ValidationError):
    """The file is larger than this server accepts."""

    status_code = 413
    code = "too_large"


class NotAVideo(ValidationError):
    """The file is not a video."""

    code = "not_a_video"


class DuplicateVideo(Conflict):
    """This file was already uploaded to this job."""

    code = "duplicate_video"


class Stage:
    QUEUED = "queued"
    PROBE = "probe"
    DECODE = "decode"
    SAVE = "save"
    DONE = "done"
    FAILED = "failed"


SNIFF_BYTES = 512
MAX_INFLIGHT = 4  # decoded frames waiting for the JPEG writer thread
HASH_CHUNK = 1024 * 1024


# --- Helpers ------------------------------------------------------------------------------------


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


def _read_head(handle: IO[bytes]) -> bytes:
    handle.seek(0)
    head = handle.read(SNIFF_BYTES)
    handle.seek(0)
    return head


def _sha256(handle: IO[bytes]) -> str:
    digest = hashlib.sha256()
    handle.seek(0)
    while chunk := handle.read(HASH_CHUNK):
        digest.update(chunk)
    handle.seek(0)
    return digest.hexdigest()


def _megabytes(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


@dataclass
class _Checked:
    name: str
    handle: Any
    size: int
    checksum: str
    container: str


def _check_upload(*, job: Job, handle: Any, name: str, size: int) -> _Checked:
    """Size, content and duplicate checks on one incoming file; stores nothing."""
    limit = settings.VIDEO_UPLOAD_MAX_BYTES
    if size <= 0:
        raise ValidationError(f"“{name}” is empty (0 bytes). Choose the video file itself.")
    if size > limit:
        raise UploadTooLarge(
            f"“{name}” is {_megabytes(size)}; the limit is {_megabytes(limit)}. "
            "Split or compress the video first."
        )
    container = video.sniff_container(_read_head(handle))
    if container is None:
        raise NotAVideo(
            f"“{name}” is not a video: its content is no known video container "
            "(MP4/MOV, WebM/MKV, AVI, MPEG-TS, ...), whatever its name says."
        )
    checksum = _sha256(handle)
    existing = Video.objects.filter(job=job, checksum=checksum).first()
    if existing is not None:
        raise DuplicateVideo(
            f"“{name}” has the same content as video #{existing.pk} "
            f"(“{existing.original_name}”) already on this job; it was not added again.",
            extra={"video": existing.pk},
        )
    return _Checked(name[:255], handle, size, checksum, container)


def _storage() -> Storage:
    return default_storage


# --- Upload and registration --------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """One file of an upload that was not added, and why (the error a lone file would get)."""

    name: str
    error: ApplicationError

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "code": self.error.code, "message": self.error.message}


@dataclass(frozen=True)
class UploadResult:
    videos: list[Video]
    refused: list[Refusal]


def _check_files(
    *, job: Job, files: list[Any], keep_going: bool
) -> tuple[list[_Checked], list[Refusal]]:
    """Check every file (stores nothing). ``keep_going``: a bad file is a ``Refusal`` and the
    others are still checked; otherwise the first bad file raises its error."""
    if not files:
        raise ValidationError("Choose at least one video file.", extra={"fields": {"file": []}})
    most = settings.VIDEO_UPLOAD_MAX_FILES
    if len(files) > most:
        message = f"Upload at most {most} videos at once; this upload has {len(files)}."
        raise ValidationError(message, extra={"fields": {"file": [message]}})
    checked: list[_Checked] = []
    refused: list[Refusal] = []
    seen: dict[str, str] = {}
    for f in files:
        name = Path(getattr(f, "name", "") or "video").name
        try:
            item = _check_upload(job=job, handle=f, name=name, size=int(f.size or 0))
            if item.checksum in seen:
                raise DuplicateVideo(f"“{name}” and “{seen[item.checksum]}” are the same file.")
        except ApplicationError as exc:
            if not keep_going:
                raise
            refused.append(Refusal(name[:255], exc))
            continue
        seen[item.checksum] = name
        checked.append(item)
    return checked, refused


def _store(*, job: Job, checked: list[_Checked]) -> list[Video]:
    """Stream checked files to storage and record them; a failure deletes what was stored."""
    storage = _storage()
    stored: list[str] = []
    try:
        videos = []
        for item in checked:
            ext = video.CONTAINER_EXTENSIONS.get(item.container, ".bin")
            target = f"videos/job-{job.pk}/{item.checksum[:16]}{ext}"
            item.handle.seek(0)
            saved = storage.save(target, File(item.handle, name=target))
            stored.append(saved)
            v = Video(
                job=job,
                original_name=item.name,
                size_bytes=item.size,
                checksum=item.checksum,
                status=VideoStatus.UPLOADED,
            )
            v.file.name = saved
            v.save()
            videos.append(v)
        return videos
    except BaseException:
        for name in stored:
            _delete_quietly(storage, name)
        raise


@transaction.atomic
def videos_upload(*, job: Job, by: User | None, files: Iterable[Any]) -> list[Video]:
    """Add uploaded files (Django ``UploadedFile``s or ``File``s) to a draft job, all or none.

    Every file is checked first (size, content sniffing, checksum against the job's videos and
    the other files of the request); only then are the files streamed to storage. If anything
    fails after a file was stored, the stored files are deleted again.
    """
    job = _job_for(job=job, by=by)
    _require_draft(job)
    checked, _ = _check_files(job=job, files=list(files), keep_going=False)
    return _store(job=job, checked=checked)


@transaction.atomic
def videos_upload_each(*, job: Job, by: User | None, files: Iterable[Any]) -> UploadResult:
    """Add each good file to a draft job and name each bad one (the upload page and API).

    The same checks as ``videos_upload``, file by file: a bad file (empty, too large, not a
    video, already on the job, twice in the upload) is a ``Refusal`` with the error it would get
    alone, and the good ones are stored. With nothing good to add it raises: a lone file's own
    error, or a ``ValidationError`` naming every file.
    """
    job = _job_for(job=job, by=by)
    _require_draft(job)
    checked, refused = _check_files(job=job, files=list(files), keep_going=True)
    if not checked:
        if len(refused) == 1:
            raise refused[0].error
        raise ValidationError(
            f"None of the {len(refused)} files was added: "
            + " ".join(r.error.message for r in refused),
            extra={
                "fields": {"file": [r.error.message for r in refused]},
                "refused": [r.as_dict() for r in refused],
            },
        )
    return UploadResult(_store(job=job, checked=checked), refused)


def video_upload(*, job: Job, by: User | None, file: Any) -> Video:
    """Add one uploaded file to a draft job (see ``videos_upload``)."""
    return videos_upload(job=job, by=by, files=[file])[0]


def video_register_path(*, job: Job, path: Path | str, by: User | None = None) -> Video:
    """Register a video file from local disk: checked like an upload, streamed into storage."""
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"{path} is not a file.")
    with path.open("rb") as handle:
        f = File(handle, name=path.name)
        return videos_upload(job=job, by=by, files=[f])[0]


@transaction.atomic
def video_register_stored(*, job: Job, name: str, by: User | None = None) -> Video:
    """Register a file already in media storage (e.g. copied to the bucket) without copying it."""
    job = _job_for(job=job, by=by)
    _require_draft(job)
    storage = _storage()
    if not storage.exists(name):
        raise NotFound(f"There is no file “{name}” in media storage.")
    if Video.objects.filter(file=name).exists():
        raise DuplicateVideo(f"“{name}” is already registered.")
    with storage.open(name, "rb") as handle:
        item = _check_upload(job=job, handle=handle, name=Path(name).name, size=storage.size(name))
    v = Video(
        job=job,
        original_name=item.name,
        size_bytes=item.size,
        checksum=item.checksum,
        status=VideoStatus.UPLOADED,
    )
    v.file.name = name
    v.save()
    return v


@transaction.atomic
def video_delete(*, video_obj: Video, by: User | None) -> None:
    """Remove a video (and its file) from a draft job."""
    job = _job_for(job=video_obj.job, by=by)
    _require_draft(job)
    name = video_obj.file.name
    prefix = video_obj.frames_prefix
    video_obj.delete()
    storage = _storage()
    transaction.on_commit(lambda: (_delete_quietly(storage, name), _delete_prefix(storage, prefix)))


# --- Starting and finishing a job's processing --------------------------------------------------


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


# --- The pipeline -------------------------------------------------------------------------------


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


def _limits() -> video.Limits:
    return video.Limits(
        min_side=settings.VIDEO_MIN_SIDE,
        max_side=settings.VIDEO_MAX_SIDE,
        max_pixels=settings.VIDEO_MAX_SIDE * settings.VIDEO_MAX_SIDE * 9 // 16,
        max_duration=float(settings.VIDEO_MAX_DURATION_SECONDS),
    )


def _set_stage(pk: int, stage: str, progress: float) -> None:
    Video.objects.filter(pk=pk).update(
        stage=stage, progress=round(progress, 1), updated_at=timezone.now()
    )


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


def video_mark_failed(*, video_id: int, reason: str) -> None:
    """Give up on a video (e.g. after the task's retries ran out), cleaning what it left."""
    _fail(video_id, None, reason)


def _open_source(storage: Storage, name: str):
    try:
        return storage.path(name), None
    except NotImplementedError:  # remote storage: stream it through a file object
        handle = storage.open(name, "rb")
        return handle, handle


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


@dataclass
class _Result:
    segments: list[features.Segment]
    images: dict[int, tuple[str, float]]  # frame -> (storage name, time)
    feats: features.FrameFeatures
    cuts: list[int]
    stats: video.DecodeStats
    size: tuple[int, int]


def _overlap_frames(job: Job) -> int:
    """Frames a segment shares with the next: a track's, so tracks can be stitched; none for
    events, whose intervals meeting at a boundary the export joins (an event seen twice would
    be counted twice)."""
    return job.overlap_frames if job.annotation_type == AnnotationType.TRACK else 0


def _decode_and_split(
    v, job, info, decoded, stats, storage, progress, *, part: VideoPart | None = None
) -> _Result:
    """Plan microtasks over decoded frames while writing the JPEGs they need.

    The whole video, or one ``part`` of it: then planning starts at the part's keyframe, stops
    before ``part.plan_end`` (that frame is decoded only to see whether a shot starts there) or
    at the first shot cut from the next part's keyframe on (the next part plans from there), and
    files are named with the part's suffix.
    """
    first = part.decode_from if part is not None else 0
    stop_at = part.plan_end if part is not None and part.seam is not None else None
    seam = part.seam if part is not None else None
    suffix = part.file_suffix if part is not None else ""
    if job.annotation_type in SEGMENT_TYPES:
        planner: features.TrackPlanner | features.FramePlanner = features.TrackPlanner(
            segment_frames=job.segment_frames,
            overlap_frames=_overlap_frames(job),
            keyframe_step=job.keyframe_step,
            first_frame=first,
        )
    else:
        planner = features.FramePlanner(
            frame_step=job.frame_step, frames_per_task=job.frames_per_task, first_frame=first
        )
    out_w, out_h = video.output_size(
        info.width, info.height, settings.VIDEO_FRAME_MAX_WIDTH, settings.VIDEO_FRAME_MAX_HEIGHT
    )
    quality = settings.VIDEO_FRAME_JPEG_QUALITY
    detector = features.ShotDetector()
    feats = features.FrameFeatures(origin=first)
    cuts: list[int] = []
    segments: list[features.Segment] = []
    images: dict[int, tuple[str, float]] = {}
    # Encoded frames that a segment may need (a track segment's overlap tail): at most
    # overlap_frames / keyframe_step of them, whatever the video's length.
    pending: dict[int, tuple[bytes, float]] = {}
    prefix = v.frames_prefix
    previous: video.DecodedFrame | None = None

    # JPEG encoding and storage writes run on one helper thread, overlapped with decoding (the
    # encoder and swscale release the GIL). At most MAX_INFLIGHT frames wait for it, so memory
    # stays bounded; the thread is always drained before this function returns, so nothing is
    # written after a failure's cleanup.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"frames-{v.pk}")
    inflight: deque[Future] = deque()

    def encode(frame: video.DecodedFrame) -> bytes:
        return frame.jpeg(width=out_w, height=out_h, quality=quality)

    def write(i: int, frame: video.DecodedFrame | None, data: bytes | None, t: float):
        if data is None:
            data = encode(frame)
        return i, storage.save(f"{prefix}/{i:06d}{suffix}.jpg", ContentFile(data)), t

    def collect(future: Future) -> None:
        i, name, t = future.result()
        images[i] = (name, t)

    def store(i: int, t: float, *, frame=None, data: bytes | None = None) -> None:
        images[i] = ("", t)  # claimed now, named when written
        inflight.append(writer.submit(write, i, frame, data, t))
        while len(inflight) > MAX_INFLIGHT:
            collect(inflight.popleft())

    def settle(done: list[features.Segment], current: video.DecodedFrame | None) -> None:
        for seg in done:
            segments.append(seg)
            for i in seg.frames:
                if i in images:
                    continue
                if i in pending:
                    data, t = pending.pop(i)
                    store(i, t, data=data)
                    continue
                frame = current if current is not None and current.index == i else previous
                if frame is None or frame.index != i:  # pragma: no cover - planner contract
                    raise RuntimeError(f"frame {i} was needed but not kept")
                store(i, frame.time, frame=frame)

    try:
        with closing(decoded):  # close the file now, even when a step below raises
            for frame in decoded:
                i = frame.index
                cut, motion = detector.push(frame.gray)
                if cut:
                    cuts.append(i)
                    motion = 0.0  # a cut is not motion
                if stop_at is not None and (i >= stop_at or (cut and i >= seam)):
                    break  # the next part plans from here on
                feats.add(motion, features.edge_density(frame.gray))
                done = planner.push(i, cut)
                # A segment cut short ends at the previous frame, which is still at hand.
                settle(done, frame)
                if i not in images:
                    if planner.needs(i):
                        store(i, frame.time, frame=frame)
                    elif planner.maybe(i):
                        pending[i] = (encode(frame), frame.time)
                for stale in [k for k in pending if k < planner.horizon]:
                    del pending[stale]
                previous = frame
                progress.frame(i)
        settle(planner.finish(), None)
        while inflight:
            collect(inflight.popleft())
    finally:
        writer.shutdown(wait=True, cancel_futures=True)
    return _Result(segments, images, feats, cuts, stats, (out_w, out_h))


def _segment_features(
    job: Job, seg: features.Segment, feats: features.FrameFeatures
) -> tuple[float, float]:
    if job.annotation_type in SEGMENT_TYPES:
        motion, _ = feats.summary(list(range(seg.frame_start + 1, seg.frame_end + 1)))
        _, clutter = feats.summary(list(range(seg.frame_start, seg.frame_end + 1)))
        return motion, clutter
    return feats.summary(list(seg.frames))


def _manifest(v, job, seg, images, size, previous, following) -> dict:
    """``images``: frame -> (storage name, time) for every frame of ``seg``."""
    is_track = job.annotation_type in SEGMENT_TYPES
    out_w, out_h = size
    return {
        "kind": "segment" if is_track else "frames",
        "video": v.pk,
        "shot": seg.shot,
        "frame_start": seg.frame_start,
        "frame_end": seg.frame_end,
        "keyframe_step": job.keyframe_step if is_track else None,
        "overlap_previous": features.shared_frames(previous, seg) if is_track and previous else 0,
        "overlap_next": features.shared_frames(seg, following) if is_track and following else 0,
        "width": out_w,
        "height": out_h,
        "source": {"width": v.width, "height": v.height, "fps": v.fps},
        "frames": [
            {"frame": i, "time": round(images[i][1], 6), "image": images[i][0]} for i in seg.frames
        ],
    }


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


def _create_microtasks(
    locked: Video,
    job: Job,
    planned: list[tuple[features.Segment, dict, float, float]],
    size: tuple[int, int],
) -> None:
    """One microtask per planned segment: (segment, its frames' images, motion, clutter)."""
    is_track = job.annotation_type in SEGMENT_TYPES
    policy = active_policy()  # its complexity is the one prices multiply by
    rows = []
    for k, (seg, images, motion, clutter) in enumerate(planned):
        prev_seg = planned[k - 1][0] if k > 0 else None
        next_seg = planned[k + 1][0] if k + 1 < len(planned) else None
        rows.append(
            MicroTask(
                job=job,
                video=locked,
                index=seg.index,
                frame_start=seg.frame_start,
                frame_end=seg.frame_end,
                frames=list(seg.frames),
                keyframe_step=job.keyframe_step if is_track else 1,
                manifest=_manifest(locked, job, seg, images, size, prev_seg, next_seg),
                motion=motion,
                clutter=clutter,
                complexity=pricing.complexity(motion=motion, clutter=clutter, policy=policy),
                expected_objects=job.expected_objects,
                replica_target=job.overlap_min,
                priority=job.priority,
            )
        )
    MicroTask.objects.bulk_create(rows, batch_size=1000)


def _mark_ready(
    locked: Video,
    *,
    info_fps: float | None,
    frames: int,
    vfr: bool,
    last_time: float,
    damage: int,
    cuts: list[int],
    size: tuple[int, int],
) -> None:
    fps = info_fps
    if vfr and frames > 1 and last_time > 0:
        fps = (frames - 1) / last_time  # the real average of a VFR video
    locked.status = VideoStatus.READY
    locked.stage = Stage.DONE
    locked.progress = 100.0
    locked.frame_count = frames
    locked.fps = fps
    locked.variable_frame_rate = vfr
    locked.bad_packets = damage
    locked.shot_boundaries = cuts
    locked.frame_width, locked.frame_height = size
    if locked.duration is None and fps:
        locked.duration = frames / fps
    locked.ingested_at = timezone.now()
    locked.save()
    # The parts of this attempt stay as a record (how many runs each took); their results are
    # now microtasks.
    VideoPart.objects.filter(video=locked).update(result=None)


# --- Long videos: parts decoded in parallel, then joined -----------------------------------------
#
# Read this before changing the seams. A video longer than 1.5 x VIDEO_INGEST_PART_SECONDS is
# cut at keyframes K_0 = 0 < K_1 < ... (clean starts: closed groups of pictures, found by one
# demux pass without decoding, ``video.scan_seams``). Part k decodes from K_k (PyAV seeks there,
# so it costs its own length) and plans microtasks as if the video began at K_k. With track
# overlap ``o`` (0 for per-frame work) part k plans up to K_{k+1} + o - 1, so its last segment
# shares the o frames from K_{k+1} with part k+1's first segment: a track crossing the seam is
# stitched across it like across any other segment boundary. Shot cuts keep their meaning:
#   - part k stops planning at the first cut from K_{k+1} on (no overlap across a cut) and
#     decodes frame K_{k+1} + o only to see whether a cut is there;
#   - part k+1 drops its segments that end before K_{k+1} + o (only a cut can make one so short:
#     part k covers those frames);
#   - the video's cuts are part k's up to K_{k+1} and part k+1's after, so shots are numbered
#     once, at the join.
# So no frame range is planned twice and none is left out. Each part writes its JPEGs as
# ``<frame>-p<k>.jpg`` (a retry of the part deletes exactly its own); at the join, a frame both
# parts of a seam stored is kept once (the earlier part's) and the other copy deleted. The join
# is a row count under the video's lock: each part saves its result on its VideoPart row and the
# last one to finish creates every microtask and marks the video ready in one transaction.
# A part that fails is retried alone (its task, ``tasks.ingest_video_part``); parts of an
# attempt that was superseded (a new attempt, a failure) give up and delete their files.
# Planning and starting the parts live here; running and joining them in ``ingestion_parts``.


def _plan_parts(job: Job, info: video.ProbeResult, source) -> list[dict]:
    """Part boundaries for a long video, or [] to decode it in one pass."""
    part_seconds = float(settings.VIDEO_INGEST_PART_SECONDS)
    max_parts = settings.VIDEO_INGEST_MAX_PARTS
    if max_parts < 2 or not info.duration or info.duration < 1.5 * part_seconds:
        return []
    scan = video.scan_seams(source)
    if not scan.usable or not scan.seams or scan.seams[0].index != 0:
        return []  # damaged or unusual files: one sequential pass judges them
    is_track = job.annotation_type in SEGMENT_TYPES
    overlap = _overlap_frames(job) if is_track else 0
    unit = job.segment_frames if is_track else job.frame_step * job.frames_per_task
    min_frames = 2 * unit + overlap + 2
    n = min(max_parts, math.ceil(info.duration / part_seconds))
    indexes = [seam.index for seam in scan.seams]
    chosen = [scan.seams[0]]
    for j in range(1, n):
        target = j * scan.frames / n
        k = bisect.bisect_left(indexes, target)
        near = [scan.seams[c] for c in (k - 1, k) if 0 <= c < len(scan.seams)]
        best = min(near, key=lambda seam: abs(seam.index - target))
        if best.index - chosen[-1].index >= min_frames and scan.frames - best.index >= min_frames:
            chosen.append(best)
    if len(chosen) < 2:
        return []
    specs = []
    for k, seam in enumerate(chosen):
        following = chosen[k + 1] if k + 1 < len(chosen) else None
        plan_end = following.index + overlap if following else scan.frames
        specs.append(
            {
                "index": k,
                "start_pts": seam.pts,
                "decode_from": seam.index,
                "first_frame": seam.index + overlap if k else 0,
                "plan_end": plan_end,
                "decode_to": plan_end if following else scan.frames - 1,
                "seam": following.index if following else None,
                "total_frames": scan.frames,
            }
        )
    return specs


def _start_parts(v: Video, attempt: int, specs: list[dict]) -> None:
    from .tasks import ingest_video_part

    with transaction.atomic():
        locked = Video.objects.select_for_update().get(pk=v.pk)
        if locked.attempts != attempt or locked.status != VideoStatus.PROCESSING:
            return
        VideoPart.objects.filter(video=locked).delete()
        parts = VideoPart.objects.bulk_create(
            [VideoPart(video=locked, attempt=attempt, **spec) for spec in specs]
        )
        Video.objects.filter(pk=v.pk).update(stage=Stage.DECODE, updated_at=timezone.now())
        for part in parts:
            transaction.on_commit(lambda pk=part.pk: ingest_video_part.delay(pk))
