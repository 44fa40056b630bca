"""Long videos: cut into parts at keyframes, decoded in parallel, then joined.

Owns planning a long video's parts (``_plan_parts``, the seams: read the comment above it before
changing anything here), starting them (one ``VideoPart`` row and one Celery task,
``tasks.ingest_video_part``, each), running one part (:func:`video_ingest_part`: it decodes its
range from its keyframe with the same planning and frame writing as a whole video,
``ingestion_frames._decode_and_split``, and keeps its result on its ``VideoPart`` row), and the
join: the last part to finish creates every microtask of the video in one transaction.
``ingestion_pipeline`` decides, after the probe, whether a video goes this way.
"""

from __future__ import annotations

import bisect
import math
import time

from django.conf import settings
from django.core.files.storage import Storage
from django.db import transaction
from django.db.models import F, FloatField, Sum
from django.utils import timezone

from marketplace.errors import ApplicationError
from marketplace.models import Job

from . import features, video
from .annotations import SEGMENT_TYPES
from .ingestion_common import (
    Stage,
    _delete_quietly,
    _fail,
    _limits,
    _open_source,
    _Progress,
    _storage,
    job_ingestion_refresh,
)
from .ingestion_frames import (
    _create_microtasks,
    _decode_and_split,
    _mark_ready,
    _overlap_frames,
    _segment_features,
)
from .models import Video, VideoPart, VideoStatus

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
# Planning and starting the parts, running them and joining them all live in this module.


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


# --- Running one part and joining them -----------------------------------------------------------


def _delete_part_files(storage: Storage, prefix: str, suffix: str) -> int:
    try:
        _, files = storage.listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    mine = [name for name in files if name.endswith(f"{suffix}.jpg")]
    for name in mine:
        _delete_quietly(storage, f"{prefix}/{name}")
    return len(mine)


def _part_current(part: VideoPart) -> bool:
    return Video.objects.filter(
        pk=part.video_id, status=VideoStatus.PROCESSING, attempts=part.attempt
    ).exists()


class _PartProgress(_Progress):
    """A part's progress, and the video's as the parts' mean weighted by their frames."""

    def __init__(self, part: VideoPart):
        super().__init__(part.video_id, None)
        self.part = part

    def frame(self, i: int) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        part = self.part
        span = max(1, part.decode_to - part.decode_from + 1)
        done = min(95.0, 95.0 * (i - part.decode_from + 1) / span)
        VideoPart.objects.filter(pk=part.pk).update(progress=round(done, 1))
        _video_progress(part)


def _video_progress(part: VideoPart) -> None:
    weight = F("plan_end") - F("decode_from")
    agg = VideoPart.objects.filter(video_id=part.video_id, attempt=part.attempt).aggregate(
        done=Sum(F("progress") * weight, output_field=FloatField()), total=Sum(weight)
    )
    if agg["total"]:
        Video.objects.filter(
            pk=part.video_id, attempts=part.attempt, status=VideoStatus.PROCESSING
        ).update(
            stage=Stage.DECODE,
            progress=round(min(95.0, agg["done"] / agg["total"]), 1),
            updated_at=timezone.now(),
        )


def video_ingest_part(*, part_id: int, worker: str = "") -> str:
    """Decode and plan one part of a long video; the last part to finish joins them all.

    Idempotent: a part already done, or of an attempt that was superseded, does nothing; a
    retry deletes the files the part wrote before and redoes it. A ``video.VideoError`` fails the
    whole video; other errors propagate (after cleaning the part's files) for the task to retry.
    """
    part = VideoPart.objects.select_related("video__job").filter(pk=part_id).first()
    if part is None:
        return "superseded"
    if part.status == VideoPart.Status.DONE:
        return "done"  # a redelivery
    if not _part_current(part):
        return "superseded"
    VideoPart.objects.filter(pk=part.pk).update(
        status=VideoPart.Status.RUNNING, runs=F("runs") + 1, progress=0.0, worker=worker[:200]
    )
    v = part.video
    storage = _storage()
    _delete_part_files(storage, v.frames_prefix, part.file_suffix)
    try:
        result = _run_part(v, part, storage)
    except (video.VideoError, ApplicationError) as exc:
        _delete_part_files(storage, v.frames_prefix, part.file_suffix)
        message = exc.message if isinstance(exc, ApplicationError) else str(exc)
        _fail(v.pk, part.attempt, message)
        return "failed"
    except Exception:
        _delete_part_files(storage, v.frames_prefix, part.file_suffix)
        raise
    return _finish_part(part, result, storage)


