"""Decoded frames into microtasks: the work a whole video and each part of a long one share.

Owns ``_decode_and_split`` (plan microtasks over decoded frames while writing the JPEGs they
need: on a helper thread for a whole video, inline for a part), each planned segment's
complexity features and manifest, creating the microtasks of a video in bulk and marking it
ready. ``ingestion_pipeline`` calls these for a video decoded in one pass, ``ingestion_parts``
for each part and at the join.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.utils import timezone

from marketplace.models import AnnotationType, Job
from payments import pricing
from payments.selectors import active_policy

from . import features, video
from .annotations import SEGMENT_TYPES
from .ingestion_common import Stage
from .models import MicroTask, Video, VideoPart, VideoStatus

MAX_INFLIGHT = 4  # decoded frames waiting for the JPEG writer thread


@dataclass
class _Result:
    segments: list[features.Segment]
    images: dict[int, tuple[str, float]]  # frame -> (storage name, time)
    feats: features.FrameFeatures
    cuts: list[int]
    stats: video.DecodeStats
    size: tuple[int, int]


class _Inline:
    """The two calls of ``ThreadPoolExecutor`` used here, run at once on the calling thread."""

    def submit(self, fn, /, *args) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass


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

    # A whole video is one task: its JPEG encoding and storage writes run on one helper thread,
    # overlapped with decoding (the encoder and swscale release the GIL). At most MAX_INFLIGHT
    # frames wait for it, so memory stays bounded; the thread is always drained before this
    # function returns, so nothing is written after a failure's cleanup. A part writes inline:
    # like its decoder (one thread), it is one worker's one core, and a long video's
    # parallelism is across the workers taking its parts (a helper thread there only competes
    # with the other parts for the same cores).
    writer: ThreadPoolExecutor | _Inline = (
        _Inline()
        if part is not None
        else ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"frames-{v.pk}")
    )
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
