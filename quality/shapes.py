"""Per-frame shapes as stored (``Submission.frames``) to and from the pure modules' arrays.

Stored shapes are ``{"<frame>": [shape, ...]}`` (see ``tasks.annotations``), where a shape is
``{"label", "box"}``, ``{"track", "label", "box"}``, ``{"label", "points"}``, ``{"label", "rle"}``
or ``{"label"}``.
Pure: knows nothing of Django.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tasks import rle

from .boxes import NO_ID, NO_LABEL, Annotation, FrameBoxes

Frames = Mapping[str, Sequence[Mapping[str, Any]]]


def _class_index(classes: Sequence[str]) -> dict[str, int]:
    return {c: i for i, c in enumerate(classes)}


def _box_of(shape: Mapping[str, Any]) -> list[float] | None:
    if shape.get("box") is not None:
        return shape["box"]
    if shape.get("rle"):  # a mask: its extents (what fraud signals compare across workers)
        x, y, w, h = rle.bbox(rle.decode(shape["rle"]))
        return [float(x), float(y), float(x + w), float(y + h)]
    return None


def to_annotation(frames: Frames, classes: Sequence[str]) -> dict[int, FrameBoxes]:
    """Boxes (and track ids) per frame, a mask's box its extents; other shapes are skipped."""
    index = _class_index(classes)
    out: dict[int, FrameBoxes] = {}
    for key, shapes in frames.items():
        boxed = [(s, b) for s in shapes if (b := _box_of(s)) is not None]
        out[int(key)] = FrameBoxes.make(
            [b for _, b in boxed],
            [index.get(s.get("label"), NO_LABEL) for s, _ in boxed],
            [int(s.get("track", NO_ID)) for s, _ in boxed],
        )
    return out


def to_labels(frames: Frames, classes: Sequence[str]) -> dict[int, int]:
    """Classification: the class index per frame (the first label given on it)."""
    index = _class_index(classes)
    return {
        int(key): index.get(shapes[0].get("label"), NO_LABEL)
        for key, shapes in frames.items()
        if shapes
    }


def to_polygons(frames: Frames) -> dict[int, list[np.ndarray]]:
    return {
        int(key): [np.asarray(s["points"], dtype=np.float64) for s in shapes if s.get("points")]
        for key, shapes in frames.items()
    }


def from_annotation(
    annotation: Annotation, classes: Sequence[str], *, tracks: bool = False
) -> dict[str, list[dict[str, Any]]]:
    """Stored shapes from per-frame boxes (ids become ``track`` when ``tracks``)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for f in sorted(annotation):
        fb = annotation[f]
        shapes = []
        for i in range(len(fb)):
            lab = int(fb.labels[i])
            shape: dict[str, Any] = {
                "label": classes[lab] if 0 <= lab < len(classes) else "",
                "box": [round(float(v), 2) for v in fb.boxes[i]],
            }
            if tracks:
                shape["track"] = int(fb.ids[i])
            shapes.append(shape)
        out[str(int(f))] = shapes
    return out


def from_labels(labels: Mapping[int, int], classes: Sequence[str]) -> dict[str, list[dict]]:
    return {
        str(int(f)): ([{"label": classes[c]}] if 0 <= c < len(classes) else [])
        for f, c in sorted(labels.items())
    }


def annotation_to_payload(
    annotation: Annotation, classes: Sequence[str], *, annotation_type: str
) -> dict[str, Any]:
    """A submission payload for ``annotation`` (tracks get a keyframe on every frame)."""
    if annotation_type == "track":
        per_track: dict[int, list[dict[str, Any]]] = {}
        labels: dict[int, str] = {}
        frames = sorted(annotation)
        for f in frames:
            fb = annotation[f]
            for i in range(len(fb)):
                tid = int(fb.ids[i])
                lab = int(fb.labels[i])
                labels.setdefault(tid, classes[lab] if 0 <= lab < len(classes) else classes[0])
                per_track.setdefault(tid, []).append(
                    {"frame": int(f), "box": [round(float(v), 2) for v in fb.boxes[i]]}
                )
        tracks = []
        for tid, keys in sorted(per_track.items()):
            last = keys[-1]["frame"]
            if last < frames[-1]:
                nxt = frames[frames.index(last) + 1]
                keys = [*keys, {"frame": nxt, "outside": True}]
            tracks.append({"id": tid, "label": labels[tid], "keyframes": keys})
        return {"tracks": tracks}
    boxes = []
    for f in sorted(annotation):
        fb = annotation[f]
        for i in range(len(fb)):
            lab = int(fb.labels[i])
            boxes.append(
                {
                    "frame": int(f),
                    "label": classes[lab] if 0 <= lab < len(classes) else classes[0],
                    "box": [round(float(v), 2) for v in fb.boxes[i]],
                }
            )
    return {"boxes": boxes}
