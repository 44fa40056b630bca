"""The frames of a microtask with annotators' shapes drawn over them, for the pages where a
person judges work (the requester's submissions list, the review page of requesters and admins).

Each frame's image is the requester's access-checked URL (``tasks.frame_views.requester_frame``),
never a storage name; each annotator's shapes keep one colour across the frames. Only what the
SVG templates draw is returned: boxes as rectangles, polygons as point lists, masks as a path of
their pixel runs row by row (tinted), frame labels as text. A shape's attributes and relations
come with it (read-only: the page lists them under the frame, and selecting the shape highlights
its entry). Events (an event job's intervals, a track job's events on its tracks) are not drawn
on a frame: :func:`event_timeline` lays them on a timeline, one lane per label per layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tasks import rle
from tasks.progress import REQUESTER_FRAME_URL
from tasks.work_selectors import EXTERNAL, STORAGE, frame_entries, frame_size, frame_source

from . import events as events_mod

COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6"]


def colour(k: int) -> str:
    return COLOURS[k % len(COLOURS)]


def mask_path(value: dict) -> str:
    """An SVG path covering a mask's pixels: one ``M x,y h n v 1 h -n z`` per run of a row."""
    mask = rle.decode(value)
    padded = np.pad(mask, ((0, 0), (1, 1))).astype(np.int8)
    edges = np.diff(padded, axis=1)
    parts = []
    for y, x in zip(*np.nonzero(edges == 1), strict=True):
        n = int(np.argmax(edges[y, x:] == -1))
        parts.append(f"M{x},{y}h{n}v1h-{n}z")
    return "".join(parts)


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _extras(s: dict[str, Any], frame_shapes: Sequence[Any]) -> dict[str, Any]:
    """The shape's attributes as ``(name, value)`` texts and its relations as ``(predicate,
    object's label and number on the frame)``."""
    attrs = s.get("attributes")
    attributes = (
        [(str(k), _value_text(v)) for k, v in sorted(attrs.items())]
        if isinstance(attrs, dict)
        else []
    )
    relations = []
    for r in s.get("relations") or ():
        if not isinstance(r, dict):
            continue
        j = r.get("object")
        target = frame_shapes[j] if isinstance(j, int) and 0 <= j < len(frame_shapes) else None
        name = str(target.get("label", "")) if isinstance(target, dict) else "?"
        relations.append(
            (str(r.get("predicate", "")), f"{name} #{j + 1 if isinstance(j, int) else '?'}")
        )
    return {"attributes": attributes, "relations": relations}


def _shape(s: dict[str, Any], stroke: str) -> dict[str, Any] | None:
    if "event" in s:  # on the timeline (event_timeline), not on the frame
        return None
    label = str(s.get("label", ""))
    value = s.get("rle")
    if isinstance(value, dict):
        return {"kind": "mask", "path": mask_path(value), "colour": stroke, "label": label}
    box = s.get("box")
    if isinstance(box, list | tuple) and len(box) == 4:
        x1, y1, x2, y2 = box
        return {
            "kind": "box",
            "x": x1,
            "y": y1,
            "w": x2 - x1,
            "h": y2 - y1,
            "colour": stroke,
            "label": label,
        }
    points = s.get("points")
    if isinstance(points, list | tuple) and points:
        text = " ".join(f"{p[0]},{p[1]}" for p in points if len(p) == 2)
        return {"kind": "polygon", "points": text, "colour": stroke, "label": label}
    if label:
        return {"kind": "label", "colour": stroke, "label": label}
    return None


def requester_frames(microtask) -> list[dict[str, Any]]:
    """The microtask's frames as its requester (or an admin) fetches them: number, image URL
    (the access-checked route for images in our storage) and timestamp, in manifest order."""
    out = []
    for index, (number, ref, ts) in enumerate(frame_entries(microtask.manifest or {})):
        kind, where = frame_source(ref)
        if kind == STORAGE:
            url = REQUESTER_FRAME_URL.format(microtask=microtask.pk, index=index)
        else:
            url = where if kind == EXTERNAL else ""
        out.append({"frame": number, "url": url, "timestamp": ts})
    return out