def video_part_give_up(*, part_id: int, reason: str) -> None:
    """Fail the video of a part whose retries ran out (only if that attempt is still current)."""
    part = VideoPart.objects.filter(pk=part_id).first()
    if part is not None:
        _fail(part.video_id, part.attempt, reason)


def _run_part(v: Video, part: VideoPart, storage: Storage) -> dict:
    job = v.job
    source, handle = _open_source(storage, v.file.name)
    try:
        info = video.probe(source, limits=_limits())
        if handle is not None:
            handle.seek(0)
        stats = video.DecodeStats()
        decoded = video.decode_range(
            source,
            start=video.Seam(part.start_pts, part.decode_from),
            stop_index=part.decode_to,
            analysis_width=settings.VIDEO_ANALYSIS_WIDTH,
            stats=stats,
            limits=_limits(),
            threads=settings.VIDEO_INGEST_PART_THREADS,
        )
        result = _decode_and_split(
            v, job, info, decoded, stats, storage, _PartProgress(part), part=part
        )
    finally:
        if handle is not None:
            handle.close()
    kept = [seg for seg in result.segments if seg.frame_end >= part.first_frame]
    used = {i for seg in kept for i in seg.frames}
    for i, (name, _) in result.images.items():
        if i not in used:
            _delete_quietly(storage, name)
    segments = []
    for seg in kept:
        motion, clutter = _segment_features(job, seg, result.feats)
        segments.append(
            {
                "start": seg.frame_start,
                "end": seg.frame_end,
                "frames": list(seg.frames),
                "images": [result.images[i][0] for i in seg.frames],
                "times": [result.images[i][1] for i in seg.frames],
                "motion": motion,
                "clutter": clutter,
            }
        )
    low = part.decode_from if part.index else -1
    high = part.seam if part.seam is not None else part.total_frames
    return {
        "segments": segments,
        "cuts": [c for c in result.cuts if low < c <= high],
        "damage": stats.damage,
        "vfr": stats.variable_frame_rate,
        "last_time": stats.last_time,
        "size": list(result.size),
    }


def _finish_part(part: VideoPart, result: dict, storage: Storage) -> str:
    joined = False
    duplicates: list[str] = []
    with transaction.atomic():
        locked = (
            Video.objects.select_for_update()
            .select_related("job")
            .filter(pk=part.video_id, status=VideoStatus.PROCESSING, attempts=part.attempt)
            .first()
        )
        if locked is not None:
            VideoPart.objects.filter(pk=part.pk).update(
                status=VideoPart.Status.DONE, progress=100.0, result=result
            )
            waiting = (
                VideoPart.objects.filter(video=locked, attempt=part.attempt)
                .exclude(status=VideoPart.Status.DONE)
                .exists()
            )
            if not waiting:
                duplicates = _join_parts(locked, part.attempt)
                joined = True
    if locked is None:  # superseded while we worked: what we wrote is nobody's
        _delete_part_files(storage, part.video.frames_prefix, part.file_suffix)
        return "superseded"
    for name in duplicates:
        _delete_quietly(storage, name)
    if joined:
        job_ingestion_refresh(job_id=locked.job_id)
        return "joined"
    _video_progress(part)
    return "done"


def _join_parts(locked: Video, attempt: int) -> list[str]:
    """Create every microtask of a video from its parts' results; returns duplicate files."""
    job = locked.job
    parts = list(VideoPart.objects.filter(video=locked, attempt=attempt).order_by("index"))
    cuts = sorted({c for part in parts for c in part.result["cuts"]})
    planned: list[tuple[features.Segment, dict, float, float]] = []
    duplicates: set[str] = set()
    carry: dict[int, str] = {}  # frames of the previous part at or after this part's keyframe
    for part in parts:
        names: dict[int, str] = {}
        for d in part.result["segments"]:
            images = {}
            for i, name, t in zip(d["frames"], d["images"], d["times"], strict=True):
                if i in carry and carry[i] != name:
                    duplicates.add(name)
                    name = carry[i]
                images[i] = (name, t)
                names[i] = name
            shot = bisect.bisect_right(cuts, d["start"])
            seg = features.Segment(len(planned), d["start"], d["end"], tuple(d["frames"]), shot)
            planned.append((seg, images, d["motion"], d["clutter"]))
        carry = {i: n for i, n in names.items() if part.seam is not None and i >= part.seam}
    size = tuple(parts[0].result["size"])
    _create_microtasks(locked, job, planned, size)
    _mark_ready(
        locked,
        info_fps=locked.fps,
        frames=parts[-1].total_frames,
        vfr=any(part.result["vfr"] for part in parts),
        last_time=parts[-1].result["last_time"],
        damage=sum(part.result["damage"] for part in parts),
        cuts=cuts,
        size=size,
    )
    return sorted(duplicates)
