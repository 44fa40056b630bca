"""Tracker proposals for a worker's track: the service behind
``POST /api/work/assignments/<id>/propagate/`` (the computation is ``tasks.tracking``).

Read only: nothing is stored. The worker sends the track being edited (checked exactly as a
submission's track is, ``tasks.annotations``) and the keyframe to start from; the service
decodes the microtask's frames from ``from_frame`` to ``to_frame`` only (``video.decode_span``:
from the nearest keyframe of the video), at the worker's frame size so boxes need no more than
a rounding, and tracks:

* ``forward``: from the keyframe at ``from_frame`` to ``to_frame`` (default: the frame before
  the track's next keyframe, else the microtask's last frame), stopping where the tracker loses
  the object;
* ``between``: between the keyframe at ``from_frame`` and the track's next keyframe, the
  tracker's path bent to meet both.

The answer lists the proposed boxes on the microtask's annotated frames (the frames the worker
sees; the tracker itself runs on every frame), each with its confidence and ``lost`` flag, and
``lost_at``, the first frame where the object was lost. It never takes longer than
``TRACKER_LATENCY_BUDGET_SECONDS`` of tracking: past it the frames done so far come back with
``truncated: true``. No database transaction is held while decoding and tracking.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage

from marketplace.errors import Conflict, ValidationError
from marketplace.models import AnnotationType, User

from . import claiming, tracking, video, vision, work_selectors
from .annotations import AnnotationInvalid, validate_payload
from .models import Assignment

FORWARD, BETWEEN = "forward", "between"

# Frames are tracked at most this wide (grey, one byte a pixel): the ``between`` mode keeps its
# span in memory for the backward pass, so TRACKER_MAX_FRAMES frames cost at most
# 640 x 360 x TRACKER_MAX_FRAMES bytes (138 MB at the default 600); boxes lose under a pixel of
# the worker's 1280-wide frames.
TRACK_WIDTH_MAX = 640
MODES = (FORWARD, BETWEEN)


class VideoUnreadable(Conflict):
    """The frames of this microtask cannot be decoded; propose nothing and draw by hand."""

    code = "video_unreadable"


class NotATrackJob(Conflict):
    """Only track jobs have tracks to propagate."""

    code = "not_a_track_job"


@dataclass
class Proposal:
    """What the API answers (boxes in the worker's frame pixels)."""

    frames: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False
    lost_at: int | None = None
    elapsed_ms: int = 0
    from_frame: int = 0
    to_frame: int = 0
    mode: str = FORWARD


def _invalid(field_name: str, message: str) -> ValidationError:
    return ValidationError(f"{field_name} {message}.", extra={"fields": {field_name: [message]}})


def _checked_track(track: Any, microtask) -> dict[str, Any]:
    """The track as ``tasks.annotations`` normalises it; errors with paths under ``track``."""
    try:
        result = validate_payload({"tracks": [track]}, claiming.annotation_context(microtask))
    except AnnotationInvalid as exc:
        fields = {
            ("track" + path[len("tracks[0]") :] if path.startswith("tracks[0]") else "track"): m
            for path, m in exc.fields.items()
        }
        raise ValidationError(str(AnnotationInvalid(fields)), extra={"fields": fields}) from None
    return result.payload["tracks"][0]


def _plan(
    track: dict[str, Any], microtask, mode: str, from_frame: int, to_frame: int | None
) -> tuple[list[float], list[float] | None, int]:
    """(box at from_frame, box at to_frame for ``between``, to_frame), or a 400 saying why."""
    keyframes = track["keyframes"]
    at = {k["frame"]: k for k in keyframes}
    start = at.get(from_frame)
    if start is None or start["outside"]:
        raise _invalid("from_frame", "must be one of the track's keyframes with a box")
    limit = int(settings.TRACKER_MAX_FRAMES)
    if mode == BETWEEN:
        later = [k for k in keyframes if k["frame"] > from_frame]
        if not later or later[0]["outside"]:
            raise _invalid("from_frame", "needs a next keyframe with a box to propagate between")
        end = later[0]
        if to_frame is not None and to_frame != end["frame"]:
            raise _invalid("to_frame", f"must be the next keyframe ({end['frame']}) or left out")
        if end["frame"] - from_frame > limit:
            raise _invalid("to_frame", f"is more than {limit} frames after from_frame")
        return start["box"], end["box"], end["frame"]
    if to_frame is None:
        # Up to the track's next keyframe (an object that left stays gone), else the end.
        later = [k["frame"] for k in keyframes if k["frame"] > from_frame]
        to_frame = min(microtask.frame_end, from_frame + limit, *(f - 1 for f in later[:1]))
        if to_frame <= from_frame:
            raise _invalid("from_frame", "has no frame after it to propose (the next is keyed)")
    if not from_frame < to_frame <= microtask.frame_end:
        raise _invalid("to_frame", f"must be after from_frame and at most {microtask.frame_end}")
    if to_frame - from_frame > limit:
        raise _invalid("to_frame", f"is more than {limit} frames after from_frame")
    return start["box"], None, to_frame


def _open_video(name: str, stack: ExitStack):
    try:
        return default_storage.path(name)
    except NotImplementedError:  # object storage: a file object instead of a path
        return stack.enter_context(default_storage.open(name, "rb"))


def assignment_propagate(
    *,
    worker: User,
    assignment_id: int,
    track: Any,
    from_frame: int,
    to_frame: int | None = None,
    mode: str = FORWARD,
) -> Proposal:
    """Propose boxes for ``track`` from its keyframe at ``from_frame`` (module docstring).

    Refused for someone else's assignment (404, as for none), a claim that is not live (409), a
    job that is not a track job (409), a track or frames that do not fit (400, field by field)
    and a video that cannot be decoded (409, code ``video_unreadable``).
    """
    began = time.monotonic()
    try:
        assignment = work_selectors.load_assignment(assignment_id=assignment_id)
    except Assignment.DoesNotExist:
        raise claiming.not_yours() from None
    if assignment.worker_id != worker.pk:
        raise claiming.not_yours()
    claiming.require_live(assignment, "propagate")
    microtask = assignment.microtask
    if microtask.job.annotation_type != AnnotationType.TRACK:
        raise NotATrackJob()
    if mode not in MODES:
        raise _invalid("mode", f"must be one of {', '.join(MODES)}")
    checked = _checked_track(track, microtask)
    box_a, box_b, to_frame = _plan(checked, microtask, mode, from_frame, to_frame)
    deadline = began + float(settings.TRACKER_LATENCY_BUDGET_SECONDS)
    width, height = work_selectors.frame_size(microtask)
    path = _run(microtask, width, height, from_frame, to_frame, box_a, box_b, deadline)
    proposal = _answer(path, microtask, width, height, from_frame, to_frame, mode)
    proposal.elapsed_ms = round((time.monotonic() - began) * 1000)
    return proposal


def _run(microtask, width, height, first, last, box_a, box_b, deadline) -> tracking.Path:
    vision.single_thread()
    video_row = microtask.video
    if not video_row.file or not video_row.width or not width or not height:
        raise VideoUnreadable()
    aw, ah = video.analysis_size(
        int(video_row.width), int(video_row.height), min(width, TRACK_WIDTH_MAX)
    )
    sx, sy = aw / width, ah / height

    def to_frame_px(box):
        return (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)

    try:
        with ExitStack() as stack:
            source = _open_video(video_row.file.name, stack)
            decoded = video.decode_span(
                source, first=first, last=last, analysis_width=aw, limits=video.Limits()
            )
            stack.enter_context(closing(decoded))
            frames = _grey(decoded)
            if box_b is None:
                path = tracking.track(frames, to_frame_px(box_a), deadline=deadline)
            else:
                path = _between(frames, to_frame_px(box_a), to_frame_px(box_b), last, deadline)
    except video.VideoError as exc:
        raise VideoUnreadable(
            f"The frames of this microtask cannot be decoded ({exc}); propose nothing and draw "
            "the track by hand."
        ) from None
    except OSError:
        raise VideoUnreadable() from None
    steps = [
        tracking.Step(
            s.frame,
            (s.box[0] / sx, s.box[1] / sy, s.box[2] / sx, s.box[3] / sy),
            s.confidence,
            s.lost,
        )
        for s in path.steps
    ]
    return tracking.Path(steps, path.truncated)


def _grey(decoded: Iterator[video.DecodedFrame]) -> Iterator[tuple[int, np.ndarray]]:
    for frame in decoded:
        yield frame.index, frame.gray


def _between(frames, box_a, box_b, last: int, deadline: float) -> tracking.Path:
    """Decode the span (the backward pass needs it all), then track both ways; a budget spent
    on decoding leaves the forward pass over what was decoded, marked truncated."""
    kept = []
    for item in frames:
        kept.append(item)
        if time.monotonic() >= deadline:
            break
    if not kept or kept[-1][0] != last:
        path = tracking.track(kept, box_a, deadline=deadline)
        path.truncated = True
        return path
    return tracking.between(kept, box_a, box_b, deadline=deadline)


def _clip(box, width: int, height: int) -> list[float] | None:
    x1, y1 = max(0.0, box[0]), max(0.0, box[1])
    x2, y2 = min(float(width), box[2]), min(float(height), box[3])
    if x2 - x1 < 1 or y2 - y1 < 1:
        return None
    return [round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)]


def _answer(path, microtask, width, height, first, last, mode) -> Proposal:
    shown = set(int(f) for f in (microtask.frames or [])) or set(range(first, last + 1))
    out = Proposal(truncated=path.truncated, from_frame=first, to_frame=last, mode=mode)
    for step in path.steps:
        box = _clip(step.box, width, height)
        lost = step.lost or box is None
        if lost and out.lost_at is None:
            out.lost_at = step.frame
        if step.frame not in shown and not (lost and step.frame == out.lost_at):
            continue
        if box is None:
            continue
        out.frames.append(
            {"frame": step.frame, "box": box, "confidence": step.confidence, "lost": lost}
        )
    return out