def workspace_view(*, microtask, payload: Any = None) -> dict[str, Any]:
    """What the annotation workspace needs to draw an answer to ``microtask`` as its requester
    (the gold page): the same task shape the worker's view has, with the requester's frame URLs."""
    job = microtask.job
    width, height = frame_size(microtask)
    return {
        "microtask": microtask.pk,
        "type": job.annotation_type,
        "classes": list(job.label_classes),
        "track_masks": bool(job.track_masks),  # a track job's gold has keyframe masks too
        "task": {
            "frame_start": microtask.frame_start,
            "frame_end": microtask.frame_end,
            "frames": requester_frames(microtask),
            "annotate_frames": list(microtask.frames or []),
            "keyframe_step": microtask.keyframe_step,
            "width": width,
            "height": height,
            "fps": getattr(microtask.video, "fps", None),
        },
        "payload": payload,
    }


def frames_with_shapes(
    *, microtask, layers: Sequence[dict[str, Any]], limit: int | None = None, key: str = ""
) -> dict[str, Any]:
    """The microtask's frames (at most ``limit``, evenly spread) with each layer's shapes.

    ``layers`` are ``{"frames": {frame: [shape, ...]}, "colour": css colour, "dashed": bool}``
    (a submission's per-frame shapes, or the consensus); frames keep the manifest's order.
    ``key`` keeps the shapes' element ids apart when a page shows one microtask several times
    (the microtask's id by default).
    """
    picked = requester_frames(microtask)
    if limit is not None and len(picked) > limit > 0:
        step = (len(picked) - 1) / max(limit - 1, 1)
        picked = [picked[round(i * step)] for i in range(limit)]
    out = []
    for f in picked:
        number, url = f["frame"], f["url"]
        shapes = []
        for n, layer in enumerate(layers):
            on_frame = (layer.get("frames") or {}).get(str(number), [])
            for k, s in enumerate(on_frame):
                drawn = [_shape(s, layer["colour"])] if isinstance(s, dict) else []
                if drawn and drawn[0] and drawn[0]["kind"] == "mask" and "box" in s:
                    # A track's keyframe mask (a track job with masks): its box is drawn too.
                    drawn.append(
                        _shape({f: v for f, v in s.items() if f != "rle"}, layer["colour"])
                    )
                for j, shape in enumerate(drawn):
                    if shape is None:
                        continue
                    shape["dashed"] = bool(layer.get("dashed"))
                    shape["number"] = k + 1
                    shape["layer"] = layer.get("name") or ("consensus" if shape["dashed"] else "")
                    suffix = f"-{j}" if j else ""
                    shape["id"] = f"shape-{key or microtask.pk}-{number}-{n}-{k}{suffix}"
                    shape.update(_extras(s, on_frame))
                    shapes.append(shape)
        described = [s for s in shapes if s["attributes"] or s["relations"]]
        out.append({"frame": number, "url": url, "shapes": shapes, "described": described})
    width, height = frame_size(microtask)
    return {"frames": out, "width": width or 640, "height": height or 360}


def event_timeline(*, microtask, layers: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The layers' events on the microtask's frame range, one lane per (layer, label), each
    event a bar placed in percent of the range (``None`` when no layer has events): what the
    review pages draw read-only. Bars are ``{"x", "w", "start", "end", "track"}``."""
    start, end = int(microtask.frame_start), int(microtask.frame_end)
    span = max(end - start + 1, 1)
    out = []
    for layer in layers:
        found = events_mod.from_frames(layer.get("frames") or {})
        if not found:
            continue
        lanes: dict[str, list[dict[str, Any]]] = {}
        for e in sorted(found, key=lambda e: (e.label, e.start, e.end)):
            lo, hi = max(e.start, start), min(e.end, end)
            if hi < lo:
                continue
            lanes.setdefault(e.label, []).append(
                {
                    "x": round(100 * (lo - start) / span, 3),
                    "w": round(100 * (hi - lo + 1) / span, 3),
                    "start": e.start,
                    "end": e.end,
                    "track": e.track,
                }
            )
        out.append(
            {
                "name": layer.get("name") or ("consensus" if layer.get("dashed") else ""),
                "colour": layer["colour"],
                "dashed": bool(layer.get("dashed")),
                "lanes": [{"label": k, "bars": v} for k, v in sorted(lanes.items())],
            }
        )
    if not out:
        return None
    return {"start": start, "end": end, "layers": out}
