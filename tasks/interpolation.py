"""Keyframe interpolation of tracks to per-frame boxes (pure numpy; knows nothing of Django).

One rule, used by submission storage, consensus and export, and ported line for line to
``static/js/annotate/core.mjs`` for the page's preview (``interpolateTrack``); both are tested
on the cases of ``tests/vectors/interpolation.json`` (pytest and ``node --test``):

* before its first keyframe a track is absent;
* at or after keyframe *i* (the last keyframe at or before the frame):
  - if keyframe *i* is ``outside`` the object is absent (until the next keyframe);
  - else if the next keyframe exists and is not ``outside``, the box is the linear interpolation
    of the two keyframes' boxes;
  - else (no next keyframe, or the next one is ``outside``) the box of keyframe *i* holds.

That is CVAT's semantics: a track persists after its last keyframe until an ``outside`` keyframe
ends it, and a box never drifts towards a keyframe where the object has left.
Boxes are ``[x1, y1, x2, y2]`` in pixels. Stored per-frame boxes are rounded to 2 decimals by
``np.round`` (halves to even: 0.125 -> 0.12); the page's ``round2`` rounds the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Track:
    """Keyframes of one object.

    ``frames`` strictly increasing ints (k,), ``boxes`` (k, 4), ``outside`` bools (k,).
    """

    frames: np.ndarray
    boxes: np.ndarray
    outside: np.ndarray
    label: str = ""
    track_id: int = 0


def interpolate(
    key_frames: np.ndarray, key_boxes: np.ndarray, key_outside: np.ndarray, frames: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of one track at ``frames``: ``(boxes (n, 4) float64, present (n,) bool)``.

    Absent frames have NaN boxes. ``key_frames`` must be strictly increasing.
    """
    kf = np.asarray(key_frames, dtype=np.int64)
    kb = np.asarray(key_boxes, dtype=np.float64).reshape(-1, 4)
    ko = np.asarray(key_outside, dtype=bool)
    q = np.asarray(frames, dtype=np.int64)
    n = q.shape[0]
    out = np.full((n, 4), np.nan)
    if kf.size == 0 or n == 0:
        return out, np.zeros(n, dtype=bool)
    if kf.size > 1 and np.any(np.diff(kf) <= 0):
        raise ValueError("keyframes must be strictly increasing")

    i = np.searchsorted(kf, q, side="right") - 1  # last keyframe at or before each frame
    started = i >= 0
    ic = np.clip(i, 0, kf.size - 1)
    present = started & ~ko[ic]

    nxt = np.minimum(ic + 1, kf.size - 1)
    has_next = (ic + 1 < kf.size) & ~ko[nxt]
    span = np.where(has_next, kf[nxt] - kf[ic], 1).astype(np.float64)
    t = np.where(has_next, (q - kf[ic]) / span, 0.0)[:, None]
    boxes = kb[ic] * (1.0 - t) + kb[nxt] * t
    out[present] = boxes[present]
    return out, present


def interpolate_track(
    track: Track, frame_start: int, frame_end: int
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes for every frame in ``frame_start..frame_end`` (inclusive)."""
    frames = np.arange(frame_start, frame_end + 1, dtype=np.int64)
    return interpolate(track.frames, track.boxes, track.outside, frames)


def track_from_payload(item: Mapping[str, Any]) -> Track:
    """A ``Track`` from one validated payload track ``{"id", "label", "keyframes": [...]}``."""
    keyframes = item["keyframes"]
    return Track(
        frames=np.array([k["frame"] for k in keyframes], dtype=np.int64),
        boxes=np.array([k["box"] for k in keyframes], dtype=np.float64).reshape(-1, 4),
        outside=np.array([bool(k.get("outside", False)) for k in keyframes], dtype=bool),
        label=str(item.get("label", "")),
        track_id=int(item.get("id", 0)),
    )


def tracks_to_frames(
    tracks: Iterable[Track], frame_start: int, frame_end: int, *, decimals: int = 2
) -> dict[str, list[dict[str, Any]]]:
    """Per-frame shapes ``{"<frame>": [{"track", "label", "box"}]}`` for every frame of the range.

    Frames where no track is present map to an empty list, so the result says which frames were
    looked at.
    """
    result: dict[str, list[dict[str, Any]]] = {
        str(f): [] for f in range(frame_start, frame_end + 1)
    }
    frames = np.arange(frame_start, frame_end + 1, dtype=np.int64)
    for track in tracks:
        boxes, present = interpolate(track.frames, track.boxes, track.outside, frames)
        rounded = np.round(boxes, decimals)
        for idx in np.flatnonzero(present):
            result[str(int(frames[idx]))].append(
                {
                    "track": track.track_id,
                    "label": track.label,
                    "box": [float(v) for v in rounded[idx]],
                }
            )
    return result
